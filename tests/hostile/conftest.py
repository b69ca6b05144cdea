"""One real redis-server (AOF on, free loopback port) for the hostile-input tests; every test runs
under its own run id, so their streams never meet."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from alpha_assets.live.redis_server import ManagedRedis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        server = ManagedRedis(tmp_path_factory.mktemp("redis")).start()
    except FileNotFoundError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{exc} and CI=true: the real server is required")
        pytest.skip(str(exc))
    try:
        yield server.url
    finally:
        server.stop()
