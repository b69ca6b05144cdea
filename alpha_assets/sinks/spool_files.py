"""The minute spool's vocabulary: counters, recovery report, an open part, minute labels, fsync of a
directory (alpha_assets.sinks.spool holds the spool itself)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

FsyncPolicy = Literal["always", "rotate", "never"]
IndexScope = Literal["all", "minute"]
FSYNC_POLICIES: tuple[str, ...] = ("always", "rotate", "never")
MINUTE_MS = 60_000
FSYNC_THREADS = 16  # parts fsynced side by side when many minutes are published at once
Key = tuple[Any, ...]


class SpoolError(RuntimeError):
    """Raised on misuse of a spool (bad arguments, a second writer, writing after close)."""


class SpoolBusyError(SpoolError):
    """Another writer holds the spool directory (its parts are being written, not orphaned)."""


@dataclass
class SpoolCounters:
    records_in: int = 0  # records offered to append()
    records_written: int = 0  # lines written to .part files
    duplicates_skipped: int = 0  # key already spooled/published (replays)
    late_records: int = 0  # records for a minute already published → numbered file
    deadletter: int = 0  # records that could not be keyed/timed/encoded, corrupt recovered lines
    files_published: int = 0
    late_files_published: int = 0  # numbered (.<n>) files among files_published
    bytes_written: int = 0
    fsyncs: int = 0
    recovered_files: int = 0  # orphaned .part files finalised by recover()
    recovered_lines: int = 0  # lines published from orphaned parts
    torn_lines_truncated: int = 0  # incomplete last lines cut off by recover()
    index_keys: int = 0  # keys in the idempotence index
    io_errors: int = 0  # failed writes/flushes/publishes (disk full, EIO): SpoolError raised
    rejected_on_error: int = 0  # unflushed records cut back after an I/O error (caller must replay)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class RecoveryReport:
    files: list[str] = field(default_factory=list)  # ready files written from orphaned parts
    lines: int = 0
    torn_lines: int = 0
    corrupt_lines: int = 0
    duplicates: int = 0
    empty_parts_removed: int = 0


@dataclass
class OpenPart:
    minute: int
    seq: int
    path: Path
    fh: IO[bytes]
    lines: int = 0
    dirty: bool = False  # written since the last fsync
    flushed_size: int = 0  # bytes known to have reached the OS
    unflushed: list[Key] = field(default_factory=list)  # keys written after flushed_size
    unflushed_groups: list[tuple[Key, list[Any]]] = field(default_factory=list)  # bulk writes: (prefix, lasts)


def minute_label(minute: int) -> str:
    """`YYYYMMDD_HHMM` (UTC) of a minute number (epoch ms // 60000)."""
    return dt.datetime.fromtimestamp(minute * 60, tz=dt.UTC).strftime("%Y%m%d_%H%M")


def label_minute(label: str) -> int:
    t = dt.datetime.strptime(label, "%Y%m%d_%H%M").replace(tzinfo=dt.UTC)
    return int(t.timestamp()) // 60


def fsync_dir(path: Path) -> None:
    """Make a rename durable: fsync the directory entry."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
