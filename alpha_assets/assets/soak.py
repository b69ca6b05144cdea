"""soak_report: one long op that runs the supervised live process tree for `minutes`."""


from typing import Literal

import dagster as dg
from pydantic import Field

from alpha_assets.markdown import markdown_kv
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.settings import settings
from alpha_assets.version import code_version


class SoakRunConfig(dg.Config):
    """Run config of soak_60m (`ops: {soak_report: {config: {...}}}`)."""

    minutes: float = Field(60.0, gt=0, le=24 * 60, description="how long the live tree runs")
    symbols: list[str] = Field(default_factory=lambda: list(settings().symbols))
    sink: Literal["jsonl", "sqlite", "dual"] = "dual"
    input_mode: Literal["raw", "preview"] = "raw"
    feed: Literal["simulator", "binance", "replay"] = "simulator"
    export_interval_s: float = Field(60.0, gt=0, le=3600)
    health_interval_s: float = Field(10.0, gt=0, le=600)
    pushgateway_url: str = Field("", description="empty: alpha_assets.yaml, then TIMESERIES_URL")
    seed: int = Field(default_factory=lambda: settings().market.seed, ge=0)


def soak_metadata(result: dict, passed: bool) -> dict[str, object]:
    """Flatten the soak figures into plottable numbers plus a readable table."""
    numbers = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {
        **numbers,
        "soak_passed": passed,
        "code_version": code_version(),
        "summary": dg.MetadataValue.md(markdown_kv({**numbers, "soak_passed": passed})),
    }


@dg.asset(
    group_name="live",
    description="Runs harvest → signal → broker → report as supervised processes for `minutes`, then "
    "writes run and source manifests; its figures are this asset's metadata. The landed data is "
    "an ordinary partition for the batch assets.",
    op_tags={"alpha/long_running": "true"},
)
def soak_report(context: dg.AssetExecutionContext, config: SoakRunConfig, data_root: DataRoot) -> dg.MaterializeResult:
    from alpha_assets.live.soak import run_soak, soak_config_from

    soak_cfg = soak_config_from(config.model_dump())
    result = run_soak(soak_cfg, data_root.path, context.run_id)
    figures = result.figures()
    context.log.info(f"soak finished: {figures}")
    return dg.MaterializeResult(metadata=soak_metadata(figures, result.passed))
