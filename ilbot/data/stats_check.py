"""What is wrong with a dataset's normalisation statistics (stats.json, and the copy a checkpoint
saves in its config.json): one rule for both readers, which wrap the problem in their own error."""

from __future__ import annotations

import math
from typing import Any

from .schema import tick_ms_problem


def _finite_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def stats_problem(stats: Any, n_features: int, *, prefix: str = "", required: bool = True) -> str | None:
    """Why `stats` is not usable (None when it is): feature_mean and feature_std lists of
    `n_features` finite numbers (std >= 0; absent allowed unless `required`), tick_ms a tick
    length, event_counts counts >= 0, hold_ms numbers >= 0. Fields are named `prefix` + field."""
    if not isinstance(stats, dict):
        return f"{prefix}expected a JSON object, got {type(stats).__name__}"
    for k in ("feature_mean", "feature_std"):
        v = stats.get(k)
        if v is None and not required:
            continue
        if not (isinstance(v, list) and len(v) == n_features):
            got = f"{len(v)} values" if isinstance(v, list) else repr(v)[:40]
            return f"{prefix}{k} must be a list of n_features={n_features} numbers, got {got}"
        bad = next((i for i, x in enumerate(v) if not _finite_number(x) or (k == "feature_std" and x < 0)), None)
        if bad is not None:
            return f"{prefix}{k}[{bad}] must be a finite number{' >= 0' if k == 'feature_std' else ''}, got {v[bad]!r}"
    if stats.get("tick_ms") is not None and tick_ms_problem(stats["tick_ms"]):
        return f"{prefix}tick_ms: {tick_ms_problem(stats['tick_ms'])}"
    counts = stats.get("event_counts")
    if counts is not None and not (isinstance(counts, dict)
                                   and all(type(n) is int and n >= 0 for n in counts.values())):
        return f"{prefix}event_counts={str(counts)[:80]} (expected counts >= 0 per event type)"
    hold = stats.get("hold_ms")
    if hold is not None:
        if not isinstance(hold, dict):
            return f"{prefix}hold_ms must be an object (median, q10, q90, n), got {hold!r}"[:200]
        for k, v in hold.items():
            if v is not None and not (_finite_number(v) and v >= 0):
                return f"{prefix}hold_ms.{k} must be a number >= 0, got {v!r}"[:200]
    return None
