"""Feature specs: a declarative TOML mapping of a game-state JSON document to F=128 floats (DESIGN §3).

A spec file:

    name = "osrs"
    description = "..."

    [[slot]]                      # one slot ...
    index = 0
    path = "events.animation"     # JSON path: dotted keys, [i] list index, ["key with.dots"],
    transform = "scale"           # [?field=value] the first list element whose field equals value
    scale = 0.0001

    [[slot]]                      # ... or `count` consecutive slots; {i} in the path counts 0, 1, …
    index = 20
    count = 28
    path = "inv[{i}].id"
    transform = "scale"
    scale = 3.3e-5

Every slot 0..127 must be given exactly once. Transforms (value `v` read from the path):

| transform | value | options |
| --- | --- | --- |
| `scale` | `(v - offset) * scale` | `scale` (1), `offset` (0), `mod` (wrap v first) |
| `clip` | `clip(v, min, max)` then as `scale` | `min`, `max` (required) |
| `log` | `log1p(max(v - offset, 0)) * scale` | |
| `one_hot` | 1.0 if `v == equals` else 0.0 | `equals` (required; number or string) |
| `hash` | `(crc32(str(v)) % buckets + 1) / buckets` | `buckets` (required): a stable code in (0, 1] for strings |
| `zero` | 0.0 | — (unused slot; `path` not needed) |

Every slot may set `parse`: `number` (default; also accepts numeric strings and booleans),
`ratio` ("12/99" → 12/99), `ratio_num` ("12/99" → 12), `ratio_den` (→ 99). A missing path or a
value that does not parse gives the slot's `default` (0.0), which is *not* transformed.
`min`/`max` also clip the result of `scale` and `log` when given.

A spec may also name **position anchors** (`FeatureSpec.anchors`, used by the model's
`anchors = "spec"` option, ilbot.model.anchors): features whose raw values are on-screen positions
in window units (x / width, y / height), with validity features that are 1 while the position
counts. `count` repeats an entry with every index advanced by one:

    [[anchor]]
    count = 5
    x = 30                        # feature index of x (window units)
    y = 35
    valid = [20, 25]              # valid while every one of these features is above 0.5

The hash (`FeatureSpec.hash`) is a sha256 of the canonical expanded slot list (JSON, sorted
keys), so comments, ordering, `count` groups versus single slots and file formatting do not
change it; any change of a path, transform or option does. Anchors say how features may be
read, not what they are, so they do not enter the hash.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .schema import F

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPECS_DIR = Path(__file__).with_name("specs")
TRANSFORMS = ("scale", "clip", "log", "one_hot", "hash", "zero")
PARSERS = ("number", "ratio", "ratio_num", "ratio_den")
_OPTIONS = {"index", "count", "path", "transform", "scale", "offset", "mod", "min", "max", "equals", "buckets",
            "default", "parse", "note"}
_TOKEN = re.compile(r'\.?([^.\[\]]+)|\["([^"]*)"\]|\[(-?\d+)\]|\[\?([^=\]]+)=([^\]]*)\]')


def parse_path(path: str) -> list[tuple]:
    """A JSON path as steps: ("key", k), ("index", i) or ("match", field, value). Raises ValueError."""
    s = path[2:] if path.startswith("$.") else path
    steps, pos = [], 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad JSON path {path!r} at character {pos}")
        key, qkey, idx, mfield, mval = m.groups()
        if key is not None:
            steps.append(("key", key))
        elif qkey is not None:
            steps.append(("key", qkey))
        elif idx is not None:
            steps.append(("index", int(idx)))
        else:
            steps.append(("match", mfield.strip(), mval.strip().strip('"')))
        pos = m.end()
    if not steps:
        raise ValueError(f"empty JSON path {path!r}")
    return steps


def _lookup(doc: Any, steps: list[tuple]) -> Any:
    """The value at `steps`, or None when any step is missing."""
    cur = doc
    for step in steps:
        if step[0] == "key":
            if not isinstance(cur, dict) or step[1] not in cur:
                return None
            cur = cur[step[1]]
        elif step[0] == "index":
            if not isinstance(cur, list) or not -len(cur) <= step[1] < len(cur):
                return None
            cur = cur[step[1]]
        else:
            if not isinstance(cur, list):
                return None
            cur = next((e for e in cur if isinstance(e, dict) and str(e.get(step[1])) == step[2]), None)
            if cur is None:
                return None
    return cur


def _number(v: Any, parse: str) -> float | None:
    if parse != "number":
        if not isinstance(v, str) or "/" not in v:
            return None
        num, _, den = v.partition("/")
        try:
            a, b = float(num), float(den)
        except ValueError:
            return None
        if parse == "ratio_num":
            return a
        if parse == "ratio_den":
            return b
        return a / b if b else None
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Slot:
    """One feature slot: where its value comes from and how it becomes a float."""

    index: int
    path: str | None
    transform: str
    options: tuple  # sorted (name, value) pairs of the transform's options
    default: float
    parse: str

    def canonical(self) -> dict:
        return {"index": self.index, "path": self.path, "transform": self.transform,
                "options": dict(self.options), "default": self.default, "parse": self.parse}

    def value(self, doc: Any, steps: list[tuple] | None) -> float:
        if self.transform == "zero":
            return 0.0
        raw = _lookup(doc, steps) if steps else None
        if raw is None:
            return self.default
        o = dict(self.options)
        if self.transform == "one_hot":
            want = o["equals"]
            if isinstance(want, str):
                return 1.0 if str(raw) == want else 0.0
            v = _number(raw, self.parse)
            return 1.0 if v is not None and v == float(want) else 0.0
        if self.transform == "hash":
            b = int(o["buckets"])
            return float(zlib.crc32(str(raw).encode("utf-8")) % b + 1) / b
        v = _number(raw, self.parse)
        if v is None or not math.isfinite(v):
            return self.default
        if "mod" in o:
            v = math.fmod(v, float(o["mod"]))
        off, sc = float(o.get("offset", 0.0)), float(o.get("scale", 1.0))
        if self.transform == "clip":
            v = min(max(v, float(o["min"])), float(o["max"]))
            v = (v - off) * sc
        elif self.transform == "log":
            v = math.log1p(max(v - off, 0.0)) * sc
        else:
            v = (v - off) * sc
        if self.transform != "clip":
            if "min" in o:
                v = max(v, float(o["min"]))
            if "max" in o:
                v = min(v, float(o["max"]))
        return v


class FeatureSpec:
    """A loaded spec: `.features(raw) -> [F] float32`, `.hash`, `.name`, `.slots`."""

    def __init__(self, name: str, slots: list[Slot], source: str = "<memory>", description: str = "",
                 anchors: list[list[int]] | None = None):
        self.name = name
        self.anchors = anchors or []  # [[x, y, valid…], …] feature indices
        self.slots = slots
        self.source = source
        self.description = description
        self._steps = [parse_path(s.path) if s.path else None for s in slots]
        canon = json.dumps([s.canonical() for s in slots], sort_keys=True, separators=(",", ":"))
        self.hash = hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]

    def features(self, raw: dict | str | None) -> np.ndarray:
        """Feature vector [F] float32 of one game-state document (a dict or its JSON text)."""
        if isinstance(raw, (str, bytes)):
            try:
                raw = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                raw = {}  # an unreadable document is all-missing: every slot takes its default
        out = np.zeros(F, np.float32)
        for slot, steps in zip(self.slots, self._steps):
            out[slot.index] = slot.value(raw, steps)
        return out

    def __repr__(self) -> str:
        return f"FeatureSpec({self.name!r}, hash={self.hash})"


def _slot_error(src: str, where: str, msg: str) -> ConfigError:
    return ConfigError(f"{src}: {where}: {msg}")


def _make_slots(entry: dict, n: int, src: str) -> list[Slot]:
    where = f"[[slot]] #{n + 1}" + (f" (index {entry['index']})" if "index" in entry else "")
    unknown = sorted(set(entry) - _OPTIONS)
    if unknown:
        raise _slot_error(src, where, f"unknown option(s) {', '.join(unknown)}")
    if not isinstance(entry.get("index"), int) or isinstance(entry.get("index"), bool):
        raise _slot_error(src, where, "needs an integer `index`")
    count = entry.get("count", 1)
    if not isinstance(count, int) or count < 1:
        raise _slot_error(src, where, f"`count` must be a positive integer, got {count!r}")
    transform = entry.get("transform")
    if transform not in TRANSFORMS:
        raise _slot_error(src, where, f"unknown transform {transform!r} (expected one of {', '.join(TRANSFORMS)})")
    parse = entry.get("parse", "number")
    if parse not in PARSERS:
        raise _slot_error(src, where, f"unknown parse {parse!r} (expected one of {', '.join(PARSERS)})")
    required = {"clip": ("min", "max"), "one_hot": ("equals",), "hash": ("buckets",)}.get(transform, ())
    for r in required:
        if r not in entry:
            raise _slot_error(src, where, f"transform {transform!r} needs `{r}`")
    if transform == "hash" and (not isinstance(entry["buckets"], int) or entry["buckets"] < 1):
        raise _slot_error(src, where, "`buckets` must be a positive integer")
    for k in ("scale", "offset", "mod", "min", "max", "default"):
        if k in entry and (not isinstance(entry[k], (int, float)) or isinstance(entry[k], bool)):
            raise _slot_error(src, where, f"`{k}` must be a number, got {entry[k]!r}")
    if "mod" in entry and entry["mod"] == 0:
        raise _slot_error(src, where, "`mod` must not be 0")
    path = entry.get("path")
    if transform != "zero":
        if not isinstance(path, str) or not path:
            raise _slot_error(src, where, "needs a JSON `path`")
    options = tuple(sorted((k, entry[k]) for k in ("scale", "offset", "mod", "min", "max", "equals", "buckets")
                           if k in entry))
    slots = []
    for i in range(count):
        p = path.replace("{i}", str(i)) if isinstance(path, str) else None
        if p is not None:
            try:
                parse_path(p)
            except ValueError as e:
                raise _slot_error(src, where, str(e)) from None
        slots.append(Slot(entry["index"] + i, p if transform != "zero" else None, transform, options,
                          float(entry.get("default", 0.0)), parse))
    return slots


def spec_from_dict(doc: dict, source: str = "<memory>") -> FeatureSpec:
    """A FeatureSpec from parsed TOML content; errors name `source` and the slot."""
    entries = doc.get("slot")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: no [[slot]] entries")
    slots: dict[int, Slot] = {}
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: [[slot]] #{n + 1}: not a table")
        for s in _make_slots(entry, n, source):
            if not 0 <= s.index < F:
                raise ConfigError(f"{source}: [[slot]] #{n + 1}: slot {s.index} outside 0..{F - 1}")
            if s.index in slots:
                raise ConfigError(f"{source}: [[slot]] #{n + 1}: duplicate slot {s.index}")
            slots[s.index] = s
    if len(slots) != F:
        missing = sorted(set(range(F)) - set(slots))
        shown = ", ".join(map(str, missing[:8])) + (" …" if len(missing) > 8 else "")
        raise ConfigError(f"{source}: slot count is {len(slots)}, expected {F} (missing slots {shown})")
    return FeatureSpec(str(doc.get("name", Path(source).stem)), [slots[i] for i in range(F)], source,
                       str(doc.get("description", "")), _anchors(doc.get("anchor", []), source))


def _anchors(entries: Any, src: str) -> list[list[int]]:
    """[[anchor]] entries → [[x, y, valid…], …] feature indices (count expanded)."""
    if not isinstance(entries, list):
        raise ConfigError(f"{src}: `anchor` must be [[anchor]] tables")
    out: list[list[int]] = []
    for n, e in enumerate(entries):
        where = f"[[anchor]] #{n + 1}"
        if not isinstance(e, dict) or set(e) - {"x", "y", "valid", "count", "note"} or not {"x", "y"} <= set(e):
            raise ConfigError(f"{src}: {where}: needs `x` and `y` and may have `valid`, `count`, `note`")
        valid = e.get("valid", [])
        valid = [valid] if isinstance(valid, int) else valid
        idx = [e["x"], e["y"], *valid] if isinstance(valid, list) else None
        count = e.get("count", 1)
        if idx is None or not all(isinstance(i, int) and not isinstance(i, bool) for i in [*idx, count]) or count < 1:
            raise ConfigError(f"{src}: {where}: x, y, valid and count must be integers")
        for k in range(count):
            row = [i + k for i in idx]
            if not all(0 <= i < F for i in row):
                raise ConfigError(f"{src}: {where}: index outside 0..{F - 1}")
            out.append(row)
    if len({len(r) for r in out}) > 1:
        raise ConfigError(f"{src}: every [[anchor]] needs the same number of `valid` features")
    return out


def load_spec(name_or_path: str | Path) -> FeatureSpec:
    """A shipped spec by name (`osrs`, `empty`, …: `ilbot/data/specs/<name>.toml`) or a TOML file path."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = SPECS_DIR / f"{name_or_path}.toml"
        if not p.exists():
            shipped = sorted(f.stem for f in SPECS_DIR.glob("*.toml"))
            raise ConfigError(f"feature spec {name_or_path!r}: no such shipped spec ({', '.join(shipped)}) or file")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such feature spec file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read feature spec ({e})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML ({e})") from None
    return spec_from_dict(doc, str(p))


def shipped_spec_for_hash(spec_hash: str | None) -> FeatureSpec | None:
    """The shipped spec whose hash is `spec_hash` (a model's), or None."""
    for p in sorted(SPECS_DIR.glob("*.toml")):
        spec = load_spec(p)
        if spec_hash and spec.hash == spec_hash:
            return spec
    return None
