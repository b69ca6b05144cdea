"""The scale-out profile's settings, from the environment of each process (one owner of the names).

Every process of the profile (webserver, daemon, code server and its run workers, Celery workers)
reads the same variables; on several machines each host sets them for itself (secrets from the
host's secret store, paths where that host mounts the shared storage). A missing or bad value
fails when the code location loads, naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEPLOYMENT = "ALPHA_DEPLOYMENT"
DATA_ROOT = "ALPHA_DATA_ROOT"
DAGSTER_STORAGE = "ALPHA_DAGSTER_STORAGE"
CELERY_BROKER = "ALPHA_CELERY_BROKER"
CELERY_BACKEND = "ALPHA_CELERY_BACKEND"
CELERY_VISIBILITY_TIMEOUT = "ALPHA_CELERY_VISIBILITY_TIMEOUT_S"
CODE_SERVER_HOST = "ALPHA_CODE_SERVER_HOST"
CODE_SERVER_PORT = "ALPHA_CODE_SERVER_PORT"
PG_HOST, PG_PORT, PG_USER, PG_PASSWORD, PG_DB = (
    "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")

# field of ScaleSettings -> the variable it comes from
FIELD_ENV = {
    "data_root": DATA_ROOT,
    "celery_broker": CELERY_BROKER,
    "celery_backend": CELERY_BACKEND,
    "visibility_timeout_s": CELERY_VISIBILITY_TIMEOUT,
}


class ScaleConfigError(ValueError):
    """A variable of the scale-out profile is missing or invalid; the message names it."""


class ScaleSettings(BaseModel):
    """What the code location needs to run its steps on Celery workers over shared storage."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    data_root: str = Field(description="the shared data root, the same storage on every host")
    celery_broker: str = Field(description="redis://host:port/db of the Celery broker")
    celery_backend: str = Field(description="redis://host:port/db of the Celery result backend")
    # A task whose worker died is delivered again after this long. It must exceed the longest
    # step: a step still running when it expires is delivered to a second worker as well.
    visibility_timeout_s: int = Field(900, ge=10, le=86_400)

    @field_validator("data_root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not Path(value).is_absolute():
            raise ValueError(f"must be an absolute path on the shared storage, got {value!r}")
        return value

    @field_validator("celery_broker", "celery_backend")
    @classmethod
    def _redis(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://")):
            raise ValueError(f"must be a redis:// or rediss:// URL, got {value!r}")
        return value


def scale_settings(environ: Mapping[str, str] | None = None) -> ScaleSettings:
    env = os.environ if environ is None else environ
    values = {name: env[var] for name, var in FIELD_ENV.items() if env.get(var, "").strip()}
    missing = [FIELD_ENV[name] for name in ("data_root", "celery_broker", "celery_backend") if name not in values]
    if missing:
        raise ScaleConfigError(f"{DEPLOYMENT}=scale needs {', '.join(missing)} in the environment")
    try:
        return ScaleSettings.model_validate(values)
    except ValidationError as exc:
        lines = [f"{FIELD_ENV.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}" for err in exc.errors()]
        raise ScaleConfigError("; ".join(lines)) from None
