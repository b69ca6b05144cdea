"""The loopback exchange's per-connection state, its counters and its stream names."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection


@dataclass
class Conn:
    ws: ServerConnection
    streams: set[str]
    queue: asyncio.Queue[tuple[bytes, tuple[str, int] | None]]  # (frame, (symbol, trade id) of a trade)
    id: int


@dataclass
class ServerStats:
    connections: int = 0
    drops: int = 0
    malformed_sent: int = 0
    reordered: int = 0
    messages_sent: int = 0
    backfill_requests: int = 0
    stalled_ms: int = 0
    queue_overflow: int = 0
    errors: list[str] = field(default_factory=list)
