"""landing_sensor: when the live harvester completes a partition, run the batch graph on it."""


import json

import dagster as dg

from alpha_assets.resources.data_root import DataRoot

PIPELINE_JOB = "daily_pipeline"


@dg.sensor(
    job_name=PIPELINE_JOB,
    minimum_interval_seconds=60,
    description="Requests daily_pipeline for each landing-zone partition the harvester marked complete "
    "(run_key = partition + completion stamp, so a partition re-landed later runs again).",
)
def landing_sensor(context: dg.SensorEvaluationContext, data_root: DataRoot) -> dg.SensorResult | dg.SkipReason:
    from alpha_assets.market.landing import completed_partitions

    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    requests = []
    for date, symbol, stamp in completed_partitions(data_root.path):
        key = f"{date}|{symbol}"
        if seen.get(key) == stamp:
            continue
        seen[key] = stamp
        requests.append(
            dg.RunRequest(run_key=f"landing-{key}-{stamp}", partition_key=key, tags={"alpha/trigger": "landing"})
        )
    if not requests:
        return dg.SkipReason("no newly completed landing-zone partition")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))
