"""A private X server for the benchmarks that inject input or grab the screen.

They never touch the display the user works on: each starts its own Xvfb on a free display
number (`-displayfd` lets Xvfb pick one and report it, so two benchmarks or test sessions never
collide) and points only its own children at it."""

from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import UserError


def start_xvfb(size: str = "1280x800x24", *, who: str = "benchmark") -> tuple[subprocess.Popen, str]:
    """Start a private Xvfb; returns (process, ":N"). The caller terminates the process."""
    if shutil.which("Xvfb") is None:
        raise UserError(f"{who}: Xvfb is not installed (it injects real input, so it runs on its own X server; "
                        "scripts/setup.sh installs it)")
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", size, "-noreset", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise UserError(f"{who}: Xvfb did not start")
    return proc, f":{number}"
