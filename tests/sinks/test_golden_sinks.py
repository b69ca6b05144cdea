"""The sinks write exactly what they wrote before issue 14 (digests pinned in tests/golden/outputs.json,
made by the pre-change code; see tests/golden/digests.py): every chunking from 1-row live writes to one
batch write, both batch policies, a restart with an overlapping replay and a late minute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.golden.scenarios import sink_scenarios

GOLDEN = json.loads((Path(__file__).resolve().parents[1] / "golden" / "outputs.json").read_text())["sinks"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return sink_scenarios(tmp_path_factory.mktemp("golden-sinks"))


@pytest.mark.parametrize("scenario", sorted(GOLDEN))
def test_sink_bytes_match_the_pre_change_writers(outputs: dict, scenario: str) -> None:
    got, want = outputs[scenario], GOLDEN[scenario]
    assert got["sqlite"] == want["sqlite"], f"{scenario}: SQLite rows or storage classes differ"
    assert sorted(got["jsonl"]) == sorted(want["jsonl"]), f"{scenario}: different JSONL files"
    differing = [name for name in want["jsonl"] if got["jsonl"][name] != want["jsonl"][name]]
    assert not differing, f"{scenario}: JSONL bytes differ in {differing}"
    for counter in ("duplicates", "spool_duplicates"):
        assert got.get(counter) == want.get(counter)
