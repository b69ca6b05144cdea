"""When the loopback exchange sent each trade: data for the live path's latency figures."""

from __future__ import annotations

from array import array


class SendTimes:
    """Send time (ns) per trade id of one symbol, compact: ids are dense, so an array from the first."""

    def __init__(self) -> None:
        self.base: int | None = None
        self.ns = array("q")

    def set(self, trade_id: int, ns: int, *, only_if_unset: bool = False) -> None:
        if self.base is None:
            self.base = trade_id
        i = trade_id - self.base
        if i < 0:
            return  # older than the first trade sent: not ours to time
        if i >= len(self.ns):
            self.ns.extend([0] * (i + 1 - len(self.ns)))
        if not (only_if_unset and self.ns[i]):
            self.ns[i] = ns

    def get(self, trade_id: int) -> int | None:
        if self.base is None:
            return None
        i = trade_id - self.base
        return self.ns[i] or None if 0 <= i < len(self.ns) else None
