"""Array functions that take numpy arrays and torch tensors alike.

The heads' parameter transforms and the samplers are written once with these, so training
(torch, autograd) and the planner's per-slot loop (numpy: ~1 µs per op on a handful of numbers
where a torch op costs ~5 µs) share one implementation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def module(a):
    """numpy or torch: the namespace that matches `a` (log1p, expm1, exp, where, tanh work in both)."""
    return np if isinstance(a, np.ndarray) else torch


def floor(a, lo: float):
    """max(a, lo) elementwise."""
    return np.maximum(a, lo) if isinstance(a, np.ndarray) else a.clamp(min=lo)


def cap(a, hi: float):
    """min(a, hi) elementwise."""
    return np.minimum(a, hi) if isinstance(a, np.ndarray) else a.clamp(max=hi)


def softplus(a):
    """log(1 + e^a), computed stably."""
    return np.logaddexp(0.0, a).astype(a.dtype, copy=False) if isinstance(a, np.ndarray) else F.softplus(a)


def detached(a):
    """a without gradient (torch); numpy arrays have none."""
    return a if isinstance(a, np.ndarray) else a.detach()


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a)) if isinstance(a, np.ndarray) else torch.sigmoid(a)


def softmax(logits, temperature: float = 1.0):
    """Softmax over the last axis (after dividing by the temperature)."""
    if isinstance(logits, np.ndarray):
        z = logits / temperature if temperature != 1.0 else logits
        e = np.exp(z - np.maximum.reduce(z, axis=-1, keepdims=True))
        return e / np.add.reduce(e, axis=-1, keepdims=True)
    return torch.softmax(logits.float() / temperature, dim=-1)
