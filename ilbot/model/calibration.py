"""Post-hoc calibration of the model's heads: what a checkpoint stores, and how it is applied.

A `Calibration` is fitted after training on held-out windows (`ilbot eval calibrate`, in
ilbot.eval.calibrate) and stored in the checkpoint's config.json under "calibration";
`load_checkpoint` attaches it to the model as `model.calibration`. `apply_calibration(out, cal,
lookahead)` turns the heads' raw outputs into calibrated ones. The planner and the evaluator call
that one function, so the agent samples from the distributions the report scores:

- **events**: probabilities softmax(logits / T + b) — a temperature T and a per-class log-prior
  correction b, fitted together by NLL (the class weights of training shift the model's priors
  by about −log w; b undoes that, T fixes the confidence). A decision (what argmax accuracy,
  macro-F1 and the confusion matrix count, and what the planner does at temperature 0) is
  argmax(log p + d), d a per-class offset chosen for the metric a user cares about
  (`decision_rule`). d is kept apart from b: it serves one metric and would distort the
  probabilities the planner samples from at temperature > 0 and that the Brier score and ECE
  score. `out["event_decision"]` holds the decision. `event_by_kind` (optional) holds a T, b and
  d per slot kind, used wherever the kind is known; the global ones, fitted on all slots, serve
  slots of unknown kind. The look-ahead slot follows a wait past the tick's end and its types
  are distributed otherwise than the tick's own events: on Balabit's unseen sessions, per-kind
  parameters raised macro-F1 from 0.614 to 0.633 and accuracy from 0.9443 to 0.9450.
- **positions**: σ × s per slot kind (in-window, look-ahead) and axis, so that 1σ covers 68.3 %.
  With position anchors every component shares σ, so the scale applies to all of them; with the
  Laplace scale mixture (xy_dist "laplace_mix") σ sets both components' widths (b = σ/k(w, ρ)),
  so it scales the whole mixture and leaves its shape.
- **times**: in log1p(ms) space, the space the quantile head is trained in and the sampler draws
  in, q10 moves to q50 − s10·(q50 − q10) and q90 to q50 + s90·(q90 − q50) per slot kind (q50
  unchanged; s < 1 narrows, s > 1 widens), so that 10 % of slots fall below q10 and 10 % above
  q90: [q10, q90] covers 80 %.

Slot kind: the look-ahead slot is the first event past the tick's end. Evaluation knows it from the
data (the window's last valid slot) and passes it as `lookahead`; the planner knows it from the
crossing time head's draw (ModelConfig.time_head = "crossing"). With a crossing head the
quantiles are already per kind (`time_q` in the tick, `time_q_la` past it), so each set gets its
own kind's scales wherever it is used. Where the kind is unknown (`lookahead=None`: the planner of
a model without a crossing head) positions take the in-window scales — an event the planner
performs is inside the tick — and times the scales fitted on all slots together (time_scale
"all"): there the drawn wait itself decides whether the slot ends the tick, so the wait must be
calibrated over both kinds at once; in-window scales alone would shorten the waits that end
ticks (measured on the sandbox model: idle-tick rate 0.03 against 0.30 raw and 0.51 real).

An identity calibration (`Calibration()`) leaves every output bit for bit as it was. Functions
take numpy arrays and torch tensors alike (ilbot.model.xp) and keep their dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .xp import cap, floor, module

KINDS = ("in_window", "lookahead")
TIME_KINDS = KINDS + ("all",)  # "all": the time scales for slots of unknown kind
DECISION_RULES = ("accuracy", "macro_f1")
N_TYPES = 4  # EventType order: CLICK, KEY, SCROLL, MOVE
# a scaled q90 is capped here (log1p of ms) so expm1 cannot overflow: the largest time_max_ms a
# checkpoint may hold (1e9 ms)
LOG_TIME_CAP = math.log1p(1e9)

_KEYS = {"events", "sigma_scale", "time_scale", "fit"}
_EVENT_KEYS = {"temperature", "bias", "decision_offset", "decision_rule", "by_kind"}
_KIND_EVENT_KEYS = {"temperature", "bias", "decision_offset"}


def _identity_pairs() -> dict:
    return {k: (1.0, 1.0) for k in KINDS}


def _identity_time() -> dict:
    return {k: (1.0, 1.0) for k in TIME_KINDS}


@dataclass(frozen=True)
class Calibration:
    """The fitted parameters (module docstring). `fit` records what they were fitted on and the
    figures before and after (free-form, informative only)."""

    event_temperature: float = 1.0
    event_bias: tuple = (0.0,) * N_TYPES  # log-prior correction b, per EventType
    decision_offset: tuple = (0.0,) * N_TYPES  # d, added to the calibrated log-probabilities for decisions
    decision_rule: str = "accuracy"  # what d was chosen for (DECISION_RULES)
    sigma_scale: dict = field(default_factory=_identity_pairs)  # kind → (s_x, s_y)
    time_scale: dict = field(default_factory=_identity_time)  # kind (TIME_KINDS) → (s_q10, s_q90)
    fit: dict = field(default_factory=dict)
    # kind (KINDS) → {"temperature": T, "bias": (b…), "decision_offset": (d…)}; None: the global ones everywhere
    event_by_kind: dict | None = None

    def events(self, kind: str | None) -> tuple[float, tuple, tuple]:
        """(T, b, d) for slots of `kind` (KINDS), or the global ones (kind None or none per kind)."""
        if kind is None or self.event_by_kind is None:
            return self.event_temperature, self.event_bias, self.decision_offset
        e = self.event_by_kind[kind]
        return e["temperature"], e["bias"], e["decision_offset"]

    def __post_init__(self) -> None:
        # the checks of from_dict, for calibrations built in code
        Calibration._check(self.to_dict())

    def to_dict(self) -> dict:
        """The JSON form stored in config.json."""
        def events(t, b, d):
            return {"temperature": float(t), "bias": [float(v) for v in b], "decision_offset": [float(v) for v in d]}

        ev = dict(events(self.event_temperature, self.event_bias, self.decision_offset), decision_rule=self.decision_rule)
        if self.event_by_kind is not None:
            ev["by_kind"] = {k: events(*self.events(k)) for k in KINDS}
        return {
            "events": ev,
            "sigma_scale": {k: [float(v) for v in self.sigma_scale[k]] for k in KINDS},
            "time_scale": {k: [float(v) for v in self.time_scale[k]] for k in TIME_KINDS},
            "fit": dict(self.fit),
        }

    @classmethod
    def from_dict(cls, d) -> "Calibration":
        """From config.json's "calibration"; a bad field raises ValueError naming it
        (calibration.events.temperature, …)."""
        cls._check(d)
        e = d["events"]
        return cls(event_temperature=float(e["temperature"]), event_bias=tuple(float(v) for v in e["bias"]),
                   decision_offset=tuple(float(v) for v in e["decision_offset"]), decision_rule=e["decision_rule"],
                   sigma_scale={k: tuple(float(v) for v in d["sigma_scale"][k]) for k in KINDS},
                   time_scale={k: tuple(float(v) for v in d["time_scale"][k]) for k in TIME_KINDS},
                   fit=dict(d.get("fit") or {}),
                   event_by_kind=None if "by_kind" not in e else {
                       k: {"temperature": float(v["temperature"]), "bias": tuple(float(x) for x in v["bias"]),
                           "decision_offset": tuple(float(x) for x in v["decision_offset"])}
                       for k, v in e["by_kind"].items()})

    @staticmethod
    def _check(d) -> None:
        def obj(v, where, keys, optional=()):
            if not isinstance(v, dict):
                raise ValueError(f"{where} must be an object, got {type(v).__name__}")
            unknown, missing = sorted(set(v) - set(keys)), sorted(set(keys) - set(v) - set(optional))
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {unknown}")
            if missing:
                raise ValueError(f"{where}: missing key(s) {missing}")

        def numbers(v, where, n, lo, hi, lo_in):
            ok = isinstance(v, (list, tuple)) and len(v) == n and all(
                not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)
                and (x >= lo if lo_in else x > lo) and x <= hi for x in v)
            if not ok:
                want = f"{'a number' if n == 1 else f'a list of {n} numbers'} in {'[' if lo_in else '('}{lo:g}, {hi:g}]"
                raise ValueError(f"{where} must be {want}, got {str(v if n > 1 or not isinstance(v, list) else v[0])[:80]!r}")

        obj(d, "calibration", _KEYS, optional=("fit",))
        e = d["events"]
        obj(e, "calibration.events", _EVENT_KEYS, optional=("by_kind",))
        groups = [(e, "calibration.events")]
        if "by_kind" in e:
            obj(e["by_kind"], "calibration.events.by_kind", KINDS)
            for k in KINDS:
                obj(e["by_kind"][k], f"calibration.events.by_kind.{k}", _KIND_EVENT_KEYS)
                groups.append((e["by_kind"][k], f"calibration.events.by_kind.{k}"))
        for g, where in groups:
            numbers([g["temperature"]], f"{where}.temperature", 1, 0.0, 1e3, False)
            numbers(g["bias"], f"{where}.bias", N_TYPES, -1e4, 1e4, True)
            numbers(g["decision_offset"], f"{where}.decision_offset", N_TYPES, -1e4, 1e4, True)
        if e["decision_rule"] not in DECISION_RULES:
            raise ValueError(f"calibration.events.decision_rule must be one of {list(DECISION_RULES)}, "
                             f"got {str(e['decision_rule'])[:80]!r}")
        for name, lo, lo_in, kinds in (("sigma_scale", 0.0, False, KINDS), ("time_scale", 0.0, True, TIME_KINDS)):
            obj(d[name], f"calibration.{name}", kinds)
            for k in kinds:
                numbers(d[name][k], f"calibration.{name}.{k}", 2, lo, 1e3, lo_in)
        if not isinstance(d.get("fit", {}), dict):
            raise ValueError(f"calibration.fit must be an object, got {type(d['fit']).__name__}")


# ---- applying ---------------------------------------------------------------------------------

def _const(values, like):
    """A constant vector in the array type and dtype of `like` (numpy array or torch tensor)."""
    if isinstance(like, np.ndarray):
        return np.asarray(values, dtype=like.dtype)
    return torch.as_tensor(values, dtype=like.dtype, device=like.device)


def _per_slot(pair_in, pair_la, j: int, lookahead, like):
    """Element j of the kind's pair for every slot: a Python float when it is the same for every
    slot, else an array shaped like `lookahead` in the dtype of `like`."""
    a, b = float(pair_in[j]), float(pair_la[j])
    if lookahead is None or a == b:
        return a
    if isinstance(like, np.ndarray):
        return np.where(np.asarray(lookahead, bool), b, a).astype(like.dtype)
    return torch.where(torch.as_tensor(lookahead, device=like.device), b, a).to(like.dtype)


def _like_bool(mask, like):
    """A bool mask in the array type (and device) of `like`."""
    if isinstance(like, np.ndarray):
        return np.asarray(mask, bool)
    return torch.as_tensor(mask, device=like.device).bool()


def _pick(keep, a, b):
    """`a` where keep, else `b`; keep is a Python bool or an array of them."""
    if isinstance(keep, (bool, np.bool_)):
        return a if keep else b
    return module(a).where(keep, a, b)


def _scale_quantiles(q, q_log, s_lo, s_hi):
    """q [..., 3] (ms) → q10, q90 moved in log1p space by s_lo, s_hi (floats or [...]); q50 kept.
    Slots with a scale of exactly 1 keep their value bit for bit. Returns (q, q_log or None)."""
    xp = module(q)
    lq = xp.log1p(floor(q, 0.0))
    l10, l50, l90 = lq[..., 0], lq[..., 1], lq[..., 2]
    n10 = floor(l50 - s_lo * (l50 - l10), 0.0)  # s ≥ 0: never above q50, never below 0 ms
    n90 = xp.maximum(cap(l50 + s_hi * (l90 - l50), LOG_TIME_CAP), l50)
    keep_lo, keep_hi = s_lo == 1.0, s_hi == 1.0  # a Python bool, or one per slot
    new_q = xp.stack([_pick(keep_lo, q[..., 0], xp.expm1(n10)), q[..., 1],
                      _pick(keep_hi, q[..., 2], xp.expm1(n90))], -1)
    new_log = None
    if q_log is not None:
        new_log = xp.stack([_pick(keep_lo, q_log[..., 0], n10), q_log[..., 1], _pick(keep_hi, q_log[..., 2], n90)], -1)
    return new_q, new_log


def apply_calibration(out: dict, cal: Calibration | None, lookahead=None) -> dict:
    """The head dict `out` with `cal` applied to whichever heads it holds (a new dict; `out` is
    not changed): `event_logits` (→ logits / T + b, plus `event_decision` [...], the decided
    type), `time_q`/`time_q_log` and `time_q_la`/`time_q_la_log`, `x_logsig`/`y_logsig`.
    `lookahead` [...] bool marks look-ahead slots; None: the kind is unknown (σ takes the in-window
    scales, a single `time_q` the "all" ones). With a crossing time head's `time_q_la` present it
    only matters for σ. cal None returns `out` itself."""
    if cal is None:
        return out
    out = dict(out)
    if "event_logits" in out:
        z = out["event_logits"]  # [..., 4]
        if lookahead is None or cal.event_by_kind is None:
            t, b, d = cal.events(None)
            z = z / float(t) + _const(b, z)
            d = _const(d, z)
        else:  # each slot its kind's T, b and d
            (t_in, b_in, d_in), (t_la, b_la, d_la) = cal.events("in_window"), cal.events("lookahead")
            la = _like_bool(lookahead, z)[..., None]  # [..., 1]
            xp = module(z)
            z = xp.where(la, z / float(t_la) + _const(b_la, z), z / float(t_in) + _const(b_in, z))
            d = xp.where(la, _const(d_la, z), _const(d_in, z))
        out["event_logits"] = z
        out["event_decision"] = (z + d).argmax(-1)
    ts = cal.time_scale
    if "time_q_la" in out:  # a crossing head: each set of quantiles is its kind's
        sets = (("time_q", ts["in_window"], ts["in_window"]), ("time_q_la", ts["lookahead"], ts["lookahead"]))
    elif lookahead is None:  # one set of quantiles, slots of unknown kind
        sets = (("time_q", ts["all"], ts["all"]),)
    else:
        sets = (("time_q", ts["in_window"], ts["lookahead"]),)
    for key, pin, pla in sets:
        if key in out:
            like = out[key]
            s_lo, s_hi = _per_slot(pin, pla, 0, lookahead, like), _per_slot(pin, pla, 1, lookahead, like)
            out[key], new_log = _scale_quantiles(like, out.get(f"{key}_log"), s_lo, s_hi)
            if new_log is not None:
                out[f"{key}_log"] = new_log
    ss = cal.sigma_scale
    for j, key in enumerate(("x_logsig", "y_logsig")):
        if key in out:
            like = out[key]
            log_s = _per_slot([math.log(v) for v in ss["in_window"]], [math.log(v) for v in ss["lookahead"]],
                              j, lookahead, like)
            out[key] = like + log_s
    return out
