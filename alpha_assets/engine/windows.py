"""Compiled helpers for the fixed-size windows of the calculators.

A window is kept twice: a ring buffer in arrival order (for left-to-right sums, which the
v13 float results depend on) and a sorted copy (so medians and MADs cost O(n) moves instead
of a sort per row).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy", inline="always")
def _bisect(s: np.ndarray, n: int, x: float, after_equal: bool) -> int:
    """Position of x in the sorted prefix s[:n]: before the values equal to it, or after them."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if s[mid] < x or (after_equal and s[mid] == x):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, error_model="numpy", inline="always")
def sorted_insert(s: np.ndarray, n: int, x: float) -> None:
    """Insert x into the sorted prefix s[:n] (s has room for n + 1)."""
    lo = _bisect(s, n, x, True)
    i = n
    while i > lo:
        s[i] = s[i - 1]
        i -= 1
    s[lo] = x


@njit(cache=True, error_model="numpy", inline="always")
def sorted_remove(s: np.ndarray, n: int, x: float) -> None:
    """Remove one occurrence of x from the sorted prefix s[:n]."""
    lo = _bisect(s, n, x, False)
    # s[lo] == x unless x is absent (cannot happen for values we inserted)
    for i in range(lo, n - 1):
        s[i] = s[i + 1]


@njit(cache=True, error_model="numpy", inline="always")
def sorted_replace(s: np.ndarray, n: int, old: float, new: float) -> None:
    """Replace one occurrence of `old` by `new` in the sorted prefix s[:n], shifting only the
    entries between the two positions (a full window evicts and appends in one pass)."""
    i = _bisect(s, n, old, False)
    if new > old:
        while i + 1 < n and s[i + 1] < new:
            s[i] = s[i + 1]
            i += 1
    else:
        while i > 0 and s[i - 1] > new:
            s[i] = s[i - 1]
            i -= 1
    s[i] = new


@njit(cache=True, error_model="numpy", inline="always")
def window_push(ring: np.ndarray, srt: np.ndarray, n: int, head: int, cap: int, x: float) -> tuple[int, int]:
    """Append x to a window of `cap` values (ring in arrival order, `srt` its sorted copy), evicting
    the oldest when it is full; returns (its new size, the ring's new head)."""
    if n == cap:
        sorted_replace(srt, n, ring[head], x)
    else:
        sorted_insert(srt, n, x)
        n += 1
    ring[head] = x
    return n, (head + 1) % cap


@njit(cache=True, error_model="numpy", inline="always")
def sorted_median(s: np.ndarray, n: int) -> float:
    """Median of the sorted prefix; even size -> mean of the two middle values."""
    h = n >> 1
    if n & 1:
        return s[h]
    return (s[h - 1] + s[h]) / 2.0


@njit(cache=True, error_model="numpy", inline="always")
def _dev(s: np.ndarray, i: int, med: float) -> float:
    return abs(s[i] - med)


@njit(cache=True, error_model="numpy", inline="always")
def _kth_dev(s: np.ndarray, n: int, med: float, k: int) -> tuple[float, float]:
    """(k-th, (k+1)-th) smallest of |s[i] - med| (0-based), s sorted, med its median.

    Left of the middle the deviations grow as the index falls, right of it as the index
    rises: two sorted sequences, so the k-th of their union is found by binary search on
    how many come from the left (O(log n)). Same values as sorting abs(x - med), so the
    median is bit-identical to the original's.
    """
    r = n >> 1
    m = r  # left: L[i] = dev(s[r - 1 - i]), i < m
    p = n - r  # right: R[i] = dev(s[r + i]), i < p
    lo = max(0, k + 1 - p)
    hi = min(k + 1, m)
    while lo < hi:
        a = (lo + hi) >> 1
        b = k + 1 - a
        if b > 0 and a < m and _dev(s, r + b - 1, med) > _dev(s, r - 1 - a, med):
            lo = a + 1
        else:
            hi = a
    a = lo
    b = k + 1 - a
    kth = -np.inf
    if a > 0:
        kth = _dev(s, r - a, med)
    if b > 0:
        kth = max(kth, _dev(s, r + b - 1, med))
    nxt = np.inf
    if a < m:
        nxt = _dev(s, r - 1 - a, med)
    if b < p:
        nxt = min(nxt, _dev(s, r + b, med))
    return kth, nxt


@njit(cache=True, error_model="numpy", inline="always")
def sorted_mad(s: np.ndarray, n: int, med: float) -> float:
    """median(|x - med|) over the sorted prefix s[:n] (n >= 1)."""
    if n & 1:
        return _kth_dev(s, n, med, n >> 1)[0]
    lo, hi = _kth_dev(s, n, med, (n >> 1) - 1)
    return (lo + hi) / 2.0


@njit(cache=True, error_model="numpy", inline="always")
def ring_sum(buf: np.ndarray, start: int, n: int) -> float:
    """Left-to-right sum of n ring entries from start (oldest first), without modulo per element."""
    cap = buf.shape[0]
    s = 0.0
    first = min(n, cap - start)
    for j in range(start, start + first):
        s += buf[j]
    for j in range(0, n - first):
        s += buf[j]
    return s


@njit(cache=True, error_model="numpy", inline="always")
def ring_sq_dev_next_sum(buf: np.ndarray, start: int, n: int, m: float, drop_first: bool) -> tuple[float, float]:
    """One pass over n ring entries (n >= 1): the left-to-right sum of (x - m)^2 and,
    interleaved as an independent chain, the left-to-right sum of the entries that stay in the
    window after this row (all but the oldest when drop_first). Two chains -> twice the ILP,
    and each sum is bit-identical to summing it on its own."""
    cap = buf.shape[0]
    x0 = buf[start]
    d0 = x0 - m
    ss = d0 * d0
    s2 = 0.0 if drop_first else x0
    rest = n - 1
    first = min(rest, cap - start - 1)
    for j in range(start + 1, start + 1 + first):
        x = buf[j]
        d = x - m
        ss += d * d
        s2 += x
    for j in range(0, rest - first):
        x = buf[j]
        d = x - m
        ss += d * d
        s2 += x
    return ss, s2
