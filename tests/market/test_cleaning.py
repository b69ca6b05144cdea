import math

import polars as pl
import pytest

from alpha_assets.contracts import RawBook, RawTrades, validate
from alpha_assets.market.cleaning import clean_book, clean_trades
from alpha_assets.market.simulator import SimulatorConfig, simulate_day


@pytest.fixture(scope="module")
def day() -> dict[str, pl.DataFrame]:
    return simulate_day("BTCUSDT", "2024-03-02", seed=5, cfg=SimulatorConfig(trades_per_day=20_000))


def corrupt_trades(trades: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    t = trades.head(2_000)
    ids = t["agg_trade_id"]
    rows = t.to_dicts()
    rows[10]["price"] = math.nan
    rows[11]["qty"] = math.inf
    rows[20]["qty"] = -0.5
    rows[21]["qty"] = 0.0
    rows[30]["price"] = -1.0
    rows[40]["is_buyer_maker"] = None
    frame = pl.DataFrame(rows, schema=t.schema)
    # an unparseable value: a price that is not a number
    frame = frame.with_columns(pl.col("price").cast(pl.Utf8))
    frame = frame.with_columns(pl.when(pl.col("agg_trade_id") == ids[50]).then(pl.lit("12.3.4"))
                               .otherwise(pl.col("price")).alias("price"))
    frame = pl.concat([frame, frame.slice(100, 5)])  # five duplicates
    frame = frame.filter(~pl.col("agg_trade_id").is_in([ids[600], ids[601], ids[602]]))  # one gap of 3 ids
    expected = {"nan_or_inf": 2, "non_positive_qty": 2, "non_positive_price": 1, "null_field": 1,
                "unparseable": 1, "duplicate": 5, "id_gap": 1}
    return frame, expected


def test_every_bad_trade_class_is_dead_lettered_and_counted(day: dict[str, pl.DataFrame]) -> None:
    frame, expected = corrupt_trades(day["trades"])
    result = clean_trades(frame)
    assert result.counts == expected
    # Nothing silently dropped: every input row is either clean or a dead letter.
    assert result.rows_in == frame.height
    gap = result.deadletters.filter(pl.col("reason") == "id_gap")
    assert gap["payload"][0] == '{"missing": 3}'
    assert validate(RawTrades, result.frame)[0]


def test_bad_book_rows(day: dict[str, pl.DataFrame]) -> None:
    book = day["book"].head(1_000)
    rows = book.to_dicts()
    rows[5]["bid_px_1"] = rows[5]["ask_px_1"] + 1.0  # crossed
    rows[6]["ask_qty_3"] = -2.0
    rows[7]["bid_qty_2"] = math.nan
    rows[8]["ask_px_1"] = None
    rows[9]["bid_qty_4"] = None  # a price without a quantity
    rows[10]["ask_px_2"], rows[10]["ask_px_3"] = rows[10]["ask_px_3"], rows[10]["ask_px_2"]  # levels out of order
    rows[11]["bid_px_2"] = rows[11]["bid_qty_2"] = None  # a hole above present levels
    frame = pl.DataFrame(rows, schema=book.schema)
    frame = pl.concat([frame, frame.slice(50, 2)]).filter(pl.col("last_update_id") != rows[300]["last_update_id"])
    result = clean_book(frame)
    assert result.counts == {"crossed_book": 1, "negative_qty": 1, "nan_or_inf": 1, "null_field": 1,
                             "bad_levels": 3, "duplicate": 2, "id_gap": 1}
    assert result.rows_in == frame.height
    assert validate(RawBook, result.frame)[0]


def test_contract_check_reports_failure_cases_for_uncleaned_input(day: dict[str, pl.DataFrame]) -> None:
    frame, _ = corrupt_trades(day["trades"])
    frame = frame.with_columns(pl.col("price").cast(pl.Float64, strict=False))
    passed, metadata = validate(RawTrades, frame)
    assert not passed
    checks = metadata["failures_by_check"].data
    assert metadata["failure_cases"] > 0
    assert any("uniqueness" in c or "unique" in c for c in checks)
    assert "greater_than(0)" in checks
    assert "NaN" in metadata["failure_sample"].md_str or "inf" in metadata["failure_sample"].md_str
