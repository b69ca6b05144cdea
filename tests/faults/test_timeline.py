"""Timelines from recorded supervisor event lists (shape as written by Supervisor.event)."""

from __future__ import annotations

from alpha_assets.faults.timeline import fault_timelines

T = 1_700_000_000.0


def ev(dt: float, event: str, process: str = "", **kw: object) -> dict:
    return {"ts": T + dt, "t_rel_s": dt, "event": event, "process": process, **kw}


def test_process_fault_timeline() -> None:
    events = [
        ev(0.0, "Start", "signal", pid=1), ev(1.0, "Ready", "signal"), ev(2.0, "Health", "signal", ok=True),
        ev(10.0, "FaultInjected", "signal", fault_id="f000_kill_signal", fault_kind="kill_signal", at_s=10),
        ev(10.001, "Fault", "signal", pid=1, signal="SIGKILL", label="f000_kill_signal"),
        ev(10.1, "Exit", "harvest", returncode=0),  # another process: not this fault's
        ev(10.15, "Exit", "signal", returncode=-9), ev(10.16, "RestartScheduled", "signal"),
        ev(10.3, "Restart", "signal", pid=2), ev(11.2, "Ready", "signal"), ev(11.25, "Health", "signal", ok=True),
        ev(11.3, "HealthGreen", "signal"),
        ev(11.9, "FaultRecovered", "signal", fault_id="f000_kill_signal"),  # a new row in both sinks
        ev(20.0, "FaultInjected", "signal", fault_id="f001_kill_signal", fault_kind="kill_signal", at_s=20),
        ev(20.01, "FaultSkipped", "signal", fault_id="f001_kill_signal", reason="signal not running"),
    ]
    a, b = fault_timelines(list(reversed(events)))  # order of the input does not matter
    assert (a.injected_at, a.detected_at, a.restarted_at, a.ready_at, a.health_green_at) == (
        int(T * 1000) + 10_000, int(T * 1000) + 10_150, int(T * 1000) + 10_300, int(T * 1000) + 11_200,
        int(T * 1000) + 11_300)
    # recovery is data flowing again, not the process being healthy
    assert a.restart_ms == 300 and a.recovery_ms == 1900 and a.detected_ms == 150
    assert a.error is None and a.target == "signal"
    assert [e["event"] for e in a.events] == ["FaultInjected", "Fault", "Exit", "RestartScheduled", "Restart",
                                              "Ready", "HealthGreen", "FaultRecovered"]
    assert b.skipped == "signal not running" and b.recovery_ms is None


def test_unrecovered_and_degraded_and_failed_injection() -> None:
    events = [
        ev(5.0, "FaultInjected", "signal", fault_id="f000_kill_signal", fault_kind="kill_signal"),
        ev(5.1, "Exit", "signal", returncode=-9), ev(5.1, "Alert", "signal", reason="degraded"),
        ev(5.1, "Degraded", "signal"),
        ev(6.0, "FaultError", "harvest", fault_id="f001_feed_drop", fault_kind="feed_drop", reason="no server"),
        ev(7.0, "FaultInjected", "signal", fault_id="f002_sqlite_locked", fault_kind="sqlite_locked"),
        ev(7.1, "FaultDetected", "signal", fault_id="f002_sqlite_locked"),
        ev(9.0, "FaultCleared", "signal", fault_id="f002_sqlite_locked"),
        ev(9.5, "Stop", "signal"), ev(9.6, "FaultRecovered", "signal", fault_id="f002_sqlite_locked"),
    ]
    a, b, c = fault_timelines(events)
    assert a.degraded and a.recovery_ms is None and "degraded" in (a.error or "")
    assert b.kind == "feed_drop" and b.error == "no server" and b.injected_at is None
    # recovery reported after the run's Stop is not recovery
    assert c.detected_at is not None and c.cleared_at is not None and c.recovered_at is None
    assert "not flowing end to end again" in (c.error or "")


def test_a_fault_the_system_did_not_notice_fails() -> None:
    fid = "f000_spool_full"
    events = [ev(3.0, "FaultInjected", "signal", fault_id=fid, fault_kind="spool_full"),
              ev(7.0, "FaultCleared", "signal", fault_id=fid), ev(7.5, "FaultRecovered", "signal", fault_id=fid)]
    (t,) = fault_timelines(events)
    assert t.heal_ms == 500 and t.detected_at is None and "noticed nothing" in (t.error or "")


def test_non_process_fault_recovery_after_clear() -> None:
    events = [
        ev(3.0, "FaultInjected", "pushgateway", fault_id="f000_pushgateway_outage", fault_kind="pushgateway_outage"),
        ev(3.4, "FaultDetected", "pushgateway", fault_id="f000_pushgateway_outage"),
        ev(5.0, "FaultCleared", "pushgateway", fault_id="f000_pushgateway_outage"),
        ev(5.6, "FaultRecovered", "pushgateway", fault_id="f000_pushgateway_outage"),
    ]
    (t,) = fault_timelines(events)
    assert t.recovery_ms == 2600 and t.recovery_after_clear_ms == 600 and t.restart_ms is None
    assert t.heal_ms == 600  # the checks judge the 0.6 s after the outage, not its 2 s length
    assert t.detected_at - t.injected_at == 400


def test_recovery_checks_judge_timed_faults_from_their_end() -> None:
    from alpha_assets.faults.plan import FaultPlan, FaultSpec
    from alpha_assets.faults.run import FaultReport

    def report(heal_after_clear_s: float) -> FaultReport:
        fid = "f000_sqlite_locked"
        events = [
            ev(3.0, "FaultInjected", "signal", fault_id=fid, fault_kind="sqlite_locked"),
            ev(3.5, "FaultDetected", "signal", fault_id=fid),
            ev(18.0, "FaultCleared", "signal", fault_id=fid),
            ev(18.0 + heal_after_clear_s, "FaultRecovered", "signal", fault_id=fid),
        ]
        plan = FaultPlan(faults=[FaultSpec(kind="sqlite_locked", at_s=3, duration_s=15)])
        return FaultReport(run_id="r", plan=plan, soak_config={}, started_at=0, ended_at=30, duration_s=30,
                           deadline_s=90, timed_out=False, aborted=None, timelines=fault_timelines(events),
                           accounting=None, injector_errors=[], soak_checks={}, soak_figures={})

    quick = {c.name: c for c in report(0.8).checks()}
    # 15.8 s after injection, but healthy 0.8 s after the lock was released: within limit and target
    assert quick["recovery_ms[f000_sqlite_locked]"].passed and quick["recovery_ms[f000_sqlite_locked]"].value == 800
    assert quick["recovery_target_ms"].passed and report(0.8).timelines[0].recovery_ms == 15_800
    slow = {c.name: c for c in report(13.0).checks()}
    assert not slow["recovery_ms[f000_sqlite_locked]"].passed
    assert "after the fault cleared" in slow["recovery_ms[f000_sqlite_locked]"].reason
    assert not slow["recovery_target_ms"].passed and not slow["recovery_target_ms"].gate
