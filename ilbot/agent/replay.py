"""Replay: re-perform a recorded session's input through the safety layers and an executor.

`SessionReplay(session, executor, window=..., speed=X).run()` reads the session's events
(`ilbot.data.open_session`), turns each into a `PlannedAction` (source "replay"), and performs it
at its recorded time divided by `speed`, on the monotonic clock, through the same
`SafetyPipeline` and `Scheduler` the agent uses. Positions are window-relative in the store; the
executor turns them into screen pixels with the target window's origin.

Decisions where the design is silent:

- **Chunks.** Events go to safety and the scheduler in chunks of `chunk_ms` of replay time
  (500 ms), each submitted `lead_ms` (250 ms) before it starts: the scheduler's queue stays short,
  and a stop takes effect within a chunk. Each chunk is one "tick" for the safety pipeline (its
  times are ms since the chunk's start, well inside the pipeline's planning horizon).
- **Moves are thinned before safety** so the safety limits are spent on what matters: a MOVE is
  kept only `min_move_gap_ms` (15 ms, as the dataset does) after the last kept action, and only
  when no click, key or scroll follows within the safety time floor (that event carries its own
  position: the executor moves there first). Without this a 1 kHz mouse trail would trip the
  time floor and rate limit and drop the click that ends it.
- **Speed** scales every time, hold times included (a 2x replay holds buttons half as long).
- A CLICK is one event with its recorded `hold_ms` (110 ms when the store has none).
- **A `Run`** (`ilbot.agent.run`): it starts `running`, ends `stopped(finished)` at the session's
  end, and pauses and resumes like the agent; paused time is skipped. In live mode the same
  `Supervision` as the agent's watches it: kill switch, release guards, guardian, and a pause
  when the person moves the pointer away from where the replay put it (`human_override`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..data.action import PlannedAction
from ..data.schema import Event, EventType
from .run import Run, RunState

DEFAULT_HOLD_MS = 110.0


@dataclass
class ReplayConfig:
    speed: float = 1.0  # 2.0 replays twice as fast
    chunk_ms: float = 500.0  # replay time per safety/scheduler batch
    lead_ms: float = 250.0  # a chunk is submitted this long before it starts
    min_move_gap_ms: float = 15.0  # a MOVE closer than this to the last kept action is dropped
    start_delay_ms: float = 100.0  # the first event is due this long after run() starts

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if not 0.01 <= self.speed <= 1000:  # NaN, <= 0, inf, or too slow or fast to be a replay in time
            raise ConfigError(f"replay speed must be a number in 0.01..1000, got {self.speed}")


def action_of(event: Event, t_ms: float, speed: float = 1.0) -> PlannedAction:
    """A recorded event as the action that re-performs it, due at t_ms."""
    hold = 0.0
    if event.type == EventType.CLICK:
        hold = (event.hold_ms if event.hold_ms > 0 else DEFAULT_HOLD_MS) / speed
    return PlannedAction(type=EventType(event.type), t_ms=float(t_ms), x=float(event.x), y=float(event.y),
                         button=int(event.button), key_action=int(event.key_action), key_id=int(event.key_id),
                         scroll_y=int(event.scroll_y), hold_ms=float(hold), source="replay")


def thin_moves(events: list[Event], min_gap_ms: float, floor_ms: float) -> list[Event]:
    """Drop MOVEs closer than min_gap_ms to the last kept event or within floor_ms before a
    non-MOVE event (see the module docstring)."""
    kept: list[Event] = []
    next_other = None  # time of the next non-MOVE event, scanning backwards
    upcoming = [0] * len(events)
    for i in range(len(events) - 1, -1, -1):
        upcoming[i] = next_other
        if events[i].type != EventType.MOVE:
            next_other = events[i].t_ns
    for i, e in enumerate(events):
        if e.type == EventType.MOVE:
            if kept and (e.t_ns - kept[-1].t_ns) / 1e6 < min_gap_ms:
                continue
            if upcoming[i] is not None and (upcoming[i] - e.t_ns) / 1e6 < floor_ms:
                continue
        kept.append(e)
    return kept


class SessionReplay(Run):
    """Re-performs one session (see the module docstring). `run()` blocks; `stop()`, `pause()`
    and `resume()` work from any thread. `ilbot.agent.assemble` builds it for every front end."""

    def __init__(self, session, executor, *, window=None, speed: float = 1.0, safety_config=None,
                 config: ReplayConfig | None = None, live: bool = False, kill_hotkey: str = "f12",
                 override_px: float = 25.0, guardian: bool | None = None, pause_hotkey: str | None = None,
                 clock: Callable[[], int] = time.monotonic_ns):
        from ..data.store import open_session
        from ..safety import SafetyConfig, SafetyPipeline
        from .executors.counting import CountingExecutor
        from .scheduler import Scheduler
        from .supervision import Supervision
        from .window import resolve_window

        super().__init__(RunState.RUNNING)
        self.session = open_session(session) if not hasattr(session, "events") else session
        getattr(self.session, "check", lambda: None)()  # a damaged store is refused before anything is performed
        self.config = config or ReplayConfig(speed=speed)
        if config is not None and speed != 1.0:
            self.config.speed = speed
        if window is None:
            window = self.session.meta.get("window")
        self.window = resolve_window(window if window is not None else (0, 0, 800, 600))
        self.origin = (self.window.x, self.window.y)
        self.window_size = (self.window.width, self.window.height)
        self.tick_ms = self.config.chunk_ms
        self.live = live
        self.safety_config = safety_config or SafetyConfig(tick_ms=self.config.chunk_ms)
        self.safety = SafetyPipeline(self.safety_config, self.window_size)
        echo = None
        if live:
            from .human_input import AgentEcho

            echo = AgentEcho()
        self.executor = CountingExecutor(executor, echo)
        self.scheduler = Scheduler(self.executor, origin=self.origin, safety_config=self.safety_config)
        self.clock = clock
        self._summary: dict = {"recorded": self.session.n_events, "replayed": 0, "scheduled": 0}
        self.supervision = Supervision(self, self.executor, self.safety_config, self.window, live=live,
                                       kill_hotkey=kill_hotkey, pause_hotkey=pause_hotkey, echo=echo,
                                       override_px=override_px,
                                       guardian=guardian, lock=self.scheduler.perform_lock,
                                       on_release=lambda what, reason: what[0] == "key" and self.safety.note_released(what[1]))
        self.supervision.start()

    # -- control ------------------------------------------------------------------------------
    def stop(self, reason: str = "user") -> None:
        if not self._transition(RunState.STOPPED, reason):
            self._await_stop()  # another thread is stopping it: return once that is done
            return
        try:
            self.scheduler.stop()  # drops what is pending, releases
            self.supervision.stop()
        finally:
            self._stop_done.set()

    def pause(self, reason: str = "user") -> None:
        """Drop what is scheduled and release everything; `resume()` goes on from the next chunk."""
        if self._transition(RunState.PAUSED, reason):
            self.scheduler.pause()
            self._release_safety()

    def resume(self) -> None:
        """Go on from the next chunk. In live mode it forgets where the replay put the pointer
        and, while the person is still moving it, resumes once they have left it alone (as the
        agent does, `Supervision.resume_when_still`)."""
        if not self.paused or not self.supervision.resume_when_still():
            return
        self.executor.forget_pointer()
        self.scheduler.resume()
        self._transition(RunState.RUNNING)

    def _release_safety(self) -> None:
        """Release everything the executor holds; forget the safety layers' held keys (their
        release actions are not performed: the executor has let go already)."""
        self.executor.release_all()
        self.safety.release_all()

    # -- the replay ---------------------------------------------------------------------------
    def actions(self) -> list[PlannedAction]:
        """Every action of the session after move thinning, t_ms since the first event (replay time)."""
        events = list(self.session.events())
        events = thin_moves(events, self.config.min_move_gap_ms, self.safety_config.min_dt_ms * self.config.speed)
        if not events:
            return []
        t0 = events[0].t_ns
        s = self.config.speed
        return [action_of(e, (e.t_ns - t0) / 1e6 / s, s) for e in events]

    def run(self, ticks: int | None = None, on_progress: Callable[[int, int], None] | None = None) -> dict:
        """Perform the whole session (or until stop(), or `ticks` chunks); returns the counters.
        Paused time is skipped: after `resume()` the replay goes on where it was."""
        cfg = self.config
        actions = self.actions()
        self._summary["total"] = len(actions)
        start_ns = self.clock() + int(cfg.start_delay_ms * 1e6)
        chunk_ns = int(cfg.chunk_ms * 1e6)
        i = chunks = 0
        try:
            while i < len(actions) and not self._stop_event.is_set() and (ticks is None or chunks < ticks):
                if self.window_alive is not None and not self.window_alive():
                    self.stop("window_closed")
                    break
                if self.paused:
                    t = self.clock()
                    self._stop_event.wait(0.05)
                    start_ns += self.clock() - t  # the paused time does not count
                    continue
                k = int(actions[i].t_ms * 1e6 // chunk_ns)  # the chunk of the next action
                c_start_ns = start_ns + k * chunk_ns
                wait_ns = c_start_ns - int(cfg.lead_ms * 1e6) - self.clock()
                if wait_ns > 0:
                    self._stop_event.wait(min(wait_ns / 1e9, 0.05))
                    continue  # re-check stop/pause while waiting
                j = i
                while j < len(actions) and actions[j].t_ms * 1e6 < (k + 1) * chunk_ns:
                    j += 1
                chunk = [a.with_(t_ms=a.t_ms - k * cfg.chunk_ms) for a in actions[i:j]]  # ms since chunk start
                safe = self.safety.filter(chunk, c_start_ns / 1e6)
                self.scheduler.submit(safe, c_start_ns)
                self._summary["replayed"] += len(chunk)
                self._summary["scheduled"] += len(safe)
                i, chunks = j, chunks + 1
                self._summary["done"] = i
                self._emit_plan(chunks - 1, safe)
                if on_progress is not None:
                    on_progress(i, len(actions))
            if not self._stop_event.is_set() and actions:
                self.scheduler.wait_idle(timeout=cfg.chunk_ms / 1000.0 + 5.0)
                last = actions[min(i, len(actions)) - 1]
                self._stop_event.wait(min(last.hold_ms / 1000.0, 2.0) + 0.05)  # let the last hold end
        finally:
            early = self._stop_event.is_set() or i < len(actions)
            self._summary["stopped_early"] = early
            self._summary["thinned_moves"] = self._summary["recorded"] - len(actions)
            self._summary["chunks"] = chunks
            self.stop("finished" if i >= len(actions) else ("ticks" if not self._stop_event.is_set() else self.reason))
            self._release_safety()
        return self.counters

    @property
    def counters(self) -> dict:
        return {**self._summary, "performed": self.executor.performed, "performed_by_type": dict(self.executor.by_type),
                "interventions": dict(self.safety.counters), "speed": self.config.speed,
                "pauses": dict(self.pauses), "state": self.state.value, "reason": self.reason,
                "timing": self.scheduler.timing_stats()}
