"""`PynputExecutor`: performs actions with pynput's mouse and keyboard controllers (live mode).

- MOVE → set the pointer position; SCROLL → move there (only if the pointer is elsewhere: see
  `_point`), one wheel notch (+1 up, -1 down);
- CLICK → move there (only if elsewhere), press the button, and release it `hold_ms` later. The release is scheduled
  on the executor's own release thread (a heap of deadlines on `time.monotonic_ns()`), so
  `perform` returns at once and a long hold never blocks the scheduler's next event. A CLICK on a
  button still held by an earlier one releases it first (never a press of a held button).
- KEY → press or release; printable keys by their character (`ilbot.data.keys.key_char`), the
  others by pynput's `Key[name]` (the vocabulary uses pynput's names). On X11 a printable key is
  given to pynput as its keysym (`KeyCode.from_vk`; Latin-1 keysyms are the code points): pynput
  then injects it through XTest like a real key, whereas `KeyCode.from_char` makes it send a
  synthetic event to the focused window, which the server's key state never shows and which
  many games ignore. The vocabulary names physical keys unshifted, so no shift is needed.

It tracks what it holds (keys and buttons) and since when (`held()`); a release of a key it does
not hold is not sent (no stray key-up reaches the game: the safety clock may have released the
key first). `release(what, since_ns)` lets go of one held key or button (a button's pending
click release is then moot); `release_all()` cancels pending click releases and releases
everything held. Both are safe to call from any thread (the kill switch calls `release_all` from
its listener thread, the safety clock `release` from its own); all controller calls are
serialised by one lock. pynput is imported in `__init__` because importing it needs an X display.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time

from ...data.action import PlannedAction
from ...data.keys import KEY_VOCAB, key_char
from ...data.schema import Button, EventType, KeyAction, ScrollY
from .base import Executor


def pynput_key(key_id: int):
    """The pynput key object for a key-vocabulary index (ValueError for UNK or out of range)."""
    from pynput.keyboard import Key, KeyCode

    if not 0 < int(key_id) < len(KEY_VOCAB):
        raise ValueError(f"key id {key_id} is not a performable key (vocabulary size {len(KEY_VOCAB)}, 0 = UNK)")
    name = KEY_VOCAB[int(key_id)]
    char = key_char(name)
    if char is None:
        return Key[name]
    return KeyCode.from_vk(ord(char)) if sys.platform.startswith("linux") else KeyCode.from_char(char)


class PynputExecutor(Executor):
    name = "pynput"

    def __init__(self) -> None:
        super().__init__()
        from pynput import keyboard, mouse

        self._mouse = mouse.Controller()
        self._keyboard = keyboard.Controller()
        self._buttons = {Button.LEFT: mouse.Button.left, Button.RIGHT: mouse.Button.right,
                         Button.MIDDLE: mouse.Button.middle}
        self._lock = threading.RLock()  # serialises every controller call and the held state
        self.held_keys: dict[int, object] = {}  # key_id → pynput key
        self.held_buttons: dict[int, int] = {}  # button → token of the CLICK holding it
        self._since: dict[tuple[str, int], int] = {}  # ("key", id) | ("button", b) → monotonic ns of the press
        self._releases: list[tuple[int, int, int]] = []  # heap of (deadline ns, token, button)
        self._tokens = itertools.count(1)
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- performing ----------------------------------------------------------------------------
    def _perform(self, action: PlannedAction, sx: int, sy: int) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("PynputExecutor is closed")
            kind = action.type
            if kind == EventType.MOVE:
                self._mouse.position = (sx, sy)
            elif kind == EventType.CLICK:
                self._click(int(action.button), float(action.hold_ms), sx, sy)
            elif kind == EventType.KEY:
                self._key(int(action.key_id), int(action.key_action))
            elif kind == EventType.SCROLL:
                self._point(sx, sy)
                self._mouse.scroll(0, 1 if action.scroll_y == ScrollY.UP else -1)
            else:
                raise ValueError(f"unknown action type {kind!r}")

    def _point(self, sx: int, sy: int) -> None:
        """Put the pointer at (sx, sy) before a click or scroll, unless it is already there: XTest
        reports a warp to the pointer's own position as a motion event, so an unconditional warp
        put a zero-distance MOVE 0.1 ms before every click into what listeners (and recordings)
        saw — an artefact no person produces."""
        if tuple(self._mouse.position) != (sx, sy):
            self._mouse.position = (sx, sy)

    def _click(self, button: int, hold_ms: float, sx: int, sy: int) -> None:
        b = self._buttons[Button(button)]
        self._point(sx, sy)
        if button in self.held_buttons:  # still held by an earlier CLICK: let go first
            self._mouse.release(b)
            del self.held_buttons[button]
            self._since.pop(("button", button), None)
        self._mouse.press(b)
        if hold_ms <= 0:
            self._mouse.release(b)
            return
        token = next(self._tokens)
        self.held_buttons[button] = token
        self._since[("button", button)] = time.monotonic_ns()
        heapq.heappush(self._releases, (time.monotonic_ns() + int(hold_ms * 1e6), token, button))
        if self._thread is None:
            self._thread = threading.Thread(target=self._release_loop, name="ilbot-click-release", daemon=True)
            self._thread.start()
        self._wake.notify()

    def _key(self, key_id: int, key_action: int) -> None:
        key = pynput_key(key_id)
        if key_action == KeyAction.PRESS:
            self._keyboard.press(key)
            self.held_keys[key_id] = key
            self._since.setdefault(("key", key_id), time.monotonic_ns())
        elif key_action == KeyAction.RELEASE:
            if self.held_keys.pop(key_id, None) is not None:
                self._keyboard.release(key)
                del self._since[("key", key_id)]
        else:
            raise ValueError(f"key action {key_action} is neither press (1) nor release (2)")

    def _release_loop(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._releases:
                    self._wake.wait()
                    continue
                deadline, token, button = self._releases[0]
                wait_ns = deadline - time.monotonic_ns()
                if wait_ns > 0:
                    self._wake.wait(wait_ns / 1e9)
                    continue
                heapq.heappop(self._releases)
                if self.held_buttons.get(button) == token:  # not already released or re-pressed
                    self._mouse.release(self._buttons[Button(button)])
                    del self.held_buttons[button]
                    self._since.pop(("button", button), None)

    # -- releasing -----------------------------------------------------------------------------
    def held(self) -> dict[tuple[str, int], int]:
        with self._lock:
            return dict(self._since)

    def release(self, what: tuple[str, int], since_ns: int | None = None) -> bool:
        with self._lock:
            if self._closed or what not in self._since or since_ns not in (None, self._since[what]):
                return False
            kind, n = what
            if kind == "key":
                self._keyboard.release(self.held_keys.pop(n))
            else:
                self._mouse.release(self._buttons[Button(n)])
                del self.held_buttons[n]  # its pending release finds another token (or none) and does nothing
            del self._since[what]
            return True

    def release_all(self) -> list[str]:
        with self._lock:
            released = []
            self._since.clear()
            self._releases.clear()
            for button in sorted(self.held_buttons):
                self._mouse.release(self._buttons[Button(button)])
                released.append(Button(button).name.lower())
            self.held_buttons.clear()
            for key_id, key in sorted(self.held_keys.items()):
                self._keyboard.release(key)
                released.append(KEY_VOCAB[key_id])
            self.held_keys.clear()
            return released

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.release_all()
            self._closed = True
            self._wake.notify_all()
            # drop the controllers now, so their X connections close while the server is still there
            self._mouse = self._keyboard = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
