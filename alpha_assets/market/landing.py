"""The landing zone the live harvester writes and the batch pipeline reads.

Layout under `<data_root>/landing/` (minute = minute of *event time*, UTC):

    raw/date=YYYY-MM-DD/symbol=SYM/trades_HHMM.parquet, book_HHMM.parquet, _COMPLETE
    preview/date=YYYY-MM-DD/symbol=SYM/preview_HHMM.parquet
    deadletter/date=YYYY-MM-DD/symbol=SYM/deadletter_HHMM.parquet

Every file is written to a hidden temp file in the same directory and renamed into place, so a
reader never sees half a file. Writing a minute that already exists merges the two (union,
deduplicated on the row id, sorted): rewriting the same rows is a no-op and a late rewrite
never loses rows already landed; an existing file that cannot be read is renamed aside
(`.<name>.unreadable-<n>`, kept for inspection) and reported, not allowed to block the minute.
One writer per (symbol) is assumed.

Row isolation (`LandingWriter.land_rows`): a row that cannot be landed (wrong type, missing id,
another symbol, a time outside what a date can hold) becomes a dead letter with its reason and
the rest of its minute lands; a minute whose write fails is handed back for a retry. Nothing
raises out of it, so one bad row, file or minute never stops a harvester. Dead letters that
belong to no configured symbol land in the `_UNROUTED` bucket (`deadletter/date=/symbol=_UNROUTED/`).

`_COMPLETE` (JSON: date, symbol, stamp, files) marks a partition the harvester has finished;
writing to the partition again removes it, so a re-landed partition must be marked anew (with a
new stamp, which is what makes the landing sensor run it again).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from alpha_assets.layout import LANDING_ZONES, Layout
from alpha_assets.market.schema import (
    BOOK_SCHEMA,
    DEADLETTER_SCHEMA,
    REST_STREAM,
    TRADE_SCHEMA,
    UNROUTED,
    conform,
    empty,
)
from alpha_assets.market.streams import symbol_of_stream
from alpha_assets.symbols import SYMBOL_RULE, is_symbol

if TYPE_CHECKING:
    from alpha_assets.market.landing_rows import LandResult

log = logging.getLogger(__name__)

COMPLETE = "_COMPLETE"
# kind → (zone, file prefix, schema or None for free-form, id column for dedup)
KINDS: dict[str, tuple[str, str, dict[str, pl.DataType] | None, str | None]] = {
    "trades": ("raw", "trades", TRADE_SCHEMA, "agg_trade_id"),
    "book": ("raw", "book", BOOK_SCHEMA, "last_update_id"),
    "preview": ("preview", "preview", None, None),
    "deadletter": ("deadletter", "deadletter", DEADLETTER_SCHEMA, None),
}
SORT_KEYS = {"trades": ["event_time_ms", "agg_trade_id"], "book": ["event_time_ms", "last_update_id"]}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RAW_MINUTE = re.compile(r"(?:trades|book)_((?:[01]\d|2[0-3])[0-5]\d)\.parquet")
_HHMM = re.compile(r"^([01]\d|2[0-3])[0-5]\d$")


def _check(date: str, symbol: str, kind: str = "") -> None:
    if not _DATE.match(date):
        raise ValueError(f"date must be YYYY-MM-DD, got {date!r}")
    if symbol == UNROUTED and kind in ("", "deadletter"):
        return
    if not is_symbol(symbol):
        raise ValueError(f"symbol must be {SYMBOL_RULE}, got {symbol!r}")


def partition_dir(data_root: Path, zone: str, date: str, symbol: str) -> Path:
    return Layout(Path(data_root)).landing_partition(zone, date, symbol)


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    # make the rename itself durable
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _minute_of(date: str, hhmm: str) -> tuple[int, int]:
    """[start, end) epoch ms of the minute."""
    start = pl.Series([f"{date} {hhmm[:2]}:{hhmm[2:]}"]).str.to_datetime("%Y-%m-%d %H:%M", time_zone="UTC")
    ms = int(start.dt.epoch("ms")[0])
    return ms, ms + 60_000


def _merge(kind: str, frames: list[pl.DataFrame]) -> pl.DataFrame:
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    _, _, schema, key = KINDS[kind]
    if schema is not None:
        frame = conform(frame, schema)
    if key is not None:
        frame = frame.unique(["symbol", key], keep="first", maintain_order=True)
    else:
        frame = frame.unique(keep="first", maintain_order=True)
    if kind in SORT_KEYS:
        frame = frame.sort(SORT_KEYS[kind])
    elif kind == "deadletter":
        frame = frame.sort("event_time_ms", "source", "reason", "key", "payload", nulls_last=True)
    elif "event_time_ms" in frame.columns:
        frame = frame.sort("event_time_ms", maintain_order=True)
    return frame


class LandingWriter:
    """Writes one symbol's minute files; see the module docstring for the layout."""

    def __init__(self, data_root: str | Path, symbol: str) -> None:
        symbol = symbol if symbol == UNROUTED else symbol.upper()
        _check("2000-01-01", symbol)
        self.data_root = Path(data_root)
        self.symbol = symbol
        self.quarantined: list[Path] = []  # unreadable minute files renamed aside

    def path(self, kind: str, date: str, hhmm: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        if self.symbol == UNROUTED and kind != "deadletter":
            raise ValueError(f"the {UNROUTED} bucket holds dead letters only, not {kind}")
        _check(date, self.symbol, kind)
        if not _HHMM.match(hhmm):
            raise ValueError(f"hhmm must be 0000..2359, got {hhmm!r}")
        zone, prefix, _, _ = KINDS[kind]
        return partition_dir(self.data_root, zone, date, self.symbol) / f"{prefix}_{hhmm}.parquet"

    def write_minute(self, kind: str, date: str, hhmm: str, frame: pl.DataFrame) -> Path | None:
        """Land one minute of `kind` rows (merged with what is already there). Empty → no file."""
        path = self.path(kind, date, hhmm)
        _, _, schema, _ = KINDS[kind]
        if frame.is_empty():
            return None
        if schema is not None:
            # dead letters written before stream/recv_time_ms existed are completed with nulls
            missing = [c for c in schema if c not in frame.columns and not (kind == "deadletter" and c in (
                "stream", "recv_time_ms"))]
            extra = [c for c in frame.columns if c not in schema]
            if missing or extra:
                raise ValueError(f"{kind} frame: missing columns {missing}, unexpected columns {extra}")
            frame = conform(frame, schema)
        # a dead letter keeps the symbol as received; every other row must be this writer's
        if kind != "deadletter" and "symbol" in frame.columns and not (frame["symbol"] == self.symbol).all():
            raise ValueError(f"{kind} frame holds rows of another symbol than {self.symbol}")
        if "event_time_ms" in frame.columns and kind not in ("preview", "deadletter"):  # dead letters: receive time
            start, end = _minute_of(date, hhmm)
            t = frame["event_time_ms"].drop_nulls()
            if t.len() and (t.min() < start or t.max() >= end):  # type: ignore[operator]
                raise ValueError(f"{kind} rows outside minute {date} {hhmm} (event time)")
        frames = [frame]
        if path.exists():
            try:
                frames.insert(0, pl.read_parquet(path))
            except Exception as exc:  # an unreadable file must not block its minute
                self._quarantine(path, exc)
        merged = _merge(kind, frames)
        if len(frames) > 1 and merged.equals(frames[0]):
            return path  # nothing new: leave the file (and any completion mark) alone
        _atomic_write(path, lambda tmp: merged.write_parquet(tmp, statistics=True))
        # new data in a partition reopens it
        (partition_dir(self.data_root, "raw", date, self.symbol) / COMPLETE).unlink(missing_ok=True)
        return path

    def _quarantine(self, path: Path, exc: Exception) -> None:
        n = 0
        while (aside := path.with_name(f".{path.name}.unreadable-{n}")).exists():
            n += 1
        os.replace(path, aside)
        self.quarantined.append(aside)
        log.warning("unreadable landing file %s moved to %s: %s", path, aside.name, exc)

    def land_rows(self, kind: str, rows: list[dict[str, Any]], fallback_ms: int) -> LandResult:
        """Land `rows` of `kind` (trades | book | deadletter), each row isolated: see landing_rows."""
        from alpha_assets.market.landing_rows import land_rows

        return land_rows(self, kind, rows, fallback_ms)

    def mark_complete(self, date: str, symbol: str, stamp: str) -> Path:
        if symbol.upper() != self.symbol:
            raise ValueError(f"this writer lands {self.symbol}, not {symbol}")
        return mark_complete(self.data_root, date, symbol, stamp)


def minute_parts(minute_ms: int) -> tuple[str, str]:
    """(YYYY-MM-DD, HHMM) of a minute start (UTC): the names of its landing files."""
    t = time.gmtime(minute_ms // 1000)
    return time.strftime("%Y-%m-%d", t), time.strftime("%H%M", t)


def deadletter_bucket(row: dict[str, Any], symbols: Collection[str]) -> str:
    """Where a dead letter lands: under the symbol of the stream it came on (a REST answer: the
    symbol it was asked for) when that symbol is configured, else under UNROUTED — never under
    a symbol the message merely claims."""
    stream = row.get("stream")
    owner = row.get("symbol") if stream == REST_STREAM else symbol_of_stream(stream)
    return str(owner) if owner in symbols else UNROUTED


def load_deadletters(data_root: str | Path, date: str, bucket: str) -> pl.DataFrame:
    """Every dead letter landed for `date` in `bucket` (a symbol or UNROUTED)."""
    _check(date, bucket)
    files = sorted(partition_dir(Path(data_root), "deadletter", date, bucket).glob("deadletter_*.parquet"))
    frames = _read_all(files, [], "deadletter", bucket)
    return _merge("deadletter", frames) if frames else empty(DEADLETTER_SCHEMA)


def _partition_files(data_root: Path, date: str, symbol: str) -> list[str]:
    root = Layout(Path(data_root)).landing
    files = []
    for zone in LANDING_ZONES:
        d = partition_dir(data_root, zone, date, symbol)
        if d.is_dir():
            files += [p.relative_to(root).as_posix() for p in sorted(d.glob("*.parquet"))
                      if not p.name.startswith(".")]
    return files


def mark_complete(data_root: str | Path, date: str, symbol: str, stamp: str) -> Path:
    """Write `_COMPLETE` for the partition: {"date", "symbol", "stamp", "files"}."""
    symbol = symbol.upper()
    _check(date, symbol)
    if not isinstance(stamp, str) or not stamp.strip():
        raise ValueError("stamp must be a non-empty string")
    data_root = Path(data_root)
    body = {"date": date, "symbol": symbol, "stamp": stamp, "files": _partition_files(data_root, date, symbol)}
    path = partition_dir(data_root, "raw", date, symbol) / COMPLETE
    _atomic_write(path, lambda tmp: Path(tmp).write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2)))
    return path


def _read_all(files: list[Path], dead: list[dict[str, Any]], source: str, symbol: str) -> list[pl.DataFrame]:
    frames = []
    for f in files:
        try:
            frames.append(pl.read_parquet(f))
        except Exception as exc:  # any unreadable file becomes a dead letter
            log.warning("unreadable landing file %s: %s", f, exc)
            dead.append({"source": source, "reason": "unreadable_file", "symbol": symbol, "event_time_ms": None,
                         "key": f.name, "payload": orjson.dumps({"path": str(f), "error": str(exc)}).decode()})
    return frames


def load_landing(data_root: str | Path, date: str, symbol: str) -> dict[str, pl.DataFrame]:
    """`trades`, `book`, `deadletters` of one landed partition (canonical, sorted, deduplicated by
    id). A file that cannot be read becomes a dead letter. No file at all → KeyError."""
    symbol = symbol.upper()
    _check(date, symbol)
    data_root = Path(data_root)
    raw = partition_dir(data_root, "raw", date, symbol)
    dl = partition_dir(data_root, "deadletter", date, symbol)
    trade_files = sorted(raw.glob("trades_*.parquet"))
    book_files = sorted(raw.glob("book_*.parquet"))
    dead_files = sorted(dl.glob("deadletter_*.parquet"))
    if not (trade_files or book_files or dead_files):
        raise KeyError(f"nothing landed for partition {date}|{symbol}")
    dead_rows: list[dict[str, Any]] = []
    out: dict[str, pl.DataFrame] = {}
    for kind, files in (("trades", trade_files), ("book", book_files), ("deadletter", dead_files)):
        name = "deadletters" if kind == "deadletter" else kind
        frames = _read_all(files, dead_rows, kind, symbol)
        _, _, schema, _ = KINDS[kind]
        assert schema is not None
        out[name] = _merge(kind, frames) if frames else empty(schema)
    if dead_rows:
        out["deadletters"] = pl.concat([out["deadletters"], pl.DataFrame(dead_rows, schema=DEADLETTER_SCHEMA)])
    return out


def load_preview(data_root: str | Path, date: str, symbol: str) -> pl.DataFrame | None:
    """All preview minutes of a partition, or None when there are none."""
    symbol = symbol.upper()
    _check(date, symbol)
    files = sorted(partition_dir(Path(data_root), "preview", date, symbol).glob("preview_*.parquet"))
    frames = _read_all(files, [], "preview", symbol)
    return _merge("preview", frames) if frames else None


def _scan(data_root: Path) -> list[tuple[str, str, Path]]:
    out = []
    for d in sorted(Layout(Path(data_root)).landing_zone("raw").glob("date=*/symbol=*")):
        date, symbol = d.parent.name.removeprefix("date="), d.name.removeprefix("symbol=")
        if d.is_dir() and _DATE.match(date) and is_symbol(symbol):
            out.append((date, symbol, d))
    return out


def landing_partitions(data_root: str | Path) -> list[tuple[str, str]]:
    """(date, symbol) of every partition with at least one landed trades or book file."""
    return [(date, sym) for date, sym, d in _scan(Path(data_root))
            if any(d.glob("trades_*.parquet")) or any(d.glob("book_*.parquet"))]


def last_landed_minute(data_root: str | Path, symbol: str, from_date: str = "") -> int | None:
    """Start (epoch ms) of the latest minute with a landed trades or book file of ``symbol``,
    looking only at days ≥ ``from_date``; None when nothing is landed."""
    latest: tuple[str, str] | None = None
    for date, sym, d in _scan(Path(data_root)):
        if sym != symbol or date < from_date:
            continue
        for f in d.iterdir():
            m = _RAW_MINUTE.fullmatch(f.name)
            if m and (latest is None or (date, m[1]) > latest):
                latest = (date, m[1])
    return None if latest is None else _minute_of(*latest)[0]


def completed_partitions(data_root: str | Path) -> list[tuple[str, str, str]]:
    """(date, symbol, stamp) of every partition the harvester marked complete."""
    out = []
    for date, sym, d in _scan(Path(data_root)):
        mark = d / COMPLETE
        if not mark.is_file():
            continue
        try:
            body = orjson.loads(mark.read_bytes())
            stamp = body["stamp"]
            if not isinstance(stamp, str) or not stamp:
                raise ValueError("empty stamp")
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # an unreadable mark is not a completion; say so rather than guess
            log.warning("ignoring bad completion mark %s: %s", mark, exc)
            continue
        out.append((date, sym, stamp))
    return out


LIVE_RUNS = "_LIVE_RUNS.json"  # {run_id: {"book_join": mode}} of the soaks that landed the partition


def record_live_run(data_root: str | Path, date: str, symbol: str, run_id: str, book_join: str) -> Path:
    """Note that soak `run_id` lands this partition with the engine's `book_join` mode, so the batch
    graph over the partition evaluates in the same mode (live/batch parity)."""
    symbol = symbol.upper()
    _check(date, symbol)
    path = partition_dir(Path(data_root), "raw", date, symbol) / LIVE_RUNS
    runs: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}
    if runs.get(run_id, {}).get("book_join") != book_join:
        runs[run_id] = {"book_join": book_join}
        _atomic_write(path, lambda tmp: Path(tmp).write_bytes(orjson.dumps(runs, option=orjson.OPT_INDENT_2)))
    return path


def landed_book_join(data_root: str | Path, date: str, symbol: str) -> str | None:
    """The book-join mode the soaks that landed the partition used; None when no soak recorded one."""
    symbol = symbol.upper()
    _check(date, symbol)
    path = partition_dir(Path(data_root), "raw", date, symbol) / LIVE_RUNS
    if not path.exists():
        return None
    modes = {v.get("book_join") for v in orjson.loads(path.read_bytes()).values()}
    if len(modes) > 1:
        raise ValueError(f"partition {date}|{symbol} was landed by soaks in different book-join modes "
                         f"({sorted(map(str, modes))}); re-land it in one mode")
    return modes.pop() if modes else None
