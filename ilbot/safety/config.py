"""`SafetyConfig`: every limit the safety layers enforce, with defaults for a 600 ms-tick game.

Loadable from a plain dict or a TOML section (`[safety]`), so the CLI, the app and the agent
config file share one definition. Unknown keys and wrong types are `ConfigError`s naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..data.keys import key_id, key_name
from ..data.schema import EVENT_NAMES, LOOKAHEAD_CLIP_MS, TICK_MS
from ..errors import ConfigError
from .chords import parse_allowed


def _default_cooldowns() -> dict[str, float]:
    return {"CLICK": 60.0, "KEY": 30.0, "SCROLL": 30.0, "MOVE": 0.0}


def _default_rates() -> dict[str, float]:
    return {"CLICK": 10.0, "KEY": 20.0, "SCROLL": 20.0}


@dataclass
class SafetyConfig:
    # time floor: minimum gap between any two performed actions (ms)
    min_dt_ms: float = 8.0
    # per-type cooldown: minimum gap between two actions of the same type, by EVENT_NAMES name (ms).
    # KEY counts presses only; releases are never held back by a cooldown.
    cooldown_ms: dict[str, float] = field(default_factory=_default_cooldowns)
    # rate limit over any sliding 1 s window: all actions together, and per type by name.
    # 70/s total leaves room for human-like motion (moves thinned at 15 ms arrive at ≤ 66/s);
    # clicks and key presses are the actions that do things in a game, so they get tight limits.
    max_actions_per_s: float = 70.0
    max_per_s: dict[str, float] = field(default_factory=_default_rates)
    # key pairing
    max_hold_ms: float = 2000.0  # a key held longer is force-released
    max_click_hold_ms: float = 500.0  # a CLICK's hold time is clamped into [0, this]
    max_keys_held: int = 4  # a key storm cannot press more than this many keys at once
    # bounds: optional user region (x, y, width, height) in window pixels, intersected with the window
    region: tuple[float, float, float, float] | None = None
    # a planned time beyond this (ms after the tick start) is a model fault: dropped
    max_plan_ms: float = LOOKAHEAD_CLIP_MS
    # stale-state watchdog: this many ticks in a row without fresh game state → pause
    stale_ticks: int = 4  # no fresh state for this many ticks (2.4 s at 600 ms) → pause, all released
    # tick length, used to emit forced releases that fall due before the tick ends
    tick_ms: float = TICK_MS
    # how many recent interventions the pipeline keeps for the GUI and logs
    log_size: int = 1000
    # keys the agent may never press, comma-separated key names: the lock keys (they toggle state
    # that outlives any release). A TOML list is accepted too. The super key is an OS chord (below).
    blocked_keys: str = "caps_lock, num_lock, scroll_lock"
    # OS chords the agent may complete (ilbot.safety.chords): none by default. Comma-separated
    # names among ctrl+alt, alt+tab, alt+f4, alt+esc, ctrl+esc, super, or "all"; TOML also takes
    # `true` (all), `false` (none) or a list.
    allow_os_chords: str = ""

    def __post_init__(self) -> None:
        for name in ("min_dt_ms", "max_actions_per_s", "max_hold_ms", "max_click_hold_ms", "max_plan_ms", "tick_ms"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"safety.{name}: expected a finite number >= 0, got {v!r}")
        if self.tick_ms == 0:  # every state would be stale at once: the run would pause for good
            raise ConfigError(f"safety.tick_ms: the tick must be longer than 0 ms, got {self.tick_ms!r}")
        for name in ("max_keys_held", "stale_ticks", "log_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"safety.{name}: expected an integer >= 1, got {v!r}")
        for name, default in (("cooldown_ms", _default_cooldowns()), ("max_per_s", {})):
            table = getattr(self, name)
            if not isinstance(table, dict):
                raise ConfigError(f"safety.{name}: expected a table of event type → number, got {table!r}")
            for k, v in table.items():
                if k not in EVENT_NAMES:
                    raise ConfigError(f"safety.{name}.{k}: unknown event type; expected one of {list(EVENT_NAMES)}")
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                    raise ConfigError(f"safety.{name}.{k}: expected a finite number >= 0, got {v!r}")
            setattr(self, name, {**default, **{k: float(v) for k, v in table.items()}})
        if isinstance(self.blocked_keys, (list, tuple)):
            self.blocked_keys = ", ".join(str(k) for k in self.blocked_keys)
        if not isinstance(self.blocked_keys, str):
            raise ConfigError(f"safety.blocked_keys: expected key names separated by commas, got {self.blocked_keys!r}")
        for name in self._blocked_names():
            if key_name(name) == "UNK":
                raise ConfigError(f"safety.blocked_keys: {name!r} is not a key name")
        parse_allowed(self.allow_os_chords)  # ConfigError naming an unknown chord
        if isinstance(self.allow_os_chords, bool):
            self.allow_os_chords = "all" if self.allow_os_chords else ""
        elif isinstance(self.allow_os_chords, (list, tuple)):
            self.allow_os_chords = ", ".join(str(n) for n in self.allow_os_chords)
        if self.region is not None:
            r = self.region
            if (not isinstance(r, (list, tuple)) or len(r) != 4
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in r) or r[2] <= 0 or r[3] <= 0):
                raise ConfigError(f"safety.region: expected [x, y, width, height] with width, height > 0, got {r!r}")
            self.region = tuple(float(v) for v in r)

    def _blocked_names(self) -> list[str]:
        return [n.strip() for n in self.blocked_keys.split(",") if n.strip()]

    @property
    def allowed_os_chords(self) -> frozenset[str]:
        """The chord names `allow_os_chords` allows."""
        return parse_allowed(self.allow_os_chords)

    @property
    def blocked_key_ids(self) -> frozenset[int]:
        """Key-vocabulary indices of `blocked_keys`."""
        return frozenset(key_id(n) for n in self._blocked_names())

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "safety") -> "SafetyConfig":
        """A config from a mapping; `where` names the source in errors (a file and section)."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**d)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None

    @classmethod
    def from_toml(cls, path: str | Path, section: str = "safety") -> "SafetyConfig":
        """The `[section]` table of a TOML file (defaults when the file has no such section)."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        table = doc.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        return cls.from_dict(table, where=f"{path} [{section}]")
