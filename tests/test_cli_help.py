"""`ilbot` alone prints the help (usage and the commands) and exits 0; `--version`; every command,
at every depth, says what it does in its `--help`; plain words for every safety intervention."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ilbot import __version__
from ilbot.cli import build_parser, main, subcommands

EXPECTED = {"import", "build", "stats", "train", "eval", "record", "replay", "play", "sandbox", "app", "bench"}


def test_plain_ilbot_prints_usage_and_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ilbot")
    for name in EXPECTED:
        assert re.search(rf"^\s+{name}\s+\S", out, re.M), name  # each command with its line
    assert "ilbot COMMAND --help" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"ilbot {__version__}"


def test_the_installed_command_too():
    exe = Path(sys.executable).with_name("ilbot")
    if not exe.exists():
        pytest.skip("the ilbot entry point is not installed in this environment")
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage: ilbot" in r.stdout and "play" in r.stdout
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"ilbot {__version__}"


def walk(parser, prefix=()):
    for name, (p, help_text) in subcommands(parser).items():
        yield prefix + (name,), p, help_text
        yield from walk(p, prefix + (name,))


def test_every_command_has_a_description():
    parser = build_parser()
    found = list(walk(parser))
    assert EXPECTED <= {path[0] for path, _, _ in found}
    for path, p, help_text in found:
        assert help_text and help_text.strip(), f"ilbot {' '.join(path)} has no help line"
        assert p.description and len(p.description) > 10, f"ilbot {' '.join(path)} has no description"


@pytest.mark.parametrize("command", ["play", "stats", "build", "train", "eval"])
def test_help_of_a_command_says_what_it_does(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    description = dict((path[0], p.description) for path, p, _ in walk(build_parser()) if len(path) == 1)[command]
    assert description.split()[0] in out.split("\n\n")[1]  # the paragraph after the usage


def test_every_intervention_reason_has_plain_words():
    """Every reason string the safety package can emit (read from its source) has plain words."""
    import ilbot.safety as safety
    from ilbot.safety.reason_names import INTERVENTION_NAMES, describe_intervention

    emitted = set()
    for path in Path(safety.__file__).parent.glob("*.py"):
        text = path.read_text()
        emitted |= set(re.findall(r'_intervene\(\s*"(\w+)"', text))
        emitted |= set(re.findall(r'Intervention\(\s*"(\w+)"', text))
        emitted |= set(re.findall(r'release_all\(reason="(\w+)"', text))
        if path.name == "pipeline.py":
            emitted |= set(re.findall(r'def release_all\(self, reason: str = "(\w+)"', text))
    assert {"time_floor", "key_not_held", "max_hold", "clamped", "stale_release", "release_all"} <= emitted
    missing = sorted(emitted - set(INTERVENTION_NAMES))
    assert not missing, f"no plain words for {missing} (ilbot/safety/reason_names.py)"
    assert describe_intervention("time_floor") == "too soon after the last action"
    assert describe_intervention("key_not_held") == "release of a key not held"
    assert describe_intervention("max_hold") == "held too long: released"
    assert describe_intervention("clamped") == "moved inside the window"
    assert describe_intervention("brand_new_reason") == "brand new reason"


def test_the_command_line_starts_without_torch():
    """`ilbot` imports every command's module to build its parser: none may pull in torch (~1.5 s
    on this machine before a command even starts, eaten out of `play`'s wait for game state)."""
    import subprocess
    import sys

    code = "import sys, ilbot.cli as c; c.build_parser(); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stdout + r.stderr
