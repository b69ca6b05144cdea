"""Which deployment the code location is loaded for: `ALPHA_DEPLOYMENT=local|scale`.

Each deployment has its resource set (`default_resources`, `scale_resources`): what differs is
where they point, which variant of a resource provides the behaviour, and how steps run. `local`
(the default: the README's two commands, `dagster dev`) keeps the data root at `ALPHA_DATA_ROOT`
or `./var` and runs a partition's steps in process. `scale` runs steps on
Celery workers (see `alpha_assets.scale`) and needs the shared data root set explicitly: a worker
that fell back to its own `./var` would write where nobody reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast, get_args

import dagster as dg

from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.engine import SignalEngine
from alpha_assets.resources.executor import BacktestExecutorResource
from alpha_assets.resources.market_source import MarketSource
from alpha_assets.resources.parquet_io import PolarsParquetIOManager
from alpha_assets.resources.sinks import SignalSinks
from alpha_assets.scale.settings import DEPLOYMENT, ScaleConfigError

Deployment = Literal["local", "scale"]


def deployment(environ: Mapping[str, str] | None = None) -> Deployment:
    env = os.environ if environ is None else environ
    name = env.get(DEPLOYMENT, "local").strip().lower() or "local"
    if name not in get_args(Deployment):
        raise ScaleConfigError(f"{DEPLOYMENT} must be one of {list(get_args(Deployment))}, got {name!r}")
    return cast(Deployment, name)


def default_resources(data_root: str | Path | None = None) -> dict[str, object]:
    """The embedded default (`local`): files under one data root (`ALPHA_DATA_ROOT` or ./var unless
    given), market data by availability, the backtest executor. The parquet IO manager and the
    assets share the one `DataRoot`, so a test or a deployment sets the root in one place."""
    root = DataRoot(root=str(data_root)) if data_root is not None else DataRoot.from_environment()
    return {
        "data_root": root,
        "market_source": MarketSource(),
        "parquet_io": PolarsParquetIOManager(data_root=root),
        "engine": SignalEngine(),
        "sinks": SignalSinks.from_environment(),
        "executor": BacktestExecutorResource(),
    }


def scale_resources(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The scale-out profile: the same resources on the shared data root every worker mounts."""
    from alpha_assets.scale.settings import scale_settings

    return default_resources(scale_settings(environ).data_root)


def deployment_resources(name: Deployment, environ: Mapping[str, str] | None = None) -> dict[str, object]:
    return scale_resources(environ) if name == "scale" else default_resources()


def deployment_executor(name: Deployment, environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    if name == "scale":
        from alpha_assets.scale.celery_config import scale_executor
        from alpha_assets.scale.settings import scale_settings

        return scale_executor(scale_settings(environ))
    # Steps of one partition are small: re-importing the code per step (multiprocess) costs more
    # than it saves on two cores.
    return dg.in_process_executor
