import json
from pathlib import Path

import dagster as dg
import polars as pl

from alpha_assets.market.landing import LandingWriter
from alpha_assets.market.simulator import SimulatorConfig, day_start_ms, simulate_day
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.sensors.landing import landing_sensor


def land_one_minute(root: Path, date: str, symbol: str) -> LandingWriter:
    day = simulate_day(symbol, date, seed=1, cfg=SimulatorConfig(trades_per_day=30_000))
    t0 = day_start_ms(date)
    in_minute = (pl.col("event_time_ms") >= t0) & (pl.col("event_time_ms") < t0 + 60_000)
    writer = LandingWriter(root, symbol)
    writer.write_minute("trades", date, "0000", day["trades"].filter(in_minute))
    writer.write_minute("book", date, "0000", day["book"].filter(in_minute))
    return writer


def test_requests_each_completed_partition_once(data_root: Path, instance: dg.DagsterInstance) -> None:
    writer = land_one_minute(data_root, "2024-03-07", "ETHUSDT")
    res = {"data_root": DataRoot(root=str(data_root))}
    first = landing_sensor(dg.build_sensor_context(instance=instance, resources=res))
    assert isinstance(first, dg.SkipReason)  # landed but not complete yet

    writer.mark_complete("2024-03-07", "ETHUSDT", "soak-1")
    result = landing_sensor(dg.build_sensor_context(instance=instance, resources=res))
    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests
    assert request.partition_key == "2024-03-07|ETHUSDT"
    assert request.run_key == "landing-2024-03-07|ETHUSDT-soak-1"

    again = landing_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, resources=res))
    assert isinstance(again, dg.SkipReason)

    # The partition re-landed by a later soak (new stamp) runs again.
    writer.mark_complete("2024-03-07", "ETHUSDT", "soak-2")
    later = landing_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, resources=res))
    assert isinstance(later, dg.SensorResult)
    assert [r.run_key for r in later.run_requests] == ["landing-2024-03-07|ETHUSDT-soak-2"]
    assert json.loads(later.cursor or "{}") == {"2024-03-07|ETHUSDT": "soak-2"}
