"""Run and source manifests: what a run read, with which configuration, and what it did.

* ``<data_root>/artifacts/source_manifest_<run>.json``: symbols, session window, endpoint,
  input mode (raw|preview), watch directory, feature directory and the configuration snapshot
  with its sha256 (of the canonical JSON: sorted keys, no whitespace), so two runs can be
  compared by hash and a reader can detect an edited file.
* ``<data_root>/artifacts/run_logs/run_manifest_<run>.json``: the caller's payload (timeline,
  figures, exit status ...) plus run_id, code version and write time.

Both are written atomically. ``written_at_utc`` is the only wall-clock value: it records when
the file was written and is never used in computation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from alpha_assets.layout import Layout
from alpha_assets.reports.atomic import write_json_atomic
from alpha_assets.version import code_version

MANIFEST_VERSION = 1
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class ManifestError(ValueError):
    """A manifest that cannot be written or read back as written."""


def config_sha256(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``config`` (sorted keys, compact, UTF-8)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def source_manifest_path(data_root: Path, run_id: str) -> Path:
    return Layout(Path(data_root)).source_manifest(_check_run_id(run_id))


def run_manifest_path(data_root: Path, run_id: str) -> Path:
    return Layout(Path(data_root)).run_manifest(_check_run_id(run_id))


def write_source_manifest(
    data_root: Path,
    run_id: str,
    *,
    symbols: list[str],
    session_window: tuple[int, int] | dict[str, Any],
    endpoint: str,
    input_mode: Literal["raw", "preview"],
    watch: str | Path,
    feature_dir: str | Path,
    config: dict[str, Any],
) -> Path:
    """Write the source manifest; ``session_window`` is ``(start_ms, end_ms)`` or a mapping."""
    if input_mode not in ("raw", "preview"):
        raise ManifestError(f"input_mode must be 'raw' or 'preview', got {input_mode!r}")
    if not symbols:
        raise ManifestError("symbols must not be empty")
    window = _window(session_window)
    snapshot = json.loads(json.dumps(config, default=str))  # what is hashed is exactly what is stored
    payload = {
        "manifest": "source",
        "manifest_version": MANIFEST_VERSION,
        "run_id": run_id,
        "symbols": [s.upper() for s in symbols],
        "session_window": window,
        "endpoint": endpoint,
        "input_mode": input_mode,
        "watch": str(watch),
        "feature_dir": str(feature_dir),
        "config": snapshot,
        "config_sha256": config_sha256(snapshot),
        "code_version": code_version(),
        "written_at_utc": _now(),
    }
    return write_json_atomic(source_manifest_path(data_root, run_id), payload)


def write_run_manifest(data_root: Path, run_id: str, payload: dict[str, Any]) -> Path:
    """Write the run manifest: ``payload`` plus run_id, code version and write time."""
    reserved = {"manifest", "manifest_version", "run_id", "code_version", "written_at_utc"} & set(payload)
    if reserved:
        raise ManifestError(f"payload must not set reserved key(s) {sorted(reserved)}")
    body = {
        "manifest": "run",
        "manifest_version": MANIFEST_VERSION,
        "run_id": run_id,
        "code_version": code_version(),
        "written_at_utc": _now(),
        **payload,
    }
    return write_json_atomic(run_manifest_path(data_root, run_id), body)


def read_source_manifest(data_root: Path, run_id: str, *, verify: bool = True) -> dict[str, Any]:
    """Read a source manifest; with ``verify`` the config hash must match the stored config."""
    data = _read(source_manifest_path(data_root, run_id))
    if verify and config_sha256(data["config"]) != data.get("config_sha256"):
        raise ManifestError(f"source manifest of run {run_id}: config_sha256 does not match its config "
                            "(the file was edited after it was written)")
    return data


def read_run_manifest(data_root: Path, run_id: str) -> dict[str, Any]:
    return _read(run_manifest_path(data_root, run_id))


def list_run_manifests(data_root: Path) -> list[Path]:
    """Run manifests, oldest write first (by their own ``written_at_utc``, then name)."""
    paths = sorted(Layout(Path(data_root)).run_logs.glob("run_manifest_*.json"))
    return sorted(paths, key=lambda p: (_read(p).get("written_at_utc", ""), p.name))


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ManifestError(f"no manifest at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: top level must be an object")
    return data


def _window(window: tuple[int, int] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(window, dict):
        return dict(window)
    start, end = (int(v) for v in window)
    if end < start:
        raise ManifestError(f"session_window end {end} is before start {start}")
    iso = lambda ms: dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat()  # noqa: E731
    return {"start_ms": start, "end_ms": end, "start_utc": iso(start), "end_utc": iso(end)}


def _check_run_id(run_id: str) -> str:
    # The run id becomes part of a file name: no separators, no traversal.
    if not RUN_ID_RE.match(run_id):
        raise ManifestError(f"run_id {run_id!r} must match {RUN_ID_RE.pattern}")
    return run_id


def _now() -> str:
    return dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds")
