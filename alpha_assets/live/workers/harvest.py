"""Harvest worker: WebSocket → validation/dedup/dead-letter → minute files in the landing zone.

A minute (of event time) is landed once the symbol's event-time watermark has passed its end by
``lateness_ms`` and no trade-id gap of the symbol is still being backfilled; then
``runtime/harvest/watermark_<SYM>.json`` advances (``closed_through_ms``), which is what the
signal worker waits for. The watermark moves with min(event time, receive time) of accepted
rows, so no message dated in the future can close a minute early. On stop the open minutes are
landed too (merge-on-write makes a later completion safe) but the watermark only covers
complete minutes.

Hostile input: rows are landed through `LandingWriter.land_rows`, so a row that cannot be
written is a dead letter and the rest of its minute lands; a minute whose write fails stays
buffered and is retried. Dead letters are filed by receive time under the symbol of the stream
they came on, or under `_UNROUTED` when that is no configured symbol.

Restart: ``runtime/harvest/<run_id>/state.json`` holds, per symbol, the ledger of trade ids that
are *landed* (contiguous prefix + ranges, id_gap ranges given up count as accounted) and the last
landed book update id. Before a minute is written its key is saved as an intent; a restart after
a crash between two writes reads that minute's files back into the ledger. The client is seeded
with the ledger, so it backfills exactly the holes: nothing lost (what was only buffered comes
back), nothing doubled (what landed is not fetched again).

    python -m alpha_assets.live.workers.harvest
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl

from alpha_assets.live.workers.common import (
    MINUTE_MS,
    Heartbeat,
    StopFlag,
    WorkerConfig,
    load_config,
    minute_parts,
    read_json,
    ready,
)
from alpha_assets.market.id_ledger import IdLedger, gap_range
from alpha_assets.market.landing import LandingWriter, deadletter_bucket
from alpha_assets.market.schema import UNROUTED, dead_letter
from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig
from alpha_assets.reports.atomic import write_text_atomic

NAME = "harvest"
KIND_OF = {"trade": "trades", "book": "book", "deadletter": "deadletter"}


def preview_frame(trades: pl.DataFrame, book: pl.DataFrame) -> pl.DataFrame | None:
    """Preview bars from the preview module when it is there (owned by another part)."""
    try:
        from alpha_assets.market import preview  # type: ignore[attr-defined]
    except ImportError:
        return None
    for fn_name in ("preview_bars", "build_preview", "compute_preview"):
        fn = getattr(preview, fn_name, None)
        if fn is not None:
            return fn(trades, book)
    return None


class Harvester:
    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.root = cfg.data_root
        self.state_path = self.root / "runtime" / "harvest" / cfg.run_id / "state.json"
        self.writers = {s: LandingWriter(self.root, s) for s in cfg.symbols}
        self.writers[UNROUTED] = LandingWriter(self.root, UNROUTED)
        self.buffers: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: {"trades": [], "book": [], "deadletter": []})
        self.event_wm: dict[str, int] = {}
        self.recv_wm = 0
        self.closed_through: dict[str, int] = {}
        self.c: dict[str, int] = dict.fromkeys(
            ("minutes_landed", "files_written", "raw_files", "preview_files", "deadletter_files", "trades_landed",
             "book_landed", "deadletter_landed", "late_rows", "preview_errors", "unlandable_rows", "land_failures",
             "unrouted_deadletters", "intent_recovered", "spilled_rows"), 0)
        self.latency_ms: list[int] = []
        self.last_minute_latency_p99 = 0
        saved = read_json(self.state_path)
        # Counters are cumulative over restarts of this run; a restart is itself a reconnect.
        self.base: dict[str, int] = {k: int(v) for k, v in saved.get("totals", {}).items()}
        self.resumed = bool(saved)
        if self.resumed:
            self.base["reconnect_count"] = self.base.get("reconnect_count", 0) + 1
            self.base["restarts_seen"] = self.base.get("restarts_seen", 0) + 1
        client_cfg = WsClientConfig.model_validate(
            {"url": cfg.ws_url, "rest_url": cfg.rest_url, "read_timeout_s": cfg.read_timeout_s, **cfg.ws_client})
        self.client = MarketWsClient(client_cfg)
        self.ledgers: dict[str, IdLedger] = {s: IdLedger.from_json(b) for s, b in saved.get("ledgers", {}).items()}
        self.last_u: dict[str, int] = {s: int(u) for s, u in saved.get("last_update_id", {}).items() if u is not None}
        for sym, ids in saved.get("landed_ids", {}).items():  # the state of an older harvester: max ids
            if ids.get("last_trade_id") is not None and sym not in self.ledgers:
                self.ledgers[sym] = IdLedger(int(ids["last_trade_id"]))
            if ids.get("last_update_id") is not None:
                self.last_u.setdefault(sym, int(ids["last_update_id"]))
        if saved.get("intent"):
            self._recover_intent(saved["intent"])
        for sym in cfg.symbols:
            if sym in self.ledgers or sym in self.last_u:
                self.client.seed(sym, None, self.last_u.get(sym), ledger=self.ledgers.get(sym))
            wm = read_json(cfg.watermark(sym)).get("closed_through_ms")
            self.closed_through[sym] = int(wm) if wm else (cfg.start_ms // MINUTE_MS) * MINUTE_MS

    # ------------------------------------------------------------------ intake
    def take(self) -> None:
        now_ms = int(time.time() * 1000)  # dates only what has no receive time of its own
        for kind, row in self.client.drain():
            if kind == "deadletter":
                sym = deadletter_bucket(row, self.cfg.symbols)
                self.c["unrouted_deadletters"] += sym == UNROUTED
                t = row.get("recv_time_ms") or now_ms
            else:
                sym, t = row.get("symbol"), row.get("event_time_ms")
                if sym not in self.cfg.symbols or type(t) is not int:  # the client lets none through
                    row = dead_letter(KIND_OF[kind], "unrouted_row", row.get("symbol"), None, None, row,
                                      recv_time_ms=now_ms)
                    kind, sym, t = "deadletter", UNROUTED, now_ms
                else:
                    recv = row.get("recv_time_ms") or t
                    self.event_wm[sym] = max(self.event_wm.get(sym, 0), min(t, recv))
                    if kind == "trade":
                        self.latency_ms.append(int(recv) - t)
            self.recv_wm = max(self.recv_wm, int(row.get("recv_time_ms") or now_ms))
            minute = (int(t) // MINUTE_MS) * MINUTE_MS
            if sym != UNROUTED and minute + MINUTE_MS <= self.closed_through.get(sym, 0):
                self.c["late_rows"] += 1  # landed by merge below, after its minute was handed over
            self.buffers[(sym, minute)][KIND_OF[kind]].append(row)

    # ------------------------------------------------------------------ landing
    def land(self, final: bool = False) -> None:
        for (sym, minute) in sorted(self.buffers):
            if sym == UNROUTED:
                complete = minute + MINUTE_MS <= self.recv_wm - self.cfg.lateness_ms
            else:
                limit = self.event_wm.get(sym, 0) - self.cfg.lateness_ms
                complete = minute + MINUTE_MS <= limit and self.client.open_gaps(sym) == 0
            late = sym != UNROUTED and minute + MINUTE_MS <= self.closed_through.get(sym, 0)
            if not (complete or late or final):
                continue
            if not self._write(sym, minute, self.buffers[(sym, minute)]):
                if final:
                    self._spill(sym, minute, self.buffers.pop((sym, minute)))
                continue  # a write failed: the rows stay buffered and the minute stays open
            del self.buffers[(sym, minute)]
            if sym != UNROUTED and complete and minute + MINUTE_MS > self.closed_through.get(sym, 0):
                self.closed_through[sym] = minute + MINUTE_MS
                self.c["minutes_landed"] += 1
                write_text_atomic(self.cfg.watermark(sym), json.dumps(
                    {"symbol": sym, "closed_through_ms": minute + MINUTE_MS, "ts": time.time()}))

    def _write(self, sym: str, minute: int, buf: dict[str, list[dict[str, Any]]]) -> bool:
        """Land one buffered minute; False (rows kept in `buf`) when a write failed."""
        self._save_state(intent={"symbol": sym, "minute": minute})
        w = self.writers[sym]
        ok = True
        for kind in ("trades", "book", "deadletter"):
            rows = buf[kind]
            if not rows:
                continue
            res = w.land_rows(kind, rows, fallback_ms=minute)
            self.c["unlandable_rows"] += len(res.deadletters)
            kept = [r for k, _, part, _ in res.failed if k == kind for r in part]
            buf[kind] = kept
            # refused rows whose dead letters could not be written: retried with the dead letters
            buf["deadletter"] = buf["deadletter"] + [r for k, _, part, _ in res.failed if k != kind for r in part]
            if res.failed:
                ok = False
                self.c["land_failures"] += len(res.failed)
            kept_ids = {id(r) for r in kept}
            landed = [r for r in rows if id(r) not in kept_ids] if kept else rows
            self._account(sym, kind, landed, res)
        self._save_state()
        if ok and sym != UNROUTED:
            self._preview(sym, minute)
        return ok

    def _account(self, sym: str, kind: str, rows: list[dict[str, Any]], res: Any) -> None:
        self.c["files_written"] += len(res.files)
        self.c["raw_files" if kind != "deadletter" else "deadletter_files"] += len(res.files)
        self.c[{"trades": "trades_landed", "book": "book_landed", "deadletter": "deadletter_landed"}[kind]] \
            += res.landed
        self.c["deadletter_landed"] += res.deadletters_landed
        if sym == UNROUTED:
            return
        refused = {d.get("key") for d in res.deadletters}
        if kind == "trades":
            ledger = self.ledgers.setdefault(sym, IdLedger())
            for r in rows:
                if str(r["agg_trade_id"]) not in refused:
                    ledger.add(r["agg_trade_id"])
        elif kind == "book":
            us = [r["last_update_id"] for r in rows if str(r.get("last_update_id")) not in refused]
            if us:
                self.last_u[sym] = max(self.last_u.get(sym, us[0]), max(us))
        else:
            for r in rows:  # a gap given up is accounted; one still open at stop is tried again
                g = gap_range(r)
                if g is not None and g[2]:
                    self.ledgers.setdefault(sym, IdLedger()).add_range(g[0], g[1])

    def _preview(self, sym: str, minute: int) -> None:
        date, hhmm = minute_parts(minute)
        w = self.writers[sym]
        try:
            frames = [pl.read_parquet(p) if (p := w.path(k, date, hhmm)).exists() else None for k in ("trades", "book")]
            if frames[0] is None or frames[1] is None:
                return
            pv = preview_frame(frames[0], frames[1])
            if pv is not None and pv.height and w.write_minute("preview", date, hhmm, pv) is not None:
                self.c["preview_files"] += 1
                self.c["files_written"] += 1
        except Exception:  # preview is derived data; a failure is counted, raw is already safe
            self.c["preview_errors"] += 1
        if self.latency_ms:
            lat = sorted(self.latency_ms)
            self.last_minute_latency_p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            self.latency_ms.clear()

    def _spill(self, sym: str, minute: int, buf: dict[str, list[dict[str, Any]]]) -> None:
        """Last resort at stop for rows the landing zone kept refusing: a JSON-lines file beside
        the state, so they are neither lost nor landed as if fine (counted in `spilled_rows`)."""
        path = self.state_path.with_name("unlanded.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            for kind, rows in buf.items():
                for r in rows:
                    fh.write(json.dumps({"bucket": sym, "minute": minute, "kind": kind, "row": r}, default=repr) + "\n")
                    self.c["spilled_rows"] += 1

    # ------------------------------------------------------------------ restart state
    def _recover_intent(self, intent: dict[str, Any]) -> None:
        """A crash came between the intent and the state written after the minute: read back
        what of that minute reached the disk."""
        sym, minute = intent.get("symbol"), intent.get("minute")
        if sym not in self.cfg.symbols or type(minute) is not int:
            return
        date, hhmm = minute_parts(minute)
        w = self.writers[sym]
        try:
            if (p := w.path("trades", date, hhmm)).exists():
                ledger = self.ledgers.setdefault(sym, IdLedger())
                for tid in pl.read_parquet(p, columns=["agg_trade_id"])["agg_trade_id"].drop_nulls():
                    ledger.add(int(tid))
            if (p := w.path("book", date, hhmm)).exists():
                top = pl.read_parquet(p, columns=["last_update_id"])["last_update_id"].max()
                if top is not None:
                    self.last_u[sym] = max(self.last_u.get(sym, int(top)), int(top))  # type: ignore[arg-type]
            self.c["intent_recovered"] += 1
        except Exception:  # an unreadable file is quarantined by the next write of that minute
            pass

    def _save_state(self, intent: dict[str, Any] | None = None) -> None:
        write_text_atomic(self.state_path, json.dumps({
            "ledgers": {s: lg.to_json() for s, lg in self.ledgers.items()}, "last_update_id": self.last_u,
            "intent": intent, "totals": self.totals(), "ts": time.time()}))

    def totals(self) -> dict[str, int]:
        now = {**self.client.counters.as_dict(), **self.c}
        keys = set(now) | set(self.base)
        return {k: int(now.get(k, 0)) + self.base.get(k, 0) for k in keys}

    def counters(self) -> dict[str, Any]:
        return {**self.totals(), "open_gap_trades": self.client.open_gaps(),
                "queue_len": self.client.pending(), "latency_p99_ms": self.last_minute_latency_p99,
                "closed_through_ms": dict(self.closed_through), "gap_reports": self.client.gap_reports[-20:],
                "deadletter_by_reason": dict(self.client.deadletter_reasons.most_common(50)),
                "landed_prefix": {s: lg.prefix for s, lg in self.ledgers.items()},
                "bounds_in_use": self.client.bounds_in_use()}


async def run(cfg: WorkerConfig, stop: StopFlag) -> None:
    h = Harvester(cfg)
    beat = Heartbeat(cfg.heartbeat_path(NAME), NAME, cfg.heartbeat_s)
    astop = asyncio.Event()
    task = asyncio.create_task(h.client.run(astop))
    beat.beat(h.counters(), force=True)
    ready(NAME, cfg.ws_url)
    # Connection changes are beaten at once, and so is the first sign of data after one: the
    # supervisor and the fault watcher read recovery from these beats, not a second later.
    seen_connects, flow_mark = h.counters()["connects"], None
    while not stop.is_set():
        await asyncio.sleep(0.25)
        h.take()
        h.land()
        counters = h.counters()
        changed = counters["connects"] != seen_connects
        flowing = flow_mark is not None and counters["messages"] > flow_mark
        beat.beat(counters, force=changed or flowing)
        if changed:
            seen_connects, flow_mark = counters["connects"], counters["messages"]
        elif flowing:
            flow_mark = None
    astop.set()
    await asyncio.wait_for(task, 15)
    h.take()
    h.land(final=True)
    beat.beat(h.counters(), force=True)


def main() -> None:
    stop = StopFlag()
    cfg = load_config()
    Path(cfg.data_root).mkdir(parents=True, exist_ok=True)
    asyncio.run(run(cfg, stop))


if __name__ == "__main__":
    main()
