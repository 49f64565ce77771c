"""The game window: find it by title, or take a region, and report its client-area geometry.

Positions in a recording are relative to the game window's client area (DESIGN §2), so the
recorder and executors need its screen origin and size. `resolve_window("x,y,w,h")` takes a
region as given; any other text is a window title looked up on the X server with python-xlib:
first the window manager's `_NET_CLIENT_LIST` (client windows, not their frames), then — with no
window manager, as under Xvfb — a walk of the window tree. Titles come from `_NET_WM_NAME`
(UTF-8), else `WM_NAME`. An exact title wins over a case-insensitive substring; only mapped
(viewable) windows count. The geometry is taken once: a window moved during a recording is not
followed (the recorder stores the geometry it used in the session's meta).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import UserError

_REGION = re.compile(r"^\s*-?\d+\s*,\s*-?\d+\s*,\s*\d+\s*,\s*\d+\s*$")


@dataclass(frozen=True)
class WindowGeometry:
    """A game window's client area in screen pixels."""

    x: int
    y: int
    width: int
    height: int
    title: str = ""
    window_id: int = 0  # the X window it was found as (0: a region, not a window)

    def as_dict(self) -> dict:
        """The session meta's `window` value."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    def to_window(self, sx: float, sy: float) -> tuple[float, float]:
        """Screen → window-relative pixels."""
        return sx - self.x, sy - self.y

    def to_screen(self, wx: float, wy: float) -> tuple[float, float]:
        """Window-relative → screen pixels."""
        return wx + self.x, wy + self.y


def is_region(spec: str) -> bool:
    """Is this window text a region "x,y,w,h" (rather than a title)?"""
    return bool(_REGION.match(spec))


def parse_region(text: str) -> WindowGeometry:
    from .capture.registry import parse_region as _parse

    x, y, w, h = _parse(text)
    return WindowGeometry(x, y, w, h, title=f"region {x},{y},{w},{h}")


def _title(d, w, net_wm_name, utf8) -> str:
    try:
        prop = w.get_full_property(net_wm_name, utf8)
        if prop is not None and prop.value:
            v = prop.value
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        name = w.get_wm_name()
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        return name or ""
    except Exception:  # noqa: BLE001  # pragma: no cover - vanished while we looked (BadWindow)
        return ""


def list_windows(display=None) -> list[tuple[str, object]]:
    """(title, Xlib window) of every viewable, titled top-level window."""
    from Xlib import X, display as xdisplay

    d = display or xdisplay.Display()
    root = d.screen().root
    net_client_list = d.intern_atom("_NET_CLIENT_LIST")
    net_wm_name, utf8 = d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING")
    candidates = []
    prop = root.get_full_property(net_client_list, X.AnyPropertyType)
    if prop is not None and len(prop.value):
        candidates = [d.create_resource_object("window", wid) for wid in prop.value]
    else:  # no window manager: walk the tree (children before grandchildren)
        stack = list(root.query_tree().children)
        depth = {c.id: 1 for c in stack}
        while stack:
            w = stack.pop(0)
            candidates.append(w)
            if depth[w.id] < 3:
                try:
                    kids = w.query_tree().children
                except Exception:  # noqa: BLE001  # pragma: no cover - vanished while we looked
                    continue
                for k in kids:
                    depth[k.id] = depth[w.id] + 1
                stack.extend(kids)
    out = []
    for w in candidates:
        try:
            if w.get_attributes().map_state != X.IsViewable:
                continue
        except Exception:  # noqa: BLE001  # pragma: no cover - vanished while we looked
            continue
        title = _title(d, w, net_wm_name, utf8)
        if title:
            out.append((title, w))
    if display is None:
        d.close()
    return out


def find_window(title: str, display=None) -> WindowGeometry:
    """The client-area geometry of the viewable window titled `title` (exact, else substring)."""
    from Xlib import display as xdisplay

    try:
        d = display or xdisplay.Display()
    except Exception as e:  # noqa: BLE001 - no X server, bad DISPLAY
        raise UserError(f"window {title!r}: cannot connect to the X display ({e})") from None
    try:
        windows = list_windows(d)
        exact = [w for t, w in windows if t == title]
        loose = [w for t, w in windows if title.lower() in t.lower()]
        hits = exact or loose
        if not hits:
            seen = ", ".join(repr(t) for t, _ in windows[:8]) or "none"
            raise UserError(f"window {title!r}: no visible window has that title (seen: {seen})")
        w = hits[0]
        geo = w.get_geometry()
        origin = d.screen().root.translate_coords(w, 0, 0)
        return WindowGeometry(int(origin.x), int(origin.y), int(geo.width), int(geo.height),
                              title=_title(d, w, d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING")),
                              window_id=int(w.id))
    finally:
        if display is None:
            d.close()


def screen_geometry(display=None) -> WindowGeometry:
    """The whole screen as a 'window' (for sources without a game window)."""
    from Xlib import display as xdisplay

    d = display or xdisplay.Display()
    s = d.screen()
    g = WindowGeometry(0, 0, int(s.width_in_pixels), int(s.height_in_pixels), title="screen")
    if display is None:
        d.close()
    return g


def resolve_window(spec) -> WindowGeometry:
    """The one way to name a game window, resolved once into a `WindowGeometry`: a region
    "x,y,w,h", a window title (looked up on the X server), an existing geometry, a 4-sequence
    (x, y, width, height), a dict with x/y/width/height (a session's `window` meta), or None (the
    whole screen). Anything else, or a non-positive size, is a `UserError` naming it."""
    if isinstance(spec, WindowGeometry):
        return spec
    if spec is None or spec == "":
        return screen_geometry()
    if isinstance(spec, str):
        return parse_region(spec) if _REGION.match(spec) else find_window(spec)
    if isinstance(spec, dict):
        try:
            spec = (spec["x"], spec["y"], spec["width"], spec["height"])
        except KeyError as e:
            raise UserError(f"window: missing key {e.args[0]!r} (need x, y, width, height)") from None
    try:
        x, y, w, h = (float(v) for v in spec)
    except (TypeError, ValueError):
        raise UserError(f"window: expected x, y, width, height, got {spec!r}") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or not (w > 0 and h > 0):
        raise UserError(f"window: width and height must be positive numbers, got {spec!r}")
    return WindowGeometry(int(round(x)), int(round(y)), int(round(w)), int(round(h)))


def window_exists(window_id: int, display=None) -> bool:
    """Is the X window with this id still there and mapped? (the run stops when it closes)"""
    from Xlib import X, display as xdisplay
    from Xlib.error import XError

    d = display or xdisplay.Display()
    try:
        return d.create_resource_object("window", window_id).get_attributes().map_state == X.IsViewable
    except XError:
        return False
    finally:
        if display is None:
            d.close()
