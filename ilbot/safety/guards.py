"""Release-all guards: whatever ends the process, no key or button is left held.

`install_release_guards(release_fn)` registers `release_fn` (e.g. a scheduler's `stop` or an
executor's `release_all`) with `atexit` — normal exit, `sys.exit`, and an uncaught exception (a
crash), since the interpreter runs atexit handlers after printing the traceback — and as a handler
for SIGINT and SIGTERM that releases first, then chains to whatever handler was there before:
a Python handler is called (SIGINT's default raises KeyboardInterrupt as usual), SIG_IGN stays
ignored, and SIG_DFL is restored and the signal re-raised, so the process still dies of it (with
the usual exit status). Signal handlers can only be set from the main thread; elsewhere only the
atexit guard is installed. SIGKILL cannot be caught by anyone: the X server keeps the keys down.

`release_fn` may run more than once (a stop, then exit): it must be idempotent, which every
`release_all` here is. Its exceptions are logged, never raised into the exit path.

`install_suspend_guard(release_fn, on_continue=None)` does the same for Ctrl+Z (SIGTSTP): its
handler releases everything first, then stops the process for real (SIGSTOP sent to itself: the
process stops inside the handler; a re-raised SIGTSTP would be discarded by the kernel in an
orphaned process group), and once continued (SIGCONT: `fg`, `bg`) calls `on_continue()` — the
run pauses then (the safety clock's
`on_suspended` does too: it sees the gap). Python runs a signal handler on the main thread
between bytecodes, so the main thread must not be stuck in a long C call (a hung agent is the
guardian's case). SIGSTOP cannot be caught: only the guardian process releases then.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading

log = logging.getLogger(__name__)


def install_release_guards(release_fn, signals=(signal.SIGINT, signal.SIGTERM)):
    """Install the guards; returns a function that uninstalls them (restoring previous handlers)."""

    def safe_release() -> None:
        try:
            release_fn()
        except Exception:
            log.exception("release guard: release failed")

    atexit.register(safe_release)
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            prev = signal.getsignal(sig)
            previous[sig] = prev

            def handler(signum, frame, prev=prev):
                safe_release()
                if callable(prev):
                    return prev(signum, frame)
                if prev == signal.SIG_IGN:
                    return None
                signal.signal(signum, signal.SIG_DFL)  # SIG_DFL (or unknown): die of it as usual
                os.kill(os.getpid(), signum)
                return None

            signal.signal(sig, handler)

    def uninstall() -> None:
        atexit.unregister(safe_release)
        for sig, prev in previous.items():
            signal.signal(sig, prev if prev is not None else signal.SIG_DFL)

    return uninstall


def install_suspend_guard(release_fn, on_continue=None):
    """Release on SIGTSTP before stopping (main thread only: ValueError elsewhere); returns a
    function that uninstalls it (restoring the previous handler)."""
    if threading.current_thread() is not threading.main_thread():
        raise ValueError("install_suspend_guard: signal handlers can only be set from the main thread")
    prev = signal.getsignal(signal.SIGTSTP)

    def handler(signum, frame):
        try:
            release_fn()
        except Exception:
            log.exception("suspend guard: release failed")
        # SIGSTOP, not SIGTSTP again: the kernel discards a stop signal of the TSTP kind for a
        # process in an orphaned process group (a shell that has gone, a CI runner), which would
        # leave the process running after its keys were let go; SIGSTOP always stops it
        os.kill(os.getpid(), signal.SIGSTOP)  # stops here, until SIGCONT
        if on_continue is not None:
            try:
                on_continue()
            except Exception:
                log.exception("suspend guard: on_continue failed")

    signal.signal(signal.SIGTSTP, handler)

    def uninstall() -> None:
        signal.signal(signal.SIGTSTP, prev if prev is not None else signal.SIG_DFL)

    return uninstall
