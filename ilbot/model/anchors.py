"""Position anchors: on-screen positions in the game state that the cursor may head for.

A feature spec may say that some of its features are positions in the model's own units (x, y
normalised to the game window), each with validity features (the sandbox: its five resource
nodes, valid while active and visible). `ModelConfig.anchors` lists them as feature indices
`[x, y, valid…]` (the training config's `anchors = "spec"` takes the spec's list). The model then
relates every slot to them, given the slot's previous event position `prev`:

- input: slot i gets, through one linear map, the offset from `prev` to each anchor, its length
  and the anchor's validity (`[K·4]`): "the cursor is on a node" and "the node is up and to the
  left" become linear in the input instead of something the network must compute from two
  absolute positions it sees in different places (the game state and the slot embedding);
- position: a mixture. Component 0 is the head's own distribution (x_mu, y_mu, σ); component k
  is the same shifted by g_k·(anchor_k − prev) — "a fraction g_k of the way to anchor k" — with
  per-slot gains g [K] and mixture logits `anchor_logits [K+1]` from the decoder state and each
  anchor's own inputs (invalid anchors masked out). A demonstrator who goes for one of two nodes half the time each is two
  modes; a single Gaussian (or an additive pull) puts its mean between them, and an agent that
  samples it hovers between two nodes and clicks on neither. The mixture draws one node, and the
  decoder, seeing its own first steps, keeps to it. Gains and logits start at zero, so every
  component starts equal: the model begins as without anchors and learns to use them.

Features enter the model normalised with the dataset's mean and std; the anchors need the raw
values back, so the module keeps those statistics for its indices as buffers (`set_feature_stats`
at training time; saved with the weights). Positions come from the newest tick of the context.
The functions take torch tensors and numpy arrays alike: the planner's numpy slot loop uses the
same maths as training (tests/test_model_anchors.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.encoding import FEATURE_STD_EPS
from .xp import module

N_ANCHOR_INPUTS = 4  # per anchor: dx, dy, distance, valid


def anchor_inputs(anchors, valid, prev):
    """Offsets from the previous position to every anchor, as slot inputs.

    anchors [..., K, 2], valid [..., K] (0/1), prev [..., 2] (broadcastable leading dims) →
    (inputs [..., K·4]: dx, dy, |d|, valid per anchor, zero but for `valid` when invalid;
    offsets [..., K, 2]: anchor − prev, zero when invalid)."""
    xp = module(prev)
    rel = (anchors - prev[..., None, :]) * valid[..., None]  # [..., K, 2]
    # the 1e-12 keeps the square root's gradient finite at a zero offset (the cursor on an anchor)
    dist = xp.sqrt(rel[..., 0] ** 2 + rel[..., 1] ** 2 + 1e-12) * valid  # [..., K]
    feats = xp.stack([rel[..., 0], rel[..., 1], dist, xp.broadcast_to(valid, dist.shape)], -1)  # [..., K, 4]
    return feats.reshape(*feats.shape[:-2], -1), rel


def anchor_components(gains, logits, rel, valid, type_bias=None):
    """The mixture's parts from the scores: gains [..., K], logits [..., K+1], offsets rel
    [..., K, 2] (anchor_inputs), valid [..., K] (broadcastable) →
    (anchor_logits [..., K+1] with invalid anchors at −1e4, shifts [..., K+1, 2]: 0 for
    component 0, g_k·rel_k for anchor k). type_bias [..., 2] (ModelConfig.xy_by_type: the slot's
    type's (free-logit, gain) biases) is added to component 0's logit and to every gain."""
    xp = module(rel)
    if type_bias is not None:
        gains = gains + type_bias[..., 1:2]
        logits = xp.concatenate([logits[..., :1] + type_bias[..., :1], logits[..., 1:]], axis=-1)
    shifts = gains[..., None] * rel  # [..., K, 2]
    shifts = xp.concatenate([xp.zeros_like(shifts[..., :1, :]), shifts], axis=-2)  # [..., K+1, 2]
    keep = xp.concatenate([xp.ones_like(logits[..., :1]), xp.broadcast_to(valid, logits[..., 1:].shape)], axis=-1)
    # −1e4, not −inf: exp() underflows to an exact 0 without NaN in a logsumexp, also in bf16
    return logits + (keep - 1.0) * 1e4, shifts


def best_component_xy(out: dict):
    """Point prediction of a mixture head dict: the mean of its most probable component ([..., 2]);
    x_mu, y_mu themselves without anchors."""
    xy = module(out["x_mu"]).stack([out["x_mu"], out["y_mu"]], -1)  # [..., 2]
    if "anchor_logits" not in out:
        return xy
    j = out["anchor_logits"].argmax(-1)  # [...]
    if isinstance(xy, np.ndarray):
        shift = np.take_along_axis(out["anchor_shift"], j[..., None, None], axis=-2)[..., 0, :]
    else:
        shift = torch.gather(out["anchor_shift"], -2, j[..., None, None].expand(*j.shape, 1, 2))[..., 0, :]
    return xy + shift


class PositionAnchors(nn.Module):
    """The anchors' layers. Slot input: `inputs`, one linear map of all K anchors' (dx, dy, |d|,
    valid). Mixture: each anchor is scored by one small network shared by all anchors —
    z_k = GELU(score_h(h) + score_a(dx_k, dy_k, |d_k|, valid_k)), (logit_k, gain_k) = score_out(z_k)
    — so "the nearest node" is one learnt rule applied to every node, not K separate ones; the
    free component's logit is `free_logit(h)`. score_out and free_logit start at zero."""

    def __init__(self, anchors: Sequence[Sequence[int]], d: int, d_score: int = 32):
        super().__init__()
        idx = torch.as_tensor([list(a) for a in anchors], dtype=torch.long)  # [K, 2+V]
        self.register_buffer("index", idx, persistent=False)  # from the config, not the weights
        # raw = normalised·std + mean for the indexed features (set_feature_stats; 0/1 = identity)
        self.register_buffer("mean", torch.zeros(idx.shape, dtype=torch.float32))  # [K, 2+V]
        self.register_buffer("std", torch.ones(idx.shape, dtype=torch.float32))  # [K, 2+V]
        self.n = idx.shape[0]  # K
        self.inputs = nn.Linear(self.n * N_ANCHOR_INPUTS, d)  # [K·4] → d, added to each slot's input
        self.score_h = nn.Linear(d, d_score)  # decoder state → the scorer's hidden
        self.score_a = nn.Linear(N_ANCHOR_INPUTS, d_score)  # one anchor's inputs → the same
        self.score_out = nn.Linear(d_score, 2)  # → (logit_k, gain_k)
        self.free_logit = nn.Linear(d, 1)  # component 0
        for lin in (self.score_out, self.free_logit):  # every component equal at the start: as without anchors
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def mixture(self, h: torch.Tensor, feats: torch.Tensor, rel: torch.Tensor, valid: torch.Tensor, type_bias=None):
        """h [..., d], feats [..., K·4] and rel [..., K, 2] (anchor_inputs), valid (broadcastable to
        [..., K]), type_bias [..., 2] or None (xy_by_type) → anchor_logits [..., K+1],
        anchor_shift [..., K+1, 2] (anchor_components)."""
        a = feats.reshape(*feats.shape[:-1], self.n, N_ANCHOR_INPUTS)  # [..., K, 4]
        z = F.gelu(self.score_h(h).unsqueeze(-2) + self.score_a(a), approximate="tanh")  # [..., K, ds]
        out = self.score_out(z)  # [..., K, 2]
        logits = torch.cat([self.free_logit(h), out[..., 0]], dim=-1)  # [..., K+1]
        return anchor_components(out[..., 1], logits, rel, valid, type_bias)

    def set_feature_stats(self, feature_mean: Sequence[float], feature_std: Sequence[float]) -> None:
        """The dataset's normalisation (stats.json feature_mean, feature_std [F])."""
        mean = torch.as_tensor(np.asarray(feature_mean, np.float32))
        std = torch.as_tensor(np.maximum(np.asarray(feature_std, np.float32), FEATURE_STD_EPS))  # the floor normalise_features used
        self.mean.copy_(mean[self.index])
        self.std.copy_(std[self.index])

    def positions(self, gamestate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """gamestate [B,T,F] (normalised) → anchors [B,K,2] (window units), valid [B,K] (0/1 float)
        from the newest tick."""
        raw = gamestate[:, -1].float()[:, self.index] * self.std + self.mean  # [B,K,2+V]
        valid = (raw[..., 2:] > 0.5).all(-1).float()  # [B,K] every validity feature set (none: always valid)
        return raw[..., :2], valid
