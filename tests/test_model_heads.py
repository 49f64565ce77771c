"""The distribution-head interface: params from torch or numpy agree; nll matches the loss
functions; sample draws the right shapes, seeded."""

import math

import numpy as np
import torch

from ilbot.model import ModelConfig
from ilbot.model.heads import CategoricalHead, GaussianXYHead, TimeQuantileHead
from ilbot.model.loss import gaussian_nll, pinball_loss

CFG = ModelConfig(d_model=16, n_heads=2)


def test_categorical_head():
    head = CategoricalHead(16, "button", 4)
    h = torch.randn(5, 16)
    out = head(h)
    assert out["button_logits"].shape == (5, 4)
    target = torch.tensor([0, 1, 2, 3, 1])
    expect = -torch.log_softmax(out["button_logits"], -1)[torch.arange(5), target]
    assert torch.allclose(head.nll(out, target), expect)
    a = head.sample(out, 1.0, torch.Generator().manual_seed(0))
    assert a.shape == (5,) and torch.equal(a, head.sample(out, 1.0, torch.Generator().manual_seed(0)))


def test_time_head_params_numpy_equals_torch_and_nll_is_pinball_on_log1p():
    head = TimeQuantileHead(16, CFG)
    raw = torch.randn(4, 3) * 3
    t, n = head.params(raw), head.params(raw.numpy())
    assert np.allclose(t["time_q"].numpy(), n["time_q"], rtol=1e-5)
    target = torch.tensor([5.0, 50.0, 500.0, 0.0])
    assert torch.allclose(head.nll(t, target), pinball_loss(t["time_q_log"], torch.log1p(target)))
    s = head.sample(t, 1.0, torch.Generator().manual_seed(1))
    assert s.shape == (4,) and (s >= 0).all()
    # the initial bias: q10 ≈ 20 ms, q50 ≈ 55 ms, q90 ≈ 250 ms
    q = head(torch.zeros(1, 16))["time_q"][0]
    assert math.isclose(q[0].item(), math.expm1(3.0), rel_tol=1e-4) and q[2].item() > q[1].item() > q[0].item()


def test_xy_head_params_numpy_equals_torch_nll_and_sample():
    head = GaussianXYHead(16, CFG)
    raw = torch.randn(6, 4) * 4
    t, n = head.params(raw), head.params(raw.numpy())
    for k in head.keys:
        assert np.allclose(t[k].numpy(), n[k], atol=1e-5), k
    target = torch.rand(6, 2)
    expect = gaussian_nll(t["x_mu"], t["x_logsig"], target[:, 0]) + gaussian_nll(t["y_mu"], t["y_logsig"], target[:, 1])
    assert torch.allclose(head.nll(t, target), expect)
    s = head.sample(t, 1.0, torch.Generator().manual_seed(2))
    assert s.shape == (6, 2)
