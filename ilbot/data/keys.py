"""The fixed, versioned key vocabulary (DESIGN §2).

A model trained on one recording works on another because every dataset and checkpoint uses
this same table (and stores it, so a changed table is detected on load). Index 0 is `UNK`:
keys outside the table map there and are counted by whoever maps them.

Names follow pynput's `Key` names where one exists (`shift`, `ctrl_r`, `page_up`, `f5`);
printable keys are named by their unshifted US-layout key (`a`, `7`, `period`, `slash`).

`pynput_key_name(key)` / `pynput_key_id(key)` map a key object a pynput listener reports; the
recorder, the kill switch and the human-input listener all use them, so a person's keys encode
the same way wherever they are seen.
"""

from __future__ import annotations

import enum
import string
import sys

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


# -- pynput key objects ---------------------------------------------------------------------------
# Dead keys (a KeyCode with is_dead=True) carry the accent they type, spacing or combining; each
# maps to the key that types it on a US-international layout.
_DEAD = {
    "`": "backquote", "\u0300": "backquote",  # grave
    "´": "quote", "'": "quote", "\u0301": "quote",  # acute
    "^": "6", "\u0302": "6",  # circumflex
    "~": "backquote", "\u0303": "backquote",  # tilde
    "¨": "quote", '"': "quote", "\u0308": "quote",  # diaeresis
}
# X keysyms (a KeyCode's vk on X) that are not printable ASCII; printable ASCII keysyms equal
# their character code.
_X_KEYSYMS = {
    0xFF08: "backspace", 0xFF09: "tab", 0xFF0D: "enter", 0xFF13: "pause", 0xFF14: "scroll_lock",
    0xFF1B: "esc", 0xFF50: "home", 0xFF51: "left", 0xFF52: "up", 0xFF53: "right", 0xFF54: "down",
    0xFF55: "page_up", 0xFF56: "page_down", 0xFF57: "end", 0xFF61: "print_screen", 0xFF63: "insert",
    0xFF67: "menu", 0xFF7E: "alt_r", 0xFF7F: "num_lock", 0xFF8D: "enter", 0xFF95: "home", 0xFF96: "left",
    0xFF97: "up", 0xFF98: "right", 0xFF99: "down", 0xFF9A: "page_up", 0xFF9B: "page_down", 0xFF9C: "end",
    0xFF9E: "insert", 0xFF9F: "delete", 0xFFE1: "shift", 0xFFE2: "shift_r", 0xFFE3: "ctrl",
    0xFFE4: "ctrl_r", 0xFFE5: "caps_lock", 0xFFE9: "alt", 0xFFEA: "alt_r", 0xFFEB: "cmd", 0xFFEC: "cmd",
    0xFFFF: "delete", 0xFE03: "alt_r",  # ISO_Level3_Shift (AltGr)
    0xFE50: "backquote", 0xFE51: "quote", 0xFE52: "6", 0xFE53: "backquote", 0xFE57: "quote",  # dead keys
} | {0xFFB0 + i: f"numpad_{i}" for i in range(10)} | {0xFFBE + i: f"f{i + 1}" for i in range(12)}
# Windows virtual-key codes (a KeyCode's vk on Windows) for keys reported without a character.
_WIN_VKS = ({0x30 + i: str(i) for i in range(10)} | {0x41 + i: chr(0x61 + i) for i in range(26)}
            | {0x60 + i: f"numpad_{i}" for i in range(10)} | {0x70 + i: f"f{i + 1}" for i in range(12)})


def pynput_key_name(key, platform: str | None = None) -> str:
    """The vocabulary name of a key object a pynput keyboard listener reports, or "UNK".

    The one mapping the recorder, the kill switch and the human-input listener share:
    - `Key.x` (an enum member) → its name through `key_name` (`Key.shift_l` → "shift", `Key.alt_gr`
      → "alt_r"; media keys → "UNK");
    - a `KeyCode` with a character → the key that types it (`'A'` → "a", `'!'` → "1"); a control
      character (Ctrl+letter on Windows) → its letter;
    - a dead key (`is_dead`) → the US-international key of its accent (´ ¨ → "quote", ` ~ →
      "backquote", ^ → "6");
    - a `KeyCode` with only a virtual-key code → the key that code names on the platform: X keysyms
      on Linux (printable ASCII, keypad digits, function, navigation and modifier keys), Windows
      virtual-key codes for letters, digits, keypad digits and F1-F12; anything else (and vk 0,
      a keycode without a key symbol) → "UNK".
    A string is read as a key name (`key_name`). `platform` defaults to `sys.platform`."""
    if key is None:
        return "UNK"
    if isinstance(key, str):
        return key_name(key)
    if isinstance(key, enum.Enum):  # pynput.keyboard.Key
        return key_name(key.name)
    char = getattr(key, "char", None)
    if isinstance(char, str) and char:
        if getattr(key, "is_dead", False):
            return _DEAD.get(char, "UNK")
        if len(char) == 1 and 0 < ord(char) <= 26 and char not in _CHAR_NAME:
            return chr(0x60 + ord(char))  # a control character: Ctrl+letter
        return key_name(char)
    vk = getattr(key, "vk", None)
    if not isinstance(vk, int) or isinstance(vk, bool) or vk <= 0:
        return "UNK"
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux") or platform.startswith("freebsd"):
        if 0x20 <= vk < 0x7F:
            return key_name(chr(vk))
        return _X_KEYSYMS.get(vk, "UNK")
    if platform == "win32":
        return _WIN_VKS.get(vk, "UNK")
    return "UNK"


def pynput_key_id(key, platform: str | None = None) -> int:
    """Index in KEY_VOCAB of a pynput key object (`pynput_key_name`; 0 = UNK)."""
    return KEY_INDEX[pynput_key_name(key, platform)]
