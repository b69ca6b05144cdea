"""The fault_injection job as users launch it, from the CLI: a plan the system cannot survive ends with
failed checks, a reason naming the fault, and exit code 1 within its deadline (CI gates on it)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_unsurvivable_fault_fails_the_run_with_its_reason(tmp_path: Path) -> None:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "home"),
           "ALPHA_DATA_ROOT": str(tmp_path / "var")}
    (tmp_path / "home").mkdir()
    config = tmp_path / "faults.yaml"
    # no crash-loop back-off step: the first kill is restarted at once (it was ready), the second one,
    # right after, is a crash loop with nothing left: the signal worker is degraded for good
    # (at 30 s, well after the workers are ready even on a busy machine, so the kills are two events)
    config.write_text("ops:\n  fault_injection_report:\n    config:\n      minutes: 1.0\n      grace_s: 60\n"
                      "      restart_backoff_s: []\n      faults:\n"
                      "        - {kind: kill_signal, at_s: 30}\n        - {kind: kill_signal, at_s: 33}\n")
    started = time.monotonic()
    run = subprocess.run([str(BIN / "dagster"), "job", "execute", "-j", "fault_injection", "-c", str(config),
                          "-m", "alpha_assets.definitions"], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    took = time.monotonic() - started
    assert run.returncode == 1, run.stderr[-3000:]
    assert "fault_injection acceptance failed" in run.stderr + run.stdout
    [artifact] = list((tmp_path / "var" / "artifacts").glob("fault_injection_*.json"))
    body = json.loads(artifact.read_text())
    assert body["passed"] is False and body["duration_s"] <= body["deadline_s"] and took < body["deadline_s"] + 120
    bad = {c["name"]: c for c in body["checks"] if c["gate"] and not c["passed"]}
    check = bad["recovery_ms[f001_kill_signal]"]
    assert check["value"] is None and "degraded" in check["reason"]
    # nothing lost all the same: the drain runs the degraded worker once to take in what it missed
    assert body["accounting"]["signals_lost"] == 0 and body["accounting"]["trades_lost"] == 0
