"""The workers in-process against a real redis-server: what a market stream becomes in the landing
zone, the sinks and the outbox, across restarts, without loss or doubles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import redis

from alpha_assets.engine import compute_features, compute_signals
from alpha_assets.live import bus, bus_admin
from alpha_assets.live.redis_server import ManagedRedis
from alpha_assets.live.workers.broker import Broker
from alpha_assets.live.workers.common import MINUTE_MS, WorkerConfig, read_json
from alpha_assets.live.workers.lander import Lander
from alpha_assets.live.workers.signal import SignalWorker
from alpha_assets.market.landing import landed_book_join, load_landing
from alpha_assets.market.simulator import day_start_ms, simulate_day
from alpha_assets.sinks.readers import read_jsonl_signals, read_sqlite_signals

SYM, DATE, RUN = "BTCUSDT", "2024-03-04", "w1"


def market(minutes: float) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    day = simulate_day(SYM, DATE, seed=3)
    t0 = day_start_ms(DATE) + 14 * 3_600_000
    hi = t0 + int(minutes * MINUTE_MS)
    return (day["trades"].filter(pl.col("event_time_ms").is_between(t0, hi - 1)),
            day["book"].filter(pl.col("event_time_ms").is_between(t0, hi - 1)), t0)


def publish_market(r: redis.Redis, trades: pl.DataFrame, book: pl.DataFrame) -> int:
    """What the harvester writes: trades and book rows in event (= arrival) order, ingest_seq 1, 2, ..."""
    keys, producer = bus.Keys(RUN), bus.Producer()
    rows = sorted([(t["event_time_ms"], 1, t["agg_trade_id"], "t", t) for t in trades.to_dicts()]
                  + [(b["event_time_ms"], 0, b["last_update_id"], "b", b) for b in book.to_dicts()],
                  key=lambda x: x[:3])
    for seq, (t, _, _, kind, row) in enumerate(rows, 1):
        body = {**row, "ingest_seq": seq, "rn": t * 1_000_000 + 5, "g": 0}
        producer.add(keys.md(SYM), bus.make_id(t, seq), bus.encode(kind.encode(), body))
    producer.flush(r)
    return len(rows)


def config(root: Path, server: ManagedRedis, **kw: Any) -> WorkerConfig:
    return WorkerConfig(run_id=RUN, data_root=root, symbols=[SYM], bus_url=server.url, start_ms=0, **kw)


def run_signal(w: SignalWorker, r: redis.Redis, count: int, until: int | None = None) -> None:
    """The worker's loop, reading `count` entries at a time (small steps), up to `until` entries."""
    taken = 0
    while until is None or taken < until:
        fresh, skipped = w.reader.read(r, count=count, block_ms=10, producer=w.producer)
        if not fresh and not skipped:
            return
        w.take(fresh)
        for stream, entry_id in skipped:
            w.unacked[stream].append(entry_id)
        w.settle(r)
        taken += sum(len(e) for _, e in fresh)


def start_signal(cfg: WorkerConfig) -> tuple[SignalWorker, redis.Redis]:
    w = SignalWorker(cfg)
    r = bus.wait_ready(cfg.bus_url)
    bus.ensure_groups(r, w.stream_of.values(), bus.GROUP_SIGNAL)
    w.hold(r)
    w.replay(r)
    return w, r


def test_signal_worker_restarted_from_an_older_checkpoint_writes_exactly_the_batch_rows(
        tmp_path: Path, redis_server: ManagedRedis) -> None:
    trades, book, _ = market(2)
    r = bus.wait_ready(redis_server.url)
    n = publish_market(r, trades, book)
    cfg = config(tmp_path, redis_server, sink="dual", sink_flush_ms=0, checkpoint_interval_s=600)
    w, r = start_signal(cfg)
    run_signal(w, r, count=19, until=n // 3)
    w.checkpoint(r)  # the state a restart resumes from
    at_checkpoint = sum(e.n for e in w.engines.values())
    run_signal(w, r, count=19, until=n // 3)
    w.sync(r)
    w.writer.close()  # crash: rows after the checkpoint are in the sinks, mostly acknowledged; the state is lost
    group = r.xinfo_groups(bus.Keys(RUN).md(SYM))[0]
    assert bus.id_parts(group["last-delivered-id"])[1] >= 2 * (n // 3) - 19 > group["pending"]
    assert read_sqlite_signals(tmp_path / "runtime" / "signals.db", run_id=RUN).height > at_checkpoint

    again, r = start_signal(cfg)  # replays everything after the checkpoint, then reads on
    assert again.resumed and again.c["replayed"] > 0
    run_signal(again, r, count=23)
    bus_admin.mark_end(r, again.keys, [again.keys.md(SYM)])
    assert again.drained(bus_admin.read_end(r, again.keys))
    again.finish(r)

    batch = compute_signals(compute_features(trades, book), run_id=RUN).sort("seq")
    sqlite = read_sqlite_signals(tmp_path / "runtime" / "signals.db", run_id=RUN).sort("seq")
    jsonl = read_jsonl_signals(tmp_path / "runtime", run_id=RUN).sort("seq")
    assert sqlite.height == jsonl.height == batch.height == trades.height
    assert sqlite.select(batch.columns).equals(batch) and jsonl.select(batch.columns).equals(batch)
    # each row once on the signal stream, in the engine's order, whatever was computed twice
    sig = r.xrange(bus.Keys(RUN).sig(SYM))
    assert [bus.id_parts(i)[1] for i, _ in sig] == list(range(1, batch.height + 1))
    assert sorted(bus.decode(f)[1]["r"]["seq"] for _, f in sig) == batch["seq"].to_list()
    lat = [bus.decode(f)[1] for _, f in r.xrange(bus.Keys(RUN).lat)]
    assert {s for rec in lat for s in rec["q"]} == set(batch["seq"].to_list())  # every row's commit is timed


def test_lander_lands_minutes_acks_them_and_a_restart_takes_the_open_ones_back(
        tmp_path: Path, redis_server: ManagedRedis) -> None:
    trades, book, t0 = market(2.5)
    r = bus.wait_ready(redis_server.url)
    publish_market(r, trades, book)
    keys = bus.Keys(RUN)
    r.xadd(keys.dlq(SYM), bus.encode(bus.KIND_DEAD, {"source": "ws", "reason": "bad_json", "symbol": SYM,
                                                     "event_time_ms": None, "key": None, "payload": "{"}),
           id=bus.make_id(t0 + 5, 1))
    cfg = config(tmp_path, redis_server, lateness_ms=3_000, book_join="event_time")
    lander = Lander(cfg)
    bus.ensure_groups(r, lander.streams, bus.GROUP_LANDER)
    while True:
        fresh, _ = lander.reader.read(r, count=500, block_ms=10)
        if not fresh:
            break
        lander.take(fresh)
        lander.land(r)
    # the last trade is 2.5 min in: minutes 0 and 1 are closed (past by the lateness), minute 2 is open
    assert read_json(cfg.watermark(SYM))["closed_through_ms"] == t0 + 2 * MINUTE_MS
    pending = r.xpending(keys.md(SYM), bus.GROUP_LANDER)["pending"]
    open_rows = trades.filter(pl.col("event_time_ms") >= t0 + 2 * MINUTE_MS).height + \
        book.filter(pl.col("event_time_ms") >= t0 + 2 * MINUTE_MS).height
    assert pending == open_rows and r.xpending(keys.dlq(SYM), bus.GROUP_LANDER)["pending"] == 0

    again = Lander(cfg)  # a restart: the open minute comes back from the pending list
    bus_admin.mark_end(r, keys, keys.harvested([SYM]))
    ends = bus_admin.read_end(r, keys)
    while not again.drained(r, ends):
        fresh, _ = again.reader.read(r, count=500, block_ms=10)
        again.take(fresh)
    again.land(r, final=True)
    again.close_all()
    landed = load_landing(tmp_path, DATE, SYM)
    assert landed["trades"]["agg_trade_id"].to_list() == trades.sort("event_time_ms", "agg_trade_id")["agg_trade_id"].to_list()
    assert landed["book"].height == book.height and landed["deadletters"]["reason"].to_list() == ["bad_json"]
    assert r.xpending(keys.md(SYM), bus.GROUP_LANDER)["pending"] == 0
    assert read_json(cfg.watermark(SYM))["closed_through_ms"] == t0 + 3 * MINUTE_MS
    assert landed_book_join(tmp_path, DATE, SYM) == "event_time"  # what a batch run over it must use


def test_broker_routes_each_signal_once_across_a_restart_with_the_live_book(
        tmp_path: Path, redis_server: ManagedRedis) -> None:
    trades, book, _ = market(3)
    r = bus.wait_ready(redis_server.url)
    publish_market(r, trades, book)
    keys = bus.Keys(RUN)
    signals = compute_signals(compute_features(trades, book), run_id=RUN)
    producer = bus.Producer()
    for k, row in enumerate(signals.to_dicts(), 1):
        producer.add(keys.sig(SYM), bus.make_id(int(row["ts_ms"]), k),
                     bus.encode(bus.KIND_SIGNAL, {"r": row, "rn": None, "sn": None}))
    producer.flush(r)
    routable = signals.filter(pl.col("signal_type") != "neutral")
    assert routable.height > 10
    cfg = config(tmp_path, redis_server)
    first = Broker(cfg)
    bus.ensure_groups(r, first.sig_streams, bus.GROUP_BROKER)
    first.prime(r)
    middle = signals.with_row_index().filter(pl.col("signal_type") != "neutral")["index"][routable.height // 2]
    fresh, _ = first.reader.read(r, count=int(middle), block_ms=10)  # half the routable signals
    first.route(r, fresh)
    first.outbox.close()
    half = first.c["orders"]
    assert 0 < half < routable.height
    # the broker died after its outbox had the orders but before the acks: the entries come back
    r.xgroup_setid(keys.sig(SYM), bus.GROUP_BROKER, id="0")
    again = Broker(cfg)
    again.prime(r)
    assert again.c["skipped_routed"] == half
    while True:
        fresh, skipped = again.reader.read(r, count=97, block_ms=10)
        if not fresh:
            break
        again.route(r, fresh)
    again.outbox.close()
    events = [json.loads(line) for p in sorted((tmp_path / "runtime" / "exec_events").rglob("*.jsonl"))
              for line in p.read_text().splitlines() if line]
    ids = [e["signal_row_id"] for e in events]
    assert len(ids) == len(set(ids)) == routable.height  # every routable signal once, none twice
    assert half + again.c["orders"] == routable.height
    filled = [e for e in events if e["status"] == "filled"]
    assert filled and all(e["px_fill"] > 0 for e in filled)  # priced from the live book
