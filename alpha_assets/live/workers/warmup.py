"""Warm-up of a standby worker (``live/standby.py``): work a worker does on its first step whatever
the input, done before it is needed, on data of its own. Only the signal worker has any: its numba
kernels load (from the on-disk cache, or compile) on their first call, a second or more under load.
Nothing here touches the run: no Redis, no sink, no checkpoint."""

from __future__ import annotations

from collections.abc import Callable

from alpha_assets.live.workers.common import load_config


def warm_signal() -> None:
    """One step of a few synthetic seconds (trades and books) and a final flush per configured symbol,
    in the run's engine configuration, so every kernel the live steps call is loaded."""
    from alpha_assets.engine import initial_state
    from alpha_assets.engine.step import step_rows
    from alpha_assets.engine.synthetic import synthetic_day, with_ingest_seq

    cfg = load_config()
    for symbol in cfg.symbols:
        day = synthetic_day(symbol, hours=10 / 3600)
        trades, book = with_ingest_seq(day["trades"], day["book"])
        state = initial_state(symbol, cfg.engine_overrides() or None, run_id=cfg.run_id)
        state, _ = step_rows(state, trades.to_dicts(), book.to_dicts())
        step_rows(state, final=True)


WARMUPS: dict[str, Callable[[], None]] = {"alpha_assets.live.workers.signal": warm_signal}
