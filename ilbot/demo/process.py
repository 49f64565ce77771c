"""The sandbox game as its own process, for the demonstrator to play.

`start_game` runs `python -m ilbot.cli sandbox --state-dir DIR --seed S --ticks N --tick-ms T`
(it closes itself after N ticks) with its output captured; `end_game` terminates it if it still
runs (killing it after 5 s) and returns what it printed. The state folder is the caller's (a
`mkdtemp` folder: only this user can reach it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def start_game(state_dir: Path, seed: int, ticks: int, tick_ms: float, keep: int | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ilbot.cli", "sandbox", "--state-dir", str(state_dir), "--seed", str(seed),
           "--ticks", str(ticks), "--tick-ms", str(tick_ms)]
    if keep is not None:
        cmd += ["--keep", str(keep)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def end_game(game: subprocess.Popen) -> str:
    """Ends the game process (if it still runs) and returns its output."""
    if game.poll() is None:
        game.terminate()
    try:
        out, _ = game.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        game.kill()
        out, _ = game.communicate()
    return out or ""


def game_output(game: subprocess.Popen) -> str:
    """What a game process that has exited printed (empty while it runs)."""
    if game.poll() is None:
        return ""
    out, _ = game.communicate()
    return out or ""
