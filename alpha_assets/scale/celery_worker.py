"""The Celery app the profile's workers run:

    celery -A alpha_assets.scale.celery_worker worker -n w1@%h --concurrency 1

Importing this module loads the code location first, so a worker with a broken environment
fails at start instead of on its first step, and each pool process inherits the loaded code.
"""

from __future__ import annotations

from dagster_celery.tasks import create_task

import alpha_assets.definitions  # noqa: F401 - load (and validate) the code location before taking work
from alpha_assets.scale.celery_config import celery_app
from alpha_assets.scale.settings import scale_settings

app = celery_app(scale_settings())
execute_plan = create_task(app)
