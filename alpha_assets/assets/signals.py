"""features and signals: the v13 engine over a partition; signals also go to the sinks."""


from collections.abc import Iterator

import dagster as dg
import polars as pl

from alpha_assets.assets.background import contract_result_soon
from alpha_assets.assets.common import OWNERS, ROW_COUNT, data_version, event_span, tags, versioned_output
from alpha_assets.contracts import Features, Signals, column_schema, contract_check_spec
from alpha_assets.engine.config import EngineConfig
from alpha_assets.engine.signal_inputs import SIGNAL_INPUTS
from alpha_assets.figures import num, rounded
from alpha_assets.markdown import markdown_kv, markdown_table
from alpha_assets.partitions import date_symbol_partitions, split_key
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.engine import SignalEngine
from alpha_assets.resources.market_source import MarketSource
from alpha_assets.resources.parquet_io import read_only
from alpha_assets.resources.sinks import SIGNAL_SINKS_POOL, SignalSinks
from alpha_assets.signal_stats import signal_figures
from alpha_assets.version import source_version

IO = "parquet_io"


def engine_for_partition(cfg: EngineConfig, source: MarketSource, data_root: DataRoot, date: str,
                         symbol: str) -> EngineConfig:
    """A partition a soak landed is evaluated in the book-join mode that soak used (live/batch parity)."""
    if source.resolve(date, symbol, data_root.path) != "landing":
        return cfg
    from alpha_assets.market.landing import landed_book_join

    mode = landed_book_join(data_root.path, date, symbol)
    return cfg if mode is None or mode == cfg.book_join else cfg.model_copy(update={"book_join": mode})


@dg.asset(
    partitions_def=date_symbol_partitions,
    io_manager_key=IO,
    group_name="signals",
    kinds={"polars", "parquet"},
    owners=OWNERS,
    tags=tags("batch", "signals"),
    code_version=source_version("alpha_assets.assets.signals", "alpha_assets.engine"),
    metadata=column_schema(Features),
    check_specs=[contract_check_spec("features", Features, date_symbol_partitions)],
    ins={"harvest_raw": dg.AssetIn(metadata=read_only(tables={"trades": None, "book": None}))},
    description="One row per trade evaluation: OFI and CVD features against the book row the engine's book_join "
    "picks (event_time: latest at or before the trade's event time; arrival: latest received before it).",
)
def features(
    context: dg.AssetExecutionContext, harvest_raw: dict[str, pl.DataFrame], engine: SignalEngine,
    market_source: MarketSource, data_root: DataRoot,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    from alpha_assets.engine.pipeline import compute_features  # numba loads in the step, not at code load

    cfg = engine_for_partition(engine.config(), market_source, data_root, *split_key(context))
    frame = compute_features(harvest_raw["trades"], harvest_raw["book"], cfg)
    figures = rounded({
        "rows": frame.height,
        "ofi_warmup_rows": int(frame["z_ofi"].is_null().sum()),
        "cvd_warmup_rows": int(frame["z_cvd"].is_null().sum()),
        "z_ofi_abs_mean": num(frame["z_ofi"].abs().mean() or 0.0),
        "z_cvd_abs_mean": num(frame["z_cvd"].abs().mean() or 0.0),
        "lag_ms_p50": num(frame["lag_ms"].median() or 0.0),
        "lag_ms_p99": float(frame["lag_ms"].quantile(0.99) or 0.0),
    })
    figures["book_join"] = cfg.book_join  # a soak-landed partition: the soak's mode, whatever the resource says
    check = contract_result_soon("features", Features, frame)
    yield versioned_output(frame, data_version=data_version(frame),
                    metadata={**figures, **event_span(frame),
                              "summary": dg.MetadataValue.md(markdown_kv(figures)), ROW_COUNT: frame.height})
    yield check.result()


@dg.asset(
    partitions_def=date_symbol_partitions,
    io_manager_key=IO,
    group_name="signals",
    kinds={"polars", "parquet", "sqlite"},
    owners=OWNERS,
    tags=tags("batch", "signals"),
    code_version=source_version("alpha_assets.assets.signals", "alpha_assets.engine", "alpha_assets.sinks",
                                "alpha_assets.signal_stats"),
    metadata=column_schema(Signals),
    check_specs=[contract_check_spec("signals", Signals, date_symbol_partitions)],
    pool=SIGNAL_SINKS_POOL,
    ins={"features": dg.AssetIn(metadata=read_only(columns=SIGNAL_INPUTS))},  # 16 of the 45 columns
    description="Fusion score, signal type, guards and confirm per evaluation; written to the JSONL and "
    "SQLite sinks under run_id = the Dagster run id.",
)
def signals(
    context: dg.AssetExecutionContext, features: pl.DataFrame, engine: SignalEngine, sinks: SignalSinks,
    data_root: DataRoot,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    from alpha_assets.engine.pipeline import compute_signals

    frame = compute_signals(features, engine.config(), run_id=context.run_id)
    check = contract_result_soon("signals", Signals, frame)  # validates while the sinks write
    counters = sinks.write(frame, data_root.runtime)
    figures = rounded(signal_figures(frame))
    types = frame.group_by("signal_type").len().sort("signal_type")
    guards = (
        frame.filter(pl.col("guard_reason").is_not_null() & (pl.col("guard_reason") != ""))
        .group_by("guard_reason").len().sort("len", descending=True)
    )
    # run_id and created_at differ per run by design: the version covers what a signal says.
    yield versioned_output(
        frame,
        data_version=data_version(frame.drop("run_id")),
        metadata={
            **figures,
            **event_span(frame, "ts_ms"),
            "run_id": context.run_id,
            "sink": sinks.kind,
            "sink_counters": dg.MetadataValue.json(counters),
            "signal_types": dg.MetadataValue.md(markdown_table(types)),
            "guard_reasons": dg.MetadataValue.md(markdown_table(guards)),
            ROW_COUNT: frame.height,
        },
    )
    yield check.result()
