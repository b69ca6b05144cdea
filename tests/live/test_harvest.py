"""The harvester against a real redis-server that goes away for longer than its buffer holds: it
queues what it can, then re-fetches the rest by REST once Redis is back. Nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from alpha_assets.live import bus
from alpha_assets.live.redis_server import ManagedRedis
from alpha_assets.live.workers import harvest
from alpha_assets.live.workers.common import WorkerConfig, read_json
from alpha_assets.market.exchange_server import ExchangeServer
from alpha_assets.market.rate_source import RateSource

SYM = "BTCUSDT"


def wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        time.sleep(0.05)


def test_redis_away_past_the_buffer_is_backfilled_not_dropped(tmp_path: Path, redis_server: ManagedRedis) -> None:
    server = ExchangeServer({SYM: RateSource(SYM, int(time.time() * 1000), 300, seed=5)}, tick_ms=10).start()
    cfg = WorkerConfig(run_id="hv", data_root=tmp_path, symbols=[SYM], bus_url=redis_server.url,
                       ws_url=server.stream_url([SYM]), rest_url=server.rest_url, bus_buffer_max=200,
                       start_ms=int(time.time() * 1000))
    stop = threading.Event()  # what run() asks of its stop flag: is_set()
    worker = threading.Thread(target=lambda: asyncio.run(harvest.run(cfg, stop)), daemon=True)
    worker.start()
    beat = tmp_path / "runtime" / "health" / "harvest.json"
    r = bus.wait_ready(redis_server.url)
    md = bus.Keys("hv").md(SYM)
    try:
        wait_for(lambda: r.xlen(md) > 300, 60, "events flowing into the stream")
        redis_server.kill()  # away for ~3 s: ~900 trades, the buffer holds 200
        time.sleep(3)
        redis_server.start()
        wait_for(lambda: int(read_json(beat).get("overflow_trades", 0)) > 0, 30, "the buffer overflowed")
        r = bus.wait_ready(redis_server.url)
        wait_for(lambda: read_json(beat).get("trade_gaps", 0) >= 1 and read_json(beat).get("open_gap_trades") == 0
                 and read_json(beat).get("bus_pending") == 0, 60, "the gap backfilled and the queue written")
        time.sleep(1)
    finally:
        stop.set()
        worker.join(60)
        server.stop()
    h = read_json(beat)
    ids = [bus.decode(f)[1]["agg_trade_id"] for _, f in r.xrange(md) if bus.KIND_TRADE in f]
    seqs = [bus.id_parts(i)[1] for i, _ in r.xrange(md)]
    assert len(ids) == len(set(ids)) and sorted(ids) == list(range(min(ids), max(ids) + 1))  # every trade, once
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # ingest order stays strictly increasing
    assert h["overflow_trades"] > 0 and h["gap_trades_unfilled"] == 0 and h["queue_dropped"] == 0
    assert h["bus_bus_errors"] >= 1 and h["gap_trades_filled"] >= h["overflow_trades"]
    assert not worker.is_alive()
