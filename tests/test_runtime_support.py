"""Shared helpers of the runtime tests (no tests here): a tiny random checkpoint and a list-fed capture adapter."""

from __future__ import annotations

import json

import numpy as np
import torch

from ilbot.agent.capture.base import Capture, CaptureAdapter
from ilbot.data.keys import KEY_VOCAB
from ilbot.data.schema import F
from ilbot.model import ModelConfig, UnifiedEventModel, save_checkpoint

STATS = {"feature_mean": [0.0] * F, "feature_std": [1.0] * F, "hold_ms": {"median": 100.0, "q10": 60.0, "q90": 160.0},
         "tick_ms": 600.0}


def tiny_checkpoint(path, seed: int = 0, **stats_overrides):
    """A small random model (d_model 32) saved as a real checkpoint folder."""
    torch.manual_seed(seed)
    cfg = ModelConfig(d_model=32, n_heads=2, ff_mult=2, n_context_layers=1, n_decoder_layers=1, dropout=0.0)
    model = UnifiedEventModel(cfg)
    return save_checkpoint(path, model, spec_hash="test", key_vocab=KEY_VOCAB, stats={**STATS, **stats_overrides})


class ListAdapter(CaptureAdapter):
    """A capture adapter fed from a list: each poll returns the next feature vector (None = no
    fresh state that tick). A real subclass of the interface, for tests that script the source."""

    name = "list"

    def __init__(self, features, tick_ms: float = 600.0):
        super().__init__(None, tick_ms=tick_ms)
        self.items = list(features)
        self.i = 0

    @property
    def finished(self) -> bool:
        return self.i >= len(self.items)

    def _poll(self):
        if self.i >= len(self.items):
            return None
        f = self.items[self.i]
        self.i += 1
        if f is None:
            return None
        return Capture(self.i, self.clock(), json.dumps({"i": self.i}), np.asarray(f, np.float32))


def features(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=F).astype(np.float32) for _ in range(n)]
