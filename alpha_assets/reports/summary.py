"""The daily summary: what the system did on a partition, and whether anything is wrong.

``build_summary`` turns one partition's signals and orders into a JSON-ready dict;
``rollup`` combines the summaries of several symbols of one date by re-aggregating their
count tables (never by averaging their ratios).

Definitions (every ratio is ``None`` when its denominator is 0):

* ``total``: signal rows (one per evaluation, neutral included).
* ``directional``: rows whose ``signal_type`` is buy, strong_buy, sell or strong_sell.
* ``buy_ratio = (buy + strong_buy) / directional``.
* ``strong_ratio = (strong_buy + strong_sell) / directional``.
* ``confirm_ratio = rows with confirm == True / total``.
* ``per_minute``: minutes are UTC event-time minutes ``[floor(ts_ms / 60000) * 60000, +60 s)``;
  the table holds every minute from the first to the last signal, empty minutes included
  (``silent_minutes`` counts them); ``mean = total / minutes``.
* ``last_5_min``: the last 5 minutes of event time ending with the minute of the last signal
  (fewer when the data is shorter), signals and strong signals in each.
* ``guard_reasons``: histogram of ``guard_reason``; a value may list several reasons
  separated by ``,`` or ``;`` and each counts once; null, "", "none" and "ok" mean no guard.
* ``orders``: order rows; ``fills``: status == "filled"; ``rejects``: status == "rejected";
  ``reject_rate = rejects / orders``; ``fill_rate = fills / orders``.
* ``pnl``, ``sharpe``, ``max_drawdown``: see ``alpha_assets.reports.pnl`` (mark-to-mid, net of
  fees, Sharpe annualised from per-minute returns with sqrt(525600)).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Literal

import polars as pl

from alpha_assets.reports.pnl import (
    PnLConfig,
    fine_curve,
    mids_from_signals,
    pnl_from_orders,
)
from alpha_assets.reports.summary_tables import (
    COUNT_COLUMNS,
    PER_MINUTE_SCHEMA,
    complete_minutes,
    execution_figures,
    guard_histogram,
    per_minute_table,
    records,
    rollup_execution,
    rollup_pnl,
)
from alpha_assets.signal_contract import DIRECTIONAL_TYPES, SIGNAL_TYPES, parity_passed

SCHEMA_VERSION = 1
PREVIEW_NOTE = (
    "preview mode: strategy-mode snapshots are empty by design (preview bars carry no order-book "
    "state for StrategyMode) — not an error. / StrategyMode 快照在回放(preview)模式下默认为空。"
)
SIGNAL_COLUMNS = ("ts_ms", "signal_type", "confirm")
ORDER_COLUMNS = ("symbol", "client_order_id", "ts_ms", "side", "qty", "px_fill", "status", "reason")
DataMode = Literal["raw", "preview"]


def build_summary(
    signals: pl.DataFrame,
    orders: pl.DataFrame,
    *,
    mids: pl.DataFrame | None,
    parity: dict | None,
    data_mode: DataMode,
    dropped: int,
    warnings: list[str],
    date: str,
    symbol: str | None,
    pnl_cfg: PnLConfig | None = None,
) -> dict[str, Any]:
    """Summarise one partition (or one date when ``symbol`` is None and the frames hold several).

    ``mids`` (``symbol, ts_ms, mid``, 1-second; ``symbol`` may be omitted for one symbol; see
    ``pnl.mids_from_book`` / ``pnl.mids_from_preview``) marks the positions; when None, the last
    trade price of each second from ``signals.price`` is used instead (``pnl_detail.mark_source``).
    """
    if data_mode not in ("raw", "preview"):
        raise ValueError(f"data_mode must be 'raw' or 'preview', got {data_mode!r}")
    if not isinstance(dropped, int) or dropped < 0:
        raise ValueError(f"dropped must be an int >= 0, got {dropped!r}")
    _require(signals, SIGNAL_COLUMNS, "signals")
    _require(orders, ORDER_COLUMNS, "orders")
    if symbol is not None:
        others = sorted((set(_col_values(signals, "symbol")) | set(_col_values(orders, "symbol"))) - {symbol})
        if others:
            raise ValueError(f"summary of {symbol} was given rows of other symbols {others}; pass symbol=None "
                             "for a multi-symbol summary or filter the frames")
        if mids is not None and "symbol" not in mids.columns:
            mids = mids.with_columns(pl.lit(symbol).alias("symbol"))

    per_minute = per_minute_table(signals)
    guard_counts, guarded_rows = guard_histogram(signals)
    pnl_cfg = pnl_cfg or PnLConfig()
    if mids is not None:
        marks, mark_source = mids, "mid"
    elif "price" in signals.columns and not signals.is_empty():
        marks, mark_source = mids_from_signals(signals), "last_trade"
    else:
        marks, mark_source = pl.DataFrame(schema={"symbol": pl.Utf8, "ts_ms": pl.Int64, "mid": pl.Float64}), "fill"
    pnl = pnl_from_orders(orders, marks, pnl_cfg)
    pnl_detail = {
        **pnl.figures,
        "mark_source": mark_source,
        "by_symbol": pnl.by_symbol,
        "curve": records(pnl.minutes.select("ts_ms", "equity", "pnl")),
        "fine_curve": records(fine_curve(pnl.curve)),
    }
    symbols = sorted(set(_col_values(signals, "symbol")) | set(_col_values(orders, "symbol")))
    return _assemble(
        kind="symbol" if symbol else "date",
        date=date,
        symbol=symbol,
        symbols=symbols or ([symbol] if symbol else []),
        data_mode=data_mode,
        run_ids=sorted(set(_col_values(signals, "run_id"))),
        per_minute=per_minute,
        guard_counts=guard_counts,
        guarded_rows=guarded_rows,
        gated=_count_true(signals, "gating"),
        warmup_rows=_count_true(signals, "warmup"),
        execution=execution_figures(orders),
        pnl_detail=pnl_detail,
        dropped=dropped,
        warnings=list(warnings),
        parity=parity,
    )


def rollup(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """All-symbols summary of one date, recomputed from the summaries' count tables.

    Counts, histograms and order figures are summed; ratios are recomputed from the sums; the
    PnL curve is the sum of the symbols' per-minute equity (each carried forward, 0 before its
    first fill), so Sharpe is recomputed on it and the max drawdown is measured on the minute
    grid (a symbol's own drawdown uses its 1-second grid). Capital is the sum of the capitals.
    """
    if not summaries:
        raise ValueError("rollup needs at least one summary")
    dates = {s["date"] for s in summaries}
    if len(dates) != 1:
        raise ValueError(f"rollup is per date; got summaries of {sorted(dates)}")
    tables = [pl.DataFrame(s["per_minute"]["table"], schema=PER_MINUTE_SCHEMA) for s in summaries]
    counts = pl.concat(tables).group_by("ts_ms").agg(pl.col(c).sum() for c in COUNT_COLUMNS)
    per_minute = complete_minutes(counts)
    guard_counts: dict[str, int] = {}
    for s in summaries:
        for reason, n in s["guard_reasons"].items():
            guard_counts[reason] = guard_counts.get(reason, 0) + int(n)
    modes = sorted({s["data_mode"] for s in summaries})
    warnings = [f"[{s['symbol'] or 'ALL'}] {w}" for s in summaries for w in s["warnings"]]
    parity = {s["symbol"] or f"#{i}": s["parity"] for i, s in enumerate(summaries) if s["parity"] is not None}
    out = _assemble(
        kind="rollup",
        date=dates.pop(),
        symbol=None,
        symbols=sorted({sym for s in summaries for sym in s["symbols"]}),
        data_mode=modes[0] if len(modes) == 1 else "mixed",
        run_ids=sorted({r for s in summaries for r in s["run_ids"]}),
        per_minute=per_minute,
        guard_counts=dict(sorted(guard_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        guarded_rows=sum(s["guarded_rows"] for s in summaries),
        gated=sum(s["gated"] for s in summaries),
        warmup_rows=sum(s["warmup_rows"] for s in summaries),
        execution=rollup_execution([s["execution"] for s in summaries]),
        pnl_detail=rollup_pnl([s["pnl_detail"] for s in summaries]),
        dropped=sum(s["dropped"] for s in summaries),
        warnings=warnings,
        parity=parity or None,
    )
    out["by_symbol"] = [
        {"symbol": s["symbol"] or ",".join(s["symbols"]), "status": s["status"], "total": s["total"],
         "buy_ratio": s["buy_ratio"], "strong_ratio": s["strong_ratio"], "confirm_ratio": s["confirm_ratio"],
         "dropped": s["dropped"], "orders": s["orders"], "fills": s["fills"], "reject_rate": s["reject_rate"],
         "pnl": s["pnl"], "sharpe": s["sharpe"], "max_drawdown": s["max_drawdown"]}
        for s in summaries
    ]
    # What needs attention is said per symbol (which one is wrong is the useful part).
    items = [f"[{s['symbol'] or ','.join(s['symbols'])}] {a}" for s in summaries for a in s["attention"]]
    if out["total"] == 0 and not items:
        items = ["no signals in the data"]
    out["attention"] = list(dict.fromkeys(items))
    out["status"] = "attention" if out["attention"] else "ok"
    return out


def headline_figures(summary: dict[str, Any]) -> dict[str, float | int]:
    """The plain numbers of a summary (for asset metadata the UI plots across partitions).

    Ratios that are undefined (None) are left out rather than reported as 0.
    """
    flat: dict[str, Any] = {
        "total": summary["total"],
        "buy_ratio": summary["buy_ratio"],
        "strong_ratio": summary["strong_ratio"],
        "confirm_ratio": summary["confirm_ratio"],
        "signals_per_minute": summary["per_minute"]["mean"],
        "silent_minutes": summary["per_minute"]["silent_minutes"],
        "last_minute_signals": summary["last_5_min"][-1]["signals"] if summary["last_5_min"] else None,
        "dropped": summary["dropped"],
        "warnings": len(summary["warnings"]),
        "guarded_rows": summary["guarded_rows"],
        "orders": summary["orders"],
        "fills": summary["fills"],
        "rejects": summary["rejects"],
        "reject_rate": summary["reject_rate"],
        "pnl": summary["pnl"],
        "fees": summary["pnl_detail"]["fees"],
        "sharpe": summary["sharpe"],
        "max_drawdown": summary["max_drawdown"],
        "max_drawdown_frac": summary["max_drawdown_frac"],
        "attention_items": len(summary["attention"]),
    }
    return {k: v for k, v in flat.items() if v is not None}


# --- assembly -------------------------------------------------------------------------------


def _assemble(
    *,
    kind: str,
    date: str,
    symbol: str | None,
    symbols: list[str],
    data_mode: str,
    run_ids: list[str],
    per_minute: pl.DataFrame,
    guard_counts: dict[str, int],
    guarded_rows: int,
    gated: int,
    warmup_rows: int,
    execution: dict[str, Any],
    pnl_detail: dict[str, Any],
    dropped: int,
    warnings: list[str],
    parity: dict | None,
) -> dict[str, Any]:
    counts = {t: int(per_minute[t].sum()) for t in SIGNAL_TYPES}
    total = int(per_minute["total"].sum())
    directional = sum(counts[t] for t in DIRECTIONAL_TYPES)
    confirm = int(per_minute["confirm"].sum())
    minutes = per_minute.height
    first_ts = int(per_minute["ts_ms"][0]) if minutes else None
    last_ts = int(per_minute["ts_ms"][-1]) if minutes else None
    table = per_minute.with_columns(
        pl.from_epoch("ts_ms", time_unit="ms").dt.strftime("%H:%M").alias("minute")
    ).select("ts_ms", "minute", *COUNT_COLUMNS, "directional", "strong", "strong_ratio", "buy_ratio")
    silent = table.filter(pl.col("total") == 0)
    last5 = table.tail(5).select("minute", "ts_ms", pl.col("total").alias("signals"), "strong", "strong_ratio",
                                 "buy", "strong_buy", "sell", "strong_sell")
    per_min_counts = table["total"]
    orders_n = execution["orders"]
    pnl_detail = {**pnl_detail, "max_drawdown_resolution": pnl_detail.get("max_drawdown_resolution", "1s")}
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "date": date,
        "symbol": symbol,
        "symbols": symbols,
        "stamp": _stamp(last_ts, date),
        "data_mode": data_mode,
        "run_ids": run_ids,
        "status": "ok",
        "attention": [],
        "window": {
            "first_minute_ts_ms": first_ts,
            "last_minute_ts_ms": last_ts,
            "first_minute_utc": _utc(first_ts),
            "last_minute_utc": _utc(last_ts),
            "minutes": minutes,
        },
        "total": total,
        "counts": counts,
        "directional": directional,
        "buy_ratio": _ratio(counts["buy"] + counts["strong_buy"], directional),
        "strong_ratio": _ratio(counts["strong_buy"] + counts["strong_sell"], directional),
        "confirm": confirm,
        "confirm_ratio": _ratio(confirm, total),
        "gated": gated,
        "warmup_rows": warmup_rows,
        "per_minute": {
            "mean": _ratio(total, minutes),
            "min": int(per_min_counts.min()) if minutes else None,  # type: ignore[arg-type]
            "max": int(per_min_counts.max()) if minutes else None,  # type: ignore[arg-type]
            "minutes": minutes,
            "silent_minutes": silent.height,
            "table": records(table),
        },
        "last_5_min": records(last5),
        "dropped": dropped,
        "warnings": warnings,
        "guard_reasons": guard_counts,
        "guarded_rows": guarded_rows,
        "orders": orders_n,
        "fills": execution["fills"],
        "rejects": execution["rejects"],
        "rejects_by_reason": execution["rejects_by_reason"],
        "reject_rate": _ratio(execution["rejects"], orders_n),
        "fill_rate": _ratio(execution["fills"], orders_n),
        "execution": execution,
        "pnl": pnl_detail["net_pnl"],
        "sharpe": pnl_detail["sharpe"],
        "max_drawdown": pnl_detail["max_drawdown"],
        "max_drawdown_frac": pnl_detail["max_drawdown_frac"],
        "pnl_detail": pnl_detail,
        "parity": parity,
        "parity_passed": parity_verdict(parity),
        "notes": [PREVIEW_NOTE] if data_mode in ("preview", "mixed") else [],
    }
    summary["attention"] = attention_items(summary, silent)
    summary["status"] = "attention" if summary["attention"] else "ok"
    return summary


def attention_items(summary: dict[str, Any], silent: pl.DataFrame | None = None) -> list[str]:
    """What a person should look at, in plain words; empty when nothing is wrong."""
    items: list[str] = []
    if summary["total"] == 0:
        items.append("no signals in the data")
    if summary["dropped"] > 0:
        items.append(f"{summary['dropped']} signals dropped (queue overflow); expected 0")
    if summary["warnings"]:
        items.append(f"{len(summary['warnings'])} warning(s) raised during the run (listed below)")
    if silent is not None and silent.height:
        first = silent["minute"][0]
        items.append(f"{silent.height} minute(s) without any signal inside the window (first at {first} UTC)")
    if summary["parity_passed"] is False:
        items.append("sink parity failed: the JSONL and SQLite sinks disagree")
    if summary["orders"] and summary["fills"] == 0:
        items.append(f"{summary['orders']} orders but no fills")
    pnl = summary["pnl"]
    if pnl is not None and not math.isfinite(pnl):
        items.append("PnL is not finite")
    return items


def parity_verdict(parity: dict | None) -> bool | None:
    """True/False from a ParityResult dict (or a dict of them per symbol); None when unknown."""
    if parity is None:
        return None
    if all(isinstance(v, dict) for v in parity.values()) and parity:
        verdicts = [parity_verdict(v) for v in parity.values()]
        if any(v is False for v in verdicts):
            return False
        return True if all(v is True for v in verdicts) else None
    if isinstance(parity.get("passed"), bool):
        return bool(parity["passed"])
    rel = parity.get("max_rel_diff")
    if isinstance(rel, int | float):
        return parity_passed(float(rel))
    return None


# --- helpers --------------------------------------------------------------------------------


def _require(frame: pl.DataFrame, cols: tuple[str, ...], what: str) -> None:
    if frame.is_empty() and not frame.columns:
        return
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame is missing column(s) {missing}; has {frame.columns}")


def _col_values(frame: pl.DataFrame, col: str) -> list[str]:
    if col not in frame.columns or frame.is_empty():
        return []
    return [v for v in frame[col].unique().to_list() if v is not None]


def _count_true(frame: pl.DataFrame, col: str) -> int:
    return int(frame[col].fill_null(False).sum()) if col in frame.columns and not frame.is_empty() else 0


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _utc(ts_ms: int | None) -> str | None:
    if ts_ms is None:
        return None
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _stamp(last_minute_ts: int | None, date: str) -> str:
    """``YYYYMMDD_HHMM`` of the last event minute; the date at 00:00 when there is no data."""
    if last_minute_ts is None:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            raise ValueError(f"date must be YYYY-MM-DD, got {date!r}")
        return date.replace("-", "") + "_0000"
    return dt.datetime.fromtimestamp(last_minute_ts / 1000, tz=dt.UTC).strftime("%Y%m%d_%H%M")
