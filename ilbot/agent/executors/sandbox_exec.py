"""`SandboxExecutor`: performs actions on the in-process sandbox game (execution mode `sandbox`).

No operating-system input at all: each action that passed safety is applied to the game's rules
(`click`, `key`, `scroll`, `move` at its window position), which is what performing it on the
game window would do — safe by construction, so it is the default on the built-in sandbox.
`game` is anything with those four methods (the sandbox's `SandboxGame`; the executor imports
nothing from the sandbox). `dispatch(fn)` runs `fn` where the game lives: the app passes one
that queues it onto the GUI thread, which also ticks the game; the default runs it at once.

Keys are applied on press (the sandbox reacts to presses); nothing is ever held, so
`release_all()` has nothing to release.
"""

from __future__ import annotations

from typing import Callable

from ...data.action import PlannedAction
from ...data.keys import KEY_VOCAB
from ...data.schema import EventType, KeyAction
from .base import Executor


def apply_to_game(game, action: PlannedAction) -> None:
    """Apply one action to the sandbox rules at its window-relative position."""
    t = EventType(int(action.type))
    if t == EventType.CLICK:
        game.click(action.x, action.y, int(action.button))
    elif t == EventType.KEY:
        if int(action.key_action) == KeyAction.PRESS and 0 <= int(action.key_id) < len(KEY_VOCAB):
            game.key(KEY_VOCAB[int(action.key_id)])
    elif t == EventType.SCROLL:
        game.scroll(1 if int(action.scroll_y) == 1 else -1)
    else:
        game.move(action.x, action.y)


class SandboxExecutor(Executor):
    name = "sandbox"

    def __init__(self, game, dispatch: Callable[[Callable[[], None]], None] | None = None) -> None:
        super().__init__()
        self.game = game
        self.dispatch = dispatch or (lambda fn: fn())

    def _perform(self, action: PlannedAction, sx: int, sy: int) -> None:
        self.dispatch(lambda: apply_to_game(self.game, action))

    def release_all(self) -> list[str]:
        return []
