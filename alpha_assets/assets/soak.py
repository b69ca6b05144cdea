"""soak_report: one long op that runs the supervised live process tree for `minutes`."""

import datetime as dt
from pathlib import Path
from typing import Any, get_args, get_origin

import dagster as dg
from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from alpha_assets.live.soak_config import SoakConfig
from alpha_assets.markdown import markdown_kv
from alpha_assets.market.landing import landing_partitions, mark_complete
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.sensors.alerts import pushgateway_url
from alpha_assets.settings import settings
from alpha_assets.version import code_version


def _dagster_field(name: str, info: FieldInfo) -> tuple[Any, FieldInfo]:
    """A soak config field as a Dagster config field: same name, type, default, bounds, description.
    Tuples become lists and nested models nested Config classes (what Dagster's config can carry)."""
    ann = info.annotation
    if get_origin(ann) is tuple:
        ann = list[get_args(ann)[0]]  # type: ignore[valid-type]
        default = list(info.default)
        return ann, FieldInfo.merge_field_infos(info, default=default, annotation=ann)
    if get_origin(ann) is list and isinstance(get_args(ann)[0], type) and issubclass(get_args(ann)[0], BaseModel):
        inner = run_config_model(get_args(ann)[0], f"{get_args(ann)[0].__name__}RunConfig")
        return list[inner], info  # type: ignore[valid-type]
    return ann, info


def run_config_model(model: type[BaseModel], name: str, **overrides: tuple[Any, FieldInfo]) -> type[dg.Config]:
    """A dg.Config class with every field of ``model`` (``overrides`` replace a field's default)."""
    fields = {n: overrides.get(n) or _dagster_field(n, f) for n, f in model.model_fields.items()}
    return create_model(name, __base__=dg.Config, __doc__=model.__doc__, **fields)  # type: ignore[call-overload]


# soak_60m's run config (`ops: {soak_report: {config: {...}}}`): every field of the soak's own model,
# with the project's symbols and seed as defaults.
SoakRunConfig = run_config_model(
    SoakConfig, "SoakRunConfig",
    symbols=(list[str], Field(default_factory=lambda: list(settings().symbols), min_length=1,
                              description="symbols to harvest (default: alpha_assets.yaml)")),
    seed=(int, Field(default_factory=lambda: settings().market.seed, ge=0, le=2**31 - 1,
                     description="simulator seed (default: alpha_assets.yaml market.seed)")),
)


def soak_metadata(figures: dict, checks: dict[str, bool], passed: bool) -> dict[str, object]:
    """Plottable numbers, the SLO checks, and a readable table."""
    numbers = {k: v for k, v in figures.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {
        **numbers,
        "soak_passed": passed,
        "code_version": code_version(),
        "checks": dg.MetadataValue.json(checks),
        "summary": dg.MetadataValue.md(markdown_kv({**numbers, "soak_passed": passed})),
    }


def complete_landed_partitions(root: Path, run_id: str, symbols: list[str], start: dt.date, end: dt.date) -> list[str]:
    """Mark the partitions this soak landed complete (stamp = run id) so the landing sensor runs the graph."""
    done = []
    for date, symbol in landing_partitions(root):
        if symbol in symbols and start <= dt.date.fromisoformat(date) <= end:
            mark_complete(root, date, symbol, run_id)
            done.append(f"{date}|{symbol}")
    return done


@dg.asset(
    group_name="live",
    check_specs=[dg.AssetCheckSpec(name="soak_slo", asset="soak_report",
                                   description="every soak SLO held: exports, no errors, nothing dropped, "
                                   "reconnects ≤ 3, RSS < 600 MB, open files < 256, parity 0")],
    description="Runs harvest → signal → broker → report as supervised processes for `minutes`, then "
    "writes run and source manifests; its figures are this asset's metadata. The landed data is "
    "an ordinary partition for the batch assets.",
    op_tags={"alpha/long_running": "true"},
)
def soak_report(context: dg.AssetExecutionContext, config: SoakRunConfig, data_root: DataRoot):  # type: ignore[valid-type]  # noqa: ANN201
    from alpha_assets.live.soak import run_soak, soak_config_from

    values = config.model_dump()
    values["pushgateway_url"] = values["pushgateway_url"] or pushgateway_url()
    gateway = None
    if not values["pushgateway_url"]:
        # No gateway configured: run a local one for the soak so its metrics are exported and checked.
        from alpha_assets.faults.adapters import ManagedGateway

        try:
            gateway = ManagedGateway(data_root.path / "logs" / "pushgateway" / f"{context.run_id}.log").start()
            values["pushgateway_url"] = gateway.url
            context.log.info(f"no Pushgateway configured: started a local one at {gateway.url}")
        except (FileNotFoundError, RuntimeError) as exc:
            context.log.warning(f"no Pushgateway configured and none could be started ({exc}); metrics not exported")
    soak_cfg = soak_config_from(values)
    # Orchestration may read the clock: the simulated exchange stamps its events with it.
    start = dt.datetime.now(dt.UTC).date()
    try:
        result = run_soak(soak_cfg, data_root.path, context.run_id)
    finally:
        if gateway is not None:
            gateway.stop()
    end = dt.datetime.now(dt.UTC).date()
    landed = complete_landed_partitions(data_root.path, context.run_id, soak_cfg.symbols, start, end)
    figures = result.figures()
    context.log.info(f"soak finished: passed={result.passed} landed={landed} figures={figures}")
    yield dg.MaterializeResult(metadata={
        **soak_metadata(figures, result.checks, result.passed),
        "landed_partitions": dg.MetadataValue.json(landed),
        "run_manifest": dg.MetadataValue.path(str(result.run_manifest)),
        "source_manifest": dg.MetadataValue.path(str(result.source_manifest)),
    })
    failed = sorted(k for k, ok in result.checks.items() if not ok)
    yield dg.AssetCheckResult(
        check_name="soak_slo", passed=result.passed, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failed": dg.MetadataValue.json(failed), **{k: bool(v) for k, v in result.checks.items()}},
    )
