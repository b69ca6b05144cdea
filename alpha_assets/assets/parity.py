"""parity_diff: the JSONL and SQLite sinks read back for one run and partition, compared."""


import json
from collections.abc import Iterator

import dagster as dg
import polars as pl

from alpha_assets.assets.common import OWNERS, ROW_COUNT, data_version, tags, versioned_output
from alpha_assets.contracts import ParityDiff, column_schema, contract_check_spec, contract_result
from alpha_assets.markdown import markdown_table
from alpha_assets.partitions import date_symbol_partitions, partition_check, split_key
from alpha_assets.reports.atomic import write_text_atomic
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.parquet_io import read_only
from alpha_assets.resources.sinks import SignalSinks
from alpha_assets.signal_contract import PARITY_LIMIT
from alpha_assets.version import source_version


@dg.asset(
    partitions_def=date_symbol_partitions,
    io_manager_key="parquet_io",
    group_name="signals",
    kinds={"polars", "parquet", "sqlite"},
    owners=OWNERS,
    tags=tags("batch", "signals"),
    code_version=source_version("alpha_assets.assets.parity", "alpha_assets.sinks"),
    metadata=column_schema(ParityDiff),
    check_specs=[
        partition_check("sink_parity", "parity_diff", date_symbol_partitions, blocking=True,
                        description="JSONL and SQLite sinks agree: largest relative difference < 0.25 % (target 0)"),
        contract_check_spec("parity_diff", ParityDiff, date_symbol_partitions),
    ],
    ins={"signals": dg.AssetIn(metadata=read_only(columns=["run_id"]))},  # the run id is all it reads
    description="Both sinks read back for the signals' run_id and partition: totals, per-type counts, confirm, "
    "strong ratio and row-level anti-joins / field mismatches.",
)
def parity_diff(
    context: dg.AssetExecutionContext, signals: pl.DataFrame, sinks: SignalSinks, data_root: DataRoot
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    date, symbol = split_key(context)
    run_ids = signals["run_id"].unique().to_list() if signals.height else [context.run_id]
    run_id = run_ids[0]
    # the SQLite day comes from the bulk process while the JSONL is parsed and compared an hour at a time
    result = sinks.parity(data_root.runtime, run_id=run_id, symbol=symbol, date=date)
    worst = float(result.max_rel_diff)
    # two empty sinks agree with each other, but not with a signals asset that has rows
    unwritten = signals.height > 0 and result.total_a == 0 and result.total_b == 0
    passed = result.passed(PARITY_LIMIT) and not unwritten
    reason = (f"both sinks are empty for run {run_id} while signals has {signals.height} rows" if unwritten
              else "" if passed else f"max_rel_diff {worst} ≥ {PARITY_LIMIT} ({result.worst_figure})")
    payload = {"run_id": run_id, "date": date, "symbol": symbol, "threshold": PARITY_LIMIT,
               "passed": passed, **result.model_dump()}
    artifact = write_text_atomic(data_root.layout.parity_file(run_id, date, symbol),
                                 json.dumps(payload, indent=2, sort_keys=True, default=str))
    table = result.to_frame()
    yield versioned_output(
        table,
        data_version=data_version(table),
        metadata={
            "run_id": run_id,
            "max_rel_diff": worst,
            "rows_jsonl": result.total_a,
            "rows_sqlite": result.total_b,
            "rows_only_jsonl": result.only_in_a,
            "rows_only_sqlite": result.only_in_b,
            "rows_mismatched": result.mismatched_rows,
            "worst_figure": result.worst_figure or "",
            "figures": dg.MetadataValue.md(markdown_table(table, max_rows=50)),
            "artifact": dg.MetadataValue.path(str(artifact)),
            ROW_COUNT: table.height,
        },
    )
    yield dg.AssetCheckResult(
        asset_key="parity_diff", check_name="sink_parity", passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"max_rel_diff": worst, "threshold": PARITY_LIMIT, "rows_jsonl": result.total_a,
                  "rows_sqlite": result.total_b, "rows_signals": signals.height, "reason": reason or "ok"},
    )
    yield contract_result("parity_diff", ParityDiff, table)

