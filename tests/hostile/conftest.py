"""One real redis-server (AOF on, free loopback port) for the hostile-input tests; every test runs
under its own run id, so their streams never meet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live.conftest import start_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()
