"""`SafetyClock`: the forced releases that must never wait for a plan or a capture poll.

The safety layers (`SafetyPipeline`) act on plans, so they act only when a plan arrives; a
planner that stalls, a capture source that stops, or a process that was stopped would otherwise
leave a key held. The clock is its own daemon thread on `time.monotonic_ns()`; every `period_ms`
(10 ms by default), whatever else happens, it:

1. **notices a suspension**: when its own loop did not run for more than `suspend_gap_ms`
   (250 ms by default, far above the period; `ilbot.agent.supervision` uses 1 s so that a busy
   machine never pauses a run for nothing: the process was stopped — SIGSTOP, or Ctrl+Z and
   then SIGCONT — or frozen, e.g. a C call holding the GIL), it releases everything the executor
   holds ("suspended"; the guardian may have let go of them already) and calls
   `on_suspended(gap_ms)`: the run pauses;
2. **force-releases what is held too long**: each key the executor has held longer than
   `max_hold_ms` ("max_hold") and each button longer than `max_click_hold_ms`
   ("max_click_hold"), read from `executor.held()` ({what: since_ns}) and released with
   `executor.release(what, since_ns)` — only that very press, so a release decided on an old
   reading never hits a newer press;
3. **notices stale game state**: when `last_fresh_ns()` (the monotonic ns of the newest fresh
   game state, None while there has been none) is older than `stale_ticks × tick_ms`, it releases
   everything ("stale"), keeps releasing whatever gets held while the state stays stale, and calls
   `on_stale(age_ms)` once per stale spell (again only after fresh state came back in between);
4. **beats the heartbeat**: `heartbeat()` (the guardian's `beat`) once per period, after the
   checks — so a clock that is stuck (on the perform lock of a hung action, say) stops beating and
   the guardian takes over.

Every release happens under `lock` — pass the scheduler's `perform_lock`, so a release never
races an action being performed. The callbacks (`on_release(what, reason)` for each forced release,
`on_stale`, `on_suspended`) run in order on one helper thread, never on the clock's: a callback
that pauses the run and waits for it cannot delay the clock or its heartbeat. `counters` counts
releases by reason (`released_<reason>`) and events (`stale`, `suspended`, `beats`, errors).
`release_all(reason)` releases everything now, from any thread; `stop(release=True)` ends the
thread (and releases everything, "stop").
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from typing import Callable

from .config import SafetyConfig

log = logging.getLogger(__name__)

Held = tuple[str, int]  # ("key", key_id) or ("button", button)


class SafetyClock:
    def __init__(self, executor, config: SafetyConfig | None = None, *, lock=None, period_ms: float = 10.0,
                 last_fresh_ns: Callable[[], int | None] | None = None,
                 on_stale: Callable[[float], object] | None = None,
                 on_suspended: Callable[[float], object] | None = None,
                 on_release: Callable[[Held, str], object] | None = None,
                 heartbeat: Callable[[], object] | None = None,
                 suspend_gap_ms: float = 250.0, start: bool = True) -> None:
        cfg = config or SafetyConfig()
        self.executor = executor
        self.lock = lock if lock is not None else threading.RLock()
        self.period_ns = int(period_ms * 1e6)
        self.max_hold_ns = int(cfg.max_hold_ms * 1e6)
        self.max_click_hold_ns = int(cfg.max_click_hold_ms * 1e6)
        self.stale_ns = int(cfg.stale_ticks * cfg.tick_ms * 1e6)
        self.suspend_gap_ns = int(suspend_gap_ms * 1e6)
        self.last_fresh_ns = last_fresh_ns
        self.on_stale = on_stale
        self.on_suspended = on_suspended
        self.on_release = on_release
        self.heartbeat = heartbeat
        self.counters: Counter[str] = Counter()
        self.stale = False
        self._stop = threading.Event()
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._caller = threading.Thread(target=self._call_loop, name="ilbot-safety-callbacks", daemon=True)
        self._thread = threading.Thread(target=self._run, name="ilbot-safety-clock", daemon=True)
        if start:
            self.start()

    # -- control -----------------------------------------------------------------------------
    def start(self) -> "SafetyClock":
        if not self._thread.is_alive() and not self._stop.is_set():
            self._caller.start()
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, release: bool = True, timeout: float = 1.0) -> list[Held]:
        """End the clock (idempotent, from any thread); with `release`, release everything ("stop")."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        released = self.release_all("stop") if release else []
        self._calls.put(None)  # the helper thread ends after the calls queued before it
        return released

    def release_all(self, reason: str = "release_all") -> list[Held]:
        """Release everything the executor holds, now; returns what was released."""
        with self.lock:
            return [w for w, since in self._held().items() if self._release(w, since, reason)]

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        last = time.monotonic_ns()
        while not self._stop.wait(self.period_ns / 1e9):
            now = time.monotonic_ns()
            gap, last = now - last, now
            try:
                self._check(now, gap)
            except Exception:  # never let the clock die: it is what keeps everything else safe
                self.counters["errors"] += 1
                log.exception("safety clock: check failed")
            if self.heartbeat is not None:
                try:
                    self.heartbeat()
                    self.counters["beats"] += 1
                except Exception:
                    self.counters["heartbeat_errors"] += 1
                    log.exception("safety clock: heartbeat failed")

    def _check(self, now: int, gap: int) -> None:
        if gap > self.suspend_gap_ns:
            self.counters["suspended"] += 1
            self.release_all("suspended")
            self._dispatch(self.on_suspended, gap / 1e6)
        fresh = self.last_fresh_ns() if self.last_fresh_ns is not None else None
        age = None if fresh is None else now - fresh
        if age is not None and age > self.stale_ns:
            first = not self.stale
            self.stale = True
            if self._held():
                self.release_all("stale")
            if first:
                self.counters["stale"] += 1
                self._dispatch(self.on_stale, age / 1e6)
        else:
            self.stale = False
        held = self._held()
        if not held:
            return
        now = time.monotonic_ns()
        over = [(w, since) for w, since in held.items()
                if now - since > (self.max_hold_ns if w[0] == "key" else self.max_click_hold_ns)]
        if over:
            with self.lock:
                for w, since in over:
                    self._release(w, since, "max_hold" if w[0] == "key" else "max_click_hold")

    # -- helpers -----------------------------------------------------------------------------
    def _held(self) -> dict[Held, int]:
        return dict(self.executor.held())

    def _release(self, what: Held, since: int, reason: str) -> bool:
        try:
            done = self.executor.release(what, since)
        except Exception:
            self.counters["errors"] += 1
            log.exception("safety clock: release of %r failed", what)
            return False
        if done:
            self.counters[f"released_{reason}"] += 1
            log.info("safety clock: released %s %s (%s)", what[0], what[1], reason)
            self._dispatch(self.on_release, what, reason)
        return done

    def _dispatch(self, fn, *args) -> None:
        if fn is not None:
            self._calls.put((fn, args))

    def _call_loop(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:
                self.counters["callback_errors"] += 1
                log.exception("safety clock: callback %r failed", fn)
