"""Planner: stops at the tick's end (the crossing event is not performed) or at A slots, is
seed-deterministic, runs event-specific heads only where needed, and batches."""

import math

import numpy as np
import pytest
import torch

from ilbot.data.action import PlannedAction
from ilbot.data.schema import EventType
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.planner import SLOT_FIELDS, Planner
from ilbot.model.synthetic import synthetic_windows

CFG = ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=2, n_slots=40, dropout=0.0)


def _contexts(n=3, seed=0):
    w = synthetic_windows(n, seed=seed, n_slots=CFG.n_slots)
    return {k: w[k] for k in ("gamestate", "history", "history_mask")}


def _one(ctx, i=0):
    return {k: v[i] for k, v in ctx.items()}


def _model(seed=0):
    torch.manual_seed(seed)
    return UnifiedEventModel(CFG).eval()


def _force(model, *, dt_ms=100.0, event=None, xy=None, button=None):
    """Make the heads (nearly) deterministic: every dt = dt_ms, the given event type, position, button."""
    with torch.no_grad():
        for head in model.core_heads + model.event_heads:
            head.proj.weight.zero_()
        model.time_head.proj.bias.copy_(torch.tensor([math.log(math.expm1(math.log1p(dt_ms))), -40.0, -40.0]))
        if event is not None:
            model.event_head.proj.bias.fill_(-20.0)
            model.event_head.proj.bias[int(event)] = 20.0
        if xy is not None:
            model.xy_head.proj.bias.copy_(torch.tensor([xy[0] - 0.5, -30.0, xy[1] - 0.5, -30.0]))
        if button is not None:
            model.button_head.proj.bias.fill_(-20.0)
            model.button_head.proj.bias[button] = 20.0
    return model


def test_stops_when_cumulative_time_crosses_the_tick():
    model = _force(_model(), dt_ms=100.0, event=EventType.CLICK, xy=(0.75, 0.25), button=2)
    plan = Planner(model, seed=0).plan(_one(_contexts()), tick_ms=650.0, window_size=(800, 600))
    # events at 100, 200, …, 600 ms; the 7th (700 ms) crosses 650 and is not performed
    assert len(plan) == 6
    assert all(isinstance(a, PlannedAction) for a in plan)
    assert [round(a.t_ms) for a in plan] == [100, 200, 300, 400, 500, 600]
    a = plan[0]
    assert a.type == EventType.CLICK and a.button == 2 and a.hold_ms == 0.0
    assert a.x == pytest.approx(600.0, abs=4) and a.y == pytest.approx(150.0, abs=4)  # normalised × window (σ ≈ 0.7 px)
    assert a.sigma_x < 1.0 and a.event_probs[0] == pytest.approx(1.0) and len(a.time_q) == 3
    assert a.time_q[1] == pytest.approx(100.0, rel=1e-3)
    assert Planner(model).plan(_one(_contexts()), tick_ms=0.0, window_size=(800, 600)) == []  # idle


def test_stops_at_a_slots():
    model = _force(_model(), dt_ms=1.0, event=EventType.MOVE)
    plan = Planner(model).plan(_one(_contexts()), tick_ms=1e9, window_size=(1, 1))
    assert len(plan) == CFG.n_slots


def test_seed_determinism():
    model, ctx = _model(1), _one(_contexts(seed=2))
    a = Planner(model, seed=5).plan(ctx, tick_ms=5000.0, window_size=(800, 600))
    b = Planner(model, seed=5).plan(ctx, tick_ms=5000.0, window_size=(800, 600))
    c = Planner(model, seed=6).plan(ctx, tick_ms=5000.0, window_size=(800, 600))
    assert len(a) > 1 and a == b and a != c
    times = [x.t_ms for x in a]
    assert times == sorted(times) and times[-1] < 5000.0


def test_event_specific_heads_run_only_when_needed():
    model = _force(_model(), dt_ms=50.0, event=EventType.MOVE)
    planner = Planner(model)
    plan = planner.plan(_one(_contexts()), tick_ms=600.0, window_size=(800, 600))
    assert len(plan) == 11 and planner.head_rows == {"button": 0, "key_action": 0, "key_id": 0, "scroll_y": 0}
    _force(model, dt_ms=50.0, event=EventType.KEY)
    planner = Planner(model)
    plan = planner.plan(_one(_contexts()), tick_ms=600.0, window_size=(800, 600))
    assert planner.head_rows == {"button": 0, "key_action": 11, "key_id": 11, "scroll_y": 0}
    assert all(a.type == EventType.KEY and a.key_action in (1, 2) for a in plan)


def test_sampled_fields_are_consistent_with_the_type():
    model = _model(3)
    with torch.no_grad():
        model.event_head.proj.bias.copy_(torch.tensor([2.0, 2.0, 2.0, 0.0]))  # plenty of every type
    plans = Planner(model, seed=1).plan_batch(_contexts(4, seed=3), tick_ms=3000.0, window_size=(640, 480))
    seen = set()
    for plan in plans:
        for a in plan:
            seen.add(a.type)
            assert (a.button != 0) == (a.type == EventType.CLICK)
            assert (a.key_action != 0) == (a.type == EventType.KEY)
            assert (a.scroll_y != 0) == (a.type == EventType.SCROLL)
            assert a.type == EventType.KEY or a.key_id == 0
            assert sum(a.event_probs) == pytest.approx(1.0, abs=1e-5)
            assert a.time_q[0] <= a.time_q[1] <= a.time_q[2]
    assert seen == set(EventType)


def test_plan_batch_matches_single_plans_at_temperature_zero():
    model, ctx = _model(4), _contexts(3, seed=4)
    batch = Planner(model, temperature=0.0).plan_batch(ctx, tick_ms=2000.0, window_size=np.array([[800, 600]] * 3))
    for i in range(3):
        single = Planner(model, temperature=0.0).plan(_one(ctx, i), tick_ms=2000.0, window_size=(800, 600))
        assert len(single) == len(batch[i])
        for a, b in zip(single, batch[i]):
            assert a.type == b.type and a.t_ms == pytest.approx(b.t_ms, rel=1e-4)
            assert a.x == pytest.approx(b.x, abs=1e-2)


def test_sample_slots_arrays():
    model = _model(5)
    s = Planner(model, seed=0).sample_slots(_contexts(5, seed=5), tick_ms=600.0)
    for k in SLOT_FIELDS:
        assert s[k].shape == (5, CFG.n_slots)
    assert s["n_events"].tolist() == s["performed"].sum(1).tolist()
    assert (s["idle"] == (s["n_events"] == 0)).all()
    assert (s["t_ms"][s["performed"]] < 600.0).all()
    assert (s["type"][~s["performed"]] == 0).all()


def test_threads_restored():
    prev = torch.get_num_threads()
    Planner(_model(), threads=1).plan(_one(_contexts()), tick_ms=600.0, window_size=(1, 1))
    assert torch.get_num_threads() == prev


def test_wrong_context_shape_is_a_clear_error():
    ctx = _one(_contexts())
    ctx["gamestate"] = ctx["gamestate"][:, :7]
    with pytest.raises(ValueError, match=r"gamestate has shape \(10, 7\), the model needs \(10, 128\)"):
        Planner(_model()).plan(ctx, tick_ms=600.0, window_size=(1, 1))


def test_non_finite_context_plans_nothing(recwarn):
    ctx = _one(_contexts())
    ctx["gamestate"] = np.full_like(ctx["gamestate"], np.nan)
    assert Planner(_model()).plan(ctx, tick_ms=600.0, window_size=(800, 600)) == []


def test_planner_restores_training_mode():
    model = _model().train()
    Planner(model).plan(_one(_contexts()), tick_ms=600.0, window_size=(1, 1))
    assert model.training


def test_blas_threads_restored():
    from ilbot.model.planner import _blas_pools
    pools = _blas_pools()
    before = [p["num_threads"] for p in pools.info()]
    Planner(_model(), threads=1).plan_batch(_contexts(4), tick_ms=600.0, window_size=(1, 1))
    assert [p["num_threads"] for p in pools.info()] == before
