"""The Alertmanager webhook receiver: notifications become alert-log lines; bad requests are refused."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from alpha_assets.monitoring.webhook import AlertReceiver

NOTIFICATION = {
    "version": "4", "receiver": "alpha-p1", "status": "firing",
    "alerts": [{"status": "firing", "startsAt": "2026-01-01T00:00:00Z",
                "labels": {"alertname": "AlphaWorkerDegraded", "severity": "P1", "run_id": "soak_1", "key": "signal"},
                "annotations": {"summary": "P1: worker signal is degraded in soak soak_1"}}],
}


def test_notifications_become_alert_lines(tmp_path: Path) -> None:
    receiver = AlertReceiver("127.0.0.1", 0, data_root=tmp_path).start()
    try:
        assert httpx.post(receiver.url + "/alerts/p1", json=NOTIFICATION, timeout=5).status_code == 200
        assert httpx.post(receiver.url + "/alerts/p1", content=b"{not json", timeout=5).status_code == 400
        assert httpx.post(receiver.url + "/alerts/p2", json={"status": "firing"}, timeout=5).status_code == 400
        got = receiver.wait_for(lambda a: a["alertname"] == "AlphaWorkerDegraded", timeout_s=5)
        assert receiver.wait_for(lambda a: a["alertname"] == "Other", timeout_s=0.2) is None
    finally:
        receiver.stop()
    assert got is not None and (got["severity"], got["run_id"], got["path"]) == ("P1", "soak_1", "/alerts/p1")
    lines = [json.loads(x) for x in (tmp_path / "artifacts" / "alerts.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["kind"] == "alertmanager" and lines[0]["labels"]["key"] == "signal"
