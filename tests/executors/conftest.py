"""Fixtures: a synthetic book, order contexts, a fake Binance on 127.0.0.1, and every executor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import polars as pl
import pytest

from executors.backtest import BacktestConfig, BacktestExecutor
from executors.book import BookIndex
from executors.contract import OrderCtx
from executors.exchange import ExchangeConfig, ExchangeExecutor
from executors.mock import MockExecutor
from executors.shadow import ShadowExecutor
from executors.testing import TEST_API_KEY as API_KEY
from executors.testing import TEST_API_SECRET as API_SECRET
from executors.testing.fake_exchange import FakeExchange
from executors.testing.synthetic import synthetic_book

T0 = 1_704_585_600_000


@pytest.fixture(scope="session")
def book() -> pl.DataFrame:
    return synthetic_book("BTCUSDT", n=3_000, start_ms=T0, seed=7)


@pytest.fixture(scope="session")
def book_index(book: pl.DataFrame) -> BookIndex:
    return BookIndex(book)


@pytest.fixture
def make_ctx(book: pl.DataFrame) -> Callable[..., OrderCtx]:
    def make(i: int = 100, side: str = "BUY", qty: float = 0.0123, **kw: Any) -> OrderCtx:
        row = book.row(i, named=True)
        px = row["ask_px_1"] if side == "BUY" else row["bid_px_1"]
        base: dict[str, Any] = dict(ts_ms=row["event_time_ms"] + 7, event_ts_ms=row["event_time_ms"], symbol="BTCUSDT",
                                    side=side, qty=qty, px_intent=px, tick_size=0.1, step_size=0.001,
                                    signal_seq=10_000 + i, signal_type="strong_buy" if side == "BUY" else "strong_sell")
        base.update(kw)
        return OrderCtx(**base)
    return make


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", API_SECRET)


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(API_KEY, API_SECRET, hang_s=0.6) as ex:
        yield ex


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def exchange(creds: None, fake: FakeExchange, sleeps: list[float]) -> Iterator[ExchangeExecutor]:
    cfg = ExchangeConfig(base_url=fake.base_url, timeout_s=0.25, backoff_base_s=0.1, jitter_frac=0.5, seed=3)
    ex = ExchangeExecutor(cfg, sleep=sleeps.append)
    yield ex
    ex.close()


EXECUTOR_KINDS = ["backtest", "backtest_maker", "mock", "exchange", "shadow"]


@pytest.fixture(params=EXECUTOR_KINDS)
def any_executor(request: pytest.FixtureRequest, book_index: BookIndex) -> Iterator[Any]:
    kind = request.param
    if kind == "backtest":
        yield BacktestExecutor(book_index)
    elif kind == "backtest_maker":
        yield BacktestExecutor(book_index, BacktestConfig(slippage="maker_queue", maker_horizon_ms=2_000))
    elif kind == "mock":
        yield MockExecutor(book_index)
    else:
        ex = request.getfixturevalue("exchange")
        yield ex if kind == "exchange" else ShadowExecutor(ex, BacktestExecutor(book_index))
