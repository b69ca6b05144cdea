"""Harvest worker: WebSocket → validation/dedup/dead-letter → minute files in the landing zone.

A minute (of event time) is landed once the symbol's event-time watermark has passed its end by
``lateness_ms`` and no trade-id gap of the symbol is still being backfilled; then
``runtime/harvest/watermark_<SYM>.json`` advances (``closed_through_ms``), which is what the
signal worker waits for. On stop the open minutes are landed too (merge-on-write makes a later
completion safe) but the watermark only covers complete minutes. The last trade/update ids are
of what was *landed* are kept in ``runtime/harvest/<run_id>/state.json`` (with cumulative counters)
so a restarted harvester backfills (REST) everything after them, including what it had buffered.

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
from alpha_assets.market.landing import LandingWriter
from alpha_assets.market.schema import BOOK_SCHEMA, DEADLETTER_SCHEMA, TRADE_SCHEMA
from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig
from alpha_assets.reports.atomic import write_text_atomic

NAME = "harvest"


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
        self.buffers: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: {"trades": [], "book": [], "deadletter": []})
        self.event_wm: dict[str, int] = {}
        self.closed_through: dict[str, int] = {}
        self.c: dict[str, int] = dict.fromkeys(
            ("minutes_landed", "files_written", "raw_files", "preview_files", "deadletter_files", "trades_landed",
             "book_landed", "deadletter_landed", "late_rows", "preview_errors"), 0)
        self.latency_ms: list[int] = []
        self.last_minute_latency_p99 = 0
        saved = read_json(self.state_path)
        # Counters are cumulative over restarts of this run; a restart is itself a reconnect.
        self.base: dict[str, int] = {k: int(v) for k, v in saved.get("totals", {}).items()}
        self.resumed = bool(saved)
        if self.resumed:
            self.base["reconnect_count"] = self.base.get("reconnect_count", 0) + 1
            self.base["restarts_seen"] = self.base.get("restarts_seen", 0) + 1
        client_cfg = WsClientConfig(url=cfg.ws_url, rest_url=cfg.rest_url, read_timeout_s=cfg.read_timeout_s)
        self.client = MarketWsClient(client_cfg)
        # Seed the client with what is *landed* (durable), not with what was received: rows still
        # buffered when a harvester is killed are lost with it and must be backfilled after restart.
        self.landed_ids: dict[str, dict[str, int | None]] = saved.get("landed_ids", {})
        for sym, ids in self.landed_ids.items():
            if sym in self.writers:
                self.client.seed(sym, ids.get("last_trade_id"), ids.get("last_update_id"))
        for sym in cfg.symbols:
            wm = read_json(cfg.watermark(sym)).get("closed_through_ms")
            self.closed_through[sym] = int(wm) if wm else (cfg.start_ms // MINUTE_MS) * MINUTE_MS

    def take(self) -> None:
        for kind, row in self.client.drain():
            sym = row.get("symbol") or self.cfg.symbols[0]
            if sym not in self.writers:
                sym = self.cfg.symbols[0]
            t = row.get("event_time_ms")
            if t is None:
                t = int(time.time() * 1000)  # a dead letter without event time is dated by arrival
            minute = (int(t) // MINUTE_MS) * MINUTE_MS
            if kind != "deadletter":
                self.event_wm[sym] = max(self.event_wm.get(sym, 0), int(t))
                if kind == "trade" and row.get("recv_time_ms") is not None:
                    self.latency_ms.append(int(row["recv_time_ms"]) - int(t))
            if minute + MINUTE_MS <= self.closed_through.get(sym, 0):
                self.c["late_rows"] += 1  # landed by merge below, after its minute was handed over
            self.buffers[(sym, minute)]["trades" if kind == "trade" else kind].append(row)

    def land(self, final: bool = False) -> None:
        for (sym, minute) in sorted(self.buffers):
            limit = self.event_wm.get(sym, 0) - self.cfg.lateness_ms
            complete = minute + MINUTE_MS <= limit and self.client.open_gaps(sym) == 0
            late = minute + MINUTE_MS <= self.closed_through.get(sym, 0)
            if not (complete or late or final):
                continue
            self._write(sym, minute, self.buffers.pop((sym, minute)))
            if complete and minute + MINUTE_MS > self.closed_through.get(sym, 0):
                self.closed_through[sym] = minute + MINUTE_MS
                self.c["minutes_landed"] += 1
                write_text_atomic(self.cfg.watermark(sym), json.dumps(
                    {"symbol": sym, "closed_through_ms": minute + MINUTE_MS, "ts": time.time()}))
        self._save_state()

    def _write(self, sym: str, minute: int, buf: dict[str, list[dict[str, Any]]]) -> None:
        date, hhmm = minute_parts(minute)
        w = self.writers[sym]
        frames = {
            "trades": pl.DataFrame(buf["trades"], schema=TRADE_SCHEMA, orient="row"),
            "book": pl.DataFrame(buf["book"], schema=BOOK_SCHEMA, orient="row"),
            "deadletter": pl.DataFrame(buf["deadletter"], schema=DEADLETTER_SCHEMA, orient="row"),
        }
        ids = self.landed_ids.setdefault(sym, {"last_trade_id": None, "last_update_id": None})
        for kind, frame in frames.items():
            if frame.height and w.write_minute(kind, date, hhmm, frame) is not None:
                col = {"trades": ("last_trade_id", "agg_trade_id"), "book": ("last_update_id", "last_update_id")}.get(kind)
                if col is not None:
                    top = int(frame[col[1]].max())
                    ids[col[0]] = top if ids[col[0]] is None else max(ids[col[0]], top)
                self.c["files_written"] += 1
                self.c["raw_files" if kind != "deadletter" else "deadletter_files"] += 1
                self.c[{"trades": "trades_landed", "book": "book_landed", "deadletter": "deadletter_landed"}[kind]] \
                    += frame.height
        try:
            pv = preview_frame(frames["trades"], frames["book"])
        except Exception:  # preview is derived data; a failure is counted, raw is already safe
            self.c["preview_errors"] += 1
            pv = None
        if pv is not None and pv.height and w.write_minute("preview", date, hhmm, pv) is not None:
            self.c["preview_files"] += 1
            self.c["files_written"] += 1
        if self.latency_ms:
            lat = sorted(self.latency_ms)
            self.last_minute_latency_p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            self.latency_ms.clear()

    def _save_state(self) -> None:
        write_text_atomic(self.state_path, json.dumps({"landed_ids": self.landed_ids, "totals": self.totals(),
                                                       "ts": time.time()}))

    def totals(self) -> dict[str, int]:
        now = {**self.client.counters.as_dict(), **self.c}
        keys = set(now) | set(self.base)
        return {k: int(now.get(k, 0)) + self.base.get(k, 0) for k in keys}

    def counters(self) -> dict[str, Any]:
        return {**self.totals(), "open_gap_trades": self.client.open_gaps(),
                "queue_len": self.client.pending(), "latency_p99_ms": self.last_minute_latency_p99,
                "closed_through_ms": dict(self.closed_through), "gap_reports": self.client.gap_reports[-20:]}


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
