"""daily_summary's WARN checks through Dagster: a figure that could not be measured fails with its reason."""

import math
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from alpha_assets.definitions import ASSETS, default_resources

sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))
from reports_synth import make_orders, make_signals  # noqa: E402

PARTITION = "2024-01-07|BTCUSDT"


def book_for(signals: pl.DataFrame) -> pl.DataFrame:
    """A 5-level book snapshot 1 ms before each signal, 1 bp around its price."""
    n = signals.height
    px = signals["price"].to_numpy()
    cols: dict[str, object] = {
        "symbol": signals["symbol"], "event_time_ms": signals["ts_ms"] - 1, "recv_time_ms": signals["ts_ms"],
        "first_update_id": np.arange(n, dtype=np.int64), "last_update_id": np.arange(n, dtype=np.int64),
        "prev_last_update_id": np.arange(n, dtype=np.int64) - 1,
    }
    for k in range(1, 6):
        cols[f"bid_px_{k}"] = px * (1 - k * 1e-4)
        cols[f"ask_px_{k}"] = px * (1 + k * 1e-4)
        cols[f"bid_qty_{k}"] = np.full(n, 5.0)
        cols[f"ask_qty_{k}"] = np.full(n, 5.0)
    return pl.DataFrame(cols)


class Upstream(dg.IOManager):
    """Hands daily_summary prepared upstream tables (the assets under test read nothing else)."""

    def __init__(self, tables: dict[str, object]) -> None:
        self.tables = tables

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        pass

    def load_input(self, context: dg.InputContext) -> object:
        return self.tables[context.asset_key.path[-1]]


def test_unmeasurable_sharpe_and_too_few_fills_fail_as_warnings(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    signals = make_signals("BTCUSDT", 60, seed=3, minutes=5, start_ms=1_704_585_600_000)
    book = book_for(signals)
    no_orders = make_orders(signals, 1).head(0)  # the executor was never asked: no fills, no PnL to measure
    parity = pl.DataFrame({"figure": ["total"], "jsonl": [60.0], "sqlite": [60.0], "rel_diff": [0.0]})
    upstream = Upstream({"signals": signals, "mock_orders": no_orders, "parity_diff": parity,
                         "harvest_raw": {"trades": pl.DataFrame(), "book": book, "deadletters": pl.DataFrame()}})
    result = dg.materialize(ASSETS, selection=[dg.AssetKey("daily_summary")], partition_key=PARTITION,
                            resources={**default_resources(tmp_path / "var"), "parquet_io": upstream},
                            instance=instance)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}

    sharpe = checks["hard_metric_sharpe"]
    assert sharpe.passed is False and sharpe.severity == dg.AssetCheckSeverity.WARN
    assert sharpe.metadata["measured"].value is False
    assert "not measurable" in sharpe.metadata["reason"].value
    assert "fills" in sharpe.metadata["reason"].value  # the reason says what was missing
    assert checks["hard_metric_reject_rate"].passed is False  # no orders: not measured either

    paper = checks["backtest_vs_paper"]
    assert paper.passed is False and paper.severity == dg.AssetCheckSeverity.WARN
    assert paper.metadata["status"].value == "insufficient_observation"
    assert "30 fills needed" in paper.metadata["reason"].value
    assert f"had {paper.metadata['fills_backtest'].value}" in paper.metadata["reason"].value

    # The summary still carries the three figures as numbers (NaN = not measured) and says why.
    meta = result.asset_materializations_for_node("daily_summary")[0].metadata
    assert math.isnan(meta["sharpe"].value) and "not measurable" in meta["sharpe_note"].value
    assert all(isinstance(meta[k].value, float) for k in ("sharpe", "max_drawdown_frac", "reject_rate"))
    assert "data:image/png;base64," in meta["charts"].value  # charts render in the UI
    assert meta["dagster/row_count"].value == 1
    assert result.success  # WARN checks do not fail the run
