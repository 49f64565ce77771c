"""Slot metrics (ilbot.eval.metrics) on hand-made slots with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ilbot.eval.metrics import Prediction, compute_metrics, confusion_matrix, event_metrics, pinball, wasserstein_1d
from ilbot.eval.slots import Slots


def slots(types, dt=None, x=None, y=None, lookahead=None, **extra) -> Slots:
    n = len(types)
    z = np.zeros(n)
    zi = np.zeros(n, np.int64)
    return Slots(type=np.asarray(types, np.int64), dt=np.asarray(dt if dt is not None else z, float),
                 x=np.asarray(x if x is not None else z, float), y=np.asarray(y if y is not None else z, float),
                 w=np.full(n, 100.0), h=np.full(n, 50.0), button=extra.get("button", zi), key_action=extra.get("key_action", zi),
                 key_id=extra.get("key_id", zi), scroll=extra.get("scroll", zi),
                 lookahead=np.asarray(lookahead if lookahead is not None else np.zeros(n, bool)), slot=zi, window=zi,
                 user=np.full(n, -1), prev_type=np.full(n, 4), prev_x=z, prev_y=z)


def one_hot(classes):
    out = np.zeros((len(classes), 4))
    out[np.arange(len(classes)), classes] = 1
    return out


def test_event_metrics_known_values():
    true = np.array([3, 3, 3, 3, 0, 0, 2, 2])
    pred = np.array([3, 3, 3, 0, 0, 3, 2, 3])
    m = event_metrics(true, pred)
    assert m["event_accuracy"] == pytest.approx(5 / 8)
    # per class: CLICK p=1/2 r=1/2 → F1 .5; SCROLL p=1 r=1/2 → 2/3; MOVE p=3/5 r=3/4 → 2/3; KEY absent → ignored
    assert m["event_macro_f1"] == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
    assert m["event_balanced_accuracy"] == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert m["event_recall"] == {"CLICK": 0.5, "SCROLL": 0.5, "MOVE": 0.75}
    assert m["confusion"][3] == [1, 0, 0, 3] and sum(map(sum, m["confusion"])) == 8
    assert confusion_matrix(np.array([1]), np.array([2]))[1, 2] == 1


def test_a_predicted_absent_class_counts_against_macro_f1():
    m = event_metrics(np.array([3, 3]), np.array([3, 0]))
    assert m["event_macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_time_metrics_pinball_coverage_and_crossing():
    s = slots([3, 3, 3, 3], dt=[10, 20, 30, 100])
    q = np.array([[5, 10, 20], [5, 10, 20], [5, 40, 20], [5, 10, 20]], float)  # row 2 crosses
    m = compute_metrics(s, Prediction(time_q=q))
    assert m["dt_mae_q50_ms"] == pytest.approx((0 + 10 + 10 + 90) / 4)
    assert m["dt_coverage_q10_q90"] == pytest.approx(0.5)  # 10 and 20 inside [5, 20]
    assert m["dt_crossing_rate"] == pytest.approx(0.25)
    assert m["dt_pinball_ms"]["q50"] == pytest.approx(np.mean(pinball(s.dt, q[:, 1], 0.5)))
    assert pinball(np.array([10.0]), np.array([0.0]), 0.9)[0] == pytest.approx(9.0)
    assert pinball(np.array([0.0]), np.array([10.0]), 0.9)[0] == pytest.approx(1.0)
    assert "event_accuracy" not in m and "xy_mae_px" not in m


def test_xy_metrics_in_pixels_nll_and_coverage():
    s = slots([3, 3], x=[0.5, 0.5], y=[0.5, 0.5])
    p = Prediction(x_mu=np.array([0.53, 0.5]), y_mu=np.array([0.58, 0.5]), x_sigma=np.array([0.01, 0.01]),
                   y_sigma=np.array([0.1, 0.1]))
    m = compute_metrics(s, p)
    assert m["x_mae_px"] == pytest.approx(1.5)  # 0.03 × 100 px / 2 slots
    assert m["y_mae_px"] == pytest.approx(2.0)  # 0.08 × 50 px / 2
    assert m["xy_mae_px"] == pytest.approx(5.0 / 2)  # hypot(3, 4) = 5 for the first slot
    assert m["x_coverage_1sigma"] == 0.5 and m["y_coverage_1sigma"] == 1.0
    assert m["x_coverage_2sigma"] == 0.5 and m["y_coverage_2sigma"] == 1.0
    nll0 = math.log(2 * math.pi) + math.log(0.01) + math.log(0.1) + 0.5 * (3.0 ** 2 + 0.8 ** 2)
    nll1 = math.log(2 * math.pi) + math.log(0.01) + math.log(0.1)
    assert m["xy_nll"] == pytest.approx((nll0 + nll1) / 2)


def test_conditional_heads_score_only_their_event_type():
    s = slots([0, 0, 1, 2, 3], button=np.array([1, 2, 0, 0, 0]), key_action=np.array([0, 0, 1, 0, 0]),
              key_id=np.array([0, 0, 7, 0, 0]), scroll=np.array([0, 0, 0, 2, 0]))
    p = Prediction(event_probs=one_hot([0, 0, 1, 2, 3]), button=np.array([1, 1, 1, 1, 1]), key_action=np.array([1] * 5),
                   key_id=np.array([3] * 5), scroll=np.array([2] * 5))
    m = compute_metrics(s, p)
    assert m["button_acc"] == 0.5 and m["key_action_acc"] == 1.0 and m["key_id_acc"] == 0.0 and m["scroll_acc"] == 1.0
    assert m["event_accuracy"] == 1.0
    assert "scroll_acc" not in compute_metrics(slots([3]), Prediction(scroll=np.array([1])))
    assert compute_metrics(slots([]), p) == {}


def test_prediction_select_and_concat():
    p = Prediction(time_q=np.arange(6.0).reshape(2, 3))
    both = Prediction.concat([p, p.select(np.array([False, True]))])
    assert both.time_q.shape == (3, 3) and both.event_probs is None


def test_wasserstein_matches_known_distances():
    assert wasserstein_1d([0, 0, 0], [1, 1, 1]) == pytest.approx(1.0)
    assert wasserstein_1d([0, 1, 3], [0, 1, 3]) == pytest.approx(0.0)
    assert wasserstein_1d([0, 10], [5]) == pytest.approx(5.0)
    assert math.isnan(wasserstein_1d([], [1.0]))
