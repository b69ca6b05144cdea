"""Writer process for the outbox crash test: spools execution events ``start..n`` (a deterministic
function of their index) in batches, printing ``ok <next>`` after each batch has been handed to the
OS, then ``done``. Run: python outbox_writer.py <runtime_dir> <start> <n>."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from executors.outbox import Outbox  # noqa: E402

T0 = 1_704_585_600_000
BATCH = 40


def event(i: int) -> dict[str, Any]:
    sym = ("BTCUSDT", "ETHUSDT")[i % 2]
    side = "BUY" if i % 3 else "SELL"
    px = 43_000.0 + (i % 97) * 0.1 if sym == "BTCUSDT" else 2_200.0 + (i % 89) * 0.01
    return {"event": "submit", "symbol": sym, "ts_ms": T0 + i * 200, "signal_row_id": f"run:{sym}:{i}",
            "client_order_id": f"aa-{i:010d}", "side": side, "qty": 0.001 * (1 + i % 7), "px_intent": px,
            "px_sent": px, "px_fill": px if i % 5 else None, "rounding_diff": 0.0, "slippage_bps": 0.0,
            "exchange_order_id": str(10_000_000 + i), "status": "filled" if i % 5 else "rejected",
            "reason": "" if i % 5 else "risk:kill_switch:test", "sent_ts_ms": T0 + i * 200,
            "ack_ts_ms": T0 + i * 200 + 15}


def main(root: Path, start: int, n: int) -> None:
    ob = Outbox(root)
    for lo in range(start, n, BATCH):
        hi = min(n, lo + BATCH)
        ob.write(event(i) for i in range(lo, hi))
        ob.flush()
        print(f"ok {hi}", flush=True)
    ob.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
