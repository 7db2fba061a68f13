"""The MMD² a sampler of a pool of graphs expects, in closed form: the score of a model that
copies its training graphs (:func:`expected_mmd`), the lowest any weighting of a pool can
expect against a given reference set (:meth:`PoolMMD.lowest`), and whether a protocol's
kernels are positive definite on a set of graphs (:func:`kernel_min_eigenvalues`).
``benchmarks/sampling_noise.py`` uses them to say what a benchmark's MMD² can and cannot
show. Statistics and protocols are those of :mod:`graphvae.evaluation.graph_stats`.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
from scipy.linalg import eigvalsh

from graphvae.config import check_count
from graphvae.evaluation.graph_stats import THREE_STATS, gdss_generated, protocol_kernels, statistic
from graphvae.evaluation.mmd import kernel_blocks


class PoolMMD:
    """The expected MMD² of ``num_samples`` graphs drawn independently from ``pool``,
    against ``reference``, for any weights on the pool: the statistics and kernel matrices
    are computed once, here, and every :meth:`expected` / :meth:`lowest` reuses them.

    With ``K`` the kernel matrices, ``w`` the weights and ``m = num_samples``, the biased
    MMD² of such a draw has expectation ``mean K(R, R) + wᵀK(P, P)w − 2 mean_r (K(R, P)w)_r
    + (1 − wᵀK(P, P)w) / m``: the last term is the draws' own diagonal (``k(y, y) = 1``),
    which shrinks only as ``m`` grows. Under ``gdss`` the pool graphs lose their isolated
    nodes first, as generated graphs do."""

    def __init__(self, reference: Sequence[nx.Graph], pool: Sequence[nx.Graph], protocol: str,
                 num_samples: int):
        choices = protocol_kernels(protocol)
        check_count("num_samples", num_samples)
        if not pool or not reference:
            raise ValueError("expected_mmd needs reference and pool graphs")
        #: whether ``reference`` is ``pool`` itself (same graphs, same order), which
        #: :meth:`lowest` needs for ``leave_one_out``
        self.self_reference = reference is pool or (
            len(reference) == len(pool) and all(r is q for r, q in zip(reference, pool)))
        if protocol == "gdss":
            pool = [gdss_generated(g) for g in pool]
        if any(g.number_of_nodes() == 0 for g in pool):
            raise ValueError("expected_mmd: a pool graph is empty (after removing isolated "
                             "nodes)")
        self.size, self.num_samples = len(pool), num_samples
        #: per statistic: ``mean K(R, R)``, ``K(P, P)`` and ``mean_r K(r, P)``
        self.terms: dict[str, tuple[float, np.ndarray, np.ndarray]] = {}
        #: per statistic, with ``self_reference``: each pool graph's mean kernel value with
        #: the *other* reference graphs (its own copy left out)
        self.others: dict[str, np.ndarray] = {}
        for name, c in choices.items():
            krr, kpp, krp = kernel_blocks(statistic(name, reference), statistic(name, pool),
                                          c.kernel, c.sigma, c.distance_scaling, c.normalize)
            self.terms[name] = (float(krr.mean()), kpp, krp.mean(0))
            if self.self_reference and len(reference) > 1:
                self.others[name] = (krp.sum(0) - np.diag(krp)) / (len(reference) - 1)

    def expected(self, weights: Sequence[float] | None = None) -> dict[str, float]:
        """Each statistic's expected MMD² under ``weights`` (default: uniform)."""
        n, m = self.size, self.num_samples
        w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, float)
        if w.shape != (n,) or (w < 0).any() or not np.isclose(w.sum(), 1.0):
            raise ValueError("weights must be one probability per pool graph, summing to 1")
        out = {}
        for name, (krr, kpp, krp) in self.terms.items():
            self_sim = float(w @ kpp @ w)
            out[name] = float(krr + self_sim - 2 * krp @ w + (1.0 - self_sim) / m)
        return out

    def lowest(self, groups: Sequence[object] | None = None,
               leave_one_out: bool = False) -> np.ndarray:
        """Pool weights under which the expected mean of the three statistics is as low as
        a local search finds: the sampler of pool graphs best fitted to this very reference
        set, which no model trained without the reference can aim for. With ``groups`` (one
        label per pool graph) each group keeps its share of the pool, e.g. the node-count
        distribution. Gaussian-EMD kernels need not be positive definite, so the problem
        need not be convex and the weights need not be the global optimum; whatever they
        score (:meth:`expected`) is exactly attainable.

        ``leave_one_out`` is for a pool that is its own reference (``PoolMMD(train, train,
        ...)``): each pool graph's match with the reference counts only the *other*
        reference graphs, so the weights cannot win by copying a graph onto itself. They are
        the best a sampler can aim for from the training graphs alone, which it may then be
        scored with on a test set (another :class:`PoolMMD`)."""
        n, m = self.size, self.num_samples
        quad = sum(self.terms[k][1] for k in THREE_STATS) / 3 * (1.0 - 1.0 / m)
        if leave_one_out:
            if not self.others:
                raise ValueError("leave_one_out needs a pool that is its own reference, "
                                 "with at least two graphs")
            lin = sum(self.others[k] for k in THREE_STATS) / 3
        else:
            lin = sum(self.terms[k][2] for k in THREE_STATS) / 3
        start = np.full(n, 1.0 / n)
        if groups is None:
            labels = np.zeros(n, dtype=int)
        else:
            if len(groups) != n:
                raise ValueError("groups must give one label per pool graph")
            labels = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
        constraints = [{"type": "eq", "fun": lambda w, g=(labels == k): w[g].sum() - g.mean(),
                        "jac": lambda w, g=(labels == k): g.astype(float)}
                       for k in range(labels.max() + 1)]
        from scipy.optimize import minimize  # 0.7 s to import: only for this search

        found = minimize(lambda w: w @ quad @ w - 2 * lin @ w, start,
                         jac=lambda w: 2 * quad @ w - 2 * lin, bounds=[(0.0, 1.0)] * n,
                         constraints=constraints, method="SLSQP",
                         options={"maxiter": 1000, "ftol": 1e-12})
        w = np.clip(found.x, 0.0, None)
        for k in range(labels.max() + 1):        # exact shares after the solver's tolerance
            g = labels == k
            w[g] = w[g] / w[g].sum() * g.mean() if w[g].sum() > 0 else g.mean() / g.sum()
        return w


def kernel_min_eigenvalues(graphs: Sequence[nx.Graph], protocol: str) -> dict[str, float]:
    """Each statistic's smallest eigenvalue of the protocol's kernel matrix over ``graphs``
    (taken as generated graphs: under ``gdss`` without isolated nodes). A negative value
    means the kernel is not positive definite on them, so an MMD² under it is not a squared
    distance between mean embeddings there, and a sampler can gain from the kernel's
    negative directions rather than from resembling the reference."""
    if not graphs:
        raise ValueError("kernel_min_eigenvalues needs at least one graph")
    if protocol == "gdss":
        graphs = [gdss_generated(g) for g in graphs]
    out = {}
    for name, c in protocol_kernels(protocol).items():
        values = statistic(name, graphs)
        k = kernel_blocks(values, values[:1], c.kernel, c.sigma, c.distance_scaling,
                          c.normalize)[0]
        out[name] = float(eigvalsh(k)[0])
    return out


def expected_mmd(reference: Sequence[nx.Graph], pool: Sequence[nx.Graph], protocol: str,
                 num_samples: int, weights: Sequence[float] | None = None) -> dict[str, float]:
    """The expectation, in closed form, of :func:`mmd_table`'s ``generated`` MMD² when the
    generated set is ``num_samples`` graphs drawn independently from ``pool`` with
    probabilities ``weights`` (default: uniform), per statistic of the protocol (see
    :class:`PoolMMD`, which keeps the kernels for several weightings). A test checks it
    against every possible draw of a small case."""
    return PoolMMD(reference, pool, protocol, num_samples).expected(weights)


def lowest_expected_mmd(reference: Sequence[nx.Graph], pool: Sequence[nx.Graph],
                        protocol: str, num_samples: int,
                        groups: Sequence[object] | None = None) -> np.ndarray:
    """:meth:`PoolMMD.lowest` for one reference set and pool."""
    return PoolMMD(reference, pool, protocol, num_samples).lowest(groups)
