"""Teacher forcing on rows grouped by length (ilbot.model.row_groups): the cheapest grouping, and
the same valid-slot outputs, loss and gradients as decoding every row over the batch's longest."""

import itertools

import numpy as np
import pytest
import torch

from ilbot.model import ModelConfig, UnifiedEventModel, row_groups as grouping
from ilbot.model.row_groups import merge_rows, row_groups, row_lengths, take_rows
from ilbot.model.synthetic import synthetic_windows

SMALL = dict(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=2, dropout=0.0)
RICH = dict(SMALL, xy_residual=True, slot_elapsed_input=True, xy_step_input=True, pointer_input=True, recent_events=4,
            time_head="crossing", time_by_type=True, xy_by_type=True, xy_dist="laplace_mix")
ANCHORS = dict(SMALL, xy_residual=True, anchors=[[0, 1, 2], [3, 4, 5]], xy_by_type=True)


def cost(groups, group_cost):
    return sum(len(rows) * L + group_cost for rows, L in groups)


def brute_force(lengths, group_cost, max_groups):
    """The cheapest split of the sorted lengths into ≤ max_groups runs (cut anywhere)."""
    s = np.sort(lengths)
    best = len(s) * s[-1] + group_cost
    for g in range(1, max_groups):
        for cuts in itertools.combinations(range(1, len(s)), g):
            bounds = (0,) + cuts + (len(s),)
            best = min(best, sum((b - a) * s[b - 1] + group_cost for a, b in zip(bounds, bounds[1:])))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_row_groups_cover_every_row_once_at_the_least_cost(seed):
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.geometric(0.3, int(rng.integers(1, 11))), 40)
    group_cost = float(rng.choice([0, 3, 10, 64]))
    groups = row_groups(lengths, group_cost, max_groups=3)
    rows = np.concatenate([r for r, _ in groups])
    assert sorted(rows) == list(range(len(lengths)))  # every row, once
    assert all(L == lengths[r].max() for r, L in groups)  # each group decodes its longest row, no more
    assert cost(groups, group_cost) == pytest.approx(brute_force(lengths, group_cost, 3))
    assert len(groups) <= 3


def test_one_group_when_grouping_does_not_pay():
    assert [L for _, L in row_groups(np.full(64, 7))] == [7]  # every row as long
    assert [L for _, L in row_groups(np.array([1, 2, 3]), group_cost=64)] == [3]  # a pass costs more than it saves
    short_and_long = np.r_[np.ones(60, int), np.full(4, 60)]  # 60 short rows, 4 long: as real recordings
    for group_cost in (64, None):  # None: the default
        assert [(len(r), L) for r, L in row_groups(short_and_long, group_cost)] == [(60, 1), (4, 60)]


def test_row_lengths_count_to_the_last_valid_slot():
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    assert row_lengths(mask).tolist() == [2, 1, 4, 1]


def test_merge_rows_restores_the_row_order_and_pads_with_the_last_slot():
    groups = [(torch.tensor([2, 0]), 1), (torch.tensor([1]), 3)]
    parts = [{"v": torch.tensor([[20.0], [0.0]])}, {"v": torch.tensor([[10.0, 11.0, 12.0]])}]
    assert merge_rows(parts, groups, 3)["v"].tolist() == [[0, 0, 0], [10, 11, 12], [20, 20, 20]]


def test_take_rows_takes_per_row_arrays_of_either_kind():
    rows = torch.tensor([2, 0])
    batch = {"t": torch.arange(3), "n": np.arange(3) * 10, "other": torch.zeros(5), "s": 7}
    got = take_rows(batch, rows, 3)
    assert got["t"].tolist() == [2, 0] and got["n"].tolist() == [20, 0]
    assert got["other"].shape == (5,) and got["s"] == 7


def varied_batch(n, seed):
    """Windows of 0 … 30 target events: several groups."""
    w = synthetic_windows(n, seed=seed, max_events=30)
    return {k: torch.from_numpy(v) for k, v in w.items()}


@pytest.mark.parametrize("name,cfg", [("small", SMALL), ("rich", RICH), ("anchors", ANCHORS)])
def test_grouped_teacher_forcing_gives_the_outputs_loss_and_gradients_of_one_pass(name, cfg, monkeypatch):
    monkeypatch.setattr(grouping, "GROUP_COST", 4)  # cheap passes: three groups in this small batch
    torch.manual_seed(0)
    model = UnifiedEventModel(ModelConfig(**cfg))
    b = varied_batch(24, seed=3)
    mask = b["target_mask"]
    assert len(row_groups(row_lengths(mask))) == 3  # the batch is grouped
    results = {}
    for grouped in (False, True):
        model.group_rows = grouped
        model.zero_grad()
        out = model(b, {"targets": b["targets"], "target_mask": mask})
        out["loss"].backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results[grouped] = (out, grads)
    (one, g_one), (grouped, g_grouped) = results[False], results[True]
    assert grouped["loss"].item() == pytest.approx(one["loss"].item(), rel=1e-5)
    for key, v in one.items():
        if key.startswith("loss"):
            continue
        assert grouped[key].shape == v.shape, key
        assert torch.allclose(grouped[key][mask], v[mask], rtol=1e-4, atol=1e-5), key
        assert torch.isfinite(grouped[key]).all(), key  # padding holds real outputs
    assert g_grouped.keys() == g_one.keys()
    for n, g in g_one.items():
        assert torch.allclose(g_grouped[n], g, rtol=1e-3, atol=1e-6), n
