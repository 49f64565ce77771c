"""UnifiedEventLoss (DESIGN §6): one loss over every head, each component its own function.

    total = w_event·CE(event, class weights by name) + w_time·(pinball(q10, q50, q90) + crossing)
          + w_xy·NLL(x, y) (Gaussian, Laplace or a Laplace scale mixture: ModelConfig.xy_dist) + w_aux·(CE(button|CLICK) + CE(key_action|KEY)
          + CE(key_id|KEY) + CE(scroll_y|SCROLL))

Every component is averaged over the valid slots of the whole batch (not per sequence); the
conditional parts over the valid slots of their event type. Invalid slots contribute exactly
zero, to the value and to the gradient (their values are selected away with torch.where, and
their targets are zeroed first so no NaN can be produced there). A batch without any slot of a
type gives that part 0, never NaN.

With a crossing time head (ModelConfig.time_head) the pinball loss takes, per slot, the quantiles
of its kind (the look-ahead's for the window's last valid slot, the in-window ones otherwise) and
`crossing` is the binary cross-entropy of cross_logit against that kind; without one it is 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.schema import TG, EventType, class_weights as weights_by_name
from .fields import target_event_types
from .sampling import LAPLACE_K, QUANTILE_LEVELS, laplace_mix_k
from .xp import detached, module, sigmoid, softplus

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of values [...] over mask [...] (bool); exactly 0 (with zero gradient) when the mask is empty."""
    picked = torch.where(mask, values, torch.zeros_like(values))
    return picked.sum() / mask.sum().clamp(min=1)


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, quantiles=QUANTILE_LEVELS) -> torch.Tensor:
    """Pinball (quantile) loss per slot, averaged over the quantiles: pred [..., Q], target [...] → [...].

    For level q and error e = target − pred: max(q·e, (q−1)·e)."""
    q = torch.tensor(quantiles, dtype=pred.dtype, device=pred.device)  # [Q]
    e = target.unsqueeze(-1) - pred  # [..., Q]
    return torch.maximum(q * e, (q - 1) * e).mean(-1)


def gaussian_nll(mu: torch.Tensor, logsig: torch.Tensor, target: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
    """Negative log-likelihood of target under N(mu, σ²), σ = exp(logsig), per element.

    beta > 0 is β-NLL (Seitzer et al. 2022): each element's NLL is weighted by (σ²)^β with the
    weight detached, so badly-fit points with a large σ are not ignored; β = 0.5 is the usual
    choice, β = 0 the plain NLL."""
    z = (target - mu) * torch.exp(-logsig)
    nll = 0.5 * z * z + logsig + _HALF_LOG_2PI
    if beta > 0:
        nll = nll * torch.exp(2.0 * beta * logsig).detach()
    return nll


_LOG_2_OVER_K = math.log(2.0 / LAPLACE_K)


def laplace_nll(mu: torch.Tensor, logsig: torch.Tensor, target: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
    """Negative log-likelihood of target under Laplace(mu, b), b = σ/K (LAPLACE_K), per element:
    |target − mu|/b + log 2b. beta as in gaussian_nll."""
    z = (target - mu) * torch.exp(-logsig)  # in units of σ
    nll = LAPLACE_K * z.abs() + logsig + _LOG_2_OVER_K
    if beta > 0:
        nll = nll * torch.exp(2.0 * beta * logsig).detach()
    return nll


_LOG_2 = math.log(2.0)


def laplace_mix_nll(out: dict, x, y, beta: float = 0.0):
    """−log p(x, y) per slot [...] under the Laplace scale mixture of LaplaceMixXYHead:
    (1 − w)·L(x; b_x)·L(y; b_y) + w·L(x; ρ_x·b_x)·L(y; ρ_y·b_y), L(e; b) = e^{−|e|/b}/2b, with
    b = σ/k(w, ρ) (σ from x_logsig, y_logsig: calibrated or not). k is taken without gradient,
    as the head put it into σ, so the gradient reaches b, ρ and w each by its own path. A
    logaddexp of the two components' log-densities: a far point underflows neither to 0 nor to
    NaN. Numpy arrays or torch tensors. beta > 0 weights the point's NLL by (σ_x·σ_y)^β,
    detached: β-NLL as in gaussian_nll, the geometric mean of its per-axis weights (σ²)^β. Without
    it the position's gradients, ~1/b, drown the event and time parts' in the shared layers."""
    xp = module(x)
    logit = out["xy_wide_logit"]
    w = detached(sigmoid(logit))
    narrow = wide = 0.0
    for a, target in (("x", x), ("y", y)):
        logrho = out[f"{a}_logrho"]
        log_b = out[f"{a}_logsig"] - xp.log(laplace_mix_k(w, xp.exp(detached(logrho))))
        e = xp.abs(target - out[f"{a}_mu"])
        narrow = narrow - e * xp.exp(-log_b) - log_b - _LOG_2
        wide = wide - e * xp.exp(-log_b - logrho) - log_b - logrho - _LOG_2
    # log(1 − w) = −softplus(logit), log w = −softplus(−logit)
    nll = -xp.logaddexp(narrow - softplus(logit), wide - softplus(-logit))
    if beta > 0:
        nll = nll * detached(xp.exp(beta * (out["x_logsig"] + out["y_logsig"])))
    return nll


def median_location_term(out: dict, x: torch.Tensor, y: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
    """The scale mixture's location loss per slot [...]: its value is 0, its gradient that of each
    axis' Laplace NLL with respect to the location alone, K·|e|/σ·(σ²)^β with σ detached (with
    β = 0.5 a plain absolute error). So x_mu, y_mu are fitted to the conditional median, the point
    the MAE rewards, while the mixture's likelihood (with the location detached) fits its shape
    around it. The likelihood alone would fit a mode-seeking location: a shared median under a
    heavy-tailed mixture follows the narrow component, and after a pause, when the cursor either
    rests or jumps, that is "it rests" — on Balabit's unseen sessions the look-ahead xy MAE went from
    216 px (one Laplace) to 288 px (the previous position's)."""
    term = 0.0
    for a, target in (("x", x), ("y", y)):
        weight = (LAPLACE_K * torch.exp((2.0 * beta - 1.0) * out[f"{a}_logsig"])).detach()
        term = term + weight * (target - out[f"{a}_mu"]).abs()
    return term - term.detach()  # adds a gradient, not a value: the reported xy loss stays the NLL


def event_cross_entropy(logits: torch.Tensor, types: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Class-weighted CE of event_logits [B,A,4] against types [B,A]: Σ w[type]·CE over valid
    slots, divided by the number of valid slots (not by Σ w), so the weights raise the rare
    types' share of the loss instead of renormalising it away."""
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), types.reshape(-1), reduction="none").view(types.shape)
    return masked_mean(weights[types] * ce, mask)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean CE of logits [..., C] against target [...] over mask [...]; 0 when the mask is empty."""
    target = torch.where(mask, target, torch.zeros_like(target)).clamp(0, logits.shape[-1] - 1)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none").view(target.shape)
    return masked_mean(ce, mask)


def time_loss(time_q_log: torch.Tensor, dt_ms: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pinball loss of the quantile head on the log1p(ms) scale.

    Quantiles commute with monotonic transforms (the q-quantile of log1p(dt) is log1p of the
    q-quantile of dt), so the minimiser is the same as on raw ms; the log scale keeps 10 s
    look-ahead gaps from swamping the ~10 ms gaps between moves."""
    return masked_mean(pinball_loss(time_q_log, torch.log1p(dt_ms.clamp(min=0.0))), mask)


def lookahead_slots(mask: torch.Tensor) -> torch.Tensor:
    """The look-ahead slot of every window: its last valid slot (valid slots are a prefix). [B,A] bool."""
    after = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], dim=1)  # [B,A] is slot i+1 valid
    return mask & ~after


def crossing_loss(cross_logit: torch.Tensor, lookahead: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE of "this slot's event falls after the tick's end" over the valid slots."""
    bce = F.binary_cross_entropy_with_logits(cross_logit.float(), lookahead.float(), reduction="none")
    return masked_mean(bce, mask)


def mixture_xy_nll(out: dict, x: torch.Tensor, y: torch.Tensor, nll_fn=gaussian_nll) -> torch.Tensor:
    """−log Σ_j π_j p_j(x, y) per slot [B,A]: π = softmax(anchor_logits [B,A,J]), component j at
    (x_mu, y_mu) + anchor_shift[..., j, :] with the head's σ. Computed as a logsumexp of log π_j −
    NLL_j, so a component far from the target underflows to 0 instead of to NaN. (β-NLL has no
    single σ to weight by here, so the mixture is always the plain likelihood.)"""
    shift = out["anchor_shift"]  # [B,A,J,2]
    nll_j = (nll_fn(out["x_mu"].unsqueeze(-1) + shift[..., 0], out["x_logsig"].unsqueeze(-1), x.unsqueeze(-1))
             + nll_fn(out["y_mu"].unsqueeze(-1) + shift[..., 1], out["y_logsig"].unsqueeze(-1), y.unsqueeze(-1)))  # [B,A,J]
    return -torch.logsumexp(torch.log_softmax(out["anchor_logits"].float(), -1) - nll_j, dim=-1)


def xy_loss(out: dict, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, beta: float = 0.0,
            nll_fn=gaussian_nll) -> torch.Tensor:
    """NLL of the position (`nll_fn` per coordinate: the xy head's `coord_nll`, Gaussian or
    Laplace), x and y summed (the NLL of the point), mean over valid slots."""
    if "anchor_logits" in out:  # a mixture over anchor-shifted components (ilbot.model.anchors)
        return masked_mean(mixture_xy_nll(out, x, y, nll_fn), mask)
    if "xy_wide_logit" in out:  # a Laplace scale mixture (LaplaceMixXYHead), one NLL per point
        shape = laplace_mix_nll({**out, "x_mu": out["x_mu"].detach(), "y_mu": out["y_mu"].detach()}, x, y, beta)
        return masked_mean(shape + median_location_term(out, x, y, beta), mask)
    nll = nll_fn(out["x_mu"], out["x_logsig"], x, beta) + nll_fn(out["y_mu"], out["y_logsig"], y, beta)
    return masked_mean(nll, mask)


class UnifiedEventLoss(nn.Module):
    """The training loss. `class_weights`: a name → weight table (missing names 1.0), None for
    the defaults (MOVE 1, CLICK 8, KEY 6, SCROLL 12) or "auto" for inverse frequency from
    `event_counts` (a dataset's `stats["event_counts"]`). `beta` > 0 switches the position NLL
    to β-NLL (0.5 is the usual value).

    forward(out, targets [B,A,7], target_mask [B,A], xy_nll) → (total, parts) where parts maps
    event, time, crossing, xy, button, key_action, key_id, scroll_y and aux (their sum) to scalars."""

    def __init__(self, class_weights: dict | str | None = None, event_counts: dict | None = None, *,
                 w_event: float = 1.0, w_time: float = 1.0, w_xy: float = 1.0, w_aux: float = 1.0, beta: float = 0.0):
        super().__init__()
        # not persistent: the weights belong to the training config, not to the checkpoint
        self.register_buffer("class_weights", torch.tensor(weights_by_name(class_weights, event_counts)), persistent=False)
        self.w_event, self.w_time, self.w_xy, self.w_aux, self.beta = w_event, w_time, w_xy, w_aux, beta

    def forward(self, out: dict, targets: torch.Tensor, target_mask: torch.Tensor,
                xy_nll=gaussian_nll) -> tuple[torch.Tensor, dict]:
        mask = target_mask.bool()  # [B,A]
        tg = torch.where(mask.unsqueeze(-1), targets, torch.zeros_like(targets))  # [B,A,7] invalid → 0
        types = target_event_types(tg)  # [B,A]

        def col(name: str) -> torch.Tensor:
            return tg[..., TG[name]]

        def cls(name: str) -> torch.Tensor:
            return col(name).long()

        click, key, scroll = (mask & (types == int(t)) for t in (EventType.CLICK, EventType.KEY, EventType.SCROLL))
        parts = {
            "event": event_cross_entropy(out["event_logits"], types, mask, self.class_weights.to(out["event_logits"].dtype)),
            "time": time_loss(out["time_q_log"], col("dt_ms"), mask),
            "crossing": torch.zeros((), device=mask.device),
            "xy": xy_loss(out, col("x"), col("y"), mask, self.beta, xy_nll),
            "button": masked_cross_entropy(out["button_logits"], cls("button"), click),
            "key_action": masked_cross_entropy(out["key_action_logits"], cls("key_action"), key),
            "key_id": masked_cross_entropy(out["key_id_logits"], cls("key_id"), key),
            "scroll_y": masked_cross_entropy(out["scroll_y_logits"], cls("scroll_y"), scroll),
        }
        if "cross_logit" in out:  # a crossing time head: each slot's quantiles are those of its kind
            la = lookahead_slots(mask)  # [B,A]
            q_log = torch.where(la.unsqueeze(-1), out["time_q_la_log"], out["time_q_log"])  # [B,A,3]
            parts["time"] = time_loss(q_log, col("dt_ms"), mask)
            parts["crossing"] = crossing_loss(out["cross_logit"], la, mask)
        parts["aux"] = parts["button"] + parts["key_action"] + parts["key_id"] + parts["scroll_y"]
        total = (self.w_event * parts["event"] + self.w_time * (parts["time"] + parts["crossing"]) + self.w_xy * parts["xy"]
                 + self.w_aux * parts["aux"])
        return total, parts
