"""Maximum mean discrepancy between two sets of graph statistics, with named kernels.

``MMD²(X, Y) = mean_{x,x'} k(x, x') + mean_{y,y'} k(y, y') − 2 mean_{x,y} k(x, y)``, the
biased (V-statistic) estimate over all pairs, diagonal included — the quantity that
GraphRNN's ``eval/mmd.py`` (You et al., ICML 2018) returns as "MMD" and that GRAN and
GDSS report. It is the square of a distance when the kernel is positive definite, and
this module names it MMD² so; the Gaussian-EMD kernels need not be (GraphRNN's degree
kernel has negative eigenvalues even on six small graphs), and their MMD² can then come
out slightly below 0 (−0.0031 for the degrees of a triangle, a 4-path and a 3-star
against a 3-path, a paw and a 4-cycle; ``tests/test_mmd.py``).

Kernels (``k(x, y) = exp(−d(x, y)² / (2σ²))``) differ in the distance ``d``:

* ``gaussian_emd``: the earth mover's distance between the two histograms as 1-D
  distributions with ground distance ``|i − j| / distance_scaling`` (GraphRNN, GDSS);
  for equal masses it is ``Σ_i |F_x(i) − F_y(i)| / distance_scaling`` with ``F`` the
  cumulative sums.
* ``gaussian_tv``: total variation ``½ Σ_i |x_i − y_i|`` (GRAN, Liao et al. 2019).
* ``gaussian_rbf``: Euclidean distance ``‖x − y‖₂``.

Histograms of different lengths are padded with zeros; with ``normalize`` each is
first scaled to sum 1 (GraphRNN's ``is_hist``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DistanceFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def _pad(samples: Sequence[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(samples), length))
    for i, s in enumerate(samples):
        s = np.asarray(s, dtype=float).ravel()
        out[i, :s.size] = s
    return out


def _emd(a: np.ndarray, b: np.ndarray, distance_scaling: float) -> np.ndarray:
    """Pairwise 1-D EMD ``(N, M)`` between rows of ``a`` and ``b`` (equal total mass)."""
    fa, fb = np.cumsum(a, 1), np.cumsum(b, 1)
    return np.abs(fa[:, None, :] - fb[None, :, :]).sum(-1) / distance_scaling


def _tv(a: np.ndarray, b: np.ndarray, _: float) -> np.ndarray:
    return 0.5 * np.abs(a[:, None, :] - b[None, :, :]).sum(-1)


def _l2(a: np.ndarray, b: np.ndarray, _: float) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


DISTANCES: dict[str, DistanceFn] = {"gaussian_emd": _emd, "gaussian_tv": _tv,
                                    "gaussian_rbf": _l2}


#: The pairwise distances are computed in blocks of rows of ``a`` holding about this many
#: entries of the ``(rows, M, L)`` difference array (128 MB in float64), so the memory of
#: an MMD² grows with the number of kernel values, not with that times the histogram length.
CHUNK_ENTRIES = 1 << 24


def kernel_matrix(a: np.ndarray, b: np.ndarray, kernel: str, sigma: float,
                  distance_scaling: float = 1.0) -> np.ndarray:
    """``k(a_i, b_j)`` for padded, equally long rows."""
    if kernel not in DISTANCES:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(DISTANCES)}")
    for name, value in (("sigma", sigma), ("distance_scaling", distance_scaling)):
        if not 0 < value < np.inf:
            raise ValueError(f"{name} must be a finite number > 0, got {value}")
    distance = DISTANCES[kernel]
    rows = max(1, CHUNK_ENTRIES // max(1, b.shape[0] * a.shape[1]))
    d = np.concatenate([distance(a[i:i + rows], b, distance_scaling)
                        for i in range(0, a.shape[0], rows)]) if a.shape[0] > rows \
        else distance(a, b, distance_scaling)
    # d/σ first: σ² underflows to 0 below σ ≈ 1e-162, and d²/σ² was 0/0 at d = 0 (NaN);
    # (d/σ)² overflowing to inf gives the kernel's limit, 0
    with np.errstate(over="ignore"):
        return np.exp(-0.5 * (d / sigma) ** 2)


def kernel_blocks(samples1: Sequence[np.ndarray], samples2: Sequence[np.ndarray], kernel: str,
                  sigma: float, distance_scaling: float = 1.0, normalize: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel matrices ``k(X, X)``, ``k(Y, Y)`` and ``k(X, Y)`` of two sets, padded and
    (with ``normalize``) scaled as :func:`mmd_squared` does."""
    if len(samples1) == 0 or len(samples2) == 0:
        raise ValueError("MMD needs at least one sample on each side")
    length = max(np.asarray(s).size for s in [*samples1, *samples2])
    a, b = _pad(samples1, length), _pad(samples2, length)
    for side, x in (("first", a), ("second", b)):
        if not np.isfinite(x).all():
            raise ValueError(f"MMD: the {side} set has entries that are not finite numbers")
        if normalize and (x < 0).any():
            raise ValueError(f"MMD: the {side} set has negative entries; normalize=True "
                             f"scales histograms (counts >= 0) to sum 1")
    if normalize:
        a = a / np.maximum(a.sum(1, keepdims=True), 1e-12)
        b = b / np.maximum(b.sum(1, keepdims=True), 1e-12)
    if kernel == "gaussian_emd" and not np.allclose(a.sum(1)[:, None], b.sum(1)[None, :]):
        raise ValueError("gaussian_emd compares histograms of equal mass: " + (
            "an all-zero histogram has none" if normalize else "use normalize=True"))
    k = lambda x, y: kernel_matrix(x, y, kernel, sigma, distance_scaling)  # noqa: E731
    return k(a, a), k(b, b), k(a, b)


def mmd_squared(samples1: Sequence[np.ndarray], samples2: Sequence[np.ndarray], kernel: str,
                sigma: float, distance_scaling: float = 1.0, normalize: bool = True) -> float:
    """Biased MMD² between two sets of histograms / vectors (see the module docstring)."""
    kxx, kyy, kxy = kernel_blocks(samples1, samples2, kernel, sigma, distance_scaling,
                                  normalize)
    return float(kxx.mean() + kyy.mean() - 2 * kxy.mean())
