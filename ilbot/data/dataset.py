"""Reading dataset windows: `open_dataset(path, split=None) -> WindowDataset` (DESIGN §5).

The builder (`ilbot.data.build`) stores flat memory-mapped arrays; this module gathers the
DESIGN §5 arrays from them per batch:

    ds = open_dataset("runs/bal_ds", split="train")
    b = ds.batch(np.arange(256))    # dict of numpy arrays, all of one batch (what training uses)
    b["history"].shape              # (256, 10, 100, 8)
    ds["history"].shape             # (N, 10, 100, 8) — a lazy view: ds["history"][i], [i:j], [idx]
    ds["target_mask"][i].sum() - 1  # position of window i's look-ahead slot

Names and shapes (N windows of the chosen split):
`gamestate` [N,T,F] float32 (normalised), `history` [N,T,A,8] float32, `history_mask` [N,T,A] bool,
`targets` [N,A,7] float32, `target_mask` [N,A] bool, `pointer` [N,3] float32 (POINTER_FIELDS: the
last pointer event before the context), `window_size` [N,2] float32, `session` [N] int, `user` [N]
int (-1 unknown). The first six are lazy (gathered on access), the last three plain arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .build import DATASET_FILES, DATASET_FORMAT, SPLIT_NAMES, TARGET_COLS, BuildConfig, build_dataset
from .dataset_check import check_arrays, check_counts, check_meta, check_stats, check_vocab, load_array, load_json
from .schema import POINTER_TYPES, UNKNOWN_POINTER, A, F, H, T

__all__ = ["BuildConfig", "LazyArray", "WindowDataset", "build_dataset", "open_dataset"]

LAZY_FIELDS = {  # name → (shape after N, dtype)
    "gamestate": ((T, F), np.float32),
    "history": ((T, A, 8), np.float32),
    "history_mask": ((T, A), np.bool_),
    "targets": ((A, 7), np.float32),
    "target_mask": ((A,), np.bool_),
    "pointer": ((3,), np.float32),
}
SPLIT_ALIASES = {"holdout": "val", "validation": "val"}  # other names of the held-out split ("test" is not one)
_FILES = DATASET_FILES


class LazyArray:
    """A read-only array-like over one field of a WindowDataset, gathered on indexing."""

    def __init__(self, ds: "WindowDataset", name: str):
        self._ds = ds
        self.name = name
        tail, self.dtype = LAZY_FIELDS[name]
        self.shape = (len(ds),) + tail
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"index {key} out of range for {self.name} with {len(self)} windows")
            out = self._ds.batch(np.array([i]), fields=(self.name,))[self.name][0]
        elif isinstance(key, slice):
            out = self._ds.batch(np.arange(len(self))[key], fields=(self.name,))[self.name]
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            out = self._ds.batch(idx, fields=(self.name,))[self.name]
        return out[rest] if rest else out

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyArray({self.name}, shape={self.shape}, dtype={np.dtype(self.dtype).name})"


class WindowDataset:
    """Windows of one dataset folder, optionally restricted to one split (see module doc)."""

    def __init__(self, path: Path, split: str | None, arrays: dict[str, np.ndarray], meta: dict, stats: dict,
                 key_vocab: list[str]):
        self.path = path
        self.split = split
        self.meta = meta
        self.stats = stats
        self.key_vocab = key_vocab
        self.spec_hash = meta.get("spec_hash")
        self.split_names = list(meta.get("split_names", [SPLIT_NAMES[0]]))
        self._a = arrays
        self._last_pointer: np.ndarray | None = None  # [E] (_last_pointer_before)
        if split is None:
            self.indices = np.arange(len(arrays["window_anchor"]))  # [N] global window indices
        else:
            self.indices = np.flatnonzero(np.asarray(arrays["window_split"]) == self.split_names.index(split))
        # training weight per window [N] (marked segments: corrections, takeovers); None = all 1
        self.weights = (np.asarray(arrays["window_weight"][self.indices], np.float32)
                        if "window_weight" in arrays else None)
        self._plain = {
            "window_size": np.asarray(arrays["window_size"][self.indices], np.float32),  # [N, 2]
            "session": np.asarray(arrays["window_session"][self.indices], np.int64),  # [N]
            "user": np.asarray(arrays["window_user"][self.indices], np.int64),  # [N]
        }

    def __len__(self) -> int:
        return len(self.indices)

    def keys(self) -> list[str]:
        return list(LAZY_FIELDS) + list(self._plain)

    def __getitem__(self, name: str):
        if name in LAZY_FIELDS:
            return LazyArray(self, name)
        if name in self._plain:
            return self._plain[name]
        raise KeyError(f"{name!r}: a dataset has {', '.join(self.keys())}")

    def __contains__(self, name: str) -> bool:
        return name in LAZY_FIELDS or name in self._plain

    def __repr__(self) -> str:
        return f"WindowDataset({self.path}, split={self.split}, windows={len(self)})"

    def _last_pointer_before(self, idx: np.ndarray) -> np.ndarray:
        """For event positions idx [B], the index of the last pointer event (POINTER_TYPES) among
        events[:idx], or -1. The running maximum over all events is computed once, on first use."""
        if self._last_pointer is None:
            types = np.asarray(self._a["events"][:, H["type"]]).astype(np.int64)  # [E]
            is_ptr = np.isin(types, [int(t) for t in POINTER_TYPES])
            self._last_pointer = np.maximum.accumulate(np.where(is_ptr, np.arange(len(types)), -1))  # [E] at or before i
        idx = np.asarray(idx, np.int64)
        if not len(self._last_pointer):
            return np.full(idx.shape, -1, np.int64)
        return np.where(idx > 0, self._last_pointer[np.maximum(idx - 1, 0)], -1)

    def batch(self, indices, fields: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """All arrays of the windows `indices` (positions within this split) as one batch dict."""
        want = set(fields or self.keys())
        pos = np.asarray(indices, np.int64).reshape(-1)  # [B]
        if len(pos) and (pos.min() < 0 or pos.max() >= len(self)):
            raise IndexError(f"window index out of range 0..{len(self) - 1}")
        w = self.indices[pos]  # [B] global window indices
        a = self._a
        B = len(w)
        anchor = np.asarray(a["window_anchor"][w])  # [B] global tick t
        first = np.asarray(a["window_first_tick"][w])  # [B]
        off = a["tick_offsets"]
        events = a["events"]  # [E, 8]
        slot = np.arange(A)  # [A]
        out: dict[str, np.ndarray] = {}
        if "gamestate" in want:
            gt = anchor[:, None] + np.arange(-(T - 1), 1)  # [B, T] ticks t-9 … t
            gv = gt >= first[:, None]  # [B, T] inside the session
            fidx = np.asarray(a["tick_feature"][np.where(gv, gt, anchor[:, None])])  # [B, T]
            gs = np.asarray(a["features"][fidx], np.float32)  # [B, T, F]
            gs[~gv] = 0.0  # padding before the session's first tick: the training mean
            out["gamestate"] = gs
        if "history" in want or "history_mask" in want:
            ht = anchor[:, None] + np.arange(-T, 0)  # [B, T] windows t-10 … t-1
            hv = ht >= first[:, None]  # [B, T]
            htc = np.where(hv, ht, anchor[:, None])
            hi = np.asarray(off[htc + 1])  # [B, T]
            lo = np.maximum(np.asarray(off[htc]), hi - A)  # keep the last A events of a window
            n = np.where(hv, hi - lo, 0)  # [B, T]
            hmask = slot < n[..., None]  # [B, T, A]
            if "history" in want:
                hidx = np.where(hmask, lo[..., None] + slot, 0)  # [B, T, A]
                hist = events[hidx.reshape(-1)].reshape(B, T, A, 8) if len(events) else np.zeros((B, T, A, 8), np.float32)
                hist[~hmask] = 0.0
                out["history"] = hist
            if "history_mask" in want:
                out["history_mask"] = hmask
        if "pointer" in want:
            ctx0 = anchor - T  # [B] the tick whose window is the context's oldest
            i0 = np.asarray(off[np.maximum(ctx0, first)])  # [B] its first event (the session's first when it starts before)
            lp = self._last_pointer_before(i0)  # [B] index of the last pointer event before it, -1 if none
            known = (ctx0 > first) & (lp >= np.asarray(off[first]))  # inside the session, before the context
            ptr = np.tile(np.array(UNKNOWN_POINTER, np.float32), (B, 1))  # [B, 3]
            if known.any():
                ptr[known, :2] = events[lp[known]][:, [H["x"], H["y"]]]
                ptr[known, 2] = 1.0
            out["pointer"] = ptr
        if "targets" in want or "target_mask" in want:
            lo = np.asarray(off[anchor])  # [B]
            n_in = np.minimum(np.asarray(off[anchor + 1]) - lo, A - 1)  # [B] in-window slots
            if "targets" in want:
                tin = slot < n_in[:, None]  # [B, A]
                tidx = np.where(tin, lo[:, None] + slot, 0)  # [B, A]
                rows = events[tidx.reshape(-1)] if len(events) else np.zeros((B * A, 8), np.float32)
                tg = rows[:, TARGET_COLS].reshape(B, A, 7)  # [B, A, 7]
                tg[~tin] = 0.0
                tg[np.arange(B), n_in] = a["window_lookahead"][w]  # the look-ahead slot
                out["targets"] = tg
            if "target_mask" in want:
                out["target_mask"] = slot <= n_in[:, None]  # [B, A]
        for name in ("window_size", "session", "user"):
            if name in want:
                out[name] = self._plain[name][pos]
        return out


def open_dataset(path: str | Path, split: str | None = None) -> WindowDataset:
    """Open a built dataset folder, all windows (split=None) or one split ("train", "val", "calib";
    "holdout" and "validation" name "val"); a split the dataset does not have is a DataError naming
    the folder and the splits it has. The folder is checked first (`ilbot.data.dataset_check`):
    a damaged one is a one-line DataError naming the file and what is wrong."""
    p = Path(path)
    if p.is_file():
        raise DataError(f"{p} is a file, not a dataset folder")
    if not p.is_dir():
        raise DataError(f"{p}: no such dataset folder")
    meta = load_json(p / "meta.json")
    if not isinstance(meta, dict) or meta.get("format") != DATASET_FORMAT:
        raise DataError(f"{p / 'meta.json'}: not an ilbot dataset of format {DATASET_FORMAT}")
    if (meta.get("T"), meta.get("A"), meta.get("F")) != (T, A, F):
        raise DataError(f"{p / 'meta.json'}: built for T,A,F={meta.get('T')},{meta.get('A')},{meta.get('F')}, "
                        f"this ilbot uses {T},{A},{F}")
    names = check_meta(p, meta, SPLIT_NAMES)
    stats = load_json(p / "stats.json")
    check_stats(p, stats)
    keys = check_vocab(p, load_json(p / "key_vocab.json"))
    arrays = {name: load_array(p / f"{name}.npy") for name in _FILES}
    if (p / "window_weight.npy").exists() or (p / "window_weight.npy").is_symlink():
        arrays["window_weight"] = load_array(p / "window_weight.npy")  # optional: weights of marked segments
    check_arrays(p, arrays, len(names), len(keys))
    check_counts(p, meta, arrays)
    if split is not None:
        split = SPLIT_ALIASES.get(split, split) if split not in names else split
        if split not in names:
            hint = "; build with --calib-frac F for a calib split" if split == "calib" else ""
            raise DataError(f"{p}: no split {split!r} (splits: {', '.join(names)}{hint})")
    return WindowDataset(p, split, arrays, meta, stats, keys)
