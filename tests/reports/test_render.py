"""The report files: names from event time, Markdown links to real PNGs, deterministic bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from PIL import Image
from reports_synth import T0, make_mids, make_orders, make_signals

from alpha_assets.reports.hard_metrics import HardMetricsConfig, evaluate_hard_metrics
from alpha_assets.reports.render import report_base, write_report
from alpha_assets.reports.summary import build_summary, rollup

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _summary(symbol: str = "BTCUSDT", seed: int = 1, minutes: int = 15, **kw) -> dict:
    sig = make_signals(symbol, 1500, seed=seed, minutes=minutes)
    args = {"mids": make_mids(sig, seed + 1), "parity": {"passed": True}, "data_mode": "raw", "dropped": 0,
            "warnings": [], "date": "2024-01-07", "symbol": symbol}
    args.update(kw)
    return build_summary(sig, make_orders(sig, seed + 2), **args)


def _linked_images(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


def test_files_named_by_last_event_minute(tmp_path: Path) -> None:
    s = _summary()
    paths = write_report(s, tmp_path)
    last = s["window"]["last_minute_ts_ms"]
    hh, mm = (last - T0) // 3_600_000, (last - T0) // 60_000 % 60
    expected = f"summary_20240107_{hh:02d}{mm:02d}_BTCUSDT"
    assert paths.json == tmp_path / "logs" / "report" / f"{expected}.json"
    assert paths.markdown.name == f"{expected}.md"
    assert report_base(rollup([s])) == f"summary_20240107_{hh:02d}{mm:02d}"  # the roll-up has no suffix


def test_markdown_links_valid_pngs(tmp_path: Path) -> None:
    paths = write_report(_summary(), tmp_path)
    md = paths.markdown.read_text(encoding="utf-8")
    links = _linked_images(md)
    assert sorted(links) == sorted(p.name for p in paths.charts.values())
    for name in links:
        png = paths.markdown.parent / name
        data = png.read_bytes()
        assert data[:8] == PNG_MAGIC
        with Image.open(png) as img:
            img.verify()
        with Image.open(png) as img:
            assert img.format == "PNG" and img.size[0] >= 800 and img.size[1] >= 300
    for figure in ("buy_ratio", "strong_ratio", "reject rate", "Sharpe", "max drawdown", "dropped",
                   "Last 5 minutes", "Guard reasons", "Status: OK"):
        assert figure in md, figure


def test_json_round_trips_the_summary(tmp_path: Path) -> None:
    s = _summary()
    metrics = evaluate_hard_metrics(s)
    data = json.loads(write_report(s, tmp_path, hard_metrics=metrics).json.read_text(encoding="utf-8"))
    assert {k: v for k, v in data.items() if k != "hard_metrics"} == json.loads(json.dumps(s))
    assert [m["name"] for m in data["hard_metrics"]] == ["sharpe", "max_drawdown", "reject_rate"]


def test_same_data_same_bytes(tmp_path: Path) -> None:
    a = write_report(_summary(), tmp_path / "a")
    b = write_report(_summary(), tmp_path / "b")
    for pa, pb in [(a.json, b.json), (a.markdown, b.markdown), *zip(a.charts.values(), b.charts.values(), strict=True)]:
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    leftovers = [p.name for p in (tmp_path / "a" / "logs" / "report").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # atomic writes leave no temporaries


def test_attention_and_failed_metric_on_top(tmp_path: Path) -> None:
    s = _summary(dropped=4, warnings=["sqlite locked for 3 s"], data_mode="preview")
    metrics = evaluate_hard_metrics(s, HardMetricsConfig(max_reject_rate=0.0001))
    md = write_report(s, tmp_path, hard_metrics=metrics).markdown.read_text(encoding="utf-8")
    head = md.split("## What the system did")[0]
    assert "Status: ATTENTION" in head
    assert "4 signals dropped" in head and "hard metric reject_rate failed" in head
    assert "empty by design" in head  # the preview-mode note
    assert "| reject_rate |" in md and "FAIL" in md and "sqlite locked for 3 s" in md


def test_empty_partition_still_renders(tmp_path: Path) -> None:
    sig = make_signals("ETHUSDT", 10, seed=1).head(0)
    s = build_summary(sig, make_orders(make_signals("ETHUSDT", 10, seed=1), 1).head(0), mids=None, parity=None,
                      data_mode="raw", dropped=0, warnings=[], date="2024-01-07", symbol="ETHUSDT")
    paths = write_report(s, tmp_path)
    assert paths.markdown.name == "summary_20240107_0000_ETHUSDT.md"
    for p in paths.charts.values():
        assert p.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("minutes", [300])
def test_long_window_chart(tmp_path: Path, minutes: int) -> None:
    """A long window switches to the stacked-area chart; it must still be a valid image."""
    sig = make_signals("BTCUSDT", 20_000, seed=9, minutes=minutes)
    s = build_summary(sig, make_orders(sig, 10), mids=None, parity=None, data_mode="raw", dropped=0, warnings=[],
                      date="2024-01-07", symbol="BTCUSDT")
    paths = write_report(s, tmp_path)
    with Image.open(paths.charts["signals"]) as img:
        img.verify()
    assert len(s["per_minute"]["table"]) == pl.Series(sig["ts_ms"] // 60_000).n_unique()
