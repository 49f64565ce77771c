"""Human-like timing and mouse motion for the scripted demonstrator (pure: no clock, no input).

The figures are the usual ones from the motor-control literature, chosen so the demonstrator's
sessions look like a person's in the statistics the model learns (dt, events per tick, holds):

- **Reaction time**: log-normal, median 250 ms, σ(log) 0.25, clipped to [140, 800] ms.
- **Movement time**: Fitts' law, `a + b·log2(D/W + 1)` (a = 90 ms, b = 120 ms; D the distance,
  W the target's width), times log-normal noise (σ 0.15), at least 120 ms.
- **Path**: a minimum-jerk profile `s(τ) = 10τ³ − 15τ⁴ + 6τ⁵` (bell-shaped speed) from the
  start to an aim point, with a curved detour (a sine bump perpendicular to the line, σ 5 % of
  the distance) and sub-pixel jitter (σ 0.5 px) that vanish at both ends. Half of the reaches
  overshoot the target by 2–8 % of the distance, then a short corrective minimum-jerk
  sub-movement (70–140 ms) lands on it.
- **Sampling**: positions every 8–10 ms (100–125 Hz, a common mouse report rate), rounded to
  whole pixels with repeats dropped (a mouse reports only changes).
- **Holds**: click holds log-normal with median 110 ms (σ 0.25); key holds median 95 ms (σ 0.3).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass
class MotionConfig:
    reaction_median_ms: float = 250.0
    reaction_sigma: float = 0.25  # σ of log(reaction time)
    reaction_min_ms: float = 140.0
    reaction_max_ms: float = 800.0
    fitts_a_ms: float = 90.0
    fitts_b_ms: float = 120.0
    duration_sigma: float = 0.15  # σ of the log-normal factor on the Fitts time
    duration_min_ms: float = 120.0
    sample_min_ms: float = 8.0  # sampling interval range: 100..125 Hz
    sample_max_ms: float = 10.0
    overshoot_prob: float = 0.5
    overshoot_min: float = 0.02  # fraction of the distance
    overshoot_max: float = 0.08
    correction_min_ms: float = 70.0
    correction_max_ms: float = 140.0
    curvature_sigma: float = 0.05  # σ of the detour's peak, as a fraction of the distance
    jitter_px: float = 0.5
    click_hold_median_ms: float = 110.0
    click_hold_sigma: float = 0.25
    key_hold_median_ms: float = 95.0
    key_hold_sigma: float = 0.3


def min_jerk(tau: float) -> float:
    """The minimum-jerk position profile on [0, 1] (zero velocity and acceleration at both ends)."""
    tau = min(1.0, max(0.0, tau))
    return tau ** 3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)


class HumanMotion:
    """Draws reaction times, holds and mouse paths from one seeded generator."""

    def __init__(self, config: MotionConfig | None = None, rng: random.Random | None = None):
        self.cfg = config or MotionConfig()
        self.rng = rng or random.Random(0)

    def _lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def reaction_ms(self) -> float:
        c = self.cfg
        return min(c.reaction_max_ms, max(c.reaction_min_ms, self._lognormal(c.reaction_median_ms, c.reaction_sigma)))

    def click_hold_ms(self) -> float:
        return min(400.0, max(40.0, self._lognormal(self.cfg.click_hold_median_ms, self.cfg.click_hold_sigma)))

    def key_hold_ms(self) -> float:
        return min(400.0, max(30.0, self._lognormal(self.cfg.key_hold_median_ms, self.cfg.key_hold_sigma)))

    def movement_ms(self, distance: float, width: float) -> float:
        """Fitts' law movement time with log-normal noise."""
        c = self.cfg
        base = c.fitts_a_ms + c.fitts_b_ms * math.log2(distance / max(width, 1.0) + 1.0)
        return max(c.duration_min_ms, base * math.exp(self.rng.gauss(0.0, c.duration_sigma)))

    def _segment(self, p0, p1, duration_ms: float, t0_ms: float, curved: bool) -> list[tuple[float, float, float]]:
        """Samples (t_ms, x, y) of one minimum-jerk sub-movement, after t0_ms, ending exactly at p1."""
        c = self.cfg
        dx, dy = p1[0] - p0[0], p1[1] - p0[1]
        dist = math.hypot(dx, dy)
        px, py = (-dy / dist, dx / dist) if dist > 0 else (0.0, 0.0)  # unit perpendicular
        bump = self.rng.gauss(0.0, c.curvature_sigma) * dist if curved else 0.0
        out = []
        t = 0.0
        while True:
            t += self.rng.uniform(c.sample_min_ms, c.sample_max_ms)
            if t >= duration_ms:
                break
            tau = t / duration_ms
            s = min_jerk(tau)
            envelope = math.sin(math.pi * tau)  # detour and jitter vanish at both ends
            jx = self.rng.gauss(0.0, c.jitter_px) * envelope
            jy = self.rng.gauss(0.0, c.jitter_px) * envelope
            out.append((t0_ms + t, p0[0] + dx * s + px * bump * envelope + jx, p0[1] + dy * s + py * bump * envelope + jy))
        if out and t0_ms + duration_ms - out[-1][0] < c.sample_min_ms:
            out.pop()  # keep the sampling interval: the end replaces a sample too close to it
        out.append((t0_ms + duration_ms, float(p1[0]), float(p1[1])))
        return out

    def path(self, start: tuple[float, float], target: tuple[float, float], width: float = 40.0
             ) -> list[tuple[float, int, int]]:
        """Cursor samples (t_ms since the movement starts, x, y) from start to target, whole
        pixels, repeats dropped; the last sample is the target. Empty when already there."""
        c = self.cfg
        sx, sy = start
        tx, ty = target
        dist = math.hypot(tx - sx, ty - sy)
        if dist < 1.0:
            return []
        duration = self.movement_ms(dist, width)
        samples: list[tuple[float, float, float]]
        if self.rng.random() < c.overshoot_prob and dist > 30:
            k = self.rng.uniform(c.overshoot_min, c.overshoot_max)
            aim = (tx + (tx - sx) / dist * k * dist, ty + (ty - sy) / dist * k * dist)
            samples = self._segment(start, aim, duration, 0.0, curved=True)
            corr = self.rng.uniform(c.correction_min_ms, c.correction_max_ms)
            samples += self._segment(aim, target, corr, duration, curved=False)
        else:
            samples = self._segment(start, target, duration, 0.0, curved=True)
        out: list[tuple[float, int, int]] = []
        last = (round(sx), round(sy))
        for t, x, y in samples:
            p = (round(x), round(y))
            if p != last:
                out.append((t, p[0], p[1]))
                last = p
        if not out or out[-1][1:] != (round(tx), round(ty)):  # rounding may have merged the end
            out.append((samples[-1][0], round(tx), round(ty)))
        return out
