"""Damaged session stores: ~50 kinds of damage (truncation, flipped bytes, dropped or extra tables
and columns, a wrong type in every column, bad meta) each either open and read fine or give one
one-line DataError naming the file, never a traceback of another type (real SQLite, real files)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct

import numpy as np
import pytest

from ilbot.cli import main
from ilbot.data import Event, SessionWriter, open_session
from ilbot.data.schema import F
from ilbot.errors import DataError

N_EVENTS, N_TICKS = 5000, 60


@pytest.fixture(scope="module")
def good_store(tmp_path_factory):
    p = tmp_path_factory.mktemp("good") / "good.ilbot.sqlite"
    with SessionWriter(p, {"source": "test", "user": 3, "window": {"x": 0, "y": 0, "width": 800, "height": 600}}) as w:
        w.add_events([Event.make(i * 1_000_000, i % 800, i % 600, button=int(i % 9 == 0), key_action=int(i % 9 == 1),
                                 key_id=5 * int(i % 9 == 1), scroll_y=int(i % 9 == 2), hold_ms=90.0 * (i % 9 == 0))
                      for i in range(N_EVENTS)])
        for k in range(N_TICKS):
            w.add_tick(k, k * 600_000_000, {"tick": k}, np.full(F, k, np.float32))
    return p


def _read_all(p):
    with open_session(p) as s:
        assert isinstance(s.meta, dict)
        n, nt = s.n_events, s.n_ticks
        assert len(list(s.events())) == n
        assert s.event_array().shape == (n, 9)
        assert len(list(s.ticks())) == nt
        assert s.tick_arrays()[2].shape == (nt, F)


def _outcome(p) -> str:
    """"ok", or the DataError's message (checked: one line naming the file)."""
    try:
        _read_all(p)
    except DataError as e:
        msg = str(e)
        assert "\n" not in msg and "\r" not in msg, msg
        assert msg.startswith(str(p)), msg
        assert len(msg) < 500, msg
        return msg
    return "ok"


def _sql(*statements):
    def damage(p):
        c = sqlite3.connect(p)
        for st in statements:
            c.execute(st)
        c.commit()
        c.close()
    return damage


def _recreate(table, columns, fill):
    """Replace `table` by one without constraints (`columns`), filled by `fill` (SQL)."""
    return _sql(f"CREATE TABLE tmp_{table} AS SELECT * FROM {table}", f"DROP TABLE {table}",
                f"CREATE TABLE {table} ({columns})", f"INSERT INTO {table} SELECT * FROM tmp_{table}",
                f"DROP TABLE tmp_{table}", fill)


def _bytes(fn):
    def damage(p):
        data = bytearray(p.read_bytes())
        p.write_bytes(bytes(fn(data)))
    return damage


def _flip(seed, n, start=100):
    def fn(d):
        rng = np.random.default_rng(seed)
        for i in rng.integers(start, len(d), n):
            d[i] ^= int(rng.integers(1, 256))
        return d
    return _bytes(fn)


def _root_page_type(table, value):
    def damage(p):
        c = sqlite3.connect(p)
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
        page = c.execute("PRAGMA page_size").fetchone()[0]
        c.close()
        d = bytearray(p.read_bytes())
        d[(root - 1) * page] = value
        p.write_bytes(bytes(d))
    return damage


def _leaf_page(table, offset, value):
    """Overwrite bytes at `offset` of the first leaf page of `table`'s b-tree (found through dbstat)."""
    def damage(p):
        c = sqlite3.connect(p)
        try:
            pageno = c.execute("SELECT pageno FROM dbstat WHERE name=? AND pagetype='leaf' ORDER BY pageno LIMIT 1",
                               (table,)).fetchone()[0]
        except sqlite3.OperationalError:
            pytest.skip("this SQLite has no dbstat table")
        page = c.execute("PRAGMA page_size").fetchone()[0]
        c.close()
        d = bytearray(p.read_bytes())
        d[(pageno - 1) * page + offset:(pageno - 1) * page + offset + len(value)] = value
        p.write_bytes(bytes(d))
    return damage


def _meta(key, raw_json):
    return _sql(f"INSERT OR REPLACE INTO meta (key, value) VALUES ('{key}', '{raw_json}')")


# damage name → (damage, expected: "ok" or a substring of the DataError message)
DAMAGE = {
    "empty file": (_bytes(lambda d: b""), "not an SQLite file"),
    "header only": (_bytes(lambda d: d[:16]), ""),
    "truncated to 100 bytes": (_bytes(lambda d: d[:100]), ""),
    "truncated to half": (_bytes(lambda d: d[: len(d) // 2]), ""),
    "last page cut": (_bytes(lambda d: d[:-4096]), ""),
    "one byte cut": (_bytes(lambda d: d[:-1]), ""),
    "garbage appended": (_bytes(lambda d: d + os.urandom(5000)), ""),
    "magic flipped": (_bytes(lambda d: b"SQLite format 4\x00" + d[16:]), "not an SQLite file"),
    "page size byte flipped": (_bytes(lambda d: d[:16] + b"\x00\x03" + d[18:]), ""),
    "page of zeros": (_bytes(lambda d: d[:8192] + b"\x00" * 4096 + d[12288:]), ""),
    "page of 0xff": (_bytes(lambda d: d[:20480] + b"\xff" * 4096 + d[24576:]), ""),
    "events root page made a leaf": (_root_page_type("events", 0x0D), ""),
    "events leaf page made interior": (_leaf_page("events", 0, b"\x05"), "more problem(s)"),
    "events leaf cell pointers broken": (_leaf_page("events", 8, b"\x00\x00\x00\x03"), "more problem(s)"),
    "events leaf free space broken": (_leaf_page("events", 5, b"\x00\x00"), "integrity check"),
    "events root page type garbage": (_root_page_type("events", 0x42), ""),
    **{f"random flips seed {s}": (_flip(s, 24), "") for s in range(8)},
    "single flip in the schema page": (_flip(99, 1, start=100), ""),
    "drop events": (_sql("DROP TABLE events"), "missing table(s) events"),
    "drop ticks": (_sql("DROP TABLE ticks"), "missing table(s) ticks"),
    "drop meta": (_sql("DROP TABLE meta"), "missing table(s) meta"),
    "extra table": (_sql("CREATE TABLE notes (a)"), "unexpected table(s) 'notes'"),
    "extra index (fine)": (_sql("CREATE INDEX ev_t ON events (t_ns)"), "ok"),
    "segments table (fine)": (_sql("CREATE TABLE segments (kind TEXT, t_start_ns INTEGER, t_end_ns INTEGER, "
                                   "meta TEXT)"), "ok"),
    "segments table lacking columns": (_sql("CREATE TABLE segments (kind TEXT)"), "segments lacks column(s)"),
    "column renamed": (_sql("ALTER TABLE events RENAME COLUMN x TO xx"), "table events has columns"),
    "column dropped": (_sql("ALTER TABLE events DROP COLUMN hold_ms"), "table events has columns"),
    "column added": (_sql("ALTER TABLE ticks ADD COLUMN extra"), "table ticks has columns"),
    "t_ns text": (_sql("UPDATE events SET t_ns='abc' WHERE seq=7"), "events row seq=7: t_ns='abc' is not an integer"),
    "t_ns real": (_sql("UPDATE events SET t_ns=1.5 WHERE seq=8"), "seq=8: t_ns=1.5 is not an integer"),
    "t_ns blob": (_sql("UPDATE events SET t_ns=X'0001' WHERE seq=9"), "seq=9: t_ns=b'\\x00\\x01'"),
    "t_ns huge": (_sql("UPDATE events SET t_ns=9000000000000000000 WHERE seq=10"),
                  "seq=10: t_ns=9000000000000000000 is out of range"),
    "t_ns null": (_recreate("events", "seq INTEGER PRIMARY KEY, t_ns, type, x, y, button, key_action, key_id, "
                            "scroll_y, hold_ms", "UPDATE events SET t_ns=NULL WHERE seq=11"), "seq=11: t_ns=None"),
    "type 99": (_sql("UPDATE events SET type=99 WHERE seq=12"), "seq=12: type=99 is not an event type (0..3)"),
    "type -1": (_sql("UPDATE events SET type=-1 WHERE seq=13"), "seq=13: type=-1"),
    "type text": (_sql("UPDATE events SET type='MOVE' WHERE seq=14"), "seq=14: type='MOVE'"),
    "x infinite": (_sql("UPDATE events SET x=9e999 WHERE seq=15"), "seq=15: x=inf is not a finite number"),
    "x 1e300": (_sql("UPDATE events SET x=1e300 WHERE seq=16"), "seq=16: x=1e+300 is out of range"),
    "y text": (_sql("UPDATE events SET y='abc' WHERE seq=17"), "seq=17: y='abc'"),
    "button 7": (_sql("UPDATE events SET button=7 WHERE seq=18"), "seq=18: button=7 is not a button (0..3)"),
    "key_action 5": (_sql("UPDATE events SET key_action=5 WHERE seq=19"), "seq=19: key_action=5"),
    "key_id beyond vocabulary": (_sql("UPDATE events SET key_id=100000 WHERE seq=20"), "seq=20: key_id=100000"),
    "scroll_y 3": (_sql("UPDATE events SET scroll_y=3 WHERE seq=21"), "seq=21: scroll_y=3"),
    "hold_ms negative": (_sql("UPDATE events SET hold_ms=-5 WHERE seq=22"), "seq=22: hold_ms=-5"),
    "hold_ms text": (_sql("UPDATE events SET hold_ms='abc' WHERE seq=23"), "seq=23: hold_ms='abc'"),
    "features 7 bytes": (_sql("UPDATE ticks SET features=X'00010203040506' WHERE tick=5"),
                         "ticks row tick=5: features blob of 7 bytes (expected 512"),
    "features text": (_sql("UPDATE ticks SET features='abc' WHERE tick=6"), "tick=6: features blob of 3 bytes"),
    "features NaN": (_sql(f"UPDATE ticks SET features=X'{(struct.pack('<f', float('nan')) * F).hex()}' WHERE tick=7"),
                     "tick=7: features hold a non-finite value"),
    "tick text": (_recreate("ticks", "tick, t_ns, raw_json, features", "UPDATE ticks SET tick='abc' WHERE tick=8"),
                  "tick='abc' is not an integer"),
    "tick t_ns text": (_sql("UPDATE ticks SET t_ns='soon' WHERE tick=9"), "tick=9: t_ns='soon' is not a time"),
    "raw_json blob": (_sql("UPDATE ticks SET raw_json=X'FF' WHERE tick=10"), "tick=10: raw_json is a bytes"),
    "raw_json bad UTF-8": (_sql("UPDATE ticks SET raw_json=CAST(X'FFFE41' AS TEXT) WHERE tick=11"), ""),
    "meta bad JSON": (_meta("source", "{oops"), "damaged meta value for key 'source' (not JSON)"),
    "meta deep JSON": (_meta("notes", "[" * 100_000 + "]" * 100_000), "damaged meta value for key 'notes'"),
    "meta value null": (_recreate("meta", "key TEXT PRIMARY KEY, value",
                                  "UPDATE meta SET value=NULL WHERE key='source'"),
                        "damaged meta value for key 'source' (a NoneType"),
    "meta key blob": (_sql("INSERT INTO meta VALUES (X'00', '1')"), "damaged meta: key b'\\x00' is not text"),
    "schema_version true": (_meta("schema_version", "true"), "schema_version=True (expected a positive integer)"),
    "schema_version text": (_meta("schema_version", '"1"'), "schema_version='1'"),
    "schema_version 0": (_meta("schema_version", "0"), "schema_version=0"),
    "schema_version 1.0": (_meta("schema_version", "1.0"), "schema_version=1.0"),
    "schema_version newer": (_meta("schema_version", "99"), "schema version 99 is newer"),
    "schema_version missing": (_sql("DELETE FROM meta WHERE key='schema_version'"), "no schema_version"),
    "tick_ms text": (_meta("tick_ms", '"abc"'), "tick_ms='abc' (expected milliseconds in 1..3.6e+06)"),
    "tick_ms 1e-300": (_meta("tick_ms", "1e-300"), "tick_ms=1e-300 (expected milliseconds in 1..3.6e+06)"),
    "tick_ms 1e300": (_meta("tick_ms", "1e300"), "tick_ms=1e+300"),
    "tick_ms NaN": (_meta("tick_ms", "NaN"), "tick_ms=nan"),
    "tick_ms negative": (_meta("tick_ms", "-600"), "tick_ms=-600"),
    "window text": (_meta("window", '"big"'), "window='big'"),
    "window zero width": (_meta("window", '{"x": 0, "y": 0, "width": 0, "height": 5}'), "width is wrong"),
    "window width text": (_meta("window", '{"x": 0, "y": 0, "width": "w", "height": 5}'), "width is wrong"),
    "user huge": (_meta("user", str(2**40)), "user=1099511627776"),
    "user list": (_meta("user", "[1]"), "user=[1]"),
    "feature_spec_hash number": (_meta("feature_spec_hash", "5"), "feature_spec_hash=5 (expected text)"),
}


def test_there_are_many_kinds_of_damage():
    assert len(DAMAGE) >= 40


def test_good_store_reads(good_store):
    assert _outcome(good_store) == "ok"


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damage_is_one_line_data_error_or_fine(name, good_store, tmp_path):
    damage, expected = DAMAGE[name]
    p = tmp_path / "damaged.ilbot.sqlite"
    shutil.copyfile(good_store, p)
    damage(p)
    got = _outcome(p)
    if expected == "ok":
        assert got == "ok"
    elif expected:
        assert expected in got, got
    # "" : either outcome, as long as it is one of the two (checked by _outcome)


def test_integrity_message_is_one_line_with_a_count(good_store, tmp_path):
    p = tmp_path / "damaged.ilbot.sqlite"
    shutil.copyfile(good_store, p)
    _leaf_page("events", 0, b"\x05")(p)
    with pytest.raises(DataError, match=r"integrity check: .* and \d+\+? more problem\(s\)\)$") as e:
        open_session(p)
    assert "\n" not in str(e.value)


def test_not_a_regular_file(tmp_path):
    d = tmp_path / "dir.ilbot.sqlite"
    d.mkdir()
    with pytest.raises(DataError, match="a folder"):
        open_session(d)
    fifo = tmp_path / "fifo.ilbot.sqlite"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):  # refused without opening (no hang)
        open_session(fifo)


@pytest.mark.parametrize("name", ["features 7 bytes", "type 99", "t_ns text", "schema_version true", "tick_ms text",
                                  "window zero width"])
def test_build_refuses_damaged_stores_in_one_line(name, good_store, tmp_path, capsys):
    p = tmp_path / "damaged.ilbot.sqlite"
    shutil.copyfile(good_store, p)
    DAMAGE[name][0](p)
    assert main(["build", str(p), "--out", str(tmp_path / "ds"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(p) in err[0], err
    assert not (tmp_path / "ds").exists()
