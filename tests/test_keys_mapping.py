"""One mapping from a pynput key to the key vocabulary, shared by the recorder, the kill switch
and the human-input listener: a table of key objects, then real key events under Xvfb."""

import time

import pytest

from ilbot.agent.human_input import AgentEcho, HumanInput
from ilbot.agent.recorder import Recorder
from ilbot.agent.window import WindowGeometry
from ilbot.data.keys import KEY_INDEX, pynput_key_id, pynput_key_name
from ilbot.data.schema import EventType, KeyAction
from ilbot.data.store import open_session
from ilbot.safety.killswitch import KillSwitch, nudge_x_listener, pressed_name

REGION = WindowGeometry(100, 100, 400, 300)


def table():
    """(pynput key object, vocabulary name) pairs; pynput is imported under the test's Xvfb."""
    from pynput.keyboard import Key, KeyCode

    return [
        (Key.shift, "shift"), (Key.shift_r, "shift_r"), (Key.ctrl_r, "ctrl_r"), (Key.alt_gr, "alt_r"),
        (Key.cmd_r, "cmd"), (Key.space, "space"), (Key.enter, "enter"), (Key.f12, "f12"),
        (Key.page_down, "page_down"), (Key.media_play_pause, "UNK"), (Key.f13, "UNK"),
        (KeyCode.from_char("a"), "a"), (KeyCode.from_char("A"), "a"), (KeyCode.from_char("!"), "1"),
        (KeyCode.from_char('"'), "quote"), (KeyCode.from_char("?"), "slash"), (KeyCode.from_char(" "), "space"),
        (KeyCode.from_char("\x01"), "a"), (KeyCode.from_char("\x1a"), "z"),  # Ctrl+A, Ctrl+Z on Windows
        (KeyCode.from_char("é"), "UNK"),
        (KeyCode.from_dead("´"), "quote"), (KeyCode.from_dead("~"), "backquote"), (KeyCode.from_dead("^"), "6"),
        (KeyCode(vk=0xFE51, char="´", is_dead=True), "quote"), (KeyCode(vk=0xFE57, char="¨", is_dead=True), "quote"),
        (KeyCode.from_vk(0x61), "a"), (KeyCode.from_vk(0x2F), "slash"), (KeyCode.from_vk(0xFFB1), "numpad_1"),
        (KeyCode.from_vk(0xFFBE), "f1"), (KeyCode.from_vk(0xFFC9), "f12"), (KeyCode.from_vk(0xFE03), "alt_r"),
        (KeyCode.from_vk(0xFF1B), "esc"), (KeyCode.from_vk(12345), "UNK"), (KeyCode.from_vk(0xE9), "UNK"),
    ]


def recorder_name(rec, key) -> str:
    """The name the recorder's listener callback queues for `key` (its own mapping path)."""
    rec._accepting = True
    rec._on_key(key, True)
    item = rec._queue.get_nowait()
    assert item[0] == "k"
    return item[2]


def human_key_id(key) -> int:
    got = []
    HumanInput((0, 0, 100, 100), got.append, AgentEcho())._on_key(key, KeyAction.PRESS)
    (event,) = got
    return event.key_id


def test_the_table(own_display, tmp_path):
    rec = Recorder(tmp_path / "t.ilbot.sqlite", REGION, hotkeys=None)
    for key, name in table():
        assert pynput_key_name(key) == name, key
        assert pynput_key_id(key) == KEY_INDEX[name]
        assert pressed_name(key) == name, key  # the kill switch
        assert recorder_name(rec, key) == name, key  # the recorder
        assert human_key_id(key) == KEY_INDEX[name], key  # the human-input listener


def test_virtual_key_codes_are_read_per_platform(own_display):
    from pynput.keyboard import KeyCode

    assert pynput_key_name(KeyCode.from_vk(0x41), "win32") == "a"  # VK_A
    assert pynput_key_name(KeyCode.from_vk(0x70), "win32") == "f1"  # VK_F1 (on X: 'p')
    assert pynput_key_name(KeyCode.from_vk(0x70), "linux") == "p"
    assert pynput_key_name(KeyCode.from_vk(0x61), "darwin") == "UNK"
    assert pynput_key_name(None) == "UNK" and pynput_key_name("Key.esc") == "esc"


def test_the_nudge_keycode_is_no_persons_key(own_display):
    from pynput.keyboard import KeyCode

    nudge = KeyCode.from_vk(0)
    assert pynput_key_name(nudge) == pressed_name(nudge) == "UNK"
    got = []
    HumanInput((0, 0, 1, 1), got.append, AgentEcho())._on_key(nudge, KeyAction.PRESS)
    assert got == []  # the live listener ignores it


# -- real key events ---------------------------------------------------------------------------------
# (keysyms pressed together, the vocabulary name of the key the person pressed last); the keysyms
# below the line are not in Xvfb's default keymap and are given free keycodes for the test
LIVE = [(["a"], "a"), (["Shift_L", "1"], "1"), (["Shift_L", "apostrophe"], "quote"), (["Return"], "enter"),
        (["Super_L"], "cmd"), (["Control_R"], "ctrl_r"), (["KP_Enter"], "enter"),
        (["dead_acute"], "quote"), (["dead_tilde"], "backquote"), (["ISO_Level3_Shift"], "alt_r"),
        (["eacute"], "UNK")]
REMAPPED = ("dead_acute", "dead_tilde", "ISO_Level3_Shift", "eacute")


@pytest.fixture
def keyboard(own_display):
    """XTest typing on the test display, with the keysyms in REMAPPED mapped to free keycodes
    (restored afterwards)."""
    from Xlib import XK, display

    XK.load_keysym_group("xkb")  # dead keys, ISO_Level3_Shift (python-xlib loads only latin-1 by default)
    d = display.Display()
    lo, hi = d.display.info.min_keycode, d.display.info.max_keycode
    free = [kc for kc in range(hi, lo - 1, -1) if all(d.keycode_to_keysym(kc, i) == 0 for i in range(4))]
    codes = {}
    for name, kc in zip(REMAPPED, free[1:]):  # (the first free keycode stays free for listener nudges)
        ks = XK.string_to_keysym(name)
        d.change_keyboard_mapping(kc, [(ks, ks)])
        codes[name] = kc
    d.sync()
    time.sleep(0.3)

    def code(name):
        kc = codes.get(name) or d.keysym_to_keycode(XK.string_to_keysym(name))
        assert kc, f"no keycode for {name}"
        return kc

    yield d, code
    for kc in codes.values():
        d.change_keyboard_mapping(kc, [(0, 0)])
    d.sync()
    d.close()


def test_real_key_events_map_the_same_everywhere(keyboard, tmp_path):
    """A recorder, the human-input listener, two kill switches and a plain pynput listener all
    run while real key events arrive; the ids they see are the same, and the expected ones."""
    from pynput import keyboard as kb
    from Xlib import X
    from Xlib.ext import xtest

    d, code = keyboard
    seen = []  # key objects as a pynput listener reports them
    plain = kb.Listener(on_press=lambda k, injected=False: seen.append(k))
    human_events = []
    human = HumanInput((0, 0, 100, 100), human_events.append, AgentEcho())
    quote_switch, alt_r_switch = KillSwitch("quote"), KillSwitch("alt_r")  # keys the old mappings missed
    out = tmp_path / "k.ilbot.sqlite"
    rec = Recorder(out, REGION, all_input=True, settle_ms=50)
    plain.start()
    plain.wait()
    human.start()
    quote_switch.start()
    alt_r_switch.start()
    rec.start()
    try:
        for combo, _ in LIVE:
            for name in combo:
                xtest.fake_input(d, X.KeyPress, code(name))
            for name in reversed(combo):
                xtest.fake_input(d, X.KeyRelease, code(name))
            d.sync()
            time.sleep(0.05)
        time.sleep(0.3)
        human_seen, plain_seen = list(human_events), list(seen)  # (stopping nudges the listeners with shift)
    finally:
        rec.stop()
        quote_switch.stop()
        alt_r_switch.stop()
        human.stop()
        plain.stop()
        nudge_x_listener()  # wakes the plain listener's RECORD connection so it can end
        plain.join(2.0)
    expected = [KEY_INDEX[n] for combo, last in LIVE for n in (["shift"] * (len(combo) - 1) + [last])]
    with open_session(out) as s:
        recorded = [e.key_id for e in s.events() if e.type == EventType.KEY and e.key_action == KeyAction.PRESS]
    human_ids = [e.key_id for e in human_seen if e.key_action == KeyAction.PRESS]
    plain_ids = [pynput_key_id(k) for k in plain_seen]
    assert recorded == expected
    assert human_ids == expected
    assert plain_ids == expected
    assert [KEY_INDEX[pressed_name(k)] for k in plain_seen] == expected
    assert quote_switch.triggered.is_set() and alt_r_switch.triggered.is_set()
