"""The executor mock_orders routes signals through, as a resource that builds it.

`SignalExecutor` is the abstract resource; each deployment binds one concrete variant (a backtest
against the recorded book by default, the soak's paper broker, a real exchange client, or a shadow
pair). Pre-trade and risk gates are not a variant: the router puts them in front of every executor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import dagster as dg
import polars as pl
from pydantic import Field

from executors.book import BookIndex
from executors.contract import IExecutor


class SignalExecutor(dg.ConfigurableResource, ABC):
    """Builds the `IExecutor` for one partition's book (executors/contract.py)."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """The name the orders' metadata carries (`executor`)."""

    @abstractmethod
    def build(self, book: pl.DataFrame) -> IExecutor:
        """A fresh executor that fills against `book` (the partition's snapshots)."""

    @contextmanager
    def executor(self, book: pl.DataFrame) -> Iterator[IExecutor]:
        """The executor for one partition, closed afterwards (an exchange client holds a connection)."""
        ex = self.build(book)
        try:
            yield ex
        finally:
            ex.close()


class BacktestExecutorResource(SignalExecutor):
    """Simulated fills against the recorded book (the default of every deployment)."""

    @property
    def kind(self) -> str:
        return "backtest"

    def build(self, book: pl.DataFrame) -> IExecutor:
        from executors.backtest import BacktestExecutor

        return BacktestExecutor(BookIndex(book))


class MockExecutorResource(SignalExecutor):
    """The soak's paper broker: strong signals always, the rest sampled."""

    @property
    def kind(self) -> str:
        return "mock"

    def build(self, book: pl.DataFrame) -> IExecutor:
        from executors.mock import MockExecutor

        return MockExecutor(BookIndex(book))


class ExchangeExecutorResource(SignalExecutor):
    """Binance USD-M orders over REST. Bind the credentials with `dg.EnvVar`, never as literals."""

    env: Literal["testnet", "live"] = "testnet"
    base_url: str | None = Field(default=None, description="overrides env (e.g. a local protocol-faithful fake)")
    api_key: str
    api_secret: str

    @property
    def kind(self) -> str:
        return "exchange"

    def build(self, book: pl.DataFrame) -> IExecutor:
        from executors.exchange import ExchangeConfig, ExchangeExecutor

        return ExchangeExecutor(ExchangeConfig(env=self.env, base_url=self.base_url),
                                credentials=(self.api_key, self.api_secret))


class ShadowExecutorResource(SignalExecutor):
    """`primary` answers; `shadow` sees the same orders and its agreement is measured."""

    primary: SignalExecutor
    shadow: SignalExecutor

    @property
    def kind(self) -> str:
        return f"shadow({self.primary.kind}|{self.shadow.kind})"

    def build(self, book: pl.DataFrame) -> IExecutor:
        from executors.shadow import ShadowExecutor

        return ShadowExecutor(self.primary.build(book), self.shadow.build(book))
