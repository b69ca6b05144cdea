"""Idempotence indexes of the minute spool: which keys are already spooled or published.

`KeyIndex` holds keys as {key[:-1]: set(key[-1])}, so a run-wide prefix (run_id, symbol) is stored
once and a whole batch of one prefix is checked and added with C-speed set operations
(`isdisjoint`, `update`) instead of a Python loop per key.

`MinuteKeyIndex` scopes that index by event-time minute, for records whose key fixes their event
time (a signal's (run_id, symbol, seq) is one trade, hence one `ts_ms`): the keys of a minute are
read from that minute's ready files only when a record of that minute arrives, and forgotten again
once the minute is published. Start-up then costs a directory listing instead of reading every
file ever published, and memory holds the open minutes only — which is what lets a backfill of a
year write into one runtime directory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

Key = tuple[Any, ...]
# A prefix value that JSON writes verbatim (no escapes): its absence from a file's bytes proves the
# file holds no key with that prefix, without parsing the file.
_VERBATIM = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")


class KeyIndex:
    """Set of keys, stored per prefix (all fields but the last)."""

    def __init__(self) -> None:
        self._by_prefix: dict[Key, set[Any]] = {}
        self.size = 0

    def bucket(self, prefix: Key) -> set[Any]:
        bucket = self._by_prefix.get(prefix)
        if bucket is None:
            bucket = self._by_prefix[prefix] = set()
        return bucket

    def add_if_new(self, key: Key) -> bool:
        bucket = self.bucket(key[:-1])
        if key[-1] in bucket:
            return False
        bucket.add(key[-1])
        self.size += 1
        return True

    def add_all_new(self, prefix: Key, lasts: list[Any]) -> bool:
        """Add `lasts` under `prefix` if none is known yet (the caller made them distinct); else add nothing."""
        bucket = self.bucket(prefix)
        if not bucket.isdisjoint(lasts):
            return False
        bucket.update(lasts)
        self.size += len(lasts)
        return True

    def __contains__(self, key: Key) -> bool:
        bucket = self._by_prefix.get(key[:-1])
        return bucket is not None and key[-1] in bucket

    def discard(self, key: Key) -> None:
        bucket = self._by_prefix.get(key[:-1])
        if bucket is not None and key[-1] in bucket:
            bucket.discard(key[-1])
            self.size -= 1

    def discard_many(self, prefix: Key, lasts: Iterable[Any]) -> None:
        bucket = self._by_prefix.get(prefix)
        if bucket is None:
            return
        before = len(bucket)
        bucket.difference_update(lasts)
        self.size -= before - len(bucket)


class _Minute:
    __slots__ = ("absent", "ix", "parsed")

    def __init__(self, parsed: bool) -> None:
        self.ix = KeyIndex()  # keys of this minute known here: written by us, or parsed from its files
        self.parsed = parsed  # the minute's ready files (if any) are in `ix`
        self.absent: set[Key] = set()  # prefixes proven absent from its ready files (files not parsed)


class MinuteKeyIndex:
    """Keys per event-time minute, loaded lazily from that minute's ready files (see the module docstring).

    `files_of(minute)` lists the minute's ready files; `key_of(line)` extracts a key from a JSON line
    (raising on a corrupt line, which is then skipped: published files are immutable and were
    counted as corrupt when published or recovered).
    """

    def __init__(self, files_of: Callable[[int], list[Path]], key_of: Callable[[bytes], Key]) -> None:
        self._files_of = files_of
        self._key_of = key_of
        self._minutes: dict[int, _Minute] = {}
        self.on_disk: set[int] = set()  # minutes with ready files

    @property
    def size(self) -> int:
        return sum(m.ix.size for m in self._minutes.values())

    def for_minute(self, minute: int, prefixes: Iterable[Key] | None = None) -> KeyIndex:
        """The index of `minute`, holding every published key of `prefixes` (None: of every prefix)."""
        entry = self._minutes.get(minute)
        if entry is None:
            entry = self._minutes[minute] = _Minute(parsed=minute not in self.on_disk)
        if entry.parsed:
            return entry.ix
        need = None if prefixes is None else set(prefixes) - entry.absent
        if need is not None and not need:
            return entry.ix
        data = b"".join(p.read_bytes() for p in self._files_of(minute))
        if need and all(_absent_from(data, prefix) for prefix in need):
            entry.absent |= need
            return entry.ix
        for line in data.splitlines():
            try:
                entry.ix.add_if_new(self._key_of(line))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        entry.parsed = True
        return entry.ix

    def forget(self, minute: int) -> None:
        """The minute was published: its keys are on disk now and read again only if needed."""
        self._minutes.pop(minute, None)
        self.on_disk.add(minute)

    def minutes(self) -> set[int]:
        return set(self._minutes) | self.on_disk


def _absent_from(data: bytes, prefix: Key) -> bool:
    """True only when some field of `prefix` is a verbatim JSON string that does not occur in `data`."""
    for value in prefix:
        if isinstance(value, str) and _VERBATIM.match(value) and orjson.dumps(value) not in data:
            return True
    return False
