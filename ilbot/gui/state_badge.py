"""What the app shows as the agent's state: one `Badge`, drawn on the overlay and in the window.

`badge_for(mode, state, reason, kind=..., recording=...)` turns what the run reported (its
execution mode, its state machine's state and reason, `ilbot.agent.run`) and the recorder's
progress into the badge both places show:

| situation | badge text | colour |
| --- | --- | --- |
| recording, no run | `REC 0:12 · 34 events` | red |
| run waiting for its first game state | `WAITING FOR GAME STATE (DRY RUN)` | slate |
| run running | `SANDBOX` / `DRY RUN` / `LIVE` (a replay adds `· replay`) | teal / blue / red |
| run paused | `describe_reason`: `PAUSED: <reason in plain words> (press Resume (F6) to go on)` | amber |
| run stopped | `STOPPED: <reason in plain words>` | grey |
| nothing yet | `IDLE` | grey |

`live` is set for every state of a live run that is not stopped: the overlay then draws a red
border around the game. A recording made while a run is going adds ` · REC m:ss` to the run's
badge. `StateBadge` is the window's label for it (coloured, bold, wrapping).
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtWidgets import QLabel, QSizePolicy, QWidget

from ..agent.run import STOP_REASONS, describe_reason

COLOURS = {
    "sandbox": (0, 121, 107),  # teal
    "dry_run": (40, 90, 170),  # blue
    "live": (200, 20, 20),  # red
    "paused": (205, 120, 0),  # amber
    "waiting": (84, 98, 117),  # slate
    "rec": (190, 0, 40),  # crimson
    "idle": (96, 96, 96),  # grey
}


@dataclass(frozen=True)
class Badge:
    text: str
    colour: tuple[int, int, int]
    live: bool = False  # a live run: the overlay draws a red border around the game
    state: str = "idle"  # idle / recording / waiting_for_state / running / paused / stopped


def format_elapsed(seconds: float) -> str:
    s = max(int(seconds), 0)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def recording_text(elapsed_s: float, events: int) -> str:
    return f"REC {format_elapsed(elapsed_s)} · {events} event{'s' if events != 1 else ''}"


def _mode_value(mode) -> str:
    return str(getattr(mode, "value", mode) or "dry_run")


def _mode_label(mode) -> str:
    return _mode_value(mode).replace("_", " ").upper()


def badge_for(mode=None, state: str = "", reason: str = "", *, kind: str = "agent",
              recording: tuple[float, int] | None = None) -> Badge:
    """The badge for a run in `mode` (an `ilbot.agent.assemble.Mode` or its value) in `state`
    (`ilbot.agent.run.RunState` values; "" before the run has reported any), and the recorder's
    `(elapsed seconds, events)` while recording."""
    state = str(getattr(state, "value", state) or "")
    live = _mode_value(mode) == "live" and state not in ("", "stopped")
    rec = f" · {recording_text(*recording).split(' · ')[0]}" if recording is not None else ""
    if state in ("", "stopped") and recording is not None:
        return Badge(recording_text(*recording), COLOURS["rec"], False, "recording")
    if state == "paused":
        return Badge(describe_reason("paused", reason) + rec, COLOURS["paused"], live, "paused")
    if state == "waiting_for_state":
        return Badge(f"WAITING FOR GAME STATE ({_mode_label(mode)})" + rec, COLOURS["waiting"], live, state)
    if state == "running":
        text = _mode_label(mode) + (" · replay" if kind == "replay" else "")
        return Badge(text + rec, COLOURS.get(_mode_value(mode), COLOURS["dry_run"]), live, state)
    if state == "stopped":
        return Badge(f"STOPPED: {STOP_REASONS.get(reason, reason or 'stopped')}", COLOURS["idle"], False, state)
    if state == "starting":
        return Badge(f"STARTING ({_mode_label(mode)})", COLOURS["waiting"], _mode_value(mode) == "live", state)
    return Badge("IDLE", COLOURS["idle"], False, "idle")


class StateBadge(QLabel):
    """The window's state badge: the badge text, bold, on its colour, across the window's top."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setToolTip("what the agent is doing now: its execution mode, or PAUSED (why, and how to resume), "
                        "WAITING FOR GAME STATE, REC while recording")
        self.badge: Badge | None = None
        self.show_badge(badge_for())

    def show_badge(self, badge: Badge) -> None:
        if badge == self.badge:
            return
        self.badge = badge
        r, g, b = badge.colour
        border = "border: 3px solid rgb(255,40,40);" if badge.live else ""
        self.setStyleSheet(f"QLabel {{ background: rgb({r},{g},{b}); color: white; font-weight: bold; "
                           f"padding: 4px 8px; border-radius: 4px; {border} }}")
        self.setText(badge.text)
