"""The engine resource picks the book join for the batch graph; bad values fail at load time."""

from __future__ import annotations

import dagster as dg
import pytest

from alpha_assets.engine import compute_features, compute_signals, resolve_config
from alpha_assets.resources.engine import SignalEngine
from tests.dagster.conftest import run

PARTITION = "2024-03-04|BTCUSDT"


def test_book_join_is_validated_when_the_resource_loads() -> None:
    assert SignalEngine().config().book_join == "event_time"
    assert SignalEngine(book_join="arrival", overrides={"cvd.ema_alpha": 0.1}).config().book_join == "arrival"
    with pytest.raises(Exception, match="engine.book_join"):
        SignalEngine(book_join="arrivals")
    with pytest.raises(Exception, match="contradicts engine.book_join"):
        SignalEngine(overrides={"book_join": "arrival"})


def test_features_and_signals_in_arrival_mode(resources, instance) -> None:
    res = dict(resources, engine=SignalEngine(book_join="arrival"))
    result = run("harvest_raw,features,signals", PARTITION, res, instance)
    raw = result.output_for_node("harvest_raw")
    feats = result.output_for_node("features")
    cfg = resolve_config({"book_join": "arrival"})
    assert feats.equals(compute_features(raw["trades"], raw["book"], cfg))
    event_time = compute_features(raw["trades"], raw["book"])
    assert not feats["book_event_time_ms"].equals(event_time["book_event_time_ms"])  # the join really differs
    sig = result.output_for_node("signals")
    assert sig.drop("run_id").equals(compute_signals(feats, cfg).drop("run_id"))
    mat = instance.get_latest_materialization_event(dg.AssetKey("features"))
    assert mat.asset_materialization.metadata["book_join"].value == "arrival"
    assert feats.height == raw["trades"].height
