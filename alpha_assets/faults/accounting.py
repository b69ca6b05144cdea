"""Loss accounting after a fault run, from the files the run left behind.

feed → landing: every trade id the exchange server produced inside the landed horizon (from the
first landed id to the last id of a minute the harvester closed) must be in the landing zone once.
landing → signals: every landed trade of the minutes the signal worker finished has one signal row
per sink, keyed (run_id, symbol, seq = agg_trade_id), except the trades the engine still holds
back at the end (``pending_trades`` of the signal heartbeat: released by the next book update).
sink parity: alpha_assets.sinks.parity.compare_sinks on the horizon both sinks have published.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel

from alpha_assets.faults import adapters
from alpha_assets.sinks.parity import compare_sinks
from alpha_assets.sinks.readers import jsonl_files, read_jsonl_signals, read_sqlite_signals

MINUTE_MS = 60_000


class SymbolAccount(BaseModel):
    symbol: str
    feed_trades: int  # produced by the exchange inside the landed horizon
    landed_trades: int
    trades_lost: int
    trades_doubled: int
    lost_trade_sample: list[int]
    signal_horizon_ms: int | None  # signals are accounted for trades before this event time
    expected_signals: int
    pending_trades: int
    signals_lost: dict[str, int]  # per sink
    signals_doubled: dict[str, int]
    signals_phantom: dict[str, int]  # signal rows without a landed trade


class Accounting(BaseModel):
    run_id: str
    symbols: list[SymbolAccount]
    trades_lost: int
    trades_doubled: int
    signals_lost: int
    signals_doubled: int
    signals_phantom: int
    parity_max_rel_diff: float | None
    parity_horizon_ms: int | None
    parity: dict[str, Any] | None
    notes: list[str]


def write_feed_log(server: Any, path: Path) -> Path:
    """Persist the exchange server's trade-id log so the accounting can be redone from files."""
    log = adapters.feed_log(server)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({s: [[i, t] for i, t in rows] for s, rows in log.items()}))
    return path


def read_feed_log(path: Path) -> dict[str, list[tuple[int, int]]]:
    raw = json.loads(Path(path).read_text())
    return {s: [(int(i), int(t)) for i, t in rows] for s, rows in raw.items()}


def landed_trades(data_root: Path, symbol: str) -> pl.DataFrame:
    files = sorted((Path(data_root) / "landing" / "raw").glob(f"date=*/symbol={symbol}/trades_*.parquet"))
    if not files:
        return pl.DataFrame(schema={"agg_trade_id": pl.Int64, "event_time_ms": pl.Int64})
    return pl.concat([pl.read_parquet(p, columns=["agg_trade_id", "event_time_ms"]) for p in files])


def _jsonl_raw_keys(runtime: Path, run_id: str, symbol: str) -> list[int]:
    """Every seq line by line (read_jsonl_signals may dedupe; doubles must show here)."""
    seqs: list[int] = []
    for p in jsonl_files(runtime, symbol):
        for line in p.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("run_id") == run_id:
                    seqs.append(int(row["seq"]))
    return seqs


def _jsonl_horizon(runtime: Path) -> int | None:
    """End (event time) of the last JSONL minute every symbol has published."""
    ends: dict[str, int] = {}
    for p in jsonl_files(runtime):
        stamp = p.stem.split("_", 1)[1].split(".")[0]  # signals_YYYYMMDD_HHMM[.N] (.N: late rows)
        t = dt.datetime.strptime(stamp, "%Y%m%d_%H%M").replace(tzinfo=dt.UTC)
        end = int(t.timestamp() * 1000) + MINUTE_MS
        ends[p.parent.name] = max(ends.get(p.parent.name, 0), end)
    return min(ends.values()) if ends else None


def account(data_root: Path, run_id: str, symbols: list[str], feed: dict[str, list[tuple[int, int]]],
            sinks: tuple[str, ...] = ("jsonl", "sqlite")) -> Accounting:
    data_root = Path(data_root)
    runtime = data_root / "runtime"
    beat = adapters.heartbeat(data_root, "signal")
    notes: list[str] = []
    frames: dict[str, pl.DataFrame] = {}
    if "sqlite" in sinks:
        frames["sqlite"] = read_sqlite_signals(adapters.signal_db(data_root), run_id=run_id)
    if "jsonl" in sinks:
        frames["jsonl"] = read_jsonl_signals(runtime, run_id=run_id)
    accounts: list[SymbolAccount] = []
    for sym in symbols:
        landed = landed_trades(data_root, sym)
        wm = adapters.watermark(data_root, run_id, sym)
        ids = landed["agg_trade_id"]
        closed_ids = landed.filter(pl.col("event_time_ms") < wm)["agg_trade_id"] if wm else ids.clear()
        produced = [i for i, _ in feed.get(sym, [])]
        lost_sample: list[int] = []
        feed_n = lost = 0
        if ids.len() and closed_ids.len():
            lo, hi = int(ids.min()), int(closed_ids.max())
            expected = {i for i in produced if lo <= i <= hi}
            missing = sorted(expected - set(ids.to_list()))
            feed_n, lost, lost_sample = len(expected), len(missing), missing[:20]
        elif produced:
            notes.append(f"{sym}: no closed landed minute; trades not accounted")
        doubled_t = ids.len() - ids.n_unique()
        horizon = (beat.get("next_minute_ms") or {}).get(sym)
        pending = int((beat.get("pending_trades") or {}).get(sym, 0) or 0)
        before = landed.filter(pl.col("event_time_ms") < horizon) if horizon else landed.clear()
        # the engine holds back the newest `pending` trades (released by the next book): not due yet
        due = before.sort("agg_trade_id").head(max(0, before.height - pending))
        expected_sig = set(due["agg_trade_id"].to_list())
        s_lost: dict[str, int] = {}
        s_doubled: dict[str, int] = {}
        s_phantom: dict[str, int] = {}
        for name, df in frames.items():
            seqs = df.filter(pl.col("symbol") == sym)["seq"].to_list()
            if name == "jsonl":
                raw = _jsonl_raw_keys(runtime, run_id, sym)
                s_doubled[name] = len(raw) - len(set(raw))
                seqs_set = set(raw)
                # JSONL publishes a minute once the next one is done: account only published minutes
                jh = _jsonl_horizon(runtime)
                exp = set(due.filter(pl.col("event_time_ms") < jh)["agg_trade_id"].to_list()) if jh else set()
                s_lost[name] = len(exp - seqs_set)
            else:
                s_doubled[name] = len(seqs) - len(set(seqs))
                seqs_set = set(seqs)
                s_lost[name] = len(expected_sig - seqs_set)
            s_phantom[name] = len(seqs_set - set(ids.to_list()))
        accounts.append(SymbolAccount(
            symbol=sym, feed_trades=feed_n, landed_trades=ids.len(), trades_lost=lost, trades_doubled=doubled_t,
            lost_trade_sample=lost_sample, signal_horizon_ms=horizon, expected_signals=len(expected_sig),
            pending_trades=pending, signals_lost=s_lost, signals_doubled=s_doubled, signals_phantom=s_phantom))
    parity = horizon_ms = None
    p_val: float | None = None
    if "jsonl" in frames and "sqlite" in frames:
        horizon_ms = _jsonl_horizon(runtime)
        if horizon_ms is not None:
            a = frames["jsonl"].filter(pl.col("ts_ms") < horizon_ms)
            b = frames["sqlite"].filter(pl.col("ts_ms") < horizon_ms)
            res = compare_sinks(a, b)
            p_val = res.max_rel_diff
            parity = {"total_jsonl": res.total_a, "total_sqlite": res.total_b, "only_in_jsonl": res.only_in_a,
                      "only_in_sqlite": res.only_in_b, "mismatched_rows": res.mismatched_rows,
                      "worst_figure": res.worst_figure, "max_rel_diff": res.max_rel_diff}
        else:
            notes.append("no JSONL minute published: parity not computed")
    return Accounting(
        run_id=run_id, symbols=accounts,
        trades_lost=sum(a.trades_lost for a in accounts), trades_doubled=sum(a.trades_doubled for a in accounts),
        signals_lost=sum(sum(a.signals_lost.values()) for a in accounts),
        signals_doubled=sum(sum(a.signals_doubled.values()) for a in accounts),
        signals_phantom=sum(sum(a.signals_phantom.values()) for a in accounts),
        parity_max_rel_diff=p_val, parity_horizon_ms=horizon_ms, parity=parity, notes=notes)

