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
    assert {f.kind for f in every_kind_plan(120).faults} == kinds
    # a minute has no room for a second hit on the signal process beyond the crash-loop window
    assert {f.kind for f in every_kind_plan(60).faults} == kinds - {"terminate_signal"}
    assert "spool_full" not in {f.kind for f in every_kind_plan(skip=("spool_full",)).faults}


@pytest.mark.parametrize("run_s", [60.0, 120.0, 300.0, 3600.0])
def test_every_kind_plan_fits_every_run_length_from_a_minute(run_s: float) -> None:
    from alpha_assets.faults.plan import ALIGN_LEAD_S, SHORT_RUN
    from alpha_assets.faults.run import align_wait_s, default_soak

    plan = every_kind_plan(run_s)
    # the fault run it makes lasts run_s: the last fault still has its recovery limit before the end
    assert default_soak(plan, SHORT_RUN).minutes * 60 == pytest.approx(run_s)
    assert plan.last_end_s + plan.recovery_limit_s <= run_s
    # the signal process is hit twice only further apart than the crash-loop window: both restarts at once
    hits = [f.at_s for f in plan.faults if f.target == "signal" and f.kind in ("terminate_signal", "kill_signal")]
    assert len(hits) == (1 if run_s < 80 else 2) and (len(hits) == 1 or hits[1] - hits[0] > 30 + 10)
    # the run starts so that a minute close falls ALIGN_LEAD_S after the landing fault is armed
    landing = next(f for f in plan.faults if f.kind == "landing_disk_full")
    for now in (1_700_000_000.0, 1_700_000_017.3, 1_700_000_059.9):
        wait = align_wait_s(plan, now)
        phase = (now + wait + landing.at_s + ALIGN_LEAD_S) % 60
        assert 0 <= wait < 60 and min(phase, 60 - phase) < 1e-6
        # its minute close meets the lander restarted and the feed flowing again (not stalled)
        bite = landing.at_s + ALIGN_LEAD_S
        by_kind = {f.kind: f for f in plan.faults}
        assert by_kind["kill_lander"].at_s + 5 <= bite and by_kind["feed_stall"].ends_at_s + 3 <= bite
    with pytest.raises(ValueError, match="shortest run"):
        every_kind_plan(59.0)
