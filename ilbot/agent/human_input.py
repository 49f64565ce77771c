"""Live mode: the human's own mouse and keyboard input, observed while the agent plays.

The agent's context holds "the actions that happened" (DESIGN §5): its own and the human's.
`HumanInput` runs pynput listeners (X RECORD) and turns what the person does into `Event`s
(window-relative positions, monotonic times) for `AgentRuntime.observe`, and reports a pointer
move away from where the agent put it (`on_override`) so the runtime pauses at once instead of
at the next tick.

The listeners also see the agent's own injected input (XTest events look like any other on X),
so each observed event is first matched against what the executor just performed
(`AgentEcho.claim`): same kind, same button/key, same screen position (±1 px), within
`echo_ms` (500 ms) — a match is the agent's echo and is dropped, and each noted action is
claimed once. The window is long because the listeners see the echo late on a busy machine
(beyond 60 ms under the test suite's load): an echo not claimed in time enters the history as
the person's input, while a person repeating the agent's exact action (the same key action, or
the same button on the same pixel) within half a second, before its echo arrives, is rare and
costs one event of history. Mouse moves are thinned as the dataset builder does (one per
15 ms), presses and releases of a button become one CLICK at the press time with its hold, and a scroll becomes one SCROLL per notch direction. A key with no key
symbol (keycode 0: the nudge that wakes a stopping listener) is ignored. On X, pynput's keyboard
Controller also hands each key it injects straight to listeners in its own process
(`injected=True`) besides sending it through XTest (which RECORD reports): those in-process
copies are dropped, as the recorder does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

from ..data.keys import pynput_key_id
from ..data.schema import Button, Event, EventType, KeyAction, scroll_class

MOVE_GAP_NS = 15_000_000  # thinning of observed moves, as the dataset builder does (DESIGN §2)


class AgentEcho:
    """What the agent performed lately, in screen pixels, to recognise its echo in the listeners."""

    def __init__(self, echo_ms: float = 500.0, size: int = 256):
        self.echo_ns = int(echo_ms * 1e6)
        self._recent: deque = deque(maxlen=size)  # (t_ns, kind, detail, sx, sy)
        self._lock = threading.Lock()
        self.agent_buttons: set[int] = set()  # buttons the agent pressed (their release is its too)

    def note(self, kind: str, detail, sx: int, sy: int) -> None:
        with self._lock:
            self._recent.append((time.monotonic_ns(), kind, detail, int(sx), int(sy)))

    def note_action(self, action, sx: int, sy: int) -> None:
        """Record what performing `action` at screen (sx, sy) shows the listeners."""
        t = EventType(action.type)
        if t in (EventType.MOVE, EventType.CLICK, EventType.SCROLL):
            self.note("move", None, sx, sy)
        if t == EventType.CLICK:
            self.note("press", int(action.button), sx, sy)
            with self._lock:
                self.agent_buttons.add(int(action.button))
        elif t == EventType.SCROLL:
            self.note("scroll", None, sx, sy)
        elif t == EventType.KEY:
            self.note("key", (int(action.key_id), int(action.key_action)), -1, -1)

    def claim(self, kind: str, detail, sx: int, sy: int) -> bool:
        """True (and forgotten) if this observed event is the echo of an agent action."""
        now = time.monotonic_ns()
        with self._lock:
            for i, (t, k, d, x, y) in enumerate(self._recent):
                if now - t > self.echo_ns or k != kind:
                    continue
                if d != detail and not (kind == "key" and detail[0] == 0 and d[1] == detail[1]):
                    continue  # (a key pynput could not name — UNK — matches the agent's key action)
                if x >= 0 and (abs(x - sx) > 1 or abs(y - sy) > 1):
                    continue
                del self._recent[i]
                return True
        return False

    def claim_release(self, button: int) -> bool:
        with self._lock:
            if button in self.agent_buttons:
                self.agent_buttons.discard(button)
                return True
        return False


class HumanInput:
    """pynput listeners → `on_event(Event)` for the human's input (see the module docstring)."""

    def __init__(self, window: tuple[float, float, float, float], on_event: Callable[[Event], None],
                 echo: AgentEcho, *, agent_pointer: Callable[[], tuple[float, float] | None] = lambda: None,
                 on_override: Callable[[], None] | None = None, override_px: float = 25.0):
        self.x0, self.y0 = window[0], window[1]
        self.on_event = on_event
        self.echo = echo
        self.agent_pointer = agent_pointer
        self.on_override = on_override
        self.override_px = float(override_px)
        self.counters = {"human": 0, "echo": 0}
        self._pos = (0.0, 0.0)
        self._last_move_ns = 0
        self.last_human_ns = 0  # monotonic ns of the person's last pointer motion (not the agent's)
        self._pressed: dict[int, int] = {}  # button → press t_ns (human presses)
        self._listeners: list = []

    def _emit(self, e: Event) -> None:
        self.counters["human"] += 1
        self.on_event(e)

    def _rel(self, sx, sy) -> tuple[float, float]:
        return float(sx - self.x0), float(sy - self.y0)

    # -- listener callbacks (pynput threads) ----------------------------------------------------
    def _on_move(self, sx, sy, injected=False):
        t = time.monotonic_ns()
        self._pos = (sx, sy)
        if self.echo.claim("move", None, sx, sy):
            self.counters["echo"] += 1
            return
        self.last_human_ns = t
        agent = self.agent_pointer()
        if self.on_override is not None and agent is not None:
            if ((sx - agent[0]) ** 2 + (sy - agent[1]) ** 2) ** 0.5 > self.override_px:
                self.on_override()
        if t - self._last_move_ns >= MOVE_GAP_NS:
            self._last_move_ns = t
            self._emit(Event.make(t, *self._rel(sx, sy)))

    def _on_click(self, sx, sy, button, pressed, injected=False):
        t = time.monotonic_ns()
        b = {"left": Button.LEFT, "right": Button.RIGHT, "middle": Button.MIDDLE}.get(getattr(button, "name", ""), 0)
        if not b:
            return
        if pressed:
            if self.echo.claim("press", int(b), sx, sy):
                self.counters["echo"] += 1
                return
            self._pressed[int(b)] = t
            return
        if self.echo.claim_release(int(b)) and int(b) not in self._pressed:
            self.counters["echo"] += 1
            return
        start = self._pressed.pop(int(b), None)
        if start is not None:
            self._emit(Event.make(start, *self._rel(sx, sy), button=int(b), hold_ms=(t - start) / 1e6))

    def _on_scroll(self, sx, sy, dx, dy, injected=False):
        t = time.monotonic_ns()
        if self.echo.claim("scroll", None, sx, sy):
            self.counters["echo"] += 1
            return
        cls = scroll_class(dy)
        if cls:
            self._emit(Event.make(t, *self._rel(sx, sy), scroll_y=int(cls)))

    def _on_key(self, key, action: int):
        t = time.monotonic_ns()
        if getattr(key, "vk", None) == 0 and getattr(key, "char", None) is None:
            return  # a keycode with no key symbol: the listener-stop nudge, never a person's key
        kid = pynput_key_id(key)
        if self.echo.claim("key", (kid, action), -1, -1):
            self.counters["echo"] += 1
            return
        self._emit(Event.make(t, *self._rel(*self._pos), key_action=action, key_id=kid))

    def still_for(self, ms: float) -> bool:
        """Has the person left the pointer alone for the last `ms` milliseconds?"""
        return time.monotonic_ns() - self.last_human_ns >= ms * 1e6

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "HumanInput":
        from pynput import keyboard, mouse

        self._pos = mouse.Controller().position
        self._listeners = [
            mouse.Listener(on_move=self._on_move, on_click=self._on_click, on_scroll=self._on_scroll),
            keyboard.Listener(on_press=lambda k, injected=False: injected or self._on_key(k, KeyAction.PRESS),
                              on_release=lambda k, injected=False: injected or self._on_key(k, KeyAction.RELEASE)),
        ]
        for lst in self._listeners:
            lst.daemon = True
            lst.start()
        for lst in self._listeners:
            lst.wait()
        return self

    def stop(self) -> None:
        """Stop the listeners. A join blocked in RECORD waits for one more event: the keyboard
        listener is woken by a keycode no application reads, the mouse listener by a 1 px
        pointer move and back (the agent is stopped by then)."""
        listeners, self._listeners = self._listeners, []
        for lst in listeners:
            lst.stop()
        others = [lst for lst in listeners if lst is not threading.current_thread()]
        for lst in others:
            lst.join(0.05)
        if any(lst.is_alive() for lst in others):
            from pynput import mouse

            from ..safety.killswitch import nudge_x_listener

            nudge_x_listener()
            m = mouse.Controller()
            x, y = m.position
            m.move(1, 0)
            m.position = (x, y)
            for lst in others:
                lst.join(1.0)
