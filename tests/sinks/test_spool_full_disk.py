"""The JSONL sink on a real full file system (the spool_full fault's means): a tmpfs under the spool,
filled while a minute's part is open and across the minute rollover, then given room again. The sink
writer counts the ENOSPC errors and retries; nothing is lost or doubled, no byte of garbage is
published, and the part cut back at the error is published as soon as the disk takes writes again."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from alpha_assets.faults.means import FullDisk
from alpha_assets.live.workers.sink_writer import Done, Job, SinkWriter
from alpha_assets.sinks.config import SinkConfig
from alpha_assets.sinks.jsonl import JsonlSignalSink
from alpha_assets.sinks.spool import MINUTE_MS
from alpha_assets.sinks.synthetic import T0, synthetic_signals

pytestmark = pytest.mark.skipif(not FullDisk.available() and os.environ.get("CI", "").lower() != "true",
                                reason="needs root and mount(8) for a tmpfs")
BATCH = 25  # rows per job: ~10 KB, more than the free room of a part's last page


def _wait(writer: SinkWriter, pred: object, what: str, deadline_s: float = 30.0) -> list[Done]:
    done: list[Done] = []
    end = time.monotonic() + deadline_s
    while not pred(done):  # type: ignore[operator]
        assert time.monotonic() < end, f"timed out waiting for {what}: {writer.counters}"
        done += writer.results(wait_s=0.05)
    return done


def _ready_keys(runtime: Path) -> list[tuple[str, int]]:
    out = []
    for path in sorted((runtime / "ready" / "signal").rglob("*.jsonl")):
        data = path.read_bytes()
        assert b"\0" not in data, f"NUL bytes published in {path.name}"
        out += [(r["symbol"], r["seq"]) for r in map(orjson.loads, data.splitlines())]
    return out


def test_full_spool_disk_is_counted_retried_and_loses_nothing(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    disk = FullDisk(runtime / "spool" / "signal", size_kb=4096).standing()
    try:
        rows = synthetic_signals(400, t0=T0 + 50_000, same_ms_burst=4).to_dicts()  # ~17 s across a minute end
        boundary = T0 + MINUTE_MS
        batches = [rows[i:i + BATCH] for i in range(0, len(rows), BATCH)]
        sink = JsonlSignalSink(runtime, SinkConfig(kind="jsonl"))
        writer = SinkWriter(sink, tmp_path / "ckpt")

        def run(batch: list[dict]) -> None:
            writer.submit(Job(rows=batch, advance_to=batch[-1]["ts_ms"]))
            _wait(writer, lambda done: len(done) == 1, "a job")

        cross = next(i for i, b in enumerate(batches) if b[-1]["ts_ms"] >= boundary)
        # the last rows of the minute, then the next minute's, go in while the disk is full
        before, during, after = batches[:cross - 2], batches[cross - 2:cross + 2], batches[cross + 2:]
        assert before and after and during[0][0]["ts_ms"] < boundary <= during[-1][-1]["ts_ms"]
        for b in before:
            run(b)  # the minute's part is open (and flushed) when the disk fills
        disk.fill()
        writer.submit(Job(rows=during[0], advance_to=during[0][-1]["ts_ms"]))
        _wait(writer, lambda _: writer.counters["enospc_errors"] >= 2, "ENOSPC on the open part")
        assert writer.counters["sink_failing"] == 1
        disk.undo()  # room again: the same job goes through on its next attempt
        _wait(writer, lambda done: len(done) == 1, "the retried job")
        spool = sink.counters()
        assert spool["spool_io_errors"] >= 2 and spool["spool_rejected_on_error"] > 0
        # the part cut back at the first error is published by the first flush that worked, not at close
        assert spool["spool_recovered_files"] >= 1
        hit = {sym for sym, sp in sink._spools.items() if sp.counters.io_errors}
        assert hit
        first_minute = {(r["symbol"], r["seq"]) for b in before for r in b if r["symbol"] in hit}
        assert first_minute <= set(_ready_keys(runtime))
        for b in during[1:] + after:
            run(b)
        writer.close()
        assert writer.counters["sink_failing"] == 0 and writer.counters["sink_errors"] >= 2
        keys = _ready_keys(runtime)
        doubled = {k: n for k, n in Counter(keys).items() if n > 1}
        assert not doubled, f"doubled: {doubled}"
        assert set(keys) == {(r["symbol"], r["seq"]) for r in rows}, "a row was lost"
        assert list((runtime / "spool" / "signal").rglob("*.part")) == []
        assert sink.counters()["spool_torn_lines_truncated"] == 0  # cut back to whole lines, never torn
    finally:
        disk.teardown()
    assert not os.path.ismount(runtime / "spool" / "signal")
    assert sorted(p.name for p in (runtime / "spool" / "signal").rglob(".signals.lock"))  # moved back


def test_standing_disk_keeps_what_was_there_and_fills_open_files(tmp_path: Path) -> None:
    """The fault's means: files there before stay; a file open before the fill gets ENOSPC too."""
    d = tmp_path / "spool"
    (d / "A").mkdir(parents=True)
    (d / "A" / "old.part").write_bytes(b"x\n")
    disk = FullDisk(d, size_kb=1024).standing()
    try:
        assert os.path.ismount(d) and (d / "A" / "old.part").read_bytes() == b"x\n"
        with open(d / "A" / "open.part", "wb", buffering=0) as fh:
            fh.write(b"a" * 100)
            disk.fill()
            with pytest.raises(OSError) as err:
                for _ in range(10):
                    fh.write(b"b" * 8192)
            assert err.value.errno == 28  # ENOSPC
            disk.undo()
            fh.write(b"c" * 8192)  # room again on the same file system, same open file
    finally:
        disk.teardown()
    assert not os.path.ismount(d)
    assert (d / "A" / "old.part").read_bytes() == b"x\n"
    assert (d / "A" / "open.part").stat().st_size > 8192 and not (d / FullDisk.FILLER).exists()
