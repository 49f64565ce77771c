"""UnifiedEventModel (DESIGN §6): encoders → context; causal slot decoder → heads; loss.

`model(batch)` returns the head dict for teacher-forced slots; `model(batch, targets)` adds
`loss` and `loss_parts`. batch: `gamestate [B,T,F]`, `history [B,T,A,8]`, `history_mask [B,T,A]`
and, for teacher forcing, `targets [B,A,7]`, `target_mask [B,A]`. `targets` may be a dict with
`targets` and `target_mask` (the contract), or the targets tensor itself (its mask then comes
from the batch).

Outputs (shapes [B, A, …]): event_logits 4, time_q 3 (ms) and time_q_log 3 (log1p ms), x_mu,
x_logsig, y_mu, y_logsig (normalised window units), button_logits 4, key_action_logits 3,
key_id_logits V, scroll_y_logits 3. All heads run on every slot here (their losses are masked);
the planner runs the event-specific ones only where the sampled event needs them.
With `cfg.xy_residual` x_mu, y_mu are the previous event's position plus the head's offset
(see ModelConfig); `cfg.xy_step_input` adds the step between the previous two events to each
slot's input (ActionDecoder); with `cfg.anchors` each slot also sees the game state's on-screen positions
and its position is a mixture with one component shifted toward each (`anchor_logits` [K+1],
`anchor_shift` [K+1, 2]; ilbot.model.anchors). With `cfg.xy_by_type` the position (the xy head
and the anchor mixture) is conditioned on each slot's event type, here its target's type
(ilbot.model.by_type; padded slots take MOVE, masked in the loss); `cfg.time_by_type` likewise
conditions the time quantiles. `cfg.recent_events` adds the features of the K events before
each slot to its input (ilbot.model.recent).

Teacher forcing encodes the context of the whole batch once and decodes its rows in groups of
similar length, each over its own longest row (ilbot.model.row_groups): the valid slots' outputs,
the loss and its gradient are those of decoding every row over the batch's longest, for a third
of the slots on real recordings. Slots past a row's last valid one hold padding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.schema import N_BUTTONS, N_EVENT_TYPES, N_KEY_ACTIONS, N_SCROLL, TG
from .anchors import PositionAnchors, anchor_inputs
from .by_type import TimeByType, XYByType
from .config import ModelConfig
from .decoder import ActionDecoder
from .encoders import ActionEncoder, GamestateEncoder, TemporalEncoder
from .fields import context_pointer, last_history_xy, previous_xy, target_event_types
from .heads import XY_HEADS, CategoricalHead, TimeQuantileHead
from .loss import UnifiedEventLoss
from .recent import RecentEvents
from .row_groups import merge_rows, row_groups, row_lengths, take_rows


class UnifiedEventModel(nn.Module):
    def __init__(self, cfg: ModelConfig | None = None, loss: UnifiedEventLoss | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ModelConfig()
        d = cfg.d_model
        self.gamestate_encoder = GamestateEncoder(cfg)
        self.action_encoder = ActionEncoder(cfg)
        self.temporal_encoder = TemporalEncoder(cfg)
        self.decoder = ActionDecoder(cfg)
        # heads every slot needs (event, time, position) …
        self.event_head = CategoricalHead(d, "event", N_EVENT_TYPES)
        self.time_head = TimeQuantileHead(d, cfg)
        self.xy_head = XY_HEADS[cfg.xy_dist](d, cfg)
        # … and the event-specific ones (CLICK: button; KEY: key_action, key_id; SCROLL: scroll_y)
        self.button_head = CategoricalHead(d, "button", N_BUTTONS)
        self.key_action_head = CategoricalHead(d, "key_action", N_KEY_ACTIONS)
        self.key_id_head = CategoricalHead(d, "key_id", cfg.key_vocab_size)
        self.scroll_y_head = CategoricalHead(d, "scroll_y", N_SCROLL)
        self.loss_fn = loss or UnifiedEventLoss()
        self.anchors = PositionAnchors(cfg.anchors, d) if cfg.anchors else None  # only then: older checkpoints load
        self.xy_by_type = XYByType(d, self.xy_head.proj.out_features, bool(cfg.anchors)) if cfg.xy_by_type else None
        self.time_by_type = TimeByType(d, self.time_head.n_quantile_raw) if cfg.time_by_type else None
        self.recent = RecentEvents(cfg.recent_events, d, cfg.dt_log_scale) if cfg.recent_events else None
        self.group_rows = True  # teacher forcing decodes rows grouped by length (ilbot.model.row_groups); False: all at once

    @property
    def core_heads(self) -> tuple:
        return (self.event_head, self.time_head, self.xy_head)

    @property
    def event_heads(self) -> tuple:
        return (self.button_head, self.key_action_head, self.key_id_head, self.scroll_y_head)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, batch: dict) -> torch.Tensor:
        """The context: gamestate [B,T,F], history [B,T,A,8], history_mask [B,T,A] → [B,T,d]."""
        g = self.gamestate_encoder(batch["gamestate"].float())  # [B,T,d]
        a = self.action_encoder(batch["history"].float(), batch["history_mask"].bool())  # [B,T,d]
        return self.temporal_encoder(g + a)  # [B,T,d]

    def heads(self, h: torch.Tensor, types: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """Every head on per-slot states h [B,L,d] → (head dict, the state the anchors' scorer
        reads, the anchors' per-type biases or None). With xy_by_type the position head reads
        h + E[type] and its raw outputs get the type's bias, with time_by_type the time quantiles
        get the type's term, for the slot types `types` [B,L]."""
        out: dict[str, torch.Tensor] = {}
        by_type, time_by_type = self.xy_by_type, self.time_by_type
        typed = [head for head, t in ((self.xy_head, by_type), (self.time_head, time_by_type)) if t is not None]
        for head in self.core_heads + self.event_heads:
            if head not in typed:  # those given the type come below
                out.update(head(h))
        if time_by_type is not None:
            out.update(self.time_head.params(time_by_type(self.time_head.proj(h), h, types)))
        if by_type is None:
            return out, h, None
        hx, xy_bias, anchor_bias = by_type(h, types)
        out.update(self.xy_head.params(self.xy_head.proj(hx) + xy_bias))
        return out, hx, anchor_bias

    def forward(self, batch: dict, targets=None) -> dict[str, torch.Tensor]:
        if isinstance(targets, dict):
            tg, tmask = targets["targets"], targets["target_mask"]
        elif targets is not None:
            tg, tmask = targets, batch["target_mask"]
        elif "targets" in batch:
            tg, tmask = batch["targets"], batch["target_mask"]
        else:
            raise ValueError("UnifiedEventModel: teacher forcing needs targets [B,A,7] and target_mask [B,A] "
                             "(in the batch or as the targets argument); use ilbot.model.Planner to sample")
        tg, tmask = tg.float(), tmask.bool()
        context = self.encode(batch)  # [B,T,d]
        B, L = tmask.shape
        groups = row_groups(row_lengths(tmask)) if self.group_rows else [(np.arange(B), L)]
        if len(groups) == 1:
            out = self.decode_slots(batch, context, tg, tmask)
        else:  # rows of similar length decoded together, each group over its own slots (ilbot.model.row_groups)
            groups = [(torch.as_tensor(rows, device=tmask.device), lg) for rows, lg in groups]
            out = merge_rows([self.decode_slots(take_rows(batch, rows, B), context[rows], tg[rows, :lg], tmask[rows, :lg])
                              for rows, lg in groups], groups, L)
        if targets is not None:
            out["loss"], out["loss_parts"] = self.loss_fn(out, tg, tmask, xy_nll=self.xy_head.coord_nll)
        return out

    def decode_slots(self, batch: dict, context: torch.Tensor, tg: torch.Tensor, tmask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Teacher-forced head outputs [B,L,…] of slots with targets tg [B,L,7] (float), mask
        tmask [B,L] (bool), on the context [B,T,d] of `batch`'s rows."""
        # what the decoder reads of the previous slots (padding zeroed, so garbage there cannot reach
        # the valid slots through the xy origins); the loss scores against tg
        tg_in = torch.where(tmask.unsqueeze(-1), tg, torch.zeros_like(tg))  # [B,A,7]
        if self.training and self.cfg.xy_input_noise > 0:  # noise injection (ModelConfig.xy_input_noise)
            noise = torch.randn_like(tg_in[..., TG["x"]:TG["y"] + 1]) * self.cfg.xy_input_noise  # [B,A,2]
            tg_in = torch.cat([tg_in[..., :TG["x"]], tg_in[..., TG["x"]:TG["y"] + 1] + noise, tg_in[..., TG["y"] + 1:]], dim=-1)
        x = self.decoder.slot_inputs(tg_in, tmask)  # [B,A,d]
        history = (batch["history"].float(), batch["history_mask"])
        pointer = context_pointer(batch, tg) if self.cfg.pointer_input else None  # [B,3]
        if pointer is not None:  # pointer_input: the origin after idle ticks, and an input of every slot
            x = x + self.decoder.pointer_input(pointer)  # [B,A,d]
        prev = previous_xy(tg_in, last_history_xy(*history, pointer=pointer))  # [B,A,2] event i−1's position
        if self.decoder.step_in is not None:  # xy_step_input: the step from event i−2 to i−1
            prev2 = torch.cat([last_history_xy(*history, before=1, pointer=pointer).unsqueeze(1), prev[:, :-1]], dim=1)  # [B,A,2]
            x = x + self.decoder.step_input(prev, prev2)  # [B,A,d]
        if self.recent is not None:  # recent_events: the K events before each slot, one by one
            x = x + self.recent.teacher_forced(*history, tg_in, tmask)  # [B,A,d]
        if self.anchors is not None:
            pos, valid = self.anchors.positions(batch["gamestate"])  # [B,K,2], [B,K]
            feats, rel = anchor_inputs(pos[:, None], valid[:, None], prev)  # [B,A,K·4], [B,A,K,2]
            x = x + self.anchors.inputs(feats)  # [B,A,d]
        h = self.decoder(x, context)  # [B,A,d]
        types = None
        if self.xy_by_type is not None or self.time_by_type is not None:
            # the position and time given each slot's own (target) type; padding → MOVE
            types = target_event_types(tg_in)  # [B,A] (the noise moves x, y only)
        out, hx, anchor_bias = self.heads(h, types)
        if self.cfg.xy_residual:  # the head's mean is an offset from the previous event's position
            out["x_mu"] = out["x_mu"] + (prev[..., 0] - 0.5)  # the head's own origin is 0.5
            out["y_mu"] = out["y_mu"] + (prev[..., 1] - 0.5)
        if self.anchors is not None:  # a mixture: component k shifted toward anchor k (ilbot.model.anchors)
            out["anchor_logits"], out["anchor_shift"] = self.anchors.mixture(hx, feats, rel, valid[:, None], anchor_bias)  # [B,A,K+1], [B,A,K+1,2]
        return out
