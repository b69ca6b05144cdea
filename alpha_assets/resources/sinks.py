"""The signal sinks as a resource: kind and batching validated when the code location loads.
The v13 names V13_SINK and V13_OUTPUT_DIR keep working as defaults."""

import os
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field, model_validator

from alpha_assets.sinks import SinkConfig, SinkConfigError, make_sink

# The JSONL spool of a symbol takes one writer at a time (an advisory lock; a second writer fails),
# and a soak's live signal worker holds every configured symbol's spool for the soak. Every asset
# that writes the sinks joins this Dagster concurrency pool; the scale-out profile sets its limit
# to 1 (deploy/dagster.postgres.yaml), so concurrent runs wait for the sinks instead of failing.
SIGNAL_SINKS_POOL = "signal_sinks"


class SignalSinks(dg.ConfigurableResource):
    kind: str = Field(default_factory=lambda: os.environ.get("V13_SINK", "dual").strip().lower() or "dual",
                      description="jsonl | sqlite | dual")
    batch_n: int = 500
    flush_ms: int = 500
    fsync: str = "rotate"
    output_dir: str = Field(default_factory=lambda: os.environ.get("V13_OUTPUT_DIR", ""),
                            description="runtime directory; empty = <data_root>/runtime")

    @model_validator(mode="after")
    def _valid(self) -> "SignalSinks":
        try:
            self.sink_config()
        except SinkConfigError as exc:
            raise ValueError(f"sinks: {exc}") from None
        return self

    def sink_config(self) -> SinkConfig:
        return SinkConfig.build(kind=self.kind, batch_n=self.batch_n, flush_ms=self.flush_ms, fsync=self.fsync,
                                output_dir=self.output_dir or None)

    def runtime_dir(self, default: Path) -> Path:
        return self.sink_config().runtime_dir(default)

    def write(self, frame: pl.DataFrame, default_runtime: Path) -> dict[str, Any]:
        runtime = self.runtime_dir(default_runtime)
        sink = make_sink(self.sink_config(), runtime)
        try:
            sink.write(frame)
            sink.flush()
        finally:
            sink.close()
        return sink.counters()
