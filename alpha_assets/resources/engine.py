"""The signal engine's configuration as a resource: validated when the code location loads."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field, ValidationInfo, field_validator

from alpha_assets.engine import EngineConfig, EngineConfigError, resolve_config
from alpha_assets.engine.config import BOOK_JOINS


class SignalEngine(dg.ConfigurableResource):
    """v13 defaults unless `overrides` says otherwise (ALGORITHMS.md names, e.g. {"reset_on_gap_ms": 1e15},
    dotted `section.field` names, or nested sections; per-symbol CVD values under `cvd.symbol_overrides`).
    `book_join` picks how a trade finds its book row: "event_time" (v13's as-of join) or "arrival"
    (the latest book row received before the trade; engine/README.md)."""

    book_join: str = Field(default="event_time", description="event_time | arrival (engine/README.md, Book matching)")
    overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("book_join")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value not in BOOK_JOINS:
            raise ValueError(f"engine.book_join: {value!r} is not one of {', '.join(BOOK_JOINS)}")
        return value

    @field_validator("overrides")
    @classmethod
    def _valid(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        try:
            resolve_config(value)
        except EngineConfigError as exc:
            raise ValueError(f"engine.overrides: {exc}") from None
        mode = info.data.get("book_join", "event_time")
        if "book_join" in value and value["book_join"] != mode:
            raise ValueError(f"engine.overrides.book_join ({value['book_join']!r}) contradicts engine.book_join "
                             f"({mode!r}); set it once, in engine.book_join")
        return value

    def config(self) -> EngineConfig:
        return resolve_config({**self.overrides, "book_join": self.book_join})
