"""build_summary / rollup agree with figures recomputed independently (DuckDB SQL, plain loops)."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from reports_synth import T0, make_mids, make_orders, make_signals, reference_pnl

from alpha_assets.reports.pnl import PnLConfig, pnl_from_orders
from alpha_assets.reports.summary import PREVIEW_NOTE, build_summary, rollup

DATE = "2024-01-07"


def _sql(frames: dict[str, pl.DataFrame], query: str) -> list[tuple]:
    con = duckdb.connect()
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    return con.execute(query).fetchall()


def _build(signals: pl.DataFrame, orders: pl.DataFrame, **kw) -> dict:
    args = {"mids": None, "parity": None, "data_mode": "raw", "dropped": 0, "warnings": [], "date": DATE,
            "symbol": "BTCUSDT"}
    args.update(kw)
    return build_summary(signals, orders, **args)


@pytest.fixture(scope="module")
def day() -> dict:
    sig = make_signals("BTCUSDT", 4000, seed=11, minutes=30, gap=(12, 14))
    orders = make_orders(sig, seed=12, reject_p=0.12)
    mids = make_mids(sig, seed=13)
    parity = {"passed": True, "max_rel_diff": 0.0}
    summary = _build(sig, orders, mids=mids, parity=parity, dropped=3, warnings=["feed reconnect at 00:05"])
    return {"sig": sig, "orders": orders, "mids": mids, "summary": summary}


def test_signal_figures_match_sql(day: dict) -> None:
    s, sig = day["summary"], day["sig"]
    (total, buy, sbuy, sell, ssell, neutral, confirm), = _sql({"s": sig}, """
        SELECT count(*), count(*) FILTER (signal_type = 'buy'), count(*) FILTER (signal_type = 'strong_buy'),
               count(*) FILTER (signal_type = 'sell'), count(*) FILTER (signal_type = 'strong_sell'),
               count(*) FILTER (signal_type = 'neutral'), count(*) FILTER (confirm) FROM s""")
    directional = total - neutral
    assert s["total"] == total
    assert s["counts"] == {"neutral": neutral, "buy": buy, "strong_buy": sbuy, "sell": sell, "strong_sell": ssell}
    assert s["directional"] == directional
    assert s["buy_ratio"] == pytest.approx((buy + sbuy) / directional)
    assert s["strong_ratio"] == pytest.approx((sbuy + ssell) / directional)
    assert s["confirm"] == confirm
    assert s["confirm_ratio"] == pytest.approx(confirm / total)
    (gated, warm), = _sql({"s": sig}, "SELECT count(*) FILTER (gating), count(*) FILTER (warmup) FROM s")
    assert (s["gated"], s["warmup_rows"]) == (gated, warm)


def test_per_minute_table_and_rhythm_match_sql(day: dict) -> None:
    s, sig = day["summary"], day["sig"]
    rows = _sql({"s": sig}, """
        WITH m AS (SELECT (ts_ms // 60000) * 60000 AS minute, signal_type FROM s),
             grid AS (SELECT unnest(range((SELECT min(minute) FROM m), (SELECT max(minute) FROM m) + 60000, 60000))
                      AS minute)
        SELECT g.minute, count(m.signal_type),
               count(*) FILTER (m.signal_type IN ('strong_buy', 'strong_sell'))
        FROM grid g LEFT JOIN m USING (minute) GROUP BY 1 ORDER BY 1""")
    table = s["per_minute"]["table"]
    assert [(r["ts_ms"], r["total"], r["strong"]) for r in table] == [(m, n, k) for m, n, k in rows]
    counts = [n for _, n, _ in rows]
    assert s["per_minute"]["minutes"] == len(rows)
    assert s["per_minute"]["mean"] == pytest.approx(sum(counts) / len(rows))
    assert (s["per_minute"]["min"], s["per_minute"]["max"]) == (min(counts), max(counts))
    assert s["per_minute"]["silent_minutes"] == sum(1 for n in counts if n == 0) == 3
    assert [(r["ts_ms"], r["signals"], r["strong"]) for r in s["last_5_min"]] == [tuple(r) for r in rows[-5:]]
    last_minute = rows[-1][0]
    assert s["window"]["last_minute_ts_ms"] == last_minute
    assert s["stamp"] == "20240107_" + f"{(last_minute - T0) // 3_600_000:02d}{(last_minute - T0) // 60_000 % 60:02d}"


def test_guard_histogram_matches_sql(day: dict) -> None:
    s, sig = day["summary"], day["sig"]
    rows = _sql({"s": sig}, """
        WITH r AS (SELECT row_number() OVER () AS rid, trim(unnest(string_split(guard_reason, ','))) AS reason
                   FROM s WHERE guard_reason IS NOT NULL)
        SELECT reason, count(DISTINCT rid) FROM r WHERE lower(reason) NOT IN ('', 'none', 'ok')
        GROUP BY 1""")
    assert s["guard_reasons"] == dict(rows)
    (guarded,), = _sql({"s": sig}, """
        SELECT count(*) FROM s WHERE guard_reason IS NOT NULL AND lower(guard_reason) NOT IN ('', 'none', 'ok')""")
    assert s["guarded_rows"] == guarded


def test_order_figures_match_sql(day: dict) -> None:
    s, orders = day["summary"], day["orders"]
    (n, fills, rejects), = _sql({"o": orders}, """
        SELECT count(*), count(*) FILTER (status = 'filled'), count(*) FILTER (status = 'rejected') FROM o""")
    assert (s["orders"], s["fills"], s["rejects"]) == (n, fills, rejects)
    assert s["reject_rate"] == pytest.approx(rejects / n)
    assert s["fill_rate"] == pytest.approx(fills / n)
    reasons = _sql({"o": orders}, """
        SELECT coalesce(nullif(reason, ''), '(unspecified)'), count(*) FROM o WHERE status = 'rejected' GROUP BY 1""")
    assert s["rejects_by_reason"] == dict(reasons)
    (slip,), = _sql({"o": orders}, "SELECT avg(slippage_bps) FROM o WHERE status = 'filled'")
    assert s["execution"]["slippage_bps_mean"] == pytest.approx(slip)


def test_pnl_matches_independent_loop(day: dict) -> None:
    s = day["summary"]
    ref = reference_pnl(day["orders"], day["mids"], fee_bps=PnLConfig().fee_bps)
    assert s["pnl_detail"]["n_fills"] == ref["n_fills"] == s["fills"]
    assert s["pnl"] == pytest.approx(ref["net_pnl"], rel=1e-9, abs=1e-9)
    assert s["max_drawdown"] == pytest.approx(ref["max_drawdown"], rel=1e-9, abs=1e-9)
    assert s["sharpe"] == pytest.approx(ref["sharpe"], rel=1e-9)
    assert s["pnl_detail"]["mark_source"] == "mid"


def test_pnl_hand_computed_round_trip() -> None:
    """Buy 2 @ 100, mid walks 100 → 99 → 102, sell 2 @ 101: net = 2 - fees; drawdown = 2 + buy fee."""
    t = T0
    orders = pl.DataFrame({
        "symbol": ["X"] * 2, "client_order_id": ["a", "b"], "ts_ms": [t, t + 120_000], "side": ["BUY", "SELL"],
        "qty": [2.0, 2.0], "px_fill": [100.0, 101.0], "status": ["filled", "filled"], "reason": [None, None],
    }, schema_overrides={"reason": pl.Utf8})
    mids = pl.DataFrame({"symbol": ["X"] * 3, "ts_ms": [t, t + 60_000, t + 90_000], "mid": [100.0, 99.0, 102.0]})
    res = pnl_from_orders(orders, mids, PnLConfig(fee_bps=10))
    fee_buy, fee_sell = 2 * 100 * 0.001, 2 * 101 * 0.001
    assert res.figures["net_pnl"] == pytest.approx(2.0 - fee_buy - fee_sell)
    assert res.figures["fees"] == pytest.approx(fee_buy + fee_sell)
    assert res.figures["gross_pnl"] == pytest.approx(2.0)
    # Two falls: 0 → -2.2 (2 @ 99 after the buy fee) and the peak 3.8 (2 @ 102) → 1.598 after the sell
    # at 101 and its fee; the larger is the max drawdown.
    first_fall = 0.0 - (2 * 99.0 - 200.0 - fee_buy)
    second_fall = (2 * 102.0 - 200.0 - fee_buy) - (2.0 - fee_buy - fee_sell)
    assert second_fall > first_fall
    assert res.figures["max_drawdown"] == pytest.approx(second_fall)
    assert res.figures["capital"] == pytest.approx(2 * 102.0)  # largest gross exposure held
    assert res.minutes["pnl"].sum() == pytest.approx(res.figures["net_pnl"])
    assert res.by_symbol["X"]["final_position"] == 0.0


def test_mark_falls_back_to_trade_price_without_mids() -> None:
    sig = make_signals("ETHUSDT", 800, seed=3, minutes=10)
    orders = make_orders(sig, seed=4)
    s = _build(sig, orders, symbol="ETHUSDT")
    marks = sig.select("symbol", (pl.col("ts_ms") // 1000 * 1000).alias("ts_ms"), pl.col("price").alias("mid"))
    marks = marks.group_by("symbol", "ts_ms", maintain_order=True).last()
    ref = reference_pnl(orders, marks, PnLConfig().fee_bps)
    assert s["pnl_detail"]["mark_source"] == "last_trade"
    assert s["pnl"] == pytest.approx(ref["net_pnl"], abs=1e-9)


def test_attention_and_passthrough(day: dict) -> None:
    s = day["summary"]
    assert s["dropped"] == 3 and s["warnings"] == ["feed reconnect at 00:05"]
    assert s["status"] == "attention"
    joined = " | ".join(s["attention"])
    assert "3 signals dropped" in joined and "1 warning" in joined and "3 minute(s) without any signal" in joined
    assert s["parity_passed"] is True and s["notes"] == []


def test_clean_day_is_ok_and_preview_note() -> None:
    sig = make_signals("BTCUSDT", 1500, seed=5, minutes=10)
    s = _build(sig, make_orders(sig, seed=6), data_mode="preview", parity={"max_rel_diff": 0.001})
    assert s["status"] == "ok" and s["attention"] == []
    assert s["notes"] == [PREVIEW_NOTE] and "empty by design" in PREVIEW_NOTE
    bad = _build(sig, make_orders(sig, seed=6), parity={"max_rel_diff": 0.01})
    assert bad["parity_passed"] is False and any("parity" in a for a in bad["attention"])


def test_empty_inputs_do_not_crash() -> None:
    empty_sig = make_signals("BTCUSDT", 10, seed=1).head(0)
    empty_orders = make_orders(make_signals("BTCUSDT", 10, seed=1), seed=1).head(0)
    s = _build(empty_sig, empty_orders)
    assert s["total"] == 0 and s["buy_ratio"] is None and s["reject_rate"] is None and s["sharpe"] is None
    assert s["stamp"] == "20240107_0000"
    assert "no signals in the data" in s["attention"]


def test_bad_arguments_name_the_problem() -> None:
    sig = make_signals("BTCUSDT", 50, seed=1)
    with pytest.raises(ValueError, match="data_mode"):
        _build(sig, make_orders(sig, seed=1), data_mode="replay")
    with pytest.raises(ValueError, match="signal_type"):
        _build(sig.drop("signal_type"), make_orders(sig, seed=1))
    with pytest.raises(ValueError, match="dropped"):
        _build(sig, make_orders(sig, seed=1), dropped=-1)


def test_rollup_recomputes_from_tables_not_ratios() -> None:
    btc = make_signals("BTCUSDT", 3000, seed=21, minutes=20)
    eth = make_signals("ETHUSDT", 700, seed=22, minutes=25, start_ms=T0 + 180_000)
    ob, oe = make_orders(btc, seed=23, reject_p=0.05), make_orders(eth, seed=24, reject_p=0.4)
    mids = pl.concat([make_mids(btc, 25), make_mids(eth, 26)])
    sb = _build(btc, ob, mids=mids, dropped=1, parity={"passed": True})
    se = _build(eth, oe, mids=mids, symbol="ETHUSDT", warnings=["w"], parity={"passed": False})
    ro = rollup([sb, se])
    both = _build(pl.concat([btc, eth]), pl.concat([ob, oe]), mids=mids, symbol=None, dropped=1)
    for key in ("total", "counts", "directional", "buy_ratio", "strong_ratio", "confirm_ratio", "orders", "fills",
                "rejects", "reject_rate", "rejects_by_reason", "guard_reasons", "guarded_rows", "window"):
        assert ro[key] == pytest.approx(both[key]) if isinstance(ro[key], float) else ro[key] == both[key], key
    assert ro["per_minute"]["table"] == both["per_minute"]["table"]
    assert ro["pnl"] == pytest.approx(both["pnl"], abs=1e-9)
    assert ro["sharpe"] == pytest.approx(both["sharpe"], rel=1e-9)  # Sharpe is scale-free
    # Not an average of ratios: the symbols' reject rates are very different and weighted by orders.
    naive = (sb["reject_rate"] + se["reject_rate"]) / 2
    assert abs(ro["reject_rate"] - naive) > 0.01
    assert ro["dropped"] == 1 and ro["warnings"] == ["[ETHUSDT] w"]
    assert ro["parity_passed"] is False and ro["symbol"] is None and ro["symbols"] == ["BTCUSDT", "ETHUSDT"]
    # Attention names the symbol it comes from; the per-symbol table keeps each symbol's own figures.
    assert "[BTCUSDT] 1 signals dropped (queue overflow); expected 0" in ro["attention"]
    assert any(a.startswith("[ETHUSDT]") and "parity" in a for a in ro["attention"]) and ro["status"] == "attention"
    assert [(r["symbol"], r["reject_rate"]) for r in ro["by_symbol"]] == [("BTCUSDT", sb["reject_rate"]),
                                                                           ("ETHUSDT", se["reject_rate"])]
    with pytest.raises(ValueError, match="per date"):
        rollup([sb, {**se, "date": "2024-01-08"}])


def test_headline_figures_are_plain_numbers(day: dict) -> None:
    from alpha_assets.reports.summary import headline_figures

    flat = headline_figures(day["summary"])
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat.values())
    assert flat["total"] == day["summary"]["total"] and flat["reject_rate"] == day["summary"]["reject_rate"]
    empty = _build(day["sig"].head(0), day["orders"].head(0))
    assert "buy_ratio" not in headline_figures(empty)  # undefined, not 0


def test_unbookable_fill_is_an_error_naming_the_order(day: dict) -> None:
    orders = day["orders"].with_columns(
        pl.when(pl.col("client_order_id") == pl.col("client_order_id").filter(pl.col("status") == "filled").first())
        .then(-1.0).otherwise(pl.col("qty")).alias("qty"))
    bad_id = orders.filter(pl.col("qty") < 0)["client_order_id"][0]
    with pytest.raises(ValueError, match=bad_id):
        _build(day["sig"], orders)


def test_sharpe_needs_enough_minutes_and_carries_its_error() -> None:
    sig = make_signals("BTCUSDT", 900, seed=31, minutes=6)
    orders, mids = make_orders(sig, 32), make_mids(sig, 33)
    short = pnl_from_orders(orders, mids, PnLConfig())
    assert short.figures["minutes"] < 10 and short.figures["sharpe"] is None
    assert short.figures["sharpe_stderr"] is None
    res = pnl_from_orders(orders, mids, PnLConfig(min_sharpe_minutes=2))
    ref = reference_pnl(orders, mids, PnLConfig().fee_bps)
    n = res.figures["minutes"]
    assert res.figures["sharpe"] == pytest.approx(ref["sharpe"], rel=1e-9)
    sr_minute = ref["sharpe"] / 525_600 ** 0.5
    assert res.figures["sharpe_stderr"] == pytest.approx(((1 + sr_minute**2 / 2) / n) ** 0.5 * 525_600 ** 0.5)


def test_fine_curve_ends_at_the_net_pnl(day: dict) -> None:
    detail = day["summary"]["pnl_detail"]
    fine = detail["fine_curve"]
    assert 0 < len(fine) <= 1500
    assert fine[-1]["equity"] == pytest.approx(detail["net_pnl"])
    ends = [r["t_end_ms"] for r in fine]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)


def test_symbol_summary_refuses_other_symbols_and_accepts_symbolless_mids(day: dict) -> None:
    eth = make_signals("ETHUSDT", 50, seed=2)
    with pytest.raises(ValueError, match="ETHUSDT"):
        _build(pl.concat([day["sig"], eth]), day["orders"])
    plain = _build(day["sig"], day["orders"], mids=day["mids"].drop("symbol"))
    assert plain["pnl"] == pytest.approx(_build(day["sig"], day["orders"], mids=day["mids"])["pnl"])
