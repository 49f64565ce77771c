"""The Laplace scale mixture position head (ModelConfig.xy_dist = "laplace_mix"): σ keeps its
meaning (the central 68.3 %), the likelihood is a density, sampling, the CDF and the closed-form
CRPS agree with each other and with scoringrules, calibration scales σ and b together, and the
model, planner and evaluation run it end to end."""

import math

import numpy as np
import pytest
import scoringrules as sr
import torch

from ilbot.eval.metrics import Prediction, xy_metrics
from ilbot.eval.scores import laplace_scale_mix_crps, position_cdf, position_crps
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.calibration import Calibration, apply_calibration
from ilbot.model.heads import LaplaceMixXYHead
from ilbot.model.loss import laplace_mix_nll
from ilbot.model.planner import Planner
from ilbot.model.sampling import LAPLACE_K, laplace_mix_k, sample_xy_laplace_mix
from ilbot.model.synthetic import synthetic_windows
from test_model_laplace import move_slots  # tests/


def _out(n, w_logit=-1.0, rho=(6.0, 3.0), sigma=(0.1, 0.2), lib=torch):
    full = (lambda v: torch.full((n,), float(v))) if lib is torch else (lambda v: np.full(n, float(v)))
    return {"x_mu": full(0.0), "y_mu": full(0.0), "x_logsig": full(math.log(sigma[0])), "y_logsig": full(math.log(sigma[1])),
            "x_logrho": full(math.log(rho[0])), "y_logrho": full(math.log(rho[1])), "xy_wide_logit": full(w_logit)}


def _prediction(out: dict) -> Prediction:
    return Prediction(x_mu=out["x_mu"], y_mu=out["y_mu"], x_sigma=np.exp(out["x_logsig"]), y_sigma=np.exp(out["y_logsig"]),
                      xy_laplace=True, xy_wide_logit=out["xy_wide_logit"], x_logrho=out["x_logrho"], y_logrho=out["y_logrho"])


@pytest.mark.parametrize("w,rho", [(0.0, 5.0), (0.3, 1.0), (0.2, 4.0), (0.9, 30.0), (1.0, 12.0)])
def test_k_puts_683_percent_within_sigma(w, rho):
    k = laplace_mix_k(np.array([w]), np.array([rho]))[0]
    inside = (1 - w) * (1 - math.exp(-k)) + w * (1 - math.exp(-k / rho))  # mass within ±k·b
    assert inside == pytest.approx(math.erf(1 / math.sqrt(2)), abs=1e-9)
    if w == 0 or rho == 1:
        assert k == pytest.approx(LAPLACE_K)
    k_t = laplace_mix_k(torch.tensor([w]), torch.tensor([rho], dtype=torch.float64))
    assert k_t.item() == pytest.approx(k, rel=1e-6)


def test_the_likelihood_is_a_normalised_density_and_w0_is_the_laplace():
    from scipy import integrate
    one = _out(1, lib=np)
    density = lambda y, x: math.exp(-laplace_mix_nll(one, np.array([x]), np.array([y]))[0])  # noqa: E731
    assert integrate.dblquad(density, -10, 10, -10, 10, epsabs=1e-7)[0] == pytest.approx(1.0, abs=1e-5)
    lap = _out(1, w_logit=-60.0, lib=np)  # w → 0: two independent Laplaces with σ = K·b
    x, y = np.array([0.13]), np.array([-0.4])
    b = np.array([0.1, 0.2]) / LAPLACE_K
    want = abs(0.13) / b[0] + math.log(2 * b[0]) + 0.4 / b[1] + math.log(2 * b[1])
    assert laplace_mix_nll(lap, x, y)[0] == pytest.approx(want, rel=1e-9)


def test_beta_weights_the_point_by_the_geometric_mean_of_the_axis_weights():
    out = {k: v.requires_grad_() for k, v in _out(3).items()}
    e = torch.tensor([0.01, -0.2, 0.4])
    plain, weighted = laplace_mix_nll(out, e, e), laplace_mix_nll(out, e, e, beta=0.5)
    assert weighted.detach().numpy() == pytest.approx((plain * math.sqrt(0.1 * 0.2)).detach().numpy(), rel=1e-6)
    (g_plain,) = torch.autograd.grad(plain.sum(), out["x_mu"])
    (g_weighted,) = torch.autograd.grad(weighted.sum(), out["x_mu"])
    assert g_weighted.numpy() == pytest.approx(g_plain.numpy() * math.sqrt(0.1 * 0.2), rel=1e-6)  # the weight is detached


def test_draws_cdf_and_crps_agree():
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x, y = sample_xy_laplace_mix(_out(n), 1.0, g)
    assert (x.abs() <= 0.1).float().mean().item() == pytest.approx(0.683, abs=0.005)
    assert (y.abs() <= 0.2).float().mean().item() == pytest.approx(0.683, abs=0.005)
    # one component for both axes: x and y jump together, so |x| and |y| are correlated
    assert np.corrcoef(x.abs().numpy(), y.abs().numpy())[0, 1] > 0.2
    obs = np.array([-0.3, -0.05, 0.0, 0.02, 0.5])
    p = _prediction(_out(len(obs), lib=np))
    draws = x.numpy().astype(np.float64)
    assert position_cdf(obs, p, "x") == pytest.approx([(draws <= o).mean() for o in obs], abs=0.004)
    empirical = [float(sr.crps_ensemble(o, draws[:50_000])) for o in obs]
    assert position_crps(obs, p, "x") == pytest.approx(empirical, rel=0.03)
    # with w = 0 (or ρ = 1) the closed form is scoringrules' Laplace CRPS
    b = np.full(len(obs), 0.07)
    for rho, w in ((5.0, 0.0), (1.0, 0.4)):
        got = laplace_scale_mix_crps(obs, np.zeros(len(obs)), b, np.full(len(obs), rho), np.full(len(obs), w))
        assert got == pytest.approx(np.asarray(sr.crps_laplace(obs, 0.0, b)), abs=1e-12)


def test_calibration_scales_the_whole_mixture():
    out = _out(4, lib=np)
    cal = Calibration(sigma_scale={"in_window": (2.0, 0.5), "lookahead": (1.0, 1.0)})
    c = apply_calibration(out, cal, np.zeros(4, bool))
    assert np.exp(c["x_logsig"]) == pytest.approx(0.2) and np.exp(c["y_logsig"]) == pytest.approx(0.1)
    for k in ("x_logrho", "y_logrho", "xy_wide_logit", "x_mu"):
        assert c[k] is out[k]  # the shape is the head's; only the scale moves
    # scaling σ by s scales every component: the NLL of s·e under the scaled mixture is the
    # original NLL of e plus log s per axis
    e = np.array([0.03, -0.2, 0.5, 0.0])
    base = laplace_mix_nll(out, e, e)
    assert laplace_mix_nll(c, 2.0 * e, 0.5 * e) == pytest.approx(base + math.log(2.0) + math.log(0.5))


def test_model_trains_plans_and_evaluates_the_mixture():
    cfg = ModelConfig(d_model=32, n_heads=2, n_slots=40, xy_dist="laplace_mix", xy_residual=True, xy_by_type=True)
    model = UnifiedEventModel(cfg)
    assert isinstance(model.xy_head, LaplaceMixXYHead)
    w = {k: torch.from_numpy(v) for k, v in synthetic_windows(2, seed=0, n_slots=40).items()}
    out = model(w, w["targets"])
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert (model.xy_head.proj.weight.grad.abs().sum(-1) > 0).all()  # b, ρ and w all learn
    model.eval()
    ctx = {k: w[k].numpy() for k in ("gamestate", "history", "history_mask")}
    a, b = Planner(model, seed=3).sample_slots(ctx), Planner(model, seed=3).sample_slots(ctx)
    assert np.isfinite(a["x"]).all() and np.array_equal(a["x"], b["x"])  # seeded: reproducible
    # the head's σ is the mixture's: its parameters in numpy give the same as in torch
    h = torch.randn(5, cfg.d_model)
    with torch.no_grad():
        t = model.xy_head(h)
    n = model.xy_head.params(model.xy_head.proj(h).detach().numpy())
    for k in LaplaceMixXYHead.keys:
        assert n[k] == pytest.approx(t[k].numpy(), rel=1e-5, abs=1e-6)
    with pytest.raises(ValueError, match="anchors"):
        ModelConfig(xy_dist="laplace_mix", anchors=[[0, 1]])


def test_evaluation_scores_the_mixture_with_its_own_likelihood():
    n = 5
    s = move_slots(n)
    out = _out(n, lib=np)
    out["x_mu"], out["y_mu"] = np.full(n, 0.5), np.full(n, 0.45)
    p = _prediction(out)
    got = xy_metrics(s, p)
    assert got["xy_nll"] == pytest.approx(laplace_mix_nll(out, s.x, s.y).mean(), rel=1e-12)
    single = xy_metrics(s, Prediction(**{**p.__dict__, "xy_wide_logit": None}))
    assert single["xy_nll"] != pytest.approx(got["xy_nll"])  # the mixture is not scored as one Laplace
    assert got["x_coverage_1sigma"] == single["x_coverage_1sigma"]  # σ means the same: |e| ≤ σ


def test_the_loss_fits_the_location_to_the_median_not_the_mode():
    # 45 % of the targets rest at 0, 55 % jump somewhere in [0.2, 2]: the median is ≈ 0.36, the mode 0
    from ilbot.model.loss import xy_loss
    rng = np.random.default_rng(0)
    n = 4000
    t = np.where(rng.random(n) < 0.45, 0.0, rng.uniform(0.2, 2.0, n))
    t = torch.tensor(t, dtype=torch.float32)
    raw = torch.zeros(7, requires_grad=True)
    head = LaplaceMixXYHead(4, ModelConfig())
    opt = torch.optim.Adam([raw], lr=0.03)
    for _ in range(600):
        out = head.params(raw.expand(n, 7))
        loss = xy_loss(out, t, t, torch.ones(n, dtype=torch.bool), beta=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    med = float(np.median(t.numpy()))
    assert out["x_mu"][0].item() == pytest.approx(med, abs=0.05)  # not the mode at 0
    # the reported value is the mixture's NLL of the points
    assert loss.item() == pytest.approx(laplace_mix_nll({k: v.detach() for k, v in out.items()}, t, t, 0.5).mean().item(), rel=1e-5)
