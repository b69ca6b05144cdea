"""Minute-rotating spool → ready publisher for JSON-line records (generic over dicts).

Layout (one writer per spool directory, enforced by an advisory lock)::

    <spool_dir>/<prefix>_<YYYYMMDD_HHMM>[.<n>].part     being written
    <ready_dir>/<prefix>_<YYYYMMDD_HHMM>[.<n>].jsonl    published, immutable

The minute is that of the record's *event time* (``time_field``, epoch ms, UTC), never the
wall clock. A minute is published (flush, fsync per policy, atomic rename) once a record of a
later minute has been appended (plus ``lateness_minutes`` of grace), when ``advance_to`` moves
the event-time watermark past it, and on ``close``. A record arriving for a minute that was
already published goes to the next numbered file of that minute (``_HHMM.1.jsonl``, ``.2`` ...),
so it is neither lost nor rewritten into an immutable file.

Idempotence: every record has a key (``key_fields``); keys already spooled or published are
skipped and counted. The key index is rebuilt from the ready files (and recovered parts) on
start, so replaying a batch after a crash doubles nothing.

Crash recovery (``recover``, run by the constructor): every orphaned ``.part`` is finalised:
a torn last line (no trailing newline) is cut off and counted, undecodable lines go to the
dead-letter file, keys already published are dropped, and the rest is published atomically.

I/O errors (disk full, file-size quota, EIO) raise ``SpoolError``: every open part is cut back
(through its own descriptor) to the bytes that had reached the OS, the keys of the cut lines are
forgotten (so the caller's replay spools them again, exactly once) and the cut part is published by
the next ``flush()`` that works (the disk has room again), else by ``close()`` / the next ``recover()``.

fsync policy: ``always`` (fsync the part after every ``append`` call, i.e. per batch, and the
directory after every rename), ``rotate`` (fsync the file before publishing and the directory
after), ``never`` (leave it to the OS: fastest, survives a process crash, not a power cut).

Executor outbox usage (explicit dirs, no ``kind`` level)::

    MinuteSpool(rt / "exec_events" / sym / "spool", rt / "exec_events" / sym,
                prefix="exec", time_field="ts_ms", key_fields=("client_order_id",))

or the DESIGN.md layout ``root/{spool,ready}/<kind>/<SYM>/`` via ``MinuteSpool.for_layout``.
"""

from __future__ import annotations

import fcntl
import numbers
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from alpha_assets.sinks.keyindex import KeyIndex, MinuteKeyIndex
from alpha_assets.sinks.spool_disk import SpoolDisk
from alpha_assets.sinks.spool_files import (  # noqa: F401 - re-exported: the spool's public vocabulary
    FSYNC_POLICIES,
    FSYNC_THREADS,
    MINUTE_MS,
    FsyncPolicy,
    IndexScope,
    Key,
    OpenPart,
    RecoveryReport,
    SpoolBusyError,
    SpoolCounters,
    SpoolError,
    fsync_dir,
    label_minute,
    minute_label,
)


class MinuteSpool(SpoolDisk):
    """Append JSON lines per event-time minute; publish each minute atomically; idempotent on a key."""

    def __init__(self, spool_dir: Path, ready_dir: Path, prefix: str, time_field: str,
                 key_fields: tuple[str, ...], fsync: str = "rotate", *, lateness_minutes: int = 0,
                 auto_recover: bool = True, index_scope: IndexScope = "all") -> None:
        if fsync not in FSYNC_POLICIES:
            raise SpoolError(f"fsync: {fsync!r} is not one of {'|'.join(FSYNC_POLICIES)}")
        if not prefix or not re.fullmatch(r"[A-Za-z0-9_\-]+", prefix):
            raise SpoolError(f"prefix: {prefix!r} must be non-empty letters/digits/_/-")
        if not key_fields:
            raise SpoolError("key_fields: at least one field is needed for idempotence")
        if not 0 <= lateness_minutes <= 60:
            raise SpoolError(f"lateness_minutes: {lateness_minutes} must be in [0, 60]")
        if index_scope not in ("all", "minute"):
            raise SpoolError(f"index_scope: {index_scope!r} is not one of all|minute")
        self.spool_dir = Path(spool_dir)
        self.ready_dir = Path(ready_dir)
        self.prefix = prefix
        self.time_field = time_field
        self.key_fields = tuple(key_fields)
        self.fsync = fsync
        self.lateness_minutes = lateness_minutes
        self.counters = SpoolCounters()
        self.last_recovery = RecoveryReport()
        self._name_re = re.compile(rf"^{re.escape(prefix)}_(\d{{8}}_\d{{4}})(?:\.(\d+))?\.(part|jsonl)$")
        self._index = KeyIndex()
        # "minute": keys are looked up among the records of their own event-time minute only (for
        # records whose key fixes their time); see alpha_assets.sinks.keyindex
        self._mindex = MinuteKeyIndex(self._minute_files, self._key_of_line) if index_scope == "minute" else None
        self._open: dict[int, OpenPart] = {}
        self._next_seq: dict[int, int] = {}  # minute -> next free file number
        self._published: set[int] = set()  # minutes with at least one ready file
        self._watermark: int | None = None  # newest minute seen (event time)
        self._closed = False
        self._orphans: list[Path] = []  # parts cut back after an I/O error, published by the next flush() that works
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.ready_dir.mkdir(parents=True, exist_ok=True)
        self._deadletter_path = self.spool_dir / f"{prefix}_deadletter.jsonl"
        self._lock_fh = open(self.spool_dir / f".{prefix}.lock", "a+b")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise SpoolBusyError(f"spool {self.spool_dir} ({prefix}) is already held by another writer") from None
        self._recovered = False
        if auto_recover:
            self.recover()

    @classmethod
    def for_layout(cls, root: Path, kind: str, symbol: str, prefix: str, time_field: str,
                   key_fields: tuple[str, ...], fsync: str = "rotate", **kw: Any) -> MinuteSpool:
        """`root/spool/<kind>/<SYM>` → `root/ready/<kind>/<SYM>` (kind "" drops that level)."""
        parts = [p for p in (kind, symbol.upper()) if p]
        return cls(Path(root, "spool", *parts), Path(root, "ready", *parts), prefix, time_field,
                   key_fields, fsync, **kw)

    def _index_for(self, minute: int, prefixes: Any = None) -> KeyIndex:
        return self._index if self._mindex is None else self._mindex.for_minute(minute, prefixes)

    def _index_size(self) -> int:
        return self._index.size if self._mindex is None else self._mindex.size

    def _minute_files(self, minute: int) -> list[Path]:
        names = (self._name(minute, seq, "jsonl") for seq in range(self._next_seq.get(minute, 1)))
        return [p for p in (self.ready_dir / n for n in names) if p.exists()]

    def _key_of_line(self, line: bytes) -> Key:
        return self._key(orjson.loads(line))

    # ------------------------------------------------------------------ writing
    def _key(self, rec: Mapping[str, Any]) -> Key:
        return tuple(rec[f] for f in self.key_fields)

    def _deadletter(self, entry: dict[str, Any]) -> None:
        self.counters.deadletter += 1
        with open(self._deadletter_path, "ab") as fh:
            fh.write(orjson.dumps(entry, default=repr) + b"\n")

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Spool records; returns how many were new. Skips known keys; bad records → dead letter."""
        items: list[tuple[Key, int, bytes]] = []
        for rec in records:
            self.counters.records_in += 1
            try:
                ts = rec[self.time_field]
                if isinstance(ts, bool) or not isinstance(ts, numbers.Integral):  # numpy ints are fine
                    raise TypeError(f"{self.time_field} must be integer epoch ms, got {type(ts).__name__}")
                ts = int(ts)
                key = self._key(rec)
                hash(key)
                line = orjson.dumps(rec, option=orjson.OPT_SERIALIZE_NUMPY)
            except (KeyError, TypeError, orjson.JSONEncodeError) as exc:
                self._deadletter({"reason": f"{type(exc).__name__}: {exc}", "record": dict(rec)})
                continue
            items.append((key, ts // MINUTE_MS, line))
        self.counters.records_in -= len(items)  # append_encoded counts them
        return self.append_encoded(items)

    def append_encoded(self, items: Iterable[tuple[Key, int, bytes]]) -> int:
        """Fast path for callers that encode in bulk: (key, minute number, JSON line without newline)."""
        if self._closed:
            raise SpoolError("append after close()")
        if not self._recovered:
            raise SpoolError("call recover() before append() (auto_recover=False was given)")
        new = 0
        index_for = self._index_for
        try:
            for key, minute, line in items:
                self.counters.records_in += 1
                index = self._index if self._mindex is None else index_for(minute, (key[:-1],))
                if key in index:
                    self.counters.duplicates_skipped += 1
                    continue
                part = self._open.get(minute)
                if part is None:
                    part = self._open_part(minute)
                # the key is indexed only together with its line: an I/O error forgets both
                index.add_if_new(key)
                part.unflushed.append(key)
                part.fh.write(line + b"\n")
                if minute in self._published:
                    self.counters.late_records += 1
                part.lines += 1
                part.dirty = True
                self.counters.bytes_written += len(line) + 1
                self.counters.records_written += 1
                new += 1
                if self._watermark is None or minute > self._watermark:
                    self._watermark = minute
            if self.fsync == "always":
                self._sync_open()
            self._rotate()
        except OSError as exc:
            self._io_failed(exc)
        finally:
            self.counters.index_keys = self._index_size()
        return new

    def append_blocks(self, prefix: Key, blocks: list[tuple[int, list[Any], bytes | memoryview]]) -> int | None:
        """Bulk fast path: each block is (minute, last key fields, the block's JSON lines), one
        newline-terminated line per key, all keys under `prefix` (the other key fields) and the last
        fields distinct across all blocks (the caller checks). Writes every
        block and returns the row count when none of the keys is known yet; otherwise writes nothing
        and returns None, and the caller takes `append_encoded`, which skips exactly the known keys.
        Files, bytes and counters are those `append_encoded` produces for the same lines in order."""
        if self._closed:
            raise SpoolError("append after close()")
        if not self._recovered:
            raise SpoolError("call recover() before append() (auto_recover=False was given)")
        for minute, lasts, _ in blocks:
            if not self._index_for(minute, (prefix,)).bucket(prefix).isdisjoint(lasts):
                return None
        new = 0
        try:
            for minute, lasts, data in blocks:
                part = self._open.get(minute)
                if part is None:
                    part = self._open_part(minute)
                self._index_for(minute, (prefix,)).add_all_new(prefix, lasts)
                part.unflushed_groups.append((prefix, lasts))
                part.fh.write(data)
                n = len(lasts)
                if minute in self._published:
                    self.counters.late_records += n
                part.lines += n
                part.dirty = True
                self.counters.records_in += n
                self.counters.bytes_written += len(data)
                self.counters.records_written += n
                new += n
                if self._watermark is None or minute > self._watermark:
                    self._watermark = minute
            if self.fsync == "always":
                self._sync_open()
            self._rotate()
        except OSError as exc:
            self._io_failed(exc)
        finally:
            self.counters.index_keys = self._index_size()
        return new

    def _io_failed(self, exc: OSError) -> None:
        """A write/flush failed (disk full, quota, EIO): cut every open part back to what reached the
        OS, forget the keys of the cut lines (a replay re-spools them) and raise SpoolError."""
        dropped = 0
        for minute, part in list(self._open.items()):
            # Cut back through the file descriptor that wrote, never by path: the path may name another
            # file by now. A part closed already (a failed rename) was flushed in full before its close.
            fd = None if part.fh.closed else os.dup(part.fh.fileno())
            try:
                part.fh.close()  # its flush may put part of the buffered tail on disk: cut below
            except OSError:
                pass  # the buffered tail is what we are discarding anyway
            if fd is not None:
                try:
                    os.ftruncate(fd, part.flushed_size)
                except OSError:
                    pass  # left for recover(): a torn tail is cut there
                finally:
                    os.close(fd)
            index = self._index_for(minute)
            for key in part.unflushed:
                index.discard(key)
            for prefix, lasts in part.unflushed_groups:
                index.discard_many(prefix, lasts)
                dropped += len(lasts)
            dropped += len(part.unflushed)
            part.unflushed = []
            part.unflushed_groups = []
            del self._open[minute]  # the cut part is an orphan now; a new part takes the next number
            self._orphans.append(part.path)
        self.counters.io_errors += 1
        self.counters.records_written -= dropped
        self.counters.rejected_on_error += dropped
        raise SpoolError(f"spool {self.spool_dir}: {exc}; {dropped} unflushed records were not spooled "
                         "(their keys are forgotten: replay them)") from exc

    def _open_part(self, minute: int) -> OpenPart:
        seq = self._take_seq(minute)
        path = self.spool_dir / self._name(minute, seq, "part")
        part = OpenPart(minute, seq, path, open(path, "ab"))  # noqa: SIM115 - closed on publish
        self._open[minute] = part
        return part

    def advance_to(self, event_time_ms: int) -> None:
        """Move the event-time watermark (e.g. from a heartbeat) so idle minutes get published."""
        minute = event_time_ms // MINUTE_MS
        if self._watermark is None or minute > self._watermark:
            self._watermark = minute
        try:
            self._rotate()
        except OSError as exc:
            self._io_failed(exc)

    def flush(self) -> None:
        """Push buffered lines to the OS (and fsync under 'always'); does not publish. Once that
        works again after an I/O error, the parts cut back then are published."""
        try:
            for part in self._open.values():
                part.fh.flush()
                self._mark_flushed(part)
            if self.fsync == "always":
                self._sync_open()
        except OSError as exc:
            self._io_failed(exc)
        if self._orphans:
            self._publish_orphans()

    def publish_all(self) -> None:
        """Publish every open minute now (end of a batch run)."""
        try:
            self._publish_minutes(sorted(self._open))
        except OSError as exc:
            self._io_failed(exc)

    def close(self) -> None:
        if self._closed:
            return
        self.publish_all()
        if self._orphans:  # parts cut back after an I/O error: publish them now rather than on restart
            self.recover()
            self._orphans.clear()
        self._closed = True
        self._lock_fh.close()

    def __enter__(self) -> MinuteSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __contains__(self, key: Key) -> bool:
        key = tuple(key)
        if self._mindex is None:
            return key in self._index
        return any(key in self._mindex.for_minute(m, (key[:-1],)) for m in sorted(self._mindex.minutes()))

    @property
    def open_minutes(self) -> list[int]:
        return sorted(self._open)
