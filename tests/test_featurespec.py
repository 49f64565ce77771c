"""Feature specs: transforms, paths, the shipped specs, a stable hash and one-line spec errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ilbot.data import load_spec
from ilbot.data.featurespec import parse_path, spec_from_dict
from ilbot.data.schema import F
from ilbot.errors import ConfigError

OSRS_DOC = {
    "events": {"animation": 832, "animation pose": 808, "game tick": 12345, "run energy": 87, "health": "45/99",
               "worldPoint": {"x": 3222, "y": 3218, "plane": 1}, "camera": {"yaw": 1024, "pitch": 256},
               "mouse": {"x": 300, "y": 200}, "npc name": "Goblin", "interacting code": 1},
    "inv": [{"id": 1511, "quantity": 1}] * 3 + [{"id": 995, "quantity": 1000}] + [{"id": -1, "quantity": 0}] * 24,
    "stats": [{"stat": "Attack", "level": 60, "boostedLevel": 62, "xp": 1},
              {"stat": "Hitpoints", "level": 99, "boostedLevel": 45, "xp": 1}],
}


def _spec(slots, **top):
    return {"name": "t", **top, "slot": slots}


def _fill(used):
    """Zero slots for every index not in `used`."""
    return [{"index": i, "transform": "zero"} for i in range(F) if i not in used]


def test_shipped_osrs_spec_reads_runelite_state():
    spec = load_spec("osrs")
    v = spec.features(OSRS_DOC)
    assert v.shape == (F,) and v.dtype == np.float32
    assert v[0] == pytest.approx(0.0832) and v[1] == 0.0  # animating
    assert v[3] == pytest.approx(0.45)  # game tick phase 45/100
    assert v[4] == pytest.approx(0.87)
    assert v[5] == pytest.approx(45 / 99) and v[6] == pytest.approx(0.45) and v[7] == pytest.approx(0.99)
    assert v[8] == pytest.approx(0.022) and list(v[10:14]) == [0, 1, 0, 0]
    assert v[14] == pytest.approx(0.5) and v[16] == pytest.approx(0.3)
    assert 0 < v[18] <= 1 and v[19] == 1.0
    assert v[20] == pytest.approx(1511 / 30000) and v[23] == pytest.approx(995 / 30000)
    assert v[51] == pytest.approx(np.log1p(1000) * 0.1, rel=1e-5)
    assert v[76] == pytest.approx(62 / 99) and v[79] == pytest.approx(45 / 99)  # Attack, Hitpoints
    assert not v[99:].any()
    # missing everything: defaults (health ratio 1.0, the rest 0)
    e = spec.features("{}")
    assert e[5] == 1.0 and e.sum() == 1.0
    assert spec.features("not json")[5] == 1.0
    assert np.array_equal(spec.features(json.dumps(OSRS_DOC)), v)


def test_empty_spec_is_all_zero_and_hashes_differ():
    e = load_spec("empty")
    assert not e.features(OSRS_DOC).any()
    assert e.hash != load_spec("osrs").hash and len(e.hash) == 16
    assert load_spec("empty").hash == e.hash


def test_transforms_and_paths():
    slots = [
        {"index": 0, "path": "a", "transform": "scale", "scale": 2, "offset": 1},
        {"index": 1, "path": "a", "transform": "clip", "min": 0, "max": 3},
        {"index": 2, "path": "a", "transform": "log"},
        {"index": 3, "path": "s", "transform": "one_hot", "equals": "yes"},
        {"index": 4, "path": "s", "transform": "hash", "buckets": 8},
        {"index": 5, "path": "missing.deep[3]", "transform": "scale", "default": -1},
        {"index": 6, "path": "lst[1].v", "transform": "scale"},
        {"index": 7, "path": "lst[?k=b].v", "transform": "scale"},
        {"index": 8, "path": '["key with.dot"]', "transform": "scale"},
        {"index": 9, "path": "r", "transform": "scale", "parse": "ratio"},
        {"index": 10, "path": "a", "transform": "scale", "scale": 10, "max": 20},
        {"index": 11, "path": "s", "transform": "scale", "default": 7},  # unparseable → default
        {"index": 12, "path": "b", "transform": "scale"},  # booleans are numbers
        {"index": 13, "path": "n", "transform": "scale"},  # numeric string
        {"index": 14, "path": "a", "transform": "scale", "mod": 4},
        {"index": 15, "path": "lst[9].v", "transform": "scale", "default": 3},
        {"index": 16, "path": "$.a", "transform": "one_hot", "equals": 5},
        {"index": 17, "path": "r", "transform": "scale", "parse": "ratio_den"},
        {"index": 18, "path": "lst[?k=zz].v", "transform": "scale", "default": 9},
        {"index": 19, "path": "a.b", "transform": "scale", "default": 4},  # a is not an object
        {"index": 20, "path": "r0", "transform": "scale", "parse": "ratio", "default": 2},  # x/0
        {"index": 21, "path": "a", "transform": "scale", "parse": "ratio", "default": 6},  # not a ratio
        {"index": 22, "path": "s[0]", "transform": "scale", "default": 8},  # not a list
        {"index": 23, "path": "s[?k=a]", "transform": "scale", "default": 5},
        {"index": 24, "path": "a", "transform": "scale", "min": 6},
        {"index": 25, "path": "r", "transform": "scale", "parse": "ratio_num"},
        {"index": 26, "path": "rx", "transform": "scale", "parse": "ratio", "default": 1},
        {"index": 27, "path": "lst", "transform": "scale", "default": 11},  # a list is no number
    ]
    spec = spec_from_dict(_spec(slots + _fill(range(28))))
    doc = {"a": 5, "s": "yes", "lst": [{"k": "a", "v": 1}, {"k": "b", "v": 2}], "key with.dot": 4, "r": "3/4",
           "b": True, "n": "2.5", "r0": "1/0", "rx": "a/b"}
    v = spec.features(doc)
    assert list(v[:4]) == pytest.approx([8, 3, np.log1p(5), 1])
    assert 0 < v[4] <= 1 and v[4] == spec.features(doc)[4]
    assert list(v[5:10]) == pytest.approx([-1, 2, 2, 4, 0.75])
    assert list(v[10:28]) == pytest.approx([20, 7, 1, 2.5, 1, 3, 1, 4, 9, 4, 2, 6, 8, 5, 6, 3, 1, 11])
    assert parse_path('x["y"][2][?a=b]') == [("key", "x"), ("key", "y"), ("index", 2), ("match", "a", "b")]
    with pytest.raises(ValueError):
        parse_path("a[")
    with pytest.raises(ValueError):
        parse_path("")


def test_hash_is_of_content_not_bytes(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text('name = "x"\n[[slot]]\nindex = 0\ncount = 128\ntransform = "zero"\n')
    b = tmp_path / "b.toml"
    b.write_text('# a comment\nname="x"\n\n' + "".join(
        f'[[slot]]\ntransform = "zero"\nindex = {i}\n' for i in reversed(range(128))))
    assert load_spec(a).hash == load_spec(b).hash
    c = tmp_path / "c.toml"
    c.write_text('name = "x"\n[[slot]]\nindex = 0\npath = "a"\ntransform = "scale"\n'
                 '[[slot]]\nindex = 1\ncount = 127\ntransform = "zero"\n')
    d = tmp_path / "d.toml"
    d.write_text(c.read_text().replace('"scale"\n', '"scale"\nscale = 2\n', 1))
    assert load_spec(c).hash != load_spec(d).hash != load_spec(a).hash


@pytest.mark.parametrize("body, match", [
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "sqrt"\npath = "a"\n', "slot\\]\\] #1 \\(index 0\\): unknown transform 'sqrt'"),
    ('[[slot]]\nindex = 0\ncount = 127\ntransform = "zero"\n', "slot count is 127, expected 128 \\(missing slots 127\\)"),
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "zero"\n[[slot]]\nindex = 5\ntransform = "zero"\n',
     "#2: duplicate slot 5"),
    ('[[slot]]\nindex = 0\ncount = 129\ntransform = "zero"\n', "slot 128 outside"),
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "scale"\npath = "a["\n', "bad JSON path"),
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "scale"\n', "needs a JSON `path`"),
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "clip"\npath = "a"\nmin = 0\n', "needs `max`"),
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "hash"\npath = "a"\nbuckets = 0\n', "positive integer"),
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "scale"\npath = "a"\nscale = "big"\n', "must be a number"),
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "scale"\npath = "a"\nmod = 0\n', "must not be 0"),
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "scale"\npath = "a"\nparse = "hex"\n', "unknown parse"),
    ('[[slot]]\nindex = 0\ncount = 128\ntransform = "scale"\npath = "a"\nfoo = 1\n', "unknown option"),
    ('[[slot]]\nindex = "0"\ntransform = "zero"\n', "integer `index`"),
    ('[[slot]]\nindex = 0\ncount = 0\ntransform = "zero"\n', "`count` must be"),
    ('name = "x"\n', "no \\[\\[slot\\]\\]"),
    ('slot = [1]\n', "not a table"),
    ('[[slot]\n', "invalid TOML"),
])
def test_spec_errors_name_file_and_slot(tmp_path, body, match):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(ConfigError, match=match) as e:
        load_spec(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_unknown_spec_name_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such shipped spec"):
        load_spec("nosuchgame")
    with pytest.raises(ConfigError, match="no such feature spec file"):
        load_spec(tmp_path / "x.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read"):
        load_spec(tmp_path / "bin.toml")
