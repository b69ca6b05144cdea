"""The data root as a resource: assets, sensors and the parquet IO manager get their paths from it."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field, field_validator

from alpha_assets.layout import Layout
from alpha_assets.paths import DATA_ROOT_ENV, data_root


class DataRoot(dg.ConfigurableResource):
    """Root of landing, warehouse, runtime, artifacts and logs. The paths below it are `layout`'s
    (alpha_assets.layout); the properties here also create them."""

    root: str = Field(description="the data root (ALPHA_DATA_ROOT; default <repo>/var)")

    @classmethod
    def from_environment(cls) -> DataRoot:
        """`ALPHA_DATA_ROOT` bound as an EnvVar when it is set (each process that runs a step or a
        sensor resolves it), else `<repo>/var`. The current value is checked here, so a data root
        that cannot be written stops the code location at load, naming the field."""
        if not os.environ.get(DATA_ROOT_ENV, "").strip():
            return cls(root=str(data_root()))
        cls(root=os.environ[DATA_ROOT_ENV])
        return cls(root=dg.EnvVar(DATA_ROOT_ENV))

    @field_validator("root")
    @classmethod
    def _usable(cls, value: str) -> str:
        path = Path(value).expanduser().resolve()
        probe = path
        while not probe.exists():
            probe = probe.parent
        if not os.access(probe, os.W_OK):
            raise ValueError(f"data root {path} is not writable (field 'root')")
        return str(path)

    @property
    def path(self) -> Path:
        return Path(self.root)

    @property
    def layout(self) -> Layout:
        return Layout(self.path)

    @staticmethod
    def _made(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def warehouse(self) -> Path:
        return self._made(self.layout.warehouse)

    @property
    def runtime(self) -> Path:
        return self._made(self.layout.runtime_dir)

    @property
    def artifacts(self) -> Path:
        return self._made(self.layout.artifacts)

    @property
    def logs(self) -> Path:
        return self._made(self.layout.logs)
