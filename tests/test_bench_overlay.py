"""The overlay's paint-time benchmark: `ilbot bench overlay` and `python main.py --bench` (main.py
dispatches it, so the app itself imports no benchmark)."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

from ilbot.bench.overlay import paint_time

ROOT = Path(__file__).resolve().parents[1]


def test_paint_time_reports_figures(qtbot):
    r = paint_time(100, 200, 150, frames=3)
    assert r["events"] == 100 and r["frames"] == 3 and r["size"] == "200x150"
    assert 0 < r["paint_p50_ms"] <= r["paint_p99_ms"] and r["paint_mean_ms"] > 0 and r["max_fps"] > 0


def test_main_py_bench_prints_paint_figures(capsys, qapp):
    main = runpy.run_path(str(ROOT / "main.py"))["main"]
    assert main(["--bench", "--json", "--frames", "10"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["events"] == 100 and r["frames"] == 10 and r["paint_mean_ms"] > 0 and r["max_fps"] > 0
    assert main(["--frames", "4", "--bench"]) == 0  # text, the option anywhere
    out = capsys.readouterr().out
    assert "frames: 4" in out and "max_fps:" in out


def test_the_app_imports_no_benchmark():
    """Importing the app and its launcher loads nothing from ilbot.bench (imports only downward)."""
    code = ("import sys, ilbot.gui.launch, ilbot.gui.main_window, ilbot.gui.overlay; "
            "print(sorted(m for m in sys.modules if m.startswith('ilbot.bench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
