"""Where things live on disk. One place for every path the project derives."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


DATA_ROOT_ENV = "ALPHA_DATA_ROOT"


def data_root() -> Path:
    """The data root: `ALPHA_DATA_ROOT`, default `<repo>/var`."""
    return Path(os.environ.get(DATA_ROOT_ENV, str(REPO_ROOT / "var"))).resolve()


def shared_data_dir() -> Path:
    """The read-only real market data beside the repository (`../shared/data`)."""
    override = os.environ.get("ALPHA_SHARED_DIR")
    if override:
        return Path(override).resolve()
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def config_file() -> Path:
    """The project configuration file: `ALPHA_CONFIG`, default `<repo>/alpha_assets.yaml`."""
    return Path(os.environ.get("ALPHA_CONFIG", str(REPO_ROOT / "alpha_assets.yaml"))).resolve()
