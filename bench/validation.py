"""Cost of hostile-input validation per message, in process (no socket): what the strict path adds
to the harvester's receive loop.

    .venv/bin/python bench/validation.py [--n 20000]

Prints µs per message (p50, p99, mean) for: orjson.loads alone (the floor), the validator, and the
whole client `handle` (validation + id continuity + queue), on real-shaped simulator messages
(aggTrade and depth5@100ms), and on frames that take the duplicate-key slow path (pretty-printed
JSON). One core, measured per message with perf_counter_ns.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

import orjson  # noqa: E402

from alpha_assets.market.binance import combined, dumps, encode_agg_trade, encode_depth5  # noqa: E402
from alpha_assets.market.simulator import SimulatorStream  # noqa: E402
from alpha_assets.market.validation import MessageValidator  # noqa: E402
from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig  # noqa: E402


def frames(n: int) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]:
    now = int(time.time() * 1000)
    src = SimulatorStream("BTCUSDT", seed=7, start_ms=now - 3_600_000)
    trades, books = [], []
    t = now - 3_600_000
    while len(trades) < n or len(books) < n:
        t += 60_000
        tr, bk = src.advance_to(t)
        trades += [(dumps(combined("btcusdt@aggTrade", encode_agg_trade(r))), r["event_time_ms"] + 5)
                   for r in tr.iter_rows(named=True)]
        books += [(dumps(combined("btcusdt@depth5@100ms", encode_depth5(r))), r["event_time_ms"] + 5)
                  for r in bk.iter_rows(named=True)]
    return trades[:n], books[:n]


def timed(fn, items: list[tuple[bytes, int]]) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for raw, recv in items:
        t0 = time.perf_counter_ns()
        fn(raw, recv)
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


def line(name: str, us: list[float]) -> str:
    us = sorted(us)
    return (f"{name:<38} p50 {us[len(us) // 2]:7.2f} µs   p99 {us[int(len(us) * 0.99)]:7.2f} µs   "
            f"mean {statistics.fmean(us):7.2f} µs   ({len(us)} msgs)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    trades, books = frames(args.n)
    url = "ws://127.0.0.1:9/stream?streams=btcusdt@aggTrade/btcusdt@depth5@100ms"
    print("measured in process, one core; receive clock = event time + 5 ms")
    for label, items in (("aggTrade", trades), ("depth5@100ms", books)):
        print(line(f"{label}: orjson.loads only", timed(lambda raw, recv: orjson.loads(raw), items)))
        v = MessageValidator(["btcusdt@aggTrade", "btcusdt@depth5@100ms"])
        print(line(f"{label}: validator", timed(v.validate, items)))
        client = MarketWsClient(WsClientConfig(url=url, backfill=False))
        us = timed(client.handle, items)
        assert client.counters.deadletter == 0, client.deadletter_reasons
        print(line(f"{label}: client.handle (all checks)", us))
        pretty = [(orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2), recv) for raw, recv in items[:2000]]
        v2 = MessageValidator(["btcusdt@aggTrade", "btcusdt@depth5@100ms"])
        print(line(f"{label}: validator, slow dup-key path", timed(v2.validate, pretty)))


if __name__ == "__main__":
    main()
