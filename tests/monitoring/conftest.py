"""The monitoring stack of the end-to-end tests: Pushgateway → Prometheus → Alertmanager → webhook.

Prometheus loads the committed rule files of deploy/prometheus (their production ``for:``
durations); only its scrape and evaluation intervals are short (1 s) and the addresses are free
ports. Alertmanager runs the generated routes unchanged, sending to the project's receiver.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from alpha_assets.monitoring import servers as cfg
from alpha_assets.monitoring.files import PROMETHEUS_DIR
from alpha_assets.monitoring.webhook import AlertReceiver
from tests.monitoring import servers

REPO = Path(__file__).resolve().parents[2]
SCRAPE_INTERVAL = "1s"


@dataclass
class Stack:
    pushgateway: servers.Server
    prometheus: servers.Server
    alertmanager: servers.Server
    receiver: AlertReceiver

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.prometheus.get("/api/v1/query", query=expr)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        return self.prometheus.get("/api/v1/alerts")["data"]["alerts"]

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        return self.alertmanager.get("/api/v2/alerts")

    @staticmethod
    def wait(what: str, probe: Callable[[], Any], timeout_s: float, every_s: float = 0.5) -> Any:
        """Poll ``probe`` until it returns something truthy; fail naming ``what`` at the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = probe()
            if got:
                return got
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout_s:.0f} s")
            time.sleep(every_s)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("monitoring")
    started: list[servers.Server] = []
    receiver = AlertReceiver("127.0.0.1", 0, data_root=work / "var").start()
    try:
        started.append(gateway := servers.pushgateway(work))
        am_file = work / "alertmanager.yml"
        am_file.write_text(yaml.safe_dump(cfg.alertmanager_config(webhook=receiver.url)))
        started.append(am := servers.alertmanager(work, am_file))
        prom_file = work / "prometheus.yml"
        rule_files = [str(REPO / PROMETHEUS_DIR / f) for f in cfg.RULE_FILES]
        prom_file.write_text(yaml.safe_dump(cfg.prometheus_config(
            pushgateway=gateway.url.removeprefix("http://"), alertmanager=am.url.removeprefix("http://"),
            scrape_interval=SCRAPE_INTERVAL, evaluation_interval=SCRAPE_INTERVAL, rule_files=rule_files)))
        started.append(prom := servers.prometheus(work, prom_file))
        yield Stack(gateway, prom, am, receiver)
    finally:
        for server in reversed(started):
            server.stop()
        receiver.stop()
