"""The end of a soak, producers first, and the trade accounting against what the feed sent.

``drain``: the exchange (when the soak can see it: its own loopback exchange or a benchmark's) stops
sending; the harvester keeps running until every trade id the exchange produced up to the last one
it sent is on the bus — the harvest state's ledger holds it, so a hole the harvester is still
backfilling keeps the wait going — for up to ``drain_timeout_s``. The harvester then stops (it
backfills what is still open within its own stop budget, then reports the rest as ``id_gap`` dead
letters); the soak marks where the streams end, and lander, signal worker and broker each consume up
to there and exit. Anything short of that (ids not on the bus, a worker killed or timed out) makes
the drain not ok, which fails the soak's ``shutdown_drained`` check.

``feed_trades_missing``: after the drain, every trade id the exchange produced from the first landed
id through the last id it sent must be in the landing zone, once (the soak's ``trades_landed_as_sent``
check; its horizon comes from the feed and the landing zone, never a worker's own counters).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import polars as pl

from alpha_assets.figures import whole
from alpha_assets.layout import Layout
from alpha_assets.live import bus, bus_admin
from alpha_assets.live.process import child_environment
from alpha_assets.live.soak_config import SoakConfig
from alpha_assets.live.supervisor import Supervisor
from alpha_assets.live.workers.harvest_state import SymbolState
from alpha_assets.processes import spawn

_STATE_FIELD = b"state"


def drain(sup: Supervisor, cfg: SoakConfig, bus_url: str, run_id: str, server: Any | None) -> dict[str, Any]:
    """End of run, producers first: every consumer takes in everything the feed sent, then exits."""
    keys = bus.Keys(run_id)
    out: dict[str, Any] = {"ok": True, "workers": {}}
    sup.stop_event.set()  # from here nothing is restarted
    if server is not None:
        behind = quiesce_feed(sup, cfg, bus_url, run_id, server)
        out["not_on_bus"] = behind
        out["ok"] = not behind
    # it publishes what it holds and backfills its open gaps first (within its stop budget)
    code = sup.stop_child("harvest", grace_s=max(cfg.drain_timeout_s, cfg.stop_grace_s))
    out["workers"]["harvest"] = code
    out["ok"] = out["ok"] and code == 0
    if server is not None:
        server.stop()
        sup.event("Stop", "exchange", drops=server.stats.drops)
    try:
        r = bus.wait_ready(bus_url, timeout_s=30)
        out["ends"] = bus_admin.mark_end(r, keys, keys.harvested(cfg.symbols))
        for name in ("lander", "signal", "broker"):
            if name == "broker":  # the signal worker has stopped: its streams end here
                out["ends"] |= bus_admin.mark_end(r, keys, [keys.sig(s) for s in cfg.symbols])
            code = _finish(sup, name, cfg.drain_timeout_s)
            out["workers"][name] = code
            out["ok"] = out["ok"] and code == 0
    except (*bus.BUS_ERRORS, TimeoutError) as exc:
        sup.alert("", "drain failed: the bus is unreachable", error=f"{type(exc).__name__}: {exc}")
        out["ok"] = False
    return out


def missing_on_bus(r: Any, keys: bus.Keys, sent: dict[str, int]) -> dict[str, int]:
    """Per symbol, trade ids up to ``sent[symbol]`` the bus does not hold yet (holes of the harvest
    state's ledger and ids above its head); 0-free. Given-up ranges are in the ledger as accounted:
    they are dead letters, which the landing check then counts as lost."""
    out = {}
    for sym, top in sent.items():
        st = SymbolState.loads(r.hget(keys.harvest_state(sym), _STATE_FIELD))
        head = st.ledger.head
        if head is None:
            n = 1  # nothing of the symbol on the bus yet
        else:
            n = sum(b - a + 1 for a, b in st.ledger.holes(None, top)) + max(0, top - head)
        if n:
            out[sym] = n
    return out


def quiesce_feed(sup: Supervisor, cfg: SoakConfig, bus_url: str, run_id: str, server: Any) -> dict[str, int]:
    """The exchange, the first producer, stops sending; the harvester (still running, still backfilling)
    gets until every trade id produced up to the last one sent is on the bus, for up to
    ``drain_timeout_s``. Returns what is still missing then, per symbol (empty: all there)."""
    server.stall(3600)
    sent = {s: server.sent_trade_ids[s][-1] for s in cfg.symbols if server.sent_trade_ids.get(s)}
    keys, t0 = bus.Keys(run_id), time.monotonic()
    behind: dict[str, int] = {s: 1 for s in sent}
    r = bus.connect(bus_url, timeout_s=2)
    while time.monotonic() - t0 < cfg.drain_timeout_s:
        try:
            behind = missing_on_bus(r, keys, sent)
        except bus.BUS_ERRORS:
            pass
        if not behind:
            break
        time.sleep(0.05)
    sup.event("FeedQuiesced", "exchange", sent_through=sent, waited_s=round(time.monotonic() - t0, 3),
              not_on_bus=behind)
    if behind:
        sup.alert("harvest", "trades sent by the feed are not on the bus", missing=behind)
    return behind


def _finish(sup: Supervisor, name: str, timeout_s: float) -> int | None:
    """The worker drains to the marked ends and exits; one that is down drains in a one-off run."""
    if sup.children[name].alive():
        sup.event("DrainStart", name)
        return sup.await_finish(name, timeout_s)
    spec = sup.children[name].spec
    log = Layout(sup.data_root).log_dir(name) / "drain.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sup.event("DrainStart", name, one_off=True)
    with open(log, "ab") as fh:
        proc = spawn(spec.cmd, env=child_environment(spec.env), stdout=fh, stderr=fh, stdin=subprocess.DEVNULL)
        try:
            code: int | None = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            sup.alert(name, "drain timed out", timeout_s=timeout_s)
            proc.kill()
            proc.wait()
            code = None
    sup.children[name].state = "stopped"
    sup.shutdown_order.append(name)
    sup.event("Stop", name, returncode=code, drained=code == 0, one_off=True)
    return code


def landed_ids(data_root: Path, symbol: str) -> pl.Series:
    files = sorted(Layout(Path(data_root)).landing_zone("raw").glob(f"date=*/symbol={symbol}/trades_*.parquet"))
    if not files:
        return pl.Series("agg_trade_id", [], dtype=pl.Int64)
    return pl.concat([pl.read_parquet(p, columns=["agg_trade_id"])["agg_trade_id"] for p in files])


def feed_trades_missing(data_root: Path, symbols: list[str], server: Any) -> dict[str, dict[str, int]]:
    """Per symbol: ids produced in [first landed, last sent] that did not land, and ids landed twice."""
    out = {}
    for sym in symbols:
        ids = landed_ids(data_root, sym)
        sent = server.sent_trade_ids.get(sym)
        produced = server.produced_trade_ids.get(sym) or []
        missing = 0
        if sent:
            lo = whole(ids.min()) if ids.len() else min(produced, default=sent[-1])
            expected = {i for i in produced if lo <= i <= sent[-1]}
            missing = len(expected - set(ids.to_list()))
        out[sym] = {"missing": missing, "doubled": ids.len() - ids.n_unique()}
    return out
