"""The whole batch graph for a simulated partition writes exactly what it wrote before issue 14:
warehouse parquet (bytes, or content where the run id is inside), both sinks, the reports and the
parity artifact (digests pinned in tests/golden/outputs.json by the pre-change code)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.golden.scenarios import graph_scenario

GOLDEN = json.loads((Path(__file__).resolve().parents[1] / "golden" / "outputs.json").read_text())["graph"]


def test_graph_outputs_match_the_pre_change_code(tmp_path: Path) -> None:
    got = graph_scenario(tmp_path / "var")
    for table in ("warehouse", "jsonl", "reports"):
        assert sorted(got[table]) == sorted(GOLDEN[table]), f"{table}: different files"
        differing = [name for name in GOLDEN[table] if got[table][name] != GOLDEN[table][name]]
        assert not differing, f"{table}: contents differ in {differing}"
    assert got["sqlite"] == GOLDEN["sqlite"]
