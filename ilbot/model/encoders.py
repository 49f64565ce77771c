"""Context encoders (DESIGN §6): game state, action history, and time across the T ticks.

    gamestate [B,T,F] ─► GamestateEncoder (MLP) ─────────────────────┐
    history [B,T,A,8] ─► ActionEncoder (embed + masked mean per tick) ┴► TemporalEncoder ─► context [B,T,d]
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.schema import H, N_BUTTONS, N_EVENT_TYPES, N_KEY_ACTIONS, N_SCROLL
from .attention import EncoderBlock
from .config import ModelConfig


def dt_feature(ms: torch.Tensor, scale: float) -> torch.Tensor:
    """Raw milliseconds → log1p(ms)/scale. Times span 1 ms … 10 s; the log keeps the look-ahead's
    10 s horizon from dwarfing the ~10 ms gaps between moves. Negative times (never in valid data)
    are floored at 0."""
    return torch.log1p(ms.clamp(min=0.0)) / scale


class EventEmbedding(nn.Module):
    """One event (a history-layout row [..., 8]) plus its time since the window start → [..., d].

    Continuous fields (dt, x, y, time since window start) go through one linear layer; each
    categorical field (type, button, key action, key id, scroll class) adds its own embedding.
    Categorical values are clamped into their ranges so a corrupt row cannot index out of bounds."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.dt_log_scale = cfg.dt_log_scale
        self.cont = nn.Linear(4, d)
        self.event_type = nn.Embedding(N_EVENT_TYPES, d)
        self.button = nn.Embedding(N_BUTTONS, d)
        self.key_action = nn.Embedding(N_KEY_ACTIONS, d)
        self.key_id = nn.Embedding(cfg.key_vocab_size, d)
        self.scroll_y = nn.Embedding(N_SCROLL, d)

    def continuous(self, rows: torch.Tensor, since_start_ms: torch.Tensor) -> torch.Tensor:
        """[..., 4]: dt and time since window start on the log scale, x and y centred on the window."""
        s = self.dt_log_scale
        return torch.stack([dt_feature(rows[..., H["dt_ms"]], s), rows[..., H["x"]] - 0.5,
                            rows[..., H["y"]] - 0.5, dt_feature(since_start_ms, s)], dim=-1)

    def forward(self, rows: torch.Tensor, since_start_ms: torch.Tensor) -> torch.Tensor:
        def idx(col: str, n: int) -> torch.Tensor:
            return rows[..., H[col]].long().clamp(0, n - 1)

        return (self.cont(self.continuous(rows, since_start_ms))
                + self.event_type(idx("type", self.event_type.num_embeddings))
                + self.button(idx("button", self.button.num_embeddings))
                + self.key_action(idx("key_action", self.key_action.num_embeddings))
                + self.key_id(idx("key_id", self.key_id.num_embeddings))
                + self.scroll_y(idx("scroll_y", self.scroll_y.num_embeddings)))  # [..., d]


class GamestateEncoder(nn.Module):
    """Per-tick MLP over the normalised features: [B,T,F] → [B,T,d]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.n_features, cfg.d_model), nn.GELU(approximate="tanh"), nn.Linear(cfg.d_model, cfg.d_model))

    def forward(self, gamestate: torch.Tensor) -> torch.Tensor:
        return self.net(gamestate)  # [B,T,d]


class ActionEncoder(nn.Module):
    """The events of each tick's history window → one vector per tick: [B,T,A,8] → [B,T,d].

    Each valid event is embedded (EventEmbedding, with its time since the window start) and
    passed through a GELU; the events of a tick are mean-pooled and then projected (a linear map
    commutes with the mean, so projecting the T pooled vectors instead of every event saves
    ~2 MFLOP a tick); log1p(event count) is added through its own projection so an idle tick
    (no events) and a busy one differ even when their mean embeddings agree."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.embed = EventEmbedding(cfg)
        self.mlp = nn.Sequential(nn.GELU(approximate="tanh"), nn.Linear(d, d))  # [0] per event, [1] per tick
        self.count = nn.Linear(1, d)

    def forward(self, history: torch.Tensor, history_mask: torch.Tensor) -> torch.Tensor:
        B, T, A, _ = history.shape
        mask = history_mask.bool()
        dt = torch.where(mask, history[..., H["dt_ms"]], torch.zeros_like(history[..., 0])).clamp(min=0.0)  # [B,T,A]
        since_start = torch.cumsum(dt, dim=-1)  # [B,T,A] ms since the window start
        # only the valid events are embedded (most history slots are padding: ~70 % of real
        # ticks are idle), then summed back into their tick
        idx = mask.reshape(-1).nonzero().squeeze(1)  # [n] flat indices of valid events
        rows = history.reshape(-1, history.shape[-1])[idx]  # [n,8]
        e = self.mlp[0](self.embed(rows, since_start.reshape(-1)[idx]))  # [n,d]
        pooled = e.new_zeros(B * T, e.shape[-1]).index_add_(0, idx // A, e)  # [BT,d] sum per tick
        n = mask.sum(-1, keepdim=True).to(e.dtype)  # [B,T,1]
        pooled = pooled.view(B, T, -1) / n.clamp(min=1.0)  # [B,T,d] mean over valid events
        return self.mlp[1](pooled) + self.count(torch.log1p(n))  # [B,T,d]


class TemporalEncoder(nn.Module):
    """Transformer over the T ticks (bidirectional: every tick of the context is in the past of
    the tick being predicted): [B,T,d] → context [B,T,d]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.pos = nn.Parameter(torch.zeros(cfg.n_ticks, d))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(EncoderBlock(d, cfg.n_heads, cfg.ff_mult, cfg.dropout) for _ in range(cfg.n_context_layers))
        self.ln = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos[: x.shape[1]]  # [B,T,d]
        for block in self.blocks:
            x = block(x)
        return self.ln(x)  # [B,T,d]
