"""The event schema shared by every part of ilbot (DESIGN §2, §5).

Every input is one exclusive event of one of four types, always in this index order
(heads, targets, plots, confusion matrices): CLICK=0, KEY=1, SCROLL=2, MOVE=3.

Array layouts (DESIGN §5), with the field order pinned here so the dataset builder, the model
and the live runtime agree:

- a *history row* `[8]`: dt_ms, x, y, type, button, key_action, key_id, scroll_y
- a *target row*  `[7]`: dt_ms, x, y, button, key_action, key_id, scroll_y

x and y are normalised to the game window (0..1 inside it); dt_ms is raw milliseconds (the
model applies its own input transform).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

# Window geometry of a dataset sample (DESIGN §5).
T = 10  # ticks of context
F = 128  # game-state features per tick
A = 100  # event slots per tick window (targets include the look-ahead slot)
TICK_MS = 600.0  # default tick length (Old School RuneScape)
LOOKAHEAD_CLIP_MS = 10_000.0  # the look-ahead slot's dt is clipped at this horizon


# Bounds every stored value is checked against: by the importers on the way in (a row outside them
# is skipped and counted, or fatal under --strict) and by the store's readers on the way out (a
# damaged store is refused).
MAX_COORD_PX = 1e6  # |x|, |y| in pixels
MAX_ABS_TIME_NS = 4e18  # an importer's source time, in ns (epoch times fit; differences stay in int64)
MAX_SESSION_HALF_SPAN_NS = 7 * 86_400 * 10**9  # an imported row's time from its session's median time
MAX_STORED_T_NS = 30 * 86_400 * 10**9  # |t_ns| of a stored event or tick (since the session start)
MAX_HOLD_MS = 30 * 86_400 * 1e3  # a stored CLICK hold
MIN_TICK_MS = 1.0  # a tick length (a CLI --tick-ms, a store's or a checkpoint's tick_ms): 1 ms ..
MAX_TICK_MS = 3_600_000.0  # .. one hour; shorter ticks would make a session millions of ticks long
SEED_MAX = 2**31 - 1  # random seeds (CLI --seed, config seed) lie in 0..SEED_MAX


def tick_ms_problem(value) -> str | None:
    """Why `value` is not a tick length in ms (None when it is one): a finite number in
    [MIN_TICK_MS, MAX_TICK_MS]."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and MIN_TICK_MS <= value <= MAX_TICK_MS)
    return None if ok else f"expected a tick length in milliseconds, {MIN_TICK_MS:g}..{MAX_TICK_MS:g}, got {value!r}"


class EventType(IntEnum):
    CLICK = 0
    KEY = 1
    SCROLL = 2
    MOVE = 3


EVENT_NAMES: tuple[str, ...] = tuple(e.name for e in EventType)  # ("CLICK", "KEY", "SCROLL", "MOVE")
N_EVENT_TYPES = len(EVENT_NAMES)


class Button(IntEnum):
    NONE = 0
    LEFT = 1
    RIGHT = 2
    MIDDLE = 3


POINTER_TYPES = (EventType.CLICK, EventType.SCROLL, EventType.MOVE)  # events that put the pointer somewhere


class KeyAction(IntEnum):
    NONE = 0
    PRESS = 1
    RELEASE = 2


class ScrollY(IntEnum):
    """Scroll class: 1 is a notch up (+1), 2 a notch down (-1)."""

    NONE = 0
    UP = 1
    DOWN = 2


N_BUTTONS = len(Button)
N_KEY_ACTIONS = len(KeyAction)
N_SCROLL = len(ScrollY)

HISTORY_FIELDS: tuple[str, ...] = ("dt_ms", "x", "y", "type", "button", "key_action", "key_id", "scroll_y")
TARGET_FIELDS: tuple[str, ...] = ("dt_ms", "x", "y", "button", "key_action", "key_id", "scroll_y")
H = {name: i for i, name in enumerate(HISTORY_FIELDS)}  # column index of a history field
# the pointer row: where the last pointer event (POINTER_TYPES) before the context's oldest
# history window put the cursor, x and y normalised, and known (1) or not (0: the session holds
# no such event before the context). The history says where the cursor is only while the
# context holds an event; after T idle ticks this row still does.
POINTER_FIELDS: tuple[str, ...] = ("x", "y", "known")
UNKNOWN_POINTER = (0.5, 0.5, 0.0)  # the pointer row when no pointer event precedes the context
# the arrays of one model context (DESIGN §5), in the dataset's batches and the runtime's context
CONTEXT_FIELDS: tuple[str, ...] = ("gamestate", "history", "history_mask", "pointer")
TG = {name: i for i, name in enumerate(TARGET_FIELDS)}  # column index of a target field


def derive_event_type(button: int, key_action: int, scroll_y: int) -> EventType:
    """CLICK if a button is set, else KEY if a key action is set, else SCROLL, else MOVE."""
    if button != 0:
        return EventType.CLICK
    if key_action != 0:
        return EventType.KEY
    if scroll_y != 0:
        return EventType.SCROLL
    return EventType.MOVE


def scroll_class(dy: float) -> ScrollY:
    """Scroll class of a vertical wheel delta (+ up, - down, 0 none)."""
    if dy > 0:
        return ScrollY.UP
    if dy < 0:
        return ScrollY.DOWN
    return ScrollY.NONE


# The seed's event-class weights, keyed by NAME (never by position; DESIGN §2 and §6).
DEFAULT_CLASS_WEIGHTS: dict[str, float] = {"MOVE": 1.0, "CLICK": 8.0, "KEY": 6.0, "SCROLL": 12.0}


def class_weights(weights: dict[str, float] | str | None, event_counts: dict[str, float] | None = None) -> list[float]:
    """Class weights in EventType index order, looked up by name.

    `weights` is a name → weight mapping (every name must be an event type; missing names get 1.0),
    None for the defaults, or "auto" for inverse-frequency weights from `event_counts` (a name →
    count mapping, e.g. a dataset's stats), normalised so the mean weight over the
    types present is 1. A type never seen gets the largest seen weight (it cannot be estimated)."""
    if weights is None:
        weights = DEFAULT_CLASS_WEIGHTS
    if isinstance(weights, str):
        if weights != "auto":
            raise ValueError(f"class weights: expected a name→weight table or 'auto', got {weights!r}")
        if not event_counts:
            raise ValueError("class weights 'auto' needs the dataset's event counts")
        counts = [float(event_counts.get(n, 0.0)) for n in EVENT_NAMES]
        total = sum(counts)
        inv = [total / c if c > 0 else 0.0 for c in counts]
        seen = [w for w in inv if w > 0]
        if not seen:
            raise ValueError("class weights 'auto': the dataset has no events")
        mean = sum(seen) / len(seen)
        top = max(seen) / mean
        return [w / mean if w > 0 else top for w in inv]
    unknown = sorted(set(weights) - set(EVENT_NAMES))
    if unknown:
        raise ValueError(f"class weights: unknown event type name(s) {unknown}; expected {list(EVENT_NAMES)}")
    return [float(weights.get(n, 1.0)) for n in EVENT_NAMES]


@dataclass(frozen=True)
class Event:
    """One recorded input event (DESIGN §2, §4).

    t_ns is monotonic nanoseconds since the session start; x, y are pixels relative to the game
    window's client area (for every type; KEY and SCROLL carry the cursor position at that time).
    hold_ms is the button hold time of a CLICK (0 otherwise)."""

    t_ns: int
    type: EventType
    x: float
    y: float
    button: int = 0
    key_action: int = 0
    key_id: int = 0
    scroll_y: int = 0
    hold_ms: float = 0.0

    @staticmethod
    def make(t_ns: int, x: float, y: float, button: int = 0, key_action: int = 0, key_id: int = 0,
             scroll_y: int = 0, hold_ms: float = 0.0) -> "Event":
        """An event whose type is derived from its fields."""
        return Event(int(t_ns), derive_event_type(button, key_action, scroll_y), float(x), float(y),
                     int(button), int(key_action), int(key_id), int(scroll_y), float(hold_ms))


@dataclass(frozen=True)
class Tick:
    """One game tick: its index, start time (ns since session start), raw JSON and features."""

    tick: int
    t_ns: int
    raw_json: str
    features: "object"  # np.ndarray [F] float32
