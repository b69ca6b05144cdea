"""The code location: assets, checks, jobs, sensors and resources, wired together."""

from __future__ import annotations

import dagster as dg

from alpha_assets.assets import faults, harvest, orders, parity, reports, signals, soak
from alpha_assets.assets.landing import LANDING_ZONE
from alpha_assets.deployment import default_resources, deployment, deployment_executor, deployment_resources
from alpha_assets.jobs import daily_pipeline, daily_rollup, fault_injection, harvest_job, soak_60m
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

DEPLOYMENT = deployment()

__all__ = ["ASSETS", "DEPLOYMENT", "default_resources", "defs"]


defs = dg.Definitions(
    assets=[*ASSETS, LANDING_ZONE],
    jobs=[harvest_job, daily_pipeline, daily_rollup, soak_60m, fault_injection],
    sensors=[soak_sensor, landing_sensor, run_failure_alert, automation],
    # ALPHA_DEPLOYMENT=local (default): in process, ./var; =scale: Celery workers, shared data root.
    resources=deployment_resources(DEPLOYMENT),
    executor=deployment_executor(DEPLOYMENT),
)
