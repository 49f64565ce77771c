"""The fixed, versioned key vocabulary (DESIGN §2).

A model trained on one recording works on another because every dataset and checkpoint uses
this same table (and stores it, so a changed table is detected on load). Index 0 is `UNK`:
keys outside the table map there and are counted by whoever maps them.

Names follow pynput's `Key` names where one exists (`shift`, `ctrl_r`, `page_up`, `f5`);
printable keys are named by their unshifted US-layout key (`a`, `7`, `period`, `slash`).
"""

from __future__ import annotations

import string

KEY_VOCAB_VERSION = 1

_PUNCT = {  # name → character on a US layout, unshifted
    "backquote": "`", "minus": "-", "equals": "=", "open_bracket": "[", "close_bracket": "]",
    "backslash": "\\", "semicolon": ";", "quote": "'", "comma": ",", "period": ".", "slash": "/",
}
_SHIFTED = {  # a shifted character → the name of the key that types it
    "~": "backquote", "!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8",
    "(": "9", ")": "0", "_": "minus", "+": "equals", "{": "open_bracket", "}": "close_bracket",
    "|": "backslash", ":": "semicolon", '"': "quote", "<": "comma", ">": "period", "?": "slash",
}
_SPECIAL = [
    "space", "enter", "esc", "tab", "backspace", "delete", "insert", "home", "end", "page_up", "page_down",
    "up", "down", "left", "right", "shift", "shift_r", "ctrl", "ctrl_r", "alt", "alt_r", "cmd",
    "caps_lock", "num_lock", "scroll_lock", "print_screen", "pause", "menu",
]

KEY_VOCAB: tuple[str, ...] = tuple(
    ["UNK"]
    + list(string.ascii_lowercase)
    + list(string.digits)
    + [f"f{i}" for i in range(1, 13)]
    + _SPECIAL
    + list(_PUNCT)
    + [f"numpad_{i}" for i in range(10)]
)
KEY_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEY_VOCAB)}
UNK = 0
VOCAB_SIZE = len(KEY_VOCAB)

# Other spellings seen in pynput, xdotool and public data sets → the vocabulary's name.
ALIASES = {
    "shift_l": "shift", "ctrl_l": "ctrl", "control": "ctrl", "control_l": "ctrl", "control_r": "ctrl_r",
    "alt_l": "alt", "alt_gr": "alt_r", "cmd_l": "cmd", "cmd_r": "cmd", "super": "cmd", "super_l": "cmd",
    "escape": "esc", "return": "enter", "dash": "minus", "hyphen": "minus", "back_slash": "backslash",
    "back_quote": "backquote", "grave": "backquote", "bracketleft": "open_bracket",
    "bracketright": "close_bracket", "apostrophe": "quote", "prior": "page_up", "next": "page_down",
    "pageup": "page_up", "pagedown": "page_down", "del": "delete", "ins": "insert", "capslock": "caps_lock",
    "print": "print_screen", "spacebar": "space",
}
_CHAR_NAME = {c: n for n, c in _PUNCT.items()} | _SHIFTED | {" ": "space", "\t": "tab", "\n": "enter", "\r": "enter"}


def key_name(raw: str) -> str:
    """The vocabulary name of a key name or typed character, or "UNK".

    Accepts pynput names (`Key.shift` → "shift"), single characters ("A" → "a", "!" → "1",
    "." → "period") and the aliases above. Case-insensitive for names."""
    if raw is None:
        return "UNK"
    s = str(raw)
    if s.startswith("Key."):
        s = s[4:]
    if len(s) == 1:
        if s.lower() in KEY_INDEX:
            return s.lower()
        return _CHAR_NAME.get(s, "UNK")
    s = s.strip().lower()
    s = ALIASES.get(s, s)
    return s if s in KEY_INDEX else "UNK"


def key_id(raw: str) -> int:
    """Index of a key name or character in KEY_VOCAB (0 = UNK)."""
    return KEY_INDEX[key_name(raw)]


def key_char(name: str) -> str | None:
    """The character a printable key types unshifted (for injecting it), or None for special keys."""
    if len(name) == 1:
        return name
    if name in _PUNCT:
        return _PUNCT[name]
    if name.startswith("numpad_"):
        return name[-1]
    return None
