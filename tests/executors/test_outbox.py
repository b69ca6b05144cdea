"""Execution-event outbox: layout and fields, idempotent replays, and 10,000 events through a
writer process SIGKILLed at random points and restarted: none lost, none doubled, every ready
file readable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from executors.contract import ExecResult, OrderCtx, client_order_id
from executors.outbox import EVENT_FIELDS, Outbox, exec_event

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outbox_writer import event  # noqa: E402

WRITER = Path(__file__).resolve().parent / "outbox_writer.py"
N = 10_000


def _read_ready(root: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted((root / "exec_events").glob("*/exec_*.jsonl")):
        with open(f, "rb") as fh:
            data = fh.read()
        assert data.endswith(b"\n"), f"{f.name} ends mid-line"
        out += [orjson.loads(line) for line in data.splitlines()]
    return out


def test_layout_and_fields(tmp_path: Path) -> None:
    ctx = OrderCtx(ts_ms=1_704_585_661_000, event_ts_ms=1_704_585_660_990, symbol="BTCUSDT", side="BUY", qty=0.01,
                   px_intent=43000.0, tick_size=0.1, step_size=0.001, signal_seq=42)
    res = ExecResult(status="filled", client_order_id=client_order_id(ctx), qty_sent=0.01, px_sent=43000.0,
                     px_fill=43000.1, slippage_bps=0.02, sent_ts_ms=ctx.ts_ms, ack_ts_ms=ctx.ts_ms + 9)
    with Outbox(tmp_path) as ob:
        assert ob.record(ctx, res, "run-7") == 1
        assert ob.record(ctx, res, "run-7") == 0  # replay of the same event
    f = tmp_path / "exec_events" / "BTCUSDT" / "exec_20240107_0001.jsonl"
    assert f.exists(), sorted(p.name for p in tmp_path.rglob("*"))
    (rec,) = [orjson.loads(x) for x in f.read_bytes().splitlines()]
    assert set(EVENT_FIELDS) <= set(rec)
    assert rec["signal_row_id"] == "run-7:BTCUSDT:42" and rec["px_fill"] == 43000.1 and rec["status"] == "filled"
    assert rec == exec_event(ctx, res, "run-7")
    with pytest.raises(ValueError, match="lacks fields"):
        Outbox(tmp_path / "x").write([{"symbol": "BTCUSDT", "ts_ms": 1}])


def test_sigkill_at_random_points_loses_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(20240107)
    start, kills, runs = 0, 0, 0
    while True:
        runs += 1
        assert runs < 40, "writer never finished"
        p = subprocess.Popen([sys.executable, str(WRITER), str(tmp_path), str(start), str(N)],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        last_ok, done = start, False
        kill_after = rng.randint(1, 40) if kills < 8 else None
        seen = 0
        for line in p.stdout:
            if line.startswith("ok "):
                last_ok, seen = int(line.split()[1]), seen + 1
            elif line.strip() == "done":
                done = True
            if kill_after is not None and seen >= kill_after:
                time.sleep(rng.random() * 0.005)  # land somewhere inside the next batch
                os.kill(p.pid, signal.SIGKILL)
                break
        p.wait(timeout=30)
        if done and p.returncode == 0:
            break
        assert p.returncode == -signal.SIGKILL
        kills += 1
        # the producer replays from before its last acknowledged batch (an overlap is normal)
        start = max(0, last_ok - rng.randint(0, 300))
    assert kills == 8
    Outbox(tmp_path).close()  # a final start finalises anything left (nothing should be)
    assert not list((tmp_path / "exec_events").glob("*/spool/*.part"))
    recs = _read_ready(tmp_path)
    keys = [r["client_order_id"] for r in recs]
    assert len(keys) == len(set(keys)), "an event was written twice"
    assert len(keys) == N, f"{N - len(set(keys))} events lost"
    by_id = {r["client_order_id"]: r for r in recs}
    for i in range(0, N, 997):  # content survived intact
        assert by_id[f"aa-{i:010d}"] == event(i)
    print(f"outbox crash test: {kills} SIGKILLs, {runs} runs, {len(recs)} events in "
          f"{len(list((tmp_path / 'exec_events').glob('*/exec_*.jsonl')))} ready files")
