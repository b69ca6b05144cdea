"""SQL over the warehouse: DuckDB views on the partitioned parquet, and a small CLI.

The IO manager lays assets out hive-style::

    <data_root>/warehouse/<asset>/date=YYYY-MM-DD/symbol=SYM/<table>.parquet

(a date-level asset has no ``symbol=`` level). ``connect`` creates one view per
(asset, table) that exists on disk, with ``date`` (DATE) and ``symbol`` (VARCHAR) as columns:

* table ``data`` (single-frame assets) → the asset's name: ``signals``, ``features``,
  ``mock_orders``, ``daily_summary`` ...
* any other table → ``<asset>_<table>`` with a trailing ``_raw`` dropped from the asset:
  ``harvest_raw/trades`` → ``harvest_trades``, ``harvest_book``, ``harvest_deadletters``.

Partitions with different columns are combined by name (``union_by_name``).

CLI::

    python -m alpha_assets.sql "SELECT symbol, count(*) FROM signals GROUP BY 1"
    python -m alpha_assets.sql --json "SELECT * FROM mock_orders LIMIT 5"
    python -m alpha_assets.sql --views
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from alpha_assets.layout import Layout
from alpha_assets.paths import data_root as default_data_root

SINGLE_TABLE = "data"
HIVE_TYPES = {"date": "DATE", "symbol": "VARCHAR"}


@dataclass(frozen=True)
class ViewSource:
    view: str
    asset: str
    table: str
    globs: tuple[str, ...]  # one per partition depth present
    files: int


def view_name(asset: str, table: str) -> str:
    if table == SINGLE_TABLE:
        return asset
    return f"{asset.removesuffix('_raw')}_{table}"


def discover(root: Path) -> list[ViewSource]:
    """Every (asset, table) with at least one parquet file under ``<root>/warehouse``."""
    warehouse = Layout(Path(root)).warehouse
    if not warehouse.is_dir():
        return []
    found: dict[tuple[str, str], dict[str, int]] = {}
    for asset_dir in sorted(p for p in warehouse.iterdir() if p.is_dir() and not p.name.startswith(".")):
        # Depth 2 (date=/symbol=) and depth 1 (date= only); temp files (.x.tmp) never match.
        for pattern in ("date=*/symbol=*/*.parquet", "date=*/*.parquet"):
            for f in asset_dir.glob(pattern):
                if f.name.startswith("."):
                    continue
                glob = str(asset_dir / pattern.replace("*.parquet", f"{f.stem}.parquet"))
                key = (asset_dir.name, f.stem)
                found.setdefault(key, {})
                found[key][glob] = found[key].get(glob, 0) + 1
    sources = [
        ViewSource(view_name(asset, table), asset, table, tuple(sorted(globs)), sum(globs.values()))
        for (asset, table), globs in sorted(found.items())
    ]
    names = [s.view for s in sources]
    clashes = {n for n in names if names.count(n) > 1}
    if clashes:
        raise ValueError(f"two warehouse tables map to the same view name(s) {sorted(clashes)}")
    return sources


def _scan(glob: str) -> str:
    depth_types = {k: v for k, v in HIVE_TYPES.items() if f"{k}=" in glob}
    types = ", ".join(f"'{k}': '{v}'" for k, v in depth_types.items())
    path = glob.replace("'", "''")
    return (f"SELECT * FROM read_parquet('{path}', hive_partitioning = true, union_by_name = true, "
            f"hive_types = {{{types}}})")


def connect(data_root: Path | str | None = None, *, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per warehouse table that exists under ``data_root``."""
    root = Path(data_root) if data_root is not None else default_data_root()
    con = duckdb.connect(database)
    for src in discover(root):
        body = " UNION ALL BY NAME ".join(_scan(g) for g in src.globs)
        con.execute(f'CREATE OR REPLACE VIEW "{src.view}" AS {body}')
    return con


def list_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def query(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = con.execute(sql)
    columns = [d[0] for d in cur.description] if cur.description else []
    return columns, cur.fetchall()


def format_table(columns: list[str], rows: Sequence[tuple[Any, ...]], max_rows: int = 100) -> str:
    """A plain aligned text table (numbers right-aligned), with a row count footer."""
    shown = rows[:max_rows]
    cells = [[_cell(v) for v in row] for row in shown]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], int | float) or row[i] is None for row in shown) and bool(shown)
               for i in range(len(columns))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    more = f", showing {max_rows}" if len(rows) > max_rows else ""
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{more})")
    return "\n".join(o.rstrip() for o in out)


def _cell(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m alpha_assets.sql",
        description="Query the warehouse parquet with DuckDB SQL (one view per asset table; "
        "date and symbol are columns).",
    )
    parser.add_argument("sql", nargs="?", help='e.g. "SELECT symbol, count(*) FROM signals GROUP BY 1"')
    parser.add_argument("--data-root", type=Path, default=None, help="default: ALPHA_DATA_ROOT or ./var")
    parser.add_argument("--json", action="store_true", help="print rows as a JSON list of objects")
    parser.add_argument("--views", action="store_true", help="list the views and where they read from")
    parser.add_argument("--max-rows", type=int, default=100, help="rows shown in table output (default 100)")
    args = parser.parse_args(argv)
    root = args.data_root if args.data_root is not None else default_data_root()

    if args.views:
        sources = discover(root)
        if not sources:
            print(f"no warehouse tables under {root / 'warehouse'}", file=sys.stderr)
            return 1
        rows = [(s.view, s.asset, s.table, s.files) for s in sources]
        if args.json:
            print(json.dumps([dict(zip(("view", "asset", "table", "files"), r, strict=True)) for r in rows], indent=2))
        else:
            print(format_table(["view", "asset", "table", "files"], rows, max_rows=len(rows)))
        return 0
    if not args.sql:
        parser.print_usage(sys.stderr)
        print("error: give a SQL query or --views", file=sys.stderr)
        return 2
    con = connect(root)
    try:
        columns, rows = query(con, args.sql)
    except duckdb.Error as exc:
        views = ", ".join(list_views(con)) or "none"
        print(f"error: {exc}\n(views available: {views})", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=2, default=str))
    else:
        print(format_table(columns, rows, max_rows=args.max_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
