"""Execution-event outbox: one JSON line per execution event, published per event-time minute to
``<runtime>/exec_events/<SYM>/exec_YYYYMMDD_HHMM.jsonl`` through ``alpha_assets.sinks.spool.MinuteSpool``
(parts are written under ``<SYM>/spool/`` and renamed into place atomically).

Events are keyed by ``(client_order_id, event)`` so a replay after a crash (re-emitting everything
since the last durable checkpoint) doubles nothing, and ``recover()`` on start finalises whatever a
killed writer left behind. ``ts_ms`` (event time of the signal) dates the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from alpha_assets.layout import RuntimeLayout
from alpha_assets.sinks.spool import MinuteSpool
from alpha_assets.symbols import SYMBOL_RULE, is_symbol
from executors.contract import ExecResult, OrderCtx

EVENT_FIELDS = ("signal_row_id", "client_order_id", "side", "qty", "px_intent", "px_sent", "px_fill",
                "rounding_diff", "slippage_bps", "exchange_order_id", "status", "reason", "sent_ts_ms",
                "ack_ts_ms")
KEY_FIELDS = ("client_order_id", "event")


def signal_row_id(run_id: str, symbol: str, seq: int) -> str:
    """Key of a signal row (run_id, symbol, seq) as one string."""
    return f"{run_id}:{symbol}:{seq}"


def exec_event(ctx: OrderCtx, res: ExecResult, run_id: str = "", event: str = "submit") -> dict[str, Any]:
    return {
        "event": event, "symbol": ctx.symbol, "ts_ms": ctx.ts_ms,
        "signal_row_id": signal_row_id(run_id, ctx.symbol, ctx.signal_seq),
        "client_order_id": res.client_order_id, "side": ctx.side, "qty": res.qty_sent if res.qty_sent else ctx.qty,
        "px_intent": ctx.px_intent, "px_sent": res.px_sent, "px_fill": res.px_fill,
        "rounding_diff": res.rounding_diff, "slippage_bps": res.slippage_bps,
        "exchange_order_id": res.exchange_order_id, "status": res.status, "reason": res.reject_reason,
        "sent_ts_ms": res.sent_ts_ms, "ack_ts_ms": res.ack_ts_ms,
    }


class Outbox:
    """Per-symbol minute spools under ``<runtime_dir>/exec_events``; one writer process at a time."""

    def __init__(self, runtime_dir: Path, fsync: str = "rotate") -> None:
        self.runtime = RuntimeLayout(Path(runtime_dir))
        self.root = self.runtime.exec_events_dir
        self.fsync = fsync
        self.spools: dict[str, MinuteSpool] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            self._spool(d.name)  # recover every symbol a previous writer left behind

    def _spool(self, symbol: str) -> MinuteSpool:
        sp = self.spools.get(symbol)
        if sp is None:
            if not is_symbol(symbol):  # it names a directory
                raise ValueError(f"symbol {symbol!r} must be {SYMBOL_RULE}")
            d = self.runtime.exec_events(symbol)
            sp = MinuteSpool(d / "spool", d, prefix="exec", time_field="ts_ms", key_fields=KEY_FIELDS,
                             fsync=self.fsync)
            self.spools[symbol] = sp
        return sp

    def write(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Append events (each with ``symbol``, ``ts_ms`` and EVENT_FIELDS); returns how many were new."""
        by_sym: dict[str, list[Mapping[str, Any]]] = {}
        for e in events:
            missing = [f for f in ("symbol", "ts_ms", "event", *EVENT_FIELDS) if f not in e]
            if missing:
                raise ValueError(f"execution event lacks fields {missing}")
            by_sym.setdefault(str(e["symbol"]), []).append(e)
        return sum(self._spool(sym).append(evs) for sym, evs in by_sym.items())

    def record(self, ctx: OrderCtx, res: ExecResult, run_id: str = "", event: str = "submit") -> int:
        return self.write([exec_event(ctx, res, run_id, event)])

    def flush(self) -> None:
        """Hand buffered lines to the OS: from here they survive a crash of this process."""
        for sp in self.spools.values():
            sp.flush()

    def close(self) -> None:
        for sp in self.spools.values():
            sp.close()

    def ready_files(self) -> list[Path]:
        return [p for sp in self.spools.values() for p in sp.ready_files()]

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
