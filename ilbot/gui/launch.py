"""What `python main.py` runs: the desktop app on its built-in default.

    python main.py                              the app on the sandbox with the shipped model, dry run
    python main.py --model RUN --source json-dir:DIR --window "Game title"
    python main.py --screenshot PNG [--ticks N] [--tab live|sessions|train]
                                                the app for N ticks, a screenshot of that tab, exit
    python main.py --headless [--ticks N]       the agent on the headless sandbox, a summary
    python main.py --ticks N --json             the app for N ticks, then a one-line JSON summary

With no display (no DISPLAY or WAYLAND_DISPLAY, and QT_QPA_PLATFORM not `offscreen`) it says so
and runs the headless agent on the sandbox for a fixed number of ticks, printing a summary.
By default the app starts the agent at once, on the sandbox in the `sandbox` execution mode (each
action that passed safety is applied to the in-app game, so the agent visibly plays); on any
other game in dry run (the overlay shows what the model would do). `--no-start` only opens it.
Live mode is never the default: choose it in the window, which asks for confirmation.

Run interactively, the app starts from the model, source, window, safety limits and layout it
was left with (ilbot.gui.persist); what the command line gives wins. `--screenshot`, `--ticks`
and `--headless` runs start from the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import UserError
from ..sandbox import SHIPPED_MODEL

HEADLESS_TICKS = 100
SCREENSHOT_TICKS = 20


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or os.environ.get("QT_QPA_PLATFORM") == "offscreen")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python main.py", description="ilbot desktop app (dry run by default)")
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The app's options (shared by `python main.py` and `ilbot app`)."""
    p.add_argument("--model", default=None, help="checkpoint or training-run folder (default: the last one loaded "
                                                 "in the app, else the shipped sandbox model)")
    p.add_argument("--source", default=None, help="sandbox | json-dir:PATH | http[:URL] | screen | replay:SESSION "
                                                  "(default: the app's last one, else sandbox)")
    p.add_argument("--window", default=None, help="game window: 'sandbox', a title, or a region x,y,w,h "
                                                  "(default: the app's last one, else sandbox)")
    p.add_argument("--sessions", default=None, help="folder of recorded sessions (default ~/.ilbot/sessions)")
    p.add_argument("--no-start", action="store_true", help="open the app without starting the agent")
    p.add_argument("--screenshot", metavar="PNG", default=None, help="run N ticks, save a screenshot, exit")
    p.add_argument("--tab", default=None, metavar="TAB",
                   help="the tab to open, by its title: live, sessions, train (train/training, train/models: "
                        "a page of it) (default: live; with --screenshot, "
                        "the tab the picture shows)")
    p.add_argument("--ticks", type=int, default=None,
                   help=f"ticks for --screenshot (default {SCREENSHOT_TICKS}) or the headless run (default {HEADLESS_TICKS})")
    p.add_argument("--headless", action="store_true", help="run the agent on the headless sandbox and print a summary")
    p.add_argument("--json", action="store_true", help="print the run's summary as one JSON object (with --ticks or --headless)")
    p.add_argument("--mode", default=None, choices=("sandbox", "dry_run"),
                   help="execution mode (default: sandbox on the built-in sandbox, dry_run elsewhere; live is chosen "
                        "in the window, which asks first)")
    p.add_argument("--safety", default=None, help="a TOML file whose [safety] table sets the safety limits")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        print(f"ilbot: error: {e}", file=sys.stderr)
        return 2


def run(args) -> int:
    """Run the app from parsed options (UserErrors propagate: the `ilbot` CLI prints them)."""
    if args.ticks is not None and args.ticks < 1:
        raise UserError(f"--ticks must be at least 1, got {args.ticks}")
    interactive = not (args.screenshot or args.ticks is not None or args.headless or not has_display())
    saved = {}
    if interactive:
        from .persist import saved_start

        saved = saved_start()
    args.source = args.source or saved.get("source") or "sandbox"
    args.window = args.window or saved.get("window") or "sandbox"
    from .main_window import SOURCES

    if args.source.partition(":")[0] not in SOURCES:
        raise UserError(f"--source {args.source!r}: expected one of {', '.join(SOURCES)} (with :ARG where it takes one)")
    on_sandbox = args.source.partition(":")[0] == "sandbox" and args.window.strip() in ("", "sandbox")
    mode = args.mode or ("sandbox" if on_sandbox else "dry_run")
    if mode == "sandbox" and not on_sandbox:
        raise UserError("--mode sandbox plays the built-in sandbox: use --source sandbox --window sandbox")
    safety = None
    if args.safety:
        from ..safety import SafetyConfig

        safety = SafetyConfig.from_toml(args.safety)  # one line naming the file and the field when bad
    model = args.model or saved.get("model") or str(SHIPPED_MODEL)
    if args.headless or not has_display():
        if not on_sandbox:
            raise UserError(f"--source {args.source!r}: without a display the agent plays only the built-in sandbox; "
                            "for another game use `ilbot play --source ...`")
        if not args.headless:
            print("ilbot: no display (DISPLAY and WAYLAND_DISPLAY are unset): running the headless agent on the "
                  "sandbox instead of the app", flush=True)
        if args.screenshot:
            raise UserError("--screenshot needs a display (run it under Xvfb: xvfb-run -s '-screen 0 1280x800x24')")
        from .headless import print_summary, run_headless

        summary = run_headless(model, args.ticks or HEADLESS_TICKS, mode=mode, safety=safety,
                               out=lambda line: print(line, file=sys.stderr, flush=True))
        print(json.dumps(summary) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            print_summary(summary)
        return 0
    from PyQt6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    win = MainWindow(model=model, source=args.source, window=args.window, safety_config=safety,
                     sessions_dir=Path(args.sessions) if args.sessions else None, persist=interactive)
    win.set_mode(mode)
    win.load_model()
    if args.tab:
        from .screenshot import select_tab

        try:
            select_tab(win, args.tab)  # a one-line UserError naming the tabs there are
        except UserError:
            win.shutdown()
            raise
    if args.screenshot:
        try:
            return screenshot_run(app, win, args.screenshot, args.ticks or SCREENSHOT_TICKS, args.tab)
        finally:
            win.shutdown()
    if args.ticks is not None:
        try:
            return ticks_run(app, win, args.ticks, args.json)
        finally:
            win.shutdown()
    if args.window.strip() in ("", "sandbox"):
        win.ensure_sandbox()
        if not saved_geometry():
            win.move(win.game_window.width() + 6, 0)
    win.show()
    if not args.no_start and win.checkpoint is not None:
        win.start()
    rc = app.exec()
    win.shutdown()
    return rc


def saved_geometry() -> bool:
    from .persist import get

    return get("geometry") is not None


def ticks_run(app, win, ticks: int, as_json: bool) -> int:
    """The app plays `ticks` ticks, then prints a summary (`score`: items the agent gathered on
    the sandbox; `mode`: the execution mode that ran); non-zero when the run failed."""
    from .screenshot import wait_for

    if args_window_is_sandbox(win):
        win.ensure_sandbox()
    if not win.start(ticks=ticks):
        raise UserError(win.errors[-1] if win.errors else "the agent did not start")
    wait_for(app, lambda: not win.running, 60.0 + ticks * 2.0 * win.tick_ms / 1000.0)
    win.stop()
    s = win.last_summary
    game = win.sandbox.game if win.sandbox is not None else None
    summary = {"ticks": s.get("ticks", 0), "mode": win.mode().value, "state": s.get("state"),
               "reason": s.get("reason"), "score": getattr(game, "score", None),
               "misclicks": getattr(game, "misclicks", None), "performed": s.get("performed", 0),
               "performed_by_type": s.get("performed_by_type"), "error": s.get("error")}
    if s.get("error") and not as_json:  # a failed run is one line (the JSON summary carries it as "error")
        raise UserError(s["error"])
    print(json.dumps(summary) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items()), flush=True)
    return 1 if s.get("error") else 0


def args_window_is_sandbox(win) -> bool:
    return win.window_edit.text().strip() in ("", "sandbox")


def screenshot_run(app, win, path: str, ticks: int, tab: str | None = None) -> int:
    from .screenshot import take

    return take(app, win, path, ticks, tab=tab)
