"""Injecting the malformed catalogue into a feed, and checking dead letters against the record.

`MalformedPlan` is the exchange simulator's `malformed` knob (validated at load time): a
`rate` per outgoing market message, the `kinds` drawn from (default: every kind that keeps the
connection up), a seed. `Injector` applies it to the messages the server sends and keeps a
record of every injection (tag, kind, class, expected outcome and reasons, stream, template id).
`match_deadletters(record, deadletters)` says which injections left the dead letter they
should have, which did not, and which dead letters no injection explains — what a soak or a
test compares.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alpha_assets.market.malformed import IN_BAND, KINDS, ROTATION, Ctx, Kind

RECORD_MAX = 200_000
# where a tag sits: the envelope's first key, or the first bytes of a frame that is not an object
_TAG = re.compile(r'"x_inj"\s*:\s*"(I\d+)"|^\[?"?(I\d+)[" ]')


class MalformedPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float = Field(0.0, ge=0, le=1, description="share of outgoing market messages that get a malformed kind")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    kinds: list[str] = Field(default_factory=list, description="kinds to draw from; empty: every in-band kind")
    large_bytes: int = Field(3 << 19, ge=1_024, le=1 << 30, description="size of an oversize (dead-lettered) frame")
    huge_bytes: int = Field(17 << 20, ge=1_024, le=1 << 31, description="size of a frame that closes the connection")
    schedule: dict[int, str] = Field(default_factory=dict,
                                     description="message ordinal (0-based, every market message sent) → kind")

    @field_validator("kinds")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if k not in KINDS]
        if bad:
            raise ValueError(f"unknown malformed kinds {bad}; see alpha_assets.market.malformed.KINDS")
        return v

    @field_validator("schedule")
    @classmethod
    def _scheduled(cls, v: dict[int, str]) -> dict[int, str]:
        bad = [k for k in v.values() if k not in KINDS]
        if bad:
            raise ValueError(f"unknown malformed kinds {bad}; see alpha_assets.market.malformed.KINDS")
        return v


@dataclass
class Injector:
    plan: MalformedPlan
    symbols: list[str]
    record: list[dict[str, Any]] = field(default_factory=list)
    dropped_records: int = 0
    build_errors: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.plan.seed)
        self._kinds = [KINDS[k] for k in (self.plan.kinds or IN_BAND)]
        self._forced: list[Kind] = []
        self._seen: Counter[str] = Counter()
        self._n = 0
        self._ordinal = 0

    def set_plan(self, plan: MalformedPlan) -> None:
        """Another rate/kinds from now on; forced injections are dropped, the record is kept."""
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._kinds = [KINDS[k] for k in (plan.kinds or IN_BAND)]
        self._forced = []

    def force(self, n: int, kinds: Iterable[str] | None = None) -> None:
        """The next `n` eligible messages each get one kind, in turn from `kinds` (default: the
        plan's kinds, or every in-band kind class after class)."""
        pool = [KINDS[k] for k in (kinds or self.plan.kinds or ROTATION)]
        start = len(self._forced) + self._n
        self._forced += [pool[(start + i) % len(pool)] for i in range(n)]

    def on_connect(self) -> None:
        """A new connection: its first message of each stream is never corrupted (the client has
        nothing yet to tell a bogus id or time from a real one)."""
        self._seen.clear()

    def frames(self, stream: str, symbol: str, payload: dict[str, Any], frame: bytes, now_ms: int) -> tuple[list[bytes], bool]:
        """The frames to send for one market message and whether the real one is among them."""
        template = "book" if payload.get("e") == "depthUpdate" else "trade"
        first = self._seen[stream] == 0
        self._seen[stream] += 1
        ordinal, self._ordinal = self._ordinal, self._ordinal + 1
        if first:
            return [frame], True
        k = self._pick(template, payload, ordinal)
        if k is None:
            return [frame], True
        self._n += 1
        tag = f"I{self._n}"
        others = [s for s in self.symbols if s != symbol]
        ctx = Ctx(stream, payload, now_ms, tag, others[0] if others else "ETHUSDT" if symbol != "ETHUSDT" else "BTCUSDT",
                  self.plan.large_bytes, self.plan.huge_bytes, self._rng)
        try:
            bad = k.build(ctx)
        except (KeyError, IndexError, TypeError, ValueError):
            self.build_errors += 1
            return [frame], True
        if len(self.record) < RECORD_MAX:
            self.record.append({"tag": tag, "kind": k.name, "cls": k.cls, "outcome": k.outcome,
                                "reasons": list(k.reasons), "mode": k.mode, "tagged": k.tagged, "stream": stream,
                                "symbol": symbol, "template_id": payload.get("u" if template == "book" else "a"), "at_ms": now_ms})
        else:
            self.dropped_records += 1
        if k.mode == "replace":
            return [bad], False
        return ([bad, frame] if k.mode == "before" else [frame, bad]), True

    def _pick(self, template: str, payload: dict[str, Any], ordinal: int) -> Kind | None:
        def fits(k: Kind) -> bool:
            if k.template != template:
                return False
            return not k.min_levels or min(len(payload.get("b", [])), len(payload.get("a", []))) >= k.min_levels

        if self._forced:
            for i, k in enumerate(self._forced):
                if fits(k):
                    return self._forced.pop(i)
            return None
        if ordinal in self.plan.schedule:
            k = KINDS[self.plan.schedule[ordinal]]
            return k if fits(k) else None
        if self.plan.rate <= 0 or self._rng.random() >= self.plan.rate:
            return None
        pool = [k for k in self._kinds if fits(k)]
        return self._rng.choice(pool) if pool else None


def tag_of(deadletter: dict[str, Any]) -> str | None:
    m = _TAG.search(deadletter.get("payload") or "")
    return (m[1] or m[2]) if m else None


@dataclass
class MatchReport:
    matched: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)  # injections without their dead letter
    wrong_reason: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    landed_as_dead: list[dict[str, Any]] = field(default_factory=list)  # valid kinds that were dead-lettered
    unexpected: list[dict[str, Any]] = field(default_factory=list)  # dead letters no injection explains

    @property
    def ok(self) -> bool:
        return not (self.missing or self.wrong_reason or self.landed_as_dead or self.unexpected)

    def summary(self) -> dict[str, Any]:
        return {"matched": self.matched, "missing": [r["kind"] for r in self.missing][:50],
                "wrong_reason": [(r["kind"], got) for r, got in self.wrong_reason][:50],
                "landed_as_dead": [r["kind"] for r in self.landed_as_dead][:50],
                "unexpected": Counter(str(d.get("reason")) for d in self.unexpected).most_common(20)}


def match_deadletters(record: list[dict[str, Any]], deadletters: Iterable[dict[str, Any]]) -> MatchReport:
    """Every dead-outcome injection must have left exactly one dead letter with an expected reason
    (found by its tag; untagged ones by reason), every valid one none, and every dead letter must
    come from an injection."""
    rep = MatchReport()
    by_tag: dict[str, list[dict[str, Any]]] = {}
    untagged: list[dict[str, Any]] = []
    for d in deadletters:
        t = tag_of(d)
        (by_tag.setdefault(t, []) if t else untagged).append(d)
    waiting: Counter[tuple[str, ...]] = Counter()
    for r in record:
        got = by_tag.pop(r["tag"], [])
        if r["outcome"] == "valid":
            if got:
                rep.landed_as_dead.append(r)
                rep.unexpected += got[1:]
            continue
        if not r["tagged"]:
            waiting[tuple(r["reasons"])] += 1
            continue
        if not got:
            rep.missing.append(r)
            continue
        if got[0]["reason"] not in r["reasons"]:
            rep.wrong_reason.append((r, str(got[0]["reason"])))
        else:
            rep.matched += 1
        rep.unexpected += got[1:]
    for rest in by_tag.values():
        rep.unexpected += rest
    for d in untagged:
        key = next((k for k in waiting if waiting[k] and d.get("reason") in k), None)
        if key is None:
            rep.unexpected.append(d)
        else:
            waiting[key] -= 1
            rep.matched += 1
    for key, n in waiting.items():
        rep.missing += [{"kind": f"untagged{list(key)}"}] * n
    return rep
