"""Test-session setup.

pytest-xvfb starts one Xvfb (1280x800x24, -noreset; see pyproject) for the whole session and
points DISPLAY at it, so Qt windows, pynput injection/listening and mss grabs all run on the
test's own X server, never on a real display. pytest-xvfb silently does nothing when the Xvfb
binary is missing: we fail loudly instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config):
    # One torch thread: the models under test are tiny, and torch's default of one thread per core
    # makes them many times slower when the two cores are shared (measured: 41 s vs 9 s).
    import torch

    torch.set_num_threads(1)
    if shutil.which("Xvfb") is None:
        raise pytest.UsageError("Xvfb is not installed: run scripts/setup.sh (the README's test command does)")


@pytest.fixture(autouse=True)
def _own_app_settings(tmp_path_factory, monkeypatch):
    """The app's saved settings (ilbot.gui.persist) live in a fresh folder for each test, never in
    the person's own ~/.config."""
    monkeypatch.setenv("ILBOT_SETTINGS_DIR", str(tmp_path_factory.mktemp("settings")))


@pytest.fixture
def own_display(xvfb):
    """The test session's own Xvfb display; refuses to run against any other display."""
    if xvfb is None or os.environ.get("DISPLAY") != f":{xvfb.display}":
        pytest.fail(f"refusing to inject input: DISPLAY={os.environ.get('DISPLAY')!r} is not the test's own Xvfb")
    return os.environ["DISPLAY"]


@pytest.fixture
def shared_data():
    """../shared/data when present (a developer checkout), else the test is skipped."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA
