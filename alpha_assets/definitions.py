"""The code location: assets, checks, jobs, sensors and resources, wired together."""

from __future__ import annotations

import dagster as dg

from alpha_assets.assets import faults, harvest, orders, parity, reports, signals, soak
from alpha_assets.deployment import default_resources, deployment, deployment_executor, deployment_resources
from alpha_assets.jobs import daily_pipeline, fault_injection, harvest_job, soak_60m
from alpha_assets.sensors.alerts import run_failure_alert
from alpha_assets.sensors.landing import landing_sensor
from alpha_assets.sensors.soak import soak_sensor

ASSETS = dg.load_assets_from_modules([harvest, signals, parity, orders, reports, soak, faults])

DEPLOYMENT = deployment()

__all__ = ["ASSETS", "DEPLOYMENT", "default_resources", "defs"]


defs = dg.Definitions(
    assets=ASSETS,
    jobs=[harvest_job, daily_pipeline, soak_60m, fault_injection],
    sensors=[soak_sensor, landing_sensor, run_failure_alert],
    # ALPHA_DEPLOYMENT=local (default): in process, ./var; =scale: Celery workers, shared data root.
    resources=deployment_resources(DEPLOYMENT),
    executor=deployment_executor(DEPLOYMENT),
)
