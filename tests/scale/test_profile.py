"""The scale-out profile's configuration: the instance yaml on a real Postgres, the Kubernetes
template with the real launcher class, the deployment switch, and the limits the jobs carry."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from alpha_assets.deployment import deployment, deployment_executor, deployment_resources
from alpha_assets.jobs import LIVE_TREE_TAG, SOAK_RUNTIME_GRACE_S
from alpha_assets.paths import REPO_ROOT
from alpha_assets.resources.sinks import SIGNAL_SINKS_POOL
from alpha_assets.scale import settings as S
from alpha_assets.scale.settings import ScaleConfigError, scale_settings
from tests.scale.conftest import require_scale

DEPLOY = REPO_ROOT / "deploy"


def scale_env(tmp_path: Path) -> dict[str, str]:
    return {S.DEPLOYMENT: "scale", S.DATA_ROOT: str(tmp_path / "shared"),
            S.CELERY_BROKER: "redis://127.0.0.1:6399/0", S.CELERY_BACKEND: "redis://127.0.0.1:6399/1",
            S.CELERY_VISIBILITY_TIMEOUT: "120"}


def load_instance(yaml_file: Path, home: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                  ) -> dg.DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(yaml_file, home / "dagster.yaml")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return dg.DagsterInstance.from_config(str(home))


def test_instance_yaml_runs_on_postgres_with_queue_limits_monitoring_and_retries(
        pg_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**pg_env, S.DAGSTER_STORAGE: str(tmp_path / "dagster_storage")}
    instance = load_instance(DEPLOY / "dagster.postgres.yaml", tmp_path / "home", env, monkeypatch)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    limits = {(limit["key"], limit.get("value")): limit["limit"] for limit in queue.tag_concurrency_limits}
    assert limits[(LIVE_TREE_TAG, None)] == 1  # the tag the live jobs carry (one owner: jobs.py)
    assert limits[("dagster/backfill", None)] < queue.max_concurrent_runs
    assert instance.global_op_concurrency_default_limit == 1  # the signal_sinks pool
    assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds == 7200
    assert instance.run_monitoring_max_resume_run_attempts == 0  # DefaultRunLauncher cannot resume
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    assert instance.run_retries_retry_on_asset_or_op_failure

    # The storage is real: a run and its events round-trip through Postgres.
    @dg.op
    def hello() -> int:
        return 1

    @dg.job
    def ping() -> None:
        hello()

    result = ping.execute_in_process(instance=instance)
    stored = instance.get_run_by_id(result.run_id)
    assert stored is not None and stored.status == dg.DagsterRunStatus.SUCCESS
    assert any(e.step_key == "hello" for e in instance.all_logs(result.run_id))
    instance.dispose()


def test_k8s_template_loads_with_the_real_launcher(pg_env: dict[str, str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("dagster_k8s") is None:
        reason = "dagster-k8s is not installed (pip install -e '.[k8s]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " and CI=true")
        pytest.skip(reason)
    import dagster_k8s.launcher

    # The one thing that needs a cluster: reading a kubeconfig / in-cluster service account.
    loaded: list[dict] = []
    monkeypatch.setattr(dagster_k8s.launcher, "load_kubernetes_config", lambda **kw: loaded.append(kw))
    env = {**pg_env, S.DAGSTER_STORAGE: str(tmp_path / "storage"), "DAGSTER_K8S_NAMESPACE": "alpha"}
    instance = load_instance(DEPLOY / "dagster.k8s.yaml", tmp_path / "home", env, monkeypatch)
    launcher = instance.run_launcher
    assert isinstance(launcher, dagster_k8s.K8sRunLauncher)
    assert len(loaded) == 1 and loaded[0]["load_incluster_config"] is True  # in a pod: its service account
    assert launcher.job_namespace == "alpha"
    assert launcher.instance_config_map == "alpha-assets-dagster-instance"
    assert launcher.env_secrets == ["alpha-assets-secrets"]
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    instance.dispose()


def test_k8s_template_is_the_postgres_profile_but_for_the_launcher() -> None:
    postgres = yaml.safe_load((DEPLOY / "dagster.postgres.yaml").read_text())
    k8s = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text())
    assert postgres.pop("run_launcher")["class"] == "DefaultRunLauncher"
    assert k8s.pop("run_launcher")["class"] == "K8sRunLauncher"
    assert k8s == postgres


def test_deployment_switch_and_its_errors_name_the_variable(tmp_path: Path) -> None:
    assert deployment({}) == "local"
    with pytest.raises(ScaleConfigError, match=S.DEPLOYMENT):
        deployment({S.DEPLOYMENT: "cloud"})
    env = scale_env(tmp_path)
    assert deployment(env) == "scale"
    for var, bad in [(S.CELERY_BROKER, ""), (S.CELERY_BROKER, "amqp://x"), (S.DATA_ROOT, "relative/path"),
                     (S.CELERY_VISIBILITY_TIMEOUT, "2")]:
        with pytest.raises(ScaleConfigError, match=var):
            scale_settings({**env, var: bad})


def test_scale_deployment_runs_steps_on_celery_with_late_acks(tmp_path: Path) -> None:
    require_scale()
    env = scale_env(tmp_path)
    executor = deployment_executor("scale", env)
    assert executor.name == "celery"
    resources = deployment_resources("scale", env)
    assert resources["data_root"].root == env[S.DATA_ROOT]  # type: ignore[attr-defined]
    assert resources["parquet_io"].root == env[S.DATA_ROOT]  # type: ignore[attr-defined]
    from alpha_assets.scale.celery_config import celery_app, executor_config

    cfg = executor_config(scale_settings(env))
    assert cfg["broker"] == {"env": S.CELERY_BROKER}  # resolved in each run worker, never stored
    app = celery_app(scale_settings(env))
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_transport_options["visibility_timeout"] == 120


def test_code_location_loads_per_deployment_and_fails_naming_the_variable(tmp_path: Path) -> None:
    require_scale()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALPHA_CELERY", S.DEPLOYMENT))}
    dagster = str(Path(sys.executable).parent / "dagster")
    argv = [dagster, "definitions", "validate", "-m", "alpha_assets.definitions"]
    ok = subprocess.run(argv, env={**base, **scale_env(tmp_path)}, cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=300)
    assert ok.returncode == 0, ok.stderr[-3000:]
    env = scale_env(tmp_path)
    del env[S.CELERY_BROKER]
    bad = subprocess.run(argv, env={**base, **env}, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert S.CELERY_BROKER in bad.stdout + bad.stderr


def test_live_jobs_run_in_process_one_at_a_time_with_a_runtime_limit() -> None:
    from alpha_assets.definitions import DEPLOYMENT, defs

    assert DEPLOYMENT == "local"  # the README's commands: nothing of the profile
    assert defs.resolve_job_def("daily_pipeline").executor_def.name == "in_process"
    for job_name in ("soak_60m", "fault_injection"):
        job = defs.resolve_job_def(job_name)
        assert job.executor_def.name == "in_process"  # the op supervises processes beside it
        assert job.tags[LIVE_TREE_TAG] == "true"
        assert job.tags["dagster/max_runtime"] == str(60 * 60 + SOAK_RUNTIME_GRACE_S)
        assert job.tags["dagster/max_retries"] == "0"
    for asset in ("signals", "soak_report", "fault_injection_report"):
        assert defs.resolve_assets_def(asset).op.pool == SIGNAL_SINKS_POOL
