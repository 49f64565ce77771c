"""Proper scores (ilbot.eval.scores) against closed forms, hand-computed values, numerical
integrals and Monte-Carlo estimates; PIT uniformity for draws from the predicted distribution."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ilbot.data.dataset import open_dataset
from ilbot.eval.metrics import Prediction, pinball
from ilbot.eval.report import model_prediction, read_windows
from ilbot.eval.scores import (dt_pit, dt_wis, event_brier, laplace_mixture_crps, pit_histogram, position_cdf,
                               position_crps, proper_scores, reliability)
from ilbot.eval.slots import Slots, extract_slots
from ilbot.model.checkpoint import load_checkpoint
from ilbot.model.sampling import LAPLACE_K, time_inverse_cdf

ASSETS = Path(__file__).resolve().parents[1] / "ilbot" / "sandbox" / "assets"


def slots(x, y=None, dt=None, types=None, w=100.0, h=50.0) -> Slots:
    n = len(x)
    z = np.zeros(n)
    zi = np.zeros(n, np.int64)
    return Slots(type=np.asarray(types if types is not None else np.full(n, 3), np.int64),
                 dt=np.asarray(dt if dt is not None else z, float), x=np.asarray(x, float),
                 y=np.asarray(y if y is not None else x, float), w=np.full(n, w), h=np.full(n, h), button=zi,
                 key_action=zi, key_id=zi, scroll=zi, lookahead=np.zeros(n, bool), slot=zi, window=zi,
                 user=np.full(n, -1), prev_type=np.full(n, 4), prev_x=z, prev_y=z)


def gauss(mu, sigma, laplace=False, **mix) -> Prediction:
    mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)
    return Prediction(x_mu=mu, y_mu=mu, x_sigma=sigma, y_sigma=sigma, xy_laplace=laplace, **mix)


def crps_by_integral(obs: float, p: Prediction, lo: float, hi: float, n: int = 200_001) -> float:
    """∫ (F(t) − 1[t ≥ obs])² dt on a fine grid, F from position_cdf."""
    t = np.linspace(lo, hi, n)
    f = position_cdf(t, Prediction(**{k: (v if v is None or isinstance(v, bool) else np.repeat(v[:1], n, axis=0))
                                       for k, v in p.__dict__.items()}), "x")
    g = (f - (t >= obs)) ** 2
    return float(np.sum(0.5 * (g[1:] + g[:-1]) * np.diff(t)))  # trapezoid rule


def mixture(laplace: bool) -> Prediction:
    w = np.array([[0.2, 0.5, 0.3]])
    m = np.array([[-1.0, 0.5, 3.0]])
    return gauss([0.5], [0.8], laplace=laplace, mix_w=w, mix_x=m, mix_y=m)


def draw(p: Prediction, n: int, rng) -> np.ndarray:
    """n draws of x from a one-row prediction (mixture or not)."""
    w = p.mix_w[0] if p.mix_w is not None else np.array([1.0])
    m = p.mix_x[0] if p.mix_w is not None else p.x_mu[:1]
    comp = rng.choice(len(w), size=n, p=w)
    sigma = p.x_sigma[0]
    noise = rng.laplace(0.0, sigma / LAPLACE_K, n) if p.xy_laplace else rng.normal(0.0, sigma, n)
    return m[comp] + noise


def test_crps_of_a_normal_and_a_laplace_match_their_closed_forms():
    sigma = 2.0
    at_mean = position_crps(np.array([1.0]), gauss([1.0], [sigma]), "x")[0]
    assert at_mean == pytest.approx(sigma * (math.sqrt(2) - 1) / math.sqrt(math.pi))
    # off the mean: σ·(z(2Φ(z) − 1) + 2φ(z) − 1/√π) at z = 1
    phi, Phi = math.exp(-0.5) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    off = position_crps(np.array([3.0]), gauss([1.0], [sigma]), "x")[0]
    assert off == pytest.approx(sigma * ((2 * Phi - 1) + 2 * phi - 1 / math.sqrt(math.pi)))
    # Laplace with σ = K·b: b/4 at the location, |d| + b·e^{−|d|/b} − 3b/4 elsewhere
    b = sigma / LAPLACE_K
    assert position_crps(np.array([1.0]), gauss([1.0], [sigma], laplace=True), "x")[0] == pytest.approx(b / 4)
    assert position_crps(np.array([2.0]), gauss([1.0], [sigma], laplace=True), "x")[0] == pytest.approx(
        1.0 + b * math.exp(-1.0 / b) - 0.75 * b)


@pytest.mark.parametrize("laplace", [False, True])
def test_mixture_crps_matches_the_integral_of_its_cdf_and_monte_carlo(laplace):
    p = mixture(laplace)
    obs = np.array([0.9])
    got = position_crps(obs, p, "x")[0]
    assert got == pytest.approx(crps_by_integral(0.9, p, -15.0, 18.0), rel=1e-4)
    rng = np.random.default_rng(1)
    x1, x2 = draw(p, 400_000, rng), draw(p, 400_000, rng)
    mc = np.mean(np.abs(x1 - obs[0])) - 0.5 * np.mean(np.abs(x1 - x2))  # E|X − y| − ½E|X − X'|
    assert got == pytest.approx(mc, abs=0.01)
    # one component: the library's single-distribution form
    one = gauss([0.5], [0.8], laplace=laplace, mix_w=np.ones((1, 1)), mix_x=np.array([[0.5]]), mix_y=np.array([[0.5]]))
    assert position_crps(obs, one, "x")[0] == pytest.approx(position_crps(obs, gauss([0.5], [0.8], laplace=laplace), "x")[0])


def test_laplace_mixture_far_apart_components_and_zero_weights():
    # a component with weight 0 (an invalid anchor) changes nothing
    obs = np.array([0.3, -2.0])
    mu = np.array([[0.0, 50.0], [0.0, 50.0]])
    b = np.array([1.0, 0.5])
    one = laplace_mixture_crps(obs, mu[:, :1], b, np.ones((2, 1)))
    assert laplace_mixture_crps(obs, mu, b, np.array([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx(one)
    assert np.isfinite(laplace_mixture_crps(obs, mu, b, np.full((2, 2), 0.5))).all()


@pytest.mark.parametrize("laplace", [False, True])
def test_position_pit_is_uniform_for_draws_from_the_prediction(laplace):
    rng = np.random.default_rng(2)
    for p in (mixture(laplace), gauss([0.5], [0.8], laplace=laplace)):
        x = draw(p, 20_000, rng)
        rows = Prediction(**{k: (v if v is None or isinstance(v, bool) else np.repeat(v[:1], len(x), axis=0))
                             for k, v in p.__dict__.items()})
        u = np.sort(position_cdf(x, rows, "x"))
        assert np.max(np.abs(u - (np.arange(len(u)) + 0.5) / len(u))) < 0.015  # KS distance
        hist = np.array(pit_histogram(u))
        assert hist.sum() == pytest.approx(len(x)) and np.abs(hist - 2000).max() < 250
    # a biased prediction is not: most of its PIT mass in the top bins
    x = draw(gauss([0.5], [0.8], laplace=laplace), 5000, rng)
    biased = gauss(np.full(5000, -1.0), np.full(5000, 0.8), laplace=laplace)
    assert sum(pit_histogram(position_cdf(x, biased, "x"))[7:]) > 0.6 * 5000


def test_dt_pit_inverts_the_planners_time_distribution():
    rng = np.random.default_rng(3)
    n = 5000
    q = np.stack([rng.uniform(5, 30, n), rng.uniform(40, 200, n), rng.uniform(300, 3000, n)], axis=1)
    u = rng.uniform(0.001, 0.999, n)
    dt = time_inverse_cdf(q, u)
    lo, hi = dt_pit(dt, q)
    assert np.allclose(lo, u, atol=1e-9) and np.allclose(hi, u, atol=1e-9)
    # beyond the bounded tails: 0 and 1
    lo, hi = dt_pit(np.array([0.0, 1e7]), q[:2])
    assert lo.tolist() == [0.0, 1.0] and hi.tolist() == [0.0, 1.0]


def test_dt_pit_spreads_an_atom_over_its_bins():
    # q10 = q50 = 20 ms: the lower tail (whose slope is the q10→q50 segment's) and that segment
    # collapse onto 20 ms, an atom of 0.5, so a 20 ms observation's PIT is [0, 0.5]
    q = np.array([[20.0, 20.0, 100.0]])
    lo, hi = dt_pit(np.array([20.0, 19.0, 21.0]), np.repeat(q, 3, axis=0))
    assert lo[0] == 0.0 and hi[0] == pytest.approx(0.5)
    assert lo[1] == hi[1] == 0.0 and 0.5 < lo[2] == hi[2] < 0.9
    assert pit_histogram(lo[:1], hi[:1]) == pytest.approx([0.2] * 5 + [0] * 5)
    # draws from a distribution with atoms (q10 = 0: the floor makes u < 0.1 all 0 ms) give a flat histogram
    rng = np.random.default_rng(4)
    n = 20_000
    qs = np.tile([[0.0, 30.0, 300.0]], (n, 1))
    dt = time_inverse_cdf(qs, rng.uniform(0, 1, n))
    hist = np.array(pit_histogram(*dt_pit(dt, qs)))
    assert hist.sum() == pytest.approx(n) and np.abs(hist - n / 10).max() < 250


def test_pit_histogram_points_and_intervals():
    assert pit_histogram(np.array([0.05, 0.95, 1.0, 0.0])) == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert pit_histogram(np.array([0.0]), np.array([0.2])) == pytest.approx([0.5, 0.5] + [0] * 8)


def test_wis_hand_example_and_its_pinball_identity():
    q = np.array([[10.0, 20.0, 40.0], [10.0, 20.0, 40.0], [40.0, 20.0, 10.0]])  # the last row crossed
    dt = np.array([50.0, 15.0, 15.0])
    wis, interval = dt_wis(dt, q)
    # above: IS = 30 + (2/0.2)·10 = 130, WIS = (½·30 + 0.1·130)/1.5; inside: IS = 30, WIS = (½·5 + 3)/1.5
    assert interval[:2] == pytest.approx([130.0, 30.0])
    assert wis[:2] == pytest.approx([28.0 / 1.5, 5.5 / 1.5])
    assert wis[2] == pytest.approx(wis[1])  # crossed quantiles are put in order
    ordered = np.sort(q, axis=1)
    pin = sum(pinball(dt, ordered[:, i], lv) for i, lv in enumerate((0.1, 0.5, 0.9)))
    assert wis == pytest.approx(pin / 1.5)


def test_event_brier_and_reliability_hand_values():
    probs = np.array([[0.8, 0.2, 0.0, 0.0], [0.6, 0.4, 0.0, 0.0]])
    types = np.array([0, 1])
    assert event_brier(types, probs).tolist() == pytest.approx([0.08, 0.72])
    ece, table = reliability(probs.max(axis=1), probs.argmax(axis=1) == types)
    assert ece == pytest.approx(0.5 * 0.2 + 0.5 * 0.6)
    assert table["count"][8] == 1 and table["observed"][6] == 0.0 and table["predicted"][0] is None
    out = proper_scores(slots([0.5, 0.5], types=types), Prediction(event_probs=probs))
    assert out["event_brier"] == pytest.approx(0.4) and out["event_ece"] == pytest.approx(0.4)
    # classwise: CLICK p = (.8, .6) vs (1, 0) → |1 − .8|/2 + |0 − .6|/2; KEY p = (.2, .4) vs (0, 1) → .1 + .3
    assert out["event_classwise_ece"] == pytest.approx(0.4)
    assert set(out["event_reliability"]["per_class"]) == {"CLICK", "KEY"}


def test_proper_scores_in_pixels_with_a_mixture():
    m = np.array([[0.4, 0.6], [0.4, 0.6]])
    p = Prediction(x_mu=np.array([0.4, 0.4]), y_mu=np.array([0.4, 0.4]), x_sigma=np.array([0.05, 0.05]),
                   y_sigma=np.array([0.1, 0.1]), mix_w=np.array([[0.5, 0.5], [0.9, 0.1]]), mix_x=m, mix_y=m,
                   time_q=np.array([[10.0, 20.0, 40.0], [10.0, 20.0, 40.0]]))
    s = slots([0.45, 0.6], dt=[50.0, 15.0], w=200.0, h=80.0)
    out = proper_scores(s, p)
    assert out["x_crps_px"] == pytest.approx(200.0 * position_crps(s.x, p, "x").mean())
    assert out["y_crps_px"] == pytest.approx(80.0 * position_crps(s.y, p, "y").mean())
    assert out["dt_wis_ms"] == pytest.approx((28.0 / 1.5 + 5.5 / 1.5) / 2)
    assert out["dt_interval_score_80_ms"] == pytest.approx(80.0)
    assert {"x_pit_hist", "y_pit_hist", "dt_pit_hist"} <= set(out)
    assert sum(out["x_pit_hist"]) == 2
    assert "x_pit_hist" not in proper_scores(s, p, detail=False) and proper_scores(s.select(np.zeros(2, bool)), p) == {}


def test_the_shipped_anchor_model_is_scored_on_its_whole_mixture():
    model = load_checkpoint(ASSETS / "model").model
    b = read_windows(open_dataset(ASSETS / "dataset", split="val"), np.arange(24))
    s = extract_slots(b)
    p = model_prediction(model, b)
    n_comp = len(model.cfg.anchors) + 1
    assert p.mix_w.shape == p.mix_x.shape == (len(s), n_comp) and np.allclose(p.mix_w.sum(axis=1), 1.0)
    best = p.mix_w.argmax(axis=1)
    assert np.allclose(p.x_mu, p.mix_x[np.arange(len(s)), best]) and np.allclose(p.y_mu, p.mix_y[np.arange(len(s)), best])
    out = proper_scores(s, p)
    assert all(np.isfinite(out[k]) for k in ("x_crps_px", "y_crps_px", "dt_wis_ms", "event_brier"))
    # the mixture's CRPS is not the best component's alone
    alone = Prediction(**{**p.__dict__, "mix_w": None, "mix_x": None, "mix_y": None})
    assert proper_scores(s, alone)["x_crps_px"] != pytest.approx(out["x_crps_px"])
