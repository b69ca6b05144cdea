"""The landing zone: atomic, idempotent minute files, completion marks, partition discovery."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.market.landing import (
    LandingWriter,
    completed_partitions,
    landing_partitions,
    load_landing,
    load_preview,
    mark_complete,
)
from alpha_assets.market.replay import load_replay
from alpha_assets.market.schema import BOOK_SCHEMA, DEADLETTER_SCHEMA, TRADE_SCHEMA

DATE = "2024-08-08"


@pytest.fixture(scope="module")
def real() -> dict[str, pl.DataFrame]:
    return load_replay(DATE, "BTCUSDT")


def _minute(frame: pl.DataFrame) -> pl.Series:
    return pl.from_epoch(frame["event_time_ms"], time_unit="ms").dt.strftime("%H%M")


def _land(root: Path, real: dict[str, pl.DataFrame], kinds=("trades", "book")) -> LandingWriter:
    w = LandingWriter(root, "btcusdt")
    for kind in kinds:
        frame = real[kind]
        for (hhmm,), part in frame.group_by(_minute(frame).alias("m"), maintain_order=True):
            w.write_minute(kind, DATE, str(hhmm), part)
    return w


def test_round_trip_real_capture(tmp_path: Path, real: dict[str, pl.DataFrame]) -> None:
    _land(tmp_path, real)
    raw = tmp_path / "landing/raw/date=2024-08-08/symbol=BTCUSDT"
    names = sorted(p.name for p in raw.iterdir())
    assert "trades_2354.parquet" in names and "book_2359.parquet" in names
    assert not [n for n in names if n.startswith(".")]  # no temp file left
    out = load_landing(tmp_path, DATE, "BTCUSDT")
    assert out["trades"].equals(real["trades"]) and out["book"].equals(real["book"])
    assert out["trades"].schema == pl.Schema(TRADE_SCHEMA) and out["book"].schema == pl.Schema(BOOK_SCHEMA)
    assert out["deadletters"].is_empty() and out["deadletters"].schema == pl.Schema(DEADLETTER_SCHEMA)
    assert landing_partitions(tmp_path) == [(DATE, "BTCUSDT")]
    assert completed_partitions(tmp_path) == []


def test_rewrite_is_idempotent_and_merges(tmp_path: Path, real: dict[str, pl.DataFrame]) -> None:
    w = LandingWriter(tmp_path, "BTCUSDT")
    minute = real["trades"].filter(_minute(real["trades"]) == "2357")
    assert minute.height > 10
    path = w.write_minute("trades", DATE, "2357", minute)
    assert path is not None
    first = path.read_bytes()
    w.write_minute("trades", DATE, "2357", minute.reverse())
    assert path.read_bytes() == first
    # a partial rewrite, then the late remainder: the union is landed, each id once
    half = minute.height // 2
    path.unlink()
    w.write_minute("trades", DATE, "2357", minute.head(half + 3))
    w.write_minute("trades", DATE, "2357", minute.tail(minute.height - half))
    got = load_landing(tmp_path, DATE, "BTCUSDT")["trades"]
    assert got.equals(minute)


def test_duplicates_across_minutes_are_removed(tmp_path: Path, real: dict[str, pl.DataFrame]) -> None:
    w = LandingWriter(tmp_path, "BTCUSDT")
    book = real["book"].filter(_minute(real["book"]) == "2358")
    w.write_minute("book", DATE, "2358", book)
    # same rows under a second file name (e.g. a harvester restart mislabelled them)
    path = w.path("book", DATE, "2358")
    path.with_name("book_2358b.parquet").write_bytes(path.read_bytes())
    got = load_landing(tmp_path, DATE, "BTCUSDT")["book"]
    assert got.equals(book)


def test_completion_marks(tmp_path: Path, real: dict[str, pl.DataFrame]) -> None:
    w = _land(tmp_path, {k: v.head(50) for k, v in real.items()})
    pv = pl.DataFrame({"symbol": ["BTCUSDT"], "event_time_ms": [1723161300000], "close": [61800.0]})
    w.write_minute("preview", DATE, "2355", pv)
    mark = w.mark_complete(DATE, "BTCUSDT", "2024-08-09T00:05:00Z")
    body = json.loads(mark.read_text())
    assert body["stamp"] == "2024-08-09T00:05:00Z" and body["symbol"] == "BTCUSDT"
    assert "preview/date=2024-08-08/symbol=BTCUSDT/preview_2355.parquet" in body["files"]
    assert all((tmp_path / "landing" / f).is_file() for f in body["files"])
    assert completed_partitions(tmp_path) == [(DATE, "BTCUSDT", "2024-08-09T00:05:00Z")]
    # rewriting the same rows keeps the mark; new rows reopen the partition
    w.write_minute("trades", DATE, str(_minute(real["trades"])[0]), real["trades"].head(50))
    assert completed_partitions(tmp_path) == [(DATE, "BTCUSDT", "2024-08-09T00:05:00Z")]
    w.write_minute("trades", DATE, str(_minute(real["trades"])[0]), real["trades"].slice(50, 5))
    assert completed_partitions(tmp_path) == []
    mark_complete(tmp_path, DATE, "BTCUSDT", "second")
    assert completed_partitions(tmp_path) == [(DATE, "BTCUSDT", "second")]
    assert load_preview(tmp_path, DATE, "BTCUSDT").equals(pv)


def test_bad_completion_mark_is_ignored(tmp_path: Path, real: dict[str, pl.DataFrame]) -> None:
    _land(tmp_path, {k: v.head(5) for k, v in real.items()})
    mark_complete(tmp_path, DATE, "BTCUSDT", "s1")
    (tmp_path / "landing/raw/date=2024-08-08/symbol=BTCUSDT/_COMPLETE").write_text("{not json")
    assert completed_partitions(tmp_path) == []


def test_unreadable_file_becomes_dead_letter(tmp_path: Path, real: dict[str, pl.DataFrame]) -> None:
    _land(tmp_path, {k: v.head(20) for k, v in real.items()})
    (tmp_path / "landing/raw/date=2024-08-08/symbol=BTCUSDT/trades_2300.parquet").write_bytes(b"garbage")
    out = load_landing(tmp_path, DATE, "BTCUSDT")
    assert out["trades"].equals(real["trades"].head(20))
    dead = out["deadletters"]
    assert dead["reason"].to_list() == ["unreadable_file"] and dead["key"].to_list() == ["trades_2300.parquet"]


def test_dead_letters_land_and_load(tmp_path: Path) -> None:
    w = LandingWriter(tmp_path, "ETHUSDT")
    dl = pl.DataFrame({"source": ["trades", "book"], "reason": ["bad_number:q", "gap"],
                       "symbol": ["ETHUSDT", "ETHUSDT"], "event_time_ms": [None, 1723161601000],
                       "key": ["1", "2"], "payload": ["{}", "{}"], "stream": [None, "ethusdt@depth5@100ms"],
                       "recv_time_ms": [None, 1723161601100]}, schema=DEADLETTER_SCHEMA)
    w.write_minute("deadletter", "2024-08-09", "0000", dl)
    w.write_minute("deadletter", "2024-08-09", "0000", dl)
    out = load_landing(tmp_path, "2024-08-09", "ETHUSDT")
    assert out["deadletters"].height == 2 and out["trades"].is_empty() and out["book"].is_empty()
    # only dead letters: not a partition the pipeline can run
    assert landing_partitions(tmp_path) == []


@pytest.mark.parametrize(
    ("kind", "date", "hhmm", "match"),
    [
        ("quotes", DATE, "2357", "kind must be one of"),
        ("trades", "2024/08/08", "2357", "date must be YYYY-MM-DD"),
        ("trades", DATE, "2460", "hhmm must be 0000..2359"),
        ("trades", DATE, "2356", "rows outside minute"),
    ],
)
def test_bad_writes_fail_clearly(tmp_path: Path, real: dict[str, pl.DataFrame], kind: str, date: str,
                                 hhmm: str, match: str) -> None:
    w = LandingWriter(tmp_path, "BTCUSDT")
    minute = real["trades"].filter(_minute(real["trades"]) == "2357")
    with pytest.raises(ValueError, match=match):
        w.write_minute(kind, date, hhmm, minute)
    assert not (tmp_path / "landing").exists() or not any((tmp_path / "landing").rglob("*.parquet"))


def test_bad_frames_fail_clearly(tmp_path: Path, real: dict[str, pl.DataFrame]) -> None:
    w = LandingWriter(tmp_path, "BTCUSDT")
    minute = real["trades"].filter(_minute(real["trades"]) == "2357")
    with pytest.raises(ValueError, match="missing columns"):
        w.write_minute("trades", DATE, "2357", minute.drop("qty"))
    with pytest.raises(ValueError, match="another symbol"):
        w.write_minute("trades", DATE, "2357", minute.with_columns(pl.lit("ETHUSDT").alias("symbol")))
    with pytest.raises(ValueError, match="symbol must be"):
        LandingWriter(tmp_path, "btc/usdt")
    with pytest.raises(KeyError):
        load_landing(tmp_path, DATE, "BTCUSDT")
