"""PNG charts of a summary: signal rhythm over the day and the PnL curve.

Figures are built with the object API on the Agg canvas (no pyplot global state, safe in
threads and without a display). PNG metadata is fixed (no "Software" tag), so the same
summary gives the same bytes with the same matplotlib.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before any backend import: headless

import matplotlib.dates as mdates  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 100
BAR_LIMIT = 180  # up to 3 hours of minutes as bars; longer windows as a stacked area
ROLLING_MINUTES = 15
COLORS = {"neutral": "#b0b0b0", "buy": "#2a9d55", "sell": "#d1495b", "strong": "#6a3d9a", "pnl": "#1f5f9e"}


def _utc_naive(ts_ms: int) -> dt.datetime:
    # Naive UTC datetimes: matplotlib then labels the axis in UTC without a tz database.
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).replace(tzinfo=None)


def _times(rows: list[dict[str, Any]]) -> list[dt.datetime]:
    return [_utc_naive(r["ts_ms"]) for r in rows]


def _title(summary: dict[str, Any], what: str) -> str:
    who = summary["symbol"] or "all symbols"
    return f"{who} · {summary['date']} · {what}"


def _time_axis(ax: Any, span_minutes: int) -> None:
    if span_minutes <= 10:
        locator: Any = mdates.MinuteLocator()
    elif span_minutes <= 30:
        locator = mdates.MinuteLocator(byminute=range(0, 60, 5))
    elif span_minutes <= 180:
        locator = mdates.MinuteLocator(byminute=range(0, 60, 15))
    else:
        locator = mdates.HourLocator(byhour=range(0, 24, max(1, span_minutes // 60 // 8)))
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel("event time (UTC)")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _empty(summary: dict[str, Any], what: str, message: str) -> bytes:
    fig = Figure(figsize=(10, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(_title(summary, what))
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=13, color="#555555")
    return _png(fig)


def _rolling_ratio(rows: list[dict[str, Any]], window: int) -> list[float]:
    out: list[float] = []
    strong = directional = 0
    for i, r in enumerate(rows):
        strong += r["strong"]
        directional += r["directional"]
        if i >= window:
            strong -= rows[i - window]["strong"]
            directional -= rows[i - window]["directional"]
        out.append(strong / directional * 100 if directional else float("nan"))
    return out


def signal_rate_chart(summary: dict[str, Any]) -> bytes:
    """Signals per minute stacked by direction (top) and the strong ratio per minute (bottom)."""
    rows = summary["per_minute"]["table"]
    if not rows:
        return _empty(summary, "signals per minute", "no signals in this partition")
    times = _times(rows)
    neutral = [r["neutral"] for r in rows]
    buys = [r["buy"] + r["strong_buy"] for r in rows]
    sells = [r["sell"] + r["strong_sell"] for r in rows]
    # Neutral evaluations outnumber directional signals ~1000:1 and would flatten them to nothing:
    # draw buys and sells, and give the neutral rate in the legend.
    labels = ["buy + strong_buy", "sell + strong_sell"]
    colors = [COLORS["buy"], COLORS["sell"]]
    directional = [b + s for b, s in zip(buys, sells, strict=True)]

    fig = Figure(figsize=(11, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    if len(rows) <= BAR_LIMIT:
        width = 1 / (24 * 60) * 0.9  # bars 0.9 minute wide (matplotlib dates are in days)
        base = [0] * len(rows)
        for series, label, color in zip((buys, sells), labels, colors, strict=True):
            top.bar(times, series, width=width, align="edge", bottom=base, color=color, label=label)
            base = [b + v for b, v in zip(base, series, strict=True)]
    else:
        # Hundreds of one-minute bars alias into noise: a stacked step area reads better.
        edges = times + [times[-1] + dt.timedelta(minutes=1)]
        top.stackplot(edges, *[s + s[-1:] for s in (buys, sells)], step="post", labels=labels,
                      colors=colors, linewidth=0)
    mean = sum(directional) / len(directional)
    top.axhline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.1f}/min")
    top.plot([], [], " ", label=f"neutral (not drawn): {sum(neutral) / len(neutral):,.0f}/min")
    top.set_ylabel("directional signals per minute")
    top.set_title(_title(summary, "signals per minute"))
    top.legend(loc="upper left", fontsize=8, ncol=4, framealpha=0.9)
    top.grid(axis="y", alpha=0.3)
    top.set_ylim(0, max(directional) * 1.3 + 1)

    centres = [t + dt.timedelta(seconds=30) for t in times]
    ratios = [r["strong_ratio"] * 100 if r["strong_ratio"] is not None else float("nan") for r in rows]
    long_span = len(rows) > BAR_LIMIT
    bottom.plot(centres, ratios, color=COLORS["strong"], marker=None if long_span else ".",
                linewidth=0.6 if long_span else 1.2, alpha=0.35 if long_span else 1.0,
                label="strong / directional, per minute")
    if long_span:
        # Per-minute ratios of a day are noise; the rolling ratio (sums, not a mean of ratios) shows drift.
        rolled = _rolling_ratio(rows, ROLLING_MINUTES)
        bottom.plot(centres, rolled, color=COLORS["strong"], linewidth=1.6,
                    label=f"rolling {ROLLING_MINUTES} min")
    if summary["strong_ratio"] is not None:
        day = summary["strong_ratio"] * 100
        bottom.axhline(day, color="black", linestyle="--", linewidth=1, label=f"whole window {day:.1f} %")
    bottom.set_ylabel("strong ratio (%)")
    bottom.set_ylim(0, max([v for v in ratios if v == v] + [1.0]) * 1.25)
    bottom.legend(loc="upper left", fontsize=8, ncol=3, framealpha=0.9)
    bottom.grid(alpha=0.3)
    _time_axis(bottom, len(rows))
    return _png(fig)


def pnl_chart(summary: dict[str, Any]) -> bytes:
    """Net PnL (after fees, marked to mid) at the end of each minute, with the drawdown shaded."""
    detail = summary["pnl_detail"]
    rows = detail["curve"]
    if not rows:
        return _empty(summary, "PnL", "no fills, so no PnL curve")
    fine = detail.get("fine_curve") or []
    if fine:
        # Thinned 1-second curve: each point is the equity at the end of its bucket.
        ends = [_utc_naive(r["t_end_ms"]) for r in fine]
        step = ends[1] - ends[0] if len(ends) > 1 else dt.timedelta(seconds=1)
        times, equity = [ends[0] - step] + ends, [0.0] + [r["equity"] for r in fine]
        label = "net PnL (quote ccy, after fees, marked each second)"
    else:
        starts = _times(rows)
        # Equity is sampled at the end of each minute; it is 0 before the first fill.
        times = [starts[0]] + [t + dt.timedelta(minutes=1) for t in starts]
        equity = [0.0] + [r["equity"] for r in rows]
        label = "net PnL at minute end (quote ccy, after fees)"
    peak: list[float] = []
    running = 0.0
    for e in equity:
        running = max(running, e)
        peak.append(running)

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax = fig.add_subplot()
    x: Any = times  # datetimes: matplotlib's date converter takes them, its stubs do not say so
    ax.plot(x, equity, color=COLORS["pnl"], linewidth=1.5, label=label)
    ax.fill_between(x, equity, peak, color=COLORS["sell"], alpha=0.25, linewidth=0, label="drawdown from peak")
    ax.axhline(0, color="black", linewidth=0.8)
    sharpe = detail["sharpe"]
    facts = [
        f"net {detail['net_pnl']:+.2f}",
        f"fees {detail['fees']:.2f}",
        f"Sharpe {sharpe:.1f} ± {detail['sharpe_stderr']:.1f}" if sharpe is not None else "Sharpe n/a",
        f"max DD {detail['max_drawdown']:.2f} ({detail.get('max_drawdown_resolution', '1s')} grid)",
        f"{detail['n_fills']} fills",
    ]
    ax.set_title(_title(summary, "PnL") + "\n" + " · ".join(facts), fontsize=11)
    ax.set_ylabel("PnL (quote currency)")
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    ax.grid(alpha=0.3)
    _time_axis(ax, len(rows))
    return _png(fig)
