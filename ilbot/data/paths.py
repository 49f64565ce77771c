"""Folders ilbot's processes share, kept where only this user can reach them.

- `user_dir()`: ilbot's per-user folder, `$XDG_RUNTIME_DIR/ilbot` when XDG_RUNTIME_DIR is a
  folder this user owns with no group/other access (as the XDG spec makes it), else
  `$XDG_CACHE_HOME/ilbot` (default `~/.cache/ilbot`). Never a fixed path under /tmp, where
  another user could plant a symlink first.
- `sandbox_state_dir(create=False)`: where `ilbot sandbox` publishes its per-tick JSON by
  default and where the `sandbox` capture source reads: `$ILBOT_SANDBOX_STATE` when set, else
  `user_dir() / "sandbox-state"`.
- `private_dir(path)`: creates a folder 0700 (parents as needed) and refuses, with a one-line
  `UserError`, a path that is a symlink, not a folder, or owned by another user. An existing
  folder of this user's keeps its permissions, except ilbot's own `user_dir()`, which is made
  0700.

Both the sandbox (the publisher) and the agent's capture registry (the reader) import this
module, so neither imports the other for the folder's name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import UserError

STATE_ENV = "ILBOT_SANDBOX_STATE"
STATE_SUBDIR = "sandbox-state"


def _owned_private_dir(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def user_dir() -> Path:
    """ilbot's per-user folder (not created; `private_dir` creates and checks it)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and _owned_private_dir(Path(runtime)):
        return Path(runtime) / "ilbot"
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "ilbot"


def private_dir(path: str | os.PathLike, *, tighten: bool = False) -> Path:
    """`path` as a folder of this user's: created 0700 if missing (parents with the default
    mode); a symlink, a non-folder or another user's folder is refused. `tighten` also makes an
    existing folder 0700."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise UserError(f"{path}: cannot create the folder ({e.strerror})") from e
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UserError(f"{path}: is a symlink (to {os.readlink(path)}); refusing to use it as ilbot's folder")
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: exists and is not a folder")
    if st.st_uid != os.getuid():
        raise UserError(f"{path}: owned by uid {st.st_uid}, not by you (uid {os.getuid()}); refusing to use it")
    if tighten and st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def sandbox_state_dir(create: bool = False) -> Path:
    """The sandbox game's default state folder; with `create`, made (and checked) by `private_dir`."""
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return private_dir(explicit) if create else Path(explicit)
    base = user_dir()
    if not create:
        return base / STATE_SUBDIR
    return private_dir(private_dir(base, tighten=True) / STATE_SUBDIR)
