"""A throwaway Postgres cluster (Debian's `postgresql` binaries) on 127.0.0.1:<free port>.

`initdb` into a temporary directory, `postgres` serving it, a `dagster` role with a generated
password (host connections need it: scram-sha-256) and a `dagster` database. Postgres refuses
to run as root, so as root both run as the `postgres` user through `runuser`. A real deployment
points DAGSTER_PG_* at its managed database instead; nothing else changes.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from alpha_assets.processes import ManagedProcess, free_port, wait_until
from alpha_assets.scale.settings import PG_DB, PG_HOST, PG_PASSWORD, PG_PORT, PG_USER

SERVICE_USER = "postgres"  # who runs the server when we are root


def postgres_bindir() -> Path | None:
    """The newest installed server binaries (`/usr/lib/postgresql/<version>/bin`), else `pg_config`'s."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and Path(out, "initdb").exists():
            return Path(out)
    return None


class ThrowawayPostgres:
    """The cluster lives in its own temporary directory (the service user must reach it, so not
    inside a caller's private temp dir) and is deleted by `stop()`."""

    def __init__(self, env: dict[str, str], port: int | None = None, user: str = "dagster",
                 db: str = "dagster") -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise FileNotFoundError("Postgres server binaries not found (apt-get install -y postgresql)")
        self.bindir, self.env = bindir, dict(env)
        self.directory = Path(tempfile.mkdtemp(prefix="alpha-pg-"))
        self.port, self.user, self.db = port or free_port(), user, db
        self.password = secrets.token_hex(16)
        self._superuser_password = secrets.token_hex(16)
        self.process: ManagedProcess | None = None

    def _as_service_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", SERVICE_USER, "--", *argv] if os.geteuid() == 0 else argv

    def start(self, timeout_s: float = 60.0) -> ThrowawayPostgres:
        import psycopg2

        pwfile = self.directory / "superuser.pw"
        pwfile.write_text(self._superuser_password + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SERVICE_USER)
            for path in (self.directory, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        data = self.directory / "data"
        init = subprocess.run(
            self._as_service_user([str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                                   "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]),
            cwd=self.directory, env=self.env, capture_output=True, text=True, check=False)
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr[-2000:]}")
        # A throwaway cluster: no fsync (its data dies with it); enough connections for every
        # process of the profile (each run worker and Celery task opens its own).
        argv = [str(self.bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
                "-k", str(self.directory), "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=300"]
        self.process = ManagedProcess("postgres", self._as_service_user(argv), self.env,
                                      self.directory / "postgres.log", cwd=self.directory).start()

        def connect() -> psycopg2.extensions.connection:
            return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                    password=self._superuser_password, dbname="postgres", connect_timeout=2)

        wait_until(lambda: connect().close() is None, timeout_s, f"postgres on port {self.port}", self.process)
        con = connect()
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f"CREATE ROLE {self.user} LOGIN PASSWORD %s", (self.password,))
            cur.execute(f"CREATE DATABASE {self.db} OWNER {self.user}")
        con.close()
        return self

    def env_vars(self) -> dict[str, str]:
        """What every process of the profile needs to reach the instance storage."""
        return {PG_HOST: "127.0.0.1", PG_PORT: str(self.port), PG_USER: self.user, PG_PASSWORD: self.password,
                PG_DB: self.db}

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT = fast shutdown: disconnect clients, no waiting for them to leave
            self.process.stop(sig=signal.SIGINT, grace_s=20)
        shutil.rmtree(self.directory, ignore_errors=True)
