"""Dagster instance storage that lives under the data root (`ALPHA_DATA_ROOT`, default ./var).

`dagster.yaml` names these classes, so two data roots never share one instance: runs, event
logs, schedules, artifacts and compute logs of a data root sit in `<data root>/dagster/`.
Each class takes an optional `subdir` (relative to `<data root>/dagster`) and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import Field, StringSource
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData

from alpha_assets.layout import Layout


def instance_dir(sub: str = "") -> Path:
    """`<data root>/dagster[/sub]`, created on first use."""
    base = Layout.from_env().dagster
    path = base / sub if sub else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def _subdir_schema(default: str) -> dict[str, Field]:
    return {"subdir": Field(StringSource, is_required=False, default_value=default)}


class DataRootSqliteStorage(DagsterSqliteStorage):
    """SQLite run, event-log and schedule storage in `<data root>/dagster/storage`."""

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return _subdir_schema("storage")

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any) -> DataRootSqliteStorage:
        return cls.from_local(base_dir=str(instance_dir(config_value["subdir"])), inst_data=inst_data)


class DataRootArtifactStorage(LocalArtifactStorage):
    """Local artifacts (run workers' scratch files) in `<data root>/dagster`."""

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return _subdir_schema("")

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> DataRootArtifactStorage:
        return cls(base_dir=str(instance_dir(config_value["subdir"])), inst_data=inst_data)


class DataRootComputeLogManager(LocalComputeLogManager):
    """Captured stdout/stderr of each step in `<data root>/dagster/compute_logs`."""

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return _subdir_schema("compute_logs")

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> DataRootComputeLogManager:
        return cls(base_dir=str(instance_dir(config_value["subdir"])), inst_data=inst_data)
