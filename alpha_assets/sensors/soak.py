"""soak_sensor: launch soak_60m for an untested code version and then on a cadence."""


import time
from dataclasses import dataclass

import dagster as dg

from alpha_assets.jobs import soak_max_runtime_s
from alpha_assets.settings import settings
from alpha_assets.version import code_version

SOAK_JOB = "soak_60m"
SOAK_ASSET = "soak_report"
CODE_VERSION_TAG = "alpha/code_version"
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class SoakDecision:
    run_key: str | None
    reason: str


def decide_soak(
    *, now_s: float, version: str, version_has_passing_soak: bool, running: bool,
    last_soak_start_s: float | None, cadence_s: float,
) -> SoakDecision:
    """Pure decision so the rule can be read (and tested) apart from the instance queries."""
    if running:
        return SoakDecision(None, "a soak run is already in progress")
    if not version_has_passing_soak:
        return SoakDecision(f"soak-{version}", f"code version {version} has no passing soak yet")
    if last_soak_start_s is None or now_s - last_soak_start_s >= cadence_s:
        slot = int(now_s // cadence_s)
        return SoakDecision(f"soak-{version}-cadence-{slot}", "cadence elapsed since the last soak")
    due_in = cadence_s - (now_s - last_soak_start_s)
    return SoakDecision(None, f"code version {version} already soaked; next cadence soak in {due_in / 3600:.1f} h")


def version_has_passing_soak(instance: dg.DagsterInstance, version: str, lookback: int = 50) -> bool:
    """A soak_report materialisation of this code version whose checks passed (however launched)."""
    records = instance.fetch_materializations(dg.AssetKey(SOAK_ASSET), limit=lookback).records
    for record in records:
        mat = record.asset_materialization
        if mat is None:
            continue
        meta = mat.metadata
        if _value(meta.get("code_version")) == version and _value(meta.get("soak_passed")) is True:
            return True
    return False


def _value(entry: object) -> object:
    return getattr(entry, "value", entry)


@dg.sensor(
    job_name=SOAK_JOB,
    minimum_interval_seconds=settings().soak.sensor_interval_s,
    description="Launches soak_60m when the code version has no passing soak, then every cadence_hours; "
    "never while one is running (run_key dedupe).",
)
def soak_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    version = code_version()
    instance = context.instance
    running = bool(instance.get_run_records(dg.RunsFilter(job_name=SOAK_JOB, statuses=ACTIVE), limit=1))
    passing = version_has_passing_soak(instance, version)
    last = instance.get_run_records(dg.RunsFilter(job_name=SOAK_JOB), limit=1)
    last_start = (last[0].start_time or last[0].create_timestamp.timestamp()) if last else None
    cfg = settings().soak
    decision = decide_soak(
        # Orchestration (not computation) may read the clock: the cadence is wall-clock time.
        now_s=time.time(),
        version=version,
        version_has_passing_soak=passing,
        running=running,
        last_soak_start_s=last_start,
        cadence_s=cfg.cadence_hours * 3600,
    )
    if decision.run_key is None:
        return dg.SkipReason(decision.reason)
    return dg.RunRequest(
        run_key=decision.run_key,
        run_config={"ops": {"soak_report": {"config": {"minutes": cfg.minutes}}}},
        tags={CODE_VERSION_TAG: version, "alpha/trigger": decision.reason,
              # run monitoring (scale-out profile) stops a soak that overruns its configured minutes
              "dagster/max_runtime": str(soak_max_runtime_s(cfg.minutes))},
    )

