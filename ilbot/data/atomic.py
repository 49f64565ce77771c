"""Writing outputs safely: atomic replacement, ownership markers, user-only permissions.

Every folder ilbot writes (a dataset, a training run, an eval report) carries a small marker
file, `.ilbot-output.json` (`{"kind": "dataset" | "run" | "report", "created": ISO time,
"ilbot": version}`); an existing folder is replaced (`overwrite`) or continued (`resume`) only
when it carries the marker of the same kind. Single-file outputs (session stores) are owned when
they are valid ilbot files; the caller passes that test as `check_owned`.

    with atomic_dir(out, "dataset", overwrite=args.overwrite) as tmp:
        np.save(tmp / "events.npy", ...)     # written into a mkdtemp folder beside `out`
    # on success: marker written, files made 0600/0700, renamed into place (an old owned output is
    # renamed aside first and removed last); on any exception the temp folder is removed and the
    # previous output is left whole.

    with atomic_file(store, overwrite=True, check_owned=is_store) as tmp:
        write_sqlite(tmp)                    # a 0600 temp file in the target's folder
    # on success: fsynced and os.replace()d onto `store`; on failure unlinked.

`prepare_output(target, kind, overwrite=, resume=)` is the check alone, for outputs written in
place (a training run). Every refusal is a one-line `UserError` naming the path; OS failures
while writing (disk full, permission) become one-line `UserError`s too.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from ..errors import UserError

MARKER = ".ilbot-output.json"
KINDS = ("dataset", "run", "report")
FILE_MODE = 0o600
DIR_MODE = 0o700
_ARTICLE = {"dataset": "an ilbot dataset", "run": "an ilbot training run", "report": "an ilbot eval report"}


# ---------------------------------------------------------------- user-only files and folders

def private_dir(path: str | Path, *, parents: bool = True) -> Path:
    """Create folder `path` (and missing parents) as 0700; an existing folder is left as it is."""
    p = Path(path)
    if p.is_dir():
        return p
    if parents and not p.parent.exists():
        private_dir(p.parent, parents=True)
    try:
        os.mkdir(p, DIR_MODE)
    except FileExistsError:
        if not p.is_dir():
            raise UserError(f"{p}: exists and is not a folder") from None
        return p
    except OSError as e:
        raise UserError(f"{p}: cannot create folder ({e.strerror or e})") from None
    os.chmod(p, DIR_MODE)  # the umask may have removed bits; never adds any beyond 0700
    return p


def open_private(path: str | Path, mode: str = "w", **kw):
    """`open(path, mode)` for writing, the file created 0600 (an existing file is chmod-ed to 0600)."""
    p = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    if "a" in mode:
        flags |= os.O_APPEND
    elif "x" in mode:
        flags |= os.O_EXCL
    else:
        flags |= os.O_TRUNC
    fd = os.open(p, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode.replace("x", "w"), **kw)
    except BaseException:
        os.close(fd)
        raise


def write_private_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` as a 0600 file."""
    with open_private(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def write_private_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` as a 0600 file."""
    with open_private(path, "wb") as f:
        f.write(data)
    return Path(path)


def make_private(path: str | Path) -> None:
    """chmod `path` to 0600 (file) or 0700 (folder), and everything below a folder likewise.
    Symbolic links are neither followed nor changed."""
    p = Path(path)
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        os.chmod(p, DIR_MODE)
        for root, dirs, files in os.walk(p):
            for d in dirs:
                q = os.path.join(root, d)
                if not os.path.islink(q):
                    os.chmod(q, DIR_MODE)
            for f in files:
                q = os.path.join(root, f)
                if not os.path.islink(q):
                    os.chmod(q, FILE_MODE)
    else:
        os.chmod(p, FILE_MODE)


# ---------------------------------------------------------------- ownership marker

def read_marker(folder: str | Path) -> dict | None:
    """The marker of `folder` as a dict, or None when it has none (or an unreadable one)."""
    m = Path(folder) / MARKER
    try:
        if not stat.S_ISREG(os.lstat(m).st_mode) or os.lstat(m).st_size > 65536:
            return None
        data = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_owned(folder: str | Path, kind: str) -> bool:
    """Whether `folder` is a real folder (not a link) holding ilbot's marker of `kind`."""
    p = Path(folder)
    try:
        if not stat.S_ISDIR(os.lstat(p).st_mode):
            return False
    except OSError:
        return False
    m = read_marker(p)
    return m is not None and m.get("kind") == kind


def write_marker(folder: str | Path, kind: str) -> Path:
    """Write the ownership marker of `kind` into `folder` (0600)."""
    _check_kind(kind)
    from .. import __version__
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return write_private_text(Path(folder) / MARKER,
                              json.dumps({"kind": kind, "created": created, "ilbot": __version__}) + "\n")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"output kind must be one of {KINDS}, got {kind!r}")


# ---------------------------------------------------------------- checks

def _refuse_link(target: Path) -> None:
    if target.is_symlink():
        try:
            dest = os.readlink(target)
        except OSError:
            dest = "?"
        real = os.path.realpath(target)
        raise UserError(f"{target}: is a symbolic link (to {dest}, i.e. {real}); "
                        f"give the real path, ilbot does not write through links")


def _is_empty_dir(p: Path) -> bool:
    try:
        with os.scandir(p) as it:
            return next(it, None) is None
    except OSError:
        return False


def prepare_output(target: str | Path, kind: str, *, overwrite: bool, resume: bool = False,
                   looks_owned: Callable[[Path], bool] | None = None) -> str:
    """Check that `target` may be written as an output of `kind`; nothing is created or deleted.

    Returns "new" (absent), "empty" (an empty folder), "replace" (an owned output and `overwrite`)
    or "resume" (an owned output and `resume`). Refuses with a one-line UserError: a symbolic
    link; a file or other non-folder; a non-empty folder without `overwrite`/`resume`; a non-empty
    folder that is not ilbot's output of `kind` (marker missing, or `looks_owned(path)` false
    where given: a test for outputs written before markers existed). `resume` wins over
    `overwrite` when both are set."""
    _check_kind(kind)
    t = Path(target)
    _refuse_link(t)
    try:
        st = os.lstat(t)
    except FileNotFoundError:
        return "new"
    except OSError as e:
        raise UserError(f"{t}: cannot be inspected ({e.strerror or e})") from None
    if not stat.S_ISDIR(st.st_mode):
        what = "a file" if stat.S_ISREG(st.st_mode) else "not a folder"
        raise UserError(f"{t}: exists and is {what}; {kind} output goes into a folder")
    if _is_empty_dir(t):
        return "empty"
    owned = is_owned(t, kind) or (looks_owned is not None and read_marker(t) is None and looks_owned(t))
    if not owned:
        other = read_marker(t)
        why = f"it is ilbot's {other.get('kind')!s} output" if other else f"it has no {MARKER}"
        raise UserError(f"{t}: folder is not empty and is not {_ARTICLE[kind]} ({why}); "
                        f"refusing to touch it, choose another folder")
    if resume and kind == "run":
        return "resume"
    if overwrite:
        return "replace"
    if kind == "run":
        raise UserError(f"{t}: a training run already exists there; use --resume to continue it "
                        f"or --overwrite to replace it")
    raise UserError(f"{t}: {_ARTICLE[kind]} already exists there; use --overwrite to replace it")


def _disk_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


def _os_error(target: Path, e: OSError) -> UserError:
    """One line for an OSError while writing `target`. Short writes reported without an errno
    (numpy's "N requested and M written") are "disk full" when the file system is out of space."""
    why = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}.get(e.errno)
    if why is None:
        why = "disk full" if e.errno is None and _disk_full(target.parent) else (e.strerror or str(e))
    return UserError(f"{target}: writing failed ({why}); nothing there was changed")


def _fsync_dir(p: Path) -> None:
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- atomic folder

@contextlib.contextmanager
def atomic_dir(target: str | Path, kind: str, *, overwrite: bool,
               looks_owned: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Write output folder `target` of `kind` atomically (see module doc); yields the temp folder.

    Checked with `prepare_output` before anything is written and again before the swap. On
    success the marker is written, the tree made user-only and renamed into place; an owned
    output already there is renamed aside, the new one renamed in, then the old one removed. On
    any exception the temp folder is removed and whatever was at `target` stays whole; OSErrors
    (disk full, …) are raised as a one-line UserError."""
    t = Path(target)
    prepare_output(t, kind, overwrite=overwrite, looks_owned=looks_owned)
    parent = t.parent if str(t.parent) else Path(".")
    private_dir(parent)
    try:
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{t.name}.tmp-"))  # 0700
    except OSError as e:
        raise _os_error(t, e) from None
    try:
        try:
            yield tmp
            write_marker(tmp, kind)
            make_private(tmp)
        except OSError as e:
            raise _os_error(t, e) from None
        _swap_in(tmp, t, kind, overwrite, looks_owned)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, t: Path, kind: str, overwrite: bool, looks_owned) -> None:
    state = prepare_output(t, kind, overwrite=overwrite, looks_owned=looks_owned)  # again: it may have changed
    parent = tmp.parent
    old: Path | None = None
    try:
        if state == "empty":
            os.rmdir(t)
        elif state == "replace":
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{t.name}.old-"))
            os.rename(t, old)  # onto the empty mkdtemp folder: atomic on POSIX
        os.rename(tmp, t)
    except OSError as e:
        if old is not None and not t.exists():
            with contextlib.suppress(OSError):
                os.rename(old, t)
        raise _os_error(t, e) from None
    _fsync_dir(parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- atomic single file

_SIDECARS = ("-journal", "-wal", "-shm")  # SQLite's files beside a database


@contextlib.contextmanager
def atomic_file(target: str | Path, *, overwrite: bool,
                check_owned: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Write single file `target` atomically; yields a temp path (an empty 0600 file) in its folder.

    Refuses (one-line UserError) a symbolic link, a non-regular file, an existing file without
    `overwrite`, and an existing file for which `check_owned(path)` is false. On success the temp
    file is fsynced and `os.replace`d onto `target`; on any exception it (and SQLite sidecar
    files beside it) is unlinked and `target` is untouched; OSErrors become a one-line UserError."""
    t = Path(target)

    def check() -> None:
        _refuse_link(t)
        try:
            st = os.stat(t)
        except FileNotFoundError:
            return
        except OSError as e:
            raise UserError(f"{t}: cannot be inspected ({e.strerror or e})") from None
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{t}: exists and is not a regular file; refusing to replace it")
        if not overwrite:
            raise UserError(f"{t}: already exists; use --overwrite to replace it")
        if check_owned is not None and not check_owned(t):
            raise UserError(f"{t}: is not a file ilbot wrote; refusing to replace it")

    check()
    parent = t.parent if str(t.parent) else Path(".")
    private_dir(parent)
    try:
        fd, name = tempfile.mkstemp(dir=parent, prefix=f".{t.name}.tmp-")  # 0600
        os.close(fd)
    except OSError as e:
        raise _os_error(t, e) from None
    tmp = Path(name)
    try:
        try:
            yield tmp
            fd = os.open(tmp, os.O_RDWR)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(tmp, FILE_MODE)
        except OSError as e:
            raise _os_error(t, e) from None
        check()
        try:
            os.replace(tmp, t)
        except OSError as e:
            raise _os_error(t, e) from None
        _fsync_dir(parent)
    except BaseException:
        for q in (tmp, *(Path(str(tmp) + s) for s in _SIDECARS)):
            with contextlib.suppress(OSError):
                q.unlink()
        raise
