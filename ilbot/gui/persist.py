"""The app's settings across restarts (QSettings, organisation "ilbot", application "ilbot").

Kept: the model folder, the capture source, the game window, the safety limits and the layout
(window geometry, the splitter between the tabs and the messages, the open tab). On Linux they
live in `~/.config/ilbot/ilbot.conf`; with `ILBOT_SETTINGS_DIR` set they live in
`$ILBOT_SETTINGS_DIR/ilbot.ini` instead (the tests point it at a temporary folder, so they never
touch a person's settings).

What the command line gives wins over what was saved; a saved model folder that no longer
exists is skipped (the shipped model is used), and saved safety limits that no longer load
(renamed fields, bad values) are ignored with a message, never an error that stops the app.
The app reads and writes them only when it runs interactively: `--screenshot`, `--ticks` and
`--headless` runs start from the defaults, so their results do not depend on a person's setup.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from PyQt6.QtCore import QSettings

ORGANISATION = APPLICATION = "ilbot"
ENV_DIR = "ILBOT_SETTINGS_DIR"
KEYS = {
    "model": "agent/model", "source": "agent/source", "window": "agent/window", "safety": "safety/limits",
    "geometry": "layout/geometry", "splitter": "layout/splitter", "tab": "layout/tab",
}


def app_settings() -> QSettings:
    """The app's settings store (ILBOT_SETTINGS_DIR/ilbot.ini when that is set)."""
    folder = os.environ.get(ENV_DIR)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / "ilbot.ini"), QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def get(name: str, default=None):
    v = app_settings().value(KEYS[name])
    return default if v in (None, "") else v


def put(name: str, value) -> None:
    s = app_settings()
    if value is None:
        s.remove(KEYS[name])
    else:
        s.setValue(KEYS[name], value)
    s.sync()


def saved_start() -> dict[str, str]:
    """The saved model (when its folder still exists), source and window."""
    out = {}
    for name in ("source", "window"):
        v = get(name)
        if isinstance(v, str) and v.strip():
            out[name] = v
    model = get("model")
    if isinstance(model, str) and model.strip() and Path(model).expanduser().is_dir():
        out["model"] = model
    return out


def save_safety(config) -> None:
    put("safety", json.dumps(dataclasses.asdict(config)))


def load_safety():
    """(the saved SafetyConfig or None, a one-line note when saved limits were ignored or None)."""
    text = get("safety")
    if not text:
        return None, None
    from ..safety import SafetyConfig

    try:
        return SafetyConfig.from_dict(json.loads(text), where="saved safety limits"), None
    except Exception as e:  # noqa: BLE001 - a stale or damaged entry: the defaults, and say so
        return None, f"saved safety limits ignored ({e}); using the defaults"
