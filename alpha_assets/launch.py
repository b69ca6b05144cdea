"""Launch runs through the code location (workspace.yaml), so each run carries its repository origin
and the job's current snapshot: the UI lists it under its job and on the timeline, and re-executes it
without a version warning. `dagster job execute` and `dg launch` (dagster-dg-cli 1.13) execute in
the calling process instead, and their runs have no repository origin.

    python -m alpha_assets.launch --job soak_60m -c examples/soak_1m.yaml
    python -m alpha_assets.launch --assets 'harvest_raw,features' --partition '2024-03-01|BTCUSDT'
    python -m alpha_assets.launch --job daily_pipeline --partition '2024-03-01|BTCUSDT' --no-wait

It follows the run until it ends (log lines, check results, a progress bar on a terminal) and exits
0 on success, 1 on failure; `--no-wait` returns once the run is submitted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg
import yaml
from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.events import DagsterEventType
from dagster._core.workspace.context import BaseWorkspaceRequestContext, WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from alpha_assets.paths import REPO_ROOT

LOCATION = "alpha_assets"
WORKSPACE_FILE = REPO_ROOT / "workspace.yaml"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@contextlib.contextmanager
def workspace(instance: dg.DagsterInstance) -> Iterator[BaseWorkspaceRequestContext]:
    """The code location of workspace.yaml, served by its own process as in `dagster dev`."""
    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE_FILE)])) as process:
        request = process.create_request_context()
        errors = {name: entry.load_error for name, entry in request.get_code_location_entries().items()
                  if entry.load_error}
        if errors:
            raise RuntimeError(f"code location failed to load: {errors}")
        yield request


def partition_tags(job_name: str, partition: str, asset_keys: set[dg.AssetKey] | None) -> dict[str, str]:
    """The tags that make a run a partition's run (`dagster/partition`, and one per dimension)."""
    from alpha_assets.definitions import defs

    job = (defs.resolve_implicit_global_asset_job_def() if job_name == IMPLICIT_ASSET_JOB_NAME
           else defs.resolve_job_def(job_name))
    return dict(job.get_tags_for_partition_key(partition, selected_asset_keys=asset_keys))


def submit(
    instance: dg.DagsterInstance, ws: BaseWorkspaceRequestContext, *, job: str | None = None,
    assets: list[str] | None = None, partition: str | None = None, run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Create the run from the workspace's job (origin + current snapshot) and launch it: through the
    run queue when a daemon serves it, else straight to the run launcher. Returns the run id."""
    if (job is None) == (not assets):
        raise ValueError("give exactly one of job or assets")
    location = ws.get_code_location(LOCATION)
    [repo] = location.get_repositories().values()
    keys = {dg.AssetKey.from_user_string(a.strip()) for a in assets} if assets else None
    job_name = job or IMPLICIT_ASSET_JOB_NAME
    remote_job = location.get_job(JobSubsetSelector(location_name=location.name, repository_name=repo.name,
                                                    job_name=job_name, op_selection=None, asset_selection=keys))
    # The run's own console output would repeat what follow() prints: keep it to warnings.
    config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}} | dict(run_config or {})
    plan = location.get_execution_plan(remote_job, config, step_keys_to_execute=None, known_state=None,
                                       instance=instance)
    run_tags = {**remote_job.tags, **(tags or {})}
    if partition:
        run_tags.update(partition_tags(job_name, partition, keys))
    run = instance.create_run(
        job_name=job_name, run_id=None, run_config=config, resolved_op_selection=None,
        step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute, op_selection=None,
        status=None, root_run_id=None, parent_run_id=None, tags=run_tags, job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot, parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
        asset_selection=frozenset(keys) if keys else None, asset_check_selection=None,
        asset_graph=repo.asset_graph,
    )
    if queue_is_served(instance):
        instance.submit_run(run.run_id, ws)  # the daemon dequeues it under the instance's limits
    else:
        instance.launch_run(run.run_id, ws)  # no daemon: a queued run would wait forever
    return run.run_id


def queue_is_served(instance: dg.DagsterInstance) -> bool:
    """Whether a dagster-daemon is dequeuing runs for this instance (as under `dg dev`)."""
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._daemon.controller import get_daemon_statuses

    if not isinstance(instance.run_coordinator, QueuedRunCoordinator):
        return True  # the coordinator launches at once by itself
    status = get_daemon_statuses(instance, ["QUEUED_RUN_COORDINATOR"], ignore_errors=True)
    return bool(status.get("QUEUED_RUN_COORDINATOR") and status["QUEUED_RUN_COORDINATOR"].healthy)


def _describe(entry: Any) -> str | None:
    """One line for the events a user follows; None for the rest."""
    event = entry.dagster_event
    if event is None:
        return entry.user_message if entry.level >= 20 else None
    kind = event.event_type
    if kind == DagsterEventType.ASSET_MATERIALIZATION:
        mat = event.step_materialization_data.materialization
        part = f" [{mat.partition}]" if mat.partition else ""
        return f"materialised {mat.asset_key.to_user_string()}{part}"
    if kind == DagsterEventType.ASSET_CHECK_EVALUATION:
        ev = event.asset_check_evaluation_data
        verdict = "passed" if ev.passed else f"FAILED ({ev.severity.value})"
        return f"check {ev.asset_key.to_user_string()}:{ev.check_name} {verdict}"
    if kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE, DagsterEventType.ENGINE_EVENT):
        return entry.user_message if kind != DagsterEventType.ENGINE_EVENT or entry.level >= 40 else None
    return None


def follow(
    instance: dg.DagsterInstance, run_id: str, *, echo: Callable[[str], None] = print,
    on_event: Callable[[Any], None] | None = None, poll_s: float = 1.0,
) -> dg.DagsterRunStatus:
    """Print the run's events as they land until it ends; a progress bar for soak observations."""
    from alpha_assets.progress import TerminalBar

    cursor = None
    bar: TerminalBar | None = None
    try:
        while True:
            run = instance.get_run_by_id(run_id)
            status = run.status if run else dg.DagsterRunStatus.FAILURE
            conn = instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
            cursor = conn.cursor
            for record in conn.records:
                entry = record.event_log_entry
                if on_event is not None:
                    on_event(entry)
                obs = entry.asset_observation
                if obs is not None and "elapsed_s" in obs.metadata:
                    p = {k: v.value for k, v in obs.metadata.items()}
                    if bar is None and "minutes" in p:
                        bar = TerminalBar(float(p["minutes"]) * 60, obs.asset_key.to_user_string())  # type: ignore[arg-type]
                    if bar is not None:
                        bar.update(p)
                    continue
                line = _describe(entry)
                if line:
                    echo(line)
            if status in FINISHED and not conn.has_more:
                return status
            if not conn.has_more:
                time.sleep(poll_s)
    finally:
        if bar is not None:
            bar.close()


def load_run_config(files: list[str], config_json: str | None) -> dict[str, Any]:
    """Merge run-config files (later ones on top) and a JSON string, as `dagster job execute -c` does."""
    config: dict[str, Any] = {}
    for path in files:
        config = _merge(config, yaml.safe_load(open(path, encoding="utf-8")) or {})
    if config_json:
        config = _merge(config, json.loads(config_json))
    return config


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--job", help="job name, e.g. soak_60m, daily_pipeline")
    what.add_argument("--assets", help="comma-separated asset keys")
    ap.add_argument("--partition", help="partition key, e.g. '2024-03-01|BTCUSDT'")
    ap.add_argument("-c", "--config", action="append", default=[], help="run-config YAML file (repeatable)")
    ap.add_argument("--config-json", help="run config as a JSON string")
    ap.add_argument("--tags", help="run tags as a JSON object")
    ap.add_argument("--no-wait", action="store_true", help="return once the run is submitted")
    args = ap.parse_args(argv)
    instance = dg.DagsterInstance.get()
    with workspace(instance) as ws:
        run_id = submit(instance, ws, job=args.job,
                        assets=args.assets.split(",") if args.assets else None, partition=args.partition,
                        run_config=load_run_config(args.config, args.config_json),
                        tags=json.loads(args.tags) if args.tags else None)
        print(f"launched run {run_id}", flush=True)
        if args.no_wait:
            return 0
        status = follow(instance, run_id)
    print(f"run {run_id}: {status.value}")
    return 0 if status == dg.DagsterRunStatus.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
