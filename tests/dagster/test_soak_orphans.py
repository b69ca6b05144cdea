"""SIGKILL of the process running soak_60m's op (`dagster job execute`, in-process executor) leaves no
process of that run alive: workers, their warm spares, redis-server and the local Pushgateway get the
parent-death signal. Launched again on the same data root, soak_60m starts cleanly: a new run id, its
own Redis directory and streams, the signal worker not resuming the killed run's checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from alpha_assets.layout import Layout

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
WORKER, SPARE = "alpha_assets.live.workers.", "alpha_assets.live.standby"


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []


def _launch(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "dagster"), "job", "execute", "-j", "soak_60m", "-c", str(tmp_path / "soak.yaml"),
                             "-m", "alpha_assets.definitions"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run_up(dagster: subprocess.Popen, log: Path, runs: int) -> tuple[str, list[psutil.Process]]:
    """Wait for run number ``runs`` (in this data root) to have its workers ready and their five spares
    started; returns its run id and the process tree of the op's process."""
    deadline = time.monotonic() + 240

    def up() -> bool:
        ev = _events(log)
        starts = [i for i, e in enumerate(ev) if e["event"] == "RunStart"]
        if len(starts) < runs:
            return False
        mine = ev[starts[runs - 1]:]
        return (any(e["event"] == "Ready" and e["process"] == "harvest" for e in mine)
                and len({e["process"] for e in mine if e["event"] == "StandbyStart"}) == 5)

    while time.monotonic() < deadline and dagster.poll() is None and not up():
        time.sleep(0.2)
    assert up(), "the soak's workers and their spares never got ready"
    run_id = [e for e in _events(log) if e["event"] == "RunStart"][runs - 1]["run_id"]
    return run_id, psutil.Process(dagster.pid).children(recursive=True)


def _kill_and_check(dagster: subprocess.Popen, tree: list[psutil.Process]) -> None:
    names = [" ".join(p.cmdline()) for p in tree if _alive(p)]
    # the whole run is there: redis-server, the Pushgateway, the five workers and a spare of each
    assert any("redis-server" in n for n in names) and any("pushgateway" in n for n in names), names
    assert sum(WORKER in n and SPARE not in n for n in names) == 5, names
    assert sum(SPARE in n for n in names) == 5, names
    os.kill(dagster.pid, signal.SIGKILL)
    dagster.wait()
    gone_by = time.monotonic() + 10
    while time.monotonic() < gone_by and any(_alive(p) for p in tree):
        time.sleep(0.1)
    survivors = [" ".join(p.cmdline()) for p in tree if _alive(p)]
    assert survivors == [], survivors


@pytest.mark.slow
def test_sigkill_of_the_soak_op_process_leaves_no_process_and_a_relaunch_starts_cleanly(tmp_path: Path) -> None:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "home"),
           "ALPHA_DATA_ROOT": str(tmp_path / "var")}
    (tmp_path / "home").mkdir()
    (tmp_path / "soak.yaml").write_text("ops:\n  soak_report:\n    config:\n      minutes: 10\n")
    layout = Layout(tmp_path / "var")
    log = layout.log_dir("orchestrator") / "orchestrator.log"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_launch(tmp_path, env))
        first, tree = _run_up(procs[0], log, 1)
        _kill_and_check(procs[0], tree)
        procs.append(_launch(tmp_path, env))
        second, tree = _run_up(procs[1], log, 2)
        # a clean start, not a resume: a run id, Redis directory and streams of its own
        assert second != first
        assert layout.redis_dir(second) != layout.redis_dir(first) and layout.redis_dir(second).is_dir()
        # its signal worker (streams named by the run id) began afresh, not from the killed run's checkpoint
        beat = json.loads(layout.heartbeat("signal").read_text())
        assert beat["pid"] in {p.pid for p in tree} and beat["resumed"] is False
        _kill_and_check(procs[1], tree)
    finally:
        for proc in procs:
            proc.kill()
        for p in psutil.Process().children(recursive=True):  # nothing of ours may outlive the test
            if p.pid != os.getpid() and _alive(p) and str(tmp_path) in " ".join(p.cmdline()):
                p.kill()
