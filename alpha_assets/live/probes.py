"""Readiness and health probes: log keyword, file appearance/recency, SQLite openable, heartbeat.

A probe is called with the child's ``ProbeContext`` and returns ``(ok, detail)``; it never
raises (a probe that cannot decide says not-ok with the reason). Wall-clock time is used here
on purpose: probes supervise processes, they do not compute data.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass
class ProbeContext:
    name: str
    stdout_path: Path
    stdout_offset: int  # where this incarnation's output starts in the (appended) log
    started_at: float  # time.time() of the spawn


class Probe(Protocol):
    def __call__(self, ctx: ProbeContext) -> tuple[bool, str]: ...


@dataclass(frozen=True)
class LogKeyword:
    """Ready when this incarnation printed ``keyword`` on stdout."""

    keyword: str

    def __call__(self, ctx: ProbeContext) -> tuple[bool, str]:
        try:
            with open(ctx.stdout_path, "rb") as fh:
                fh.seek(ctx.stdout_offset)
                found = self.keyword.encode() in fh.read()
        except OSError as exc:
            return False, f"log unreadable: {exc}"
        return found, f"keyword {self.keyword!r} {'seen' if found else 'not seen yet'}"


@dataclass(frozen=True)
class FileAppears:
    """At least one file matching ``pattern`` under ``root`` with size ≥ ``min_size``
    (and, with ``since_start``, modified after this incarnation started)."""

    root: Path
    pattern: str
    min_size: int = 1
    since_start: bool = False

    def __call__(self, ctx: ProbeContext) -> tuple[bool, str]:
        for p in Path(self.root).glob(self.pattern):
            try:
                st = p.stat()
            except OSError:
                continue
            if st.st_size >= self.min_size and (not self.since_start or st.st_mtime >= ctx.started_at - 1):
                return True, f"{p.name} present"
        return False, f"no {self.pattern} under {self.root}"


@dataclass(frozen=True)
class FilesRecent:
    """At least one file matching ``pattern`` was modified within the last ``within_s`` seconds."""

    root: Path
    pattern: str
    within_s: float = 60.0

    def __call__(self, ctx: ProbeContext) -> tuple[bool, str]:
        newest = 0.0
        for p in Path(self.root).glob(self.pattern):
            try:
                newest = max(newest, p.stat().st_mtime)
            except OSError:
                continue
        if newest == 0.0:
            # A fresh child gets the window to produce its first file.
            fresh = time.time() - ctx.started_at < self.within_s
            return fresh, f"no {self.pattern} yet" + (" (within start grace)" if fresh else "")
        age = time.time() - newest
        return age <= self.within_s, f"newest {self.pattern} is {age:.1f}s old (limit {self.within_s}s)"


@dataclass(frozen=True)
class SqliteOpenable:
    """The database opens read-only and (optionally) ``table`` answers a one-row query."""

    db_path: Path
    table: str | None = None

    def __call__(self, ctx: ProbeContext) -> tuple[bool, str]:
        if not Path(self.db_path).exists():
            return False, f"{self.db_path} does not exist"
        try:
            con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=1.0)
            try:
                if self.table:
                    con.execute(f'SELECT 1 FROM "{self.table}" LIMIT 1').fetchall()
                else:
                    con.execute("SELECT 1").fetchall()
            finally:
                con.close()
        except sqlite3.Error as exc:
            return False, f"sqlite: {exc}"
        return True, f"{Path(self.db_path).name} openable"


@dataclass(frozen=True)
class HeartbeatFresh:
    """The worker's heartbeat JSON was written within ``max_age_s`` and the named counters are 0."""

    path: Path
    max_age_s: float = 30.0
    zero_fields: tuple[str, ...] = ()

    def __call__(self, ctx: ProbeContext) -> tuple[bool, str]:
        try:
            age = time.time() - Path(self.path).stat().st_mtime
            beat = json.loads(Path(self.path).read_text())
        except (OSError, ValueError) as exc:
            return False, f"heartbeat unreadable: {exc}"
        if age > self.max_age_s:
            return False, f"heartbeat {age:.1f}s old (limit {self.max_age_s}s)"
        bad = {f: beat.get(f) for f in self.zero_fields if beat.get(f)}
        if bad:
            return False, f"counters not zero: {bad}"
        return True, f"heartbeat {age:.1f}s old"


@dataclass(frozen=True)
class AllOf:
    probes: tuple[Probe, ...]

    def __call__(self, ctx: ProbeContext) -> tuple[bool, str]:
        details = []
        for probe in self.probes:
            ok, detail = probe(ctx)
            if not ok:
                return False, detail
            details.append(detail)
        return True, "; ".join(details)
