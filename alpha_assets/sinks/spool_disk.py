"""What the minute spool does on disk, as a mixin of MinuteSpool: file naming, publishing (fsync,
atomic rename) and `recover()` (key index rebuilt from ready files, orphaned parts finalised)."""

from __future__ import annotations

import errno
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from alpha_assets.sinks.keyindex import KeyIndex, MinuteKeyIndex
from alpha_assets.sinks.spool_files import (
    FSYNC_THREADS,
    OpenPart,
    RecoveryReport,
    SpoolCounters,
    SpoolError,
    fsync_dir,
    label_minute,
    minute_label,
)


class SpoolDisk:
    """Naming, publishing and recovery; the attributes are MinuteSpool's."""

    prefix: str
    ready_dir: Path
    spool_dir: Path
    fsync: str
    counters: SpoolCounters
    last_recovery: RecoveryReport
    _name_re: re.Pattern[str]
    _index: KeyIndex
    _mindex: MinuteKeyIndex | None
    _open: dict[int, Any]
    _next_seq: dict[int, int]
    _published: set[int]
    _recovered: bool
    _watermark: int | None
    _orphans: list[Path]
    lateness_minutes: int

    # ------------------------------------------------------------------ naming
    def _name(self, minute: int, seq: int, ext: str) -> str:
        suffix = f".{seq}" if seq else ""
        return f"{self.prefix}_{minute_label(minute)}{suffix}.{ext}"

    def _parse(self, name: str) -> tuple[int, int, str] | None:
        m = self._name_re.match(name)
        if not m:
            return None
        return label_minute(m.group(1)), int(m.group(2) or 0), m.group(3)

    def ready_files(self) -> list[Path]:
        """Published files of this prefix, ordered by (minute, number)."""
        items = []
        for p in self.ready_dir.iterdir():
            parsed = self._parse(p.name)
            if parsed and parsed[2] == "jsonl":
                items.append((parsed[0], parsed[1], p))
        return [p for _, _, p in sorted(items)]

    # ------------------------------------------------------------------ recovery
    def recover(self) -> RecoveryReport:
        """Rebuild the key index from ready files and finalise orphaned `.part` files."""
        if self._open:
            raise SpoolError("recover() while parts are open: call it on start, before append()")
        report = RecoveryReport()
        self._index = KeyIndex()
        if self._mindex is not None:
            self._mindex = MinuteKeyIndex(self._minute_files, self._key_of_line)
        self._next_seq.clear()
        self._published.clear()
        for path in self.ready_files():
            minute, seq, _ = self._parse(path.name)  # type: ignore[misc]
            self._note_file(minute, seq)
            self._published.add(minute)
            if self._mindex is not None:
                self._mindex.on_disk.add(minute)  # keys read when the minute is next written
                continue
            with open(path, "rb") as fh:
                for line in fh:
                    try:
                        self._index.add_if_new(self._key(orjson.loads(line)))
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        report.corrupt_lines += 1  # published files are immutable: count, never rewrite
        parts = []
        for p in self.spool_dir.iterdir():
            parsed = self._parse(p.name)
            if parsed and parsed[2] == "part":
                parts.append((parsed[0], parsed[1], p))
        for minute, seq, _ in parts:
            self._note_file(minute, seq)
        for minute, seq, path in sorted(parts):
            self._recover_part(minute, seq, path, report)
        self.counters.recovered_files += len(report.files)
        self.counters.recovered_lines += report.lines
        self.counters.torn_lines_truncated += report.torn_lines
        self.counters.duplicates_skipped += report.duplicates
        self.counters.index_keys = self._index_size()
        self.last_recovery = report
        self._recovered = True
        return report

    def _recover_part(self, minute: int, seq: int, path: Path, report: RecoveryReport) -> None:
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a crash mid-write leaves a line without its newline
            report.torn_lines += 1
            self._deadletter({"reason": "torn_line", "file": path.name, "raw": data[end:].decode("utf-8", "replace")})
        keep: list[bytes] = []
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                key = self._key(orjson.loads(line))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                report.corrupt_lines += 1
                self._deadletter({"reason": "corrupt_line", "file": path.name, "raw": line.decode("utf-8", "replace")})
                continue
            if not self._index_for(minute).add_if_new(key):
                report.duplicates += 1  # e.g. a crash between publishing and removing the part
                continue
            keep.append(line)
        if keep:
            # the part may be published under its own number unless that ready name exists
            target_seq = seq if not (self.ready_dir / self._name(minute, seq, "jsonl")).exists() else self._take_seq(minute)
            target = self.ready_dir / self._name(minute, target_seq, "jsonl")
            tmp = self.ready_dir / (target.name + ".tmp")
            with open(tmp, "wb") as fh:
                fh.write(b"\n".join(keep) + b"\n")
                fh.flush()
                if self.fsync != "never":
                    os.fsync(fh.fileno())
                    self.counters.fsyncs += 1
            os.replace(tmp, target)
            if self.fsync != "never":
                fsync_dir(self.ready_dir)
            self._published.add(minute)
            report.files.append(target.name)
            report.lines += len(keep)
        else:
            report.empty_parts_removed += 1
        path.unlink()

    def _note_file(self, minute: int, seq: int) -> None:
        self._next_seq[minute] = max(self._next_seq.get(minute, 0), seq + 1)

    def _take_seq(self, minute: int) -> int:
        seq = self._next_seq.get(minute, 0)
        self._next_seq[minute] = seq + 1
        return seq

    # ------------------------------------------------------------------ publishing
    def _sync_open(self) -> None:
        for part in self._open.values():
            if part.dirty:
                part.fh.flush()
                self._mark_flushed(part)
                os.fsync(part.fh.fileno())
                part.dirty = False
                self.counters.fsyncs += 1

    def _rotate(self) -> None:
        if self._watermark is None:
            return
        limit = self._watermark - self.lateness_minutes
        self._publish_minutes(sorted(m for m in self._open if m < limit))

    def _publish_minutes(self, minutes: list[int]) -> None:
        """Publish these open minutes. Several at once (a batch write's day): every part is fsynced
        before its rename as always, but the fsyncs run side by side (the filesystem commits them
        together) and the directory is fsynced once after the renames instead of once per file."""
        if len(minutes) <= 1 or self.fsync == "never":
            for minute in minutes:
                self._publish(self._open[minute])
                del self._open[minute]  # only once published: a failed publish is cut back by _io_failed
            return
        parts = [self._open[m] for m in minutes]
        for part in parts:
            part.fh.flush()
            self._mark_flushed(part)
        due = [p for p in parts if p.dirty or self.fsync == "rotate"]
        with ThreadPoolExecutor(max_workers=min(FSYNC_THREADS, len(due) or 1)) as pool:
            list(pool.map(lambda p: os.fsync(p.fh.fileno()), due))
        self.counters.fsyncs += len(due)
        for part in parts:
            part.dirty = False
            self._publish(part, sync_dir=False)
            del self._open[part.minute]
        fsync_dir(self.ready_dir)

    def _publish(self, part: OpenPart, *, sync_dir: bool = True) -> None:
        part.fh.flush()
        self._mark_flushed(part)
        if self.fsync != "never" and (part.dirty or (self.fsync == "rotate" and sync_dir)):
            os.fsync(part.fh.fileno())
            self.counters.fsyncs += 1
        part.fh.close()
        self._move_to_ready(part.path, self.ready_dir / self._name(part.minute, part.seq, "jsonl"))
        if self.fsync != "never" and sync_dir:
            fsync_dir(self.ready_dir)
        self.counters.files_published += 1
        if part.seq and part.minute in self._published:
            self.counters.late_files_published += 1
        self._published.add(part.minute)
        if self._mindex is not None:
            self._mindex.forget(part.minute)

    def _move_to_ready(self, path: Path, target: Path) -> None:
        try:
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            tmp = self.ready_dir / (target.name + ".tmp")  # different filesystem: copy, then rename
            shutil.copyfile(path, tmp)
            if self.fsync != "never":
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
            path.unlink()

    def _publish_orphans(self) -> None:
        """Publish the parts cut back after an I/O error, once the disk takes writes again (their
        lines are whole and their keys still indexed); one that still fails waits for the next call."""
        while self._orphans:
            path = self._orphans[0]
            parsed = self._parse(path.name)
            try:
                if parsed is not None and path.exists():
                    self._publish_orphan(parsed[0], parsed[1], path)
            except OSError as exc:
                self.counters.io_errors += 1
                raise SpoolError(f"spool {self.spool_dir}: {path.name}, cut back after an I/O error, "
                                 f"cannot be published yet: {exc}") from exc
            self._orphans.pop(0)

    def _publish_orphan(self, minute: int, seq: int, path: Path) -> None:
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # not expected (cut back through its descriptor); cut as recover() would
            self.counters.torn_lines_truncated += 1
            self._deadletter({"reason": "torn_line", "file": path.name, "raw": data[end:].decode("utf-8", "replace")})
            os.truncate(path, end)
        if end == 0:
            path.unlink()
            return
        if (self.ready_dir / self._name(minute, seq, "jsonl")).exists():
            seq = self._take_seq(minute)  # never over a published file
        self._move_to_ready(path, self.ready_dir / self._name(minute, seq, "jsonl"))
        if self.fsync != "never":
            fsync_dir(self.ready_dir)
        self._published.add(minute)
        self.counters.files_published += 1
        self.counters.recovered_files += 1
        self.counters.recovered_lines += data.count(b"\n", 0, end)

    def _mark_flushed(self, part: OpenPart) -> None:
        part.flushed_size = part.fh.tell()
        part.unflushed.clear()
        part.unflushed_groups.clear()
