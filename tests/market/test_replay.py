"""Real recordings as canonical partitions."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.market import replay
from alpha_assets.market.capture import read_ws_capture
from alpha_assets.market.replay import SURROGATE_ID_BASE, has_replay, load_replay, replay_partitions
from alpha_assets.market.schema import BOOK_SCHEMA, DEADLETTER_SCHEMA, TRADE_SCHEMA
from alpha_assets.paths import shared_data_dir

DATA = shared_data_dir()


def _utc_date(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def partitions() -> list[tuple[str, str]]:
    return replay_partitions()


def test_partitions_cover_every_recording(partitions: list[tuple[str, str]]) -> None:
    expected: set[tuple[str, str]] = set()
    for sym in ("ethusdt", "btcusdt"):
        raw = pl.read_parquet(DATA / f"v13_testnet/trades_{sym}.parquet")
        expected |= {(_utc_date(ms), sym.upper()) for ms in raw["event_time_ms"]}
    book = pl.read_parquet(DATA / "v13_testnet/book_ethusdt_20251017.parquet")
    expected |= {(_utc_date(ms), "ETHUSDT") for ms in book["event_time_ms"]}
    expected.add(("2024-01-07", "BTCUSDT"))
    # the captures run from 2024-08-08 23:54 past midnight
    expected |= {(d, s) for d in ("2024-08-08", "2024-08-09") for s in ("BTCUSDT", "ETHUSDT")}
    assert set(partitions) == expected
    assert partitions == sorted(partitions)


def test_every_partition_is_canonical(partitions: list[tuple[str, str]]) -> None:
    for date, symbol in partitions:
        out = load_replay(date, symbol)
        assert set(out) == {"trades", "book", "deadletters"}
        trades, book = out["trades"], out["book"]
        assert trades.schema == pl.Schema(TRADE_SCHEMA), (date, symbol)
        assert book.schema == pl.Schema(BOOK_SCHEMA), (date, symbol)
        assert out["deadletters"].schema == pl.Schema(DEADLETTER_SCHEMA)
        assert trades.height + book.height > 0
        for frame, key in ((trades, "agg_trade_id"), (book, "last_update_id")):
            assert frame[key].null_count() == 0 and frame[key].is_unique().all()
            assert frame.equals(frame.sort("event_time_ms", key))
            assert (frame["symbol"] == symbol).all()
            assert {_utc_date(ms) for ms in frame["event_time_ms"]} <= {date}


def test_v13_trades_all_kept_in_file_order() -> None:
    for sym in ("ETHUSDT", "BTCUSDT"):
        raw = pl.read_parquet(DATA / f"v13_testnet/trades_{sym.lower()}.parquet")
        dates = sorted({_utc_date(ms) for ms in raw["event_time_ms"]})
        got = pl.concat([load_replay(d, sym)["trades"] for d in dates])
        assert got.height == raw.height
        # the reference CVD is keyed by file row order: the canonical order must be the same
        assert got["price"].equals(raw["price"]) and got["qty"].equals(raw["qty"])
        assert got["is_buyer_maker"].equals(raw["is_buyer_maker"])
        assert (got["trade_time_ms"] == got["event_time_ms"]).all()
        assert ((got["recv_time_ms"] - (raw["recv_time_s"] * 1000)).abs() <= 0.5).all()
        real = raw["agg_trade_id"].is_not_null()
        assert got.filter(real)["agg_trade_id"].equals(raw.filter(real)["agg_trade_id"])
        n_null = raw.height - int(real.sum())
        surrogates = got.filter(~real)["agg_trade_id"]
        assert surrogates.to_list() == list(range(SURROGATE_ID_BASE, SURROGATE_ID_BASE + n_null))


def test_v13_book_by_utc_date() -> None:
    raw = pl.read_parquet(DATA / "v13_testnet/book_ethusdt_20251017.parquet")
    # the file is named after the collector's local (UTC+8) date; its events are 2025-10-16 UTC
    assert {_utc_date(ms) for ms in raw["event_time_ms"]} == {"2025-10-16"}
    book = load_replay("2025-10-16", "ETHUSDT")["book"]
    assert book.height == raw.height
    assert book["bid_px_1"].equals(raw["bid_px_1"]) and book["ask_qty_5"].equals(raw["ask_qty_5"])
    old = raw["last_update_id"].is_null()
    assert book.filter(~old)["last_update_id"].equals(raw.filter(~old)["last_update_id"])
    assert book.filter(old)["last_update_id"].to_list() == list(range(SURROGATE_ID_BASE,
                                                                      SURROGATE_ID_BASE + int(old.sum())))
    assert book["prev_last_update_id"].null_count() == raw["prev_last_update_id"].null_count()
    # this partition has no trades: an empty canonical frame, not a missing key
    trades = load_replay("2025-10-16", "ETHUSDT")["trades"]
    assert trades.is_empty() and trades.schema == pl.Schema(TRADE_SCHEMA)


def test_archive_day() -> None:
    raw_t = pl.read_parquet(DATA / "binance_um_20240107/BTCUSDT-2024-01-07-h00.parquet")
    raw_b = pl.read_parquet(DATA / "binance_um_20240107/BTCUSDT-2024-01-07-h00m00-10.parquet")
    out = load_replay("2024-01-07", "BTCUSDT")
    trades, book = out["trades"], out["book"]
    assert trades.height == raw_t.height
    joined = trades.join(raw_t, on="agg_trade_id")
    assert (joined["event_time_ms"] * 1_000_000 == joined["ts_ns"]).all()
    assert (joined["is_buyer_maker"] == (joined["side"] == -1)).all()
    assert joined["is_buyer_maker"].n_unique() == 2
    assert book.height == raw_b.height
    assert book["last_update_id"].equals(raw_b.sort("ts_ns", "update_id")["update_id"])
    assert book["bid_qty_1"].equals(raw_b.sort("ts_ns", "update_id")["bid_qty"])
    for side in ("bid", "ask"):
        for what in ("px", "qty"):
            for i in range(2, 6):
                assert book[f"{side}_{what}_{i}"].null_count() == book.height


def test_capture_split_at_midnight() -> None:
    for sym in ("BTCUSDT", "ETHUSDT"):
        cap = read_ws_capture(DATA / f"binance_um_ws_capture_20240808/usdm_{sym.lower()}_20240808.gz")
        day1, day2 = load_replay("2024-08-08", sym), load_replay("2024-08-09", sym)
        assert pl.concat([day1["trades"], day2["trades"]]).equals(cap["trades"])
        assert pl.concat([day1["book"], day2["book"]]).equals(cap["book"])
        assert day2["book"]["event_time_ms"].min() >= 1723161600000  # 2024-08-09T00:00Z
        assert day1["book"]["event_time_ms"].max() < 1723161600000


def test_has_replay_agrees_and_skips_captures_that_cannot_hold_the_date(
        partitions: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    dates = {d for d, _ in partitions} | {"2024-03-04", "2024-08-07", "2024-08-10", "2025-10-19"}
    for date in sorted(dates):
        for sym in ("BTCUSDT", "ETHUSDT"):
            assert has_replay(date, sym) == ((date, sym) in partitions), (date, sym)
    replay._load_source.cache_clear()
    parsed: list[str] = []
    monkeypatch.setattr(replay, "read_ws_capture", lambda path: parsed.append(path.name) or read_ws_capture(path))
    assert not has_replay("2024-03-04", "BTCUSDT")  # a simulated day: no capture is rebuilt to find that out
    assert parsed == []
    assert has_replay("2024-08-09", "BTCUSDT") and parsed == ["usdm_btcusdt_20240808.gz"]


def test_unknown_partition() -> None:
    with pytest.raises(KeyError):
        load_replay("2030-01-01", "BTCUSDT")
    with pytest.raises(KeyError):
        load_replay("2024-01-07", "SOLUSDT")


def test_partial_shared_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "v13_testnet").mkdir()
    shutil.copy(DATA / "v13_testnet/trades_btcusdt.parquet", tmp_path / "v13_testnet/")
    monkeypatch.setenv("ALPHA_SHARED_DIR", str(tmp_path))
    assert replay_partitions() == [("2025-10-18", "BTCUSDT")]
    out = load_replay("2025-10-18", "BTCUSDT")
    assert out["trades"].height == 4699 and out["book"].is_empty()
