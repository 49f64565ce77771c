"""The sandbox feature spec: published JSON → 128 finite features, in fixed slots."""

import json

import numpy as np
import pytest

from ilbot.cli import main as cli_main
from ilbot.data.featurespec import load_spec
from ilbot.sandbox.logic import GameConfig, SandboxGame
from ilbot.sandbox.publish import JsonDirPublisher


@pytest.fixture(scope="module")
def spec():
    return load_spec("sandbox")


def test_published_files_parse_and_map_to_128_finite_features(spec, tmp_path):
    game = SandboxGame(GameConfig(seed=13, gather_ticks=1, resource_min=1, resource_max=1))
    pub = JsonDirPublisher(tmp_path, keep=100)
    pub.publish(game.state())
    for t in range(60):  # depletions, respawns, a full inventory, zooms
        nodes = game.nodes()
        if nodes:
            n = nodes[t % len(nodes)]
            game.click(*game.to_window(n.wx, n.wy))
        if t % 7 == 0:
            game.scroll(1 if t % 14 else -3)
        game.tick()
        pub.publish(game.state())
    files = sorted(tmp_path.glob("tick_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    assert len(files) == 61
    feats = np.stack([spec.features(f.read_text()) for f in files])  # [61, 128]
    assert feats.shape == (61, 128) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert np.abs(feats).max() <= 2.0
    assert feats.std(axis=0).sum() > 5  # the features move with the game


def test_slots_mean_what_the_doc_says(spec):
    game = SandboxGame(GameConfig(seed=14))
    game.move(100, 100)
    n0 = game.slots[0].node
    x, y = game.to_window(n0.wx, n0.wy)
    game.click(x, y)
    st = game.state()
    f = spec.features(st)
    assert f[0] == 1 and f[6] == 1 and f[5] == 0  # gathering slot 0
    assert f[14] == pytest.approx(x / 800, abs=1e-3) and f[15] == pytest.approx(y / 600, abs=1e-3)  # cursor
    assert f[20:25].tolist() == [1] * 5 and f[30] == pytest.approx(x / 800, abs=1e-3)
    assert f[35] == pytest.approx(y / 600, abs=1e-3)
    assert f[40] == pytest.approx(0, abs=1e-3)  # cursor on node 0: dx 0
    assert f[80:108].sum() == 0
    near = st["nearest"][0]
    assert near["slot"] == 0 and f[108] == pytest.approx(near["x"] / 800, abs=1e-3) and f[123] == pytest.approx(0.2)
    game.inventory[3].update(id=436, quantity=1)
    game.scroll(1)
    f = spec.features(game.state())
    assert f[83] == 1 and f[80] == 0 and f[13] == pytest.approx(0.1, abs=1e-4)
    game.slots[1].node, game.slots[1].respawn_in = None, 4
    f = spec.features(game.state())
    assert f[21] == 0 and f[31] == 0 and f[51] == 1.0 and f[76] == pytest.approx(0.4)


def test_sandbox_command_runs_ticks_publishes_and_serves(own_display, qapp, tmp_path, capsys):
    state = tmp_path / "state"
    assert cli_main(["sandbox", "--state-dir", str(state), "--ticks", "3", "--tick-ms", "40", "--http-port", "0",
                     "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "serving state on http://127.0.0.1:" in out and "3 ticks" in out
    doc = json.loads((state / "tick_3.json").read_text())
    assert doc["tick"] == 3 and doc["game"] == "ilbot-sandbox"
    assert cli_main(["sandbox", "--state-dir", str(state), "--ticks", "0"]) == 2
    assert cli_main(["sandbox", "--state-dir", str(state), "--tick-ms", "-5"]) == 2
