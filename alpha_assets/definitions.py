"""The code location: assets, checks, jobs, sensors and resources, wired together."""

from __future__ import annotations

import dagster as dg

from alpha_assets.assets import harvest
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.market_source import MarketSource
from alpha_assets.resources.parquet_io import PolarsParquetIOManager

batch_assets = dg.load_assets_from_modules([harvest])

harvest_job = dg.define_asset_job(
    "harvest_job",
    selection=dg.AssetSelection.groups("harvest"),
    description="Raw and preview harvest for a date × symbol partition.",
)

defs = dg.Definitions(
    assets=batch_assets,
    jobs=[harvest_job],
    resources={
        "data_root": DataRoot(),
        "market_source": MarketSource(),
        "parquet_io": PolarsParquetIOManager(),
    },
    # Steps of one partition are small: re-importing the code per step (multiprocess) costs more
    # than it saves on two cores. Deployments can switch executors in run config.
    executor=dg.in_process_executor,
)
