"""Denoising-autoencoder experiments with a known answer (used by the tests and the benchmark).

* :func:`gaussian_denoiser_error`: data from one Gaussian ``N(μ, Σ)``, corruption
  ``x̃ = x + σε``. The optimal denoiser is ``E[x | x̃] = μ + Σ(Σ + σ²I)⁻¹(x̃ − μ)``;
  the trained DAE's output is compared with it on fresh noisy points.
* :func:`spiral_field_cosine`: points on a 2-D Archimedean spiral; near the curve
  the DAE's vector field ``r(x̃) − x̃`` should point at the nearest curve point
  (Alain & Bengio 2014: ``r(x) − x ≈ σ² ∇ log p(x)``).
"""

from __future__ import annotations

import math

import torch

from graphvae.vector.models import build_vector_model
from graphvae.vector.train import train_vector


def gaussian_denoiser_error(seed: int = 0, dim: int = 3, noise: float = 0.3,
                            epochs: int = 120, batch_size: int = 1000) -> float:
    """``mean‖r(x̃) − r*(x̃)‖ / mean‖r*(x̃) − μ‖`` on 2000 fresh noisy points."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=g)
    cov = a @ a.T + 0.5 * torch.eye(dim)
    mu = torch.randn(dim, generator=g) * 2
    chol = torch.linalg.cholesky(cov)
    x = mu + torch.randn(20000, dim, generator=g) @ chol.T
    torch.manual_seed(seed)
    model = build_vector_model("dae", dim, latent_dim=dim, hidden=(64, 64),
                               likelihood="gaussian", variance=1.0, corruption="gaussian",
                               noise_level=noise)
    train_vector(model, x, None, epochs=epochs, batch_size=batch_size, lr=2e-3, progress=False,
               seed=seed)
    clean = mu + torch.randn(2000, dim, generator=g) @ chol.T
    noisy = clean + noise * torch.randn(2000, dim, generator=g)
    best = mu + (noisy - mu) @ torch.linalg.solve(cov + noise**2 * torch.eye(dim), cov).T
    out = model.reconstruct(noisy)
    return float((out - best).norm(dim=1).mean() / (best - mu).norm(dim=1).mean())


def spiral_field_cosine(seed: int = 0, noise: float = 0.05, epochs: int = 60
                        ) -> tuple[float, int]:
    """Mean cosine between ``r(x̃) − x̃`` and the direction to the nearest curve point, over
    test points at distance ``σ/2 .. 2σ`` from the curve; and how many such points."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = 1.0, 1.0 + 3 * math.pi

    def curve(t: torch.Tensor) -> torch.Tensor:
        return torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / 5

    def draw(n: int) -> torch.Tensor:  # uniform in arc length (∝ t² on this spiral)
        return torch.sqrt(lo**2 + torch.rand(n, generator=g) * (hi**2 - lo**2))

    torch.manual_seed(seed)
    model = build_vector_model("dae", 2, latent_dim=2, hidden=(128, 128), likelihood="gaussian",
                               variance=1.0, corruption="gaussian", noise_level=noise)
    train_vector(model, curve(draw(20000)), None, epochs=epochs, batch_size=200, lr=2e-3,
               progress=False, seed=seed)
    dense = curve(torch.linspace(lo, hi, 20000))
    p = curve(draw(3000)) + noise * torch.randn(3000, 2, generator=g)
    dist, idx = torch.cdist(p, dense).min(1)
    cos = torch.nn.functional.cosine_similarity(model.vector_field(p), dense[idx] - p, dim=1)
    near = (dist > noise / 2) & (dist < 2 * noise)
    return float(cos[near].mean()), int(near.sum())
