"""Source and run manifests: where they land, the config hash, and reading them back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from alpha_assets.manifests import (
    ManifestError,
    list_run_manifests,
    read_run_manifest,
    read_source_manifest,
    write_run_manifest,
    write_source_manifest,
)

CONFIG = {"engine": {"z_window": 300, "weights": {"ofi": 0.6, "cvd": 0.4}}, "sink": "dual", "symbols": ["BTCUSDT"]}


def _source(root: Path, run_id: str = "run-1", config: dict | None = None) -> Path:
    return write_source_manifest(root, run_id, symbols=["btcusdt", "ETHUSDT"], session_window=(1_704_585_600_000,
                                 1_704_589_200_000), endpoint="ws://127.0.0.1:9443/stream", input_mode="raw",
                                 watch=root / "landing", feature_dir=root / "warehouse" / "features",
                                 config=config or CONFIG)


def test_source_manifest_layout_and_hash(tmp_path: Path) -> None:
    path = _source(tmp_path)
    assert path == tmp_path / "artifacts" / "source_manifest_run-1.json"
    data = json.loads(path.read_text())
    canonical = json.dumps(CONFIG, sort_keys=True, separators=(",", ":")).encode()
    assert data["config_sha256"] == hashlib.sha256(canonical).hexdigest()
    assert data["config"] == CONFIG and data["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert data["session_window"]["start_utc"].startswith("2024-01-07T00:00:00")
    assert data["input_mode"] == "raw" and data["endpoint"].startswith("ws://")
    assert read_source_manifest(tmp_path, "run-1") == data


def test_same_config_same_hash_different_config_different_hash(tmp_path: Path) -> None:
    reordered = {"symbols": ["BTCUSDT"], "sink": "dual", "engine": {"weights": {"cvd": 0.4, "ofi": 0.6}, "z_window": 300}}
    a = read_source_manifest(tmp_path, _source(tmp_path, "a").stem.removeprefix("source_manifest_"))
    b = json.loads(_source(tmp_path, "b", reordered).read_text())
    c = json.loads(_source(tmp_path, "c", {**CONFIG, "sink": "jsonl"}).read_text())
    assert a["config_sha256"] == b["config_sha256"] != c["config_sha256"]


def test_edited_manifest_is_detected(tmp_path: Path) -> None:
    path = _source(tmp_path)
    data = json.loads(path.read_text())
    data["config"]["sink"] = "sqlite"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="config_sha256"):
        read_source_manifest(tmp_path, "run-1")
    assert read_source_manifest(tmp_path, "run-1", verify=False)["config"]["sink"] == "sqlite"


def test_run_manifest_round_trip_and_listing(tmp_path: Path) -> None:
    payload = {"minutes": 30, "passed": True, "events": [{"t_ms": 1, "event": "start"}], "figures": {"signals": 12000}}
    path = write_run_manifest(tmp_path, "run-7", payload)
    assert path == tmp_path / "artifacts" / "run_logs" / "run_manifest_run-7.json"
    data = read_run_manifest(tmp_path, "run-7")
    assert {k: data[k] for k in payload} == payload and data["run_id"] == "run-7" and data["code_version"]
    write_run_manifest(tmp_path, "run-8", {"minutes": 1})
    assert {p.name for p in list_run_manifests(tmp_path)} == {"run_manifest_run-7.json", "run_manifest_run-8.json"}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporaries left


@pytest.mark.parametrize("run_id", ["../escape", "a/b", "", "x" * 200])
def test_run_id_must_be_a_file_name(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(ManifestError, match="run_id"):
        write_run_manifest(tmp_path, run_id, {})


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="reserved"):
        write_run_manifest(tmp_path, "r", {"run_id": "other"})
    with pytest.raises(ManifestError, match="input_mode"):
        write_source_manifest(tmp_path, "r", symbols=["BTCUSDT"], session_window=(1, 2), endpoint="", input_mode="live",
                              watch="w", feature_dir="f", config={})
    with pytest.raises(ManifestError, match="before start"):
        write_source_manifest(tmp_path, "r", symbols=["BTCUSDT"], session_window=(5, 2), endpoint="", input_mode="raw",
                              watch="w", feature_dir="f", config={})
    with pytest.raises(ManifestError, match="no manifest"):
        read_run_manifest(tmp_path, "missing")
