"""Sampling from the model's heads (DESIGN §7). Every function takes an optional seeded
`torch.Generator`, so a run is reproducible: the same generator state gives the same draws.

Temperatures: 1.0 samples the model's distribution as predicted; below 1 sharpens it (0 is the
mode: argmax for classes, the median for time, the mean for positions); above 1 flattens it.
"""

from __future__ import annotations

import torch

# The inverse CDF of the time distribution runs through these knots (DESIGN §6: q10, q50, q90).
QUANTILE_LEVELS = (0.1, 0.5, 0.9)


def sample_categorical(logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """One class index per row of logits [..., C] → [...] long."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # [..., C]
    flat = probs.reshape(-1, probs.shape[-1])  # [N, C]
    return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])


def sample_event(logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Event type (EventType index order CLICK, KEY, SCROLL, MOVE) from event_logits [..., 4] → [...] long."""
    return sample_categorical(logits, temperature, generator)


def time_inverse_cdf(time_q: torch.Tensor, u: torch.Tensor, tail: float = 1.0) -> torch.Tensor:
    """dt in ms at probability level u [...] given time_q [..., 3] (q10, q50, q90, ms).

    The inverse CDF is piecewise linear in log1p(ms) through (0.1, q10), (0.5, q50), (0.9, q90).
    The tails are bounded: below q10 the line continues with the slope of the q10→q50 segment down
    to u = 0 (floored at 0 ms), above q90 with the slope of the q50→q90 segment up to u = 1,
    times `tail`. So a draw never leaves [q10 − ¼·tail·(q50−q10), q90 + ¼·tail·(q90−q50)] in log
    space: no unbounded waits from a heavy tail, and never a negative time."""
    lq = torch.log1p(time_q.clamp(min=0.0))  # [..., 3]
    l10, l50, l90 = lq.unbind(-1)
    l0 = (l10 - tail * 0.25 * (l50 - l10)).clamp(min=0.0)
    l100 = l90 + tail * 0.25 * (l90 - l50)
    out = torch.where(u < 0.1, l0 + (l10 - l0) * (u / 0.1),
          torch.where(u < 0.5, l10 + (l50 - l10) * ((u - 0.1) / 0.4),
          torch.where(u < 0.9, l50 + (l90 - l50) * ((u - 0.5) / 0.4),
                      l90 + (l100 - l90) * ((u - 0.9) / 0.1))))
    return torch.expm1(out)


def sample_time(time_q: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None,
                tail: float = 1.0) -> torch.Tensor:
    """dt in ms from time_q [..., 3] → [...]: inverse CDF (time_inverse_cdf) at a uniform draw.
    Temperature scales the draw's distance from the median in log space."""
    u = torch.rand(time_q.shape[:-1], generator=generator, dtype=time_q.dtype)
    ms = time_inverse_cdf(time_q, u, tail)
    if temperature != 1.0:  # move the draw towards (T < 1) or away from (T > 1) the median, in log space
        l50 = torch.log1p(time_q[..., 1].clamp(min=0.0))
        ms = torch.expm1((l50 + max(temperature, 0.0) * (torch.log1p(ms) - l50)).clamp(min=0.0))
    return ms


def sample_xy(mu: torch.Tensor, logsig: torch.Tensor, temperature: float = 1.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """A position from a Gaussian N(mu, (temperature·σ)²), σ = exp(logsig); shapes [...] → [...]."""
    if temperature <= 0:
        return mu.clone()
    noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + temperature * torch.exp(logsig) * noise
