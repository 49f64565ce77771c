"""The Laplace position distribution (ModelConfig.xy_dist = "laplace"): its NLL, σ as the
half-width of the central 68.3 % (so 1σ coverage keeps its meaning), sampling, and evaluation."""

import math

import numpy as np
import pytest
import torch

from ilbot.eval.metrics import Prediction, xy_metrics
from ilbot.eval.slots import Slots
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.heads import LaplaceXYHead
from ilbot.model.loss import laplace_nll
from ilbot.model.planner import Planner
from ilbot.model.sampling import LAPLACE_K, sample_xy_laplace
from ilbot.model.synthetic import synthetic_windows


def test_k_is_the_683_interval_and_the_head_scores_with_the_laplace():
    assert 1 - math.exp(-LAPLACE_K) == pytest.approx(0.682689, abs=1e-6)
    assert LaplaceXYHead.coord_nll is laplace_nll and LaplaceXYHead.coord_sample is sample_xy_laplace


def test_nll_is_the_laplace_log_density():
    mu, logsig, x = torch.tensor(0.2), torch.tensor(math.log(0.05)), torch.tensor(0.31)
    b = 0.05 / LAPLACE_K
    assert laplace_nll(mu, logsig, x).item() == pytest.approx(abs(0.31 - 0.2) / b + math.log(2 * b), rel=1e-5)


def test_samples_put_683_percent_inside_one_sigma_and_centre_on_the_median():
    g = torch.Generator().manual_seed(0)
    mu, logsig = torch.zeros(200_000), torch.full((200_000,), math.log(0.1))
    x = sample_xy_laplace(mu, logsig, 1.0, g)
    assert (x.abs() <= 0.1).float().mean().item() == pytest.approx(0.683, abs=0.005)
    assert x.median().item() == pytest.approx(0.0, abs=0.002)
    u = np.array([0.5, 0.0, 1.0])  # the median, and the clamped ends stay finite
    out = sample_xy_laplace(np.zeros(3), np.zeros(3), 1.0, u=u)
    assert out[0] == 0.0 and np.isfinite(out).all()


def test_model_uses_the_laplace_head_and_the_planner_samples_it():
    model = UnifiedEventModel(ModelConfig(d_model=32, n_heads=2, n_slots=40, xy_dist="laplace")).eval()
    assert isinstance(model.xy_head, LaplaceXYHead)
    w = {k: torch.from_numpy(v) for k, v in synthetic_windows(2, seed=0, n_slots=40).items()}
    out = model(w, w["targets"])
    assert torch.isfinite(out["loss"])
    s = Planner(model, seed=0).sample_slots({k: w[k].numpy() for k in ("gamestate", "history", "history_mask")})
    assert np.isfinite(s["x"]).all()
    with pytest.raises(ValueError, match="xy_dist"):
        ModelConfig(xy_dist="cauchy")


def move_slots(n: int) -> Slots:
    """n in-window MOVE slots along x at y = 0.5, in a 100 × 100 px window."""
    return Slots(type=np.full(n, 3), dt=np.ones(n), x=np.linspace(0.1, 0.9, n), y=np.full(n, 0.5), w=np.full(n, 100.0),
                 h=np.full(n, 100.0), button=np.zeros(n, int), key_action=np.zeros(n, int), key_id=np.zeros(n, int),
                 scroll=np.zeros(n, int), lookahead=np.zeros(n, bool), slot=np.arange(n), window=np.zeros(n, int),
                 user=np.full(n, -1), prev_type=np.full(n, 3), prev_x=np.full(n, 0.5), prev_y=np.full(n, 0.5))


def test_evaluation_scores_a_laplace_prediction_with_its_own_likelihood():
    n = 5
    s = move_slots(n)
    p = Prediction(x_mu=np.full(n, 0.5), y_mu=np.full(n, 0.45), x_sigma=np.full(n, 0.2), y_sigma=np.full(n, 0.1), xy_laplace=True)
    got = xy_metrics(s, p)["xy_nll"]
    t = lambda a: torch.tensor(a)  # noqa: E731
    want = (laplace_nll(t(p.x_mu), t(np.log(p.x_sigma)), t(s.x)) + laplace_nll(t(p.y_mu), t(np.log(p.y_sigma)), t(s.y))).mean()
    assert got == pytest.approx(want.item(), rel=1e-9)
    assert xy_metrics(s, Prediction(**{**p.__dict__, "xy_laplace": False}))["xy_nll"] != pytest.approx(got)
