"""Valid data stays valid: the real Binance captures in ../shared/data, fed through the strict
client with the capture's own receive clock, give exactly the rows the capture reader gives."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.market.binance import combined, dumps, encode_depth5
from alpha_assets.market.capture import read_ws_capture
from alpha_assets.market.schema import INGEST_SEQ, TRADE_SCHEMA
from alpha_assets.market.validation import Accepted, MessageValidator
from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig
from alpha_assets.paths import shared_data_dir

CAPTURES = ["usdm_btcusdt_20240808.gz", "usdm_ethusdt_20240808.gz"]


def capture(name: str) -> Path:
    path = shared_data_dir() / "binance_um_ws_capture_20240808" / name
    if not path.exists():
        pytest.skip(f"shared capture not found at {path}")
    return path


@functools.cache
def frames(name: str) -> dict:
    return read_ws_capture(capture(name))


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_trades_through_the_client_are_the_capture_rows(name: str) -> None:
    path = capture(name)
    sym = name.split("_")[1]
    client = MarketWsClient(WsClientConfig(url=f"ws://127.0.0.1:9/stream?streams={sym}@trade", backfill=False))
    with gzip.open(path, "rb") as fh:
        for line in fh:
            stamp, _, body = line.strip().partition(b" ")
            if b'@trade"' in body[:40]:
                client.handle(body, int(stamp) // 1_000_000)  # the capture's receive time is the clock
    client.close()
    out = client.drain()
    assert [k for k, _ in out if k != "trade"] == []
    expected = frames(name)["trades"]
    got = [r for _, r in out]
    assert len(got) == expected.height
    got_frame = pl.DataFrame(sorted(got, key=lambda r: (r["event_time_ms"], r["agg_trade_id"])), schema=TRADE_SCHEMA,
                             orient="row")
    assert got_frame.equals(expected)


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_books_as_depth5_pass_book_validation_unchanged(name: str) -> None:
    sym = name.split("_")[1]
    stream = f"{sym}@depth5@100ms"
    v = MessageValidator([stream])
    book = frames(name)["book"]
    for row in book.iter_rows(named=True):
        out = v.validate(dumps(combined(stream, encode_depth5(row))), row["recv_time_ms"])
        assert isinstance(out, Accepted), (out, row)
        assert out.row == {k: row[k] for k in out.row} and set(row) - set(out.row) <= {INGEST_SEQ}
