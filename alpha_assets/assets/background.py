"""Contract checks that run beside the step's own I/O: a pandera validation of a day's table takes
seconds and mostly runs in polars (the GIL released), so it is started before the asset's output
is handed to the IO manager and its result is yielded after — the parquet write and the
validation then share the two cores instead of taking turns."""

from concurrent.futures import Future, ThreadPoolExecutor

import dagster as dg
import pandera.polars as pa
import polars as pl

from alpha_assets.contracts import contract_result

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="contract-check")


def contract_result_soon(asset: str, model: type[pa.DataFrameModel], frame: pl.DataFrame) -> Future[dg.AssetCheckResult]:
    """`contract_result(asset, model, frame)`, computing in the background; `.result()` to yield it."""
    return _POOL.submit(contract_result, asset, model, frame)
