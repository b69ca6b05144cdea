"""One Celery configuration for both ends: the run's executor that sends steps, and the workers
that run them (`celery_worker.py`). If the two disagreed, tasks would sit in a queue nobody reads.

Why these settings: a worker that dies mid-step (SIGKILL, OOM, a host lost) must not lose the
step. With late acknowledgement the broker keeps a task until the step has finished; a task
whose pool process died is requeued at once (`task_reject_on_worker_lost`), and a task whose
whole worker died is delivered again by the surviving workers once `visibility_timeout` has
passed. Each worker holds only the step it runs (prefetch 1), so a death strands one step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg

from alpha_assets.scale.settings import CELERY_BACKEND, CELERY_BROKER, ScaleSettings

if TYPE_CHECKING:
    from celery import Celery

QUEUE = "dagster"  # the queue dagster-celery routes steps to (dagster_celery.make_app)
RESTORE_INTERVAL_S = 5  # how often a worker looks for tasks whose worker died


def celery_config_source(settings: ScaleSettings) -> dict[str, Any]:
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": QUEUE,
        "task_default_priority": 5,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            # sweep for abandoned tasks every RESTORE_INTERVAL_S (kombu's default is 10 s x 10)
            "unacked_restore_interval": RESTORE_INTERVAL_S,
            "unacked_restore_throttle": 1,
        },
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "worker_hijack_root_logger": False,
    }


def executor_config(settings: ScaleSettings) -> dict[str, Any]:
    """Run config of dagster-celery's executor. Broker and backend URLs stay environment
    references, resolved in each run worker, so a password in them never lands in a run's config."""
    return {
        "broker": {"env": CELERY_BROKER},
        "backend": {"env": CELERY_BACKEND},
        "config_source": celery_config_source(settings),
    }


def scale_executor(settings: ScaleSettings) -> dg.ExecutorDefinition:
    from dagster_celery import celery_executor

    return celery_executor.configured(executor_config(settings), name="celery")


def celery_app(settings: ScaleSettings) -> Celery:
    """The Celery app as the executor builds it (same queues, routes and settings), without tasks."""
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    executor = CeleryExecutor(retries=RetryMode(RetryMode.DISABLED), broker=settings.celery_broker,
                              backend=settings.celery_backend, config_source=celery_config_source(settings))
    return make_app(executor.app_args())
