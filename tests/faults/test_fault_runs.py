"""End-to-end fault runs: real workers, exchange server on 127.0.0.1, real Pushgateway, SQLite, tmpfs.

Short form of the `fault_injection` job (CI), under the soak's own restart policy: one 1.5 min run with
every fault kind, one ~1.5 min chaos run with seeded SIGKILLs across the workers and redis-server. The
unsurvivable plan runs through the Dagster job (tests/dagster/test_fault_job.py).
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
    CHAOS_KINDS,
    EVERY_KIND_RUN_S,
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


def failed(report: Any) -> list[str]:
    return [f"{c.name}: {c.value} ({c.reason})" for c in report.checks() if c.gate and not c.passed]


@pytest.mark.slow
@needs_gateway
def test_every_fault_kind_recovers_without_loss_under_the_production_policy(tmp_path: Path) -> None:
    plan = every_kind_plan(EVERY_KIND_RUN_S)
    rep = run_fault_injection(plan, tmp_path / "var", "fi_all_kinds", SHORT_RUN)
    print(rep.table())  # the recovery table, in the test log
    assert not failed(rep), failed(rep)
    # the soak's own policy ran: a ready worker that died was restarted at once (no crash-loop back-off)
    assert rep.soak_config["restart_backoff_s"] == [10.0, 30.0] and "restart at once" in rep.restart_policy
    by_kind = {t.kind: t for t in rep.timelines}
    assert set(by_kind) == {f.kind for f in plan.faults}
    for kind, t in by_kind.items():
        # noticed by the system (exit or a counter), then data flowing end to end again in both sinks
        assert t.detected_ms is not None and t.detected_ms >= 0, kind
        assert t.recovery_ms is not None and 0 < t.heal_ms <= 12_000, kind
        if kind in PROCESS_FAULTS:
            assert t.injected_at < t.restarted_at <= t.ready_at and t.restart_ms < 10_000, kind
            assert t.recovered_at >= t.ready_at, kind  # a process back is not yet data flowing
        else:  # each timed fault was undone before the recovery was declared
            assert t.cleared_at is None or t.cleared_at <= t.recovered_at, kind
    events = rep.soak_figures  # the system's own counters moved (the traces the detection read)
    assert events["restarts_total"] >= sum(1 for f in plan.faults if f.kind in PROCESS_FAULTS)
    acc = rep.accounting
    assert acc is not None and sum(s.expected_signals for s in acc.symbols) > 0
    assert (acc.trades_lost, acc.trades_doubled, acc.signals_lost, acc.signals_doubled) == (0, 0, 0, 0)
    assert acc.parity_max_rel_diff == 0.0
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    assert not any(m.startswith(str((tmp_path / "var").resolve())) for m in mounts)  # no fault left in force
    body = json.loads(Path(rep.artifact).read_text())
    assert body["passed"] is True and body["restart_policy"] == rep.restart_policy
    assert len(body["timelines"]) == len(plan.faults)


@pytest.mark.slow
@needs_gateway
def test_chaos_sigkills_across_workers_and_redis(tmp_path: Path) -> None:
    # bench/faults.py chaos runs 20; the test runs 6 across harvest, lander, signal, broker and redis-server
    plan = chaos_plan(CHAOS_KINDS, 6, 5, 55, seed=2026, min_gap_s=6, target_gap_s=36)
    rep = run_fault_injection(plan, tmp_path / "var", "fi_chaos", SHORT_RUN)
    assert not failed(rep), failed(rep)
    assert len(rep.timelines) == 6 and all(t.recovery_ms is not None for t in rep.timelines)
    assert len({t.target for t in rep.timelines}) >= 4
    acc = rep.accounting
    assert acc is not None and sum(s.expected_signals for s in acc.symbols) > 0
    assert (acc.trades_lost, acc.signals_lost, acc.signals_doubled, acc.signals_phantom) == (0, 0, 0, 0)
    assert acc.parity_max_rel_diff == 0.0


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
