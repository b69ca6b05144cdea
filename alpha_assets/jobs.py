"""Jobs: the batch graph per partition, the date roll-up, the soak, fault injection."""

from __future__ import annotations

import dagster as dg

PARTITION_ASSETS = ["harvest_raw", "harvest_preview", "features", "signals", "parity_diff", "mock_orders",
                    "daily_summary"]

harvest_job = dg.define_asset_job(
    "harvest_job",
    selection=dg.AssetSelection.groups("harvest"),
    description="Raw and preview harvest for a date × symbol partition.",
)

daily_pipeline = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.assets(*PARTITION_ASSETS),
    description="The whole batch graph for one date × symbol partition: harvest → features → signals → "
    "sinks parity → orders → daily summary.",
)

soak_60m = dg.define_asset_job(
    "soak_60m",
    selection=dg.AssetSelection.assets("soak_report"),
    description="An hour (config `minutes`) of the whole system live: simulated exchange → harvest → signal → "
    "broker → report as supervised processes, metrics to the Pushgateway, manifests at the end.",
    tags={"alpha/kind": "soak"},
)

daily_rollup = dg.define_asset_job(
    "daily_rollup",
    selection=dg.AssetSelection.assets("daily_summary_rollup"),
    description="All symbols of a date in one report. Runs by itself (declarative automation) once every "
    "symbol's partitions of the date are there, and again when one of them changes.",
)

fault_injection = dg.define_asset_job(
    "fault_injection",
    selection=dg.AssetSelection.assets("fault_injection_report"),
    description="A soak with faults injected mid-run; records each fault's recovery timeline and the losses.",
    tags={"alpha/kind": "fault_injection"},
)
