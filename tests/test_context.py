"""The live context ring buffers build exactly the dataset's arrays (DESIGN §5)."""

import numpy as np
import pytest

from ilbot.agent.context import ContextBuffer
from ilbot.data.encoding import history_rows, normalise_features
from ilbot.data.schema import A, F, H, T, Event, EventType

MS = 1_000_000
WIN = (800.0, 600.0)


def _buffer(**kw):
    mean = np.linspace(0, 1, F).astype(np.float32)
    std = np.full(F, 2.0, np.float32)
    return ContextBuffer(mean, std, WIN, **kw), mean, std


def test_empty_context_has_fixed_shapes():
    buf, _, _ = _buffer()
    ctx = buf.context()
    assert ctx["gamestate"].shape == (T, F) and ctx["gamestate"].dtype == np.float32
    assert ctx["history"].shape == (T, A, 8) and ctx["history_mask"].shape == (T, A)
    assert not ctx["history_mask"].any() and not ctx["gamestate"].any()
    assert buf.tick_start_ns is None and len(buf) == 0


def test_history_of_tick_t_is_window_t_minus_1():
    """Every row k holds the events of [start(k-1), start(k)), encoded by history_rows."""
    buf, mean, std = _buffer()
    rng = np.random.default_rng(0)
    starts = [i * 600 * MS for i in range(15)]
    feats = [rng.normal(size=F).astype(np.float32) for _ in starts]
    events = []
    for i, s in enumerate(starts):
        for j in range(i % 4):  # 0..3 events per window
            events.append(Event.make(s + (100 + 150 * j) * MS, x=10 * i + j, y=5 * j, button=j % 2, key_id=0))
    for i, s in enumerate(starts):
        buf.push_tick(s, feats[i])
        for e in events:
            if s <= e.t_ns < s + 600 * MS:
                buf.add_event(e)
    ctx = buf.context()  # newest tick t = 14; rows hold ticks 5..14
    for r in range(T):
        k = 14 - (T - 1 - r)
        np.testing.assert_allclose(ctx["gamestate"][r], normalise_features(feats[k], mean, std))
        window = [e for e in events if starts[k - 1] <= e.t_ns < starts[k]]
        rows, mask = history_rows(window, starts[k - 1], WIN)
        np.testing.assert_array_equal(ctx["history"][r], rows)
        np.testing.assert_array_equal(ctx["history_mask"][r], mask)
    # nothing of tick t's own window is in its row: window 14's events would be 2 (14 % 4)
    assert ctx["history_mask"][T - 1].sum() == 13 % 4
    # memory stays bounded: only events from start(t-T) on are kept
    assert min(e.t_ns for e in buf.events()) >= starts[14 - T]


def test_padding_before_t_ticks():
    buf, mean, std = _buffer()
    buf.push_tick(0, np.ones(F, np.float32))
    buf.add_event(Event.make(50 * MS, 400, 300, button=1))
    ctx = buf.context()
    assert not ctx["gamestate"][: T - 1].any()  # padding: the mean (0 after normalising)
    assert not ctx["history_mask"].any()  # window before the first tick unknown; own window not yet history
    buf.push_tick(600 * MS, np.ones(F, np.float32))
    ctx = buf.context()
    assert ctx["history_mask"][T - 1].sum() == 1 and ctx["history_mask"][: T - 1].sum() == 0
    row = ctx["history"][T - 1, 0]
    assert row[H["dt_ms"]] == pytest.approx(50.0)
    assert row[H["x"]] == pytest.approx(0.5) and row[H["y"]] == pytest.approx(0.5)
    assert row[H["type"]] == EventType.CLICK


def test_out_of_order_and_late_events():
    buf, _, _ = _buffer(ticks=2)
    for i in range(4):  # keeps the starts of the last 3 ticks: 600, 1200, 1800 ms
        buf.push_tick(i * 600 * MS, np.zeros(F))
    buf.add_event(Event.make(1900 * MS, 1, 1))  # scheduled first, due later
    buf.add_event(Event.make(1850 * MS, 2, 2))  # a listener event arriving after it
    assert [e.x for e in buf.events()] == [2, 1]
    buf.add_event(Event.make(10 * MS, 3, 3))  # older than every kept window
    assert buf.counters["late_events"] == 1
    assert buf.discard_after(1860 * MS) == 1
    assert [e.x for e in buf.events()] == [2]


def test_bad_features_are_zeroed_and_counted():
    buf, _, _ = _buffer()
    f = np.zeros(F, np.float32)
    f[3], f[7] = np.nan, np.inf
    buf.push_tick(0, f)
    ctx = buf.context()
    assert np.isfinite(ctx["gamestate"]).all() and ctx["gamestate"][T - 1, 3] == 0
    assert buf.counters["bad_features"] == 2


def test_rejects_wrong_shapes_and_time_going_back():
    buf, _, _ = _buffer()
    with pytest.raises(ValueError, match="features"):
        buf.push_tick(0, np.zeros(F + 1))
    buf.push_tick(10, np.zeros(F))
    with pytest.raises(ValueError, match="before the previous"):
        buf.push_tick(5, np.zeros(F))
    with pytest.raises(ValueError, match="mean/std"):
        ContextBuffer(np.zeros(3), np.zeros(4), WIN)


def test_overflowing_window_keeps_the_last_slots():
    buf, _, _ = _buffer(slots=4)
    buf.push_tick(0, np.zeros(F))
    for j in range(7):
        buf.add_event(Event.make((10 + j) * MS, j, 0))
    buf.push_tick(600 * MS, np.zeros(F))
    row = buf.context()["history"][T - 1]
    assert list(row[:, H["x"]] * WIN[0]) == pytest.approx([3, 4, 5, 6])
