"""SQLite sink health probe for the live supervisor: the table exists and keeps growing.

Each `check()` counts the rows (of one run_id, if given) and compares with the count the probe saw
at least `min_growth_window_seconds` ago; healthy = grew by `min_growth_count` or more. Until the
probe has a sample that old it reports healthy with reason `warming_up`. The time of a check comes
from `now_ms` or the injected clock (a supervisor's clock; never used in signal computation).
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alpha_assets.sinks.config import SinkConfig
from alpha_assets.sinks.sqlite import TABLE


@dataclass(frozen=True)
class SqliteHealth:
    ok: bool
    reason: str  # ok | warming_up | no_database | no_table | stalled | error: ...
    table_exists: bool
    rows: int | None
    growth: int | None  # rows added since the baseline sample
    window_s: float | None  # age of the baseline sample
    checked_at_ms: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SqliteHealthProbe:
    def __init__(self, db_path: Path, *, min_growth_window_seconds: float = 60.0, min_growth_count: int = 1,
                 run_id: str | None = None, clock: Callable[[], float] | None = None) -> None:
        if min_growth_window_seconds <= 0:
            raise ValueError(f"min_growth_window_seconds must be > 0, got {min_growth_window_seconds}")
        if min_growth_count < 0:
            raise ValueError(f"min_growth_count must be >= 0, got {min_growth_count}")
        self.db_path = Path(db_path)
        self.window_ms = int(min_growth_window_seconds * 1000)
        self.min_growth_count = min_growth_count
        self.run_id = run_id
        self._clock = clock or (lambda: time.time() * 1000.0)  # supervisor time, ms
        self._samples: deque[tuple[int, int]] = deque()

    @classmethod
    def from_config(cls, db_path: Path, cfg: SinkConfig, **kw: Any) -> SqliteHealthProbe:
        return cls(db_path, min_growth_window_seconds=cfg.min_growth_window_seconds,
                   min_growth_count=cfg.min_growth_count, **kw)

    def _count(self) -> tuple[bool, int]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=2.0)
        try:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TABLE,)).fetchone():
                return False, 0
            if self.run_id is None:
                return True, int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])
            return True, int(conn.execute(f"SELECT count(*) FROM {TABLE} WHERE run_id = ?", (self.run_id,)).fetchone()[0])
        finally:
            conn.close()

    def check(self, now_ms: float | None = None) -> SqliteHealth:
        now = int(now_ms if now_ms is not None else self._clock())
        if not self.db_path.exists():
            return SqliteHealth(False, "no_database", False, None, None, None, now)
        try:
            exists, rows = self._count()
        except sqlite3.Error as exc:
            return SqliteHealth(False, f"error: {exc}", False, None, None, None, now)
        if not exists:
            return SqliteHealth(False, "no_table", False, None, None, None, now)
        self._samples.append((now, rows))
        # baseline: the newest sample at least one window old; older ones are no longer needed
        baseline = None
        while self._samples and now - self._samples[0][0] >= self.window_ms:
            baseline = self._samples.popleft()
        if baseline is not None:
            self._samples.appendleft(baseline)
        else:
            return SqliteHealth(True, "warming_up", True, rows, None, None, now)
        growth = rows - baseline[1]
        ok = growth >= self.min_growth_count
        return SqliteHealth(ok, "ok" if ok else "stalled", True, rows, growth, (now - baseline[0]) / 1000.0, now)
