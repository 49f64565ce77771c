"""Transformer building blocks shared by the TemporalEncoder and the ActionDecoder.

Pre-LayerNorm blocks (stable without warm-up tricks at this size). Attention uses
`F.scaled_dot_product_attention` for whole sequences; the planner's incremental step
(ilbot.model.planner) reuses these modules' weights with hand-written attention over a
preallocated key/value cache, and a test checks both give the same outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d, 3 * d)  # one matmul for q, k, v
        self.out = nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        B, L, d = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)  # 3×[B,h,L,dh]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)  # [B,h,L,dh]
        return self.out(y.transpose(1, 2).reshape(B, L, d))  # [B,L,d]


class CrossAttention(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        S, h = context.shape[1], self.n_heads
        q = self.q(x).view(B, L, h, d // h).transpose(1, 2)  # [B,h,L,dh]
        k, v = self.kv(context).view(B, S, 2, h, d // h).permute(2, 0, 3, 1, 4)  # 2×[B,h,S,dh]
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)  # [B,h,L,dh]
        return self.out(y.transpose(1, 2).reshape(B, L, d))  # [B,L,d]


class FeedForward(nn.Module):
    def __init__(self, d: int, mult: int, dropout: float):
        super().__init__()
        self.up = nn.Linear(d, mult * d)
        self.down = nn.Linear(mult * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # tanh-approximated GELU: numpy has no erf, and the planner's step runs in numpy
        return self.drop(self.down(F.gelu(self.up(x), approximate="tanh")))


class EncoderBlock(nn.Module):
    """LN → self-attention → residual; LN → feed-forward → residual."""

    def __init__(self, d: int, n_heads: int, ff_mult: int, dropout: float):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d), SelfAttention(d, n_heads, dropout)
        self.ln2, self.ff = nn.LayerNorm(d), FeedForward(d, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.ff(self.ln2(x))


class DecoderBlock(nn.Module):
    """LN → causal self-attention; LN → cross-attention to the context; LN → feed-forward."""

    def __init__(self, d: int, n_heads: int, ff_mult: int, dropout: float):
        super().__init__()
        self.ln1, self.self_attn = nn.LayerNorm(d), SelfAttention(d, n_heads, dropout)
        self.ln2, self.cross_attn = nn.LayerNorm(d), CrossAttention(d, n_heads, dropout)
        self.ln3, self.ff = nn.LayerNorm(d), FeedForward(d, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.self_attn(self.ln1(x), causal=True))
        x = x + self.drop(self.cross_attn(self.ln2(x), context))
        return x + self.ff(self.ln3(x))
