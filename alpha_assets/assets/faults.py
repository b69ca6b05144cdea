"""fault_injection_report: a soak with faults injected mid-run; recovery timeline and loss as metadata."""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from alpha_assets.assets.common import OWNERS, ROW_COUNT, tags
from alpha_assets.assets.soak import progress_events, run_config_model
from alpha_assets.contracts import FaultTimeline, column_schema
from alpha_assets.faults.plan import EVERY_KIND_RUN_S, FaultPlan, FaultSpec, every_kind_plan
from alpha_assets.figures import rounded
from alpha_assets.live.soak_config import SoakConfig
from alpha_assets.markdown import markdown_table
from alpha_assets.progress import Background
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.sinks import SIGNAL_SINKS_POOL
from alpha_assets.settings import settings
from alpha_assets.version import code_version

ASSET = "fault_injection_report"
# Acceptance checks of the report; each gathers the report's own per-fault checks of that kind.
CHECKS = {
    "recovery_within_limit": "every fault recovered (health green) within recovery_limit_s (v13: 12 s) of its "
    "injection, or of its end for faults that last a while",
    "zero_lost": "no trade and no signal lost across the faults",
    "zero_doubled": "no trade and no signal doubled across the faults",
    "parity_after_faults": "JSONL and SQLite sinks agree (< 0.25 %) after the faults",
    "run_bounded": "the run ended within its minutes plus the grace; every injector acted",
}
# The ≤ 2 s goal is a target, not a gate: a miss warns.
TARGET_CHECK = "recovery_within_target"


# One fault vocabulary: the run config's fault is the plan's FaultSpec, field by field (the checker
# sees a Config; Dagster every field).
_FaultConfig = run_config_model(FaultSpec, "FaultConfig")
if TYPE_CHECKING:
    FaultConfig = dg.Config
else:
    FaultConfig = _FaultConfig


def _default_faults() -> list:
    return [_FaultConfig(**f.model_dump(exclude_none=True)) for f in every_kind_plan(EVERY_KIND_RUN_S).faults]


def _plan_s(plan: FaultPlan) -> float:
    """How long a fault run lasts when `minutes` is not given (the default soak of faults.run)."""
    from alpha_assets.faults.run import default_soak

    return default_soak(plan, {}).minutes * 60


class FaultInjectionConfig(dg.Config):
    faults: list[FaultConfig] = Field(default_factory=_default_faults,
                                      description="default: every fault kind once (faults.plan.every_kind_plan)")
    recovery_limit_s: float = Field(12.0, gt=0, le=600)
    recovery_target_s: float = Field(2.0, gt=0, le=600)
    symbols: list[str] = Field(default_factory=lambda: list(settings().symbols))
    minutes: float | None = Field(None, gt=0, le=24 * 60, description="default: long enough for the plan")
    grace_s: float = Field(60.0, gt=0, le=3600, description="hard stop after minutes + grace")
    malformed_rate: float = Field(0.0, ge=0, le=0.5, description="share of simulator messages corrupted with a "
                                  "malformed kind during the run (alpha_assets.market.malformed)")
    # The restart policy is the soak's own (same fields, same defaults): the production policy unless changed.
    restart_backoff_s: list[float] = Field(default_factory=lambda: list(SoakConfig().restart_backoff_s),
                                           description=SoakConfig.model_fields["restart_backoff_s"].description)
    crash_loop_window_s: float = Field(SoakConfig.model_fields["crash_loop_window_s"].default, ge=0, le=24 * 3600,
                                       description=SoakConfig.model_fields["crash_loop_window_s"].description)


def group_checks(checks: list) -> dict[str, tuple[bool, str]]:  # list[faults.run.Check]
    """Fold the report's checks into the asset's fixed check names: (passed, reasons)."""
    buckets: dict[str, list] = {name: [] for name in CHECKS}
    for c in checks:
        if not c.gate:
            continue
        if c.name.startswith("recovery_ms["):
            buckets["recovery_within_limit"].append(c)
        elif c.name.endswith("_lost") or c.name in ("accounting", "signals_produced"):
            buckets["zero_lost"].append(c)
        elif c.name.endswith(("_doubled", "_phantom")):
            buckets["zero_doubled"].append(c)
        elif c.name == "sink_parity":
            buckets["parity_after_faults"].append(c)
        else:
            buckets["run_bounded"].append(c)
    return {name: (bool(cs) and all(c.passed for c in cs), "; ".join(f"{c.name}: {c.reason}" for c in cs if not c.passed)
                   or ("" if cs else "not evaluated: the run produced no figures for it"))
            for name, cs in buckets.items()}


@dg.asset(
    group_name="live",
    kinds={"python", "sqlite", "prometheus"},
    owners=OWNERS,
    tags=tags("live", "reliability"),
    code_version=code_version(),  # faults exercise all of the code
    metadata=column_schema(FaultTimeline),
    check_specs=[dg.AssetCheckSpec(name=n, asset=ASSET, description=d) for n, d in CHECKS.items()]
    + [dg.AssetCheckSpec(name=TARGET_CHECK, asset=ASSET,
                         description="slowest recovery within recovery_target_s (2 s); severity WARN")],
    description="A soak with faults injected mid-run under the soak's own restart policy (kill workers and "
    "redis-server, feed drop/stall, Pushgateway outage, locked SQLite, full spool, full landing zone): per-fault "
    "detected/restart/recovery/heal ms, loss accounting. Failed acceptance checks fail the run.",
    pool=SIGNAL_SINKS_POOL,
)
def fault_injection_report(context: dg.AssetExecutionContext, config: FaultInjectionConfig, data_root: DataRoot
                           ) -> Iterator[dg.AssetObservation | dg.MaterializeResult | dg.AssetCheckResult]:
    import polars as pl

    from alpha_assets.faults.run import run_fault_injection
    from alpha_assets.live.pushgateway import pushgateway_url

    plan = FaultPlan(faults=[f.model_dump(exclude_none=True) for f in config.faults],
                     recovery_limit_s=config.recovery_limit_s, recovery_target_s=config.recovery_target_s)
    overrides: dict = {"symbols": config.symbols, "malformed_rate": config.malformed_rate,
                       "restart_backoff_s": tuple(config.restart_backoff_s),
                       "crash_loop_window_s": config.crash_loop_window_s}
    if config.minutes:
        overrides["minutes"] = config.minutes
    if url := pushgateway_url():
        overrides["pushgateway_url"] = url
    work = Background(lambda on_progress, stop: run_fault_injection(
        plan, data_root.path, context.run_id, overrides, grace_s=config.grace_s, on_progress=on_progress, stop=stop),
        name=f"faults-{context.run_id}")
    yield from progress_events(context, ASSET, "fault soak", (config.minutes or 0) * 60 or _plan_s(plan), work)
    report = work.result()
    figures = rounded({k: v for k, v in report.figures().items()
                       if isinstance(v, int | float) and not isinstance(v, bool)})
    timeline = pl.DataFrame([
        {"fault": t.fault_id, "kind": t.kind, "detected_ms": t.detected_ms, "restart_ms": t.restart_ms,
         "recovery_ms": t.recovery_ms, "heal_ms": t.heal_ms, "error": t.error or t.skipped or ""}
        for t in report.timelines
    ]) if report.timelines else pl.DataFrame()
    context.log.info("fault injection recovery table\n" + report.table())
    yield dg.MaterializeResult(metadata={
        **figures,
        "passed": report.passed,
        "restart_policy": report.restart_policy,
        "started": dg.MetadataValue.timestamp(report.started_at),
        "ended": dg.MetadataValue.timestamp(report.ended_at),
        "timeline": dg.MetadataValue.md(markdown_table(timeline)),
        "artifact": dg.MetadataValue.path(report.artifact),
        ROW_COUNT: len(report.timelines),
    })
    checks = report.checks()
    grouped = group_checks(checks)
    for name, (passed, reason) in grouped.items():
        yield dg.AssetCheckResult(check_name=name, passed=passed, severity=dg.AssetCheckSeverity.ERROR,
                                  metadata={"reason": reason or "ok"})
    target = next(c for c in checks if c.name == "recovery_target_ms")
    yield dg.AssetCheckResult(check_name=TARGET_CHECK, passed=target.passed, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"slowest_heal_ms": target.value, "target_ms": target.threshold,
                                        "reason": target.reason or "ok"})
    failed = {name: reason for name, (passed, reason) in grouped.items() if not passed}
    if failed:  # results are recorded above; the run fails so `dagster job execute` exits 1 and CI can gate
        raise dg.Failure(description="fault_injection acceptance failed: "
                         + "; ".join(f"{n}: {r}" for n, r in failed.items()),
                         metadata={"failed_checks": dg.MetadataValue.json(failed)})
