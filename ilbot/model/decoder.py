"""ActionDecoder (DESIGN §6): a causal transformer over the A target slots, cross-attending to
the context.

Slot i's input is the embedding of event i−1 (teacher forcing in training, the planner's own
sample at inference) plus a learned slot position; slot 0 gets a learned start token instead.
Each event is embedded with its time since the tick start (the cumulative dt up to and including
it), so the decoder always knows how far into the tick it is — what it needs to place the
look-ahead event past the tick's end.

With `slot_elapsed_input` (ModelConfig) slot i also gets, through its own linear map `elapsed`,
the time from the tick start to event i−1 (0 for slot 0) and the time left to the tick end, both
log1p-scaled: the remaining time is what decides whether the next event falls inside the tick,
and a linear map of log(elapsed) alone cannot express it.

With `xy_step_input` slot i also gets, through the linear map `step_in`, the step from event i−2
to event i−1 times STEP_SCALE (a 10 px step on an 800 px window reads 0.125): continuing a
stroke needs that difference, which is tiny next to the embedded absolute positions it would
otherwise be computed from. The model supplies the positions (UnifiedEventModel.forward).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.schema import TG
from .attention import DecoderBlock
from .config import ModelConfig
from .encoders import EventEmbedding, dt_feature
from .fields import target_to_history_rows


class ActionDecoder(nn.Module):
    STEP_SCALE = 10.0  # xy_step_input: window units → input units

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.embed = EventEmbedding(cfg)
        self.start = nn.Parameter(torch.zeros(d))
        self.pos = nn.Parameter(torch.zeros(cfg.n_slots, d))
        nn.init.normal_(self.start, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(DecoderBlock(d, cfg.n_heads, cfg.ff_mult, cfg.dropout) for _ in range(cfg.n_decoder_layers))
        self.ln = nn.LayerNorm(d)
        self.tick_ms = cfg.tick_ms
        self.dt_log_scale = cfg.dt_log_scale
        self.elapsed = nn.Linear(2, d) if cfg.slot_elapsed_input else None  # only then: older checkpoints load
        self.step_in = nn.Linear(2, d) if cfg.xy_step_input else None
        # pointer_input: every slot's input also gets a linear map of the context's pointer row, so
        # the heads can learn how far to trust it as the origin; zero at the start (origin alone)
        self.pointer_in = nn.Linear(3, d) if cfg.pointer_input else None
        if self.pointer_in is not None:
            nn.init.zeros_(self.pointer_in.weight)
            nn.init.zeros_(self.pointer_in.bias)

    def elapsed_features(self, elapsed_ms: torch.Tensor, tick_ms: float) -> torch.Tensor:
        """[...] ms from the tick start to the previous event → [..., 2] (elapsed, remaining), log1p-scaled."""
        s = self.dt_log_scale
        return torch.stack([dt_feature(elapsed_ms, s), dt_feature(tick_ms - elapsed_ms, s)], dim=-1)

    def step_input(self, prev_xy: torch.Tensor, prev2_xy: torch.Tensor) -> torch.Tensor:
        """xy_step_input's term: positions of events i−1 and i−2 [..., 2] → [..., d]."""
        return self.step_in((prev_xy - prev2_xy) * self.STEP_SCALE)

    def pointer_input(self, pointer: torch.Tensor) -> torch.Tensor:
        """pointer_input's term of every slot's input: pointer rows [B,3] → [B,1,d]."""
        return self.pointer_in(pointer.float()).unsqueeze(1)

    def slot_inputs(self, targets: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced inputs: targets [B,A,7], mask [B,A] → [B,A,d] (slot i ← event i−1)."""
        tg = torch.where(target_mask.bool().unsqueeze(-1), targets, torch.zeros_like(targets))  # [B,A,7] invalid → 0
        since_start = torch.cumsum(tg[..., TG["dt_ms"]].clamp(min=0.0), dim=-1)  # [B,A] ms
        e = self.embed(target_to_history_rows(tg), since_start)  # [B,A,d] embedding of event i
        B, L, d = e.shape
        start = self.start.expand(B, 1, d)  # [B,1,d]
        x = torch.cat([start, e[:, :-1]], dim=1) + self.pos[:L]  # [B,A,d]
        if self.elapsed is not None:
            elapsed = torch.cat([since_start.new_zeros(B, 1), since_start[:, :-1]], dim=1)  # [B,A] ms before slot i
            x = x + self.elapsed(self.elapsed_features(elapsed, self.tick_ms))  # [B,A,d]
        return x

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Slot inputs [B,L,d] and context [B,T,d] → per-slot states [B,L,d]."""
        for block in self.blocks:
            x = block(x, context)
        return self.ln(x)
