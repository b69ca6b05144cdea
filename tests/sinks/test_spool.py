"""MinuteSpool: rotation by event time, late records, idempotence, recovery of torn parts."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from alpha_assets.sinks.spool import MinuteSpool, SpoolError

T0 = 1_704_585_600_000  # 2024-01-07 00:00:00 UTC


def recs(start: int, n: int, minute: int, step_ms: int = 100) -> list[dict]:
    return [{"id": start + i, "ts_ms": T0 + minute * 60_000 + (i * step_ms) % 60_000, "v": float(i) / 3}
            for i in range(n)]


def make(tmp: Path, **kw) -> MinuteSpool:
    return MinuteSpool(tmp / "spool", tmp / "ready", "exec", "ts_ms", ("id",), **kw)


def ready_lines(tmp: Path) -> list[dict]:
    out = []
    for p in sorted((tmp / "ready").glob("*.jsonl")):
        out += [orjson.loads(x) for x in p.read_bytes().splitlines()]
    return out


def test_rotates_on_event_minute_and_publishes_on_close(tmp_path: Path) -> None:
    sp = make(tmp_path)
    sp.append(recs(0, 10, 0))
    assert sorted(p.name for p in (tmp_path / "spool").glob("*.part")) == ["exec_20240107_0000.part"]
    assert list((tmp_path / "ready").iterdir()) == []
    sp.append(recs(10, 5, 1))  # a later minute publishes the earlier one
    assert [p.name for p in (tmp_path / "ready").iterdir()] == ["exec_20240107_0000.jsonl"]
    sp.close()
    assert sorted(p.name for p in (tmp_path / "ready").iterdir()) == [
        "exec_20240107_0000.jsonl", "exec_20240107_0001.jsonl"]
    assert list((tmp_path / "spool").glob("*.part")) == []
    assert [r["id"] for r in ready_lines(tmp_path)] == list(range(15))
    assert sp.counters.files_published == 2 and sp.counters.records_written == 15


def test_late_record_goes_to_numbered_file(tmp_path: Path) -> None:
    sp = make(tmp_path)
    sp.append(recs(0, 3, 0) + recs(3, 3, 1))
    sp.append(recs(100, 2, 0))  # minute 0 was published when minute 1 arrived
    sp.append(recs(200, 1, 0))
    sp.close()
    names = sorted(p.name for p in (tmp_path / "ready").iterdir())
    assert names == ["exec_20240107_0000.1.jsonl", "exec_20240107_0000.2.jsonl",
                     "exec_20240107_0000.jsonl", "exec_20240107_0001.jsonl"]
    assert sp.counters.late_records == 3 and sp.counters.late_files_published == 2
    assert sorted(r["id"] for r in ready_lines(tmp_path)) == [0, 1, 2, 3, 4, 5, 100, 101, 200]


def test_lateness_grace_keeps_minute_open(tmp_path: Path) -> None:
    sp = make(tmp_path, lateness_minutes=1)
    sp.append(recs(0, 2, 0) + recs(2, 2, 1) + recs(4, 1, 0))
    assert sp.open_minutes == [T0 // 60_000, T0 // 60_000 + 1]
    sp.advance_to(T0 + 2 * 60_000)
    assert sp.open_minutes == [T0 // 60_000 + 1]
    sp.close()
    assert sp.counters.late_records == 0 and sp.counters.files_published == 2


def test_replay_doubles_nothing_within_and_across_restarts(tmp_path: Path) -> None:
    batch = recs(0, 50, 0) + recs(50, 50, 1)
    sp = make(tmp_path)
    assert sp.append(batch) == 100
    assert sp.append(batch) == 0  # replay in the same process
    sp.close()
    sp2 = make(tmp_path)  # restart: index rebuilt from ready files
    assert sp2.counters.index_keys == 100
    assert sp2.append(batch + recs(100, 5, 2)) == 5
    sp2.close()
    ids = [r["id"] for r in ready_lines(tmp_path)]
    assert sorted(ids) == list(range(105)) and len(ids) == 105
    assert sp.counters.duplicates_skipped == 100 and sp2.counters.duplicates_skipped == 100


def test_recover_truncates_torn_line_and_dead_letters_it(tmp_path: Path) -> None:
    sp = make(tmp_path, fsync="never")
    sp.append(recs(0, 5, 0))
    sp.flush()
    part = next((tmp_path / "spool").glob("*.part"))
    with open(part, "ab") as fh:  # what a crash mid-write leaves behind
        fh.write(b'{"id": 5, "ts_ms": 17045856')
    sp._lock_fh.close()  # simulate process death: the kernel drops the lock
    sp2 = make(tmp_path)
    rep = sp2.last_recovery
    assert rep.torn_lines == 1 and rep.lines == 5 and rep.files == ["exec_20240107_0000.jsonl"]
    assert sp2.counters.torn_lines_truncated == 1 and sp2.counters.deadletter == 1
    assert list((tmp_path / "spool").glob("*.part")) == []
    dead = orjson.loads((tmp_path / "spool" / "exec_deadletter.jsonl").read_bytes().splitlines()[0])
    assert dead["reason"] == "torn_line" and dead["raw"].startswith('{"id": 5')
    # the record whose line was torn is accepted again on replay; the others are not
    assert sp2.append(recs(0, 6, 0)) == 1
    sp2.close()
    assert sorted(r["id"] for r in ready_lines(tmp_path)) == list(range(6))
    assert sorted(p.name for p in (tmp_path / "ready").iterdir()) == [
        "exec_20240107_0000.1.jsonl", "exec_20240107_0000.jsonl"]


def test_recover_after_crash_between_rename_and_unlink(tmp_path: Path) -> None:
    sp = make(tmp_path)
    sp.append(recs(0, 4, 0))
    sp.close()
    src = tmp_path / "ready" / "exec_20240107_0000.jsonl"
    (tmp_path / "spool" / "exec_20240107_0000.part").write_bytes(src.read_bytes())
    sp2 = make(tmp_path)
    assert sp2.last_recovery.duplicates == 4 and sp2.last_recovery.files == []
    assert list((tmp_path / "spool").glob("*.part")) == []
    sp2.close()
    assert len(ready_lines(tmp_path)) == 4


def test_bad_records_go_to_dead_letter(tmp_path: Path) -> None:
    sp = make(tmp_path)
    n = sp.append([{"id": 1, "ts_ms": T0}, {"id": 2}, {"ts_ms": T0}, {"id": 3, "ts_ms": "x"},
                   {"id": 4, "ts_ms": 1.5e12}, {"id": [5], "ts_ms": T0}])
    sp.close()
    assert n == 1 and sp.counters.deadletter == 5 and sp.counters.records_in == 6
    lines = (tmp_path / "spool" / "exec_deadletter.jsonl").read_bytes().splitlines()
    assert len(lines) == 5 and all(b"reason" in x for x in lines)


def test_second_writer_and_bad_arguments_refused(tmp_path: Path) -> None:
    sp = make(tmp_path)
    with pytest.raises(SpoolError, match="already held"):
        make(tmp_path)
    sp.close()
    with pytest.raises(SpoolError, match="fsync"):
        make(tmp_path, fsync="sometimes")
    with pytest.raises(SpoolError, match="append after close"):
        sp.append(recs(0, 1, 0))


@pytest.mark.parametrize("policy", ["always", "rotate", "never"])
def test_fsync_policies_publish_the_same(tmp_path: Path, policy: str) -> None:
    sp = make(tmp_path, fsync=policy)
    sp.append(recs(0, 20, 0) + recs(20, 20, 3))
    sp.append(recs(40, 5, 4))
    sp.close()
    assert sorted(r["id"] for r in ready_lines(tmp_path)) == list(range(45))
    assert (sp.counters.fsyncs > 0) == (policy != "never")
    if policy == "always":
        assert sp.counters.fsyncs >= 3


def test_for_layout_paths(tmp_path: Path) -> None:
    sp = MinuteSpool.for_layout(tmp_path, "signal", "btcusdt", "signals", "ts_ms", ("id",))
    sp.append(recs(0, 1, 0))
    sp.close()
    assert (tmp_path / "ready" / "signal" / "BTCUSDT" / "signals_20240107_0000.jsonl").exists()


def test_numpy_values_are_accepted(tmp_path: Path) -> None:
    import numpy as np

    sp = make(tmp_path)
    assert sp.append([{"id": np.int64(1), "ts_ms": np.int64(T0), "v": np.float64(0.5)}]) == 1
    assert sp.append([{"id": 1, "ts_ms": T0, "v": 0.5}]) == 0  # same key as the numpy one
    sp.close()
    assert ready_lines(tmp_path) == [{"id": 1, "ts_ms": T0, "v": 0.5}]


WRITER_FSIZE = '''
import json, resource, signal, sys
from pathlib import Path
from alpha_assets.sinks.spool import MinuteSpool, SpoolError

root, t0 = Path(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit then fails write() with EFBIG
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
batches = [[{"id": i, "ts_ms": t0 + i * 40, "pad": "p" * 90} for i in range(s, s + 250)] for s in range(0, 6000, 250)]
sp = MinuteSpool(root / "spool", root / "ready", "exec", "ts_ms", ("id",), fsync="never")
resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, hard))  # the real OS refuses bigger files
errors = 0
for b in batches:
    try:
        sp.append(b)
        sp.flush()
    except SpoolError:
        errors += 1
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # the operator makes room
for b in batches:  # the producer replays from its checkpoint
    sp.append(b)
sp.close()
print(json.dumps({"errors": errors, **sp.counters.as_dict()}))
'''


def test_write_failure_is_cut_back_and_replayed_not_lost(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", WRITER_FSIZE, str(tmp_path), str(T0)], env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    c = orjson.loads(out.stdout.strip().splitlines()[-1])
    assert c["errors"] >= 1 and c["io_errors"] == c["errors"] and c["rejected_on_error"] > 0
    ids = [r["id"] for r in ready_lines(tmp_path)]
    assert sorted(ids) == list(range(6000)), "a record was lost or doubled around the I/O errors"
    assert list((tmp_path / "spool").glob("*.part")) == []
    assert c["torn_lines_truncated"] == 0  # the cut-back left whole lines only
