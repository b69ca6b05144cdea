"""Id continuity of one symbol's trades and books on a live connection (no I/O here).

Trades (`TradeTracker`): the emitted ids are an `IdLedger`. An id already held is a duplicate
(dead letter). An id inside a hole fills it (out of order). A jump of at most `max_id_jump`
opens a gap — a range, never a set — that the client backfills over REST. A larger jump is not
believed on its own: the message is *held* until the next trade of the symbol decides.
* the next trade continues the old sequence → the held one was bogus: dead letter `id_jump`;
* the next trade continues from the held one → the exchange really moved on: a counted
  resync; a skipped range of up to `max_backfill_gap` ids (a reconnect after a burst) is a gap
  to backfill, a larger one is reported as one `id_gap` dead letter, not backfilled row by row;
* nothing comes for `jump_confirm_s` → dead letter `id_jump` (unconfirmed).

Books (`BookTracker`): partial books are self-contained, so a gap loses nothing but the books
not sent; what matters is that one bogus update id cannot make every later book look stale.
A book that breaks the `pu` chain or jumps by more than `max_id_jump` is held the same way,
and confirmed when the next book follows it rather than the old chain.

Every structure is bounded: one held message per symbol, at most `max_open_gaps` gaps and
`max_fragments` ledger ranges (beyond: the oldest gap is given up and reported — a counted
resync, not an allocation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alpha_assets.market.id_ledger import IdLedger, gap_deadletter
from alpha_assets.market.schema import dead_letter

Emit = Callable[[str, dict[str, Any]], bool]  # (kind, row) → False when the output queue is full
MAX_GAP_LETTERS = 100  # id_gap dead letters per gap; the holes beyond are reported as one range


@dataclass
class Bounds:
    max_id_jump: int
    max_open_gaps: int
    max_fragments: int
    gap_grace_s: float
    backfill_attempts: int
    jump_confirm_s: float
    backfill_skew_ms: int  # how far a backfilled trade's time may be outside its gap's bracket
    max_backfill_gap: int = 0  # a confirmed jump up to this many ids is a gap to backfill, not a resync


@dataclass
class Gap:
    lo: int
    hi: int
    due: float  # monotonic time of the next backfill attempt
    t_lo: int | None  # event time of the trade before the gap
    t_hi: int | None  # event time of the trade that revealed it
    attempts: int = 0
    progressed: bool = False  # the last attempt filled some of its holes


@dataclass
class Held:
    id: int
    row: dict[str, Any]
    raw: Any
    since: float
    prev: int | None = None  # books: the held message's pu


@dataclass
class TrackerLog:
    """What the trackers tell the client: counters (shared) and bounded gap reports."""

    counters: Any
    reports: list[dict[str, Any]] = field(default_factory=list)

    def report(self, **body: Any) -> None:
        self.reports.append(body)
        if len(self.reports) > 1000:
            del self.reports[:-500]


class TradeTracker:
    def __init__(self, symbol: str, stream: str, bounds: Bounds, log: TrackerLog, emit: Emit) -> None:
        self.symbol, self.stream, self.b, self.log, self._emit = symbol, stream, bounds, log, emit
        self.c = log.counters
        self.ledger = IdLedger()
        self.gaps: list[Gap] = []
        self.held: Held | None = None
        self.last_e: int | None = None
        # After a reconnect: when to ask REST what came after the last trade, unless a live trade
        # comes first (it reveals any gap itself). Trades sent while the connection was down with
        # nothing after them (the market went quiet, the run ends) would otherwise go unnoticed.
        self.tail_probe: float | None = None

    # ------------------------------------------------------------------ live trades
    def on_trade(self, row: dict[str, Any], raw: Any, now: float) -> None:
        self.tail_probe = None
        tid = row["agg_trade_id"]
        if tid in self.ledger or (self.held is not None and tid == self.held.id):
            self.c.duplicates += 1
            self._dead("duplicate", row, raw)
            return
        head = self.ledger.head
        if head is not None and tid <= head:
            if self._accept(row):
                self.c.out_of_order += 1
                self._filled(tid)
            return
        if head is None or tid - head <= self.b.max_id_jump:
            self._drop_held("id_jump")  # the old sequence goes on: the held jump was bogus
            if head is not None and tid > head + 1:
                self._open_gap(head + 1, tid - 1, row["event_time_ms"], now)
            if self._accept(row):
                self.last_e = row["event_time_ms"]
            return
        held = self.held
        if held is not None and held.id < tid <= held.id + self.b.max_id_jump:
            self.held = None
            self.c.resyncs += 1
            if held.id - 1 - head <= self.b.max_backfill_gap:
                # a reconnect after a burst jumps far, and the exchange still serves what was missed
                self._open_gap(head + 1, held.id - 1, held.row["event_time_ms"], now)
            else:
                self._give_up(Gap(head + 1, held.id - 1, now, self.last_e, held.row["event_time_ms"]), resync=True)
            if self._accept(held.row):
                self.last_e = held.row["event_time_ms"]
            self.on_trade(row, raw, now)
            return
        self._drop_held("id_jump")
        self.c.id_jumps += 1
        self.held = Held(tid, row, raw, now)

    def _accept(self, row: dict[str, Any]) -> bool:
        if not self._emit("trade", row):
            return False  # the queue is full: not held, so the id comes back as a gap to backfill
        self.ledger.add(row["agg_trade_id"])
        self.c.trades += 1
        return True

    def _dead(self, reason: str, row: dict[str, Any], raw: Any) -> None:
        self.c.deadletter += 1
        self._emit("deadletter", dead_letter("trades", reason, row.get("symbol"), row.get("event_time_ms"),
                                             str(row.get("agg_trade_id")), raw, stream=self.stream,
                                             recv_time_ms=row.get("recv_time_ms")))

    def _drop_held(self, reason: str) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            self._dead(reason, held.row, held.raw)

    def expire(self, now: float) -> None:
        if self.held is not None and now - self.held.since >= self.b.jump_confirm_s:
            self._drop_held("id_jump")

    # ------------------------------------------------------------------ gaps
    def arm_tail_probe(self, now: float) -> None:
        if self.ledger.head is not None:
            self.tail_probe = now + self.b.gap_grace_s

    def open_tail_gap(self, hi: int, t_hi: int, now: float) -> Gap:
        """The ids after the last trade up to `hi`, which REST served and the stream never did."""
        assert self.ledger.head is not None
        self._open_gap(self.ledger.head + 1, hi, t_hi, now)
        return self.gaps[-1]

    def _open_gap(self, lo: int, hi: int, t_hi: int | None, now: float) -> None:
        self.c.trade_gaps += 1
        self.c.gap_trades_missing += hi - lo + 1
        self.gaps.append(Gap(lo, hi, now + self.b.gap_grace_s, self.last_e, t_hi))
        while len(self.gaps) > self.b.max_open_gaps or (
                self.ledger.fragments() > self.b.max_fragments and len(self.gaps) > 1):
            self.c.gap_overflow += 1
            self._give_up(self.gaps.pop(0))

    def _filled(self, tid: int) -> None:
        for gap in self.gaps:
            if gap.lo <= tid <= gap.hi:
                self.c.gap_trades_filled += 1
                if not self.ledger.holes(gap.lo, gap.hi):
                    self.gaps.remove(gap)
                    self.log.report(symbol=self.symbol, from_id=gap.lo, to_id=gap.hi, filled=True,
                                    attempts=gap.attempts)
                return

    def due(self, now: float, force: bool = False) -> list[Gap]:
        return [g for g in self.gaps if force or g.due <= now]

    def backfilled(self, gap: Gap, row: dict[str, Any], raw: Any) -> str:
        """Offer one REST trade for `gap`: "filled", "outside" (not an id of its holes) or "dead"."""
        tid = row["agg_trade_id"]
        if not gap.lo <= tid <= gap.hi or tid in self.ledger:
            return "outside"
        t, skew = row["event_time_ms"], self.b.backfill_skew_ms
        if (gap.t_lo is not None and t < gap.t_lo - skew) or (gap.t_hi is not None and t > gap.t_hi + skew):
            self._dead("bad_time:T", row, raw)  # not inside the bracket of the trades around the gap
            return "dead"
        if not self._accept(row):
            return "outside"
        gap.progressed = True
        self.c.gap_trades_filled += 1
        return "filled"

    def after_attempt(self, gap: Gap, now: float) -> None:
        if gap not in self.gaps:
            return
        if not self.ledger.holes(gap.lo, gap.hi):
            self.gaps.remove(gap)
            self.log.report(symbol=self.symbol, from_id=gap.lo, to_id=gap.hi, filled=True, attempts=gap.attempts)
        elif gap.progressed:
            # a big gap (a burst the connection could not carry) takes many page-bounded attempts:
            # one that filled holes is not a failure, and the next goes at once
            gap.attempts -= 1
            gap.progressed = False
            gap.due = now
        elif gap.attempts >= self.b.backfill_attempts:
            self.gaps.remove(gap)
            self._give_up(gap)
        else:
            gap.due = now + self.b.gap_grace_s * (2 ** gap.attempts)

    def _give_up(self, gap: Gap, resync: bool = False, open_at_stop: bool = False) -> None:
        """Report the gap's remaining holes as id_gap dead letters. Given-up holes count as
        accounted in the ledger; holes still open at stop do not, so a restart tries them again."""
        holes = [(gap.lo, gap.hi)] if resync else self.ledger.holes(gap.lo, gap.hi)
        if len(holes) > MAX_GAP_LETTERS:
            holes = holes[: MAX_GAP_LETTERS - 1] + [(holes[MAX_GAP_LETTERS - 1][0], holes[-1][1])]
        lost = 0
        for lo, hi in holes:
            lost += hi - lo + 1
            self.c.deadletter += 1
            self._emit("deadletter", gap_deadletter(self.symbol, lo, hi, stream=self.stream,
                                                    recv_time_ms=None, open_at_stop=open_at_stop,
                                                    attempts=gap.attempts))
            if not open_at_stop:
                self.ledger.add_range(lo, hi)
        self.c.gap_trades_unfilled += lost
        self.log.report(symbol=self.symbol, from_id=gap.lo, to_id=gap.hi, filled=False, unfilled=lost,
                        resync=resync, open_at_stop=open_at_stop)

    def close(self) -> None:
        """At stop: a held jump and every gap still open are dead-lettered (never silent)."""
        self._drop_held("id_jump")
        for gap in list(self.gaps):
            self.gaps.remove(gap)
            self._give_up(gap, open_at_stop=True)

    def open_ids(self) -> int:
        return (sum(b - a + 1 for g in self.gaps for a, b in self.ledger.holes(g.lo, g.hi))
                + (self.held is not None) + (self.tail_probe is not None))

    def seed(self, ledger: IdLedger, now: float) -> None:
        """Resume from a ledger of what is durable: its holes become gaps to backfill now."""
        self.ledger = ledger.copy()
        self.gaps = [Gap(lo, hi, now, None, None) for lo, hi in self.ledger.holes()]
        while len(self.gaps) > self.b.max_open_gaps:  # more holes than we track: the oldest are reported
            self.c.gap_overflow += 1
            self._give_up(self.gaps.pop(0))


class BookTracker:
    def __init__(self, symbol: str, stream: str, bounds: Bounds, log: TrackerLog, emit: Emit) -> None:
        self.symbol, self.stream, self.b, self.log, self._emit = symbol, stream, bounds, log, emit
        self.c = log.counters
        self.last: int | None = None
        self.held: Held | None = None

    def on_book(self, row: dict[str, Any], raw: Any, now: float) -> None:
        u, pu = row["last_update_id"], row["prev_last_update_id"]
        held = self.held
        if held is not None and (self.last is None or u > self.last):
            # the next book decides: it follows the held one (the exchange's chain really moved
            # on) or it continues the old chain (the held one was bogus)
            self.held = None
            follows = pu == held.id if pu is not None else u - held.id <= self.b.max_id_jump
            if u > held.id and (follows or pu != self.last):
                self._accept(held.row, held.prev)
            else:
                self._dead("id_jump", held.row, held.raw)
        if self.last is not None and u <= self.last:
            self._dead("duplicate", row, raw)
            return
        if self.last is None or (u - self.last <= self.b.max_id_jump and (pu is None or pu == self.last)):
            self._accept(row, pu)
        else:
            self.c.id_jumps += pu is None or u - self.last > self.b.max_id_jump
            self.held = Held(u, row, raw, now, pu)

    def _accept(self, row: dict[str, Any], pu: int | None) -> None:
        if self.last is not None and pu is not None and pu != self.last:
            # a partial book is self-contained: the gap is counted and reported, the row kept
            self.c.book_gaps += 1
            self.log.report(symbol=self.symbol, kind="book", from_id=self.last, to_id=pu, filled=False)
        if not self._emit("book", row):
            return
        self.last = row["last_update_id"]
        self.c.books += 1

    def _dead(self, reason: str, row: dict[str, Any], raw: Any) -> None:
        self.c.deadletter += 1
        self._emit("deadletter", dead_letter("book", reason, row.get("symbol"), row.get("event_time_ms"),
                                             str(row.get("last_update_id")), raw, stream=self.stream,
                                             recv_time_ms=row.get("recv_time_ms")))

    def expire(self, now: float, final: bool = False) -> None:
        """A held book nobody followed: kept if it only broke the chain (the next book may just be
        late), dead-lettered if it also jumped."""
        held = self.held
        if held is None or (not final and now - held.since < self.b.jump_confirm_s):
            return
        self.held = None
        if self.last is None or held.id - self.last <= self.b.max_id_jump:
            self._accept(held.row, held.prev)
        else:
            self._dead("id_jump", held.row, held.raw)
