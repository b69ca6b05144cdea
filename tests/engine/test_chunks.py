"""Chunk invariance: splitting a stream anywhere and stepping through the pieces gives exactly
the rows of one pass (floats within 1e-12, labels identical)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpha_assets.engine import EngineConfig, compute_features, compute_signals, flush, initial_state, step
from alpha_assets.engine.cvd import cvd_initial_state, cvd_run
from alpha_assets.engine.fusion import fusion_initial_state, fusion_run
from alpha_assets.engine.ofi import ofi_initial_state, ofi_run
from alpha_assets.engine.synthetic import synthetic_day

CFG = EngineConfig()
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def day() -> dict[str, pl.DataFrame]:
    d = synthetic_day("BTCUSDT", "2024-01-07", seed=3, hours=0.25)
    return {"trades": d["trades"], "book": d["book"]}


def frames_equal(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns
    assert a.height == b.height
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype.is_float():
            xv, yv = x.to_numpy(), y.to_numpy()
            assert (np.isnan(xv) == np.isnan(yv)).all(), c
            m = ~np.isnan(xv)
            assert np.all(np.abs(xv[m] - yv[m]) <= 1e-12), c
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
