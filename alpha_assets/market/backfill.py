"""REST backfill of one trade gap: `GET /fapi/v1/aggTrades?symbol=&fromId=&limit=` page by page.

Bounded by construction: at most `max_backfill_pages` requests per attempt, and every page must
serve an id at or above the cursor inside the hole, or the hole is "unserved" for this attempt
(an exchange answering only ids above the one asked cannot keep us looping). Each REST item is
parsed strictly and offered to the tracker, which checks that its id is one of the gap's holes
and its time lies between the trades around the gap.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx

from alpha_assets.market.binance import ParseError, parse_trade
from alpha_assets.market.continuity import Gap, TradeTracker
from alpha_assets.market.fields import loads
from alpha_assets.market.schema import REST_STREAM, dead_letter

if TYPE_CHECKING:
    from alpha_assets.market.ws_client import MarketWsClient

REST_PAGE_MAX = 1000


async def backfill_tracker(client: MarketWsClient, http: httpx.AsyncClient, t: TradeTracker, now: float,
                           force: bool = False) -> None:
    """What is due for one symbol's trades: a held jump's expiry, a tail probe, gap attempts."""
    t.expire(now)
    if t.tail_probe is not None and (force or t.tail_probe <= now):
        await probe_tail(client, http, t, now)
    for gap in t.due(now, force):
        await backfill_gap(client, http, t, gap)
        t.after_attempt(gap, time.monotonic())


async def backfill_gap(client: MarketWsClient, http: httpx.AsyncClient, t: TradeTracker, gap: Gap) -> None:
    """One backfill attempt of `gap` (counted in gap.attempts)."""
    cfg, counters = client.cfg, client.counters
    gap.attempts += 1
    if not cfg.backfill:
        gap.attempts = max(gap.attempts, cfg.backfill_attempts)
        return
    pages = 0
    try:
        for lo, hi in t.ledger.holes(gap.lo, gap.hi):
            cursor = lo
            while cursor <= hi and pages < cfg.max_backfill_pages:
                pages += 1
                counters.backfill_pages += 1
                resp = await _get_page(http, f"{cfg.backfill_base()}/fapi/v1/aggTrades", {
                    "symbol": t.symbol, "fromId": cursor, "limit": min(REST_PAGE_MAX, hi - cursor + 1)})
                top = _offer_page(client, t, gap, resp.content, cursor, hi)
                if top is None:  # nothing at or above the cursor inside the hole: not served now
                    counters.backfill_unserved += 1
                    break
                cursor = top + 1
    except (httpx.HTTPError, ValueError) as exc:
        counters.backfill_errors += 1
        client._dead(dead_letter("trades", "backfill_error", t.symbol, None, f"{gap.lo}-{gap.hi}",
                                 {"error": type(exc).__name__, "detail": str(exc)[:200]}, stream=REST_STREAM,
                                 recv_time_ms=int(client.clock() * 1000)))


async def probe_tail(client: MarketWsClient, http: httpx.AsyncClient, t: TradeTracker, now: float) -> None:
    """After a reconnect that no live trade has followed: one page of what came after the last trade.
    What it serves becomes a gap filled from that page; a full page asks again at once."""
    head, t.tail_probe = t.ledger.head, None
    if head is None or not client.cfg.backfill:
        return
    client.counters.tail_probes += 1
    try:
        resp = await _get_page(http, f"{client.cfg.backfill_base()}/fapi/v1/aggTrades",
                               {"symbol": t.symbol, "fromId": head + 1, "limit": REST_PAGE_MAX})
        items = loads(resp.content)
    except (httpx.HTTPError, ParseError) as exc:
        client.counters.backfill_errors += 1
        client._dead(dead_letter("trades", "backfill_error", t.symbol, None, f"{head + 1}-",
                                 {"error": type(exc).__name__, "detail": str(exc)[:200]}, stream=REST_STREAM,
                                 recv_time_ms=int(client.clock() * 1000)))
        return
    after = [(i["a"], i["T"]) for i in items[:REST_PAGE_MAX] if isinstance(i, dict)
             and type(i.get("a")) is int and i["a"] > head and type(i.get("T")) is int] if isinstance(items, list) else []
    if not after:
        return
    top, t_top = max(after)
    gap = t.open_tail_gap(top, t_top, now)
    _offer_page(client, t, gap, resp.content, head + 1, top)
    t.after_attempt(gap, now)
    if len(items) >= REST_PAGE_MAX:
        t.tail_probe = now


async def _get_page(http: httpx.AsyncClient, url: str, params: dict[str, str | int]) -> httpx.Response:
    """One page; a transport error (a pooled connection the server had closed, a reset) is retried
    once at once: the GET is idempotent, and ending the attempt there would cost a back-off."""
    try:
        resp = await http.get(url, params=params)
    except httpx.TransportError:
        resp = await http.get(url, params=params)
    resp.raise_for_status()
    return resp


def _offer_page(client: MarketWsClient, t: TradeTracker, gap: Gap, body: bytes, cursor: int, hi: int) -> int | None:
    """Offer one REST page to the tracker; the highest id served in [cursor, hi], or None."""
    recv_ms = int(client.clock() * 1000)
    try:
        items = loads(body)
    except ParseError as exc:
        raise ValueError(f"REST answer is not JSON ({exc.reason})") from exc
    if not isinstance(items, list):
        raise ValueError("REST answer is not a list")
    top = None
    for item in items[:REST_PAGE_MAX]:
        if not isinstance(item, dict):
            continue
        # REST aggTrades carry T only (the simulator adds E); our keys win over the item's
        e = item["E"] if type(item.get("E")) is int else item.get("T")
        try:
            row = parse_trade({**item, "e": "aggTrade", "s": t.symbol, "E": e}, recv_ms)
        except ParseError as exc:
            client._dead(dead_letter("trades", exc.reason, t.symbol, None, None, item, stream=REST_STREAM,
                                     recv_time_ms=recv_ms))
            continue
        tid = row["agg_trade_id"]
        if cursor <= tid <= hi:
            top = tid if top is None else max(top, tid)
        t.backfilled(gap, row, item)
    return top
