"""Train a small model on a synthetic task, for tests that check what an option lets it learn."""

from __future__ import annotations

import numpy as np
import torch

from ilbot.model import ModelConfig, UnifiedEventLoss, UnifiedEventModel


def fit(cfg: ModelConfig, task, steps: int = 300, batch: int = 128, lr: float = 3e-3) -> UnifiedEventModel:
    """A model of `cfg` (every event type weighted 1 in the loss) after `steps` Adam steps on
    batches `task(batch, rng)` (a dict of numpy window arrays with targets); seeded, in eval mode."""
    torch.manual_seed(0)
    model = UnifiedEventModel(cfg, loss=UnifiedEventLoss({"CLICK": 1.0}))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(steps):
        b = {k: torch.from_numpy(v) for k, v in task(batch, rng).items()}
        loss = model(b, {"targets": b["targets"], "target_mask": b["target_mask"]})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
