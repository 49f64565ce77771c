"""The kill switch: a global hotkey (default F12) that stops the agent from anywhere.

A pynput keyboard listener (X RECORD on Linux) watches every key press on the display; the first
press of the hotkey calls `on_trigger` at once, on the listener's thread (no queue, no polling), so
the time from the key to the agent stopped is the listener's wake-up plus the callback. Only keys
that arrive through the X server count (see `_on_press`). The
switch is one-shot: later presses are ignored until `reset()`. pynput is imported in `start()`,
so importing this module needs no display.

Stopping a pynput listener on X: `stop()` + `join()` can hang until one more input event arrives
(the RECORD data connection blocks until then; desktop-testing notes). `stop()` therefore nudges
the server with a press and release of a keycode that has no key symbol — a key no application
can read as anything — and joins with a timeout (the listener thread is a daemon either way).
"""

from __future__ import annotations

import logging
import threading
import time

from ..data.keys import KEY_VOCAB, key_name, pynput_key_name
from ..errors import ConfigError

log = logging.getLogger(__name__)


def parse_hotkey(hotkey: str) -> str:
    """The key-vocabulary name of a hotkey spelled as in pynput or the key table ("f12", "F12",
    "Key.f12", "q", "esc"); ConfigError when it names no key."""
    name = key_name(hotkey) if isinstance(hotkey, str) and hotkey.strip() else "UNK"
    if name == "UNK":
        raise ConfigError(f"kill switch hotkey {hotkey!r} is not a key name (try f12, esc, pause, q; see "
                          f"ilbot.data.keys.KEY_VOCAB: {', '.join(KEY_VOCAB[37:49])}, ...)")
    return name


def pressed_name(key) -> str:
    """The vocabulary name of a key object a pynput listener reports (`pynput_key_name`)."""
    return pynput_key_name(key)


def nudge_x_listener() -> bool:
    """Press and release a keycode without any key symbol on the current X display, so a RECORD
    listener blocked in its data connection wakes up and can exit. False when none is free."""
    try:
        from Xlib import X, display
        from Xlib.ext import xtest
    except ImportError:  # pragma: no cover - python-xlib comes with pynput on Linux
        return False
    d = display.Display()
    try:
        lo, hi = d.display.info.min_keycode, d.display.info.max_keycode
        free = [kc for kc in range(hi, lo - 1, -1) if all(d.keycode_to_keysym(kc, i) == 0 for i in range(4))]
        if not free:
            return False
        xtest.fake_input(d, X.KeyPress, free[0])
        xtest.fake_input(d, X.KeyRelease, free[0])
        d.sync()
        return True
    finally:
        d.close()


class KillSwitch:
    def __init__(self, hotkey: str = "f12", on_trigger=None) -> None:
        self.hotkey = parse_hotkey(hotkey)
        self.on_trigger = on_trigger
        self.triggered = threading.Event()
        self.trigger_ns: int | None = None  # time.monotonic_ns() when the hotkey was seen
        self.done_ns: int | None = None  # ... and when on_trigger returned
        self.error: BaseException | None = None  # what on_trigger raised, if anything
        self._listener = None

    def _on_press(self, key, injected: bool = False) -> None:
        if threading.current_thread() is not self._listener:
            # pynput also reports keys its own controllers press in this process, synchronously on
            # the pressing thread while it holds pynput's listener lock; stopping from there would
            # deadlock the moment the callback releases a key. The same key arrives through the X
            # server on the listener thread a moment later, and is handled there.
            return
        if self.triggered.is_set() or pressed_name(key) != self.hotkey:
            return
        self.trigger_ns = time.monotonic_ns()
        self.triggered.set()
        if self.on_trigger is not None:
            try:
                self.on_trigger()
            except Exception as e:  # keep the listener alive; the caller reads .error
                self.error = e
                log.exception("kill switch: on_trigger failed")
        self.done_ns = time.monotonic_ns()

    def start(self) -> "KillSwitch":
        from pynput import keyboard

        if self._listener is None:
            self._listener = keyboard.Listener(on_press=self._on_press)
            self._listener.start()
            self._listener.wait()
        return self

    def reset(self) -> None:
        """Arm again after a trigger."""
        self.triggered.clear()
        self.trigger_ns = self.done_ns = None
        self.error = None

    def wait(self, timeout: float | None = None) -> bool:
        return self.triggered.wait(timeout)

    @property
    def running(self) -> bool:
        return self._listener is not None and self._listener.is_alive()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop listening; safe from any thread, including from `on_trigger` itself."""
        listener = self._listener
        if listener is None:
            return
        listener.stop()
        if listener is threading.current_thread():  # stopped from on_trigger: it ends after returning
            self._listener = None
            return
        listener.join(0.05)
        if listener.is_alive() and nudge_x_listener():
            listener.join(timeout)
        if listener.is_alive():  # pragma: no cover - only when no free keycode exists
            log.warning("kill switch: listener thread still blocked; left as a daemon thread")
        self._listener = None

    def __enter__(self) -> "KillSwitch":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
