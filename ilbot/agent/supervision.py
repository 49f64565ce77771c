"""`Supervision`: what watches a run from outside its plan loop (DESIGN §7b, safety clock).

Every run (agent or replay) gets one. It owns, for the run's lifetime:

- the **safety clock** (`ilbot.safety.clock.SafetyClock`, every mode): its own thread that
  force-releases keys and buttons held past their limits, pauses the run when the game state has
  gone stale and when the process was suspended — whether or not plans or captures arrive;
- in **live** mode only:
  - the **kill switch** (F12 by default): stops the run, everything released;
  - the **pause hotkey**, when the front end asks for one (`pause_hotkey`, e.g. F6 for a terminal
    front end; none by default, as the app has its own F6 shortcut): pauses a running run,
    resumes a paused one;
  - the **human-input listener** (`HumanInput` + `AgentEcho`): the person's input goes into the
    run's history, and moving the pointer away from where the agent put it pauses the run
    (`human_override`); the agent's own injected events are recognised and never count;
  - **release guards**: atexit, SIGINT/SIGTERM and Ctrl+Z (SIGTSTP) release everything first;
  - the **guardian** process, a dead-man's switch: when the run's heartbeats (beaten by the safety
    clock) stop — SIGSTOP, a hang, a SIGKILL — it releases every key and button through its own
    X connection.

`Supervision(run, ...)` starts nothing; `start()` starts the parts, `stop()` ends them (idempotent,
safe from any thread, never waits on a listener's own thread).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

# The guardian releases everything after this long without a heartbeat (the safety clock beats
# every 10 ms): a stopped or hung agent is let go of within ~0.5 s.
GUARDIAN_TIMEOUT_MS = 500.0
# The safety clock pauses the run when its own loop did not run for this long: the process was
# stopped (Ctrl+Z, SIGSTOP) and continued. Far above a busy machine's scheduling hiccups, so a
# loaded machine never pauses the agent for nothing; the guardian has let go of everything by then.
SUSPEND_GAP_MS = 1000.0
# A resume waits until the person has left the pointer alone this long (runtime and replay alike),
# so the hand that pressed Resume never pauses the run again at once.
RESUME_STILL_MS = 300.0


class Supervision:
    def __init__(self, run, executor, safety_config, window, *, live: bool, kill_hotkey: str = "f12",
                 last_fresh_ns: Callable[[], int | None] | None = None, observe: Callable | None = None,
                 echo=None, override_px: float = 25.0, guardian: bool | None = None, safety_clock: bool = True,
                 lock=None, on_release: Callable | None = None, pause_hotkey: str | None = None):
        self.run = run
        self.executor = executor  # the run's counting executor: .pointer, held(), release(), release_all()
        self.lock = lock  # the scheduler's perform lock: a forced release never races an action
        self.on_release = on_release  # (what, reason) after the clock released something by force
        self.safety_config = safety_config
        self.window = window  # WindowGeometry
        self.live = live
        self.kill_hotkey = kill_hotkey
        self.pause_hotkey = pause_hotkey
        self.last_fresh_ns = last_fresh_ns
        self.observe = observe
        self.echo = echo
        self.override_px = override_px
        self.use_guardian = live if guardian is None else guardian
        self.use_clock = safety_clock or live  # virtual-time runs (closed-loop evaluation) have no wall clock
        self.clock = None
        self.kill = None
        self.pause_key = None
        self.human = None
        self.guardian = None
        self._uninstall: list[Callable[[], None]] = []
        self._stopped = False
        self._resume_waiter: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "Supervision":
        if self.use_guardian:
            from ..safety.guardian import Guardian

            self.guardian = Guardian.start(kill_hotkey=self.kill_hotkey, timeout_ms=GUARDIAN_TIMEOUT_MS)
        if self.use_clock:
            from ..safety.clock import SafetyClock

            self.clock = SafetyClock(self.executor, self.safety_config, lock=self.lock,
                                     last_fresh_ns=self.last_fresh_ns,
                                     on_stale=lambda age_ms: self.run.pause("stale_state"),
                                     on_suspended=lambda gap_ms: self.run.pause("suspended"),
                                     suspend_gap_ms=SUSPEND_GAP_MS, on_release=self.on_release,
                                     heartbeat=self.guardian.beat if self.guardian is not None else None)
        if not self.live:
            return self
        from ..safety import KillSwitch, install_release_guards
        from ..safety.guards import install_suspend_guard

        self.kill = KillSwitch(hotkey=self.kill_hotkey, on_trigger=self._on_kill)
        self.kill.start()
        if self.pause_hotkey:  # the same global-hotkey listener, for another key
            pause_key = KillSwitch(hotkey=self.pause_hotkey, on_trigger=self._on_pause_key)
            if pause_key.hotkey != self.kill.hotkey:  # the kill switch's key stops, never pauses
                self.pause_key = pause_key.start()
        if self.echo is not None:
            from .human_input import HumanInput

            w = self.window
            self.human = HumanInput((w.x, w.y, w.width, w.height), self.observe or (lambda e: None), self.echo,
                                    agent_pointer=lambda: self.executor.pointer, on_override=self._on_override,
                                    override_px=self.override_px)
            self.human.start()
        self._uninstall.append(install_release_guards(lambda: self.run.stop("user")))
        if threading.current_thread() is threading.main_thread():  # signal handlers: main thread only
            self._uninstall.append(install_suspend_guard(self.executor.release_all))
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.clock is not None:
            self.clock.stop(release=False)  # the run has released (and a stray key-up would reach the game)
        for switch in (self.kill, self.pause_key):
            if switch is None:
                continue
            if threading.current_thread() is getattr(switch, "_listener", None):  # a thread cannot join itself
                threading.Thread(target=switch.stop, name="ilbot-hotkey-stop", daemon=True).start()
            else:
                switch.stop()
        if self.human is not None:  # its listeners may need a nudge to end: never wait for it here
            human = self.human
            threading.Thread(target=human.stop, name="ilbot-human-stop", daemon=True).start()
        for uninstall in self._uninstall:
            try:
                uninstall()
            except ValueError:  # signal handlers can only be restored from the main thread
                pass
        self._uninstall = []
        if self.guardian is not None:
            self.guardian.close()

    # -- callbacks ----------------------------------------------------------------------------
    def _on_kill(self) -> None:
        self.run.stop("kill_switch")

    def _on_pause_key(self) -> None:
        """The pause hotkey (its listener thread): pause a running run, resume a paused one — on a
        helper thread, as `_on_override` does. Armed again at once for the next press."""
        self.pause_key.reset()
        if self.run.stopped:
            return
        if self.run.paused:
            act, args = self.run.resume, ()
        else:
            act, args = self.run.pause, ("user",)
        threading.Thread(target=act, args=args, name="ilbot-pause-key", daemon=True).start()

    def _on_override(self) -> None:
        """The person moved the pointer away from the agent's (a listener thread): pause now, on
        a helper thread — a listener callback must not block on releases the X server would echo
        back to that very listener."""
        if not (self.run.paused or self.run.stopped):
            threading.Thread(target=self.run.pause, args=("human_override",), name="ilbot-override",
                             daemon=True).start()

    def person_still_for(self, ms: float) -> bool:
        """Live: has the person left the pointer alone for `ms`? (always True without a listener)"""
        return self.human is None or self.human.still_for(ms)

    def resume_when_still(self, ms: float = RESUME_STILL_MS, limit_s: float = 30.0) -> bool:
        """For `run.resume()`: True when the person has left the pointer alone for `ms`, so the
        resume goes on now. Otherwise False, and one helper thread calls `run.resume()` again as
        soon as they have — while the run is still paused, for at most `limit_s` — so the hand
        that pressed Resume (button or F6) never pauses the run again at once."""
        if self.person_still_for(ms):
            return True
        waiter = self._resume_waiter
        if waiter is not None and waiter.is_alive():
            return False

        def wait() -> None:
            deadline = time.monotonic() + limit_s
            while self.run.paused and not self._stopped and time.monotonic() < deadline:
                if self.person_still_for(ms):
                    self.run.resume()
                    return
                time.sleep(0.05)

        self._resume_waiter = threading.Thread(target=wait, name="ilbot-resume", daemon=True)
        self._resume_waiter.start()
        return False
