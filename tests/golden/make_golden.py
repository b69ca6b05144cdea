"""Write `outputs.json`: the digests of the golden scenarios as produced by the code checked out now.

    .venv/bin/python -m tests.golden.make_golden

Run once at fcd592b (before issue 14) to pin today's outputs; the tests compare against it.
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
