"""landing_zone: the minute files the live harvester lands; the edge from the live path to batch.

Dagster does not compute it: the soak (or fault-injection) run reports a materialisation of each
partition it landed and marked complete, so each landed partition links to the run that landed it,
and the graph runs landing_zone → harvest_raw. It has no declared dependency on ``soak_report``:
an upstream selection such as ``*daily_summary`` would otherwise start an hour-long soak before
the batch graph.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from alpha_assets.assets.common import OWNERS, ROW_COUNT, tags
from alpha_assets.contracts import RawBook, RawTrades, column_schema
from alpha_assets.partitions import date_symbol_partitions
from alpha_assets.version import source_version

LANDING_ZONE = dg.AssetSpec(
    "landing_zone",
    partitions_def=date_symbol_partitions,
    group_name="live",
    kinds={"parquet"},
    owners=OWNERS,
    tags=tags("live", "market-data"),
    code_version=source_version("alpha_assets.market.landing", "alpha_assets.live"),
    metadata=column_schema(RawTrades, RawBook, prefixed=True),
    description="Minute files of trades and book snapshots the live harvester wrote under landing/ "
    "(date=/symbol=), with a watermark; a soak reports each partition it completed. harvest_raw "
    "reads it when market_source finds the partition landed.",
)


def landed_partition(root: Path, key: str, run_id: str) -> dg.AssetMaterialization:
    """The event a soak logs for a partition it landed and marked complete: its rows as landed."""
    import polars as pl

    date, symbol = key.split("|", 1)
    folder = root / "landing" / "raw" / f"date={date}" / f"symbol={symbol}"
    counts = {kind: sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in folder.glob(f"{kind}_*.parquet"))
              for kind in ("trades", "book")}
    return dg.AssetMaterialization(asset_key=LANDING_ZONE.key, partition=key, metadata={
        "landed_by_run": run_id, "trades": counts["trades"], "book_snapshots": counts["book"],
        "minute_files": len(list(folder.glob("trades_*.parquet"))), "path": dg.MetadataValue.path(str(folder)),
        ROW_COUNT: counts["trades"] + counts["book"]})
