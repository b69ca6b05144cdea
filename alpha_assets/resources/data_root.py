"""The data root as a resource: assets, sensors and the parquet IO manager get their paths from it."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field, field_validator

from alpha_assets.layout import Layout
from alpha_assets.paths import data_root


class DataRoot(dg.ConfigurableResource):
    """Root of landing, warehouse, runtime, artifacts and logs (`ALPHA_DATA_ROOT`, default ./var).
    The paths below it are `layout`'s (alpha_assets.layout); the properties here also create them."""

    root: str = Field(default_factory=lambda: str(data_root()))

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
