"""The daily report, as plain modules (no dagster import).

* ``summary``: ``build_summary(signals, orders, ...)`` and ``rollup(summaries)`` → JSON-ready dicts.
* ``pnl``: mark-to-mid PnL of filled orders, per-minute returns, Sharpe, max drawdown.
* ``render``: ``write_report(summary, data_root)`` → ``logs/report/summary_<stamp>[_SYM].{json,md}`` + PNGs.
* ``charts``: the PNG charts (matplotlib, Agg, deterministic bytes).
* ``hard_metrics``: thresholds (``HardMetricsConfig``), ``evaluate_hard_metrics``, backtest vs paper.
* ``atomic``: temp-file + rename writes.
"""
