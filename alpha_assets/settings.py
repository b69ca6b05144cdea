"""Project configuration: one validated file, read once at import."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alpha_assets.paths import config_file
from alpha_assets.reports.hard_metrics import HardMetricsConfig
from alpha_assets.symbols import normalise_symbols


class ConfigError(ValueError):
    """Raised when the project configuration is invalid; the message names the field."""


class MarketSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["auto", "simulator", "replay", "landing"] = "auto"
    seed: int = Field(7, ge=0, le=2**31 - 1)


class SoakSettings(BaseModel):
    """What the soak sensor launches and how often."""

    model_config = ConfigDict(extra="forbid")
    minutes: float = Field(60.0, gt=0, le=24 * 60)
    cadence_hours: float = Field(24.0, gt=0, le=24 * 30)
    sensor_interval_s: int = Field(300, ge=30, le=86_400)


class PushgatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Empty means: take the v13 names TIMESERIES_TYPE=prometheus / TIMESERIES_URL, else no export.
    url: str = ""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT", "ETHUSDT"], min_length=1)
    start_date: dt.date = dt.date(2024, 1, 1)
    market: MarketSettings = Field(default_factory=MarketSettings)
    soak: SoakSettings = Field(default_factory=SoakSettings)
    pushgateway: PushgatewaySettings = Field(default_factory=PushgatewaySettings)
    hard_metrics: HardMetricsConfig = Field(default_factory=HardMetricsConfig)

    @field_validator("symbols")
    @classmethod
    def _symbols_upper(cls, value: list[str]) -> list[str]:
        return normalise_symbols(value)


def describe_validation_error(source: str, exc: ValidationError) -> str:
    """One line per failing field: `<source>: <field.path>: <message>`."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"{source}: field '{where}': {err['msg']}")
    return "\n".join(lines)


def load_settings(path: Path | None = None) -> Settings:
    path = path or config_file()
    raw: dict = {}
    if path.exists():
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(str(path), exc)) from None


@functools.cache
def settings() -> Settings:
    return load_settings()
