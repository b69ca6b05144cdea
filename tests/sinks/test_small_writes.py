"""Small (live-sized) writes take Python rows and orjson; big writes take polars. Both must give the
same bytes: the row encoder is held to polars' NDJSON writer on awkward values, and a run written in
1-row writes must equal the same run written in one batch (files, SQLite rows, counters)."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from alpha_assets.sinks import SinkConfig, make_sink, read_jsonl_signals, read_sqlite_signals
from alpha_assets.sinks import rows as small
from alpha_assets.sinks.schema import SIGNAL_SCHEMA
from alpha_assets.sinks.synthetic import synthetic_signals
from tests.golden.digests import jsonl_digests, sqlite_digest

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(
    [0.0, -0.0, 1e16, 1e15, 1e-7, 5e-324, 1.7976931348623157e308, 123456789012.5, 0.1, 43000.1]))
TEXT = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["a\nb", "\x01", "\u2028", '"q"', "\\", "é😀"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(FLOATS, FLOATS, TEXT, st.booleans(), st.integers(-2**63, 2**63 - 1)), min_size=1, max_size=8))
def test_row_encoder_matches_polars_ndjson(values: list[tuple]) -> None:
    base = synthetic_signals(len(values), seed=3)
    frame = base.with_columns(
        pl.Series("score", [v[0] for v in values], dtype=pl.Float64),
        pl.Series("price", [v[1] for v in values], dtype=pl.Float64),
        pl.Series("guard_reason", [v[2] for v in values], dtype=pl.Utf8),
        pl.Series("confirm", [v[3] for v in values], dtype=pl.Boolean),
        pl.Series("created_at", [v[4] for v in values], dtype=pl.Int64),
    )
    expected = frame.with_columns(pl.col(c).fill_nan(None) for c, t in SIGNAL_SCHEMA.items() if t == pl.Float64)
    lines = expected.write_ndjson().encode().split(b"\n")[:-1]
    got = [small.encode(r) for r in small.canonical_rows(frame)]
    assert got == lines
    assert all(r[5] is None or not math.isnan(r[5]) for r in small.canonical_rows(frame))  # NaN -> None


def test_one_row_writes_equal_one_batch_write(tmp_path: Path) -> None:
    df = synthetic_signals(3_000, seed=31)
    counters = {}
    for name, chunk in (("rows", 1), ("batch", df.height)):
        sink = make_sink(SinkConfig(kind="dual", fsync="never", flush_ms=0), tmp_path / name)
        for part in df.iter_slices(chunk):
            sink.write(part)
        sink.close()
        counters[name] = sink.counters()
    assert jsonl_digests(tmp_path / "rows") == jsonl_digests(tmp_path / "batch")
    assert sqlite_digest(tmp_path / "rows" / "signals.db") == sqlite_digest(tmp_path / "batch" / "signals.db")
    for key in ("rows_in", "rejected"):
        assert counters["rows"]["jsonl"][key] == counters["batch"]["jsonl"][key] == (df.height if key == "rows_in" else 0)
    assert counters["rows"]["sqlite"]["rows_written"] == counters["batch"]["sqlite"]["rows_written"] == df.height
    assert read_jsonl_signals(tmp_path / "rows").equals(read_sqlite_signals(tmp_path / "batch" / "signals.db"))


def test_small_write_with_a_mistyped_column_is_conformed_or_refused(tmp_path: Path) -> None:
    df = synthetic_signals(5, seed=2).with_columns(pl.col("seq").cast(pl.Int32), pl.col("score").cast(pl.Float32))
    sink = make_sink(SinkConfig(kind="dual", flush_ms=0, fsync="never"), tmp_path)
    sink.write(df)  # narrower numeric types are cast, as for big writes
    sink.close()
    assert read_jsonl_signals(tmp_path).height == read_sqlite_signals(tmp_path / "signals.db").height == 5
