"""`apply_action(game, action)`: one planned action on the sandbox rules — what performing it on
the game window does (a CLICK clicks at its position, a KEY press presses its key, a SCROLL
scrolls one notch where it points, a MOVE moves the cursor). The in-process ways of playing the sandbox (the
agent's sandbox execution mode, the demonstrator on a virtual clock) all go through it."""

from __future__ import annotations

from ..data.action import PlannedAction
from ..data.keys import KEY_VOCAB
from ..data.schema import EventType, KeyAction, ScrollY


def apply_action(game, action: PlannedAction) -> None:
    t = EventType(int(action.type))
    if t == EventType.CLICK:
        game.click(action.x, action.y, int(action.button))
    elif t == EventType.KEY:
        if int(action.key_action) == KeyAction.PRESS and 0 <= int(action.key_id) < len(KEY_VOCAB):
            game.key(KEY_VOCAB[int(action.key_id)])
    elif t == EventType.SCROLL:  # the pointer goes there first, as a real scroll's would
        game.move(action.x, action.y)
        game.scroll(1 if int(action.scroll_y) == ScrollY.UP else -1)
    else:
        game.move(action.x, action.y)
