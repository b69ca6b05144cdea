"""Small markdown renderers shared by asset metadata and reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl


def markdown_table(frame: pl.DataFrame, max_rows: int = 20, max_cell: int = 80) -> str:
    if frame.is_empty():
        return "(none)"
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.head(max_rows).iter_rows():
        cells = ("" if v is None else _fmt(v).replace("|", "\\|")[:max_cell] for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    if frame.height > max_rows:
        lines.append(f"\n… {frame.height - max_rows} more rows")
    return "\n".join(lines)


def markdown_kv(pairs: Mapping[str, Any]) -> str:
    return markdown_table(pl.DataFrame({"figure": list(pairs), "value": [_fmt(v) for v in pairs.values()]}))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
