"""`Scheduler`: performs planned actions at their due times on a monotonic clock (DESIGN §7).

One thread owns the executor's timeline. `submit(actions, tick_start_ns)` only pushes each action
onto a heap keyed by its due time `tick_start_ns + t_ms` (`time.monotonic_ns()` nanoseconds) and
returns: planning runs on the caller's thread, so a slow planner never delays an event already
scheduled. The thread sleeps on a condition until the earliest due time (or a new submission),
then performs due actions in due order (ties: submission order).

- `pipeline` (optional): a `SafetyPipeline` applied in `submit` (callers that filter themselves,
  like the runtime, leave it None). With one, `stop()`/`pause()` also reset its held state.
- Lateness: each action's timing error (performed − due) is kept for statistics; an action
  performed more than `late_ms` after its due time counts as `late`; one that could only start
  more than `max_late_ms` late is not performed at all (`dropped`; a stale click is worse than no
  click) — except a key release, which is always performed.
- Time floor at perform time: `min_gap_ms` (the safety config's `min_dt_ms`) is enforced again
  here, between the starts of consecutive performed actions. The safety layers enforce it on the
  plan, but an action that runs late (a busy machine) would otherwise be followed by the next one
  on time, collapsing the gap: the next one then waits for the floor instead.
- `pause()` drops what is pending and releases everything; submissions while paused are dropped;
  `resume()` accepts new ones. `cancel()` drops what is pending, nothing else. `stop()` drops what
  is pending, ends the thread (after the action in progress, so nothing is pressed after the
  release) and releases everything; it is idempotent and safe from any thread, including the
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
from ..data.schema import EventType, KeyAction

log = logging.getLogger(__name__)


def _is_release(a: PlannedAction) -> bool:
    return int(a.type) == EventType.KEY and int(a.key_action) == KeyAction.RELEASE


class Scheduler:
    def __init__(self, executor, pipeline=None, *, origin: tuple[float, float] = (0, 0), late_ms: float = 5.0,
                 max_late_ms: float = 100.0, min_gap_ms: float = 0.0, stats_size: int = 10_000,
                 start: bool = True) -> None:
        self.executor = executor
        self.pipeline = pipeline
        self.origin = origin
        self.late_ms = float(late_ms)
        self.max_late_ms = float(max_late_ms)
        self.min_gap_ns = int(min_gap_ms * 1e6)
        self._last_start_ns: int | None = None  # when the last performed action started
        self.counters = {"submitted": 0, "performed": 0, "late": 0, "dropped": 0, "errors": 0}
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
        """Drop what is pending, end the thread, release everything (idempotent); returns what was released."""
        with self._cond:
            first = not self._stopped
            self._stopped = True
            n = len(self._heap)
            self._heap.clear()
            self.counters["dropped"] += n
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
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
            released = self.executor.release_all() or []
        except Exception:
            log.exception("scheduler: release_all failed")
        return released

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
                ready = due if self._last_start_ns is None else max(due, self._last_start_ns + self.min_gap_ns)
                if ready > now:
                    cond.wait((ready - now) / 1e9)
                    continue
                heapq.heappop(self._heap)
                late_ms = (now - due) / 1e6
                if late_ms > self.max_late_ms and not _is_release(action):
                    self.counters["dropped"] += 1
                    continue
                self._performing = True
            start_ns = self._last_start_ns = time.monotonic_ns()
            try:
                self.executor.perform(action, origin)
                error_ms = (start_ns - due) / 1e6  # when it started, against when it was due
                ok = True
            except Exception:
                log.exception("scheduler: perform failed for %r", action)
                ok = False
            with cond:
                self._performing = False
                if ok:
                    self.counters["performed"] += 1
                    self.timing_errors_ms.append(error_ms)
                    if error_ms > self.late_ms:
                        self.counters["late"] += 1
                else:
                    self.counters["errors"] += 1
                cond.notify_all()
