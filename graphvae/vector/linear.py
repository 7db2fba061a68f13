"""PCA in closed form and the linear autoencoder trained by gradient descent.

A linear AE ``x̂ = W2 W1 x`` (encoder ``W1: k×d``, decoder ``W2: d×k``) trained on
the squared error of centred data reaches PCA's *subspace* but, the loss being
invariant to ``W1 → G W1, W2 → W2 G⁻¹``, not its *axes* (Baldi & Hornik 1989).
Two options make the decoder columns the ordered principal directions:

* ``ordering="l2"``: non-uniform L2, ``+ ½ Σ_i λ_i (‖W1[i,:]‖² + ‖W2[:,i]‖²)`` with
  distinct ``λ_1 < … < λ_k`` (Kunin et al., ICML 2019). The minimum has ``W1 = W2ᵀ``
  and ``W2[:, i] = u_i (1 − λ_i/σ_i²)^{1/2}``: the right axes, shrunk; the
  symmetry is broken only weakly, so convergence is slow (Bao et al. 2020).
* ``ordering="rotation"``: the rotation-augmented gradient of Bao, Lucas, Sachdeva
  & Grosse (NeurIPS 2020): with codes ``Y = W1 X``, the antisymmetric
  ``Γ = ½ (triu(YYᵀ/n, 1) − triu(YYᵀ/n, 1)ᵀ)`` is subtracted as ``ΔW1 ← ∇W1 − Γ W1``,
  ``ΔW2 ← ∇W2 − W2 Γᵀ``. It leaves the fixed points of the loss alone and rotates
  the codes until they are uncorrelated in order of variance. Rotations are the
  only symmetry left once a small *uniform* L2 term ``½ λ (‖W1‖² + ‖W2‖²)`` makes
  ``W1 = W2ᵀ`` at the minimum (Kunin et al.), so this option adds one (``λ =
  l2_scale``): the axes come out ordered, shrunk by ``(1 − λ/σ_i²)^{1/2}``, which
  adds only ``Σ_i λ²/σ_i²`` to the reconstruction error.

Metrics follow Bao et al.: subspace distance ``1 − tr(U Uᵀ W Wᵀ)/k`` with ``W`` the
left singular vectors of the decoder, per-axis alignment ``1 − cos²(w_i, u_i)``, and
the mean squared reconstruction error, which at the optimum equals the sum of the
discarded eigenvalues of the (``1/n``) covariance.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from graphvae.bounds import BoundEstimate
from graphvae.checks import check_count
from graphvae.training import Callback, Converged, FullBatch, GradientHook, fit
from graphvae.vector.data import check_matrix, column_means

ORDERINGS = ("none", "l2", "rotation")


@dataclass
class PCAResult:
    """``components`` (k, d, rows orthonormal, by decreasing variance), ``explained_variance``
    (k,), ``eigenvalues`` (all, of the ``1/n`` covariance), ``mean`` (d,), ``projection``
    (n, k): the codes of the input rows."""

    components: Tensor
    explained_variance: Tensor
    eigenvalues: Tensor
    mean: Tensor
    projection: Tensor

    @property
    def k(self) -> int:
        return int(self.components.size(0))

    def transform(self, x: Tensor) -> Tensor:
        return (x - self.mean) @ self.components.T

    def inverse_transform(self, z: Tensor) -> Tensor:
        return z @ self.components + self.mean

    @property
    def discarded_variance(self) -> float:
        """Σ of the eigenvalues left out: the mean squared error of the rank-k reconstruction."""
        return float(self.eigenvalues[self.k:].sum())


def pca(x, k: int) -> PCAResult:
    """Principal components of the rows of ``x`` by an SVD of the centred data.

    Signs are fixed so that the largest-magnitude entry of each component is positive.
    """
    x = check_matrix(x, "x")
    n, d = x.shape
    if not 1 <= k <= min(n, d):
        raise ValueError(f"k must be in 1..{min(n, d)} for data of shape {(n, d)}, got {k}")
    mean = column_means(x)
    xc = x - mean
    _, s, vh = torch.linalg.svd(xc, full_matrices=False)
    idx = vh.abs().argmax(1)
    signs = torch.sign(vh[torch.arange(vh.size(0)), idx])
    vh = vh * signs[:, None]
    eig = s.pow(2) / n
    comps = vh[:k]
    return PCAResult(comps, eig[:k], eig, mean, xc @ comps.T)


class LinearAE(nn.Module):
    """``x̂ = W2 W1 x`` on centred data; ``ordering`` ∈ {"none", "l2", "rotation"}.

    The L2 weights ``λ_i`` are 0 for ``"none"``, ``l2_scale · i/k`` (distinct,
    increasing) for ``"l2"`` and ``l2_scale`` for every unit for ``"rotation"``;
    ``l2`` overrides them with an explicit list.
    """

    lam: Tensor
    mean: Tensor

    def __init__(self, in_dim: int, k: int, ordering: str = "none",
                 l2: list[float] | None = None, l2_scale: float = 0.1,
                 init_scale: float = 0.1, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        if ordering not in ORDERINGS:
            raise ValueError(f"unknown ordering {ordering!r}: use one of {ORDERINGS}")
        if not 1 <= k <= in_dim:
            raise ValueError(f"k must be in 1..{in_dim}, got {k}")
        self.ordering = ordering
        std = init_scale / math.sqrt(in_dim)
        self.W1 = nn.Parameter(torch.randn(k, in_dim, generator=generator, dtype=dtype) * std)
        self.W2 = nn.Parameter(torch.randn(in_dim, k, generator=generator, dtype=dtype) * std)
        if l2 is not None:
            lam = list(l2)
        elif ordering == "l2":
            lam = [l2_scale * (i + 1) / k for i in range(k)]
        else:
            lam = [l2_scale if ordering == "rotation" else 0.0] * k
        if len(lam) != k or any(v < 0 for v in lam):
            raise ValueError(f"l2 needs {k} non-negative weights, got {lam}")
        self.register_buffer("lam", torch.tensor(lam, dtype=dtype))
        self.register_buffer("mean", torch.zeros(in_dim, dtype=dtype))

    def encode(self, x: Tensor) -> Tensor:
        return (x - self.mean) @ self.W1.T

    def reconstruct(self, x: Tensor) -> Tensor:
        """``x̂ = W2 W1 (x − mean) + mean``."""
        return self.encode(x) @ self.W2.T + self.mean

    def forward(self, xc: Tensor, generator: torch.Generator | None = None) -> BoundEstimate:
        """The model protocol on centred rows ``xc``: the loss (:meth:`loss`) as surrogate and
        its negation as value (a score, not a likelihood bound: the linear AE has none)."""
        loss = self.loss(xc)
        zero = loss.new_zeros(())
        return BoundEstimate(-loss.detach().reshape(1), loss, -loss.detach(), zero)

    def init_kwargs(self) -> dict:
        return {"in_dim": int(self.W1.size(1)), "k": int(self.W1.size(0)),
                "ordering": self.ordering, "l2": self.lam.tolist()}

    def loss(self, xc: Tensor) -> Tensor:
        """``½ mean‖x − W2 W1 x‖²`` (+ the non-uniform L2 term) on centred rows ``xc``."""
        r = xc - (xc @ self.W1.T) @ self.W2.T
        out = 0.5 * r.pow(2).sum(1).mean()
        if bool((self.lam > 0).any()):
            out = out + 0.5 * (self.lam * (self.W1.pow(2).sum(1) + self.W2.pow(2).sum(0))).sum()
        return out

    @torch.no_grad()
    def rotate_gradients(self, xc: Tensor) -> None:
        """Bao et al.'s rotation augmentation, applied to the gradients in place."""
        assert self.W1.grad is not None and self.W2.grad is not None
        y = xc @ self.W1.T                     # (n, k) codes
        cov = y.T @ y / xc.size(0)
        upper = torch.triu(cov, diagonal=1)
        gamma = 0.5 * (upper - upper.T)
        self.W1.grad -= gamma @ self.W1
        self.W2.grad -= self.W2 @ gamma.T


@dataclass
class LinearFit:
    losses: list[float]
    seconds: float
    steps: int


def train_linear_ae(model: LinearAE, x: Tensor, steps: int = 20000, lr: float | None = None,
                    momentum: float = 0.0, tol: float = 0.0, progress: bool = True
                    ) -> LinearFit:
    """Full-batch gradient descent on centred ``x`` (plain by default, as Bao et al. analyse;
    heavy-ball momentum destabilises the rotation term), through
    :func:`graphvae.training.fit` with one step an epoch.

    ``lr`` defaults to ``0.5 / λ_max`` of the data covariance. Stops early when the
    relative change of the loss over 100 steps falls below ``tol`` (0: never); the loss
    is recorded at the first step and every 100th.
    """
    check_count("steps", steps)                 # not fit's "epochs": one step an epoch
    x = check_matrix(x, "x").to(model.W1.dtype)        # numpy too; 2-D, finite
    if x.size(1) != model.mean.numel():
        raise ValueError(f"x has {x.size(1)} columns but the linear AE takes "
                         f"{model.mean.numel()} (one column was spread over every input)")
    with torch.no_grad():
        model.mean.copy_(column_means(x))
    xc = x - model.mean
    if lr is None:
        top = torch.linalg.matrix_norm(xc, ord=2).pow(2) / xc.size(0)
        if not float(top) > 0:
            raise ValueError("the training rows are all the same: there is no variance for "
                             "a linear autoencoder (or PCA) to find")
        lr = 0.5 / float(top)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    converged = Converged(tol, every=100)
    callbacks: list[Callback] = [converged]
    if model.ordering == "rotation":
        callbacks.append(GradientHook(lambda m: m.rotate_gradients(xc)))  # type: ignore[operator]
    try:
        res = fit(model, FullBatch(xc), opt, epochs=steps, callbacks=callbacks,
                  progress=progress, desc=f"linear AE ({model.ordering})")
    except FloatingPointError:
        raise FloatingPointError(f"linear AE diverged; lower lr (was {lr:g})") from None
    return LinearFit(converged.losses, res.seconds, res.epochs)


def _orthonormal_columns(w: Tensor) -> Tensor:
    u, _, _ = torch.linalg.svd(w, full_matrices=False)
    return u


def subspace_distance(u: Tensor, w: Tensor) -> float:
    """``1 − tr(U Uᵀ W Wᵀ)/k``: 0 when the column spans agree, 1 when orthogonal.

    ``u`` (d, k) has orthonormal columns (e.g. ``pca(x, k).components.T``); ``w``
    (d, k) is any basis (a decoder), orthonormalised here. Computed in float64 whatever
    their dtypes (``pca`` of float32 rows against a float64 ``LinearAE`` raised).
    """
    u, wq = u.double(), _orthonormal_columns(w.double())
    k = u.size(1)
    # in [0, 1]; rounding of equal spans gave -4e-16, which metrics.json then showed (a
    # NaN stays NaN: clamped, it read as equal spans)
    d = float(1.0 - torch.trace(u.T @ wq @ wq.T @ u) / k)
    return d if math.isnan(d) else min(1.0, max(0.0, d))


def axis_alignment(u: Tensor, w: Tensor) -> Tensor:
    """``1 − cos²(w_i, u_i)`` for each column i: 0 when decoder column i lies on axis i
    (in float64, whatever the inputs' dtypes)."""
    u, w = u.double(), w.double()
    un = u / u.norm(dim=0, keepdim=True)
    wn = w / w.norm(dim=0, keepdim=True).clamp_min(1e-300)
    return 1.0 - (un * wn).sum(0).pow(2)


def reconstruction_error(x: Tensor, x_hat: Tensor) -> float:
    """Mean over rows of ``‖x − x̂‖²``."""
    return float((x - x_hat).pow(2).sum(1).mean())


def synthetic_spectrum(n: int, eigenvalues: list[float], seed: int = 0,
                       dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """``n`` Gaussian rows with covariance ``Q diag(eigenvalues) Qᵀ`` (Q random orthogonal).

    Returns ``(x, Q)``; ``Q``'s columns are the population principal directions.
    """
    g = torch.Generator().manual_seed(seed)
    d = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=dtype))
    z = torch.randn(n, d, generator=g, dtype=dtype)
    lam = torch.tensor(eigenvalues, dtype=dtype)
    return (z * lam.sqrt()) @ q.T, q


def compare_pca_linear_ae(x: Tensor, k: int, steps: int = 20000, seed: int = 0,
                          progress: bool = True,
                          orderings: tuple[str, ...] = ORDERINGS) -> dict:
    """PCA against a linear AE trained with each ``ordering``: the benchmark's table rows."""
    x = x.to(torch.float64)
    start = time.perf_counter()
    p = pca(x, k)
    pca_s = time.perf_counter() - start
    u = p.components.T
    out: dict = {"n": int(x.size(0)), "d": int(x.size(1)), "k": k, "pca_seconds": pca_s,
                 "discarded_variance": p.discarded_variance,
                 "pca_reconstruction_error": reconstruction_error(
                     x, p.inverse_transform(p.transform(x))),
                 "linear_ae": []}
    for ordering in orderings:
        g = torch.Generator().manual_seed(seed)
        # λ relative to the k-th eigenvalue: small and uniform for "rotation"; for "l2"
        # large enough (λ_i = 0.1..0.5 σ_k²) that the symmetry breaking is visible in `steps`
        scale = (0.5 if ordering == "l2" else 0.01) * float(p.explained_variance[-1])
        model = LinearAE(x.size(1), k, ordering=ordering, generator=g, l2_scale=scale)
        fit = train_linear_ae(model, x, steps=steps, progress=progress)
        with torch.no_grad():
            err = reconstruction_error(x, model.reconstruct(x))
            align = axis_alignment(u, model.W2.detach())
        out["linear_ae"].append({
            "ordering": ordering, "l2_weights": model.lam.tolist(), "steps": fit.steps,
            "seconds": fit.seconds,
            "subspace_distance": subspace_distance(u, model.W2.detach()),
            "axis_alignment_max": float(align.max()), "axis_alignment_mean": float(align.mean()),
            "reconstruction_error": err,
            # None when k = d: PCA then discards nothing, and any error is relative to 0
            "relative_error_vs_discarded": err / p.discarded_variance - 1.0
            if p.discarded_variance > 0 else None,
        })
    return out
