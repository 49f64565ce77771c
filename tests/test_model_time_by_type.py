"""ModelConfig.time_by_type: the time quantiles conditioned on the slot's event type."""

import json

import numpy as np
import pytest
import torch

from ilbot.data.schema import EventType
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.checkpoint import load_checkpoint, save_checkpoint
from ilbot.model.incremental import IncrementalDecoder
from ilbot.model.planner import Planner
from ilbot.model.synthetic import synthetic_windows

from model_fit_helpers import fit  # tests/

TIME_KEYS = ("time_q", "time_q_log")
CROSSING_KEYS = TIME_KEYS + ("time_q_la", "time_q_la_log")


def _model(time_head="crossing", time_by_type=True, seed=0):
    torch.manual_seed(seed)
    model = UnifiedEventModel(ModelConfig(d_model=32, n_heads=4, n_decoder_layers=2, time_head=time_head,
                                          time_by_type=time_by_type)).eval()
    if time_by_type:
        with torch.no_grad():  # the type terms away from their zero start
            for p in model.time_by_type.parameters():
                p.add_(0.3 * torch.randn_like(p))
    return model


def _batch(B=2):
    return synthetic_windows(B, seed=5, max_events=12)


def _tf(model, b):
    with torch.no_grad():
        return model({k: torch.from_numpy(v) for k, v in b.items()})


@pytest.mark.parametrize("time_head", ["quantiles", "crossing"])
def test_option_adds_only_its_tensors_and_starts_exactly_as_without_it(time_head):
    assert ModelConfig().time_by_type is False
    torch.manual_seed(0)
    off = UnifiedEventModel(ModelConfig(d_model=32, n_heads=4, time_head=time_head)).eval()
    torch.manual_seed(0)
    on = UnifiedEventModel(ModelConfig(d_model=32, n_heads=4, time_head=time_head, time_by_type=True)).eval()
    assert set(on.state_dict()) - set(off.state_dict()) == {"time_by_type.weight", "time_by_type.bias"}
    n_q = 6 if time_head == "crossing" else 3  # the quantile outputs; never the crossing logit
    assert tuple(on.time_by_type.weight.shape) == (4, n_q, 32)
    on.load_state_dict(off.state_dict(), strict=False)
    b = _batch()
    a, c = _tf(off, b), _tf(on, b)
    for k in ("event_logits", "x_mu") + (CROSSING_KEYS + ("cross_logit",) if time_head == "crossing" else TIME_KEYS):
        assert torch.equal(a[k], c[k]), k
    ctx = {k: b[k] for k in ("gamestate", "history", "history_mask")}
    s_off, s_on = (Planner(m, seed=3).sample_slots(ctx) for m in (off, on))
    for k in ("type", "performed", "dt_ms", "q50"):
        assert np.allclose(s_off[k], s_on[k], rtol=1e-5), k


def test_teacher_forcing_conditions_each_slot_time_on_its_own_type_and_not_the_crossing():
    """Turning slot i's target from a MOVE into a CLICK changes slot i's quantiles (both sets) with
    the option, not its crossing logit nor any earlier slot; without it slot i does not change."""
    b = _batch()
    row = 0
    i = int(np.nonzero((b["targets"][row, :, 3] == 0) & (b["targets"][row, :, 4] == 0)
                       & (b["targets"][row, :, 6] == 0) & b["target_mask"][row])[0][0])  # a MOVE slot
    clicked = {k: v.copy() for k, v in b.items()}
    clicked["targets"][row, i, 3] = 1.0  # button 1: a CLICK
    for model, typed in ((_model(), True), (_model(time_by_type=False), False)):
        a, c = _tf(model, b), _tf(model, clicked)
        for k in CROSSING_KEYS + ("cross_logit",):
            assert torch.equal(a[k][:, :i], c[k][:, :i]), k  # earlier slots: causal
        assert torch.equal(a["cross_logit"][row, i], c["cross_logit"][row, i])
        for k in CROSSING_KEYS:
            assert (not torch.equal(a[k][row, i], c[k][row, i])) == typed, (k, typed)


def test_the_numpy_time_quantiles_need_the_type():
    model = _model()
    dec = IncrementalDecoder(model)
    hn = np.random.default_rng(0).standard_normal((3, 32)).astype(np.float32)
    first = dec.core(hn)
    assert set(first) == {"event_logits", "cross_logit", "x_mu", "x_logsig", "y_mu", "y_logsig"}
    etype = np.array([int(EventType.CLICK), int(EventType.MOVE), int(EventType.SCROLL)])
    timed = dec.timing(hn, etype)
    assert set(timed) == set(CROSSING_KEYS)
    every = {t: dec.timing(hn, np.full(3, t)) for t in range(4)}  # each row its own type's block
    for r, t in enumerate(etype):
        assert all(np.array_equal(timed[k][r], every[t][k][r]) for k in timed)
    assert not np.allclose(every[int(EventType.CLICK)]["time_q"], every[int(EventType.MOVE)]["time_q"])
    with pytest.raises(ValueError, match="no time_by_type"):
        IncrementalDecoder(_model(time_by_type=False)).timing(hn, etype)


def test_checkpoints_keep_the_option_and_older_configs_load_without_it(tmp_path):
    model = _model()
    vocab = [f"k{i}" for i in range(model.cfg.key_vocab_size)]
    ck = load_checkpoint(save_checkpoint(tmp_path / "on", model, spec_hash="h", key_vocab=vocab, stats={}))
    assert ck.config.time_by_type and ck.model.time_by_type is not None
    ctx = {k: v for k, v in _batch().items() if k in ("gamestate", "history", "history_mask")}
    a, c = (Planner(m, seed=2).sample_slots(ctx) for m in (model, ck.model))
    assert all(np.array_equal(a[k], c[k]) for k in ("type", "dt_ms", "q50"))
    d = save_checkpoint(tmp_path / "old", _model(time_by_type=False), spec_hash="h", key_vocab=vocab, stats={})
    meta = json.loads((d / "config.json").read_text())
    del meta["model_config"]["time_by_type"]  # a checkpoint written before the option
    (d / "config.json").write_text(json.dumps(meta))
    old = load_checkpoint(d)
    assert old.config.time_by_type is False and old.model.time_by_type is None


# ---- a task where the type decides the gap: a CLICK 2 ms after the last event, a MOVE 150 ms ----

N_TICKS, N_SLOTS, N_FEATURES = 2, 2, 1
CLICK_MS, MOVE_MS = 2.0, 150.0


def _task(n: int, rng: np.random.Generator) -> dict:
    """n windows of one event each, a CLICK (half the windows) CLICK_MS after the history's last
    event or a MOVE MOVE_MS after it; nothing in the state tells which."""
    click = rng.random(n) < 0.5
    b = {"gamestate": np.zeros((n, N_TICKS, N_FEATURES), np.float32),
         "history": np.zeros((n, N_TICKS, N_SLOTS, 8), np.float32),
         "history_mask": np.zeros((n, N_TICKS, N_SLOTS), bool),
         "targets": np.zeros((n, N_SLOTS, 7), np.float32), "target_mask": np.zeros((n, N_SLOTS), bool)}
    b["history"][:, -1, 0, :4] = [30.0, 0.5, 0.5, 3.0]
    b["history_mask"][:, -1, 0] = True
    b["targets"][:, 0, 0] = np.where(click, CLICK_MS, MOVE_MS)
    b["targets"][:, 0, 1:3] = 0.5
    b["targets"][:, 0, 3] = np.where(click, 1.0, 0.0)  # button 1: a CLICK
    b["target_mask"][:, 0] = True
    return b


def _trained(time_by_type: bool):
    return fit(ModelConfig(n_ticks=N_TICKS, n_slots=N_SLOTS, n_features=N_FEATURES, d_model=32, n_heads=4, ff_mult=2,
                           n_context_layers=1, n_decoder_layers=1, dropout=0.0, time_by_type=time_by_type), _task)


def _planned_gaps(model, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """The planner's first events on fresh windows: (the CLICKs', the MOVEs') gaps, ms."""
    b = _task(n, np.random.default_rng(99))
    s = Planner(model, seed=1).sample_slots({k: b[k] for k in ("gamestate", "history", "history_mask")})
    t, dt = s["type"][:, 0], s["dt_ms"][:, 0]
    return dt[t == int(EventType.CLICK)], dt[t == int(EventType.MOVE)]


def test_a_planned_click_takes_the_click_gap_only_with_the_option():
    """Whether a CLICK or a MOVE comes next is a coin toss the state cannot call, and the CLICK
    comes at once: one set of quantiles for both types times the planner's CLICKs like MOVEs;
    conditioned on the drawn type, each type takes its own gap."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        on, off = _trained(True), _trained(False)
        clicks_on, moves_on = _planned_gaps(on)
        clicks_off, moves_off = _planned_gaps(off)
        b = {k: torch.from_numpy(v) for k, v in _task(200, np.random.default_rng(7)).items()}
        with torch.no_grad():
            q50 = on(b)["time_q"][:, 0, 1].numpy()  # teacher forced: each slot's median given its type
    finally:
        torch.set_num_threads(prev)
    click = b["targets"][:, 0, 3].numpy() == 1
    assert len(clicks_on) > 100 and len(moves_on) > 100 and len(clicks_off) > 100
    assert np.median(q50[click]) < 20 and np.median(q50[~click]) > 100
    # measured: on — CLICK median 2.0 ms, all under 20; MOVE median 140, none under 20;
    # off — 54 % of the CLICKs and 60 % of the MOVEs under 20 ms
    assert np.mean(clicks_on < 20) > 0.9 and np.mean(moves_on < 20) < 0.1
    # without the option both types draw from one mixture: as many MOVEs as CLICKs come at a click's gap
    assert 0.25 < np.mean(clicks_off < 20) < 0.75 and abs(np.mean(clicks_off < 20) - np.mean(moves_off < 20)) < 0.2
