"""UnifiedEventLoss: each component against hand-computed values, class weights by name,
masking (exact zeros, never NaN)."""

import math

import pytest
import torch

from ilbot.data.schema import TG, EventType
from ilbot.model.loss import (UnifiedEventLoss, event_cross_entropy, gaussian_nll, masked_cross_entropy,
                              masked_mean, pinball_loss, time_loss, xy_loss)

LOG2PI_HALF = 0.5 * math.log(2 * math.pi)


def test_pinball_hand_computed():
    # pred (q10, q50, q90) = (1, 2, 3), target 2.5: errors 1.5, 0.5, -0.5
    # q10: max(0.15, -1.35) = 0.15; q50: max(0.25, -0.25) = 0.25; q90: max(-0.45, 0.05) = 0.05
    loss = pinball_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor(2.5))
    assert loss.item() == pytest.approx((0.15 + 0.25 + 0.05) / 3)


def test_pinball_is_minimised_at_the_quantiles():
    target = torch.linspace(0, 1, 1001)  # uniform on [0, 1]: q10 = 0.1, q50 = 0.5, q90 = 0.9
    best = pinball_loss(torch.tensor([0.1, 0.5, 0.9]).expand(1001, 3), target).mean()
    worse = pinball_loss(torch.tensor([0.2, 0.5, 0.8]).expand(1001, 3), target).mean()
    assert best < worse


def test_time_loss_is_pinball_on_log1p_ms():
    q_log = torch.log1p(torch.tensor([[10.0, 20.0, 40.0]]))  # [1,3]
    dt = torch.tensor([20.0])
    t = math.log(21.0)
    e = [t - math.log(11.0), 0.0, t - math.log(41.0)]
    expect = (max(0.1 * e[0], -0.9 * e[0]) + 0 + max(0.9 * e[2], -0.1 * e[2])) / 3
    assert time_loss(q_log, dt, torch.tensor([True])).item() == pytest.approx(expect)


def test_gaussian_nll_hand_computed_and_beta():
    mu, logsig, x = torch.tensor(0.0), torch.tensor(math.log(2.0)), torch.tensor(1.0)
    plain = 0.5 * 0.25 + math.log(2.0) + LOG2PI_HALF
    assert gaussian_nll(mu, logsig, x).item() == pytest.approx(plain)
    # β-NLL, β = 0.5: weighted by (σ²)^0.5 = σ = 2
    assert gaussian_nll(mu, logsig, x, beta=0.5).item() == pytest.approx(2.0 * plain)


def test_beta_nll_weight_is_detached():
    logsig = torch.tensor(0.3, requires_grad=True)
    gaussian_nll(torch.tensor(0.0), logsig, torch.tensor(1.0), beta=0.5).backward()
    # d/dlogsig of σ·(0.5 z² + logsig + c) with σ detached: σ·(−z² + 1), z = e^{-0.3}
    s = math.exp(0.3)
    assert logsig.grad.item() == pytest.approx(s * (1 - math.exp(-0.6)))


def test_xy_loss_sums_x_and_y_and_averages_valid_slots():
    out = {"x_mu": torch.tensor([[0.0, 5.0]]), "x_logsig": torch.zeros(1, 2), "y_mu": torch.tensor([[1.0, 5.0]]),
           "y_logsig": torch.zeros(1, 2)}
    loss = xy_loss(out, torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[True, False]]))
    assert loss.item() == pytest.approx(0.5 + 2 * LOG2PI_HALF)


def test_masked_cross_entropy_hand_computed_and_empty():
    logits = torch.tensor([[0.0, math.log(3.0)], [100.0, -100.0]])
    target = torch.tensor([1, 1])
    loss = masked_cross_entropy(logits, target, torch.tensor([True, False]))
    assert loss.item() == pytest.approx(-math.log(0.75))
    logits.requires_grad_(True)
    empty = masked_cross_entropy(logits, target, torch.tensor([False, False]))
    empty.backward()
    assert empty.item() == 0.0 and not torch.isnan(empty)
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_event_cross_entropy_weighted_by_type_averaged_over_valid_slots():
    logits = torch.zeros(1, 3, 4)  # CE = ln 4 for every slot
    types = torch.tensor([[EventType.CLICK, EventType.MOVE, EventType.SCROLL]])
    w = torch.tensor([8.0, 6.0, 12.0, 1.0])
    loss = event_cross_entropy(logits, types, torch.tensor([[True, True, False]]), w)
    assert loss.item() == pytest.approx((8 + 1) * math.log(4) / 2)


def test_masked_mean_empty_is_zero():
    assert masked_mean(torch.tensor([float("nan")]), torch.tensor([False])).item() == 0.0


def test_class_weights_by_name():
    assert UnifiedEventLoss().class_weights.tolist() == [8.0, 6.0, 12.0, 1.0]  # CLICK, KEY, SCROLL, MOVE
    assert UnifiedEventLoss({"SCROLL": 3.0, "MOVE": 0.5}).class_weights.tolist() == [1.0, 1.0, 3.0, 0.5]
    auto = UnifiedEventLoss("auto", {"MOVE": 80, "CLICK": 10, "KEY": 5, "SCROLL": 5}).class_weights.tolist()
    assert auto[3] < auto[0] < auto[1] == auto[2]
    assert sum(auto) / 4 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown event type"):
        UnifiedEventLoss({"DRAG": 2.0})
    with pytest.raises(ValueError, match="event counts"):
        UnifiedEventLoss("auto")
    assert "class_weights" not in UnifiedEventLoss().state_dict()  # training config, not checkpoint


def _out(B, A, V=5, value=0.0):
    return {"event_logits": torch.full((B, A, 4), value), "time_q_log": torch.tensor([1.0, 2.0, 3.0]).expand(B, A, 3).clone(),
            "x_mu": torch.full((B, A), 0.5), "x_logsig": torch.zeros(B, A), "y_mu": torch.full((B, A), 0.5),
            "y_logsig": torch.zeros(B, A), "button_logits": torch.zeros(B, A, 4), "key_action_logits": torch.zeros(B, A, 3),
            "key_id_logits": torch.zeros(B, A, V), "scroll_y_logits": torch.zeros(B, A, 3)}


def test_unified_loss_total_and_parts():
    B, A = 2, 3
    targets = torch.zeros(B, A, 7)
    targets[..., TG["x"]] = targets[..., TG["y"]] = 0.5
    targets[..., TG["dt_ms"]] = math.expm1(2.0)  # = q50 on the log scale
    targets[0, 0, TG["button"]] = 1  # one CLICK; the rest MOVE
    mask = torch.tensor([[True, True, False], [True, False, False]])
    fn = UnifiedEventLoss(w_event=2.0, w_time=3.0, w_xy=0.5, w_aux=0.25)
    total, parts = fn(_out(B, A), targets, mask)
    ln4 = math.log(4)
    assert parts["event"].item() == pytest.approx((8 + 1 + 1) * ln4 / 3)
    assert parts["time"].item() == pytest.approx((0.1 * 1.0 + 0 + 0.1 * 1.0) / 3)
    assert parts["xy"].item() == pytest.approx(2 * LOG2PI_HALF)
    assert parts["button"].item() == pytest.approx(ln4)
    for name in ("key_action", "key_id", "scroll_y"):  # no KEY or SCROLL slot: exactly 0, not NaN
        assert parts[name].item() == 0.0
    assert parts["aux"].item() == pytest.approx(ln4)
    expect = 2 * parts["event"] + 3 * parts["time"] + 0.5 * parts["xy"] + 0.25 * parts["aux"]
    assert total.item() == pytest.approx(expect.item())


def test_unified_loss_key_and_scroll_parts():
    targets = torch.zeros(1, 2, 7)
    targets[0, 0, TG["key_action"]], targets[0, 0, TG["key_id"]] = 1, 3
    targets[0, 1, TG["scroll_y"]] = 2
    _, parts = UnifiedEventLoss()(_out(1, 2), targets, torch.tensor([[True, True]]))
    assert parts["key_action"].item() == pytest.approx(math.log(3))
    assert parts["key_id"].item() == pytest.approx(math.log(5))
    assert parts["scroll_y"].item() == pytest.approx(math.log(3))
    assert parts["button"].item() == 0.0


def test_unified_loss_ignores_garbage_in_invalid_slots():
    targets = torch.zeros(1, 3, 7)
    mask = torch.tensor([[True, False, False]])
    clean, _ = UnifiedEventLoss()(_out(1, 3), targets, mask)
    targets[0, 1:] = float("nan")
    targets[0, 2, TG["key_id"]] = 1e9
    dirty, parts = UnifiedEventLoss()(_out(1, 3), targets, mask)
    assert dirty.item() == clean.item()
    assert all(torch.isfinite(v) for v in parts.values())


def test_all_invalid_batch_is_zero_not_nan():
    total, parts = UnifiedEventLoss()(_out(2, 3), torch.zeros(2, 3, 7), torch.zeros(2, 3, dtype=torch.bool))
    assert total.item() == 0.0 and all(v.item() == 0.0 for v in parts.values())
