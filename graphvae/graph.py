"""Graph containers, conversions, relabelling and input validation (plain torch).

Every public entry point that takes a user's graph (data loaders, the CLI, the
tasks) passes it through :func:`check_graph` first, so a bad edge index, NaN
features or a feature table of the wrong height is a one-line ``ValueError``
raised before any training.

Conventions:
    * ``edge_index`` is a ``(2, E)`` ``torch.long`` tensor of *ordered* pairs;
      an undirected graph stores both directions.
    * A permutation ``perm`` relabels so that new node ``i`` is old node
      ``perm[i]``: ``X' = X[perm]`` and ``A' = A[perm][:, perm] = P A Pᵀ`` with
      ``P[i, perm[i]] = 1``.
"""

from __future__ import annotations

import math
import operator
import warnings
from typing import Any

import torch
from torch import Tensor

from graphvae.checks import FLOAT32_MAX

__all__ = [
    "Adjacency",  # noqa: F822 - graphvae.adjacency's, through __getattr__ below
    "check_edge_index",
    "check_features",
    "check_graph",
    "dense_to_edge_index",
    "edge_index_to_dense",
    "edge_keys",
    "is_sparse",
    "permute_graph",
    "sparse_features",
    "to_dense",
    "to_simple_undirected",
    "upper_triangle",
]


#: The most nodes a graph may have: pairs are keyed ``i·n + j`` in int64, which holds
#: ``n² − 1`` up to here (beyond, keys wrapped round and named other nodes).
MAX_GRAPH_NODES = math.isqrt(2 ** 63 - 1)


def check_num_nodes(num_nodes: int) -> int:
    """``num_nodes`` as an ``int`` from 0 to :data:`MAX_GRAPH_NODES`; a one-line
    ``ValueError`` otherwise (4.5 nodes were taken as 4, −3 as a graph)."""
    try:
        if isinstance(num_nodes, bool):
            raise TypeError
        n = operator.index(num_nodes)
    except TypeError:
        raise ValueError(f"num_nodes must be a whole number, got {num_nodes!r}") from None
    if not 0 <= n <= MAX_GRAPH_NODES:
        raise ValueError(f"num_nodes must be from 0 to {MAX_GRAPH_NODES:,} (pair keys i·n + j "
                         f"fit in int64), got {n}")
    return n


def check_edge_index(edge_index: Tensor, num_nodes: int) -> None:
    """Raise ``ValueError`` unless ``edge_index`` is a valid ``(2, E)`` index into ``num_nodes``."""
    num_nodes = check_num_nodes(num_nodes)
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"edge_index must be a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.dtype != torch.long:
        raise ValueError(f"edge_index must have dtype torch.long, got {edge_index.dtype}")
    if edge_index.numel() == 0:
        return
    lo, hi = int(edge_index.min()), int(edge_index.max())
    if lo < 0:
        raise ValueError(f"edge_index contains a negative node index ({lo})")
    if hi >= num_nodes:
        raise ValueError(
            f"edge_index refers to node {hi} but the graph has only {num_nodes} nodes "
            f"(valid indices are 0..{num_nodes - 1})"
        )


def is_sparse(x: Tensor) -> bool:
    """True for any sparse layout (COO, CSR, ...)."""
    return x.layout != torch.strided


def to_dense(x: Tensor) -> Tensor:
    return x.to_dense() if is_sparse(x) else x


def sparse_features(x: Tensor) -> Tensor:
    """``x`` as a sparse CSR matrix (fast ``X W`` for bag-of-words features)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return to_dense(x).to_sparse_csr()


def check_features(x: Tensor, num_nodes: int) -> None:
    """Raise ``ValueError`` unless ``x`` is a finite ``(num_nodes, d)`` feature matrix."""
    if x.dim() != 2:
        raise ValueError(f"node features must be a 2-D (nodes x features) table, got shape "
                         f"{tuple(x.shape)}")
    if x.size(0) != num_nodes:
        raise ValueError(f"the feature table has {x.size(0)} rows but the graph has "
                         f"{num_nodes} nodes")
    values = feature_values(x)
    if not torch.isfinite(values).all():
        bad = (~torch.isfinite(values)).sum().item()
        raise ValueError(f"node features contain {bad} NaN or infinite value(s)")
    if values.is_floating_point() and values.dtype.itemsize > 4:
        big = int((values.abs() > FLOAT32_MAX).sum())
        if big:        # the models take float32: these become infinite, then NaN
            raise ValueError(f"node features hold {big} value(s) beyond float32's range "
                             f"(±{FLOAT32_MAX:.4g}), which the models compute in")


def feature_values(x: Tensor) -> Tensor:
    """The stored entries of a feature matrix: all of a dense one, the values of a sparse
    one (COO or compressed)."""
    return x.coalesce().values() if x.is_sparse else x.values() if is_sparse(x) else x


def check_graph(x: Tensor | None, edge_index: Tensor, num_nodes: int,
                require_edges: bool = True) -> None:
    """Validate a whole graph: node count, edge index and (optional) features."""
    if num_nodes <= 0:
        raise ValueError("the graph is empty: it has no nodes")
    check_edge_index(edge_index, num_nodes)
    if require_edges and edge_index.size(1) == 0:
        raise ValueError("the graph is empty: it has no edges")
    if x is not None:
        check_features(x, num_nodes)


def edge_keys(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Encode ordered pairs as integers ``i * n + j`` (one per column); ``n`` is checked
    (beyond :data:`MAX_GRAPH_NODES` the keys wrapped round int64 and named other pairs)."""
    return edge_index[0] * check_num_nodes(num_nodes) + edge_index[1]


def to_simple_undirected(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Symmetrise, drop self-loops and duplicates; columns sorted by ``(i, j)``.
    ``edge_index`` is checked against ``num_nodes`` (:func:`check_edge_index`)."""
    check_edge_index(edge_index, num_nodes)
    ei = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    ei = ei[:, ei[0] != ei[1]]
    keys = torch.unique(edge_keys(ei, num_nodes))
    return torch.stack([keys // num_nodes, keys % num_nodes])


def upper_triangle(edge_index: Tensor) -> Tensor:
    """The columns with ``i < j``: each undirected edge once."""
    return edge_index[:, edge_index[0] < edge_index[1]]


def edge_index_to_dense(edge_index: Tensor, num_nodes: int, dtype=torch.float) -> Tensor:
    """``(n, n)`` 0/1 adjacency with ``A[i, j] = 1`` for every column ``(i, j)``."""
    adj = torch.zeros(num_nodes, num_nodes, dtype=dtype, device=edge_index.device)
    adj[edge_index[0], edge_index[1]] = 1
    return adj


def dense_to_edge_index(adj: Tensor) -> Tensor:
    """Inverse of :func:`edge_index_to_dense` for a square 0/1 (or boolean) matrix."""
    if adj.dim() != 2 or adj.size(0) != adj.size(1):
        raise ValueError(f"adjacency must be a square matrix, got shape {tuple(adj.shape)}")
    return adj.nonzero().t().contiguous()


def check_permutations(perms: Tensor, n: int | None = None, name: str = "perm",
                       dim: int | None = None) -> None:
    """A one-line ``ValueError`` unless every row of ``perms`` (shape ``(n,)`` or ``(K, n)``,
    ``K >= 1``; ``dim``: only that one of the two) is a permutation of ``0..n-1`` in an
    integer dtype: a repeat or a negative entry otherwise relabels another graph without
    a word, or reads memory never written."""
    if not isinstance(perms, Tensor):
        raise ValueError(f"{name} must be an integer tensor, got {type(perms).__name__}")
    shapes = {1: "(n,)", 2: "(K, n)"}
    if perms.dim() not in ((dim,) if dim else shapes) or perms.is_floating_point() \
            or perms.is_complex() or perms.dtype == torch.bool:
        want = shapes[dim] if dim else "(n,) or (K, n)"
        raise ValueError(f"{name} must be an integer tensor of shape {want}, got "
                         f"{perms.dtype} of shape {tuple(perms.shape)}")
    size = perms.size(-1)
    if n is not None and size != n:
        raise ValueError(f"{name} must order {n} nodes, got {size} entries")
    if perms.dim() == 2 and perms.size(0) == 0:
        raise ValueError(f"{name} holds no permutation")
    ok = perms.sort(dim=-1).values == torch.arange(size, device=perms.device)
    if not bool(ok.all()):
        raise ValueError(f"{name} must be a permutation of 0..{size - 1} (each once), got "
                         f"repeated or out-of-range entries")


def permute_graph(perm: Tensor, x: Tensor | None = None, edge_index: Tensor | None = None,
                  adj: Tensor | None = None) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Relabel nodes so that new node ``i`` is old node ``perm[i]``.

    Returns ``(x[perm], relabelled edge_index, adj[perm][:, perm])``; an input
    given as ``None`` comes back as ``None``. Sparse ``x`` (COO or CSR, such as the
    identity features of a featureless graph) stays sparse, in its own layout.
    """
    check_permutations(perm, dim=1)
    n = perm.numel()
    for what, t in (("x", x), ("adj", adj)):
        if t is not None and t.size(0) != n:
            raise ValueError(f"{what} has {t.size(0)} rows for a permutation of {n} nodes")
    if adj is not None and adj.size(1) != n:
        raise ValueError(f"adj has {adj.size(1)} columns for a permutation of {n} nodes")
    if edge_index is not None and edge_index.numel() and not (
            0 <= int(edge_index.min()) and int(edge_index.max()) < n):
        raise ValueError(f"edge_index names a node outside 0..{n - 1}")
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n, device=perm.device)
    x_new = None if x is None else _sparse_rows_moved(x, inv) if is_sparse(x) else x[perm]
    ei_new = None if edge_index is None else inv[edge_index]
    adj_new = None if adj is None else adj[perm][:, perm]
    return x_new, ei_new, adj_new


def _sparse_rows_moved(x: Tensor, inv: Tensor) -> Tensor:
    """A sparse matrix's rows relabelled (old row ``r`` becomes row ``inv[r]``), never
    densified: the identity features of 10⁵ nodes would be 80 GB in float64."""
    coo = x.to_sparse_coo().coalesce()
    rows, cols = coo.indices()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta", invariant checks
        moved = torch.sparse_coo_tensor(torch.stack([inv[rows], cols]), coo.values(),
                                        coo.shape, check_invariants=False).coalesce()
        return moved if x.layout == torch.sparse_coo else moved.to_sparse_csr()


def __getattr__(name: str) -> Any:
    if name == "Adjacency":       # moved to graphvae.adjacency; importable here as before
        from graphvae.adjacency import Adjacency
        return Adjacency
    raise AttributeError(f"module 'graphvae.graph' has no attribute {name!r}")
