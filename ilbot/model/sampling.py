"""Sampling from the model's heads (DESIGN §7). Every function takes an optional seeded
`torch.Generator`, so a run is reproducible: the same generator state gives the same draws.

Temperatures: 1.0 samples the model's distribution as predicted; below 1 sharpens it (0 is the
mode: argmax for classes, the median for time, the mean for positions); above 1 flattens it.

Given pre-drawn uniforms `u` / normals `noise`, the functions also work on numpy arrays: the
planner draws a whole tick's randomness from its torch generator in one call and then samples
each slot in numpy, where an op on a handful of numbers costs ~1 µs instead of torch's ~5 µs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .xp import cap, floor, module, sigmoid, softmax


MAX_TEMPERATURE = 100.0  # beyond this a temperature is no decoding choice (a draw from noise)


@dataclass(frozen=True)
class Temperature:
    """The planner's sampling temperatures, one per kind of draw: `event` (the event type, button /
    key / scroll), `time` (the wait before an event), `position` (x, y and the anchor component)
    and `cross` (with a crossing time head: whether a slot falls past the tick's end, i.e. whether
    the agent acts at all this tick; None: the `time` temperature). `cross` is its own knob
    because the two decide different things: a sharp `time` puts events where the model expects
    them (a click after the reach, not during it), while a sharp `cross` turns "acts on 70 % of
    such ticks" into "acts on all of them" and so changes how often the agent idles. A checkpoint
    may carry its own (config.json's "sampling", tuned in closed loop: `ilbot eval closed-loop`); a
    run's scalar temperature multiplies them (`scaled`)."""

    event: float = 1.0
    time: float = 1.0
    position: float = 1.0
    cross: float | None = None

    def __post_init__(self):
        for k in ("event", "time", "position", "cross"):
            v = getattr(self, k)
            if k == "cross" and v is None:
                continue
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and 0 <= v <= MAX_TEMPERATURE):
                raise ValueError(f"temperature {k}: expected a number in 0..{MAX_TEMPERATURE:g}, got {v!r}")

    @property
    def crossing(self) -> float:
        """The temperature of the crossing draw."""
        return self.time if self.cross is None else self.cross

    @classmethod
    def of(cls, t: "float | Temperature | dict | None") -> "Temperature":
        if t is None:
            return cls()
        if isinstance(t, cls):
            return t
        if isinstance(t, dict):
            unknown = set(t) - {"event", "time", "position", "cross"}
            if unknown:
                raise ValueError(f"temperature: unknown field {sorted(unknown)[0]!r} (expected event, time, position, cross)")
            return cls(**t)
        return cls(float(t), float(t), float(t))

    def scaled(self, s: float) -> "Temperature":
        return Temperature(self.event * s, self.time * s, self.position * s,
                           None if self.cross is None else self.cross * s)

    def to_dict(self) -> dict:
        d = {"event": self.event, "time": self.time, "position": self.position}
        return d if self.cross is None else {**d, "cross": self.cross}


# The inverse CDF of the time distribution runs through these knots (DESIGN §6: q10, q50, q90).
QUANTILE_LEVELS = (0.1, 0.5, 0.9)


def sample_categorical(logits, temperature: float = 1.0, generator: torch.Generator | None = None, u=None):
    """One class index per row of logits [..., C] → [...] (int), by the inverse CDF at a uniform
    draw u [...] (drawn from `generator` unless given)."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = softmax(logits, temperature)  # [..., C]
    if u is None:
        u = torch.rand(probs.shape[:-1], generator=generator)
    return categorical_inverse_cdf(probs, u)


def categorical_inverse_cdf(probs, u):
    """The class at probability level u [...] of probs [..., C]: the first whose CDF reaches u."""
    below = (probs.cumsum(-1) < u[..., None]).sum(-1)  # classes whose CDF is below u
    return cap(below, probs.shape[-1] - 1)


def sample_event(logits, temperature: float = 1.0, generator: torch.Generator | None = None, u=None):
    """Event type (EventType index order CLICK, KEY, SCROLL, MOVE) from event_logits [..., 4] → [...]."""
    return sample_categorical(logits, temperature, generator, u)


def time_inverse_cdf(time_q, u, tail: float = 1.0):
    """dt in ms at probability level u [...] given time_q [..., 3] (q10, q50, q90, ms).

    The inverse CDF is piecewise linear in log1p(ms) through (0.1, q10), (0.5, q50), (0.9, q90).
    The tails are bounded: below q10 the line continues with the slope of the q10→q50 segment down
    to u = 0 (floored at 0 ms), above q90 with the slope of the q50→q90 segment up to u = 1,
    times `tail`. So a draw never leaves [q10 − ¼·tail·(q50−q10), q90 + ¼·tail·(q90−q50)] in log
    space: no unbounded waits from a heavy tail, and never a negative time."""
    xp = module(time_q)
    lq = xp.log1p(floor(time_q, 0.0))  # [..., 3]
    l10, l50, l90 = lq[..., 0], lq[..., 1], lq[..., 2]
    l0 = floor(l10 - tail * 0.25 * (l50 - l10), 0.0)
    l100 = l90 + tail * 0.25 * (l90 - l50)
    if xp is np and lq.ndim == 2 and lq.shape[0] == 1:  # one row (the live agent): a single np.interp
        knots = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
        vals = np.array([l0[0], l10[0], l50[0], l90[0], l100[0]], np.float64)
        return np.expm1(np.interp(u, knots, vals)).astype(time_q.dtype)
    out = xp.where(u < 0.1, l0 + (l10 - l0) * (u / 0.1),
          xp.where(u < 0.5, l10 + (l50 - l10) * ((u - 0.1) / 0.4),
          xp.where(u < 0.9, l50 + (l90 - l50) * ((u - 0.5) / 0.4),
                   l90 + (l100 - l90) * ((u - 0.9) / 0.1))))
    return xp.expm1(out)


def sample_time(time_q, temperature: float = 1.0, generator: torch.Generator | None = None, tail: float = 1.0, u=None):
    """dt in ms from time_q [..., 3] → [...]: inverse CDF (time_inverse_cdf) at a uniform draw.
    Temperature scales the draw's distance from the median in log space."""
    if u is None:
        u = torch.rand(time_q.shape[:-1], generator=generator, dtype=time_q.dtype)
    ms = time_inverse_cdf(time_q, u, tail)
    if temperature != 1.0:  # move the draw towards (T < 1) or away from (T > 1) the median, in log space
        xp = module(time_q)
        l50 = xp.log1p(floor(time_q[..., 1], 0.0))
        ms = xp.expm1(floor(l50 + max(temperature, 0.0) * (xp.log1p(ms) - l50), 0.0))
    return ms


def sample_xy(mu, logsig, temperature: float = 1.0, generator: torch.Generator | None = None, noise=None):
    """A position from a Gaussian N(mu, (temperature·σ)²), σ = exp(logsig); shapes [...] → [...].
    `noise` (standard normal, [...]) is drawn from `generator` unless given."""
    if temperature <= 0:
        return mu.copy() if isinstance(mu, np.ndarray) else mu.clone()
    if noise is None:
        noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + temperature * module(mu).exp(logsig) * noise


# σ / b of a Laplace: its central 68.3 % interval is ±K·b (1 − e^−K = 0.6827), so σ = K·b keeps
# "1σ" meaning that interval (ModelConfig.xy_dist; the loss and evaluation use this constant too)
LAPLACE_K = -math.log(1.0 - math.erf(1.0 / math.sqrt(2.0)))
_HALF = 0.5


def sample_xy_laplace(mu, logsig, temperature: float = 1.0, generator: torch.Generator | None = None, u=None):
    """A position from Laplace(mu, temperature·b), b = σ/1.148 (σ = exp(logsig) the half-width of
    the central 68.3 %), by the inverse CDF at a uniform `u` in (0, 1) ([...]; drawn from
    `generator` unless given)."""
    if temperature <= 0:
        return mu.copy() if isinstance(mu, np.ndarray) else mu.clone()
    if u is None:
        u = torch.rand(mu.shape, generator=generator, dtype=mu.dtype)
    xp = module(mu)
    c = u - _HALF
    # 1 − 2|u − ½| is in (0, 1]; the floor keeps log finite if u is exactly 0 or 1
    mag = -xp.log(floor(1.0 - 2.0 * xp.abs(c), 1e-12))
    return mu + temperature * (module(mu).exp(logsig) / LAPLACE_K) * xp.sign(c) * mag


# ---- a scale mixture of two Laplaces (ModelConfig.xy_dist = "laplace_mix") -------------------
# Per coordinate (1 − w)·Laplace(μ, b) + w·Laplace(μ, ρ·b), ρ ≥ 1: most steps small, a share w of
# jumps. σ (x_logsig) stays the half-width of the central 68.3 %, so overlays, coverage and the
# calibration's σ scales mean what they mean for one Laplace; σ = k(w, ρ)·b, k the root below.
_TAIL_683 = 1.0 - math.erf(1.0 / math.sqrt(2.0))  # 0.3173: the mass outside the central 68.3 %
NEWTON_STEPS = 8  # from k = LAPLACE_K the residual is < 1e-15 on w ∈ [0, 1], ρ ∈ [1, 30]


def laplace_mix_k(w, rho):
    """σ / b of the mixture [...]: the root k of (1 − w)·e^{−k} + w·e^{−k/ρ} = 0.3173 (the mass
    beyond ±k·b). The left side is convex and decreasing in k and is ≥ 0.3173 at k = LAPLACE_K (the
    root for w = 0, and ρ ≥ 1), so Newton's steps from there approach the root from below without
    overshooting. Pure in (w, ρ): the calibration scales σ and b together and k stays."""
    xp = module(w)
    k = xp.ones_like(w) * LAPLACE_K
    for _ in range(NEWTON_STEPS):
        narrow, wide = (1.0 - w) * xp.exp(-k), w * xp.exp(-k / rho)
        k = k + (narrow + wide - _TAIL_683) / (narrow + wide / rho)
    return k


def laplace_mix_component_logsig(logsig, w, logrho, wide):
    """log(K·b) of the chosen component [..., n] (K·b: the σ sample_xy_laplace takes) for n axes
    at once (logsig, logrho [..., n]; w, wide [...]): the narrow one (b = σ/k), or where `wide`
    the wide one (ρ·b)."""
    xp = module(logsig)
    log_b = logsig - xp.log(laplace_mix_k(w[..., None], xp.exp(logrho)))
    return log_b + math.log(LAPLACE_K) + xp.where(wide[..., None], logrho, xp.zeros_like(logrho))


def sample_xy_laplace_mix(out: dict, temperature: float = 1.0, generator: torch.Generator | None = None,
                          u=None) -> tuple:
    """(x, y) [...] from the scale mixture in a head dict (x_mu, x_logsig, x_logrho, y_…,
    xy_wide_logit). u [..., 3] uniforms: the component (one for both axes: a jump moves the cursor
    in x and y at once), then x and y, each by the Laplace's inverse CDF. Temperature scales both
    components' widths; the mixture weight stays."""
    mu = out["x_mu"]
    if u is None:
        u = torch.rand(tuple(mu.shape) + (3,), generator=generator, dtype=mu.dtype)
    xp, w = module(mu), sigmoid(out["xy_wide_logit"])
    logsig = laplace_mix_component_logsig(xp.stack([out["x_logsig"], out["y_logsig"]], -1), w,
                                          xp.stack([out["x_logrho"], out["y_logrho"]], -1), u[..., 0] < w)  # [..., 2]
    return (sample_xy_laplace(mu, logsig[..., 0], temperature, u=u[..., 1]),
            sample_xy_laplace(out["y_mu"], logsig[..., 1], temperature, u=u[..., 2]))
