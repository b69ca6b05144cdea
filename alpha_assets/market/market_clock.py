"""The exchange simulator's market clock: how far the market has run at a moment of the server's clock.

Normally the market runs with the server's clock. A burst (``burst(now_ms, speed, seconds)``) runs
it ``speed`` times faster for a while: the source is asked for ``speed`` seconds of market per second,
so every symbol's trades and books come ``speed`` times as often, with the same ids, prices and order
as without the burst. Event times stay the server's clock (``wall``): the market's times inside the
burst are compressed onto it, and after the burst the market is ahead by (speed − 1) × seconds,
shifted back the same way. The map is piecewise linear and increasing, so its inverse is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Segment:
    wall_ms: int  # from this server time on
    market_ms: float  # the market is here
    speed: float  # and runs this many times as fast


class MarketClock:
    def __init__(self) -> None:
        self._segments: list[_Segment] = []
        self.bursts = 0

    def market(self, wall_ms: int) -> int:
        """Where the market is at server time ``wall_ms``."""
        for seg in reversed(self._segments):
            if wall_ms >= seg.wall_ms:
                return int(seg.market_ms + (wall_ms - seg.wall_ms) * seg.speed)
        return int(wall_ms)

    def wall(self, market_ms: int) -> int:
        """The server time at which the market reaches ``market_ms`` (an event's time on the wire)."""
        for seg in reversed(self._segments):
            if market_ms >= seg.market_ms:
                return int(seg.wall_ms + (market_ms - seg.market_ms) / seg.speed)
        return int(market_ms)

    def restamp(self, row: dict[str, Any], *keys: str) -> None:
        """A row of the market, its times (``keys``) moved to the server's clock."""
        for k in keys:
            if row.get(k) is not None:
                row[k] = self.wall(int(row[k]))

    def warped(self) -> bool:
        return bool(self._segments)

    def _from(self, now_ms: int) -> float:
        m = float(self.market(now_ms))
        self._segments = [s for s in self._segments if s.wall_ms < now_ms]  # what was planned after now goes
        return m

    def burst(self, now_ms: int, speed: float, seconds: float) -> None:
        """From ``now_ms`` the market runs ``speed``× for ``seconds``, then at 1× again."""
        if speed < 1 or seconds <= 0:
            raise ValueError(f"a burst needs speed ≥ 1 and seconds > 0, got speed={speed}, seconds={seconds}")
        m = self._from(now_ms)
        dur = int(seconds * 1000)
        self._segments += [_Segment(now_ms, m, float(speed)), _Segment(now_ms + dur, m + dur * speed, 1.0)]
        self.bursts += 1

    def end_burst(self, now_ms: int) -> None:
        """The market runs at 1× from ``now_ms`` on (a burst still in force ends now)."""
        if self._segments:
            self._segments.append(_Segment(now_ms, self._from(now_ms), 1.0))
