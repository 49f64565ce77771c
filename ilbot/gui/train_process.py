"""Build, train and evaluate as child processes running the same command line users run.

`CliJob(args)` starts `python -m ilbot.cli ARGS` with `QProcess` (the app's event loop stays free,
and a crash or an out-of-memory kill in training cannot take the app down). Its signals:

- `record(dict)`: each stdout line that is a JSON object (`ilbot train --progress-json` writes
  progress, metrics and end lines; the summary line comes last);
- `output(str)`: every other line, stdout or stderr (progress bars, tables, messages);
- `done(int, str)`: the exit code (-1 when the child crashed or was killed) and the child's last
  `error:` line (empty when it printed none).

`cancel()` sends the child SIGTERM (not SIGINT: a child started from a shell's background job
inherits SIGINT ignored, and would not stop): `ilbot train` then finishes its step, validates,
writes `last/` and exits (the run stays resumable); other commands stop at once, the `ilbot` CLI
turning SIGTERM into an interrupt, so they clean up what they had half-written. A child still
running after `kill_after_ms` is killed.

`build_args`, `train_args` and `eval_args` spell the commands; the app runs nothing else.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from PyQt6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, pyqtSignal

HOLDOUT_FRAC = 0.2  # share held out for validation (one session: its last part by time)
EVAL_MAX_WINDOWS = 5000  # the app's report: a seeded subset, so real data sets evaluate in minutes
EVAL_FREE_RUNNING_TICKS = 100


def build_args(sessions, out, holdout_frac: float = HOLDOUT_FRAC) -> list[str]:
    return ["build", *[str(s) for s in sessions], "--out", str(out), "--split-by", "session",
            "--holdout-frac", f"{holdout_frac:g}"]


def train_args(data, out, *, config: str | None = None, overrides=(), resume: bool = False) -> list[str]:
    args = ["train", "--data", str(data), "--out", str(out), "--progress-json"]
    if config:
        args += ["--config", str(config)]
    if resume:
        args.append("--resume")
    for item in overrides:
        args += ["--set", item]
    return args


def eval_args(model, data, out, *, max_windows: int = EVAL_MAX_WINDOWS,
              free_running_ticks: int = EVAL_FREE_RUNNING_TICKS) -> list[str]:
    return ["eval", "--model", str(model), "--data", str(data), "--out", str(out), "--max-windows", str(max_windows),
            "--free-running-ticks", str(free_running_ticks)]


def parse_line(line: str) -> dict | None:
    """The JSON object on `line`, or None when it is plain text."""
    s = line.strip()
    if not s.startswith("{"):
        return None
    try:
        doc = json.loads(s)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


class CliJob(QObject):
    record = pyqtSignal(dict)
    output = pyqtSignal(str)
    done = pyqtSignal(int, str)

    def __init__(self, args: list[str], parent: QObject | None = None, *, kill_after_ms: int = 60_000,
                 cwd: str | Path | None = None):
        super().__init__(parent)
        self.args = list(args)
        self.kind = self.args[0] if self.args else ""
        self.kill_after_ms = kill_after_ms
        self.cancelled = False
        self.last_error = ""
        self.exit_code: int | None = None
        self.proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        root = str(Path(__file__).resolve().parents[2])  # this checkout first, as the app itself imports it
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
        self.proc.setProcessEnvironment(env)
        if cwd is not None:
            self.proc.setWorkingDirectory(str(cwd))
        self.proc.readyReadStandardOutput.connect(lambda: self._read(self.proc.readAllStandardOutput, "out"))
        self.proc.readyReadStandardError.connect(lambda: self._read(self.proc.readAllStandardError, "err"))
        self.proc.finished.connect(self._finished)
        self.proc.errorOccurred.connect(self._error)
        self._buf = {"out": b"", "err": b""}
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.proc.kill)

    @property
    def command_line(self) -> str:
        return " ".join(["ilbot", *self.args])

    def start(self) -> None:
        self.proc.start(sys.executable, ["-m", "ilbot.cli", *self.args])

    @property
    def running(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def cancel(self) -> None:
        """Interrupt now; SIGKILL if the child is still there after `kill_after_ms`."""
        if not self.running:
            return
        self.cancelled = True
        self.proc.terminate()  # SIGTERM on POSIX
        self._kill_timer.start(self.kill_after_ms)

    def wait(self, ms: int) -> bool:
        return self.proc.waitForFinished(ms) if self.running else True

    # ------------------------------------------------------------------ child output
    def _read(self, read, which: str) -> None:
        self._buf[which] += bytes(read())
        *lines, self._buf[which] = self._buf[which].split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", "replace").rstrip("\r"), which)

    def _line(self, text: str, which: str) -> None:
        # a terminal-style redraw may hold several states: keep the last
        text = text.rsplit("\r", 1)[-1]
        doc = parse_line(text) if which == "out" else None
        if doc is not None:
            self.record.emit(doc)
            return
        if not text.strip():
            return
        if "error:" in text:
            self.last_error = text.split("error:", 1)[1].strip()
        self.output.emit(text)

    def _flush(self) -> None:
        for which in ("out", "err"):
            rest = self._buf[which]
            self._buf[which] = b""
            if rest:
                self._line(rest.decode("utf-8", "replace").rstrip("\r"), which)

    def _finished(self, code: int, status) -> None:
        self._kill_timer.stop()
        self._read(self.proc.readAllStandardOutput, "out")
        self._read(self.proc.readAllStandardError, "err")
        self._flush()
        crashed = status == QProcess.ExitStatus.CrashExit
        self.exit_code = -1 if crashed else int(code)
        self.done.emit(self.exit_code, self.last_error)

    def _error(self, err) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self.last_error = f"cannot start {sys.executable}: {self.proc.errorString()}"
            self.exit_code = -1
            self.done.emit(-1, self.last_error)
