"""Bus housekeeping: checkpoint holds, trimming below what every group acknowledged, consumer lag,
and the end marks of a drained run (see ``alpha_assets.live.bus`` for the keys)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import redis

from alpha_assets.live.bus import HOLDERS, READERS, Keys, id_ms, id_parts


def _id_key(entry_id: bytes | str) -> tuple[int, int]:
    return id_parts(entry_id)


def hold(r: redis.Redis, keys: Keys, group: str, stream: str, entry_id: bytes | str) -> None:
    """Keep `stream` from being trimmed above `entry_id` for `group` (its checkpoint's position)."""
    r.hset(keys.holds, f"{group}|{keys.short(stream)}", entry_id)


def holds_of(r: redis.Redis, keys: Keys, stream: str) -> dict[str, bytes]:
    short = keys.short(stream)
    out = {}
    for k, v in r.hgetall(keys.holds).items():
        group, _, name = k.decode().partition("|")
        if name == short:
            out[group] = v
    return out


def group_floor(r: redis.Redis, stream: str, required: Iterable[str]) -> bytes | None:
    """The oldest entry id some required group has not acknowledged (None: a group is missing)."""
    try:
        groups = {g[b"name"].decode() if isinstance(g[b"name"], bytes) else g[b"name"]: g
                  for g in (_as_bytes_keys(x) for x in r.xinfo_groups(stream))}
    except redis.ResponseError:
        return None
    floor: bytes | None = None
    for name in required:
        g = groups.get(name)
        if g is None:
            return None
        low = r.xpending(stream, name)["min"] if int(g[b"pending"]) else None
        if low is None:  # nothing pending (acknowledged since XINFO, perhaps): all it was given is done
            low = g[b"last-delivered-id"]
        low = low if isinstance(low, bytes) else str(low).encode()
        if floor is None or _id_key(low) < _id_key(floor):
            floor = low
    return floor


def trim_acknowledged(r: redis.Redis, keys: Keys, stream: str) -> int:
    """XTRIM MINID below what every reading group acknowledged; returns entries removed."""
    kind = keys.kind(stream)
    floor = group_floor(r, stream, READERS[kind])
    if floor is None:
        return 0
    holds = holds_of(r, keys, stream)
    for group in HOLDERS.get(kind, ()):
        held = holds.get(group)
        if held is None:
            return 0  # the holder has not said where its checkpoint is yet
        # entries after the checkpoint are replayed on restart: keep them (minid keeps >= floor)
        after = (id_parts(held)[0], id_parts(held)[1] + 1)
        if after < _id_key(floor):
            floor = f"{after[0]}-{after[1]}".encode()
    if floor in (b"0-0", b"0", b"0-1"):
        return 0
    return int(r.xtrim(stream, minid=floor.decode(), approximate=True))


def _as_bytes_keys(d: dict[Any, Any]) -> dict[bytes, Any]:
    return {k if isinstance(k, bytes) else str(k).encode(): v for k, v in d.items()}


def consumer_lag(r: redis.Redis, stream: str, now_ms: int | None = None) -> dict[str, tuple[float, int]]:
    """{group: (age in s of the oldest entry not yet given to the group, entries not acknowledged)}.

    Lag is how far behind a consumer is: the age of the first entry it has not taken in, from the
    entry id's milliseconds (the harvester's receive time for market events, the trade's for signal
    rows); 0 when it has everything. Acknowledgement follows durability and may wait by design (the
    lander acknowledges a minute once its file is written), so unacknowledged entries are counted,
    not aged: pending = taken in and not yet acknowledged + not yet taken in."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    out: dict[str, tuple[float, int]] = {}
    try:
        groups = [_as_bytes_keys(g) for g in r.xinfo_groups(stream)]
    except redis.ResponseError:
        return out
    for g in groups:
        name = g[b"name"].decode() if isinstance(g[b"name"], bytes) else str(g[b"name"])
        nxt = r.xrange(stream, min=b"(" + _b(g[b"last-delivered-id"]), count=1)
        age = max(0.0, (now_ms - id_ms(nxt[0][0])) / 1000) if nxt else 0.0
        undelivered = int(g.get(b"lag") or 0) if nxt else 0
        out[name] = (age, int(g[b"pending"]) + undelivered)
    return out


def _b(x: Any) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


def stream_top(r: redis.Redis, stream: str) -> bytes | None:
    got = r.xrevrange(stream, count=1)
    return got[0][0] if got else None


def newest_trade_id(r: redis.Redis, stream: str, scan: int = 200) -> int | None:
    """The highest trade id among the newest ``scan`` entries of a market stream (None: no trade there)."""
    from alpha_assets.live.bus import KIND_TRADE, decode

    ids = [int(body["agg_trade_id"]) for _, fields in r.xrevrange(stream, count=scan)
           for kind, body in [decode(fields)] if kind == KIND_TRADE and body.get("agg_trade_id") is not None]
    return max(ids) if ids else None


def mark_end(r: redis.Redis, keys: Keys, streams: Iterable[str]) -> dict[str, str]:
    """Record where each stream ends now (the producers have stopped): consumers drain to here."""
    ends = {}
    for s in streams:
        top = stream_top(r, s)
        ends[keys.short(s)] = top.decode() if top else "0-0"
    r.hset(keys.end, mapping={k: v for k, v in ends.items()})
    return ends


def read_end(r: redis.Redis, keys: Keys) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(keys.end).items()}


class EndWatch:
    """A consumer's view of the end marks: read at most every `every_s` until each of its streams
    has one (the soak marks the market streams first, the signal streams once those are drained)."""

    def __init__(self, keys: Keys, streams: Iterable[str], every_s: float = 0.5) -> None:
        self.keys, self.every_s = keys, every_s
        self.shorts = [keys.short(s) for s in streams]
        self.ends: dict[str, str] = {}
        self._next = 0.0

    def poll(self, r: redis.Redis) -> dict[str, str]:
        """The ends marked so far (empty until the run ends)."""
        if time.monotonic() >= self._next and not all(s in self.ends for s in self.shorts):
            self._next = time.monotonic() + self.every_s
            self.ends = read_end(r, self.keys)
        return self.ends


def covered(position: str | bytes | None, end: str | None) -> bool:
    """Whether a consumer at ``position`` has consumed everything up to ``end``."""
    if end is None:
        return False
    if end in ("0-0", "0"):
        return True
    return position is not None and _id_key(position) >= _id_key(end)
