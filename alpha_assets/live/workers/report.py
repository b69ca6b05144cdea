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
from alpha_assets.sinks.readers import read_jsonl_signals, read_sqlite_signals

NAME = "report"


def live_summary(cfg: WorkerConfig) -> dict[str, Any]:
    runtime = cfg.runtime_dir
    if cfg.sink == "sqlite":
        db = runtime / "signals.db"
        sig = read_sqlite_signals(db, run_id=cfg.run_id) if db.exists() else None
    else:
        sig = read_jsonl_signals(runtime, run_id=cfg.run_id)
    harvest = read_json(heartbeat_path(cfg.data_root, "harvest"))
    broker = read_json(heartbeat_path(cfg.data_root, "broker"))
    warnings: list[str] = []
    total = 0 if sig is None else sig.height
    out: dict[str, Any] = {"run_id": cfg.run_id, "sink": cfg.sink, "input_mode": cfg.input_mode, "total": total}
    if sig is not None and total:
        st = sig["signal_type"]
        buys = int(st.is_in(["buy", "strong_buy"]).sum())
        sells = int(st.is_in(["sell", "strong_sell"]).sum())
        strong = int(st.is_in(["strong_buy", "strong_sell"]).sum())
        directional = buys + sells
        per_min = (sig.with_columns((pl.col("ts_ms") // 60_000 * 60_000).alias("minute_ms"))
                   .group_by("minute_ms").agg(pl.len().alias("n"),
                                              pl.col("signal_type").is_in(["strong_buy", "strong_sell"]).sum()
                                              .alias("strong"))
                   .sort("minute_ms"))
        last5 = per_min.tail(5)
        out |= {
            "buy_ratio": buys / directional if directional else None,
            "strong_ratio": strong / directional if directional else None,
            "confirm": int(sig["confirm"].sum()),
            "by_type": dict(zip(*sig.group_by("signal_type").len().sort("signal_type").to_dict(as_series=False).values(),
                                strict=True)),
            "per_minute": per_min.to_dicts(),
            "last_5min": {"signals_per_min": last5["n"].mean(), "strong_per_min": last5["strong"].mean(),
                          "minutes": last5.to_dicts()},
            "last_minute_ms": int(per_min["minute_ms"].max()),
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
    d = cfg.data_root / "logs" / "report"
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
