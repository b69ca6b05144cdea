"""What the harvester must remember to resume a symbol's stream exactly: kept in Redis beside it.

``IdRanges`` is the set of trade ids already in the stream, as merged ``[lo, hi]`` ranges (one
range while the feed is complete; a hole is a gap still open or given up). It is the harvester's
guard against doubling a trade: a backfill after a restart or a buffer overflow may fetch ids
that are in the stream already. ``SymbolState`` adds the ingest and dead-letter sequences, the
last book update id and the millisecond parts of the last entry ids (ids never go backwards).
The state of a symbol is written in the same pipeline as its entries, after them, so what Redis
holds is always the state of exactly the entries it holds.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import orjson


class IdRanges:
    def __init__(self, ranges: list[list[int]] | None = None) -> None:
        self.lo: list[int] = [r[0] for r in ranges or []]
        self.hi: list[int] = [r[1] for r in ranges or []]

    def __contains__(self, i: int) -> bool:
        k = bisect.bisect_right(self.lo, i) - 1
        return k >= 0 and i <= self.hi[k]

    def add(self, i: int) -> None:
        if self.hi and i == self.hi[-1] + 1:  # the usual case: the next id
            self.hi[-1] = i
            self._merge(len(self.hi) - 1)
            return
        k = bisect.bisect_right(self.lo, i) - 1
        if k >= 0 and i <= self.hi[k]:
            return
        if k >= 0 and i == self.hi[k] + 1:
            self.hi[k] = i
            self._merge(k)
            return
        self.lo.insert(k + 1, i)
        self.hi.insert(k + 1, i)
        self._merge(k + 1)
        if k >= 0:
            self._merge(k)

    def _merge(self, k: int) -> None:
        while k + 1 < len(self.lo) and self.lo[k + 1] <= self.hi[k] + 1:
            self.hi[k] = max(self.hi[k], self.hi[k + 1])
            del self.lo[k + 1], self.hi[k + 1]

    @property
    def max(self) -> int | None:
        return self.hi[-1] if self.hi else None

    def first_hole(self) -> int | None:
        """The lowest id missing between the first and the last id, None when there is none."""
        return self.hi[0] + 1 if len(self.hi) > 1 else None

    def ranges(self) -> list[list[int]]:
        return [[a, b] for a, b in zip(self.lo, self.hi, strict=True)]


@dataclass
class SymbolState:
    ids: IdRanges = field(default_factory=IdRanges)
    last_update_id: int | None = None
    seq: int = 0  # ingest sequence of the last market event
    dseq: int = 0  # sequence of the last dead letter
    md_ms: int = 0  # millisecond part of the last market entry id
    dlq_ms: int = 0

    def resume_trade_id(self) -> int | None:
        """Where the feed client must believe it is: below the first hole, so it backfills it."""
        hole = self.ids.first_hole()
        return hole - 1 if hole is not None else self.ids.max

    def dumps(self) -> bytes:
        return orjson.dumps({"ids": self.ids.ranges(), "uid": self.last_update_id, "seq": self.seq,
                             "dseq": self.dseq, "md_ms": self.md_ms, "dlq_ms": self.dlq_ms})

    @staticmethod
    def loads(raw: bytes | None) -> SymbolState:
        if not raw:
            return SymbolState()
        d: dict[str, Any] = orjson.loads(raw)
        return SymbolState(IdRanges(d.get("ids")), d.get("uid"), int(d.get("seq", 0)), int(d.get("dseq", 0)),
                           int(d.get("md_ms", 0)), int(d.get("dlq_ms", 0)))
