"""Checks of a dataset folder before anything reads it (`ilbot.data.dataset.open_dataset`).

A dataset is ilbot's own output, but a copy can be truncated, hand-edited or planted. Everything
the readers index with or divide by is checked here, so a damaged folder is one `DataError`
naming the file and the field (or array) and what is wrong, never a traceback, a hang or a
silently wrong batch:

- files: every file read must be a regular file (a FIFO or a device is refused without opening
  it); JSON files are at most `MAX_JSON_BYTES`, UTF-8, and nested at most as deep as Python parses;
- meta.json: format, geometry, `split_names` (unique known names, "train" first) and the counts it
  states (`n_windows`, `n_events`, `n_ticks`), which must be those of the arrays;
- stats.json: an object whose normalisation (`feature_mean`, `feature_std`: F finite numbers,
  std >= 0), `tick_ms` and class counts are usable;
- key_vocab.json: an object whose `keys` is a non-empty list of key names;
- arrays: kind (integer or float), rank and width, then values: finite floats; tick offsets that
  start at 0, never decrease and end at the number of events; feature rows and ticks indexed
  within range; windows whose anchor lies in [first tick, last tick]; split codes of the splits
  named; categorical event columns (type, button, key action, key id, scroll) within their classes;
  window sizes > 0.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .schema import F, N_BUTTONS, N_EVENT_TYPES, N_KEY_ACTIONS, N_SCROLL
from .stats_check import stats_problem

MAX_JSON_BYTES = 256 << 20
MAX_VOCAB = 1 << 20
# array → (dtype kind "i" integer / "f" float, rank, width of the 2nd axis or None)
ARRAY_KINDS = {
    "events": ("f", 2, 8), "tick_offsets": ("i", 1, None), "tick_feature": ("i", 1, None), "features": ("f", 2, F),
    "window_anchor": ("i", 1, None), "window_first_tick": ("i", 1, None), "window_lookahead": ("f", 2, 7),
    "window_session": ("i", 1, None), "window_user": ("i", 1, None), "window_split": ("i", 1, None),
    "window_size": ("f", 2, 2), "window_weight": ("f", 1, None),
}
# categorical columns of a history row (events.npy) and of a target row (window_lookahead.npy)
_HISTORY_CLASSES = {3: ("type", N_EVENT_TYPES), 4: ("button", N_BUTTONS), 5: ("key_action", N_KEY_ACTIONS),
                    7: ("scroll_y", N_SCROLL)}
_TARGET_CLASSES = {3: ("button", N_BUTTONS), 4: ("key_action", N_KEY_ACTIONS), 6: ("scroll_y", N_SCROLL)}


def regular_file(path: Path) -> os.stat_result:
    """The stat of `path`, which must be a regular file (a link to one is followed); DataError else."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: missing (not a complete ilbot dataset; rebuild it with `ilbot build`)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file (a folder, FIFO or device); a dataset holds plain files")
    return st


def load_json(path: Path) -> Any:
    """A dataset's JSON file, read within the limits above."""
    st = regular_file(path)
    if st.st_size > MAX_JSON_BYTES:
        raise DataError(f"{path}: {st.st_size} bytes, more than a dataset's JSON file may hold ({MAX_JSON_BYTES})")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: damaged JSON (not UTF-8 at byte {e.start})") from None
    except RecursionError:
        raise DataError(f"{path}: damaged JSON (nested too deep)") from None
    except ValueError as e:
        raise DataError(f"{path}: damaged JSON ({str(e).splitlines()[0][:160]})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def load_array(path: Path) -> np.ndarray:
    """One `.npy` file, memory-mapped, never unpickled."""
    regular_file(path)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        why = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise DataError(f"{path}: damaged array file ({why})") from None


def _is_int(v: Any) -> bool:
    return type(v) is int


def check_meta(p: Path, meta: Any, known_splits: tuple[str, ...]) -> list[str]:
    """meta.json's fields the readers use; returns its split names."""
    where = p / "meta.json"
    names = meta.get("split_names", [known_splits[0]])
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)
            and names[0] == known_splits[0] and len(set(names)) == len(names) and set(names) <= set(known_splits)):
        raise DataError(f"{where}: split_names={str(names)[:80]} (expected a list of {', '.join(known_splits)} "
                        f"starting with {known_splits[0]!r})")
    spec_hash = meta.get("spec_hash")
    if spec_hash is not None and not isinstance(spec_hash, str):
        raise DataError(f"{where}: spec_hash={spec_hash!r} (expected text)")
    return names


def check_counts(p: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """The counts meta.json states are the arrays' counts."""
    have = {"n_windows": len(arrays["window_anchor"]), "n_events": len(arrays["events"]),
            "n_ticks": len(arrays["tick_feature"])}
    for key, n in have.items():
        if key in meta and not (_is_int(meta[key]) and meta[key] == n):
            raise DataError(f"{p / 'meta.json'}: {key}={str(meta[key])[:40]} but the arrays hold {n}")


def check_stats(p: Path, stats: Any) -> None:
    """stats.json's fields that training, evaluation and checkpoints use."""
    problem = stats_problem(stats, F)
    if problem:
        raise DataError(f"{p / 'stats.json'}: {problem}")


def check_vocab(p: Path, vocab: Any) -> list[str]:
    """key_vocab.json's key names."""
    keys = vocab.get("keys") if isinstance(vocab, dict) else None
    if not (isinstance(keys, list) and 0 < len(keys) <= MAX_VOCAB and all(isinstance(k, str) for k in keys)):
        raise DataError(f"{p / 'key_vocab.json'}: expected an object whose 'keys' is a list of 1..{MAX_VOCAB} "
                        "key names")
    return keys


def check_arrays(p: Path, arrays: dict[str, np.ndarray], n_splits: int, vocab_size: int) -> None:
    """Kinds, shapes and values of the arrays (see the module doc)."""
    def bad(name: str, why: str) -> DataError:
        return DataError(f"{p / (name + '.npy')}: {why}")

    for name, a in arrays.items():
        kind, rank, width = ARRAY_KINDS[name]
        if a.dtype.kind not in ("iu" if kind == "i" else "f") or a.ndim != rank or (width and a.shape[1] != width):
            want = (f"{'integer' if kind == 'i' else 'float'} array of rank {rank}"
                    + (f", {width} columns" if width else ""))
            raise bad(name, f"{a.dtype} array of shape {a.shape} (expected a {want})")
        if kind == "f" and a.size and not np.isfinite(a).all():
            raise bad(name, "holds NaN or infinite values")
    n = len(arrays["window_anchor"])
    for name in arrays:
        if name.startswith("window_") and len(arrays[name]) != n:
            raise bad(name, f"{len(arrays[name])} rows, expected {n} (one per window)")
    n_events, n_ticks, n_rows = len(arrays["events"]), len(arrays["tick_feature"]), len(arrays["features"])
    off = np.asarray(arrays["tick_offsets"])
    if len(off) != n_ticks + 1 or off[0] != 0 or off[-1] != n_events or (np.diff(off) < 0).any():
        raise bad("tick_offsets", f"expected {n_ticks + 1} non-decreasing offsets from 0 to {n_events} "
                                  "(the events of each tick)")
    tf = np.asarray(arrays["tick_feature"])
    if n_rows < 1 or (n_ticks and (tf.min() < 0 or tf.max() >= n_rows)):
        raise bad("tick_feature", f"a feature row outside 0..{n_rows - 1}")
    anchor, first = np.asarray(arrays["window_anchor"]), np.asarray(arrays["window_first_tick"])
    if n and (first.min() < 0 or (anchor < first).any() or anchor.max() >= n_ticks):
        raise bad("window_anchor", f"a window's tick outside its session's ticks (0..{n_ticks - 1})")
    split = np.asarray(arrays["window_split"])
    if n and (split.min() < 0 or split.max() >= n_splits):
        raise bad("window_split", f"a split code outside 0..{n_splits - 1} (meta.json names {n_splits} split(s))")
    if n and (np.asarray(arrays["window_size"]) <= 0).any():
        raise bad("window_size", "a window size <= 0")
    if "window_weight" in arrays and n and (np.asarray(arrays["window_weight"]) < 0).any():
        raise bad("window_weight", "a weight < 0")
    for name, classes, key_col in (("events", _HISTORY_CLASSES, 6), ("window_lookahead", _TARGET_CLASSES, 5)):
        a = arrays[name]
        for col, (field, k) in {**classes, key_col: ("key_id", vocab_size)}.items():
            v = np.asarray(a[:, col]) if len(a) else np.zeros(0, np.float32)
            if len(v) and ((v < 0).any() or (v >= k).any() or (v != np.floor(v)).any()):
                raise bad(name, f"column {field} holds a value outside its classes 0..{k - 1}")
