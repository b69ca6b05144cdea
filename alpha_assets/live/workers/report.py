"""Report worker: refreshes the live summary every ``report_interval_s`` seconds.

``<data_root>/logs/report/summary_<YYYYMMDD_HHMM>.json|md`` (stamp = last signal minute, event
time) and ``summary_latest.json``: total, buy_ratio, strong_ratio, per_minute, last-5-minute
rhythm, dropped, warnings, orders — the v13 field names.

    python -m alpha_assets.live.workers.report
"""

from __future__ import annotations

import json
import time
from typing import Any

import polars as pl

from alpha_assets.figures import whole
from alpha_assets.live.workers.common import (
    Heartbeat,
    StopFlag,
    WorkerConfig,
    heartbeat_path,
    load_config,
    read_json,
    ready,
)
from alpha_assets.reports.atomic import write_text_atomic
from alpha_assets.signal_contract import STRONG_TYPES
from alpha_assets.sinks.readers import read_jsonl_signals, sqlite_aggregates

NAME = "report"


def frame_aggregates(sig: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int], int]:
    per_min = (sig.with_columns((pl.col("ts_ms") // 60_000 * 60_000).alias("minute_ms"))
               .group_by("minute_ms").agg(pl.len().cast(pl.Int64).alias("n"),
                                          pl.col("signal_type").is_in(STRONG_TYPES).sum().cast(pl.Int64).alias("strong"))
               .sort("minute_ms"))
    by_type = dict(zip(*sig.group_by("signal_type").len().sort("signal_type").to_dict(as_series=False).values(),
                       strict=True))
    return per_min, by_type, int(sig["confirm"].sum())


def live_summary(cfg: WorkerConfig) -> dict[str, Any]:
    runtime = cfg.runtime_dir
    if cfg.sink in ("sqlite", "dual"):
        agg = sqlite_aggregates(cfg.runtime.sqlite_file(), cfg.run_id)
    else:
        sig = read_jsonl_signals(runtime, run_id=cfg.run_id)
        agg = frame_aggregates(sig) if sig.height else None
    harvest = read_json(heartbeat_path(cfg.data_root, "harvest"))
    broker = read_json(heartbeat_path(cfg.data_root, "broker"))
    warnings: list[str] = []
    total = 0 if agg is None else sum(agg[1].values())
    out: dict[str, Any] = {"run_id": cfg.run_id, "sink": cfg.sink, "input_mode": cfg.input_mode, "total": total}
    if agg is not None and total:
        per_min, by_type, confirm = agg
        buys = sum(by_type.get(t, 0) for t in ("buy", "strong_buy"))
        sells = sum(by_type.get(t, 0) for t in ("sell", "strong_sell"))
        strong = sum(by_type.get(t, 0) for t in STRONG_TYPES)
        directional = buys + sells
        last5 = per_min.tail(5)
        out |= {
            "buy_ratio": buys / directional if directional else None,
            "strong_ratio": strong / directional if directional else None,
            "confirm": confirm,
            "by_type": by_type,
            "per_minute": per_min.to_dicts(),
            "last_5min": {"signals_per_min": last5["n"].mean(), "strong_per_min": last5["strong"].mean(),
                          "minutes": last5.to_dicts()},
            "last_minute_ms": whole(per_min["minute_ms"].max()),
        }
    else:
        warnings.append("no signals yet")
    dropped = int(harvest.get("queue_dropped", 0) or 0)
    out["dropped"] = dropped
    if dropped:
        warnings.append(f"harvest queue_dropped={dropped}")
    if harvest.get("deadletter"):
        warnings.append(f"harvest dead letters={harvest['deadletter']}")
    out["orders"] = {k: broker.get(k, 0) for k in ("orders", "filled", "rejected", "buy", "sell")}
    out["warnings"] = warnings
    if cfg.input_mode == "preview":
        out["note"] = "preview (replay) input: StrategyMode snapshots stay empty in replay mode"
    return out


def markdown(s: dict[str, Any]) -> str:
    lines = [f"# Live summary — run {s['run_id']}", "", "| field | value |", "|---|---|"]
    for k in ("total", "buy_ratio", "strong_ratio", "confirm", "dropped", "sink", "input_mode"):
        v = s.get(k)
        lines.append(f"| {k} | {round(v, 4) if isinstance(v, float) else v} |")
    lines += ["", "## Last 5 minutes", "", "| minute (UTC) | signals | strong |", "|---|---|---|"]
    for m in s.get("last_5min", {}).get("minutes", []):
        lines.append(f"| {time.strftime('%H:%M', time.gmtime(m['minute_ms'] / 1000))} | {m['n']} | {m['strong']} |")
    if s.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in s["warnings"]]
    return "\n".join(lines) + "\n"


def write_summary(cfg: WorkerConfig) -> dict[str, Any]:
    s = live_summary(cfg)
    d = cfg.layout.report_dir
    stamp = time.strftime("%Y%m%d_%H%M", time.gmtime((s.get("last_minute_ms") or cfg.start_ms) / 1000))
    text = json.dumps(s, default=str, indent=2)
    write_text_atomic(d / f"summary_{stamp}.json", text)
    write_text_atomic(d / f"summary_{stamp}.md", markdown(s))
    write_text_atomic(d / "summary_latest.json", text)
    return s


def run(cfg: WorkerConfig, stop: StopFlag) -> None:
    beat = Heartbeat(cfg.heartbeat_path(NAME), NAME, cfg.heartbeat_s)
    c: dict[str, Any] = {"refreshes": 0, "errors": 0, "last_error": "", "total": 0}
    beat.beat(c, force=True)
    ready(NAME)
    next_at = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_at:
            next_at = time.monotonic() + cfg.report_interval_s
            try:
                c["total"] = write_summary(cfg)["total"]
                c["refreshes"] += 1
            except Exception as exc:  # a half-written sink read is retried at the next refresh
                c["errors"] += 1
                c["last_error"] = f"{type(exc).__name__}: {exc}"
        beat.beat(c)
        stop.event.wait(min(cfg.poll_s, cfg.report_interval_s))
    try:
        write_summary(cfg)
        c["refreshes"] += 1
    except Exception as exc:
        c["errors"] += 1
        c["last_error"] = f"{type(exc).__name__}: {exc}"
    beat.beat(c, force=True)


def main() -> None:
    stop = StopFlag()
    run(load_config(), stop)


if __name__ == "__main__":
    main()
