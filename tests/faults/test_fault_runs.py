"""End-to-end fault runs: real workers, exchange server on 127.0.0.1, real Pushgateway, SQLite, tmpfs.

Short form of the `fault_injection` job (CI): one ~80 s run with every fault kind, one ~80 s chaos
run with 20 seeded SIGKILLs of the signal worker, one short run with a fault that cannot be survived.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from alpha_assets.faults import adapters
from alpha_assets.faults.plan import (
    PROCESS_FAULTS,
    SHORT_RUN,
    FaultPlan,
    FaultSpec,
    chaos_plan,
    every_kind_plan,
)
from alpha_assets.faults.run import run_fault_injection

# In CI (CI=true) the real gateway is required: there the tests run and fail loudly without it.
needs_gateway = pytest.mark.skipif(
    shutil.which("prometheus-pushgateway") is None and shutil.which("pushgateway") is None
    and os.environ.get("CI", "").lower() != "true",
    reason="prometheus-pushgateway is not installed (apt-get install -y prometheus-pushgateway)")


def failed(report: Any) -> list[Any]:
    return [c for c in report.checks() if c.gate and not c.passed]


@pytest.mark.slow
@needs_gateway
def test_every_fault_kind_recovers_without_loss(tmp_path: Path) -> None:
    plan = every_kind_plan()
    rep = run_fault_injection(plan, tmp_path / "var", "fi_all_kinds", SHORT_RUN)
    assert not failed(rep), failed(rep)
    by_kind = {t.kind: t for t in rep.timelines}
    assert set(by_kind) == {f.kind for f in plan.faults}
    for kind, t in by_kind.items():
        assert t.injected_at is not None and t.detected_at is not None and t.detected_at >= t.injected_at, kind
        assert 0 < t.recovery_ms <= 12_000, kind
        if kind in PROCESS_FAULTS:  # the supervisor saw the exit, restarted, got ready, then healthy
            assert t.restart_ms is not None and t.injected_at < t.restarted_at <= t.ready_at <= t.health_green_at
            assert [e["event"] for e in t.events][:2] == ["FaultInjected", "Fault"]
        else:  # the timed faults were undone before the recovery was declared
            assert t.cleared_at is None or t.cleared_at <= t.health_green_at, kind
    acc = rep.accounting
    assert acc is not None and sum(s.expected_signals for s in acc.symbols) > 0
    assert (acc.trades_lost, acc.signals_lost, acc.signals_doubled) == (0, 0, 0)
    assert acc.parity_max_rel_diff == 0.0
    # the spool is a normal directory again and the database is writable (no fault left in force)
    assert not any(Path(line.split()[1]) == adapters.spool_dir(tmp_path / "var").resolve()
                   for line in Path("/proc/mounts").read_text().splitlines())
    body = json.loads(Path(rep.artifact).read_text())
    assert body["passed"] is True and body["run_id"] == "fi_all_kinds"
    assert {c["name"] for c in body["checks"]} >= {"trades_lost", "signals_lost", "signals_doubled", "sink_parity"}
    assert len(body["timelines"]) == 8 and body["figures"]["recovery_ms_max"] == max(t.recovery_ms for t in rep.timelines)


@pytest.mark.slow
@needs_gateway
def test_chaos_twenty_sigkills_of_the_signal_worker(tmp_path: Path) -> None:
    plan = chaos_plan("kill_signal", 20, 4, 66, seed=2026, min_gap_s=2.5)
    rep = run_fault_injection(plan, tmp_path / "var", "fi_chaos", SHORT_RUN)
    assert not failed(rep), failed(rep)
    assert len(rep.timelines) == 20 and all(t.recovery_ms is not None and t.skipped is None for t in rep.timelines)
    assert rep.soak_figures["restarts_total"] >= 20
    acc = rep.accounting
    assert acc is not None and sum(s.expected_signals for s in acc.symbols) > 0
    assert (acc.trades_lost, acc.signals_lost, acc.signals_doubled, acc.signals_phantom) == (0, 0, 0, 0)
    assert acc.parity_max_rel_diff == 0.0


@pytest.mark.slow
def test_unsurvivable_fault_fails_a_check_with_a_reason_within_the_deadline(tmp_path: Path) -> None:
    plan = FaultPlan(faults=[FaultSpec(kind="kill_signal", at_s=4)])
    # no restart budget: the signal worker is degraded for good
    rep = run_fault_injection(plan, tmp_path / "var", "fi_fatal", {"minutes": 0.3, "restart_backoff_s": ()},
                              grace_s=20)
    assert not rep.passed and rep.duration_s <= rep.deadline_s
    check = next(c for c in rep.checks() if c.name == "recovery_ms[f000_kill_signal]")
    assert not check.passed and check.value is None and "degraded" in check.reason
    assert rep.timelines[0].degraded


def test_a_hung_soak_is_cut_at_the_hard_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hung_soak(*_args: Any, **_kw: Any) -> None:  # a soak that ignores every stop request
        release.wait(120)

    monkeypatch.setattr(adapters, "run_soak", hung_soak)
    plan = FaultPlan(faults=[FaultSpec(kind="kill_signal", at_s=1)])
    try:
        rep = run_fault_injection(plan, tmp_path / "var", "fi_hung", {"minutes": 0.02, "pushgateway_url": "http://127.0.0.1:9"},
                                  grace_s=1.0)
    finally:
        release.set()
    assert rep.timed_out and not rep.passed and rep.duration_s < rep.deadline_s + 1.0 + 2.0
    check = next(c for c in rep.checks() if c.name == "run_ended_within_deadline")
    assert not check.passed and "did not stop" in check.reason
    assert Path(rep.artifact).exists()
