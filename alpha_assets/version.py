"""Versions: of the code (hashes of the source that computes things) and of data (hashes of content).

`code_version()` covers all the project's source, so a soak can vouch for it; `source_version(...)`
covers the modules one asset's logic lives in, so the UI marks exactly its partitions stale when
that logic changes. `content_version(...)` is a data version from the rows themselves.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping

import polars as pl

from alpha_assets.paths import REPO_ROOT

SOURCE_DIRS = ("alpha_assets", "executors")


def _module_files(module: str) -> list:
    base = REPO_ROOT.joinpath(*module.split("."))
    if base.is_dir():
        return sorted(base.rglob("*.py"))
    path = base.with_suffix(".py")
    if not path.exists():
        raise ValueError(f"no source for module {module!r} under {REPO_ROOT}")
    return [path]


@functools.cache
def source_version(*modules: str) -> str:
    """Hash of the source files of these modules or packages (stable across runs and machines)."""
    digest = hashlib.sha256()
    for module in sorted(set(modules)):
        for path in _module_files(module):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def code_version() -> str:
    return source_version(*SOURCE_DIRS)


def content_version(value: pl.DataFrame | Mapping[str, pl.DataFrame]) -> str:
    """Hash of a frame's schema and rows in order (or of each table of a dict of frames)."""
    tables = value if isinstance(value, Mapping) else {"": value}
    digest = hashlib.sha256()
    for name in sorted(tables):
        frame = tables[name]
        digest.update(name.encode())
        digest.update(repr(list(frame.schema.items())).encode())
        if frame.height:
            digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()[:16]
