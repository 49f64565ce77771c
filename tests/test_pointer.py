"""The pointer row: where the cursor was before the context (POINTER_FIELDS), the same from the
dataset and from the live context, and the origin of a model with pointer_input after idle ticks."""

import numpy as np
import pytest
import torch

from ilbot.agent.context import ContextBuffer
from ilbot.data.dataset import build_dataset, open_dataset
from ilbot.data.schema import F, T, Event
from ilbot.data.store import SessionWriter
from ilbot.eval.slots import NO_PREV, extract_slots
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.fields import last_history_xy
from ilbot.model.planner import Planner
from ilbot.model.sampling import Temperature
from ilbot.model.synthetic import synthetic_windows

MS = 1_000_000
TICK = 600 * MS
WIN = (800.0, 600.0)


def _bursts():
    """Bursts of moves, a click and a key press, each burst followed by an idle gap longer than
    the context (T ticks), so many windows see an empty history; the last pointer event of a burst
    is a click, and a key press (not a pointer event) comes after it."""
    events, t = [], 0
    rng = np.random.default_rng(3)
    for burst in range(6):
        for j in range(5):
            t += int(rng.integers(20, 200)) * MS
            events.append(Event.make(t, float(rng.integers(0, 800)), float(rng.integers(0, 600))))
        t += 50 * MS
        events.append(Event.make(t, 100.0 + 90 * burst, 50.0 + 60 * burst, button=1, hold_ms=80))
        t += 120 * MS
        events.append(Event.make(t, 0.0, 0.0, key_action=1, key_id=3))
        t += (T + 2 + burst) * TICK  # idle for longer than the context
    events.append(Event.make(t, 5.0, 5.0))
    return events


def _dataset(tmp_path, *sessions):
    meta = {"source": "test", "window": {"x": 0, "y": 0, "width": 800, "height": 600}, "feature_spec": "empty",
            "feature_spec_hash": "h0"}
    paths = []
    for i, events in enumerate(sessions):
        paths.append(tmp_path / f"s{i}.ilbot.sqlite")
        with SessionWriter(paths[-1], meta) as w:
            w.add_events(events)
    build_dataset(paths, tmp_path / "ds", progress=False)
    return open_dataset(tmp_path / "ds")


def test_dataset_pointer_equals_the_live_context(tmp_path):
    events = _bursts()
    ds = _dataset(tmp_path, events)
    b = ds.batch(np.arange(len(ds)))
    assert b["pointer"].shape == (len(ds), 3) and b["pointer"].dtype == np.float32
    anchors = np.asarray(ds._a["window_anchor"])  # tick index of each window (one session, first tick 0)
    buf = ContextBuffer(np.zeros(F, np.float32), np.ones(F, np.float32), WIN)
    i_ev, empty_known = 0, 0
    for i, t in enumerate(anchors):
        while buf.tick_start_ns is None or buf.tick_start_ns < t * TICK:
            k = 0 if buf.tick_start_ns is None else buf.tick_start_ns // TICK + 1
            buf.push_tick(k * TICK, np.zeros(F, np.float32))
            while i_ev < len(events) and events[i_ev].t_ns < (k + 1) * TICK:  # tick k's events arrive during it
                buf.add_event(events[i_ev])
                i_ev += 1
        ctx = buf.context()
        np.testing.assert_array_equal(ctx["history_mask"], b["history_mask"][i])
        np.testing.assert_array_equal(ctx["pointer"], b["pointer"][i])
        empty_known += int(not ctx["history_mask"].any() and ctx["pointer"][2] == 1.0)
    assert empty_known >= 20  # the case it is for: idle contexts with a known cursor
    # the pointer of an idle context is the burst's click (the key press after it is no pointer event)
    idle = ~b["history_mask"].any(axis=(1, 2)) & (b["pointer"][:, 2] == 1.0)
    clicks = {(round((100.0 + 90 * k) / 800, 6), round((50.0 + 60 * k) / 600, 6)) for k in range(6)}
    assert {(round(float(x), 6), round(float(y), 6)) for x, y in b["pointer"][idle, :2]} <= clicks
    # before the session has T ticks behind a window, nothing is known
    assert (b["pointer"][anchors <= T, 2] == 0.0).all()
    # the evaluation's previous position of an idle window's first slot is the pointer's
    s = extract_slots(b | {"window_size": np.tile(WIN, (len(ds), 1))})
    first = (s.slot == 0) & np.isin(s.window, np.flatnonzero(idle))
    assert first.any() and (s.prev_type[first] == NO_PREV).all()
    np.testing.assert_allclose(s.prev_x[first], b["pointer"][s.window[first], 0])


def test_a_session_does_not_see_the_previous_sessions_pointer(tmp_path):
    events = _bursts()
    ds = _dataset(tmp_path, events, events)
    b = ds.batch(np.arange(len(ds)))
    rel = np.asarray(ds._a["window_anchor"]) - np.asarray(ds._a["window_first_tick"])  # tick within its session
    assert (b["pointer"][rel <= T, 2] == 0.0).all() and (b["pointer"][rel > T + 1, 2] == 1.0).any()
    half = len(ds) // 2  # both sessions hold the same events: the same pointers
    np.testing.assert_array_equal(b["pointer"][:half], b["pointer"][half:])


def test_live_pointer_ignores_keys_and_takes_late_pointer_events():
    buf = ContextBuffer(np.zeros(F, np.float32), np.ones(F, np.float32), WIN, ticks=2)
    buf.push_tick(0, np.zeros(F))
    buf.add_event(Event.make(100 * MS, 400, 300))
    buf.add_event(Event.make(200 * MS, 0, 0, key_action=1, key_id=2))
    assert buf.context()["pointer"][2] == 0.0  # still inside the context
    for k in range(1, 4):
        buf.push_tick(k * TICK, np.zeros(F))
    np.testing.assert_allclose(buf.context()["pointer"], [0.5, 0.5, 1.0])  # the move, not the key press
    buf.add_event(Event.make(300 * MS, 80, 60))  # a late pointer event, before the oldest window
    np.testing.assert_allclose(buf.context()["pointer"], [0.1, 0.1, 1.0])


def _model(pointer_input, **opts):
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=64, n_heads=4, n_decoder_layers=2, xy_residual=True, xy_step_input=True,
                      pointer_input=pointer_input, **opts)
    return UnifiedEventModel(cfg).eval()


def test_pointer_input_moves_the_origin_of_an_idle_context_only():
    b = {k: torch.from_numpy(v) for k, v in synthetic_windows(4, seed=5).items()}
    b["history_mask"][:2] = False  # rows 0, 1: idle contexts; rows 2, 3 keep their history
    b["pointer"][:] = torch.tensor([0.9, 0.2, 1.0])
    b["pointer"][1, 2] = 0.0  # row 1: the cursor is unknown
    xy = last_history_xy(b["history"].float(), b["history_mask"], pointer=b["pointer"])
    assert xy[0].tolist() == pytest.approx([0.9, 0.2]) and xy[1].tolist() == [0.5, 0.5]
    np.testing.assert_array_equal(xy[2:], last_history_xy(b["history"].float(), b["history_mask"])[2:])
    model_off, model_on = _model(False), _model(True)
    missing = model_on.load_state_dict(model_off.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["decoder.pointer_in.bias", "decoder.pointer_in.weight"]  # zero: the origin alone
    with torch.no_grad():
        on, off = model_on(b), model_off(b)
    shift = on["x_mu"][:, 0] - off["x_mu"][:, 0]  # slot 0: the origin moved, nothing else did
    assert shift[0].item() == pytest.approx(0.4, abs=1e-5) and shift[1:].abs().max().item() < 1e-6


@pytest.mark.parametrize("opts", [dict(), dict(time_head="crossing", xy_dist="laplace")])
def test_planner_starts_an_idle_context_from_the_pointer(opts):
    model = _model(True, **opts)
    ctx = {k: v[:1] for k, v in synthetic_windows(1, seed=2).items()}
    ctx["history_mask"][:] = False
    xs = []
    for px in (0.2, 0.7):
        ctx["pointer"] = np.array([[px, 0.5, 1.0]], np.float32)
        s = Planner(model, temperature=Temperature(event=1.0, time=1.0, position=0.0), seed=0).sample_slots(ctx)
        xs.append(s["x"][0, 0])
    assert xs[1] - xs[0] == pytest.approx(0.5, abs=1e-4)


def test_planner_refuses_a_pointer_of_the_wrong_shape():
    ctx = {k: v[:1] for k, v in synthetic_windows(1, seed=2).items()}
    ctx["pointer"] = np.zeros((1, 2), np.float32)
    with pytest.raises(ValueError, match="context pointer has shape"):
        Planner(_model(True)).sample_slots(ctx)
