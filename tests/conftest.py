"""Shared test setup: every test session gets its own data root, never ./var."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="alpha-test-"))
os.environ.setdefault("ALPHA_DATA_ROOT", str(_SESSION_ROOT / "var"))
os.environ.setdefault("DAGSTER_HOME", str(_SESSION_ROOT / "dagster_home"))
Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
