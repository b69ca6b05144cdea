"""The two book joins on hand-built streams, the arrival order's rules, the row-dict form of the
live step, and the configuration that picks the join."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from alpha_assets.engine import (
    SIGNAL_COLUMNS,
    EngineConfigError,
    EngineState,
    compute_features,
    compute_signals,
    flush,
    initial_state,
    resolve_config,
    step,
    step_rows,
)
from alpha_assets.engine.arrival import arrival_order, frame_keys
from alpha_assets.engine.pipeline import BOOK_SCHEMA, TRADE_SCHEMA, normalise
from alpha_assets.engine.signal_rows import signal_schema
from alpha_assets.engine.synthetic import synthetic_day, with_ingest_seq
from alpha_assets.market.schema import BOOK_SCHEMA as RAW_BOOK
from alpha_assets.market.schema import INGEST_SEQ
from alpha_assets.market.schema import TRADE_SCHEMA as RAW_TRADES

T0 = 1_704_585_600_000  # 2024-01-07 00:00 UTC
ARRIVAL = resolve_config({"book_join": "arrival"})


def book_row(t: int, recv: int, uid: int, bid_qty: float, seq: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"symbol": "BTCUSDT", "event_time_ms": t, "recv_time_ms": recv, "first_update_id": uid,
                           "last_update_id": uid, "prev_last_update_id": uid - 1, INGEST_SEQ: seq}
    for k in range(1, 6):
        row |= {f"bid_px_{k}": 100.0 - k, f"bid_qty_{k}": bid_qty, f"ask_px_{k}": 100.0 + k, f"ask_qty_{k}": 1.0}
    return row


def trade_row(t: int, recv: int, tid: int, seq: int | None = None) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "event_time_ms": t, "trade_time_ms": t, "recv_time_ms": recv, "agg_trade_id": tid,
            "price": 100.5, "qty": 1.0, "is_buyer_maker": False, INGEST_SEQ: seq}


def frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema)


def test_raw_schemas_carry_ingest_seq_and_the_engine_reads_them() -> None:
    assert RAW_TRADES[INGEST_SEQ] == pl.Int64 and RAW_BOOK[INGEST_SEQ] == pl.Int64
    # the engine's input schemas are the raw ones (plus the feed-health columns), not a copy
    assert {k: TRADE_SCHEMA[k] for k in RAW_TRADES} == dict(RAW_TRADES)
    assert BOOK_SCHEMA == dict(RAW_BOOK)
    assert normalise(pl.DataFrame({"symbol": ["x"], "event_time_ms": [1]}), TRADE_SCHEMA)[INGEST_SEQ].null_count() == 1


def test_book_join_config_and_its_error_names_the_field() -> None:
    assert resolve_config(None).book_join == "event_time"
    assert resolve_config({"book_join": "arrival", "cvd.ema_alpha": 0.1}).book_join == "arrival"
    with pytest.raises(EngineConfigError, match="'book_join'"):
        resolve_config({"book_join": "arrival_time"})


def test_arrival_takes_the_latest_book_received_before_the_trade() -> None:
    """The trade printed at t=1050 arrives after the book stamped t=1100 (sent sooner, seq 3): in
    arrival mode it sees that book (lag -50 ms); in event-time mode it sees the t=1000 book."""
    book = frame([book_row(T0 + 1000, T0 + 1010, 10, 5.0, seq=1), book_row(T0 + 1100, T0 + 1105, 11, 9.0, seq=3),
                  book_row(T0 + 1200, T0 + 1210, 12, 2.0, seq=5)], RAW_BOOK)
    trades = frame([trade_row(T0 + 990, T0 + 1008, 1, seq=0), trade_row(T0 + 1050, T0 + 1108, 2, seq=4),
                    trade_row(T0 + 1150, T0 + 1160, 3, seq=2)], RAW_TRADES)
    arr = compute_features(trades, book, ARRIVAL)
    # arrival order of the trades: seq 0, 2, 4
    assert arr["agg_trade_id"].to_list() == [1, 3, 2]
    assert arr["book_event_time_ms"].to_list() == [None, T0 + 1000, T0 + 1100]
    assert arr["lag_ms"].to_list() == [None, 150, -50]
    ev = compute_features(trades, book)
    assert ev["agg_trade_id"].to_list() == [1, 2, 3]
    assert ev["book_event_time_ms"].to_list() == [None, T0 + 1000, T0 + 1100]
    assert ev["lag_ms"].to_list() == [None, 50, 50]


def test_arrival_step_emits_each_trade_at_once_event_time_holds_it() -> None:
    b1 = book_row(T0 + 1000, T0 + 1005, 10, 5.0, seq=0)
    t1 = trade_row(T0 + 1040, T0 + 1045, 1, seq=1)
    b2 = book_row(T0 + 1100, T0 + 1105, 11, 6.0, seq=2)
    for cfg, first, second in ((ARRIVAL, 1, 0), (resolve_config(None), 0, 1)):
        state = initial_state("BTCUSDT", cfg, run_id="r")
        state, rows = step_rows(state, [t1], [b1])
        assert len(rows) == first and state.pending_trades == 1 - first
        state, rows2 = step_rows(state, [], [b2])
        assert len(rows2) == second and state.pending_trades == 0
        assert [r["seq"] for r in rows + rows2] == [1]


def test_fallback_order_without_ingest_seq() -> None:
    """No ingest_seq: receive time, then book before trade, then event time, then id."""
    book = frame([book_row(T0 + 900, T0 + 1000, 20, 1.0), book_row(T0 + 950, T0 + 1000, 19, 1.0)], RAW_BOOK)
    trades = frame([trade_row(T0 + 990, T0 + 1000, 7), trade_row(T0 + 980, T0 + 999, 8),
                    trade_row(T0 + 990, T0 + 1000, 6)], RAW_TRADES)
    bp, tp, br, tr = arrival_order(frame_keys(normalise(book, BOOK_SCHEMA), "last_update_id"),
                                   frame_keys(normalise(trades, TRADE_SCHEMA), "agg_trade_id"))
    assert tp.tolist() == [1, 2, 0]  # recv 999 first; then the equal ones by id (6 before 7)
    assert bp.tolist() == [0, 1]  # same receive time: event time 900 before 950
    assert tr.tolist() == [0, 3, 4] and br.tolist() == [1, 2]  # both books before the trades received with them
    # a row without ingest_seq sorts before rows with one
    bp, tp, br, tr = arrival_order(frame_keys(normalise(book.with_columns(pl.Series(INGEST_SEQ, [5, 6])), BOOK_SCHEMA),
                                              "last_update_id"),
                                   frame_keys(normalise(trades, TRADE_SCHEMA), "agg_trade_id"))
    assert tr.tolist() == [0, 1, 2] and br.tolist() == [3, 4]


def test_ingest_seq_going_back_is_counted() -> None:
    state = initial_state("BTCUSDT", ARRIVAL)
    state, _ = step_rows(state, [trade_row(T0 + 1000, T0 + 1001, 1, seq=5)], [book_row(T0 + 990, T0 + 995, 3, 1.0, 4)])
    assert state.counters["arrival_regressions"] == 0
    state, rows = step_rows(state, [trade_row(T0 + 1010, T0 + 1011, 2, seq=3)], [])  # redelivered / bad counter
    assert len(rows) == 1 and state.counters["arrival_regressions"] == 1


def test_row_dicts_are_the_frame_rows() -> None:
    d = synthetic_day("BTCUSDT", "2024-01-07", seed=5, hours=0.05)
    trades, book = with_ingest_seq(d["trades"], d["book"], seed=1)
    for cfg in (ARRIVAL, resolve_config(None)):
        s1, s2 = initial_state("BTCUSDT", cfg, "r"), initial_state("BTCUSDT", cfg, "r")
        s1, a = step(s1, trades, book, final=True)
        s2, rows = step_rows(s2, trades.to_dicts(), book.to_dicts(), final=True)
        assert list(rows[0]) == SIGNAL_COLUMNS
        b = pl.DataFrame(rows, schema=signal_schema(False), orient="row")
        assert a.schema == b.schema and a.equals(b) and a.height == trades.height


def test_rows_of_unusual_types_read_as_normalise_reads_them() -> None:
    """Float ids and times, numeric strings, foreign and lower-case symbols: same rows as the frame form."""
    d = synthetic_day("BTCUSDT", "2024-01-07", seed=9, hours=0.02)
    trades, book = d["trades"].head(300), d["book"].head(200)
    odd_t = [dict(r, event_time_ms=float(r["event_time_ms"]), price=str(r["price"]), symbol="btcusdt")
             for r in trades.to_dicts()]
    odd_t.append(dict(odd_t[0], symbol="ETHUSDT"))
    odd_b = [dict(r, last_update_id=float(r["last_update_id"])) for r in book.to_dicts()]
    s1, s2 = initial_state("BTCUSDT", None, "r"), initial_state("BTCUSDT", None, "r")
    s1, a = step(s1, trades, book, final=True)
    s2, rows = step_rows(s2, odd_t, odd_b, final=True)
    assert a.equals(pl.DataFrame(rows, schema=signal_schema(False), orient="row"))
    assert s2.counters["foreign_symbol_rows"] == 1 and s2.counters["trades_in"] == trades.height


def test_batch_arrival_equals_live_arrival_on_two_symbols() -> None:
    """Two symbols in one frame: each symbol's rows in its arrival order, in the slots its rows held."""
    a = synthetic_day("BTCUSDT", "2024-01-07", seed=2, hours=0.03)
    b = synthetic_day("ETHUSDT", "2024-01-07", seed=4, hours=0.03, start_price=2_300.0, tick=0.01)
    ta, ba = with_ingest_seq(a["trades"], a["book"], seed=1)
    tb, bb = with_ingest_seq(b["trades"], b["book"], seed=2)
    trades = pl.concat([ta, tb]).sort("event_time_ms")
    book = pl.concat([ba, bb]).sort("event_time_ms")
    batch = compute_signals(compute_features(trades, book, ARRIVAL), ARRIVAL, run_id="r")
    for sym, t, bk in (("BTCUSDT", ta, ba), ("ETHUSDT", tb, bb)):
        state, live = step(initial_state(sym, ARRIVAL, "r"), t, bk)
        mine = batch.filter(pl.col("symbol") == sym)
        assert mine.equals(live)
    assert batch["symbol"].to_list() == trades["symbol"].to_list()


def test_old_checkpoint_is_refused_with_a_reason() -> None:
    state = initial_state("BTCUSDT")
    state.version = 1
    with pytest.raises(ValueError, match="version 1"):
        EngineState.from_bytes(state.to_bytes())


def test_flush_in_arrival_mode_has_nothing_left() -> None:
    state = initial_state("BTCUSDT", ARRIVAL)
    state, rows = step(state, frame([trade_row(T0 + 5, T0 + 6, 1, 0)], RAW_TRADES), None)
    assert rows.height == 1 and np.isnan(rows["z_ofi"].fill_null(np.nan).to_numpy()).all()
    assert flush(state)[1].height == 0


def test_garbage_values_are_bad_input_rows_not_exceptions() -> None:
    state = initial_state("BTCUSDT", ARRIVAL, "r")
    book = [book_row(T0 + 1000, T0 + 1001, 10, 5.0, seq=0)]
    trades = [dict(trade_row(T0 + 1010, T0 + 1011, 1, seq=1), qty="abc"),  # (more than the 250 ms dedup apart)
              dict(trade_row(T0 + 1510, T0 + 1511, 2, seq=2), is_buyer_maker="maybe", price=None),
              dict(trade_row(T0 + 2010, T0 + 2011, 3, seq=3), event_time_ms=None)]
    state, rows = step_rows(state, trades, book)
    assert [r["decision_code"] for r in rows] == ["bad_input"] * 3
    assert rows[1]["price"] is None and rows[2]["ts_ms"] is None
    assert state.counters["trades_in"] == 3
