"""Shared fixtures for the engine tests: the v13 testnet recordings and reference outputs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from alpha_assets.paths import shared_data_dir

V13 = shared_data_dir() / "v13_testnet"
REF = V13 / "reference"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data missing: {path}")
    return path


@pytest.fixture(scope="session")
def book_eth() -> pl.DataFrame:
    return pl.read_parquet(_need(V13 / "book_ethusdt_20251017.parquet"))


@pytest.fixture(scope="session")
def ref_path():
    return lambda name: _need(REF / name)
