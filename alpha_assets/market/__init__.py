"""Market data: exchange message parsing, captures, real recordings, the landing zone."""

from alpha_assets.market.binance import (
    BOOK_SCHEMA,
    BOOK_TICKER_SCHEMA,
    DEADLETTER_SCHEMA,
    TRADES_SCHEMA,
    ParseError,
)

__all__ = ["BOOK_SCHEMA", "BOOK_TICKER_SCHEMA", "DEADLETTER_SCHEMA", "TRADES_SCHEMA", "ParseError"]
