"""Supervisor with real child processes: order, readiness, back-off, degraded, reverse stop."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from alpha_assets.live.probes import FileAppears, LogKeyword, SqliteOpenable
from alpha_assets.live.process import ProcessSpec, RestartPolicy, child_environment
from alpha_assets.live.supervisor import Supervisor, recoveries

FAST = RestartPolicy(backoff_s=(0.3, 0.8), ready_timeout_s=10)


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
    crash = py("print('Server started', flush=True)\nimport sys,time\ntime.sleep(0.1)\nsys.exit(3)")
    specs = [ProcessSpec("signal", crash, ready_probe=LogKeyword("Server started"), restart_policy=FAST),
             ProcessSpec("report", py(LOOP), ready_probe=LogKeyword("Server started"), restart_policy=FAST)]
    sup = Supervisor(specs, tmp_path, health_interval_s=0.5, stop_grace_s=2)
    try:
        sup.start_all()
        sup.run(4.0)
        assert sup.children["report"].alive()  # the degraded one does not take the others down
    finally:
        sup.graceful_shutdown()
    st = sup.status()["signal"]
    assert st["restarts"] == 2 and st["spawns"] == 3 and st["state"] == "stopped"
    assert st["exit_codes"] == [3, 3, 3]
    exits, restarts = sup.events("Exit", "signal"), sup.events("Restart", "signal")
    assert len(exits) == 3 and len(restarts) == 2
    for exit_ev, restart_ev, backoff in zip(exits, restarts, FAST.backoff_s, strict=False):
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
    assert rec["restart_ms"] >= FAST.backoff_s[0] * 1000 - 50


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


def test_restart_budget_comes_back_after_a_stable_period(tmp_path: Path) -> None:
    # budget of one restart; 1 s healthy after a restart earns it back
    policy = RestartPolicy(backoff_s=(0.2,), ready_timeout_s=10, budget_reset_s=1.0)
    no_reset = RestartPolicy(backoff_s=(0.2,), ready_timeout_s=10, budget_reset_s=None)

    def kill(s: Supervisor) -> None:
        s.signal_child("signal", signal.SIGKILL)

    def run(p: RestartPolicy) -> Supervisor:
        sup = Supervisor([ProcessSpec("signal", py(LOOP), ready_probe=LogKeyword("Server started"), restart_policy=p)],
                         tmp_path / str(p.budget_reset_s), health_interval_s=0.2, stop_grace_s=2)
        try:
            sup.start_all()
            sup.wait_ready(timeout_s=10)
            sup.run(4.5, hooks=[(0.3, kill), (2.5, kill)])  # 2.2 s apart: > 0.2 s back-off + 1 s stable
        finally:
            sup.graceful_shutdown()
        return sup

    kept = run(policy)
    assert len(kept.events("RestartBudgetReset", "signal")) >= 1 and not kept.events("Degraded", "signal")
    st = kept.status()["signal"]
    assert st["restarts"] == 2 and st["spawns"] == 3  # the reported figure counts every restart
    assert [e["attempt"] for e in kept.events("Restart", "signal")] == [1, 1]

    spent = run(no_reset)  # same faults, no reset: the second kill exhausts the budget
    assert len(spent.events("Degraded", "signal")) == 1 and spent.status()["signal"]["restarts"] == 1
