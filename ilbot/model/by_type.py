"""Per-event-type terms of the position distribution (ModelConfig.xy_by_type) and of the time
quantiles (ModelConfig.time_by_type, `TimeByType` below).

A slot's event type and its position are not independent: the demonstrator moves along a path
and clicks on the node at its end. Without these terms the position distribution (the xy head
and, with anchors, the mixture toward them) is the same whatever type the slot turns out to be,
so a CLICK drawn at a slot whose position mass lies mostly on the path lands on the path.

With them, given the slot's type t (its target's type in teacher forcing, the drawn type in the
planner):

- the xy head and the anchors' scorer (score_h and free_logit) read h + E[t] instead of the
  decoder state h (E: a learned embedding per type), so the state-dependent mixture and σ can
  differ between CLICK and MOVE;
- the xy head's raw outputs (x offset, x log σ before its bounds, y offset, y log σ) get a bias
  per type, `xy_bias [types, 4]`;
- with anchors, the free component's logit and every anchor's gain get a bias per type,
  `anchor_bias [types, 2]` (free logit, gain): "a click goes all the way to the node".

Everything starts at zero, so a new model starts exactly as one without the option, and every
term is additive: the planner's numpy path folds E through the heads' weights into one small
table per type (IncrementalDecoder).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.schema import N_EVENT_TYPES


class XYByType(nn.Module):
    """E [types, d], xy_bias [types, n_xy], anchor_bias [types, 2] (only with anchors); all zero at the start."""

    def __init__(self, d: int, n_xy: int = 4, anchors: bool = False):
        super().__init__()
        self.embed = nn.Embedding(N_EVENT_TYPES, d)
        nn.init.zeros_(self.embed.weight)
        self.xy_bias = nn.Parameter(torch.zeros(N_EVENT_TYPES, n_xy))
        self.anchor_bias = nn.Parameter(torch.zeros(N_EVENT_TYPES, 2)) if anchors else None

    def forward(self, h: torch.Tensor, types: torch.Tensor):
        """h [..., d], types [...] (long, EventType order) → (the position heads' state h + E[type]
        [..., d], xy_bias [..., n_xy], anchor_bias [..., 2] or None)."""
        ab = None if self.anchor_bias is None else self.anchor_bias[types]
        return h + self.embed(types), self.xy_bias[types], ab


class TimeByType(nn.Module):
    """Per-type terms of the time head (ModelConfig.time_by_type): for a slot of type t the head's
    quantile outputs (its first `n_q`: the in-tick q10, q50, q90 raw values and, with a crossing
    head, the look-ahead's) get W[t]·h + b[t]; the crossing logit gets nothing, because the planner
    draws it before the type. A per-type linear term rather than an embedding: the time head is
    linear, so h + E[t] would only shift each type's quantiles by a constant, where a click's gap
    depends on the state (0 ms at the end of a move, ~200 ms after another click).

    W [types, n_q, d] and b [types, n_q] start at zero: a new model starts as one without it."""

    def __init__(self, d: int, n_q: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(N_EVENT_TYPES, n_q, d))
        self.bias = nn.Parameter(torch.zeros(N_EVENT_TYPES, n_q))

    def forward(self, raw: torch.Tensor, h: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """The time head's raw outputs raw [..., n_out] on states h [..., d], for slot types `types`
        [...] (long, EventType order) → raw with the type's term added to its first n_q outputs."""
        n_q = self.bias.shape[-1]
        every = torch.einsum("...d,tqd->...tq", h, self.weight) + self.bias  # [..., types, n_q]
        term = every.gather(-2, types[..., None, None].expand(*types.shape, 1, n_q)).squeeze(-2)  # [..., n_q]
        return torch.cat([raw[..., :n_q] + term, raw[..., n_q:]], dim=-1)
