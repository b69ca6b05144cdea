"""The data root: every path on disk goes through this one resource."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field, field_validator

from alpha_assets.paths import data_root


class DataRoot(dg.ConfigurableResource):
    """Root of landing, warehouse, runtime, artifacts and logs (`ALPHA_DATA_ROOT`, default ./var)."""

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

    def sub(self, *parts: str) -> Path:
        out = self.path.joinpath(*parts)
        out.mkdir(parents=True, exist_ok=True)
        return out

    @property
    def warehouse(self) -> Path:
        return self.sub("warehouse")

    @property
    def runtime(self) -> Path:
        return self.sub("runtime")

    @property
    def artifacts(self) -> Path:
        return self.sub("artifacts")

    @property
    def logs(self) -> Path:
        return self.sub("logs")
