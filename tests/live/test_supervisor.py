"""Supervisor with real child processes: order, readiness, back-off, degraded, reverse stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from alpha_assets.live.probes import FileAppears, LogKeyword, SqliteOpenable
from alpha_assets.live.process import ProcessSpec, RestartPolicy, child_environment
from alpha_assets.live.supervisor import Supervisor, recoveries

FAST = RestartPolicy(backoff_s=(0.3, 0.8), ready_timeout_s=10, crash_loop_window_s=5)


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


LOOP = "import time\nprint('Server started', flush=True)\nwhile True: time.sleep(0.05)"


def test_start_order_parallel_ready_and_reverse_stop(tmp_path: Path) -> None:
    marker = tmp_path / "ready_file.json"
    db = tmp_path / "signals.db"
    specs = [
        ProcessSpec("harvest", py(LOOP), ready_probe=LogKeyword("Server started"), restart_policy=FAST),
        ProcessSpec("signal", py(f"import sqlite3,time\ntime.sleep(0.3)\nc=sqlite3.connect({str(db)!r})\n"
                                 "c.execute('create table signals(x)');c.commit()\nwhile True: time.sleep(0.05)"),
                    ready_probe=SqliteOpenable(db, "signals"), restart_policy=FAST),
        ProcessSpec("broker", py(f"import time,pathlib\ntime.sleep(0.2)\npathlib.Path({str(marker)!r}).write_text('{{}}')"
                                 "\nwhile True: time.sleep(0.05)"),
                    ready_probe=FileAppears(tmp_path, "ready_*.json"), restart_policy=FAST),
        ProcessSpec("report", py(LOOP), ready_probe=LogKeyword("Server started"), restart_policy=FAST),
    ]
    sup = Supervisor(specs, tmp_path, health_interval_s=0.2, stop_grace_s=2)
    try:
        sup.start_all()
        ready = sup.wait_ready(timeout_s=20)
        assert ready == {"harvest": True, "signal": True, "broker": True, "report": True}
        sup.run(0.7)
    finally:
        order = sup.graceful_shutdown()
    assert [e["process"] for e in sup.events("Start")] == ["harvest", "signal", "broker", "report"]
    assert order == ["report", "broker", "signal", "harvest"]
    assert [e["process"] for e in sup.events("Stop")] == order
    assert all(not c.alive() for c in sup.children.values())
    st = sup.status()
    assert all(s["restarts"] == 0 and s["max_rss_mb"] > 1 and s["max_open_files"] >= 3 for s in st.values())
    assert all(len(s["health_history"]) >= 2 and s["health_history"][-1]["ok"] for s in st.values())
    log = [json.loads(line) for line in (tmp_path / "logs/orchestrator/orchestrator.log").read_text().splitlines()]
    assert {"Start", "Ready", "Health", "Stop"} <= {r["event"] for r in log}
    assert "Server started" in (tmp_path / "logs/harvest/stdout.log").read_text()


def test_bounded_restart_with_backoff_then_degraded(tmp_path: Path) -> None:
    # ready for 0.5 s (the supervisor sees it ready), then it dies: every time
    crash = py("print('Server started', flush=True)\nimport sys,time\ntime.sleep(0.5)\nsys.exit(3)")
    specs = [ProcessSpec("signal", crash, ready_probe=LogKeyword("Server started"), restart_policy=FAST),
             ProcessSpec("report", py(LOOP), ready_probe=LogKeyword("Server started"), restart_policy=FAST)]
    sup = Supervisor(specs, tmp_path, health_interval_s=0.5, stop_grace_s=2)
    try:
        sup.start_all()
        deadline = time.monotonic() + 60  # condition-based: until the policy gives up (seconds when idle)
        while sup.children["signal"].state != "degraded" and time.monotonic() < deadline:
            sup.run(0.5)
        assert sup.children["report"].alive()  # the degraded one does not take the others down
    finally:
        sup.graceful_shutdown()
    st = sup.status()["signal"]
    # ready → died: restarted at once; died again within the crash-loop window: 0.3 s, 0.8 s, then degraded
    assert st["restarts"] == 3 and st["spawns"] == 4 and st["state"] == "stopped"
    assert st["exit_codes"] == [3, 3, 3, 3]
    exits, restarts = sup.events("Exit", "signal"), sup.events("Restart", "signal")
    assert len(exits) == 4 and len(restarts) == 3
    scheduled = sup.events("RestartScheduled", "signal")
    assert [e["backoff_s"] for e in scheduled] == [0.0, *FAST.backoff_s]
    assert [e["crash_loop"] for e in scheduled] == [False, True, True]
    for exit_ev, restart_ev, backoff in zip(exits, restarts, (0.0, *FAST.backoff_s), strict=False):
        assert restart_ev["t_rel_s"] - exit_ev["t_rel_s"] >= backoff - 0.05
    assert len(sup.events("Degraded", "signal")) == 1
    assert any(a["reason"] == "degraded" for a in sup.alerts)


def test_kill_restart_timeline_and_health_green(tmp_path: Path) -> None:
    spec = ProcessSpec("signal", py(LOOP), ready_probe=LogKeyword("Server started"), restart_policy=FAST)
    sup = Supervisor([spec], tmp_path, health_interval_s=5, stop_grace_s=2)
    try:
        sup.start_all()
        sup.wait_ready(timeout_s=10)
        sup.run(3.0, hooks=[(0.3, lambda s: s.signal_child("signal", signal.SIGKILL))])
    finally:
        sup.graceful_shutdown()
    kinds = [e["event"] for e in sup.timeline if e["process"] == "signal" and e["event"] != "Health"]
    assert kinds[:2] == ["Start", "Ready"]
    i = kinds.index("Fault")
    assert kinds[i:i + 5] == ["Fault", "Exit", "RestartScheduled", "Restart", "Ready"]
    assert "HealthGreen" in kinds[i:]
    assert sup.events("Exit", "signal")[0]["returncode"] == -signal.SIGKILL
    (rec,) = recoveries(sup.timeline)
    assert rec["process"] == "signal" and rec["signal"] == "SIGKILL"
    assert 0 <= rec["detect_ms"] <= rec["restart_ms"] <= rec["ready_ms"] <= rec["recovery_ms"]
    # it was ready: restarted at once, not after the crash-loop back-off
    assert sup.events("RestartScheduled", "signal")[0]["backoff_s"] == 0.0
    assert sup.events("RestartScheduled", "signal")[0]["crash_loop"] is False


def test_sigterm_ignored_gets_sigkill_after_grace(tmp_path: Path) -> None:
    stubborn = py("import signal,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "print('Server started', flush=True)\nwhile True: time.sleep(0.05)")
    sup = Supervisor([ProcessSpec("broker", stubborn, ready_probe=LogKeyword("Server started"))],
                     tmp_path, stop_grace_s=0.5)
    sup.start_all()
    assert sup.wait_ready(timeout_s=10) == {"broker": True}
    t = time.monotonic()
    sup.graceful_shutdown()
    assert time.monotonic() - t < 5
    assert sup.events("Kill", "broker") and sup.events("Stop", "broker")[0]["returncode"] == -signal.SIGKILL


def test_ready_timeout_restarts(tmp_path: Path) -> None:
    policy = RestartPolicy(backoff_s=(0.2,), ready_timeout_s=0.5)
    sup = Supervisor([ProcessSpec("harvest", py("import time\nwhile True: time.sleep(0.05)"),
                                  ready_probe=LogKeyword("never printed"), restart_policy=policy)],
                     tmp_path, stop_grace_s=1)
    try:
        sup.start_all()
        sup.run(2.5)
    finally:
        sup.graceful_shutdown()
    assert len(sup.events("Restart", "harvest")) == 1
    assert sup.status()["harvest"]["state"] == "stopped"
    assert len(sup.events("Degraded", "harvest")) == 1
    assert [a["reason"] for a in sup.alerts].count("ready timeout") == 2


def test_child_environment_is_whitelisted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "x")
    env = child_environment({"V13_SINK": "jsonl", "RUN_ID": "r1"})
    assert "SECRET_TOKEN" not in env and env["V13_SINK"] == "jsonl" and "PATH" in env
    with pytest.raises(ValueError, match="not whitelisted"):
        ProcessSpec("x", ["true"], env={"SECRET_TOKEN": "x"})
    dump = tmp_path / "env.json"
    code = f"import json,os\nopen({str(dump)!r},'w').write(json.dumps(dict(os.environ)))\nprint('Server started',flush=True)\nimport time\nwhile True: time.sleep(0.05)"
    sup = Supervisor([ProcessSpec("report", py(code), env={"PAPER_ENABLE": "1"},
                                  ready_probe=LogKeyword("Server started"))], tmp_path, stop_grace_s=1)
    sup.start_all()
    sup.wait_ready(timeout_s=10)
    sup.graceful_shutdown()
    child_env = json.loads(dump.read_text())
    assert child_env["PAPER_ENABLE"] == "1" and "SECRET_TOKEN" not in child_env
    assert set(child_env) <= set(os.environ) | {"PAPER_ENABLE", "PYTHONUNBUFFERED", "LC_CTYPE"}


def test_crash_loop_window_decides_between_at_once_and_back_off(tmp_path: Path) -> None:
    # two kills 2 s apart: outside a 1 s window both restart at once; inside a 5 s window the second
    # is a crash loop (back-off 0.2 s), and with no step left the worker is degraded
    def kill(s: Supervisor) -> None:
        s.signal_child("signal", signal.SIGKILL)

    def run(p: RestartPolicy) -> Supervisor:
        sup = Supervisor([ProcessSpec("signal", py(LOOP), ready_probe=LogKeyword("Server started"), restart_policy=p)],
                         tmp_path / str(p.crash_loop_window_s), health_interval_s=0.2, stop_grace_s=2)
        try:
            sup.start_all()
            sup.wait_ready(timeout_s=10)
            sup.run(4.5, hooks=[(0.3, kill), (2.3, kill)])
        finally:
            sup.graceful_shutdown()
        return sup

    apart = run(RestartPolicy(backoff_s=(0.2,), ready_timeout_s=10, crash_loop_window_s=1.0))
    assert [e["backoff_s"] for e in apart.events("RestartScheduled", "signal")] == [0.0, 0.0]
    assert apart.status()["signal"]["restarts"] == 2 and not apart.events("Degraded", "signal")
    looping = run(RestartPolicy(backoff_s=(0.2,), ready_timeout_s=10, crash_loop_window_s=5.0))
    assert [e["backoff_s"] for e in looping.events("RestartScheduled", "signal")] == [0.0, 0.2]
    three = run(RestartPolicy(backoff_s=(), ready_timeout_s=10, crash_loop_window_s=5.0))
    assert len(three.events("Degraded", "signal")) == 1 and three.status()["signal"]["restarts"] == 1


def test_children_die_with_the_process_that_started_them(tmp_path: Path) -> None:
    """SIGKILL of the supervising process: its children get the parent-death signal (no orphans)."""
    import psutil

    code = ("import sys,time\nfrom alpha_assets.live.process import ProcessSpec\n"
            "from alpha_assets.live.supervisor import Supervisor\nfrom alpha_assets.live.probes import LogKeyword\n"
            f"loop={LOOP!r}\n"
            "sup=Supervisor([ProcessSpec(n,[sys.executable,'-c',loop],ready_probe=LogKeyword('Server started')) "
            f"for n in ('harvest','signal')],{str(tmp_path)!r})\n"
            "sup.start_all();sup.wait_ready(10);print('pids',*[c.pid for c in sup.children.values()],flush=True)\n"
            "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids), line
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


FAKE_WORKER = ("import os,sys,time\n"
               "def main():\n"
               "    print('Server started', os.getpid(), sys.argv, flush=True)\n"
               "    while True: time.sleep(0.05)\n")


def test_restart_hands_over_to_the_warm_spare_under_the_same_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    from alpha_assets.live.standby import standby_cmd

    (tmp_path / "fake_worker.py").write_text(FAKE_WORKER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    # a crash-loop window longer than a spare's respawn interval (10 s): the second kill is inside it
    policy = RestartPolicy(backoff_s=(0.3, 0.8), ready_timeout_s=10, crash_loop_window_s=40)
    spec = ProcessSpec("signal", py("import fake_worker; fake_worker.main()"), ready_probe=LogKeyword("Server started"),
                       restart_policy=policy, standby_cmd=standby_cmd("fake_worker"))
    sup = Supervisor([spec], tmp_path, health_interval_s=5, stop_grace_s=2)

    def until(cond: object, what: str) -> None:
        deadline = time.monotonic() + 60
        while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
            sup.run(0.1)
        assert cond(), what  # type: ignore[operator]

    try:
        sup.start_all()
        assert sup.wait_ready(timeout_s=30) == {"signal": True}
        until(lambda: len(sup.events("StandbyStart")) == 1, "no spare was started once the worker was ready")
        spare = sup.events("StandbyStart")[0]["pid"]
        assert psutil.pid_exists(spare) and spare != sup.children["signal"].pid
        sup.signal_child("signal", signal.SIGKILL)
        until(lambda: sup.children["signal"].state == "ready" and sup.events("Restart"), "no restart")
        first = sup.events("Restart")[0]
        # the spare became the worker: same process, ready by its own keyword, restarted at once
        assert first["standby"] is True and first["pid"] == spare == sup.children["signal"].pid
        assert sup.events("RestartScheduled")[0]["backoff_s"] == 0.0
        until(lambda: len(sup.events("StandbyStart")) == 2, "no new spare after the handover")
        # dying again within the crash-loop window backs off as without a spare
        sup.signal_child("signal", signal.SIGKILL)
        until(lambda: len(sup.events("Restart")) == 2 and sup.children["signal"].state == "ready", "no 2nd restart")
        second, scheduled = sup.events("Restart")[1], sup.events("RestartScheduled")[1]
        assert scheduled["crash_loop"] is True and scheduled["backoff_s"] == policy.backoff_s[0]
        assert second["t_rel_s"] - sup.events("Exit")[1]["t_rel_s"] >= policy.backoff_s[0] - 0.05
        assert second["standby"] is True and second["pid"] == sup.events("StandbyStart")[1]["pid"]
        until(lambda: len(sup.events("StandbyStart")) == 3, "no spare after the second handover")
        last_spare = sup.events("StandbyStart")[2]["pid"]
    finally:
        sup.graceful_shutdown()
    log = (tmp_path / "logs/signal/stdout.log").read_text()
    assert log.count("Server started") == 3 and "['fake_worker']" in log  # argv as under `python -m`
    # stopping takes the spare too
    assert not psutil.pid_exists(last_spare) or psutil.Process(last_spare).status() == psutil.STATUS_ZOMBIE


def test_a_spare_that_dies_at_once_is_not_respawned_in_a_loop(tmp_path: Path) -> None:
    spec = ProcessSpec("signal", py(LOOP), ready_probe=LogKeyword("Server started"), restart_policy=FAST,
                       standby_cmd=py("import sys; sys.exit(1)"))
    sup = Supervisor([spec], tmp_path, health_interval_s=5, stop_grace_s=2)
    try:
        sup.start_all()
        assert sup.wait_ready(timeout_s=30) == {"signal": True}
        sup.run(3.0)
        assert len(sup.events("StandbyStart")) == 1  # one per RESPAWN_S (10 s), not one per poll
        sup.signal_child("signal", signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not sup.events("Restart") and time.monotonic() < deadline:
            sup.run(0.2)
        # the dead spare is not handed over: the restart starts the worker cold
        assert sup.events("Restart")[0]["standby"] is False
        assert sup.wait_ready(timeout_s=30) == {"signal": True}
    finally:
        sup.graceful_shutdown()
