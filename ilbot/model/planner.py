"""Planner (DESIGN §7): one tick's events, sampled slot by slot from the model.

    context ─► encode once ─► slot 0: start token ─► decoder step (key/value cache) ─► heads
              ─► sample type, dt, x, y ─► cumulative time ≥ tick? stop (that event is not
              performed) ─► event-specific heads for this event's type only ─► embed the sample
              as the next slot's input ─► …  (at most A slots)

Sampling is seeded: the planner owns a `torch.Generator` seeded at construction, and each tick
draws all its uniforms and normals up front in two calls (fewer ops per slot), so the same seed
and the same sequence of contexts give the same plans. `plan` runs one context (the live agent);
`plan_batch` runs many at once (evaluation's free-running samples: one decoder step serves every
row, rows stop independently, the batch runs until every row has stopped); `sample_slots` returns
the raw per-slot samples as arrays for metrics. A batch consumes the generator differently from
the same contexts planned one by one, so the draws differ (each is reproducible).

Temperature applies to every draw: event type (logits / T), time (distance from the median in
log space × T) and position (σ × T); T = 0 gives the mode. The plan reports the model's own σ
and probabilities (at T = 1), whatever the temperature.

Threads: torch's intra-op pool helps nothing at one row of width 128 (each op is a few µs of
work; thread hand-off costs about as much) and hurts on a shared 2-core machine, so planning
runs with one thread by default (`threads=1`; None leaves torch's setting alone). The thread
count is process-wide in torch, so it is set around each call and restored after.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.action import PlannedAction
from ..data.schema import TICK_MS, EventType
from .incremental import IncrementalDecoder
from .model import UnifiedEventModel
from .sampling import sample_categorical, sample_event, sample_time, sample_xy, softmax

# event type → the event-specific heads it needs, each with its column in a slot's uniforms
_HEADS_BY_TYPE = ((int(EventType.CLICK), (("button", 2),)),
                  (int(EventType.KEY), (("key_action", 3), ("key_id", 4))),
                  (int(EventType.SCROLL), (("scroll_y", 5),)))

# the fields `sample_slots` returns, each [B, A]
SLOT_FIELDS = ("type", "dt_ms", "t_ms", "x", "y", "sigma_x", "sigma_y", "button", "key_action", "key_id",
               "scroll_y", "p_click", "p_key", "p_scroll", "p_move", "q10", "q50", "q90")


class Planner:
    def __init__(self, model: UnifiedEventModel, *, temperature: float = 1.0, seed: int = 0, threads: int | None = 1):
        self.model = model.eval()
        self.cfg = model.cfg
        self.temperature = float(temperature)
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
        history_mask [T,A]): the events whose cumulative time stays inside the tick, in order,
        t_ms since the tick start, positions and σ in pixels (normalised × window size; not
        clipped — the safety layers do that), hold_ms = 0 (the runtime fills it)."""
        batch = {k: np.asarray(context[k])[None] for k in ("gamestate", "history", "history_mask")}
        return self.plan_batch(batch, tick_ms=tick_ms, window_size=window_size, max_slots=max_slots)[0]

    def plan_batch(self, contexts: dict, *, tick_ms: float = TICK_MS, window_size=(1.0, 1.0),
                   max_slots: int | None = None) -> list[list[PlannedAction]]:
        """Plans for a batch of contexts (numpy or torch, gamestate [B,T,F], history [B,T,A,8],
        history_mask [B,T,A]); window_size is (w, h) for all rows or [B,2]. → one list per row."""
        s = self.sample_slots(contexts, tick_ms=tick_ms, max_slots=max_slots)
        B = s["type"].shape[0]
        wh = np.broadcast_to(np.asarray(window_size, np.float64).reshape(-1, 2), (B, 2))
        plans = []
        for b in range(B):
            w, h = float(wh[b, 0]), float(wh[b, 1])
            n = int(s["n_events"][b])
            plans.append([PlannedAction(
                type=EventType(int(s["type"][b, i])), t_ms=float(s["t_ms"][b, i]),
                x=float(s["x"][b, i]) * w, y=float(s["y"][b, i]) * h,
                sigma_x=float(s["sigma_x"][b, i]) * w, sigma_y=float(s["sigma_y"][b, i]) * h,
                button=int(s["button"][b, i]), key_action=int(s["key_action"][b, i]), key_id=int(s["key_id"][b, i]),
                scroll_y=int(s["scroll_y"][b, i]), hold_ms=0.0,
                event_probs=tuple(float(s[k][b, i]) for k in ("p_click", "p_key", "p_scroll", "p_move")),
                time_q=tuple(float(s[k][b, i]) for k in ("q10", "q50", "q90")),
            ) for i in range(n)])
        return plans

    def sample_slots(self, contexts: dict, *, tick_ms: float = TICK_MS, max_slots: int | None = None) -> dict[str, np.ndarray]:
        """Raw per-slot samples: each SLOT_FIELDS name → [B, A] array (x, y, σ normalised),
        plus `performed` [B, A] bool (the events inside the tick), `n_events` [B] and `idle` [B]
        (no event inside the tick). Slots after a row's crossing event are zero. `max_slots`
        stops decoding after that many slots (default: all A)."""
        prev = torch.get_num_threads()
        if self.threads is not None and self.threads != prev:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                return self._sample(contexts, float(tick_ms), max_slots)
        finally:
            if torch.get_num_threads() != prev:
                torch.set_num_threads(prev)

    # ---- the loop ---------------------------------------------------------------------------
    def _sample(self, contexts: dict, tick_ms: float, max_slots: int | None) -> dict[str, np.ndarray]:
        batch = {k: torch.as_tensor(contexts[k]) for k in ("gamestate", "history", "history_mask")}
        B, A, T_ = batch["gamestate"].shape[0], self.cfg.n_slots, self.temperature
        n_slots = A if max_slots is None else max(0, min(int(max_slots), A))
        dec, g = self.decoder, self.generator
        state = dec.start(self.model.encode(batch))  # caches; context [B,T,d] → folded cross-attention
        U = torch.rand(A, 6, B, generator=g).numpy()  # per slot: event, time, button, key_action, key_id, scroll
        N = torch.randn(A, 2, B, generator=g).numpy()  # per slot: x, y noise
        rec = {k: np.zeros((B, A), np.float64) for k in SLOT_FIELDS}
        performed = np.zeros((B, A), bool)
        active = np.ones(B, bool)  # rows that have not crossed the tick's end
        cum = np.zeros(B)  # ms since the tick start
        x = np.repeat(dec.start_in[None], B, axis=0)  # [B,d] slot 0's input
        for i in range(n_slots):
            hn = dec.step(state, x, i)  # [B,d]
            out = dec.core(hn)
            etype = sample_event(out["event_logits"], T_, u=U[i, 0])  # [B]
            dt = sample_time(out["time_q"], T_, u=U[i, 1]).astype(np.float64)  # [B] ms
            px = sample_xy(out["x_mu"], out["x_logsig"], T_, noise=N[i, 0])
            py = sample_xy(out["y_mu"], out["y_logsig"], T_, noise=N[i, 1])
            cum = cum + dt
            active &= cum < tick_ms  # this slot's event is performed; the crossing one is not
            performed[:, i] = active
            probs = softmax(out["event_logits"])  # [B,4] the model's own, at T = 1
            tq = out["time_q"]
            for k, v in (("type", etype), ("dt_ms", dt), ("t_ms", cum), ("x", px), ("y", py),
                         ("sigma_x", np.exp(out["x_logsig"])), ("sigma_y", np.exp(out["y_logsig"])),
                         ("p_click", probs[:, 0]), ("p_key", probs[:, 1]), ("p_scroll", probs[:, 2]),
                         ("p_move", probs[:, 3]), ("q10", tq[:, 0]), ("q50", tq[:, 1]), ("q90", tq[:, 2])):
                rec[k][:, i] = v
            if not active.any():
                break
            fields = self._event_fields(hn, etype, active, U[i])  # button, key_action, key_id, scroll_y [B] each
            for k, v in fields.items():
                rec[k][:, i] = v
            if i + 1 < n_slots:  # the sample becomes slot i+1's input
                x = dec.embed(etype, dt, px, py, fields["button"], fields["key_action"], fields["key_id"],
                              fields["scroll_y"], cum, i + 1)
        res = {k: np.where(performed, v, 0.0) for k, v in rec.items()}
        for k in ("type", "button", "key_action", "key_id", "scroll_y"):
            res[k] = res[k].astype(np.int64)
        res["performed"] = performed
        res["n_events"] = performed.sum(1)
        res["idle"] = res["n_events"] == 0
        return res

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
                fields[name][rows] = sample_categorical(logits, self.temperature, u=u[ui, rows])
        return fields
