"""Planner (DESIGN §7): one tick's events, sampled slot by slot from the model.

    context ─► encode once ─► slot 0: start token ─► decoder step (key/value cache) ─► heads
              ─► sample the type, then the anchor component, x, y and dt ─► cumulative time ≥ tick?
              stop (that event is not performed) ─► event-specific heads for this event's type
              only ─► embed the sample as the next slot's input ─► …  (at most A slots)

Sampling is seeded: the planner owns a `torch.Generator` seeded at construction, and each tick
draws all its uniforms and normals up front in two calls (fewer ops per slot), so the same seed
and the same sequence of contexts give the same plans. `plan` runs one context (the live agent);
`plan_batch` runs many at once (evaluation's free-running samples: one decoder step serves every
row, rows stop independently, the batch runs until every row has stopped); `sample_slots` returns
the raw per-slot samples as arrays for metrics. A batch consumes the generator differently from
the same contexts planned one by one, so the draws differ (each is reproducible).

With a crossing time head (ModelConfig.time_head) a slot also draws whether its event falls
after the tick's end (the head's probability); such a slot is the crossing one whatever its
in-window dt, and an in-window dt that runs past the end crosses too.

The event type is drawn before the position. With ModelConfig.xy_by_type the position heads
(and the anchor mixture) are then evaluated for the drawn type (IncrementalDecoder.position), so a
drawn CLICK takes the click position distribution; without it they do not depend on the type.
With ModelConfig.time_by_type the time quantiles likewise (IncrementalDecoder.timing); the
crossing draw comes before the type and does not depend on it.
The draws use the same uniforms either way (one stream per kind, drawn up front).

Temperatures (`Temperature`: one per kind of draw, the model's own `sampling` times the run's
scalar) apply to every draw: event type and the event-specific classes (logits / T.event), time
(distance from the median in log space × T.time; a crossing head's probability of crossing the
tick's end, logit / T.cross, which defaults to T.time) and position (σ × T.position, anchor logits / T.position); T = 0
gives the mode. The plan reports the model's own σ
and probabilities (at T = 1), whatever the temperature.

Calibration (ilbot.model.calibration): the planner applies its model's `model.calibration` (set by
load_checkpoint from config.json; or the one given as `calibration=`) to every slot's head
outputs before drawing from them, with `apply_calibration` — the function the evaluator uses. The
slot's kind is the crossing head's draw (a slot drawn as crossing takes the look-ahead σ scales);
the time quantiles of a crossing head are per kind already. Without a crossing head the kind is
unknown while the slot is drawn: σ takes the in-window scales (a performed event is inside the
tick) and the wait the scales fitted on all slots (it decides itself whether the tick ends). At T = 0 the event type is the calibration's decision
(`event_decision`: argmax of the calibrated log-probabilities plus the decision rule's offsets);
at T > 0 it is drawn from the calibrated probabilities, which the plan reports. The random
streams are the same with and without a calibration, and an identity calibration gives the same
plans bit for bit.

The planner copies the decoder's weights when it is built (IncrementalDecoder): build it after
training or loading, and again if the weights change.

Threads: torch's intra-op pool helps nothing at one row of width 128 (each op is a few µs of
work; thread hand-off costs about as much) and hurts on a shared 2-core machine, so planning
runs with one thread by default (`threads=1`; None leaves the settings alone). The same limit
applies to numpy's OpenBLAS pool (threadpoolctl): with a batch (e.g. 64 rows) its threads
busy-wait against each other on a loaded machine — measured 2.4 s for one 64-row tick with the
default pool, 0.07 s with one thread. Both counts are process-wide, so they are set around each
call and restored after.
"""

from __future__ import annotations

import contextlib
import gc
from functools import lru_cache

import numpy as np
import torch

from ..data.action import PlannedAction
from ..data.schema import CONTEXT_FIELDS, POINTER_FIELDS, TICK_MS, EventType
from .calibration import Calibration, apply_calibration
from .fields import context_pointer, last_history_xy
from .incremental import IncrementalDecoder
from .model import UnifiedEventModel
from .recent import RecentBuffer
from .sampling import (Temperature, categorical_inverse_cdf, sample_categorical, sample_event, sample_time, sample_xy,
                       sample_xy_laplace, sample_xy_laplace_mix)
from .xp import softmax

_INT_FIELDS = ("type", "button", "key_action", "key_id", "scroll_y")

# event type → the event-specific heads it needs, each with its column in a slot's uniforms
_HEADS_BY_TYPE = ((int(EventType.CLICK), (("button", 2),)),
                  (int(EventType.KEY), (("key_action", 3), ("key_id", 4))),
                  (int(EventType.SCROLL), (("scroll_y", 5),)))

# the fields `sample_slots` returns, each [B, A]
SLOT_FIELDS = ("type", "dt_ms", "t_ms", "x", "y", "sigma_x", "sigma_y", "button", "key_action", "key_id",
               "scroll_y", "p_click", "p_key", "p_scroll", "p_move", "q10", "q50", "q90")


@lru_cache(maxsize=1)
def _blas_pools():
    """numpy's BLAS thread pools (threadpoolctl), found once per process."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a declared dependency; without it BLAS keeps its own setting
        return None
    return ThreadpoolController().select(user_api="blas")


def _blas_threads(n: int | None):
    """Limit numpy's BLAS pool to n threads for the duration (~8 µs to enter and leave)."""
    pools = _blas_pools() if n is not None else None
    return pools.limit(limits=n) if pools is not None else contextlib.nullcontext()


_FROM_MODEL = object()  # Planner(calibration=...) default: the model's own `calibration` attribute


class Planner:
    def __init__(self, model: UnifiedEventModel, *, temperature: "float | Temperature" = 1.0, seed: int = 0, threads: int | None = 1,
                 calibration: Calibration | None = _FROM_MODEL):
        self.model = model
        self.cfg = model.cfg
        # post-hoc calibration of the heads (None: the raw heads)
        self.calibration = getattr(model, "calibration", None) if calibration is _FROM_MODEL else calibration
        # the model's own sampling temperatures (config.json "sampling"), times the given scalar;
        # a Temperature given whole replaces them
        own = Temperature.of(getattr(model, "sampling", None))
        self.temperature = temperature if isinstance(temperature, Temperature) else own.scaled(float(temperature))
        self.threads = threads
        self.generator = torch.Generator().manual_seed(int(seed))
        self.decoder = IncrementalDecoder(model)
        # rows each event-specific head has been computed for (they run only where needed)
        self.head_rows = {"button": 0, "key_action": 0, "key_id": 0, "scroll_y": 0}

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    # ---- public -----------------------------------------------------------------------------
    def plan(self, context: dict, *, tick_ms: float = TICK_MS, window_size=(1.0, 1.0), max_slots: int | None = None) -> list[PlannedAction]:
        """One tick's plan for one context (unbatched numpy gamestate [T,F], history [T,A,8],
        history_mask [T,A], optional pointer [3]): the events whose cumulative time stays inside the tick, in order,
        t_ms since the tick start, positions and σ in pixels (normalised × window size; not
        clipped — the safety layers do that), hold_ms = 0 (the runtime fills it)."""
        batch = {k: np.asarray(context[k])[None] for k in CONTEXT_FIELDS if k in context}
        return self.plan_batch(batch, tick_ms=tick_ms, window_size=window_size, max_slots=max_slots)[0]

    def plan_batch(self, contexts: dict, *, tick_ms: float = TICK_MS, window_size=(1.0, 1.0),
                   max_slots: int | None = None) -> list[list[PlannedAction]]:
        """Plans for a batch of contexts (numpy or torch, gamestate [B,T,F], history [B,T,A,8],
        history_mask [B,T,A], optional pointer [B,3]); window_size is (w, h) for all rows or [B,2].
        → one list per row."""
        s = self.sample_slots(contexts, tick_ms=tick_ms, max_slots=max_slots)
        B = s["type"].shape[0]
        wh = np.broadcast_to(np.asarray(window_size, np.float64).reshape(-1, 2), (B, 2))
        plans = []
        for b in range(B):
            w, h = float(wh[b, 0]), float(wh[b, 1])
            n = int(s["n_events"][b])
            c = {k: s[k][b, :n].tolist() for k in SLOT_FIELDS}  # python numbers, fast to read
            plans.append([PlannedAction(
                type=EventType(c["type"][i]), t_ms=c["t_ms"][i], x=c["x"][i] * w, y=c["y"][i] * h,
                sigma_x=c["sigma_x"][i] * w, sigma_y=c["sigma_y"][i] * h, button=c["button"][i],
                key_action=c["key_action"][i], key_id=c["key_id"][i], scroll_y=c["scroll_y"][i], hold_ms=0.0,
                event_probs=(c["p_click"][i], c["p_key"][i], c["p_scroll"][i], c["p_move"][i]),
                time_q=(c["q10"][i], c["q50"][i], c["q90"][i]),
            ) for i in range(n)])
        return plans

    def sample_slots(self, contexts: dict, *, tick_ms: float = TICK_MS, max_slots: int | None = None) -> dict[str, np.ndarray]:
        """Raw per-slot samples: each SLOT_FIELDS name → [B, A] array (x, y, σ normalised),
        plus `performed` [B, A] bool (the events inside the tick), `n_events` [B] and `idle` [B]
        (no event inside the tick). Slots after a row's crossing event are zero. `max_slots`
        stops decoding after that many slots (default: all A)."""
        prev, was_training = torch.get_num_threads(), self.model.training
        if self.threads is not None and self.threads != prev:
            torch.set_num_threads(self.threads)
        if was_training:
            self.model.eval()  # no dropout in the context encoder; the caller's mode is restored after
        gc_was_enabled = gc.isenabled()
        gc.disable()  # a cyclic-GC pass mid-tick is a latency spike; temporaries here are freed by refcount
        try:
            with torch.inference_mode(), _blas_threads(self.threads):
                return self._sample(contexts, float(tick_ms), max_slots)
        finally:
            if gc_was_enabled:
                gc.enable()
            if was_training:
                self.model.train(True)
            if torch.get_num_threads() != prev:
                torch.set_num_threads(prev)

    # ---- the loop ---------------------------------------------------------------------------
    def _sample(self, contexts: dict, tick_ms: float, max_slots: int | None) -> dict[str, np.ndarray]:
        batch = {k: torch.as_tensor(contexts[k]) for k in CONTEXT_FIELDS if k in contexts}
        self._check_shapes(batch)
        B, A, T = batch["gamestate"].shape[0], self.cfg.n_slots, self.temperature
        n_slots = A if max_slots is None else max(0, min(int(max_slots), A))
        dec, g = self.decoder, self.generator
        state = dec.start(self.model.encode(batch))  # caches; context [B,T,d] → folded cross-attention
        U = torch.rand(A, 6, B, generator=g).numpy()  # per slot: event, time, button, key_action, key_id, scroll
        N = torch.randn(A, 2, B, generator=g)  # per slot: x, y noise
        laplace = self.cfg.xy_dist in ("laplace", "laplace_mix")
        N = (torch.special.ndtr(N) if laplace else N).numpy()  # a Laplace samples by its inverse CDF: Φ(noise) is uniform
        crossing = self.model.time_head.crossing  # drawn after the others: older models keep their streams
        cal = self.calibration
        Uc = torch.rand(A, B, generator=g).numpy() if crossing else None  # per slot: does it cross the tick's end
        anchors = self.model.anchors
        by_type, time_by_type = dec.by_type is not None, dec.time_by_type is not None
        Ua = torch.rand(A, B, generator=g).numpy() if anchors is not None else None  # per slot: the mixture component
        scale_mix = self.cfg.xy_dist == "laplace_mix"  # the component of a Laplace scale mixture: drawn last, per slot
        Um = torch.rand(A, B, generator=g).numpy() if scale_mix else None
        slots = []  # per decoded slot: its arrays, stacked into [B, A] fields once at the end
        zeros = np.zeros(B, np.int64)
        active = np.ones(B, bool)  # rows that have not crossed the tick's end
        cum = np.zeros(B)  # ms since the tick start
        x = np.repeat(dec.start_in[None], B, axis=0)  # [B,d] slot 0's input
        # xy_residual, xy_step_input, anchors: the previous event's position (slot 0: the last history event)
        history = (batch["history"].float(), batch["history_mask"])
        track = dec.xy_residual or anchors is not None or dec.step_w is not None
        pointer = context_pointer(batch, batch["gamestate"]) if self.cfg.pointer_input else None  # [B,3]
        prev_xy = last_history_xy(*history, pointer=pointer).numpy() if track else None
        prev2_xy = last_history_xy(*history, before=1, pointer=pointer).numpy() if dec.step_w is not None else None  # the event before
        pointer_term = None if pointer is None else dec.pointer_input(pointer.numpy())  # [B,d], every slot's
        recent = None if self.model.recent is None else RecentBuffer(self.model.recent, *history)  # recent_events
        if anchors is not None:
            pos, valid = (a.numpy() for a in anchors.positions(batch["gamestate"]))  # [B,K,2], [B,K]
        for i in range(n_slots):
            extra = dec.elapsed_input(cum, tick_ms)  # slot_elapsed_input: time from tick start to the previous event
            if extra is not None:
                x = x + extra
            if prev2_xy is not None:  # xy_step_input: the step between the previous two events
                x = x + dec.step_input(prev_xy, prev2_xy)
            if pointer_term is not None:  # pointer_input: the pointer row, in every slot's input
                x = x + pointer_term
            if recent is not None:  # recent_events: the K events before this slot
                x = x + recent.term()
            parts = None
            if anchors is not None:
                extra, parts = dec.anchor_input(pos, valid, prev_xy)  # [B,d], what core() needs
                x = x + extra
            hn = dec.step(state, x, i)  # [B,d]
            out = dec.core(hn, prev_xy, parts)  # with xy_by_type / time_by_type: without the position / time quantiles
            crosses = np.zeros(B, bool)
            if crossing:  # the head says whether this slot is past the tick's end (its kind, for the calibration)
                logit = out["cross_logit"]
                crosses = logit > 0 if T.crossing <= 0 else Uc[i] < 1.0 / (1.0 + np.exp(-logit / T.crossing))
            kind = crosses if crossing else None  # look-ahead slots; None: unknown (no crossing head)
            if cal is not None:
                out = apply_calibration(out, cal, kind)
            probs = softmax(out["event_logits"])  # [B,4] the model's own (calibrated), at T = 1
            etype = (categorical_inverse_cdf(probs, U[i, 0]) if T.event == 1.0
                     else out["event_decision"] if cal is not None and T.event <= 0
                     else sample_event(out["event_logits"], T.event, u=U[i, 0]))  # [B] the type first …
            if by_type:  # … then the position distribution given it
                xy_out = dec.position(hn, prev_xy, parts, etype)
                out.update(xy_out if cal is None else apply_calibration(xy_out, cal, kind))
            if time_by_type:  # … and the time quantiles given it
                t_out = dec.timing(hn, etype)
                out.update(t_out if cal is None else apply_calibration(t_out, cal, kind))
            if anchors is not None:  # draw the mixture component, and shift the mean to it
                j = sample_categorical(out["anchor_logits"], T.position, u=Ua[i])  # [B]
                shift = out["anchor_shift"][np.arange(B), j]  # [B,2]
                out["x_mu"], out["y_mu"] = out["x_mu"] + shift[:, 0], out["y_mu"] + shift[:, 1]
            dt = sample_time(out["time_q"], T.time, u=U[i, 1]).astype(np.float64)  # [B] ms
            if scale_mix:
                px, py = sample_xy_laplace_mix(out, T.position, u=np.stack([Um[i], N[i, 0], N[i, 1]], -1))
            elif laplace:
                px = sample_xy_laplace(out["x_mu"], out["x_logsig"], T.position, u=N[i, 0])
                py = sample_xy_laplace(out["y_mu"], out["y_logsig"], T.position, u=N[i, 1])
            else:
                px = sample_xy(out["x_mu"], out["x_logsig"], T.position, noise=N[i, 0])
                py = sample_xy(out["y_mu"], out["y_logsig"], T.position, noise=N[i, 1])
            if prev_xy is not None:
                if prev2_xy is not None:
                    prev2_xy = prev_xy
                prev_xy = np.stack([px, py], axis=-1)  # [B,2] next slot's origin
            if crossing:  # a slot past the tick's end takes the look-ahead's dt
                dt_la = sample_time(out["time_q_la"], T.time, u=U[i, 1]).astype(np.float64)
                dt = np.where(crosses, np.maximum(dt_la, tick_ms - cum), dt)
            cum = cum + dt
            active = active & ~crosses & (cum < tick_ms)  # this slot's event is performed; the crossing one is not
            if not active.any():
                slots.append((etype, dt, cum, px, py, out, probs, active, zeros, zeros, zeros, zeros))
                break
            f = self._event_fields(hn, etype, active, U[i])  # button, key_action, key_id, scroll_y [B] each
            slots.append((etype, dt, cum, px, py, out, probs, active, f["button"], f["key_action"], f["key_id"], f["scroll_y"]))
            if recent is not None:
                recent.push(dt, px, py, etype)
            if i + 1 < n_slots:  # the sample becomes slot i+1's input
                x = dec.embed(etype, dt, px, py, f["button"], f["key_action"], f["key_id"], f["scroll_y"], cum, i + 1)
        return self._stack(slots, B, A)

    @staticmethod
    def _stack(slots: list, B: int, A: int) -> dict[str, np.ndarray]:
        """Per-slot tuples → SLOT_FIELDS [B, A] (zero after a row's last performed event),
        performed [B, A], n_events [B], idle [B]."""
        n = len(slots)
        performed = np.zeros((B, A), bool)
        res = {k: np.zeros((B, A), np.int64 if k in _INT_FIELDS else np.float64) for k in SLOT_FIELDS}
        if n:
            performed[:, :n] = np.stack([s[7] for s in slots], axis=1)
            col = lambda j: np.stack([s[j] for s in slots], axis=1)  # noqa: E731 — [B, n]
            outs = [s[5] for s in slots]
            ev = np.stack([s[6] for s in slots], axis=1)  # [B, n, 4]
            tq = np.stack([o["time_q"] for o in outs], axis=1)  # [B, n, 3]
            values = {
                "type": col(0), "dt_ms": col(1), "t_ms": col(2), "x": col(3), "y": col(4),
                "sigma_x": np.exp(np.stack([o["x_logsig"] for o in outs], axis=1)),
                "sigma_y": np.exp(np.stack([o["y_logsig"] for o in outs], axis=1)),
                "p_click": ev[..., 0], "p_key": ev[..., 1], "p_scroll": ev[..., 2], "p_move": ev[..., 3],
                "q10": tq[..., 0], "q50": tq[..., 1], "q90": tq[..., 2],
                "button": col(8), "key_action": col(9), "key_id": col(10), "scroll_y": col(11),
            }
            for k, v in values.items():
                res[k][:, :n] = np.where(performed[:, :n], v, 0)
        res["performed"] = performed
        res["n_events"] = performed.sum(1)
        res["idle"] = res["n_events"] == 0
        return res

    def _check_shapes(self, batch: dict) -> None:
        c = self.cfg
        B = batch["gamestate"].shape[0]
        want = {"gamestate": (B, c.n_ticks, c.n_features), "history": (B, c.n_ticks, c.n_slots, 8),
                "history_mask": (B, c.n_ticks, c.n_slots)}
        if "pointer" in batch:
            want["pointer"] = (B, len(POINTER_FIELDS))
        for k, shape in want.items():
            if tuple(batch[k].shape) != shape:
                raise ValueError(f"Planner: context {k} has shape {tuple(batch[k].shape)[1:]}, the model needs "
                                 f"{shape[1:]} (model config n_ticks={c.n_ticks}, n_features={c.n_features}, n_slots={c.n_slots})")

    def _event_fields(self, hn: np.ndarray, etype: np.ndarray, active: np.ndarray, u: np.ndarray) -> dict:
        """The event-specific heads, run only on the rows whose sampled event needs them:
        button | CLICK, key_action and key_id | KEY, scroll_y | SCROLL. u [6, B]: the slot's uniforms.

        For button, key_action and scroll_y, class 0 means "none"; the sampled type already says
        one is set, so the draw is among the real classes (class 0 masked). key_id 0 is UNK, a
        real key, and stays in."""
        B = hn.shape[0]
        fields = {k: np.zeros(B, np.int64) for k in ("button", "key_action", "key_id", "scroll_y")}
        need = active & (etype != int(EventType.MOVE))
        if not need.any():  # all MOVEs (the common case): no event-specific head runs
            return fields
        for etv, names in _HEADS_BY_TYPE:
            rows = (need & (etype == etv)).nonzero()[0]
            if rows.size == 0:
                continue
            h = hn if rows.size == B else hn[rows]
            for name, ui in names:
                logits = self.decoder.event_logits(name, h)
                self.head_rows[name] += rows.size
                if name != "key_id":
                    logits[:, 0] = -np.inf
                fields[name][rows] = sample_categorical(logits, self.temperature.event, u=u[ui, rows])
        return fields
