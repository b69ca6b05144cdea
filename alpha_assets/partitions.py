"""date × symbol partitions; symbols come from alpha_assets.yaml."""

from __future__ import annotations

import warnings

import dagster as dg

from alpha_assets.settings import settings

# Checks on partitioned assets need their own partitions_def, which Dagster marks as preview.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)

DATE = "date"
SYMBOL = "symbol"

# end_offset=1: today is a partition too, since a soak lands live data into it.
daily_partitions = dg.DailyPartitionsDefinition(start_date=settings().start_date.isoformat(), end_offset=1)
symbol_partitions = dg.StaticPartitionsDefinition(settings().symbols)
date_symbol_partitions = dg.MultiPartitionsDefinition({DATE: daily_partitions, SYMBOL: symbol_partitions})


def partition_key(date: str, symbol: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE: date, SYMBOL: symbol})


def split_key(context: dg.AssetExecutionContext | dg.OutputContext | dg.InputContext) -> tuple[str, str]:
    """(date, symbol) of the partition the context is working on."""
    key = context.partition_key
    if not isinstance(key, dg.MultiPartitionKey):
        key = date_symbol_partitions.get_partition_key_from_str(key)
    dims = key.keys_by_dimension
    return dims[DATE], dims[SYMBOL]
