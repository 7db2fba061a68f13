"""graphvae.vector: PCA and the linear AE, denoising AEs, VAE / IWAE bounds, checked against
closed forms, brute force and hand-worked values."""

from __future__ import annotations

import copy
import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from graphvae.vector import (
    build_vector_model,
    estimate_nll,
    load_vector_model,
    refine_encoder,
    save_checkpoint,
    train_vector,
)
from graphvae.vector.checks import gaussian_denoiser_error, spiral_field_cosine
from graphvae.vector.layers import Corruption
from graphvae.vector.linear import (
    LinearAE,
    axis_alignment,
    pca,
    reconstruction_error,
    subspace_distance,
    synthetic_spectrum,
    train_linear_ae,
)

SPECTRUM = [10.0, 8.0, 6.0, 4.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]


@pytest.mark.slow  # 6 s (a fresh interpreter)
def test_vector_imports_without_torch_geometric():
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "torch_geometric" or name.startswith("torch_geometric."):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import torch
        import graphvae.vector as v
        from graphvae.vector.linear import pca
        m = v.build_vector_model("vae", 6, latent_dim=2, hidden=(8,))
        x = (torch.rand(20, 6) > 0.5).float()
        v.train_vector(m, x, x, epochs=1, progress=False)
        assert not any(k.startswith("torch_geometric") for k in sys.modules)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.slow  # 15 s (four fresh interpreters)
def test_commands_import_only_what_they_run(tmp_path):
    """`graphvae --help` loads no torch; with torch_geometric blocked, the help of the graph
    commands prints and `graphvae vector` trains and writes its folder: each command imports
    its own module only, and torch_geometric at first use; check-invariance runs without
    scipy.optimize."""
    block = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from graphvae.cli import main
        for argv in ARGVS:
            try:
                main(argv)
            except SystemExit as stop:
                assert stop.code in (0, None), stop.code
        print("ok")
    """)
    # the graph commands' help needs torch but not torch_geometric (~2 s to import)
    runs = [({"torch", "torch_geometric"}, [["--help"]]),
            ({"torch_geometric"}, [["generate", "--help"], ["linkpred", "--help"],
                                   ["check-invariance", "--help"],
                                   ["vector", "--epochs", "1", "--nll-samples", "2", "--quiet",
                                    "--out", str(tmp_path / "v")]]),
            # scipy.optimize (0.7 s) only where graphs are matched or weights searched (a
            # linkpred run plots, and sklearn.metrics imports it)
            (set(), [["linkpred", "--epochs", "1", "--quiet", "--out", str(tmp_path / "l")]]),
            ({"scipy.optimize"}, [["check-invariance", "--checkpoint",
                                   str(tmp_path / "l" / "model.pt"), "--permutations", "1",
                                   "--quiet"]])]
    for blocked, argvs in runs:
        code = f"BLOCKED = {sorted(blocked)!r}\nARGVS = {argvs!r}\n" + block
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert out.returncode == 0 and out.stdout.strip().endswith("ok"), (argvs, out.stderr)
    assert (tmp_path / "v" / "metrics.json").is_file()


# -- PCA and the linear autoencoder -----------------------------------------------------------

def test_pca_matches_covariance_eigendecomposition():
    x, _ = synthetic_spectrum(500, SPECTRUM, seed=1)
    p = pca(x, 4)
    cov = np.cov(x.numpy(), rowvar=False, bias=True)
    vals, vecs = np.linalg.eigh(cov)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    np.testing.assert_allclose(p.eigenvalues.numpy(), vals, rtol=1e-9, atol=1e-12)
    for i in range(4):
        assert abs(float(p.components[i] @ torch.from_numpy(vecs[:, i].copy()))) == \
            pytest.approx(1.0, abs=1e-9)
    # reconstruction error of the rank-k projection = sum of the discarded eigenvalues
    err = reconstruction_error(x, p.inverse_transform(p.transform(x)))
    assert err == pytest.approx(vals[4:].sum(), rel=1e-9)
    np.testing.assert_allclose(p.projection.numpy(), ((x - x.mean(0)) @ p.components.T).numpy())


def test_pca_rejects_bad_k_and_nan():
    with pytest.raises(ValueError, match="k must be"):
        pca(torch.randn(10, 3), 4)
    bad = torch.randn(10, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        pca(bad, 1)


def test_subspace_distance_and_alignment_by_hand():
    e = torch.eye(3, dtype=torch.float64)
    u = e[:, :2]
    w = torch.stack([e[:, 0], (e[:, 1] + e[:, 2]) / math.sqrt(2)], 1)
    # tr(UUᵀWWᵀ) = 1 + cos²45° = 1.5, so 1 - 1.5/2 = 0.25
    assert subspace_distance(u, w) == pytest.approx(0.25)
    np.testing.assert_allclose(axis_alignment(u, w).numpy(), [0.0, 0.5], atol=1e-12)
    # a basis change inside the span does not move the subspace
    basis = torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    assert subspace_distance(u, u @ basis) == pytest.approx(0, abs=1e-12)
    # float32 axes (pca of float32 rows) against a float64 decoder: the same values
    assert subspace_distance(u.float(), w) == pytest.approx(0.25, abs=1e-7)
    np.testing.assert_allclose(axis_alignment(u.float(), w).numpy(), [0.0, 0.5], atol=1e-7)


def _trained(ordering, steps, l2_scale=0.01, seed=0):
    x, _ = synthetic_spectrum(2000, SPECTRUM, seed=0)
    k = 5
    p = pca(x, k)
    m = LinearAE(len(SPECTRUM), k, ordering=ordering, l2_scale=l2_scale,
                 generator=torch.Generator().manual_seed(seed))
    train_linear_ae(m, x, steps=steps, progress=False)
    return x, p, m


def test_linear_ae_recovers_pca_subspace_and_error():
    x, p, m = _trained("none", 2000)
    u = p.components.T
    with torch.no_grad():
        assert subspace_distance(u, m.W2) < 1e-3
        err = reconstruction_error(x, m.reconstruct(x))
    assert abs(err / p.discarded_variance - 1) < 0.01
    # without an ordering option the axes are an arbitrary basis of the subspace
    assert float(axis_alignment(u, m.W2.detach()).max()) > 0.1


def test_comparing_pca_with_a_linear_ae_at_k_equal_d_reports_no_relative_error():
    """At k = d PCA discards nothing, so the error relative to the discarded variance is
    undefined: it raised ZeroDivisionError; it is now None, and the rest is reported."""
    from graphvae.vector.linear import compare_pca_linear_ae

    x = torch.randn(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    res = compare_pca_linear_ae(x, 3, steps=50, progress=False, orderings=("none",))
    assert res["discarded_variance"] == 0.0 and res["pca_reconstruction_error"] < 1e-20
    assert res["linear_ae"][0]["relative_error_vs_discarded"] is None


@pytest.mark.slow  # 5 s; the full suite (CI) runs it
def test_rotation_augmented_gradient_recovers_ordered_axes():
    x, p, m = _trained("rotation", 3000)
    u = p.components.T
    with torch.no_grad():
        align = axis_alignment(u, m.W2)
        assert subspace_distance(u, m.W2) < 1e-3
        err = reconstruction_error(x, m.reconstruct(x))
    assert float(align.max()) < 1e-3, align
    assert abs(err / p.discarded_variance - 1) < 0.01
    # the encoder ends as the decoder's transpose (Kunin et al.'s critical points)
    torch.testing.assert_close(m.W1.detach(), m.W2.detach().T, atol=1e-3, rtol=0)


def test_rotation_term_is_an_infinitesimal_rotation():
    """Γ is antisymmetric, so the extra step keeps W2 W1 fixed to first order."""
    x, _ = synthetic_spectrum(200, SPECTRUM[:6], seed=3)
    m = LinearAE(6, 3, ordering="rotation", l2_scale=0.0,
                 generator=torch.Generator().manual_seed(0), init_scale=3.0)
    xc = x - x.mean(0)
    m.W1.grad = torch.zeros_like(m.W1)
    m.W2.grad = torch.zeros_like(m.W2)
    m.rotate_gradients(xc)
    d1, d2 = -m.W1.grad, -m.W2.grad           # the step direction of the rotation alone
    with torch.no_grad():
        first_order = d2 @ m.W1 + m.W2 @ d1
    assert float(first_order.abs().max()) < 1e-12
    assert float(d1.abs().max()) > 1e-6         # and it does move the weights


@pytest.mark.slow  # 6 s (20,000 steps)
def test_nonuniform_l2_gives_transposed_shrunk_decoder():
    """Kunin et al.: at the minimum W1 = W2ᵀ and ‖W2[:, i]‖² = 1 − λ_i/σ_i²."""
    x, _ = synthetic_spectrum(2000, [10.0, 2.0, 0.3, 0.1], seed=0)
    p = pca(x, 2)
    lam = [0.5, 1.0]
    m = LinearAE(4, 2, ordering="l2", l2=lam, generator=torch.Generator().manual_seed(0))
    train_linear_ae(m, x, steps=6000, progress=False)
    with torch.no_grad():
        norms = m.W2.pow(2).sum(0)
        torch.testing.assert_close(m.W1, m.W2.T, atol=1e-4, rtol=0)
        assert float(axis_alignment(p.components.T, m.W2).max()) < 1e-3
    expected = 1 - torch.tensor(lam, dtype=torch.float64) / p.explained_variance
    torch.testing.assert_close(norms, expected, atol=1e-4, rtol=0)


# -- denoising autoencoders ---------------------------------------------------------------------

def test_corruptions_have_the_stated_statistics():
    g = torch.Generator().manual_seed(0)
    x = torch.full((400, 500), 0.5)
    masked = Corruption("masking", 0.3)(x, g)
    assert float((masked == 0).float().mean()) == pytest.approx(0.3, abs=0.005)
    assert bool(((masked == 0) | (masked == 0.5)).all())
    sp = Corruption("salt_and_pepper", 0.2)(x, g)
    assert float((sp != 0.5).float().mean()) == pytest.approx(0.2, abs=0.005)
    assert float((sp == 1).float().mean()) == pytest.approx(0.1, abs=0.005)
    noisy = Corruption("gaussian", 0.25)(x, g)
    assert float((noisy - x).std()) == pytest.approx(0.25, rel=0.01)
    with pytest.raises(ValueError, match="unknown corruption"):
        Corruption("blur", 0.1)
    with pytest.raises(ValueError, match="level"):
        Corruption("masking", 1.5)


@pytest.mark.slow
def test_dae_matches_optimal_gaussian_denoiser():
    """For x ~ N(μ, Σ) and x̃ = x + σε, E[x | x̃] = μ + Σ(Σ + σ²I)⁻¹(x̃ − μ)."""
    assert gaussian_denoiser_error(seed=0) < 0.05


@pytest.mark.slow
def test_dae_vector_field_points_to_the_spiral():
    cos, count = spiral_field_cosine(seed=0)
    assert count > 500
    assert cos > 0.9


# -- VAE and IWAE -----------------------------------------------------------------------------

def _tiny_vae(d=5, k=2, likelihood="bernoulli", seed=0):
    torch.manual_seed(seed)
    return build_vector_model("vae", d, latent_dim=k, hidden=(7,), likelihood=likelihood,
                              activation="tanh").double()


def test_closed_form_kl_matches_monte_carlo():
    m = _tiny_vae()
    x = (torch.rand(4, 5, generator=torch.Generator().manual_seed(1)) > 0.5).double()
    q = m.encode(x)
    z = q.rsample((200000,), generator=torch.Generator().manual_seed(2))
    mc = (q.log_prob(z) - m.prior.log_prob(z))
    se = mc.std(0) / math.sqrt(mc.size(0))
    assert bool(((mc.mean(0) - q.kl_to(m.prior)).abs() < 4 * se).all())


def test_iwae_rises_with_k_and_bounds_log_marginal():
    m = _tiny_vae()
    x = (torch.rand(6, 5, generator=torch.Generator().manual_seed(1)) > 0.5).double()
    g = torch.Generator().manual_seed(3)
    reps = 400
    means = {}
    for k in (1, 5, 50):
        vals = torch.stack([m.bound(x, "iwae", k, generator=g).value for _ in range(reps)])
        means[k] = vals.mean(0)
    elbo = torch.stack([m.bound(x, "elbo", 1, generator=g).value for _ in range(reps)]).mean(0)
    exact = m.log_marginal(x, 200000, chunk=20000, generator=g)
    # IWAE_1 is the ELBO; the means rise with K and stay below log p(x)
    torch.testing.assert_close(means[1], elbo, atol=0.1, rtol=0)
    assert bool((means[5] > elbo).all()) and bool((means[50] > means[5]).all())
    assert bool((means[50] < exact + 0.01).all())


def test_log_marginal_is_exact_with_the_true_posterior():
    """Linear-Gaussian model with an exact encoder: every importance weight equals p(x)."""
    torch.manual_seed(0)
    d, k, s2 = 4, 2, 0.5
    m = build_vector_model("vae", d, latent_dim=k, hidden=(), likelihood="gaussian",
                           variance=s2).double()
    w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    b = torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=torch.float64)   # WᵀW diagonal ⇒ M diagonal
    prec = torch.eye(k, dtype=torch.float64) + w.T @ w / s2
    post_cov = torch.linalg.inv(prec)
    a = post_cov @ w.T / s2
    with torch.no_grad():
        m.decoder[0].weight.copy_(w)
        m.decoder[0].bias.copy_(b)
        m.encoder[0].weight.zero_()
        m.encoder[0].weight[:k] = a
        m.encoder[0].bias[:k] = -a @ b
        m.encoder[0].bias[k:] = torch.log(torch.diagonal(post_cov))
    x = torch.randn(5, d, dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(b, w @ w.T + s2 * torch.eye(d)).log_prob(x)
    est = m.log_marginal(x, 50, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est, exact, atol=1e-10, rtol=0)
    # ... and so is IWAE_K for any draw (every log weight is log p(x))
    torch.testing.assert_close(m.bound(x, "iwae", 3).value, exact, atol=1e-10, rtol=0)
    # the data-set figure: mean -log p(x) over rows, batches of 2 (the last one short)
    m.train()
    nll = estimate_nll(m, x, 50, batch_size=2, seed=3)
    assert abs(nll + float(exact.mean())) < 1e-10 and m.training


def test_log_marginal_with_an_offset_encoder_against_closed_forms():
    """The exact-posterior test above cannot tell how the weights are combined (they are
    all equal). Here the encoder's mean is off the posterior's by 0.5 in each latent, with
    the posterior's variances: KL(q || p(z|x)) = ½ δᵀ Λ δ with Λ = I + WᵀW/σ² = diag(5, 11),
    so 2.0 nats exactly. Checked: three weights combined by hand (torch.distributions),
    the ELBO's mean at log p(x) − 2, and 10⁵ weights at log p(x)."""
    d, k, s2 = 4, 2, 0.5
    m = build_vector_model("vae", d, latent_dim=k, hidden=(), likelihood="gaussian",
                           variance=s2).double()
    w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    b = torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=torch.float64)
    post_var = torch.tensor([1 / 5, 1 / 11], dtype=torch.float64)
    a = post_var[:, None] * w.T / s2
    with torch.no_grad():
        m.decoder[0].weight.copy_(w)
        m.decoder[0].bias.copy_(b)
        m.encoder[0].weight.zero_()
        m.encoder[0].weight[:k] = a
        m.encoder[0].bias[:k] = -a @ b + 0.5
        m.encoder[0].bias[k:] = torch.log(post_var)
    x = torch.randn(5, d, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    exact = torch.distributions.MultivariateNormal(b, w @ w.T + s2 * torch.eye(d)).log_prob(x)
    # three weights by hand, from the same draws
    est = m.log_marginal(x, 3, chunk=3, generator=torch.Generator().manual_seed(5))
    z = m.encode(x).rsample((3,), generator=torch.Generator().manual_seed(5))
    loc_q = x @ a.T - a @ b + 0.5
    N = torch.distributions.Normal
    logw = (N(z @ w.T + b, math.sqrt(s2)).log_prob(x).sum(-1) + N(0.0, 1.0).log_prob(z).sum(-1)
            - N(loc_q, post_var.sqrt()).log_prob(z).sum(-1))
    by_hand = torch.log(torch.exp(logw).mean(0))
    torch.testing.assert_close(est, by_hand, atol=1e-12, rtol=0)
    assert bool((est - exact).abs().max() > 0.05)  # the weights differ: not the easy case
    # E[ELBO] = log p(x) − KL(q || p(z|x)) = log p(x) − 2.0
    draws = torch.stack([m.bound(x, "elbo", 1, generator=g).value
                         for g in [torch.Generator().manual_seed(s) for s in range(7, 1007)]])
    se = draws.std(0) / math.sqrt(draws.size(0))
    assert bool(((draws.mean(0) - (exact - 2.0)).abs() < 4 * se).all()), (draws.mean(0), exact)
    # 10⁵ weights: relative variance of one weight e^{δᵀΛδ} − 1 = e⁴ − 1, so a standard
    # error of sqrt(53.6 / 10⁵) = 0.023 nats
    big = m.log_marginal(x, 100_000, chunk=25_000, generator=torch.Generator().manual_seed(8))
    assert bool(((big - exact).abs() < 4 * 0.023).all()), (big - exact)


def test_refine_encoder_reaches_the_exact_posterior_and_keeps_the_model():
    """Linear-Gaussian decoder, frozen: training only q(z|x) on IWAE_5 drives it to the
    closed-form posterior N(A(x − b), (I + WᵀW/σ²)⁻¹), so KL(q ‖ p(z|x)) — the exact
    gap log p(x) − ELBO — goes to ~0, while p(x, z) is left bit for bit."""
    torch.manual_seed(0)
    d, k, s2 = 4, 2, 0.5
    m = build_vector_model("vae", d, latent_dim=k, hidden=(), likelihood="gaussian",
                           variance=s2).double()
    w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    b = torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=torch.float64)
    with torch.no_grad():
        m.decoder[0].weight.copy_(w)
        m.decoder[0].bias.copy_(b)
    g = torch.Generator().manual_seed(1)

    def draw(n):  # x ~ p(x) of the decoder itself
        z = torch.randn(n, k, generator=g, dtype=torch.float64)
        return z @ w.T + b + math.sqrt(s2) * torch.randn(n, d, generator=g, dtype=torch.float64)

    x, xv, xt = draw(2000), draw(500), draw(200)
    post_cov = torch.linalg.inv(torch.eye(k, dtype=torch.float64) + w.T @ w / s2)
    a = post_cov @ w.T / s2

    @torch.no_grad()
    def kl_to_posterior(model):
        q = model.encode(xt)
        exact = torch.distributions.MultivariateNormal((xt - b) @ a.T, post_cov)
        approx = torch.distributions.MultivariateNormal(q.loc, torch.diag_embed(q.logvar.exp()))
        return float(torch.distributions.kl_divergence(approx, exact).mean())

    before = {n: v.clone() for n, v in m.state_dict().items()}
    refined, res = refine_encoder(m, x, xv, num_samples=5, epochs=40, lr=1e-2,
                                  batch_size=100, progress=False)
    assert kl_to_posterior(m) > 10 and kl_to_posterior(refined) < 0.03
    assert res.best_epoch > 0 and len(res.column("score")) == 40
    for name, value in refined.state_dict().items():  # the model p(x, z) is untouched
        if name.startswith("decoder"):
            assert torch.equal(value, before[name])
    for name, value in m.state_dict().items():  # and so is the model passed in
        assert torch.equal(value, before[name])
    assert all(p.requires_grad for p in refined.parameters())
    # the refined copy keeps the model's own training objective, not refine's IWAE_5
    assert (refined.objective, refined.num_samples) == (m.objective, m.num_samples) == ("elbo", 1)
    with pytest.raises(ValueError, match="variational"):
        refine_encoder(build_vector_model("ae", d, latent_dim=k), x)
    frozen = build_vector_model("vae", d, latent_dim=k, likelihood="gaussian")  # x is real
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train_vector(frozen, x.float(), epochs=1, progress=False)


def test_reparameterised_gradients_match_finite_differences():
    m = _tiny_vae(d=4, k=2)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    eps = torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    params = list(m.parameters())
    est = m.bound(x, "iwae", 3, eps=eps).value.sum()
    grads = torch.autograd.grad(est, params)
    with torch.no_grad():
        for p, gr in zip(params, grads):
            for idx in [(0,) * p.dim(), tuple(s - 1 for s in p.shape)]:
                old = float(p[idx])
                p[idx] = old + 1e-6
                up = float(m.bound(x, "iwae", 3, eps=eps).value.sum())
                p[idx] = old - 1e-6
                down = float(m.bound(x, "iwae", 3, eps=eps).value.sum())
                p[idx] = old
                assert (up - down) / 2e-6 == pytest.approx(float(gr[idx]), rel=1e-5, abs=1e-7)


def test_vae_learns_and_samples_reconstructs_interpolates(tmp_path):
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 16, generator=g) > 0.5).float()
    x = protos[torch.randint(0, 3, (600,), generator=g)]
    flip = torch.rand(x.shape, generator=g) < 0.05
    x = torch.where(flip, 1 - x, x)
    m = build_vector_model("vae", 16, latent_dim=2, hidden=(32,))
    res = train_vector(m, x[:500], x[500:], epochs=30, batch_size=50, lr=3e-3, progress=False)
    assert res.column("score")[-1] > res.column("score")[0] + 1.0
    # ELBO bounds the importance-sampled log p(x) from below (on average)
    lp = m.log_marginal(x[500:], 500, generator=g)
    elbo = m.bound(x[500:], "elbo", 50, generator=g).value.detach()
    assert float(lp.mean()) >= float(elbo.mean())
    s = m.sample(7, generator=g)
    assert s.shape == (7, 16) and bool(((s >= 0) & (s <= 1)).all())
    path = m.interpolate(x[0], x[1], steps=5)
    torch.testing.assert_close(path[0], m.reconstruct(x[:1])[0])
    torch.testing.assert_close(path[-1], m.reconstruct(x[1:2])[0])
    ck = tmp_path / "m.pt"
    save_checkpoint(m, ck)
    again = load_vector_model(ck)
    torch.testing.assert_close(again.reconstruct(x[:5]), m.reconstruct(x[:5]))


def test_gated_layers_compute_the_gated_linear_unit_by_hand():
    """activation="gated": each hidden layer is (W x + b) * sigmoid(V x + c), the last plain."""
    torch.manual_seed(0)
    m = build_vector_model("vae", 3, latent_dim=1, hidden=(2,), activation="gated").double()
    enc = m.encoder
    assert [type(layer).__name__ for layer in enc] == ["GatedLinear", "Linear"]
    with torch.no_grad():
        enc[0].linear.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]))
        enc[0].linear.bias.copy_(torch.tensor([0.0, 1, 0, -1]))
        enc[1].weight.copy_(torch.tensor([[1.0, 0], [0, 1]]))
        enc[1].bias.zero_()
    x = torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.double)
    # hidden: h = (2, 0), gates = sigmoid(0.5), sigmoid(0.5) -> (2 s, 0)
    s = 1 / (1 + math.exp(-0.5))
    q = m.encode(x)
    assert torch.allclose(q.loc, torch.tensor([[2 * s]], dtype=torch.double))
    assert torch.allclose(q.logvar, torch.tensor([[0.0]], dtype=torch.double))
    assert [type(layer).__name__ for layer in m.decoder] == ["GatedLinear", "Linear"]
    assert m.decoder[0].linear.in_features == 1 and m.decoder[0].linear.out_features == 4


def test_model_options_are_checked():
    with pytest.raises(ValueError, match="unknown model"):
        build_vector_model("gan", 4)
    with pytest.raises(ValueError, match="likelihood"):
        build_vector_model("vae", 4, likelihood="poisson")
    for bad in (-1.0, 1e-40, math.inf):        # 1e-40: every log-density -inf in float32
        with pytest.raises(ValueError, match="variance must be 'learned' or a number from"):
            build_vector_model("vae", 4, likelihood="gaussian", variance=bad)
    with pytest.raises(ValueError, match="IWAE objective needs a variational"):
        build_vector_model("ae", 4).bound(torch.zeros(2, 4), "iwae", 5)
    with pytest.raises(ValueError, match="training data must be"):
        train_vector(build_vector_model("ae", 4), torch.zeros(5, 3), epochs=1, progress=False)
    with pytest.raises(ValueError, match="lr_decay"):
        train_vector(build_vector_model("ae", 4), torch.zeros(5, 4), epochs=1, lr_decay=1.5,
                     progress=False)
    with pytest.raises(ValueError, match="ema"):
        train_vector(build_vector_model("ae", 4), torch.zeros(5, 4), epochs=1, ema=1.0,
                     progress=False)


def test_vector_configs_that_cannot_work_are_named():
    """Each setting ``VectorConfig`` cannot build is refused for its own reason; the
    defaults of ``build_vector_model`` fill in what is given as None; a config survives
    its dict (a checkpoint's)."""
    from graphvae.vector.models import VectorConfig
    for kwargs, problem in (({"in_dim": 0}, "in_dim must be a whole number >= 1, got 0"),
                            ({"in_dim": 2 ** 62}, "in_dim must be at most 1,099,511,627,776, "
                                                  "got 4611686018427387904"),
                            ({"latent_dim": 0}, "latent_dim must be a width from 1 to 65536, "
                                                "got 0"),
                            ({"latent_dim": 2 ** 62}, "latent_dim must be a width from 1 to "
                                                      "65536, got 4611686018427387904"),
                            ({"hidden": (8, 0)}, r"hidden needs widths from 1 to 65536, got "),
                            ({"activation": "cube"}, "unknown activation 'cube'"),
                            ({"corruption": "blur"}, "unknown corruption 'blur'"),
                            ({"corruption": "masking", "noise_level": 1.5},
                             "the masking corruption's level must be")):
        with pytest.raises(ValueError, match=problem):
            VectorConfig(**{"in_dim": 4, **kwargs})
    with pytest.raises(ValueError, match="a denoising AE needs a corruption"):
        build_vector_model("dae", 4, corruption="")
    assert build_vector_model("dae", 4).corruption.kind == "gaussian"    # Alain & Bengio
    model = build_vector_model("vae", 4, hidden=None, latent_dim=None, likelihood=None)
    assert model.config == VectorConfig(in_dim=4)
    config = VectorConfig(in_dim=5, latent_dim=2, hidden=(8, 3), likelihood="gaussian",
                          variance=0.25, corruption="masking", noise_level=0.5)
    assert VectorConfig.from_dict(config.to_dict()) == config


def test_the_decoder_mirrors_the_encoder_and_starts_at_unit_variance():
    """Hidden widths (8, 3): the encoder runs 5 → 8 → 3 → 2·2, the decoder 2 → 3 → 8 → 5;
    a learned Gaussian variance starts at 1 (log σ² = 0) and is held at
    ``MIN_LOGVAR`` from below."""
    from graphvae.likelihoods import MIN_LOGVAR
    model = build_vector_model("vae", 5, latent_dim=2, hidden=(8, 3), likelihood="gaussian")
    shapes = [(m.in_features, m.out_features) for m in model.decoder.modules()
              if isinstance(m, torch.nn.Linear)]
    assert shapes == [(2, 3), (3, 8), (8, 5)]
    shapes = [(m.in_features, m.out_features) for m in model.encoder.modules()
              if isinstance(m, torch.nn.Linear)]
    assert shapes == [(5, 8), (8, 3), (3, 4)]
    assert torch.equal(model.decoder_logvar(), torch.zeros(5))
    with torch.no_grad():
        model.logvar.copy_(torch.tensor([-100.0, -7.5, -6.0, 0.0, 3.0]))
    assert model.decoder_logvar().tolist() == [MIN_LOGVAR, MIN_LOGVAR, -6.0, 0.0, 3.0]


def test_a_denoising_ae_corrupts_in_training_only_and_scores_the_clean_rows():
    """A DAE's bound encodes the corrupted rows and scores the clean ones: its value is
    ``log p(x | z = code(x̃))``; at evaluation ``forward`` corrupts nothing, and the
    bound is that of the clean rows."""
    torch.manual_seed(0)
    model = build_vector_model("dae", 6, latent_dim=3, hidden=(16,), likelihood="gaussian",
                               noise_level=0.5)
    x = torch.randn(5, 6)
    noisy = x + 0.5 * torch.randn(5, 6)
    by_noisy = model.log_likelihood(x, model.codes(noisy))
    # (the decoder's output moves with its code: no dead ReLU layer hides the corruption)
    assert not torch.allclose(by_noisy, model.log_likelihood(x, model.codes(x)))
    assert not torch.allclose(by_noisy, model.log_likelihood(noisy, model.codes(noisy)))
    torch.testing.assert_close(model.bound(x, x_in=noisy).value, by_noisy)
    model.eval()
    clean = model.bound(x).value
    torch.testing.assert_close(model(x, torch.Generator().manual_seed(1)).value, clean,
                               rtol=0, atol=0)
    model.train()
    assert not torch.allclose(model(x, torch.Generator().manual_seed(1)).value, clean)


def test_forward_trains_with_the_models_kl_weight():
    """Warm-up sets ``model.kl_weight``: ``forward`` weights the KL by it, as ``bound``
    does when told."""
    torch.manual_seed(0)
    model = build_vector_model("vae", 6, latent_dim=3, hidden=(4,))
    x = (torch.rand(5, 6) < 0.5).float()
    model.kl_weight = 0.25
    got = model(x, torch.Generator().manual_seed(3))
    want = model.bound(x, generator=torch.Generator().manual_seed(3), kl_weight=0.25)
    torch.testing.assert_close(got.surrogate, want.surrogate, rtol=0, atol=0)
    torch.testing.assert_close(got.surrogate, -(want.recon - 0.25 * want.kl).mean())


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_samples_add_the_likelihoods_noise_to_the_mean(likelihood):
    """``sample(mean=False)`` draws x ~ p(x | z) after the same z as ``sample()``: 0/1
    draws for a Bernoulli, the mean plus σ = √4 = 2 times standard normal noise for a
    Gaussian of variance 4 (the noise drawn next from the same generator)."""
    torch.manual_seed(0)
    model = build_vector_model("vae", 6, latent_dim=3, hidden=(4,), likelihood=likelihood,
                               variance=4.0 if likelihood == "gaussian" else None)
    drawn = model.sample(50, torch.Generator().manual_seed(2), mean=False)
    g = torch.Generator().manual_seed(2)
    mean = model.sample(50, g)
    if likelihood == "bernoulli":
        assert set(drawn.unique().tolist()) == {0.0, 1.0}
        assert ((mean > 0) & (mean < 1)).all()
    else:
        torch.testing.assert_close(drawn, mean + 2.0 * torch.randn(mean.shape, generator=g))


def test_interpolation_and_the_vector_field_by_their_definitions():
    """``interpolate`` decodes codes on the segment from z₀ to z₁, both ends included, and
    needs two steps at least; ``vector_field`` is r(x) − x, pointing from x to its
    reconstruction."""
    torch.manual_seed(0)
    model = build_vector_model("ae", 6, latent_dim=3, hidden=(16,), likelihood="gaussian")
    x = torch.randn(2, 6)
    path = model.interpolate(x[0], x[1], steps=3)
    assert not torch.allclose(path[0], path[1]) and not torch.allclose(path[1], path[2])
    z0, z1 = model.codes(x[:1]), model.codes(x[1:])
    torch.testing.assert_close(path, model.mean(torch.cat([z0, (z0 + z1) / 2, z1])))
    with pytest.raises(ValueError, match="steps must be >= 2, got 1"):
        model.interpolate(x[0], x[1], steps=1)
    torch.testing.assert_close(model.vector_field(x), model.reconstruct(x) - x, rtol=0, atol=0)


def test_lr_decay_follows_the_validation_plateaus(monkeypatch):
    """A scripted validation curve: the rate drops by the factor after each plateau of
    ``decay_patience`` epochs and training stops once it would go below ``min_lr``."""
    import graphvae.vector.train as train_mod

    curve = iter([1.0, 2.0, 2.0, 2.0, 3.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5])
    monkeypatch.setattr(train_mod, "evaluate_bound", lambda *a, **k: next(curve))
    x = (torch.rand(20, 4) > 0.5).float()                  # a Bernoulli model scores 0/1
    res = train_vector(build_vector_model("ae", 4, hidden=(3,)), x, x, epochs=50, lr=0.1,
                       lr_decay=0.5, decay_patience=2, min_lr=0.02, progress=False)
    # by hand: plateau after epoch 4 (2, 2 after the best at 2) -> 0.05; best 3 at epoch 5;
    # plateau after epoch 7 -> 0.025; plateau after epoch 9 -> 0.0125 < 0.02: stop.
    assert res.column("lr") == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    assert res.best_epoch == 5 and res.best_score == 3.0


def test_ema_weights_are_the_closed_form_average():
    """Two full-batch steps: the averaged weights are ``e² w0 + e(1−e) w1 + (1−e) w2``,
    with ``w1, w2`` the plain iterates (same seed, so the same steps)."""
    x = (torch.rand(16, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()

    def run(epochs, ema=None):
        torch.manual_seed(3)
        m = build_vector_model("vae", 6, latent_dim=2, hidden=(5,))
        train_vector(m, x, epochs=epochs, batch_size=16, lr=0.05, ema=ema, progress=False)
        return torch.nn.utils.parameters_to_vector(m.parameters()).detach()

    torch.manual_seed(3)
    w0 = torch.nn.utils.parameters_to_vector(
        build_vector_model("vae", 6, latent_dim=2, hidden=(5,)).parameters()).detach()
    w1, w2 = run(1), run(2)
    assert not torch.allclose(w1, w2)
    e = 0.7
    torch.testing.assert_close(run(2, ema=e), e * e * w0 + e * (1 - e) * w1 + (1 - e) * w2)


def test_kl_weight_changes_the_surrogate_not_the_bound():
    torch.manual_seed(0)
    m = build_vector_model("vae", 6, latent_dim=3, hidden=(4,))
    x = (torch.rand(5, 6) < 0.5).float()
    eps = torch.randn(1, 5, 3)
    full, half = m.bound(x, eps=eps), m.bound(x, eps=eps, kl_weight=0.5)
    torch.testing.assert_close(half.value, full.value)
    # by hand: surrogate = -mean(recon - 0.5 KL)
    torch.testing.assert_close(half.surrogate, -(full.recon - 0.5 * full.kl).mean())
    with pytest.raises(ValueError, match="ELBO objective only"):
        m.bound(x, "iwae", 5, kl_weight=0.5)
    with pytest.raises(ValueError, match="kl_warmup"):
        train_vector(m, x, objective="iwae", num_samples=2, epochs=1, kl_warmup=3, progress=False)


def test_bf16_autocast_keeps_the_bound_arithmetic_in_float32():
    """Under bf16 autocast only the matrix products round: the IWAE_K value and its
    gradient match float32 (same ε) to bf16 accuracy, and come back as float32."""
    torch.manual_seed(0)
    m = build_vector_model("vae", 30, latent_dim=4, hidden=(16,))
    x = (torch.rand(8, 30) < 0.3).float()
    eps = torch.randn(7, 8, 4)

    def value_and_grad(bf16):
        m.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            est = m.bound(x, "iwae", 7, eps=eps)
        est.surrogate.backward()
        return est.value.detach(), torch.cat([p.grad.flatten() for p in m.parameters()])

    v32, g32 = value_and_grad(False)
    v16, g16 = value_and_grad(True)
    assert v16.dtype == torch.float32
    assert not torch.equal(v16, v32)  # the products really ran in bf16
    # bf16 keeps 8 significant bits: relative error of order 2^-8 per product
    torch.testing.assert_close(v16, v32, rtol=2e-2, atol=0.0)
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.99


def test_train_vector_bf16_trains_float32_weights():
    g = torch.Generator().manual_seed(0)
    proto = (torch.rand(4, 20, generator=g) < 0.5).float()
    x = proto[torch.randint(0, 4, (400,), generator=g)]
    torch.manual_seed(1)
    m = build_vector_model("vae", 20, latent_dim=2, hidden=(16,))
    res = train_vector(m, x[:300], x[300:], objective="iwae", num_samples=5, epochs=40,
                     batch_size=50, lr=1e-2, bf16=True, progress=False)
    assert all(p.dtype == torch.float32 for p in m.parameters())
    # four equiprobable binary prototypes: log p(x) -> log(1/4); the fp32 validation
    # IWAE_5 bound must get well above the initial -20 log 2 ≈ -13.9 nats.
    assert res.column("score")[0] < res.best_score
    assert res.best_score > -3.0


def test_weight_decay_is_decoupled_shrinkage():
    """One full-batch step: AdamW's weights differ from Adam's by exactly -lr·wd·w0."""
    x = (torch.rand(32, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    lr, wd = 0.01, 0.5
    fits = []
    for decay in (0.0, wd):
        torch.manual_seed(1)
        m = build_vector_model("vae", 6, latent_dim=2, hidden=(5,))
        w0 = [p.detach().clone() for p in m.parameters()]
        train_vector(m, x, epochs=1, batch_size=32, lr=lr, weight_decay=decay, progress=False)
        fits.append([p.detach() for p in m.parameters()])
    for w, plain, decayed in zip(w0, *fits):
        assert torch.allclose(decayed - plain, -lr * wd * w, atol=1e-7)
    assert any((w.abs() > 0.1).any() for w in w0)  # the check is not vacuous
    with pytest.raises(ValueError, match="weight_decay"):
        train_vector(m, x, epochs=1, weight_decay=-1.0, progress=False)


def test_built_iwae_trains_on_iwae_not_the_elbo():
    """``build_vector_model("iwae")`` is a VAE that trains on IWAE_K: its forward is the
    IWAE bound with the same draws, and train_vector keeps that objective unless told."""
    torch.manual_seed(0)
    x = torch.rand(6, 4).round()
    m = build_vector_model("iwae", 4, num_samples=3, latent_dim=2, hidden=(8,))
    assert (m.objective, m.num_samples) == ("iwae", 3)
    m.eval()
    fwd = m(x, generator=torch.Generator().manual_seed(1)).value
    iwae = m.bound(x, "iwae", 3, generator=torch.Generator().manual_seed(1)).value
    elbo = m.bound(x, "elbo", 1, generator=torch.Generator().manual_seed(1)).value
    torch.testing.assert_close(fwd, iwae, rtol=0, atol=0)
    assert not torch.equal(fwd, elbo)
    train_vector(m, x, epochs=1, batch_size=3, progress=False)
    assert (m.objective, m.num_samples) == ("iwae", 3)
    assert build_vector_model("iwae", 4).num_samples == 5
    train_vector(m, x, objective="elbo", epochs=1, batch_size=3, progress=False)
    assert (m.objective, m.num_samples) == ("elbo", 1)
    with pytest.raises(ValueError, match="num_samples is IWAE's K"):
        build_vector_model("vae", 4, num_samples=3)


def test_a_checkpoint_keeps_the_training_objective(tmp_path):
    """An IWAE model saved and loaded trained on the ELBO afterwards (load_vector_model set
    no objective); the objective and K travel in the checkpoint now. A file written before
    they did loads as the ELBO it always was; a crafted objective is one line."""
    from graphvae.errors import DataError

    x = torch.rand(6, 4).round()
    m = build_vector_model("iwae", 4, num_samples=7, latent_dim=2, hidden=(8,))
    save_checkpoint(m, tmp_path / "m.pt")
    again = load_vector_model(tmp_path / "m.pt")
    assert (again.objective, again.num_samples) == ("iwae", 7)
    g = torch.Generator().manual_seed(1)
    fwd = again.eval()(x, generator=g).value
    iwae = again.bound(x, "iwae", 7, generator=torch.Generator().manual_seed(1)).value
    torch.testing.assert_close(fwd, iwae, rtol=0, atol=0)
    ck = torch.load(tmp_path / "m.pt", weights_only=True)
    old = {k: v for k, v in ck.items() if k not in ("objective", "num_samples")}
    torch.save(old, tmp_path / "old.pt")
    assert (load_vector_model(tmp_path / "old.pt").objective,
            load_vector_model(tmp_path / "old.pt").num_samples) == ("elbo", 1)
    for objective, k in (("sleep", 1), ("iwae", 0), ("iwae", True), ("iwae", 2.0),
                         ("iwae", 10 ** 12), ("x" * 10 ** 6, 1)):
        torch.save({**ck, "objective": objective, "num_samples": k}, tmp_path / "bad.pt")
        with pytest.raises(DataError, match="objective is not usable") as err:
            load_vector_model(tmp_path / "bad.pt")
        assert len(str(err.value)) < 400          # a long string is not echoed whole
    ae = build_vector_model("ae", 4, latent_dim=2, hidden=(8,))
    save_checkpoint(ae, tmp_path / "ae.pt")
    ck = torch.load(tmp_path / "ae.pt", weights_only=True)
    torch.save({**ck, "objective": "iwae", "num_samples": 5}, tmp_path / "ae_iwae.pt")
    with pytest.raises(DataError, match="objective is not usable"):
        load_vector_model(tmp_path / "ae_iwae.pt")


def test_a_checkpoint_config_that_is_not_a_vector_config_is_named(tmp_path):
    """A config that is not a dict of fields, a key no field has, and a ``hidden`` that is
    not a list: each refused naming what is wrong (found by the reader fuzz, where they
    came out as "'int' object is not iterable", "VectorConfig.__init__() got an unexpected
    keyword argument" and a string split into its letters)."""
    from graphvae.errors import DataError
    from graphvae.vector.models import VectorConfig

    m = build_vector_model("vae", 4, latent_dim=2, hidden=(8,))
    save_checkpoint(m, tmp_path / "m.pt")
    ck = torch.load(tmp_path / "m.pt", weights_only=True)
    path = tmp_path / "bad.pt"
    for config, message in (
            (7, "a VectorConfig is a JSON object of fields, got int"),
            ([["in_dim", 4]], "a VectorConfig is a JSON object of fields, got list"),
            ({**ck["config"], "hiden": [8]}, "unknown config key(s): 'hiden' (did you mean "
                                             "hidden?); the keys are the fields of "
                                             "VectorConfig: activation, corruption, hidden, "
                                             "in_dim, latent_dim, likelihood, noise_level, "
                                             "variance, variational"),
            ({**ck["config"], "hidden": 8}, "config field 'hidden' has the wrong type: 8, "
                                            "not tuple[int, ...]"),
            ({**ck["config"], "hidden": "88"}, "config field 'hidden' has the wrong type: "
                                               "'88', not tuple[int, ...]"),
            # was "VectorConfig.__init__() missing 1 required positional argument"
            ({k: v for k, v in ck["config"].items() if k != "in_dim"},
             "config key(s) 'in_dim' missing: VectorConfig has no default for them")):
        torch.save({**ck, "config": config}, path)
        with pytest.raises(DataError) as err:
            load_vector_model(path)
        assert str(err.value) == f"{path}: the checkpoint's config is not usable " \
                                 f"(ValueError: {message})", str(err.value)
    assert VectorConfig.from_dict({"in_dim": 3}).hidden == ()   # as before: no layer


def test_plain_data_is_exactly_str_keyed_dicts_lists_and_scalars():
    """What torch's weights-only reader refuses is named before a checkpoint is written:
    a dict key that is not a string, a set, a dict subclass (worked out by hand)."""
    from collections import defaultdict

    from graphvae.weight_checks import check_plain_entries, not_plain
    assert not_plain({"a": [1, 2.5, "x", None, True, (3,)]}, "e") is None
    assert not_plain({"a": {1: 2}}, "e") == ("e['a'] key 1", "int")
    assert not_plain({"a": {1}}, "e") == ("e['a']", "set")
    assert not_plain({"a": defaultdict(list)}, "e") == ("e['a']", "collections.defaultdict")
    for value, part in (({1: 2}, "its entry 'a' key 1 is of type int"),
                        ({1}, "'a' is of type set"),
                        (defaultdict(list), "'a' is of type collections.defaultdict")):
        with pytest.raises(ValueError, match=part):
            check_plain_entries({"a": value}, "model")


def test_a_checkpoint_entry_that_is_not_plain_data_is_refused_before_writing(tmp_path):
    """save_checkpoint(m, path, test_nll=np.float64(...)) wrote a file that
    load_vector_model then refused; an earlier file at the path is kept."""
    import numpy as np

    m = build_vector_model("vae", 6, latent_dim=2, likelihood="gaussian")
    path = tmp_path / "m.pt"
    save_checkpoint(m, path, test_nll=87.6, history=[{"epoch": 1, "bound": -3.0}])
    before = path.read_bytes()
    assert load_vector_model(path).config.latent_dim == 2
    for bad, name in ((np.float64(87.6), "numpy.float64"), (object(), "object")):
        with pytest.raises(ValueError, match=rf"^cannot save this vector model: its entry "
                                             rf"'test_nll' is of type {name}, not plain data"):
            save_checkpoint(m, path, test_nll=bad)
        assert path.read_bytes() == before
    with pytest.raises(ValueError, match=r"its entry 'history'\[0\]\['bound'\] is of type "
                                         r"numpy.float32"):
        save_checkpoint(m, path, history=[{"bound": np.float32(1)}])


def test_standardized_rows_convert_back_to_their_units_for_plots():
    """Image grids of --standardize runs were drawn from standardised values on a 0–1
    grey scale (73 % of the digits' pixels clipped); they are drawn in the data's units."""
    from graphvae.vector import load_digits
    data = load_digits(seed=0)
    std = data.standardized()
    assert float(std.test.abs().max()) > 1.5                  # not grey levels any more
    torch.testing.assert_close(std.original_units(std.test), data.test, atol=1e-5, rtol=0)
    assert data.original_units(data.test) is data.test        # plain data: unchanged


def test_python_api_arguments_are_checked_in_one_line():
    """What a caller can get wrong in the Python API is named before any work: a chunk of
    0 once looped for ever in ``log_marginal``, ``estimate_nll`` failed inside math or
    torch, a validation split of the wrong width inside a matrix product, and
    ``VectorConfig`` took ``variance=True`` and failed later on ``hidden=8``."""
    torch.manual_seed(0)
    model = build_vector_model("vae", 6, latent_dim=2, hidden=(4,), likelihood="gaussian")
    x = torch.randn(5, 6)
    for chunk in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"chunk must be a whole number >= 1, got {chunk}"):
            model.log_marginal(x, num_samples=5, chunk=chunk)
    for kwargs, problem in (({"num_samples": 0}, "num_samples must be a whole number >= 1"),
                            ({"batch_size": 0}, "batch_size must be a whole number >= 1")):
        with pytest.raises(ValueError, match=problem):
            estimate_nll(model, x, **kwargs)
    with pytest.raises(TypeError, match="x must be a torch.Tensor of rows, got ndarray"):
        estimate_nll(model, x.numpy())
    with pytest.raises(ValueError, match=r"x must be \(n, 6\), got \(5, 3\)"):
        estimate_nll(model, x[:, :3])
    # float64 rows are the same rows: the same estimate as float32 (the model's dtype)
    assert estimate_nll(model, x.double(), num_samples=7) == estimate_nll(model, x,
                                                                           num_samples=7)
    with pytest.raises(ValueError, match=r"validation data must be \(n, 6\), got \(5, 2\)"):
        train_vector(model, x, x[:, :2], epochs=1, progress=False)
    for kwargs, problem in (({"hidden": 8}, "'hidden' has the wrong type: 8, not tuple"),
                            ({"in_dim": "6"}, "'in_dim' has the wrong type: '6', not int"),
                            ({"in_dim": 6.5}, "'in_dim' has the wrong type: 6.5"),
                            ({"hidden": ("4",)}, "'hidden' has the wrong type"),
                            ({"variance": True}, "'variance' has the wrong type: True")):
        args = {"in_dim": 6, "likelihood": "gaussian", **kwargs}
        with pytest.raises(ValueError, match=problem):
            build_vector_model("vae", args.pop("in_dim"), **args)
    assert build_vector_model("vae", 6, hidden=[4, 3]).config.hidden == (4, 3)
    from graphvae.vector import check_matrix, load_digits
    with pytest.raises(TypeError, match="seed must be an integer, got 'a'"):
        load_digits(seed="a")
    with pytest.raises(ValueError, match="seed must be an integer from 0"):
        load_digits(seed=-1)
    with pytest.raises(ValueError, match="must be a dense tensor, got layout torch.sparse_coo"):
        check_matrix(x.to_sparse())
    with pytest.raises(ValueError, match="is a meta tensor: it holds no values"):
        check_matrix(torch.empty(3, 3, device="meta"))


def test_training_a_vae_with_the_iwae_objective_uses_k_samples():
    """train_vector(vae, objective='iwae') took K = 1, which is the ELBO: no IWAE at all.
    Without num_samples the objective's own default now applies: IWAE_DEFAULT_K for
    'iwae', one draw for 'elbo'."""
    from graphvae.vector import build_vector_model, train_vector
    from graphvae.vector.models import IWAE_DEFAULT_K

    x = (torch.rand(50, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    vae = build_vector_model("vae", 6, latent_dim=2, hidden=(4,))
    train_vector(vae, x, x, objective="iwae", epochs=1, progress=False)
    assert (vae.objective, vae.num_samples) == ("iwae", IWAE_DEFAULT_K) and IWAE_DEFAULT_K > 1
    iwae = build_vector_model("iwae", 6, latent_dim=2, hidden=(4,), num_samples=7)
    train_vector(iwae, x, x, objective="elbo", epochs=1, progress=False)
    assert (iwae.objective, iwae.num_samples) == ("elbo", 1)
    train_vector(iwae, x, x, epochs=1, progress=False)          # None: the model's own
    assert (iwae.objective, iwae.num_samples) == ("elbo", 1)


def test_rows_a_model_cannot_score_are_refused():
    """A NaN row gave an estimate of NaN; a Bernoulli model scored x = 2 at 3.19 'nats' (not
    a −log p); evaluate_bound on rows of the wrong width failed inside a matrix product;
    epochs = 2.5 inside range(); a NaN noise level was taken."""
    from graphvae.vector.layers import Corruption
    from graphvae.vector.train import evaluate_bound

    bern = build_vector_model("vae", 4, latent_dim=2, hidden=(3,))
    x = (torch.rand(6, 4, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    for bad, message in [(x * 2, "entries other than 0 and 1"),
                         (x.masked_fill(x > 0, float("nan")), "not finite")]:
        with pytest.raises(ValueError, match=message):
            estimate_nll(bern, bad, num_samples=3)
        with pytest.raises(ValueError, match=message):
            train_vector(bern, bad, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"x must be \(n, 4\), got \(6, 3\)"):
        evaluate_bound(bern, x[:, :3])
    for name in ("epochs", "batch_size"):
        with pytest.raises(ValueError, match=f"{name} must be a whole number >= 1, got 2.5"):
            train_vector(bern, x, progress=False, **{"epochs": 1, name: 2.5})
    for level in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="corruption.s level must be a finite standard"):
            Corruption("gaussian", level)
    assert math.isfinite(estimate_nll(bern, x, num_samples=3))     # 0/1 rows: scored


@pytest.mark.parametrize("kind", ["vae", "dae"])
def test_model_methods_take_float64_rows_as_the_float32_rows_they_are(kind):
    """float64 rows (numpy's default, kept by the loaders) met float32 weights in every
    method that takes rows: ``log_marginal``, ``bound``, ``encode``, ``reconstruct`` ...
    raised a dtype error, while ``estimate_nll`` cast them. Each now gives what the same
    rows in float32 give."""
    from graphvae.vector.models import build_vector_model
    torch.manual_seed(0)
    model = build_vector_model(kind, 6, likelihood="bernoulli")
    x = (torch.rand(5, 6, dtype=torch.float64) < 0.5).double()
    assert x.dtype == torch.float64
    eps = torch.randn(1, 5, model.config.latent_dim)

    def same(a, b):
        assert a.dtype == torch.float32 and torch.equal(a, b)

    same(model.bound(x, eps=eps).value, model.bound(x.float(), eps=eps).value)
    same(model.codes(x), model.codes(x.float()))
    same(model.reconstruct(x), model.reconstruct(x.float()))
    same(model.interpolate(x[0], x[1], 3), model.interpolate(x[0].float(), x[1].float(), 3))
    same(model.log_likelihood(x, model.codes(x)), model.log_likelihood(x.float(),
                                                                       model.codes(x)))
    same(model.codes(x.bool()), model.codes(x.float()))          # bool rows too
    if kind == "vae":
        g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
        same(model.log_marginal(x, 20, 7, g()), model.log_marginal(x.float(), 20, 7, g()))
        same(model.log_marginal(x.long(), 20, 7, g()), model.log_marginal(x.float(), 20, 7,
                                                                          g()))


def test_a_mat_files_shape_is_read_from_its_header_before_its_data(tmp_path):
    """A sparse X of 150e6 x 1 is 208 bytes of .mat file and was made dense (3 GB, 11 s,
    and a 1.2 GB temporary file) before its shape was compared; the header's shape is
    now checked first, against the shape the caller expects or a cap on entries."""
    import scipy.io
    import scipy.sparse

    from graphvae.errors import DataError
    from graphvae.vector.data import load_mnist
    from graphvae.vector.mat_file import read_mat_array
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    scipy.io.savemat(tmp_path / "ok.mat", {"X": x, "other": np.zeros(2)})
    assert np.array_equal(read_mat_array(tmp_path / "ok.mat"), x)
    assert np.array_equal(read_mat_array(tmp_path / "ok.mat", shape=(3, 4)), x)
    with pytest.raises(DataError, match=r"ok.mat: X has shape \(3, 4\), expected \(4, 3\)$"):
        read_mat_array(tmp_path / "ok.mat", shape=(4, 3))
    with pytest.raises(DataError, match=r"ok.mat: X has shape \(3, 4\), more than 11 entries"):
        read_mat_array(tmp_path / "ok.mat", max_entries=11)
    scipy.io.savemat(tmp_path / "nox.mat", {"Y": x})
    with pytest.raises(DataError, match="nox.mat: cannot read the .mat file .holds no "
                                        "variable named X"):
        read_mat_array(tmp_path / "nox.mat")
    root = tmp_path / "root" / "mnist"
    root.mkdir(parents=True)
    scipy.io.savemat(root / "binarized_mnist_train.mat",
                     {"X": scipy.sparse.csc_matrix((150_000_000, 1))})
    assert (root / "binarized_mnist_train.mat").stat().st_size < 1000
    with pytest.raises(DataError, match=r"binarized_mnist_train.mat: X has shape "
                                        r"\(150000000, 1\), expected \(50000, 784\)"):
        load_mnist(tmp_path / "root")
    with pytest.raises(DataError, match=r"more than 134,217,728 entries"):
        read_mat_array(root / "binarized_mnist_train.mat")
    # two variables named X: whosmat reported the last and loadmat read the first (190e6
    # x 1, 1.5 MB compressed, 1.7 GB read); refused before either is read
    import struct
    import zlib

    def compressed_x(rows, cols):
        n = rows * cols * 8
        body = (struct.pack("<IIII", 6, 8, 6, 0) + struct.pack("<IIii", 5, 8, rows, cols)
                + struct.pack("<HH", 1, 1) + b"X\x00\x00\x00" + struct.pack("<II", 9, n)
                + b"\x00" * n)
        data = zlib.compress(struct.pack("<II", 14, len(body)) + body)
        return struct.pack("<II", 15, len(data)) + data

    head = (b"MATLAB 5.0 MAT-file".ljust(116, b" ") + b"\x00" * 8
            + struct.pack("<H", 0x0100) + b"IM")
    (tmp_path / "twice.mat").write_bytes(head + compressed_x(5, 1) + compressed_x(3, 4))
    (tmp_path / "once.mat").write_bytes(head + compressed_x(3, 4))
    assert np.array_equal(read_mat_array(tmp_path / "once.mat"), np.zeros((3, 4)))
    with pytest.raises(DataError, match=r"twice.mat: X is defined twice$"):
        read_mat_array(tmp_path / "twice.mat", shape=(3, 4))


@pytest.mark.slow  # 3 s: 1.2 GB of zeros compressed
def test_a_mat_data_element_larger_than_its_header_stops_at_the_childs_limit(tmp_path):
    """An X whose header says (3, 4) but whose data element holds 1.2 GB (5 MB of file,
    compressed) was read whole, under a limit of 4 GiB plus 64 bytes a byte of file,
    before its reshape failed. The reader's address space is now sized from the shape it
    expects (1 GiB plus 16 bytes an entry), so the read fails there."""
    import struct
    import zlib

    from graphvae.errors import DataError
    from graphvae.vector.mat_file import read_mat_array
    n = 1_200_000_000
    head = (b"MATLAB 5.0 MAT-file".ljust(116, b" ") + b"\x00" * 8
            + struct.pack("<H", 0x0100) + b"IM")
    body_head = (struct.pack("<IIII", 6, 8, 6, 0) + struct.pack("<IIii", 5, 8, 3, 4)
                 + struct.pack("<HH", 1, 1) + b"X\x00\x00\x00" + struct.pack("<II", 9, n))
    c = zlib.compressobj(1)
    parts = [c.compress(struct.pack("<II", 14, len(body_head) + n) + body_head)]
    zeros = b"\x00" * (1 << 26)
    for _ in range(n // len(zeros)):
        parts.append(c.compress(zeros))
    parts.append(c.compress(b"\x00" * (n % len(zeros))) + c.flush())
    data = b"".join(parts)
    (tmp_path / "big.mat").write_bytes(head + struct.pack("<II", 15, len(data)) + data)
    assert (tmp_path / "big.mat").stat().st_size < 6_000_000
    with pytest.raises(DataError, match=r"big.mat: cannot read the .mat file \(.*Memory"):
        read_mat_array(tmp_path / "big.mat", shape=(3, 4))


def test_pca_signs_make_each_components_largest_entry_positive():
    """Rows along (1, −2) and, far less, along (2, 1), which is orthogonal to it: the
    components are (1, −2)/√5 and (2, 1)/√5 up to sign, and the sign puts each one's
    largest-magnitude entry positive: (−1, 2)/√5, (2, 1)/√5, for the data and its negation
    alike (an SVD may return either sign)."""
    x = torch.tensor([[1.0, -2.0], [-1.0, 2.0], [2.0, -4.0], [-2.0, 4.0], [0.2, 0.1],
                      [-0.2, -0.1]], dtype=torch.float64)
    want = torch.tensor([[-1.0, 2.0], [2.0, 1.0]], dtype=torch.float64) / math.sqrt(5)
    for data in (x, -x):
        assert torch.allclose(pca(data, 2).components, want, atol=1e-12)


def test_l2_ordering_weights_are_the_scale_times_i_over_k():
    assert LinearAE(4, 2, "l2", l2_scale=0.1).lam.tolist() == pytest.approx([0.05, 0.1])
    assert LinearAE(4, 3, "rotation", l2_scale=0.1).lam.tolist() == pytest.approx([0.1] * 3)


def test_linear_ae_settings_that_cannot_work_are_named():
    """PCA and the linear AE name what they cannot do: more components than the data
    has rows (an SVD of 3 rows has 3), a code wider than the input, an unknown
    ordering, a negative L2 weight. Ordering "none" has no L2 term."""
    x = torch.randn(3, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"k must be in 1\.\.3 for data of shape \(3, 5\), got 4"):
        pca(x, 4)
    with pytest.raises(ValueError, match=r"k must be in 1\.\.3, got 4"):
        LinearAE(3, 4)
    with pytest.raises(ValueError, match="unknown ordering 'pca'"):
        LinearAE(4, 2, "pca")
    with pytest.raises(ValueError, match=r"l2 needs 2 non-negative weights, got \[0\.1, -0\.1\]"):
        LinearAE(4, 2, l2=[0.1, -0.1])
    assert LinearAE(4, 2, l2_scale=0.3).lam.tolist() == [0.0, 0.0]


def test_linear_ae_loss_codes_and_reconstruction_by_hand():
    """With W1 = [[1, 0, 0]], W2 = [[1], [2], [0]], λ = 0.5 and the mean (1, 1, 1): the code
    of (2, 3, 4) is 1 and its reconstruction (1, 2, 0) + (1, 1, 1) = (2, 3, 1). On the
    centred rows (1, 0, 0) and (0, 1, 0), the residuals are (0, −2, 0) and (0, 1, 0), so
    the loss is ½ · (4 + 1) / 2 = 1.25, plus ½ · 0.5 · (‖W1 row‖² + ‖W2 column‖²) =
    ¼ · (1 + 5) = 1.5: 2.75. The weights start at ``init_scale / √d`` times normal draws."""
    model = LinearAE(3, 1, l2=[0.5])
    with torch.no_grad():
        model.W1.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
        model.W2.copy_(torch.tensor([[1.0], [2.0], [0.0]]))
        model.mean.fill_(1.0)
    x = torch.tensor([[2.0, 3.0, 4.0]], dtype=torch.float64)
    assert model.encode(x).tolist() == [[1.0]]
    assert model.reconstruct(x).tolist() == [[2.0, 3.0, 1.0]]
    xc = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    assert float(model.loss(xc).detach()) == pytest.approx(2.75, rel=1e-15)
    g = torch.Generator().manual_seed(5)
    fresh = LinearAE(400, 2, init_scale=0.3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(fresh.W1.detach(), torch.randn(2, 400, generator=g,
                                                              dtype=torch.float64) * 0.015)


def test_one_linear_ae_step_is_the_documented_update():
    """One full-batch step from the same start: the default rate is 0.5 / λ_max of the
    (1/n) covariance, and "rotation" subtracts Γ W1 and W2 Γᵀ from the gradients, with
    Γ = ½ (triu(YYᵀ/n, 1) − its transpose) of the codes Y; the fit counts the steps it
    took when the loss stops changing (readings at steps 1, 100 and 200)."""
    x, _ = synthetic_spectrum(200, [4.0, 2.0, 1.0, 0.5], seed=1)
    for ordering in ("none", "rotation"):
        model = LinearAE(4, 2, ordering, generator=torch.Generator().manual_seed(0))
        hand = LinearAE(4, 2, ordering, generator=torch.Generator().manual_seed(0))
        train_linear_ae(model, x, steps=1, progress=False)
        xc = x - x.mean(0)
        lr = 0.5 / float(torch.linalg.eigvalsh(xc.T @ xc / 200).max())
        hand.loss(xc).backward()
        w1, w2 = hand.W1.detach(), hand.W2.detach()
        g1, g2 = hand.W1.grad.clone(), hand.W2.grad.clone()
        if ordering == "rotation":
            y = xc @ w1.T
            upper = torch.triu(y.T @ y / 200, diagonal=1)
            gamma = 0.5 * (upper - upper.T)
            g1, g2 = g1 - gamma @ w1, g2 - w2 @ gamma.T
        torch.testing.assert_close(model.W1.detach(), w1 - lr * g1)
        torch.testing.assert_close(model.W2.detach(), w2 - lr * g2)
    model = LinearAE(4, 2, generator=torch.Generator().manual_seed(0))
    fit = train_linear_ae(model, x, steps=1000, tol=1e9, progress=False)
    assert fit.steps == 200 and len(fit.losses) == 3


def test_alignment_spectrum_and_the_comparisons_settings():
    """A decoder column of zeros lies on no axis (alignment 1, not NaN); the synthetic rows
    have the covariance Q diag(λ) Qᵀ (eigenvalues 9, 4, 1 within 5 % on 20,000 rows, not
    their squares); the comparison sets λ from the k-th eigenvalue (0.5 σ_k² · i/k for
    "l2", 0.01 σ_k² for "rotation") and reports the worst axis and the mean apart."""
    from graphvae.vector.linear import compare_pca_linear_ae
    u = torch.eye(3, 2, dtype=torch.float64)
    w = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    assert axis_alignment(u, w).tolist() == [0.0, 1.0]
    x, q = synthetic_spectrum(20000, [9.0, 4.0, 1.0], seed=2)
    eig = torch.linalg.eigvalsh(torch.cov(x.T)).flip(0)
    assert torch.allclose(eig, torch.tensor([9.0, 4.0, 1.0], dtype=torch.float64), rtol=0.05)
    x, _ = synthetic_spectrum(300, [4.0, 2.0, 1.0, 0.5], seed=1)
    out = compare_pca_linear_ae(x, 2, steps=1, progress=False, orderings=("l2", "rotation"))
    sk = float(pca(x, 2).explained_variance[-1])
    l2, rot = out["linear_ae"]
    assert l2["l2_weights"] == pytest.approx([0.25 * sk, 0.5 * sk], rel=1e-12)
    assert rot["l2_weights"] == pytest.approx([0.01 * sk] * 2, rel=1e-12)
    assert l2["axis_alignment_max"] > l2["axis_alignment_mean"]


def test_train_vector_settings_and_the_modes_it_leaves():
    """A rate of 0 and a negative weight decay are named; patience without validation data
    stops nothing (every epoch runs); scoring a bound puts the model back in the mode it
    was in; bf16 runs the training steps under autocast (the per-epoch training bound
    moves, the float32 weights stay)."""
    from graphvae.vector.train import evaluate_bound
    torch.manual_seed(0)
    x = (torch.rand(40, 6) < 0.5).float()
    model = build_vector_model("vae", 6, latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got 0"):
        train_vector(model, x, lr=0.0, progress=False)
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -0.1"):
        train_vector(model, x, weight_decay=-0.1, progress=False)
    res = train_vector(model, x, epochs=3, patience=1, progress=False)
    assert len(res.history) == 3
    for training in (True, False):
        model.train(training)
        evaluate_bound(model, x)
        assert model.training is training
    start = copy.deepcopy(model.state_dict())
    bounds = {}
    for bf16 in (False, True):
        model.load_state_dict(start)
        res = train_vector(model, x, epochs=1, batch_size=40, bf16=bf16, progress=False)
        bounds[bf16] = res.history[0]["train_bound"]
        assert all(p.dtype == torch.float32 for p in model.parameters())
    assert bounds[True] != bounds[False]


def test_refining_a_denoising_vae_trains_on_clean_rows_and_keeps_its_corruption():
    """``refine_encoder`` trains the encoder on clean rows: a VAE with an input corruption
    refines to the same weights as the same VAE without one, and the refined copy keeps
    the model's corruption afterwards."""
    torch.manual_seed(0)
    x = torch.randn(30, 5)
    noisy = build_vector_model("vae", 5, latent_dim=2, hidden=(8,), likelihood="gaussian",
                               corruption="gaussian", noise_level=1.0)
    clean = build_vector_model("vae", 5, latent_dim=2, hidden=(8,), likelihood="gaussian")
    clean.load_state_dict(noisy.state_dict())
    a, _ = refine_encoder(noisy, x, epochs=2, num_samples=3, progress=False)
    b, _ = refine_encoder(clean, x, epochs=2, num_samples=3, progress=False)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    assert a.corruption == noisy.corruption and a.corruption is not None
    assert not torch.equal(a.encoder[0].weight, noisy.encoder[0].weight)


def test_a_checkpoint_whose_weights_do_not_fit_is_named(tmp_path):
    """A weight of another shape, or an integer weight where the model holds floats, is a
    one-line DataError naming the file (torch's size mismatch was a traceback; an integer
    weight was taken as numbers)."""
    from graphvae.errors import DataError
    model = build_vector_model("vae", 5, latent_dim=2, hidden=(8,))
    good = tmp_path / "m.pt"
    save_checkpoint(model, good)
    name = "encoder.0.weight"
    for label, value, problem in (
            ("shape", torch.zeros(8, 4), "the weights do not fit the saved config"),
            ("dtype", torch.zeros(8, 5, dtype=torch.int64),
             f"the weights do not fit the model: {name} is int64, the model needs float32")):
        ckpt = torch.load(good, weights_only=True)
        ckpt["state_dict"][name] = value
        path = tmp_path / f"{label}.pt"
        torch.save(ckpt, path)
        with pytest.raises(DataError, match=re.escape(f"{path}: {problem}")):
            load_vector_model(path)


def test_the_mat_reader_runs_isolated_and_names_what_it_cannot_read(tmp_path, monkeypatch):
    """The child that runs SciPy's reader starts isolated (``python -I``): a ``numpy.py``
    in the working directory, where a downloaded data set may sit, is not imported (it
    was, without -I). A sparse X comes back dense; a text X is named as not numeric; a
    reader that crashes or runs out of time is one line naming the file."""
    import subprocess

    import scipy.io
    import scipy.sparse

    from graphvae.errors import DataError
    from graphvae.vector.mat_file import read_mat_array
    x = np.arange(12.0).reshape(3, 4)
    x[0, 1] = 0.0
    scipy.io.savemat(tmp_path / "sparse.mat", {"X": scipy.sparse.csc_matrix(x)})
    scipy.io.savemat(tmp_path / "text.mat", {"X": "hello"})
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "imported"
    (work / "numpy.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                   f"raise SystemExit('the shadow numpy ran')\n")
    monkeypatch.chdir(work)
    got = read_mat_array(tmp_path / "sparse.mat")
    assert isinstance(got, np.ndarray) and np.array_equal(got, x) and not marker.exists()
    with pytest.raises(DataError, match=r"text\.mat: cannot read the \.mat file \(X is not a "
                                        r"numeric matrix \(dtype <U5\)\)$"):
        read_mat_array(tmp_path / "text.mat")
    outcomes = {"crash": subprocess.CompletedProcess([], -11, "", ""),
                "time": subprocess.TimeoutExpired("python", 600)}
    for kind, message in (("crash", "the .mat reader crashed on this file (signal 11): it is "
                                    "damaged"),
                          ("time", "reading the .mat file took over 10 minutes")):
        def fake(*args, kind=kind, **kwargs):
            if isinstance(outcomes[kind], Exception):
                raise outcomes[kind]
            return outcomes[kind]
        monkeypatch.setattr(subprocess, "run", fake)
        with pytest.raises(DataError, match=re.escape(f"sparse.mat: {message}")):
            read_mat_array(tmp_path / "sparse.mat")


def test_vector_data_fingerprints_thresholds_and_splits(tmp_path):
    """The fingerprint tells apart the same bytes split otherwise and the same rows under
    another name; binarizing keeps 0.5 itself at 0 (strictly above the threshold); the
    seeded 80/10/10 split keeps at least one row for validation and for test (4 rows:
    2/1/1) and refuses 2 rows, which would leave no training row; an upper-case suffix
    is the same kind of file."""
    from graphvae.errors import DataError
    from graphvae.vector.data import VectorData, load_matrix, load_vector_data
    rows = torch.arange(12.0).reshape(6, 2)
    a = VectorData(rows[:4], rows[4:5], rows[5:], "a")
    assert a.fingerprint() != VectorData(rows[:3], rows[3:5], rows[5:], "a").fingerprint()
    assert a.fingerprint() != VectorData(rows[:4], rows[4:5], rows[5:], "b").fingerprint()
    assert a.fingerprint() == VectorData(rows[:4].clone(), rows[4:5], rows[5:],
                                         "a").fingerprint()
    grey = torch.tensor([[0.5, 0.51, 0.49]])
    assert VectorData(grey, grey, grey, "g").binarized().train.tolist() == [[0.0, 1.0, 0.0]]
    four = "0.1,0.2\n0.3,0.4\n0.5,0.6\n0.7,0.8\n"
    (tmp_path / "four.csv").write_text(four)
    data = load_matrix(tmp_path / "four.csv")
    assert (data.train.size(0), data.valid.size(0), data.test.size(0)) == (2, 1, 1)
    (tmp_path / "two.csv").write_text("0.1,0.2\n0.3,0.4\n")
    with pytest.raises(DataError, match="2 rows are too few to split into train/valid/test"):
        load_matrix(tmp_path / "two.csv")
    (tmp_path / "ROWS.CSV").write_text(four)
    assert load_vector_data(str(tmp_path / "ROWS.CSV")).train.size(0) == 2


def test_check_matrix_keeps_every_value_it_takes_and_names_what_it_cannot(tmp_path):
    """Big-endian floats and 16-bit unsigned integers (which torch does not hold) are read
    as their values; integers beyond ±2²⁴ stay exact in float64, the negative ones too;
    no columns is empty; 1e39 is beyond float32, and a .csv names its line and column;
    data whose entries reach the scale limit exactly is refused."""
    from graphvae.errors import DataError
    from graphvae.vector.data import (
        SCALE_LIMIT,
        VectorData,
        check_matrix,
        check_scale,
        load_matrix,
    )
    big_endian = np.array([[1.5, -2.0], [3.0, 4.25]], dtype=">f8")
    assert check_matrix(big_endian).tolist() == [[1.5, -2.0], [3.0, 4.25]]
    wide = check_matrix(np.array([[1, 65535]], dtype=np.uint16))
    assert wide.tolist() == [[1.0, 65535.0]]
    low = check_matrix(np.array([[-(2 ** 24) - 1, 0]], dtype=np.int64))
    assert low.dtype == torch.float64 and low.tolist() == [[-(2 ** 24) - 1, 0.0]]
    with pytest.raises(DataError, match=r"data is empty \(shape \(3, 0\)\)"):
        check_matrix(np.zeros((3, 0)))
    with pytest.raises(DataError, match="1 NaN, infinite or beyond-float32 entries"):
        check_matrix(np.array([[1e39, 0.0]]))
    (tmp_path / "huge.csv").write_text("1,2\n3,1e39\n5,6\n7,8\n")
    with pytest.raises(DataError, match=r"huge\.csv:2: 1 NaN, infinite or beyond-float32 "
                                        r"entries \(the first in column 2\)"):
        load_matrix(tmp_path / "huge.csv")
    edge = torch.tensor([[SCALE_LIMIT, 0.0]])
    with pytest.raises(DataError, match="has entries up to 100 in magnitude"):
        check_scale(VectorData(edge, edge, edge, "edge"))
    check_scale(VectorData(edge / 2, edge / 2, edge / 2, "half"))

