"""The executor is a resource that builds an IExecutor: each deployment's resource set binds one
variant, and swapping the variant changes what mock_orders routes through (nothing else changes)."""

import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from alpha_assets.definitions import ASSETS
from alpha_assets.deployment import deployment_resources
from alpha_assets.resources.executor import (
    BacktestExecutorResource,
    ExchangeExecutorResource,
    MockExecutorResource,
    ShadowExecutorResource,
    SignalExecutor,
)
from alpha_assets.scale import settings as S
from executors.batch import route_signals
from executors.testing.fake_exchange import FakeExchange

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))
from reports_synth import make_signals  # noqa: E402
from test_report_checks import Upstream, book_for  # noqa: E402

PARTITION = "2024-01-07|BTCUSDT"
KEY, SECRET = "resource-key", "resource-secret"


def route_through(resources: dict[str, object], signals: pl.DataFrame, book: pl.DataFrame,
                  instance: dg.DagsterInstance) -> tuple[pl.DataFrame, str]:
    """mock_orders materialised with `resources`; (its orders, the executor its metadata names)."""
    captured: dict[str, pl.DataFrame] = {}

    class Capture(Upstream):
        def handle_output(self, context: dg.OutputContext, obj: object) -> None:
            if isinstance(obj, pl.DataFrame):
                captured[context.asset_key.path[-1]] = obj

    upstream = Capture({"signals": signals, "harvest_raw": {"book": book}})
    result = dg.materialize(ASSETS, selection=[dg.AssetKey("mock_orders")], partition_key=PARTITION,
                            resources={**resources, "parquet_io": upstream}, instance=instance)
    assert result.success
    [mat] = result.asset_materializations_for_node("mock_orders")
    return captured["mock_orders"], str(mat.metadata["executor"].value)


def scale_environment(root: Path) -> dict[str, str]:
    return {S.DEPLOYMENT: "scale", S.DATA_ROOT: str(root), S.CELERY_BROKER: "redis://127.0.0.1:6399/0",
            S.CELERY_BACKEND: "redis://127.0.0.1:6399/1"}


@pytest.mark.parametrize("deployment", ["local", "scale"])
def test_each_deployment_binds_an_executor_variant_that_can_be_swapped(
    deployment: str, tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch,
) -> None:
    resources = deployment_resources(deployment, scale_environment(tmp_path / "shared"))  # type: ignore[arg-type]
    assert isinstance(resources["executor"], BacktestExecutorResource)
    signals = make_signals("BTCUSDT", 40, seed=5, minutes=5, start_ms=1_704_585_600_000)
    book = book_for(signals)

    backtest, name = route_through(resources, signals, book, instance)
    assert name == "backtest" and backtest.height > 0
    # the resource builds exactly what the plain routing API builds for the same kind
    assert backtest.equals(route_signals(signals, book, "backtest", run_id=backtest["run_id"][0]))

    paper, name = route_through({**resources, "executor": MockExecutorResource()}, signals, book, instance)
    assert name == "mock"
    assert paper.equals(route_signals(signals, book, "mock", run_id=paper["run_id"][0]))
    assert not paper.equals(backtest)  # the paper broker samples and fills differently

    shadow = ShadowExecutorResource(primary=BacktestExecutorResource(), shadow=MockExecutorResource())
    shadowed, name = route_through({**resources, "executor": shadow}, signals, book, instance)
    assert name == "shadow(backtest|mock)"
    assert shadowed.equals(backtest)  # the primary answers; the shadow only watches

    # a real exchange client, credentials bound from the environment, against a local faithful fake
    monkeypatch.setenv("ALPHA_TEST_EXCHANGE_KEY", KEY)
    monkeypatch.setenv("ALPHA_TEST_EXCHANGE_SECRET", SECRET)
    with FakeExchange(KEY, SECRET) as fake:
        exchange = ExchangeExecutorResource(base_url=fake.base_url, api_key=dg.EnvVar("ALPHA_TEST_EXCHANGE_KEY"),
                                            api_secret=dg.EnvVar("ALPHA_TEST_EXCHANGE_SECRET"))
        live, name = route_through({**resources, "executor": exchange}, signals, book, instance)
        placed = len(fake.state.orders)
    assert name == "exchange"
    sent = live.filter(pl.col("status") != "rejected")
    assert sent.height > 0 and placed == sent.height
    assert set(live["client_order_id"]) == set(backtest["client_order_id"])  # same intents, other venue


def test_the_executor_resource_is_abstract() -> None:
    with pytest.raises(TypeError):
        SignalExecutor()  # type: ignore[abstract]
