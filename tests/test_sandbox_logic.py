"""The sandbox game's rules (ilbot/sandbox/logic.py): pure, deterministic, no Qt."""

import json

import pytest

from ilbot.sandbox.logic import EMPTY_ITEM, IDLE_ANIMATION, INVENTORY_SLOTS, KINDS, GameConfig, SandboxGame


def _node_xy(game, node):
    return game.to_window(node.wx, node.wy)


def _first_node(game):
    return next(s.node for s in game.slots if s.node is not None)


def test_click_on_node_gathers_for_k_ticks_then_gives_one_item():
    game = SandboxGame(GameConfig(seed=1, gather_ticks=3))
    node = _first_node(game)
    remaining = node.remaining
    assert game.click(*_node_xy(game, node))
    st = game.state()
    assert st["player"]["gathering"] and st["player"]["animation"] == KINDS[node.kind][1]
    assert st["player"]["target_slot"] == 0
    for _ in range(2):
        game.tick()
        assert game.inventory_count() == 0 and game.player.target == node.id
    game.tick()  # the third tick completes the gather
    assert game.inventory_count() == 1 and game.score == 1
    assert game.inventory[0] == {"id": KINDS[node.kind][0], "quantity": 1}
    assert game.player.animation == IDLE_ANIMATION and game.state()["player"]["state"] == "idle"
    assert node.remaining == remaining - 1


def test_click_on_empty_ground_or_right_click_does_nothing():
    game = SandboxGame(GameConfig(seed=2))
    assert not game.click(5, 5)  # a corner: nodes spawn away from the edges
    assert game.misclicks == 1 and game.player.target is None
    node = _first_node(game)
    assert not game.click(*_node_xy(game, node), button=2)
    assert game.player.target is None
    assert not game.click(700, 300)  # the inventory panel is not the world
    assert game.mouse == (700.0, 300.0)


def test_depleted_node_respawns_elsewhere_after_its_delay():
    game = SandboxGame(GameConfig(seed=3, respawn_min=2, respawn_max=2))
    node = _first_node(game)
    node.remaining = 1
    game.click(*_node_xy(game, node))
    for _ in range(game.cfg.gather_ticks):
        game.tick()
    assert game.slots[0].node is None and game.state()["nodes"][0]["active"] is False
    game.tick()
    assert game.slots[0].node is None
    game.tick()
    new = game.slots[0].node
    assert new is not None and new.id != node.id and (new.wx, new.wy) != (node.wx, node.wy)


def test_full_inventory_stops_gathering_and_empty_key_banks():
    game = SandboxGame(GameConfig(seed=4, gather_ticks=1, resource_min=100, resource_max=100))
    node = _first_node(game)
    xy = _node_xy(game, node)
    for _ in range(INVENTORY_SLOTS):
        assert game.click(*xy)
        game.tick()
    assert game.inventory_full() and game.state()["inventory_full"]
    assert not game.click(*xy)  # refused: full
    assert game.player.target is None and game.misclicks == 1
    game.tick()
    assert game.score == INVENTORY_SLOTS
    assert not game.key("e")  # not the empty key
    assert game.key("space")
    assert game.inventory_count() == 0 and game.banked == INVENTORY_SLOTS
    assert all(s == {"id": EMPTY_ITEM, "quantity": 0} for s in game.state()["inventory"])
    assert not game.key("space")  # nothing left to bank
    assert game.click(*xy)


def test_gather_completing_into_a_full_inventory_is_lost():
    game = SandboxGame(GameConfig(seed=5, gather_ticks=2, resource_min=50, resource_max=50))
    node = _first_node(game)
    game.click(*_node_xy(game, node))
    for s in game.inventory:
        s["id"], s["quantity"] = 1, 1
    game.tick()
    game.tick()
    assert game.lost == 1 and game.score == 0


def test_zoom_scales_positions_about_the_view_centre_and_clamps():
    game = SandboxGame(GameConfig(seed=6))
    c = game.centre
    before = {n["slot"]: (n["x"], n["y"]) for n in game.state()["nodes"]}
    game.scroll(+2)
    assert game.zoom == pytest.approx(1.21)
    st = game.state()
    for n in st["nodes"]:
        x0, y0 = before[n["slot"]]
        assert n["x"] == pytest.approx(c + (x0 - c) * 1.21, abs=0.02)
        assert n["y"] == pytest.approx(c + (y0 - c) * 1.21, abs=0.02)
        assert n["radius"] == pytest.approx(game.cfg.node_radius * 1.21, abs=0.01)
    game.scroll(-100)
    assert game.zoom == game.cfg.zoom_min
    game.scroll(+100)
    assert game.zoom == game.cfg.zoom_max
    assert st["zoom"] == pytest.approx(1.21)


def test_zoomed_out_of_view_node_is_not_visible_nor_clickable():
    game = SandboxGame(GameConfig(seed=7))
    game.scroll(+100)  # zoom 2: only nodes near the centre stay in view
    hidden = [n for n in game.nodes() if not game.visible(n)]
    assert hidden, "at zoom 2 some node leaves the view"
    n = hidden[0]
    assert not game.click(*game.to_window(n.wx, n.wy))
    st = game.state()
    assert any(not d["visible"] for d in st["nodes"] if d["active"])


def test_switching_target_restarts_and_same_target_keeps_progress():
    game = SandboxGame(GameConfig(seed=8, gather_ticks=3))
    a, b = game.nodes()[:2]
    game.click(*_node_xy(game, a))
    game.tick()
    assert game.player.ticks_left == 2
    game.click(*_node_xy(game, a))
    assert game.player.ticks_left == 2
    game.click(*_node_xy(game, b))
    assert game.player.target == b.id and game.player.ticks_left == 3


def test_same_seed_same_inputs_same_states_and_json_serialisable():
    def run(seed):
        game = SandboxGame(GameConfig(seed=seed, gather_ticks=1, resource_min=1, resource_max=1))
        docs = []
        for t in range(40):
            nodes = game.nodes()
            if nodes:
                game.click(*_node_xy(game, nodes[t % len(nodes)]))
            game.tick()
            if t % 10 == 9:
                game.key("space")
            docs.append(json.dumps(game.state(), sort_keys=True))
        return docs
    assert run(11) == run(11)
    assert run(11) != run(12)


def test_state_document_fields():
    st = SandboxGame(GameConfig(seed=9, n_nodes=4)).state()
    assert st["tick"] == 0 and len(st["inventory"]) == INVENTORY_SLOTS and len(st["nodes"]) == 4
    assert [n["slot"] for n in st["nodes"]] == [0, 1, 2, 3]
    assert st["window"] == {"width": 800, "height": 600, "view_size": 600}
    for n in st["nodes"]:
        assert 0 <= n["x"] < 600 and 0 <= n["y"] < 600 and n["visible"] and n["remaining"] >= 2


def test_view_must_fit():
    with pytest.raises(ValueError):
        SandboxGame(GameConfig(width=400, view_size=600))
