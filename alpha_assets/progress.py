"""Progress of long runs: call something in the background that reports figures as it goes, and
show those figures as one line (logs) or a bar (a terminal).

`Background(fn)` runs `fn(on_progress, stop)` in a thread; iterating `progress()` yields each
figures dict as it is reported, from the caller's thread (where Dagster lets an op yield events);
`result()` returns what `fn` returned or raises what it raised; `stop()` asks it to end early.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Figures = dict[str, Any]
_DONE = object()


class Background(Generic[T]):
    def __init__(self, fn: Callable[[Callable[[Figures], None], threading.Event], T], name: str) -> None:
        self._fn = fn
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._box: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._box["result"] = self._fn(self._queue.put, self._stop)
        except BaseException as exc:  # handed to the caller's thread by result()
            self._box["error"] = exc
        finally:
            self._queue.put(_DONE)

    def progress(self) -> Iterator[Figures]:
        self._thread.start()
        while (item := self._queue.get()) is not _DONE:
            yield item

    def result(self) -> T:
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box["result"]

    def stop(self, timeout_s: float = 120.0) -> None:
        """Ask the work to end in order and wait for it (e.g. when the run is interrupted)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)


def progress_line(p: Figures, what: str = "soak") -> str:
    """`soak minute 3.0 of 60: 12,345 signals, lag 12 ms, 0 restarts, 3 exports, 4/4 workers healthy`."""
    lag = f"{p['lag_ms']:,} ms" if isinstance(p.get("lag_ms"), int | float) else "n/a"
    return (f"{what} minute {p['elapsed_s'] / 60:.1f} of {p['minutes']:g}: {p['signals_total']:,} signals, "
            f"{p['trades_landed']:,} trades landed, {p['orders']:,} orders, lag {lag}, {p['restarts_total']} restarts, "
            f"{p['exports']} exports ({p['export_errors']} failed), {p['workers_healthy']}/{p['workers']} workers healthy")


def progress_metadata(p: Figures) -> Figures:
    """The numbers of a progress report (plotted by the UI across a run's observations)."""
    return {k: v for k, v in p.items() if isinstance(v, int | float) and not isinstance(v, bool)}


class TerminalBar:
    """A progress bar on stderr when stderr is a terminal; silent otherwise (logs carry the lines)."""

    def __init__(self, total_s: float, what: str = "soak") -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=round(total_s), desc=what, unit="s", file=sys.stderr, disable=None,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s {postfix}")

    def update(self, p: Figures) -> None:
        self._bar.n = min(float(p.get("elapsed_s", 0.0)), float(self._bar.total or 0))
        self._bar.set_postfix_str(f"{p.get('signals_total', 0):,} signals, {p.get('restarts_total', 0)} restarts")

    def close(self) -> None:
        self._bar.close()
