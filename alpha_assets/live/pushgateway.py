"""Push live metrics to a Prometheus Pushgateway on a fixed interval.

Each push replaces the group ``job=<job>, run_id=<run_id>`` with a fresh registry built from a
snapshot of figures, plus ``export_count`` and ``error_count`` themselves, plus the series of any
extra collectors (the latency histograms and consumer lag of ``alpha_assets.live.latency``). A push that fails
(gateway down, timeout, HTTP error) increments ``error_count`` and is retried on the next tick:
metrics export never stops a run. With no address configured, pushes are counted as skipped.

Address resolution (``pushgateway_url``; first non-empty wins): the explicit url (run config);
``pushgateway.url`` of alpha_assets.yaml; ``ALPHA_PUSHGATEWAY_URL``; the v13 pair
``TIMESERIES_TYPE=prometheus`` + ``TIMESERIES_URL``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

DEFAULT_JOB = "alpha_soak"
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_]")

Figures = Mapping[str, object]


def configured_pushgateway_url() -> str:
    """``pushgateway.url`` of alpha_assets.yaml ("" when unset or the file is unreadable: the
    environment names still apply, and a metrics address must not stop a run)."""
    try:
        from alpha_assets.settings import settings

        return settings().pushgateway.url
    except Exception:
        return ""


def pushgateway_url(explicit: str = "", env: Mapping[str, str] | None = None) -> str:
    """The one resolution of the gateway address (soak, fault runs, the failure sensor): the explicit
    url (run config), then alpha_assets.yaml, then the environment; "" when export is off."""
    return resolve_pushgateway_url(explicit or configured_pushgateway_url(), env)


def resolve_pushgateway_url(explicit: str = "", env: Mapping[str, str] | None = None) -> str:
    """`explicit`, else the environment's address, else "". The v13 env names keep working."""
    env = os.environ if env is None else env
    if explicit:
        return explicit.strip()
    if env.get("ALPHA_PUSHGATEWAY_URL", "").strip():
        return env["ALPHA_PUSHGATEWAY_URL"].strip()
    if env.get("TIMESERIES_TYPE", "").strip().lower() == "prometheus":
        return env.get("TIMESERIES_URL", "").strip()
    return ""


def metric_name(key: str) -> str:
    name = _NAME_BAD.sub("_", key)
    return name if not name[:1].isdigit() else "_" + name


@dataclass
class ExportStats:
    export_count: int = 0
    error_count: int = 0
    skipped: int = 0
    active_s: float = 0.0  # how long the periodic loop ran
    last_error: str = ""
    errors: list[str] = field(default_factory=list)  # the first few causes, for the manifest

    def as_dict(self) -> dict[str, object]:
        return {"export_count": self.export_count, "error_count": self.error_count,
                "export_skipped": self.skipped, "export_active_s": round(self.active_s, 3),
                "export_last_error": self.last_error,
                "export_errors": list(self.errors)}


class PushgatewayExporter:
    """Pushes figures to ``url`` under grouping ``job`` + ``run_id``.

    Figures are ``{name: number}`` or ``{name: {label_value: number}}``; the latter becomes one
    gauge with a ``key`` label (e.g. RSS per process). Booleans and non-numbers are ignored.
    """

    def __init__(self, url: str, *, run_id: str, job: str = DEFAULT_JOB, timeout_s: float = 2.0,
                 collectors: tuple[object, ...] = ()) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.url = url.strip()
        self.run_id = run_id
        self.job = job
        self.timeout_s = timeout_s
        self.collectors = list(collectors)  # prometheus_client collectors pushed with every figure set
        self.stats = ExportStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    def push(self, figures: Figures) -> bool:
        """One push; True on success. Never raises."""
        with self._lock:
            if not self.url:
                self.stats.skipped += 1
                return False
            registry = CollectorRegistry()
            try:
                # export_count is pushed as the value it has once this push lands.
                self._fill(registry, figures, self.stats.export_count + 1, self.stats.error_count)
                for c in self.collectors:
                    registry.register(c)  # type: ignore[arg-type]
                push_to_gateway(self.url, job=self.job, registry=registry,
                                grouping_key={"run_id": self.run_id}, timeout=self.timeout_s)
            except Exception as exc:  # unreachable, HTTP error, bad figures: count, retry next tick
                self.stats.error_count += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if len(self.stats.errors) < 20:
                    self.stats.errors.append(self.stats.last_error)
                return False
            self.stats.export_count += 1
            return True

    @staticmethod
    def _fill(registry: CollectorRegistry, figures: Figures, export_count: int, errors: int) -> None:
        Gauge("export_count", "successful pushes in this run", registry=registry).set(export_count)
        Gauge("error_count", "failed pushes in this run", registry=registry).set(errors)
        for key, value in figures.items():
            if key in ("export_count", "error_count"):
                continue
            if isinstance(value, Mapping):
                gauge = Gauge(metric_name(key), key, ["key"], registry=registry)
                for label, v in value.items():
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        gauge.labels(key=str(label)).set(float(v))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                Gauge(metric_name(key), key, registry=registry).set(float(value))

    def start(self, collect: Callable[[], Figures], interval_s: float) -> None:
        """Push ``collect()`` now and then every ``interval_s`` seconds on a daemon thread."""
        if interval_s <= 0:
            raise ValueError(f"export_interval_s must be > 0, got {interval_s}")
        if self._thread is not None:
            raise RuntimeError("exporter already started")
        self._stop.clear()

        def loop() -> None:
            # Fixed rate: the next push is due one interval after the previous was due, not after
            # it finished, so a slow push does not make the count drift below duration/interval.
            self.started_at = time.monotonic()
            next_t = self.started_at
            while not self._stop.is_set():
                try:
                    figures = collect()
                except Exception as exc:  # a broken collector is an export error, not a crash
                    with self._lock:
                        self.stats.error_count += 1
                        self.stats.last_error = f"collect: {type(exc).__name__}: {exc}"
                else:
                    self.push(figures)
                next_t += interval_s
                if self._stop.wait(max(0.0, next_t - time.monotonic())):
                    break

        self._thread = threading.Thread(target=loop, name="pushgateway-exporter", daemon=True)
        self._thread.start()

    def stop(self, final: Figures | None = None) -> ExportStats:
        """Stop the loop; push ``final`` once more so the gateway holds the end-of-run figures."""
        self._stop.set()
        if self.started_at is not None:
            self.stats.active_s = time.monotonic() - self.started_at
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)
            self._thread = None
        if final is not None:
            self.push(final)
        return self.stats
