"""Sampling functions: seeded, temperature, inverse CDF through the quantiles, bounded tails."""

import math

import numpy as np

import pytest
import torch

from ilbot.model.sampling import sample_categorical, sample_event, sample_time, sample_xy, time_inverse_cdf


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_sample_event_seeded_frequencies_and_temperature():
    logits = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])).expand(20000, 4)
    a, b = sample_event(logits, 1.0, g(1)), sample_event(logits, 1.0, g(1))
    assert torch.equal(a, b)
    freq = torch.bincount(a, minlength=4).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.015)
    assert (sample_event(logits, 0.0) == 3).all()  # T = 0: the mode
    sharp = torch.bincount(sample_event(logits, 0.3, g(2)), minlength=4).float() / 20000
    flat = torch.bincount(sample_event(logits, 3.0, g(2)), minlength=4).float() / 20000
    assert sharp[3] > 0.6 and flat[3] < 0.35


def test_categorical_inverse_cdf_with_given_uniforms():
    logits = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])).expand(4, 4)
    u = torch.tensor([0.05, 0.25, 0.55, 0.9999])
    assert sample_categorical(logits, 1.0, u=u).tolist() == [0, 1, 2, 3]


def test_time_inverse_cdf_hits_the_quantiles_and_bounds_the_tails():
    q = torch.tensor([[10.0, 50.0, 300.0]]).expand(5, 3)
    u = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    t = time_inverse_cdf(q, u)
    l10, l50, l90 = math.log1p(10), math.log1p(50), math.log1p(300)
    assert t[1].item() == pytest.approx(10.0, rel=1e-5)
    assert t[2].item() == pytest.approx(50.0, rel=1e-5)
    assert t[3].item() == pytest.approx(300.0, rel=1e-5)
    assert t[0].item() == pytest.approx(math.expm1(l10 - 0.25 * (l50 - l10)), rel=1e-5)
    assert t[4].item() == pytest.approx(math.expm1(l90 + 0.25 * (l90 - l50)), rel=1e-5)
    assert torch.all(t[1:] >= t[:-1])  # monotone in u


def test_sample_time_empirical_quantiles_non_negative_and_seeded():
    q = torch.tensor([2.0, 40.0, 900.0]).expand(40000, 3)
    s = sample_time(q, 1.0, g(3))
    assert torch.equal(s, sample_time(q, 1.0, g(3)))
    assert (s >= 0).all()
    emp = torch.quantile(s, torch.tensor([0.1, 0.5, 0.9]))
    assert torch.allclose(emp, torch.tensor([2.0, 40.0, 900.0]), rtol=0.08)
    assert torch.allclose(sample_time(q[:3], 0.0, g(3)), torch.full((3,), 40.0))  # T = 0: the median
    hot = sample_time(q, 2.0, g(3))
    assert torch.quantile(hot, 0.9) > 900.0 and (hot >= 0).all()


def test_sample_time_zero_quantiles_stay_zero():
    assert torch.equal(sample_time(torch.zeros(10, 3), 1.0, g()), torch.zeros(10))


def test_sample_xy_moments_temperature_and_seed():
    mu, logsig = torch.full((50000,), 0.3), torch.full((50000,), math.log(0.1))
    s = sample_xy(mu, logsig, 1.0, g(4))
    assert torch.equal(s, sample_xy(mu, logsig, 1.0, g(4)))
    assert s.mean().item() == pytest.approx(0.3, abs=0.003)
    assert s.std().item() == pytest.approx(0.1, rel=0.03)
    assert sample_xy(mu, logsig, 0.5, g(4)).std().item() == pytest.approx(0.05, rel=0.03)
    assert torch.equal(sample_xy(mu, logsig, 0.0), mu)
    noise = torch.tensor([1.0, -2.0])
    assert torch.allclose(sample_xy(torch.zeros(2), torch.zeros(2), 2.0, noise=noise), torch.tensor([2.0, -4.0]))


def test_numpy_paths_equal_torch_paths():
    """The planner samples in numpy with pre-drawn uniforms: same draws as the torch functions."""
    q = torch.tensor([[3.0, 60.0, 700.0]])
    for u in (0.0, 0.05, 0.3, 0.5, 0.77, 0.95, 1.0):
        ut = torch.tensor([u])
        for temp in (1.0, 0.5, 2.0):
            a = sample_time(q, temp, u=ut)
            b = sample_time(q.numpy(), temp, u=ut.numpy())
            assert np.allclose(a.numpy(), b, rtol=1e-5), (u, temp)
    qb = torch.tensor([[3.0, 60.0, 700.0], [1.0, 2.0, 3.0]])
    ub = torch.tensor([0.2, 0.97])
    assert np.allclose(sample_time(qb, 1.0, u=ub).numpy(), sample_time(qb.numpy(), 1.0, u=ub.numpy()), rtol=1e-5)
    logits = torch.tensor([[0.1, 2.0, -1.0, 0.5]] * 3)
    u = torch.tensor([0.01, 0.5, 0.99])
    for temp in (1.0, 0.7, 0.0):
        assert np.array_equal(sample_event(logits, temp, u=u).numpy(), sample_event(logits.numpy(), temp, u=u.numpy()))
    mu, ls, nz = torch.tensor([0.2, 0.4]), torch.tensor([-1.0, -2.0]), torch.tensor([0.5, -1.5])
    assert np.allclose(sample_xy(mu, ls, 1.3, noise=nz).numpy(), sample_xy(mu.numpy(), ls.numpy(), 1.3, noise=nz.numpy()))
    assert np.array_equal(sample_xy(mu.numpy(), ls.numpy(), 0.0), mu.numpy())
