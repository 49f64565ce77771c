"""The live agent under the faults issue 11 found, with real parts under the test's own Xvfb and
held keys and buttons read from the X server itself:

- an HTTP source that turns hostile in several ways (dripping its headers or body one byte every
  0.2 s, accepting and saying nothing, going away) while the agent's *plan* holds a key and a
  button: a stale pause and everything released within 3 s;
- the kill switch stopping a run while the front end's own thread also stops it: that second
  `stop()` returns only once everything is released and the guardian has been told goodbye (a
  process that exits right after never leaves the guardian to release the person's keys);
- the pause hotkey a front end may ask for (`pause_hotkey`): it pauses, and resumes once pressed
  again.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time

import pytest

from ilbot.data.action import PlannedAction
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.model import load_checkpoint

from test_runtime_live import x_held
from test_runtime_support import ListAdapter, features, tiny_checkpoint

pytestmark = pytest.mark.xvfb
needs_xdotool = pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool plays the person")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return load_checkpoint(tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny"))


def _wait(pred, timeout_s: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


class HostileServer:
    """A loopback game-state server on a raw socket: answers at once while `good`, then turns
    hostile the way `how` says, one byte every 0.2 s where it drips."""

    def __init__(self, how: str):
        self.how, self.good, self.tick = how, True, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            path = conn.recv(4096).decode(errors="replace").split()[1]
            if path.startswith("/events"):
                self.tick += 1
            body = json.dumps({"game tick": self.tick} if path.startswith("/events") else []).encode()
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            if self.good:
                conn.sendall(head + body)
                return
            if self.how == "silent":
                time.sleep(30)
                return
            if self.how == "headers":
                conn.sendall(head[:12])
                rest = head[12:] + body
            else:  # "body"
                conn.sendall(head + body[:1])
                rest = body[1:] + b" " * 200
            for i in range(len(rest)):
                conn.sendall(rest[i:i + 1])
                time.sleep(0.2)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


class HoldsThenNothing:
    """A planner whose second plan presses a key and clicks with a long hold, then never plans again."""

    def __init__(self):
        self.n = 0

    def plan(self, ctx, **kw):
        self.n += 1
        if self.n != 2:
            return []
        return [PlannedAction(EventType.KEY, 0.0, 10, 10, key_action=KeyAction.PRESS, key_id=key_id("g")),
                PlannedAction(EventType.CLICK, 40.0, 30, 30, button=1, hold_ms=450.0)]


@pytest.mark.parametrize("how", ["headers", "body", "silent", "gone"])
def test_hostile_http_source_pauses_stale_and_releases_what_the_plan_holds(own_display, ckpt, how):
    from ilbot.agent.capture.registry import make_adapter
    from ilbot.agent.executors.pynput_exec import PynputExecutor
    from ilbot.agent.runtime import AgentRuntime

    srv = HostileServer(how)
    rt = AgentRuntime(ckpt, make_adapter(f"http:127.0.0.1:{srv.port}"), PynputExecutor(), live=True,
                      window=(100, 100, 640, 480), planner=HoldsThenNothing())
    try:
        rt.start()
        assert _wait(lambda: x_held()[0], 10.0) is not None, rt.counters  # the plan's key is down
        if how == "gone":
            srv.close()
        srv.good = False
        t0 = time.monotonic()
        t_free = _wait(lambda: x_held() == ([], []), 6.0)
        _wait(lambda: rt.paused, 6.0)
        t_stale = time.monotonic() - t0
        assert rt.pause_reason == "stale_state" and t_stale <= 3.0, (t_stale, rt.counters["adapter"])
        assert t_free is not None and t_free <= 3.0, t_free
        time.sleep(0.5)
        assert x_held() == ([], []) and rt.paused  # nothing pressed again while the source stays bad
    finally:
        rt.stop()
        srv.close()


class Silent:
    def plan(self, ctx, **kw):
        return []


def _live(ckpt, **cfg):
    from ilbot.agent.executors.pynput_exec import PynputExecutor
    from ilbot.agent.runtime import AgentRuntime, RuntimeConfig

    from ilbot.safety import SafetyConfig

    # stale state pauses after 30 ticks (3 s), not 4 (0.4 s): a loaded machine can stall the loop that long
    return AgentRuntime(ckpt, ListAdapter(features(100000), tick_ms=100), PynputExecutor(),
                        SafetyConfig(tick_ms=100, stale_ticks=30), live=True, window=(100, 100, 640, 480),
                        planner=Silent(), tick_ms=100, config=RuntimeConfig(**cfg))


@needs_xdotool
def test_a_second_stop_returns_once_the_kill_switch_stop_is_done(own_display, ckpt):
    """F12 stops the run on the kill switch's thread; the loop ends at once and its front end
    stops the run too (as `ilbot play` does before it exits): that stop returns only after the
    supervision has ended — the guardian got its goodbye and exited."""
    rt = _live(ckpt)
    threading.Timer(1.5, lambda: subprocess.run(["xdotool", "key", "F12"], check=True)).start()
    rt.run()  # returns when the kill switch has moved the run to stopped
    rt.stop("user")  # the front end's own stop: waits for the kill switch's to finish
    guardian = rt.supervision.guardian
    assert rt.reason == "kill_switch"
    assert guardian is not None and guardian.proc.poll() == 0  # exited on "bye", touching nothing
    kill = rt.supervision.kill  # its listener ends once the callback that stopped the run returns
    assert kill is not None and _wait(lambda: not kill.running, 2.0) is not None
    assert x_held() == ([], [])


@needs_xdotool
def test_the_pause_hotkey_pauses_and_resumes(own_display, ckpt):
    rt = _live(ckpt, pause_hotkey="f6")
    states = []
    rt.on_state.append(lambda s, r: states.append((s, r)))
    try:
        rt.start()
        assert _wait(lambda: rt.running, 10.0) is not None
        subprocess.run(["xdotool", "key", "F6"], check=True)
        assert _wait(lambda: rt.paused, 3.0) is not None and rt.pause_reason == "user"
        subprocess.run(["xdotool", "key", "F6"], check=True)
        assert _wait(lambda: rt.running, 3.0) is not None, states
        time.sleep(0.5)
        assert rt.running and states.count(("paused", "user")) == 1
    finally:
        rt.stop()
    assert not rt.supervision.pause_key.running
