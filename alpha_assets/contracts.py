"""pandera (polars) contracts, one per asset table, and the helper that turns a
validation into a blocking asset-check result with its failure cases as metadata."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from alpha_assets.markdown import markdown_table
from alpha_assets.market.schema import LEVELS
from alpha_assets.partitions import partition_check
from alpha_assets.signal_contract import SIGNAL_TYPES

ORDER_STATUSES = ["accepted", "filled", "rejected"]
MAX_FAILURE_ROWS = 20
COLUMN_SCHEMA = "dagster/column_schema"


class Contract(pa.DataFrameModel):
    """Base of every contract: float columns hold finite numbers or nulls, never NaN/inf."""

    @pa.dataframe_check(error="float columns must be finite (NaN/inf are not allowed; nulls are)")
    def floats_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        schema = data.lazyframe.collect_schema()
        floats = [name for name, dtype in schema.items() if dtype.is_float()]
        ok = pl.lit(True)
        for name in floats:
            ok = ok & (pl.col(name).is_null() | pl.col(name).is_finite())
        return data.lazyframe.select(ok.alias("finite"))


def _sorted_by(column: str, *, within: str = "symbol") -> pl.Expr:
    return (pl.col(column).diff().over(within).fill_null(0) >= 0).alias("sorted")


class RawTrades(Contract):
    """Every trade of the partition: deduplicated, ordered by event time."""

    symbol: str
    event_time_ms: int = pa.Field(gt=0)
    trade_time_ms: int = pa.Field(gt=0)
    recv_time_ms: int = pa.Field(gt=0)
    agg_trade_id: int  # negative ids are surrogates for recordings without ids (market.replay)
    price: float = pa.Field(gt=0)
    qty: float = pa.Field(gt=0)
    is_buyer_maker: bool

    class Config:
        unique = ["symbol", "agg_trade_id"]

    @pa.dataframe_check(error="event_time_ms must be non-decreasing per symbol")
    def time_sorted(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_sorted_by("event_time_ms"))


class RawBook(Contract):
    """Every 5-level book snapshot of the partition, ordered by event time, never crossed."""

    symbol: str
    event_time_ms: int = pa.Field(gt=0)
    recv_time_ms: int = pa.Field(gt=0)
    last_update_id: int
    bid_px_1: float = pa.Field(gt=0)
    ask_px_1: float = pa.Field(gt=0)
    bid_qty_1: float = pa.Field(ge=0)
    ask_qty_1: float = pa.Field(ge=0)

    class Config:
        unique = ["symbol", "last_update_id"]

    @pa.dataframe_check(error="book is crossed: bid_px_1 must be < ask_px_1")
    def not_crossed(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("bid_px_1") < pl.col("ask_px_1"))

    @pa.dataframe_check(error="event_time_ms must be non-decreasing per symbol")
    def time_sorted(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_sorted_by("event_time_ms"))

    @pa.dataframe_check(error="quantities at every level must be >= 0 and finite (missing levels null)")
    def level_quantities(cls, data: pa.PolarsData) -> pl.LazyFrame:
        cols = [c for side in ("bid", "ask") for c in (f"{side}_qty_{k}" for k in range(1, LEVELS + 1))]
        present = [c for c in cols if c in data.lazyframe.collect_schema().names()]
        ok = pl.lit(True)
        for c in present:
            ok = ok & (pl.col(c).is_null() | (pl.col(c).is_finite() & (pl.col(c) >= 0)))
        return data.lazyframe.select(ok.alias("ok"))


class PreviewBars(Contract):
    """1-second preview bars."""

    symbol: str
    ts_ms: int = pa.Field(gt=0)
    open: float = pa.Field(gt=0, nullable=True)
    high: float = pa.Field(gt=0, nullable=True)
    low: float = pa.Field(gt=0, nullable=True)
    close: float = pa.Field(gt=0, nullable=True)
    volume: float = pa.Field(ge=0)
    buy_volume: float = pa.Field(ge=0)
    sell_volume: float = pa.Field(ge=0)
    trade_count: int = pa.Field(ge=0)
    spread_bps: float = pa.Field(ge=0, nullable=True)
    l1_imbalance: float = pa.Field(ge=-1, le=1, nullable=True)

    class Config:
        unique = ["symbol", "ts_ms"]

    @pa.dataframe_check(error="high >= low")
    def high_low(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("high").is_null() | (pl.col("high") >= pl.col("low")))


class Features(Contract):
    """One row per trade evaluation."""

    symbol: str
    event_time_ms: int = pa.Field(gt=0)
    agg_trade_id: int
    cvd: float = pa.Field(nullable=True)
    z_cvd: float = pa.Field(nullable=True)
    z_ofi: float = pa.Field(nullable=True)
    ofi: float = pa.Field(nullable=True)
    lag_ms: int = pa.Field(nullable=True)

    class Config:
        unique = ["symbol", "agg_trade_id"]


class Signals(Contract):
    """One row per evaluation, v13 field names plus run_id/seq/signal_type/decision_code."""

    run_id: str
    symbol: str
    seq: int
    ts_ms: int = pa.Field(gt=0)
    signal_type: str = pa.Field(isin=list(SIGNAL_TYPES))
    score: float = pa.Field(nullable=True)
    consistency: float = pa.Field(ge=0, le=1, nullable=True)
    z_ofi: float = pa.Field(nullable=True)
    z_cvd: float = pa.Field(nullable=True)
    confirm: bool
    gating: bool
    decision_code: str
    guard_reason: str = pa.Field(nullable=True)
    regime: str
    warmup: bool
    created_at: int

    class Config:
        unique = ["run_id", "symbol", "seq"]


class ParityDiff(Contract):
    """One row per compared figure of the two sinks."""

    figure: str
    jsonl: float = pa.Field(nullable=True)
    sqlite: float = pa.Field(nullable=True)
    rel_diff: float = pa.Field(ge=0)

    class Config:
        unique = ["figure"]


class Orders(Contract):
    """Every order the executor was asked for and its result."""

    symbol: str
    client_order_id: str
    side: str = pa.Field(isin=["BUY", "SELL"])
    qty: float = pa.Field(gt=0)
    px_intent: float = pa.Field(gt=0)
    px_fill: float = pa.Field(gt=0, nullable=True)
    slippage_bps: float = pa.Field(nullable=True)
    status: str = pa.Field(isin=ORDER_STATUSES)

    class Config:
        unique = ["client_order_id"]


class DeadLetters(pa.DataFrameModel):
    """Rows the harvest refused, with the reason (bad input is data)."""

    source: str
    reason: str
    symbol: str = pa.Field(nullable=True)
    event_time_ms: int = pa.Field(nullable=True)
    key: str = pa.Field(nullable=True)
    payload: str = pa.Field(nullable=True)


# Report assets hold records, not tables: these name their fields and types for the UI.
class SummaryFigures(pa.DataFrameModel):
    """The headline figures of a daily summary (one record; also its materialisation metadata)."""

    total: int = pa.Field(ge=0, description="signal rows")
    buy_ratio: float = pa.Field(ge=0, le=1, nullable=True, description="buy / directional signals")
    strong_ratio: float = pa.Field(ge=0, le=1, nullable=True, description="strong / directional signals")
    confirm_ratio: float = pa.Field(ge=0, le=1, nullable=True, description="confirmed / all signals")
    orders: int = pa.Field(ge=0)
    fills: int = pa.Field(ge=0)
    rejects: int = pa.Field(ge=0)
    reject_rate: float = pa.Field(ge=0, le=1, nullable=True, description="rejected / orders")
    pnl: float = pa.Field(nullable=True, description="net mark-to-mid PnL after fees")
    sharpe: float = pa.Field(nullable=True, description="annualised Sharpe of per-minute PnL")
    max_drawdown: float = pa.Field(nullable=True, description="largest peak-to-trough fall of cumulative PnL")
    max_drawdown_frac: float = pa.Field(nullable=True, description="max drawdown / capital")


class SoakFigures(pa.DataFrameModel):
    """The figures of a soak run (one record per run; progress observations carry a subset)."""

    signals_total: int = pa.Field(ge=0, description="signal rows the live worker wrote")
    trades_landed: int = pa.Field(ge=0)
    orders: int = pa.Field(ge=0)
    fills: int = pa.Field(ge=0)
    restarts_total: int = pa.Field(ge=0, description="worker restarts by the supervisor")
    export_count: int = pa.Field(ge=0, description="Pushgateway pushes")
    error_count: int = pa.Field(ge=0, description="failed Pushgateway pushes")
    queue_dropped: int = pa.Field(ge=0)
    reconnect_count: int = pa.Field(ge=0)
    max_rss_mb: float = pa.Field(ge=0)
    duration_s: float = pa.Field(ge=0)


class FaultTimeline(pa.DataFrameModel):
    """One row per injected fault: when the system restarted the worker and saw data flow again."""

    fault: str
    kind: str
    restart_ms: int = pa.Field(nullable=True, description="injection → worker restarted")
    recovery_ms: int = pa.Field(nullable=True, description="injection → first fresh signal durable in both sinks")
    heal_ms: int = pa.Field(nullable=True, description="judged recovery: from the fault's end for timed faults")
    error: str = pa.Field(nullable=True)


def table_schema(*models: type[pa.DataFrameModel], prefixed: bool = False) -> dg.TableSchema:
    """The Dagster column schema of one or more contracts (several tables: columns named `table.column`)."""
    columns: list[dg.TableColumn] = []
    other: list[str] = []
    for model in models:
        schema = model.to_schema()
        table = _table_name(model)
        for name, col in schema.columns.items():
            checks = [c.error or c.name for c in col.checks]
            columns.append(dg.TableColumn(
                name=f"{table}.{name}" if prefixed else name,
                type=str(col.dtype),
                description=col.description,
                constraints=dg.TableColumnConstraints(nullable=bool(col.nullable), unique=bool(col.unique),
                                                      other=[str(c) for c in checks]),
            ))
        where = f"{table}: " if prefixed else ""
        if schema.unique:
            other.append(f"{where}unique ({', '.join(schema.unique)})")
        other.extend(f"{where}{c.error or c.name}" for c in schema.checks)
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=other))


def _table_name(model: type[pa.DataFrameModel]) -> str:
    return {"RawTrades": "trades", "RawBook": "book", "DeadLetters": "deadletters"}.get(model.__name__, model.__name__)


def column_schema(*models: type[pa.DataFrameModel], prefixed: bool = False) -> dict[str, dg.TableSchema]:
    """Definition metadata: `{"dagster/column_schema": ...}`."""
    return {COLUMN_SCHEMA: table_schema(*models, prefixed=prefixed)}


def validate(model: type[pa.DataFrameModel], frame: pl.DataFrame) -> tuple[bool, dict[str, Any]]:
    """Validate a collected frame lazily (all failures at once); (passed, metadata)."""
    try:
        model.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        return False, _failure_metadata(model, cases, len(frame))
    except SchemaError as exc:  # schema-level failure (missing column, wrong type)
        cases = pl.DataFrame({"check": [str(exc.check)], "failure_case": [str(exc)[:500]]})
        return False, _failure_metadata(model, cases, len(frame))
    return True, {"contract": model.__name__, "rows_checked": len(frame), "failure_cases": 0}


def _failure_metadata(model: type[pa.DataFrameModel], cases: pl.DataFrame, rows: int) -> dict[str, Any]:
    by_check = cases.group_by(pl.col("check").cast(pl.Utf8)).len().sort("len", descending=True)
    shown = cases.head(MAX_FAILURE_ROWS).with_columns(pl.all().cast(pl.Utf8))
    return {
        "contract": model.__name__,
        "rows_checked": rows,
        "failure_cases": len(cases),
        "failures_by_check": dg.MetadataValue.json({r["check"]: r["len"] for r in by_check.iter_rows(named=True)}),
        "failure_sample": dg.MetadataValue.md(markdown_table(shown)),
    }


def contract_check_spec(asset: str, model: type[pa.DataFrameModel], partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetCheckSpec:
    return partition_check(f"{model.__name__.lower()}_contract", asset, partitions_def, blocking=True,
                           description=f"pandera contract {model.__name__} (lazy validation; failure cases in metadata)")


def contract_result(asset: str, model: type[pa.DataFrameModel], frame: pl.DataFrame) -> dg.AssetCheckResult:
    passed, metadata = validate(model, frame)
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=f"{model.__name__.lower()}_contract",
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
    )
