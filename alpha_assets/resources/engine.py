"""The signal engine's configuration as a resource: validated when the code location loads."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field, field_validator

from alpha_assets.engine import EngineConfig, EngineConfigError, resolve_config


class SignalEngine(dg.ConfigurableResource):
    """v13 defaults unless `overrides` says otherwise (ALGORITHMS.md names, e.g. {"reset_on_gap_ms": 1e15},
    dotted `section.field` names, or nested sections; per-symbol CVD values under `cvd.symbol_overrides`)."""

    overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            resolve_config(value)
        except EngineConfigError as exc:
            raise ValueError(f"engine.overrides: {exc}") from None
        return value

    def config(self) -> EngineConfig:
        return resolve_config(self.overrides)
