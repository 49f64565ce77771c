"""`ilbot sandbox`: play the practice game.

    ilbot sandbox [--state-dir DIR] [--seed N] [--ticks N] [--http-port P]

`ilbot sandbox demo` (the scripted demonstrator recording sessions) is added to this command by
`ilbot.demo.commands`, which may import the agent; this package does not.
"""

from __future__ import annotations

import os
import sys

from ..data import paths
from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("sandbox", help="the practice game (and its scripted demonstrator)",
                       description="Open the sandbox game; its state goes out as json-dir files (and optionally HTTP).")
    _game_arguments(p)
    p.set_defaults(func=_run_game)


def _game_arguments(p) -> None:
    p.add_argument("--state-dir", default=None,
                   help=f"folder for the per-tick JSON state files (default {paths.sandbox_state_dir()}, "
                        f"created for this user only; ${paths.STATE_ENV} overrides it)")
    p.add_argument("--seed", type=int, default=0, help="game seed (node positions, resources, respawns)")
    p.add_argument("--ticks", type=int, default=None, help="close after this many ticks (default: run until closed)")
    p.add_argument("--tick-ms", type=float, default=600.0, help="tick length in ms (default 600)")
    p.add_argument("--http-port", type=int, default=None,
                   help="also serve the state on http://127.0.0.1:PORT/state (0 picks a free port)")
    p.add_argument("--keep", type=int, default=50, help="state files kept in the folder (default 50)")


def require_display(what: str) -> None:
    if not os.environ.get("DISPLAY"):
        raise UserError(f"{what} needs a display: DISPLAY is not set (run it under an X server, e.g. xvfb-run)")


def _run_game(args) -> int:
    require_display("ilbot sandbox")
    from PyQt6.QtCore import QEventLoop
    from PyQt6.QtWidgets import QApplication

    from .game import SandboxWindow
    from .logic import GameConfig
    from .publish import JsonDirPublisher, StateServer

    if args.ticks is not None and args.ticks < 1:
        raise UserError(f"--ticks must be at least 1, got {args.ticks}")
    if args.tick_ms <= 0:
        raise UserError(f"--tick-ms must be positive, got {args.tick_ms}")
    if args.state_dir is None:
        args.state_dir = str(paths.sandbox_state_dir(create=True))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    publishers = [JsonDirPublisher(args.state_dir, keep=args.keep)]
    server = None
    if args.http_port is not None:
        server = StateServer(args.http_port)
        publishers.append(server)
        print(f"sandbox: serving state on {server.url}", flush=True)
    # a local event loop rather than app.exec()/app.quit(): the same code runs inside another
    # QApplication (tests, the app) without quitting it; closing the window ends the game too
    loop = QEventLoop()
    win = SandboxWindow(GameConfig(seed=args.seed), publishers, tick_ms=args.tick_ms, max_ticks=args.ticks,
                        on_finished=loop.quit)
    win.closed.connect(loop.quit)
    win.move(0, 0)
    win.show()
    win.raise_()
    win.activateWindow()
    print(f"sandbox: state in {args.state_dir} (tick_<n>.json every {args.tick_ms:g} ms)", flush=True)
    win.start()
    try:
        loop.exec()
    finally:
        win.stop()
        win.close()
        if server is not None:
            server.close()
    g = win.game
    print(f"sandbox: {g.tick_index} ticks, score {g.score}, banked {g.banked}, misclicks {g.misclicks}", flush=True)
    return 0

