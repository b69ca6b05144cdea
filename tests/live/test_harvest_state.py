"""The harvester's resume state: the ledger of trade ids in the stream, and its recovery from the
entries written after it was saved."""

from __future__ import annotations

from alpha_assets.live import bus
from alpha_assets.live.workers.harvest_state import SymbolState
from alpha_assets.market.id_ledger import gap_deadletter


def entry(ms: int, seq: int, kind: bytes, body: dict) -> bus.Entry:
    return bus.make_id(ms, seq).encode(), bus.encode(kind, body)


def test_resume_point_is_the_contiguous_prefix_and_the_state_round_trips() -> None:
    s = SymbolState(seq=42, last_update_id=9)
    for i in [*range(100, 110), *range(115, 120)]:
        s.ledger.add(i)
    assert s.ledger.prefix == 109 and s.ledger.holes() == [(110, 114)]  # a restart backfills 110..114
    back = SymbolState.loads(s.dumps())
    assert back.ledger.to_json() == {"prefix": 109, "ranges": [[115, 119]]} and back.seq == 42
    assert back.last_update_id == 9


def test_a_state_saved_before_its_last_entries_is_brought_up_to_them() -> None:
    """The harvester died between its entries and its state: the tail of the streams completes it."""
    s = SymbolState(seq=10, md_ms=1_000, last_update_id=5)
    s.ledger.add(100)
    md = [entry(1_000, 10, bus.KIND_TRADE, {"agg_trade_id": 100}),  # already in the state
          entry(1_001, 11, bus.KIND_TRADE, {"agg_trade_id": 101}),
          entry(1_001, 12, bus.KIND_BOOK, {"last_update_id": 7}),
          entry(1_002, 13, bus.KIND_TRADE, {"agg_trade_id": 105})]
    given_up = gap_deadletter("BTCUSDT", 102, 103, stream="btcusdt@aggTrade", recv_time_ms=None)
    open_at_stop = gap_deadletter("BTCUSDT", 104, 104, stream="btcusdt@aggTrade", recv_time_ms=None,
                                  open_at_stop=True)
    dlq = [entry(1_002, 1, bus.KIND_DEAD, given_up), entry(1_003, 2, bus.KIND_DEAD, open_at_stop)]
    assert s.apply_tail(md, dlq) == 5
    assert (s.seq, s.md_ms, s.dseq, s.dlq_ms, s.last_update_id) == (13, 1_002, 2, 1_003, 7)
    # a given-up gap is accounted; one open at stop stays a hole the next life backfills
    assert s.ledger.prefix == 103 and s.ledger.holes() == [(104, 104)]
    assert s.apply_tail(md, dlq) == 0  # applying the same tail again changes nothing
