"""Broker worker: tails published signals → pre-trade/risk → MockExecutor → execution outbox.

JSONL/dual sinks: every ready file ``runtime/ready/signal/<SYM>/signals_*.jsonl`` once, in name
order. SQLite sink: rows with ``seq`` above the last routed one. Prices come from the landed book
of the same minutes. The outbox is keyed on (client_order_id, event), so re-routing a file after
a restart doubles nothing; the set of routed files is checkpointed after each file.

    python -m alpha_assets.live.workers.broker
"""

from __future__ import annotations

import json
import time
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
from alpha_assets.market.landing import partition_dir
from alpha_assets.reports.atomic import write_text_atomic
from alpha_assets.sinks.readers import read_sqlite_signals
from alpha_assets.sinks.schema import SIGNAL_SCHEMA
from executors.batch import RouteConfig, Router
from executors.outbox import Outbox

NAME = "broker"


def landed_book(data_root: Path, symbol: str, lo_ms: int, hi_ms: int) -> pl.DataFrame | None:
    frames = []
    for minute in range((lo_ms // MINUTE_MS - 1) * MINUTE_MS, hi_ms + 1, MINUTE_MS):
        date, hhmm = minute_parts(minute)
        p = partition_dir(data_root, "raw", date, symbol) / f"book_{hhmm}.parquet"
        if p.exists():
            frames.append(pl.read_parquet(p))
    return pl.concat(frames, how="vertical_relaxed") if frames else None


class Broker:
    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.runtime = cfg.runtime_dir
        self.ckpt = cfg.checkpoint_dir() / "broker.json"
        saved = read_json(self.ckpt)
        self.done: set[str] = set(saved.get("files", []))
        self.last_seq: dict[str, int] = {k: int(v) for k, v in saved.get("last_seq", {}).items()}
        self.outbox = Outbox(self.runtime)
        # One router for the whole run: kill switch, loss limits and idempotency memory carry across
        # minutes as they would in one batch (a router per file would reset the risk state each minute).
        self.router = Router("mock", RouteConfig(), cfg.run_id, outbox=self.outbox)
        self.c: dict[str, Any] = {"files_routed": 0, "signals_in": 0, "orders": 0, "filled": 0, "rejected": 0,
                                  "buy": 0, "sell": 0, "errors": 0, "last_error": "", "paper": cfg.paper}

    def _route(self, symbol: str, signals: pl.DataFrame) -> None:
        self.c["signals_in"] += signals.height
        if signals.height == 0:
            return
        book = landed_book(self.cfg.data_root, symbol, int(signals["ts_ms"].min()), int(signals["ts_ms"].max()))
        if book is None:
            book = pl.DataFrame(schema={"symbol": pl.Utf8, "event_time_ms": pl.Int64, "bid_px_1": pl.Float64,
                                        "ask_px_1": pl.Float64})
        orders = self.router.route(signals, book)
        self.c["orders"] += orders.height
        self.c["filled"] += orders.filter(pl.col("status") == "filled").height
        self.c["rejected"] += orders.filter(pl.col("status") == "rejected").height
        self.c["buy"] += orders.filter(pl.col("side") == "BUY").height
        self.c["sell"] += orders.filter(pl.col("side") == "SELL").height

    def poll(self) -> bool:
        if self.cfg.sink == "sqlite":
            return self._poll_sqlite()
        base = self.runtime / "ready" / "signal"
        files = sorted(p for s in self.cfg.symbols for p in (base / s).glob("signals_*.jsonl"))
        new = [p for p in files if p.name + "@" + p.parent.name not in self.done]
        for p in new:
            sig = pl.read_ndjson(p, schema=SIGNAL_SCHEMA) if p.stat().st_size else pl.DataFrame(schema=SIGNAL_SCHEMA)
            sig = sig.filter(pl.col("run_id") == self.cfg.run_id)
            self._route(p.parent.name, sig)
            self.done.add(p.name + "@" + p.parent.name)
            self.c["files_routed"] += 1
            self._save()
        return bool(new)

    def _poll_sqlite(self) -> bool:
        db = self.runtime / "signals.db"
        if not db.exists():
            return False
        moved = False
        for s in self.cfg.symbols:
            sig = read_sqlite_signals(db, run_id=self.cfg.run_id, symbol=s)
            sig = sig.filter(pl.col("seq") > self.last_seq.get(s, -1))
            if sig.height:
                self._route(s, sig)
                self.last_seq[s] = int(sig["seq"].max())
                moved = True
        if moved:
            self._save()
        return moved

    def _save(self) -> None:
        self.outbox.flush()
        write_text_atomic(self.ckpt, json.dumps({"files": sorted(self.done), "last_seq": self.last_seq,
                                                 "ts": time.time()}))


def run(cfg: WorkerConfig, stop: StopFlag) -> None:
    b = Broker(cfg)
    beat = Heartbeat(cfg.heartbeat_path(NAME), NAME, cfg.heartbeat_s)
    beat.beat(b.c, force=True)
    ready(NAME, f"paper={cfg.paper}")
    while not stop.is_set():
        try:
            moved = b.poll()
        except Exception as exc:  # a bad file is counted and retried, the worker keeps routing the rest
            b.c["errors"] += 1
            b.c["last_error"] = f"{type(exc).__name__}: {exc}"
            moved = False
        beat.beat(b.c)
        if not moved:
            stop.event.wait(cfg.poll_s)
    b.outbox.close()
    beat.beat(b.c, force=True)


def main() -> None:
    stop = StopFlag()
    run(load_config(), stop)


if __name__ == "__main__":
    main()
