"""Training windows in the normalisation of the model being trained.

A dataset stores its game-state features normalised by its own training split's mean and std
(ilbot.data.build), and a checkpoint stores the normalisation its weights were learned with, which
the runtime applies to live features. Fine-tuned on another dataset — a few minutes of one
person's play, where many features barely vary and std is floored near 0 — the same weights would
see inputs on another scale (up to ×10⁶), and the checkpoint would carry statistics of those few
minutes to play with: the shipped sandbox model fine-tuned that way for a minute on 50 ticks of
play fell to a closed-loop items ratio of 0.04, and 0.93 with this (docs/training.md).

`Renormalised(ds, stats)` serves `ds`'s windows with their game state re-expressed in `stats`'
normalisation — raw = z·std_ds + mean_ds, z' = (raw − mean) / std, both stds floored as
`normalise_features` floors them — so a fine-tuned model keeps the inputs its weights were learned
on, and its checkpoint keeps the base's normalisation (`stats` returns the dataset's statistics
with the feature mean and std replaced). Everything else is the dataset's own.
"""

from __future__ import annotations

import numpy as np

from ..data.encoding import FEATURE_STD_EPS


def feature_stats(stats: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean [F], std [F] floored) of a stats dict, or None when it holds no normalisation."""
    if not stats or "feature_mean" not in stats or "feature_std" not in stats:
        return None
    return (np.asarray(stats["feature_mean"], np.float64),
            np.maximum(np.asarray(stats["feature_std"], np.float64), FEATURE_STD_EPS))


def renormalised(ds, stats: dict | None):
    """`ds` itself when `stats` holds no normalisation or the same one, else Renormalised(ds, stats)."""
    to, own = feature_stats(stats or {}), feature_stats(ds.stats)
    if to is None or own is None or (np.array_equal(to[0], own[0]) and np.array_equal(to[1], own[1])):
        return ds
    return Renormalised(ds, stats)


class Renormalised:
    """`ds` (a WindowDataset) with its game state in `stats`' normalisation (module docstring)."""

    def __init__(self, ds, stats: dict):
        self.ds = ds
        (mean_ds, std_ds), (mean, std) = feature_stats(ds.stats), feature_stats(stats)
        self.scale = (std_ds / std).astype(np.float32)  # [F] z' = z·scale + shift
        self.shift = ((mean_ds - mean) / std).astype(np.float32)  # [F]
        self.stats = dict(ds.stats, feature_mean=list(stats["feature_mean"]), feature_std=list(stats["feature_std"]))

    def __getattr__(self, name):  # spec_hash, key_vocab, weights, meta, … are the dataset's
        if name == "ds":  # not set yet (unpickling in a DataLoader worker): no recursion
            raise AttributeError(name)
        return getattr(self.ds, name)

    def __getitem__(self, name):  # the stored arrays, for their shapes and masks; batch() renormalises
        return self.ds[name]

    def __len__(self) -> int:
        return len(self.ds)

    def batch(self, indices, fields: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        b = self.ds.batch(indices, fields)
        if "gamestate" in b:
            b["gamestate"] = (b["gamestate"] * self.scale + self.shift).astype(np.float32)  # [B, T, F]
        return b
