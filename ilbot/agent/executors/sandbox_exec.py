"""`SandboxExecutor`: performs actions on the in-process sandbox game (execution mode `sandbox`).

No operating-system input at all: each action that passed safety is applied to the game's rules
(`ilbot.sandbox.apply.apply_action`), which is what performing it on the game window would do —
safe by construction, so it is the default on the built-in sandbox. `dispatch(fn)` runs `fn` where the game lives: the app passes one
that queues it onto the GUI thread, which also ticks the game; the default runs it at once.

Keys are applied on press (the sandbox reacts to presses); nothing is ever held, so
`release_all()` and `release()` have nothing to release and `held()` is empty.
"""

from __future__ import annotations

from typing import Callable

from ...data.action import PlannedAction
from ...sandbox.apply import apply_action
from .base import Executor


class SandboxExecutor(Executor):
    name = "sandbox"

    def __init__(self, game, dispatch: Callable[[Callable[[], None]], None] | None = None) -> None:
        super().__init__()
        self.game = game
        self.dispatch = dispatch or (lambda fn: fn())

    def _perform(self, action: PlannedAction, sx: int, sy: int) -> None:
        self.dispatch(lambda: apply_action(self.game, action))

    def release_all(self) -> list[str]:
        return []

    def held(self) -> dict[tuple[str, int], int]:
        return {}

    def release(self, what: tuple[str, int], since_ns: int | None = None) -> bool:
        return False
