"""What every asset definition shares: owners, tags, and metadata values built the same way."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl

from alpha_assets.partitions import preview_apis
from alpha_assets.version import content_version

OWNERS = ["team:alpha-quant"]
ROW_COUNT = "dagster/row_count"


def tags(layer: str, domain: str) -> dict[str, str]:
    """`layer`: batch | live; `domain`: market-data | signals | execution | reports | reliability."""
    return {"layer": layer, "domain": domain}


def event_time(ms: int | None) -> dg.MetadataValue | None:
    """An event time (ms since the epoch, UTC) as a timestamp the UI renders in the user's zone."""
    return dg.MetadataValue.timestamp(ms / 1000) if ms is not None else None


def event_span(frame: pl.DataFrame, col: str = "event_time_ms") -> dict[str, object]:
    """First and last event time and the minutes between them (nothing for an empty frame)."""
    if frame.is_empty():
        return {"span_minutes": 0.0}
    lo, hi = int(frame[col].min()), int(frame[col].max())  # type: ignore[arg-type]
    return {"first_event": event_time(lo), "last_event": event_time(hi), "span_minutes": round((hi - lo) / 60_000, 2)}


def data_version(value: pl.DataFrame | dict[str, pl.DataFrame]) -> dg.DataVersion:
    """A data version from the content, so downstream partitions show stale when the rows change."""
    return dg.DataVersion(content_version(value))


def versioned_output(value: object, *, data_version: dg.DataVersion, metadata: dict[str, Any]) -> dg.Output:
    """An output with its data version (Dagster beta, used on purpose: see `partitions.preview_apis`)."""
    with preview_apis():
        return dg.Output(value, data_version=data_version, metadata=metadata)
