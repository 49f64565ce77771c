"""Teacher forcing on rows grouped by length: the same outputs for the valid slots, a fraction of the work.

A batch's target slots are cut to its longest window (ilbot.training.data.trim_slots), so every
row is decoded over that many slots. Real recordings are mostly short windows with a few long
ones: on Balabit's training windows a random batch of 64 pads to ~30 slots where its rows hold
~4 valid ones on average, and the per-slot path (decoder, heads, loss) runs on 7× more slots than
it needs.

Every row is decoded independently (the decoder is causal, attention and layer norm act within a
row), so the rows can be split into groups of similar length, each decoded over its own longest
row, and the outputs put back in the batch's row order. The outputs of every valid slot are those
of the whole batch decoded at once, and so are the loss and its gradient, because the loss counts
valid slots only (ilbot.model.loss). A group's slots past its own length are filled with its last
slot's outputs: finite, and selected away by the loss like any padding.

`row_groups` picks at most `max_groups` groups of consecutive lengths (in sorted order) that
minimise the slots decoded plus a fixed cost per group (`group_cost`, in slots: one more pass
through the per-slot path costs about as much as that many slots of work). On Balabit's training
batches it makes two groups and decodes ~9.5 slots per row instead of ~30; training runs ~15 %
more windows per second (not 3×: the per-slot path of this small model is dominated by the
per-operation overhead of a pass, which the context encoder and each group pay once).
"""

from __future__ import annotations

import numpy as np
import torch

# one more pass through the per-slot path costs about as much as 768 more slots in a pass (on the
# 2-core CPU, Balabit config: a pass of 8 rows × 1 slot took 18 ms, 64 × 30 slots 44 ms: it is the
# per-operation overhead of a small model, not arithmetic)
GROUP_COST = 768
MAX_GROUPS = 3


def row_lengths(target_mask: torch.Tensor) -> np.ndarray:
    """target_mask [B,A] → [B] slots each row needs: its last valid slot + 1 (at least 1)."""
    m = target_mask.bool()
    order = torch.arange(1, m.shape[1] + 1, device=m.device)  # [A] 1-based
    return (m * order).amax(dim=1).clamp(min=1).cpu().numpy()


def row_groups(lengths: np.ndarray, group_cost: float | None = None, max_groups: int | None = None) -> list[tuple[np.ndarray, int]]:
    """Row lengths [B] → [(rows [n] int64, slots L)] covering every row once: the grouping (of rows
    sorted by length, cut where the length changes) with the fewest slots decoded, Σ n·L, plus
    `group_cost` per group. One group (every row, the longest length) when grouping does not pay."""
    group_cost = GROUP_COST if group_cost is None else group_cost
    max_groups = MAX_GROUPS if max_groups is None else max_groups
    lengths = np.asarray(lengths, np.int64)
    order = np.argsort(lengths, kind="stable")
    s = lengths[order]  # sorted lengths
    ends = np.r_[np.flatnonzero(np.diff(s)) + 1, len(s)]  # cut points: after each run of one length
    # best[g, j]: the cheapest cover of rows [0, ends[j]) with g + 1 groups; the group that ends at
    # ends[j] has length s[ends[j] − 1] (the largest in it)
    n_cut = len(ends)
    best = np.full((max_groups, n_cut), np.inf)
    prev = np.full((max_groups, n_cut), -1)
    best[0] = ends * s[ends - 1] + group_cost
    for g in range(1, max_groups):
        for j in range(1, n_cut):
            starts = ends[:j]  # the group covers rows [ends[i], ends[j]) after best[g−1, i]
            cost = best[g - 1, :j] + (ends[j] - starts) * s[ends[j] - 1] + group_cost
            i = int(np.argmin(cost))
            best[g, j], prev[g, j] = cost[i], i
    g = int(np.argmin(best[:, -1]))
    groups, j = [], n_cut - 1
    while j >= 0 and g >= 0:
        i = int(prev[g, j]) if g > 0 else -1
        lo = int(ends[i]) if i >= 0 else 0
        groups.append((np.sort(order[lo:ends[j]]), int(s[ends[j] - 1])))
        j, g = i, g - 1
    return groups[::-1]


def take_rows(batch: dict, rows: torch.Tensor, B: int) -> dict:
    """The batch's per-row arrays (tensors or numpy, first dimension B) at `rows`; anything else as it is."""
    def take(v):
        if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == B:
            return v[rows]
        if isinstance(v, np.ndarray) and v.ndim > 0 and v.shape[0] == B:
            return v[rows.cpu().numpy()]
        return v
    return {k: take(v) for k, v in batch.items()}


def merge_rows(parts: list[dict], groups: list[tuple[torch.Tensor, int]], L: int) -> dict:
    """Per-group outputs {key: [n_g, L_g, …]} → {key: [B, L, …]} in the batch's row order, each
    group's slots past L_g filled with its slot L_g − 1 (padding: the loss never reads it)."""
    rows = torch.cat([r for r, _ in groups])  # [B] the batch row of each stacked row
    inverse = torch.empty_like(rows)
    inverse[rows] = torch.arange(len(rows), device=rows.device)
    out = {}
    for key in parts[0]:
        padded = []
        for part, (_, lg) in zip(parts, groups):
            v = part[key]  # [n_g, L_g, …]
            idx = torch.arange(L, device=v.device).clamp(max=lg - 1)  # [L]
            padded.append(v.index_select(1, idx))  # [n_g, L, …]
        out[key] = torch.cat(padded).index_select(0, inverse)  # [B, L, …]
    return out
