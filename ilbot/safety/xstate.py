"""What the X server itself says is held: the ground truth behind "nothing is left pressed".

The agent's bookkeeping (the pipeline's held keys, the executor's held set) can only say what it
*thinks* it pressed; `XInputState` asks the server (`QueryKeymap` for keys, the pointer's button
mask for buttons). The tests and `ilbot bench killswitch` use it to check releases; the guardian
(`ilbot.safety.guardian`) uses `release_everything()` to let go of all of it. X11 only;
python-xlib comes with pynput there and is imported on first use.
"""

from __future__ import annotations

# ilbot Button (1 left, 2 right, 3 middle) → the X pointer mask bit (X numbers 1 left, 2 middle, 3 right)
BUTTON_MASKS = {1: 1 << 8, 2: 1 << 10, 3: 1 << 9}


class XInputState:
    def __init__(self, display_name: str | None = None) -> None:
        from Xlib import display

        self.display = display.Display(display_name)
        self.root = self.display.screen().root

    def keys_down(self) -> set[int]:
        """Keycodes the server has down now."""
        keymap = self.display.query_keymap()  # 32 bytes, bit k = keycode k
        return {i * 8 + b for i, byte in enumerate(keymap) for b in range(8) if byte >> b & 1}

    def buttons_down(self) -> set[int]:
        """Buttons down now, as ilbot `Button` values (1 left, 2 right, 3 middle)."""
        mask = self.root.query_pointer().mask
        return {n for n, bit in BUTTON_MASKS.items() if mask & bit}

    def x_buttons_down(self) -> set[int]:
        """Buttons down now as X numbers (1 left, 2 middle, 3 right, 4-5 the wheel)."""
        mask = self.root.query_pointer().mask
        return {b for b in range(1, 6) if mask & (1 << (7 + b))}

    def release_everything(self) -> tuple[set[int], set[int]]:
        """Release, through XTest on this connection, every key and button the server has down;
        returns (keycodes, X buttons) released. Whoever pressed them — the guardian uses it."""
        from Xlib import X
        from Xlib.ext import xtest

        keys, buttons = self.keys_down(), self.x_buttons_down()
        for kc in sorted(keys):
            xtest.fake_input(self.display, X.KeyRelease, kc)
        for b in sorted(buttons):
            xtest.fake_input(self.display, X.ButtonRelease, b)
        if keys or buttons:
            self.display.sync()
        return keys, buttons

    def pointer(self) -> tuple[int, int]:
        p = self.root.query_pointer()
        return p.root_x, p.root_y

    def keycode(self, key_id: int) -> int:
        """The keycode the server uses for a key-vocabulary index (0 when it has none)."""
        from pynput.keyboard import Key

        from ..data.keys import KEY_VOCAB, key_char

        name = KEY_VOCAB[int(key_id)]
        char = key_char(name)
        keysym = ord(char) if char is not None else Key[name].value.vk  # Latin-1 keysyms are the code points
        return self.display.keysym_to_keycode(keysym)

    def anything_held(self) -> bool:
        return bool(self.keys_down() or self.buttons_down())

    def close(self) -> None:
        self.display.close()

    def __enter__(self) -> "XInputState":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
