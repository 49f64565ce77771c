"""Intervention learning in the app: the person takes over a live run (human override), the app
records what they do until they hand back, marks it as a `correction` segment, and the correction
reaches training with the weight `ilbot build --segment-weight` gives it."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PyQt6.QtWidgets import QMessageBox

from test_gui_app import answer_next_dialog, sessions_dir, tiny_model, window  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool plays the person")


def test_a_correction_recorded_in_the_app_reaches_training_with_its_weight(window, tiny_model, qtbot, own_display,
                                                                          tmp_path):
    from ilbot.data.build import BuildConfig, build_dataset
    from ilbot.data.dataset import open_dataset
    from ilbot.data.store import open_session
    from ilbot.training.data import EpochSampler

    assert window.load_model(str(tiny_model))
    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    window.set_mode("live")
    answer_next_dialog(QMessageBox.StandardButton.Yes)  # the live confirmation
    assert window.start() is True
    run = lambda: window.thread.runtime  # noqa: E731
    # the agent has put the pointer somewhere (an override is a move away from it)
    qtbot.waitUntil(lambda: window.run_state[0] == "running" and run() is not None
                    and run().executor.pointer is not None, timeout=30_000)
    g = window.game_window
    tl = g.mapToGlobal(g.rect().topLeft())
    # the person takes over: moves to the game corner farthest from the agent's pointer, then plays
    ax, ay = run().executor.pointer
    corners = [(tl.x() + dx, tl.y() + dy) for dx in (20, 780) for dy in (20, 580)]
    far = max(corners, key=lambda c: (c[0] - ax) ** 2 + (c[1] - ay) ** 2)
    subprocess.run(["xdotool", "mousemove", str(far[0]), str(far[1])], check=True)
    qtbot.waitUntil(lambda: window.run_state == ("paused", "human_override"), timeout=10_000)
    qtbot.waitUntil(lambda: window.corrections.active, timeout=5_000)
    qtbot.wait(700)
    for x, y in ((200, 200), (400, 300), (600, 150)):
        subprocess.run(["xdotool", "mousemove", str(tl.x() + x), str(tl.y() + y), "click", "1"], check=True)
        qtbot.wait(400)
    qtbot.wait(1500)  # a few game ticks recorded
    window.toggle_pause()  # hand back (the person is still by now)
    qtbot.waitUntil(lambda: not window.corrections.active, timeout=10_000)
    window.stop()
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)
    [path] = window.corrections.recorded
    assert path.parent == window.sessions.folder and "correction recorded" in window.messages.toPlainText()
    with open_session(path) as s:
        segs = s.segments()
        clicks = [e for e in s.events() if e.type == 0]
        assert [sg["kind"] for sg in segs] == ["correction"] and len(clicks) == 3 and s.n_ticks >= 2
    # the correction reaches training with its weight
    stats = build_dataset([path], tmp_path / "ds", BuildConfig(segment_weights={"correction": 3.0}, progress=False))
    ds = open_dataset(tmp_path / "ds", "train")
    assert ds.weights is not None and np.all(ds.weights == 3.0)
    drawn = EpochSampler(len(ds), weights=ds.weights).epoch_indices(0)
    assert len(drawn) == 3 * len(ds)  # each window three times an epoch
    assert stats["all"]["n_windows"] >= 1
