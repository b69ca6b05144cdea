"""The catalogue of hostile Binance messages the exchange simulator can inject (~140 kinds).

Each kind corrupts one real outgoing message of its template (a trade or a book) and is sent
`before` it, `after` it, or `replace`-ing it. Its `outcome` says what a correct harvester does:
* "dead": exactly one dead letter, with one of `reasons` (a replaced trade then comes back
  through the gap backfill, so nothing valid is lost);
* "valid": the message is unusual but valid (extra fields, whitespace, escapes): it must land;
* "resync": a frame over the client's WebSocket size limit: the connection is closed, counted
  and dead-lettered, the client reconnects and backfills the gap.

Every frame that can carry it holds its injection tag (`"x_inj": "I<n>"`, first key of the
envelope, or the first bytes of a non-JSON frame), so a dead letter's head names the injection
it came from; the few that cannot (empty frames, bare numbers, a frame too big to keep a head)
are matched by reason. Classes: frame, envelope, routing, event, symbol, number, id, time, book,
valid, replace.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class Ctx:
    stream: str
    data: dict[str, Any]
    now_ms: int
    tag: str
    other_symbol: str  # another symbol the feed serves (or a plausible one)
    large_bytes: int  # a frame above the client's dead-letter size, below its connection limit
    huge_bytes: int  # a frame above the client's connection limit
    rng: random.Random = field(default_factory=random.Random)

    @property
    def sym(self) -> str:
        return self.stream.split("@", 1)[0]


Build = Callable[[Ctx], bytes]


@dataclass(frozen=True)
class Kind:
    name: str
    cls: str
    template: str  # trade | book
    mode: str  # before | after | replace
    outcome: str  # dead | valid | resync
    reasons: tuple[str, ...]
    build: Build
    tagged: bool = True
    min_levels: int = 0  # book kinds that need this many levels per side in their template


def env(stream: Any, data: Any, tag: str) -> bytes:
    body = {"x_inj": tag, "stream": stream, "data": data}
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # integers beyond 64 bits: the stdlib writes them
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def put(**changes: Any) -> Build:
    """The template payload with fields set (a callable value gets (template data, ctx)) or removed (...)."""
    def build(c: Ctx) -> bytes:
        d = dict(c.data)
        for k, v in changes.items():
            if v is ...:
                d.pop(k, None)
            else:
                d[k] = v(c.data, c) if callable(v) else v
        return env(c.stream, d, c.tag)
    return build


def raw(fn: Callable[[Ctx, bytes], bytes]) -> Build:
    """A transformation of the template's tagged frame bytes."""
    return lambda c: fn(c, env(c.stream, c.data, c.tag))


def _book(c: Ctx) -> dict[str, Any]:
    return {"e": "depthUpdate", "E": c.data["E"], "T": c.data["E"], "s": c.data["s"], "U": 5, "u": 9, "pu": 4,
            "b": [["100.0", "1.0"]], "a": [["100.1", "1.0"]]}


def _trade(c: Ctx) -> dict[str, Any]:
    return {"e": "aggTrade", "E": c.data["E"], "a": 1, "s": c.data["s"], "p": "100.0", "q": "1.0", "f": 1,
            "l": 1, "T": c.data["E"], "m": False}


def _dup_key(key: str, value: bytes) -> Build:
    return raw(lambda c, b: b.replace(b'"data":{', b'"data":{"' + key.encode() + b'":' + value + b",", 1))


def _pad(size_attr: str) -> Build:
    return lambda c: env(c.stream, {**c.data, "pad": "x" * getattr(c, size_attr)}, c.tag)


def _levels(side: str, fn: Callable[[list[list[str]]], Any]) -> Build:
    return put(**{side: lambda d, c: fn([list(lv) for lv in d[side]])})


def _pretty(c: Ctx) -> bytes:
    return orjson.dumps({"x_inj": c.tag, "stream": c.stream, "data": c.data}, option=orjson.OPT_INDENT_2)


K: list[Kind] = []


def kind(name: str, cls: str, template: str, mode: str, outcome: str, reasons: str | tuple[str, ...],
         build: Build, tagged: bool = True, min_levels: int = 0) -> None:
    K.append(Kind(name, cls, template, mode, outcome, (reasons,) if isinstance(reasons, str) else reasons,
                  build, tagged, min_levels))


def dead(name: str, cls: str, reasons: str | tuple[str, ...], build: Build, template: str = "trade",
         mode: str = "after", tagged: bool = True, min_levels: int = 0) -> None:
    kind(name, cls, template, mode, "dead", reasons, build, tagged, min_levels)


# ---------------------------------------------------------------- frame (bytes on the wire)
dead("not_json", "frame", "bad_json", lambda c: f"{c.tag} not json at all".encode())
dead("truncated_json", "frame", "bad_json", raw(lambda c, b: b[: max(24, len(b) // 2)]))
dead("empty_frame", "frame", "bad_json", lambda c: b"", tagged=False)
dead("whitespace_frame", "frame", "bad_json", lambda c: b" \n\t ", tagged=False)
dead("invalid_utf8", "frame", "bad_utf8", raw(lambda c, b: b.replace(b'"s":"', b'"s":"\xff\xfe', 1)))
dead("utf8_bom", "frame", "bad_json", raw(lambda c, b: b"\xef\xbb\xbf" + b))
dead("nul_suffix", "frame", "bad_json", raw(lambda c, b: b + b"\x00"))
dead("trailing_garbage", "frame", "bad_json", raw(lambda c, b: b + b"xyz"))
dead("two_objects", "frame", "bad_json", raw(lambda c, b: b + b))
dead("json_array", "frame", "not_object", lambda c: orjson.dumps([c.tag, 1, 2]))
dead("json_string", "frame", "not_object", lambda c: orjson.dumps(c.tag))
dead("json_number", "frame", "not_object", lambda c: b"42", tagged=False)
dead("json_null", "frame", "not_object", lambda c: b"null", tagged=False)
dead("deep_nesting", "frame", "bad_json", lambda c: b'{"x_inj":"' + c.tag.encode() + b'","d":' + b"[" * 2000 + b"]" * 2000 + b"}")
dead("nan_literal", "frame", "bad_json", raw(lambda c, b: b.replace(b'"p":"', b'"p":NaN,"pp":"', 1)))
dead("random_bytes", "frame", ("bad_utf8", "bad_json"), lambda c: c.tag.encode() + b" " + c.rng.randbytes(64))
dead("oversize_frame", "frame", "frame_too_large", _pad("large_bytes"))
kind("oversize_disconnect", "frame", "trade", "before", "resync", "frame_too_large", _pad("huge_bytes"), tagged=False)

# ---------------------------------------------------------------- envelope
dead("missing_data", "envelope", "bad_envelope", lambda c: orjson.dumps({"x_inj": c.tag, "stream": c.stream}))
dead("data_array", "envelope", "bad_envelope", lambda c: env(c.stream, [1], c.tag))
dead("data_string", "envelope", "bad_envelope", lambda c: env(c.stream, "data", c.tag))
dead("data_null", "envelope", "bad_envelope", lambda c: env(c.stream, None, c.tag))
dead("stream_number", "envelope", "bad_envelope", lambda c: env(5, c.data, c.tag))
dead("stream_null", "envelope", "bad_envelope", lambda c: env(None, c.data, c.tag))
dead("no_envelope", "envelope", "no_stream", lambda c: orjson.dumps({"x_inj": c.tag, **c.data}))
dead("tag_only_object", "envelope", "no_stream", lambda c: orjson.dumps({"x_inj": c.tag}))
dead("ack_with_extra_key", "envelope", "no_stream", lambda c: orjson.dumps({"result": None, "id": 1, "x_inj": c.tag}))
dead("nested_envelope", "envelope", "missing_field:e", lambda c: env(c.stream, {"stream": c.stream, "data": c.data}, c.tag))

# ---------------------------------------------------------------- routing: the stream decides, not the shape
dead("ack_on_trade_stream", "routing", "missing_field:e", lambda c: env(c.stream, {"result": None, "id": 1}, c.tag))
dead("snapshot_on_trade_stream", "routing", "missing_field:e", lambda c: env(
    c.stream, {"lastUpdateId": 5, "bids": [["1.0", "1"]], "asks": [["1.1", "1"]]}, c.tag))
dead("ack_on_depth_stream", "routing", "missing_field:e", lambda c: env(c.stream, {"result": None, "id": 7}, c.tag), "book")
dead("snapshot_on_depth_stream", "routing", "missing_field:e", lambda c: env(
    c.stream, {"lastUpdateId": 5, "bids": [["1.0", "1"]], "asks": [["1.1", "1"]]}, c.tag), "book")
dead("depth_on_trade_stream", "routing", "wrong_event", lambda c: env(c.stream, _book(c), c.tag))
dead("trade_on_depth_stream", "routing", "wrong_event", lambda c: env(c.stream, _trade(c), c.tag), "book")
dead("raw_trade_on_aggtrade_stream", "routing", "wrong_event", put(e="trade", t=lambda d, c: d["a"]))
dead("ticker_on_trade_stream", "routing", "wrong_event", put(e="bookTicker"))
dead("kline_stream", "routing", "unsubscribed_stream", lambda c: env(f"{c.sym}@kline_1m", c.data, c.tag))
dead("unsubscribed_symbol_stream", "routing", "unsubscribed_stream",
     lambda c: env("dogeusdt@aggTrade", {**c.data, "s": "DOGEUSDT"}, c.tag))
dead("stream_upper_case", "routing", "unsubscribed_stream", lambda c: env(c.stream.upper(), c.data, c.tag))
dead("stream_trailing_space", "routing", "unsubscribed_stream", lambda c: env(c.stream + " ", c.data, c.tag))
dead("unsubscribed_depth_stream", "routing", "unsubscribed_stream",
     lambda c: env(f"{c.sym}@depth10@100ms", c.data, c.tag), "book")

# ---------------------------------------------------------------- event type
dead("missing_e", "event", "missing_field:e", put(e=...))
dead("unknown_e", "event", "wrong_event", put(e="kline"))
dead("numeric_e", "event", "wrong_event", put(e=5))
dead("lower_case_e", "event", "wrong_event", put(e="aggtrade"))
dead("book_missing_e", "event", "missing_field:e", put(e=...), "book")

# ---------------------------------------------------------------- symbol
dead("symbol_of_other_stream", "symbol", "symbol_mismatch", put(s=lambda d, c: c.other_symbol))
dead("symbol_trailing_space", "symbol", "symbol_mismatch", put(s=lambda d, c: d["s"] + " "))
dead("symbol_lower_case", "symbol", "symbol_mismatch", put(s=lambda d, c: d["s"].lower()))
dead("symbol_missing", "symbol", "missing_field:s", put(s=...))
dead("symbol_number", "symbol", "symbol_mismatch", put(s=1))
dead("symbol_empty", "symbol", "symbol_mismatch", put(s=""))
dead("symbol_unsubscribed", "symbol", "symbol_mismatch", put(s="DOGEUSDT"))
dead("book_symbol_of_other_stream", "symbol", "symbol_mismatch", put(s=lambda d, c: c.other_symbol), "book")

# ---------------------------------------------------------------- numbers
for _name, _value, _reason in [
    ("underscore", lambda d, c: d["p"][:2] + "_" + d["p"][2:], "bad_number"),
    ("exponent", lambda d, c: f"{float(d['p']):e}", "bad_number"), ("nan", "NaN", "bad_number"),
    ("infinity", "Infinity", "bad_number"), ("negative", lambda d, c: "-" + d["p"], "bad_value"),
    ("zero", "0.0", "bad_value"), ("empty", "", "bad_number"), ("leading_space", lambda d, c: " " + d["p"], "bad_number"),
    ("json_float", lambda d, c: float(d["p"]), "bad_number"), ("full_width", "６５０１２.３", "bad_number"),
    ("hex", "0x10", "bad_number"), ("two_dots", "1.2.3", "bad_number"), ("plus_sign", lambda d, c: "+" + d["p"], "bad_number"),
    ("huge", "1" + "0" * 400, "bad_number"), ("null", None, "missing_field"),
]:
    dead(f"price_{_name}", "number", f"{_reason}:p", put(p=_value))
for _name, _value, _reason in [("nan", "nan", "bad_number"), ("zero", "0", "bad_value"),
                               ("negative", "-1.5", "bad_value"), ("underscore", "1_000", "bad_number"),
                               ("missing", ..., "missing_field")]:
    dead(f"qty_{_name}", "number", f"{_reason}:q", put(q=_value))
dead("maker_string", "number", "bad_value:m", put(m="true"))
dead("maker_number", "number", "bad_value:m", put(m=1))
dead("duplicate_key_price_nan", "number", "duplicate_key", _dup_key("p", b'"NaN"'))
dead("duplicate_key_symbol", "number", "duplicate_key", _dup_key("s", b'"ETHUSDT"'))
dead("duplicate_key_stream", "number", "duplicate_key",
     raw(lambda c, b: b.replace(b'"stream":', b'"stream":"ethusdt@aggTrade","stream":', 1)))
dead("book_duplicate_key_levels", "number", "duplicate_key", _dup_key("b", b'[["1.0","1.0"]]'), "book")

# ---------------------------------------------------------------- ids
for _name, _value, _reason in [
    ("string", lambda d, c: str(d["a"]), "bad_number"), ("float", lambda d, c: d["a"] + 0.5, "bad_number"),
    ("negative", lambda d, c: -d["a"], "bad_value"), ("bool", True, "bad_number"),
    ("beyond_int64", 2**63 + 7, "bad_number"), ("beyond_uint64", 2**64 + 1, "bad_number"), ("missing", ..., "missing_field"),
]:
    dead(f"id_{_name}", "id", f"{_reason}:a", put(a=_value))
dead("id_jump_million", "id", "id_jump", put(a=lambda d, c: d["a"] + 1_000_000), mode="before")
dead("id_jump_2_62", "id", "id_jump", put(a=lambda d, c: d["a"] + 2**62), mode="before")
dead("duplicate_trade", "id", "duplicate", lambda c: env(c.stream, c.data, c.tag))
dead("id_far_past", "id", "duplicate", put(a=lambda d, c: max(0, d["a"] - 1_000_000)))
dead("book_update_id_jump_million", "id", "id_jump", put(
    u=lambda d, c: d["u"] + 1_000_000, U=lambda d, c: d["u"] + 1_000_000), "book", mode="before")
dead("book_chain_break", "id", "id_jump", put(pu=lambda d, c: d["pu"] - 3), "book", mode="before")
dead("duplicate_book", "id", "duplicate", lambda c: env(c.stream, c.data, c.tag), "book")
dead("book_update_id_string", "id", "bad_number:u", put(u=lambda d, c: str(d["u"])), "book")
dead("book_first_id_above_last", "id", "bad_value:u", put(U=lambda d, c: d["u"] + 5), "book")

# ---------------------------------------------------------------- times (the receive clock is the reference)
for _name, _value, _reason in [
    ("zero", 0, "bad_time"), ("negative", -5, "bad_time"), ("1970", 1000, "bad_time"),
    ("year_2200", 7_258_118_400_000, "bad_time"), ("1e16", 10**16, "bad_time"), ("beyond_int64", 2**63 + 1, "bad_number"),
    ("float", lambda d, c: d["E"] + 0.5, "bad_number"), ("string", lambda d, c: str(d["E"]), "bad_number"),
    ("hour_ahead", lambda d, c: c.now_ms + 3_600_000, "bad_time"), ("day_behind", lambda d, c: c.now_ms - 86_400_000, "bad_time"),
]:
    dead(f"event_time_{_name}", "time", f"{_reason}:E", put(E=_value))
dead("event_time_minute_backwards", "time", "non_monotone_time:E", put(E=lambda d, c: d["E"] - 60_000, T=lambda d, c: d["T"] - 60_000))
dead("trade_time_zero", "time", "bad_time:T", put(T=0))
dead("trade_time_minute_after_event", "time", "bad_time:T", put(T=lambda d, c: d["E"] + 60_000))
dead("book_event_time_hour_ahead", "time", "bad_time:E", put(E=lambda d, c: c.now_ms + 3_600_000), "book")
dead("book_event_time_zero", "time", "bad_time:E", put(E=0), "book")
dead("book_transact_time_skewed", "time", "bad_time:T", put(T=lambda d, c: d["E"] - 600_000), "book")

# ---------------------------------------------------------------- books
dead("empty_book", "book", "empty_book:b", put(b=[], a=[]), "book")
dead("no_bids", "book", "empty_book:b", put(b=[]), "book")
dead("no_asks", "book", "empty_book:a", put(a=[]), "book")
dead("duplicate_bid_level", "book", "duplicate_level:b", _levels("b", lambda lv: [lv[0], *lv[:-1]]), "book", min_levels=2)
dead("unsorted_bids", "book", "unsorted_levels:b", _levels("b", lambda lv: lv[::-1]), "book", min_levels=2)
dead("unsorted_asks", "book", "unsorted_levels:a", _levels("a", lambda lv: lv[::-1]), "book", min_levels=2)
dead("crossed_book", "book", "crossed_book", put(a=lambda d, c: [[format(float(d['b'][0][0]) * 0.999, ".8f"), "1.0"]]), "book")
dead("locked_book", "book", "crossed_book", put(a=lambda d, c: [[d["b"][0][0], "1.0"]]), "book")
dead("zero_quantity_level", "book", "bad_value:b", _levels("b", lambda lv: [[lv[0][0], "0"], *lv[1:]]), "book")
dead("negative_price_level", "book", "bad_value:b", _levels("b", lambda lv: [*lv[:-1], ["-1.0", "1.0"]]), "book", min_levels=2)
dead("three_item_level", "book", "bad_levels:b", _levels("b", lambda lv: [[*lv[0], "x"], *lv[1:]]), "book")
dead("level_not_a_list", "book", "bad_levels:b", _levels("b", lambda lv: ["65000.1", *lv[1:]]), "book", min_levels=2)
dead("levels_not_a_list", "book", "bad_levels:b", put(b="oops"), "book")
dead("numeric_level", "book", "bad_number:b", _levels("b", lambda lv: [[float(lv[0][0]), float(lv[0][1])], *lv[1:]]), "book")
dead("too_many_levels", "book", "too_many_levels:b",
     _levels("b", lambda lv: lv + [[format(float(lv[-1][0]) * (0.99 - 0.01 * i), ".8f"), "1.0"] for i in range(6)]),
     "book")
dead("book_missing_bids", "book", "missing_field:b", put(b=...), "book")

# ---------------------------------------------------------------- valid (must land): unusual, not wrong
for _name, _tpl, _build in [
    ("trade_with_lastUpdateId", "trade", put(lastUpdateId=12345)),
    ("trade_with_result_and_id", "trade", put(result=None, id=7)),
    ("trade_with_nested_extra", "trade", put(zz={"k": [1, {"q": 2}]})),
    ("trade_pretty_printed", "trade", _pretty),
    ("trade_escaped_stream_name", "trade", raw(lambda c, b: b.replace(b"@", b"\\u0040", 1))),
    ("trade_keys_reordered", "trade", lambda c: env(c.stream, dict(reversed(list(c.data.items()))), c.tag)),
    ("book_with_lastUpdateId", "book", put(lastUpdateId=12345)),
    ("book_pretty_printed", "book", _pretty),
]:
    kind(f"valid_{_name}", "valid", _tpl, "replace", "valid", (), _build)

# ---------------------------------------------------------------- replace: the real trade is lost on the wire
dead("replaced_by_nan_price", "replace", "bad_number:p", put(p="NaN"), mode="replace")
dead("replaced_by_truncated_frame", "replace", "bad_json", raw(lambda c, b: b[: max(24, len(b) // 2)]), mode="replace")
dead("replaced_by_invalid_utf8", "replace", "bad_utf8", raw(lambda c, b: b.replace(b'"s":"', b'"s":"\xc3\x28', 1)),
     mode="replace")
dead("replaced_by_future_time", "replace", "bad_time:E", put(E=lambda d, c: c.now_ms + 86_400_000), mode="replace")

KINDS: dict[str, Kind] = {k.name: k for k in K}
CLASSES: dict[str, list[str]] = {}
for _k in K:
    CLASSES.setdefault(_k.cls, []).append(_k.name)
# What a rate-based injection draws from by default: everything that keeps the connection up
# (a resync kind costs a reconnect, and the soak's SLO caps reconnects).
IN_BAND = tuple(k.name for k in K if k.outcome != "resync")


def _interleaved() -> tuple[str, ...]:
    lists = [[n for n in names if n in IN_BAND] for names in CLASSES.values()]
    out: list[str] = []
    for i in range(max(map(len, lists))):
        out += [names[i] for names in lists if i < len(names)]
    return tuple(out)


# The in-band kinds one class after another (frame, envelope, routing, ...): the order in which
# `send_malformed(n)` without kinds goes through them, so a few injections already span classes.
ROTATION = _interleaved()
