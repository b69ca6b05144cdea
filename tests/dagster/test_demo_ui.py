"""The README's demo as users run it (`python -m alpha_assets.demo`, DAGSTER_HOME = the repository),
then the webserver's GraphQL as the UI reads it.

Shortened only in what it soaks: 2 minutes (the README's default) on the configured symbols.
While the soak runs, the test reads its progress observations from the instance.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from tests.live.conftest import free_port

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
TABLE_ASSETS = {"landing_zone", "harvest_raw", "harvest_preview", "features", "signals", "parity_diff",
                "mock_orders", "daily_summary", "daily_summary_rollup", "soak_report"}


def demo_env(root: Path) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(root), "DAGSTER_HOME": str(REPO),
            "ALPHA_DATA_ROOT": str(root / "var"), "PYTHONUNBUFFERED": "1"}


def repo_instance(root: Path) -> dg.DagsterInstance:
    """The instance of the repository's dagster.yaml for this data root (its storage follows the root)."""
    saved = os.environ.get("ALPHA_DATA_ROOT")
    os.environ["ALPHA_DATA_ROOT"] = str(root / "var")
    try:
        return dg.DagsterInstance.from_config(str(REPO))
    finally:
        os.environ["ALPHA_DATA_ROOT"] = saved or ""


def progress_seen_while_running(instance: dg.DagsterInstance) -> int:
    """Progress observations of soak_report from a soak_60m run that is still running; 0 if none runs."""
    runs = instance.get_runs(dg.RunsFilter(job_name="soak_60m", statuses=[dg.DagsterRunStatus.STARTED]))
    if not runs:
        return 0
    observed = instance.fetch_observations(dg.AssetKey("soak_report"), limit=100).records
    mine = [r for r in observed if r.run_id == runs[0].run_id
            and r.asset_observation is not None and "elapsed_s" in r.asset_observation.metadata]
    # Read the status again: the count only counts if the run was still going after the read.
    still = instance.get_run_by_id(runs[0].run_id)
    return len(mine) if still is not None and still.status == dg.DagsterRunStatus.STARTED else 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("demo")
    log = open(root / "demo.log", "w")
    proc = subprocess.Popen([str(BIN / "python"), "-m", "alpha_assets.demo", "--minutes", "2"], cwd=REPO,
                            env=demo_env(root), stdout=log, stderr=subprocess.STDOUT)
    instance = repo_instance(root)
    progress = 0
    try:
        deadline = time.monotonic() + 1200
        while proc.poll() is None and time.monotonic() < deadline:
            progress = max(progress, progress_seen_while_running(instance))
            time.sleep(2)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    finally:
        log.close()
    output = (root / "demo.log").read_text()
    assert proc.returncode == 0, output[-4000:]
    yield {"root": root, "instance": instance, "progress": progress, "output": output}
    instance.dispose()


@pytest.fixture(scope="module")
def graphql(demo: dict[str, Any]) -> Iterator[Any]:
    port = free_port()
    log = open(demo["root"] / "webserver.log", "w")
    server = subprocess.Popen([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w",
                               str(REPO / "workspace.yaml")], cwd=REPO, env=demo_env(demo["root"]),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (demo["root"] / "webserver.log").read_text()
            time.sleep(1)

        def query(text: str, variables: dict | None = None) -> dict:
            reply = httpx.post(f"{url}/graphql", json={"query": text, "variables": variables or {}}, timeout=60)
            body = reply.json()
            assert "errors" not in body, body["errors"]
            return body["data"]

        yield query
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.slow
def test_a_running_soak_reports_progress(demo: dict[str, Any]) -> None:
    assert demo["progress"] >= 2, demo["output"][-3000:]
    assert "soak minute 1." in demo["output"]  # the per-minute line, as the run log shows it


RUNS = """{ runsOrError { ... on Runs { results { runId pipelineName status pipelineSnapshotId
            repositoryOrigin { repositoryLocationName repositoryName } } } } }"""
JOB = """query($name: String!) { pipelineOrError(params: {pipelineName: $name, repositoryName: "__repository__",
            repositoryLocationName: "alpha_assets"}) { __typename ... on Pipeline { pipelineSnapshotId } } }"""


@pytest.mark.slow
def test_every_run_is_linked_to_its_job_and_current_snapshot(graphql: Any) -> None:
    runs = graphql(RUNS)["runsOrError"]["results"]
    jobs = {r["pipelineName"] for r in runs}
    assert {"soak_60m", "daily_pipeline", "daily_rollup"} <= jobs
    current = {j: graphql(JOB, {"name": j})["pipelineOrError"]["pipelineSnapshotId"] for j in jobs}
    for run in runs:
        assert run["status"] == "SUCCESS", run
        assert run["repositoryOrigin"] == {"repositoryLocationName": "alpha_assets",
                                           "repositoryName": "__repository__"}, run
        assert run["pipelineSnapshotId"] == current[run["pipelineName"]], run


ASSETS = """{ assetNodes { assetKey { path } kinds opVersion
              owners { __typename ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
              metadataEntries { label __typename ... on TableSchemaMetadataEntry { schema { columns { name } } } }
              assetMaterializations(limit: 1) { partition metadataEntries { label
                  ... on IntMetadataEntry { intValue } } } } }"""


@pytest.mark.slow
def test_every_asset_is_described_and_every_table_counts_its_rows(graphql: Any) -> None:
    nodes = {n["assetKey"]["path"][-1]: n for n in graphql(ASSETS)["assetNodes"]}
    assert TABLE_ASSETS | {"fault_injection_report"} <= set(nodes)
    for name, node in nodes.items():
        assert node["kinds"], name
        assert node["owners"], name
        assert node["opVersion"], name
        schemas = [e for e in node["metadataEntries"] if e["label"] == "dagster/column_schema"]
        assert schemas and schemas[0]["schema"]["columns"], name
    materialised = {name for name, node in nodes.items() if node["assetMaterializations"]}
    # The demo materialised the whole graph: live (soak, the landing zone it fed) and batch.
    assert TABLE_ASSETS <= materialised, TABLE_ASSETS - materialised
    for name in materialised & TABLE_ASSETS:
        entries = {e["label"]: e for e in nodes[name]["assetMaterializations"][0]["metadataEntries"]}
        assert "dagster/row_count" in entries, name
        assert entries["dagster/row_count"]["intValue"] >= 1, name
