"""The run folder of `ilbot train`: created new, continued (`resume`) or replaced (`overwrite`),
never mixed with another run and never touching a folder that is not an ilbot run.

    run = RunFolder(out, resume=False, overwrite=False)  # checks only (one-line UserError)
    run.open()          # rank 0, before the first write: a replaced run is renamed aside,
                        # the folder created 0700 with its marker (ilbot.data.atomic)
    run.commit()        # after the new run's first checkpoint: the replaced run is removed
    run.abort()         # a failure before that: the new folder is removed, the old one renamed back

A training run is written in place while it trains (metrics, TensorBoard and checkpoints must be
visible and resumable during a long run); what makes it safe is `write_checkpoint`'s
write-beside-then-rename of `best/` and `last/` (`replace_dir`), and `recover` putting back a
checkpoint folder that a crash left renamed aside.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ..data.atomic import make_private, prepare_output, private_dir, read_marker, write_marker
from ..errors import CheckpointError

CHECKPOINTS = ("best", "last")
_RUN_ENTRIES = {"best", "last", "train_config.json", "metrics.jsonl", "tb", "reports"}


def legacy_run(folder: Path) -> bool:
    """A run written before output markers existed: train_config.json or last/ and nothing but
    a run's own entries (its checkpoint folders' temp and aside copies included)."""
    try:
        names = {e.name for e in os.scandir(folder)}
    except OSError:
        return False
    ours = {n for n in names if n in _RUN_ENTRIES or any(n.startswith(f".{c}.") for c in CHECKPOINTS)}
    return names == ours and bool(names & {"train_config.json", "last"})


def recover(out: Path) -> None:
    """Put back `best/` or `last/` that a crash left renamed aside (`.NAME.old-*`) and drop
    half-written `.NAME.tmp-*` folders."""
    for name in CHECKPOINTS:
        aside = sorted(out.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime)
        if not (out / name).exists() and aside:
            with contextlib.suppress(OSError):
                os.rename(aside[-1], out / name)
        for stale in [*out.glob(f".{name}.old-*"), *out.glob(f".{name}.tmp-*"), out / f".{name}.tmp",
                      out / f".{name}.old"]:
            if (out / name).exists() and stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)


def replace_dir(tmp: Path, final: Path) -> None:
    """Swap the freshly written folder `tmp` in as `final`: the old `final` is renamed aside (to a
    mkdtemp name), `tmp` renamed in, then the old one removed. At every moment one whole
    checkpoint exists under `final` or, for the instant between the renames, aside (`recover`)."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def checkpoint_tmp(out: Path, name: str) -> Path:
    """A fresh, private folder beside `out/name` to write a checkpoint into."""
    return Path(tempfile.mkdtemp(dir=out, prefix=f".{name}.tmp-"))


class RunFolder:
    """One training run's folder; see the module doc."""

    def __init__(self, out: str | Path, *, resume: bool, overwrite: bool):
        self.path = Path(out)
        if resume and overwrite:
            raise CheckpointError(f"{self.path}: --resume continues a run and --overwrite replaces it; give one")
        self.state = prepare_output(self.path, "run", overwrite=overwrite, resume=resume, looks_owned=legacy_run)
        if resume and self.state in ("new", "empty"):
            raise CheckpointError(f"cannot resume: {self.path} holds no training run")
        self._aside: Path | None = None
        if self.state == "resume":
            recover(self.path)

    def open(self) -> None:
        """Make the folder ready for writing (call on the writing rank only)."""
        p = self.path
        if self.state == "replace":
            aside = Path(tempfile.mkdtemp(dir=p.parent, prefix=f".{p.name}.old-"))
            os.rename(p, aside)
            self._aside = aside
        private_dir(p)
        if self.state in ("new", "empty", "replace"):
            os.chmod(p, 0o700)
        if read_marker(p) is None:  # new, or a run from before markers (adopted on resume)
            write_marker(p, "run")
        make_private(p)

    def commit(self) -> None:
        """The new run holds a checkpoint: the run it replaced goes; everything in the run
        (TensorBoard files included) is made user-only again."""
        with contextlib.suppress(OSError):
            make_private(self.path)
        if self._aside is not None:
            shutil.rmtree(self._aside, ignore_errors=True)
            self._aside = None

    def abort(self) -> None:
        """The new run failed before its first checkpoint: put the replaced run back."""
        if self._aside is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rename(self._aside, self.path)
        self._aside = None
