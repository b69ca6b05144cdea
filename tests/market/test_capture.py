"""read_ws_capture on the real 2024-08-08 captures and on small hand-written captures."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import polars as pl
import pytest

from alpha_assets.market import read_ws_capture  # the stable entry point (DESIGN.md §5)
from alpha_assets.market.binance import BOOK_SCHEMA, DEADLETTER_SCHEMA, TRADES_SCHEMA
from alpha_assets.market.schema import INGEST_SEQ
from alpha_assets.paths import shared_data_dir

CAPTURE_DIR = shared_data_dir() / "binance_um_ws_capture_20240808"
CAPTURES = sorted(CAPTURE_DIR.glob("*.gz"))


@pytest.fixture(scope="module", params=CAPTURES, ids=lambda p: p.name)
def capture(request: pytest.FixtureRequest) -> dict[str, pl.DataFrame]:
    return read_ws_capture(request.param, with_tops=True)


def test_captures_present() -> None:
    assert len(CAPTURES) == 2


def test_real_capture_schemas_and_order(capture: dict[str, pl.DataFrame]) -> None:
    trades, book = capture["trades"], capture["book"]
    assert trades.schema == pl.Schema(TRADES_SCHEMA) and book.schema == pl.Schema(BOOK_SCHEMA)
    assert capture["deadletters"].schema == pl.Schema(DEADLETTER_SCHEMA)
    assert trades.height > 10_000 and book.height > 3_000
    assert trades["agg_trade_id"].is_unique().all()
    assert trades.select(pl.col("event_time_ms").diff().min()).item() >= 0
    assert trades["recv_time_ms"].null_count() == 0
    assert book["last_update_id"].is_unique().all()
    # snapshots sit on 100 ms event-time boundaries, in order
    assert (book["event_time_ms"] % 100 == 0).all()
    assert book.select(pl.col("event_time_ms").diff().min()).item() >= 100
    # the book is never crossed and all 5 levels exist in a deep mainnet book
    assert (book["bid_px_1"] < book["ask_px_1"]).all()
    # (ingest_seq is the live harvester's arrival counter: a capture file has none)
    assert book.drop(INGEST_SEQ).select(pl.all().null_count()).select(pl.sum_horizontal(pl.all())).item() == 0
    for i in range(1, 5):
        assert (book[f"bid_px_{i}"] > book[f"bid_px_{i + 1}"]).all()
        assert (book[f"ask_px_{i}"] < book[f"ask_px_{i + 1}"]).all()
    # rows chain like depth5@100ms messages: each pu is the previous row's u (no gap here)
    assert (book["prev_last_update_id"].slice(1) == book["last_update_id"].slice(0, book.height - 1)).all()
    assert (book["first_update_id"] <= book["last_update_id"]).all()
    assert (book["first_update_id"].slice(1) > book["last_update_id"].slice(0, book.height - 1)).all()
    # local receive stamps lag exchange time by roughly 1.2 s in these captures (README)
    lag = (trades["recv_time_ms"] - trades["event_time_ms"]).median()
    assert -2_000 < lag < 0


def test_book_snapshot_is_state_at_boundary(capture: dict[str, pl.DataFrame]) -> None:
    """Each row is the top of book after the last diff with E <= the boundary."""
    tops = capture["book_top"].sort("event_time_ms", "last_update_id")
    book = capture["book"]
    joined = book.select("event_time_ms", "last_update_id", "bid_px_1", "bid_qty_1", "ask_px_1", "ask_qty_1").join_asof(
        tops.rename({"last_update_id": "top_u", "event_time_ms": "top_t"}),
        left_on="event_time_ms", right_on="top_t", strategy="backward",
    )
    assert (joined["top_u"] == joined["last_update_id"]).all()
    assert (joined["bid_px"] == joined["bid_px_1"]).all() and (joined["ask_qty"] == joined["ask_qty_1"]).all()


def test_rebuilt_book_agrees_with_book_ticker(capture: dict[str, pl.DataFrame]) -> None:
    ticker = capture["book_ticker"].unique("update_id", keep="first")
    tops = capture["book_top"]
    matched = ticker.join(tops, left_on="update_id", right_on="last_update_id", suffix="_book")
    assert matched.height > 500
    agree = (
        (pl.col("bid_px") == pl.col("bid_px_book"))
        & (pl.col("bid_qty") == pl.col("bid_qty_book"))
        & (pl.col("ask_px") == pl.col("ask_px_book"))
        & (pl.col("ask_qty") == pl.col("ask_qty_book"))
    )
    n_ok = matched.filter(agree).height
    rate = n_ok / matched.height
    print(f"\nbookTicker agreement: {n_ok}/{matched.height} = {rate:.4%} "
          f"({capture['trades']['symbol'][0]})")
    assert rate >= 0.999


# ---------------------------------------------------------------- hand-written captures


def _write(path: Path, lines: list[tuple[int, object | bytes]]) -> Path:
    with gzip.open(path, "wb") as fh:
        for ns, msg in lines:
            body = msg if isinstance(msg, bytes) else orjson.dumps(msg)
            fh.write(str(ns).encode() + b" " + body + b"\n")
    return path


def _depth(E: int, U: int, u: int, pu: int, b=(), a=()) -> dict:
    return {"stream": "ethusdt@depth@0ms", "data": {"e": "depthUpdate", "E": E, "T": E, "s": "ETHUSDT", "U": U,
                                                    "u": u, "pu": pu, "b": [list(x) for x in b],
                                                    "a": [list(x) for x in a]}}


def _trade(E: int, t: int, p: str = "100.0", q: str = "1") -> dict:
    return {"stream": "ethusdt@trade", "data": {"e": "trade", "E": E, "T": E, "s": "ETHUSDT", "t": t, "p": p,
                                                "q": q, "X": "MARKET", "m": True}}


SNAP = {"lastUpdateId": 100, "E": 1010, "T": 1010, "bids": [["99.0", "1"], ["98.0", "2"]],
        "asks": [["101.0", "1"], ["102.0", "2"]]}


def test_small_capture_buffers_diffs_before_snapshot(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.gz", [
        (1_000_000_000, _depth(990, 90, 95, 89, b=[("99.0", "5")])),         # stale: u < 100
        (1_001_000_000, _depth(1020, 96, 105, 95, b=[("99.5", "3")])),       # bridges 100
        (1_002_000_000, SNAP),                                               # snapshot after them
        (1_003_000_000, _depth(1080, 106, 110, 105, a=[("101.0", "0")])),
        (1_004_000_000, _depth(1150, 111, 120, 110, b=[("99.5", "0")])),
        (1_005_000_000, _depth(1290, 121, 125, 120, a=[("100.5", "7")])),
        (1_006_000_000, _trade(1100, 7)),
        (1_007_000_000, _trade(1090, 6)),
    ])
    out = read_ws_capture(path)
    book = out["book"]
    assert book["event_time_ms"].to_list() == [1100, 1200, 1300]
    assert book["last_update_id"].to_list() == [110, 120, 125]
    # the first row spans the replayed bridging diff and the next one
    assert book["first_update_id"].to_list() == [96, 111, 121]
    assert book["prev_last_update_id"].to_list() == [95, 110, 120]
    first = book.row(0, named=True)
    assert (first["bid_px_1"], first["bid_qty_1"], first["ask_px_1"]) == (99.5, 3.0, 102.0)
    assert first["bid_px_3"] == 98.0 and first["bid_px_4"] is None and first["ask_px_3"] is None
    assert book.row(1, named=True)["bid_px_1"] == 99.0
    assert book.row(2, named=True)["ask_px_1"] == 100.5
    assert out["trades"]["agg_trade_id"].to_list() == [6, 7]  # sorted by event time
    assert out["trades"]["recv_time_ms"].to_list() == [1007, 1006]
    assert out["deadletters"].height == 0


def test_small_capture_dead_letters(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.gz", [
        (1_000_000_000, SNAP),
        (1_001_000_000, _depth(1020, 96, 105, 95, b=[("99.5", "3")])),
        (1_002_000_000, _depth(1120, 110, 115, 108)),                       # pu 108 != 105: gap
        (1_003_000_000, _depth(1130, 116, 117, 115)),                       # no snapshot after gap
        (1_004_000_000, b"{broken"),
        (1_005_000_000, _trade(1100, 7, q="x")),
        (1_006_000_000, _trade(1100, 8)),
        (1_007_000_000, _trade(1100, 8)),                                   # duplicate id
        (1_008_000_000, {"stream": "ethusdt@kline_1m", "data": {"e": "kline", "E": 1}}),
        ("notanumber", _trade(1100, 9)),
        (1_009_000_000, {"stream": "ethusdt@trade", "data": {**_trade(1100, 10)["data"], "X": "INSURANCE_FUND"}}),
    ])
    out = read_ws_capture(path)
    dead = out["deadletters"]
    reasons = sorted(dead["reason"].to_list())
    assert reasons == sorted(["gap", "unsynced", "bad_json", "bad_number:q", "duplicate", "unknown_event",
                              "bad_line", "non_market_trade"])
    gap = dead.filter(pl.col("reason") == "gap").row(0, named=True)
    assert gap["source"] == "book" and gap["key"] == "115" and gap["event_time_ms"] == 1120
    assert dead.filter(pl.col("reason") == "bad_number:q")["source"].item() == "trades"
    # the state before the gap is still published at its boundary, nothing after it
    assert out["book"]["last_update_id"].to_list() == [105]
    assert out["trades"]["agg_trade_id"].to_list() == [8]
