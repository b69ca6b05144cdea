"""``python -m alpha_assets.monitoring [--check]``: write (or check) the generated monitoring files."""

from __future__ import annotations

import argparse
from pathlib import Path

from alpha_assets.monitoring.files import stale_files, write_all

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the Prometheus, Alertmanager and Grafana files under deploy/.")
    ap.add_argument("--check", action="store_true", help="exit 1 if a generated file is missing or out of date")
    args = ap.parse_args(argv)
    if args.check:
        stale = stale_files(REPO)
        for p in stale:
            print(f"out of date: {p} (run python -m alpha_assets.monitoring)")
        return 1 if stale else 0
    for p in write_all(REPO):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
