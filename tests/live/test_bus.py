"""The event bus against a real redis-server: ids, idempotent re-adds, AOF across SIGKILL, consumer
groups that give back pending entries, trimming only below every group's acks and holds, lag."""

from __future__ import annotations

import time

import redis

from alpha_assets.live import bus, bus_admin
from alpha_assets.live.redis_server import ManagedRedis

RUN = "t1"
KEYS = bus.Keys(RUN)
MD = KEYS.md("BTCUSDT")


def fill(r: redis.Redis, producer: bus.Producer, n: int, start: int = 1, ms: int = 1_000) -> None:
    for seq in range(start, start + n):
        producer.add(MD, bus.make_id(ms, seq), bus.encode(bus.KIND_TRADE, {"agg_trade_id": seq, "ingest_seq": seq}))
    producer.flush(r)


def test_entries_survive_a_sigkilled_redis_and_readding_them_doubles_nothing(redis_server: ManagedRedis) -> None:
    r = bus.wait_ready(redis_server.url)
    p = bus.Producer()
    fill(r, p, 500)
    assert p.c["written"] == 500 and r.xlen(MD) == 500
    redis_server.kill()  # SIGKILL: AOF (appendonly yes) holds what Redis acknowledged
    redis_server.start()
    r = bus.wait_ready(redis_server.url)
    assert r.xlen(MD) == 500
    # A producer that lost its connection re-adds its recent entries: Redis refuses each by id.
    p.failed()
    fill(r, p, 10, start=501)
    assert r.xlen(MD) == 510 and p.c["duplicates"] == 500 and p.c["refused"] == 0
    # A lost tail (what a crash between write and fsync could cost) is re-added from the ring, in order.
    r.delete(MD)
    for seq in range(1, 491):
        r.xadd(MD, bus.encode(bus.KIND_TRADE, {"agg_trade_id": seq}), id=bus.make_id(1_000, seq))
    p.failed()
    p.flush(r)
    ids = [bus.id_parts(i)[1] for i, _ in r.xrange(MD)]
    assert ids == list(range(1, 511))


def test_a_restarted_consumer_takes_back_its_pending_entries_first(redis_server: ManagedRedis) -> None:
    r = bus.wait_ready(redis_server.url)
    bus.ensure_groups(r, [MD], bus.GROUP_LANDER)
    fill(r, bus.Producer(), 20)
    first = bus.GroupReader(bus.GROUP_LANDER, "lander", [MD])
    got, skipped = first.read(r, count=8, block_ms=10)
    assert [bus.id_parts(i)[1] for i, _ in got[0][1]] == list(range(1, 9)) and not skipped
    bus.ack(r, MD, bus.GROUP_LANDER, [i for i, _ in got[0][1][:3]])  # 1..3 done, 4..8 pending
    again = bus.GroupReader(bus.GROUP_LANDER, "lander", [MD])  # the process restarted
    got, _ = again.read(r, count=100, block_ms=10)
    assert [bus.id_parts(i)[1] for i, _ in got[0][1]] == [4, 5, 6, 7, 8]
    got, _ = again.read(r, count=100, block_ms=10)
    assert [bus.id_parts(i)[1] for i, _ in got[0][1]] == list(range(9, 21))
    # after a lost connection the pending list comes again; what was taken in is only reported as skipped
    again.reset()
    got, skipped = again.read(r, count=100, block_ms=10)
    assert got == [] and [bus.id_parts(i)[1] for _, i in skipped] == list(range(4, 21))


def test_trimming_keeps_what_any_group_or_checkpoint_still_needs(redis_server: ManagedRedis) -> None:
    r = bus.wait_ready(redis_server.url)
    bus.ensure_groups(r, [MD], bus.GROUP_LANDER)
    # many entries, so whole stream nodes can go (trimming is approximate: never more than asked)
    fill(r, bus.Producer(), 3_000)
    assert bus_admin.trim_acknowledged(r, KEYS, MD) == 0  # the signal group does not exist yet
    bus.ensure_groups(r, [MD], bus.GROUP_SIGNAL)
    for group in (bus.GROUP_LANDER, bus.GROUP_SIGNAL):
        reader = bus.GroupReader(group, group, [MD])
        got, _ = reader.read(r, count=3_000, block_ms=10)
        bus.ack(r, MD, group, [i for i, _ in got[0][1]][: 2_500 if group == bus.GROUP_LANDER else 3_000])
    assert bus_admin.trim_acknowledged(r, KEYS, MD) == 0  # the signal worker has not said where its checkpoint is
    bus_admin.hold(r, KEYS, bus.GROUP_SIGNAL, MD, bus.make_id(1_000, 1_200))
    removed = bus_admin.trim_acknowledged(r, KEYS, MD)
    first = bus.id_parts(r.xrange(MD, count=1)[0][0])[1]
    assert 0 < removed <= 1_200 and first <= 1_201 and r.xlen(MD) == 3_000 - removed
    bus_admin.hold(r, KEYS, bus.GROUP_SIGNAL, MD, bus.make_id(1_000, 3_000))
    bus_admin.trim_acknowledged(r, KEYS, MD)
    assert bus.id_parts(r.xrange(MD, count=1)[0][0])[1] <= 2_501  # the lander's oldest pending entry stays


def test_lag_counts_the_oldest_unacknowledged_entry_and_ends_mark_the_drain(redis_server: ManagedRedis) -> None:
    r = bus.wait_ready(redis_server.url)
    bus.ensure_groups(r, [MD], bus.GROUP_SIGNAL)
    now = int(time.time() * 1000)
    fill(r, bus.Producer(), 5, ms=now - 2_000)
    lag = bus_admin.consumer_lag(r, MD, now_ms=now)
    assert lag[bus.GROUP_SIGNAL] == (2.0, 5)
    reader = bus.GroupReader(bus.GROUP_SIGNAL, "s", [MD])
    got, _ = reader.read(r, count=100, block_ms=10)
    bus.ack(r, MD, bus.GROUP_SIGNAL, [i for i, _ in got[0][1]])
    assert bus_admin.consumer_lag(r, MD, now_ms=now)[bus.GROUP_SIGNAL] == (0.0, 0)
    ends = bus_admin.mark_end(r, KEYS, [MD, KEYS.dlq("BTCUSDT")])
    assert ends == {"md:BTCUSDT": f"{now - 2_000}-5", "dlq:BTCUSDT": "0-0"} == bus_admin.read_end(r, KEYS)
    assert bus_admin.covered(reader.pos[MD], ends["md:BTCUSDT"]) and bus_admin.covered(None, ends["dlq:BTCUSDT"])
    assert not bus_admin.covered(bus.make_id(now - 2_000, 4), ends["md:BTCUSDT"])
