"""The batch graph selected upstream of daily_summary is the batch graph: no live soak in it."""

from __future__ import annotations

import dagster as dg

from alpha_assets.definitions import defs


def upstream_of(key: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    selected = dg.AssetSelection.from_string(f"*{key}").resolve(graph)
    return {k.to_user_string() for k in selected}


def test_upstream_of_daily_summary_is_the_batch_graph_without_the_soak() -> None:
    keys = upstream_of("daily_summary")
    assert {"harvest_raw", "features", "signals", "parity_diff", "mock_orders"} <= keys
    assert "soak_report" not in keys  # `--select '*daily_summary'` must not start an hour's soak


def test_the_landing_zone_still_feeds_harvest_raw() -> None:
    graph = defs.resolve_asset_graph()
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey("harvest_raw")).parent_keys}
    assert "landing_zone" in parents
