"""The scenarios whose outputs are pinned in `outputs.json` (see digests.py for how it was made)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from alpha_assets.sinks import SinkConfig, make_sink
from alpha_assets.sinks.synthetic import synthetic_signals
from tests.golden.digests import jsonl_digests, report_digests, sqlite_digest, warehouse_digests

SIM_PARTITION = "2024-03-05|BTCUSDT"
SIM_TRADES_PER_DAY = 40_000
CHUNKINGS = (1, 7, 50, 997, 1_000_000)  # live-sized writes up to one batch write


def edge_frame() -> pl.DataFrame:
    """Synthetic signals over several minutes and two symbols, with awkward values mixed in."""
    df = synthetic_signals(3_000, seed=23, run_id="golden-run")
    n = df.height
    specials = [float("nan"), float("inf"), -0.0, 1e300, 5e-324, 1e16, 1e-7, 123456789012.5, float("-inf")]
    texts = ["a\nb", "t\tx", "\x01ctl", "é", "😀 emoji", '"quoted"', "back\\slash", "\u2028sep", "plain"]
    idx = list(range(5, n, 331))[: len(specials)]
    score = df["score"].to_list()
    guard = df["guard_reason"].to_list()
    for k, i in enumerate(idx):
        score[i] = specials[k]
        guard[i] = texts[k]
    return df.with_columns(pl.Series("score", score, dtype=pl.Float64), pl.Series("guard_reason", guard))


def write_chunked(runtime: Path, frame: pl.DataFrame, chunk: int, **cfg: Any) -> dict[str, Any]:
    sink = make_sink(SinkConfig(kind="dual", fsync="never", **cfg), runtime)
    for part in frame.iter_slices(chunk):
        sink.write(part)
    sink.close()
    return sink.counters()


def sink_outputs(runtime: Path, frame: pl.DataFrame) -> dict[str, Any]:
    return {"jsonl": jsonl_digests(runtime), "sqlite": sqlite_digest(runtime / "signals.db")}


def sink_scenarios(tmp: Path) -> dict[str, Any]:
    """Every chunking with flush every write (live validation policy) and with the default batch policy,
    a restart with an overlapping replay, and a late record for a published minute."""
    frame = edge_frame()
    out: dict[str, Any] = {}
    for chunk in CHUNKINGS:
        for policy, cfg in (("flush0", {"flush_ms": 0}), ("batch", {"batch_n": 500, "flush_ms": 500})):
            rt = tmp / f"chunk{chunk}_{policy}"
            write_chunked(rt, frame, chunk, **cfg)
            out[f"chunk{chunk}_{policy}"] = sink_outputs(rt, frame)
    rt = tmp / "replay"
    write_chunked(rt, frame.head(2_000), 300, flush_ms=0)
    counters = write_chunked(rt, frame.slice(1_500), 250, flush_ms=0)  # restart, overlapping replay
    out["replay"] = {**sink_outputs(rt, frame), "duplicates": counters["sqlite"]["duplicates_skipped"],
                     "spool_duplicates": counters["jsonl"]["spool_duplicates_skipped"]}
    rt = tmp / "late"
    late = frame.filter(pl.col("symbol") == "BTCUSDT")
    first_minute = int(late["ts_ms"].min()) // 60_000
    early = late.filter(pl.col("ts_ms") // 60_000 == first_minute)
    write_chunked(rt, pl.concat([early.head(early.height - 3), late.filter(pl.col("ts_ms") // 60_000 > first_minute)]),
                  10_000, flush_ms=0)
    write_chunked(rt, early.tail(3), 1, flush_ms=0)  # a late minute: numbered ready file
    out["late"] = sink_outputs(rt, frame)
    return out


def graph_outputs(root: Path, run_ids: list[str]) -> dict[str, Any]:
    return {
        "warehouse": warehouse_digests(root, run_ids),
        "jsonl": jsonl_digests(root / "runtime", run_ids),
        "sqlite": sqlite_digest(root / "runtime" / "signals.db", run_ids),
        "reports": report_digests(root, run_ids),
    }


def graph_scenario(root: Path) -> dict[str, Any]:
    """The whole batch graph for one simulated partition (a light day) through `materialize`."""
    import dagster as dg

    from alpha_assets.definitions import ASSETS, default_resources
    from alpha_assets.resources.market_source import MarketSource

    res = default_resources(root)
    res["market_source"] = MarketSource(kind="simulator", seed=7, sim_trades_per_day=SIM_TRADES_PER_DAY)
    names = ["harvest_raw", "harvest_preview", "features", "signals", "parity_diff", "mock_orders", "daily_summary"]
    with dg.instance_for_test() as instance:
        result = dg.materialize(ASSETS, selection=[dg.AssetKey(n) for n in names], partition_key=SIM_PARTITION,
                                resources=res, instance=instance)
    assert result.success
    return graph_outputs(root, [result.run_id])
