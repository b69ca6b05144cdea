"""Shared test setup: every test session gets its own data root and Dagster home, never ./var."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="alpha-test-"))
atexit.register(shutil.rmtree, _SESSION_ROOT, ignore_errors=True)
# Assigned, not defaulted: `make test` exports the user's data root, which tests must not touch.
os.environ["ALPHA_DATA_ROOT"] = str(_SESSION_ROOT / "var")
os.environ["DAGSTER_HOME"] = str(_SESSION_ROOT / "dagster_home")
Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
