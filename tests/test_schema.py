import pytest

from ilbot.data import EVENT_NAMES, EventType, class_weights, derive_event_type, key_id, key_name
from ilbot.data.keys import KEY_VOCAB, UNK, key_char


def test_event_order_is_fixed():
    assert EVENT_NAMES == ("CLICK", "KEY", "SCROLL", "MOVE")
    assert [int(e) for e in EventType] == [0, 1, 2, 3]


@pytest.mark.parametrize("button,key_action,scroll,expected", [
    (1, 0, 0, EventType.CLICK), (2, 1, 1, EventType.CLICK), (0, 2, 1, EventType.KEY),
    (0, 0, 2, EventType.SCROLL), (0, 0, 0, EventType.MOVE),
])
def test_derive_event_type(button, key_action, scroll, expected):
    assert derive_event_type(button, key_action, scroll) is expected


def test_class_weights_by_name_not_position():
    assert class_weights(None) == [8.0, 6.0, 12.0, 1.0]
    assert class_weights({"SCROLL": 3.0, "CLICK": 2.0}) == [2.0, 1.0, 3.0, 1.0]
    with pytest.raises(ValueError, match="BOGUS"):
        class_weights({"BOGUS": 1.0})


def test_auto_class_weights_inverse_frequency():
    w = class_weights("auto", {"MOVE": 900, "CLICK": 50, "SCROLL": 50})
    assert w[3] < w[0] == pytest.approx(w[2])
    assert w[1] == pytest.approx(max(w))  # unseen KEY gets the largest seen weight
    with pytest.raises(ValueError):
        class_weights("auto", None)


def test_key_names():
    assert KEY_VOCAB[UNK] == "UNK"
    assert key_name("Key.shift_l") == "shift"
    assert key_name("A") == "a" and key_name("!") == "1" and key_name(".") == "period"
    assert key_name("dash") == "minus" and key_name("back_slash") == "backslash"
    assert key_id("no_such_key") == UNK and key_id("\u00e9") == UNK
    assert len(set(KEY_VOCAB)) == len(KEY_VOCAB)
    assert key_char("period") == "." and key_char("a") == "a" and key_char("shift") is None
