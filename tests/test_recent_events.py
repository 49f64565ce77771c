"""recent_events (ilbot.model.recent): the last history events in time order, the per-event
features, and that each slot reads exactly the K events before it."""

import numpy as np
import pytest
import torch

from ilbot.data.schema import H, EventType
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.recent import FEATURES, last_history_rows, recent_features
from ilbot.model.synthetic import synthetic_windows


def _history():
    h = torch.zeros(2, 3, 4, 8)
    m = torch.zeros(2, 3, 4, dtype=torch.bool)
    for k, (t, s, x) in enumerate([(0, 3, 0.1), (1, 0, 0.2), (1, 2, 0.3), (2, 1, 0.4)]):  # row 0: 4 events, in order
        h[0, t, s, [H["dt_ms"], H["x"], H["y"], H["type"]]] = torch.tensor([10.0 * (k + 1), x, 0.5, float(EventType.MOVE)])
        m[0, t, s] = True
    h[0, 2, 3, H["x"]] = 0.9  # padding after the last event: never read
    return h, m  # row 1: no event at all


def test_last_history_rows_are_the_latest_valid_events_oldest_first():
    h, m = _history()
    rows, valid = last_history_rows(h, m, 3)
    assert valid.tolist() == [[True, True, True], [False, False, False]]
    assert torch.allclose(rows[0, :, 1], torch.tensor([0.2, 0.3, 0.4]))  # x of the last three
    assert torch.allclose(rows[0, :, 0], torch.tensor([20.0, 30.0, 40.0]))
    rows, valid = last_history_rows(h, m, 6)  # more asked than there are: right-aligned, the rest invalid
    assert valid[0].tolist() == [False, False, True, True, True, True]
    assert torch.allclose(rows[0, 2:, 1], torch.tensor([0.1, 0.2, 0.3, 0.4])) and not rows[0, :2].any()


def test_features_of_an_event_and_of_an_absent_one():
    rows = np.array([[[5.0, 0.5, 0.5, 3], [20.0, 0.51, 0.5, 0], [0.0, 0.0, 0.0, 0]]], np.float32)  # [1,3,4]
    valid = np.array([[True, True, False]])
    f = recent_features(rows, valid, 5.0)  # [1,2,FEATURES]
    assert f.shape == (1, 2, FEATURES)
    assert f[0, 0, 0] == 1 and f[0, 0, 1] == 1 and f[0, 0, 1:5].sum() == 1  # valid, CLICK
    assert np.isclose(f[0, 0, 5], np.log1p(20.0) / 5.0) and np.isclose(f[0, 0, 6], 0.1, atol=1e-5)
    assert not f[0, 1].any()  # absent: all zero
    t = recent_features(torch.from_numpy(rows), torch.from_numpy(valid), 5.0)
    assert np.allclose(t.numpy(), f)  # numpy and torch agree


def test_no_slot_reads_its_own_event_or_a_later_one():
    torch.manual_seed(0)
    model = UnifiedEventModel(ModelConfig(d_model=32, n_heads=4, recent_events=4, dropout=0.0)).eval()
    with torch.no_grad():
        model.recent.proj.weight.normal_()
    b = {k: torch.from_numpy(v) for k, v in synthetic_windows(2, seed=3, max_events=20).items()}
    b["target_mask"][:] = True
    with torch.no_grad():
        base = model(b)["event_logits"]
        b2 = dict(b, targets=b["targets"].clone())
        b2["targets"][:, 5, 0] += 300.0  # event 5's gap: slots 6…9 read it as a recent event; slots ≤ 5 cannot
        moved = model(b2)["event_logits"]
    changed = (moved - base).abs().amax(-1) > 1e-6  # [B,A]
    assert not changed[:, :6].any() and changed[:, 6].all()


def test_recent_events_is_validated():
    with pytest.raises(ValueError, match="recent_events"):
        ModelConfig(recent_events=-1)
