"""Polars parquet IO manager with atomic writes and hive-style partition paths.

Layout: `Layout.warehouse_partition` (`<asset>/date=<YYYY-MM-DD>/symbol=<SYM>/<table>.parquet` in the warehouse).
A single frame is stored as table `data`; a dict of frames stores one file per key.
Files are written to a temporary name in the same directory and renamed, so a reader
never sees half a file.

A downstream asset loads only what it reads: input metadata `columns` (a list, for a single
table) or `tables` ({table: list of columns, or None for all}, for a dict of tables) is pushed
into the parquet reader, e.g. `dg.AssetIn(metadata=read_only(tables={"book": None}))`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import dagster as dg
import polars as pl

from alpha_assets.partitions import DATE, SYMBOL
from alpha_assets.resources.data_root import DataRoot

SINGLE_TABLE = "data"
Projection = dict[str, list[str] | None]


def read_only(*, columns: list[str] | None = None, tables: Projection | None = None) -> dict[str, object]:
    """Input metadata asking the IO manager for these columns / tables only."""
    return {k: v for k, v in (("columns", columns), ("tables", tables)) if v is not None}


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        # Statistics off and a fixed compression keep files byte-identical across runs.
        frame.write_parquet(tmp, compression="zstd", statistics=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class PolarsParquetIOManager(dg.ConfigurableIOManager):
    """Stores polars frames (or dicts of them) per date × symbol partition, under the data root's
    warehouse (the same `DataRoot` resource the assets get)."""

    data_root: DataRoot

    @property
    def root(self) -> str:
        return self.data_root.root

    def _dir(self, context: dg.OutputContext | dg.InputContext, partition: str | None = None) -> Path:
        asset = context.asset_key.path[-1]
        key = partition if partition is not None else context.partition_key
        dims: dict[str, str]
        if isinstance(key, dg.MultiPartitionKey):
            dims = dict(key.keys_by_dimension)
        elif "|" in str(key):
            date, symbol = str(key).split("|", 1)
            dims = {DATE: date, SYMBOL: symbol}
        else:
            dims = {DATE: str(key)}
        return self.data_root.layout.warehouse_partition(asset, dims[DATE], dims.get(SYMBOL))

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | dict[str, pl.DataFrame]) -> None:
        if obj is None:
            return
        target = self._dir(context)
        tables = obj if isinstance(obj, dict) else {SINGLE_TABLE: obj}
        for name, frame in tables.items():
            write_parquet_atomic(frame, target / f"{name}.parquet")
        context.add_output_metadata({"path": dg.MetadataValue.path(str(target))})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | dict[str, pl.DataFrame]:
        meta = context.definition_metadata or {}
        columns, tables = meta.get("columns"), meta.get("tables")
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            # A date roll-up reads every symbol of the date: concatenate per table.
            parts = [self._read_dir(self._dir(context, k), columns, tables) for k in context.asset_partition_keys]
            return _concat_tables(parts)
        return self._read_dir(self._dir(context), columns, tables)

    @staticmethod
    def _read_dir(target: Path, columns: list[str] | None = None,
                  tables: Projection | None = None) -> pl.DataFrame | dict[str, pl.DataFrame]:
        files = sorted(target.glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"no materialisation at {target}; materialise the upstream partition first")
        if len(files) == 1 and files[0].stem == SINGLE_TABLE:
            return pl.read_parquet(files[0], columns=columns)
        if tables is not None:
            files = [f for f in files if f.stem in tables]
        return {f.stem: pl.read_parquet(f, columns=(tables or {}).get(f.stem)) for f in files}


def _concat_tables(parts: list[pl.DataFrame | dict[str, pl.DataFrame]]) -> pl.DataFrame | dict[str, pl.DataFrame]:
    frames = [p for p in parts if isinstance(p, pl.DataFrame)]
    if len(frames) == len(parts):
        return pl.concat(frames, how="diagonal_relaxed")
    keys = sorted({k for p in parts if isinstance(p, dict) for k in p})
    return {k: pl.concat([p[k] for p in parts if isinstance(p, dict) and k in p], how="diagonal_relaxed") for k in keys}
