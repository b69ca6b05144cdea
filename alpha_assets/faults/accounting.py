"""Loss accounting after a fault run, from the files the run left behind.

The horizon comes from what the feed sent and what landed, never from a worker's own heartbeat:
feed → landing: every trade id the exchange produced from the first landed id up to the last id it
sent (``sent_through``) must be in the landing zone once (a trade the harvester missed and did not
backfill is lost here). landing → signals: the soak drains at the end (the feed stops first, every
consumer takes in everything, the engine evaluates the trades it held back), so every landed trade
has one signal row per sink, keyed (run_id, symbol, seq = agg_trade_id).
sink parity: alpha_assets.sinks.parity.compare_sinks on everything both sinks hold for the run.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel

from alpha_assets.faults import adapters
from alpha_assets.figures import whole
from alpha_assets.layout import Layout
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
    sent_through: int | None  # the last trade id the exchange sent
    expected_signals: int
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


FeedLog = dict[str, tuple[list[tuple[int, int]], int | None]]  # symbol → ((id, event ms) produced, sent through)


def write_feed_log(server: Any, path: Path) -> Path:
    """Persist the exchange server's trade-id log so the accounting can be redone from files."""
    log = adapters.feed_log(server)
    sent = {s: max(ids) if ids else None for s, ids in server.sent_trade_ids.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({s: {"trades": [[i, t] for i, t in rows], "sent_through": sent.get(s)}
                                for s, rows in log.items()}))
    return path


def read_feed_log(path: Path) -> FeedLog:
    raw = json.loads(Path(path).read_text())
    out: FeedLog = {}
    for s, body in raw.items():
        rows = [(int(i), int(t)) for i, t in body["trades"]]
        out[s] = (rows, None if body.get("sent_through") is None else int(body["sent_through"]))
    return out


def landed_trades(data_root: Path, symbol: str) -> pl.DataFrame:
    files = sorted(Layout(Path(data_root)).landing_zone("raw").glob(f"date=*/symbol={symbol}/trades_*.parquet"))
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


def account(data_root: Path, run_id: str, symbols: list[str], feed: FeedLog,
            sinks: tuple[str, ...] = ("jsonl", "sqlite")) -> Accounting:
    data_root = Path(data_root)
    runtime = Layout(data_root).runtime_dir
    notes: list[str] = []
    frames: dict[str, pl.DataFrame] = {}
    if "sqlite" in sinks:
        frames["sqlite"] = read_sqlite_signals(adapters.signal_db(data_root), run_id=run_id)
    if "jsonl" in sinks:
        frames["jsonl"] = read_jsonl_signals(runtime, run_id=run_id)
    accounts: list[SymbolAccount] = []
    for sym in symbols:
        landed = landed_trades(data_root, sym)
        ids = landed["agg_trade_id"]
        produced_rows, sent_through = feed.get(sym, ([], None))
        produced = [i for i, _ in produced_rows]
        lost_sample: list[int] = []
        feed_n = lost = 0
        if ids.len() and sent_through is not None:
            lo = whole(ids.min())
            expected = {i for i in produced if lo <= i <= sent_through}
            missing = sorted(expected - set(ids.to_list()))
            feed_n, lost, lost_sample = len(expected), len(missing), missing[:20]
        elif produced:
            notes.append(f"{sym}: nothing landed or nothing sent; trades not accounted")
        doubled_t = ids.len() - ids.n_unique()
        expected_sig = set(ids.to_list())  # the drain evaluated every landed trade
        s_lost: dict[str, int] = {}
        s_doubled: dict[str, int] = {}
        s_phantom: dict[str, int] = {}
        for name, df in frames.items():
            if name == "jsonl":
                raw = _jsonl_raw_keys(runtime, run_id, sym)
            else:
                raw = df.filter(pl.col("symbol") == sym)["seq"].to_list()
            s_doubled[name] = len(raw) - len(set(raw))
            s_lost[name] = len(expected_sig - set(raw))
            s_phantom[name] = len(set(raw) - expected_sig)
        accounts.append(SymbolAccount(
            symbol=sym, feed_trades=feed_n, landed_trades=ids.len(), trades_lost=lost, trades_doubled=doubled_t,
            lost_trade_sample=lost_sample, sent_through=sent_through, expected_signals=len(expected_sig),
            signals_lost=s_lost, signals_doubled=s_doubled, signals_phantom=s_phantom))
    parity = horizon_ms = None
    p_val: float | None = None
    if "jsonl" in frames and "sqlite" in frames:
        res = compare_sinks(frames["jsonl"], frames["sqlite"])
        p_val = res.max_rel_diff
        horizon_ms = _jsonl_horizon(runtime)
        parity = {"total_jsonl": res.total_a, "total_sqlite": res.total_b, "only_in_jsonl": res.only_in_a,
                  "only_in_sqlite": res.only_in_b, "mismatched_rows": res.mismatched_rows,
                  "worst_figure": res.worst_figure, "max_rel_diff": res.max_rel_diff}
    return Accounting(
        run_id=run_id, symbols=accounts,
        trades_lost=sum(a.trades_lost for a in accounts), trades_doubled=sum(a.trades_doubled for a in accounts),
        signals_lost=sum(sum(a.signals_lost.values()) for a in accounts),
        signals_doubled=sum(sum(a.signals_doubled.values()) for a in accounts),
        signals_phantom=sum(sum(a.signals_phantom.values()) for a in accounts),
        parity_max_rel_diff=p_val, parity_horizon_ms=horizon_ms, parity=parity, notes=notes)

