"""date × symbol partitions; symbols come from alpha_assets.yaml."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from alpha_assets.settings import settings

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


@contextmanager
def preview_apis() -> Iterator[None]:
    """Dagster preview/beta APIs this project uses on purpose: checks on partitioned assets need their
    own `partitions_def` (preview), a date roll-up reads every symbol through
    `MultiToSingleDimensionPartitionMapping` (beta), and outputs carry a `data_version` (beta). Their
    warnings are silenced where those calls are made, not for the whole process."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        warnings.simplefilter("ignore", dg.BetaWarning)
        yield


def partition_check(name: str, asset: str, partitions_def: dg.PartitionsDefinition | None,
                    **kwargs: Any) -> dg.AssetCheckSpec:
    """An asset check on a partitioned asset (it needs the asset's partitions_def)."""
    with preview_apis():
        return dg.AssetCheckSpec(name=name, asset=asset, partitions_def=partitions_def, **kwargs)


def per_date_mapping() -> dg.PartitionMapping:
    """date × symbol → date: a roll-up reads every symbol of its date."""
    with preview_apis():
        return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DATE)
