"""The soak's configuration: one pydantic model, validated at load; ``soak_60m``'s run config is
derived from it field by field (``alpha_assets.assets.soak``), so nothing is lost between the two."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alpha_assets.faults.plan import FaultSpec
from alpha_assets.live.process import RestartPolicy
from alpha_assets.sinks.config import FLUSH_MS_MAX, FLUSH_MS_MIN
from alpha_assets.symbols import normalise_symbols

__all__ = ["FaultSpec", "SoakConfig", "soak_config_from"]


class SoakConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: float = Field(60.0, gt=0, le=24 * 60, description="how long the live tree runs")
    symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT", "ETHUSDT"], min_length=1)
    feed: Literal["simulator", "replay", "binance", "external"] = Field(
        "simulator", description="simulator/replay: a loopback exchange the soak starts; binance: the real "
        "endpoint (or feed_ws_url); external: any Binance USD-M compatible endpoint at feed_ws_url")
    feed_ws_url: str = Field("", description="feed WebSocket: a base (ws://host:port) or a full combined-stream URL")
    feed_rest_url: str = Field("", description="feed REST base for trade backfill; empty: derived from feed_ws_url")
    book_join: Literal["event_time", "arrival"] = Field(
        "arrival", description="arrival: a trade meets the latest book received before it (no wait); "
        "event_time: the v13 as-of join, a trade waits for the next book")
    sink: Literal["jsonl", "sqlite", "dual"] = "dual"
    sink_batch_n: int = Field(500, ge=1, le=1_000_000, description="sinks flush after this many rows ...")
    sink_flush_ms: int = Field(500, description=f"... or once the oldest pending row is this old: "
                               f"{FLUSH_MS_MIN}-{FLUSH_MS_MAX} ms, or 0 to flush every write")
    bus_url: str = Field("", description="Redis of the event bus; empty: a local redis-server the soak starts")
    bus_buffer_max: int = Field(200_000, ge=100, le=10_000_000,
                                description="events the harvester holds while Redis is away; beyond, it backfills")
    input_mode: Literal["raw"] = Field("raw", description="the signal worker reads raw events from the bus")
    export_interval_s: float = Field(60.0, gt=0, le=3600)
    health_interval_s: float = Field(10.0, gt=0, le=600)
    pushgateway_url: str = Field("", description="empty: ALPHA_PUSHGATEWAY_URL, then TIMESERIES_URL (v13)")
    seed: int = Field(7, ge=0, le=2**31 - 1)
    fault_plan: list[FaultSpec] = Field(default_factory=list, description="faults injected during the run "
                                        "(the vocabulary of alpha_assets.faults.plan)")
    restart_backoff_s: tuple[float, ...] = Field(
        (10.0, 30.0), description="crash loop: delay before restart 1, 2, ..., then degraded (a worker that was "
        "ready and died is restarted at once)")
    crash_loop_window_s: float = Field(30.0, ge=0, le=24 * 3600,
                                       description="a worker dying again this soon after its restart is in a crash loop")
    ready_timeout_s: float = Field(120.0, gt=0, le=3600)
    warm_standby: bool = Field(True, description="keep one imported, warmed-up spare per worker that a restart "
                               "hands over to (a restart then skips the interpreter start, imports and warm-up)")
    stop_grace_s: float = Field(10.0, ge=0, le=600)
    drain_timeout_s: float = Field(120.0, gt=0, le=3600, description="end of run: how long each worker may drain")
    lateness_ms: int = Field(3000, ge=0, le=120_000, description="lander: how long a minute stays open")
    report_interval_s: float = Field(15.0, gt=0, le=3600)
    read_timeout_s: float = Field(10.0, gt=0, le=600)
    replay_capture: str = Field("", description="feed=replay: path of a raw Binance WS capture")
    replay_speed: float = Field(1.0, gt=0, le=1000)
    paper: bool = True
    engine: dict[str, Any] = Field(default_factory=dict, description="engine overrides (ALGORITHMS.md names)")
    malformed_rate: float = Field(0.0, ge=0, le=0.5, description="share of feed messages the loopback exchange "
                                  "corrupts (alpha_assets.market.malformed); dead letters must then equal what was injected")
    malformed_seed: int = Field(0, ge=0, le=2**31 - 1)

    @field_validator("symbols")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return normalise_symbols(v)

    @field_validator("restart_backoff_s")
    @classmethod
    def _backoff(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(x < 0 or x > 3600 for x in v):
            raise ValueError(f"restart_backoff_s values must be in [0, 3600], got {v}")
        return v

    @field_validator("sink_flush_ms")
    @classmethod
    def _flush(cls, v: int) -> int:
        if v != 0 and not FLUSH_MS_MIN <= v <= FLUSH_MS_MAX:
            raise ValueError(f"sink_flush_ms must be 0 (flush every write) or in [{FLUSH_MS_MIN}, {FLUSH_MS_MAX}], got {v}")
        return v

    @field_validator("bus_url")
    @classmethod
    def _bus(cls, v: str) -> str:
        if v and urlsplit(v).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"bus_url must be redis://host:port/db (or rediss://, unix://), got {v!r}")
        return v

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: dict[str, Any]) -> dict[str, Any]:
        from alpha_assets.engine import EngineConfigError, resolve_config

        if "book_join" in v:
            raise ValueError("set the book-join mode with the soak's book_join field, not in engine")
        try:
            resolve_config(v or None)
        except EngineConfigError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _feed(self) -> SoakConfig:
        for name in ("feed_ws_url", "feed_rest_url"):
            url = getattr(self, name)
            schemes = ("ws", "wss") if name == "feed_ws_url" else ("http", "https")
            if url and urlsplit(url).scheme not in schemes:
                raise ValueError(f"{name} must start with {' or '.join(s + '://' for s in schemes)}, got {url!r}")
        if self.feed == "external" and not self.feed_ws_url:
            raise ValueError("feed=external needs feed_ws_url (the endpoint's WebSocket base or stream URL)")
        if self.feed in ("simulator", "replay") and (self.feed_ws_url or self.feed_rest_url):
            raise ValueError(f"feed_ws_url/feed_rest_url point at an endpoint: use feed=external (feed={self.feed} "
                             "starts its own loopback exchange)")
        if self.malformed_rate > 0 and self.feed not in ("simulator", "replay"):
            raise ValueError(f"malformed_rate > 0 needs the loopback exchange (feed=simulator or replay), not feed={self.feed}")
        if self.feed == "replay" and not self.replay_capture:
            raise ValueError("feed=replay needs replay_capture (path of a raw WS capture)")
        times = [f.at_s for f in self.fault_plan]
        if times != sorted(times):
            raise ValueError(f"fault_plan must be sorted by at_s, got at_s={times}")
        return self

    def restart_policy(self) -> RestartPolicy:
        """The one restart policy of the run's processes (soak and fault runs alike)."""
        return RestartPolicy(backoff_s=self.restart_backoff_s, crash_loop_window_s=self.crash_loop_window_s,
                             ready_timeout_s=self.ready_timeout_s)


def soak_config_from(values: dict[str, Any]) -> SoakConfig:
    """Build from a run-config mapping (the Dagster op's), ignoring nothing silently."""
    return SoakConfig.model_validate(values)
