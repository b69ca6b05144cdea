"""Signal sinks (no dagster): minute spool (JSONL spool→ready), SQLite (WAL), readers, parity, health."""

from alpha_assets.sinks.base import SignalSink, SinkWriteError
from alpha_assets.sinks.config import SinkConfig, SinkConfigError
from alpha_assets.sinks.dual import DualSignalSink, make_sink
from alpha_assets.sinks.health import SqliteHealth, SqliteHealthProbe
from alpha_assets.sinks.jsonl import JsonlSignalSink
from alpha_assets.sinks.parity import ParityResult, compare_sinks
from alpha_assets.sinks.readers import read_jsonl_signals, read_sqlite_signals
from alpha_assets.sinks.schema import KEY, SIGNAL_COLUMNS, SIGNAL_SCHEMA
from alpha_assets.sinks.spool import MinuteSpool, RecoveryReport, SpoolCounters, SpoolError
from alpha_assets.sinks.sqlite import SqliteSignalSink

__all__ = [
    "KEY", "SIGNAL_COLUMNS", "SIGNAL_SCHEMA", "DualSignalSink", "JsonlSignalSink", "MinuteSpool", "ParityResult",
    "RecoveryReport", "SignalSink", "SinkConfig", "SinkConfigError", "SinkWriteError", "SpoolCounters", "SpoolError",
    "SqliteHealth", "SqliteHealthProbe", "SqliteSignalSink", "compare_sinks", "make_sink", "read_jsonl_signals",
    "read_sqlite_signals",
]
