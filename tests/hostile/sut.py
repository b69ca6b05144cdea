"""The system under test of the hostile-input tests, behind one small interface.

A `FeedUnderTest` connects to a loopback `ExchangeServer`, runs until `stop()`, and reports an
`Outcome`: the trade and book rows it kept (emitted or landed), its dead letters and counters.
`ClientUnderTest` is the WebSocket client alone; `HarvesterUnderTest` is the live path's harvest
and lander workers over a real redis-server (the ``redis_url`` fixture of conftest.py), writing
the landing zone, read back afterwards.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from alpha_assets.market.exchange_server import ExchangeServer
from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig

# A client tuned for quick tests: short grace before backfill, small frame limits (the server's
# oversize kinds are sized against these), quick confirmation of held jumps.
FAST_CLIENT: dict[str, Any] = {
    "gap_grace_s": 0.1, "backoff_initial_s": 0.1, "jump_confirm_s": 1.0, "read_timeout_s": 30,
    "validation": {"max_frame_bytes": 64 << 10}, "ws_max_size_bytes": 256 << 10,
}
LARGE_BYTES, HUGE_BYTES = 100_000, 400_000  # server-side sizes of the two oversize kinds


@dataclass
class Outcome:
    trades: list[dict[str, Any]]
    books: list[dict[str, Any]]
    deadletters: list[dict[str, Any]]
    counters: dict[str, Any]
    internals: dict[str, int] = field(default_factory=dict)  # sizes of bounded structures

    def trade_ids(self, symbol: str) -> list[int]:
        return [r["agg_trade_id"] for r in self.trades if r["symbol"] == symbol]


class FeedUnderTest(Protocol):
    def start(self, server: ExchangeServer, symbols: list[str]) -> None: ...

    def messages(self) -> int: ...

    def open_gaps(self) -> int: ...

    def stop(self) -> Outcome: ...


class ClientUnderTest:
    def __init__(self, **overrides: Any) -> None:
        self.overrides = {**FAST_CLIENT, **overrides}
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.internals: dict[str, int] = {}

    def start(self, server: ExchangeServer, symbols: list[str]) -> None:
        cfg = WsClientConfig.model_validate({"url": server.stream_url(symbols), "rest_url": server.rest_url,
                                             **self.overrides})
        self.client = MarketWsClient(cfg)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        async def main() -> None:
            task = asyncio.create_task(self.client.run(self._stop))
            while not task.done():
                self.items.extend(self.client.drain())
                self._watch()
                await asyncio.sleep(0.02)
            await task
            self.items.extend(self.client.drain())

        self._loop.run_until_complete(main())

    def _watch(self) -> None:
        for k, v in self.client.bounds_in_use().items():
            self.internals[k] = max(self.internals.get(k, 0), v)

    def messages(self) -> int:
        return self.client.counters.messages

    def open_gaps(self) -> int:
        return self.client.open_gaps()

    def stop(self) -> Outcome:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "client did not stop"
        self._watch()
        rows = {k: [r for kind, r in self.items if kind == k] for k in ("trade", "book", "deadletter")}
        return Outcome(rows["trade"], rows["book"], rows["deadletter"], self.client.counters.as_dict(),
                       dict(self.internals))


class HarvesterUnderTest:
    """The live path's harvest and lander workers (their own ``run`` loops, as the supervisor starts
    them) in threads, against a real redis-server: WebSocket → harvester → Redis streams → lander →
    landing zone, read back after a drained stop (the soak's order: harvester, end marks, lander)."""

    def __init__(self, root: Path, bus_url: str, run_id: str = "hostile", lateness_ms: int = 200,
                 **overrides: Any) -> None:
        self.root, self.bus_url, self.run_id, self.lateness_ms = root, bus_url, run_id, lateness_ms
        self.overrides = {**FAST_CLIENT, **overrides}
        self.errors: dict[str, BaseException] = {}

    def start(self, server: ExchangeServer, symbols: list[str]) -> None:
        from alpha_assets.live import bus
        from alpha_assets.live.workers import harvest, lander
        from alpha_assets.live.workers.common import WorkerConfig

        self.symbols = symbols
        self.cfg = WorkerConfig(run_id=self.run_id, data_root=self.root, symbols=symbols,
                                start_ms=int(time.time() * 1000), ws_url=server.stream_url(symbols),
                                rest_url=server.rest_url, bus_url=self.bus_url, lateness_ms=self.lateness_ms,
                                heartbeat_s=0.05, ws_client=self.overrides)
        self.keys = bus.Keys(self.run_id)
        self.redis = bus.wait_ready(self.bus_url)
        self.redis.delete(self.keys.end)  # a run started again: its last drain's end marks are history
        self._stop = {"harvest": threading.Event(), "lander": threading.Event()}
        self._threads = {
            "lander": self._thread("lander", lambda: lander.run(self.cfg, self._stop["lander"])),  # type: ignore[arg-type]
            "harvest": self._thread("harvest", lambda: asyncio.run(harvest.run(self.cfg, self._stop["harvest"]))),  # type: ignore[arg-type]
        }

    def _thread(self, name: str, target: Any) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # a crash is what the tests look for: keep it
                self.errors[name] = exc

        t = threading.Thread(target=run, daemon=True, name=f"{self.run_id}-{name}")
        t.start()
        return t

    def beat(self, name: str = "harvest") -> dict[str, Any]:
        try:
            return json.loads((self.root / "runtime" / "health" / f"{name}.json").read_text())
        except (OSError, ValueError):
            return {}

    def messages(self) -> int:
        return int(self.beat().get("messages", 0))

    def open_gaps(self) -> int:
        return int(self.beat().get("open_gap_trades", 0))

    def stop(self) -> Outcome:
        from alpha_assets.live import bus_admin

        self._stop["harvest"].set()
        self._threads["harvest"].join(60)
        assert not self._threads["harvest"].is_alive(), "harvester did not stop"
        bus_admin.mark_end(self.redis, self.keys, self.keys.harvested(self.symbols))
        self._threads["lander"].join(60)  # it drains to the end marks and returns by itself
        if self._threads["lander"].is_alive():
            self._stop["lander"].set()
            self._threads["lander"].join(10)
            raise AssertionError(f"lander did not drain: {self.beat('lander')}")
        assert not self.errors, f"a worker crashed: {self.errors!r}"
        self.redis.close()
        return read_landing(self.root, {**self.beat("lander"), **self.beat()})


def read_landing(root: Path, counters: dict[str, Any]) -> Outcome:
    """Everything in the landing zone, as rows."""
    land = root / "landing"

    def rows(pattern: str) -> list[dict[str, Any]]:
        files = sorted(p for p in land.glob(pattern) if not p.name.startswith("."))
        return pl.concat([pl.read_parquet(p) for p in files], how="diagonal_relaxed").to_dicts() if files else []

    return Outcome(rows("raw/date=*/symbol=*/trades_*.parquet"), rows("raw/date=*/symbol=*/book_*.parquet"),
                   rows("deadletter/date=*/symbol=*/deadletter_*.parquet"), counters)


def wait_until(cond: Any, timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step_s)
    return bool(cond())


def quiesce(server: ExchangeServer, sut: FeedUnderTest, timeout_s: float = 30.0) -> None:
    """Hold the market, then wait until the feed has read what was sent and closed its gaps."""
    server.stall(3600)
    last, since = -1, time.monotonic()

    def settled() -> bool:
        nonlocal last, since
        n = sut.messages()
        if n != last:
            last, since = n, time.monotonic()
        drained = n >= server.stats.messages_sent or time.monotonic() - since > 1.5
        return drained and sut.open_gaps() == 0

    assert wait_until(settled, timeout_s), f"feed did not settle: read {sut.messages()} of " \
                                           f"{server.stats.messages_sent}, open gaps {sut.open_gaps()}"
