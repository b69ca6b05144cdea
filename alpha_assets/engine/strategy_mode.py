"""Strategy mode (regime) on event time (ALGORITHMS.md §5).

The schedule trigger is a pure function of each row's event time (vectorised here); the
market trigger keeps a window of samples stamped with event time (compiled, inside the
signal kernel); v13's core_algo only *proposes* a mode, so the regime is "active iff the
last `min_active_windows` activity flags were all active, else quiet".
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numba import njit

from alpha_assets.engine.config import StrategyModeConfig
from alpha_assets.engine.windows import sorted_insert, sorted_median, sorted_remove, sorted_replace

REGIMES = ["quiet", "active", "normal"]
QUIET, ACTIVE, NORMAL = range(3)
MODE_AUTO, MODE_ACTIVE, MODE_QUIET = range(3)

# stage-1 market gate, hard-coded in v13 (trades/min, quotes/s, spread bps, vol bps, volume usd)
STAGE1 = (50.0, 10.0, 12.0, 1.0, 50_000.0)


def schedule_active(ts_ms: pl.Series, cfg: StrategyModeConfig) -> np.ndarray:
    """Schedule trigger per row: local weekday enabled, not a holiday, minute inside a window."""
    n = ts_ms.len()
    if not cfg.schedule_enabled or not cfg.windows:
        return np.zeros(n, dtype=np.bool_)
    local = (
        ts_ms.cast(pl.Int64, strict=False).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
        .dt.convert_time_zone(cfg.timezone)
    )
    frame = pl.DataFrame({"t": local})
    minute = (pl.col("t").dt.hour().cast(pl.Int32) * 60 + pl.col("t").dt.minute().cast(pl.Int32))
    inside = pl.lit(False)
    for w in cfg.windows:
        start, end = w.minutes()
        if end > start:
            inside = inside | ((minute >= start) & (minute < end))
        elif cfg.wrap_midnight:
            inside = inside | (minute >= start) | (minute < end)
    ok = inside & pl.col("t").dt.weekday().is_in(cfg.enabled_weekdays)
    if cfg.holidays:
        ok = ok & ~pl.col("t").dt.strftime("%Y-%m-%d").is_in(cfg.holidays)
    return frame.select(ok.fill_null(False).alias("s")).get_column("s").to_numpy().astype(np.bool_, copy=False)


def market_params(cfg: StrategyModeConfig) -> np.ndarray:
    return np.array([
        cfg.window_secs, cfg.min_trades_per_min, cfg.min_quote_updates_per_sec, cfg.max_spread_bps,
        cfg.min_volatility_bps, cfg.min_volume_usd, cfg.quote_updates_per_sec, cfg.volume_usd,
        cfg.min_active_windows, 1.0 if cfg.market_enabled else 0.0, 1.0 if cfg.schedule_enabled else 0.0,
        1.0 if cfg.combine == "AND" else 0.0,
        {"auto": MODE_AUTO, "active": MODE_ACTIVE, "quiet": MODE_QUIET}[cfg.mode],
    ], dtype=np.float64)


M_WINDOW, M_TRADES, M_QUOTES, M_SPREAD, M_VOL, M_VOLUME, M_QUOTES_NOW, M_VOLUME_NOW, M_MIN_ACTIVE, \
    M_MARKET_ON, M_SCHEDULE_ON, M_AND, M_MODE = range(13)


def market_initial_state(cfg: StrategyModeConfig) -> dict[str, np.ndarray]:
    cap = max(1, int(cfg.window_secs * 2))
    return {
        "mt": np.zeros(cap), "mtr": np.zeros(cap), "msp": np.zeros(cap), "mvo": np.zeros(cap),
        "str": np.zeros(cap + 1), "ssp": np.zeros(cap + 1), "svo": np.zeros(cap + 1),
        # head, count, trailing run of active flags
        "mi": np.zeros(3, dtype=np.int64),
    }


@njit(cache=True, error_model="numpy", inline="always")
def regime_update(mi: np.ndarray, mt: np.ndarray, mtr: np.ndarray, msp: np.ndarray, mvo: np.ndarray,
                  s_tr: np.ndarray, s_sp: np.ndarray, s_vo: np.ndarray, mp: np.ndarray,
                  now: float, trades_per_min: float, spread_bps: float, vol_bps: float,
                  sched: bool) -> tuple[int, bool]:
    """Add one activity sample and return (regime, market_active)."""
    mode = int(mp[M_MODE])
    if mode == MODE_ACTIVE:
        return ACTIVE, False
    if mode == MODE_QUIET:
        return QUIET, False
    cap = mt.shape[0]
    # missing values fail every gate: rate 0, spread +inf, vol 0
    tr = trades_per_min if trades_per_min == trades_per_min else 0.0
    sp = spread_bps if spread_bps == spread_bps else np.inf
    vo = vol_bps if vol_bps == vol_bps else 0.0
    head = mi[0]
    cnt = mi[1]
    # prune samples older than the window (event time), then cap the count
    while cnt > 0 and now - mt[head] > mp[M_WINDOW]:
        sorted_remove(s_tr, cnt, mtr[head])
        sorted_remove(s_sp, cnt, msp[head])
        sorted_remove(s_vo, cnt, mvo[head])
        head = (head + 1) % cap
        cnt -= 1
    if cnt == cap:
        # full: the newest sample takes the oldest one's place (max window_secs x 2 samples)
        sorted_replace(s_tr, cnt, mtr[head], tr)
        sorted_replace(s_sp, cnt, msp[head], sp)
        sorted_replace(s_vo, cnt, mvo[head], vo)
        pos = head
        head = (head + 1) % cap
    else:
        pos = (head + cnt) % cap
        sorted_insert(s_tr, cnt, tr)
        sorted_insert(s_sp, cnt, sp)
        sorted_insert(s_vo, cnt, vo)
        cnt += 1
    mt[pos] = now
    mtr[pos] = tr
    msp[pos] = sp
    mvo[pos] = vo
    mi[0] = head
    mi[1] = cnt
    market = (tr >= 50.0 and mp[M_QUOTES_NOW] >= 10.0 and sp <= 12.0 and vo >= 1.0
              and mp[M_VOLUME_NOW] >= 50_000.0)
    if market and cnt >= 3:
        market = (sorted_median(s_tr, cnt) >= mp[M_TRADES] and mp[M_QUOTES_NOW] >= mp[M_QUOTES]
                  and sorted_median(s_sp, cnt) <= mp[M_SPREAD] and sorted_median(s_vo, cnt) >= mp[M_VOL]
                  and mp[M_VOLUME_NOW] >= mp[M_VOLUME])
    market_on = mp[M_MARKET_ON] > 0
    sched_on = mp[M_SCHEDULE_ON] > 0
    if market_on and sched_on:
        flag = (market and sched) if mp[M_AND] > 0 else (market or sched)
    elif market_on:
        flag = market
    elif sched_on:
        flag = sched
    else:
        flag = False
    if flag:
        mi[2] += 1
    else:
        mi[2] = 0
    regime = ACTIVE if mi[2] >= mp[M_MIN_ACTIVE] else QUIET
    return regime, market
