"""Sink configuration: one validated pydantic model; the v13 environment names keep working.

    SinkConfig(kind="dual", batch_n=500, flush_ms=500)
    SinkConfig.from_env()            # V13_SINK, V13_OUTPUT_DIR, ALPHA_SINK_<FIELD>

A bad value fails at construction with a message naming the field and its allowed range.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alpha_assets.layout import SQLITE_FILE

FLUSH_MS_MIN, FLUSH_MS_MAX = 50, 5000

# v13 names users already have in their shells and supervisors
LEGACY_ENV = {"V13_SINK": "kind", "V13_OUTPUT_DIR": "output_dir"}
ENV_PREFIX = "ALPHA_SINK_"


class SinkConfigError(ValueError):
    """Invalid sink configuration; the message names the field and the allowed range."""


class SinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["jsonl", "sqlite", "dual"] = Field(
        "dual", description="jsonl | sqlite | dual (both, for parity)")
    batch_n: int = Field(500, ge=1, le=1_000_000, description="flush once this many rows are pending")
    flush_ms: int = Field(
        500, description=f"flush once the oldest pending row is this old (event time or injected clock); "
        f"{FLUSH_MS_MIN}-{FLUSH_MS_MAX}, or 0 for validation runs (flush every write)")
    fsync: Literal["always", "rotate", "never"] = Field(
        "rotate", description="JSONL: fsync per batch | per published minute | never; "
        "SQLite synchronous FULL | NORMAL | OFF")
    output_dir: Path | None = Field(
        None, description="runtime directory (spool/, ready/, signals.db); None = the caller's runtime dir")
    sqlite_file: str = Field(SQLITE_FILE, min_length=1, pattern=r"^[^/\\]+$")
    busy_timeout_ms: int = Field(1000, ge=0, le=60_000, description="SQLite busy_timeout per attempt")
    sqlite_cache_kib: int = Field(65_536, ge=256, le=4_194_304,
                                  description="SQLite page cache of the writing connection, KiB (it fills as the "
                                  "file grows: a long-lived writer that only appends needs little)")
    retry_max: int = Field(8, ge=0, le=50, description="retries of a locked/full database before raising")
    retry_backoff_ms: int = Field(50, ge=1, le=10_000, description="first backoff; doubles per retry")
    retry_backoff_max_ms: int = Field(5_000, ge=1, le=60_000)
    lateness_minutes: int = Field(0, ge=0, le=60, description="JSONL: minutes a minute file stays open")
    min_growth_window_seconds: float = Field(60.0, gt=0, le=86_400, description="health: growth window")
    min_growth_count: int = Field(1, ge=0, le=10_000_000, description="health: rows expected per window")

    @field_validator("flush_ms")
    @classmethod
    def _flush_range(cls, v: int) -> int:
        if v != 0 and not FLUSH_MS_MIN <= v <= FLUSH_MS_MAX:
            raise ValueError(f"flush_ms must be 0 (validation: flush every write) or in "
                             f"[{FLUSH_MS_MIN}, {FLUSH_MS_MAX}] ms, got {v}")
        return v

    @field_validator("retry_backoff_max_ms")
    @classmethod
    def _backoff_order(cls, v: int, info: Any) -> int:
        first = info.data.get("retry_backoff_ms")
        if first is not None and v < first:
            raise ValueError(f"retry_backoff_max_ms must be >= retry_backoff_ms ({first}), got {v}")
        return v

    @field_validator("output_dir")
    @classmethod
    def _writable(cls, v: Path | None) -> Path | None:
        if v is None:
            return None
        return ensure_writable(Path(v))

    @classmethod
    def build(cls, **values: Any) -> SinkConfig:
        """Like the constructor, but raises SinkConfigError with one line per bad field."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SinkConfigError(describe(exc, "SinkConfig")) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SinkConfig:
        """Fields from `V13_SINK`, `V13_OUTPUT_DIR` and `ALPHA_SINK_<FIELD>` (e.g. ALPHA_SINK_BATCH_N);
        keyword overrides win. Errors name the environment variable and the field."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        source: dict[str, str] = {}
        for var, name in LEGACY_ENV.items():
            if env.get(var, "").strip():
                values[name] = env[var].strip().lower() if name == "kind" else env[var].strip()
                source[name] = var
        for name in cls.model_fields:
            var = ENV_PREFIX + name.upper()
            if env.get(var, "").strip():
                values[name] = env[var].strip()
                source[name] = var
        values.update(overrides)
        for name in overrides:
            source.pop(name, None)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SinkConfigError(describe(exc, "SinkConfig", source)) from None

    def runtime_dir(self, default: Path) -> Path:
        return self.output_dir if self.output_dir is not None else ensure_writable(Path(default))


def ensure_writable(path: Path) -> Path:
    """Create `path` if needed and prove it is writable by creating and removing a probe file."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"directory {str(path)!r} is not writable ({exc.strerror or exc})") from None
    return path.resolve()


def describe(exc: ValidationError, model: str, source: Mapping[str, str] | None = None) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "<root>"
        origin = f" (from {source[field]})" if source and field in source else ""
        desc = SinkConfig.model_fields[field].description if field in SinkConfig.model_fields else None
        allowed = f"; allowed: {desc}" if desc else ""
        lines.append(f"{model}: field '{field}'{origin}: {err['msg']} (got {err.get('input')!r}){allowed}")
    return "\n".join(lines)
