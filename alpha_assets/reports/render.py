"""Write a summary as JSON + Markdown + PNG charts under ``<data_root>/logs/report/``.

File names (v13 convention ``summary_<YYYYMMDD_HHMM>``, stamp = the last *event* minute of
the data, never the wall clock, so a re-run over the same data rewrites the same files):

* one symbol:             ``summary_<stamp>_<SYMBOL>.json|.md``
* all symbols of a date:  ``summary_<stamp>.json|.md`` (the roll-up)
* charts beside them:     ``<base>_signals.png`` and ``<base>_pnl.png``, linked from the .md

Every file is written atomically (temporary name + rename), charts first, so a Markdown
file never links a chart that is not there yet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from alpha_assets.layout import Layout
from alpha_assets.markdown import markdown_table
from alpha_assets.reports.atomic import to_json, write_bytes_atomic
from alpha_assets.reports.hard_metrics import MetricResult

MARKS = {
    "mid": "1-second mid price",
    "last_trade": "last trade price of each second (no mids given)",
    "fill": "last fill price (no mids or trade prices given)",
}


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    markdown: Path
    charts: dict[str, Path]


def report_dir(data_root: Path) -> Path:
    return Layout(Path(data_root)).report_dir


def report_base(summary: dict[str, Any]) -> str:
    """``summary_<stamp>`` plus ``_<SYMBOL>`` for a one-symbol summary."""
    base = f"summary_{summary['stamp']}"
    return f"{base}_{summary['symbol']}" if summary.get("symbol") else base


def write_report(
    summary: dict[str, Any],
    data_root: Path,
    *,
    hard_metrics: list[MetricResult] | None = None,
) -> ReportPaths:
    """Write charts, JSON and Markdown; returns their paths."""
    # matplotlib loads here, when a report is drawn, not when the code location loads (~1-3 s)
    from alpha_assets.reports.charts import pnl_chart, signal_rate_chart

    out = report_dir(data_root)
    base = report_base(summary)
    charts = {"signals": out / f"{base}_signals.png", "pnl": out / f"{base}_pnl.png"}
    payload = dict(summary)
    if hard_metrics is not None:
        payload["hard_metrics"] = [m.as_dict() for m in hard_metrics]
    files = {
        charts["signals"]: signal_rate_chart(summary),
        charts["pnl"]: pnl_chart(summary),
        out / f"{base}.json": to_json(payload).encode("utf-8"),
        out / f"{base}.md": render_markdown(summary, {k: p.name for k, p in charts.items()}, hard_metrics).encode("utf-8"),
    }
    # four atomic writes side by side: their fsyncs are committed together instead of one after another
    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        list(pool.map(lambda item: write_bytes_atomic(*item), files.items()))
    return ReportPaths(json=out / f"{base}.json", markdown=out / f"{base}.md", charts=charts)


# --- markdown -------------------------------------------------------------------------------


def render_markdown(
    summary: dict[str, Any],
    charts: dict[str, str] | None = None,
    hard_metrics: list[MetricResult] | None = None,
) -> str:
    """The page a person reads in the morning: status first, then the figures behind it."""
    s = summary
    who = s["symbol"] or f"all symbols ({', '.join(s['symbols'])})"
    failed = [m for m in hard_metrics or [] if not m.passed]
    problems = list(s["attention"]) + [f"hard metric {m.name} failed: {m.description}" for m in failed]
    lines = [f"# Daily summary — {who} — {s['date']}", ""]
    if problems:
        lines += [f"**Status: ATTENTION** — {len(problems)} item(s) need a look:", ""]
        lines += [f"- {p}" for p in problems]
    else:
        lines.append("**Status: OK** — nothing needs attention.")
    w = s["window"]
    span = f"{w['first_minute_utc']} → {w['last_minute_utc']} ({w['minutes']} min)" if w["minutes"] else "no data"
    lines += [
        "",
        f"Data mode **{s['data_mode']}** · event window {span} · runs {', '.join(s['run_ids']) or '—'} · "
        f"report stamp `{s['stamp']}` (last event minute)",
        "",
    ]
    for note in s["notes"]:
        lines += [f"> {note}", ""]

    lines += ["## What the system did", "", markdown_table(pl.DataFrame(_headline(s), orient="row",
                                                                        schema=["figure", "value"],)), ""]

    if s.get("by_symbol"):
        lines += ["## By symbol", "", markdown_table(pl.DataFrame(
            [(r["symbol"], r["status"], r["total"], _pct(r["buy_ratio"]), _pct(r["strong_ratio"]), r["dropped"],
              f"{r['orders']} / {r['fills']}", _pct(r["reject_rate"]), _num(r["pnl"]), _num(r["sharpe"]))
             for r in s["by_symbol"]],
            orient="row", schema=["symbol", "status", "signals", "buy_ratio", "strong_ratio", "dropped",
                                  "orders / fills", "reject rate", "PnL", "Sharpe"])), ""]

    lines += ["## Last 5 minutes (event time)", ""]
    if s["last_5_min"]:
        rows = [(r["minute"], r["signals"], r["strong"], _pct(r["strong_ratio"]), r["buy"] + r["strong_buy"],
                 r["sell"] + r["strong_sell"]) for r in s["last_5_min"]]
        lines.append(markdown_table(pl.DataFrame(rows, orient="row", schema=[
            "minute (UTC)", "signals", "strong", "strong ratio", "buy+strong_buy", "sell+strong_sell"])))
    else:
        lines.append("(no signals)")
    lines.append("")

    if charts:
        lines += ["## Charts", ""]
        if "signals" in charts:
            lines += [f"![signals per minute and strong ratio]({charts['signals']})", ""]
        if "pnl" in charts:
            lines += [f"![PnL curve]({charts['pnl']})", ""]

    lines += ["## Signals by type", ""]
    counts = s["counts"]
    lines.append(markdown_table(pl.DataFrame({
        "type": list(counts), "rows": list(counts.values()),
        "share of total": [_pct(v / s["total"]) if s["total"] else "—" for v in counts.values()],
    })))
    lines += ["", f"confirmed {s['confirm']} · gated {s['gated']} · warm-up rows {s['warmup_rows']}", ""]

    lines += ["## Guard reasons", ""]
    if s["guard_reasons"]:
        lines.append(markdown_table(pl.DataFrame({"guard_reason": list(s["guard_reasons"]),
                                                  "rows": list(s["guard_reasons"].values())})))
        lines.append(f"\n{s['guarded_rows']} of {s['total']} rows carried at least one guard reason.")
    else:
        lines.append("(no guard reasons)")
    lines.append("")

    ex = s["execution"]
    lines += ["## Execution", "",
              f"{ex['orders']} orders ({ex['buy_orders']} BUY / {ex['sell_orders']} SELL): {ex['fills']} filled, "
              f"{ex['accepted']} accepted (open), {ex['rejects']} rejected — reject rate {_pct(s['reject_rate'])}, "
              f"mean slippage {_num(ex['slippage_bps_mean'])} bps.", ""]
    if s["rejects_by_reason"]:
        lines.append(markdown_table(pl.DataFrame({"reject reason": list(s["rejects_by_reason"]),
                                                  "orders": list(s["rejects_by_reason"].values())})))
        lines.append("")

    p = s["pnl_detail"]
    lines += ["## PnL", "",
              f"Net {_num(p['net_pnl'])} (gross {_num(p['gross_pnl'])}, fees {_num(p['fees'])} at {p['fee_bps']} bps, "
              f"turnover {_num(p['turnover'])}) · Sharpe {_sharpe(p)} · max drawdown {_num(p['max_drawdown'])} "
              f"({_pct(p['max_drawdown_frac'])} of capital {_num(p['capital'])}, {p['max_drawdown_resolution']} grid) · "
              f"marked to: {MARKS.get(p['mark_source'], p['mark_source'])}.", ""]
    if p["by_symbol"]:
        lines.append(markdown_table(pl.DataFrame(
            [(sym, v["n_fills"], v["net_pnl"], v["fees"], v["final_position"]) for sym, v in p["by_symbol"].items()],
            orient="row", schema=["symbol", "fills", "net PnL", "fees", "final position"])))
        lines.append("")

    lines += ["## Sink parity", ""]
    if s["parity"] is None:
        lines.append("(not compared for this report)")
    else:
        verdict = {True: "passed", False: "FAILED", None: "no verdict"}[s["parity_passed"]]
        lines.append(f"JSONL vs SQLite: **{verdict}**")
        flat = {k: v for k, v in s["parity"].items() if isinstance(v, int | float | str | bool) or v is None}
        if flat:
            lines += ["", markdown_table(pl.DataFrame({"figure": list(flat), "value": [str(v) for v in flat.values()]}))]
    lines.append("")

    if hard_metrics is not None:
        lines += ["## Hard metrics", ""]
        lines.append(markdown_table(pl.DataFrame(
            [(m.name, _num(m.value), m.comparator + " " + _num(m.threshold), "pass" if m.passed else "FAIL")
             for m in hard_metrics],
            orient="row", schema=["metric", "value", "threshold", "result"])))
        lines.append("")

    lines += ["## Warnings", ""]
    lines += [f"- {w}" for w in s["warnings"]] if s["warnings"] else ["(none)"]
    lines += ["", "## Definitions", "",
              "- buy_ratio = (buy + strong_buy) / directional; strong_ratio = (strong_buy + strong_sell) / directional; "
              "directional = rows that are not neutral.",
              "- confirm ratio = rows with confirm / all rows; reject rate = rejected orders / orders.",
              "- signals per minute: event-time UTC minutes from the first to the last signal, empty minutes included.",
              "- PnL: filled orders marked to market each second (see 'marked to' above), net of fees; Sharpe = mean/std of per-minute PnL "
              "× √525600 (24/7 market, risk-free 0); max drawdown = largest fall from a running peak (start = 0).",
              ""]
    return "\n".join(lines)


def _headline(s: dict[str, Any]) -> list[tuple[str, str]]:
    pm = s["per_minute"]
    rate = f"{_num(pm['mean'])} mean (min {pm['min']}, max {pm['max']}; {pm['silent_minutes']} silent min)" \
        if pm["minutes"] else "—"
    return [
        ("signals (total)", str(s["total"])),
        ("buy_ratio", _pct(s["buy_ratio"])),
        ("strong_ratio", _pct(s["strong_ratio"])),
        ("confirm ratio", _pct(s["confirm_ratio"])),
        ("signals per minute", rate),
        ("dropped", str(s["dropped"])),
        ("warnings", str(len(s["warnings"]))),
        ("orders / fills / rejects", f"{s['orders']} / {s['fills']} / {s['rejects']}"),
        ("reject rate", _pct(s["reject_rate"])),
        ("PnL (net, quote ccy)", _num(s["pnl"])),
        ("Sharpe (annualised)", _sharpe(s["pnl_detail"])),
        ("max drawdown", f"{_num(s['max_drawdown'])} ({_pct(s['max_drawdown_frac'])})"),
        ("sink parity", {True: "passed", False: "FAILED", None: "—"}[s["parity_passed"]]),
    ]


def _sharpe(p: dict[str, Any]) -> str:
    if p["sharpe"] is None:
        return f"— (needs ≥ {p.get('min_sharpe_minutes', 10)} minutes of PnL that varies)"
    err = p.get("sharpe_stderr")
    return f"{_num(p['sharpe'])} ± {_num(err)} (1 s.e.)" if err is not None else _num(p["sharpe"])


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f} %"


def _num(x: float | int | None) -> str:
    if x is None:
        return "—"
    if isinstance(x, int):
        return str(x)
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"
