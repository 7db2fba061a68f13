"""The planted parameters of a degree-corrected SBM (:class:`PlantedSBM`, drawn by
:func:`graphvae.datasets.sbm.make_sbm`, whose docstring gives the model), their file, the
fingerprint of the graph they were drawn for, and the oracle.

Given the planted parameters, the edges are independent, so for a set of held-out
pairs (held-out edges against sampled non-edges) the likelihood ratio of "edge" to
"non-edge" is ``p_ij / (1 − p_ij)`` up to a constant, a monotone function of
``p_ij = P(i ~ j)``. Ranking the pairs by :func:`oracle_scores` is therefore
Bayes-optimal: its expected ROC AUC and average precision are the best any model of
the observed graph can expect; a model's scores are judged against them.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graphvae.errors import DataError, describe
from graphvae.io import atomic_path, check_zip_stored, require_file

_KEYS = ("blocks", "theta", "omega")


@dataclass(eq=False)
class PlantedSBM:
    """The planted parameters of a degree-corrected SBM.

    ``blocks`` (n,) int64, the block of each node in ``[0, K)``; ``theta`` (n,) float64
    degree propensities ``≥ 0``; ``omega`` (K, K) float64 symmetric block-pair rates
    ``≥ 0``. The expected number of edges between distinct nodes ``i`` and ``j`` of the
    Poisson multigraph is ``θ_i θ_j ω_{b_i b_j}``.
    """

    blocks: np.ndarray
    theta: np.ndarray
    omega: np.ndarray
    #: :func:`edge_fingerprint` of the graph drawn from these parameters (make-graph
    #: writes it; ``None`` in files of older versions): a graph given with them is checked
    graph: str | None = None

    def __post_init__(self) -> None:
        self.blocks, self.theta, self.omega = _validated(self.blocks, self.theta, self.omega)

    @property
    def num_nodes(self) -> int:
        return int(self.blocks.shape[0])

    @property
    def num_blocks(self) -> int:
        return int(self.omega.shape[0])

    def rate(self, i, j):
        """``λ_ij = θ_i θ_j ω_{b_i b_j}`` for node-index arrays or tensors ``i``, ``j``
        (broadcast together), 0 where ``i == j`` (the graph has no self-loops). float64,
        a tensor if either input is one."""
        a, b = self._index(i), self._index(j)
        lam = self.theta[a] * self.theta[b] * self.omega[self.blocks[a], self.blocks[b]]
        lam = np.where(a == b, 0.0, lam)
        return _like(lam, i, j)

    def prob(self, i, j):
        """``P(i ~ j) = 1 − exp(−λ_ij)``, the probability that ``i`` and ``j`` are joined
        in the sampled simple graph (0 where ``i == j``)."""
        lam = np.asarray(self.rate(as_numpy(i), as_numpy(j)))
        return _like(-np.expm1(-lam), i, j)

    def _index(self, x) -> np.ndarray:
        a = as_numpy(x)
        if a.dtype.kind not in "iu":
            raise ValueError(f"node indices must be integers, got dtype {a.dtype}")
        if a.size and (int(a.min()) < 0 or int(a.max()) >= self.num_nodes):
            raise ValueError(f"node index out of range [0, {self.num_nodes}): "
                             f"{int(a.min())}..{int(a.max())}")
        return a.astype(np.int64, copy=False)

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``blocks``, ``theta`` and ``omega`` to a plain ``.npz`` (no pickle),
        atomically (a temporary file beside ``path``, then a rename)."""
        path = Path(path)
        arrays = {"blocks": self.blocks, "theta": self.theta, "omega": self.omega}
        if self.graph is not None:
            arrays["graph"] = np.array(self.graph)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PlantedSBM:
        """Read what :meth:`save` wrote; anything missing, malformed or out of range is a
        one-line :class:`~graphvae.errors.DataError` (a ``ValueError``) naming the file."""
        path = Path(path)
        require_file(path)
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
            if magic != b"PK\x03\x04":
                raise DataError(path, "not an .npz archive (the zip file numpy.savez writes)")
            check_zip_stored(path)
            npz = np.load(path, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(path, "not an .npz archive")
            with npz:
                missing = [k for k in _KEYS if k not in npz.files]
                if missing:
                    raise DataError(path, f"missing array(s) {', '.join(missing)}; expected "
                                          f"{', '.join(_KEYS)}")
                arrays = {k: npz[k] for k in _KEYS}
                stored = npz["graph"] if "graph" in npz.files else None
        except DataError:
            raise
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise DataError(path, f"not a readable .npz of planted parameters "
                                  f"({describe(err)})") from None
        graph = None
        if stored is not None:
            if not isinstance(stored, np.ndarray) or stored.dtype.kind != "U" or \
                    stored.shape != () or \
                    not re.fullmatch(r"[0-9a-f]{64}", str(stored)):
                raise DataError(path, "its graph fingerprint is not a SHA-256 hex digest")
            graph = str(stored)
        try:
            return cls(arrays["blocks"], arrays["theta"], arrays["omega"], graph)
        except ValueError as err:
            raise DataError(path, str(err)) from None


def edge_fingerprint(edge_index: torch.Tensor | np.ndarray, num_nodes: int) -> str:
    """SHA-256 of a simple undirected graph: ``n`` and its sorted distinct edge keys
    ``min · n + max`` (self-loops, directions and repeats left out), as int64. Any listing
    of the same graph gives the same digest."""
    e = np.asarray(edge_index.cpu() if isinstance(edge_index, torch.Tensor) else edge_index,
                   dtype=np.int64)
    lo, hi = np.minimum(e[0], e[1]), np.maximum(e[0], e[1])
    keys = np.unique((lo * num_nodes + hi)[lo != hi])
    h = hashlib.sha256(np.int64(num_nodes).tobytes())
    h.update(keys.astype("<i8").tobytes())
    return h.hexdigest()


def _validated(blocks, theta, omega) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    blocks, theta, omega = as_numpy(blocks), as_numpy(theta), as_numpy(omega)
    if blocks.dtype.kind not in "iu":
        raise ValueError(f"blocks must be integers, got dtype {blocks.dtype}")
    for name, a in (("theta", theta), ("omega", omega)):
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be real numbers, got dtype {a.dtype}")
    if blocks.ndim != 1 or blocks.shape[0] < 1:
        raise ValueError(f"blocks must be a non-empty vector, got shape {blocks.shape}")
    if theta.shape != blocks.shape:
        raise ValueError(f"theta must have shape {blocks.shape} like blocks, got {theta.shape}")
    if omega.ndim != 2 or omega.shape[0] != omega.shape[1] or omega.shape[0] < 1:
        raise ValueError(f"omega must be a non-empty square matrix, got shape {omega.shape}")
    blocks = blocks.astype(np.int64, copy=False)
    theta = theta.astype(np.float64, copy=False)
    omega = omega.astype(np.float64, copy=False)
    k = omega.shape[0]
    if int(blocks.min()) < 0 or int(blocks.max()) >= k:
        raise ValueError(f"block ids must lie in [0, {k}) for a {k}x{k} omega, got "
                         f"{int(blocks.min())}..{int(blocks.max())}")
    for name, a in (("theta", theta), ("omega", omega)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds NaN or infinite values")
        if (a < 0).any():
            raise ValueError(f"{name} holds negative values")
    if not np.array_equal(omega, omega.T):
        raise ValueError("omega must be symmetric")
    t, w = float(theta.max()), float(omega.max())
    if not np.isfinite(t * t * w):        # Python floats: inf, without numpy's warning
        raise ValueError(f"the rates θ_i θ_j ω overflow float64 (largest theta {t:.3g}, "
                         f"largest omega {w:.3g})")
    return blocks, theta, omega


def as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _like(values: np.ndarray, *inputs):
    """``values`` as a tensor if any input is one, else as a numpy array."""
    if any(isinstance(x, torch.Tensor) for x in inputs):
        return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
    return values


def oracle_scores(planted: PlantedSBM, pairs):
    """The planted edge probabilities ``P(i ~ j)`` of the pairs ``pairs`` (2, k): the
    Bayes-optimal scores for ranking held-out pairs (see the module's docstring), a
    tensor if ``pairs`` is one."""
    p = as_numpy(pairs)
    if p.ndim != 2 or p.shape[0] != 2:
        raise ValueError(f"pairs must have shape (2, k), got {tuple(p.shape)}")
    return _like(np.asarray(planted.prob(p[0], p[1])), pairs)


__all__ = ["PlantedSBM", "edge_fingerprint", "oracle_scores"]
