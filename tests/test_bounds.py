"""Bounds against closed forms, Monte Carlo and finite differences.

Model used throughout: z ~ N(0, 1), x | z ~ N(z, 1), so p(x) = N(x | 0, 2) and
the exact posterior is N(x/2, 1/2).
"""

import math

import pytest
import torch

from graphvae.bounds import ELBO, IWAE, DiagGaussian, PointMass, Prior, StandardNormal
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
    closed = q.kl_to(StandardNormal())
    assert torch.allclose(closed, ref)
    z = q.rsample((200000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)
    se = (q.log_prob(z) - p.log_prob(z)).std(0) / math.sqrt(200000)
    assert ((mc - closed).abs() < 5 * se).all()
    # by hand: μ = 1, σ² = 1 in one dimension gives ½
    one = DiagGaussian(torch.tensor([1.0]), torch.tensor([0.0]))
    assert StandardNormal().kl(one).item() == 0.5


def test_kl_of_a_float32_posterior_near_the_prior_keeps_its_digits():
    """At loc 0 the KL of one coordinate is ½(e^l − 1 − l) = l²/4 + l³/12 + l⁴/48 + ...
    (the series, by hand, in float64; at |l| = 0.3 and 3, math.expm1 in float64). In
    float32 the closed form must stay within 1e-5 of it for |l| from 1e-6 to 3, and never
    below 0; written as exp(l) − 1 − l it was off by 3× at l = 1e-4 and negative at
    l = 1e-6 (expm1(l) − l alone: 9 % off at 1e-6). Its gradient stays finite at l = 80 and −100."""
    ls = [s * 10.0 ** -e for e in (6, 5, 4, 3, 2) for s in (1, -1)]
    series = [v * v / 4 + v ** 3 / 12 + v ** 4 / 48 + v ** 5 / 240 for v in ls]
    ls += [0.3, -0.3, 3.0, -3.0]
    series += [0.5 * (math.expm1(v) - v) for v in ls[-4:]]
    series = torch.tensor(series, dtype=torch.float64)
    q = DiagGaussian(torch.zeros(len(ls), 1), torch.tensor(ls, dtype=torch.float32)[:, None])
    kl = q.kl_to(StandardNormal())
    assert kl.dtype == torch.float32 and (kl >= 0).all()
    torch.testing.assert_close(kl.double(), series, rtol=1e-5, atol=0)
    logvar = torch.tensor([[80.0, -100.0, 0.05, 0.0]], requires_grad=True)
    DiagGaussian(torch.zeros(1, 4), logvar).kl_to(StandardNormal()).sum().backward()
    assert torch.isfinite(logvar.grad).all()


class NoClosedForm(StandardNormal):
    """N(0, I) without its closed-form KL: the bounds must estimate it."""

    def kl(self, q):
        return None


def test_monte_carlo_kl_agrees_with_the_closed_form_within_standard_errors():
    """The ELBO's KL for a prior without a closed form is the Monte-Carlo estimate on the
    ELBO's own draws; with N(0, I) it must agree with the closed form within its standard
    error, and the bound stays unbiased."""
    torch.manual_seed(3)
    q = DiagGaussian(torch.randn(3, 4, dtype=torch.float64),
                     torch.randn(3, 4, dtype=torch.float64))
    gen = torch.Generator().manual_seed(0)
    est = ELBO(num_samples=100_000, prior=NoClosedForm())(
        q, lambda z: LogLik(z.new_zeros(z.shape[:-2]), z.new_zeros(z.shape[:-2])),
        generator=gen)
    exact = q.kl_to(StandardNormal()).sum()
    z = q.rsample((100_000,), generator=torch.Generator().manual_seed(0))
    per_draw = (q.log_prob(z) - StandardNormal().log_prob(z)).sum(-1)
    se = per_draw.std() / math.sqrt(per_draw.numel())
    assert abs(float(est.kl - exact)) < 4 * float(se)
    with pytest.raises(ValueError, match="no closed-form KL"):
        q.kl_to(NoClosedForm())


def test_log_q_of_a_narrow_posterior_is_exact_in_float32():
    """σ = e⁻²⁰ at μ = 1 in float32: z = μ + σε rounds back to μ, so (z − μ)²/σ² is 0
    instead of ε². The bounds take it from ε: the Monte-Carlo KL against N(0, I) (a prior
    without its closed form) and IWAE's log-ratio equal the float64 values written out
    here by hand, log q = −½ (ε² + log σ² + log 2π) and log p = −½ (z² + log 2π)."""
    loc, logvar = torch.ones(2, 3), torch.full((2, 3), -40.0)
    q = DiagGaussian(loc, logvar)
    eps = torch.randn((5, 2, 3), generator=torch.Generator().manual_seed(0))
    z, _ = q.draw((5,), eps=eps)
    assert bool((z == loc).all())                      # the rounding the fix is about
    e64, z64 = eps.double(), z.double()
    log_q = -0.5 * (e64 ** 2 - 40.0 + math.log(2 * math.pi)).sum(-1)     # (5, 2)
    log_p = -0.5 * (z64 ** 2 + math.log(2 * math.pi)).sum(-1)
    zero = lambda z: LogLik(z.new_zeros(z.shape[:-1]), z.new_zeros(z.shape[:-1]))  # noqa: E731
    kl = ELBO(num_samples=5, prior=NoClosedForm())(q, zero, eps=eps).kl
    assert torch.allclose(kl.double(), (log_q - log_p).mean(0), rtol=1e-6)
    iw = IWAE(num_samples=5)(q, zero, eps=eps)
    assert torch.allclose(iw.value.double(), torch.logsumexp(log_p - log_q, 0) - math.log(5),
                          rtol=1e-6)
    assert torch.allclose(iw.kl.double(), (log_q - log_p).mean(0), rtol=1e-6)   # reported
    # at log σ² = −100, exp(−log σ²) overflows float32: z = μ is still 0 · ∞ = 0, not NaN
    tiny = DiagGaussian(torch.ones(2), torch.full((2,), -100.0))
    assert float(tiny.log_prob(torch.ones(2))) == pytest.approx(
        -0.5 * 2 * (-100.0 + math.log(2 * math.pi)), rel=1e-6)
    # the density of an arbitrary point (no noise given) is still the usual formula
    assert float(q.log_prob(torch.zeros(3))[0]) == pytest.approx(
        -0.5 * 3 * (math.exp(40.0) - 40.0 + math.log(2 * math.pi)), rel=1e-6)


def test_default_prior_leaves_the_elbo_unchanged_in_float64():
    """ELBO with the default prior = E_q log p(x|z) − ½ Σ (μ² + σ² − 1 − log σ²), the
    formula written out here, to 1e-12; IWAE's log-ratio uses log N(z | 0, I) likewise."""
    q = DiagGaussian(X * 0.3, torch.full_like(X, -0.7))
    eps = torch.randn((4, *X.shape), generator=torch.Generator().manual_seed(5),
                      dtype=torch.float64)
    z = q.loc + q.scale * eps
    recon = loglik(z).value.mean(0)
    kl = 0.5 * (q.loc ** 2 + q.logvar.exp() - 1 - q.logvar).sum(-1)
    est = ELBO(num_samples=4)(q, loglik, eps=eps)
    assert (est.value - (recon - kl)).abs().max().item() < 1e-12
    log_ratio = (-0.5 * (z ** 2 + math.log(2 * math.pi))).sum(-1) - q.log_prob(z)
    iw = torch.logsumexp(loglik(z).value + log_ratio, 0) - math.log(4)
    assert (IWAE(4)(q, loglik, eps=eps).value - iw).abs().max().item() < 1e-12
    assert isinstance(StandardNormal(), Prior) and not list(StandardNormal().parameters())


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
    kl = StandardNormal().kl(DiagGaussian(m, logvar))
    return (recon - kl.unsqueeze(-1)).squeeze(-1)


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


def test_permutation_bound_with_shared_draws_lies_between_its_two_limits():
    """Two relabellings with log p(P_k G | z) = ±3z and q = p(z) = N(0, 1): each ELBO is
    0, so log Σ_k exp ELBO_k = log 2, while log Σ_k p(P_k G) = log(2 e^{4.5}) = log 2 + 4.5.
    One shared draw gives log(e^{3z} + e^{-3z}), whose mean log 2 + E log cosh 3z (by
    quadrature) lies strictly between; many draws come down to log 2."""
    import numpy as np

    from graphvae.bounds import PermutationELBO

    q = DiagGaussian(torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))

    def loglik(z):
        return torch.cat([3 * z, -3 * z], -1)                      # (S, K = 2)

    # by hand at z = 0.5
    est = PermutationELBO()(q, loglik, eps=torch.tensor([[0.5]], dtype=torch.float64))
    assert est.value.item() == pytest.approx(math.log(math.exp(1.5) + math.exp(-1.5)),
                                             abs=1e-12)
    assert est.recon.item() == pytest.approx(1.5) and est.kl.item() == 0.0
    mean = PermutationELBO(mean=True)(q, loglik, eps=torch.tensor([[0.5]], dtype=torch.float64))
    assert mean.value.item() == pytest.approx(est.value.item() - math.log(2), abs=1e-12)
    # one draw: the mean over draws against the quadrature value
    g = torch.Generator().manual_seed(0)
    vals = torch.stack([PermutationELBO()(q, loglik, generator=g).value for _ in range(4000)])
    t = np.linspace(-12, 12, 240_001)
    logcosh = np.logaddexp(3 * t, -3 * t) - math.log(2)
    density = np.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    expected = math.log(2) + float((logcosh * density).sum() * (t[1] - t[0]))
    se = float(vals.std()) / math.sqrt(len(vals))
    assert abs(float(vals.mean()) - expected) < 4 * se
    assert math.log(2) + 1.5 < expected < math.log(2) + 4.5         # strictly between
    # 4,000 shared draws: each ELBO_k estimate is ±3·(mean of the draws), near 0
    many = PermutationELBO(num_samples=4000)(q, loglik, generator=g).value.item()
    assert math.log(2) <= many < math.log(2) + 0.05


def test_reweighted_iwae_loss_weights_only_the_likelihood():
    """With Kipf & Welling's re-weighting, the graph autoencoder's IWAE loss multiplied
    ``log p(z)/q(z)`` by ``norm`` too (its scale was ``norm / n²``), so with one sample the
    KL part weighed ``norm`` times what the ELBO's loss gives it. By hand, K = 1:
    ``n² · loss = −(norm · log p̃(A|z) + log N(z; 0, I) − log q(z))``."""
    from torch.distributions import Normal

    from graphvae.adjacency import Adjacency
    from graphvae.models import EdgeObjective, build_model
    torch.manual_seed(0)
    n = 8
    ei = torch.tensor([[0, 1, 1, 2, 3, 4, 5, 6], [1, 0, 2, 1, 4, 3, 6, 5]])
    x = torch.randn(n, 3, dtype=torch.float64)
    adj = Adjacency(ei, n)
    model = build_model("vgae", 3, objective=EdgeObjective("dense", reweight=True),
                        bound="iwae", num_samples=1).double()
    eps = torch.randn(1, n, 16, dtype=torch.float64)
    est = model.bound(x, adj, eps=eps)
    stats = model.edge_stats(adj)
    # n² / 2(n² − P), P = 16 positive entries: 8 edge entries and the 8 self-pairs
    assert stats.norm == pytest.approx(64 / (2 * (64 - 16)))
    q = model.encode(x, adj)
    z = q.loc + q.scale * eps[0]
    weighted = model.edge_loglik(z, adj, stats).weighted
    log_ratio = (Normal(0.0, 1.0).log_prob(z) - Normal(q.loc, q.scale).log_prob(z)).sum()
    by_hand = -(stats.norm * weighted + log_ratio) / n ** 2
    assert est.surrogate.item() == pytest.approx(by_hand.item(), rel=1e-12)


def test_log_prob_of_a_narrow_gaussian_without_its_noise_is_finite():
    """σ² = e^−100 in float32: (z − μ)² = 1e-50 underflows to 0 while 1/σ² overflows to
    inf, and 0 · inf gave NaN. The closed form, −½((z − μ)²/σ² + log σ² + log 2π), in
    float64: −½(1e-50 · e^100 − 100 + log 2π) = 49.0811..."""
    q = DiagGaussian(torch.zeros(1, 1), torch.full((1, 1), -100.0))
    want = -0.5 * (1e-50 * math.exp(100) - 100 + math.log(2 * math.pi))
    got = q.log_prob(torch.full((1, 1), 1e-25))
    assert torch.isfinite(got).all()
    assert float(got[0]) == pytest.approx(want, rel=1e-5)
    assert float(q.log_prob(torch.zeros(1, 1))[0]) == pytest.approx(
        -0.5 * (-100 + math.log(2 * math.pi)), rel=1e-6)


def test_the_closed_form_kl_keeps_no_intermediates_for_its_backward_pass():
    """The float32-exact KL's series kept a dozen intermediates the size of the latents
    for autograd: 0.55 GB more at the peak of a 10^6-node linkpred run. It now keeps only
    loc (for loc²) and l, recomputes the rest in its backward pass, and the gradient is the
    same to the bit as the one autograd took through the series."""
    from graphvae.bounds.priors import _exp_excess, kl_standard_normal
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(500, 16, generator=g, requires_grad=True)
    logvar = (0.3 * torch.randn(500, 16, generator=g)).requires_grad_(True)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        kl = kl_standard_normal(loc, logvar)
    assert sum(saved) <= 2 * loc.numel(), saved            # loc and l, nothing more
    weights = torch.randn(500, generator=g)
    kl.backward(weights)
    l2 = logvar.detach().clone().requires_grad_(True)
    (0.5 * (loc.detach().pow(2) + _exp_excess(l2)).sum(-1)).backward(weights)
    assert torch.equal(logvar.grad, l2.grad)
    assert torch.equal(loc.grad, loc.detach() * weights[:, None])


def test_set_priors_refuse_the_per_row_calls_by_name_and_keep_the_set_calls():
    """SetMixturePrior's and ExemplarPrior's rows are not independent: the per-row
    ``sample`` was a bare NotImplementedError with no message, while README's prior seam
    promised every prior had it. Both per-row calls now say what to call instead; the
    base interface names the class that defines neither."""
    from graphvae.bounds.priors import ExemplarPrior, SetMixturePrior, SetPrior

    for prior in (SetMixturePrior(4, components=2), ExemplarPrior(4, 2, 5)):
        name = type(prior).__name__
        assert isinstance(prior, SetPrior)
        with pytest.raises(ValueError, match=f"^{name} is a prior over sets of latents, "
                                             f"whose rows are not independent: use "
                                             f"set_log_prob$"):
            prior.log_prob(torch.zeros(3, 4))
        with pytest.raises(ValueError, match=f"^{name} .*: use sample_set$"):
            prior.sample((3, 4))
    z = SetMixturePrior(4, components=2).sample_set(3, 4, torch.Generator().manual_seed(0))
    assert z.shape == (3, 4) and torch.isfinite(z).all()
    with pytest.raises(NotImplementedError, match="^Prior defines no sample$"):
        Prior().sample((2, 4))


def test_elbo_weights_enter_the_surrogate_only_by_hand():
    """q = N(1, e^0) in one coordinate: KL(q || N(0,1)) = ½(1 + 1 − 1 − 0) = ½.
    A likelihood of value −2 and re-weighted value −3 for every draw. Then value = −2 − ½
    whatever the weights, and surrogate = −scale·(recon_weight·(−3) − kl_weight·½)."""
    q = DiagGaussian(torch.tensor([1.0], dtype=torch.float64),
                     torch.tensor([0.0], dtype=torch.float64))

    def constant(z):
        s = z.shape[0]
        return LogLik(torch.full((s,), -2.0, dtype=torch.float64),
                      torch.full((s,), -3.0, dtype=torch.float64))

    for kw, rw, sc in ((0.25, 1.0, 1.0), (0.001, 2.0, 0.5), (0.0, 1.0, 1.0)):
        est = ELBO(num_samples=3, recon_weight=rw, kl_weight=kw, scale=sc)(
            q, constant, generator=torch.Generator().manual_seed(0))
        assert est.kl.item() == pytest.approx(0.5, rel=1e-12)
        assert est.value.item() == pytest.approx(-2.5, rel=1e-12)
        assert est.surrogate.item() == pytest.approx(-sc * (rw * -3.0 - kw * 0.5), rel=1e-12)


def test_point_mass_kl_is_zero_per_row():
    """kl_to gives one value per row (as DiagGaussian.kl_to does): (3, 2) codes -> (3,)."""
    loc = torch.randn(3, 2)
    kl = PointMass(loc).kl_to(StandardNormal())
    assert kl.shape == DiagGaussian(loc, torch.zeros_like(loc)).kl_to(StandardNormal()).shape
    assert kl.shape == (3,) and bool((kl == 0).all())


def test_kl_gradient_is_finite_at_extreme_log_variances():
    """d/dl KL(N(0, e^l) || N(0, 1)) = ½(e^l − 1) by hand: −½ at l = −1e9 and −1e12
    (float32), where an unclamped Taylor series overflows to a factor of ±inf and the zero
    gradient of its unused branch turns NaN (0 · inf)."""
    from graphvae.bounds.priors import kl_standard_normal

    for logvar in (-1e12, -1e9, -80.0, 0.05, 20.0):
        lv = torch.tensor([logvar], dtype=torch.float32, requires_grad=True)
        kl = kl_standard_normal(torch.zeros(1), lv)
        (g,) = torch.autograd.grad(kl.sum(), lv)
        assert torch.isfinite(g).all(), logvar
        assert g.item() == pytest.approx(0.5 * math.expm1(logvar), rel=1e-5, abs=1e-7)


def test_set_prior_bound_at_a_nonzero_draw_of_u_by_hand():
    """q(u | Z) = N(0.5, 4) (std 2) and u_noise = 1 give u = 0.5 + 2·1 = 2.5. The mixture
    has one component with μ(u) = relu(u) − relu(−u) = u and σ² = 1, so the estimate is
    Σ_i log N(z_i; 2.5, 1) − KL(N(0.5, 4) ‖ N(0, 1)) for z = (1, 2), a masked 50 left out."""
    from graphvae.bounds.priors import SetMixturePrior

    prior = SetMixturePrior(dim=1, components=1, graph_latent=1, hidden=4).double()
    with torch.no_grad():
        prior.rho[-1].weight.zero_()
        prior.rho[-1].bias.copy_(torch.tensor([0.5, math.log(4.0)], dtype=torch.float64))
        first, last = prior.decode[0], prior.decode[-1]
        first.weight.zero_()
        first.bias.zero_()
        first.weight[0, 0], first.weight[1, 0] = 1.0, -1.0       # hidden = (relu u, relu −u)
        last.weight.zero_()
        last.bias.zero_()
        last.weight[1, 0], last.weight[1, 1] = 1.0, -1.0         # μ = u; weight logit, logvar 0
    z = torch.tensor([[[1.0], [2.0], [50.0]]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False]])
    u = 0.5 + 2.0 * 1.0
    nodes = sum(-0.5 * ((x - u) ** 2 + math.log(2 * math.pi)) for x in (1.0, 2.0))
    kl = 0.5 * (0.5 ** 2 + 4.0 - 1.0 - math.log(4.0))
    with torch.no_grad():
        got = prior.set_log_prob(z, mask, u_noise=torch.ones(1, 1, dtype=torch.float64))
    assert float(got) == pytest.approx(nodes - kl, rel=1e-12)


def test_set_mixture_prior_samples_have_the_mixture_variance():
    """One component, μ = 3, σ² = 4 whatever u: a draw of 4000 node latents has mean
    ≈ 3 and standard deviation ≈ 2 (standard errors 0.03 and 0.02)."""
    from graphvae.bounds.priors import SetMixturePrior

    prior = SetMixturePrior(dim=1, components=1, graph_latent=2, hidden=4).double()
    with torch.no_grad():
        prior.decode[-1].weight.zero_()
        prior.decode[-1].bias.copy_(torch.tensor([0.0, 3.0, math.log(4.0)], dtype=torch.float64))
    z = prior.sample_set(4000, 1, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 1)
    assert float(z.mean()) == pytest.approx(3.0, abs=0.15)
    assert float(z.std()) == pytest.approx(2.0, abs=0.15)


def test_exemplar_prior_samples_have_the_posterior_variance():
    """One exemplar of one node, posterior N((3, −1), diag(4, 4)): 1500 draws (3000
    numbers) have means ≈ (3, −1) and standard deviation ≈ 2 (standard error ≈ 0.03)."""
    from graphvae.bounds.priors import ExemplarPrior

    prior = ExemplarPrior(dim=2, exemplars=1, max_nodes=1).double()
    prior.fit([torch.tensor([[3.0, -1.0]], dtype=torch.float64)],
              [torch.full((1, 2), math.log(4.0), dtype=torch.float64)])
    g = torch.Generator().manual_seed(1)
    z = torch.cat([prior.sample_set(1, 2, g) for _ in range(1500)])
    assert z.shape == (1500, 2)
    assert z.mean(0).tolist() == pytest.approx([3.0, -1.0], abs=0.2)
    assert (z - torch.tensor([3.0, -1.0], dtype=torch.float64)).std().item() == pytest.approx(
        2.0, abs=0.15)
