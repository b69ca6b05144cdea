"""The dual signal sink in a real process, SIGKILLed mid-run; restart + replay → sinks agree exactly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from alpha_assets.sinks import (
    KEY,
    SinkConfig,
    compare_sinks,
    make_sink,
    read_jsonl_signals,
    read_sqlite_signals,
)
from alpha_assets.sinks.synthetic import synthetic_signals

N = 80_000
CHUNK = 1_000

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from alpha_assets.sinks import SinkConfig, make_sink
    from alpha_assets.sinks.synthetic import synthetic_signals

    rt, n, chunk = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    df = synthetic_signals(n, seed=13)
    sink = make_sink(SinkConfig(kind="dual", batch_n=chunk, flush_ms=500, fsync="never"), rt)
    for i, part in enumerate(df.iter_slices(chunk)):
        sink.write(part)
        print((i + 1) * chunk, flush=True)
    sink.close()
""")


@pytest.mark.parametrize("seed", [5, 6])
def test_kill_restart_replay_dual_sink(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    kill_after = rng.randrange(10_000, N - 20_000)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(N), str(CHUNK)],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    acked = 0
    for line in proc.stdout:
        acked = int(line)
        if acked >= kill_after:
            break
    time.sleep(rng.random() * 0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert list((tmp_path / "spool").rglob("*.part")), "the kill should leave orphaned parts"

    df = synthetic_signals(N, seed=13)
    sink = make_sink(SinkConfig(kind="dual", fsync="never"), tmp_path)  # recovers the JSONL parts
    assert sink.jsonl.recovered  # type: ignore[attr-defined]
    before_j = read_jsonl_signals(tmp_path)
    before_s = read_sqlite_signals(tmp_path / "signals.db")
    assert before_j.select(KEY).is_duplicated().sum() == 0
    assert before_j.height >= acked  # every acknowledged write reached the JSONL files (batch_n = chunk)
    assert before_s.height >= acked  # and was committed to SQLite
    # replay from a checkpoint older than the crash: everything again
    for part in df.iter_slices(7_777):
        sink.write(part)
    sink.close()
    j, s = read_jsonl_signals(tmp_path), read_sqlite_signals(tmp_path / "signals.db")
    assert j.height == s.height == N
    assert j.equals(df.sort(KEY))
    res = compare_sinks(j, s)
    assert res.max_rel_diff == 0.0, res.figures
