"""The live agent under faults, under the test's own Xvfb, held keys and buttons read from the X
server itself: a source that drips bytes, a source that stops, a planner that sends nothing, and
a person who takes over and hands back. Safety acts on its own clock (`ilbot.safety.clock`, run by
`ilbot.agent.supervision`), never waiting for a plan or a capture."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ilbot.data.action import PlannedAction
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.model import load_checkpoint

from test_runtime_live import x_held
from test_runtime_support import ListAdapter, features, tiny_checkpoint

pytestmark = pytest.mark.xvfb


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return load_checkpoint(tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny"))


class Silent:
    """A planner that never plans anything (a stalled model, as far as safety can tell)."""

    def plan(self, ctx, **kw):
        return []


def _press(key: str) -> PlannedAction:
    return PlannedAction(EventType.KEY, 0.0, 10, 10, key_action=KeyAction.PRESS, key_id=key_id(key))


def _live(ckpt, adapter, safety=None, **kw):
    """A live run; without `safety`, one that pauses for stale state only after 30 ticks (3 s at
    100 ms), not the default 4: a loaded machine can stall the run's loop for 0.4 s, and the tests
    that give no safety config test something else."""
    from ilbot.agent.executors.pynput_exec import PynputExecutor
    from ilbot.agent.runtime import AgentRuntime
    from ilbot.safety import SafetyConfig

    safety = safety or SafetyConfig(tick_ms=kw.get("tick_ms", 600.0), stale_ticks=30)
    return AgentRuntime(ckpt, adapter, PynputExecutor(), safety, live=True, window=(100, 100, 640, 480), **kw)


def _wait(pred, timeout_s: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


class DripServer:
    """A loopback game-state server: answers at once while `good`, then drips one byte every 0.2 s."""

    def __init__(self):
        self.good = True
        self.tick = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802
                if outer.good:
                    outer.tick += 1
                    body = json.dumps({"game tick": outer.tick} if self.path.startswith("/events") else []).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                try:
                    self.wfile.write(b"H")  # the status line, one byte at a time, for ever
                    for _ in range(100):
                        time.sleep(0.2)
                        self.wfile.write(b"T")
                        self.wfile.flush()
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_dripping_http_source_pauses_stale_and_releases_everything(own_display, ckpt):
    from ilbot.agent.capture.registry import make_adapter

    srv = DripServer()
    from ilbot.safety import SafetyConfig

    # the default staleness (4 ticks of 600 ms) is what this tests
    rt = _live(ckpt, make_adapter(f"http:127.0.0.1:{srv.port}"), SafetyConfig(), planner=Silent())
    try:
        rt.start()
        assert _wait(lambda: rt.running, 5.0) is not None, rt.counters
        rt.executor.perform(_press("a"), rt.origin)
        assert x_held()[0], "the key is down on the X server"
        srv.good = False  # from now on every request drips
        t0 = time.monotonic()
        t_free = _wait(lambda: x_held() == ([], []), 6.0)
        _wait(lambda: rt.paused, 6.0)
        t_stale = time.monotonic() - t0
        print(f"dripping source: paused after {t_stale} s, all released after {t_free} s")
        assert rt.pause_reason == "stale_state" and t_stale is not None and t_stale <= 3.0
        assert t_free is not None and t_free <= 3.0
    finally:
        rt.stop()
        srv.close()


def test_a_held_key_is_released_at_max_hold_when_no_plan_comes(own_display, ckpt):
    from ilbot.safety import SafetyConfig

    # stale_ticks 30 (3 s): the state never stops here, but a loaded machine can stall the run's loop
    # longer than the default 4 ticks (0.4 s), and a pause for stale state is not what this tests
    rt = _live(ckpt, ListAdapter(features(100000), tick_ms=100),
               SafetyConfig(max_hold_ms=500.0, tick_ms=100.0, stale_ticks=30), planner=Silent(), tick_ms=100)
    try:
        rt.start()
        assert _wait(lambda: rt.running, 5.0) is not None
        rt.executor.perform(_press("b"), rt.origin)
        t = _wait(lambda: x_held()[0] == [], 5.0)
        # released by the max-hold rule: not before the 0.5 s hold, and long before the wait ends (without
        # the rule the key stays down until stop); the slack is for the clock's period and X round trips
        # on a loaded machine (a CI run saw 0.91 s)
        assert t is not None and 0.45 <= t <= 0.5 + 1.5, t
        assert rt.running, rt.pause_reason  # nothing else happened: the run goes on
    finally:
        rt.stop()


def test_a_source_that_stops_pauses_and_releases(own_display, ckpt):
    from ilbot.safety import SafetyConfig

    rt = _live(ckpt, ListAdapter(features(8) + [None] * 100000, tick_ms=100),
               SafetyConfig(stale_ticks=3, tick_ms=100.0), planner=Silent(), tick_ms=100)
    try:
        rt.start()
        assert _wait(lambda: rt.running, 5.0) is not None
        rt.executor.perform(_press("c"), rt.origin)
        assert _wait(lambda: rt.paused, 3.0) is not None and rt.pause_reason == "stale_state"
        assert _wait(lambda: x_held() == ([], []), 1.0) is not None
    finally:
        rt.stop()


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool (the 'human' in another process) is absent")
def test_resume_after_a_human_override_resumes(own_display, ckpt):
    rt = _live(ckpt, ListAdapter(features(100000), tick_ms=100), tick_ms=100)
    states = []
    rt.on_state.append(lambda s, r: states.append((s, r)))
    try:
        rt.start()
        assert _wait(lambda: rt.running and rt.executor.pointer is not None, 5.0) is not None, rt.counters
        subprocess.run(["xdotool", "mousemove", "1000", "750"], check=True)  # the person takes over
        assert _wait(lambda: rt.paused, 2.0) is not None and rt.pause_reason == "human_override"
        time.sleep(0.4)  # and leaves the mouse alone
        rt.resume()
        assert _wait(lambda: rt.running, 2.0) is not None
        time.sleep(1.5)  # the agent moves the pointer again: its own motion never counts as the person's
        assert rt.running, states
        assert states.count(("paused", "human_override")) == 1
    finally:
        rt.stop()


CHILD = r'''
import sys, time
sys.path.insert(0, sys.argv[1])
from test_runtime_support import ListAdapter, features, tiny_checkpoint
from test_live_faults import Silent, _press
from ilbot.model import load_checkpoint
from ilbot.agent.executors.pynput_exec import PynputExecutor
from ilbot.agent.runtime import AgentRuntime
from ilbot.data.action import PlannedAction
from ilbot.data.schema import Button, EventType
if len(sys.argv) > 3:  # the guardian's timeout (ms), so a test can tell who let go
    import ilbot.agent.supervision
    ilbot.agent.supervision.GUARDIAN_TIMEOUT_MS = float(sys.argv[3])
ckpt = load_checkpoint(tiny_checkpoint(sys.argv[2]))
rt = AgentRuntime(ckpt, ListAdapter(features(100000), tick_ms=100), PynputExecutor(), live=True,
                  window=(100, 100, 640, 480), planner=Silent(), tick_ms=100)
rt.on_state.append(lambda s, r: print("state", s, r, flush=True))
rt.start()
while not rt.running:
    time.sleep(0.01)
rt.executor.perform(_press("d"), rt.origin)
rt.executor.perform(PlannedAction(EventType.CLICK, 0.0, 50, 50, button=Button.LEFT, hold_ms=400), rt.origin)
print("held", flush=True)
time.sleep(30)
'''


def test_guardian_releases_a_stopped_live_agent(own_display, tmp_path):
    """SIGSTOP on a live agent holding a key and a button: its guardian (started with every live
    run) lets go of both within 1 s; after SIGCONT the run is paused ('suspended')."""
    import os
    import signal
    import sys
    from pathlib import Path

    tests = str(Path(__file__).resolve().parent)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, tests, str(tmp_path / "ck")], stdout=subprocess.PIPE,
                            text=True, cwd=str(Path(tests).parent))
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("held"):
                break
        keys, buttons = x_held()
        assert keys and buttons == [1], lines
        os.kill(proc.pid, signal.SIGSTOP)
        t = _wait(lambda: x_held() == ([], []), 3.0)
        print(f"guardian: everything released {t:.2f} s after SIGSTOP")
        assert t is not None and t <= 1.0
        time.sleep(0.5)  # still stopped: nothing is pressed again
        assert x_held() == ([], [])
        os.kill(proc.pid, signal.SIGCONT)
        for line in proc.stdout:
            if line.startswith("state paused"):
                assert "suspended" in line
                break
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_z_releases_before_the_agent_stops(own_display, tmp_path):
    """SIGTSTP (Ctrl+Z): the agent's own handler lets go of everything before the process stops.
    The guardian waits 10 s here, so a release within 3 s is the handler's."""
    import os
    import signal
    import sys
    from pathlib import Path

    tests = str(Path(__file__).resolve().parent)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, tests, str(tmp_path / "ck"), "10000"], stdout=subprocess.PIPE,
                            text=True, cwd=str(Path(tests).parent))
    try:
        for line in proc.stdout:
            if line.startswith("held"):
                break
        assert x_held()[0]
        os.kill(proc.pid, signal.SIGTSTP)
        t = _wait(lambda: x_held() == ([], []), 3.0)
        assert t is not None, "still held 3 s after SIGTSTP"  # the guardian would need 10 s
        assert _wait(lambda: open(f"/proc/{proc.pid}/stat").read().split(") ")[1][0] == "T", 2.0) is not None
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()
