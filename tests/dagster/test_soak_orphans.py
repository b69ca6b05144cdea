"""SIGKILL of the process running soak_60m's op (`dagster job execute`, in-process executor) leaves no
process of that run alive: workers, redis-server and the local Pushgateway get the parent-death signal."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _harvest_ready(log: Path) -> bool:
    if not log.exists():
        return False
    return any(json.loads(line).get("event") == "Ready" and json.loads(line).get("process") == "harvest"
               for line in log.read_text().splitlines() if line.strip())


@pytest.mark.slow
def test_sigkill_of_the_soak_op_process_leaves_no_process_of_the_run(tmp_path: Path) -> None:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "home"),
           "ALPHA_DATA_ROOT": str(tmp_path / "var")}
    (tmp_path / "home").mkdir()
    config = tmp_path / "soak.yaml"
    config.write_text("ops:\n  soak_report:\n    config:\n      minutes: 10\n")
    dagster = subprocess.Popen([str(BIN / "dagster"), "job", "execute", "-j", "soak_60m", "-c", str(config),
                                "-m", "alpha_assets.definitions"], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "var" / "logs" / "orchestrator" / "orchestrator.log"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and dagster.poll() is None and not _harvest_ready(log):
            time.sleep(0.2)
        assert _harvest_ready(log), "the soak's workers never got ready"
        tree = psutil.Process(dagster.pid).children(recursive=True)
        names = {" ".join(p.cmdline()) for p in tree if _alive(p)}
        # the whole run is there: redis-server, the Pushgateway and the five workers
        assert any("redis-server" in n for n in names) and any("pushgateway" in n for n in names), names
        assert sum("alpha_assets.live.workers." in n for n in names) == 5, names
        os.kill(dagster.pid, signal.SIGKILL)
        dagster.wait()
        gone_by = time.monotonic() + 10
        while time.monotonic() < gone_by and any(_alive(p) for p in tree):
            time.sleep(0.1)
        survivors = [" ".join(p.cmdline()) for p in tree if _alive(p)]
        assert survivors == [], survivors
    finally:
        dagster.kill()
        for p in psutil.Process().children(recursive=True):  # nothing of ours may outlive the test
            if p.pid != os.getpid() and _alive(p) and str(tmp_path) in " ".join(p.cmdline()):
                p.kill()
