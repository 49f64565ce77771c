"""UnifiedEventModel: shapes, head constraints, causality, gradients, masking, overfitting."""

import pytest
import torch

from ilbot.data.keys import VOCAB_SIZE
from ilbot.data.schema import TG
from ilbot.model import ModelConfig, UnifiedEventLoss, UnifiedEventModel
from ilbot.model.synthetic import synthetic_windows

SMALL = dict(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=2, dropout=0.0)


def batch_of(n=4, seed=0, **kw):
    w = synthetic_windows(n, seed=seed, **kw)
    return {k: torch.from_numpy(v) for k, v in w.items()}


def test_default_config_shapes_and_size():
    model = UnifiedEventModel()
    assert model.num_params() <= 3_000_000
    assert model.cfg.key_vocab_size == VOCAB_SIZE
    b = batch_of(2)
    out = model(b)
    B, A = 2, model.cfg.n_slots
    assert out["event_logits"].shape == (B, A, 4)
    assert out["time_q"].shape == (B, A, 3)
    for k in ("x_mu", "x_logsig", "y_mu", "y_logsig"):
        assert out[k].shape == (B, A)
    assert out["button_logits"].shape == (B, A, 4)
    assert out["key_action_logits"].shape == (B, A, 3)
    assert out["key_id_logits"].shape == (B, A, VOCAB_SIZE)
    assert out["scroll_y_logits"].shape == (B, A, 3)
    assert "loss" not in out


def test_config_validation_and_round_trip():
    cfg = ModelConfig(**SMALL)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(KeyError, match="bogus"):
        ModelConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="logsig"):
        ModelConfig(logsig_min=1.0, logsig_max=0.0)
    with pytest.raises(ValueError, match="at least 1"):
        ModelConfig(n_slots=0)


def test_forward_needs_targets_for_teacher_forcing():
    b = batch_of(1)
    del b["targets"]
    with pytest.raises(ValueError, match="teacher forcing"):
        UnifiedEventModel(ModelConfig(**SMALL))(b)


def test_time_head_non_negative_non_crossing_and_logsig_bounded():
    cfg = ModelConfig(**SMALL)
    model = UnifiedEventModel(cfg)
    with torch.no_grad():  # push the heads to extremes
        for head in (model.time_head, model.xy_head):
            head.proj.weight.normal_(0, 50.0)
    out = model(batch_of(3))
    q = out["time_q"]
    assert torch.isfinite(q).all() and (q >= 0).all()
    assert (q[..., 1] >= q[..., 0]).all() and (q[..., 2] >= q[..., 1]).all()
    for k in ("x_logsig", "y_logsig"):
        assert (out[k] >= cfg.logsig_min).all() and (out[k] <= cfg.logsig_max).all()


def test_loss_via_targets_dict_or_tensor():
    model = UnifiedEventModel(ModelConfig(**SMALL))
    b = batch_of(2)
    a = model(b, {"targets": b["targets"], "target_mask": b["target_mask"]})
    c = model(b, b["targets"])
    assert torch.isfinite(a["loss"]) and a["loss"].item() == pytest.approx(c["loss"].item())
    assert set(a["loss_parts"]) == {"event", "time", "crossing", "xy", "button", "key_action", "key_id", "scroll_y", "aux"}


def test_decoder_is_causal():
    """Slot i sees events < i only: changing event j changes no output at slots ≤ j."""
    model = UnifiedEventModel(ModelConfig(**SMALL)).eval()
    b = batch_of(1, seed=3)
    b["target_mask"][:] = True
    out1 = model(b)
    b2 = dict(b, targets=b["targets"].clone())
    j = 5
    b2["targets"][0, j, TG["x"]] += 0.3
    b2["targets"][0, j, TG["button"]] = 2
    out2 = model(b2)
    for k in ("event_logits", "time_q", "x_mu"):
        assert torch.allclose(out1[k][0, : j + 1], out2[k][0, : j + 1], atol=1e-6)
        assert not torch.allclose(out1[k][0, j + 1], out2[k][0, j + 1])


def test_gradients_reach_every_head_and_parameter():
    model = UnifiedEventModel(ModelConfig(**SMALL))
    b = batch_of(8, seed=1)
    out = model(b, {"targets": b["targets"], "target_mask": b["target_mask"]})
    assert all(out["loss_parts"][k] > 0 for k in ("button", "key_action", "key_id", "scroll_y"))
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    for head in model.core_heads + model.event_heads:
        assert head.proj.weight.grad.abs().sum() > 0


def test_masked_slots_get_exactly_zero_gradient():
    model = UnifiedEventModel(ModelConfig(**SMALL))
    b = batch_of(3, seed=2)
    out = model(b)
    heads = {k: v for k, v in out.items()}
    for v in heads.values():
        v.retain_grad()
    loss, _ = UnifiedEventLoss()(heads, b["targets"], b["target_mask"])
    loss.backward()
    invalid = ~b["target_mask"]
    assert invalid.any()
    for k, v in heads.items():
        g = v.grad
        if g is None:
            continue
        assert torch.count_nonzero(g[invalid]) == 0, k
        assert g[b["target_mask"]].abs().sum() > 0 or k in ("time_q",), k


def test_garbage_in_masked_slots_changes_nothing():
    model = UnifiedEventModel(ModelConfig(**SMALL)).eval()
    b = batch_of(2, seed=4)
    clean = model(b, {"targets": b["targets"], "target_mask": b["target_mask"]})
    tg = b["targets"].clone()
    tg[~b["target_mask"]] = float("nan")
    hist = b["history"].clone()
    hist[~b["history_mask"]] = 1e6
    dirty = model(dict(b, history=hist), {"targets": tg, "target_mask": b["target_mask"]})
    assert dirty["loss"].item() == pytest.approx(clean["loss"].item(), rel=1e-5)
    m = b["target_mask"]
    assert torch.allclose(dirty["event_logits"][m], clean["event_logits"][m], atol=1e-5)


@pytest.mark.slow
def test_overfit_a_handful_of_windows():
    """With dropout off, four windows are memorised: every part of the loss falls near its floor
    (cross-entropies near 0, the pinball loss well below its start; the position NLL, floor
    2·(logsig_min + ½ln2π) ≈ −12.2,
    far below its start). A small geometry (4 ticks, 16 slots) and one thread keep it fast
    (intra-op threads only contend on a shared 2-core machine at these sizes)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _overfit()
    finally:
        torch.set_num_threads(prev)


def _overfit():
    torch.manual_seed(0)
    geo = dict(n_ticks=4, n_features=16, n_slots=16)
    model = UnifiedEventModel(ModelConfig(d_model=64, n_heads=4, n_context_layers=1, n_decoder_layers=2, dropout=0.0, **geo))
    b = batch_of(4, seed=5, max_events=8, **geo)
    tg = {"targets": b["targets"], "target_mask": b["target_mask"]}
    steps = 400
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    first = None
    for _ in range(steps):
        out = model(b, tg)
        if first is None:
            first = {k: v.item() for k, v in out["loss_parts"].items()}
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        sched.step()
    parts = {k: v.item() for k, v in model(b, tg)["loss_parts"].items()}
    assert first["event"] > 1.0 and parts["event"] < 0.1
    assert first["time"] > 0.5 and parts["time"] < 0.1  # the q10/q90 gaps close slowly (softplus)
    assert first["xy"] > 0.0 and parts["xy"] < -5.0
    assert first["aux"] > 0.5 and parts["aux"] < 0.02
