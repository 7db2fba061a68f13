"""Bounds against closed forms, Monte Carlo and finite differences.

Model used throughout: z ~ N(0, 1), x | z ~ N(z, 1), so p(x) = N(x | 0, 2) and
the exact posterior is N(x/2, 1/2).
"""

import math

import pytest
import torch

from graphvae.bounds import ELBO, IWAE, DiagGaussian, PointMass, kl_standard_normal
from graphvae.likelihoods import LogLik, gaussian_log_prob

X = torch.tensor([[1.3], [-0.4]], dtype=torch.float64)      # two data points, d = 1
LOG_PX = -0.5 * (math.log(2 * math.pi * 2) + X.squeeze(-1) ** 2 / 2)


def loglik(z):
    lp = gaussian_log_prob(X, z, 0.0)
    return LogLik(lp, lp)


def test_kl_closed_form_matches_torch_and_monte_carlo():
    torch.manual_seed(0)
    loc, logvar = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    q = DiagGaussian(loc, logvar)
    p = torch.distributions.Independent(torch.distributions.Normal(
        torch.zeros_like(loc), torch.ones_like(loc)), 1)
    ref = torch.distributions.kl_divergence(q.distribution(), p)
    assert torch.allclose(q.kl(), ref)
    z = q.rsample((200000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)
    se = (q.log_prob(z) - p.log_prob(z)).std(0) / math.sqrt(200000)
    assert ((mc - q.kl()).abs() < 5 * se).all()
    # by hand: μ = 1, σ² = 1 in one dimension gives ½
    assert kl_standard_normal(torch.tensor([1.0]), torch.tensor([0.0])).item() == 0.5


def test_log_prob_matches_torch():
    torch.manual_seed(1)
    q = DiagGaussian(torch.randn(5, 3), torch.randn(5, 3))
    z = torch.randn(2, 5, 3)
    assert torch.allclose(q.log_prob(z), q.distribution().log_prob(z), atol=1e-5)


def exact_posterior():
    return DiagGaussian(X / 2, torch.full_like(X, math.log(0.5)))


def test_iwae_with_exact_posterior_equals_log_evidence():
    for k in (1, 7):
        est = IWAE(k)(exact_posterior(), loglik)
        assert torch.allclose(est.value, LOG_PX, atol=1e-10)


def test_elbo_with_exact_posterior_converges_to_log_evidence():
    torch.manual_seed(0)
    est = ELBO(num_samples=100000)(exact_posterior(), loglik)
    assert torch.allclose(est.value, LOG_PX, atol=0.01)
    assert torch.allclose(est.value, est.recon - est.kl)
    # surrogate with unit weights and scale is the negated summed ELBO
    assert est.surrogate.item() == pytest.approx(-est.value.sum().item())


def elbo_closed_form(m, logvar):
    s2 = logvar.exp()
    recon = -0.5 * (math.log(2 * math.pi) + (X - m) ** 2 + s2)
    return (recon - kl_standard_normal(m, logvar).unsqueeze(-1)).squeeze(-1)


def test_iwae_is_above_elbo_and_rises_with_k():
    q = DiagGaussian(X * 0.2, torch.full_like(X, 0.5))   # a poor posterior
    true_elbo = elbo_closed_form(q.loc, q.logvar)
    gen = torch.Generator().manual_seed(0)
    means, se = {}, {}
    for k in (1, 5, 50):
        vals = torch.stack([IWAE(k)(q, loglik, generator=gen).value for _ in range(2000)])
        means[k], se[k] = vals.mean(0), vals.std(0) / math.sqrt(2000)
    assert ((means[1] - true_elbo).abs() < 4 * se[1]).all()
    assert (means[5] > means[1]).all() and (means[50] > means[5]).all()
    assert (means[50] < LOG_PX).all()


def test_reparameterised_gradient_matches_finite_differences():
    torch.manual_seed(0)
    eps = torch.randn(3, *X.shape, dtype=torch.float64)
    loc = torch.tensor([[0.3], [-0.2]], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([[-0.5], [0.1]], dtype=torch.float64, requires_grad=True)

    def f(m, lv):
        return ELBO(num_samples=3)(DiagGaussian(m, lv), loglik, eps=eps).value.sum()

    f(loc, logvar).backward()
    h = 1e-6
    for param, grad in ((loc, loc.grad), (logvar, logvar.grad)):
        for i in range(2):
            up, down = param.detach().clone(), param.detach().clone()
            up[i, 0] += h
            down[i, 0] -= h
            args_up = (up, logvar.detach()) if param is loc else (loc.detach(), up)
            args_dn = (down, logvar.detach()) if param is loc else (loc.detach(), down)
            fd = (f(*args_up) - f(*args_dn)) / (2 * h)
            assert grad[i, 0].item() == pytest.approx(fd.item(), rel=1e-6, abs=1e-8)


def test_elbo_expected_gradient_matches_closed_form():
    loc = torch.tensor([[0.3], [-0.2]], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([[-0.5], [0.1]], dtype=torch.float64, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    ELBO(num_samples=200000)(DiagGaussian(loc, logvar), loglik, generator=gen).value.sum() \
        .backward()
    m2 = loc.detach().clone().requires_grad_()
    lv2 = logvar.detach().clone().requires_grad_()
    elbo_closed_form(m2, lv2).sum().backward()
    assert torch.allclose(loc.grad, m2.grad, atol=0.02)
    assert torch.allclose(logvar.grad, lv2.grad, atol=0.02)


def test_point_mass_has_zero_kl_and_bound_is_recon():
    q = PointMass(X.clone())
    est = ELBO()(q, loglik)
    assert torch.all(est.kl == 0)
    assert torch.allclose(est.value, loglik(X).value)


def test_bad_arguments():
    with pytest.raises(ValueError):
        ELBO(num_samples=0)
    with pytest.raises(ValueError):
        IWAE(num_samples=0)
    with pytest.raises(ValueError, match="Gaussian"):
        IWAE(3)(PointMass(X), loglik)
    with pytest.raises(ValueError):
        DiagGaussian(torch.zeros(2, 3), torch.zeros(3, 2))
