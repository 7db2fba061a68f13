"""Graph statistics and the MMD protocols of published generation benchmarks.

Statistics of one graph:

* ``degree``: ``nx.degree_histogram`` (counts of degree 0, 1, 2, ...);
* ``clustering``: histogram of the local clustering coefficients, 100 bins on [0, 1];
* ``orbit``: graphlet orbit counts (:mod:`graphvae.evaluation.orbits`) summed over nodes and
  divided by the number of nodes, a 15-vector;
* ``spectral``: histogram of the normalised-Laplacian eigenvalues (clipped to [0, 2]), 200
  bins on [−1e-5, 2], scaled to sum 1.

Protocols (each statistic's kernel, σ, EMD distance scaling, and whether the
vectors are normalised to sum 1 first), read from the public evaluation code:

* ``graphrnn``: GraphRNN ``eval/stats.py`` (You et al. 2018), also GDSS's: degree
  Gaussian-EMD σ=1; clustering Gaussian-EMD σ=0.1 with distance scaling 100;
  orbit Gaussian RBF σ=30 on the raw vectors.
* ``gdss``: GDSS ``evaluation/stats.py`` with ``utils/loader.py``'s kernel choice (Jo et
  al. 2022): GraphRNN's three kernels and the spectral statistic under Gaussian-EMD σ=1
  (distance scaling 1). GDSS's set-up also removes isolated nodes from generated graphs
  (:func:`gdss_generated`) and splits without shuffling
  (:func:`graphvae.datasets.graphsets.gdss_split`); ``graphvae generate --protocol gdss``
  does all three.
* ``gran``: GRAN ``utils/eval_helper.py`` (Liao et al. 2019): Gaussian-TV with
  σ = 1 (degree, spectral), 0.1 (clustering), 30 (orbit, raw vectors).
* ``rbf``: plain Gaussian RBF on the same vectors with GRAN's σ values (our choice of
  σ; the codes that use an RBF kernel do not agree on one).

Every value is MMD² (see :mod:`graphvae.evaluation.mmd`). Empty graphs on the generated
side are dropped before the statistics, as in both codes, and counted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp
from networkx.algorithms.isomorphism import GraphMatcher
from scipy.linalg import eigvalsh

from graphvae.evaluation.mmd import mmd_squared
from graphvae.evaluation.orbits import orbit_counts


def degree_histogram(g: nx.Graph) -> np.ndarray:
    return np.asarray(nx.degree_histogram(g), dtype=float)


def local_clustering(g: nx.Graph) -> np.ndarray:
    """``nx.clustering(g)``'s values in node order, bit for bit, from sparse matrix
    products: 9 times faster on a 300-node graph of density 0.3 (an untrained model's
    sample), 2.6 times on a 20 × 20 grid. As networkx does, a node's
    coefficient is ``t / (d (d − 1))`` with ``d`` its degree and ``t`` the ordered pairs of
    its neighbours that are adjacent, self-loops ignored, and 0 where ``t`` is 0; both
    divide the same two integers, so the floats agree exactly. Directed graphs and
    multigraphs go to networkx itself."""
    if g.is_directed() or g.is_multigraph():
        return np.fromiter(nx.clustering(g).values(), float, g.number_of_nodes())
    n = g.number_of_nodes()
    if n == 0:
        return np.zeros(0)
    adj = nx.to_scipy_sparse_array(g, weight=None, dtype=np.int64, format="coo")
    keep = adj.row != adj.col
    adj = sp.csr_array((np.ones(int(keep.sum()), dtype=np.int64),
                        (adj.row[keep], adj.col[keep])), shape=(n, n))
    degree = np.asarray(adj.sum(axis=1)).reshape(-1)
    pairs = np.asarray((adj @ adj).multiply(adj).sum(axis=1)).reshape(-1)
    out = np.zeros(n)
    some = pairs > 0
    out[some] = pairs[some] / (degree[some] * (degree[some] - 1))
    return out


def clustering_histogram(g: nx.Graph, bins: int = 100) -> np.ndarray:
    hist, _ = np.histogram(local_clustering(g), bins=bins, range=(0.0, 1.0))
    return hist.astype(float)


def orbit_vector(g: nx.Graph) -> np.ndarray:
    return orbit_counts(g).sum(0) / max(g.number_of_nodes(), 1)


def spectral_histogram(g: nx.Graph, bins: int = 200) -> np.ndarray:
    """The eigenvalues are clipped to ``[0, 2]``, where they lie: LAPACK returns the
    eigenvalue 2 of a bipartite graph as ``2 + 4e-16`` for some graphs (40 of the 100
    grids), and GRAN's and GDSS's code, which take the same range, drop it there."""
    eig = np.clip(eigvalsh(nx.normalized_laplacian_matrix(g).toarray()), 0.0, 2.0)
    hist, _ = np.histogram(eig, bins=bins, range=(-1e-5, 2.0))
    return hist / max(hist.sum(), 1)


STATISTICS: dict[str, Callable[[nx.Graph], np.ndarray]] = {
    "degree": degree_histogram, "clustering": clustering_histogram, "orbit": orbit_vector,
    "spectral": spectral_histogram,
}


def statistic(name: str, graphs: Sequence[nx.Graph]) -> list[np.ndarray]:
    """The statistic ``name`` of each graph; a one-line ``ValueError`` for a directed graph
    or a multigraph (the statistics are for simple undirected graphs: a directed 3-cycle
    had clustering 0.5 but counted as a triangle among the orbits)."""
    for g in graphs:
        if g.is_directed() or g.is_multigraph():
            raise ValueError(f"graph statistics take undirected simple graphs, got a "
                             f"{type(g).__name__} (convert it with nx.Graph(g))")
    return [STATISTICS[name](g) for g in graphs]


@dataclass(frozen=True)
class KernelChoice:
    kernel: str
    sigma: float
    distance_scaling: float = 1.0
    normalize: bool = True


PROTOCOLS: dict[str, dict[str, KernelChoice]] = {
    "graphrnn": {"degree": KernelChoice("gaussian_emd", 1.0),
                 "clustering": KernelChoice("gaussian_emd", 0.1, 100.0),
                 "orbit": KernelChoice("gaussian_rbf", 30.0, normalize=False)},
    "gdss": {"degree": KernelChoice("gaussian_emd", 1.0),
             "clustering": KernelChoice("gaussian_emd", 0.1, 100.0),
             "orbit": KernelChoice("gaussian_rbf", 30.0, normalize=False),
             "spectral": KernelChoice("gaussian_emd", 1.0)},
    "gran": {"degree": KernelChoice("gaussian_tv", 1.0),
             "clustering": KernelChoice("gaussian_tv", 0.1),
             "orbit": KernelChoice("gaussian_tv", 30.0, normalize=False),
             "spectral": KernelChoice("gaussian_tv", 1.0)},
    "rbf": {"degree": KernelChoice("gaussian_rbf", 1.0),
            "clustering": KernelChoice("gaussian_rbf", 0.1),
            "orbit": KernelChoice("gaussian_rbf", 30.0, normalize=False),
            "spectral": KernelChoice("gaussian_rbf", 1.0)},
}


#: The statistics GraphRNN's and GDSS's tables average ("the mean of the three").
THREE_STATS = ("degree", "clustering", "orbit")


def mean_of_three(mmd: dict[str, float]) -> float:
    """The average of the degree, clustering and orbit MMD² of one row."""
    return sum(mmd[k] for k in THREE_STATS) / 3


def protocol_kernels(protocol: str) -> dict[str, KernelChoice]:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown MMD protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def graph_mmd(reference: Sequence[nx.Graph], generated: Sequence[nx.Graph], protocol: str,
              statistics: Sequence[str] | None = None) -> dict[str, float]:
    """MMD² of each statistic under a named protocol, plus ``empty_generated`` (graphs with
    no nodes, left out). With no non-empty generated graph every MMD² is NaN (``null`` in
    JSON), so that a run whose samples are all empty still writes its model and outputs;
    an empty ``reference`` is a ``ValueError``."""
    choices = protocol_kernels(protocol)
    reference, generated = _graph_list(reference, "reference"), _graph_list(generated,
                                                                             "generated")
    names = [statistics] if isinstance(statistics, str) else list(statistics or choices)
    unknown = [s for s in names if s not in choices]
    if unknown:
        raise ValueError(f"protocol {protocol!r} has no kernel for {unknown}; it defines "
                         f"{sorted(choices)}")
    gen = [g for g in generated if g.number_of_nodes() > 0]
    if not reference:
        raise ValueError("MMD needs at least one reference graph")
    if any(g.number_of_nodes() == 0 for g in reference):
        raise ValueError("MMD: a reference graph has no nodes (its statistics are empty)")
    out: dict[str, float] = {name: math.nan for name in names}   # kept with no samples
    for name in names if gen else ():
        c = choices[name]
        out[name] = mmd_squared(statistic(name, reference), statistic(name, gen),
                                c.kernel, c.sigma, c.distance_scaling, c.normalize)
    out["empty_generated"] = float(len(generated) - len(gen))
    return out


def gdss_generated(g: nx.Graph) -> nx.Graph:
    """A generated graph as GDSS evaluates it (``utils/graph_utils.py``, ``adjs_to_graphs``):
    self-loops and isolated nodes removed, one node put back if none is left."""
    h = nx.Graph(g)
    h.remove_edges_from(nx.selfloop_edges(h))
    h.remove_nodes_from(list(nx.isolates(h)))
    if h.number_of_nodes() < 1:
        h.add_node(1)
    return h


def mmd_table(reference: Sequence[nx.Graph], generated: Sequence[nx.Graph], protocol: str,
              train: Sequence[nx.Graph] | None = None) -> dict[str, dict[str, float]]:
    """MMD² of each statistic, generated vs reference, and (given ``train``) the train-vs-test
    reference row. Keys: ``generated``, ``train_vs_test``. Under ``gdss`` the generated
    graphs lose their isolated nodes first (:func:`gdss_generated`)."""
    if protocol == "gdss":
        generated = [gdss_generated(g) for g in generated]
    out = {"generated": graph_mmd(reference, generated, protocol)}
    if train is not None:
        out["train_vs_test"] = graph_mmd(reference, train, protocol)
    return out


#: Work of the exact isomorphism tests (VF2) that one call of :func:`graph_novelty` may
#: do: this many units, plus 3 n² (1 + d) a sample of n nodes and mean degree d. A
#: feasibility check is charged n + m d units, m the nodes matched so far (networkx's VF2
#: builds a state of the nodes and the matched nodes' neighbours for each): a test of
#: isomorphic graphs takes about 1.2 n checks, under n² (1 + d) units. A cycle against
#: two half cycles, which agree in size, degrees and Weisfeiler-Lehman hash, took 78,200
#: checks at 200 nodes, 26 s at 400, hours at 5,000 before the budget; three cliques of
#: 400 against themselves 25 s for 1,200 checks before the charge counted degrees. A unit
#: is about 90 ns; in all at most :data:`NOVELTY_MAX_WORK` (about 3 minutes).
NOVELTY_WORK = 20_000_000
NOVELTY_MAX_WORK = 2_000_000_000


class _OutOfWork(Exception):
    pass


def _mean_degree(g: nx.Graph) -> float:
    return 2 * g.number_of_edges() / max(g.number_of_nodes(), 1)


class _BudgetedMatcher(GraphMatcher):
    """VF2 that spends ``n + m d`` of a shared budget (``left[0]``) on each feasibility
    check (see :data:`NOVELTY_WORK`)."""

    def __init__(self, g: nx.Graph, h: nx.Graph, left: list[int]):
        super().__init__(g, h)
        self.left = left
        self.n = max(g.number_of_nodes(), 1)
        self.degree = _mean_degree(g)

    def syntactic_feasibility(self, g1_node: Any, g2_node: Any) -> bool:
        self.left[0] -= self.n + int(len(self.core_1) * self.degree)
        if self.left[0] < 0:
            raise _OutOfWork
        return bool(super().syntactic_feasibility(g1_node, g2_node))


def graph_novelty(generated: Sequence[nx.Graph], train: Sequence[nx.Graph]
                  ) -> dict[str, float]:
    """How many samples copy a training graph, up to isomorphism: ``in_training`` (the
    fraction of samples isomorphic to some training graph) and ``unique`` (distinct
    isomorphism classes among the samples / samples). Candidates are matched on nodes,
    edges and the Weisfeiler-Lehman hash before an exact isomorphism test; the exact tests
    share a budget of :data:`NOVELTY_WORK` plus 3 n² (1 + d) a sample of n nodes and mean
    degree d (at most :data:`NOVELTY_MAX_WORK`), and a test that it cannot finish counts
    as "not isomorphic" (a sample neither a copy nor a repeat) and in ``undetermined``,
    the number of such tests (0 on every data set here)."""
    def key(g: nx.Graph) -> tuple[int, int, str]:
        with warnings.catch_warnings():     # networkx 3.5 notes that its hashes changed
            warnings.simplefilter("ignore", UserWarning)
            wl = nx.weisfeiler_lehman_graph_hash(g)
        return g.number_of_nodes(), g.number_of_edges(), wl

    left = [min(NOVELTY_MAX_WORK, NOVELTY_WORK + int(sum(
        3 * g.number_of_nodes() ** 2 * (1 + _mean_degree(g)) for g in generated)))]
    undetermined = 0

    def isomorphic(g: nx.Graph, h: nx.Graph) -> bool:
        nonlocal undetermined
        if left[0] <= 0:
            undetermined += 1
            return False
        matcher = _BudgetedMatcher(g, h, left)
        try:
            return bool(matcher.is_isomorphic())
        except _OutOfWork:
            undetermined += 1
            return False
        finally:
            matcher.reset_recursion_limit()

    def find(g: nx.Graph, k: tuple, pool: dict[tuple, list[nx.Graph]]) -> bool:
        return any(isomorphic(g, h) for h in pool.get(k, []))

    seen: dict[tuple, list[nx.Graph]] = {}
    for h in train:
        seen.setdefault(key(h), []).append(h)
    classes: dict[tuple, list[nx.Graph]] = {}
    copies = distinct = 0
    for g in generated:
        k = key(g)
        copies += find(g, k, seen)
        if not find(g, k, classes):
            classes.setdefault(k, []).append(g)
            distinct += 1
    n = max(len(generated), 1)
    return {"in_training": copies / n, "unique": distinct / n, "undetermined": undetermined}


def _graph_list(graphs: object, name: str) -> list[nx.Graph]:
    """``graphs`` as a list of networkx graphs (any iterable; a generator was read as
    empty, or failed at ``len``); a one-line ``ValueError`` naming what else it holds
    (adjacency matrices failed inside networkx's calls)."""
    if isinstance(graphs, nx.Graph) or not hasattr(graphs, "__iter__"):
        raise ValueError(f"{name} must be a sequence of networkx graphs, got "
                         f"{type(graphs).__name__}")
    out = list(graphs)
    wrong = next((g for g in out if not isinstance(g, nx.Graph)), None)
    if wrong is not None:
        raise ValueError(f"{name} must hold networkx graphs, got a {type(wrong).__name__} "
                         f"(from an adjacency matrix: nx.from_numpy_array)")
    return out


def graph_summary(graphs: Sequence[nx.Graph]) -> dict[str, float]:
    """Mean nodes and edges, the fraction of empty graphs (no nodes) and the fraction of
    connected graphs *among the non-empty ones* (networkx leaves connectivity undefined
    for the empty graph; 0.0 when every graph is empty). An empty list is a ``ValueError``."""
    graphs = _graph_list(graphs, "graphs")
    if not graphs:
        raise ValueError("graph_summary needs at least one graph")
    n = [g.number_of_nodes() for g in graphs]
    m = [g.number_of_edges() for g in graphs]
    conn = [nx.is_connected(g) for g in graphs if g.number_of_nodes() > 0]
    return {"mean_nodes": float(np.mean(n)), "mean_edges": float(np.mean(m)),
            "fraction_empty": float(np.mean([k == 0 for k in n])),
            "fraction_connected": float(np.mean(conn)) if conn else 0.0}


#: Names that moved to :mod:`graphvae.evaluation.pool_mmd`, importable here as before.
_MOVED = ("PoolMMD", "expected_mmd", "kernel_min_eigenvalues", "lowest_expected_mmd")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from graphvae.evaluation import pool_mmd
        return getattr(pool_mmd, name)
    raise AttributeError(f"module 'graphvae.evaluation.graph_stats' has no attribute {name!r}")
