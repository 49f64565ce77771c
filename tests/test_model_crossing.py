"""The crossing time head (ModelConfig.time_head = "crossing"): the loss scores each slot with
the quantiles of its kind plus a BCE on the crossing, the planner stops where the head says the
tick ends, and evaluation scores each slot with its kind's quantiles."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ilbot.data.schema import EventType
from ilbot.eval.report import model_prediction
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.loss import UnifiedEventLoss, lookahead_slots, pinball_loss
from ilbot.model.planner import Planner
from ilbot.model.synthetic import synthetic_windows

CFG = ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1, n_slots=40, dropout=0.0,
                  time_head="crossing")


def _sp_inv(y: float) -> float:
    return math.log(math.expm1(y))


def _forced(dt_ms: float, cross_logit: float, la_ms: float = 2000.0):
    """Every slot: in-window dt ≈ dt_ms, look-ahead dt ≈ la_ms, crossing logit fixed; MOVEs."""
    torch.manual_seed(0)
    model = UnifiedEventModel(CFG).eval()
    with torch.no_grad():
        for head in model.core_heads:
            head.proj.weight.zero_()
        model.time_head.proj.bias.copy_(torch.tensor([_sp_inv(math.log1p(dt_ms)), -40.0, -40.0,
                                                      _sp_inv(math.log1p(la_ms)), -40.0, -40.0, cross_logit]))
        model.event_head.proj.bias.copy_(torch.tensor([-20.0, -20.0, -20.0, 20.0]))
    return model


def _contexts(n=2):
    w = synthetic_windows(n, seed=0, n_slots=CFG.n_slots)
    return {k: w[k] for k in ("gamestate", "history", "history_mask")}


def test_lookahead_slot_is_the_last_valid_one():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    assert lookahead_slots(mask).int().tolist() == [[0, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]


def test_loss_uses_each_kinds_quantiles_and_a_crossing_bce():
    A = 4
    mask = torch.tensor([[True, True, True, False]])
    targets = torch.zeros(1, A, 7)
    targets[0, :3, 0] = torch.tensor([10.0, 20.0, 900.0])  # dt_ms; slot 2 is the look-ahead
    q_in = torch.log1p(torch.tensor([5.0, 15.0, 40.0])).expand(1, A, 3)
    q_la = torch.log1p(torch.tensor([300.0, 800.0, 3000.0])).expand(1, A, 3)
    logit = torch.tensor([[-2.0, -1.0, 1.5, 9.0]])
    out = {"event_logits": torch.zeros(1, A, 4), "time_q_log": q_in, "time_q_la_log": q_la, "cross_logit": logit,
           "x_mu": torch.zeros(1, A), "y_mu": torch.zeros(1, A), "x_logsig": torch.zeros(1, A), "y_logsig": torch.zeros(1, A),
           "button_logits": torch.zeros(1, A, 4), "key_action_logits": torch.zeros(1, A, 3),
           "key_id_logits": torch.zeros(1, A, 5), "scroll_y_logits": torch.zeros(1, A, 3)}
    _, parts = UnifiedEventLoss()(out, targets, mask)
    dt = torch.log1p(targets[0, :3, 0])
    want_time = (pinball_loss(q_in[0, 0], dt[0]) + pinball_loss(q_in[0, 1], dt[1]) + pinball_loss(q_la[0, 2], dt[2])) / 3
    want_cross = F.binary_cross_entropy_with_logits(logit[0, :3], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(parts["time"], want_time) and torch.allclose(parts["crossing"], want_cross)


def test_plain_head_has_a_zero_crossing_part():
    model = UnifiedEventModel(ModelConfig(d_model=32, n_heads=2, n_slots=40))
    w = {k: torch.from_numpy(v) for k, v in synthetic_windows(2, seed=0, n_slots=40).items()}
    out = model(w, w["targets"])
    assert float(out["loss_parts"]["crossing"]) == 0.0 and "cross_logit" not in out


def test_planner_never_crossing_fills_the_tick_and_always_crossing_is_idle():
    busy = Planner(_forced(dt_ms=50.0, cross_logit=-40.0), seed=0).sample_slots(_contexts(), tick_ms=600.0)
    assert busy["n_events"].tolist() == [11, 11]  # 50, 100, …, 550 ms; 600 ms is the tick's end
    idle = Planner(_forced(dt_ms=50.0, cross_logit=40.0), seed=0).sample_slots(_contexts(), tick_ms=600.0)
    assert idle["idle"].all()
    mode = Planner(_forced(dt_ms=50.0, cross_logit=-0.5), temperature=0.0, seed=0).sample_slots(_contexts(), tick_ms=600.0)
    assert mode["n_events"].tolist() == [11, 11]  # T = 0: crossing only when its probability is above ½


def test_planner_crossing_probability_sets_the_events_per_tick():
    """p = 0.5 per slot: the number of events before the first crossing is geometric (mean 1)."""
    model = _forced(dt_ms=10.0, cross_logit=0.0)
    ctx = _contexts(1)
    ctx = {k: np.repeat(v, 400, axis=0) for k, v in ctx.items()}
    s = Planner(model, seed=3).sample_slots(ctx, tick_ms=600.0)
    assert 0.8 < s["n_events"].mean() < 1.2 and s["idle"].mean() > 0.4


def test_evaluation_scores_the_lookahead_slot_with_the_lookahead_quantiles():
    model = _forced(dt_ms=20.0, cross_logit=0.0, la_ms=1500.0)
    w = synthetic_windows(3, seed=1, n_slots=CFG.n_slots)
    pred = model_prediction(model, w)
    m = w["target_mask"]
    la = lookahead_slots(torch.from_numpy(m)).numpy()[m]  # per valid slot, in the same order
    assert np.allclose(pred.time_q[la, 1], 1500.0, rtol=1e-3) and np.allclose(pred.time_q[~la, 1], 20.0, rtol=1e-3)
