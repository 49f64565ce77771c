"""The baselines of DESIGN §10 (and last_click) and the slot extraction they condition on."""

from __future__ import annotations

import numpy as np
import pytest

from ilbot.data.encoding import history_rows, target_rows
from ilbot.data.schema import A, T, Event
from ilbot.eval.baselines import DtQuantiles, LastClick, Majority, Markov, PreviousPosition, fit_baselines
from ilbot.eval.slots import NO_PREV, extract_slots, last_history_event, target_types

MS = 1_000_000
W, H = 200.0, 100.0


def window(history_ticks: list[list[Event]], tick_events: list[Event], lookahead: Event, start_ns: int, user: int = 3) -> dict:
    """One window (DESIGN §5) built with the shared encoders; tick length 600 ms."""
    hist = np.zeros((T, A, 8), np.float32)
    hmask = np.zeros((T, A), bool)
    for k, evs in enumerate(history_ticks):  # the last entries are the nearest ticks
        t = T - len(history_ticks) + k
        hist[t], hmask[t] = history_rows(evs, start_ns - (len(history_ticks) - k) * 600 * MS, (W, H))
    tg, tmask, _ = target_rows(tick_events, lookahead, start_ns, (W, H))
    return {"gamestate": np.zeros((T, 128), np.float32), "history": hist, "history_mask": hmask, "targets": tg,
            "target_mask": tmask, "window_size": np.array([W, H], np.float32), "user": user}


def stack(windows: list[dict]) -> dict:
    return {k: np.stack([w[k] for w in windows]) for k in windows[0]}


def move(t_ms, x, y):
    return Event.make(int(t_ms * MS), x, y)


def click(t_ms, x, y):
    return Event.make(int(t_ms * MS), x, y, button=1)


def scroll(t_ms, x, y):
    return Event.make(int(t_ms * MS), x, y, scroll_y=2)


def test_extract_slots_previous_event_kind_and_pixels():
    # history: tick t-2 holds a click at (20, 10); tick t-1 is idle; tick t: move, move; look-ahead: a scroll
    w = window([[click(1250, 20, 10)], []], [move(1830, 40, 20), move(1900, 60, 30)], scroll(2500, 60, 30), 1800 * MS)
    idle = window([[move(1250, 100, 50)]], [], click(2600, 10, 10), 1800 * MS, user=4)
    s = extract_slots(stack([w, idle]))
    assert len(s) == 4
    assert s.type.tolist() == [3, 3, 2, 0]
    assert s.lookahead.tolist() == [False, False, True, True]
    assert s.prev_type.tolist() == [0, 3, 3, 3]  # slot 0 follows the history's last event (the click two ticks back)
    assert s.prev_x[0] == pytest.approx(20 / W) and s.prev_y[0] == pytest.approx(10 / H)
    assert s.prev_x[2] == pytest.approx(60 / W)
    assert s.dt.tolist() == pytest.approx([30.0, 70.0, 600.0, 800.0])
    assert s.window.tolist() == [0, 0, 0, 1] and s.user.tolist() == [3, 3, 3, 4]
    assert s.w.tolist() == [W] * 4


def test_empty_history_has_no_previous_event():
    w = window([], [move(30, 50, 50)], move(700, 50, 50), 0)
    rows, has = last_history_event(w["history"][None], w["history_mask"][None])
    assert not has[0]
    s = extract_slots(stack([w]))
    assert s.prev_type[0] == NO_PREV and s.prev_x[0] == 0.5


def test_target_types_follow_the_derivation_rule():
    tg = np.zeros((4, 7), np.float32)
    tg[0, 3] = 1  # button → CLICK
    tg[1, 4] = 2  # key_action → KEY
    tg[2, 6] = 1  # scroll → SCROLL
    assert target_types(tg).tolist() == [0, 1, 2, 3]


@pytest.fixture
def train_slots():
    """Moves come in runs ended by a click (MOVE→MOVE 3/4 of the time, MOVE→CLICK 1/4)."""
    ws = []
    for i in range(20):
        t0 = 600 * (i + 1)
        evs = [move(t0 + 10, 10, 10), move(t0 + 30, 20, 10), move(t0 + 60, 30, 10), click(t0 + 100, 30, 10)]
        ws.append(window([[move(t0 - 300, 10, 10)]], evs, move(t0 + 1600, 30, 10), t0 * MS))
    return extract_slots(stack(ws))


def test_majority_and_markov(train_slots):
    maj = Majority().fit(train_slots)
    p = maj.predict(train_slots)
    assert (p.event_probs.argmax(1) == 3).all() and (p.button == 1).all()
    assert p.event_probs[0].tolist() == pytest.approx([0.2, 0.0, 0.0, 0.8])  # the training type frequencies
    mk = Markov().fit(train_slots)
    assert mk.table[3].argmax() == 3 and mk.table[0].argmax() == 3  # after a click comes the look-ahead move
    assert mk.table[NO_PREV].sum() == pytest.approx(1.0)  # unseen row → overall distribution
    probs = mk.predict(train_slots).event_probs
    assert probs.shape == (len(train_slots), 4)
    after_move = train_slots.prev_type == 3
    assert probs[after_move][0].tolist() == pytest.approx([0.25, 0.0, 0.0, 0.75])  # the table's row, not one-hot


def test_dt_quantiles_per_kind_and_previous_type(train_slots):
    dq = DtQuantiles().fit(train_slots)
    q = dq.predict(train_slots).time_q
    look = train_slots.lookahead
    assert np.allclose(q[look], dq.table[1, 0])  # look-ahead after a click: always 1500 ms
    assert q[look][0, 1] == pytest.approx(1500.0)
    in_move = ~look & (train_slots.prev_type == 3)
    assert set(np.round(q[in_move][:, 1], 3)) == {float(np.median(train_slots.dt[in_move]))}
    assert (q[:, 0] <= q[:, 1]).all() and (q[:, 1] <= q[:, 2]).all()


def test_previous_position_sigma_is_rms_residual(train_slots):
    pp = PreviousPosition().fit(train_slots)
    p = pp.predict(train_slots)
    assert np.allclose(p.x_mu, train_slots.prev_x)
    inw = ~train_slots.lookahead
    rms = np.sqrt(np.mean((train_slots.x[inw] - train_slots.prev_x[inw]) ** 2))
    assert p.x_sigma[inw][0] == pytest.approx(rms)
    assert p.y_sigma[train_slots.lookahead][0] == pytest.approx(1e-4)  # no y movement at all → the floor


def test_last_click_position_from_history_and_earlier_slots():
    # history: a click at (20, 10), then a move at (100, 50); tick: move, click at (60, 30), move; look-ahead: move
    w = window([[click(650, 20, 10)], [move(1250, 100, 50)]],
               [move(1830, 40, 20), click(1900, 60, 30), move(1950, 80, 40)], move(2500, 90, 45), 1800 * MS)
    plain = window([[move(1250, 100, 50)]], [move(1830, 50, 50)], move(2500, 50, 50), 1800 * MS, user=4)  # no click
    s = extract_slots(stack([w, plain]))
    assert s.has_click.tolist() == [True, True, True, True, False, False]
    assert s.click_x[:4] * W == pytest.approx([20, 20, 60, 60])  # slot 1 is the click itself: the one before it counts
    assert s.click_y[:4] * H == pytest.approx([10, 10, 30, 30])
    assert s.click_x[4:] * W == pytest.approx([100, 50]) and np.allclose(s.click_x[4:], s.prev_x[4:])  # none: previous
    lc = LastClick().fit(s)
    p = lc.predict(s)
    assert np.allclose(p.x_mu, s.click_x) and np.allclose(p.y_mu, s.click_y)
    look = s.lookahead
    rms_x = np.sqrt(np.mean((s.x[look] - s.click_x[look]) ** 2))  # (90 − 60) px and (50 − 50) px
    assert p.x_sigma[look][0] == pytest.approx(rms_x) and rms_x == pytest.approx(np.sqrt((30 / W) ** 2 / 2))
    # slots without the click columns fall back to the previous position
    bare = s.select(np.ones(len(s), bool))
    bare.click_x = bare.click_y = bare.has_click = None
    assert np.allclose(LastClick().fit(bare).predict(bare).x_mu, s.prev_x)


def test_fit_baselines_returns_all_in_report_order(train_slots):
    assert list(fit_baselines(train_slots)) == ["majority", "markov", "dt_quantiles", "previous_position", "last_click"]
