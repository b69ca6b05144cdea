"""The code location: assets, checks, jobs, sensors and resources, wired together."""

from __future__ import annotations

import dagster as dg

from alpha_assets.assets import faults, harvest, orders, parity, reports, signals, soak
from alpha_assets.assets.landing import LANDING_ZONE
from alpha_assets.jobs import daily_pipeline, daily_rollup, fault_injection, harvest_job, soak_60m
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.engine import SignalEngine
from alpha_assets.resources.executor import SignalExecutor
from alpha_assets.resources.market_source import MarketSource
from alpha_assets.resources.parquet_io import PolarsParquetIOManager
from alpha_assets.resources.sinks import SignalSinks
from alpha_assets.sensors.alerts import run_failure_alert
from alpha_assets.sensors.landing import landing_sensor
from alpha_assets.sensors.soak import soak_sensor

ASSETS = dg.load_assets_from_modules([harvest, signals, parity, orders, reports, soak, faults])

# Assets that follow their upstream do so by declarative automation (this sensor evaluates them);
# sensors remain for what automation cannot do: the soak cadence and failure alerts, and the
# landing zone's completion stamps.
automation = dg.AutomationConditionSensorDefinition(
    "follow_upstream_automation",
    target=dg.AssetSelection.assets("daily_summary_rollup"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Evaluates the automation conditions (daily_summary_rollup follows every symbol's summary).",
)


def default_resources() -> dict[str, object]:
    """The embedded default: local files under the data root, simulator/replay/landing by availability."""
    return {
        "data_root": DataRoot(),
        "market_source": MarketSource(),
        "parquet_io": PolarsParquetIOManager(),
        "engine": SignalEngine(),
        "sinks": SignalSinks(),
        "executor": SignalExecutor(),
    }


defs = dg.Definitions(
    assets=[*ASSETS, LANDING_ZONE],
    jobs=[harvest_job, daily_pipeline, daily_rollup, soak_60m, fault_injection],
    sensors=[soak_sensor, landing_sensor, run_failure_alert, automation],
    resources=default_resources(),
    # Steps of one partition are small: re-importing the code per step (multiprocess) costs more
    # than it saves on two cores. Deployments can choose another executor in run config.
    executor=dg.in_process_executor,
)
