"""The fault_injection job as users launch it: one SIGKILL of the signal worker on a short soak.
The asset's checks (gates and the WARN target) and its metadata come from the real run."""

import json
from pathlib import Path

import dagster as dg
import pytest

from alpha_assets.definitions import defs


@pytest.mark.slow
def test_fault_injection_job_reports_timeline_and_checks(data_root: Path, instance: dg.DagsterInstance) -> None:
    config = {"ops": {"fault_injection_report": {"config": {
        "faults": [{"kind": "kill_signal", "at_s": 6}], "minutes": 1.4, "grace_s": 60}}}}
    result = defs.resolve_job_def("fault_injection").execute_in_process(run_config=config, instance=instance)
    assert result.success
    [mat] = result.asset_materializations_for_node("fault_injection_report")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["passed"] is True and meta["faults"] == 1 and meta["recovered"] == 1
    # a kill is instantaneous: the healing time is the recovery time, and it is a real, bounded figure
    assert meta["heal_ms_max"] == meta["recovery_ms_max"] and 0 < meta["recovery_ms_max"] <= 12_000
    assert meta["signals_lost"] == 0 and meta["signals_doubled"] == 0 and meta["parity_max_rel_diff"] == 0.0
    assert "kill_signal" in meta["timeline"]

    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    gates = {"recovery_within_limit", "zero_lost", "zero_doubled", "parity_after_faults", "run_bounded"}
    assert gates | {"recovery_within_target"} == set(evals)
    assert all(evals[name].passed for name in gates), {n: evals[n].metadata for n in gates}
    target = evals["recovery_within_target"]
    assert target.severity == dg.AssetCheckSeverity.WARN
    assert target.passed == (meta["heal_ms_max"] <= 2_000)

    body = json.loads(Path(str(meta["artifact"])).read_text())
    assert body["run_id"] == result.run_id and body["timelines"][0]["kind"] == "kill_signal"
    assert body["timelines"][0]["heal_ms"] == body["timelines"][0]["recovery_ms"]
