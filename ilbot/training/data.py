"""Feeding dataset windows to the training loop: the epoch draw, its sharding across DDP ranks,
and batches as torch tensors.

`EpochSampler` decides which windows one epoch visits and in what order, as a pure function of
(seed, epoch, rank, world size): so a resumed run recomputes exactly the order it was in and
skips the batches it already took, and every rank of a `torchrun` job gets its own disjoint
shard. It does what `torch.utils.data.DistributedSampler` does (shuffle by seed + epoch, pad by
wrapping so every rank gets the same count, then take every world-th index) and, before that,
two things DistributedSampler cannot: keep only `idle_keep` of the idle windows (a window whose
targets hold only the look-ahead slot; ~70 % of real mouse data) and cap the epoch at
`epoch_windows` windows.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.schema import CONTEXT_FIELDS

BATCH_KEYS = CONTEXT_FIELDS + ("targets", "target_mask")


def idle_windows(ds, chunk: int = 65536) -> np.ndarray:
    """[N] bool: windows whose targets hold only the look-ahead slot (read in chunks; of each part
    in turn for joined windows, ilbot.training.rehearsal)."""
    if hasattr(ds, "parts"):
        return np.concatenate([idle_windows(p, chunk) for p in ds.parts])
    mask = ds["target_mask"]
    out = np.empty(len(ds), bool)
    for start in range(0, len(ds), chunk):
        out[start:start + chunk] = np.asarray(mask[start:start + chunk]).sum(axis=1) <= 1
    return out


class EpochSampler:
    """Window indices for one epoch on one rank (see the module docstring)."""

    def __init__(self, n_windows: int, *, seed: int = 0, idle: np.ndarray | None = None, idle_keep: float = 1.0,
                 epoch_windows: int = 0, rank: int = 0, world_size: int = 1, weights: np.ndarray | None = None):
        self.n = n_windows
        self.weights = weights  # [N] a window of weight w is drawn w times an epoch on average
        self.seed = seed
        self.idle = idle
        self.idle_keep = idle_keep
        self.epoch_windows = epoch_windows
        self.rank = rank
        self.world_size = world_size

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """All ranks' indices for `epoch` (before sharding), shuffled."""
        rng = np.random.default_rng([self.seed, epoch])
        idx = np.arange(self.n)
        if self.idle is not None and self.idle_keep < 1.0:
            keep = ~self.idle | (rng.random(self.n) < self.idle_keep)
            idx = idx[keep]
        if self.weights is not None:  # weight w: floor(w) copies, plus one more with probability frac(w)
            w = np.asarray(self.weights, np.float64)[idx]
            copies = np.floor(w).astype(np.int64) + (rng.random(len(idx)) < w - np.floor(w))
            idx = np.repeat(idx, copies)
        idx = rng.permutation(idx)
        if self.epoch_windows:
            idx = idx[: self.epoch_windows]
        return idx

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's shard of the epoch: every world-th index, padded by wrapping."""
        idx = self.epoch_indices(epoch)
        per_rank = math.ceil(len(idx) / self.world_size)
        total = per_rank * self.world_size
        if total > len(idx) and len(idx):
            idx = np.concatenate([idx, idx[: total - len(idx)]])
        return idx[self.rank:total:self.world_size]

    def batches(self, epoch: int, batch_size: int) -> list[np.ndarray]:
        """This rank's batches for `epoch` (the last one may be short)."""
        idx = self.indices(epoch)
        return [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]


def load_batch(ds, indices: np.ndarray) -> dict:
    """Read windows `indices` (sorted for memory-map locality; order inside a batch is irrelevant),
    their target slots cut after the batch's last valid one (`trim_slots`)."""
    return trim_slots(ds.batch(np.sort(np.asarray(indices, np.int64))))


def trim_slots(batch: dict) -> dict:
    """Cut `targets` [B,A,7] and `target_mask` [B,A] to the batch's longest window: [B,L,·], L =
    the last valid slot + 1 (valid slots are a prefix of each window). Exact, not an
    approximation: the decoder is causal, so a slot never sees the ones after it, and the loss
    counts valid slots only — the cut slots change no output and no loss. It pays because most
    windows hold a few events of their A slots (Balabit: 69 % of windows hold only the look-ahead
    slot), so the decoder runs on L ≪ A slots in most batches."""
    mask = batch.get("target_mask")
    if mask is None or mask.ndim != 2:
        return batch
    valid = np.flatnonzero(mask.any(0))
    L = int(valid[-1]) + 1 if len(valid) else 1
    if L < mask.shape[1]:
        batch = dict(batch, target_mask=mask[:, :L])
        if "targets" in batch:
            batch["targets"] = batch["targets"][:, :L]
    return batch


class BatchLoader(torch.utils.data.Dataset):
    """A map-style dataset whose item is a whole batch (a list of window indices), so a
    `DataLoader(..., batch_size=None, num_workers=N)` reads batches in background workers."""

    def __init__(self, ds, batches: list[np.ndarray]):
        self.ds = ds
        self.batches_ = batches

    def __len__(self) -> int:
        return len(self.batches_)

    def __getitem__(self, i: int) -> dict:
        b = load_batch(self.ds, self.batches_[i])
        return {k: torch.from_numpy(np.ascontiguousarray(b[k])) for k in BATCH_KEYS}


def iterate_batches(ds, batches: list[np.ndarray], num_workers: int = 0):
    """Yield batches of CPU tensors, in order; with workers, read ahead in background."""
    if num_workers <= 0:
        for b in batches:
            raw = load_batch(ds, b)
            yield {k: torch.from_numpy(np.ascontiguousarray(raw[k])) for k in BATCH_KEYS}
        return
    loader = torch.utils.data.DataLoader(BatchLoader(ds, batches), batch_size=None, shuffle=False,
                                         num_workers=num_workers, persistent_workers=False)
    yield from loader
