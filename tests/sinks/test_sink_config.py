"""SinkConfig: defaults, ranges, unwritable directories and the v13 environment names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from alpha_assets.sinks import SinkConfig, SinkConfigError, make_sink


def test_defaults_are_the_v13_ones() -> None:
    c = SinkConfig()
    assert (c.kind, c.batch_n, c.flush_ms, c.fsync) == ("dual", 500, 500, "rotate")


@pytest.mark.parametrize(("values", "field", "allowed"), [
    ({"kind": "parquet"}, "kind", "'jsonl', 'sqlite' or 'dual'"),
    ({"flush_ms": 20}, "flush_ms", "[50, 5000]"),
    ({"flush_ms": 6000}, "flush_ms", "[50, 5000]"),
    ({"batch_n": 0}, "batch_n", "greater than or equal to 1"),
    ({"fsync": "sometimes"}, "fsync", "'always', 'rotate' or 'never'"),
    ({"retry_backoff_ms": 500, "retry_backoff_max_ms": 100}, "retry_backoff_max_ms", ">= retry_backoff_ms"),
])
def test_bad_values_name_the_field_and_range(values: dict, field: str, allowed: str) -> None:
    with pytest.raises(ValidationError) as info:
        SinkConfig(**values)
    assert info.value.errors()[0]["loc"] == (field,)
    assert allowed in str(info.value)
    with pytest.raises(SinkConfigError, match=rf"field '{field}'.*{allowed[:12]}".replace("[", r"\[").replace("(", r"\(")):
        SinkConfig.build(**values)


def test_flush_ms_zero_is_allowed_for_validation_runs() -> None:
    assert SinkConfig(flush_ms=0).flush_ms == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; see the read-only-mount variant")
def test_unwritable_directory_fails_at_construction(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ValidationError, match="output_dir"):
            SinkConfig(output_dir=ro / "runtime")
    finally:
        ro.chmod(0o700)


def test_unusable_output_dir_fails_at_construction(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ValidationError) as info:
        SinkConfig(output_dir=blocker / "runtime")
    assert info.value.errors()[0]["loc"] == ("output_dir",) and "not writable" in str(info.value)
    # /proc is read-only for everybody, root included
    with pytest.raises(SinkConfigError, match="field 'output_dir'.*not writable"):
        SinkConfig.build(output_dir="/proc/alpha-sinks")


def test_legacy_environment(tmp_path: Path) -> None:
    env = {"V13_SINK": "SQLite", "V13_OUTPUT_DIR": str(tmp_path / "rt"), "ALPHA_SINK_BATCH_N": "64",
           "ALPHA_SINK_FLUSH_MS": "0"}
    c = SinkConfig.from_env(env)
    assert (c.kind, c.output_dir, c.batch_n, c.flush_ms) == ("sqlite", (tmp_path / "rt").resolve(), 64, 0)
    assert (tmp_path / "rt").is_dir()
    assert SinkConfig.from_env(env, kind="jsonl").kind == "jsonl"
    with pytest.raises(SinkConfigError, match=r"field 'kind' \(from V13_SINK\)"):
        SinkConfig.from_env({"V13_SINK": "kafka"})
    with pytest.raises(SinkConfigError, match=r"field 'flush_ms' \(from ALPHA_SINK_FLUSH_MS\).*\[50, 5000\]"):
        SinkConfig.from_env({"ALPHA_SINK_FLUSH_MS": "10"})
    assert SinkConfig.from_env({}).kind == "dual"


def test_output_dir_overrides_the_runtime_dir(tmp_path: Path) -> None:
    cfg = SinkConfig(kind="sqlite", output_dir=tmp_path / "mine")
    sink = make_sink(cfg, tmp_path / "default")
    sink.close()
    assert (tmp_path / "mine" / "signals.db").exists() and not (tmp_path / "default").exists()
