from pathlib import Path

import pytest

from alpha_assets.settings import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alpha.yaml"
    path.write_text(text)
    return path


def test_defaults_when_file_is_empty(tmp_path: Path) -> None:
    cfg = load_settings(write(tmp_path, ""))
    assert cfg.symbols == ["BTCUSDT", "ETHUSDT"]
    assert cfg.market.source == "auto"


def test_symbols_are_configuration(tmp_path: Path) -> None:
    cfg = load_settings(write(tmp_path, "symbols: [btcusdt, solusdt, ETHUSDT]\n"))
    assert cfg.symbols == ["BTCUSDT", "SOLUSDT", "ETHUSDT"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("market: {source: kafka}\n", "market.source"),
        ("market: {seed: -1}\n", "market.seed"),
        ("symbols: []\n", "symbols"),
        ("symbols: ['BTC-USDT']\n", "symbols"),
        ("soak: {minutes: 0}\n", "soak.minutes"),
        ("unknown_key: 1\n", "unknown_key"),
    ],
)
def test_bad_configuration_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    assert f"field '{field}" in str(err.value)
