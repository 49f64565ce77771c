"""Thinning of high-rate events (DESIGN §2): a MOVE is kept only `min_gap_ms` or more after the
last *kept* MOVE; SCROLL bursts likewise (each type against its own last kept event).

The rule is greedy and sequential ("after the last kept one"), yet here it is vectorised: with
`nxt[i]` = the first event at least `min_gap` after event i (one `searchsorted`), the kept events
are exactly the chain 0 → nxt[0] → nxt[nxt[0]] → …; the chain is collected by pointer doubling
(after round k every chain member reachable in < 2**k jumps is marked, and the jump table is
squared), so the cost is O(n log n) numpy work instead of an n-step Python loop.
"""

from __future__ import annotations

import numpy as np

from .schema import EventType

DEFAULT_MIN_GAP_MS = 15.0  # 15, not 16: 64 Hz recorders sample every 15.6 ms (DESIGN §2)
THINNED_TYPES = (EventType.MOVE, EventType.SCROLL)


def thin_times(t_ns: np.ndarray, min_gap_ns: int) -> np.ndarray:
    """Keep-mask [n] for sorted times [n]: the first is kept, then each one ≥ min_gap_ns after the
    last kept one."""
    t = np.asarray(t_ns, np.int64)
    n = len(t)
    if n == 0 or min_gap_ns <= 0:
        return np.ones(n, bool)
    nxt = np.searchsorted(t, t + int(min_gap_ns), side="left")  # [n] first index ≥ t_i + gap (> i)
    jump = np.append(nxt, n)  # [n+1]; index n is the "past the end" sentinel, a fixed point
    on = np.zeros(n + 1, bool)  # [n+1] chain members found so far
    on[0] = True
    for _ in range(int(np.ceil(np.log2(n + 1))) + 1):  # 2**rounds > n: every chain length covered
        on[jump[on]] = True  # add the members one 2**k-jump after a known member
        jump = jump[jump]  # square the jump table: 2**(k+1) steps
    return on[:n]


def thin_events(t_ns: np.ndarray, types: np.ndarray, min_gap_ms: float = DEFAULT_MIN_GAP_MS,
                thinned_types: tuple[int, ...] = THINNED_TYPES) -> tuple[np.ndarray, dict[str, int]]:
    """Keep-mask [n] over sorted events, thinning each of `thinned_types` separately.

    Returns the mask and the number dropped per type name."""
    t = np.asarray(t_ns, np.int64)
    types = np.asarray(types)
    keep = np.ones(len(t), bool)
    dropped: dict[str, int] = {}
    gap = int(round(min_gap_ms * 1e6))
    for typ in thinned_types:
        idx = np.flatnonzero(types == int(typ))
        k = thin_times(t[idx], gap)
        keep[idx[~k]] = False
        dropped[EventType(typ).name] = int((~k).sum())
    return keep, dropped
