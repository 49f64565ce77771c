"""The live agent loop (DESIGN §1, §7): capture → context → model → hold times → safety → scheduler.

`AgentRuntime` owns one tick at a time: it takes the newest game state from the capture adapter,
pushes it into the context ring buffers (`ilbot.agent.context`), plans the tick with the model's
`Planner`, fills each CLICK's hold time from the checkpoint's hold statistics, filters the plan
through the `SafetyPipeline` and hands what survives to the `Scheduler`, which performs each
action at its due time on the monotonic clock in its own thread. Planning runs on the runtime's
thread (the caller's for `run()`/`step()`, a background one for `start()`), never on the
scheduler's, so a slow plan cannot delay events already scheduled.

Decisions where the design is silent:

- **Tick boundaries.** When the adapter reports real ticks (`adapter.reports_ticks` is true), a
  tick starts when a capture with a new tick index arrives. Otherwise the runtime keeps its own
  grid: tick k starts at start₀ + k·tick_ms (tick_ms from the argument, else the checkpoint's
  stats, else 600 ms), and each tick plans from the newest state seen. `step()` always advances
  the grid by one tick without sleeping (tests, headless runs): times stay exact, so the same seed
  and the same captures give the same plan however fast the machine is. A grid tick missed by a
  slow plan is skipped (counted as `late_ticks`), never bunched up.
- **What the context learns.** Every action that passes safety enters the history at its due
  time when it is scheduled (the agent's own actions); a pause or stop forgets those not yet
  due. The human's input comes in through `observe(event)` (times on the same monotonic clock).
  In dry run the shown actions count as performed, so the model sees the same history live and
  dry.
- **Hold times.** A CLICK holds its button for a log-normal draw through the checkpoint's hold
  median and q10/q90 (`hold_ms` stats; 110 ms median when absent), clipped to [q10/2, 2·q90],
  from a generator seeded with `seed`, so hold times are reproducible too.
- **States** (`ilbot.agent.run`): the runtime starts `waiting_for_state` and plans nothing
  until the first valid capture; no state at all within `state_timeout_s` (10 s) stops it
  (`no_state`) and `run()` raises `NoGameState`, one line naming the source. The wait counts
  from when the run began to be put together (`startup_s`: loading the model, opening the source,
  starting the guardian), so `ilbot play` on a silent source gives up about `state_timeout_s`
  after it starts, however slow the machine is to load. A `window_alive`
  check (set by the assembly) that fails stops it (`window_closed`).
- **Stale state.** No fresh capture for `stale_ticks` ticks → pause (`stale_state`), noticed both
  at the next tick and by the safety clock (`Supervision`), which runs on its own thread whether
  or not ticks or captures arrive. The runtime stays paused until `resume()`.
- **Human override (live only).** The human-input listener, and before each tick the runtime,
  compare the pointer with where the agent last put it; farther than `override_px` → pause
  (`human_override`). `resume()` forgets where the agent put the pointer (the person may have
  moved it meanwhile) and waits until the person has left the pointer alone for
  `resume_still_ms`, so a resume is never undone by the hand that pressed it.
- **Kill switch, guards, guardian** (live only, `Supervision`): F12 stops the agent and releases
  everything; `stop()`, `pause()`, interpreter exit, SIGTERM/SIGINT and Ctrl+Z release every
  held key and button; a guardian process releases them if the process freezes.
- **Malformed state.** A capture whose features have the wrong shape is skipped and counted
  (`malformed_state`); non-finite features are zeroed by the context. Non-finite model output is
  the safety layer's business: its finite-values check drops it, and the drop is counted under
  its reason in `counters["interventions"]`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..data.action import PlannedAction
from ..data.schema import TICK_MS, Event, EventType
from ..errors import UserError
from .context import ContextBuffer
from .executors.counting import CountingExecutor
from .run import Run, RunState
from .supervision import RESUME_STILL_MS, Supervision
from .window import WindowGeometry

DEFAULT_HOLD_MS = {"median": 110.0, "q10": 70.0, "q90": 180.0}
Z90 = 1.2815515655446004  # standard normal quantile at 0.9


class HoldSampler:
    """Seeded hold times (ms) for CLICKs: log-normal through the median, spread from q10/q90."""

    def __init__(self, stats: dict | None, seed: int = 0):
        s = {**DEFAULT_HOLD_MS, **{k: v for k, v in (stats or {}).items() if v is not None}}
        self.median = max(float(s["median"]), 1.0)
        q10, q90 = max(float(s["q10"]), 1.0), max(float(s["q90"]), 1.0)
        self.lo, self.hi = q10 / 2, max(2 * q90, self.median)
        # q10/q90 of a log-normal sit at median·exp(∓1.2816σ), so σ is their log-ratio over 2·1.2816
        self.sigma = max(math.log(max(q90, q10 + 1e-6) / q10), 0.0) / (2 * Z90)
        self.rng = np.random.default_rng(seed)

    def sample(self) -> float:
        ms = self.median * math.exp(self.sigma * float(self.rng.standard_normal()))
        return float(min(max(ms, self.lo), self.hi))


class LatencyStats:
    """The last `n` plan latencies (ms) and their p50/p99."""

    def __init__(self, n: int = 1000):
        self.values: deque[float] = deque(maxlen=n)

    def add(self, ms: float) -> None:
        self.values.append(ms)

    def quantile(self, q: float) -> float | None:
        return float(np.quantile(np.asarray(self.values), q)) if self.values else None


@dataclass
class RuntimeConfig:
    """Knobs of the loop; the safety limits themselves live in `SafetyConfig`."""

    seed: int = 0
    temperature: float = 1.0
    live: bool = False
    tick_ms: float | None = None  # None: the checkpoint's tick_ms, else 600
    override_px: float = 25.0  # live: pointer this far from where the agent put it → pause
    resume_still_ms: float = RESUME_STILL_MS  # live: resume waits until the person left the pointer alone this long
    kill_hotkey: str = "f12"
    pause_hotkey: str | None = None  # live: a global key that pauses and resumes (none: the app has its own F6)
    observe_human: bool | None = None  # listen to the human's input; None: in live mode only
    state_timeout_s: float = 10.0  # no game state at all for this long after start → stop (no_state)
    startup_s: float = 0.0  # time already spent starting the run (the assembly's): counts toward state_timeout_s
    latency_window: int = 1000  # plan latencies kept for p50/p99
    poll_s: float = 0.002  # run(): adapter poll period when ticks come from the adapter
    source_name: str = ""  # how the source is named in messages ("json-dir:/x", "sandbox")
    guardian: bool | None = None  # the dead-man's-switch process; None: in live mode only
    extra: dict = field(default_factory=dict)


DEFAULT_WINDOW = WindowGeometry(0, 0, 800, 600, title="default 800x600")


class NoGameState(UserError):
    """The source delivered no game state before the run's timeout."""


class AgentRuntime(Run):
    """One agent: adapter → context → planner → safety → scheduler (see the module docstring).
    `ilbot.agent.assemble` builds it for every front end; `checkpoint` is a loaded `Checkpoint`."""

    def __init__(self, checkpoint, adapter, executor, safety_config=None, *, seed: int = 0,
                 temperature: float = 1.0, live: bool = False, tick_ms: float | None = None, window=None,
                 planner=None, config: RuntimeConfig | None = None, realtime: bool = True,
                 clock: Callable[[], int] = time.monotonic_ns):
        from ..safety import SafetyConfig, SafetyPipeline
        from .scheduler import Scheduler
        from .window import resolve_window

        super().__init__(RunState.WAITING)
        cfg = config or RuntimeConfig()
        cfg.seed, cfg.temperature, cfg.live = seed, temperature, live
        if tick_ms is not None:
            cfg.tick_ms = tick_ms
        self.config = cfg
        self.checkpoint = checkpoint
        stats = dict(getattr(checkpoint, "stats", None) or {})
        self.tick_ms = float(cfg.tick_ms or stats.get("tick_ms") or TICK_MS)
        self.adapter = adapter
        if window is None:
            window = getattr(adapter, "window", None)
        self.window = DEFAULT_WINDOW if window is None else resolve_window(window)
        self.origin = (self.window.x, self.window.y)
        self.window_size = (self.window.width, self.window.height)
        mcfg = checkpoint.config
        n_features = int(getattr(mcfg, "n_features", len(stats.get("feature_mean", [])) or 128))
        mean = stats.get("feature_mean") or [0.0] * n_features
        std = stats.get("feature_std") or [1.0] * n_features
        self.context = ContextBuffer(mean, std, self.window_size, ticks=int(getattr(mcfg, "n_ticks", 10)),
                                     slots=int(getattr(mcfg, "n_slots", 100)))
        if planner is None:
            from ..model.planner import Planner

            planner = Planner(checkpoint.model, temperature=temperature, seed=seed)
        self.planner = planner
        self.holds = HoldSampler(stats.get("hold_ms"), seed)
        self.safety_config = safety_config or SafetyConfig(tick_ms=self.tick_ms)
        self.safety = SafetyPipeline(self.safety_config, self.window_size)
        echo = None
        if cfg.observe_human if cfg.observe_human is not None else live:
            from .human_input import AgentEcho

            echo = AgentEcho()
        self.executor = CountingExecutor(executor, echo)
        self.scheduler = Scheduler(self.executor, origin=self.origin, safety_config=self.safety_config)
        self.realtime = realtime
        if live and not realtime:
            raise ValueError("live mode runs in real time (realtime=False is for dry runs)")
        self.clock = clock
        self.latency = LatencyStats(cfg.latency_window)
        self._lock = threading.RLock()  # tick state: held while a tick is planned
        self._ctx_lock = threading.Lock()  # the context buffers only: held briefly, never while planning
        self.released_ns: int | None = None  # monotonic ns when stop() had released everything
        self.tick = 0  # ticks planned so far
        self._grid_start: int | None = None  # start of tick 0 on the grid
        self._grid_k = 0
        self._last_capture_tick: int | None = None
        self._last_features: np.ndarray | None = None  # the newest valid state [F]
        self._mouse = None  # live: a pynput mouse controller, to read the pointer
        self._counts = {"ticks": 0, "planned": 0, "scheduled": 0, "late_ticks": 0, "malformed_state": 0,
                        "human_events": 0, "observed_ticks": 0}
        self.supervision = Supervision(self, self.executor, self.safety_config, self.window, live=live,
                                       kill_hotkey=cfg.kill_hotkey, pause_hotkey=cfg.pause_hotkey,
                                       observe=self.observe, echo=echo,
                                       override_px=cfg.override_px, guardian=cfg.guardian,
                                       last_fresh_ns=self._last_fresh_ns, safety_clock=realtime,
                                       lock=self.scheduler.perform_lock, on_release=self._released_by_clock)
        self.supervision.start()

    @property
    def human(self):
        """Live: the human-input listener (None otherwise)."""
        return self.supervision.human

    # -- state -------------------------------------------------------------------------------
    def pause(self, reason: str = "user") -> None:
        """Stop planning, cancel what is scheduled and release every held key and button.
        Safe from any thread; it does not wait for a plan in progress (that plan's actions are
        dropped by the paused scheduler)."""
        if self._transition(RunState.PAUSED, reason):
            self._cancel_and_release()

    def resume(self) -> None:
        """Plan again from the next tick; the stale watchdog and the grid start afresh. In live
        mode the agent forgets where it put the pointer (the person may have moved it while
        paused) and, if the person is still moving it, resumes once they have left it alone for
        `resume_still_ms`."""
        if not self.paused or not self.supervision.resume_when_still(self.config.resume_still_ms):
            return
        with self._lock:
            if not self.paused:
                return
            self._grid_start = None
            self.executor.forget_pointer()
            self.scheduler.resume()
            self.safety.watchdog.reset()
            self.adapter.watchdog.fresh()
            self._transition(RunState.RUNNING if self._last_features is not None else RunState.WAITING,
                             "" if self._last_features is not None else self.config.source_name)

    def stop(self, reason: str = "user") -> None:
        """Stop for good: end the loop, cancel everything scheduled, release all, close.
        Safe from any thread (the kill switch calls it from its listener): the release happens
        first, without waiting for a plan in progress."""
        if not self._transition(RunState.STOPPED, reason):
            self._await_stop()  # another thread is stopping it: return once that is done
            return
        try:
            self.scheduler.stop()  # first: drop what is pending, release everything (no lock needed)
            self.released_ns = time.monotonic_ns()
            self._cancel_and_release()  # then the bookkeeping, once a plan in progress has ended
            self.supervision.stop()
        finally:
            self._stop_done.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)

    def _cancel_and_release(self) -> None:
        """Drop what is scheduled and release everything the executor holds — at once, without
        the planning lock — then, once no plan is in progress, forget the safety layers' held
        keys (bookkeeping only: the executor has released them; a second release would reach the
        game as a stray key-up) and the history of actions that never happened."""
        now = self.clock()
        self.scheduler.pause()  # drops what is pending, waits for the action in progress, releases
        with self._lock:
            self.safety.release_all()
            if self.realtime:
                with self._ctx_lock:
                    self.context.discard_after(now)  # scheduled but never performed: not history

    def _released_by_clock(self, what, reason: str) -> None:
        """The safety clock let go of a key by force: the safety layers forget it as held (under
        the planning lock, so no plan in progress plans its release)."""
        kind, key = what
        if kind == "key":
            with self._lock:
                self.safety.note_released(key)

    def _last_fresh_ns(self) -> int | None:
        """When the newest fresh game state arrived (for the safety clock); None while waiting
        for the first one or while not running (nothing to protect)."""
        if not self.running:
            return None
        return self.adapter.watchdog.last_fresh_ns

    # -- input from outside -------------------------------------------------------------------
    def observe(self, event: Event) -> None:
        """The human's input (t_ns on the monotonic clock): it goes into the history. Called on
        listener threads: it takes only the context's short lock, never waits for a plan."""
        with self._ctx_lock:
            self.context.add_event(event)
            self._counts["human_events"] += 1

    # -- one tick -----------------------------------------------------------------------------
    def step(self, played: list[PlannedAction] | None = None) -> list[PlannedAction]:
        """Plan and schedule one tick now, the next one on the grid, without sleeping. Returns
        the plan that passed safety. In real time a tick missed by whole periods is skipped; with
        realtime=False the grid is virtual and the plan is performed at once, in order.

        `played` (times from the tick's start) hands the tick to another player — the expert of a
        takeover session (ilbot.demo.takeover): the tick's state and those actions enter the
        context as this tick's, nothing is planned or performed, and `played` is returned."""
        period = int(round(self.tick_ms * 1e6))
        now = self.clock()
        if self._grid_start is None:
            self._grid_start, self._grid_k = self._anchor(now), 0
        else:
            self._grid_k += 1
            behind = now - (self._grid_start + self._grid_k * period)
            if self.realtime and behind >= period:
                self._counts["late_ticks"] += int(behind // period)
                self._grid_k += int(behind // period)
        start_ns = self._grid_start + self._grid_k * period
        return self._tick(start_ns, self.adapter.poll(), played)

    def _anchor(self, now: int) -> int:
        """Start of a (re)started grid: now, but never before the last tick's end (a virtual grid
        may have run ahead of the clock)."""
        last = self.context.tick_start_ns
        return now if last is None else max(now, last + int(round(self.tick_ms * 1e6)))

    def _tick(self, start_ns: int, cap, played: list[PlannedAction] | None = None) -> list[PlannedAction]:
        with self._lock:
            if self.stopped or self.paused:
                return []
            if cap is not None:
                feats = np.asarray(cap.features, np.float32).reshape(-1)
                if feats.shape[0] != self.context.n_features:
                    self._counts["malformed_state"] += 1
                    cap = None
            if self.state == RunState.WAITING:
                if cap is None:
                    return []  # nothing to plan from yet
                self._transition(RunState.RUNNING)
            stale = self.safety.observe_state(cap is not None)  # counts ticks without fresh state
            if stale or (cap is None and self.adapter.is_stale(self.safety_config.stale_ticks)):
                self.pause("stale_state")
                return []
            if self.config.live and self._human_moved():
                self.pause("human_override")
                return []
            if cap is not None:
                self._last_features = feats
            feats = self._last_features
            with self._ctx_lock:
                self.context.push_tick(start_ns, feats)
                if played is not None:  # another player's tick: history only
                    for a in played:
                        self.context.add_event(_event_of(a, start_ns))
                    self._counts["observed_ticks"] += 1
                    self.tick += 1
                    return list(played)
                ctx = self.context.context()  # gamestate [T,F], history [T,A,8], history_mask [T,A]
            t0 = time.perf_counter()
            plan = self.planner.plan(ctx, tick_ms=self.tick_ms, window_size=self.window_size)
            self.latency.add((time.perf_counter() - t0) * 1000.0)
            plan = [a.with_(hold_ms=self.holds.sample()) if a.type == EventType.CLICK and not a.hold_ms > 0 else a
                    for a in plan]
            safe = self.safety.filter(plan, start_ns / 1e6)
            with self._ctx_lock:
                for a in safe:
                    self.context.add_event(_event_of(a, start_ns))
            if self.realtime:
                self.scheduler.submit(safe, start_ns)
            else:  # virtual time (dry runs only): perform now, in order
                for a in safe:
                    self.executor.perform(a, self.origin)
            tick = self.tick
            self.tick += 1
            self._counts["ticks"] += 1
            self._counts["planned"] += len(plan)
            self._counts["scheduled"] += len(safe)
        self._emit_plan(tick, safe)
        return safe

    def _human_moved(self) -> bool:
        """Live: is the pointer farther than override_px from where the agent last put it?"""
        with self.executor.lock:
            if self.executor.pointer is None:
                return False
            if self._mouse is None:
                from pynput.mouse import Controller

                self._mouse = Controller()
            px, py = self._mouse.position
            ax, ay = self.executor.pointer
        return math.hypot(px - ax, py - ay) > self.config.override_px

    # -- the loop -----------------------------------------------------------------------------
    def run(self, ticks: int | None = None) -> dict:
        """Run until stopped (or `ticks` ticks planned); returns the counters. While paused it
        waits for `resume()`; a finished source (a replayed session at its end) ends the run.
        No game state at all within `state_timeout_s` of the start stops the run and raises
        `NoGameState` (one line naming the source)."""
        planned = 0
        startup_s, self.config.startup_s = self.config.startup_s, 0.0  # counted once, by the first run()
        t_start = time.monotonic() - max(startup_s, 0.0)
        adapter_ticks = bool(getattr(self.adapter, "reports_ticks", False))
        if self.state == RunState.WAITING:
            self._emit_state(RunState.WAITING.value, self.config.source_name)
        try:
            while not self._stop_event.is_set() and (ticks is None or planned < ticks):
                if self.window_alive is not None and not self.window_alive():
                    self.stop("window_closed")
                    break
                if self.paused:
                    if getattr(self.adapter, "finished", False):
                        self.stop("finished")
                        break
                    self._stop_event.wait(0.05)
                    continue
                if self.state == RunState.WAITING and self._last_features is None \
                        and time.monotonic() - t_start > self.config.state_timeout_s:
                    self.stop("no_state")
                    raise NoGameState(f"no game state from {self.config.source_name or self.adapter.name} in "
                                      f"{self.config.state_timeout_s:g} s: is the game (or its state plugin) running?")
                before = self.tick
                if not self.realtime:
                    self.step()
                    if self.tick == before and self.state == RunState.WAITING:
                        self._stop_event.wait(self.config.poll_s)
                elif adapter_ticks:
                    cap = self._wait_capture_tick()
                    if cap is None and (self.state == RunState.WAITING
                                        or not self.adapter.is_stale(self.safety_config.stale_ticks)):
                        continue
                    start = self.clock() if cap is None else max(int(cap.t_ns), self.context.tick_start_ns or 0)
                    self._tick(start, cap)
                else:
                    start = self._wait_grid()
                    if start is None:
                        continue
                    self._tick(start, self.adapter.poll())
                planned += self.tick - before
                if getattr(self.adapter, "finished", False) and self.tick == before and self.state != RunState.WAITING:
                    self.stop("finished")
            if self.realtime and not self._stop_event.is_set():
                self.scheduler.wait_idle(timeout=self.tick_ms / 1000.0 + 1.0)
        finally:
            if ticks is not None and planned >= ticks:
                self.stop("ticks")
        return self.counters

    def _wait_grid(self) -> int | None:
        now = self.clock()
        if self._grid_start is None:
            self._grid_start, self._grid_k = self._anchor(now), 0
            return self._grid_start
        period = int(round(self.tick_ms * 1e6))
        k = self._grid_k + 1
        due = self._grid_start + k * period
        if now - due >= period:  # a slow plan made us miss whole ticks: skip them
            missed = (now - due) // period
            self._counts["late_ticks"] += int(missed)
            k += int(missed)
            due = self._grid_start + k * period
        if due > now and self._stop_event.wait((due - now) / 1e9):
            return None
        if self.paused:
            return None
        self._grid_k = k
        return due

    def _wait_capture_tick(self):
        """The next capture with a new tick index, or None once the state has gone stale (or
        within a tick while waiting for the first state, so the loop can check its timeout)."""
        t0 = time.monotonic()
        while not self._stop_event.is_set() and not self.paused:
            cap = self.adapter.poll()
            if cap is not None and cap.tick != self._last_capture_tick:
                self._last_capture_tick = cap.tick
                return cap
            if self.adapter.is_stale(self.safety_config.stale_ticks):
                return None
            if self.state == RunState.WAITING and time.monotonic() - t0 > self.tick_ms / 1000.0:
                return None
            self._stop_event.wait(self.config.poll_s)
        return None

    # -- reporting ----------------------------------------------------------------------------
    @property
    def counters(self) -> dict:
        c = dict(self._counts)
        c["performed"] = self.executor.performed
        c["performed_by_type"] = dict(self.executor.by_type)
        c["plan_ms_p50"] = self.latency.quantile(0.5)
        c["plan_ms_p99"] = self.latency.quantile(0.99)
        c["interventions"] = dict(self.safety.counters)
        c["timing"] = self.scheduler.timing_stats()  # performed − due, ms
        c["scheduler"] = dict(self.scheduler.counters)
        c["pauses"] = dict(self.pauses)
        c["stale_pauses"] = self.pauses.get("stale_state", 0)
        c["override_pauses"] = self.pauses.get("human_override", 0)
        c["adapter"] = dict(getattr(self.adapter, "counters", {}))
        c["context"] = dict(self.context.counters)
        if self.supervision.clock is not None:
            c["safety_clock"] = dict(getattr(self.supervision.clock, "counters", {}))
        c["state"] = self.state.value
        c["reason"] = self.reason
        return c


def _event_of(action: PlannedAction, tick_start_ns: int) -> Event:
    """A scheduled action as the history event it becomes at its due time."""
    return Event(tick_start_ns + int(round(action.t_ms * 1e6)), EventType(action.type), float(action.x),
                 float(action.y), int(action.button), int(action.key_action), int(action.key_id),
                 int(action.scroll_y), float(action.hold_ms))
