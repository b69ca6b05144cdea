"""soak_60m from the Dagster CLI (as users run it), then the batch graph on the partition it landed:
the live signal worker and the batch assets must produce the same rows."""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.sinks import read_jsonl_signals, read_sqlite_signals

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dagster"), *args, "-m", "alpha_assets.definitions"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_soak_from_cli_then_batch_graph_gives_the_same_signals(tmp_path: Path) -> None:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "home"),
           "ALPHA_DATA_ROOT": str(tmp_path / "var")}
    (tmp_path / "home").mkdir()
    config = tmp_path / "soak.yaml"
    config.write_text("ops:\n  soak_report:\n    config:\n      minutes: 1\n      export_interval_s: 2\n")
    soak = cli(["job", "execute", "-j", "soak_60m", "-c", str(config)], env)
    assert soak.returncode == 0, soak.stderr[-3000:]
    root = tmp_path / "var"
    [manifest_path] = list((root / "artifacts/run_logs").glob("run_manifest_*.json"))
    manifest = json.loads(manifest_path.read_text())
    run_id = manifest["run_id"]
    assert manifest["passed"] is True, manifest["checks"]
    assert manifest["figures"]["export_count"] >= 1 and manifest["figures"]["error_count"] == 0
    assert list(manifest["processes"]) == ["redis", "harvest", "lander", "signal", "broker", "report"]
    # drained: producers stop first, each consumer takes in everything before it exits
    assert manifest["shutdown_order"] == ["harvest", "lander", "signal", "broker", "report", "redis"]
    assert manifest["latency"]["signal"]["n"] == manifest["figures"]["signals_total"] > 0

    completes = sorted(root.glob("landing/raw/date=*/symbol=*/_COMPLETE"))
    assert completes, "the soak marks what it landed complete"
    runtime = root / "runtime"
    live = read_jsonl_signals(runtime, run_id=run_id)
    assert live.height > 0
    assert read_sqlite_signals(runtime / "signals.db", run_id=run_id).height == live.height

    for complete in completes:
        date = complete.parent.parent.name.removeprefix("date=")
        symbol = complete.parent.name.removeprefix("symbol=")
        batch_run = cli(["asset", "materialize", "--select", "harvest_raw,features,signals,parity_diff",
                         "--partition", f"{date}|{symbol}"], env)
        assert batch_run.returncode == 0, batch_run.stderr[-3000:]
        batch = pl.read_parquet(root / f"warehouse/signals/date={date}/symbol={symbol}/data.parquet")
        mine = live.filter(pl.col("symbol") == symbol)
        # Same keys, same values: only the run id differs.
        key = ["symbol", "seq"]
        assert mine.select(key).sort(key).equals(batch.select(key).sort(key))
        cols = [c for c in mine.columns if c != "run_id"]
        assert mine.select(cols).sort(key).equals(batch.select(cols).sort(key))
