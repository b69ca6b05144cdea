from pathlib import Path

import dagster as dg
import polars as pl

from alpha_assets.partitions import date_symbol_partitions, partition_key
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.parquet_io import PolarsParquetIOManager


def test_round_trip_single_and_dict_tables_hive_layout(tmp_path: Path) -> None:
    io = PolarsParquetIOManager(data_root=DataRoot(root=str(tmp_path)))
    key = partition_key("2024-03-01", "BTCUSDT")
    frame = pl.DataFrame({"a": [1, 2, 3]})
    out = dg.build_output_context(asset_key=dg.AssetKey("signals"), partition_key=key)
    io.handle_output(out, frame)
    path = tmp_path / "warehouse/signals/date=2024-03-01/symbol=BTCUSDT/data.parquet"
    assert path.exists()
    # No temporary files are left behind by the atomic write.
    assert [p.name for p in path.parent.iterdir()] == ["data.parquet"]

    inp = dg.build_input_context(asset_key=dg.AssetKey("signals"), partition_key=key)
    assert io.load_input(inp).equals(frame)

    tables = {"trades": pl.DataFrame({"x": [1.0]}), "book": pl.DataFrame({"y": [2.0]})}
    io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("harvest_raw"), partition_key=key), tables)
    back = io.load_input(dg.build_input_context(asset_key=dg.AssetKey("harvest_raw"), partition_key=key))
    assert set(back) == {"trades", "book"} and back["trades"].equals(tables["trades"])


def test_same_frame_writes_identical_bytes(tmp_path: Path) -> None:
    io = PolarsParquetIOManager(data_root=DataRoot(root=str(tmp_path)))
    key = partition_key("2024-03-01", "ETHUSDT")
    frame = pl.DataFrame({"a": list(range(1000)), "b": [float(i) / 7 for i in range(1000)]})
    path = tmp_path / "warehouse/features/date=2024-03-01/symbol=ETHUSDT/data.parquet"
    io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("features"), partition_key=key), frame)
    first = path.read_bytes()
    io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("features"), partition_key=key), frame)
    assert path.read_bytes() == first


def test_partition_keys_are_date_pipe_symbol() -> None:
    keys = date_symbol_partitions.get_partition_keys()
    assert "2024-08-08|BTCUSDT" in keys and "2024-08-08|ETHUSDT" in keys
