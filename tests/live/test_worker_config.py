"""A worker's configuration comes by one channel: the soak's JSON file; the environment does not
override it (the supervisor's v13 names there say the same thing, or nothing)."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from alpha_assets.live.workers.common import load_config


def test_the_file_is_the_one_channel(tmp_path: Path) -> None:
    cfg_file = tmp_path / "worker.json"
    cfg_file.write_text(json.dumps({"run_id": "soak1", "data_root": str(tmp_path), "symbols": ["BTCUSDT"],
                                    "sink": "dual", "paper": True}))
    env = {"ALPHA_WORKER_CONFIG": str(cfg_file), "RUN_ID": "other", "V13_SINK": "jsonl", "PAPER_ENABLE": "0",
           "V13_OUTPUT_DIR": str(tmp_path / "elsewhere")}
    cfg = load_config(env)
    assert (cfg.run_id, cfg.sink, cfg.paper) == ("soak1", "dual", True)
    assert cfg.runtime_dir == tmp_path / "runtime"


def test_without_a_file_the_missing_field_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="symbols"):
        load_config({"RUN_ID": "manual", "ALPHA_DATA_ROOT": str(tmp_path), "V13_SINK": "sqlite"})
