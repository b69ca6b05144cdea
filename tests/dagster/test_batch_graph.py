"""The batch graph through Dagster: simulator and replay partitions, determinism, the parity gate."""

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from alpha_assets.signal_contract import PARITY_LIMIT
from tests.dagster.conftest import run

SIM = "2024-03-05|BTCUSDT"
REPLAY = "2024-08-08|ETHUSDT"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_simulated_partition_harvest_is_deterministic(resources, instance, data_root: Path) -> None:
    first = run("harvest_raw,harvest_preview", SIM, resources, instance)
    part = data_root / "warehouse/harvest_raw/date=2024-03-05/symbol=BTCUSDT"
    hashes = {p.name: digest(p) for p in sorted(part.glob("*.parquet"))}
    assert set(hashes) == {"trades.parquet", "book.parquet", "deadletters.parquet"}
    second = run("harvest_raw", SIM, resources, instance)
    assert {p.name: digest(p) for p in sorted(part.glob("*.parquet"))} == hashes
    checks = check_results(first)
    assert checks == {"rawtrades_contract": True, "rawbook_contract": True, "previewbars_contract": True}
    meta = first.asset_materializations_for_node("harvest_raw")[0].metadata
    assert meta["source"].value == "simulator"
    assert meta["book_snapshots"].value == 864_000
    assert meta["trades"].value > 30_000
    assert second.success


def test_replay_partition_through_parity_and_summary(resources, instance, data_root: Path) -> None:
    result = run("harvest_raw,harvest_preview,features,signals,parity_diff,mock_orders,daily_summary", REPLAY,
                 resources, instance)
    checks = check_results(result)
    assert checks["sink_parity"] is True
    assert all(checks[c] for c in ("rawtrades_contract", "rawbook_contract", "features_contract",
                                   "signals_contract", "orders_contract", "paritydiff_contract"))
    raw_meta = result.asset_materializations_for_node("harvest_raw")[0].metadata
    assert raw_meta["source"].value == "replay"
    parity_meta = result.asset_materializations_for_node("parity_diff")[0].metadata
    assert parity_meta["max_rel_diff"].value == 0.0
    assert parity_meta["rows_jsonl"].value == parity_meta["rows_sqlite"].value > 10_000
    sig_meta = result.asset_materializations_for_node("signals")[0].metadata
    assert sig_meta["total"].value == parity_meta["rows_jsonl"].value
    reports = list((data_root / "logs/report").glob("summary_*_ETHUSDT.md"))
    assert reports and "Daily summary" in reports[0].read_text()
    # The summary's figures, recomputed here from the warehouse tables with SQL.
    import json

    from alpha_assets.sql import connect

    summary = json.loads(reports[0].with_suffix(".json").read_text())
    con = connect(data_root)
    total, buys, strong, directional, confirmed = con.execute(
        "SELECT count(*), count(*) FILTER (signal_type IN ('buy', 'strong_buy')),"
        " count(*) FILTER (signal_type LIKE 'strong_%'), count(*) FILTER (signal_type <> 'neutral'),"
        " count(*) FILTER (confirm) FROM signals WHERE symbol = 'ETHUSDT'").fetchall()[0]
    orders, fills, rejects = con.execute(
        "SELECT count(*), count(*) FILTER (status = 'filled'), count(*) FILTER (status = 'rejected')"
        " FROM mock_orders WHERE symbol = 'ETHUSDT'").fetchall()[0]
    assert summary["total"] == total
    assert summary["buy_ratio"] == pytest.approx(buys / directional)
    assert summary["strong_ratio"] == pytest.approx(strong / directional)
    assert summary["confirm_ratio"] == pytest.approx(confirmed / total)
    assert (summary["orders"], summary["fills"], summary["rejects"]) == (orders, fills, rejects)
    assert summary["reject_rate"] == pytest.approx(rejects / orders if orders else 0.0)
    assert summary["parity_passed"] is True and summary["data_mode"] == "raw"


def sabotage_sqlite(data_root: Path, fraction: float) -> int:
    with sqlite3.connect(data_root / "runtime/signals.db") as con:
        total = con.execute("SELECT count(*) FROM signals").fetchall()[0][0]
        drop = max(1, int(total * fraction))
        con.execute("DELETE FROM signals WHERE seq IN (SELECT seq FROM signals ORDER BY seq LIMIT ?)", (drop,))
    return drop


def test_parity_check_blocks_downstream_when_a_sink_loses_one_percent(resources, instance, data_root: Path) -> None:
    run("harvest_raw,features,signals", REPLAY, resources, instance)
    sabotage_sqlite(data_root, 0.01)
    result = run("parity_diff,daily_summary,mock_orders", REPLAY, resources, instance, raise_on_error=False)
    checks = check_results(result)
    assert checks["sink_parity"] is False
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "sink_parity")
    assert evaluation.metadata["max_rel_diff"].value >= PARITY_LIMIT
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    materialized = {m.asset_key.path[-1] for m in result.get_asset_materialization_events()}
    assert "parity_diff" in materialized  # the checked asset itself is written
    assert "daily_summary" not in materialized  # …but nothing downstream of it runs
    assert not result.success


def test_parity_fails_when_both_sinks_are_empty_while_signals_has_rows(resources, instance, data_root: Path) -> None:
    run("harvest_raw,features,signals", REPLAY, resources, instance)
    with sqlite3.connect(data_root / "runtime/signals.db") as con:
        con.execute("DELETE FROM signals")
    for f in (data_root / "runtime/ready/signal").rglob("*.jsonl"):
        f.unlink()
    result = run("parity_diff", REPLAY, resources, instance, raise_on_error=False)
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "sink_parity")
    assert not evaluation.passed and evaluation.metadata["rows_signals"].value > 0
    assert "both sinks are empty" in evaluation.metadata["reason"].value


def test_parity_tolerates_a_tenth_of_a_percent(resources, instance, data_root: Path) -> None:
    run("harvest_raw,features,signals", REPLAY, resources, instance)
    sabotage_sqlite(data_root, 0.001)
    result = run("parity_diff", REPLAY, resources, instance)
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "sink_parity")
    assert evaluation.passed
    assert 0 < evaluation.metadata["max_rel_diff"].value < PARITY_LIMIT


def test_cli_exits_non_zero_when_parity_fails(tmp_path: Path) -> None:
    env = {"PATH": str(Path(sys.executable).parent), "DAGSTER_HOME": str(tmp_path / "home"),
           "ALPHA_DATA_ROOT": str(tmp_path / "var"), "HOME": str(tmp_path)}
    (tmp_path / "home").mkdir()
    cli = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "alpha_assets.definitions",
           "--partition", REPLAY]
    ok = subprocess.run([*cli, "--select", "harvest_raw,features,signals,parity_diff"], env=env,
                        capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    sabotage_sqlite(tmp_path / "var", 0.01)
    bad = subprocess.run([*cli, "--select", "parity_diff"], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], timeout=300)
    assert bad.returncode != 0
    assert "sink_parity" in bad.stdout + bad.stderr


def test_signals_of_a_partition_read_back_by_sql(resources, instance, data_root: Path) -> None:
    run("harvest_raw,features,signals", REPLAY, resources, instance)
    from alpha_assets.sql import connect

    con = connect(data_root)
    rows = con.execute("SELECT symbol, count(*) FROM signals GROUP BY 1").fetchall()
    stored = pl.read_parquet(data_root / "warehouse/signals/date=2024-08-08/symbol=ETHUSDT/data.parquet")
    assert rows == [("ETHUSDT", stored.height)]
