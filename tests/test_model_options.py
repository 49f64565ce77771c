"""ModelConfig decoder options (xy_residual, slot_elapsed_input, anchors, xy_by_type, …): the teacher-forced
pass, the numpy planner path and the defaults (which must keep older checkpoints loading unchanged)."""

import numpy as np
import pytest
import torch

from ilbot.data.schema import CONTEXT_FIELDS, TG, TICK_MS
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.fields import last_history_xy, previous_xy, target_to_history_rows
from ilbot.model.incremental import IncrementalDecoder
from ilbot.model.planner import Planner
from ilbot.model.recent import RecentBuffer
from ilbot.model.synthetic import synthetic_windows

ANCHORS = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # synthetic features as positions; valid when above 0.5
OPTIONS = [dict(xy_residual=True), dict(slot_elapsed_input=True), dict(xy_residual=True, slot_elapsed_input=True),
           dict(anchors=ANCHORS), dict(time_head="crossing"), dict(xy_step_input=True), dict(xy_dist="laplace"),
           dict(xy_by_type=True), dict(xy_by_type=True, anchors=ANCHORS),
           dict(xy_residual=True, slot_elapsed_input=True, anchors=ANCHORS, time_head="crossing", xy_step_input=True),
           dict(xy_residual=True, slot_elapsed_input=True, anchors=ANCHORS, time_head="crossing", xy_step_input=True,
                xy_dist="laplace", xy_by_type=True),
           dict(xy_residual=True, xy_step_input=True, pointer_input=True),
           dict(xy_residual=True, slot_elapsed_input=True, anchors=ANCHORS, time_head="crossing", xy_step_input=True,
                xy_dist="laplace", pointer_input=True),
           dict(recent_events=4), dict(xy_residual=True, slot_elapsed_input=True, time_head="crossing", xy_step_input=True,
                xy_dist="laplace", pointer_input=True, recent_events=8),
           dict(time_by_type=True), dict(time_head="crossing", time_by_type=True, xy_by_type=True),
           dict(xy_residual=True, slot_elapsed_input=True, time_head="crossing", xy_step_input=True,
                xy_dist="laplace", pointer_input=True, recent_events=8, time_by_type=True)]


def _model_and_batch(opts, B=3):
    torch.manual_seed(0)
    model = UnifiedEventModel(ModelConfig(d_model=64, n_heads=4, n_decoder_layers=2, **opts)).eval()
    with torch.no_grad():  # non-trivial LayerNorm affines and xy offsets, so every term is exercised
        for name, p in model.named_parameters():
            if any(k in name for k in ("ln", "xy_head", "elapsed", "anchors", "step_in", "pointer_in", "recent")):
                p.add_(0.3 * torch.randn_like(p))
            elif "by_type" in name:  # type terms comparable to the state's
                p.add_(0.1 * torch.randn_like(p))
    b = {k: torch.from_numpy(v) for k, v in synthetic_windows(B, seed=11, max_events=30).items()}
    b["target_mask"][:] = True  # compare every slot
    b["gamestate"][:, -1, :9] = torch.rand(B, 9)  # anchor positions in the window; some valid, some not
    b["history_mask"][0] = False  # row 0: an idle context, where pointer_input's origin is the pointer row
    b["pointer"][0] = torch.tensor([0.8, 0.3, 1.0])
    b["pointer"][1:] = torch.tensor([0.1, 0.9, 1.0])
    return model, b


def test_defaults_add_no_parameters_and_keep_absolute_positions():
    cfg = ModelConfig()
    assert not cfg.xy_residual and not cfg.slot_elapsed_input
    keys = UnifiedEventModel(ModelConfig(d_model=32)).state_dict().keys()
    assert not any("elapsed" in k for k in keys)
    on = UnifiedEventModel(ModelConfig(d_model=32, slot_elapsed_input=True)).state_dict().keys()
    assert set(on) - set(keys) == {"decoder.elapsed.weight", "decoder.elapsed.bias"}


def test_last_history_xy_takes_the_latest_valid_event_or_the_centre():
    h = torch.zeros(2, 3, 4, 8)
    m = torch.zeros(2, 3, 4, dtype=torch.bool)
    h[0, 1, 2, 1:3] = torch.tensor([0.2, 0.7])
    m[0, 1, 2] = True
    h[0, 0, 3, 1:3] = torch.tensor([0.9, 0.9])  # earlier tick: not the latest
    m[0, 0, 3] = True
    h[0, 2, 0, 1:3] = torch.tensor([0.4, 0.4])  # later but padding: ignored
    got = last_history_xy(h, m)
    assert torch.allclose(got, torch.tensor([[0.2, 0.7], [0.5, 0.5]]))
    before = last_history_xy(h, m, before=1)  # the event before the latest; none → the centre
    assert torch.allclose(before, torch.tensor([[0.9, 0.9], [0.5, 0.5]]))
    m[0, 0, 3] = False  # only one event: "before" is that event itself (a zero step)
    assert torch.allclose(last_history_xy(h, m, before=1)[0], torch.tensor([0.2, 0.7]))
    tg = torch.rand(2, 5, 7)
    prev = previous_xy(tg, got)
    assert torch.equal(prev[:, 0], got) and torch.equal(prev[:, 1:], tg[:, :-1, TG["x"]:TG["y"] + 1])


def test_residual_head_at_zero_predicts_the_previous_position():
    model, b = _model_and_batch(dict(xy_residual=True))
    with torch.no_grad():
        model.xy_head.proj.weight.zero_()
        model.xy_head.proj.bias[0::2] = 0.0
        out = model(b)
    prev = previous_xy(b["targets"].float(), last_history_xy(b["history"].float(), b["history_mask"]))
    assert torch.allclose(out["x_mu"], prev[..., 0]) and torch.allclose(out["y_mu"], prev[..., 1])


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "+".join(f"{k}={v}" if isinstance(v, str) else k for k, v in o.items()))
def test_planner_style_incremental_equals_full_pass(opts):
    """Build each slot's input the way the planner does (numpy embed of event i−1, elapsed
    input from the cumulative dt, previous position as the xy origin) and compare every head
    with the teacher-forced pass."""
    model, b = _model_and_batch(opts)
    tg = b["targets"]
    with torch.no_grad():
        full = model(b)
        context = model.encode(b)
    dec = IncrementalDecoder(model)
    state = dec.start(context)
    rows = target_to_history_rows(tg).numpy()
    since = np.cumsum(tg[..., TG["dt_ms"]].numpy().astype(np.float64), axis=-1)  # [B,A]
    pointer = b["pointer"] if opts.get("pointer_input") else None
    prev = last_history_xy(b["history"].float(), b["history_mask"], pointer=pointer).numpy()
    prev2 = last_history_xy(b["history"].float(), b["history_mask"], before=1, pointer=pointer).numpy()
    ptr = dec.pointer_input(b["pointer"].numpy())
    assert (ptr is None) == (not opts.get("pointer_input", False))
    recent = RecentBuffer(model.recent, b["history"].float(), b["history_mask"]) if model.recent else None
    assert (recent is None) == (not opts.get("recent_events"))
    B, A = since.shape
    got = {k: [] for k in ("time_q", "time_q_log", "x_mu", "y_mu", "x_logsig", "event_logits")}
    if opts.get("time_head") == "crossing":
        got.update(time_q_la=[], cross_logit=[])
    if opts.get("anchors"):
        got.update(anchor_logits=[], anchor_shift=[])
    x = np.repeat(dec.start_in[None], B, axis=0)
    pos, valid = (a.numpy() for a in model.anchors.positions(b["gamestate"])) if model.anchors else (None, None)
    for i in range(A):
        cum = np.zeros(B) if i == 0 else since[:, i - 1]
        extra = dec.elapsed_input(cum, TICK_MS)
        assert (extra is None) == (not opts.get("slot_elapsed_input", False))
        xi = x if extra is None else x + extra
        step = dec.step_input(prev, prev2)
        assert (step is None) == (not opts.get("xy_step_input", False))
        xi = xi if step is None else xi + step
        xi = xi if ptr is None else xi + ptr
        xi = xi if recent is None else xi + recent.term()
        a_in, parts = dec.anchor_input(pos, valid, prev) if pos is not None else (None, None)
        r = rows[:, i]
        hn = dec.step(state, xi if a_in is None else xi + a_in, i)
        etype = r[:, 3].astype(int)  # the slot's target type, as teacher forcing conditions on it
        out = dec.core(hn, prev, parts, etype=etype)
        if opts.get("xy_by_type") or opts.get("time_by_type"):  # the planner's order: the event (and the
            first = dec.core(hn, prev, parts)  # crossing) first, then the position and time given the type
            assert ("x_mu" in first) != bool(opts.get("xy_by_type")) and ("time_q" in first) != bool(opts.get("time_by_type"))
            assert np.array_equal(first["event_logits"], out["event_logits"])
            if opts.get("time_head") == "crossing":
                assert np.array_equal(first["cross_logit"], out["cross_logit"])
            if opts.get("xy_by_type"):
                first.update(dec.position(hn, prev, parts, etype))
            if opts.get("time_by_type"):
                first.update(dec.timing(hn, etype))
            assert all(np.allclose(first[k], out[k], atol=1e-5) for k in out)
        for k in got:
            got[k].append(out[k])
        prev2, prev = prev, np.stack([r[:, 1], r[:, 2]], axis=-1)
        if recent is not None:
            recent.push(r[:, 0], r[:, 1], r[:, 2], r[:, 3])
        if i + 1 < A:
            x = dec.embed(r[:, 3].astype(int), r[:, 0], r[:, 1], r[:, 2], r[:, 4].astype(int), r[:, 5].astype(int),
                          r[:, 6].astype(int), r[:, 7].astype(int), since[:, i], i + 1)
    for k, v in got.items():
        assert np.allclose(np.stack(v, axis=1), full[k].numpy(), atol=3e-4, rtol=1e-4), k


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "+".join(f"{k}={v}" if isinstance(v, str) else k for k, v in o.items()))
def test_planner_runs_with_options_and_mode_sampling_follows_the_origin(opts):
    model, b = _model_and_batch(opts, B=4)
    planner = Planner(model, temperature=0.0, seed=0)
    ctx = {k: b[k].numpy() for k in CONTEXT_FIELDS}
    # rows that have stopped are still decoded until every row has: with random anchor gains their
    # positions can run off to inf; the performed events (all that is returned) stay finite
    with np.errstate(over="ignore", invalid="ignore"):
        s = planner.sample_slots(ctx)
        again = Planner(model, temperature=0.0, seed=0).sample_slots(ctx)
    assert s["type"].shape == (4, model.cfg.n_slots)
    assert np.isfinite(s["x"]).all() and np.isfinite(s["q50"]).all()
    assert np.array_equal(s["x"], again["x"])


def test_input_noise_perturbs_training_passes_only_and_never_the_targets():
    model, b = _model_and_batch(dict(xy_residual=True, xy_input_noise=0.05, dropout=0.0))
    targets = b["targets"].clone()
    with torch.no_grad():
        a, c = model(b), model(b)  # eval mode: no noise, identical
        assert torch.equal(a["x_mu"], c["x_mu"])
        model.train()
        torch.manual_seed(1)
        noisy = model(b, b["targets"])
        model.eval()
        clean = model(b, b["targets"])
    assert not torch.allclose(noisy["x_mu"], clean["x_mu"])  # the decoder read moved positions
    assert torch.equal(b["targets"], targets)  # the targets the loss scores against are untouched
    with pytest.raises(ValueError, match="xy_input_noise"):
        ModelConfig(xy_input_noise=-1.0)
