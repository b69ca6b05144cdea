"""FaultPlan/FaultSpec validation and the seeded chaos plan."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alpha_assets.faults.plan import FaultPlan, FaultSpec, chaos_plan, every_kind_plan


def test_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="kind"):
        FaultSpec(kind="explode", at_s=1)
    with pytest.raises(ValidationError, match="at_s"):
        FaultSpec(kind="kill_signal", at_s=-1)
    with pytest.raises(ValidationError, match="duration_s is required"):
        FaultSpec(kind="feed_stall", at_s=1)
    with pytest.raises(ValidationError, match="duration_s is not allowed"):
        FaultSpec(kind="kill_signal", at_s=1, duration_s=2)
    with pytest.raises(ValidationError, match="duration_s"):
        FaultSpec(kind="sqlite_locked", at_s=1, duration_s=0)
    with pytest.raises(ValidationError, match="sorted by at_s"):
        FaultPlan(faults=[FaultSpec(kind="kill_signal", at_s=5), FaultSpec(kind="kill_signal", at_s=1)])
    with pytest.raises(ValidationError, match="faults"):
        FaultPlan(faults=[])
    with pytest.raises(ValidationError, match="recovery_target_s"):
        FaultPlan(faults=[FaultSpec(kind="feed_drop", at_s=1)], recovery_target_s=20)
    with pytest.raises(ValidationError, match="min_gap_s"):
        FaultPlan(faults=[FaultSpec(kind="spool_full", at_s=1, duration_s=3), FaultSpec(kind="feed_drop", at_s=5)],
                  min_gap_s=2)


def test_targets() -> None:
    assert FaultSpec(kind="terminate_signal", at_s=0).target == "signal"
    assert FaultSpec(kind="kill_harvest", at_s=0).target == "harvest"
    assert FaultSpec(kind="pushgateway_outage", at_s=0, duration_s=1).target == "pushgateway"
    assert FaultSpec(kind="sqlite_locked", at_s=3, duration_s=2).ends_at_s == 5


def test_chaos_plan_is_seeded_spaced_and_inside_the_window() -> None:
    a = chaos_plan("kill_signal", 20, 5, 70, seed=11, min_gap_s=2.5)
    b = chaos_plan("kill_signal", 20, 5, 70, seed=11, min_gap_s=2.5)
    c = chaos_plan("kill_signal", 20, 5, 70, seed=12, min_gap_s=2.5)
    ts = [f.at_s for f in a.faults]
    assert ts == [f.at_s for f in b.faults] and ts != [f.at_s for f in c.faults]
    assert len(ts) == 20 and 5 <= ts[0] and ts[-1] <= 70
    assert min(y - x for x, y in zip(ts, ts[1:], strict=False)) >= 2.5 - 1e-6
    with pytest.raises(ValueError, match="do not fit"):
        chaos_plan("kill_signal", 30, 0, 10, seed=1, min_gap_s=1)
    with pytest.raises(ValueError, match="needs a duration"):
        chaos_plan("feed_stall", 3, 0, 10, seed=1)


def test_chaos_across_targets_never_hits_one_process_within_the_gap() -> None:
    from alpha_assets.faults.plan import CHAOS_KINDS

    plan = chaos_plan(CHAOS_KINDS, 20, 5, 245, seed=2026, min_gap_s=6, target_gap_s=33)
    assert len({f.kind for f in plan.faults}) == len(CHAOS_KINDS)  # every worker and redis-server is hit
    last: dict[str, float] = {}
    for f in plan.faults:
        assert f.at_s - last.get(f.kind, -1e9) >= 33, f
        last[f.kind] = f.at_s
    with pytest.raises(ValueError, match="target_gap_s"):
        chaos_plan(("kill_signal",), 3, 0, 20, seed=1, min_gap_s=5, target_gap_s=30)


def test_every_kind_plan_reaches_each_kind_once_and_can_leave_some_out() -> None:
    from alpha_assets.faults.plan import FaultKind

    kinds = set(FaultKind.__args__) - {"kill_report"}  # the report worker holds no data path
    assert {f.kind for f in every_kind_plan().faults} == kinds
    assert "spool_full" not in {f.kind for f in every_kind_plan(skip=("spool_full",)).faults}
