"""Shared test setup: every test session gets its own data root and Dagster home, never ./var."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="alpha-test-"))
atexit.register(shutil.rmtree, _SESSION_ROOT, ignore_errors=True)
# Assigned, not defaulted: `make test` exports the user's data root, which tests must not touch.
os.environ["ALPHA_DATA_ROOT"] = str(_SESSION_ROOT / "var")
os.environ["DAGSTER_HOME"] = str(_SESSION_ROOT / "dagster_home")
Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files that hold slow tests run first, so `-n 2 --dist loadfile` does not end on a long tail.

    xdist hands out whole files in collection order; the longest jobs started last would leave
    one worker idle while the other finishes them.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
