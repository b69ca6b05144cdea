import subprocess
import sys

import pytest


def test_executor_classes_import_from_the_package_lazily() -> None:
    code = ("import sys, executors; assert 'executors.exchange' not in sys.modules; "
            "from executors import BacktestExecutor, MockExecutor, ExchangeExecutor, ShadowExecutor; "
            "from executors.exchange import ExchangeExecutor as E; assert ExchangeExecutor is E; "
            "print(BacktestExecutor.name, MockExecutor.name, ExchangeExecutor.name, ShadowExecutor.name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["backtest", "mock", "exchange", "shadow"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    import executors

    with pytest.raises(AttributeError, match="NoSuchExecutor"):
        executors.NoSuchExecutor  # noqa: B018
