"""The signal sinks as a resource: kind and batching validated when the code location loads.
The v13 names V13_SINK and V13_OUTPUT_DIR bind as `dg.EnvVar`s (`SignalSinks.from_environment`)."""

import os
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field, model_validator

from alpha_assets.layout import RuntimeLayout
from alpha_assets.sinks import SinkConfig, SinkConfigError, make_sink
from alpha_assets.sinks.parity import ParityResult
from alpha_assets.sinks.parity_slices import compare_day
from alpha_assets.sinks.readers import read_jsonl_signals, read_sqlite_signals

# The JSONL spool of a symbol takes one writer at a time (an advisory lock; a second writer fails),
# and a soak's live signal worker holds every configured symbol's spool for the soak. Every asset
# that writes the sinks joins this Dagster concurrency pool; the scale-out profile sets its limit
# to 1 (deploy/dagster.postgres.yaml), so concurrent runs wait for the sinks instead of failing.
SIGNAL_SINKS_POOL = "signal_sinks"
# v13's environment names, by field
ENV_NAMES = {"kind": "V13_SINK", "output_dir": "V13_OUTPUT_DIR"}


class SignalSinks(dg.ConfigurableResource):
    kind: str = Field("dual", description="jsonl | sqlite | dual")
    batch_n: int = 500
    flush_ms: int = 500
    fsync: str = "rotate"
    output_dir: str = Field("", description="runtime directory; empty = <data_root>/runtime")

    @classmethod
    def from_environment(cls) -> "SignalSinks":
        """The v13 names that are set, bound as EnvVars (resolved in each process that runs a step).
        Their current values are validated here, so a bad one stops the code location at load."""
        names = {field: var for field, var in ENV_NAMES.items() if os.environ.get(var, "").strip()}
        now: dict[str, Any] = {field: os.environ[var] for field, var in names.items()}
        cls(**now)
        bound: dict[str, Any] = {field: dg.EnvVar(var) for field, var in names.items()}
        return cls(**bound)

    @model_validator(mode="before")
    @classmethod
    def _valid(cls, data: Any) -> Any:
        # An EnvVar is checked once resolved (Dagster builds the resource again from its values).
        if not isinstance(data, dict) or any(isinstance(v, dg.EnvVar) for v in data.values()):
            return data
        values = {k: v for k, v in data.items() if k in ("kind", "batch_n", "flush_ms", "fsync", "output_dir")}
        if isinstance(values.get("kind"), str):
            values["kind"] = values["kind"].strip().lower() or "dual"
            data = {**data, "kind": values["kind"]}
        try:
            SinkConfig.build(**{**values, "output_dir": values.get("output_dir") or None})
        except SinkConfigError as exc:
            raise ValueError(f"sinks: {exc}") from None
        return data

    def sink_config(self) -> SinkConfig:
        return SinkConfig.build(kind=self.kind, batch_n=self.batch_n, flush_ms=self.flush_ms, fsync=self.fsync,
                                output_dir=self.output_dir or None)

    def runtime_dir(self, default: Path) -> Path:
        return self.sink_config().runtime_dir(default)

    def sqlite_file(self, default_runtime: Path) -> Path:
        """The SQLite sink's file in the runtime directory (`SinkConfig.sqlite_file`)."""
        return RuntimeLayout(self.runtime_dir(default_runtime)).sqlite_file(self.sink_config().sqlite_file)

    def read_jsonl(self, default_runtime: Path, **where: str) -> pl.DataFrame:
        """The JSONL sink's published rows (`run_id`, `symbol`, `date` narrow them)."""
        return read_jsonl_signals(self.runtime_dir(default_runtime), **where)

    def read_sqlite(self, default_runtime: Path, **where: str) -> pl.DataFrame:
        """The SQLite sink's rows (`run_id`, `symbol`, `date` narrow them)."""
        return read_sqlite_signals(self.sqlite_file(default_runtime), **where)

    def parity(self, default_runtime: Path, *, run_id: str, symbol: str, date: str) -> ParityResult:
        """Both sinks' rows of one run, symbol and day compared (`sinks.parity_slices.compare_day`)."""
        return compare_day(self.runtime_dir(default_runtime), self.sqlite_file(default_runtime), run_id=run_id,
                           symbol=symbol, date=date)

    def write(self, frame: pl.DataFrame, default_runtime: Path) -> dict[str, Any]:
        runtime = self.runtime_dir(default_runtime)
        sink = make_sink(self.sink_config(), runtime)
        try:
            sink.write(frame)
            sink.flush()
        finally:
            sink.close()
        return sink.counters()
