"""Latency of the live path per event, joined from data the parts record (never modelled).

tick = the exchange's send time of the trade (``ExchangeServer.send_times``, ns; a real exchange
does not tell it, so there the harvester's receive time stands in and ``tick_source`` says so).
Then per trade: the harvester's receive (``rn`` in the market entry, carried on its signal row's
entry), the signal worker's read of that entry (``rd``), the signal row computed (``sn``), its
SQLite/JSONL commit (``lat`` records of the signal worker) and the broker's order acknowledgement
(``lat`` records of the broker, for orders the executor filled or accepted). The collector reads ``sig:<SYM>`` and ``lat`` as group ``latency``
in the soak's process, observes Prometheus histograms (``metric_names``) for the Pushgateway and a
fine histogram of every sample per hop (0.5 % wide bins from 1 µs: the report's p50/p95/p99 within
0.5 %, max and count exact, memory bounded over an hour at any rate), keeps the worst tick→signal per
100 ms (the burst figure), and samples consumer lag per group.
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import redis
from prometheus_client import Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from alpha_assets.live import bus, bus_admin
from alpha_assets.live.metric_names import (
    CONSUMER_LAG_SECONDS,
    CONSUMER_PENDING,
    LATENCY_BUCKETS_S,
    TICK_TO_DURABLE,
    TICK_TO_ORDER,
    TICK_TO_SIGNAL,
)

# The histograms' *_created samples are not in the metric vocabulary and say nothing on a gateway.
disable_created_metrics()

SendTimes = Callable[[str, int], int | None]
# the receive hop (exchange → harvester) and the read hop (→ the signal worker's read of its entry: the
# harvester's publish and the bus) are in the report, not exported: they split tick→signal into its parts
HOPS = {"receive": None, "read": None, "signal": TICK_TO_SIGNAL, "durable": TICK_TO_DURABLE, "order": TICK_TO_ORDER}
ACKED = ("filled", "accepted")
ROUTABLE = frozenset({"buy", "strong_buy", "sell", "strong_sell"})
_FORGET_S = 120.0  # a trade's tick is kept this long for its commit and order records


def percentiles(values: array | list[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99, max in milliseconds of samples in seconds."""
    if not len(values):
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    a = np.frombuffer(values, dtype=np.float64) if isinstance(values, array) else np.asarray(values)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"n": int(a.size), "p50_ms": round(float(p50) * 1e3, 3), "p95_ms": round(float(p95) * 1e3, 3),
            "p99_ms": round(float(p99) * 1e3, 3), "max_ms": round(float(a.max()) * 1e3, 3)}


class FineHistogram:
    """Counts of samples (s) in geometric bins 0.5 % wide from 1 µs to ~1 h; exact n and max."""

    LOW, RATIO = 1e-6, 1.005

    def __init__(self) -> None:
        self.counts = np.zeros(int(math.log(3600 / self.LOW) / math.log(self.RATIO)) + 2, dtype=np.int64)
        self.n, self.max = 0, 0.0
        self._log_ratio = math.log(self.RATIO)

    def add(self, seconds: float) -> None:
        i = 0 if seconds <= self.LOW else min(len(self.counts) - 1,
                                               int(math.log(seconds / self.LOW) / self._log_ratio) + 1)
        self.counts[i] += 1
        self.n += 1
        self.max = max(self.max, seconds)

    def quantile(self, q: float) -> float:
        """The upper edge of the bin holding the q-quantile (an overstatement of at most 0.5 %)."""
        i = int(np.searchsorted(np.cumsum(self.counts), q * self.n, side="left"))
        return min(self.max, self.LOW * self.RATIO ** i)

    def summary(self) -> dict[str, float | int | None]:
        if not self.n:
            return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
        return {"n": self.n, **{f"p{round(q * 100)}_ms": round(self.quantile(q) * 1e3, 3) for q in (0.5, 0.95, 0.99)},
                "max_ms": round(self.max * 1e3, 3)}


class LatencyCollector:
    def __init__(self, bus_url: str, run_id: str, symbols: list[str], send_times: SendTimes | None = None) -> None:
        self.url, self.keys, self.symbols = bus_url, bus.Keys(run_id), list(symbols)
        self.send_times = send_times
        self.hist = {hop: Histogram(m.name, m.help, list(m.labels), buckets=LATENCY_BUCKETS_S, registry=None)
                     for hop, m in HOPS.items() if m is not None}
        self.samples: dict[str, FineHistogram] = {hop: FineHistogram() for hop in HOPS}
        self.worst: dict[int, float] = {}  # 100 ms window of the signal's time → worst tick→signal in it
        self.recent: deque[float] = deque(maxlen=1_000)
        self.ticks: dict[tuple[str, int], list[Any]] = {}  # (symbol, seq) → [tick ns, routable, durable?, ordered?, t]
        # records read before their row (the signal stream lagging behind lat in one read): kept for it
        self.early: dict[tuple[str, int], list[tuple[str, int, str | None, float]]] = {}
        self.lag: dict[tuple[str, str], tuple[float, int]] = {}
        self.c = dict.fromkeys(("rows", "tick_exchange", "tick_receive", "durable_records", "order_records",
                                "orphans", "errors"), 0)
        self.streams = [self.keys.sig(s) for s in symbols] + [self.keys.lat]
        self.reader = bus.GroupReader(bus.GROUP_LATENCY, "latency", self.streams)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ records
    def _tick(self, sym: str, seq: int, rn: int | None) -> int | None:
        sent = self.send_times(sym, seq) if self.send_times is not None else None
        if sent is not None:
            self.c["tick_exchange"] += 1
            return sent
        if rn is not None:
            self.c["tick_receive"] += 1
        return rn

    def _observe(self, hop: str, sym: str, seconds: float) -> None:
        if hop in self.hist:
            self.hist[hop].labels(symbol=sym).observe(seconds)
        self.samples[hop].add(seconds)

    def take(self, batches: list[tuple[str, list[bus.Entry]]]) -> None:
        now = time.monotonic()
        with self._lock:
            for _stream, entries in batches:
                for _, fields in entries:
                    kind, body = bus.decode(fields)
                    if kind == bus.KIND_SIGNAL:
                        self._signal(body, now)
                    elif kind == bus.KIND_LATENCY:
                        self._record(body)
            if len(self.ticks) > 10_000:
                for key in [k for k, v in self.ticks.items() if now - v[4] > _FORGET_S]:
                    del self.ticks[key]
            if len(self.early) > 10_000:
                for key in [k for k, v in self.early.items() if now - v[0][3] > _FORGET_S]:
                    self.c["orphans"] += len(self.early.pop(key))

    def _signal(self, body: dict[str, Any], now: float) -> None:
        row, rn, rd, sn = body["r"], body.get("rn"), body.get("rd"), body.get("sn")
        sym, seq = row["symbol"], int(row["seq"])
        self.c["rows"] += 1
        tick = self._tick(sym, seq, rn)
        if tick is None or sn is None:
            return
        if rn is not None and self.c["tick_exchange"] and tick != rn:
            self._observe("receive", sym, (rn - tick) / 1e9)
        if rd is not None:
            self._observe("read", sym, (rd - tick) / 1e9)
        self._observe("signal", sym, (sn - tick) / 1e9)
        lat = (sn - tick) / 1e9
        w = sn // 100_000_000
        self.worst[w] = max(self.worst.get(w, 0.0), lat)
        self.recent.append(lat)
        routable = row.get("signal_type") in ROUTABLE and row.get("score") is not None
        self.ticks[(sym, seq)] = [tick, routable, False, False, now]
        for kind, ns, status, _ in self.early.pop((sym, seq), ()):
            self._apply(sym, seq, kind, ns, status)

    def _record(self, body: dict[str, Any]) -> None:
        sym, ns, kind = body["s"], int(body["n"]), body["k"]
        statuses = body.get("st") or [None] * len(body["q"])
        self.c["durable_records" if kind == "d" else "order_records"] += 1
        now = time.monotonic()
        for seq, status in zip(body["q"], statuses, strict=True):
            if (sym, int(seq)) in self.ticks:
                self._apply(sym, int(seq), kind, ns, status)
            else:  # its row is not read yet (or was observed and done: a record written again)
                self.early.setdefault((sym, int(seq)), []).append((kind, ns, status, now))

    def _apply(self, sym: str, seq: int, kind: str, ns: int, status: str | None) -> None:
        t = self.ticks[(sym, seq)]
        if kind == "d" and not t[2]:
            t[2] = True
            self._observe("durable", sym, (ns - t[0]) / 1e9)
        elif kind == "o" and not t[3]:
            t[3] = True
            if status in ACKED:
                self._observe("order", sym, (ns - t[0]) / 1e9)
        if t[2] and (t[3] or not t[1]):
            del self.ticks[(sym, seq)]

    # ------------------------------------------------------------------ the reading thread
    def start(self) -> LatencyCollector:
        self._thread = threading.Thread(target=self._loop, name="latency-collector", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        r: redis.Redis | None = None
        next_lag = 0.0
        while not self._stop.is_set():
            try:
                if r is None:
                    r = bus.wait_ready(self.url, timeout_s=5)
                    bus.ensure_groups(r, self.streams, bus.GROUP_LATENCY)
                    self.reader.reset()
                self.poll(r, block_ms=200)
                if time.monotonic() >= next_lag:
                    next_lag = time.monotonic() + 1.0
                    self.sample_lag(r)
            except (*bus.BUS_ERRORS, TimeoutError, redis.ResponseError):
                self.c["errors"] += 1
                r = None
                self._stop.wait(0.2)

    def poll(self, r: redis.Redis, block_ms: int | None = None) -> int:
        fresh, skipped = self.reader.read(r, count=10_000, block_ms=block_ms)
        self.take(fresh)
        done: dict[str, list[bytes]] = {}
        for stream, entries in fresh:
            done.setdefault(stream, []).extend(e[0] for e in entries)
        for stream, entry_id in skipped:
            done.setdefault(stream, []).append(entry_id)
        for stream, ids in done.items():
            bus.ack(r, stream, bus.GROUP_LATENCY, ids)
        return sum(len(e) for _, e in fresh)

    def sample_lag(self, r: redis.Redis) -> None:
        lag: dict[tuple[str, str], tuple[float, int]] = {}
        for stream in self.keys.streams(self.symbols):
            for group, value in bus_admin.consumer_lag(r, stream).items():
                lag[(group, self.keys.short(stream))] = value
        with self._lock:
            self.lag = lag

    def stop(self, drain_s: float = 10.0) -> None:
        """Stop the thread, then read what is left (the run has drained: nothing new comes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            r = bus.wait_ready(self.url, timeout_s=2)
            bus.ensure_groups(r, self.streams, bus.GROUP_LATENCY)
            deadline = time.monotonic() + drain_s
            while time.monotonic() < deadline and self.poll(r):
                pass
            self.sample_lag(r)
        except (*bus.BUS_ERRORS, TimeoutError, redis.ResponseError):
            self.c["errors"] += 1

    # ------------------------------------------------------------------ figures
    def collect(self) -> Iterator[Metric]:
        """prometheus_client collector protocol: the histograms and the lag gauges."""
        with self._lock:
            for h in self.hist.values():
                yield from h.collect()
            age = GaugeMetricFamily(CONSUMER_LAG_SECONDS.name, CONSUMER_LAG_SECONDS.help,
                                    labels=list(CONSUMER_LAG_SECONDS.labels))
            pending = GaugeMetricFamily(CONSUMER_PENDING.name, CONSUMER_PENDING.help,
                                        labels=list(CONSUMER_PENDING.labels))
            for (group, stream), (a, n) in sorted(self.lag.items()):
                age.add_metric([group, stream], a)
                pending.add_metric([group, stream], n)
            yield age
            yield pending

    def recent_ms(self, n: int = 1_000) -> float | None:
        """Median tick→signal of the last `n` rows (a progress line's lag), None before the first."""
        with self._lock:
            tail = list(self.recent)[-n:]
        return round(float(np.median(np.asarray(tail))) * 1e3, 3) if tail else None

    def summary(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {hop: h.summary() for hop, h in self.samples.items()}
            out["tick_source"] = ("exchange send time" if self.c["tick_exchange"] and not self.c["tick_receive"]
                                  else "harvester receive time" if self.c["tick_receive"] and not self.c["tick_exchange"]
                                  else "mixed" if self.c["rows"] else "none")
            out["counters"] = dict(self.c)
            out["lag"] = {f"{g}|{s}": {"age_s": round(a, 4), "pending": n} for (g, s), (a, n) in self.lag.items()}
        return out

    def figures(self) -> dict[str, float | int | None]:
        """Flat p50/p95/p99/max per hop for the soak's figures and metadata."""
        flat: dict[str, float | int | None] = {}
        for hop, p in self.summary().items():
            if hop in HOPS:
                for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
                    flat[f"tick_to_{hop}_{k}"] = p[k]
                flat[f"tick_to_{hop}_n"] = p["n"]
        return flat
