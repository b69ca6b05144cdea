"""mock_orders: the partition's signals through the configured executor."""


from collections.abc import Iterator

import dagster as dg
import polars as pl

from alpha_assets.assets.common import OWNERS, ROW_COUNT, data_version, event_span, tags, versioned_output
from alpha_assets.contracts import Orders, column_schema, contract_check_spec, contract_result
from alpha_assets.figures import num, rounded
from alpha_assets.markdown import markdown_table
from alpha_assets.partitions import date_symbol_partitions
from alpha_assets.resources.executor import SignalExecutor
from alpha_assets.resources.parquet_io import read_only
from alpha_assets.version import source_version
from executors.batch import route_signals
from executors.book import BOOK_COLS

ROUTING_BOOK = ["symbol", *BOOK_COLS]  # the book columns routing reads (executors.book)


def order_figures(orders: pl.DataFrame) -> dict[str, float | int]:
    n = orders.height
    filled = orders.filter(pl.col("status") == "filled")
    lat = orders["latency_ms"].drop_nulls() if "latency_ms" in orders.columns else pl.Series([], dtype=pl.Float64)
    return {
        "orders": n,
        "fills": filled.height,
        "rejects": int((orders["status"] == "rejected").sum()) if n else 0,
        "reject_rate": num((orders["status"] == "rejected").mean()) if n else 0.0,
        "mean_slippage_bps": num(filled["slippage_bps"].mean() or 0.0) if filled.height else 0.0,
        "latency_ms_p50": float(lat.quantile(0.50) or 0.0) if lat.len() else 0.0,
        "latency_ms_p95": float(lat.quantile(0.95) or 0.0) if lat.len() else 0.0,
        "latency_ms_p99": float(lat.quantile(0.99) or 0.0) if lat.len() else 0.0,
        "buy_orders": int((orders["side"] == "BUY").sum()) if n else 0,
        "sell_orders": int((orders["side"] == "SELL").sum()) if n else 0,
    }


@dg.asset(
    partitions_def=date_symbol_partitions,
    io_manager_key="parquet_io",
    group_name="execution",
    kinds={"polars", "parquet"},
    owners=OWNERS,
    tags=tags("batch", "execution"),
    code_version=source_version("alpha_assets.assets.orders", "executors"),
    metadata=column_schema(Orders),
    check_specs=[contract_check_spec("mock_orders", Orders, date_symbol_partitions)],
    ins={"harvest_raw": dg.AssetIn(metadata=read_only(tables={"book": ROUTING_BOOK}))},
    description="Every order the executor was asked for and its result (backtest executor by default).",
)
def mock_orders(
    context: dg.AssetExecutionContext, signals: pl.DataFrame, harvest_raw: dict[str, pl.DataFrame],
    executor: SignalExecutor,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    run_id = signals["run_id"][0] if signals.height else context.run_id
    with executor.executor(harvest_raw["book"]) as ex:
        orders = route_signals(signals, harvest_raw["book"], executor=ex, run_id=run_id)
    figures = rounded(order_figures(orders))
    rejects = (
        orders.filter(pl.col("status") == "rejected").group_by("reason").len().sort("len", descending=True)
        if orders.height else pl.DataFrame()
    )
    yield versioned_output(
        orders,
        data_version=data_version(orders.drop("run_id", strict=False)),
        metadata={**figures, **event_span(orders, "ts_ms"), "executor": executor.kind, ROW_COUNT: orders.height,
                  "rejects_by_reason": dg.MetadataValue.md(markdown_table(rejects))},
    )
    yield contract_result("mock_orders", Orders, orders)
