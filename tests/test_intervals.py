"""Session-bootstrap intervals of the model's figures (ilbot.eval.intervals), on hand-made slots
whose between-session spread is known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ilbot.eval.intervals import mean_terms, session_bootstrap, units
from ilbot.eval.metrics import Prediction, compute_metrics, confusion_matrix, event_metrics, macro_f1
from ilbot.eval.slots import Slots


def make(per_session: list[int], covered_share: list[float], seed: int = 0):
    """Slots of sessions with given sizes; in session i a share covered_share[i] of the points lies
    inside ±1σ in x and y, and the same share of types is predicted right."""
    rng = np.random.default_rng(seed)
    parts, preds = [], []
    for i, (n, share) in enumerate(zip(per_session, covered_share)):
        inside = np.arange(n) < round(share * n)
        z = np.where(inside, 0.5, 2.0) * rng.choice([-1, 1], n)  # |z| 0.5 inside, 2 outside
        types = rng.choice([0, 2, 3], n, p=[0.1, 0.1, 0.8])
        decided = np.where(inside, types, (types + 1) % 4)
        probs = np.eye(4)[decided]
        parts.append(Slots(type=types, dt=rng.uniform(0, 100, n), x=0.5 + 0.01 * z, y=0.5 + 0.01 * z,
                           w=np.full(n, 100.0), h=np.full(n, 100.0), button=np.zeros(n, np.int64),
                           key_action=np.zeros(n, np.int64), key_id=np.zeros(n, np.int64), scroll=np.zeros(n, np.int64),
                           lookahead=np.zeros(n, bool), slot=np.zeros(n, np.int64), window=np.arange(n) + 1000 * i,
                           user=np.zeros(n, np.int64), prev_type=np.full(n, 3), prev_x=np.full(n, 0.5),
                           prev_y=np.full(n, 0.5), session=np.full(n, i, np.int64)))
        preds.append(Prediction(event_probs=probs, time_q=np.tile([10.0, 50.0, 90.0], (n, 1)), x_mu=np.full(n, 0.5),
                                y_mu=np.full(n, 0.5), x_sigma=np.full(n, 0.01), y_sigma=np.full(n, 0.01)))
    return Slots.concat(parts), Prediction.concat(preds)


def test_identical_sessions_give_a_point_and_differing_ones_an_interval_around_the_figure():
    s, p = make([200] * 12, [0.7] * 12)
    iv = session_bootstrap(s, p)
    assert (iv["unit"], iv["n_units"], iv["level"], iv["resamples"]) == ("session", 12, 0.9, 1000)
    for key in ("x_coverage_1sigma", "y_coverage_1sigma", "event_accuracy"):
        assert iv["figures"][key] == pytest.approx([0.7, 0.7])
    s, p = make([200] * 12, [0.5, 0.9] * 6)
    figure = compute_metrics(s, p)["x_coverage_1sigma"]
    lo, hi = session_bootstrap(s, p)["figures"]["x_coverage_1sigma"]
    assert figure == pytest.approx(0.7) and lo < 0.66 < 0.74 < hi and lo < figure < hi
    # the spread of a mean of 12 sessions, half at 0.5 and half at 0.9: sd 0.2/√12 ≈ 0.058, so the
    # 90 % interval is about ±1.645·0.058 ≈ ±0.095
    assert hi - lo == pytest.approx(2 * 1.645 * 0.2 / np.sqrt(12), rel=0.2)


def test_more_sessions_narrow_the_interval():
    widths = []
    for n_sessions in (6, 24, 96):
        s, p = make([100] * n_sessions, [0.5, 0.9] * (n_sessions // 2))
        lo, hi = session_bootstrap(s, p)["figures"]["x_coverage_1sigma"]
        widths.append(hi - lo)
    assert widths[0] > 1.5 * widths[1] > 2.25 * widths[2]


def test_a_large_session_weighs_by_its_slots_as_the_pooled_figure_does():
    s, p = make([2000, 100, 100, 100, 100], [0.9, 0.5, 0.5, 0.5, 0.5])
    figure = compute_metrics(s, p)["x_coverage_1sigma"]  # pooled over slots: (1800 + 200) / 2400
    assert figure == pytest.approx(2000 / 2400)
    lo, hi = session_bootstrap(s, p)["figures"]["x_coverage_1sigma"]
    assert lo < figure < hi and hi <= 0.9 + 1e-12 and lo >= 0.5 - 1e-12


def test_mean_terms_and_confusions_reproduce_the_report_figures():
    s, p = make([50, 80, 120], [0.3, 0.6, 0.9], seed=3)
    markov = dataclasses.replace(p, event_probs=np.eye(4)[np.full(len(s), 3)])
    m = compute_metrics(s, p)
    terms = mean_terms(s, p, markov)
    for key in ("event_accuracy", "dt_mae_q50_ms", "dt_coverage_q10_q90", "xy_mae_px", "x_coverage_1sigma",
                "y_coverage_1sigma"):
        assert terms[key].mean() == pytest.approx(m[key])
    assert terms["event_accuracy_lead_markov"].mean() == pytest.approx(
        m["event_accuracy"] - compute_metrics(s, markov)["event_accuracy"])
    assert float(macro_f1(confusion_matrix(s.type, np.argmax(p.event_probs, 1)))) == pytest.approx(m["event_macro_f1"])


def test_batched_macro_f1_matches_event_metrics():
    rng = np.random.default_rng(1)
    cms, want = [], []
    for _ in range(20):
        t, q = rng.choice(4, 60, p=[0.2, 0.0, 0.1, 0.7]), rng.choice(4, 60, p=[0.1, 0.1, 0.1, 0.7])
        cms.append(confusion_matrix(t, q))
        want.append(event_metrics(t, q)["event_macro_f1"])
    assert macro_f1(np.stack(cms)) == pytest.approx(want)
    assert float(macro_f1(np.zeros((4, 4)))) == 0.0


def test_lead_over_itself_is_zero_and_a_spread_lead_straddles_it():
    s, p = make([100] * 10, [0.5, 0.9] * 5)
    assert session_bootstrap(s, p, p)["figures"]["event_accuracy_lead_markov"] == [0.0, 0.0]
    rival = dataclasses.replace(p, event_probs=np.eye(4)[np.where(s.session % 2 == 0, s.type, (s.type + 1) % 4)])
    lo, hi = session_bootstrap(s, p, rival)["figures"]["event_accuracy_lead_markov"]
    assert lo < 0 < hi  # ahead on half the sessions, behind on the other half


def test_unknown_sessions_resample_windows_and_one_session_has_no_interval():
    s, p = make([30, 30], [0.5, 0.9])
    unknown = dataclasses.replace(s, session=np.full(len(s), -1, np.int64))
    iv = session_bootstrap(unknown, p)
    assert (iv["unit"], iv["n_units"]) == ("window", 60) and iv["figures"]
    assert len(np.unique(units(dataclasses.replace(s, session=None)))) == 60
    one = s.select(s.session == 0)
    iv = session_bootstrap(one, p.select(s.session == 0))
    assert (iv["n_units"], iv["figures"]) == (1, {})


def test_the_resamples_are_seeded():
    s, p = make([100] * 8, [0.4, 0.9] * 4)
    assert session_bootstrap(s, p, seed=5) == session_bootstrap(s, p, seed=5)
    assert session_bootstrap(s, p, seed=5)["figures"] != session_bootstrap(s, p, seed=6)["figures"]


def test_resamples_drawn_in_chunks_give_the_same_intervals(monkeypatch):
    import ilbot.eval.intervals as iv

    s, p = make([40] * 30, [0.3, 0.6, 0.9] * 10)
    whole = session_bootstrap(s, p, p)
    monkeypatch.setattr(iv, "CHUNK_ENTRIES", 7 * 30)  # 7 resamples at a time
    chunked = session_bootstrap(s, p, p)
    assert chunked["figures"].keys() == whole["figures"].keys()
    for name, (lo, hi) in whole["figures"].items():  # the same draws, summed in another order
        assert chunked["figures"][name] == pytest.approx([lo, hi], abs=1e-12)
