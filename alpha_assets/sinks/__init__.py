"""Signal sinks: minute spool (JSONL spool→ready), SQLite (WAL), readers and parity. No dagster."""

from alpha_assets.sinks.spool import MinuteSpool, SpoolCounters, SpoolError

__all__ = ["MinuteSpool", "SpoolCounters", "SpoolError"]
