"""The whole scale-out profile on one machine, exactly as it runs on several: a throwaway Postgres
(instance storage), redis-server (Celery broker + results), one code server, the webserver,
dagster-daemon, and N Celery workers, all on 127.0.0.1 with free ports.

    with ScaleStack(StackOptions(root=..., data_root=..., workers=2)) as stack:
        stack.graphql.launch_backfill("daily_pipeline", [...])

Used by `python -m alpha_assets.scale up` (`make scale`), tests/scale and bench/backfill_scale.py.
On several machines the same processes run with the same environment (`stack.env`), each on its
host; only the addresses and the shared mount change.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import httpx

from alpha_assets.live.redis_server import ManagedRedis, redis_installed
from alpha_assets.paths import REPO_ROOT
from alpha_assets.processes import ManagedProcess, free_port, wait_until
from alpha_assets.scale import settings as S
from alpha_assets.scale.graphql import LOCATION, DagsterGraphQL
from alpha_assets.scale.postgres import ThrowawayPostgres, postgres_bindir
from alpha_assets.scale.processes import STACK_ID_ENV, sweep

INSTANCE_YAML = REPO_ROOT / "deploy" / "dagster.postgres.yaml"
WORKSPACE_YAML = REPO_ROOT / "deploy" / "workspace.scale.yaml"
WORKER_APP = "alpha_assets.scale.celery_worker"
READY_TIMEOUT_S = 180.0  # each Python process imports the code location (seconds each on a busy machine)


def missing_requirements() -> list[str]:
    """What this machine lacks to run the profile (empty: nothing)."""
    missing = [f"python package {mod} (pip install -e '.[scale]')"
               for mod in ("dagster_celery", "dagster_postgres", "psycopg2") if importlib.util.find_spec(mod) is None]
    if postgres_bindir() is None:
        missing.append("Postgres server (apt-get install -y postgresql)")
    if not redis_installed():
        missing.append("redis-server (apt-get install -y redis-server)")
    return missing


@dataclass
class StackOptions:
    root: Path  # logs, Dagster home, Redis files (the Postgres cluster has its own temp dir)
    data_root: Path  # ALPHA_DATA_ROOT: the storage every worker shares
    workers: int = 2
    webserver_port: int | None = None  # None: a free port
    visibility_timeout_s: int = 900
    extra_env: dict[str, str] = field(default_factory=dict)


class ScaleStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.root = Path(options.root)
        self.logs = self.root / "logs"
        self.home = self.root / "dagster_home"
        self.stack_id = uuid.uuid4().hex
        self.hostname = socket.gethostname()
        self.postgres: ThrowawayPostgres | None = None
        self.redis: ManagedRedis | None = None
        self.servers: dict[str, ManagedProcess] = {}  # code server, webserver, daemon
        self.workers: dict[str, ManagedProcess] = {}  # Celery node name -> process
        self.env: dict[str, str] = {}
        self.webserver_url = ""
        self.graphql: DagsterGraphQL | None = None
        self.leftovers: list[tuple[int, str]] = []

    # ------------------------------------------------------------------ start
    def __enter__(self) -> ScaleStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> ScaleStack:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        base = {**os.environ, **self.options.extra_env, STACK_ID_ENV: self.stack_id,
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.postgres = ThrowawayPostgres(base).start()
        self.redis = ManagedRedis(self.root / "redis", env=base).start()
        data_root = Path(self.options.data_root).resolve()
        code_port = free_port()
        self.env = {
            **base, **self.postgres.env_vars(),
            "DAGSTER_HOME": str(self.home),
            S.DEPLOYMENT: "scale",
            S.DATA_ROOT: str(data_root),
            # beside the embedded instance's <data root>/dagster: two instances never share a directory
            S.DAGSTER_STORAGE: str(data_root / "dagster-scale"),
            S.CELERY_BROKER: self.redis.db_url(0),
            S.CELERY_BACKEND: self.redis.db_url(1),
            S.CELERY_VISIBILITY_TIMEOUT: str(self.options.visibility_timeout_s),
            S.CODE_SERVER_HOST: "127.0.0.1",
            S.CODE_SERVER_PORT: str(code_port),
        }
        shutil.copyfile(INSTANCE_YAML, self.home / "dagster.yaml")
        # Start every process first and wait after: each spends seconds importing, in parallel.
        self._server("code-server", [self._bin("dagster"), "code-server", "start", "-h", "127.0.0.1",
                                     "-p", str(code_port), "-m", "alpha_assets.definitions", "--location-name", LOCATION])
        port = self.options.webserver_port or free_port()
        self._server("webserver", [self._bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                                   "-w", str(WORKSPACE_YAML)])
        self._server("daemon", [self._bin("dagster-daemon"), "run", "-w", str(WORKSPACE_YAML)])
        for i in range(1, self.options.workers + 1):
            self.start_worker(f"w{i}")
        self.webserver_url = f"http://127.0.0.1:{port}"
        self._wait_for_webserver()
        self._wait_for_daemon()
        self.wait_for_workers(list(self.workers))
        return self

    def _bin(self, name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def _server(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.env, self.logs / f"{name}.log", cwd=REPO_ROOT).start()
        self.servers[name] = proc
        return proc

    def _wait_for_webserver(self) -> None:
        proc = self.servers["webserver"]
        wait_until(lambda: httpx.get(f"{self.webserver_url}/server_info", timeout=2).status_code == 200,
                   READY_TIMEOUT_S, "dagster-webserver", proc)
        self.graphql = graphql = DagsterGraphQL(self.webserver_url)
        wait_until(graphql.location_loaded, READY_TIMEOUT_S, f"code location {LOCATION}",
                   self.servers["code-server"], interval_s=1.0)

    def _wait_for_daemon(self) -> None:
        graphql = self.graphql
        assert graphql is not None
        wanted = {"SENSOR", "QUEUED_RUN_COORDINATOR", "BACKFILL", "MONITORING"}

        def healthy() -> bool:
            status = graphql.daemons()
            return all(status.get(d) for d in wanted)

        wait_until(healthy, READY_TIMEOUT_S, "dagster-daemon", self.servers["daemon"], interval_s=1.0)

    def start_worker(self, name: str, concurrency: int = 1) -> str:
        """A Celery worker `name@<host>`; one pool process per `concurrency`. Returns its node name."""
        node = f"{name}@{self.hostname}"
        argv = [self._bin("celery"), "-A", WORKER_APP, "worker", "-n", node, "--pool", "prefork",
                "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
        self.workers[node] = ManagedProcess(f"celery-{name}", argv, self.env, self.logs / f"celery-{name}.log",
                                            cwd=REPO_ROOT).start()
        return node

    def celery_app(self) -> Any:
        """A Celery client with the workers' configuration (ping, inspect)."""
        from alpha_assets.scale.celery_config import celery_app
        from alpha_assets.scale.settings import scale_settings

        return celery_app(scale_settings(self.env))

    def wait_for_workers(self, nodes: list[str], timeout_s: float = READY_TIMEOUT_S) -> None:
        app = self.celery_app()
        try:
            def answered() -> bool:
                replies = {name for reply in app.control.ping(timeout=1.0) for name in reply}
                return set(nodes) <= replies

            for node in nodes:  # fail early with the log of a worker that died
                wait_until(answered, timeout_s, f"Celery worker {node}", self.workers[node], interval_s=1.0)
        finally:
            app.close()

    # ------------------------------------------------------------------ use
    def instance(self) -> dg.DagsterInstance:
        """The profile's instance, opened from this process. Its yaml's environment references are
        resolved while it loads, with the stack's variables in place only for that moment."""
        names = [k for k in self.env if k.startswith(("DAGSTER_PG_", S.DAGSTER_STORAGE))]
        saved = {k: os.environ.get(k) for k in names}
        os.environ.update({k: self.env[k] for k in names})
        try:
            return dg.DagsterInstance.from_config(str(self.home))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def kill_worker(self, node: str, sig: signal.Signals = signal.SIGKILL) -> list[int]:
        """Signal a worker's whole session (main process and pool processes): a worker host lost."""
        proc = self.workers[node]
        pids = [proc.pid] + _children(proc.pid)
        proc.signal_group(sig)
        proc.stop(grace_s=5)
        return pids

    # ------------------------------------------------------------------ stop
    def stop(self) -> list[tuple[int, str]]:
        """Stop everything (webserver and daemon first, so nothing new starts), then sweep for any
        process that still carries this stack's mark. Returns what the sweep had to kill."""
        if self.graphql is not None:
            self.graphql.close()
        for name in ("webserver", "daemon", "code-server"):
            if name in self.servers:
                self.servers[name].stop()
        for proc in self.workers.values():
            proc.stop(grace_s=10)
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()
        self.leftovers = sweep(self.stack_id)
        return self.leftovers


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out
