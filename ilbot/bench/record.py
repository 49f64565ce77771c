"""`ilbot bench record`: the recorder's sustained rate with zero loss, under a private Xvfb.

Three processes, so that no one starves another of the GIL: this one runs the `Recorder`
(pynput listeners), a target process shows a real PyQt6 window the input lands in, and an
injector process performs a seeded plan of moves, clicks (left/right, held a few ms), scroll
notches and letter key presses/releases with pynput at `--rate` X events per second for
`--seconds`, noting `time.monotonic_ns()` around each injection. Both clocks are the same
CLOCK_MONOTONIC of this machine, so after adding the recorder's session start to its `t_ns`
the per-event timing error is recorded time − injection time (the injection's midpoint).

Nothing lost means: the recorded MOVE positions, CLICKs (button, position), SCROLLs and KEYs
(action, key) equal the injected ones, in order. `lost` counts injected X events with no
recorded counterpart (a CLICK stands for its press and its release).

The benchmark never touches the user's display: it starts its own Xvfb (`-displayfd`), and
`run_trial` (shared with the tests) refuses a DISPLAY that is not marked as a test display.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .xserver import start_xvfb

TARGET_TITLE = "ilbot record target"
REGION = (100, 80, 640, 400)  # x, y, w, h of the target window on the test display
LETTERS = "abcdefghijklmnopqrstuvwxyz"
OWN_DISPLAY_ENV = "ILBOT_OWN_DISPLAY"  # set to the DISPLAY value a test/bench started itself


def add_arguments(p) -> None:
    p.add_argument("--rate", type=float, default=2000.0, help="injected X events per second (default 2000)")
    p.add_argument("--seconds", type=float, default=5.0, help="injection time in seconds (default 5)")
    p.add_argument("--seed", type=int, default=0)


# -- the plan ----------------------------------------------------------------------------------
def make_plan(rate: float, seconds: float, region=REGION, seed: int = 0) -> list[list]:
    """A seeded list of [due_s, kind, *args] X-level actions in screen pixels.

    kinds: move x y | press b | release b | scroll dy | kpress c | krelease c.
    Every move changes the position (X sends no motion for a move to where the pointer is);
    buttons are held 20-120 steps, keys 10-80; everything is released by the end."""
    rng = random.Random(seed)
    x0, y0, w, h = region
    x, y = x0 + w // 2, y0 + h // 2
    n = int(rate * seconds)
    plan: list[list] = [[0.0, "move", x, y]]
    held_button = None  # (button, release step)
    held_keys: dict[str, int] = {}
    for i in range(1, n):
        t = i / rate
        if held_button and held_button[1] <= i:
            plan.append([t, "release", held_button[0]])
            held_button = None
            continue
        due_key = next((k for k, s in held_keys.items() if s <= i), None)
        if due_key:
            plan.append([t, "krelease", due_key])
            del held_keys[due_key]
            continue
        r = rng.random()
        if r < 0.03 and held_button is None and i < n - 200:
            b = rng.choice(["left", "right"])
            plan.append([t, "press", b])
            held_button = (b, i + rng.randint(20, 120))
        elif r < 0.06 and len(held_keys) < 2 and i < n - 200:
            k = rng.choice([c for c in LETTERS if c not in held_keys])
            plan.append([t, "kpress", k])
            held_keys[k] = i + rng.randint(10, 80)
        elif r < 0.08 and held_button is None:
            plan.append([t, "scroll", rng.choice([1, -1])])
        else:
            while True:  # a random walk inside the window that always moves
                nx = min(max(x + rng.randint(-6, 6), x0 + 5), x0 + w - 6)
                ny = min(max(y + rng.randint(-6, 6), y0 + 5), y0 + h - 6)
                if (nx, ny) != (x, y):
                    break
            x, y = nx, ny
            plan.append([t, "move", x, y])
    t = n / rate
    if held_button:
        plan.append([t, "release", held_button[0]])
    for k in held_keys:
        plan.append([t, "krelease", k])
    return plan


# -- subprocesses --------------------------------------------------------------------------------
# The two subprocess entry points run in every trial (a failure fails the trial), but in child
# processes, which the test run's coverage does not follow.
def _inject_main(plan_path: str, out_path: str) -> None:  # pragma: no cover - runs in a subprocess
    """Injector process: wait for "go" on stdin, perform the plan on time, write timestamps."""
    from pynput import keyboard, mouse

    from Xlib import XK

    plan = json.loads(Path(plan_path).read_text())
    m, k = mouse.Controller(), keyboard.Controller()
    # pynput types characters with XSendEvent, which no input listener (X RECORD) sees and many
    # games ignore; a KeyCode made from a keysym goes through XTest like a real keyboard.
    keys = {c: keyboard.KeyCode.from_vk(XK.string_to_keysym(c)) for c in LETTERS}
    buttons = {"left": mouse.Button.left, "right": mouse.Button.right}
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic_ns()
    stamps = np.zeros((len(plan), 2), np.int64)  # [n, 2] monotonic ns before / after each injection
    for i, (due_s, kind, *args) in enumerate(plan):
        wait = start + int(due_s * 1e9) - time.monotonic_ns()
        if wait > 0:
            time.sleep(wait / 1e9)
        stamps[i, 0] = time.monotonic_ns()
        if kind == "move":
            m.position = (args[0], args[1])
        elif kind == "press":
            m.press(buttons[args[0]])
        elif kind == "release":
            m.release(buttons[args[0]])
        elif kind == "scroll":
            m.scroll(0, args[0])
        elif kind == "kpress":
            k.press(keys[args[0]])
        elif kind == "krelease":
            k.release(keys[args[0]])
        stamps[i, 1] = time.monotonic_ns()
    Path(out_path).write_text(json.dumps({"start_ns": start, "stamps": stamps.tolist()}))


def _target_main(x: int, y: int, w: int, h: int) -> None:  # pragma: no cover - runs in a subprocess
    """Target process: a real PyQt6 window counting the clicks, keys and wheel notches it gets;
    prints "ready X Y W H" once shown, and its counts as JSON when stdin says "quit"."""
    from PyQt6.QtCore import QSocketNotifier
    from PyQt6.QtWidgets import QApplication, QWidget

    class Target(QWidget):
        def __init__(self):
            super().__init__()
            self.counts = {"press": 0, "release": 0, "key_press": 0, "key_release": 0, "wheel": 0}

        def mousePressEvent(self, e):
            self.counts["press"] += 1

        def mouseReleaseEvent(self, e):
            self.counts["release"] += 1

        def keyPressEvent(self, e):
            if not e.isAutoRepeat():
                self.counts["key_press"] += 1

        def keyReleaseEvent(self, e):
            if not e.isAutoRepeat():
                self.counts["key_release"] += 1

        def wheelEvent(self, e):
            self.counts["wheel"] += 1

    app = QApplication([])
    win = Target()
    win.setWindowTitle(TARGET_TITLE)
    win.setGeometry(x, y, w, h)
    win.show()
    win.raise_()
    win.activateWindow()
    for _ in range(50):
        app.processEvents()
        time.sleep(0.01)
    g = win.geometry()
    print(f"ready {g.x()} {g.y()} {g.width()} {g.height()}", flush=True)

    def on_stdin():
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            print(json.dumps(win.counts), flush=True)
            app.quit()

    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(on_stdin)
    app.exec()


def _spawn(*args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # the target needs the X server, not offscreen
    return subprocess.Popen([sys.executable, "-m", "ilbot.bench.record", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)


def _expect(proc: subprocess.Popen, prefix: str, what: str) -> str:
    line = proc.stdout.readline()
    if not line.startswith(prefix):
        proc.kill()
        raise RuntimeError(f"{what} did not start (said {line!r})")
    return line


# -- the trial -------------------------------------------------------------------------------------
def _check_display() -> str:
    display = os.environ.get("DISPLAY", "")
    if not display or os.environ.get(OWN_DISPLAY_ENV) != display:
        raise RuntimeError(f"refusing to inject input into DISPLAY={display!r}: not a display this test/bench "
                           f"started (set {OWN_DISPLAY_ENV} to it only for a private Xvfb)")
    return display


def run_trial(rate: float, seconds: float, out_path, *, seed: int = 0, region=REGION) -> dict:
    """Record `seconds` of input injected at `rate` into a real window; compare and time it."""
    from ilbot.agent.recorder import Recorder
    from ilbot.agent.window import find_window
    from ilbot.data.keys import key_id
    from ilbot.data.schema import EventType
    from ilbot.data.store import open_session

    _check_display()
    plan = make_plan(rate, seconds, region, seed)
    tmp = Path(tempfile.mkdtemp(prefix="ilbot-bench-record-"))
    (tmp / "plan.json").write_text(json.dumps(plan))
    target = _spawn("target", *(str(v) for v in region))
    injector = None
    try:
        _expect(target, "ready", "the target window")
        window = find_window(TARGET_TITLE)
        injector = _spawn("inject", str(tmp / "plan.json"), str(tmp / "stamps.json"))
        _expect(injector, "ready", "the injector")
        rec = Recorder(out_path, window, overwrite=True)
        rec.start()
        injector.stdin.write("go\n")
        injector.stdin.flush()
        if injector.wait(timeout=seconds * 5 + 30) != 0:
            raise RuntimeError("the injector failed")
        # the listener may run behind on a loaded machine: give it time to catch up (this
        # waits, it does not excuse: anything still missing afterwards counts as lost)
        deadline = time.monotonic() + 10.0
        while rec.counters["received"] < len(plan) and time.monotonic() < deadline:
            time.sleep(0.02)
        counters = rec.stop()  # waits for the input stream to go quiet first
        target.stdin.write("quit\n")
        target.stdin.flush()
        window_counts = json.loads(target.stdout.readline() or "{}")
        target.wait(timeout=10)
    finally:
        for p in (target, injector):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    stamps = json.loads((tmp / "stamps.json").read_text())
    shutil.rmtree(tmp, ignore_errors=True)
    inj = np.asarray(stamps["stamps"], np.int64)  # [n, 2]
    inj_mid = (inj[:, 0] + inj[:, 1]) // 2  # [n] injection time, monotonic ns

    # what was injected, in the recorder's terms (window-relative)
    wx, wy = window.x, window.y
    exp = {"MOVE": [], "CLICK": [], "SCROLL": [], "KEY": []}  # kind → [(t_ns, fields)]
    bnum = {"left": 1, "right": 2}
    cx, cy = plan[0][2], plan[0][3]
    for (due, kind, *args), t in zip(plan, inj_mid):
        if kind == "move":
            cx, cy = args
            exp["MOVE"].append((t, (cx - wx, cy - wy)))
        elif kind == "press":
            exp["CLICK"].append((t, (bnum[args[0]], cx - wx, cy - wy)))
        elif kind == "scroll":
            exp["SCROLL"].append((t, (1 if args[0] > 0 else 2, cx - wx, cy - wy)))
        elif kind in ("kpress", "krelease"):
            exp["KEY"].append((t, (1 if kind == "kpress" else 2, key_id(args[0]))))
    with open_session(out_path) as s:
        events = list(s.events())
    got = {"MOVE": [], "CLICK": [], "SCROLL": [], "KEY": []}
    for e in events:
        t = rec.start_ns + e.t_ns
        if e.type == EventType.MOVE:
            got["MOVE"].append((t, (int(e.x), int(e.y))))
        elif e.type == EventType.CLICK:
            got["CLICK"].append((t, (e.button, int(e.x), int(e.y))))
        elif e.type == EventType.SCROLL:
            got["SCROLL"].append((t, (e.scroll_y, int(e.x), int(e.y))))
        else:
            got["KEY"].append((t, (e.key_action, e.key_id)))

    exact, lost, errors_ns, lost_by_kind = {}, 0, [], {}
    for kind in exp:
        a, b = [f for _, f in exp[kind]], [f for _, f in got[kind]]
        exact[kind] = a == b
        weight = 2 if kind == "CLICK" else 1  # a CLICK is a press and a release
        lost_by_kind[kind] = max(0, len(a) - len(b))
        lost += weight * lost_by_kind[kind]
        if exact[kind]:
            errors_ns += [tg - te for (te, _), (tg, _) in zip(exp[kind], got[kind])]
    err_ms = np.asarray(errors_ns, np.float64) / 1e6
    span_s = (inj[-1, 1] - inj[0, 0]) / 1e9
    n_injected = len(plan)
    return {
        "events_per_s": round(float(n_injected / span_s), 1),
        "lost": int(lost),
        "lost_by_kind": lost_by_kind,
        "injected": n_injected,
        "recorded": sum(len(v) * (2 if k == "CLICK" else 1) for k, v in got.items()),
        "seconds": round(float(span_s), 3),
        "moves_exact": exact["MOVE"], "clicks_exact": exact["CLICK"], "keys_exact": exact["KEY"],
        "scrolls_exact": exact["SCROLL"],
        "clicks": len(got["CLICK"]), "keys": len(got["KEY"]), "scrolls": len(got["SCROLL"]),
        "median_timing_error_ms": round(float(np.median(err_ms)), 3) if err_ms.size else None,
        "p90_timing_error_ms": round(float(np.quantile(err_ms, 0.9)), 3) if err_ms.size else None,
        "max_timing_error_ms": round(float(err_ms.max()), 3) if err_ms.size else None,
        "window_received": window_counts,
        "recorder_counters": counters,
    }


def run(args) -> dict:
    xvfb, display = start_xvfb(who="bench record")
    old = {k: os.environ.get(k) for k in ("DISPLAY", OWN_DISPLAY_ENV)}
    os.environ["DISPLAY"] = os.environ[OWN_DISPLAY_ENV] = display
    try:
        with tempfile.TemporaryDirectory() as d:
            result = run_trial(args.rate, args.seconds, Path(d) / "bench.ilbot.sqlite", seed=args.seed)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        xvfb.terminate()
        xvfb.wait()
    return result


if __name__ == "__main__":  # pragma: no cover - the subprocesses' entry
    if sys.argv[1] == "inject":
        _inject_main(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "target":
        _target_main(*(int(v) for v in sys.argv[2:6]))
