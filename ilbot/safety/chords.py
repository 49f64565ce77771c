"""Layer 1b, OS chords: no key press that would complete a chord the desktop acts on.

A game never needs them and each can take the person's machine out of their hands: ctrl+alt
together (ctrl+alt+delete, ctrl+alt+backspace — which kills an X server that allows it —,
ctrl+alt+F1..F12 — a console switch —, and AltGr chords), alt+tab, alt+F4, alt+esc, ctrl+esc, and
the super (meta, "cmd") key at all. The layer looks at the keys the plan holds (the key-pairing
layer's record, through `held_keys()`) and drops a KEY press that would make every part of a
blocked chord held at once ("os_chord"), whatever the order the keys were pressed in. Releases
always pass.

All are blocked by default; `SafetyConfig.allow_os_chords` names the ones a user allows
("all" for every one).
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..data.action import PlannedAction
from ..data.keys import key_id
from ..data.schema import EventType, KeyAction
from ..errors import ConfigError
from .intervention import SafetyLayer

CTRL = frozenset({key_id("ctrl"), key_id("ctrl_r")})
ALT = frozenset({key_id("alt"), key_id("alt_r")})
SUPER = frozenset({key_id("cmd")})

# name → the groups of keys that, one from each group held together, make the chord
OS_CHORDS: dict[str, tuple[frozenset[int], ...]] = {
    "ctrl+alt": (CTRL, ALT),
    "alt+tab": (ALT, frozenset({key_id("tab")})),
    "alt+f4": (ALT, frozenset({key_id("f4")})),
    "alt+esc": (ALT, frozenset({key_id("esc")})),
    "ctrl+esc": (CTRL, frozenset({key_id("esc")})),
    "super": (SUPER,),
}


def parse_allowed(spec) -> frozenset[str]:
    """The chord names allowed by a config value: True/"all" → every one, False/""/None → none,
    a list or comma-separated names → those (ConfigError naming an unknown one)."""
    if spec is True:
        return frozenset(OS_CHORDS)
    if spec is False or spec is None or (isinstance(spec, str) and spec.strip().lower() in ("false", "none")):
        return frozenset()
    names = spec.split(",") if isinstance(spec, str) else spec
    if not isinstance(names, (list, tuple, set, frozenset)):
        raise ConfigError(f"safety.allow_os_chords: expected true, false or chord names, got {spec!r}")
    out = set()
    for raw in names:
        name = str(raw).strip().lower().replace(" ", "")
        if not name:
            continue
        if name in ("all", "true"):
            return frozenset(OS_CHORDS)
        if name not in OS_CHORDS:
            raise ConfigError(f"safety.allow_os_chords: {raw!r} is not a chord name; expected 'all' or some of "
                              f"{', '.join(OS_CHORDS)}")
        out.add(name)
    return frozenset(out)


class OsChords(SafetyLayer):
    name = "os_chords"

    def __init__(self, held_keys: Callable[[], Iterable[int]], allowed: Iterable[str] = (),
                 log_size: int = 1000) -> None:
        super().__init__(log_size)
        self.held_keys = held_keys
        self.allowed = frozenset(allowed)
        self.blocked = {n: groups for n, groups in OS_CHORDS.items() if n not in self.allowed}

    def chord_of(self, key: int, held: Iterable[int]) -> str | None:
        """The blocked chord a press of `key` would complete with `held` down, or None."""
        down = set(held) | {key}
        for name, groups in self.blocked.items():
            if any(key in g for g in groups) and all(down & g for g in groups):
                return name
        return None

    def filter(self, action: PlannedAction, now_ms: float) -> PlannedAction | None:
        if action.type == EventType.KEY and action.key_action == KeyAction.PRESS:
            chord = self.chord_of(int(action.key_id), self.held_keys())
            if chord is not None:
                self._intervene("os_chord", action.with_(meta={**action.meta, "chord": chord}), now_ms)
                return None
        return action
