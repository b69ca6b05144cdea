"""Compare two signal frames (normally the JSONL and the SQLite sink read back for one run_id).

Figures, each with a relative difference ``|a - b| / max(|a|, |b|)`` (0 when both are 0):

* ``total``, ``confirm``, ``count[<signal_type>]``, ``strong_ratio`` (strong_buy + strong_sell) / total;
* row level, relative to the larger total: ``rows_only_in_a`` / ``rows_only_in_b`` (anti-joins on
  the key run_id, symbol, seq), ``rows_mismatched`` (matched rows with any differing field) and
  ``duplicate_keys_a`` / ``duplicate_keys_b`` (a key stored twice in one sink).

``max_rel_diff`` is the largest of them; ``passed(threshold)`` is ``max_rel_diff <= threshold``
(CI gates at 0.25 %; the target, and what the sinks deliver, is exactly 0).

Field comparison: nulls are equal to nulls; strings, integers and booleans compare exactly;
floats compare exactly by default (``float_rel_tol=0``), because both sinks store IEEE doubles
losslessly (JSON with shortest round-trip repr, SQLite REAL) and NaN is null in both. A tolerance
``|a - b| <= float_rel_tol * max(|a|, |b|)`` is available for comparing against other systems (v13).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from alpha_assets.layout import SQLITE_FILE, RuntimeLayout
from alpha_assets.signal_contract import (
    KEY,
    PARITY_LIMIT,
    SIGNAL_COLUMNS,
    SIGNAL_SCHEMA,
    STRONG_TYPES,
    parity_passed,
)
from alpha_assets.sinks.readers import read_both_sinks

SAMPLE = 20


class Figure(BaseModel):
    figure: str
    a: float | None
    b: float | None
    rel_diff: float


class ParityResult(BaseModel):
    label_a: str = "jsonl"
    label_b: str = "sqlite"
    total_a: int
    total_b: int
    by_type_a: dict[str, int]
    by_type_b: dict[str, int]
    confirm_a: int
    confirm_b: int
    strong_ratio_a: float
    strong_ratio_b: float
    matched: int
    only_in_a: int
    only_in_b: int
    only_in_a_sample: list[dict[str, Any]] = Field(default_factory=list)
    only_in_b_sample: list[dict[str, Any]] = Field(default_factory=list)
    duplicate_keys_a: int = 0
    duplicate_keys_b: int = 0
    mismatched_rows: int
    field_mismatches: dict[str, int]
    mismatch_sample: list[dict[str, Any]] = Field(default_factory=list)
    float_rel_tol: float = 0.0
    figures: list[Figure]
    max_rel_diff: float
    worst_figure: str | None = None

    def passed(self, threshold: float = PARITY_LIMIT) -> bool:
        return parity_passed(self.max_rel_diff, threshold)

    def labelled(self, figure: str) -> str:
        """A figure's name with its side named by the sink (`rows_only_in_a` → `rows_only_in_jsonl`)."""
        for side, label in (("_a", self.label_a), ("_b", self.label_b)):
            if figure.endswith(side):
                return figure[: -len(side)] + "_" + label
        return figure

    def to_frame(self) -> pl.DataFrame:
        """One row per figure, columns `figure, <label_a>, <label_b>, rel_diff` (the ParityDiff contract)."""
        return pl.DataFrame(
            {"figure": [self.labelled(f.figure) for f in self.figures], self.label_a: [f.a for f in self.figures],
             self.label_b: [f.b for f in self.figures], "rel_diff": [f.rel_diff for f in self.figures]},
            schema={"figure": pl.Utf8, self.label_a: pl.Float64, self.label_b: pl.Float64, "rel_diff": pl.Float64},
        )


def rel_diff(a: float | None, b: float | None) -> float:
    a = 0.0 if a is None else float(a)
    b = 0.0 if b is None else float(b)
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def _counts(df: pl.DataFrame) -> dict[str, int]:
    if df.height == 0:
        return {}
    return {str(t): int(n) for t, n in df.group_by("signal_type").len().sort("signal_type").iter_rows()}


def _strong(df: pl.DataFrame) -> int:
    """Rows whose signal type is strong_buy or strong_sell."""
    if df.height == 0:
        return 0
    return int(df.select(pl.col("signal_type").is_in(STRONG_TYPES).sum()).item())


def _same(col: str, dtype: pl.DataType, tol: float) -> pl.Expr:
    a, b = pl.col(col), pl.col(f"{col}__b")
    same = a.eq_missing(b)
    if dtype.is_float() and tol > 0:
        scale = pl.max_horizontal(a.abs(), b.abs())
        same = same | ((a - b).abs() <= tol * scale).fill_null(False)
    return same


class Tally(BaseModel):
    """The additive part of a comparison of one key range: tallies of several disjoint key ranges,
    taken in key order, add up to the tally of their union (`compare_tallies`)."""

    total_a: int
    total_b: int
    by_type_a: dict[str, int]
    by_type_b: dict[str, int]
    confirm_a: int
    confirm_b: int
    strong_a: int
    strong_b: int
    matched: int
    only_in_a: int
    only_in_b: int
    only_in_a_sample: list[dict[str, Any]]
    only_in_b_sample: list[dict[str, Any]]
    duplicate_keys_a: int
    duplicate_keys_b: int
    mismatched_rows: int
    field_mismatches: dict[str, int]
    mismatch_sample: list[dict[str, Any]]


def compare_sinks(a: pl.DataFrame, b: pl.DataFrame, *, label_a: str = "jsonl", label_b: str = "sqlite",
                  float_rel_tol: float = 0.0) -> ParityResult:
    """Compare two Signals frames; see the module docstring for every figure."""
    tally = tally_sinks(a, b, label_a=label_a, label_b=label_b, float_rel_tol=float_rel_tol)
    return compare_tallies([tally], label_a=label_a, label_b=label_b, float_rel_tol=float_rel_tol)


def tally_sinks(a: pl.DataFrame, b: pl.DataFrame, *, label_a: str = "jsonl", label_b: str = "sqlite",
                float_rel_tol: float = 0.0) -> Tally:
    """The tallies of comparing `a` with `b` (all of them, or one key range of both)."""
    if float_rel_tol < 0:
        raise ValueError(f"float_rel_tol must be >= 0, got {float_rel_tol}")
    for name, df in ((label_a, a), (label_b, b)):
        missing = [c for c in SIGNAL_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{name} frame lacks Signals columns {missing}")
    a = a.select(SIGNAL_COLUMNS)
    b = b.select(SIGNAL_COLUMNS)
    value_cols = [c for c in SIGNAL_COLUMNS if c not in KEY]
    if _aligned(a, b):  # the usual case: one key per row, the same keys in the same order on both sides
        dup_a = dup_b = 0
        ua, ub = a, b
        only_a = only_b = a.clear()
        joined = pl.concat([a, b.select([pl.col(c).alias(f"{c}__b") for c in value_cols])], how="horizontal")
    else:
        dup_a = a.height - a.select(pl.struct(KEY).n_unique()).item() if a.height else 0
        dup_b = b.height - b.select(pl.struct(KEY).n_unique()).item() if b.height else 0
        ua = a.unique(KEY, keep="first", maintain_order=True) if dup_a else a
        ub = b.unique(KEY, keep="first", maintain_order=True) if dup_b else b
        # the key columns must join: align dtypes (an empty frame may carry Null types)
        ub = ub.cast({k: ua.schema[k] for k in KEY})
        only_a = ua.join(ub.select(KEY), on=KEY, how="anti").sort(KEY)
        only_b = ub.join(ua.select(KEY), on=KEY, how="anti").sort(KEY)
        joined = ua.join(ub, on=KEY, how="inner", suffix="__b")
    same = joined.select([_same(c, SIGNAL_SCHEMA[c], float_rel_tol).alias(c) for c in value_cols])
    diff_flags = same.select([(~pl.col(c)).alias(c) for c in value_cols])
    field_mismatches = {c: int(n) for c, n in diff_flags.sum().row(0, named=True).items() if n}
    any_diff = diff_flags.select(pl.any_horizontal(value_cols)).to_series() if value_cols and joined.height else None
    mismatched_rows = int(any_diff.sum()) if any_diff is not None else 0
    sample: list[dict[str, Any]] = []
    if mismatched_rows and any_diff is not None:
        bad = joined.filter(any_diff).sort(KEY).head(SAMPLE)
        for row in bad.iter_rows(named=True):
            for c in value_cols:
                va, vb = row[c], row[f"{c}__b"]
                if not _values_same(va, vb, float_rel_tol):
                    sample.append({"key": {k: row[k] for k in KEY}, "field": c, label_a: va, label_b: vb})
                    if len(sample) >= SAMPLE:
                        break
            if len(sample) >= SAMPLE:
                break
    return Tally(
        total_a=a.height, total_b=b.height, by_type_a=_counts(a), by_type_b=_counts(b),
        confirm_a=int(a.get_column("confirm").sum()) if a.height else 0,
        confirm_b=int(b.get_column("confirm").sum()) if b.height else 0,
        strong_a=_strong(a), strong_b=_strong(b), matched=joined.height,
        only_in_a=only_a.height, only_in_b=only_b.height,
        only_in_a_sample=only_a.select(KEY).head(SAMPLE).to_dicts(),
        only_in_b_sample=only_b.select(KEY).head(SAMPLE).to_dicts(),
        duplicate_keys_a=dup_a, duplicate_keys_b=dup_b, mismatched_rows=mismatched_rows,
        field_mismatches=field_mismatches, mismatch_sample=sample,
    )


def compare_tallies(tallies: list[Tally], *, label_a: str = "jsonl", label_b: str = "sqlite",
                    float_rel_tol: float = 0.0) -> ParityResult:
    """The comparison of the union of disjoint key ranges, from their tallies given in key order."""
    def total(field: str) -> int:
        return sum(int(getattr(t, field)) for t in tallies)

    def merged(field: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in tallies:
            for k, n in getattr(t, field).items():
                out[k] = out.get(k, 0) + n
        return out

    def first(field: str) -> list[dict[str, Any]]:
        return [row for t in tallies for row in getattr(t, field)][:SAMPLE]

    n_a, n_b = total("total_a"), total("total_b")
    # one tally keeps its order (polars' sort: a null type, read as "None", first); several are sorted alike
    by_a, by_b = (merged(f) if len(tallies) == 1 else dict(sorted(merged(f).items(), key=_type_order))
                  for f in ("by_type_a", "by_type_b"))
    conf_a, conf_b = total("confirm_a"), total("confirm_b")
    sr_a = float(total("strong_a")) / n_a if n_a else 0.0
    sr_b = float(total("strong_b")) / n_b if n_b else 0.0
    only_a, only_b, mismatched_rows = total("only_in_a"), total("only_in_b"), total("mismatched_rows")
    dup_a, dup_b = total("duplicate_keys_a"), total("duplicate_keys_b")
    fields = merged("field_mismatches")
    field_mismatches = {c: fields[c] for c in SIGNAL_COLUMNS if fields.get(c)}
    total_scale = max(n_a, n_b)

    def row_fig(name: str, n: int) -> Figure:
        return Figure(figure=name, a=float(n), b=0.0, rel_diff=(n / total_scale) if total_scale else 0.0)

    figures = [
        Figure(figure="total", a=n_a, b=n_b, rel_diff=rel_diff(n_a, n_b)),
        Figure(figure="confirm", a=conf_a, b=conf_b, rel_diff=rel_diff(conf_a, conf_b)),
        Figure(figure="strong_ratio", a=sr_a, b=sr_b, rel_diff=rel_diff(sr_a, sr_b)),
    ]
    for t in sorted(set(by_a) | set(by_b)):
        na, nb = by_a.get(t, 0), by_b.get(t, 0)
        figures.append(Figure(figure=f"count[{t}]", a=na, b=nb, rel_diff=rel_diff(na, nb)))
    figures += [row_fig("rows_only_in_a", only_a), row_fig("rows_only_in_b", only_b),
                row_fig("rows_mismatched", mismatched_rows), row_fig("duplicate_keys_a", dup_a),
                row_fig("duplicate_keys_b", dup_b)]
    worst = max(figures, key=lambda f: f.rel_diff)
    return ParityResult(
        label_a=label_a, label_b=label_b, total_a=n_a, total_b=n_b, by_type_a=by_a, by_type_b=by_b,
        confirm_a=conf_a, confirm_b=conf_b, strong_ratio_a=sr_a, strong_ratio_b=sr_b, matched=total("matched"),
        only_in_a=only_a, only_in_b=only_b, only_in_a_sample=first("only_in_a_sample"),
        only_in_b_sample=first("only_in_b_sample"), duplicate_keys_a=dup_a, duplicate_keys_b=dup_b,
        mismatched_rows=mismatched_rows, field_mismatches=field_mismatches,
        mismatch_sample=first("mismatch_sample"), float_rel_tol=float_rel_tol,
        figures=figures, max_rel_diff=worst.rel_diff, worst_figure=worst.figure if worst.rel_diff > 0 else None,
    )


def _type_order(item: tuple[str, int]) -> tuple[bool, str]:
    return item[0] != "None", item[0]


def _aligned(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Row i of `a` and of `b` carry the same key, and no key repeats (one run and symbol, seq strictly
    increasing): then matching by key is matching by position and the joins can be skipped."""
    if a.height != b.height or a.height == 0 or a.schema != b.schema:
        return False
    one = a.select((pl.col("run_id").n_unique() == 1).alias("one_run"), (pl.col("symbol").n_unique() == 1).alias("one_sym"),
                   (pl.col("seq").diff().slice(1) > 0).all().alias("increasing"),
                   (pl.col("seq").null_count() == 0).alias("no_null")).row(0)
    return all(one) and a.select(KEY).equals(b.select(KEY))


def _values_same(va: Any, vb: Any, tol: float) -> bool:
    if va is None or vb is None:
        return va is None and vb is None
    if va == vb:
        return True
    if tol > 0 and isinstance(va, float) and isinstance(vb, float):
        return abs(va - vb) <= tol * max(abs(va), abs(vb))
    return False


def compare_runtime(runtime_dir: Path, run_id: str | None = None, *, db_file: str = SQLITE_FILE,
                    symbol: str | None = None, date: str | None = None, until_ms: int | None = None,
                    float_rel_tol: float = 0.0) -> ParityResult:
    """Read both sinks under `runtime_dir` and compare them over the SAME event-time window.

    v13 compared a JSONL directory and a database that covered different windows. Closed sinks
    (batch runs) hold everything; for a live run pass `until_ms` (e.g. the start of the newest
    published minute) so the minute still in the spool is left out of both sides.
    """
    a, b = read_both_sinks(runtime_dir, RuntimeLayout(Path(runtime_dir)).sqlite_file(db_file), run_id=run_id,
                           symbol=symbol, date=date)
    if until_ms is not None:
        a = a.filter(pl.col("ts_ms") < until_ms)
        b = b.filter(pl.col("ts_ms") < until_ms)
    return compare_sinks(a, b, float_rel_tol=float_rel_tol)
