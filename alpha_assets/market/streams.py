"""Binance stream names: what a stream is, decided by its name alone.

A message is routed by the stream it came on, never by its shape: `btcusdt@aggTrade` carries
aggregate trades of BTCUSDT and nothing else, whatever fields its payload happens to have.

    <sym>@aggTrade                 trade  (event "aggTrade", id field "a")
    <sym>@trade                    trade  (event "trade",    id field "t")
    <sym>@depth<5|10|20>[@<n>ms]   book   (event "depthUpdate", a partial book of ≤ N levels)
    <sym>@depth[@<n>ms]            diff   (event "depthUpdate", a diff of the full book)
    <sym>@bookTicker               ticker (event "bookTicker")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

_NAME = re.compile(r"(?P<sym>[a-z0-9]{2,30})@(?P<tail>aggTrade|trade|bookTicker|depth(?P<levels>5|10|20)?(?:@(?:0|100|250|500)ms)?)")


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    symbol: str  # upper case, as in the payload's `s`
    kind: str  # trade | book | diff | ticker
    event: str  # the payload's `e`
    id_field: str  # the payload's id: a / t (trades), u (depth, ticker)
    levels: int = 0  # partial books: the most levels a side may have

    @property
    def source(self) -> str:
        """The dead-letter `source` of messages on this stream."""
        return {"trade": "trades", "book": "book", "diff": "book", "ticker": "book_ticker"}[self.kind]


def stream_spec(name: str) -> StreamSpec | None:
    """The spec of a well-formed stream name, None for anything else (case matters: Binance
    stream names are lower case but for the event part)."""
    if type(name) is not str:
        return None
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    sym, tail = m["sym"].upper(), m["tail"]
    if tail == "aggTrade":
        return StreamSpec(name, sym, "trade", "aggTrade", "a")
    if tail == "trade":
        return StreamSpec(name, sym, "trade", "trade", "t")
    if tail == "bookTicker":
        return StreamSpec(name, sym, "ticker", "bookTicker", "u")
    if m["levels"]:
        return StreamSpec(name, sym, "book", "depthUpdate", "u", int(m["levels"]))
    return StreamSpec(name, sym, "diff", "depthUpdate", "u")


def stream_names(symbol: str) -> tuple[str, str]:
    """The trade and book streams of a symbol as this project subscribes them (aggTrade, depth5@100ms)."""
    s = symbol.lower()
    return f"{s}@aggTrade", f"{s}@depth5@100ms"


def symbol_of_stream(name: object) -> str | None:
    """Upper-case symbol of a stream name, also of one we do not support (None if unparseable)."""
    if type(name) is not str or "@" not in name:
        return None
    head = name.split("@", 1)[0]
    return head.upper() if re.fullmatch(r"[a-z0-9]{2,30}", head) else None


def url_streams(url: str) -> tuple[list[str], bool]:
    """(stream names, combined?) of a Binance WebSocket URL: `/stream?streams=a/b` (combined,
    every message in a {"stream", "data"} envelope) or `/ws/<name>` (one raw stream)."""
    parts = urlsplit(url)
    if parts.path.startswith("/ws/"):
        return [parts.path[len("/ws/"):]], False
    raw = parse_qs(parts.query).get("streams", [""])[0]
    return [s for s in raw.split("/") if s], True
