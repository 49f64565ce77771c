"""`Scheduler`: performs planned actions at their due times on a monotonic clock (DESIGN §7).

One thread owns the executor's timeline. `submit(actions, tick_start_ns)` only pushes each action
onto a heap keyed by its due time `tick_start_ns + t_ms` (`time.monotonic_ns()` nanoseconds) and
returns: planning runs on the caller's thread, so a slow planner never delays an event already
scheduled. The thread sleeps on a condition until the earliest due time (or a new submission),
then performs due actions in due order (ties: submission order).

- `pipeline` (optional): a `SafetyPipeline` applied in `submit` (callers that filter themselves,
  like the runtime, leave it None). With one, `stop()`/`pause()` also reset its held state.
- Every limit is a *slot*: an action goes out at the first time that is at or after its due
  time and allowed by every limit below; if that slot is more than `max_late_ms` after its due
  time, the action is not performed at all — dropped and counted by the limit that pushed it
  (`late_dropped`, `rate_dropped`, `cooldown_dropped`), never held back to go out in a bunch
  later (a stale click is worse than no click). Each action's timing error (performed − due) is
  kept for statistics; one performed more than `late_ms` after its due time counts as `late`.
- Time floor at perform time: `min_gap_ms` (the safety config's `min_dt_ms`) is enforced again,
  from the *end* of one performed action to the start of the next — the gap the game sees between
  the last input of one and the first of the next, whatever a busy machine makes a perform take.
  The safety layers enforce it on the plan, but an action that runs late would otherwise be
  followed by the next one on time, collapsing the gap.
- Rate limit and cooldowns at perform time (with a `safety_config`, or a pipeline's): the plan
  was filtered on *planned* times, but actions performed late shift into other seconds, so the
  limits are enforced again on *performed* times. The total rate counts every performed action,
  key releases included, over any window of 1 s plus `rate_margin_ms` (slack for whoever
  measures the performed stream, e.g. on the X server); a release is never dropped, so an action
  goes out only when the window also has room for the releases of every key held after it
  (`("key", _)` in `executor.held()`): then no 1 s window of performed actions ever holds more
  than `max_actions_per_s`. Per-type rates (`max_per_s`) and cooldowns count non-release actions
  only, like the safety layers; a cooldown runs from the end of the type's last action.
- A key release is always performed (after the time floor), however late — except a release of
  a key the executor does not hold (the safety clock released it already), which would send
  nothing and is not performed at all (`unheld_dropped`). Every drop also counts in `dropped`.
- `perform_lock` is held while an action is performed and while everything is released; the
  safety clock takes it to force-release, so it never races an action in progress.
- `pause()` drops what is pending and releases everything; submissions while paused are dropped;
  `resume()` accepts new ones. `cancel()` drops what is pending, nothing else. `stop()` drops what
  is pending, stops the thread (it waits for the action in progress, so nothing is pressed after
  the release, but not for the thread to wake up: a stopped thread starts nothing new and ends by
  itself) and releases everything; it is idempotent and safe from any thread, including the
  kill switch's listener thread and the scheduler's own (an executor listener).
- `origin` is the game window's client-area origin on the screen, handed to `executor.perform`;
  set it (or pass `origin=` to `submit`) when the window moves.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import statistics
import threading
import time
from collections import deque

from ..data.action import PlannedAction
from ..data.schema import EVENT_NAMES, EventType, KeyAction

log = logging.getLogger(__name__)


def _is_release(a: PlannedAction) -> bool:
    return int(a.type) == EventType.KEY and int(a.key_action) == KeyAction.RELEASE


class Scheduler:
    def __init__(self, executor, pipeline=None, *, origin: tuple[float, float] = (0, 0), late_ms: float = 5.0,
                 max_late_ms: float = 100.0, min_gap_ms: float | None = None, safety_config=None,
                 max_actions_per_s: float | None = None, max_per_s: dict[str, float] | None = None,
                 cooldown_ms: dict[str, float] | None = None, rate_margin_ms: float = 10.0,
                 stats_size: int = 10_000, start: bool = True) -> None:
        """Limits left None come from `safety_config` (else the pipeline's config); with neither,
        there is no perform-time floor, rate limit or cooldown."""
        self.executor = executor
        self.pipeline = pipeline
        self.origin = origin
        self.late_ms = float(late_ms)
        self.max_late_ms = float(max_late_ms)
        cfg = safety_config if safety_config is not None else getattr(pipeline, "config", None)
        if cfg is not None:
            min_gap_ms = cfg.min_dt_ms if min_gap_ms is None else min_gap_ms
            max_actions_per_s = cfg.max_actions_per_s if max_actions_per_s is None else max_actions_per_s
            max_per_s = cfg.max_per_s if max_per_s is None else max_per_s
            cooldown_ms = cfg.cooldown_ms if cooldown_ms is None else cooldown_ms
        self.min_gap_ns = int((min_gap_ms or 0.0) * 1e6)
        self.max_actions_per_s = None if max_actions_per_s is None else float(max_actions_per_s)
        self.max_per_s = [None if (max_per_s or {}).get(n) is None else float(max_per_s[n]) for n in EVENT_NAMES]
        self.cooldown_ns = [int(float((cooldown_ms or {}).get(n, 0.0)) * 1e6) for n in EVENT_NAMES]
        self.window_ns = int(1e9 + rate_margin_ms * 1e6)
        self._last_end_ns: int | None = None  # when the last performed action ended
        self._performed_ns: deque[int] = deque()  # when each recent performed action ended (all kinds)
        self._performed_by_type: list[deque[int]] = [deque() for _ in EVENT_NAMES]  # ... non-releases by type
        self._last_by_type: list[int | None] = [None] * len(EVENT_NAMES)  # end of the last non-release by type
        self.perform_lock = threading.RLock()
        self.counters = {"submitted": 0, "performed": 0, "late": 0, "dropped": 0, "errors": 0,
                         "late_dropped": 0, "rate_dropped": 0, "cooldown_dropped": 0,
                         "unheld_dropped": 0}
        self.timing_errors_ms: deque[float] = deque(maxlen=stats_size)  # performed − due, ms
        self._heap: list[tuple[int, int, PlannedAction, tuple[float, float]]] = []  # (due ns, seq, action, origin)
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._performing = False
        self._paused = False
        self._stopped = False
        self.stopped_ns: int | None = None  # monotonic ns when stop() finished releasing
        self._thread = threading.Thread(target=self._run, name="ilbot-scheduler", daemon=True)
        if start:
            self._thread.start()

    # -- public API ----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopped

    def submit(self, actions: list[PlannedAction], tick_start_ns: int, origin=None) -> int:
        """Queue each action at tick_start_ns + t_ms (monotonic ns); returns how many were queued."""
        if self.pipeline is not None:
            actions = self.pipeline.filter(actions, tick_start_ns / 1e6)
        origin = self.origin if origin is None else origin
        with self._cond:
            self.counters["submitted"] += len(actions)
            if self._stopped or self._paused:
                self.counters["dropped"] += len(actions)
                return 0
            for a in actions:
                due = int(tick_start_ns + round(float(a.t_ms) * 1e6))
                heapq.heappush(self._heap, (due, next(self._seq), a, origin))
            self._cond.notify()
        return len(actions)

    def cancel(self) -> int:
        """Drop every pending action; returns how many."""
        with self._cond:
            n = len(self._heap)
            self._heap.clear()
            self.counters["dropped"] += n
            self._cond.notify()
        return n

    def pause(self) -> list:
        """Drop what is pending, wait for the action in progress, release everything."""
        with self._cond:
            if self._stopped:
                return []
            self._paused = True
        self.cancel()
        self._wait_idle()
        return self._release_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify()

    def stop(self, timeout: float = 1.0) -> list:
        """Drop what is pending, end the thread, release everything (idempotent); returns what was
        released. It waits only for an action in progress (at most `timeout`), never for the
        thread to wake up and end: once stopped, the thread starts nothing new and ends by itself."""
        with self._cond:
            first = not self._stopped
            self._stopped = True
            n = len(self._heap)
            self._heap.clear()
            self.counters["dropped"] += n
            self._cond.notify_all()
            if threading.current_thread() is not self._thread:
                deadline = time.monotonic() + timeout
                while self._performing and time.monotonic() < deadline:
                    self._cond.wait(max(deadline - time.monotonic(), 0.0))
        released = self._release_all()
        if first:
            self.stopped_ns = time.monotonic_ns()
        return released

    def close(self) -> None:
        self.stop()
        self.executor.close()

    def timing_stats(self) -> dict:
        """Median, p95 and max of (performed − due) in ms over the recent actions."""
        errs = sorted(self.timing_errors_ms)
        if not errs:
            return {"n": 0, "median_ms": None, "p95_ms": None, "max_ms": None}
        return {"n": len(errs), "median_ms": statistics.median(errs),
                "p95_ms": errs[min(len(errs) - 1, int(0.95 * len(errs)))], "max_ms": errs[-1]}

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending or in progress; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._heap or self._performing:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # -- internals -----------------------------------------------------------------------------
    def _wait_idle(self) -> None:
        if threading.current_thread() is self._thread:
            return
        with self._cond:
            while self._performing:
                self._cond.wait()

    def _release_all(self) -> list:
        released = []
        if self.pipeline is not None:
            self.pipeline.release_all()  # bookkeeping; the executor knows what is physically down
        try:
            with self.perform_lock:
                released = self.executor.release_all() or []
        except Exception:
            log.exception("scheduler: release_all failed")
        return released

    def _held(self) -> dict | None:
        """The executor's held keys and buttons, or None when it cannot tell."""
        held = getattr(self.executor, "held", None)
        if held is None:
            return None
        try:
            return held()
        except Exception:
            return None

    def _keys_held(self) -> int:
        return sum(1 for kind, _ in (self._held() or ()) if kind == "key")

    def _releases_nothing(self, action: PlannedAction) -> bool:
        """A key release of a key the executor does not hold (it would send nothing)."""
        held = self._held()
        return held is not None and ("key", int(action.key_id)) not in held

    def _slot(self, action: PlannedAction, due: int, now: int) -> tuple[int, str]:
        """The earliest time at or after `due` that every perform-time limit allows for a
        non-release action, and the limit that set it ("late" when none pushed it past due)."""
        t = int(action.type)
        horizon = now - self.window_ns
        for q in (self._performed_ns, self._performed_by_type[t]):
            while q and q[0] <= horizon:
                q.popleft()
        slot, why = due, "late"
        if self._last_end_ns is not None and self._last_end_ns + self.min_gap_ns > slot:
            slot = self._last_end_ns + self.min_gap_ns
        cd, last = self.cooldown_ns[t], self._last_by_type[t]
        if cd > 0 and last is not None and last + cd > slot:
            slot, why = last + cd, "cooldown"
        # a window may hold `room` more entries before this one: it goes out once enough have left
        limit = self.max_per_s[t]
        q = self._performed_by_type[t]
        if limit is not None and len(q) + 1 > limit:
            room = int(limit) - 1
            free = q[len(q) - room - 1] + self.window_ns if room >= 0 else 1 << 62
            if free > slot:
                slot, why = free, "rate"
        if self.max_actions_per_s is not None:
            press = t == EventType.KEY and int(action.key_action) == KeyAction.PRESS
            room = int(self.max_actions_per_s) - 1 - self._keys_held() - press
            q = self._performed_ns
            if len(q) > room:
                free = q[len(q) - room - 1] + self.window_ns if room >= 0 else 1 << 62
                if free > slot:
                    slot, why = free, "rate"
        return slot, why

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._stopped and not self._heap:
                    cond.wait()
                if self._stopped:
                    return
                due, _, action, origin = self._heap[0]
                now = time.monotonic_ns()
                if due > now:
                    cond.wait((due - now) / 1e9)
                    continue
                if _is_release(action):  # decided before the floor: a no-op must not delay the rest
                    release, why = True, "unheld" if self._releases_nothing(action) else None
                    slot = due if self._last_end_ns is None else max(due, self._last_end_ns + self.min_gap_ns)
                else:
                    release, (slot, why) = False, self._slot(action, due, now)
                    if (max(slot, now) - due) / 1e6 <= self.max_late_ms:
                        why = None
                    elif slot <= now:
                        why = "late"  # late already, whatever the limits say
                if why is None and slot > now:
                    cond.wait((slot - now) / 1e9)
                    continue
                heapq.heappop(self._heap)
                if why is not None:
                    self.counters["dropped"] += 1
                    self.counters[f"{why}_dropped"] += 1
                    continue
                self._performing = True
            try:
                with self.perform_lock:
                    start_ns = time.monotonic_ns()
                    self.executor.perform(action, origin)
                    end_ns = time.monotonic_ns()
                error_ms = (start_ns - due) / 1e6  # when it started, against when it was due
                ok = True
            except Exception:
                log.exception("scheduler: perform failed for %r", action)
                end_ns = time.monotonic_ns()
                ok = False
            with cond:
                self._performing = False
                self._last_end_ns = end_ns
                if ok:
                    self._performed_ns.append(end_ns)
                    if not release:
                        self._performed_by_type[int(action.type)].append(end_ns)
                        self._last_by_type[int(action.type)] = end_ns
                    self.counters["performed"] += 1
                    self.timing_errors_ms.append(error_ms)
                    if error_ms > self.late_ms:
                        self.counters["late"] += 1
                else:
                    self.counters["errors"] += 1
                cond.notify_all()
