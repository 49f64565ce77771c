"""Position anchors (ilbot.model.anchors): the spec's [[anchor]] list, the raw positions read back
from normalised features, the mixture toward the anchors, training's `anchors = "spec"`, and the
checkpoint round trip. The planner path equals the full pass in tests/test_model_options.py."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ilbot.data.dataset import open_dataset
from ilbot.data.featurespec import load_spec, spec_from_dict
from ilbot.errors import ConfigError
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.anchors import anchor_components, anchor_inputs, best_component_xy
from ilbot.model.loss import gaussian_nll, mixture_xy_nll
from ilbot.model.checkpoint import load_checkpoint, save_checkpoint
from ilbot.model.planner import Planner
from ilbot.training.config import config_from_dict
from ilbot.training.loop import build_model
from ilbot.training.synthetic import make_dataset

SANDBOX_DATASET = Path(__file__).resolve().parents[1] / "ilbot" / "sandbox" / "assets" / "dataset"


def _doc(anchor=None):
    doc = {"name": "t", "slot": [{"index": 0, "count": 128, "transform": "zero"}]}
    if anchor is not None:
        doc["anchor"] = anchor
    return doc


def test_spec_anchors_expand_count_and_leave_the_hash_alone():
    plain = spec_from_dict(_doc())
    spec = spec_from_dict(_doc([{"x": 10, "y": 20, "valid": [30, 40], "count": 2}]))
    assert spec.anchors == [[10, 20, 30, 40], [11, 21, 31, 41]]
    assert spec.hash == plain.hash and plain.anchors == []
    assert load_spec("sandbox").anchors[0] == [30, 35, 20, 25] and len(load_spec("sandbox").anchors) == 5


def test_mixed_anchor_widths_are_refused():
    with pytest.raises(ConfigError, match="same number of `valid`"):
        spec_from_dict(_doc([{"x": 10, "y": 20, "valid": [30, 40]}, {"x": 1, "y": 2, "valid": 3}]))


@pytest.mark.parametrize("bad, msg", [({"x": 1}, "needs `x` and `y`"), ({"x": 1, "y": 2, "z": 3}, "needs `x` and `y`"),
                                      ({"x": 1, "y": "a"}, "must be integers"), ({"x": 127, "y": 2, "count": 3}, "outside")])
def test_bad_anchor_entries_name_the_entry(bad, msg):
    with pytest.raises(ConfigError, match=rf"\[\[anchor\]\] #1: .*{msg}"):
        spec_from_dict(_doc([bad]))


def test_model_config_checks_anchor_indices():
    with pytest.raises(ValueError, match="outside"):
        ModelConfig(anchors=[[0, 200]])
    with pytest.raises(ValueError, match="same number"):
        ModelConfig(anchors=[[0, 1], [2, 3, 4]])


def test_inputs_are_offsets_and_zero_for_invalid_anchors():
    anchors = np.array([[[0.5, 0.5], [0.9, 0.1]]])  # [1,K=2,2]
    feats, rel = anchor_inputs(anchors, np.array([[1.0, 0.0]]), np.array([[0.2, 0.1]]))
    assert np.allclose(rel, [[[0.3, 0.4], [0.0, 0.0]]])
    assert np.allclose(feats, [[0.3, 0.4, 0.5, 1.0, 0, 0, 0, 0]], atol=1e-5)
    t_feats, t_rel = anchor_inputs(torch.tensor(anchors), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.2, 0.1]]))
    assert np.allclose(t_feats.numpy(), feats) and np.allclose(t_rel.numpy(), rel)


def _anchored_model():
    torch.manual_seed(0)
    model = UnifiedEventModel(ModelConfig(d_model=32, n_heads=4, xy_residual=True, anchors=[[0, 1, 2], [3, 4, 5]])).eval()
    mean, std = np.zeros(128), np.ones(128)
    mean[3:5], std[3:5] = [0.5, 0.4], [0.2, 0.1]
    model.anchors.set_feature_stats(mean, std)
    B, A = 2, 100
    b = {"gamestate": torch.zeros(B, 10, 128), "history": torch.zeros(B, 10, A, 8),
         "history_mask": torch.zeros(B, 10, A, dtype=torch.bool), "targets": torch.zeros(B, A, 7),
         "target_mask": torch.ones(B, A, dtype=torch.bool)}
    b["gamestate"][:, -1, 3:6] = torch.tensor([1.0, -2.0, 1.0])  # anchor 1: raw (0.7, 0.2), valid
    b["gamestate"][1, -1, 5] = 0.0  # row 1: anchor 1 invalid
    with torch.no_grad():
        model.xy_head.proj.weight.zero_()
        model.xy_head.proj.bias[0::2] = 0.0  # component 0: the previous position (the centre: empty history)
        # score_out: (logit_k, gain_k) from the anchor's own |d| input through one hidden unit;
        # the same rule for both anchors, but anchor 0's features are all zero (raw (0, 0) is
        # [0, 0] with valid = 0, so masked), so anchor 1 wins: gain 1, logit 3
        model.anchors.score_h.weight.zero_()
        model.anchors.score_h.bias.zero_()
        model.anchors.score_a.weight.zero_()
        model.anchors.score_a.bias.zero_()
        model.anchors.score_a.bias[0] = 10.0  # z_0 = GELU(10) ≈ 10 for every anchor
        model.anchors.score_out.weight.zero_()
        model.anchors.score_out.weight[:, 0] = torch.tensor([0.3, 0.1])  # logit 3, gain 1
    return model, b


def test_a_gain_of_one_puts_the_component_on_the_anchor_and_invalid_anchors_drop_out():
    """Gain 1 on anchor 1 puts its component exactly on its raw position, read back through the
    normalisation; an invalid anchor's component gets no weight."""
    model, b = _anchored_model()
    with torch.no_grad():
        out = model(b)
    xy = best_component_xy(out)  # [B,A,2]
    assert torch.allclose(xy[0], torch.tensor([0.7, 0.2]).expand(100, 2), atol=1e-6)
    # row 1: anchor 1 invalid → component 0, the previous position (the centre, then the zero targets)
    assert torch.allclose(xy[1, 0], torch.tensor([0.5, 0.5])) and torch.allclose(xy[1, 1:], torch.tensor(0.0))
    p = torch.softmax(out["anchor_logits"], -1)
    assert p[1, 0, 2] == 0.0 and p[0, 0, 2] > 0.9


def test_mixture_nll_is_the_log_of_the_weighted_component_densities():
    out = {"x_mu": torch.tensor([0.5]), "y_mu": torch.tensor([0.5]), "x_logsig": torch.tensor([-3.0]),
           "y_logsig": torch.tensor([-2.0]), "anchor_logits": torch.tensor([[0.3, -0.2]]),
           "anchor_shift": torch.tensor([[[0.0, 0.0], [0.1, -0.05]]])}
    x, y = torch.tensor([0.58]), torch.tensor([0.47])
    pi = torch.softmax(out["anchor_logits"][0], -1)
    dens = [torch.exp(-gaussian_nll(torch.tensor(0.5 + sx), torch.tensor(-3.0), x[0])
                      - gaussian_nll(torch.tensor(0.5 + sy), torch.tensor(-2.0), y[0])) for sx, sy in ([0, 0], [0.1, -0.05])]
    want = -torch.log(pi[0] * dens[0] + pi[1] * dens[1])
    assert torch.allclose(mixture_xy_nll(out, x, y)[0], want, atol=1e-5)


def test_components_mask_invalid_anchors_and_shift_by_the_gains():
    logits, shift = anchor_components(np.array([[2.0, 1.0]]), np.zeros((1, 3)), np.array([[[0.1, 0.2], [0.3, 0.4]]]),
                                      np.array([[1.0, 0.0]]))
    assert np.allclose(shift, [[[0, 0], [0.2, 0.4], [0.3, 0.4]]]) and logits[0, 2] == -1e4 and logits[0, 1] == 0.0


def test_planner_follows_the_chosen_component():
    model, b = _anchored_model()
    ctx = {k: b[k].numpy() for k in ("gamestate", "history", "history_mask")}
    s = Planner(model, temperature=0.0, seed=0).sample_slots(ctx, max_slots=3)
    assert np.allclose(s["x"][0, 0], 0.7, atol=1e-5) and np.allclose(s["y"][0, 0], 0.2, atol=1e-5)
    assert np.allclose(s["x"][1, 0], 0.5, atol=1e-5)


def test_training_takes_the_spec_anchors_and_the_checkpoint_keeps_their_stats(tmp_path):
    ds = open_dataset(SANDBOX_DATASET, split="train")
    model = build_model(config_from_dict({"model": {"d_model": 32, "anchors": "spec"}}), ds)
    assert model.cfg.anchors == load_spec("sandbox").anchors
    std = np.maximum(np.asarray(ds.stats["feature_std"], np.float32), 1e-6)
    assert np.allclose(model.anchors.std[:, 0].numpy(), std[30:35]) and model.anchors.mean.abs().sum() > 0
    save_checkpoint(tmp_path / "ck", model, spec_hash=ds.meta["spec_hash"], key_vocab=ds.key_vocab, stats=ds.stats)
    back = load_checkpoint(tmp_path / "ck").model
    assert torch.equal(back.anchors.mean, model.anchors.mean) and torch.equal(back.anchors.index, model.anchors.index)


def test_anchors_from_a_spec_without_any_are_a_config_error(tmp_path):
    ds = open_dataset(make_dataset(tmp_path, n_sessions=2, duration_s=20), split="train")  # the empty spec
    with pytest.raises(ConfigError, match="model.anchors.*names no"):
        build_model(config_from_dict({"model": {"d_model": 32, "anchors": "spec"}}), ds)
