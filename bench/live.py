"""Live path latency per event, end to end through the real workers, redis-server and sinks.

A loopback exchange in this process (Binance USD-M protocol, sends every 10 ms) serves a market; the
soak runs against it as an external endpoint (``feed=external``): supervised harvest, lander, signal,
broker and report processes on a local redis-server, both sinks, the Pushgateway. The soak's latency
collector joins each trade's send time (recorded by the exchange as it sends) with the harvester's
receive, the signal row, its SQLite/JSONL commit and the broker's order ack. Nothing is modelled.

Scenarios (each sustained over --minutes, default 5; two symbols):
  1x      the simulator's busiest hour, replayed at its own pace
  10x     the same hour ten times faster
  steady  2,000 events/s (RateSource: trades + a book snapshot per 100 ms per symbol)
  burst   2,000 events/s with 20,000 events/s for 10 s: how long until tick→signal is under 10 ms again
  outside soak_60m through the Dagster CLI, watched from outside: SQLite polled every 1 ms (flush_ms=50)

Printed per scenario and book-join mode: events/s, p50/p95/p99/max of each hop, CPU % and peak RSS per process,
events dropped (queue/overflow counters and trades missing from the landing zone).

    .venv/bin/python bench/live.py [--modes arrival,event_time] [--scenarios 1x,10x,steady,burst,outside]
                                   [--minutes 5] [--flush-ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import psutil

from alpha_assets.layout import Layout
from alpha_assets.live.soak import SoakConfig, run_soak
from alpha_assets.market.exchange_server import ExchangeServer, MarketSource, ReplaySource
from alpha_assets.market.landing import landing_partitions, load_landing
from alpha_assets.market.rate_source import RateSource
from alpha_assets.market.simulator import day_start_ms, simulate_day

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DATE = "2024-03-04"
TICK_MS = 10
HOPS = ("receive", "read", "signal", "durable", "order")


def busiest_hour(speed: float, start_ms: int) -> dict[str, MarketSource]:
    days = {s: simulate_day(s, DATE, seed=7) for s in SYMBOLS}
    hours = pl.concat([((d["trades"]["event_time_ms"] - day_start_ms(DATE)) // 3_600_000).alias("h").to_frame()
                       for d in days.values()])
    hour = int(hours["h"].value_counts(sort=True)["h"][0])
    lo = day_start_ms(DATE) + hour * 3_600_000
    out: dict[str, MarketSource] = {}
    for s, d in days.items():
        win = (pl.col("event_time_ms") >= lo) & (pl.col("event_time_ms") < lo + 3_600_000)
        out[s] = ReplaySource(d["trades"].filter(win), d["book"].filter(win), start_ms, speed)
    return out


def rate_sources(start_ms: int, events_per_s: float, burst: tuple[float, float, float] | None) -> dict[str, MarketSource]:
    per_symbol = events_per_s / len(SYMBOLS) - 10  # 10 book snapshots a second per symbol
    bursts = ((burst[0], burst[1], burst[2] / len(SYMBOLS) - 10),) if burst else ()
    return {s: RateSource(s, start_ms, per_symbol, seed=k, price=60_000.0 / (k + 1), bursts=bursts)
            for k, s in enumerate(SYMBOLS)}


def sources_for(scenario: str, start_ms: int) -> tuple[dict[str, MarketSource], tuple[float, float, float] | None]:
    if scenario in ("1x", "10x"):
        return busiest_hour(1.0 if scenario == "1x" else 10.0, start_ms), None
    burst = (60.0, 10.0, 20_000.0) if scenario == "burst" else None
    return rate_sources(start_ms, 2_000.0, burst), burst


def dropped(root: Path, server: ExchangeServer, figures: dict[str, Any]) -> dict[str, int]:
    lost = 0
    for sym in SYMBOLS:
        dates = [d for d, s in landing_partitions(root) if s == sym]
        ids = pl.concat([load_landing(root, d, sym)["trades"]["agg_trade_id"] for d in dates]) if dates else pl.Series([])
        if ids.len():
            produced = [i for i in server.produced_trade_ids[sym] if int(ids.min()) <= i <= int(ids.max())]
            lost += len(set(produced) - set(ids.to_list()))
    return {"trades_missing": lost, "exchange_queue_overflow": server.stats.queue_overflow,
            "queue_dropped": int(figures.get("queue_dropped") or 0),
            "bus_overflow": int(figures.get("bus_overflow") or 0)}


def burst_recovery(worst: dict[int, float], burst_end_s: float, limit_s: float = 0.010) -> dict[str, float | None]:
    """From the burst's end: seconds until every later 100 ms window has tick→signal < 10 ms
    (``worst``: 100 ms window index → worst tick→signal in it, from the latency collector)."""
    end = int(burst_end_s * 10)
    after = sorted((w, v) for w, v in worst.items() if w >= end)
    if not after:
        return {"recovery_s": None, "peak_ms": None}
    bad = [w for w, v in after if v >= limit_s]
    recovery = 0.0 if not bad else (None if bad[-1] == after[-1][0] else round((bad[-1] + 1 - end) / 10, 1))
    during = [v for w, v in worst.items() if end - 100 <= w < end]
    return {"recovery_s": recovery, "peak_ms": round(max(during) * 1e3, 1) if during else None}


def run_scenario(scenario: str, mode: str, minutes: float, flush_ms: int, gateway_url: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-live-{scenario}-"))
    start_ms = int(time.time() * 1000) + 2_000
    sources, burst = sources_for(scenario, start_ms)
    server = ExchangeServer(sources, tick_ms=TICK_MS).start()
    me = psutil.Process()
    cpu0, t0 = me.cpu_times(), time.time()
    try:
        cfg = SoakConfig(minutes=minutes, symbols=SYMBOLS, feed="external", feed_ws_url=server.stream_url(SYMBOLS),
                         feed_rest_url=server.rest_url, book_join=mode, sink="dual", sink_flush_ms=flush_ms,
                         export_interval_s=10, health_interval_s=1, report_interval_s=15, pushgateway_url=gateway_url)
        res = run_soak(cfg, root, f"bench_{scenario}_{mode}",
                       send_times=lambda sym, tid: server.send_times[sym].get(tid), feed_server=server)
    finally:
        server.stop()
    wall = time.time() - t0
    cpu1 = me.cpu_times()
    m = json.loads(res.run_manifest.read_text())
    lat = m["latency"]
    lander = json.loads(Layout(root).heartbeat("lander").read_text())
    out: dict[str, Any] = {
        "scenario": scenario, "mode": mode, "flush_ms": flush_ms, "minutes": minutes,
        "events_per_s": round((lander["trades_landed"] + lander["book_landed"]) / (minutes * 60), 1),
        "hops": {h: lat[h] for h in HOPS}, "tick_source": lat["tick_source"],
        "cpu_pct": {n: round(100 * p["cpu_s"] / wall, 1) for n, p in m["processes"].items()}
        | {"bench (exchange+collector+supervisor)": round(100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system))
                                                         / wall, 1)},
        "max_rss_mb": {n: p["max_rss_mb"] for n, p in m["processes"].items()},
        "dropped": dropped(root, server, res.figures()), "passed": res.passed,
        "failed_checks": sorted(k for k, ok in res.checks.items() if not ok),
    }
    if burst is not None and res.latency is not None:
        out["burst"] = burst_recovery(res.latency.worst, start_ms / 1000 + burst[0] + burst[1])
    return out


def run_outside(mode: str, minutes: float, flush_ms: int) -> dict[str, Any]:
    """soak_60m from the Dagster CLI against the loopback exchange; SQLite watched from outside."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-outside-"))
    start_ms = int(time.time() * 1000) + 2_000
    server = ExchangeServer(busiest_hour(1.0, start_ms), tick_ms=TICK_MS).start()
    config = tmp / "soak.yaml"
    config.write_text(json.dumps({"ops": {"soak_report": {"config": {
        "minutes": minutes, "symbols": SYMBOLS, "feed": "external", "feed_ws_url": server.stream_url(SYMBOLS),
        "feed_rest_url": server.rest_url, "book_join": mode, "sink_flush_ms": flush_ms, "export_interval_s": 10}}}}))
    env = {**os.environ, "DAGSTER_HOME": str(tmp / "home"), "ALPHA_DATA_ROOT": str(tmp / "var")}
    (tmp / "home").mkdir()
    db = Layout(tmp / "var").runtime.sqlite_file()
    seen: dict[tuple[str, int], float] = {}
    stop = threading.Event()

    def watch() -> None:
        con, low = None, 0
        while not stop.is_set():
            if con is None and db.exists():
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
            if con is not None:
                try:
                    rows = con.execute("SELECT symbol, seq, ts_ms FROM signals WHERE ts_ms >= ?", (low,)).fetchall()
                except sqlite3.Error:
                    rows = []
                now = time.time_ns()
                for sym, seq, ts in rows:
                    if (sym, seq) not in seen:
                        sent = server.send_times[sym].get(seq)
                        if sent is not None:
                            seen[(sym, seq)] = (now - sent) / 1e9
                        low = max(low, ts - 5_000)
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m",
                               "alpha_assets.definitions", "-j", "soak_60m", "-c", str(config)],
                              env=env, capture_output=True, text=True, timeout=minutes * 60 + 900)
    finally:
        stop.set()
        watcher.join(5)
        server.stop()
    from alpha_assets.live.latency import percentiles

    return {"scenario": "outside", "mode": mode, "flush_ms": flush_ms, "minutes": minutes,
            "returncode": done.returncode, "rows_seen": len(seen), "tick_to_sink": percentiles(list(seen.values()))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="arrival,event_time")
    ap.add_argument("--scenarios", default="1x,10x,steady,burst,outside")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--flush-ms", type=int, default=50)
    ap.add_argument("--json", default="", help="also write the results to this file")
    args = ap.parse_args()
    gateway = None
    try:
        from alpha_assets.live.gateway import ManagedGateway

        gateway = ManagedGateway(Path(tempfile.mkdtemp()) / "pushgateway.log").start()
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"(no Pushgateway: {exc})")
    results = []
    print(f"live path, {', '.join(SYMBOLS)}, dual sink, flush_ms={args.flush_ms}, exchange sends every {TICK_MS} ms; "
          f"measured under load on this machine ({psutil.cpu_count()} cores)")
    try:
        for mode in args.modes.split(","):
            for sc in args.scenarios.split(","):
                r = (run_outside(mode, args.minutes, args.flush_ms) if sc == "outside"
                     else run_scenario(sc, mode, args.minutes, args.flush_ms, gateway.url if gateway else ""))
                results.append(r)
                print(report(r), flush=True)
    finally:
        if gateway is not None:
            gateway.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def report(r: dict[str, Any]) -> str:
    head = f"\n== {r['scenario']} · {r['mode']} · {r['minutes']} min"
    if r["scenario"] == "outside":
        p = r["tick_to_sink"]
        return (f"{head} · soak_60m via dagster CLI (exit {r['returncode']}), SQLite polled every 1 ms\n"
                f"   tick→sink  n={p['n']}  p50/p95/p99/max {p['p50_ms']}/{p['p95_ms']}/{p['p99_ms']}/{p['max_ms']} ms")
    lines = [f"{head} · {r['events_per_s']} events/s · tick = {r['tick_source']}"]
    for h in HOPS:
        p = r["hops"][h]
        lines.append(f"   tick→{h:<8} n={p['n']:<8} p50/p95/p99/max {p['p50_ms']}/{p['p95_ms']}/{p['p99_ms']}/{p['max_ms']} ms")
    lines.append("   CPU %: " + ", ".join(f"{k} {v}" for k, v in r["cpu_pct"].items()))
    lines.append("   max RSS MB (sampled at each health check): " + ", ".join(f"{k} {v}" for k, v in r["max_rss_mb"].items()))
    lines.append(f"   dropped: {r['dropped']}" + (f"  · failed checks: {r['failed_checks']}" if r["failed_checks"] else ""))
    if "burst" in r:
        lines.append(f"   burst: peak tick→signal {r['burst']['peak_ms']} ms, back under 10 ms "
                     f"{r['burst']['recovery_s']} s after it ended")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
