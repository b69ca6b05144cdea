"""A local Prometheus Pushgateway (the Debian package) for runs with no gateway configured: the soak
and the fault runs export to it so their metrics are pushed and checked; a fault stops and restarts
it on the same port (an outage)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx

from alpha_assets.processes import ManagedProcess, free_port, wait_until

INSTALL_HINT = "prometheus-pushgateway is not installed (apt-get install -y prometheus-pushgateway)"


class ManagedGateway:
    """A real Pushgateway process on a loopback port (free unless given) that can be stopped and restarted."""

    def __init__(self, log_path: Path, port: int | None = None, binary: str | None = None) -> None:
        found = binary or shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
        if found is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.port, self.log_path = port or free_port(), Path(log_path)
        self.process = ManagedProcess("pushgateway", [found, f"--web.listen-address=127.0.0.1:{self.port}"],
                                      os.environ, self.log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> ManagedGateway:
        self.process.start()
        try:
            wait_until(lambda: httpx.get(f"{self.url}/-/ready", timeout=0.5).status_code == 200, timeout_s,
                       f"pushgateway on port {self.port}", self.process, interval_s=0.05)
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(str(exc)) from None
        return self

    def stop(self) -> None:
        self.process.stop(grace_s=5)

    def alive(self) -> bool:
        return self.process.alive()


def local_gateway(url: str, log_path: Path) -> tuple[str, ManagedGateway | None, str]:
    """For a run whose resolved address is `url`: when it is empty, start a local gateway so the run's
    metrics are exported and checked. (address to push to, the gateway to stop afterwards or None,
    what happened, for the run's log)."""
    if url:
        return url, None, f"pushing metrics to {url}"
    try:
        gateway = ManagedGateway(log_path).start()
    except (FileNotFoundError, RuntimeError) as exc:
        return "", None, f"no Pushgateway configured and none could be started ({exc}); metrics not exported"
    return gateway.url, gateway, f"no Pushgateway configured: started a local one at {gateway.url}"
