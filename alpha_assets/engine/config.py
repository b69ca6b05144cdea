"""Engine configuration: every v13 parameter with the value v13 actually used as default.

Names follow ALGORITHMS.md. Bad values fail at construction, naming the field and range.
`resolve_config` accepts None (v13 defaults), an `EngineConfig`, or a mapping of overrides:
flat ALGORITHMS.md names (`{"reset_on_gap_ms": 1e15}`), dotted names (`{"cvd.ema_alpha": 0.1}`)
or nested sections (`{"ofi": {"z_window": 50}}`). A flat name that exists in several
sections (ema_alpha, z_window, z_clip) goes to the section of the entry point being called,
else it is an error that lists the candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class EngineConfigError(ValueError):
    """A bad engine configuration; the message names the field and the allowed range."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OFIConfig(_Section):
    levels: int = Field(5, ge=1, le=5, description="book levels K (tabular input has 5)")
    weights: list[float] | None = Field(None, description="null = built-in [0.4,0.25,0.2,0.1,0.05]")
    z_window: int = Field(80, ge=2, le=100_000)
    ema_alpha: float = Field(0.30, gt=0.0, le=1.0)
    z_clip: float | None = Field(3.0, description="null, <= 0 or >= 1e6 disables clipping")
    reset_on_gap_ms: float = Field(2000.0, ge=0.0)
    reset_on_session_change: bool = True
    per_symbol_window: bool = True
    std_floor: float = Field(1e-4, gt=0.0)
    winsor_k: float = Field(0.9, gt=0.0, le=1e6, description="winsorize_ofi_delta")

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("weights must be null or a non-empty list")
        if sum(max(0.0, float(w)) for w in value) <= 0:
            raise ValueError("weights must have a positive sum after negatives are set to 0")
        return [float(w) for w in value]

    def normalised_weights(self) -> list[float]:
        """ALGORITHMS 1.2: truncate/pad to K, negatives to 0, divide by the left-to-right sum."""
        raw = [0.4, 0.25, 0.2, 0.1, 0.05] if self.weights is None else list(self.weights)
        raw = (raw + [0.0] * self.levels)[: self.levels]
        pos = [max(0.0, w) for w in raw]
        total: float = 0
        for w in pos:
            total += w
        if total <= 0:
            raise EngineConfigError(f"ofi.weights: truncated to levels={self.levels} they sum to 0")
        return [w / total for w in pos]

    def warmup_threshold(self) -> int:
        return max(5, self.z_window // 5)

    def clip_value(self) -> float:
        """The clip bound, or 0.0 when clipping is disabled."""
        z = self.z_clip
        if z is None or z <= 0 or z >= 1e6:
            return 0.0
        return float(z)


class CVDSymbolOverride(_Section):
    winsor_limit: float = Field(..., gt=0.0, le=1e6)
    mad_multiplier: float = Field(..., ge=0.0, le=1e6)


def _v13_cvd_overrides() -> dict[str, CVDSymbolOverride]:
    # v13 hard-coded these in the calculator constructor; here they are configuration.
    return {
        "BTCUSDT": CVDSymbolOverride(winsor_limit=1.9, mad_multiplier=1.75),
        "ETHUSDT": CVDSymbolOverride(winsor_limit=2.3, mad_multiplier=1.70),
    }


class CVDConfig(_Section):
    z_mode: Literal["delta", "level"] = "delta"
    ema_alpha: float = Field(0.2, gt=0.0, le=1.0)
    use_tick_rule: bool = True
    freeze_min: int = Field(20, ge=0, le=1_000_000)
    scale_mode: Literal["hybrid", "ewma"] = "hybrid"
    half_life_trades: int = Field(300, ge=0, le=10_000_000)
    ewma_fast_hl: int = Field(80, ge=0, le=10_000_000)
    mad_window_trades: int = Field(200, ge=1, le=100_000)
    mad_scale_factor: float = Field(1.4826, ge=0.0)
    scale_fast_weight: float = Field(0.30, ge=0.0, le=1.0)
    scale_slow_weight: float = Field(0.70, ge=0.0, le=1.0)
    winsor_limit: float = Field(2.0, gt=0.0, le=1e6)
    mad_multiplier: float = Field(1.70, ge=0.0, le=1e6)
    soft_freeze_ms: int = Field(4000, ge=0)
    hard_freeze_ms: int = Field(5000, ge=0)
    stale_threshold_ms: int = Field(5000, ge=0, description="read but unused by v13")
    post_stale_freeze: int = Field(2, ge=0, description="read but unused by v13")
    z_window: int = Field(150, ge=1, le=100_000, description="level mode only")
    warmup_min: int = Field(3, ge=0, le=100_000, description="level mode only")
    tau_fast_s: float = Field(60.0, gt=0.0)
    tau_slow_s: float = Field(600.0, gt=0.0)
    r_ref: float = Field(1.5, gt=0.0)
    gamma: float = Field(0.7, ge=0.0, le=10.0)
    beta: float = Field(1.0, ge=0.0, le=10.0)
    tps_window_s: float = Field(60.0, gt=0.0)
    scale_floor: float = Field(1e-9, gt=0.0)
    tick_run_max: int = Field(5, ge=0)
    tick_max_age_ms: int = Field(2000, ge=0)
    symbol_overrides: dict[str, CVDSymbolOverride] = Field(default_factory=_v13_cvd_overrides)

    @model_validator(mode="after")
    def _freeze_order(self) -> CVDConfig:
        if self.hard_freeze_ms < self.soft_freeze_ms:
            raise ValueError(
                f"hard_freeze_ms ({self.hard_freeze_ms}) must be >= soft_freeze_ms ({self.soft_freeze_ms})"
            )
        return self

    def for_symbol(self, symbol: str) -> tuple[float, float]:
        """(winsor_limit, mad_multiplier) in force for a symbol."""
        ov = self.symbol_overrides.get(symbol.upper())
        if ov is None:
            return self.winsor_limit, self.mad_multiplier
        return ov.winsor_limit, ov.mad_multiplier

    def mad_min_samples(self) -> int:
        return max(50, self.mad_window_trades // 5)

    def scale_weights(self) -> tuple[float, float]:
        wf = min(1.0, max(0.0, self.scale_fast_weight))
        ws = min(1.0, max(0.0, self.scale_slow_weight))
        s = wf + ws
        if s <= 1e-9:
            return 0.5, 0.5
        return wf / s, ws / s


class FusionConfig(_Section):
    w_ofi: float = Field(0.6, ge=0.0)
    w_cvd: float = Field(0.4, ge=0.0)
    fuse_buy: float = Field(0.95, gt=0.0)
    fuse_strong_buy: float = Field(1.70, gt=0.0)
    fuse_sell: float = Field(-0.95, lt=0.0)
    fuse_strong_sell: float = Field(-1.70, lt=0.0)
    min_consistency: float = Field(0.12, ge=0.0, le=1.0)
    strong_min_consistency: float = Field(0.45, ge=0.0, le=1.0)
    z_clip: float = Field(4.0, gt=0.0)
    max_lag: float = Field(0.25, ge=0.0)
    min_warmup_samples: int = Field(10, ge=0)
    hysteresis_exit: float = Field(0.6, ge=0.0)
    cooldown_secs: float = Field(0.3, ge=0.0)
    min_consecutive: int = Field(1, ge=0)
    rearm_on_flip: bool = True
    flip_rearm_margin: float = Field(0.05, ge=0.0)
    adaptive_cooldown_enabled: bool = True
    adaptive_cooldown_k: float = Field(0.6, ge=0.0, le=1.0)
    adaptive_cooldown_min_secs: float = Field(0.12, ge=0.0)
    burst_coalesce_ms: float = Field(120.0, ge=0.0, description="no effect on outputs (v13 too)")
    consistency_eps: float = Field(1e-9, ge=0.0)
    boost_consistency: float = Field(0.7, ge=0.0, le=1.0)
    throttle_consistency: float = Field(0.3, ge=0.0, le=1.0)
    boost_threshold_factor: float = Field(0.8, ge=0.0)
    pass_lag: bool = Field(False, description="core_algo did not pass lag_sec to fusion (v13: false)")

    @model_validator(mode="after")
    def _check(self) -> FusionConfig:
        if self.w_ofi + self.w_cvd <= 0:
            raise ValueError("w_ofi + w_cvd must be > 0")
        if self.fuse_strong_buy < self.fuse_buy:
            raise ValueError(f"fuse_strong_buy ({self.fuse_strong_buy}) must be >= fuse_buy ({self.fuse_buy})")
        if self.fuse_strong_sell > self.fuse_sell:
            raise ValueError(
                f"fuse_strong_sell ({self.fuse_strong_sell}) must be <= fuse_sell ({self.fuse_sell})"
            )
        return self


class GuardConfig(_Section):
    spread_bps_cap: float = Field(15.0, gt=0.0)
    missing_msgs_rate_cap: float = Field(0.001, ge=0.0)
    resync_cooldown_sec: float = Field(120.0, ge=0.0)
    reconnect_cooldown_sec: float = Field(180.0, ge=0.0)
    exit_cooldown_sec: float = Field(60.0, ge=0.0)
    max_event_lag_sec: float = Field(3.0, gt=0.0)
    regime_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"active": 1.3, "normal": 1.5, "quiet": 1.7}
    )
    weak_signal_threshold: float = Field(0.2, ge=0.0)
    consistency_threshold: float = Field(0.12, ge=0.0, le=1.0)
    min_hold_time_sec: float = Field(60.0, ge=0.0)
    reversal_ticks: int = Field(3, ge=0)
    dedup_ms: int = Field(250, ge=0)
    divergence_bonus: float = Field(0.8, gt=0.0, le=1.0)

    @field_validator("regime_thresholds")
    @classmethod
    def _regimes(cls, value: dict[str, float]) -> dict[str, float]:
        for key in ("active", "quiet"):
            if key not in value:
                raise ValueError(f"regime_thresholds needs a value for {key!r}")
        for key, v in value.items():
            if not v > 0:
                raise ValueError(f"regime_thresholds[{key!r}] must be > 0, got {v}")
        return value


class ScheduleWindow(_Section):
    start: str = Field(..., pattern=r"^\d{2}:\d{2}$")
    end: str = Field(..., pattern=r"^\d{2}:\d{2}$")

    def minutes(self) -> tuple[int, int]:
        sh, sm = (int(x) for x in self.start.split(":"))
        eh, em = (int(x) for x in self.end.split(":"))
        if sh > 23 or eh > 24 or sm > 59 or em > 59:
            raise EngineConfigError(f"schedule window {self.start}-{self.end}: hours 00-24, minutes 00-59")
        return sh * 60 + sm, eh * 60 + em


class StrategyModeConfig(_Section):
    mode: Literal["auto", "active", "quiet"] = "auto"
    schedule_enabled: bool = True
    timezone: str = "UTC"
    enabled_weekdays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])
    holidays: list[str] = Field(default_factory=list, description="YYYY-MM-DD dates")
    windows: list[ScheduleWindow] = Field(default_factory=list)
    wrap_midnight: bool = True
    market_enabled: bool = True
    combine: Literal["OR", "AND"] = "OR"
    window_secs: float = Field(60.0, gt=0.0)
    min_trades_per_min: float = Field(150.0, ge=0.0)
    min_quote_updates_per_sec: float = Field(40.0, ge=0.0)
    max_spread_bps: float = Field(5.0, ge=0.0)
    min_volatility_bps: float = Field(4.0, ge=0.0)
    min_volume_usd: float = Field(200_000.0, ge=0.0)
    quote_updates_per_sec: float = Field(100.0, ge=0.0, description="core_algo constant")
    volume_usd: float = Field(1e6, ge=0.0, description="core_algo constant")
    min_active_windows: int = Field(3, ge=1, le=1000, description="core_algo legacy default")
    min_quiet_windows: int = Field(6, ge=1, le=1000, description="core_algo legacy default")

    @field_validator("enabled_weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        for d in value:
            if not 1 <= d <= 7:
                raise ValueError(f"enabled_weekdays entries must be 1..7 (Mon..Sun), got {d}")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:  # any lookup failure is a bad name
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class FeatureConfig(_Section):
    vol_tau_s: float = Field(60.0, gt=0.0, description="decay of the realised-volatility sum")


BookJoin = Literal["event_time", "arrival"]
BOOK_JOINS: tuple[str, ...] = ("event_time", "arrival")


class EngineConfig(_Section):
    # How a trade finds its book row (engine/README.md "Book matching"): "event_time" is the v13
    # as-of join on event time (a trade waits for the book to pass it); "arrival" takes the latest
    # book row received before the trade (engine/arrival.py), so no trade waits.
    book_join: BookJoin = "event_time"
    ofi: OFIConfig = Field(default_factory=OFIConfig)
    cvd: CVDConfig = Field(default_factory=CVDConfig)
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    guards: GuardConfig = Field(default_factory=GuardConfig)
    strategy: StrategyModeConfig = Field(default_factory=StrategyModeConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)


SECTIONS = ("ofi", "cvd", "fusion", "guards", "strategy", "features")
TOP_LEVEL = ("book_join",)  # EngineConfig fields outside the sections, given by their own name
_SECTION_MODELS: dict[str, type[_Section]] = {
    "ofi": OFIConfig,
    "cvd": CVDConfig,
    "fusion": FusionConfig,
    "guards": GuardConfig,
    "strategy": StrategyModeConfig,
    "features": FeatureConfig,
}


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"engine config field '{where}': {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def resolve_config(cfg: Any = None, prefer: str | None = None) -> EngineConfig:
    """Turn None / EngineConfig / a section model / a mapping of overrides into an EngineConfig."""
    if cfg is None:
        return EngineConfig()
    if isinstance(cfg, EngineConfig):
        return cfg
    for name, model in _SECTION_MODELS.items():
        if isinstance(cfg, model):
            return EngineConfig(**{name: cfg})
    if not isinstance(cfg, Mapping):
        raise EngineConfigError(f"engine config must be None, a mapping or EngineConfig, got {type(cfg).__name__}")
    nested: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    top: dict[str, Any] = {}
    for key, value in cfg.items():
        key = str(key)
        if key in TOP_LEVEL:
            top[key] = value
            continue
        if key in SECTIONS:
            if isinstance(value, BaseModel):
                value = value.model_dump()
            if not isinstance(value, Mapping):
                raise EngineConfigError(f"engine config section '{key}' must be a mapping")
            nested[key].update(value)
            continue
        if "." in key:
            section, _, name = key.partition(".")
            if section not in SECTIONS:
                raise EngineConfigError(f"engine config field '{key}': unknown section, expected one of {SECTIONS}")
            nested[section][name] = value
            continue
        owners = [s for s, m in _SECTION_MODELS.items() if key in m.model_fields]
        if prefer is not None and prefer in owners:
            owners = [prefer]
        if not owners:
            raise EngineConfigError(f"engine config field '{key}': unknown parameter")
        if len(owners) > 1:
            raise EngineConfigError(
                f"engine config field '{key}' is ambiguous; write one of " + ", ".join(f"'{o}.{key}'" for o in owners)
            )
        nested[owners[0]][key] = value
    try:
        return EngineConfig(**top, **{k: v for k, v in nested.items() if v})
    except ValidationError as exc:
        raise EngineConfigError(_describe(exc)) from None
