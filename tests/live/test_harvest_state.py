"""The harvester's resume state: the set of trade ids already in the stream, as ranges."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alpha_assets.live.workers.harvest_state import IdRanges, SymbolState


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=150))
def test_ranges_hold_exactly_the_ids_added(ids: list[int]) -> None:
    r = IdRanges()
    for i in ids:
        r.add(i)
    assert all((i in r) == (i in set(ids)) for i in range(-1, 202))
    ranges = r.ranges()
    assert all(a <= b for a, b in ranges) and all(b + 1 < c for (_, b), (c, _) in zip(ranges, ranges[1:], strict=False))
    assert r.max == (max(ids) if ids else None)


def test_resume_point_is_below_the_first_hole_and_the_state_round_trips() -> None:
    s = SymbolState(seq=42, last_update_id=9)
    for i in [*range(100, 110), *range(115, 120)]:
        s.ids.add(i)
    assert s.resume_trade_id() == 109  # 110..114 are missing: the client backfills them after a restart
    back = SymbolState.loads(s.dumps())
    assert back.ids.ranges() == [[100, 109], [115, 119]] and back.seq == 42 and back.last_update_id == 9
    s.ids.add(110), s.ids.add(111), s.ids.add(112), s.ids.add(113), s.ids.add(114)
    assert s.ids.ranges() == [[100, 119]] and s.resume_trade_id() == 119
