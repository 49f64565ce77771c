"""Imports only downward, read from the source itself (every `import`, also those inside
functions): no two packages of ilbot import each other, every package-level edge goes down the
layers of DESIGN §7b/§11, the agent's runtime and session replay share nothing but their common
modules, and no module reaches into another package's private names. Plus the "one of each" the
live path relies on: one window type (and one `resolve_window`), one progress reporter, one
mapping from a pynput key to the key vocabulary."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ilbot"

# lower imports nothing higher; the same rank imports nothing of the same rank
LAYERS = {
    "": 0,  # ilbot/__init__.py, errors.py (the package root)
    "data": 1,
    "model": 2, "safety": 2, "sandbox": 2,
    "agent": 3, "training": 3,
    "demo": 4,
    "eval": 5,
    "gui": 6,
    "bench": 7, "cli": 7,
}
ROOT_MODULES = {"errors", "__init__"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = ["ilbot", *p.relative_to(PKG).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in the file."""
    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            names = [a.name for a in node.names]
            for n in names:  # `from .x import y` where y is itself a module
                if f"{mod}.{n}" in MODULES:
                    out.append((f"{mod}.{n}", [], node.lineno))
            out.append((mod, names, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
    return [(m, n, line) for m, n, line in out if m == "ilbot" or m.startswith("ilbot.")]


def _package(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in ROOT_MODULES:
        return ""
    return parts[1]


def _edges() -> dict[tuple[str, str], list[str]]:
    edges = defaultdict(list)
    for name, path in MODULES.items():
        a = _package(name)
        for mod, names, line in _imports(name, path):
            b = _package(mod)
            if mod == "ilbot" and names and all(n.startswith("__") for n in names):
                b = ""  # `from . import __version__`
            if a != b:
                edges[(a, b)].append(f"{path.relative_to(PKG.parent)}:{line} imports {mod}")
    return edges


EDGES = _edges()


def test_every_package_is_in_a_layer():
    packages = {_package(m) for m in MODULES}
    assert packages <= set(LAYERS), packages - set(LAYERS)


def test_no_two_packages_import_each_other():
    both = sorted({tuple(sorted(e)) for e in EDGES if (e[1], e[0]) in EDGES})
    assert both == [], [(p, EDGES[p][:2], EDGES[p[::-1]][:2]) for p in both]


def test_every_import_goes_down_the_layers():
    up = {e: where for e, where in EDGES.items() if LAYERS[e[0]] <= LAYERS[e[1]]}
    assert up == {}, up


@pytest.mark.parametrize("lower, higher", [("sandbox", "agent"), ("model", "eval"), ("gui", "bench"),
                                           ("safety", "agent")])
def test_the_pairs_the_issue_found_run_one_way(lower, higher):
    assert (lower, higher) not in EDGES, EDGES[(lower, higher)]


def test_runtime_and_replay_import_neither_each_other_nor_private_names():
    for a, b in (("runtime", "replay"), ("replay", "runtime")):
        name = f"ilbot.agent.{a}"
        assert not [m for m, _, _ in _imports(name, MODULES[name]) if m == f"ilbot.agent.{b}"], (a, b)
    private = []
    for name, path in MODULES.items():
        for mod, names, line in _imports(name, path):
            if _package(mod) != _package(name) or mod in ("ilbot.agent.runtime", "ilbot.agent.replay"):
                private += [f"{path.name}:{line} {mod}.{n}" for n in names
                            if n.startswith("_") and not n.startswith("__") and mod != name]
    assert private == [], private


def _defs(kind, pred) -> list[str]:
    out = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, kind) and pred(node.name):
                out.append(f"{name}.{node.name}")
    return sorted(out)


def test_one_window_type_and_one_resolve_window():
    assert _defs((ast.FunctionDef,), lambda n: n.lstrip("_") == "resolve_window") == [
        "ilbot.agent.window.resolve_window"]
    assert _defs((ast.ClassDef,), lambda n: n.endswith(("Geometry", "Region", "Rect"))) == [
        "ilbot.agent.window.WindowGeometry"]
    from ilbot.agent.window import WindowGeometry, resolve_window

    for spec in ("10,20,300,200", (10, 20, 300, 200), {"x": 10, "y": 20, "width": 300, "height": 200},
                 WindowGeometry(10, 20, 300, 200)):
        g = resolve_window(spec)
        assert type(g) is WindowGeometry and (g.x, g.y, g.width, g.height) == (10, 20, 300, 200)


def test_one_progress_reporter():
    assert _defs((ast.ClassDef,), lambda n: "progress" in n.lower()) == ["ilbot.data.progress.Progress"]


def test_one_pynput_key_mapping():
    """Only ilbot.data.keys maps a pynput key object to the vocabulary; every module that listens
    to the keyboard with pynput (recorder, kill switch, human input, guardian) takes it from there."""
    mappers = _defs((ast.FunctionDef,), lambda n: n.startswith("pynput_key_") or n.lstrip("_") in ("key_of", "map_key"))
    assert mappers == ["ilbot.data.keys.pynput_key_id", "ilbot.data.keys.pynput_key_name"], mappers
    listening = [name for name, path in MODULES.items() if "keyboard.Listener(" in path.read_text(encoding="utf-8")]
    assert {"ilbot.agent.recorder", "ilbot.agent.human_input", "ilbot.safety.killswitch"} <= set(listening)
    for name in listening:
        taken = {n for mod, names, _ in _imports(name, MODULES[name]) for n in names
                 if mod in ("ilbot.data.keys", "ilbot.safety.killswitch")}
        assert taken & {"pynput_key_name", "pynput_key_id", "pressed_name"}, name
