"""Atomic file writes: a temporary name in the same directory, fsync, then rename.

A reader (a person, a sensor, the report worker) never sees half a file, and a crash leaves
either the old file or the new one.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def to_json(obj: Any) -> str:
    """Deterministic JSON: key order as built, NaN/inf as null (JSON has no NaN)."""
    return json.dumps(_finite(obj), indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def write_json_atomic(path: Path, obj: Any) -> Path:
    return write_text_atomic(path, to_json(obj))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
