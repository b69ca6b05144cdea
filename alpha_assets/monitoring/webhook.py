"""An Alertmanager webhook receiver that writes each alert into the project's alert log.

``python -m alpha_assets.monitoring.webhook --port 9095`` listens where the generated
alertmanager.yml sends P1 (``/alerts/p1``) and P2 (``/alerts/p2``) and appends one line per alert
to ``artifacts/alerts.jsonl`` beside the failed-run lines of ``run_failure_alert``. It is the
default destination; a pager bridge can take its place in alertmanager.yml.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Alert = dict[str, Any]


def alert_lines(path: str, payload: dict[str, Any]) -> list[Alert]:
    """The alerts of one Alertmanager notification (webhook payload version 4) as log lines."""
    if not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager notification: no 'alerts' list")
    out = []
    for alert in payload["alerts"]:
        labels = dict(alert.get("labels") or {})
        out.append({"kind": "alertmanager", "path": path, "receiver": payload.get("receiver", ""),
                    "status": alert.get("status", ""), "alertname": labels.get("alertname", ""),
                    "severity": labels.get("severity", ""), "run_id": labels.get("run_id", ""),
                    "labels": labels, "annotations": dict(alert.get("annotations") or {}),
                    "starts_at": alert.get("startsAt", ""), "received_at": time.time()})
    return out


class AlertReceiver:
    """Receives notifications on ``host:port``; keeps them in ``received`` and, with a data root,
    appends them to its alert log."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9095, data_root: Path | None = None) -> None:
        self.data_root = data_root
        self.received: list[Alert] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                    lines = alert_lines(self.path, json.loads(body))
                except (ValueError, TypeError) as exc:  # a bad request is answered, never fatal
                    self.send_error(400, str(exc))
                    return
                receiver._record(lines)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the log is the record
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _record(self, lines: list[Alert]) -> None:
        if self.data_root is not None:
            from alpha_assets.sensors.alerts import record_alert

            for line in lines:
                record_alert(self.data_root, line)
        with self._cond:
            self.received.extend(lines)
            self._cond.notify_all()

    def wait_for(self, match: Callable[[Alert], bool], timeout_s: float) -> Alert | None:
        """The first received alert matching ``match``, waiting up to ``timeout_s``; None if none came."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                hit = next((a for a in self.received if match(a)), None)
                left = deadline - time.monotonic()
                if hit is not None or left <= 0:
                    return hit
                self._cond.wait(left)

    def start(self) -> AlertReceiver:
        self._thread = threading.Thread(target=self._server.serve_forever, name="alert-webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from alpha_assets.paths import data_root

    ap = argparse.ArgumentParser(description="Alertmanager webhook → artifacts/alerts.jsonl")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9095)
    args = ap.parse_args(argv)
    receiver = AlertReceiver(args.host, args.port, data_root()).start()
    print(f"receiving alerts on {receiver.url}/alerts/p1 and /alerts/p2", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
