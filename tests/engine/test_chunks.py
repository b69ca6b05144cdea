"""Chunk invariance: splitting a stream anywhere and stepping through the pieces gives exactly
the rows of one pass, bit for bit. book_join="event_time": trades and book cut independently;
"arrival": the merged stream cut anywhere in arrival order (ingest_seq, or without it the rule of
engine/arrival.py), rows inside a chunk in any order."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpha_assets.engine import (
    EngineConfig,
    compute_features,
    compute_signals,
    flush,
    initial_state,
    resolve_config,
    step,
    step_rows,
)
from alpha_assets.engine.cvd import cvd_initial_state, cvd_run
from alpha_assets.engine.fusion import fusion_initial_state, fusion_run
from alpha_assets.engine.ofi import ofi_initial_state, ofi_run
from alpha_assets.engine.signal_rows import signal_schema
from alpha_assets.engine.synthetic import synthetic_day, with_ingest_seq

CFG = EngineConfig()
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def day() -> dict[str, pl.DataFrame]:
    d = synthetic_day("BTCUSDT", "2024-01-07", seed=3, hours=0.25)
    return {"trades": d["trades"], "book": d["book"]}


def frames_equal(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Same columns, dtypes, nulls and values, floats compared by their bits."""
    assert a.schema == b.schema
    assert a.height == b.height
    for c in a.columns:
        x, y = a[c], b[c]
        assert x.is_null().equals(y.is_null()), c
        if x.dtype.is_float():
            xv, yv = x.fill_null(0.0).to_numpy(), y.fill_null(0.0).to_numpy()
            assert np.array_equal(xv.view(np.int64), yv.view(np.int64)), c
        else:
            assert x.eq_missing(y).all(), c


def pieces(height: int, cuts: list[int]) -> list[tuple[int, int]]:
    pts = sorted({0, height, *[c % (height + 1) for c in cuts]})
    return list(zip(pts[:-1], pts[1:], strict=False))


cuts_strategy = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8)


@SETTINGS
@given(cuts=cuts_strategy)
def test_ofi_chunk_invariant(day, cuts) -> None:
    book = day["book"].head(3000)
    whole = ofi_run(ofi_initial_state(CFG.ofi), book, CFG.ofi)
    state = ofi_initial_state(CFG.ofi)
    parts = [ofi_run(state, book.slice(a, b - a), CFG.ofi) for a, b in pieces(book.height, cuts)]
    frames_equal(pl.concat(parts), whole)


@SETTINGS
@given(cuts=cuts_strategy)
def test_cvd_chunk_invariant(day, cuts) -> None:
    trades = day["trades"].head(4000)
    whole = cvd_run(cvd_initial_state(CFG.cvd), trades, CFG.cvd, "BTCUSDT")
    state = cvd_initial_state(CFG.cvd)
    parts = [cvd_run(state, trades.slice(a, b - a), CFG.cvd, "BTCUSDT") for a, b in pieces(trades.height, cuts)]
    frames_equal(pl.concat(parts), whole)


@SETTINGS
@given(cuts=cuts_strategy, seed=st.integers(0, 1000))
def test_fusion_chunk_invariant(cuts, seed) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    frame = pl.DataFrame({
        "ts_ms": np.cumsum(rng.integers(0, 400, n)) + 1_700_000_000_000,
        "z_ofi": np.where(rng.random(n) < 0.05, np.nan, rng.normal(0, 1.5, n)),
        "z_cvd": rng.normal(0, 1.5, n),
        "lag_sec": rng.exponential(0.15, n),
    }).with_columns(pl.col("z_ofi").fill_nan(None))
    whole = fusion_run(fusion_initial_state(), frame, CFG.fusion)
    state = fusion_initial_state()
    parts = [fusion_run(state, frame.slice(a, b - a), CFG.fusion) for a, b in pieces(n, cuts)]
    frames_equal(pl.concat(parts), whole)
    assert whole["fusion_signal"].n_unique() >= 3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trade_cuts=cuts_strategy, book_cuts=cuts_strategy)
def test_step_equals_batch(day, trade_cuts, book_cuts) -> None:
    trades = day["trades"].head(6000)
    tmax = trades["event_time_ms"].max()
    book = day["book"].filter(pl.col("event_time_ms") <= tmax + 1000)
    batch = compute_signals(compute_features(trades, book, CFG), CFG, run_id="r")
    tp, bp = pieces(trades.height, trade_cuts), pieces(book.height, book_cuts)
    k = max(len(tp), len(bp))
    tp += [(trades.height, trades.height)] * (k - len(tp))
    bp += [(book.height, book.height)] * (k - len(bp))
    state = initial_state("BTCUSDT", CFG, run_id="r")
    rows = []
    for (ta, tb), (ba, bb) in zip(tp, bp, strict=True):
        state, out = step(state, trades.slice(ta, tb - ta), book.slice(ba, bb - ba))
        rows.append(out)
        state = type(state).from_bytes(state.to_bytes())  # checkpoint/restore between steps
    state, out = flush(state)
    rows.append(out)
    frames_equal(pl.concat(rows), batch)
    assert batch.height == trades.height


def test_step_holds_trades_until_book_passes_them(day) -> None:
    trades = day["trades"].head(200)
    book = day["book"]
    t_last = int(trades["event_time_ms"].max())
    state = initial_state("BTCUSDT", CFG)
    early = book.filter(pl.col("event_time_ms") < trades["event_time_ms"][100])
    state, out = step(state, trades, early)
    assert 0 < out.height < trades.height
    assert state.pending_trades == trades.height - out.height
    state, out2 = step(state, None, book.filter(pl.col("event_time_ms") > early["event_time_ms"].max())
                       .filter(pl.col("event_time_ms") <= t_last + 500))
    assert out.height + out2.height == trades.height
    assert state.pending_trades == 0


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trade_cuts=cuts_strategy, book_cuts=cuts_strategy, seed=st.integers(0, 10_000))
def test_step_equals_batch_on_messy_input(day, trade_cuts, book_cuts, seed) -> None:
    """Out-of-order times, bad quantities, unknown sides and a book update-id gap."""
    rng = np.random.default_rng(seed)
    trades = day["trades"].head(3000)
    n = trades.height
    jitter = np.where(rng.random(n) < 0.05, -rng.integers(0, 3000, n), 0)
    qty = trades["qty"].to_numpy().copy()
    qty[rng.random(n) < 0.02] = np.nan
    qty[rng.random(n) < 0.02] = -1.0
    side = trades["is_buyer_maker"].to_list()
    for i in np.flatnonzero(rng.random(n) < 0.05):
        side[i] = None
    trades = trades.with_columns(
        (pl.col("event_time_ms") + jitter).alias("event_time_ms"), pl.Series("qty", qty),
        pl.Series("is_buyer_maker", side, dtype=pl.Boolean),
    )
    book = day["book"].filter(pl.col("event_time_ms") <= trades["event_time_ms"].max() + 1000)
    gap = int(rng.integers(0, book.height))
    book = book.with_columns(pl.when(pl.int_range(pl.len()) == gap).then(pl.col("prev_last_update_id") - 3)
                             .otherwise(pl.col("prev_last_update_id")).alias("prev_last_update_id"))
    batch = compute_signals(compute_features(trades, book, CFG), CFG, run_id="r")
    tp, bp = pieces(trades.height, trade_cuts), pieces(book.height, book_cuts)
    k = max(len(tp), len(bp))
    tp += [(trades.height, trades.height)] * (k - len(tp))
    bp += [(book.height, book.height)] * (k - len(bp))
    state = initial_state("BTCUSDT", CFG, run_id="r")
    rows = []
    for (ta, tb), (ba, bb) in zip(tp, bp, strict=True):
        state, out = step(state, trades.slice(ta, tb - ta), book.slice(ba, bb - ba))
        rows.append(out)
    rows.append(flush(state)[1])
    frames_equal(pl.concat(rows), batch)
    assert (batch["decision_code"] == "bad_input").any()


def _merged(trades: pl.DataFrame, book: pl.DataFrame) -> pl.DataFrame:
    """(is_trade, index) of every row in arrival order: ingest_seq when present, else the rule of
    engine/arrival.py (receive time, book first, event time, id, position)."""
    key = ["ingest_seq"] if "ingest_seq" in trades.columns else []
    t = trades.select(*key, "recv_time_ms", "event_time_ms", pl.col("agg_trade_id").alias("id"),
                      pl.lit(1).alias("is_trade"), pl.int_range(pl.len()).alias("idx"))
    b = book.select(*key, "recv_time_ms", "event_time_ms", pl.col("last_update_id").alias("id"),
                    pl.lit(0).alias("is_trade"), pl.int_range(pl.len()).alias("idx"))
    by = key + ["recv_time_ms", "is_trade", "event_time_ms", "id", "idx"]
    return pl.concat([b, t]).sort(by, nulls_last=False).select("is_trade", "idx")


def _step_arrival(trades: pl.DataFrame, book: pl.DataFrame, cfg: EngineConfig, cuts: list[int], seed: int,
                  ) -> pl.DataFrame:
    """Step the merged stream cut at `cuts`, rows shuffled inside each chunk; each chunk goes in as
    frames or as row dicts (chosen by the seed) and the state is checkpointed between chunks."""
    rng = np.random.default_rng(seed)
    merged = _merged(trades, book)
    state = initial_state("BTCUSDT", cfg, run_id="r")
    out = []
    for a, b in pieces(merged.height, cuts):
        part = merged.slice(a, b - a).sample(fraction=1.0, shuffle=True, seed=int(rng.integers(1 << 30)))
        t = trades[part.filter(pl.col("is_trade") == 1)["idx"].to_list()]
        bk = book[part.filter(pl.col("is_trade") == 0)["idx"].to_list()]
        if rng.random() < 0.5:
            state, rows = step(state, t, bk)
        else:
            state, dicts = step_rows(state, t.to_dicts(), bk.to_dicts())
            rows = pl.DataFrame(dicts, schema=signal_schema(False), orient="row")
        assert rows.height == t.height  # arrival mode: every trade's row in the step that brings it
        assert state.pending_trades == 0
        out.append(rows)
        state = type(state).from_bytes(state.to_bytes())
    return pl.concat(out)


ARRIVAL = resolve_config({"book_join": "arrival"})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=cuts_strategy, seed=st.integers(0, 10_000))
def test_arrival_step_equals_batch(day, cuts, seed) -> None:
    trades, book = with_ingest_seq(day["trades"].head(4000), day["book"].head(2500), seed=seed)
    batch = compute_signals(compute_features(trades, book, ARRIVAL), ARRIVAL, run_id="r")
    frames_equal(_step_arrival(trades, book, ARRIVAL, cuts, seed), batch)
    assert batch.height == trades.height
    # the join really is by arrival: some trade sees a book row stamped after its own event time
    feats = compute_features(trades, book, ARRIVAL)
    assert (feats["lag_ms"] < 0).any()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=cuts_strategy, seed=st.integers(0, 10_000))
def test_arrival_without_ingest_seq_step_equals_batch(day, cuts, seed) -> None:
    """Simulated or replayed data carry no ingest_seq: the receive-time rule orders them."""
    trades, book = day["trades"].head(3000), day["book"].head(2000)
    assert "ingest_seq" not in trades.columns
    batch = compute_signals(compute_features(trades, book, ARRIVAL), ARRIVAL, run_id="r")
    frames_equal(_step_arrival(trades, book, ARRIVAL, cuts, seed), batch)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=cuts_strategy, seed=st.integers(0, 10_000))
def test_arrival_step_equals_batch_on_messy_input(day, cuts, seed) -> None:
    """Bad quantities, unknown sides, null receive times and prices, a book update-id gap, a level missing."""
    rng = np.random.default_rng(seed)
    trades, book = with_ingest_seq(day["trades"].head(2500), day["book"].head(1600), seed=seed)
    n = trades.height
    qty = trades["qty"].to_numpy().copy()
    qty[rng.random(n) < 0.03] = np.nan
    side = trades["is_buyer_maker"].to_list()
    for i in np.flatnonzero(rng.random(n) < 0.05):
        side[i] = None
    recv = trades["recv_time_ms"].to_list()
    price = trades["price"].to_list()
    for i in np.flatnonzero(rng.random(n) < 0.02):
        recv[i] = None
    for i in np.flatnonzero(rng.random(n) < 0.01):
        price[i] = None
    trades = trades.with_columns(pl.Series("qty", qty), pl.Series("is_buyer_maker", side, dtype=pl.Boolean),
                                 pl.Series("recv_time_ms", recv, dtype=pl.Int64),
                                 pl.Series("price", price, dtype=pl.Float64))
    gap = int(rng.integers(0, book.height))
    book = book.with_columns(
        pl.when(pl.int_range(pl.len()) == gap).then(pl.col("prev_last_update_id") - 3)
        .otherwise(pl.col("prev_last_update_id")).alias("prev_last_update_id"),
        pl.when(pl.int_range(pl.len()) == gap + 1).then(None).otherwise(pl.col("bid_px_1")).alias("bid_px_1"))
    batch = compute_signals(compute_features(trades, book, ARRIVAL), ARRIVAL, run_id="r")
    frames_equal(_step_arrival(trades, book, ARRIVAL, cuts, seed), batch)
    assert (batch["decision_code"] == "bad_input").any()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trade_cuts=cuts_strategy, book_cuts=cuts_strategy, seed=st.integers(0, 10_000))
def test_event_time_rows_and_frames_mixed_equal_batch(day, trade_cuts, book_cuts, seed) -> None:
    """The row-dict form and the frame form share one state: any mix gives the batch rows."""
    rng = np.random.default_rng(seed)
    trades = day["trades"].head(3000)
    book = day["book"].filter(pl.col("event_time_ms") <= trades["event_time_ms"].max() + 1000)
    batch = compute_signals(compute_features(trades, book, CFG), CFG, run_id="r")
    tp, bp = pieces(trades.height, trade_cuts), pieces(book.height, book_cuts)
    k = max(len(tp), len(bp))
    tp += [(trades.height, trades.height)] * (k - len(tp))
    bp += [(book.height, book.height)] * (k - len(bp))
    state = initial_state("BTCUSDT", CFG, run_id="r")
    rows = []
    for (ta, tb), (ba, bb) in zip(tp, bp, strict=True):
        t, b = trades.slice(ta, tb - ta), book.slice(ba, bb - ba)
        if rng.random() < 0.5:
            state, out = step(state, t, b)
        else:
            state, dicts = step_rows(state, t.to_dicts(), b.to_dicts())
            out = pl.DataFrame(dicts, schema=signal_schema(False), orient="row")
        rows.append(out)
    rows.append(flush(state)[1])
    frames_equal(pl.concat(rows), batch)
