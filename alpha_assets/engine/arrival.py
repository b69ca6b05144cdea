"""Arrival order: the row order of the `arrival` book join (EngineConfig.book_join).

In `arrival` mode the engine processes one symbol's trades and book rows in the order they were
received and evaluates each trade against the latest book row received before it, so no trade
waits for later book data (the live worker emits its signal as soon as the trade arrives).

The order, ascending, first difference decides:
  1. ingest_seq     the harvester's per-symbol arrival counter (market/schema.py INGEST_SEQ);
                    rows without one sort before rows with one
  2. recv_time_ms   receive time (null first)
  3. kind           book before trade: a book row received in the same millisecond as a trade
                    counts as received before it, so the trade sees the freshest book
  4. event_time_ms  (null first)
  5. id             last_update_id of a book row, agg_trade_id of a trade (null first)
  6. position       input position within its own table (otherwise identical rows keep input order)

With ingest_seq on every row (the live harvester) rule 1 alone decides. Without it (a simulated
day, a replayed recording) rules 2-6 give a deterministic order from data the rows carry.
A stream cut anywhere in this order and stepped chunk by chunk gives the rows of one pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

I64_MIN = np.iinfo(np.int64).min  # stands for null in a key: sorts first

# (ingest_seq, recv_time_ms, event_time_ms, id) of each row, int64 with null = I64_MIN
Keys = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

BOOK_ID = "last_update_id"
TRADE_ID = "agg_trade_id"


def frame_keys(frame: pl.DataFrame, id_column: str) -> Keys:
    """The sort keys of a normalised trades or book frame."""
    def col(name: str) -> np.ndarray:
        if name not in frame.columns:
            return np.full(frame.height, I64_MIN, dtype=np.int64)
        s = frame.get_column(name)
        if s.null_count():
            s = s.fill_null(I64_MIN)
        return s.to_numpy().astype(np.int64, copy=False)

    return col("ingest_seq"), col("recv_time_ms"), col("event_time_ms"), col(id_column)


def arrival_order(book: Keys, trades: Keys) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(book permutation, trade permutation, book ranks, trade ranks): each table's rows in arrival
    order, and each of those rows' position in the merged order of both tables."""
    nb, nt = book[0].shape[0], trades[0].shape[0]
    seq = np.concatenate((book[0], trades[0]))
    order = None
    if nb + nt and bool((seq != I64_MIN).all()):
        # the live case: every row carries the counter; when it is unique it decides alone
        cand = np.argsort(seq, kind="stable")
        s = seq[cand]
        if bool((s[1:] > s[:-1]).all()):
            order = cand
    if order is None:
        kind = np.concatenate((np.zeros(nb, dtype=np.int8), np.ones(nt, dtype=np.int8)))
        pos = np.concatenate((np.arange(nb, dtype=np.int64), np.arange(nt, dtype=np.int64)))
        ids = np.concatenate((book[3], trades[3]))
        evt = np.concatenate((book[2], trades[2]))
        recv = np.concatenate((book[1], trades[1]))
        order = np.lexsort((pos, ids, evt, kind, recv, seq))  # last key is the primary one
    is_trade = order >= nb
    at = np.arange(nb + nt, dtype=np.int64)
    return order[~is_trade], order[is_trade] - nb, at[~is_trade], at[is_trade]


def _take(frame: pl.DataFrame, perm: np.ndarray) -> pl.DataFrame:
    if perm.shape[0] == 0 or bool((perm[1:] > perm[:-1]).all()):
        return frame  # already in arrival order
    return frame[perm]


def sort_arrival(st: dict[str, Any], trades: pl.DataFrame, book: pl.DataFrame
                 ) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray, np.ndarray]:
    """Trades and book of one chunk in arrival order, with their merged ranks continuing the
    stream's running count (`st["arrival_n"]`), so ranks of later chunks are always larger."""
    bp, tp, br, tr = arrival_order(frame_keys(book, BOOK_ID), frame_keys(trades, TRADE_ID))
    base = int(st.get("arrival_n", 0))
    st["arrival_n"] = base + book.height + trades.height
    return _take(trades, tp), _take(book, bp), tr + base, br + base
