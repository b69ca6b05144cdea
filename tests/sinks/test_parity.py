"""compare_sinks: exact on equal frames; sabotage shows up in the right figures and fails the gate."""

from __future__ import annotations

import orjson
import polars as pl
import pytest

from alpha_assets.signal_contract import PARITY_LIMIT
from alpha_assets.sinks import KEY, compare_sinks
from alpha_assets.sinks.synthetic import synthetic_signals

N = 100_000


@pytest.fixture(scope="module")
def base() -> pl.DataFrame:
    return synthetic_signals(N, seed=21).sort(KEY)


def drop_fraction(df: pl.DataFrame, frac: float, seed: int) -> pl.DataFrame:
    return df.sample(n=df.height - int(df.height * frac), seed=seed, shuffle=False).sort(KEY)


def test_identical_frames_are_exactly_equal(base: pl.DataFrame) -> None:
    res = compare_sinks(base, base.sample(fraction=1.0, shuffle=True, seed=1))  # order does not matter
    assert res.max_rel_diff == 0.0 and res.worst_figure is None and res.passed(0.0)
    assert all(f.rel_diff == 0.0 for f in res.figures)


def test_dropping_one_percent_fails_with_the_right_figures(base: pl.DataFrame) -> None:
    b = drop_fraction(base, 0.01, seed=2)
    res = compare_sinks(base, b)
    assert res.total_a == N and res.total_b == N - 1_000
    assert res.only_in_a == 1_000 and res.only_in_b == 0 and res.mismatched_rows == 0
    fig = {f.figure: f for f in res.figures}
    assert fig["total"].rel_diff == pytest.approx(0.01)
    assert fig["rows_only_in_a"].rel_diff == pytest.approx(0.01)
    dropped = base.join(b, on=KEY, how="anti")
    for t, n in dropped.group_by("signal_type").len().iter_rows():
        assert res.by_type_a[t] - res.by_type_b[t] == n
    assert res.confirm_a - res.confirm_b == dropped.get_column("confirm").sum()
    assert res.max_rel_diff >= 0.01 and not res.passed(PARITY_LIMIT)
    keys = {tuple(d[k] for k in KEY) for d in res.only_in_a_sample}
    assert keys <= {tuple(r) for r in dropped.select(KEY).iter_rows()}


def test_dropping_a_tenth_of_a_percent_passes_the_gate_but_not_exactness(base: pl.DataFrame) -> None:
    res = compare_sinks(base, drop_fraction(base, 0.001, seed=3))
    assert res.only_in_a == 100
    assert 0.0 < res.max_rel_diff < PARITY_LIMIT and res.passed(PARITY_LIMIT) and not res.passed(0.0)


def test_altered_field_is_found_on_matched_rows(base: pl.DataFrame) -> None:
    idx = pl.int_range(pl.len())
    b = base.with_columns(
        pl.when(idx % 100 == 0).then(pl.col("score") + 1e-12).otherwise(pl.col("score")).alias("score"),
        pl.when(idx == 5).then(pl.lit("strong_buy")).otherwise(pl.col("signal_type")).alias("signal_type"),
        pl.when(idx == 7).then(None).otherwise(pl.col("regime")).alias("regime"),
    )
    res = compare_sinks(base, b)
    assert res.only_in_a == res.only_in_b == 0 and res.matched == N
    assert res.field_mismatches["score"] == 1_000
    assert res.field_mismatches["regime"] == 1
    assert res.field_mismatches.get("signal_type", 0) == (0 if base["signal_type"][5] == "strong_buy" else 1)
    # rows 0, 100, ... (score), row 7 (regime) and row 5 (signal_type, if it changed) are distinct
    assert res.mismatched_rows == 1_000 + 1 + res.field_mismatches.get("signal_type", 0)
    fig = {f.figure: f for f in res.figures}
    assert fig["rows_mismatched"].rel_diff == pytest.approx(res.mismatched_rows / N)
    assert not res.passed(PARITY_LIMIT)
    s = res.mismatch_sample[0]
    assert s["field"] == "score" and s["jsonl"] != s["sqlite"]
    # a documented tolerance accepts the 1e-12 noise but not the categorical changes
    tol = compare_sinks(base, b, float_rel_tol=1e-9)
    assert "score" not in tol.field_mismatches and tol.field_mismatches["regime"] == 1


def test_duplicates_and_extra_rows_in_b(base: pl.DataFrame) -> None:
    extra = base.head(10).with_columns((pl.col("seq") + 10**9).alias("seq"))
    b = pl.concat([base, base.head(5), extra])
    res = compare_sinks(base, b)
    assert res.duplicate_keys_b == 5 and res.only_in_b == 10 and res.only_in_a == 0
    assert res.total_b == N + 15 and not res.passed(0.0)


def test_empty_frames_and_serialisation() -> None:
    empty = synthetic_signals(10).head(0)
    res = compare_sinks(empty, empty)
    assert res.max_rel_diff == 0.0 and res.total_a == 0
    one = synthetic_signals(10)
    res2 = compare_sinks(one, empty)
    assert res2.max_rel_diff == 1.0 and res2.only_in_a == 10
    data = orjson.loads(res2.model_dump_json())
    assert data["figures"][0]["figure"] == "total"
    frame = res2.to_frame()
    assert frame.columns == ["figure", "jsonl", "sqlite", "rel_diff"] and frame.height == len(res2.figures)
