"""harvest_raw and harvest_preview: a partition's trades and book, cleaned, and 1-second bars."""


from collections.abc import Iterator

import dagster as dg
import polars as pl

from alpha_assets.assets.background import contract_result_soon
from alpha_assets.assets.common import OWNERS, ROW_COUNT, data_version, event_span, tags, versioned_output
from alpha_assets.assets.landing import LANDING_ZONE
from alpha_assets.contracts import (
    DeadLetters,
    PreviewBars,
    RawBook,
    RawTrades,
    column_schema,
    contract_check_spec,
    contract_result,
)
from alpha_assets.figures import num, rounded, whole
from alpha_assets.markdown import markdown_kv
from alpha_assets.market.cleaning import clean_book, clean_trades
from alpha_assets.market.preview import preview_bars
from alpha_assets.partitions import date_symbol_partitions, split_key
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.market_source import MarketSource
from alpha_assets.version import source_version

IO = "parquet_io"


def median_spread_bps(book: pl.DataFrame) -> float | None:
    if book.is_empty():
        return None
    mid = (book["bid_px_1"] + book["ask_px_1"]) / 2
    return num(((book["ask_px_1"] - book["bid_px_1"]) / mid * 1e4).median())


@dg.asset(
    partitions_def=date_symbol_partitions,
    io_manager_key=IO,
    group_name="harvest",
    # The landing zone is one of three sources (market_source=auto): the edge carries live data to batch.
    deps=[LANDING_ZONE],
    kinds={"polars", "parquet"},
    owners=OWNERS,
    tags=tags("batch", "market-data"),
    code_version=source_version("alpha_assets.assets.harvest", "alpha_assets.market",
                                "alpha_assets.resources.market_source"),
    metadata=column_schema(RawTrades, RawBook, DeadLetters, prefixed=True),
    check_specs=[
        contract_check_spec("harvest_raw", RawTrades, date_symbol_partitions),
        contract_check_spec("harvest_raw", RawBook, date_symbol_partitions),
    ],
    description="Every trade and every 5-level book snapshot of the partition: deduplicated, "
    "ordered by event time, receive time kept; bad rows in the `deadletters` table with a reason.",
)
def harvest_raw(
    context: dg.AssetExecutionContext, market_source: MarketSource, data_root: DataRoot
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    date, symbol = split_key(context)
    kind, raw = market_source.load(date, symbol, data_root.path)
    trades = clean_trades(raw["trades"])
    book = clean_book(raw["book"])
    parts = [f for f in (raw.get("deadletters"), trades.deadletters, book.deadletters) if f is not None and f.height]
    dead = pl.concat(parts, how="diagonal_relaxed") if parts else trades.deadletters
    reasons = dead.group_by("reason").len().sort("reason") if dead.height else pl.DataFrame({"reason": [], "len": []})
    by_reason = {r["reason"]: int(r["len"]) for r in reasons.iter_rows(named=True)}
    span = event_span(trades.frame)
    minutes = max(float(span["span_minutes"]), 1e-9)  # type: ignore[arg-type]
    spread = median_spread_bps(book.frame)
    figures = rounded({
        "source": kind,
        "trades": trades.frame.height,
        "book_snapshots": book.frame.height,
        "trades_per_min": round(trades.frame.height / minutes, 2) if trades.frame.height else 0.0,
        "duplicates_removed": int(trades.counts.get("duplicate", 0) + book.counts.get("duplicate", 0)),
        "gaps": int(trades.counts.get("id_gap", 0) + book.counts.get("id_gap", 0)),
        "dead_letters": dead.height,
        "median_spread_bps": spread if spread is not None else float("nan"),
    })
    tables = {"trades": trades.frame, "book": book.frame, "deadletters": dead}
    checks = [contract_result_soon("harvest_raw", RawTrades, trades.frame),
              contract_result_soon("harvest_raw", RawBook, book.frame)]
    yield versioned_output(
        tables,
        data_version=data_version(tables),
        metadata={
            **figures,
            **span,
            "dead_letters_by_reason": dg.MetadataValue.json(by_reason),
            "summary": dg.MetadataValue.md(markdown_kv(figures)),
            ROW_COUNT: trades.frame.height + book.frame.height,
        },
    )
    for check in checks:
        yield check.result()


@dg.asset(
    partitions_def=date_symbol_partitions,
    io_manager_key=IO,
    group_name="harvest",
    kinds={"polars", "parquet"},
    owners=OWNERS,
    tags=tags("batch", "market-data"),
    code_version=source_version("alpha_assets.assets.harvest", "alpha_assets.market.preview"),
    metadata=column_schema(PreviewBars),
    check_specs=[contract_check_spec("harvest_preview", PreviewBars, date_symbol_partitions)],
    description="1-second preview bars: OHLCV, buy/sell volume, trade count, best bid/ask, spread_bps, L1 imbalance.",
)
def harvest_preview(
    context: dg.AssetExecutionContext, harvest_raw: dict[str, pl.DataFrame]
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    bars = preview_bars(harvest_raw["trades"], harvest_raw["book"])
    active = bars.filter(pl.col("trade_count") > 0)
    figures = rounded({
        "bars": bars.height,
        "bars_with_trades": active.height,
        "max_trades_per_second": whole(bars["trade_count"].max() or 0),
        "median_spread_bps": num(bars["spread_bps"].median() or float("nan")),
        "mean_abs_l1_imbalance": num(bars["l1_imbalance"].abs().mean() or float("nan")),
        "buy_volume_share": num(bars["buy_volume"].sum()) / max(num(bars["volume"].sum()), 1e-12),
    })
    yield versioned_output(
        bars,
        data_version=data_version(bars),
        metadata={**figures, **event_span(bars, "ts_ms"), "summary": dg.MetadataValue.md(markdown_kv(figures)),
                  ROW_COUNT: bars.height},
    )
    yield contract_result("harvest_preview", PreviewBars, bars)
