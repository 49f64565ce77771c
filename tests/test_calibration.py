"""Post-hoc calibration (ilbot.model.calibration, ilbot.eval.calibrate) on synthetic outputs: the
fits recover what they should and hit their targets on the fitting data and on fresh draws;
apply_calibration is exact for the identity, the same in numpy and torch, and per slot kind; the
planner applies it (bit-identical plans with the identity) as the evaluator does; checkpoints
store it, round-trip it and refuse a damaged one in one line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ilbot.data.keys import KEY_VOCAB
from ilbot.data.schema import EventType
from ilbot.errors import CheckpointError
from ilbot.eval.calibrate import (KEEP_LEAD, ONE_SIGMA, calibrated_prediction, choose_decision_offset, coverage_scale,
                                  fit_calibration, fit_event_scaling, quantile_scales, rival_accuracy)
from ilbot.eval.metrics import Prediction, compute_metrics, event_metrics
from ilbot.eval.report import model_prediction
from ilbot.eval.slots import Slots
from ilbot.model import ModelConfig, UnifiedEventModel, load_checkpoint, save_checkpoint
from ilbot.model.calibration import Calibration, apply_calibration
from ilbot.model.checkpoint import write_calibration
from ilbot.model.planner import SLOT_FIELDS, Planner
from ilbot.model.synthetic import synthetic_windows

STATS = {"feature_mean": [0.0] * 128, "feature_std": [1.0] * 128, "tick_ms": 600.0}
CAL = Calibration(event_temperature=1.7, event_bias=(0.4, -1.0, 0.2, 0.4), decision_offset=(0.5, -1.0, 0.3, 0.0),
                  decision_rule="macro_f1", sigma_scale={"in_window": (0.8, 0.7), "lookahead": (1.3, 1.5)},
                  time_scale={"in_window": (0.6, 1.4), "lookahead": (2.0, 0.5), "all": (0.9, 1.1)}, fit={"split": "val"})


# ---- the fits ---------------------------------------------------------------------------------

def _sample_types(rng, logits):
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return (p.cumsum(1) < rng.random((len(p), 1))).sum(1).clip(0, 3)


def test_temperature_and_prior_fit_recover_known_values():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (60_000, 4))  # the model's (overconfident) logits
    t0, b0 = 2.0, np.array([-1.5, 0.0, -0.5, 1.2])
    y = _sample_types(rng, z / t0 + b0)
    t, b = fit_event_scaling(z, y)
    assert t == pytest.approx(t0, rel=0.03)
    assert b == pytest.approx(b0 - b0.mean(), abs=0.06)  # a common shift is invisible to softmax
    # already calibrated logits: T = 1, b = 0
    y1 = _sample_types(rng, z)
    t1, b1 = fit_event_scaling(z, y1)
    assert t1 == pytest.approx(1.0, rel=0.03) and np.abs(b1).max() < 0.05


def test_decision_rule_keeps_accuracy_and_raises_macro_f1():
    rng = np.random.default_rng(1)
    n = 40_000
    y = rng.choice(4, n, p=[0.04, 0.0, 0.03, 0.93])  # rare CLICK and SCROLL, no KEY (mouse data)
    signal = np.eye(4)[y] * rng.normal(1.2, 1.0, (n, 1))  # weak evidence for the true type
    logp = np.log(np.array([0.04, 1e-4, 0.03, 0.93])) + signal + rng.normal(0, 0.5, (n, 4))
    d0 = event_metrics(y, logp.argmax(1))
    d, chosen = choose_decision_offset(logp, y, "macro_f1")
    m = event_metrics(y, (logp + d).argmax(1))
    assert m["event_accuracy"] >= d0["event_accuracy"] - 1e-12 and m["event_accuracy"] == pytest.approx(chosen["accuracy"])
    assert m["event_macro_f1"] > d0["event_macro_f1"] + 0.01 and m["event_macro_f1"] == pytest.approx(chosen["macro_f1"])
    # some slack buys more macro-F1, never more than the slack in accuracy
    d2, _ = choose_decision_offset(logp, y, "macro_f1", accuracy_slack=0.01)
    m2 = event_metrics(y, (logp + d2).argmax(1))
    assert m2["event_macro_f1"] >= m["event_macro_f1"] and m2["event_accuracy"] >= d0["event_accuracy"] - 0.01 - 1e-12
    assert not choose_decision_offset(logp, y, "accuracy")[0].any()


def test_decision_rule_spends_part_of_the_lead_over_the_rival_never_all():
    rng = np.random.default_rng(2)
    n = 40_000
    y = rng.choice(4, n, p=[0.04, 0.0, 0.03, 0.93])
    signal = np.eye(4)[y] * rng.normal(1.2, 1.0, (n, 1))
    logp = np.log(np.array([0.04, 1e-4, 0.03, 0.93])) + signal + rng.normal(0, 0.5, (n, 4))
    acc0 = event_metrics(y, logp.argmax(1))["event_accuracy"]
    rival = acc0 - 0.02  # a baseline two points behind
    kept = choose_decision_offset(logp, y, "macro_f1")[1]
    for keep in (0.5, 0.0):
        d, chosen = choose_decision_offset(logp, y, "macro_f1", rival_accuracy=rival, keep_lead=keep)
        m = event_metrics(y, (logp + d).argmax(1))
        assert chosen["accuracy_floor"] == pytest.approx(rival + keep * 0.02)
        assert m["event_accuracy"] >= rival + keep * 0.02 - 1e-12  # the floor holds …
        assert m["event_macro_f1"] > kept["macro_f1"]  # … and the spent accuracy bought macro-F1
    # keep_lead 1, or a rival ahead of the model: the argmax's accuracy is the floor
    assert choose_decision_offset(logp, y, "macro_f1", rival_accuracy=rival, keep_lead=1.0)[1]["accuracy_floor"] == pytest.approx(acc0)
    assert choose_decision_offset(logp, y, "macro_f1", rival_accuracy=acc0 + 0.01)[1]["accuracy_floor"] == pytest.approx(acc0)


def _heavy_positions(rng, n):
    """Laplace residuals with σ the Laplace's std: 1σ covers ~76 %, not 68.3 %."""
    sigma = rng.uniform(0.01, 0.05, n)
    return rng.laplace(0, sigma / math.sqrt(2)), sigma


def _skewed_times(rng, n):
    """Quantiles in log1p(ms) that are too wide below and too narrow above the median."""
    l50 = rng.uniform(2, 6, n)
    ly = l50 + rng.normal(0, 0.5, n) + 0.3 * rng.exponential(1.0, n)
    q = np.expm1(np.stack([l50 - 1.2, l50, l50 + 0.3], 1))
    return np.expm1(ly), q


def _coverage_x(res, sigma):
    return np.mean(np.abs(res) <= sigma)


def _coverage_t(dt, q):
    return np.mean((dt >= q[:, 0]) & (dt <= q[:, 2]))


def test_position_and_time_scales_hit_their_targets_on_fit_and_fresh_data():
    rng = np.random.default_rng(2)
    res, sigma = _heavy_positions(rng, 20_000)
    dt, q = _skewed_times(rng, 20_000)
    assert abs(_coverage_x(res, sigma) - ONE_SIGMA) > 0.05 and abs(_coverage_t(dt, q) - 0.8) > 0.05  # miscalibrated
    s = coverage_scale(res, sigma)
    s10, s90 = quantile_scales(dt, q)
    cal = Calibration(sigma_scale={"in_window": (s, s), "lookahead": (1.0, 1.0)},
                      time_scale={"in_window": (1.0, 1.0), "lookahead": (1.0, 1.0), "all": (s10, s90)})

    def calibrated(res, sigma, dt, q):  # slots of unknown kind: σ in-window, times "all"
        out = apply_calibration({"x_logsig": np.log(sigma), "time_q": q}, cal)
        return _coverage_x(res, np.exp(out["x_logsig"])), _coverage_t(dt, out["time_q"]), out["time_q"]

    cx, ct, q_cal = calibrated(res, sigma, dt, q)
    assert cx == pytest.approx(ONE_SIGMA, abs=0.01) and ct == pytest.approx(0.8, abs=0.01)
    assert np.mean(dt < q_cal[:, 0]) == pytest.approx(0.1, abs=0.01)  # 10 % on each side
    assert np.array_equal(q_cal[:, 1], q[:, 1])  # q50 unchanged
    res2, sigma2 = _heavy_positions(rng, 20_000)  # fresh draws from the same distributions
    dt2, q2 = _skewed_times(rng, 20_000)
    cx2, ct2, _ = calibrated(res2, sigma2, dt2, q2)
    assert cx2 == pytest.approx(ONE_SIGMA, abs=0.03) and ct2 == pytest.approx(0.8, abs=0.03)


def _slots(rng, n):
    """Flat slots with the fields fit_calibration and the metrics read; every 3rd slot a look-ahead."""
    la = np.arange(n) % 3 == 2
    z = np.zeros(n)
    i = np.arange(n)
    return Slots(type=rng.choice(4, n, p=[0.1, 0.0, 0.05, 0.85]), dt=np.zeros(n), x=np.full(n, 0.5), y=np.full(n, 0.5),
                 w=np.full(n, 800.0), h=np.full(n, 600.0), button=z.astype(np.int64), key_action=z.astype(np.int64),
                 key_id=z.astype(np.int64), scroll=z.astype(np.int64), lookahead=la, slot=i, window=i,
                 user=np.zeros(n, np.int64), prev_type=np.full(n, 3), prev_x=z + 0.5, prev_y=z + 0.5)


def test_fit_calibration_per_slot_kind_end_to_end():
    rng = np.random.default_rng(3)
    n = 30_000
    s = _slots(rng, n)
    la = s.lookahead
    res, sigma = _heavy_positions(rng, n)
    sigma = np.where(la, sigma * 0.5, sigma * 2.0)  # look-ahead σ too narrow, in-window too wide
    dt, q = _skewed_times(rng, n)
    s.x, s.y, s.dt = 0.5 + res, 0.5 - res, dt
    logits = np.log(np.array([0.1, 1e-3, 0.05, 0.85])) + 3.0 * np.eye(4)[s.type] + rng.normal(0, 1.5, (n, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    raw = Prediction(event_probs=probs, time_q=q, x_mu=np.full(n, 0.5), y_mu=np.full(n, 0.5), x_sigma=sigma, y_sigma=sigma)
    cal = fit_calibration(s, raw)
    assert cal.sigma_scale["lookahead"][0] > 1.0 > cal.sigma_scale["in_window"][0]
    after = calibrated_prediction(raw, cal, la)
    for keep in (la, ~la):
        m = compute_metrics(s.select(keep), after.select(keep))
        assert m["x_coverage_1sigma"] == pytest.approx(ONE_SIGMA, abs=0.01)
        assert m["y_coverage_1sigma"] == pytest.approx(ONE_SIGMA, abs=0.01)
        assert m["dt_coverage_q10_q90"] == pytest.approx(0.8, abs=0.01)
    m0, m1 = compute_metrics(s, raw), compute_metrics(s, after)
    # the decision keeps at least half of the calibrated argmax's lead over the Markov baseline
    acc_argmax, rival = event_metrics(s.type, after.event_probs.argmax(1))["event_accuracy"], rival_accuracy(s)
    assert acc_argmax > rival
    assert m1["event_accuracy"] >= rival + KEEP_LEAD * (acc_argmax - rival) - 1e-12
    assert m1["event_macro_f1"] >= m0["event_macro_f1"] - 1e-12


# ---- applying ---------------------------------------------------------------------------------

def _heads(rng, shape=(5, 7), crossing=True):
    q = np.sort(rng.uniform(0, 8, (*shape, 3)), -1).astype(np.float32)
    out = {"event_logits": rng.normal(0, 2, (*shape, 4)).astype(np.float32),
           "time_q": np.expm1(q), "time_q_log": q,
           "x_logsig": rng.normal(-3, 1, shape).astype(np.float32), "y_logsig": rng.normal(-3, 1, shape).astype(np.float32),
           "x_mu": rng.random(shape).astype(np.float32)}
    if crossing:
        q2 = np.sort(rng.uniform(3, 9, (*shape, 3)), -1).astype(np.float32)
        out.update(time_q_la=np.expm1(q2), time_q_la_log=q2, cross_logit=rng.normal(0, 1, shape).astype(np.float32))
    return out


def test_identity_calibration_is_exact_and_keeps_dtypes():
    rng = np.random.default_rng(4)
    out = _heads(rng)
    la = rng.random((5, 7)) < 0.3
    for heads in (out, {k: torch.from_numpy(v) for k, v in out.items()}):
        got = apply_calibration(heads, Calibration(), la if isinstance(heads["x_mu"], np.ndarray) else torch.from_numpy(la))
        for k, v in heads.items():
            assert got[k].dtype == v.dtype and bool((got[k] == v).all()), k
        assert bool((got["event_decision"] == heads["event_logits"].argmax(-1)).all())
    assert apply_calibration(out, None) is out


def test_numpy_and_torch_agree_and_kinds_get_their_scales():
    rng = np.random.default_rng(5)
    la = rng.random((5, 7)) < 0.4
    for crossing in (True, False):
        out = _heads(rng, crossing=crossing)
        a = apply_calibration(out, CAL, la)
        b = apply_calibration({k: torch.from_numpy(v) for k, v in out.items()}, CAL, torch.from_numpy(la))
        for k in a:
            assert a[k].dtype == b[k].numpy().dtype
            np.testing.assert_allclose(a[k], b[k].numpy(), rtol=2e-6, atol=1e-6, err_msg=k)
        assert out["x_logsig"].dtype == np.float32 and a["time_q"].dtype == np.float32
        # σ: look-ahead slots × 1.3 / 1.5, in-window × 0.8 / 0.7
        np.testing.assert_allclose(np.exp(a["x_logsig"] - out["x_logsig"]), np.where(la, 1.3, 0.8), rtol=1e-5)
        np.testing.assert_allclose(np.exp(a["y_logsig"] - out["y_logsig"]), np.where(la, 1.5, 0.7), rtol=1e-5)
        # events: logits / T + b, decision = argmax(z + d)
        z = out["event_logits"] / 1.7 + np.array(CAL.event_bias, np.float32)
        np.testing.assert_allclose(a["event_logits"], z, rtol=1e-6)
        assert np.array_equal(a["event_decision"], (z + np.array(CAL.decision_offset, np.float32)).argmax(-1))
        # times in log1p space, q50 unchanged; a crossing head's sets are each their kind's, else by slot
        lq, lc = np.log1p(out["time_q"].astype(np.float64)), np.log1p(a["time_q"].astype(np.float64))
        assert np.array_equal(a["time_q"][..., 1], out["time_q"][..., 1])
        s10 = 0.6 if crossing else np.where(la, 2.0, 0.6)
        np.testing.assert_allclose(lq[..., 1] - lc[..., 0], np.minimum(s10 * (lq[..., 1] - lq[..., 0]), lq[..., 1]),
                                   rtol=1e-4, atol=1e-4)
        if not crossing:  # a single time_q of unknown kind (a planner without a crossing head): the "all" scales
            u = apply_calibration(out, CAL, None)
            lu = np.log1p(u["time_q"].astype(np.float64))
            np.testing.assert_allclose(lu[..., 2] - lq[..., 1], 1.1 * (lq[..., 2] - lq[..., 1]), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(np.exp(u["x_logsig"] - out["x_logsig"]), 0.8, rtol=1e-5)
        if crossing:
            lq2, lc2 = np.log1p(out["time_q_la"].astype(np.float64)), np.log1p(a["time_q_la"].astype(np.float64))
            np.testing.assert_allclose(lc2[..., 2] - lq2[..., 1], 0.5 * (lq2[..., 2] - lq2[..., 1]), rtol=1e-4, atol=1e-4)
            assert np.array_equal(a["cross_logit"], out["cross_logit"])


def test_calibration_json_round_trip_and_refusals():
    d = json.loads(json.dumps(CAL.to_dict()))
    assert Calibration.from_dict(d) == CAL
    bad = [(("events", "temperature"), 0.0, "calibration.events.temperature"),
           (("events", "temperature"), "hot", "calibration.events.temperature"),
           (("events", "bias"), [0.0, 1.0], "calibration.events.bias"),
           (("events", "decision_rule"), "vibes", "calibration.events.decision_rule"),
           (("sigma_scale", "lookahead"), [1.0, -2.0], "calibration.sigma_scale.lookahead"),
           (("time_scale", "in_window"), [float("nan"), 1.0], "calibration.time_scale.in_window"),
           (("events", "surprise"), 1, "unknown key")]
    for (a, b), value, msg in bad:
        dd = json.loads(json.dumps(d))
        dd[a][b] = value
        with pytest.raises(ValueError, match=msg.replace(".", r"\.")):
            Calibration.from_dict(dd)
    with pytest.raises(ValueError, match="missing"):
        Calibration.from_dict({k: v for k, v in d.items() if k != "time_scale"})


# ---- checkpoints ------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = UnifiedEventModel(ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1)).eval()
    return save_checkpoint(tmp_path / "ck", model, spec_hash="abc", key_vocab=KEY_VOCAB, stats=STATS), model


def test_checkpoint_round_trip_and_in_place_write(saved):
    d, _ = saved
    ck = load_checkpoint(d)
    assert ck.calibration is None and ck.model.calibration is None and "calibration" not in ck.meta
    sha = ck.meta["weights_sha256"]
    weights = (d / "model.safetensors").read_bytes()
    write_calibration(d, CAL)
    ck2 = load_checkpoint(d)
    assert ck2.calibration == CAL and ck2.model.calibration == CAL and ck2.meta["weights_sha256"] == sha
    assert (d / "model.safetensors").read_bytes() == weights and not (d / "config.json.tmp").exists()
    assert {k: v for k, v in ck2.meta.items() if k != "calibration"} == ck.meta  # nothing else changed
    write_calibration(d, None)
    assert load_checkpoint(d).calibration is None
    torch.manual_seed(1)
    m = UnifiedEventModel(ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1))
    d3 = save_checkpoint(d.parent / "ck3", m, spec_hash="abc", key_vocab=KEY_VOCAB, stats=STATS, calibration=CAL)
    assert load_checkpoint(d3).calibration == CAL


@pytest.mark.parametrize("damage,field", [
    (lambda c: c["events"].__setitem__("temperature", -1), "calibration.events.temperature"),
    (lambda c: c["sigma_scale"].__setitem__("in_window", [1.0]), "calibration.sigma_scale.in_window"),
    (lambda c: c.__setitem__("extra_thing", 1), "unknown key"),
    (lambda c: c.pop("events"), "missing key"),
])
def test_damaged_calibration_is_refused_in_one_line(saved, damage, field):
    d, _ = saved
    write_calibration(d, CAL)
    meta = json.loads((d / "config.json").read_text())
    damage(meta["calibration"])
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(d)
    msg = str(e.value)
    assert "\n" not in msg and str(d / "config.json") in msg and field in msg
    meta["calibration"] = "warm"
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="calibration must be an object"):
        load_checkpoint(d)


# ---- the planner and the evaluator ------------------------------------------------------------

OPTS = {"crossing": dict(time_head="crossing", slot_elapsed_input=True),
        "anchors_by_type": dict(xy_residual=True, anchors=[[0, 1, 2], [3, 4, 5]], xy_by_type=True,
                                xy_dist="laplace", time_head="crossing"),
        "plain": dict()}


def _model(opts, seed=0):
    torch.manual_seed(seed)
    m = UnifiedEventModel(ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=2, dropout=0.0,
                                      **opts)).eval()
    with torch.no_grad():  # heads away from their near-constant start, so every slot differs
        for name, p in m.named_parameters():
            if "head" in name or "anchors" in name or "xy_by_type" in name:
                p.add_(0.3 * torch.randn_like(p))
    return m


def _ctx(n=6):
    w = synthetic_windows(n, seed=3, max_events=12)
    w["gamestate"][:, -1, :6] = np.random.default_rng(1).random((n, 6), dtype=np.float32)
    return w, {k: w[k] for k in ("gamestate", "history", "history_mask")}


@pytest.mark.parametrize("name", list(OPTS))
@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
def test_identity_calibration_gives_bit_identical_plans(name, temperature):
    model = _model(OPTS[name])
    _, ctx = _ctx()
    raw = Planner(model, temperature=temperature, seed=3).sample_slots(ctx, tick_ms=600.0)
    ident = Planner(model, temperature=temperature, seed=3, calibration=Calibration()).sample_slots(ctx, tick_ms=600.0)
    assert raw["n_events"].sum() > 0
    for k in SLOT_FIELDS + ("performed", "n_events"):
        assert np.array_equal(raw[k], ident[k]), k


def test_planner_applies_the_calibration_it_is_given_or_its_model_carries():
    model = _model(OPTS["plain"])
    _, ctx = _ctx()
    raw = Planner(model, temperature=0.0, seed=0).sample_slots(ctx, tick_ms=600.0)
    sharp = Calibration(sigma_scale={"in_window": (2.0, 0.5), "lookahead": (9.0, 9.0)},  # no crossing head:
                        time_scale={"in_window": (3.0, 0.2), "lookahead": (3.0, 0.2), "all": (0.5, 2.0)})  # σ in-window, times "all"
    model.calibration = sharp  # what load_checkpoint sets
    cal = Planner(model, temperature=0.0, seed=0).sample_slots(ctx, tick_ms=600.0)
    both = raw["performed"] & cal["performed"]
    assert both.sum() > 3
    # at T = 0 the positions are the means (unchanged); σ and the outer quantiles take the in-window scales
    np.testing.assert_allclose(cal["sigma_x"][both], 2.0 * raw["sigma_x"][both], rtol=1e-5)
    np.testing.assert_allclose(cal["sigma_y"][both], 0.5 * raw["sigma_y"][both], rtol=1e-5)
    np.testing.assert_allclose(cal["q50"][both], raw["q50"][both], rtol=1e-6)
    assert (cal["q10"][both] >= raw["q10"][both]).all() and (cal["q90"][both] >= raw["q90"][both]).all()
    # events: a decision offset that favours CLICK turns every T = 0 decision into a CLICK
    clicky = Calibration(decision_offset=(50.0, 0.0, 0.0, 0.0), decision_rule="macro_f1")
    plans = Planner(model, temperature=0.0, seed=0, calibration=clicky).sample_slots(ctx, tick_ms=600.0)
    assert (plans["type"][plans["performed"]] == int(EventType.CLICK)).all()
    # the probabilities the plan reports are the calibrated ones (a prior correction moves them)
    model.calibration = Calibration(event_bias=(3.0, -1.0, -1.0, -1.0))
    p = Planner(model, temperature=1.0, seed=0).sample_slots(ctx, tick_ms=600.0)
    assert p["p_click"][p["performed"]].mean() > raw["p_click"][raw["performed"]].mean() + 0.2


def test_planner_and_evaluator_calibrate_the_first_slot_alike():
    """Slot 0 depends on the context only: the planner (numpy, incremental) and the evaluator's
    teacher-forced pass (torch) give the same calibrated σ, quantiles and probabilities there
    (a crossing head, so both know the slot's kind)."""
    model = _model(OPTS["crossing"])
    model.calibration = CAL
    w, ctx = _ctx(8)
    w["user"] = np.zeros(8, np.int64)
    s = Planner(model, temperature=0.0, seed=0).sample_slots(ctx, tick_ms=600.0)
    first = w["target_mask"][:, 0] & (w["target_mask"].sum(1) > 1) & s["performed"][:, 0]  # in-window in the data too
    assert first.sum() >= 2
    pred = model_prediction(model, w)  # flat slots, row-major: slot 0 of row r is at offset sum(n_valid[:r])
    starts = np.concatenate([[0], np.cumsum(w["target_mask"].sum(1))[:-1]])[first]
    np.testing.assert_allclose(s["sigma_x"][first, 0], pred.x_sigma[starts], rtol=1e-4)
    np.testing.assert_allclose(s["q10"][first, 0], pred.time_q[starts, 0], rtol=1e-4)
    np.testing.assert_allclose(s["q90"][first, 0], pred.time_q[starts, 2], rtol=1e-4)
    np.testing.assert_allclose(s["p_click"][first, 0], pred.event_probs[starts, 0], rtol=1e-4, atol=1e-6)
    assert pred.event_pred is not None


# ---- events per slot kind ---------------------------------------------------------------------

CAL_KINDS = Calibration(**{**{f: getattr(CAL, f) for f in ("event_temperature", "event_bias", "decision_offset",
                                                             "decision_rule", "sigma_scale", "time_scale")},
                           "event_by_kind": {"in_window": {"temperature": 1.2, "bias": (0.1, 0.0, -0.3, 0.2), "decision_offset": (0.4, 0.0, 0.0, 0.0)},
                                             "lookahead": {"temperature": 2.5, "bias": (-1.0, 0.0, 0.5, 0.5), "decision_offset": (1.5, 0.0, 0.7, 0.0)}}})


def test_events_per_kind_apply_where_the_kind_is_known_and_round_trip():
    rng = np.random.default_rng(8)
    out = _heads(rng)
    la = rng.random((5, 7)) < 0.4
    a = apply_calibration(out, CAL_KINDS, la)
    b = apply_calibration({k: torch.from_numpy(v) for k, v in out.items()}, CAL_KINDS, torch.from_numpy(la))
    want = np.where(la[..., None], out["event_logits"] / 2.5 + np.float32([-1.0, 0.0, 0.5, 0.5]),
                    out["event_logits"] / 1.2 + np.float32([0.1, 0.0, -0.3, 0.2]))
    np.testing.assert_allclose(a["event_logits"], want, rtol=1e-6)
    np.testing.assert_allclose(b["event_logits"].numpy(), want, rtol=1e-6)
    d = np.where(la[..., None], np.float32([1.5, 0.0, 0.7, 0.0]), np.float32([0.4, 0.0, 0.0, 0.0]))
    assert np.array_equal(a["event_decision"], (want + d).argmax(-1)) and np.array_equal(b["event_decision"].numpy(), a["event_decision"])
    u = apply_calibration(out, CAL_KINDS, None)  # kind unknown: the global parameters
    np.testing.assert_allclose(u["event_logits"], out["event_logits"] / 1.7 + np.float32(CAL.event_bias), rtol=1e-6)
    d = json.loads(json.dumps(CAL_KINDS.to_dict()))
    assert Calibration.from_dict(d) == CAL_KINDS
    assert "by_kind" not in CAL.to_dict()["events"]  # older calibrations keep their form
    d["events"]["by_kind"]["lookahead"]["temperature"] = -1.0
    with pytest.raises(ValueError, match=r"calibration\.events\.by_kind\.lookahead\.temperature"):
        Calibration.from_dict(d)
    del d["events"]["by_kind"]["in_window"]
    with pytest.raises(ValueError, match=r"calibration\.events\.by_kind: missing"):
        Calibration.from_dict(d)


def test_fit_gives_each_kind_its_event_scaling_and_beats_one_for_both():
    """Look-ahead slots whose model is overconfident and biased toward MOVE, in-window slots whose
    model is well calibrated: per kind, each gets its own T and b, and the NLL over all slots drops."""
    rng = np.random.default_rng(9)
    n = 30_000
    s = _slots(rng, n)
    la = s.lookahead
    true = rng.normal(0, 2, (n, 4)) + np.log([0.1, 1e-3, 0.05, 0.85])
    s.type = _sample_types(rng, true)
    z = np.where(la[:, None], 3.0 * true + np.array([0.0, 0.0, 0.0, 2.0]), true)
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    q = np.tile([10.0, 20.0, 40.0], (n, 1))
    raw = Prediction(event_probs=probs, time_q=q, x_mu=np.full(n, 0.5), y_mu=np.full(n, 0.5), x_sigma=np.ones(n), y_sigma=np.ones(n))
    cal = fit_calibration(s, raw)
    assert cal.events("lookahead")[0] == pytest.approx(3.0, rel=0.1) and cal.events("in_window")[0] == pytest.approx(1.0, rel=0.1)

    def nll(lookahead):
        p = calibrated_prediction(raw, cal, lookahead).event_probs
        return -np.log(p[np.arange(n), s.type]).mean()
    assert nll(la) < nll(np.zeros(n, bool)) - 0.02  # the kinds' own parameters fit better than the in-window ones for all
    after = calibrated_prediction(raw, cal, la)
    acc_argmax, rival = event_metrics(s.type, after.event_probs.argmax(1))["event_accuracy"], rival_accuracy(s)
    assert event_metrics(s.type, after.event_pred)["event_accuracy"] >= rival + KEEP_LEAD * (acc_argmax - rival) - 1e-12
