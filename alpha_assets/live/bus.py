"""The live path's event bus: Redis Streams through redis-py (no protocol code of ours).

Keys, one namespace per run so several runs can share one Redis (``bus.url``)::

    alpha:<run>:md:<SYM>    market events in arrival order; id "<recv ms>-<ingest_seq>"
    alpha:<run>:dlq:<SYM>   dead letters;                   id "<recv ms>-<dead-letter seq>"
                            (<SYM> is ``_UNROUTED`` for those of no configured symbol)
    alpha:<run>:sig:<SYM>   signal rows;                    id "<trade's md ms>-<row ordinal>"
    alpha:<run>:lat         latency side records (durable commits, order acks)
    alpha:<run>:hv:<SYM>    hash: the harvester's resume state
    alpha:<run>:end         hash: where each stream ends once the run drains
    alpha:<run>:holds       hash: checkpoint positions that trimming must keep (``bus_admin``)

Every id a producer writes is explicit and derived from its own sequence, so re-adding an entry
(after Redis lost the tail of its AOF, or after a producer replayed from its checkpoint) is
refused by Redis as "equal or smaller than the top item" instead of doubling it.

An entry has one field: its kind (``t`` trade, ``b`` book, ``d`` dead letter, ``s`` signal row,
``l`` latency record) mapped to the orjson encoding of its body, so a consumer can skip kinds
it does not need without decoding them.

Groups (XREADGROUP/XACK; a restarted consumer first takes back its own pending entries):
``lander`` (md, dlq), ``signal`` (md), ``broker`` (sig), ``latency`` (sig, lat). A stream is
trimmed only below the oldest entry some group has not acknowledged, and only once every group
that reads it exists.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from alpha_assets.market.schema import UNROUTED

KIND_TRADE, KIND_BOOK, KIND_DEAD, KIND_SIGNAL, KIND_LATENCY = b"t", b"b", b"d", b"s", b"l"
GROUP_LANDER, GROUP_SIGNAL, GROUP_BROKER, GROUP_LATENCY = "lander", "signal", "broker", "latency"
# which groups read each kind of stream: trimming waits for all of them
READERS: dict[str, tuple[str, ...]] = {
    "md": (GROUP_LANDER, GROUP_SIGNAL), "dlq": (GROUP_LANDER,), "sig": (GROUP_BROKER, GROUP_LATENCY),
    "lat": (GROUP_LATENCY,),
}
# groups that resume from a checkpoint older than their acks: they hold the stream (see `hold`)
HOLDERS: dict[str, tuple[str, ...]] = {"md": (GROUP_SIGNAL,)}
# Redis away (down, restarting, loading its AOF): retried. Nothing else is: a disk error of a
# worker's own files must crash it (and its restart replays from its checkpoint).
BUS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
DUPLICATE_ID = "equal or smaller than the target stream top item"


class Keys:
    """Key names of one run."""

    def __init__(self, run_id: str) -> None:
        self.prefix = f"alpha:{run_id}:"

    def md(self, symbol: str) -> str:
        return f"{self.prefix}md:{symbol}"

    def dlq(self, symbol: str) -> str:
        return f"{self.prefix}dlq:{symbol}"

    def sig(self, symbol: str) -> str:
        return f"{self.prefix}sig:{symbol}"

    @property
    def lat(self) -> str:
        return f"{self.prefix}lat"

    def harvest_state(self, symbol: str) -> str:
        return f"{self.prefix}hv:{symbol}"

    @property
    def end(self) -> str:
        return f"{self.prefix}end"

    @property
    def holds(self) -> str:
        return f"{self.prefix}holds"

    def short(self, stream: str) -> str:
        """`md:BTCUSDT` for a metric label."""
        return stream.removeprefix(self.prefix)

    def harvested(self, symbols: Iterable[str]) -> list[str]:
        """The streams the harvester writes: market events and dead letters of each symbol, and
        the dead letters that belong to none (unknown symbol, no stream)."""
        return [k for s in symbols for k in (self.md(s), self.dlq(s))] + [self.dlq(UNROUTED)]

    def streams(self, symbols: Iterable[str]) -> list[str]:
        out = [k for s in symbols for k in (self.md(s), self.dlq(s), self.sig(s))]
        return out + [self.dlq(UNROUTED), self.lat]

    def kind(self, stream: str) -> str:
        """`md`, `dlq`, `sig` or `lat`."""
        return self.short(stream).split(":")[0]


# ---------------------------------------------------------------------------------------- ids
def make_id(ms: int, seq: int) -> str:
    return f"{ms}-{seq}"


def id_parts(entry_id: bytes | str) -> tuple[int, int]:
    s = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)


def id_ms(entry_id: bytes | str) -> int:
    return id_parts(entry_id)[0]


# ---------------------------------------------------------------------------------------- codec
def encode(kind: bytes, body: Any) -> dict[bytes, bytes]:
    # orjson returns its whole output buffer (8 KiB for a 500-byte signal row) as the bytes object;
    # an entry is held until Redis has it and then in the re-add ring, so it is copied to its size
    return {kind: bytes(memoryview(orjson.dumps(body)))}


def decode(fields: dict[bytes, bytes]) -> tuple[bytes, Any]:
    """(kind, body) of one entry."""
    (kind, raw), = fields.items()
    return kind, orjson.loads(raw)


# ---------------------------------------------------------------------------------------- connection
def connect(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    """A client (hiredis parser when installed); commands raise BUS_ERRORS while Redis is away."""
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                health_check_interval=0, decode_responses=False)


def wait_ready(url: str, timeout_s: float = 30.0) -> redis.Redis:
    """Connect and PING until Redis answers (it may be starting or restarting)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            r = connect(url)
            r.ping()
            return r
        except (*BUS_ERRORS, redis.BusyLoadingError) as exc:  # loading the AOF after a restart
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"Redis at {url} not reachable in {timeout_s}s: {last}")


def ensure_groups(r: redis.Redis, streams: Iterable[str], group: str) -> None:
    """Create `group` on each stream (and the stream) reading from the start; existing ones stay."""
    for s in streams:
        try:
            r.xgroup_create(s, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def reconnect(url: str, streams: Iterable[str], group: str, timeout_s: float = 5.0) -> redis.Redis | None:
    """After a bus error: a fresh client with `group` on `streams` (Redis may have restarted from its
    AOF without them), or None while Redis is still away (the caller keeps its client and retries)."""
    time.sleep(0.1)
    try:
        r = wait_ready(url, timeout_s=timeout_s)
        ensure_groups(r, streams, group)
        return r
    except TimeoutError:
        return None


Entry = tuple[bytes, dict[bytes, bytes]]


def ack(r: redis.Redis, stream: str, group: str, ids: list[bytes], chunk: int = 10_000) -> None:
    for k in range(0, len(ids), chunk):
        r.xack(stream, group, *ids[k:k + chunk])


class GroupReader:
    """XREADGROUP for one consumer: first its own pending entries (what it was given before a
    restart or a lost connection and has not acknowledged), then new ones. Entries at or below
    ``pos`` (what the consumer has already taken in) come back as ``skipped`` ids only."""

    def __init__(self, group: str, consumer: str, streams: list[str]) -> None:
        self.group, self.consumer, self.streams = group, consumer, list(streams)
        self.pos: dict[str, bytes | None] = dict.fromkeys(self.streams)
        self.reset()

    def reset(self) -> None:
        """After (re)connecting: go through the pending list again."""
        self.pending = True
        self.cursor: dict[str, bytes] = dict.fromkeys(self.streams, b"0")

    def read(self, r: redis.Redis, count: int, block_ms: int | None, producer: Producer | None = None
             ) -> tuple[list[tuple[str, list[Entry]]], list[tuple[str, bytes]]]:
        """``producer``: its queued entries go out in the same round trip, ahead of the read."""
        if self.pending:
            if producer is not None and len(producer):
                producer.flush(r)
            got = r.xreadgroup(self.group, self.consumer, dict(self.cursor), count=count)
            if any(entries for _, entries in got or []):
                return self._split(got, pending=True)
            self.pending = False
        new = dict.fromkeys(self.streams, ">")
        if producer is None or not (len(producer) or producer.resend_ring):
            return self._split(r.xreadgroup(self.group, self.consumer, new, count=count, block=block_ms), False)
        items, n_ring = producer.batch()
        pipe = r.pipeline(transaction=False)
        producer.fill(pipe, items)
        pipe.xreadgroup(self.group, self.consumer, new, count=count, block=block_ms)
        try:
            results = pipe.execute(raise_on_error=False)
        except BUS_ERRORS:
            producer.failed()
            raise
        producer.done(items, n_ring, results[:-1])
        if isinstance(results[-1], Exception):
            raise results[-1]
        return self._split(results[-1], pending=False)

    def taken_through(self, r: redis.Redis, stream: str) -> bytes | None:
        """The newest entry of `stream` this consumer has taken in: past its pending list, that is
        everything the group gave out (a restarted consumer does not see again what it acked)."""
        pos = self.pos.get(stream)
        if self.pending:
            return pos
        groups = {(g["name"].decode() if isinstance(g["name"], bytes) else g["name"]): g
                  for g in r.xinfo_groups(stream)}
        given = groups[self.group]["last-delivered-id"]
        return given if pos is None or id_parts(given) > id_parts(pos) else pos

    def _split(self, got: Any, pending: bool) -> tuple[list[tuple[str, list[Entry]]], list[tuple[str, bytes]]]:
        fresh: list[tuple[str, list[Entry]]] = []
        skipped: list[tuple[str, bytes]] = []
        for name, entries in got or []:
            stream = name.decode() if isinstance(name, bytes) else name
            keep: list[Entry] = []
            pos = self.pos.get(stream)
            for i, f in entries:
                if pending:
                    self.cursor[stream] = i
                # a pending entry deleted by trimming comes as (id, None): nothing left to do with it
                if f is None or (pos is not None and id_parts(i) <= id_parts(pos)):
                    skipped.append((stream, i))
                    continue
                keep.append((i, f))
                pos = i
            self.pos[stream] = pos
            if keep:
                fresh.append((stream, keep))
        return fresh, skipped


# ---------------------------------------------------------------------------------------- producing
@dataclass
class Pending:
    stream: str
    entry_id: str
    fields: dict[bytes, bytes]
    born_ns: int = 0


@dataclass
class Producer:
    """Entries waiting for Redis, and the recently written ones to re-add after a Redis restart.

    ``add`` queues; ``flush`` pipelines the queue (plus, after a connection failure, the ring) in
    one round trip. An entry Redis refuses as a duplicate id is already there; any other refusal
    is counted. The queue is bounded by ``max_pending``: ``add`` says False when it is full so the
    caller can fall back to a replay (a feed backfill) rather than drop silently.
    """

    max_pending: int = 200_000
    ring_s: float = 10.0
    # ... and at most this many: Redis (AOF fsync every second) loses about the last second or two
    # of writes when it dies; at a burst's rate ten seconds of entries would be hundreds of MB
    ring_max: int = 50_000
    queue: deque[Pending] = field(default_factory=deque)
    ring: deque[tuple[float, Pending]] = field(default_factory=deque)
    resend_ring: bool = False
    c: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("written", "duplicates", "refused", "flushes", "bus_errors", "resent"), 0))

    def add(self, stream: str, entry_id: str, fields: dict[bytes, bytes], born_ns: int = 0) -> bool:
        if len(self.queue) >= self.max_pending:
            return False
        self.queue.append(Pending(stream, entry_id, fields, born_ns))
        return True

    def __len__(self) -> int:
        return len(self.queue)

    def batch(self) -> tuple[list[Pending], int]:
        """What the next flush sends: the ring first when it must be re-added, then the queue."""
        ring = [p for _, p in self.ring] if self.resend_ring else []
        return ring + list(self.queue), len(ring)

    def fill(self, pipe: Any, items: list[Pending]) -> None:
        # the command as it is (what ``xadd`` builds from its options, per entry, on the hot path)
        for p in items:
            pipe.execute_command("XADD", p.stream, p.entry_id, *[x for kv in p.fields.items() for x in kv])

    def done(self, items: list[Pending], n_ring: int, results: list[Any]) -> None:
        """Account the pipeline's results; the queue entries sent move to the ring."""
        for res in results[: len(items)]:
            if isinstance(res, Exception):
                if DUPLICATE_ID in str(res):
                    self.c["duplicates"] += 1
                else:
                    self.c["refused"] += 1
            else:
                self.c["written"] += 1
        self.c["resent"] += n_ring
        self.resend_ring = False
        now = time.monotonic()
        for _ in range(len(items) - n_ring):
            self.ring.append((now, self.queue.popleft()))
        while self.ring and (now - self.ring[0][0] > self.ring_s or len(self.ring) > self.ring_max):
            self.ring.popleft()
        self.c["flushes"] += 1

    def failed(self) -> None:
        """The connection broke mid-flush: Redis may have lost its newest entries; re-add the ring."""
        self.c["bus_errors"] += 1
        self.resend_ring = True

    def flush(self, r: redis.Redis, extra: Any = None) -> list[Pending]:
        """Send what is queued (sync client); ``extra(pipe)`` appends commands after the entries.
        Returns the queue entries written. Raises BUS_ERRORS with the queue kept."""
        items, n_ring = self.batch()
        if not items and extra is None:
            return []
        pipe = r.pipeline(transaction=False)
        self.fill(pipe, items)
        if extra is not None:
            extra(pipe)
        try:
            results = pipe.execute(raise_on_error=False)
        except BUS_ERRORS:
            self.failed()
            raise
        sent = items[n_ring:]
        self.done(items, n_ring, results)
        return sent
