"""Does the game window have the keyboard focus? A time line of it, sampled on X.

The recorder keeps keys and clicks only while the game window has focus (DESIGN §4, privacy).
`FocusTracker(window, window_id)` samples the X server every `interval_ms` (10 ms) on its own
connection and thread, and answers `focused_at(t_ns)` for an input event's monotonic time.

Which window has focus: the window the window manager names in the root's `_NET_ACTIVE_WINDOW`
when that property exists (0 there: no window has focus); else `XGetInputFocus`, where
PointerRoot or the root itself (no window manager, as under Xvfb) means the top-level window
under the pointer. That window is the game when:
- by id (`window_id`, when the game window was found on the X server): it is the game window,
  a child of it, or one of its ancestors below the root (a window manager's frame);
- else by geometry: it, or one of its ancestors below the root, lies inside the game window's
  rectangle (± `tolerance_px`). A window covering more than the game (a full-screen terminal
  over it) is not the game.

Each sample is bracketed by the monotonic time before its requests and after the reply, so a
change of focus is known to have happened between the start of the last sample that saw the old
state and the end of the first that saw the new one. `focused_at(t)` is False inside such a
window (uncertain counts as not focused), None for a time no sample has covered yet (ask again,
or `wait_focused(t)`), and False after the tracker failed or stopped.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from ..errors import UserError


class FocusTracker:
    def __init__(self, window, window_id: int = 0, *, interval_ms: float = 10.0, tolerance_px: int = 8,
                 display=None):
        self.rect = (int(window.x), int(window.y), int(window.width), int(window.height))
        self.window_id = int(window_id or 0)
        self.interval_s = float(interval_ms) / 1000.0
        self.tolerance = int(tolerance_px)
        self.samples = 0
        self.errors = 0
        self.last_error: str | None = None
        self._display_name = display
        self._d = None
        self._cond = threading.Condition()
        self._first: tuple[int, int, bool] | None = None  # (start, end, state) of the first sample
        self._last: tuple[int, int, bool] | None = None  # ... and of the latest
        self._changes: deque = deque(maxlen=100_000)  # (uncertain from, uncertain until, new state)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: dict[int, tuple[int, bool]] = {}  # window id → (sampled at, is the game)

    # -- X ----------------------------------------------------------------------------------------
    def connect(self) -> "FocusTracker":
        """Open this tracker's own X connection (`start` does; `is_game` needs it)."""
        from Xlib import display as xdisplay

        self._d = xdisplay.Display(self._display_name)
        self._root = self._d.screen().root
        self._net_active = self._d.intern_atom("_NET_ACTIVE_WINDOW")
        return self

    def start(self) -> "FocusTracker":
        """Connect, take the first sample and keep sampling on a thread; UserError when the X
        server cannot be asked."""
        try:
            self.connect()
            self._sample_once()
        except Exception as e:  # noqa: BLE001 - no X server, a bad DISPLAY, a broken connection
            self.close()
            raise UserError(f"cannot tell which window has the keyboard focus ({type(e).__name__}: {e}); "
                            "--all-input records input without that check") from None
        self._thread = threading.Thread(target=self._run, name="recorder-focus", daemon=True)
        self._thread.start()
        return self

    def focused_window(self):
        """The X window with the keyboard focus (see the module docstring), or None."""
        from Xlib import X

        prop = self._root.get_full_property(self._net_active, X.AnyPropertyType)
        if prop is not None and len(prop.value):  # a window manager says which window is active
            wid = int(prop.value[0])
            return self._d.create_resource_object("window", wid) if wid else None
        focus = self._d.get_input_focus().focus
        if isinstance(focus, int):
            if focus != X.PointerRoot:
                return None  # X.NONE: keys go nowhere
        elif focus.id != self._root.id:
            return focus
        child = self._root.query_pointer().child  # PointerRoot or the root: the window under the pointer
        return None if isinstance(child, int) else child

    def _ancestors(self, w) -> list:
        """`w` and its ancestors below the root, innermost first."""
        chain = []
        while w is not None and w.id != self._root.id and len(chain) < 64:
            chain.append(w)
            parent = w.query_tree().parent
            w = None if isinstance(parent, int) else parent
        return chain

    def _inside(self, w) -> bool:
        geo = w.get_geometry()
        origin = self._root.translate_coords(w, 0, 0)
        x, y, width, height = self.rect
        tol = self.tolerance
        return (origin.x >= x - tol and origin.y >= y - tol and origin.x + geo.width <= x + width + tol
                and origin.y + geo.height <= y + height + tol)

    def is_game(self, w) -> bool:
        """Is this focused window the game window (by id, else by geometry)?"""
        if w is None:
            return False
        chain = self._ancestors(w)
        if self.window_id:
            if any(a.id == self.window_id for a in chain):
                return True
            game = self._d.create_resource_object("window", self.window_id)
            return any(a.id == w.id for a in self._ancestors(game))  # w is the game window's frame
        return any(self._inside(a) for a in chain)

    def _game_focused(self) -> bool:
        w = self.focused_window()
        if w is None:
            return False
        now = time.monotonic_ns()
        hit = self._cache.get(w.id)
        if hit is not None and now - hit[0] < 250_000_000:  # windows rarely move: recheck every 250 ms
            return hit[1]
        result = self.is_game(w)
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[w.id] = (now, result)
        return result

    def _sample_once(self) -> None:
        t0 = time.monotonic_ns()
        try:
            state = self._game_focused()
        except Exception as e:  # noqa: BLE001 - a window vanished mid-question (BadWindow): not the game
            from Xlib.error import ConnectionClosedError

            if isinstance(e, ConnectionClosedError):
                raise
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            self._cache.clear()
            state = False
        t1 = time.monotonic_ns()
        with self._cond:
            if self._first is None:
                self._first = (t0, t1, state)
            elif state != self._last[2]:
                self._changes.append((self._last[0], t1, state))
            self._last = (t0, t1, state)
            self.samples += 1
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._sample_once()
                self._stop.wait(self.interval_s)
        except Exception as e:  # noqa: BLE001 - the connection is gone: nothing counts as focused from now on
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
        finally:
            with self._cond:
                self._stop.set()
                self._cond.notify_all()

    # -- answers ------------------------------------------------------------------------------------
    def focused_at(self, t_ns: int) -> bool | None:
        """Did the game window have focus at monotonic time `t_ns`? None: not sampled yet."""
        with self._cond:
            if self._last is None:
                return False
            if t_ns > self._last[1]:
                return False if self._stop.is_set() else None
            for u0, u1, state in reversed(self._changes):
                if t_ns >= u1:
                    return state
                if t_ns > u0:
                    return False  # the focus changed around then: not known to be the game's
            if len(self._changes) == self._changes.maxlen:
                return False  # older than the kept history
            return self._first[2]

    def wait_focused(self, t_ns: int, timeout: float = 1.0) -> bool:
        """`focused_at(t_ns)`, waiting (up to `timeout` s) for a sample that covers it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._last is not None and t_ns > self._last[1] and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return bool(self.focused_at(t_ns))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self.close()

    def close(self) -> None:
        d, self._d = self._d, None
        if d is not None:
            try:
                d.close()
            except Exception:  # noqa: BLE001  # pragma: no cover - already broken
                pass
