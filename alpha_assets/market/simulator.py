"""A seeded exchange day: trades and a 5-level book every 100 ms, per symbol.

The model, on the 100 ms book grid of a UTC day:
* a latent order-flow pressure `x` (AR(1), ~5 s memory, with occasional shocks) sets the
  probability that a taker buys, leans the level-1 queues towards the pressured side, and
  pushes the fair price in its direction over the following seconds — so order-flow
  imbalance (OFI) and cumulative volume delta (CVD) lead short-horizon returns;
* trade arrivals per 100 ms follow a discretised Hawkes process: every trade raises the
  intensity of the next ones (branching ratio 0.5, ~1.5 s decay) on top of a base rate with an
  intraday seasonality (peak ~14:00 UTC), exogenous bursts (jump-fed excitation, ~20 s decay,
  which also widen spreads and raise volatility) and |pressure|;
* sizes are heavy-tailed (lognormal body, Pareto tail), rounded to the symbol's step;
* the spread is one tick most of the time and widens during bursts; queue sizes grow with
  depth and evolve smoothly (AR(1) in log space).

Determinism and blocks: the day-level state (pressure, bursts, arrival counts per 100 ms, fair
price, book, update ids) is drawn from generators seeded by (seed, symbol, day) — about one
second of numpy for a day; the details of the trades (time inside the slot, side, size,
latency) of each minute come from a generator seeded by (seed, symbol, day, minute). Trade ids
are the day's running count, so any window of minutes is generated on its own and equals the
same window of the whole day: `SimulatorStream` (the live exchange server's source) makes only
the minutes it serves. Same seed and config → same bytes.

Symbols: tick size, quantity step, price level, activity and depth come from a profile table:
`PROFILES` (BTCUSDT tick 0.1, ETHUSDT tick 0.01), overridden or extended by
`SimulatorConfig.profiles`; an unknown symbol gets a stable generic profile from its name.
"""

from __future__ import annotations

import datetime as dt
import functools
import zlib
from dataclasses import dataclass

import numba
import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from alpha_assets.market.schema import BOOK_SCHEMA, LEVELS, TRADE_SCHEMA, conform, empty

DAY_MS = 86_400_000
BOOK_INTERVAL_MS = 100
TICKS_PER_DAY = DAY_MS // BOOK_INTERVAL_MS  # 864,000 snapshots
MINUTE_MS = 60_000
SLOTS_PER_MINUTE = MINUTE_MS // BOOK_INTERVAL_MS
MINUTES_PER_DAY = DAY_MS // MINUTE_MS


class SymbolProfile(BaseModel):
    """What makes one symbol's market look like itself (a row of the profile table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    price: float = Field(..., gt=0, description="starting price")
    tick: float = Field(..., gt=0, le=1_000, description="price tick size")
    step: float = Field(..., gt=0, le=1_000, description="quantity step size")
    trades_per_day: float = Field(..., gt=0, le=50_000_000, description="mean trade count over a day")
    median_qty: float = Field(..., gt=0, description="median trade size")
    depth_l1: float = Field(..., gt=0, description="typical level-1 queue")


PROFILES: dict[str, SymbolProfile] = {
    "BTCUSDT": SymbolProfile(price=60_000.0, tick=0.1, step=0.001, trades_per_day=1_650_000, median_qty=0.008,
                             depth_l1=3.5),
    "ETHUSDT": SymbolProfile(price=3_000.0, tick=0.01, step=0.001, trades_per_day=1_100_000, median_qty=0.12,
                             depth_l1=60.0),
}


def profile_for(symbol: str, cfg: SimulatorConfig | None = None) -> SymbolProfile:
    """The symbol's row of `cfg.profiles`, else of the built-in table (BTCUSDT, ETHUSDT, ...);
    a symbol in neither gets a stable generic profile derived from its name."""
    symbol = symbol.upper()
    if cfg is not None and symbol in cfg.profiles:
        return cfg.profiles[symbol]
    if symbol in PROFILES:
        return PROFILES[symbol]
    h = zlib.crc32(symbol.encode())
    price = float(10 ** (1 + h % 3))  # 10, 100 or 1000
    return SymbolProfile(price=price, tick=price * 1e-4, step=0.01, trades_per_day=300_000,
                         median_qty=1000.0 / price, depth_l1=20_000.0 / price)


class SimulatorConfig(BaseModel):
    """Knobs of the generator; the defaults make a busy, realistic day."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    trades_per_day: float | None = Field(None, gt=0, le=50_000_000, description="override the symbol profile")
    pressure_memory_s: float = Field(5.0, gt=0.1, le=600)
    pressure_noise: float = Field(0.22, ge=0, le=5)
    price_impact_ticks: float = Field(1.5, ge=0, le=20, description="fair-price drift per 100 ms at full pressure")
    price_noise_ticks: float = Field(2.5, ge=0, le=20)
    burst_rate_per_hour: float = Field(12.0, ge=0, le=3600)
    burst_memory_s: float = Field(20.0, gt=0.1, le=3600)
    hawkes_branching: float = Field(0.5, ge=0, le=0.9, description="offspring per trade (self-excitation)")
    hawkes_memory_s: float = Field(1.5, gt=0.05, le=600, description="decay time of the self-excitation")
    seasonality: float = Field(0.45, ge=0, lt=1, description="amplitude of the intraday cycle")
    latency_ms_median: float = Field(8.0, gt=0, le=5000)
    profiles: dict[str, SymbolProfile] = Field(
        default_factory=dict, description="per-symbol profile table (tick, step, price, ...); overrides PROFILES")

    @field_validator("profiles")
    @classmethod
    def _upper_symbols(cls, value: dict[str, SymbolProfile]) -> dict[str, SymbolProfile]:
        return {k.upper(): v for k, v in value.items()}

    def __hash__(self) -> int:  # the day caches key on the config; the profile dict is not hashable
        return hash(self.model_dump_json())


def day_start_ms(date: str) -> int:
    day = dt.date.fromisoformat(date)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def _rng(seed: int, symbol: str, day_index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(symbol.encode()), day_index, stream])


@numba.njit(cache=True)
def _ar1(shocks: np.ndarray, phi: float, start: float) -> np.ndarray:
    out = np.empty(shocks.shape[0])
    x = start
    for i in range(shocks.shape[0]):
        x = phi * x + shocks[i]
        out[i] = x
    return out


@numba.njit(cache=True)
def _fair_price(drift: np.ndarray, noise: np.ndarray, start: float) -> np.ndarray:
    out = np.empty(drift.shape[0])
    f = start
    for i in range(drift.shape[0]):
        f = f + drift[i] + noise[i]
        out[i] = f
    return out


@numba.njit(cache=True)
def _hawkes_counts(base: np.ndarray, u: np.ndarray, psi: float, alpha: float) -> np.ndarray:
    """Discretised Hawkes process: count_i ~ Poisson(base_i + e_i), e_{i+1} = psi e_i + alpha count_i
    (branching ratio alpha / (1 - psi)); Poisson by inverse CDF of the given uniforms, so the
    draws come from the caller's seeded generator."""
    out = np.empty(base.shape[0], dtype=np.int64)
    e = 0.0
    for i in range(base.shape[0]):
        lam = base[i] + e
        k, p = 0, np.exp(-lam)
        c = p
        while u[i] > c and k < 100_000:
            k += 1
            p *= lam / k
            c += p
        out[i] = k
        e = psi * e + alpha * k
    return out


def simulate_day(symbol: str, date: str, seed: int = 7, cfg: SimulatorConfig | None = None, *,
                 cache: bool = True) -> dict[str, pl.DataFrame]:
    """Trades and 5-level book snapshots of one UTC day; canonical columns, sorted by event time.
    `cache=False` (a batch step that reads the day once) keeps nothing of the day alive afterwards."""
    if cache:
        return _simulate_day_cached(symbol.upper(), date, int(seed), cfg or SimulatorConfig())
    day = _latent_day.__wrapped__(symbol.upper(), day_start_ms(date) // DAY_MS, int(seed), cfg or SimulatorConfig())
    return {"trades": _trades_frame(day, 0, MINUTES_PER_DAY), "book": day.book}


@functools.lru_cache(maxsize=4)
def _simulate_day_cached(symbol: str, date: str, seed: int, cfg: SimulatorConfig) -> dict[str, pl.DataFrame]:
    day = _latent_day(symbol, day_start_ms(date) // DAY_MS, seed, cfg)
    return {"trades": _trades_frame(day, 0, MINUTES_PER_DAY), "book": day.book}


@dataclass(frozen=True)
class _Day:
    """The day-level state of one (symbol, day, seed, cfg): everything but the trade details.

    Trade details (times inside a slot, side, size, latency) are drawn per minute from a
    generator seeded by (seed, symbol, day, minute), so any window of minutes can be made
    alone and equals the same window of the whole day.
    """

    symbol: str
    seed: int
    day_index: int
    prof: SymbolProfile
    cfg: SimulatorConfig
    grid_t: np.ndarray  # slot start times
    pressure: np.ndarray
    counts: np.ndarray  # trades per 100 ms slot
    first_trade: np.ndarray  # index of a slot's first trade in the day (cumulative counts)
    bid1: np.ndarray  # level-1 prices in ticks
    ask1: np.ndarray
    bid_q1: np.ndarray
    ask_q1: np.ndarray
    book: pl.DataFrame


@functools.lru_cache(maxsize=6)
def _latent_day(symbol: str, day_index: int, seed: int, cfg: SimulatorConfig) -> _Day:
    prof = profile_for(symbol, cfg)
    t0 = day_index * DAY_MS
    n = TICKS_PER_DAY
    rng = _rng(seed, symbol, day_index, 0)
    dt_s = BOOK_INTERVAL_MS / 1000.0
    grid_t = t0 + np.arange(n, dtype=np.int64) * BOOK_INTERVAL_MS

    # Latent order-flow pressure with occasional regime shocks.
    phi = np.exp(-dt_s / cfg.pressure_memory_s)
    shocks = rng.normal(0.0, cfg.pressure_noise * np.sqrt(1 - phi**2), n)
    shocks += (rng.random(n) < 2e-5) * rng.normal(0.0, 1.2, n)
    pressure = np.tanh(_ar1(shocks, phi, 0.0))

    # Self-exciting bursts and the intraday cycle drive the arrival intensity.
    psi = np.exp(-dt_s / cfg.burst_memory_s)
    jumps = (rng.random(n) < cfg.burst_rate_per_hour / 36_000.0) * rng.exponential(2.0, n)
    excitation = _ar1(jumps * (1 - psi), psi, 0.0)
    hours = (np.arange(n) * dt_s) / 3600.0
    season = 1.0 + cfg.seasonality * np.cos(2 * np.pi * (hours - 14.0) / 24.0)
    shape = season * (1.0 + 8.0 * excitation) * (0.7 + 0.6 * np.abs(pressure))
    per_day = cfg.trades_per_day or prof.trades_per_day
    # Self-excitation (Hawkes): each trade raises the intensity of the next ones; the immigrant
    # rate is scaled down by (1 - branching) so the day still averages `per_day` trades.
    base = shape * (per_day * (1.0 - cfg.hawkes_branching) / shape.sum())
    psi_h = np.exp(-dt_s / cfg.hawkes_memory_s)
    counts = _hawkes_counts(base, rng.random(n), psi_h, cfg.hawkes_branching * (1.0 - psi_h))

    # Fair price (in ticks) drifts with the pressure; the book sits around it.
    drift = cfg.price_impact_ticks * pressure
    noise = rng.normal(0.0, cfg.price_noise_ticks, n) * (1.0 + excitation)
    fair = _fair_price(drift, noise, prof.price / prof.tick)
    wide = rng.random(n) < np.clip(0.03 + 0.5 * excitation, 0, 0.9)
    spread_ticks = np.where(wide, rng.integers(2, 6, n), 1)
    bid1 = np.floor(fair - (spread_ticks - 1) / 2.0).astype(np.int64)
    ask1 = bid1 + spread_ticks

    # Queues: grow with depth, lean with pressure, evolve smoothly in log space.
    rho = np.exp(-dt_s / 2.0)
    decimals, qdec = _decimals(prof.tick), _decimals(prof.step)
    book: dict[str, np.ndarray] = {}
    lean = 0.8 * pressure
    for k in range(1, LEVELS + 1):
        base = np.log(prof.depth_l1 * (1.0 + 0.6 * (k - 1)))
        for side, sign in (("bid", 1.0), ("ask", -1.0)):
            wobble = _ar1(rng.normal(0.0, 0.35 * np.sqrt(1 - rho**2), n), rho, 0.0)
            lean_k = sign * lean / k  # deeper levels lean less
            qty = np.exp(base + wobble + lean_k)
            book[f"{side}_qty_{k}"] = np.maximum(np.round(qty, qdec), prof.step)
        book[f"bid_px_{k}"] = np.round((bid1 - (k - 1)) * prof.tick, decimals)
        book[f"ask_px_{k}"] = np.round((ask1 + (k - 1)) * prof.tick, decimals)

    # Update ids: strictly increasing, continuous (each snapshot's pu = previous u).
    urng = _rng(seed, symbol, day_index, 1)
    last_uid = (day_index % 100_000) * 100_000_000_000 + np.cumsum(1 + urng.poisson(18, n)).astype(np.int64)
    prev_uid = np.concatenate(([last_uid[0] - 1 - urng.poisson(18)], last_uid[:-1]))
    first_uid = prev_uid + 1
    book_lat = np.round(urng.lognormal(np.log(cfg.latency_ms_median), 0.5, n)).astype(np.int64) + 1
    book_df = conform(pl.DataFrame({
        "symbol": pl.repeat(symbol, n, eager=True),
        "event_time_ms": grid_t,
        "recv_time_ms": grid_t + book_lat,
        "first_update_id": first_uid,
        "last_update_id": last_uid,
        "prev_last_update_id": prev_uid,
        **{c: book[c] for c in BOOK_SCHEMA if c in book},
    }), BOOK_SCHEMA)  # no ingest_seq: a simulated day has no arrival order
    first_trade = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return _Day(symbol, seed, day_index, prof, cfg, grid_t, pressure, counts, first_trade, bid1, ask1,
                book["bid_qty_1"], book["ask_qty_1"], book_df)


def _decimals(step: float) -> int:
    return max(0, int(round(-np.log10(step))))


def _trades_frame(day: _Day, minute_lo: int, minute_hi: int) -> pl.DataFrame:
    """Trades of minutes [minute_lo, minute_hi) of the day, each minute from its own generator."""
    prof, cfg = day.prof, day.cfg
    qdec, decimals = _decimals(prof.step), _decimals(prof.tick)
    lo_slot, hi_slot = minute_lo * SLOTS_PER_MINUTE, minute_hi * SLOTS_PER_MINUTE
    m = int(day.first_trade[hi_slot] - day.first_trade[lo_slot])
    slot = np.repeat(np.arange(lo_slot, hi_slot), day.counts[lo_slot:hi_slot])
    offs = np.empty(m, np.int64)
    u_side = np.empty(m)
    body = np.empty(m)
    u_tail = np.empty(m)
    pareto = np.empty(m)
    lat = np.empty(m)
    lag = np.empty(m, np.int64)
    for minute in range(minute_lo, minute_hi):
        a = int(day.first_trade[minute * SLOTS_PER_MINUTE] - day.first_trade[lo_slot])
        b = int(day.first_trade[(minute + 1) * SLOTS_PER_MINUTE] - day.first_trade[lo_slot])
        k = b - a
        if k == 0:
            continue
        r = _rng(day.seed, day.symbol, day.day_index, 1_000 + minute)
        offs[a:b] = r.integers(0, BOOK_INTERVAL_MS, k)
        u_side[a:b] = r.random(k)
        body[a:b] = r.lognormal(np.log(prof.median_qty), 1.1, k)
        u_tail[a:b] = r.random(k)
        pareto[a:b] = r.pareto(1.6, k)
        lat[a:b] = r.lognormal(np.log(cfg.latency_ms_median), 0.5, k)
        lag[a:b] = r.integers(0, 3, k)
    order = np.lexsort((offs, slot))  # times inside a slot in order
    offs = offs[order]
    t = day.grid_t[slot] + offs
    press = day.pressure[slot]
    buy = u_side < 1.0 / (1.0 + np.exp(-2.2 * press))
    size = np.where(u_tail < 0.02, prof.median_qty * (pareto + 1.0) * 8.0, body)
    size *= 1.0 + 1.5 * np.abs(press)
    qty = np.maximum(np.round(size, qdec), prof.step)
    # A taker larger than the touch queue prints at level 2.
    l1 = np.where(buy, day.ask_q1[slot], day.bid_q1[slot])
    through = (qty > l1).astype(np.int64)
    px_ticks = np.where(buy, day.ask1[slot] + through, day.bid1[slot] - through)
    price = np.round(px_ticks * prof.tick, decimals)
    id_base = (day.day_index % 100_000) * 100_000_000 + int(day.first_trade[lo_slot])
    return conform(pl.DataFrame({
        "symbol": pl.repeat(day.symbol, m, eager=True),
        "event_time_ms": t,
        "trade_time_ms": t - lag,
        "recv_time_ms": t + np.round(lat).astype(np.int64) + 1,
        "agg_trade_id": id_base + np.arange(m, dtype=np.int64),
        "price": price,
        "qty": qty,
        "is_buyer_maker": ~buy,
    }), TRADE_SCHEMA)


class SimulatorStream:
    """Serves the simulated market incrementally: `advance_to(t)` returns every trade and book
    snapshot with event time in (previous t, t], in time order. The rows are exactly those of
    `simulate_day`, but only the minutes asked for are generated (plus the day-level state,
    ~1 s once per day), so a live server starts at once and holds little memory."""

    def __init__(self, symbol: str, seed: int = 7, start_ms: int = 0, cfg: SimulatorConfig | None = None) -> None:
        self.symbol = symbol.upper()
        self.seed = int(seed)
        self.cfg = cfg or SimulatorConfig()
        self.position_ms = int(start_ms)
        self._minute: tuple[int, pl.DataFrame] | None = None  # (absolute minute, its trades)

    def _minute_trades(self, minute_abs: int) -> pl.DataFrame:
        if self._minute is None or self._minute[0] != minute_abs:
            day_index, minute = divmod(minute_abs, MINUTES_PER_DAY)
            day = _latent_day(self.symbol, day_index, self.seed, self.cfg)
            self._minute = (minute_abs, _trades_frame(day, minute, minute + 1))
        return self._minute[1]

    def prime(self) -> None:
        """Build the current day's state and minute now (about a second), so the first
        `advance_to` on a serving loop does not stall."""
        self._minute_trades(self.position_ms // MINUTE_MS)

    def advance_to(self, t_ms: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        lo, hi = self.position_ms, int(t_ms)
        if hi <= lo:
            return empty(TRADE_SCHEMA), empty(BOOK_SCHEMA)
        window = (pl.col("event_time_ms") > lo) & (pl.col("event_time_ms") <= hi)
        trades = [self._minute_trades(mi).filter(window) for mi in range(lo // MINUTE_MS, hi // MINUTE_MS + 1)]
        books = []
        for day_index in range(lo // DAY_MS, hi // DAY_MS + 1):
            book = _latent_day(self.symbol, day_index, self.seed, self.cfg).book
            # the grid is regular: slice by index instead of scanning 864,000 rows
            a = max(0, (lo - day_index * DAY_MS) // BOOK_INTERVAL_MS)
            b = min(TICKS_PER_DAY, (hi - day_index * DAY_MS) // BOOK_INTERVAL_MS + 1)
            books.append(book.slice(a, max(0, b - a)).filter(window))
        self.position_ms = hi
        return pl.concat(trades), pl.concat(books)
