"""Rehearsal while fine-tuning: the base model's training windows mixed into every epoch.

Fine-tuned on a few minutes of one person's play, a model drifts to those few states and loses
what it knew elsewhere (measured in docs/training.md: the shipped sandbox model fine-tuned for a
minute on 50 ticks of play misclicked on 0.16 of its clicks in closed loop, 0.027 with rehearsal;
items ratio 0.93 and 1.06). `RehearsalWindows(own, base, share)` puts the windows of both datasets
in one index space — own first, base after — with sampling weights that make `share` of each
epoch's expected draws the base's, so `EpochSampler`, its `idle_keep` and `epoch_windows`, DDP
sharding and resuming work on it unchanged. Batches are read from each dataset and joined; the
training loop hands both in the model's normalisation (ilbot.training.normalisation). The feature
spec, the key vocabulary and the window shapes must be the same, else a one-line ConfigError.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

SHAPED = ("gamestate", "history", "targets")  # arrays whose per-window shape must agree


class RehearsalWindows:
    """The windows of `own` then of `base` (module docstring); `weights` [N_own + N_base]. `share`
    in (0, 1), checked with the config (data.rehearse_share)."""

    def __init__(self, own, base, share: float):
        if base.spec_hash != own.spec_hash:
            raise ConfigError(f"data.rehearse: its dataset was built with feature spec {base.spec_hash}, "
                              f"the training data with {own.spec_hash}; rehearse on data of the same game and spec")
        if list(base.key_vocab) != list(own.key_vocab):
            raise ConfigError("data.rehearse: its key vocabulary differs from the training data's")
        for key in SHAPED:
            if tuple(base[key].shape[1:]) != tuple(own[key].shape[1:]):
                raise ConfigError(f"data.rehearse: its windows' {key} are shaped {tuple(base[key].shape[1:])}, "
                                  f"the training data's {tuple(own[key].shape[1:])}")
        self.parts = (own, base)
        self.n_own = len(own)
        w_own = np.ones(len(own)) if own.weights is None else np.asarray(own.weights, np.float64)  # [N_own]
        w_base = np.ones(len(base)) if base.weights is None else np.asarray(base.weights, np.float64)  # [N_base]
        # expected draws per epoch: Σ w_own from own, Σ w_base·k from base; k makes the base's share `share`
        k = share / (1.0 - share) * w_own.sum() / max(w_base.sum(), 1e-12)
        self.weights = np.concatenate([w_own, w_base * k])  # [N]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def batch(self, indices) -> dict[str, np.ndarray]:
        """Windows `indices` of the joined index space (own's rows, then base's)."""
        idx = np.sort(np.asarray(indices, np.int64))
        cut = int(np.searchsorted(idx, self.n_own))
        reads = [p.batch(i) for p, i in zip(self.parts, (idx[:cut], idx[cut:] - self.n_own)) if len(i)]
        if len(reads) == 1:
            return reads[0]
        return {k: np.concatenate([r[k] for r in reads]) for k in reads[0]}
