"""Jobs: the batch graph per partition, the date roll-up, the soak, fault injection."""

from __future__ import annotations

import dagster as dg

# Runs that start the live process tree (exchange simulator, workers, local Pushgateway): they land
# today's partitions and hold the signal sinks, so the scale-out profile runs one at a time
# (deploy/dagster.postgres.yaml limits this tag to 1). Inert in the embedded default.
LIVE_TREE_TAG = "alpha/live_tree"
SOAK_RUNTIME_GRACE_S = 900  # start-up, drain, report and manifests on top of the soak's minutes


def soak_max_runtime_s(minutes: float) -> int:
    """Run monitoring's limit (`dagster/max_runtime`) for a soak of `minutes`."""
    return int(minutes * 60) + SOAK_RUNTIME_GRACE_S


def live_tree_tags(kind: str, minutes: float) -> dict[str, str]:
    return {"alpha/kind": kind, LIVE_TREE_TAG: "true", "dagster/max_runtime": str(soak_max_runtime_s(minutes)),
            # a soak that failed is a finding to look at, not a flake to run again for an hour
            "dagster/max_retries": "0"}


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
    tags=live_tree_tags("soak", 60),
    # One long op supervising processes beside it: it runs where its run runs, on every deployment.
    executor_def=dg.in_process_executor,
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
    tags=live_tree_tags("fault_injection", 60),
    executor_def=dg.in_process_executor,
)
