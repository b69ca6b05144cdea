"""What the harvester must remember to resume a symbol's stream exactly: kept in Redis beside it.

``SymbolState.ledger`` is the `IdLedger` of trade ids the stream holds — plus the id ranges given
up as ``id_gap`` dead letters, which are accounted for. Its contiguous prefix is where a restarted
harvester resumes, never the maximum id: the holes above the prefix (a gap still open at stop, a
stretch lost while Redis was away) are backfilled, and a bogus high id cannot hide the good trades
below it. The ledger is also the guard against doubling a trade: a backfill may fetch ids that
are in the stream already. The state adds the ingest and dead-letter sequences, the last book
update id and the millisecond parts of the last entry ids (ids never go backwards).

The state of a symbol is written in the same pipeline as its entries, after them. Should the
harvester die between the two, ``apply_tail`` brings a loaded state up to the entries written
after it (the stream is the truth; the state is its summary), so a crash between any two writes
neither loses nor doubles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from alpha_assets.live import bus
from alpha_assets.market.id_ledger import IdLedger, gap_range


@dataclass
class SymbolState:
    ledger: IdLedger = field(default_factory=IdLedger)
    last_update_id: int | None = None
    seq: int = 0  # ingest sequence of the last market event
    dseq: int = 0  # sequence of the last dead letter
    md_ms: int = 0  # millisecond part of the last market entry id
    dlq_ms: int = 0

    def note(self, kind: bytes, body: dict[str, Any]) -> None:
        """Account one entry the stream holds (a market event or a dead letter)."""
        if kind == bus.KIND_TRADE:
            self.ledger.add(int(body["agg_trade_id"]))
        elif kind == bus.KIND_BOOK:
            self.last_update_id = max(self.last_update_id or 0, int(body["last_update_id"]))
        elif kind == bus.KIND_DEAD:
            g = gap_range(body)
            if g is not None and g[2]:  # given up: accounted; open at stop: tried again after a restart
                self.ledger.add_range(g[0], g[1])

    def apply_tail(self, md: list[bus.Entry], dlq: list[bus.Entry]) -> int:
        """Entries written after this state was saved; returns how many were applied."""
        n = 0
        for entry_id, fields in md:
            ms, seq = bus.id_parts(entry_id)
            if (ms, seq) <= (self.md_ms, self.seq):
                continue
            kind, body = bus.decode(fields)
            self.note(kind, body)
            self.md_ms, self.seq = ms, seq
            n += 1
        for entry_id, fields in dlq:
            ms, seq = bus.id_parts(entry_id)
            if (ms, seq) <= (self.dlq_ms, self.dseq):
                continue
            kind, body = bus.decode(fields)
            self.note(kind, body)
            self.dlq_ms, self.dseq = ms, seq
            n += 1
        return n

    def dumps(self) -> bytes:
        return orjson.dumps({"ledger": self.ledger.to_json(), "uid": self.last_update_id, "seq": self.seq,
                             "dseq": self.dseq, "md_ms": self.md_ms, "dlq_ms": self.dlq_ms})

    @staticmethod
    def loads(raw: bytes | None) -> SymbolState:
        if not raw:
            return SymbolState()
        d: dict[str, Any] = orjson.loads(raw)
        return SymbolState(IdLedger.from_json(d.get("ledger")), d.get("uid"), int(d.get("seq", 0)),
                           int(d.get("dseq", 0)), int(d.get("md_ms", 0)), int(d.get("dlq_ms", 0)))
