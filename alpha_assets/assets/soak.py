"""soak_report: one long op that runs the supervised live process tree for `minutes`."""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args, get_origin

import dagster as dg
from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from alpha_assets.assets.common import OWNERS, ROW_COUNT, tags
from alpha_assets.assets.landing import landed_partition
from alpha_assets.contracts import SoakFigures, column_schema
from alpha_assets.figures import rounded
from alpha_assets.live.gateway import local_gateway
from alpha_assets.live.pushgateway import pushgateway_url
from alpha_assets.live.soak_config import SoakConfig
from alpha_assets.markdown import markdown_kv
from alpha_assets.market.landing import landing_partitions, mark_complete
from alpha_assets.progress import Background, TerminalBar, progress_line, progress_metadata
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.sinks import SIGNAL_SINKS_POOL
from alpha_assets.settings import settings
from alpha_assets.version import code_version


def _dagster_field(name: str, info: FieldInfo) -> tuple[Any, FieldInfo]:
    """A soak config field as a Dagster config field: same name, type, default, bounds, description.
    Tuples become lists and nested models nested Config classes (what Dagster's config can carry)."""
    ann = info.annotation
    if get_origin(ann) is tuple:
        ann = cast(Any, list)[get_args(ann)[0]]
        return ann, FieldInfo.merge_field_infos(info, default=list(info.default), annotation=ann)
    if get_origin(ann) is list and isinstance(get_args(ann)[0], type) and issubclass(get_args(ann)[0], BaseModel):
        inner = run_config_model(get_args(ann)[0], f"{get_args(ann)[0].__name__}RunConfig")
        return cast(Any, list)[inner], info
    return ann, info


def run_config_model(model: type[BaseModel], name: str, **fields: tuple[Any, Any]) -> type[dg.Config]:
    """A dg.Config class with every field of ``model``; ``fields`` replace one (its default) or add one."""
    out: dict[str, Any] = {n: fields.get(n) or _dagster_field(n, f) for n, f in model.model_fields.items()}
    out |= {n: f for n, f in fields.items() if n not in out}
    made: type[dg.Config] = create_model(name, __base__=dg.Config, __doc__=model.__doc__, **out)
    return made


# soak_60m's run config (`ops: {soak_report: {config: {...}}}`): every field of the soak's own model,
# with the project's symbols and seed as defaults, and how often the op reports progress.
_SoakRunConfig = run_config_model(
    SoakConfig, "SoakRunConfig",
    symbols=(list[str], Field(default_factory=lambda: list(settings().symbols), min_length=1,
                              description="symbols to harvest (default: alpha_assets.yaml)")),
    seed=(int, Field(default_factory=lambda: settings().market.seed, ge=0, le=2**31 - 1,
                     description="simulator seed (default: alpha_assets.yaml market.seed)")),
    progress_interval_s=(float, Field(60.0, gt=0, le=3600,
                                      description="a progress line and a soak_report observation this often")),
)
# the checker sees a Config; Dagster sees every field (it reads the class at definition time)
if TYPE_CHECKING:
    SoakRunConfig = dg.Config
else:
    SoakRunConfig = _SoakRunConfig


def soak_metadata(figures: dict, checks: dict[str, bool], passed: bool) -> dict[str, Any]:
    """Plottable numbers, the SLO checks, and a readable table."""
    numbers = rounded({k: v for k, v in figures.items() if isinstance(v, int | float) and not isinstance(v, bool)})
    return {
        **numbers,
        "soak_passed": passed,
        "code_version": code_version(),
        "checks": dg.MetadataValue.json(checks),
        "summary": dg.MetadataValue.md(markdown_kv({**numbers, "soak_passed": passed})),
        ROW_COUNT: 1,  # one SoakFigures record per run
    }


def complete_landed_partitions(root: Path, run_id: str, symbols: list[str], start: dt.date, end: dt.date) -> list[str]:
    """Mark the partitions this soak landed complete (stamp = run id) so the landing sensor runs the graph."""
    done = []
    for date, symbol in landing_partitions(root):
        if symbol in symbols and start <= dt.date.fromisoformat(date) <= end:
            mark_complete(root, date, symbol, run_id)
            done.append(f"{date}|{symbol}")
    return done


def progress_events(context: dg.AssetExecutionContext, asset: str, what: str, total_s: float,
                    work: Background) -> Iterator[dg.AssetObservation]:
    """While `work` runs: a log line, a terminal bar and an observation of `asset` per report.
    An interrupted run (terminate in the UI, Ctrl-C) stops the work in order before it ends."""
    bar = TerminalBar(total_s, what)
    try:
        for p in work.progress():
            context.log.info(progress_line(p, what))
            bar.update(p)
            yield dg.AssetObservation(asset_key=asset, metadata={**progress_metadata(p), "progress": True})
    except BaseException:
        work.stop()
        raise
    finally:
        bar.close()


@dg.asset(
    group_name="live",
    kinds={"python", "sqlite", "prometheus"},
    owners=OWNERS,
    tags=tags("live", "reliability"),
    code_version=code_version(),  # the soak exercises all of the code
    metadata=column_schema(SoakFigures),
    check_specs=[dg.AssetCheckSpec(name="soak_slo", asset="soak_report",
                                   description="every soak SLO held: exports, no errors, nothing dropped, "
                                   "reconnects ≤ 3, RSS < 600 MB, open files < 256, and both live sinks read back "
                                   "equal key by key (parity 0); a failure fails the run")],
    description="Runs harvest → lander → signal → broker → report on Redis streams as supervised processes for "
    "`minutes`, drains them, then "
    "writes run and source manifests; its figures are this asset's metadata. The landed data is "
    "an ordinary partition for the batch assets.",
    op_tags={"alpha/long_running": "true"},
    pool=SIGNAL_SINKS_POOL,  # the live signal worker holds the sinks for the whole soak
)
def soak_report(context: dg.AssetExecutionContext, config: SoakRunConfig, data_root: DataRoot
                ) -> Iterator[dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckResult | dg.MaterializeResult]:
    from alpha_assets.live.soak import run_soak, soak_config_from

    values = config.model_dump()
    progress_interval_s = values.pop("progress_interval_s")
    values["pushgateway_url"], gateway, note = local_gateway(pushgateway_url(values["pushgateway_url"]),
                                                             data_root.layout.pushgateway_log(context.run_id))
    (context.log.info if values["pushgateway_url"] else context.log.warning)(note)
    soak_cfg = soak_config_from(values)
    # Orchestration may read the clock: the simulated exchange stamps its events with it.
    started = dt.datetime.now(dt.UTC)
    work = Background(lambda on_progress, stop: run_soak(soak_cfg, data_root.path, context.run_id,
                                                         on_progress=on_progress, stop=stop,
                                                         progress_interval_s=progress_interval_s),
                      name=f"soak-{context.run_id}")
    try:
        yield from progress_events(context, "soak_report", "soak", soak_cfg.minutes * 60, work)
        result = work.result()
    finally:
        if gateway is not None:
            gateway.stop()
    ended = dt.datetime.now(dt.UTC)
    landed = complete_landed_partitions(data_root.path, context.run_id, soak_cfg.symbols, started.date(), ended.date())
    for key in landed:
        yield landed_partition(data_root.path, key, context.run_id)
    figures = result.figures()
    context.log.info(f"soak finished: passed={result.passed} landed={landed} figures={rounded(figures)}")
    yield dg.MaterializeResult(metadata={
        **soak_metadata(figures, result.checks, result.passed),
        "started": dg.MetadataValue.timestamp(started),
        "ended": dg.MetadataValue.timestamp(ended),
        "landed_partitions": dg.MetadataValue.json(landed),
        "run_manifest": dg.MetadataValue.path(str(result.run_manifest)),
        "source_manifest": dg.MetadataValue.path(str(result.source_manifest)),
    })
    failed = sorted(k for k, ok in result.checks.items() if not ok)
    yield dg.AssetCheckResult(
        check_name="soak_slo", passed=result.passed, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failed": dg.MetadataValue.json(failed), **{k: bool(v) for k, v in result.checks.items()}},
    )
    if failed:  # recorded above; the run fails so `dagster job execute` exits 1 and CI can gate on it
        raise dg.Failure(description=f"soak_60m acceptance failed: {', '.join(failed)}",
                         metadata={"failed_checks": dg.MetadataValue.json(failed)})
