"""A set of exchange ids (trade ids of one symbol) kept as a contiguous prefix plus ranges.

`IdLedger` answers "was this id already emitted / landed?" and "what is missing?" in memory that
grows with the number of *holes*, never with the size of an id jump: ids 1..10 and 1_000_000..
1_000_005 are two ranges, not a million-entry set. Its `prefix` is the highest id up to which
every id is held (or was given up and reported), which is what a restarted harvester resumes
from: the contiguous prefix, not the maximum id.

The id_gap dead letter is the ledger's vocabulary too: `gap_deadletter` writes one, `gap_range`
reads one back (a harvester marks a given-up range as accounted; a gap still open at stop is
reported but stays open, so a restart tries it again).
"""

from __future__ import annotations

import bisect
from typing import Any

import orjson

from alpha_assets.market.schema import dead_letter


class IdLedger:
    def __init__(self, prefix: int | None = None, ranges: list[tuple[int, int]] | None = None) -> None:
        self.prefix = prefix  # every id ≤ prefix is held (None: nothing yet)
        self._lo: list[int] = []  # sorted disjoint ranges above prefix + 1, never touching each other
        self._hi: list[int] = []
        for lo, hi in ranges or []:
            self.add_range(lo, hi)

    # ------------------------------------------------------------------ queries
    @property
    def head(self) -> int | None:
        return self._hi[-1] if self._hi else self.prefix

    def __contains__(self, i: int) -> bool:
        if self.prefix is not None and i <= self.prefix:
            return True
        k = bisect.bisect_right(self._lo, i) - 1
        return k >= 0 and i <= self._hi[k]

    def ranges(self) -> list[tuple[int, int]]:
        """The held ranges above the prefix."""
        return list(zip(self._lo, self._hi, strict=True))

    def holes(self, lo: int | None = None, hi: int | None = None) -> list[tuple[int, int]]:
        """Missing ranges between the prefix and the head (clipped to [lo, hi] when given)."""
        if self.prefix is None:
            return []
        out, start = [], self.prefix + 1
        for a, b in zip(self._lo, self._hi, strict=True):
            if a > start:
                out.append((start, a - 1))
            start = b + 1
        if lo is not None or hi is not None:
            lo = lo if lo is not None else -(2**63)
            hi = hi if hi is not None else 2**63
            out = [(max(a, lo), min(b, hi)) for a, b in out if b >= lo and a <= hi]
        return out

    def missing(self) -> int:
        return sum(b - a + 1 for a, b in self.holes())

    def fragments(self) -> int:
        return len(self._lo)

    # ------------------------------------------------------------------ updates
    def add(self, i: int) -> bool:
        """Hold id `i`; False when it was already held."""
        if i in self:
            return False
        self.add_range(i, i)
        return True

    def add_range(self, lo: int, hi: int) -> None:
        if hi < lo:
            return
        if self.prefix is None:
            self.prefix = lo - 1  # the ledger starts at the first id it is given
        if hi <= self.prefix:
            return
        lo = max(lo, self.prefix + 1)
        # merge with every range it overlaps or touches
        k = bisect.bisect_left(self._hi, lo - 1)
        j = k
        while j < len(self._lo) and self._lo[j] <= hi + 1:
            lo, hi = min(lo, self._lo[j]), max(hi, self._hi[j])
            j += 1
        self._lo[k:j] = [lo]
        self._hi[k:j] = [hi]
        if self._lo[0] == self.prefix + 1:  # the prefix grows over the first range
            self.prefix = self._hi[0]
            del self._lo[0], self._hi[0]

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "ranges": [list(r) for r in self.ranges()]}

    @classmethod
    def from_json(cls, body: Any) -> IdLedger:
        if not isinstance(body, dict):
            return cls()
        prefix = body.get("prefix")
        ranges = body.get("ranges") or []
        ok = [(int(a), int(b)) for a, b in ranges if type(a) is int and type(b) is int]
        return cls(prefix if type(prefix) is int else None, ok)

    def copy(self) -> IdLedger:
        return IdLedger(self.prefix, self.ranges())


def gap_deadletter(symbol: str, lo: int, hi: int, *, stream: str | None, recv_time_ms: int | None,
                   open_at_stop: bool = False, attempts: int = 0) -> dict[str, Any]:
    """The dead letter of trade ids lo..hi that were never received nor backfilled."""
    body = {"missing_from": lo, "missing_to": hi, "count": hi - lo + 1, "attempts": attempts,
            "open_at_stop": open_at_stop}
    return dead_letter("trades", "id_gap", symbol, None, f"{lo}-{hi}", body, stream=stream,
                       recv_time_ms=recv_time_ms)


def gap_range(row: dict[str, Any]) -> tuple[int, int, bool] | None:
    """(lo, hi, final) of an id_gap dead letter; final is False for a gap reported open at stop."""
    if row.get("reason") != "id_gap" or row.get("source") != "trades":
        return None
    try:
        body = orjson.loads(row.get("payload") or "")
        lo, hi = int(body["missing_from"]), int(body["missing_to"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return lo, hi, not body.get("open_at_stop", False)
