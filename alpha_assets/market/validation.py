"""Validation of a live connection's messages: by stream first, then by content.

`MessageValidator.validate(frame, recv_ms)` turns one raw frame into exactly one of
* `Accepted(kind, row, spec)` — a canonical trade or book row of a subscribed stream;
* `Rejected(deadletter)` — a dead-letter row (schema.py) with its reason;
* `None` — a subscription ack (`{"result": ..., "id": ...}` outside any stream), counted by the caller.

Rules, in order (the first broken one is the reason):
1. the frame is at most `max_frame_bytes`, valid UTF-8, JSON, an object, without repeated keys;
2. it has a stream (the combined envelope's, or the connection's own for a raw `/ws/` stream),
   and the stream is one the connection subscribed to (`unsubscribed_stream` otherwise) — the
   stream decides the kind, whatever fields the payload has;
3. the payload's `e` is the stream's event and `s` is exactly the stream's symbol;
4. every field parses strictly (fields.py) and a partial book is a book (book levels sorted,
   unique, positive, 1..N per side, not crossed);
5. event and trade times are plausible: within [recv − max_lag_ms, recv + max_lead_ms] of the
   connection's receive clock (receive time is data), a trade's T within max_trade_skew_ms of
   its E, and E not earlier than the stream's previous accepted E by more than
   max_backwards_ms. The stream's reference is min(E, recv) of what it accepted, so a message
   dated in the future (inside the lead) cannot make the valid ones after it look late.

Id continuity (gaps, duplicates, jumps) needs the connection's history and the REST backfill;
it is the client's (ws_client.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from alpha_assets.market import fields as f
from alpha_assets.market.binance import ParseError, parse_partial_depth, parse_trade
from alpha_assets.market.schema import dead_letter
from alpha_assets.market.streams import StreamSpec, stream_spec, symbol_of_stream

ACK = None  # what validate() returns for a subscription ack


class ValidationConfig(BaseModel):
    """Plausibility bounds of a live message (all in ms of event time vs the receive clock)."""

    model_config = ConfigDict(extra="forbid")
    max_lead_ms: int = Field(10_000, ge=0, le=3_600_000,
                             description="how far an event time may be ahead of the receive clock (clock skew)")
    max_lag_ms: int = Field(600_000, ge=1_000, le=7 * 86_400_000,
                            description="how far an event time may be behind the receive clock (stalls, backlogs)")
    max_backwards_ms: int = Field(5_000, ge=0, le=3_600_000,
                                  description="how far an event time may go back on one stream")
    max_trade_skew_ms: int = Field(10_000, ge=0, le=3_600_000, description="largest |E − T| of a trade or book")
    max_frame_bytes: int = Field(1 << 20, ge=1_024, le=1 << 30,
                                 description="a larger frame is dead-lettered (its head kept) without parsing")


@dataclass(frozen=True, slots=True)
class Accepted:
    kind: str  # trade | book
    row: dict[str, Any]
    spec: StreamSpec


@dataclass(frozen=True, slots=True)
class Rejected:
    deadletter: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.deadletter["reason"])


class MessageValidator:
    """Validates the frames of one subscription (a set of stream names)."""

    def __init__(self, streams: Iterable[str] | None, cfg: ValidationConfig | None = None, combined: bool = True) -> None:
        """`streams`: the subscription; None when it is not known (a URL naming no streams), in
        which case any supported trade or partial-depth stream is taken as subscribed."""
        self.cfg = cfg or ValidationConfig()
        self.specs: dict[str, StreamSpec] | None = None
        if streams is not None:
            self.specs = {}
            for name in streams:
                spec = stream_spec(name)
                if spec is None or spec.kind not in ("trade", "book"):
                    raise ValueError(f"stream {name!r} is not a supported trade or partial-depth stream")
                self.specs[name] = spec
            if not self.specs:
                raise ValueError("at least one stream is required")
        if not combined and (self.specs is None or len(self.specs) != 1):
            raise ValueError("a raw (non-combined) connection carries exactly one stream")
        self.combined = combined
        self._ref_ms: dict[str, int] = {}  # per stream: min(E, recv) of the latest accepted message

    def spec(self, stream: Any) -> StreamSpec | None:
        if self.specs is not None:
            return self.specs.get(stream)
        spec = stream_spec(stream)
        return spec if spec is not None and spec.kind in ("trade", "book") else None

    def reset_times(self) -> None:
        """Forget the per-stream time references (a new session may start with a backlog)."""
        self._ref_ms.clear()

    # -------------------------------------------------------------- the one entry point
    def validate(self, frame: str | bytes, recv_ms: int) -> Accepted | Rejected | None:
        stream: Any = None
        data: Any = None
        spec: StreamSpec | None = None
        try:
            if len(frame) > self.cfg.max_frame_bytes:
                raise ParseError("frame_too_large")
            msg = f.loads(frame)
            if not isinstance(msg, dict):
                raise ParseError("not_object")
            if self.combined:
                if "stream" not in msg and "data" not in msg:
                    if set(msg) == {"result", "id"}:
                        return ACK
                    data = msg
                    raise ParseError("no_stream")
                stream, data = msg.get("stream"), msg.get("data")
                if not isinstance(stream, str) or not isinstance(data, dict):
                    raise ParseError("bad_envelope")
            else:
                if set(msg) == {"result", "id"}:
                    return ACK
                stream, data = next(iter(self.specs or ())), msg
            spec = self.spec(stream)
            if spec is None:
                raise ParseError("unsubscribed_stream")
            e = data.get("e")
            if e != spec.event:
                raise ParseError("missing_field:e" if e is None else "wrong_event")
            s = data.get("s")
            if s != spec.symbol:
                raise ParseError("missing_field:s" if s is None else "symbol_mismatch")
            if spec.kind == "trade":
                row = parse_trade(data, recv_ms)
                self._check_times(spec, row["event_time_ms"], row["trade_time_ms"], recv_ms)
            else:
                row = parse_partial_depth(data, recv_ms, spec.levels)
                t = data.get("T")
                self._check_times(spec, row["event_time_ms"], t if type(t) is int else None, recv_ms)
            return Accepted(spec.kind, row, spec)
        except ParseError as err:
            return Rejected(self._dead(err.reason, frame, stream, data, spec, recv_ms))

    # -------------------------------------------------------------- helpers
    def _check_times(self, spec: StreamSpec, e: int, t: int | None, recv_ms: int) -> None:
        cfg = self.cfg
        if not recv_ms - cfg.max_lag_ms <= e <= recv_ms + cfg.max_lead_ms:
            raise ParseError("bad_time:E")
        if t is not None and abs(e - t) > cfg.max_trade_skew_ms:
            raise ParseError("bad_time:T")
        ref = self._ref_ms.get(spec.name)
        if ref is not None and e < ref - cfg.max_backwards_ms:
            raise ParseError("non_monotone_time:E")
        self._ref_ms[spec.name] = max(ref or 0, min(e, recv_ms))

    def _dead(self, reason: str, frame: Any, stream: Any, data: Any, spec: StreamSpec | None,
              recv_ms: int) -> dict[str, Any]:
        payload = data if isinstance(data, dict) else {}
        symbol = payload.get("s") if isinstance(payload.get("s"), str) else symbol_of_stream(stream)
        known = spec or stream_spec(stream)
        source = known.source if known is not None else "ws"
        id_field = spec.id_field if spec is not None else ("a" if "a" in payload else "u")
        key = payload.get(id_field)
        return dead_letter(source, reason, symbol, payload.get("E"), str(key) if type(key) is int else None,
                           frame, stream=stream, recv_time_ms=recv_ms)
