"""DuckDB views over the hive-partitioned warehouse, and the CLI in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from reports_synth import T0, make_orders, make_signals

from alpha_assets.paths import REPO_ROOT
from alpha_assets.sql import connect, discover, list_views

PARTS = [("2024-01-07", "BTCUSDT", 300, 1), ("2024-01-07", "ETHUSDT", 200, 2), ("2024-01-08", "BTCUSDT", 150, 3)]


def _write(root: Path, asset: str, date: str, symbol: str | None, table: str, frame: pl.DataFrame) -> None:
    d = root / "warehouse" / asset / f"date={date}"
    d = d / f"symbol={symbol}" if symbol else d
    d.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(d / f"{table}.parquet")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    root = tmp_path_factory.mktemp("var")
    frames = []
    for date, sym, n, seed in PARTS:
        day = (int(date[-2:]) - 7) * 86_400_000
        sig = make_signals(sym, n, seed=seed, start_ms=T0 + day).drop("symbol")  # symbol comes from the path
        _write(root, "signals", date, sym, "data", sig)
        _write(root, "mock_orders", date, sym, "data", make_orders(sig.with_columns(pl.lit(sym).alias("symbol")), seed))
        trades = pl.DataFrame({"agg_trade_id": [1, 2, 3], "price": [1.0, 2.0, 3.0]})
        book = pl.DataFrame({"last_update_id": [10], "bid_px_1": [1.0]})
        _write(root, "harvest_raw", date, sym, "trades", trades)
        _write(root, "harvest_raw", date, sym, "book", book)
        frames.append(sig.with_columns(pl.lit(date).alias("date"), pl.lit(sym).alias("symbol")))
    _write(root, "daily_rollup", "2024-01-07", None, "data", pl.DataFrame({"total": [500]}))
    # A half-written temporary of the IO manager must be invisible.
    (root / "warehouse" / "signals" / "date=2024-01-07" / "symbol=BTCUSDT" / ".data.parquet.abc.tmp").write_bytes(b"x")
    return root, pl.concat(frames)


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ALPHA_DATA_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "alpha_assets.sql", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_views_only_for_existing_tables(warehouse: tuple[Path, pl.DataFrame]) -> None:
    root, _ = warehouse
    con = connect(root)
    assert list_views(con) == ["daily_rollup", "harvest_book", "harvest_trades", "mock_orders", "signals"]
    assert {s.view: s.files for s in discover(root)}["signals"] == 3
    assert list_views(connect(root / "nowhere")) == []


def test_partition_columns_are_typed(warehouse: tuple[Path, pl.DataFrame]) -> None:
    root, _ = warehouse
    types = dict(connect(root).execute("SELECT column_name, column_type FROM (DESCRIBE signals)").fetchall())
    assert types["date"] == "DATE" and types["symbol"] == "VARCHAR"


def test_cli_cross_partition_query(warehouse: tuple[Path, pl.DataFrame]) -> None:
    root, expected = warehouse
    sql = ("SELECT date, symbol, count(*) AS n, count(*) FILTER (signal_type = 'strong_buy') AS sb "
           "FROM signals GROUP BY ALL ORDER BY date, symbol")
    out = _cli(root, "--json", sql)
    assert out.returncode == 0, out.stderr
    got = [(r["date"], r["symbol"], r["n"], r["sb"]) for r in json.loads(out.stdout)]
    want = (expected.group_by("date", "symbol")
            .agg(pl.len(), (pl.col("signal_type") == "strong_buy").sum())
            .sort("date", "symbol").rows())
    assert got == [tuple(r) for r in want] and len(got) == 3

    table = _cli(root, "SELECT symbol, count(*) AS n FROM signals GROUP BY 1 ORDER BY 1")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["symbol", "n"]
    btc = expected.filter(pl.col("symbol") == "BTCUSDT").height
    assert lines[2].split() == ["BTCUSDT", str(btc)] and lines[-1] == "(2 rows)"


def test_cli_join_across_assets(warehouse: tuple[Path, pl.DataFrame]) -> None:
    root, _ = warehouse
    sql = ("SELECT count(*) AS n FROM mock_orders o JOIN signals s "
           "ON s.symbol = o.symbol AND s.date = o.date AND s.seq = o.signal_seq")
    out = _cli(root, "--json", sql)
    assert out.returncode == 0, out.stderr
    n_orders = connect(root).execute("SELECT count(*) FROM mock_orders").fetchall()[0][0]
    assert json.loads(out.stdout) == [{"n": n_orders}] and n_orders > 0


def test_cli_views_and_errors(warehouse: tuple[Path, pl.DataFrame]) -> None:
    root, _ = warehouse
    views = _cli(root, "--views")
    assert views.returncode == 0 and "harvest_trades" in views.stdout and "harvest_raw" in views.stdout
    bad = _cli(root, "SELECT * FROM no_such_view")
    assert bad.returncode == 2 and "no_such_view" in bad.stderr and "views available" in bad.stderr
    assert _cli(root).returncode == 2
