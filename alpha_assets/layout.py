"""The on-disk layout: every path derived from the data root (or the sinks' runtime directory).

No other module spells a directory of the data root; they ask a `Layout` (batch, live, reports)
or a `RuntimeLayout` (the sinks, whose directory may be `V13_OUTPUT_DIR` instead of
`<data root>/runtime`). Nothing here creates directories or reads the environment except
`Layout.from_env`; writers create what they write.

    <root>/landing/{raw,preview,deadletter}/date=<D>/symbol=<S>/   the live path's landing zone
    <root>/warehouse/<asset>/date=<D>[/symbol=<S>]/<table>.parquet the parquet IO manager
    <root>/runtime/                                                sinks, worker state, the soak's Redis
    <root>/artifacts/                                              manifests, parity and fault files, alerts
    <root>/logs/                                                   worker logs, daily reports
    <root>/dagster/                                                the Dagster instance (instance.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alpha_assets.paths import data_root

SQLITE_FILE = "signals.db"  # SinkConfig.sqlite_file's default
SIGNAL_KIND = "signal"  # the spool kind of signal rows (spool/signal, ready/signal)
LANDING_ZONES = ("raw", "preview", "deadletter")


def hive_dir(base: Path, date: str, symbol: str | None = None) -> Path:
    """`<base>/date=<date>[/symbol=<symbol>]`: the partition directories of landing and warehouse."""
    out = Path(base) / f"date={date}"
    return out / f"symbol={symbol}" if symbol else out


@dataclass(frozen=True)
class RuntimeLayout:
    """The sinks' runtime directory: SQLite file, JSONL spool and its published files, outbox."""

    dir: Path

    def sqlite_file(self, name: str = SQLITE_FILE) -> Path:
        return self.dir / name

    def spool_dir(self, *parts: str) -> Path:
        """Files being written (`spool/<kind>/<symbol>`)."""
        return self.dir.joinpath("spool", *parts)

    def ready_dir(self, *parts: str) -> Path:
        """Files published (`ready/<kind>/<symbol>`): readers only ever see these."""
        return self.dir.joinpath("ready", *parts)

    @property
    def signal_ready(self) -> Path:
        return self.ready_dir(SIGNAL_KIND)

    @property
    def signal_spool(self) -> Path:
        return self.spool_dir(SIGNAL_KIND)

    @property
    def exec_events_dir(self) -> Path:
        """The executor outbox: a directory per symbol, its spool below it."""
        return self.dir / "exec_events"

    def exec_events(self, symbol: str) -> Path:
        return self.exec_events_dir / symbol

    def deadletter_file(self, sink: str) -> Path:
        return self.dir / "deadletter" / f"signals_{sink}.jsonl"

    def checkpoints(self, run_id: str) -> Path:
        return self.dir / "checkpoints" / run_id


@dataclass(frozen=True)
class Layout:
    """Every path under one data root."""

    root: Path

    @classmethod
    def from_env(cls) -> Layout:
        """The data root of `ALPHA_DATA_ROOT` (default `<repo>/var`)."""
        return cls(data_root())

    # landing zone ---------------------------------------------------------------------------
    @property
    def landing(self) -> Path:
        return self.root / "landing"

    def landing_zone(self, zone: str) -> Path:
        return self.landing / zone

    def landing_partition(self, zone: str, date: str, symbol: str) -> Path:
        return hive_dir(self.landing_zone(zone), date, symbol)

    # warehouse ------------------------------------------------------------------------------
    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    def warehouse_partition(self, asset: str, date: str, symbol: str | None = None) -> Path:
        return hive_dir(self.warehouse / asset, date, symbol)

    # runtime --------------------------------------------------------------------------------
    @property
    def runtime_dir(self) -> Path:
        return self.root / "runtime"

    @property
    def runtime(self) -> RuntimeLayout:
        """The sinks' default runtime directory (a sink config may point elsewhere)."""
        return RuntimeLayout(self.runtime_dir)

    def heartbeat(self, worker: str) -> Path:
        return self.runtime_dir / "health" / f"{worker}.json"

    def watermark(self, run_id: str, symbol: str) -> Path:
        return self.runtime_dir / "harvest" / run_id / f"watermark_{symbol}.json"

    def redis_dir(self, run_id: str) -> Path:
        return self.runtime_dir / "redis" / run_id

    def worker_config(self, run_id: str) -> Path:
        """The configuration a soak gives its workers (ALPHA_WORKER_CONFIG)."""
        return self.runtime_dir / "soak" / f"worker_config_{run_id}.json"

    # artifacts ------------------------------------------------------------------------------
    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def run_logs(self) -> Path:
        return self.artifacts / "run_logs"

    def run_manifest(self, run_id: str) -> Path:
        return self.run_logs / f"run_manifest_{run_id}.json"

    def source_manifest(self, run_id: str) -> Path:
        return self.artifacts / f"source_manifest_{run_id}.json"

    def parity_file(self, run_id: str, date: str, symbol: str) -> Path:
        return self.artifacts / f"parity_diff_{run_id}_{date}_{symbol}.json"

    def fault_report(self, run_id: str) -> Path:
        return self.artifacts / f"fault_injection_{run_id}.json"

    def fault_feed(self, run_id: str) -> Path:
        """What the exchange produced during a fault run (loss accounting's reference)."""
        return self.artifacts / f"fault_feed_{run_id}.json"

    @property
    def alerts_file(self) -> Path:
        return self.artifacts / "alerts.jsonl"

    # logs -----------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log_dir(self, process: str) -> Path:
        """Where a supervised process (a worker, the orchestrator, the gateway) writes its logs."""
        return self.logs / process

    def pushgateway_log(self, run_id: str) -> Path:
        return self.log_dir("pushgateway") / f"{run_id}.log"

    @property
    def report_dir(self) -> Path:
        return self.logs / "report"

    # the Dagster instance -------------------------------------------------------------------
    @property
    def dagster(self) -> Path:
        return self.root / "dagster"
