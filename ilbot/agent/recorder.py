"""The recorder: a person's mouse and keyboard plus the game state, into one session store.

`Recorder(out_path, window, adapter=None, hotkeys=RecorderHotkeys())` — `start()`, then
`wait(duration)` (returns when the stop hotkey is pressed or the time is up), then `stop()`.

How it works (DESIGN §2, §4):
- pynput mouse and keyboard listeners (X RECORD) call back on their own threads. A callback only
  takes `time.monotonic_ns()` and puts a tuple on a queue: the listener thread is the critical
  path for timing, so everything else happens on the drain thread, which turns raw input into
  `Event`s and hands them to the store's `SessionWriter` (its own writer thread commits them).
- Positions are relative to the game window's client area (taken once at start). KEY and SCROLL
  events carry the last cursor position seen.
- A mouse press and its release become one CLICK at the press time with `hold_ms`; a release
  whose press was before the recording is ignored; a press never released is dropped at stop
  (counted `unreleased`). Hold-time stats (median, q10, q90, n) go into the meta at stop.
- SCROLL: the class comes from the vertical delta (+ up, − down); horizontal scrolls are not
  in the schema and are counted `hscroll`.
- Keys map through the fixed vocabulary (`ilbot.data.keys.pynput_key_name`, the mapping the
  kill switch and the live listener share); unknown keys are kept as UNK and counted. The
  recorder's own hotkeys (stop F10, pause F9 by default; they must differ) never reach the data.
- Game-state ticks: a thread polls the adapter every `poll_ms` and writes each fresh capture
  with `add_tick`, its time made relative to the session start (clamped at 0 for a state
  observed just before it). Tick numbers stay strictly increasing in the store: a game tick
  number that goes backwards (relog) continues from the last stored one.
- While paused, input and ticks are dropped (counted `paused_dropped`).
- Privacy by default: keys are kept only while the game window has the keyboard focus, clicks
  and scrolls only inside the game window while it has focus, pointer moves only inside it
  (`FocusTracker` answers for each event's time; an uncertain moment counts as not focused).
  A key release is kept when its press was; a click is decided at its press. Dropped input is
  counted `unfocused_dropped` / `outside_dropped`. `all_input=True` keeps everything on the
  display; `privacy_note` says which applies. The recorder's hotkeys work anywhere.
- Game-state ticks that are not storable (a tick outside [0, 2^62], raw JSON that is not
  UTF-8-encodable) are counted `bad_ticks`; an adapter that raises is counted `tick_errors`: the
  tick thread never dies on game data.
  The source's own counters (malformed documents by reason, failed reads) go into the meta at
  stop (`recorder.source_counters`), and `source_note()` says in one line what was skipped.
- A write that fails (disk full, an I/O error) stops the recording: `failure` holds one line
  ("recording stopped: disk full writing FILE; N events kept"), `wait()` returns "error" at
  once, and what was committed before stays in the store. No thread prints a traceback. With
  `overwrite` onto an existing store the recording goes to a file beside it, renamed onto it at a
  clean stop (`SessionWriter`); after a failure the previous store is unchanged and the line says
  where the N events are kept.
- Clean stop: wait for the input stream to go quiet (up to `settle_ms`), stop accepting, stop
  the listeners; pynput's `join()` can hang until one more X event arrives, so if a listener is
  still alive after a short join, nudge (move the pointer 1 px and back, tap shift): those
  events arrive after the recorder stopped accepting and are discarded.
"""

from __future__ import annotations

import errno
import os
import queue
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.keys import KEY_VOCAB_VERSION, UNK, key_id, key_name, pynput_key_name
from ..data.schema import TICK_MS, Button, Event, KeyAction, scroll_class, tick_ms_problem
from ..errors import ConfigError, DataError, UserError
from .capture.base import MAX_TICK
from .focus import FocusTracker
from .window import WindowGeometry, resolve_window

_STOP = ("stop",)


@dataclass(frozen=True)
class RecorderHotkeys:
    """The recorder's own keys (vocabulary names), left out of the data."""

    stop: str = "f10"
    pause: str = "f9"

    def __post_init__(self):
        for role in ("stop", "pause"):
            raw = getattr(self, role)
            name = key_name(raw)
            if name == "UNK":
                raise ConfigError(f"recorder {role} hotkey {raw!r} is not a key name (try f9, f10, pause, scroll_lock)")
            object.__setattr__(self, role, name)
        if self.stop == self.pause:
            raise ConfigError(f"recorder stop and pause hotkeys are both {self.stop!r}: pick two different keys")


def hold_stats(holds_ms) -> dict:
    """median, q10, q90 and n of click hold times (ms); empty dict without clicks."""
    h = np.asarray(holds_ms, np.float64)
    if h.size == 0:
        return {}
    q10, q50, q90 = np.quantile(h, [0.1, 0.5, 0.9])
    return {"median": round(float(q50), 3), "q10": round(float(q10), 3), "q90": round(float(q90), 3), "n": int(h.size)}


def _button(b) -> int:
    name = getattr(b, "name", str(b))
    return {"left": Button.LEFT, "right": Button.RIGHT, "middle": Button.MIDDLE}.get(name, 0)


def _write_failure(writer, err: BaseException) -> str:
    """The one line that says a recording stopped because its store could not be written."""
    cause = getattr(writer, "_error", None) or err  # the writer thread's own exception, if any
    text = f"{err} {cause}"
    full = (getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or getattr(cause, "errno", None) == errno.ENOSPC or "disk is full" in text or "No space left" in text)
    n = getattr(writer, "n_events", 0)
    path = getattr(writer, "path", "?")
    if full:
        return f"recording stopped: disk full writing {path}; {n} events kept"
    why = str(cause).splitlines()[0][:160] if str(cause) else type(cause).__name__
    return f"recording stopped: cannot write {path} ({why}); {n} events kept"


def _storable_tick(cap) -> bool:
    """Can this capture go into the store as it is? (its tick, time and raw JSON)"""
    tick = cap.tick
    if isinstance(tick, bool) or not isinstance(tick, (int, np.integer)) or not 0 <= int(tick) <= MAX_TICK:
        return False
    if not isinstance(cap.t_ns, (int, np.integer)) or not isinstance(cap.raw_json, str):
        return False
    try:
        cap.raw_json.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Recorder:
    def __init__(self, out_path, window: WindowGeometry | str | None, adapter=None,
                 hotkeys: RecorderHotkeys | None = None, *, spec=None, tick_ms: float | None = None,
                 poll_ms: float = 10.0, settle_ms: float = 100.0, overwrite: bool = False, notes: str = "",
                 all_input: bool = False, window_id: int | None = None):
        self.out_path = Path(out_path)
        self.window = resolve_window(window)
        self.all_input = bool(all_input)
        self.window_id = int(window_id or getattr(self.window, "window_id", 0) or 0)
        self.adapter = adapter
        self.hotkeys = hotkeys or RecorderHotkeys()
        self.tick_ms = float(tick_ms or getattr(adapter, "tick_ms", None) or TICK_MS)
        if tick_ms_problem(self.tick_ms):
            raise ConfigError(f"recorder tick_ms: {tick_ms_problem(self.tick_ms)}")
        self.poll_s = poll_ms / 1000.0
        self.settle_ns = int(settle_ms * 1e6)
        self.overwrite = overwrite
        self.notes = notes
        self.spec = spec if spec is not None else getattr(adapter, "spec", None)
        self.counters: dict[str, int] = {
            "received": 0, "CLICK": 0, "KEY": 0, "SCROLL": 0, "MOVE": 0, "ticks": 0, "hotkeys": 0,
            "paused_dropped": 0, "unreleased": 0, "orphan_releases": 0, "other_buttons": 0,
            "hscroll": 0, "unk_keys": 0, "unfocused_dropped": 0, "outside_dropped": 0, "bad_ticks": 0,
            "tick_errors": 0,
        }
        self.failure: str | None = None  # one line, once a write failed and the recording stopped
        self.focus: FocusTracker | None = None
        self.start_ns: int | None = None  # time.monotonic_ns() at the session start
        self.holds_ms: list[float] = []
        self.paused = False
        self.stop_requested = threading.Event()
        self._accepting = False
        self._last_input_ns = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = None
        self._threads: list[threading.Thread] = []
        self._listeners = []
        self._stopped = False

    @property
    def privacy_note(self) -> str:
        """What input this recorder keeps, in one line (the CLI prints it at the start)."""
        if self.all_input:
            return "recording all input on the display (--all-input), whichever window has focus"
        w = self.window
        name = repr(w.title) if w.title and not w.title.startswith("region ") else "the game window"
        return (f"recording input only while {name} ({w.width}x{w.height} at {w.x},{w.y}) has focus; "
                "--all-input records everything")

    # -- meta ---------------------------------------------------------------------------------
    def _spec_meta(self) -> tuple[str | None, str | None]:
        """(name, hash) of the feature spec: the adapter's, else `spec`, else the empty spec."""
        if self.spec is None and self.adapter is not None:
            return self.adapter.spec_name, self.adapter.spec_hash
        spec = self.spec
        if spec is None:
            from ..data.featurespec import load_spec

            spec = load_spec("empty")
        return getattr(spec, "name", None), getattr(spec, "hash", None)

    def _meta(self) -> dict:
        spec_name, spec_hash = self._spec_meta()
        return {
            "source": self.adapter.describe() if self.adapter is not None else "none",
            "window": self.window.as_dict(),
            "window_title": self.window.title,
            "tick_ms": self.tick_ms,
            "feature_spec": spec_name,
            "feature_spec_hash": spec_hash,
            "key_vocab_version": KEY_VOCAB_VERSION,
            "recorder": {"hotkeys": {"stop": self.hotkeys.stop, "pause": self.hotkeys.pause},
                         "all_input": self.all_input},
            "notes": self.notes,
        }

    # -- listener callbacks (listener threads: keep them tiny) -----------------------------------
    def _on_move(self, x, y, injected=False):
        t = time.monotonic_ns()
        if self._accepting:
            self._last_input_ns = t
            self._queue.put(("m", t, x, y))

    def _on_click(self, x, y, button, pressed, injected=False):
        t = time.monotonic_ns()
        if self._accepting:
            self._last_input_ns = t
            self._queue.put(("c", t, x, y, button, pressed))

    def _on_scroll(self, x, y, dx, dy, injected=False):
        t = time.monotonic_ns()
        if self._accepting:
            self._last_input_ns = t
            self._queue.put(("s", t, x, y, dx, dy))

    def _on_key(self, key, pressed: bool):
        t = time.monotonic_ns()
        if not self._accepting:
            return
        name = pynput_key_name(key)
        if name in (self.hotkeys.stop, self.hotkeys.pause):
            self._last_input_ns = t
            self.counters["hotkeys"] += 1
            if pressed and name == self.hotkeys.stop:
                self.stop_requested.set()
            elif pressed and name == self.hotkeys.pause:
                self.paused = not self.paused
            return
        self._last_input_ns = t
        self._queue.put(("k", t, name, pressed))

    # On X, pynput's keyboard Controller also hands each key it injects straight to listeners in
    # its own process (injected=True) besides sending it through XTest, which RECORD reports
    # (injected=False); keys it "types" with XSendEvent reach no listener at all. So on X an
    # injected=True callback is always an in-process echo: dropping it keeps one copy of the keys
    # an executor in this process performs (the sandbox demonstrator records that way).
    _DROP_ECHO = sys.platform.startswith("linux")

    def _on_press(self, key, injected=False):
        if not (injected and self._DROP_ECHO):
            self._on_key(key, True)

    def _on_release(self, key, injected=False):
        if not (injected and self._DROP_ECHO):
            self._on_key(key, False)

    # -- drain thread: raw input → events ------------------------------------------------------
    def _inside(self, sx, sy) -> bool:
        w = self.window
        return w.x <= sx < w.x + w.width and w.y <= sy < w.y + w.height

    def _focused(self, t_abs: int) -> bool:
        return self.all_input or self.focus.wait_focused(t_abs)

    def _fail(self, err: BaseException) -> None:
        """Stop recording after a write (DataError) or the drain failed: one line in `failure`,
        nothing more accepted."""
        if self.failure is None:
            if isinstance(err, DataError) or getattr(self._writer, "_error", None) is not None:
                self.failure = _write_failure(self._writer, err)
            else:
                why = str(err).splitlines()[0][:160] if str(err) else ""
                self.failure = (f"recording stopped: {type(err).__name__}: {why}; "
                                f"{getattr(self._writer, 'n_events', 0)} events kept")
        self._accepting = False
        self.stop_requested.set()

    def _check_writer(self) -> None:
        err = getattr(self._writer, "_error", None)
        if err is not None and self.failure is None:
            self._fail(err)

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if self.failure is not None:
                continue  # stopped: the rest is discarded
            try:
                self._handle(item)
            except Exception as e:  # noqa: BLE001 - a failed write (DataError) or anything else: stop, one line
                self._fail(e)
        c = self.counters
        c["unreleased"] += len(self._pending)
        if self._pending and self.failure is None:
            print(f"recorder: dropped {len(self._pending)} mouse press(es) never released", file=sys.stderr)

    def _handle(self, item) -> None:
        """One raw input tuple → at most one event in the store (the drain thread)."""
        w = self.window
        c = self.counters
        writer = self._writer
        pending = self._pending
        kind, t_abs = item[0], item[1]
        c["received"] += 1
        if self.paused:
            c["paused_dropped"] += 1
            return
        t = t_abs - self.start_ns
        if kind in ("m", "c", "s"):
            self._cursor = (item[2], item[3])
        cx, cy = self._cursor
        if kind == "m":
            if self.all_input or self._inside(cx, cy):
                writer.add_event(Event.make(t, cx - w.x, cy - w.y))
                c["MOVE"] += 1
            else:
                c["outside_dropped"] += 1
        elif kind == "c":
            b = _button(item[4])
            if not b:
                c["other_buttons"] += 1
            elif item[5]:
                if not (self.all_input or self._inside(cx, cy)):
                    c["outside_dropped"] += 1
                    self._dropped_buttons.add(b)
                elif not self._focused(t_abs):
                    c["unfocused_dropped"] += 1
                    self._dropped_buttons.add(b)
                else:
                    pending[b] = (t, cx - w.x, cy - w.y)
            elif b in pending:
                t0, x0, y0 = pending.pop(b)
                hold = (t - t0) / 1e6
                self.holds_ms.append(hold)
                writer.add_event(Event.make(t0, x0, y0, button=b, hold_ms=hold))
                c["CLICK"] += 1
            elif b in self._dropped_buttons:
                self._dropped_buttons.discard(b)  # the release of a press that was not kept
            else:
                c["orphan_releases"] += 1
        elif kind == "s":
            cls = scroll_class(item[5])
            if cls == 0:
                c["hscroll"] += 1
            elif not (self.all_input or self._inside(cx, cy)):
                c["outside_dropped"] += 1
            elif not self._focused(t_abs):
                c["unfocused_dropped"] += 1
            else:
                writer.add_event(Event.make(t, cx - w.x, cy - w.y, scroll_y=int(cls)))
                c["SCROLL"] += 1
        elif kind == "k":
            name, pressed = item[2], item[3]
            if pressed:
                keep = self._focused(t_abs)
                (self._keys_kept.add if keep else self._keys_kept.discard)(name)
            else:  # a release: kept with its press (or, pressed before the recording, while focused)
                keep = name in self._keys_kept or (name not in self._keys_seen and self._focused(t_abs))
                self._keys_kept.discard(name)
            self._keys_seen.add(name)
            if not keep:
                c["unfocused_dropped"] += 1
                return
            kid = key_id(name)
            if kid == UNK:
                c["unk_keys"] += 1
            action = KeyAction.PRESS if pressed else KeyAction.RELEASE
            writer.add_event(Event.make(t, cx - w.x, cy - w.y, key_action=int(action), key_id=kid))
            c["KEY"] += 1

    # -- tick thread ----------------------------------------------------------------------------
    def _poll_ticks(self) -> None:
        last_tick = None
        c = self.counters
        while self._accepting:
            try:
                cap = self.adapter.poll()
                if cap is not None:
                    if self.paused:
                        c["paused_dropped"] += 1
                    elif not _storable_tick(cap):
                        c["bad_ticks"] += 1
                    else:
                        tick = int(cap.tick)
                        tick = tick if last_tick is None or tick > last_tick else last_tick + 1
                        self._writer.add_tick(tick, max(0, int(cap.t_ns) - self.start_ns), cap.raw_json, cap.features)
                        last_tick = tick
                        c["ticks"] += 1
            except DataError as e:  # the store cannot be written: the recording stops
                self._fail(e)
                return
            except Exception as e:  # noqa: BLE001 - an adapter or its data failed: count it, keep ticking
                c["tick_errors"] += 1
                self.last_tick_error = f"{type(e).__name__}: {str(e)[:160]}"
            time.sleep(self.poll_s)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "Recorder":
        """Start listening and writing; UserError (one line) when it cannot: no display, no focus
        information, an output that cannot be created."""
        from ..data.store import SessionWriter

        try:
            from pynput import keyboard, mouse  # lazily: needs a display
        except ImportError as e:
            raise UserError(f"recording needs an X display (DISPLAY={os.environ.get('DISPLAY')!r}): "
                            f"{str(e).splitlines()[0]}") from None

        if not self.all_input:
            self.focus = FocusTracker(self.window, self.window_id).start()
        try:
            self._writer = SessionWriter(self.out_path, self._meta(), overwrite=self.overwrite)
        except (OSError, sqlite3.Error) as e:
            if self.focus is not None:
                self.focus.stop()
            raise UserError(f"cannot write the session store {self.out_path}: "
                            f"{getattr(e, 'strerror', None) or e}") from None
        except BaseException:
            if self.focus is not None:
                self.focus.stop()
            raise
        self._cursor = mouse.Controller().position
        self._pending: dict[int, tuple[int, float, float]] = {}  # button → (t_ns, x, y) of its kept press
        self._dropped_buttons: set[int] = set()  # buttons whose press was not kept
        self._keys_kept: set[str] = set()  # keys whose press was kept and not yet released
        self._keys_seen: set[str] = set()  # keys pressed or released during the recording
        self.last_tick_error: str | None = None
        self.start_ns = time.monotonic_ns()
        self._writer.set_meta("start_monotonic_ns", self.start_ns)
        self._accepting = True
        drain = threading.Thread(target=self._drain, name="recorder-drain", daemon=True)
        drain.start()
        self._threads = [drain]
        if self.adapter is not None:
            ticker = threading.Thread(target=self._poll_ticks, name="recorder-ticks", daemon=True)
            ticker.start()
            self._threads.append(ticker)
        self._listeners = [
            mouse.Listener(on_move=self._on_move, on_click=self._on_click, on_scroll=self._on_scroll),
            keyboard.Listener(on_press=self._on_press, on_release=self._on_release),
        ]
        live = [self._watch_enabled(lst) for lst in self._listeners]
        for lst in self._listeners:
            lst.daemon = True
            lst.start()
        for lst, enabled in zip(self._listeners, live):
            lst.wait()
            if enabled is None or not enabled.wait(2.0):  # pragma: no cover - not the X backend
                time.sleep(0.1)  # give it a moment
        return self

    @staticmethod
    def _watch_enabled(listener) -> threading.Event | None:
        """An Event set once the listener's X RECORD context is live.

        pynput's `wait()` returns just *before* its thread enables the RECORD context, so input
        right after `start()` could be missed. The server answers the enable request with a
        first reply (StartOfData) as soon as recording runs; pynput passes every reply to
        `listener._handler` (looked up when the context is enabled), so wrapping it tells us.
        Returns None on backends without that handler."""
        handler = getattr(listener, "_handler", None)
        if handler is None or not type(listener).__module__.endswith("_xorg"):
            return None  # pragma: no cover - other platforms
        enabled = threading.Event()

        def first_reply(reply, _handler=handler):
            enabled.set()
            return _handler(reply)

        listener._handler = first_reply
        return enabled

    def wait(self, duration: float | None = None, progress=None, every_s: float = 5.0) -> str:
        """Block until the stop hotkey ("hotkey"), `duration` seconds ("duration"), or a failed
        write ("error": `failure` says what). `progress(recorder)` is called every `every_s` s."""
        deadline = None if duration is None else time.monotonic() + duration
        next_report = time.monotonic() + every_s
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return "duration"
            step = 0.1 if left is None else min(0.1, left)
            if self.stop_requested.wait(step):
                return "error" if self.failure is not None else "hotkey"
            self._check_writer()
            if progress is not None and time.monotonic() >= next_report:
                next_report += every_s
                progress(self)

    def stop(self) -> dict:
        """Stop cleanly; returns the counters. Safe to call twice."""
        if self._stopped or self.start_ns is None:
            return self.counters
        self._stopped = True
        quiet_until = time.monotonic_ns() + 10 * self.settle_ns  # at most 10 x settle_ms
        while (self.failure is None and time.monotonic_ns() - max(self._last_input_ns, self.start_ns) < self.settle_ns
               and time.monotonic_ns() < quiet_until):
            time.sleep(self.settle_ns / 4e9)
        self._accepting = False
        for lst in self._listeners:
            lst.stop()
        deadline = time.monotonic() + 0.2
        for lst in self._listeners:
            lst.join(max(0.0, deadline - time.monotonic()))
        if any(lst.is_alive() for lst in self._listeners):
            self._nudge()
            for lst in self._listeners:
                lst.join(2.0)
        for t in self._threads[1:]:
            t.join()
        self._queue.put(_STOP)
        self._threads[0].join()
        if self.focus is not None:
            self.focus.stop()
        try:
            if self.failure is None:
                self._check_writer()
            if self.failure is None:
                self._writer.set_meta("hold_ms", hold_stats(self.holds_ms))
                self._writer.set_meta("recorder", {
                    "hotkeys": {"stop": self.hotkeys.stop, "pause": self.hotkeys.pause}, "all_input": self.all_input,
                    "counters": dict(self.counters),
                    **({"source_counters": dict(self.adapter.counters)} if self.adapter is not None else {}),
                    "duration_s": round((time.monotonic_ns() - self.start_ns) / 1e9, 3)})
            self._writer.close()
        except DataError as e:  # the last batch or the meta could not be written
            if self.failure is None:
                self._fail(e)
        kept = getattr(self._writer, "kept_path", None)
        if self.failure is not None and getattr(self._writer, "replacing", False) and kept != self._writer.path:
            self.failure += f" in {kept} (the previous {self._writer.path} is unchanged)"
        return self.counters

    def source_note(self) -> str | None:
        """One line on the game-state documents the source skipped (malformed, with their reasons;
        unreadable; not storable; an adapter error), or None when it skipped none."""
        c = dict(getattr(self.adapter, "counters", None) or {})
        reasons = {k.split(".", 1)[1]: v for k, v in c.items() if k.startswith("malformed.") and v}
        parts = []
        if c.get("malformed"):
            parts.append(f"{c['malformed']} malformed game-state document(s) skipped"
                         + (f" ({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))})" if reasons else ""))
        if c.get("errors"):
            parts.append(f"{c['errors']} failed read(s) of the source")
        if self.counters["bad_ticks"]:
            parts.append(f"{self.counters['bad_ticks']} tick(s) not storable")
        if self.counters["tick_errors"]:
            parts.append(f"{self.counters['tick_errors']} source error(s) ({self.last_tick_error})")
        if not parts:
            return None
        last = getattr(self.adapter, "last_malformed", None)
        return "game state: " + "; ".join(parts) + (f"; last: {last[:200]}" if last else "")

    @staticmethod
    def _nudge() -> None:
        """One harmless X event per device, to wake listener threads blocked in RECORD."""
        from pynput import keyboard, mouse

        m = mouse.Controller()
        x, y = m.position
        m.position = (x + 1, y)
        m.position = (x, y)
        k = keyboard.Controller()
        k.press(keyboard.Key.shift)
        k.release(keyboard.Key.shift)

    def __enter__(self) -> "Recorder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
