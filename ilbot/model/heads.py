"""Distribution heads (DESIGN §6): one interface, one class per kind of distribution.

A head maps the decoder's per-slot state h [..., d] to named distribution parameters
(`forward(h) -> dict`; `params(raw)` turns the projection's output into them and takes torch
tensors or numpy arrays, so the planner's numpy loop uses the same transforms), scores a target under them (`nll(out, target) -> [...]`, the per-slot
loss: a negative log-likelihood, or for the quantile head its proper scoring rule, the pinball
loss) and draws from them (`sample(out, temperature, generator) -> [...]`). A new head is one
class here plus one line in UnifiedEventModel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .loss import gaussian_nll, laplace_mix_nll, laplace_nll, pinball_loss
from .sampling import (LAPLACE_K, laplace_mix_k, sample_categorical, sample_time, sample_xy, sample_xy_laplace,
                       sample_xy_laplace_mix)
from .xp import cap, detached, module, sigmoid, softplus


def _inv_softplus(y: float) -> float:
    return math.log(math.expm1(y))


class DistributionHead(nn.Module):
    """Base: a linear projection `proj` of h, turned into parameters by `params(raw)`."""

    keys: tuple[str, ...] = ()

    def __init__(self, d: int, n_out: int):
        super().__init__()
        self.proj = nn.Linear(d, n_out)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.params(self.proj(h))

    def params(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def nll(self, out: dict, target: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def sample(self, out: dict, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class CategoricalHead(DistributionHead):
    """Classes: `<name>_logits [..., C]`."""

    def __init__(self, d: int, name: str, n_classes: int):
        super().__init__(d, n_classes)
        self.key = f"{name}_logits"
        self.keys = (self.key,)

    def params(self, raw) -> dict:
        return {self.key: raw}

    def nll(self, out: dict, target: torch.Tensor) -> torch.Tensor:
        logits = out[self.key]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1).long(), reduction="none").view(target.shape)

    def sample(self, out: dict, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_categorical(out[self.key], temperature, generator)


class TimeQuantileHead(DistributionHead):
    """q10, q50, q90 of dt: `time_q [..., 3]` in ms and `time_q_log [..., 3]` = log1p(ms).

    Non-negative and non-crossing by construction: in log1p(ms) space
    q10 = softplus(r0), q50 = q10 + softplus(r1), q90 = q50 + softplus(r2), so every quantile is
    ≥ 0 ms and the gaps are ≥ 0. The log scale suits gaps that span 1 ms … 10 s. time_q_log is
    clamped at log1p(time_max_ms) before expm1, so the ms values cannot overflow; the loss uses
    the unclamped log values.

    With `ModelConfig.time_head = "crossing"` the head also says whether the slot's event falls
    after the tick's end (it is the look-ahead slot): `cross_logit [...]`, and the quantiles are
    conditional on the answer: `time_q` given the event is inside the tick, `time_q_la` (and
    `time_q_la_log`) given it is the look-ahead. One set of quantiles for both has to cover a
    mixture of ~10 ms gaps between moves and seconds of waiting past the tick, and its median
    lands between the two; split, each part is the simple distribution it looks like."""

    keys = ("time_q", "time_q_log")

    def __init__(self, d: int, cfg: ModelConfig):
        self.crossing = cfg.time_head == "crossing"
        self.n_quantile_raw = 6 if self.crossing else 3  # the quantiles' raw outputs; a crossing logit after them
        super().__init__(d, self.n_quantile_raw + self.crossing)
        if self.crossing:
            self.keys = ("time_q", "time_q_log", "time_q_la", "time_q_la_log", "cross_logit")
        self.log_max = math.log1p(cfg.time_max_ms)
        with torch.no_grad():  # start near q10 ≈ 20 ms, q50 ≈ 55 ms, q90 ≈ 250 ms, for every slot
            self.proj.weight.mul_(0.01)
            start = [_inv_softplus(3.0), _inv_softplus(1.0), _inv_softplus(1.5)]
            if self.crossing:  # look-ahead: q10 ≈ 150 ms, q50 ≈ 400 ms, q90 ≈ 2 s; crossing p ≈ 0.3
                start += [_inv_softplus(5.0), _inv_softplus(1.0), _inv_softplus(1.6), -1.0]
            self.proj.bias.copy_(torch.tensor(start))

    def _quantiles(self, raw, name: str) -> dict:
        log_q = softplus(raw).cumsum(-1)  # [..., 3] log1p(ms), ascending
        return {name: module(raw).expm1(cap(log_q, self.log_max)), f"{name}_log": log_q}

    def params(self, raw) -> dict:
        """raw [..., 3] (or [..., 7] with crossing; torch or numpy) → time_q, time_q_log [..., 3]
        (and time_q_la, time_q_la_log [..., 3], cross_logit [...])."""
        out = self._quantiles(raw[..., :3], "time_q")
        if self.crossing:
            out.update(self._quantiles(raw[..., 3:6], "time_q_la"))
            out["cross_logit"] = raw[..., 6]
        return out

    def nll(self, out: dict, target: torch.Tensor) -> torch.Tensor:
        """Pinball loss of dt (in-window quantiles; the loss picks per slot with a crossing head)."""
        return pinball_loss(out["time_q_log"], torch.log1p(target.clamp(min=0.0)))

    def sample(self, out: dict, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_time(out["time_q"], temperature, generator)


class GaussianXYHead(DistributionHead):
    """Heteroscedastic Gaussian over the normalised position: `x_mu, x_logsig, y_mu, y_logsig [...]`.

    log σ is bounded smoothly to [logsig_min, logsig_max] (a scaled sigmoid). Unbounded, the NLL
    runs to −∞ on exactly repeated positions (a resting cursor repeats its pixel) by shrinking σ
    without limit, and σ can explode early in training; the bounds keep both finite."""

    keys = ("x_mu", "x_logsig", "y_mu", "y_logsig")

    def __init__(self, d: int, cfg: ModelConfig):
        super().__init__(d, 4)
        self.lo, self.span = cfg.logsig_min, cfg.logsig_max - cfg.logsig_min
        # post-hoc calibration (ModelConfig.x_sigma_scale, y_sigma_scale): log σ shifts, 0 by default
        self.log_scale = (math.log(cfg.x_sigma_scale), math.log(cfg.y_sigma_scale))
        with torch.no_grad():  # start at the window centre with σ ≈ e^-2 ≈ 0.14 windows, for every slot
            self.proj.weight.mul_(0.01)  # (a random start puts σ near its floor somewhere: NLL in the hundreds)
            p = (-2.0 - self.lo) / self.span
            b = math.log(p / (1 - p)) if 0 < p < 1 else 0.0
            self.proj.bias.copy_(torch.tensor([0.0, b, 0.0, b]))

    def params(self, raw) -> dict:
        """raw [..., 4] (torch or numpy) → x_mu, x_logsig, y_mu, y_logsig [...]."""
        logsig = self.lo + self.span * sigmoid(raw[..., 1::2])  # [..., 2]
        lx, ly = logsig[..., 0], logsig[..., 1]
        if self.log_scale != (0.0, 0.0):  # a calibrated checkpoint
            lx, ly = lx + self.log_scale[0], ly + self.log_scale[1]
        return {"x_mu": 0.5 + raw[..., 0], "x_logsig": lx, "y_mu": 0.5 + raw[..., 2], "y_logsig": ly}

    # per coordinate: (mu, logsig, target, beta) → NLL, and (mu, logsig, temperature, generator) → draw
    coord_nll = staticmethod(gaussian_nll)
    coord_sample = staticmethod(sample_xy)

    def nll(self, out: dict, target: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
        """target [..., 2] (x, y) → NLL of the point [...]."""
        return (self.coord_nll(out["x_mu"], out["x_logsig"], target[..., 0], beta)
                + self.coord_nll(out["y_mu"], out["y_logsig"], target[..., 1], beta))

    def sample(self, out: dict, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """[..., 2] (x, y)."""
        return torch.stack([self.coord_sample(out["x_mu"], out["x_logsig"], temperature, generator),
                            self.coord_sample(out["y_mu"], out["y_logsig"], temperature, generator)], dim=-1)


class LaplaceXYHead(GaussianXYHead):
    """A Laplace per coordinate (ModelConfig.xy_dist = "laplace"), with the same outputs: x_mu,
    y_mu are the locations (medians) and σ = exp(logsig) the half-width of the central 68.3 %
    interval, i.e. 1.148 × the Laplace scale b (ilbot.model.sampling.LAPLACE_K)."""

    coord_nll = staticmethod(laplace_nll)
    coord_sample = staticmethod(sample_xy_laplace)


class LaplaceMixXYHead(LaplaceXYHead):
    """A scale mixture of two Laplaces with one median (ModelConfig.xy_dist = "laplace_mix"):
    (1 − w)·L(x; b_x)·L(y; b_y) + w·L(x; ρ_x·b_x)·L(y; ρ_y·b_y). The weight w of the wide
    component is shared by the axes (a jump moves the cursor in x and y at once); ρ ∈ [1, RHO_MAX]
    per axis. Its shape is predicted per slot, so the tails can be heavy after a pause and light
    mid-drag: one Laplace's NLL-fitted b is inflated by the tail everywhere, and a single σ scale
    cannot calibrate both (measured on Balabit: |e|/σ ran 0.53–0.95 × a Laplace's quantiles at
    68.3 % and 1.0–2.2 × at 99 %, differently per population).

    Outputs: x_mu, y_mu (the medians); x_logsig, y_logsig, σ the half-width of the mixture's
    central 68.3 % (σ = k(w, ρ)·b, ilbot.model.sampling.laplace_mix_k), as for the other heads;
    x_logrho, y_logrho (log ρ) and xy_wide_logit (logit w). The bounds [logsig_min, logsig_max]
    hold the narrow component's K·b."""

    keys = ("x_mu", "x_logsig", "y_mu", "y_logsig", "x_logrho", "y_logrho", "xy_wide_logit")
    RHO_MAX = 30.0

    def __init__(self, d: int, cfg: ModelConfig):
        super().__init__(d, cfg)
        proj = nn.Linear(d, 7)  # x, logsig_x, y, logsig_y as the Laplace's; then ρ_x, ρ_y, w
        with torch.no_grad():  # the Laplace's start; ρ ≈ 4 (sigmoid 0.41 of log 30), w ≈ 0.2
            proj.weight.mul_(0.01)
            proj.bias.copy_(torch.cat([self.proj.bias, torch.tensor([-0.37, -0.37, -1.4])]))
        self.proj = proj

    def params(self, raw) -> dict:
        """raw [..., 7] (torch or numpy) → the keys above [...]."""
        out = super().params(raw[..., :4])  # x_logsig, y_logsig: log(K·b) of the narrow component
        logrho = math.log(self.RHO_MAX) * sigmoid(raw[..., 4:6])  # [..., 2]
        logit = raw[..., 6]
        out.update(x_logrho=logrho[..., 0], y_logrho=logrho[..., 1], xy_wide_logit=logit)
        # σ = k·b; k without gradient (the loss takes b back out: laplace_mix_nll), both axes in one solve
        xp = module(raw)
        log_k = xp.log(laplace_mix_k(detached(sigmoid(logit))[..., None], xp.exp(detached(logrho)))) - math.log(LAPLACE_K)  # [..., 2]
        out["x_logsig"], out["y_logsig"] = out["x_logsig"] + log_k[..., 0], out["y_logsig"] + log_k[..., 1]
        return out

    def nll(self, out: dict, target: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
        """target [..., 2] (x, y) → NLL of the point [...] (beta: β-NLL, ilbot.model.loss.laplace_mix_nll)."""
        return laplace_mix_nll(out, target[..., 0], target[..., 1], beta)

    def sample(self, out: dict, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """[..., 2] (x, y)."""
        return torch.stack(sample_xy_laplace_mix(out, temperature, generator), dim=-1)


XY_HEADS = {"gaussian": GaussianXYHead, "laplace": LaplaceXYHead, "laplace_mix": LaplaceMixXYHead}  # by ModelConfig.xy_dist
