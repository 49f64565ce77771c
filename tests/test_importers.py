"""Importers: Balabit, keystrokes and ilbot-csv logs into session stores, counts and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ilbot.cli import main
from ilbot.data import open_session
from ilbot.data.importers import ImportOptions, run_import
from ilbot.data.importers.balabit import repair_wraps
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType

BAL_HEADER = "record timestamp,client timestamp,button,state,x,y\n"
WRAP_S = 2**32 / 1000.0  # a 32-bit millisecond clock wraps after this many seconds


def _balabit(tmp_path, rows, user="user12", name="session_1"):
    d = tmp_path / "in" / user
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(BAL_HEADER + "".join(r + "\n" for r in rows))
    return p


BAL_ROWS = [
    "0.0,0.0,NoButton,Move,100,200",
    "0.0,0.016,NoButton,Move,65535,65535",  # sentinel: dropped
    "0.0,0.032,NoButton,Drag,110,210",  # drag → MOVE
    "0.1,0.100,Left,Pressed,110,210",
    "0.1,0.204,Left,Released,110,210",  # → CLICK hold 104 ms
    "0.2,0.300,Scroll,Up,0,0",  # → SCROLL up at (110, 210)
    "0.2,0.310,Scroll,Down,0,0",
    "0.3,0.400,Right,Pressed,300,301",
    "0.3,0.500,Right,Pressed,302,303",  # the earlier right press never released: dropped
    "0.4,0.600,Right,Released,302,303",  # → CLICK at the second press
    "0.4,0.700,Left,Released,5,5",  # release without press
    "0.5,0.800,XButton,Pressed,5,5",
    "0.5,0.900,XButton,Released,5,5",
    "0.6,1.000,Middle,Pressed,7,8",
    "0.6,1.050,Middle,Released,7,8",
    "0.7,1.100,Left,Pressed,9,9",  # never released: dropped with a warning
]


def test_balabit_every_pair(tmp_path, capsys):
    p = _balabit(tmp_path, BAL_ROWS)
    assert main(["import", "balabit", str(p.parent.parent), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "unmatched_press 2" in out and "warning: 2 press(es)" in out and "sentinel_dropped 1" in out
    s = open_session(tmp_path / "out" / "balabit_user12_session_1.ilbot.sqlite")
    ev = list(s.events())
    kinds = [(e.type, e.t_ns // 1_000_000, e.x, e.y, e.button, e.scroll_y, round(e.hold_ms)) for e in ev]
    assert kinds == [
        (EventType.MOVE, 0, 100, 200, 0, 0, 0),
        (EventType.MOVE, 32, 110, 210, 0, 0, 0),
        (EventType.CLICK, 100, 110, 210, 1, 0, 104),
        (EventType.SCROLL, 300, 110, 210, 0, 1, 0),
        (EventType.SCROLL, 310, 110, 210, 0, 2, 0),
        (EventType.CLICK, 500, 302, 303, 2, 0, 100),
        (EventType.CLICK, 1000, 7, 8, 3, 0, 50),
    ]
    c = s.meta["import_counts"]
    assert s.meta["user"] == 12 and s.meta["source"] == "balabit"
    assert c["clicks"] == 3 and c["unmatched_press"] == 2 and c["unmatched_release"] == 1
    assert c["unsupported_button"] == 2 and c["sentinel_dropped"] == 1 and c["moves_in"] == 3
    assert s.meta["window"] == {"x": 0, "y": 0, "width": 303, "height": 304}
    assert s.meta["hold_ms"]["median"] == pytest.approx(100, abs=0.01)
    assert s.meta["feature_spec"] == "empty"


def test_balabit_clock_wrap_repaired(tmp_path):
    base = WRAP_S - 0.05  # the client clock wraps 50 ms into the session
    rows = [f"0.0,{base:.3f},NoButton,Move,1,1", f"0.0,{base + 0.03:.3f},NoButton,Move,2,2",
            f"0.1,{base + 0.06 - WRAP_S:.3f},NoButton,Move,3,3", f"0.1,{base + 0.09 - WRAP_S:.3f},NoButton,Move,4,4"]
    p = _balabit(tmp_path, rows, name="session_wrap")
    run_import("balabit", [p], tmp_path / "out", progress=False)
    s = open_session(tmp_path / "out" / "balabit_user12_session_wrap.ilbot.sqlite")
    t_ms = [e.t_ns / 1e6 for e in s.events()]
    assert [e.x for e in s.events()] == [1, 2, 3, 4]  # order kept
    assert t_ms[:2] == pytest.approx([0, 30], abs=0.01)
    assert t_ms[2] == pytest.approx(130, abs=0.01)  # continued by the record clock's 100 ms gap
    assert t_ms[3] - t_ms[2] == pytest.approx(30, abs=0.01)
    assert s.meta["import_counts"]["clock_wraps"] == 1
    t, n = repair_wraps(np.array([1.0, 2.0, 3.0]), np.zeros(3))
    assert n == 0 and list(t) == [1, 2, 3]


def test_balabit_malformed_rows_skipped_or_strict(tmp_path, capsys):
    rows = BAL_ROWS[:3] + ["0.1,abc,NoButton,Move,1,1", "0.1,0.2,Foo,Bar,1,1", "0.1,0.2,NoButton", ""] + BAL_ROWS[3:5]
    p = _balabit(tmp_path, rows)
    assert main(["import", "balabit", str(p), "--out", str(tmp_path / "o1"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (f"skipped 3 rows: wrong number of fields (1), unknown button/state (1), t does not parse (1); "
            f"first: {p}:5 client timestamp='abc'") in out.splitlines()
    assert main(["import", "balabit", str(p), "--out", str(tmp_path / "o2"), "--strict", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(f"{p}:5: client timestamp='abc': t does not parse")
    assert not list((tmp_path / "o2").iterdir())  # nothing written
    # rerunning into the same folder refuses, --overwrite replaces
    assert main(["import", "balabit", str(p), "--out", str(tmp_path / "o1"), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["import", "balabit", str(p), "--out", str(tmp_path / "o1"), "--overwrite", "--no-progress"]) == 0


def test_bad_files(tmp_path, capsys):
    g = tmp_path / "garbage.csv"
    g.write_bytes(b"\x00\xff\xfe garbage")
    for fmt in ("balabit", "keystrokes", "ilbot-csv"):
        assert main(["import", fmt, str(g), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(g) in err[0]
    w = tmp_path / "wrong.csv"
    w.write_text("a,b,c\n1,2,3\n")
    for fmt in ("balabit", "keystrokes", "ilbot-csv"):
        assert main(["import", fmt, str(w), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
        assert f"{w}:1: not a" in capsys.readouterr().err
    assert main(["import", "balabit", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "emptydir").mkdir()
    assert main(["import", "keystrokes", str(tmp_path / "emptydir"), "--out", str(tmp_path / "o")]) == 2
    assert "no input files" in capsys.readouterr().err



def test_a_data_folder_of_links_imports_like_a_copy(tmp_path, capsys):
    # user folders linked in from elsewhere (how a data set is often assembled) and a link back up
    # the tree: every session once, no loop
    src = _balabit(tmp_path, BAL_ROWS[:3], user="user12").parent
    _balabit(tmp_path, BAL_ROWS[:3], user="user12", name="session_2")
    other = _balabit(tmp_path / "elsewhere", BAL_ROWS[:3], user="user15").parent
    data = tmp_path / "data"
    data.mkdir()
    (data / "user12").symlink_to(src, target_is_directory=True)
    (data / "user15").symlink_to(other, target_is_directory=True)
    (data / "user15" / "loop").symlink_to(data, target_is_directory=True)
    (data / ".hidden_session").write_text(BAL_HEADER)
    assert main(["import", "balabit", str(data), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in (tmp_path / "out").glob("*.ilbot.sqlite"))
    assert names == ["balabit_user12_session_1.ilbot.sqlite", "balabit_user12_session_2.ilbot.sqlite",
                     "balabit_user15_session_1.ilbot.sqlite"]

KEYS_CSV = """user,session,keyname,timepress,timerelease
3,0,shift,1000,1200
3,0,h,1100,1180
3,0,weirdkey,1300,1350
3,0,dash,1400,1450
3,1,a,5,40
3,0,x,notanumber,5
3,0,z,2000,1990
4,0,space,0,100
3,0,b
"""


def test_keystrokes_sessions_unknown_keys_and_bad_rows(tmp_path, capsys):
    p = tmp_path / "keys.csv"
    p.write_text(KEYS_CSV)
    assert main(["import", "keystrokes", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "unknown keys (mapped to UNK): weirdkey 1" in out
    assert (f"skipped 3 rows: wrong number of fields (1), press t does not parse (1), release before press (1); "
            f"first: {p}:7 timepress='notanumber'") in out.splitlines()
    names = sorted(f.name for f in (tmp_path / "out").iterdir())
    assert names == ["keystrokes_user3_session0.ilbot.sqlite", "keystrokes_user3_session1.ilbot.sqlite",
                     "keystrokes_user4_session0.ilbot.sqlite"]
    s = open_session(tmp_path / "out" / names[0])
    ev = [(e.t_ns // 1_000_000, e.key_action, e.key_id) for e in s.events()]
    assert ev == [(0, 1, key_id("shift")), (100, 1, key_id("h")), (180, 2, key_id("h")), (200, 2, key_id("shift")),
                  (300, 1, 0), (350, 2, 0), (400, 1, key_id("minus")), (450, 2, key_id("minus"))]
    assert all(e.type == EventType.KEY for e in s.events())
    c = s.meta["import_counts"]
    assert c["unknown_keys"] == 1 and c["unknown_key_names"] == {"weirdkey": 1} and c["malformed_rows"] == 3
    assert s.meta["user"] == 3 and s.meta["key_hold_ms"]["n"] == 4
    assert main(["import", "keystrokes", str(p), "--out", str(tmp_path / "o2"), "--strict"]) == 2
    assert f"{p}:7: timepress='notanumber': press t does not parse" in capsys.readouterr().err


ILBOT_CSV = """timestamp,event_type,x_in_window,y_in_window,btn,key,scroll_dx,scroll_dy
1000,move,10,20,,,0,0
1010,click,11,21,left,,0,0
1005,move,12,22,,,0,0
1020,key_press,0,0,,a,0,0
1030,key_release,0,0,,Key.shift,0,0
1040,scroll,0,0,,,0,-1
1050,scroll,0,0,,,1,0
1060,key_press,0,0,,mystery,0,0
1070,teleport,1,1,,,0,0
1080,click,5,5,thumb,,0,0
oops,move,1,1,,,0,0
1090,move,1,1
1100,key_press,0,0,,,0,0
1110,move,-5,3,,,0,0
"""


def test_ilbot_csv(tmp_path, capsys):
    p = tmp_path / "actions_x.csv"
    p.write_text(ILBOT_CSV)
    assert main(["import", "ilbot-csv", str(p), "--out", str(tmp_path / "out"), "--hold-ms", "95",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"skipped 6 rows: " in out and f"; first: {p}:10 event_type='teleport'" in out
    assert "mystery 1" in out
    s = open_session(tmp_path / "out" / "ilbotcsv_actions_x.ilbot.sqlite")
    ev = [(e.t_ns // 1_000_000, e.type.name, e.x, e.y, e.button, e.key_action, e.key_id, e.scroll_y, e.hold_ms)
          for e in s.events()]
    assert ev == [(0, "MOVE", 10, 20, 0, 0, 0, 0, 0), (5, "MOVE", 12, 22, 0, 0, 0, 0, 0),
                  (10, "CLICK", 11, 21, 1, 0, 0, 0, 95), (20, "KEY", 11, 21, 0, 1, key_id("a"), 0, 0),
                  (30, "KEY", 11, 21, 0, 2, key_id("shift"), 0, 0), (40, "SCROLL", 11, 21, 0, 0, 0, 2, 0),
                  (60, "KEY", 11, 21, 0, 1, 0, 0, 0)]
    c = s.meta["import_counts"]
    assert c["horizontal_scroll_dropped"] == 1 and c["unknown_keys"] == 1 and c["malformed_rows"] == 6
    assert c["malformed_reasons"] == {"wrong number of fields": 1, "unknown event_type": 1, "t does not parse": 1,
                                      "x out of range": 1, "unknown button": 1, "key event without a key": 1}
    assert main(["import", "ilbot-csv", str(p), "--out", str(tmp_path / "o2"), "--strict"]) == 2
    assert f"{p}:10: event_type='teleport': unknown event_type" in capsys.readouterr().err
    opts = ImportOptions(overwrite=True)
    assert run_import("ilbot-csv", [tmp_path], tmp_path / "out", opts, progress=False)[0]["n_events"] == 7


def test_import_then_build_real_samples(tmp_path, shared_data):
    """One real Balabit session and the ilbot-csv samples: CLICK count = Pressed with a matching release."""
    f = sorted((shared_data / "balabit" / "training_files" / "user7").iterdir())[0]
    lines = f.read_text().splitlines()[1:]
    presses = matched = 0
    open_ = {}
    for line in lines:
        _, _, b, st, _, _ = line.split(",")
        if st == "Pressed" and b != "XButton":
            presses += 1
            open_[b] = True
        elif st == "Released" and open_.pop(b, False):
            matched += 1
    moves = sum(1 for line in lines if (",Move," in line or ",Drag," in line) and "65535" not in line)
    res = run_import("balabit", [f], tmp_path / "s", progress=False)
    assert res[0]["counts"]["events"]["CLICK"] == matched and res[0]["counts"]["events"]["MOVE"] == moves
    run_import("ilbot-csv", [shared_data / "osrs-ilbot-sample"], tmp_path / "s", progress=False)
    assert main(["build", str(tmp_path / "s"), "--out", str(tmp_path / "ds"), "--no-progress"]) == 0
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert stats["event_counts_raw"]["CLICK"] == matched + 8


def test_bench_import_on_small_data(tmp_path, capsys):
    for user in ("user7", "user12"):
        rows = [f"0.0,{i * 0.05:.3f},NoButton,Move,{i % 50},{i % 40}" for i in range(200)]
        rows += ["0.0,10.5,Left,Pressed,3,3", "0.0,10.6,Left,Released,3,3", "0.0,11.0,NoButton,Move,1,1"]
        _balabit(tmp_path, rows, user=user, name="session_9")
    assert main(["bench", "import", "--data", str(tmp_path / "in"), "--holdout", "7", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["sessions"] == 2 and res["events"] == 2 * 202 and res["clicks"] == 2
    assert res["windows"] > 0 and res["total_s"] >= res["import_s"] and res["gather_windows_per_s"] > 0
    assert main(["bench", "import", "--data", str(tmp_path / "nope")]) == 2
