"""Is data flowing end to end? The newest signal row of each symbol, read back from both live sinks.

A fault has recovered when, for every symbol, a signal row for a trade the exchange sent after the
mark (the last trade id sent at the injection, or at the fault's end for faults that last) is durable
in SQLite (committed) and in the JSONL sink (in a spool part or a published minute file). A signal
row's ``seq`` is its trade's id, so "after the mark" means the trades flowed through harvest, the
bus and the signal worker into both sinks. Wall-clock polling: this observes, it computes nothing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from alpha_assets.layout import Layout, RuntimeLayout

TAIL_BYTES = 64 * 1024


def sent_mark(server: Any, symbols: list[str]) -> dict[str, int]:
    """The last trade id the exchange has sent per symbol (-1: none yet)."""
    return {s: (server.sent_trade_ids[s][-1] if server.sent_trade_ids.get(s) else -1) for s in symbols}


def sqlite_frontier(db: Path, run_id: str, symbols: list[str]) -> dict[str, int | None]:
    """The highest committed seq per symbol (None: no row, or the database is unreadable now)."""
    out: dict[str, int | None] = dict.fromkeys(symbols)
    if not Path(db).exists():
        return out
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
    except sqlite3.Error:
        return out
    try:
        for s in symbols:  # the primary key (run_id, symbol, seq) answers this from the index
            row = con.execute("SELECT MAX(seq) FROM signals WHERE run_id = ? AND symbol = ?", (run_id, s)).fetchone()
            out[s] = None if row is None or row[0] is None else int(row[0])
    except sqlite3.Error:
        pass
    finally:
        con.close()
    return out


def _tail_max_seq(path: Path, run_id: str) -> int | None:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - TAIL_BYTES))
            data = fh.read()
    except OSError:
        return None
    lines = data.split(b"\n")
    if len(data) >= TAIL_BYTES:
        lines = lines[1:]  # the first line of a tail may be cut
    best: int | None = None
    for line in lines:
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line being written
        if row.get("run_id") == run_id and row.get("seq") is not None:
            best = max(best or int(row["seq"]), int(row["seq"]))
    return best


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:  # published (renamed) between the listing and now
        return 0.0


def jsonl_frontier(runtime: Path, run_id: str, symbols: list[str]) -> dict[str, int | None]:
    """The highest seq per symbol in the JSONL sink's newest files (open parts and published minutes)."""
    out: dict[str, int | None] = {}
    for s in symbols:
        rt = RuntimeLayout(Path(runtime))
        files = list((rt.signal_spool / s).glob("signals_*.part")) + list((rt.signal_ready / s).glob("signals_*.jsonl"))
        # the newest rows are in the files written last (names do not sort: part .10 comes before .2)
        newest = sorted(files, key=_mtime)[-3:]
        seqs = [q for p in newest if (q := _tail_max_seq(p, run_id)) is not None]
        out[s] = max(seqs) if seqs else None
    return out


class FlowProbe:
    """``flowing(mark)``: every sink the run writes holds a row beyond the mark for every symbol."""

    def __init__(self, data_root: Path, run_id: str, symbols: list[str],
                 sinks: tuple[str, ...] = ("jsonl", "sqlite")) -> None:
        self.runtime = Layout(Path(data_root)).runtime
        self.run_id, self.symbols, self.sinks = run_id, list(symbols), sinks

    def _beyond(self, frontier: dict[str, int | None], mark: dict[str, int]) -> bool:
        return all((q := frontier.get(s)) is not None and q > mark.get(s, -1) for s in self.symbols)

    def flowing(self, mark: dict[str, int]) -> bool:
        if "sqlite" in self.sinks and not self._beyond(
                sqlite_frontier(self.runtime.sqlite_file(), self.run_id, self.symbols), mark):
            return False
        return "jsonl" not in self.sinks or self._beyond(jsonl_frontier(self.runtime.dir, self.run_id, self.symbols),
                                                         mark)
