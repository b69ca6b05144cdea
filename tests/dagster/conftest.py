from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from alpha_assets.definitions import ASSETS, default_resources
from alpha_assets.resources.market_source import MarketSource


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "var"
    monkeypatch.setenv("ALPHA_DATA_ROOT", str(root))
    return root


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def resources(data_root: Path) -> dict[str, object]:
    res = default_resources(data_root)
    res["market_source"] = MarketSource(kind="auto", seed=7, sim_trades_per_day=40_000)
    return res


def run(selection: str, partition: str, resources: dict[str, object], instance: dg.DagsterInstance,
        raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    keys = [dg.AssetKey(name.strip()) for name in selection.split(",")]
    return dg.materialize(ASSETS, selection=keys, partition_key=partition, resources=resources,
                          instance=instance, raise_on_error=raise_on_error)
