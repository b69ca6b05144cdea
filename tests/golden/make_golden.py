"""Write `outputs.json`: the digests of the golden scenarios as produced by the code checked out now.

    .venv/bin/python -m tests.golden.make_golden

Run at the commit before the change under test to pin its outputs; the tests compare against it.
Pinned at fcd592b (before issue 14), re-pinned at the merge parent of issue 14 on main, whose
schema changes (ingest_seq, dead-letter stream/recv_time_ms, parity_diff column names, summary
fields) came from other issues; signals, features, orders and both sinks were identical in both pins.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        os.environ["ALPHA_DATA_ROOT"] = str(Path(tmp) / "var")
        from tests.golden.scenarios import graph_scenario, sink_scenarios

        sinks = sink_scenarios(Path(tmp) / "sinks")
        graph = graph_scenario(Path(tmp) / "graph")
    (HERE / "outputs.json").write_text(json.dumps({"sinks": sinks, "graph": graph}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
