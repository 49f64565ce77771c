"""`python main.py --screenshot PNG [--ticks N] [--tab TAB]`: a part of the app, as a PNG.

Runs the app on its default (sandbox + model, sandbox mode), waits until N ticks have been
planned and drawn, grabs the screen with mss (the real X framebuffer, so the overlay shows
exactly as composited), saves it and exits. With `--tab live` (the default) the picture holds
the game window with its overlay (and the strip under it) and the main window beside it; with
another tab (`sessions`, `train`: any tab, by its title; `train/training`, `train/models`: a page
of the Train tab) that tab is opened and the picture is the main window alone. A tab (or page)
the app does not have is a one-line error naming those it has. The main window is narrowed
(never below its minimum) and shortened to fit beside the game on the screen.

The overlay's translucency needs a compositor. When none runs on the display (nobody owns the
`_NET_WM_CM_S0` selection) and `xcompmgr` is installed, one is started for the screenshot and
stopped afterwards; without any, transparent pixels would be black, so this is refused with a
clear message rather than saving a black picture.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from ..errors import UserError


def compositor_running() -> bool:
    """Does a compositing manager own the display's _NET_WM_CM_S0 selection?"""
    from Xlib import X, display as xdisplay

    d = xdisplay.Display()
    try:
        screen = d.get_default_screen()
        owner = d.get_selection_owner(d.intern_atom(f"_NET_WM_CM_S{screen}"))
        return owner not in (X.NONE, 0) and getattr(owner, "id", owner) != 0
    finally:
        d.close()


def ensure_compositor(timeout_s: float = 5.0) -> subprocess.Popen | None:
    """Start xcompmgr when no compositor runs; returns the process (to stop later) or None."""
    if compositor_running():
        return None
    exe = shutil.which("xcompmgr")
    if exe is None:
        raise UserError("the overlay needs a compositor for translucency: install xcompmgr (apt) or run one")
    proc = subprocess.Popen([exe], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if compositor_running():
            return proc
        if proc.poll() is not None:
            raise UserError(f"xcompmgr exited at once (code {proc.returncode})")
        time.sleep(0.05)
    proc.terminate()
    raise UserError("xcompmgr did not take over the display within 5 s")


def stop_compositor(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def grab(rect: tuple[int, int, int, int], path: Path) -> Path:
    """Save the screen region (x, y, width, height) as a PNG."""
    import mss
    import mss.tools

    x, y, w, h = rect
    with mss.MSS() if hasattr(mss, "MSS") else mss.mss() as sct:
        shot = sct.grab({"left": int(x), "top": int(y), "width": int(w), "height": int(h)})
        path.parent.mkdir(parents=True, exist_ok=True)
        mss.tools.to_png(shot.rgb, shot.size, output=str(path))
    return path


def wait_for(app, predicate, timeout_s: float) -> bool:
    """Process Qt events until `predicate()` or the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def tab_titles(win) -> list[str]:
    return [win.tabs.tabText(i).replace("&", "") for i in range(win.tabs.count())]


def page_title(title: str) -> str:
    """'2 Training' → 'training': a page's title without its step number, lower case."""
    head, _, rest = title.replace("&", "").strip().partition(" ")
    return (rest if head.isdigit() and rest else title.replace("&", "")).strip().lower()


def select_tab(win, name: str) -> int:
    """Open the main window's tab titled `name` (any case), and with `TAB/PAGE` (`train/models`)
    that tab's page of that title; a UserError naming the tabs (or pages) there are otherwise."""
    tab, _, page = str(name).strip().partition("/")
    titles = tab_titles(win)
    for i, title in enumerate(titles):
        if title.lower() == tab.strip().lower():
            win.tabs.setCurrentIndex(i)
            if page.strip():
                select_page(win.tabs.widget(i), page.strip(), name)
            return i
    raise UserError(f"--tab {name!r}: the app has no such tab; it has {', '.join(t.lower() for t in titles)}")


def select_page(widget, page: str, name: str) -> None:
    pages = getattr(widget, "pages", None)
    titles = [page_title(pages.tabText(i)) for i in range(pages.count())] if pages is not None else []
    if page.lower() not in titles:
        raise UserError(f"--tab {name!r}: " + (f"that tab has no page {page!r}; it has {', '.join(titles)}"
                                                if titles else "that tab has no pages"))
    pages.setCurrentIndex(titles.index(page.lower()))


def place_beside(app, win, game) -> None:
    """Put the game at the origin and the main window beside it, narrowed and shortened (never
    below its minimum size) to fit the screen."""
    x = 0
    if game is not None:
        game.move(0, 0)
        x = game.width() + 6
    free = app.primaryScreen().availableGeometry()
    hint = win.minimumSizeHint()
    w = max(min(win.width(), free.right() + 1 - x), hint.width())
    h = max(min(win.height(), free.height()), hint.height())
    win.resize(w, h)
    win.move(x, 0)


def take(app, win, path: str | Path, ticks: int = 20, timeout_s: float | None = None, tab: str | None = None) -> int:
    """Run the already-built main window's agent for `ticks` ticks, save the screenshot of `tab`
    (default: live, the game with its overlay and the window), stop.

    Returns 0 on success, 1 when the agent failed (the error is printed and the picture, showing
    the error in the window, is still saved)."""
    path = Path(path)
    live_tab = tab is None or str(tab).strip().lower() == "live"
    select_tab(win, tab or "live")
    compositor = ensure_compositor()
    try:
        if win.window_edit.text().strip() in ("", "sandbox"):
            win.ensure_sandbox()
        game = win.game_window
        place_beside(app, win, game)
        win.grabbed_plan = []
        win.show()
        win.raise_()
        wait_for(app, lambda: False, 0.3)  # let the windows map
        started = win.start()
        limit = timeout_s if timeout_s is not None else 30.0 + ticks * 1.5 * win.tick_ms / 1000.0
        ok = started and wait_for(app, lambda: win.ticks_seen >= ticks or not win.running, limit)
        ok = ok and win.ticks_seen >= ticks
        # freeze the picture: no new plan reaches the overlay, then give the compositor time to
        # put the last one on screen; `win.grabbed_plan` is exactly what the picture shows
        if win.thread is not None:
            try:
                win.thread.planned.disconnect(win.on_plan)
            except TypeError:  # already finished
                pass
        win.overlay.raise_()
        win.overlay.repaint()
        wait_for(app, lambda: False, 0.4)
        win.grabbed_plan = list(win.overlay.actions)
        frame = win.frameGeometry()
        screen = app.primaryScreen().geometry()
        if live_tab:
            over = win.overlay.frameGeometry() if win.overlay.isVisible() else frame
            left, top = 0, 0
            right = max(frame.right(), over.right(), game.width() - 1 if game is not None else 0) + 1
            bottom = max(frame.bottom(), over.bottom(), game.height() - 1 if game is not None else 0) + 1
        else:
            left, top, right, bottom = frame.left(), frame.top(), frame.right() + 1, frame.bottom() + 1
        left, top = max(left, 0), max(top, 0)
        grab((left, top, min(right, screen.width()) - left, min(bottom, screen.height()) - top), path)
        # keep the overlay's last plan in the picture, then stop
        win.stop()
    finally:
        stop_compositor(compositor)
    if not ok:
        err = win.errors[-1] if win.errors else f"only {win.ticks_seen} of {ticks} ticks ran"
        print(f"ilbot: screenshot saved to {path}, but the agent did not run {ticks} ticks: {err}")
        return 1
    print(f"ilbot: screenshot after {win.ticks_seen} ticks saved to {path}")
    return 0
