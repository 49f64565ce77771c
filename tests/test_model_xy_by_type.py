"""ModelConfig.xy_by_type: the position distribution conditioned on the slot's event type."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ilbot.data.schema import EventType
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.checkpoint import load_checkpoint, save_checkpoint
from ilbot.model.incremental import IncrementalDecoder
from ilbot.model.planner import Planner
from ilbot.model.synthetic import synthetic_windows

from model_fit_helpers import fit  # tests/

ANCHORS = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
# the shipped sandbox model's options, and every option at once
GOLDEN_CONFIGS = {
    "sandbox": dict(xy_residual=True, xy_step_input=True, anchors=ANCHORS, xy_input_noise=0.01),
    "all": dict(xy_residual=True, slot_elapsed_input=True, xy_step_input=True, anchors=ANCHORS,
                time_head="crossing", xy_dist="laplace"),
}
GOLDEN_FIELDS = ("type", "dt_ms", "x", "y", "sigma_x", "sigma_y", "p_click", "p_move", "q50", "button", "performed")


def _golden_model(opts, **extra):
    torch.manual_seed(0)
    model = UnifiedEventModel(ModelConfig(d_model=32, n_heads=4, n_decoder_layers=2, **opts, **extra)).eval()
    with torch.no_grad():  # every option's weights away from their (often zero) start
        for name, p in model.named_parameters():
            if "ln" in name or "xy_head" in name or "elapsed" in name or "anchors" in name or "step_in" in name:
                p.add_(0.3 * torch.randn_like(p))
    return model


def _golden_batch(B=6):
    b = synthetic_windows(B, seed=5, max_events=12)
    b["gamestate"][:, -1, :9] = np.random.default_rng(1).random((B, 9), dtype=np.float32)
    return b


def golden_outputs() -> dict:
    """Teacher-forced heads and planner samples of fixed models without xy_by_type (the arrays in
    tests/data/model_xy_by_type_off.npz were written by this function before the option existed)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = {}
        b = _golden_batch()
        tb = {k: torch.from_numpy(v) for k, v in b.items()}
        for name, opts in GOLDEN_CONFIGS.items():
            model = _golden_model(opts)
            with torch.no_grad():
                out = model(tb, {"targets": tb["targets"], "target_mask": tb["target_mask"]})
            for k in ("x_mu", "y_mu", "x_logsig", "anchor_logits", "anchor_shift", "loss"):
                res[f"{name}/tf/{k}"] = out[k].numpy()
            ctx = {k: b[k] for k in ("gamestate", "history", "history_mask")}
            s = Planner(model, temperature=1.0, seed=3).sample_slots(ctx)
            for k in GOLDEN_FIELDS:
                res[f"{name}/plan/{k}"] = s[k]
        return res
    finally:
        torch.set_num_threads(prev)


# ---- a task where the type decides the position: CLICKs on the anchor, MOVEs part of the way to it ----

N_TICKS, N_SLOTS, N_FEATURES = 2, 2, 3  # features: the anchor's x, y and validity


def _task(n: int, rng: np.random.Generator) -> dict:
    """n windows of one event each: from the cursor c (the history's last event) toward the anchor
    a, a CLICK on a (half the windows) or a MOVE to c + f·(a − c), f ∈ [0.2, 0.8]; nothing in the
    state tells which."""
    a = rng.uniform(0.2, 0.8, (n, 2)).astype(np.float32)
    c = rng.uniform(0.1, 0.9, (n, 2)).astype(np.float32)
    click = rng.random(n) < 0.5
    f = rng.uniform(0.2, 0.8, (n, 1)).astype(np.float32)
    xy = np.where(click[:, None], a, c + f * (a - c))
    b = {"gamestate": np.zeros((n, N_TICKS, N_FEATURES), np.float32),
         "history": np.zeros((n, N_TICKS, N_SLOTS, 8), np.float32),
         "history_mask": np.zeros((n, N_TICKS, N_SLOTS), bool),
         "targets": np.zeros((n, N_SLOTS, 7), np.float32), "target_mask": np.zeros((n, N_SLOTS), bool)}
    b["gamestate"][:, :, :2] = a[:, None]
    b["gamestate"][:, :, 2] = 1.0
    b["history"][:, -1, 0, :4] = np.concatenate([np.full((n, 1), 30.0, np.float32), c, np.full((n, 1), 3.0, np.float32)], 1)
    b["history_mask"][:, -1, 0] = True
    b["targets"][:, 0, :3] = np.concatenate([np.full((n, 1), 20.0, np.float32), xy], 1)
    b["targets"][:, 0, 3] = np.where(click, 1.0, 0.0)  # button 1: a CLICK
    b["target_mask"][:, 0] = True
    return b


def _trained(xy_by_type: bool):
    return fit(ModelConfig(n_ticks=N_TICKS, n_slots=N_SLOTS, n_features=N_FEATURES, d_model=32, n_heads=4, ff_mult=2,
                           n_context_layers=1, n_decoder_layers=1, dropout=0.0, xy_residual=True,
                           anchors=[[0, 1, 2]], xy_by_type=xy_by_type), _task)


def _offsets(model, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """The planner's first events on fresh windows: (the CLICKs', the MOVEs') distance to the anchor
    (window units)."""
    b = _task(n, np.random.default_rng(99))
    s = Planner(model, seed=1).sample_slots({k: b[k] for k in ("gamestate", "history", "history_mask")})
    d = np.hypot(s["x"][:, 0] - b["gamestate"][:, -1, 0], s["y"][:, 0] - b["gamestate"][:, -1, 1])
    done = s["performed"][:, 0]
    return d[done & (s["type"][:, 0] == int(EventType.CLICK))], d[done & (s["type"][:, 0] == int(EventType.MOVE))]


# ---- the tests ------------------------------------------------------------------------------

GOLDEN = Path(__file__).parent / "data" / "model_xy_by_type_off.npz"


def test_off_reproduces_the_outputs_from_before_the_option():
    """Teacher-forced heads and planner samples of models without the option equal those the code
    gave before xy_by_type existed (the planner now draws the type before the position: same values):
    every discrete draw exactly, every float to float32 rounding — the CPU's kernels differ in the
    last bits from one machine to another (an AMD EPYC gives up to ~1e-5 relative where the machine
    that wrote the file gave 0)."""
    want = np.load(GOLDEN)
    got = golden_outputs()
    assert set(got) == set(want.files)
    for k, v in got.items():
        if v.dtype.kind == "f":
            np.testing.assert_allclose(v, want[k], rtol=1e-4, atol=1e-5, err_msg=k)
        else:
            assert np.array_equal(v, want[k]), k


def _typed_model():
    """The sandbox options with xy_by_type, its type terms away from their zero start."""
    model = _golden_model(dict(GOLDEN_CONFIGS["sandbox"], xy_by_type=True))
    with torch.no_grad():
        for p in model.xy_by_type.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _tf(model, b):
    with torch.no_grad():
        return model({k: torch.from_numpy(v) for k, v in b.items()})


def test_option_adds_only_its_tensors_and_starts_exactly_as_without_it():
    assert ModelConfig().xy_by_type is False
    opts = GOLDEN_CONFIGS["sandbox"]
    off, on = _golden_model(opts), _golden_model(opts, xy_by_type=True)
    extra = set(on.state_dict()) - set(off.state_dict())
    assert extra == {"xy_by_type.embed.weight", "xy_by_type.xy_bias", "xy_by_type.anchor_bias"}
    assert set(off.state_dict()) <= set(on.state_dict())
    assert set(UnifiedEventModel(ModelConfig(d_model=32, xy_by_type=True)).state_dict()) - set(
        UnifiedEventModel(ModelConfig(d_model=32)).state_dict()) == {"xy_by_type.embed.weight", "xy_by_type.xy_bias"}
    on.load_state_dict(off.state_dict(), strict=False)  # the same weights; the type terms at their zero start
    b = _golden_batch()
    a, c = _tf(off, b), _tf(on, b)
    for k in ("x_mu", "y_mu", "x_logsig", "y_logsig", "anchor_logits", "anchor_shift", "event_logits"):
        assert torch.equal(a[k], c[k]), k
    ctx = {k: b[k] for k in ("gamestate", "history", "history_mask")}
    s_off, s_on = (Planner(m, seed=3).sample_slots(ctx) for m in (off, on))
    assert np.array_equal(s_off["type"], s_on["type"]) and np.array_equal(s_off["performed"], s_on["performed"])
    assert np.allclose(s_off["x"], s_on["x"], atol=1e-5) and np.allclose(s_off["sigma_x"], s_on["sigma_x"], rtol=1e-5)


def test_teacher_forcing_conditions_each_slot_on_its_own_target_type():
    """Turning slot i's target from a MOVE into a CLICK changes slot i's position distribution with
    the option (and no other slot before i+1); without it slot i does not depend on its own target."""
    b = _golden_batch(B=2)
    row = 0
    i = int(np.nonzero((b["targets"][row, :, 3] == 0) & (b["targets"][row, :, 4] == 0)
                       & (b["targets"][row, :, 6] == 0) & b["target_mask"][row])[0][0])  # a MOVE slot
    clicked = {k: v.copy() for k, v in b.items()}
    clicked["targets"][row, i, 3] = 1.0  # button 1: a CLICK
    for model, moves in ((_typed_model(), True), (_golden_model(GOLDEN_CONFIGS["sandbox"]), False)):
        a, c = _tf(model, b), _tf(model, clicked)
        for k in ("x_logsig", "anchor_logits"):
            assert torch.equal(a[k][:, :i], c[k][:, :i]), k  # earlier slots: causal
            assert (not torch.equal(a[k][row, i], c[k][row, i])) == moves, (k, moves)
    bad = {k: v.copy() for k, v in b.items()}
    bad["targets"][~bad["target_mask"]] = np.nan  # padding holds garbage: it reaches neither the types nor the loss
    tb = {k: torch.from_numpy(v) for k, v in bad.items()}
    for model in (_typed_model(), _golden_model(GOLDEN_CONFIGS["sandbox"])):
        with torch.no_grad():
            clean = model({k: torch.from_numpy(v) for k, v in b.items()}, torch.from_numpy(b["targets"]))["loss"]
            assert torch.equal(model(tb, tb["targets"])["loss"], clean)


def test_the_numpy_position_needs_the_type():
    model = _typed_model()
    dec = IncrementalDecoder(model)
    hn = np.ones((2, model.cfg.d_model), np.float32)
    assert set(dec.core(hn)) == {"event_logits", "time_q", "time_q_log"}
    with pytest.raises(ValueError, match="event type"):
        dec.position(hn)


def test_checkpoints_keep_the_option_and_older_configs_load_without_it(tmp_path):
    model = _typed_model()
    vocab = [f"k{i}" for i in range(model.cfg.key_vocab_size)]
    ck = load_checkpoint(save_checkpoint(tmp_path / "on", model, spec_hash="h", key_vocab=vocab, stats={}))
    assert ck.config.xy_by_type and ck.model.xy_by_type is not None
    ctx = {k: v for k, v in _golden_batch().items() if k in ("gamestate", "history", "history_mask")}
    with np.errstate(over="ignore", invalid="ignore"):  # random anchor gains: rows that stopped run off to inf
        a, c = (Planner(m, seed=2).sample_slots(ctx) for m in (model, ck.model))
    assert all(np.array_equal(a[k], c[k]) for k in ("type", "x", "y", "sigma_x"))
    # a checkpoint written before the option: no xy_by_type key in its config
    d = save_checkpoint(tmp_path / "old", _golden_model(GOLDEN_CONFIGS["sandbox"]), spec_hash="h", key_vocab=vocab, stats={})
    meta = json.loads((d / "config.json").read_text())
    del meta["model_config"]["xy_by_type"]
    (d / "config.json").write_text(json.dumps(meta))
    old = load_checkpoint(d)
    assert old.config.xy_by_type is False and old.model.xy_by_type is None


def test_a_click_drawn_by_the_planner_lands_on_the_anchor_only_with_the_option():
    """CLICKs sit on the anchor, MOVEs part of the way to it, and the state does not say which
    comes: a position shared by both types puts most sampled CLICKs on the path; conditioned on
    the drawn type, they land on the anchor and the MOVEs stay on the path."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clicks_on, moves_on = _offsets(_trained(True))
        clicks_off, _ = _offsets(_trained(False))
    finally:
        torch.set_num_threads(prev)
    assert len(clicks_on) > 100 and len(moves_on) > 100
    # measured: on — click median 0.014 windows, 97 % within 0.05; MOVE median 0.17; off — click median 0.07, 39 %
    assert np.median(clicks_on) < 0.025 and np.mean(clicks_on < 0.05) > 0.85
    assert np.median(moves_on) > 0.08
    assert np.mean(clicks_off < 0.05) < 0.6
