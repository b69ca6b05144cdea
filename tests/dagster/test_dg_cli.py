"""The dg commands of the README: `dg check defs` and `dg launch --job soak_60m` (1-minute config),
with DAGSTER_HOME = the repository, whose instance storage follows the data root."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tests.dagster.test_demo_ui import REPO, demo_env, repo_instance

BIN = Path(sys.executable).parent


def dg_cli(args: list[str], root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dg"), *args], cwd=REPO, env=demo_env(root), capture_output=True, text=True,
                          timeout=900)


def test_dg_check_defs_passes(tmp_path: Path) -> None:
    done = dg_cli(["check", "defs"], tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


@pytest.mark.slow
def test_dg_launch_soak_one_minute(tmp_path: Path) -> None:
    done = dg_cli(["launch", "--job", "soak_60m", "--config", "examples/soak_1m.yaml"], tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    # Instance storage went to the data root given, not to the repository.
    assert list((tmp_path / "var" / "dagster" / "storage").rglob("runs.db"))
    instance = repo_instance(tmp_path)
    [run] = instance.get_runs(dg.RunsFilter(job_name="soak_60m"))
    assert run.status == dg.DagsterRunStatus.SUCCESS
    [mat] = instance.fetch_materializations(dg.AssetKey("soak_report"), limit=5).records
    assert mat.run_id == run.run_id
    assert mat.asset_materialization.metadata["soak_passed"].value is True
    progress = [r for r in instance.fetch_observations(dg.AssetKey("soak_report"), limit=50).records
                if r.run_id == run.run_id and "elapsed_s" in r.asset_observation.metadata]
    assert progress, "the soak reports its progress as observations of soak_report"
    # Lineage from the live path: each partition the soak landed is a materialisation of landing_zone.
    landed = mat.asset_materialization.metadata["landed_partitions"].value
    zone = instance.fetch_materializations(dg.AssetKey("landing_zone"), limit=10).records
    assert landed and sorted(r.partition_key for r in zone) == sorted(landed)
    assert all(r.asset_materialization.metadata["dagster/row_count"].value > 0 for r in zone)
    instance.dispose()
