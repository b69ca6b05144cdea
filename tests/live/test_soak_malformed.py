"""A short soak with the simulator's malformed knob at 1 % of messages, through the live path
(harvester → Redis streams → lander): every SLO holds, and the dead letters landed are exactly
what the exchange injected."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from alpha_assets.live.soak import SoakConfig, run_soak
from alpha_assets.manifests import read_run_manifest


def test_soak_config_rejects_malformed_on_a_real_exchange() -> None:
    with pytest.raises(ValueError, match="malformed_rate"):
        SoakConfig(feed="binance", malformed_rate=0.01)
    with pytest.raises(ValueError, match="malformed_rate"):
        SoakConfig(malformed_rate=0.9)


@pytest.mark.slow
def test_soak_with_one_percent_malformed_passes_its_slo(tmp_path: Path, pushgateway) -> None:
    root = tmp_path / "var"
    cfg = SoakConfig(minutes=1.3, lateness_ms=500, export_interval_s=1, health_interval_s=2,
                     pushgateway_url=pushgateway.url, report_interval_s=5, stop_grace_s=5,
                     malformed_rate=0.01, malformed_seed=19)
    res = run_soak(cfg, root, "soak_malformed")
    f = res.figures()
    assert res.passed, {k: v for k, v in res.checks.items() if not v}
    assert res.checks["deadletters_as_injected"]
    assert f["malformed_injected"] >= 10, f  # ~1 % of a few thousand messages
    assert f["deadletter_unexplained"] == 0 and f["malformed_not_dead_lettered"] == 0
    manifest = read_run_manifest(root, "soak_malformed")
    dead = pl.concat([pl.read_parquet(p) for p in (root / "landing" / "deadletter").glob("date=*/symbol=*/*.parquet")])
    assert dead.height == f["deadletter"] == manifest["figures"]["deadletter"]
    # nothing the exchange made was lost to its malformed neighbours, nothing doubled
    landed = pl.concat([pl.read_parquet(p) for p in (root / "landing" / "raw").glob("date=*/symbol=*/trades_*.parquet")])
    for sym in cfg.symbols:
        ids = landed.filter(pl.col("symbol") == sym)["agg_trade_id"].sort()
        assert ids.n_unique() == ids.len() and ids[-1] - ids[0] + 1 == ids.len(), sym
    assert f["gap_trades_unfilled"] == 0 and f["queue_dropped"] == 0
    # the lander refused no row and spilled none: every dead letter is the harvester's, as injected
    assert f["unlandable_rows"] == 0 and f["land_failures"] == 0 and f["spilled_rows"] == 0
