"""Real X windows, keyboard focus and XTest typing on the test's own Xvfb (python-xlib only).

Without a window manager (as under the test Xvfb) a top-level window sits exactly where it is
created, and the keyboard focus is PointerRoot (the window under the pointer) until someone
sets it: `focus(window)` does, `focus(None)` puts PointerRoot back.
"""

from __future__ import annotations

import time

from Xlib import X, XK, display
from Xlib.ext import xtest


class XWindows:
    """Top-level windows made on one connection; `close()` destroys them and resets the focus."""

    def __init__(self):
        self.d = display.Display()
        self.root = self.d.screen().root
        self.windows = []

    def window(self, x, y, w, h, title="ilbot test window"):
        win = self.root.create_window(x, y, w, h, 0, X.CopyFromParent, X.InputOutput, X.CopyFromParent,
                                      background_pixel=self.d.screen().white_pixel,
                                      event_mask=X.StructureNotifyMask)
        win.set_wm_name(title)
        win.map()
        self.d.sync()
        deadline = time.monotonic() + 5
        while win.get_attributes().map_state != X.IsViewable and time.monotonic() < deadline:
            time.sleep(0.01)
        self.windows.append(win)
        return win

    def focus(self, win) -> None:
        """Give `win` the keyboard focus (None: PointerRoot, focus follows the pointer)."""
        if win is None:
            self.d.set_input_focus(X.PointerRoot, X.RevertToPointerRoot, X.CurrentTime)
        else:
            win.set_input_focus(X.RevertToPointerRoot, X.CurrentTime)
        self.d.sync()

    def focused(self):
        return self.d.get_input_focus().focus

    def set_active(self, win) -> None:
        """Play a window manager: name `win` in the root's _NET_ACTIVE_WINDOW (None: remove it)."""
        atom = self.d.intern_atom("_NET_ACTIVE_WINDOW")
        if win is None:
            self.root.delete_property(atom)
        else:
            self.root.change_property(atom, self.d.intern_atom("WINDOW"), 32, [win.id])
        self.d.sync()

    def type(self, keysyms, pause=0.01) -> None:
        """Press and release each keysym name through XTest ("h", "Return", "exclam", ...)."""
        for name in keysyms:
            kc = self.d.keysym_to_keycode(XK.string_to_keysym(name))
            assert kc, f"no keycode for {name!r}"
            xtest.fake_input(self.d, X.KeyPress, kc)
            xtest.fake_input(self.d, X.KeyRelease, kc)
            self.d.sync()
            time.sleep(pause)

    def move(self, x, y) -> None:
        xtest.fake_input(self.d, X.MotionNotify, x=x, y=y)
        self.d.sync()

    def click(self, button=1) -> None:
        xtest.fake_input(self.d, X.ButtonPress, button)
        self.d.sync()
        time.sleep(0.03)
        xtest.fake_input(self.d, X.ButtonRelease, button)
        self.d.sync()

    def close(self) -> None:
        self.set_active(None)
        self.focus(None)
        for win in self.windows:
            win.destroy()
        self.d.sync()
        self.d.close()
