"""Digests of everything the batch graph and the signal sinks put on disk, for the golden tests.

`outputs.json` beside this file was produced by `python -m tests.golden.make_golden` at commit
fcd592b, i.e. by the code *before* issue 14 (Arrow-speed sinks, lazy harvest, column projection);
the tests recompute the digests with today's code and compare. Run ids are random per Dagster run,
so they are replaced by a placeholder before hashing; everything else is hashed as stored.

* JSONL: every ready/spool file's exact bytes (path relative to the runtime directory).
* SQLite: every row of `signals` in key order with the value *and* the storage class (`typeof`)
  of each column, so an integer stored as a real, or a boolean stored as text, shows up.
* Warehouse: parquet files byte for byte where no run id is inside; the others by content.
* Reports: the summary JSON/Markdown and the parity artifact (run id normalised), the chart PNGs.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import polars as pl

RUN = b"<RUN_ID>"
SIGNAL_COLUMNS = ("run_id", "symbol", "seq", "ts_ms", "signal_type", "score", "consistency", "z_ofi", "z_cvd",
                  "confirm", "gating", "decision_code", "guard_reason", "regime", "div_type", "warmup", "price",
                  "spread_bps", "created_at")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _norm(data: bytes, run_ids: list[str]) -> bytes:
    for rid in run_ids:
        data = data.replace(rid.encode(), RUN)
    return data


def jsonl_digests(runtime: Path, run_ids: list[str] = ()) -> dict[str, str]:  # type: ignore[assignment]
    out = {}
    for sub in ("ready", "spool"):
        base = runtime / sub
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")):
            out[str(path.relative_to(runtime))] = _sha(_norm(path.read_bytes(), list(run_ids)))
    return out


def sqlite_digest(db: Path, run_ids: list[str] = ()) -> dict[str, object]:  # type: ignore[assignment]
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cols = ", ".join(f"{c}, typeof({c})" for c in SIGNAL_COLUMNS)
        rows = con.execute(f"SELECT {cols} FROM signals ORDER BY run_id, symbol, seq").fetchall()
    finally:
        con.close()
    h = hashlib.sha256()
    for row in rows:
        h.update(_norm(repr(row).encode(), list(run_ids)) + b"\n")
    return {"rows": len(rows), "sha256": h.hexdigest()}


def frame_digest(frame: pl.DataFrame, run_ids: list[str]) -> str:
    """Content digest: schema, then every row as JSON (polars' shortest round-trip floats)."""
    head = repr(list(frame.schema.items())).encode()
    return _sha(_norm(head + b"\n" + frame.write_ndjson().encode(), run_ids))


def warehouse_digests(root: Path, run_ids: list[str]) -> dict[str, str]:
    out = {}
    for path in sorted((root / "warehouse").rglob("*.parquet")):
        rel = str(path.relative_to(root))
        data = path.read_bytes()
        if any(rid.encode() in data for rid in run_ids) or "signals" in rel or "mock_orders" in rel:
            out[rel] = "content:" + frame_digest(pl.read_parquet(path), run_ids)
        else:
            out[rel] = "bytes:" + _sha(data)
    return out


def report_digests(root: Path, run_ids: list[str]) -> dict[str, str]:
    out = {}
    for sub in ("logs/report", "artifacts"):
        base = root / sub
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            if path.suffix not in (".json", ".md", ".png"):
                continue
            rel = str(path.relative_to(root))
            for rid in run_ids:
                rel = rel.replace(rid, RUN.decode())
            out[rel] = _sha(_norm(path.read_bytes(), run_ids))
    return out
