"""Proper scores of whole predictive distributions, and the calibration views beside them.

The scores come from scoringrules (numpy backend). `proper_scores(slots, prediction, detail)`
returns, for the heads the prediction has, under the names of report.json (lower is better for
every score):

- event: `event_brier`, the multi-class Brier score Σ_k (p_k − 1[type = k])² (the sum of
  scoringrules' binary `brier_score` over the four types; 0 is perfect, 2 the worst);
  `event_ece`, the expected calibration error of the top-1 probability (10 equal-width bins:
  Σ_b n_b/N · |accuracy_b − mean confidence_b|); `event_classwise_ece`, the same for each type
  one-vs-rest (bins of p_k against the share of slots of type k), averaged over the types present
  in the truth;
- time: `dt_wis_ms`, the weighted interval score of (q10, q50, q90) read as the median and the
  central 80 % interval, with the canonical weights: (½|y − q50| + 0.1·IS₀.₂)/1.5, a quantile
  approximation of the CRPS (`dt_wis`); `dt_interval_score_80_ms`, the interval score of
  [q10, q90] alone: width + 10·(distance outside);
- xy: `x_crps_px`, `y_crps_px`, the CRPS of each coordinate's predictive distribution, in pixels
  (the CRPS is equivariant under scaling, so CRPS_px = window width (height) × CRPS in window
  units). The distribution is the one the predictor states: a Gaussian (`crps_normal`) or a
  Laplace with b = σ/LAPLACE_K (`crps_laplace`), or the Laplace scale mixture of
  LaplaceMixXYHead (`laplace_scale_mix_crps` below, closed form); with position anchors the mixture over the
  components (`crps_mixnorm` for Gaussians; `laplace_mixture_crps` below for Laplaces, which
  scoringrules lacks);
- with `detail`, the tables behind the plots: `event_reliability` (top-1 and per type: count,
  mean predicted probability and observed frequency per bin), and `dt_pit_hist`, `x_pit_hist`,
  `y_pit_hist`: PIT histogram counts in 10 equal bins on [0, 1] (flat for a calibrated predictor;
  a U means too narrow, a hump too wide, a slope biased).

PIT of a position: the predictive CDF at the observed coordinate (Gaussian, Laplace or their
mixture; continuous, so one value per slot). PIT of dt: the CDF of the distribution the planner
samples waits from (`ilbot.model.sampling.time_inverse_cdf`): piecewise linear in log1p(ms)
through (0.1, q10), (0.5, q50), (0.9, q90), with bounded tails down to u = 0 at
log1p(q10) − ¼(log1p q50 − log1p q10) (floored at 0 ms) and up to u = 1 at log1p(q90) +
¼(log1p q90 − log1p q50). A quantile head states three quantiles and nothing between them; of the
shapes through them this is the one the agent acts on (linear in the log space the head is trained
in), so its PIT shows the calibration of the waits the agent will draw. An observation beyond the
bounded tails gets PIT 0 or 1: the outer bins show how often the tails are too short. Crossed
quantiles are put in order first (a monotone rearrangement, which never worsens a quantile score),
for the WIS too. Where knots coincide (q10 = q50, or the floor at 0 ms) the distribution has an
atom and the CDF jumps; an observation there has the PIT interval [F(y−), F(y)], spread uniformly
over the bins it covers (the non-randomised PIT of Czado, Gneiting & Held 2009), so dt's counts
can be fractional; they always sum to the number of slots.
"""

from __future__ import annotations

import numpy as np
import scoringrules as sr
from scipy.special import ndtr

from ..data.schema import EVENT_NAMES, N_EVENT_TYPES
from ..model.sampling import LAPLACE_K, QUANTILE_LEVELS, laplace_mix_k
from ..model.xp import sigmoid
from .slots import Slots

N_BINS = 10
INTERVAL_ALPHA = 0.2  # [q10, q90] is the central 1 − 0.2 interval
CHUNK = 1 << 16  # rows per block of the mixture scores ([rows, J, J] temporaries)
BACKEND = "numpy"


# --- positions ---------------------------------------------------------------------------------

def laplace_mixture_crps(obs: np.ndarray, mu: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """CRPS of a mixture of Laplaces that share one scale per row (the model's anchor mixture:
    every component has the head's σ): obs [S], mu [S, J], b [S], w [S, J] (rows sum to 1) → [S].

    Exact closed form from CRPS(F, y) = E|X − y| − ½ E|X − X'|, X, X' ~ F independent. For one
    Laplace(μ, b), E|X − y| = |d| + b·e^{−|d|/b} with d = y − μ. X_i − X_j' is μ_i − μ_j plus the
    difference of two iid Laplace(0, b), whose density is (1 + |z|/b)·e^{−|z|/b}/(4b); so
    E|X_i − X_j'| = |Δ| + (b/2)·e^{−|Δ|/b}·(3 + |Δ|/b) with Δ = μ_i − μ_j. Then
    CRPS = Σ_i w_i E|X_i − y| − ½ Σ_ij w_i w_j E|X_i − X_j'|; with one component it is
    scoringrules' crps_laplace (|d| + b·e^{−|d|/b} − 3b/4)."""
    out = np.empty(len(obs))
    for start in range(0, len(obs), CHUNK):
        sl = slice(start, start + CHUNK)
        y, m, bb, ww = obs[sl], mu[sl], b[sl, None], w[sl]
        d = np.abs(y[:, None] - m)  # [s, J]
        first = np.sum(ww * (d + bb * np.exp(-d / bb)), axis=-1)
        delta = np.abs(m[:, :, None] - m[:, None, :])  # [s, J, J]
        bbb = bb[:, :, None]
        pair = delta + 0.5 * bbb * np.exp(-delta / bbb) * (3.0 + delta / bbb)
        second = np.sum(ww[:, :, None] * ww[:, None, :] * pair, axis=(-1, -2))
        out[sl] = first - 0.5 * second
    return out


def laplace_scale_mix_crps(obs: np.ndarray, mu: np.ndarray, b: np.ndarray, rho: np.ndarray, w: np.ndarray) -> np.ndarray:
    """CRPS of (1 − w)·Laplace(μ, b) + w·Laplace(μ, ρ·b) (LaplaceMixXYHead's marginal), all [S] → [S].

    As above, CRPS = E|X − y| − ½ E|X − X'|, with E|X_i − y| = |d| + b_i·e^{−|d|/b_i}. Two
    independent zero-median Laplaces of scales a, c have E|X − X'| = (a² + ac + c²)/(a + c) (3a/2
    when a = c). With w = 0 this is scoringrules' crps_laplace."""
    d, b2 = np.abs(obs - mu), rho * b
    first = (1.0 - w) * (d + b * np.exp(-d / b)) + w * (d + b2 * np.exp(-d / b2))
    second = ((1.0 - w) ** 2 * 1.5 * b + w ** 2 * 1.5 * b2
              + 2.0 * w * (1.0 - w) * (b * b + b * b2 + b2 * b2) / (b + b2))
    return first - 0.5 * second


def _scale_mix(p, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(b [S], ρ [S], w [S]) of the scale mixture's coordinate `axis`: b = σ/k(w, ρ)."""
    w, rho = sigmoid(p.xy_wide_logit), np.exp(getattr(p, f"{axis}_logrho"))
    return getattr(p, f"{axis}_sigma") / laplace_mix_k(w, rho), rho, w


def _components(p, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means [S, J], scale σ [S], weights [S, J]) of one coordinate's predictive distribution;
    J = 1 without a mixture."""
    sigma = getattr(p, f"{axis}_sigma")
    if p.mix_w is not None:
        return getattr(p, f"mix_{axis}"), sigma, p.mix_w
    mu = getattr(p, f"{axis}_mu")
    return mu[:, None], sigma, np.ones((len(mu), 1))


def position_crps(obs: np.ndarray, p, axis: str) -> np.ndarray:
    """CRPS per slot of coordinate `axis` ("x" or "y") in window units."""
    if p.xy_wide_logit is not None:
        return laplace_scale_mix_crps(obs, getattr(p, f"{axis}_mu"), *_scale_mix(p, axis))
    m, sigma, w = _components(p, axis)
    if p.xy_laplace:
        b = sigma / LAPLACE_K
        if m.shape[1] == 1:
            return np.asarray(sr.crps_laplace(obs, m[:, 0], b, backend=BACKEND))
        return laplace_mixture_crps(obs, m, b, w)
    if m.shape[1] == 1:
        return np.asarray(sr.crps_normal(obs, m[:, 0], sigma, backend=BACKEND))
    out = np.empty(len(obs))
    for start in range(0, len(obs), CHUNK):
        sl = slice(start, start + CHUNK)
        s = np.broadcast_to(sigma[sl, None], m[sl].shape)
        out[sl] = sr.crps_mixnorm(obs[sl], m[sl], s, w[sl], -1, backend=BACKEND)
    return out


def position_cdf(obs: np.ndarray, p, axis: str) -> np.ndarray:
    """The predictive CDF of coordinate `axis` at obs [S] → [S] (the PIT)."""
    if p.xy_wide_logit is not None:  # (1 − w)·F(b) + w·F(ρ·b)
        b, rho, w = _scale_mix(p, axis)
        d = obs - getattr(p, f"{axis}_mu")
        half_tail = lambda scale: 0.5 * np.exp(-np.abs(d) / scale)  # noqa: E731 — a Laplace's mass beyond |d|
        tail = (1.0 - w) * half_tail(b) + w * half_tail(rho * b)
        return np.where(d < 0, tail, 1.0 - tail)
    m, sigma, w = _components(p, axis)
    z = (obs[:, None] - m) / sigma[:, None]  # [S, J] in units of σ
    if p.xy_laplace:
        t = np.exp(-LAPLACE_K * np.abs(z))  # e^{−|y − μ|/b}
        cdf = np.where(z < 0, 0.5 * t, 1.0 - 0.5 * t)
    else:
        cdf = ndtr(z)
    return np.sum(w * cdf, axis=-1)


# --- time ---------------------------------------------------------------------------------------

def ordered_quantiles(time_q: np.ndarray) -> np.ndarray:
    """q10 ≤ q50 ≤ q90 per row (crossed quantiles rearranged)."""
    return np.sort(np.asarray(time_q, np.float64), axis=-1)


def dt_wis(dt: np.ndarray, time_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weighted interval score, interval score of [q10, q90]) per slot, ms.

    WIS = (½·|y − q50| + (α/2)·IS_α(q10, q90))/(1 + ½), Bracher et al. 2021 with K = 1 interval,
    α = 0.2. The interval score is scoringrules' `interval_score`; the median term is added here
    because the library's `weighted_interval_score` on its numpy backend (0.9 to 0.10, and its
    source as of 2026-06) adds w·median instead of w·|y − median| (its numba kernel has it right).
    The result equals (pinball₀.₁ + pinball₀.₅ + pinball₀.₉)/1.5."""
    q = ordered_quantiles(time_q)
    dt = np.asarray(dt, np.float64)
    interval = np.asarray(sr.interval_score(dt, q[:, 0], q[:, 2], INTERVAL_ALPHA, backend=BACKEND)).reshape(-1)
    wis = (0.5 * np.abs(dt - q[:, 1]) + 0.5 * INTERVAL_ALPHA * interval) / 1.5
    return wis, interval


def time_knots(time_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log1p(ms) knots [S, 5], levels [5]) of the planner's time distribution (module docstring)."""
    lq = np.log1p(np.maximum(ordered_quantiles(time_q), 0.0))  # [S, 3]
    l10, l50, l90 = lq[:, 0], lq[:, 1], lq[:, 2]
    l0 = np.maximum(l10 - 0.25 * (l50 - l10), 0.0)
    l100 = l90 + 0.25 * (l90 - l50)
    levels = np.array([0.0, *QUANTILE_LEVELS, 1.0])
    return np.stack([l0, l10, l50, l90, l100], axis=-1), levels


def dt_pit(dt: np.ndarray, time_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F(y−), F(y)) per slot under the planner's time distribution: equal except at an atom."""
    knots, levels = time_knots(time_q)
    y = np.log1p(np.maximum(np.asarray(dt, np.float64), 0.0))
    lo = np.zeros(len(y))
    hi = np.zeros(len(y))
    for k in range(len(levels) - 1):
        a, b = knots[:, k], knots[:, k + 1]
        du = levels[k + 1] - levels[k]
        width = b - a
        ramp = width > 0
        frac = np.clip((y - a) / np.where(ramp, width, 1.0), 0.0, 1.0)
        hi += du * np.where(ramp, frac, y >= a)
        lo += du * np.where(ramp, frac, y > a)
    return lo, hi


def pit_histogram(lo: np.ndarray, hi: np.ndarray | None = None, bins: int = N_BINS) -> list[float]:
    """Counts per equal bin of [0, 1]: a PIT value adds 1 to its bin; a PIT interval [lo, hi]
    adds to each bin the share of the interval inside it."""
    lo = np.clip(np.asarray(lo, np.float64), 0.0, 1.0)
    hi = lo if hi is None else np.clip(np.asarray(hi, np.float64), 0.0, 1.0)
    width = hi - lo
    point = width <= 1e-12
    counts = np.bincount(np.minimum((lo[point] * bins).astype(np.int64), bins - 1), minlength=bins).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    spread_lo, spread_hi, spread_w = lo[~point], hi[~point], width[~point]
    for k in range(bins):
        overlap = np.clip(np.minimum(spread_hi, edges[k + 1]) - np.maximum(spread_lo, edges[k]), 0.0, None)
        counts[k] += float(np.sum(overlap / spread_w))
    return [float(c) for c in counts]


# --- events -------------------------------------------------------------------------------------

def event_brier(types: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Multi-class Brier score per slot: Σ_k brier_score(1[type = k], p_k)."""
    p = np.clip(np.asarray(probs, np.float64), 0.0, 1.0)
    return sum(np.asarray(sr.brier_score((types == k).astype(np.float64), p[:, k], backend=BACKEND))
               for k in range(p.shape[1]))


def reliability(prob: np.ndarray, hit: np.ndarray, bins: int = N_BINS) -> tuple[float, dict]:
    """(ECE, table) of probabilities prob [S] against outcomes hit [S] (bool) in equal-width bins;
    the table lists count, mean predicted probability and observed frequency per bin (None in an
    empty bin)."""
    idx = np.minimum((np.clip(prob, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins)
    conf_sum = np.bincount(idx, weights=prob, minlength=bins)
    hit_sum = np.bincount(idx, weights=hit.astype(np.float64), minlength=bins)
    filled = count > 0
    conf = np.divide(conf_sum, count, out=np.zeros(bins), where=filled)
    freq = np.divide(hit_sum, count, out=np.zeros(bins), where=filled)
    ece = float(np.sum(count[filled] * np.abs(freq[filled] - conf[filled])) / max(len(prob), 1))
    table = {"count": count.tolist(),
             "predicted": [float(c) if f else None for c, f in zip(conf, filled)],
             "observed": [float(o) if f else None for o, f in zip(freq, filled)]}
    return ece, table


def event_scores(types: np.ndarray, probs: np.ndarray, detail: bool) -> dict:
    top = probs.argmax(axis=1)
    ece, top_table = reliability(probs.max(axis=1), top == types)
    per_class, eces = {}, []
    for k in range(N_EVENT_TYPES):
        if not (types == k).any():
            continue
        e, table = reliability(probs[:, k], types == k)
        eces.append(e)
        per_class[EVENT_NAMES[k]] = table
    out = {"event_brier": float(event_brier(types, probs).mean()), "event_ece": ece,
           "event_classwise_ece": float(np.mean(eces)) if eces else 0.0}
    if detail:
        out["event_reliability"] = {"bins": N_BINS, "top1": top_table, "per_class": per_class}
    return out


# --- all ----------------------------------------------------------------------------------------

def proper_scores(s: Slots, p, detail: bool = True) -> dict:
    """Every score the prediction `p` (ilbot.eval.metrics.Prediction) allows on the slots `s`
    (module docstring); {} when there are no slots."""
    if len(s) == 0:
        return {}
    out: dict = {}
    if p.event_probs is not None:
        out.update(event_scores(s.type, np.asarray(p.event_probs, np.float64), detail))
    if p.time_q is not None:
        wis, interval = dt_wis(s.dt, p.time_q)
        out["dt_wis_ms"] = float(wis.mean())
        out["dt_interval_score_80_ms"] = float(interval.mean())
        if detail:
            out["dt_pit_hist"] = pit_histogram(*dt_pit(s.dt, p.time_q))
    if p.x_mu is not None and p.x_sigma is not None and p.y_sigma is not None:
        out["x_crps_px"] = float((position_crps(s.x, p, "x") * s.w).mean())
        out["y_crps_px"] = float((position_crps(s.y, p, "y") * s.h).mean())
        if detail:
            out["x_pit_hist"] = pit_histogram(position_cdf(s.x, p, "x"))
            out["y_pit_hist"] = pit_histogram(position_cdf(s.y, p, "y"))
    return out
