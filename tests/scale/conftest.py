"""Scale-out profile fixtures: real Postgres and Redis servers on 127.0.0.1, free ports.

Without the `[scale]` extra or the servers, these tests skip on a developer machine and fail in
CI (CI=true), where `.ci/run` installs them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from alpha_assets.scale.processes import STACK_ID_ENV, marked_processes
from alpha_assets.scale.stack import missing_requirements


def require_scale() -> None:
    missing = missing_requirements()
    if missing:
        reason = "scale-out profile needs: " + "; ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: the real servers are required)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_env() -> Iterator[dict[str, str]]:
    """A throwaway Postgres cluster for the session: the DAGSTER_PG_* variables that reach it."""
    require_scale()
    from alpha_assets.scale.postgres import ThrowawayPostgres

    stack_id = uuid.uuid4().hex
    pg = ThrowawayPostgres({**os.environ, STACK_ID_ENV: stack_id}).start()
    try:
        yield pg.env_vars()
    finally:
        pg.stop()
        assert not [p for p in marked_processes(stack_id) if "postgres" in p[1]], "postgres outlived its fixture"
