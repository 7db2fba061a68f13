"""Node orderings: random samplers, canonical orderings, and graph matching.

An ordering is a permutation ``perm`` of ``0..n-1`` read as "new node ``i`` is
old node ``perm[i]``", the convention of :func:`graphvae.graph.permute_graph`
(``A' = A[perm][:, perm] = P A Pᵀ``). Families of orderings are ``(K, n)`` long
tensors.

* :func:`random_permutations`: ``K`` uniform draws, seeded by a ``torch.Generator``.
* :func:`canonical_orderings`: BFS and DFS from a maximum-degree node of each
  connected component (largest component first; ties in degree between roots give
  one ordering each), degree-descending, and k-core (core number, then degree) —
  with orderings that produce the same adjacency matrix removed.
* :func:`hungarian_matching`: the assignment maximising a node-similarity matrix
  (``scipy.optimize.linear_sum_assignment``).
* :func:`max_pool_matching`: the max-pooling graph matching of Cho, Alahari & Ponce
  (ECCV 2014) as used by GraphVAE (Simonovsky & Komodakis, ICANN 2018, eqs. 4–5),
  discretised with the Hungarian algorithm.
"""

from __future__ import annotations

import itertools
import math
from collections import deque

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from graphvae.checks import check_count
from graphvae.devices import draw_device
from graphvae.graph import check_edge_index, check_permutations, edge_index_to_dense

ORDERINGS = ("bfs", "dfs", "degree", "kcore")


def random_permutations(n: int, k: int, generator: torch.Generator | None = None) -> Tensor:
    """``(k, n)`` uniform random permutations (independent draws), on the CPU (drawn on
    the generator's device)."""
    check_count("n", n)
    check_count("k", k)
    u = torch.rand(k, n, generator=generator, device=draw_device(generator))
    return torch.argsort(u, dim=1).cpu()


def all_permutations(n: int) -> Tensor:
    """All ``n!`` permutations as a ``(n!, n)`` tensor (``1 <= n <= 9``)."""
    check_count("n", n)
    if n > 9:
        raise ValueError(f"{math.factorial(n)} permutations of {n} nodes are too many to list")
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long).view(-1, n)


def inverse_permutation(perm: Tensor) -> Tensor:
    """``inv`` with ``inv[perm[i]] = i`` (works on a batch ``(K, n)``)."""
    check_permutations(perm)
    return torch.argsort(perm, dim=-1)


def permute_dense(adj: Tensor, perms: Tensor) -> Tensor:
    """``(K, n, n)`` stack of ``adj[perm][:, perm]`` for each row of ``perms``."""
    if adj.dim() != 2 or adj.size(0) != adj.size(1):
        raise ValueError(f"adj must be a square matrix, got shape {tuple(adj.shape)}")
    check_permutations(perms, adj.size(0), "perms", dim=2)
    return permuted_dense(adj, perms)


def permuted_dense(adj: Tensor, perms: Tensor) -> Tensor:
    """:func:`permute_dense` for orders already checked (:func:`check_permutations`): the
    check sorts every row, 60 ms for the 9! orders of nine nodes."""
    return adj[perms[:, :, None], perms[:, None, :]]


def _nx(edge_index: Tensor, n: int) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edge_index.t().tolist())
    g.remove_edges_from(nx.selfloop_edges(g))
    return g


def _components(g: nx.Graph) -> list[list[int]]:
    comps = [sorted(c) for c in nx.connected_components(g)]
    return sorted(comps, key=lambda c: (-len(c), c[0]))


def _neighbours(g: nx.Graph, v: int) -> list[int]:
    return sorted(g[v], key=lambda u: (-g.degree[u], u))


def _traverse(g: nx.Graph, root: int, kind: str) -> list[int]:
    """BFS or DFS order from ``root``; neighbours visited by degree (high first), then id."""
    order: list[int] = []
    if kind == "bfs":
        seen, queue = {root}, deque([root])
        while queue:
            v = queue.popleft()
            order.append(v)
            for u in _neighbours(g, v):
                if u not in seen:
                    seen.add(u)
                    queue.append(u)
        return order
    done: set[int] = set()
    stack = [root]
    while stack:
        v = stack.pop()
        if v in done:
            continue
        done.add(v)
        order.append(v)
        stack.extend(u for u in reversed(_neighbours(g, v)) if u not in done)
    return order


def _search_orderings(g: nx.Graph, kind: str) -> list[list[int]]:
    """One ordering per combination of max-degree roots (capped at 64 combinations)."""
    per_comp = []
    for comp in _components(g):
        top = max(g.degree[v] for v in comp)
        per_comp.append([_traverse(g, r, kind) for r in comp if g.degree[r] == top])
    combos = itertools.islice(itertools.product(*per_comp), 64)
    return [[v for part in combo for v in part] for combo in combos]


def canonical_orderings(edge_index: Tensor, num_nodes: int,
                        kinds: tuple[str, ...] = ORDERINGS) -> Tensor:
    """The canonical orderings of a graph, ``(M, n)``, duplicates by adjacency removed."""
    unknown = set(kinds) - set(ORDERINGS)
    if unknown:
        raise ValueError(f"unknown ordering(s) {sorted(unknown)}; choose from {ORDERINGS}")
    if num_nodes < 1 or not kinds:
        raise ValueError(f"canonical orderings need a graph of at least one node and one "
                         f"kind of ordering, got {num_nodes} nodes and kinds {kinds}")
    check_edge_index(edge_index, num_nodes)
    g = _nx(edge_index, num_nodes)
    deg = dict(g.degree)
    orders: list[list[int]] = []
    for kind in kinds:
        if kind in ("bfs", "dfs"):
            orders += _search_orderings(g, kind)
        elif kind == "degree":
            orders.append(sorted(range(num_nodes), key=lambda v: (-deg[v], v)))
        else:
            core = nx.core_number(g)
            orders.append(sorted(range(num_nodes), key=lambda v: (-core[v], -deg[v], v)))
    perms = torch.tensor(orders, dtype=torch.long)
    return unique_by_adjacency(perms, edge_index_to_dense(edge_index, num_nodes))


def unique_by_adjacency(perms: Tensor, adj: Tensor) -> Tensor:
    """Keep the first of each group of orderings giving the same permuted adjacency."""
    permuted = permute_dense(adj, perms).flatten(1)
    _, inverse = torch.unique(permuted, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), perms.size(0), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(perms.size(0)), reduce="amin")
    return perms[first.sort().values]


def hungarian_matching(similarity: Tensor) -> Tensor:
    """``perm`` maximising ``Σ_i similarity[i, perm[i]]``.

    ``similarity[i, a]`` scores putting node ``a`` of the target at position ``i``
    of the prediction; the result relabels the target so that new node ``i`` is
    old node ``perm[i]``.
    """
    if similarity.dim() != 2 or similarity.size(0) != similarity.size(1):
        raise ValueError(f"similarity must be square, got {tuple(similarity.shape)}")
    from scipy.optimize import linear_sum_assignment  # 0.7 s to import: only when matching

    rows, cols = linear_sum_assignment(similarity.detach().cpu().double().numpy(), maximize=True)
    perm = np.empty_like(cols)
    perm[rows] = cols
    return torch.from_numpy(perm).long()


def _walk_signature(adj: Tensor, steps: int) -> Tensor:
    """``log(1 + (A^t 1)_i)`` for ``t = 1..steps``: soft walk counts, ``(n, steps)``."""
    h = torch.ones(adj.size(0), dtype=adj.dtype)
    cols = []
    for _ in range(steps):
        h = adj @ h
        cols.append(torch.log1p(h))
    return torch.stack(cols, 1)


def _agreement(target: Tensor, pred: Tensor, node: Tensor, perm: Tensor) -> Tensor:
    return (target[perm][:, perm] * pred).sum() + node[perm, torch.arange(perm.numel())].sum()


def _swap_gains(target: Tensor, pred: Tensor, node: Tensor, perm: Tensor) -> Tensor:
    """``G[a, b]``: change of :func:`_agreement` when slots ``a`` and ``b`` of ``perm``
    trade places, for every pair at once (any square ``target`` / ``pred``, symmetric
    or not; the diagonal is 0).

    With ``M = target[perm][:, perm]`` and the transposition ``τ = (a b)``, the edge
    term changes by ``Σ_ij (M[τi, τj] − M[ij]) W[ij]``: rows ``a, b`` against the
    other columns, columns ``a, b`` against the other rows, and the 2 × 2 block.
    The first two are ``(MWᵀ)``- and ``(MᵀW)``-expressions summed over all indices,
    from which the ``j ∈ {a, b}`` (``i ∈ {a, b}``) terms are taken out again.
    """
    m_ = target[perm][:, perm]
    w_ = pred
    mt, wt = m_.t(), w_.t()
    md, wd = torch.diagonal(m_), torch.diagonal(w_)
    m_col, m_row = md[:, None], md[None, :]   # [a, b] -> M[a, a], M[b, b]
    w_col, w_row = wd[:, None], wd[None, :]

    def both_ways(x: Tensor) -> Tensor:  # [a, b] -> x[b, a] − x[b, b] − x[a, a] + x[a, b]
        xd = torch.diagonal(x)
        return x.t() - xd[None, :] - xd[:, None] + x

    rows = (both_ways(m_ @ wt) - (mt - m_col) * (w_col - wt) - (m_row - m_) * (w_ - w_row))
    cols = (both_ways(mt @ w_) - (m_ - m_col) * (w_col - w_) - (m_row - mt) * (wt - w_row))
    block = (m_row - m_col) * (w_col - w_row) + (mt - m_) * (w_ - wt)
    n_ = node[perm]                               # n_[a, c] = node[perm[a], c]
    nd = torch.diagonal(n_)
    gain = rows + cols + block + n_.t() + n_ - nd[:, None] - nd[None, :]
    return gain.fill_diagonal_(0.0)


def _refine_by_swaps(target: Tensor, pred: Tensor, node: Tensor, perm: Tensor,
                     max_rounds: int = 50) -> Tensor:
    """Pairwise swaps of ``perm`` while they raise the edge and node agreement.

    First improvement, pairs in lexicographic order, rounds until none improves:
    every swap's gain comes from :func:`_swap_gains` in one go, so a round costs a
    few matrix products per accepted swap instead of one score per pair.
    """
    n = perm.numel()
    first, second = torch.triu_indices(n, n, 1)  # itertools.combinations order
    for _ in range(max_rounds):
        improved, start = False, 0
        while start < first.numel():
            gain = _swap_gains(target, pred, node, perm)[first[start:], second[start:]]
            hits = (gain > 1e-12).nonzero()
            if hits.numel() == 0:
                break
            j = start + int(hits[0])
            a, b = int(first[j]), int(second[j])
            perm = perm.clone()
            perm[[a, b]] = perm[[b, a]]
            improved, start = True, j + 1
        if not improved:
            break
    return perm


def _affinities(a_t: Tensor, a_p: Tensor, target_x: Tensor | None = None,
                pred_x: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`max_pool_matching`'s terms for float64 ``(n, n)`` ``a_t`` and ``a_p``: the
    target's edges (its diagonal cleared), the edge affinities ``Ã_ab Ã_aa Ã_bb``
    (``a ≠ b``) and the node affinities ``A_ii Ã_aa exp(−‖w_i − w̃_a‖²) (1 + x_iᵀ x̃_a)``."""
    off = 1 - torch.eye(a_t.size(0), dtype=a_t.dtype)
    diag_p, diag_t = torch.diagonal(a_p), torch.diagonal(a_t).clone()
    if not diag_t.any():
        diag_t.fill_(1.0)                                           # no mask: all real
    a_t = a_t * off
    w = a_p * off * diag_p[:, None] * diag_p[None, :]              # (k, k) edge affinities
    sig = torch.cdist(_walk_signature(a_t, 3), _walk_signature(a_p * off, 3))
    node = diag_t[:, None] * diag_p[None, :] * torch.exp(-sig.pow(2))  # (n, k)
    if target_x is not None and pred_x is not None:
        node = node * (1 + target_x.double() @ pred_x.double().t())
    return a_t, w, node


#: The most entries of one block of :func:`_max_pooled`'s products (float64: 8 MB).
POOL_BLOCK = 2 ** 20


def _max_pooled(x: Tensor, w: Tensor) -> Tensor:
    """``pooled[j, a] = max_b x[j, b] w[a, b]`` for ``(n, k)`` ``x`` and ``(k, k)`` ``w``,
    in blocks of rows of ``x`` of at most :data:`POOL_BLOCK` products, in one buffer: in
    one go the products are an ``(n, k, k)`` tensor, 8.6 GB at GraphVAE's 1,024 slots (a
    new block each time was also 2-20x slower there, in page faults)."""
    k = w.size(0)
    rows = max(1, min(POOL_BLOCK // max(1, k * k), x.size(0)))
    if rows == x.size(0):                   # one block (small graphs): no buffer to fill
        return (x[:, None, :] * w[None, :, :]).amax(-1)
    buf = x.new_empty(rows, k, k)
    out = x.new_empty(x.size(0), k)
    for i in range(0, x.size(0), rows):
        r = min(rows, x.size(0) - i)
        torch.mul(x[i:i + r, None, :], w[None, :, :], out=buf[:r])
        torch.amax(buf[:r], -1, out=out[i:i + r])
    return out


def max_pool_matching(target_adj: Tensor, pred_adj: Tensor, target_x: Tensor | None = None,
                      pred_x: Tensor | None = None, iterations: int = 75,
                      refine: bool = True) -> Tensor:
    """Max-pooling graph matching (Cho et al. 2014) of a target graph to a prediction.

    Affinities, as in GraphVAE: edges ``S((i,j),(a,b)) = A_ij Ã_ab Ã_aa Ã_bb`` for
    ``i ≠ j, a ≠ b``; nodes ``S((i,i),(a,a)) = A_ii Ã_aa · s_ia (1 + x_iᵀ x̃_a)`` (the
    feature factor only when features are given). ``Ã`` holds edge probabilities
    with the node-existence probabilities on its diagonal (ones when not modelled);
    ``A``'s diagonal marks the target's real nodes (1) and padding (0), so that a real
    node, isolated or not, goes to a slot the prediction says exists; an all-zero
    diagonal means every node is real.
    ``s_ia = exp(−‖w_i − w̃_a‖²)`` compares soft walk counts ``log(1 + (A^t 1))``,
    ``t = 1..3``: without it a 0/1 prediction leaves every column of ``X`` equal
    under max-pooling and the assignment is arbitrary. Iterate
    ``X_ia ← X_ia S_ia,ia + Σ_j A_ij max_b X_jb S((i,j),(a,b))`` with ``‖X‖ = 1`` from
    ``X ∝ S_ia,ia``, take the Hungarian assignment of ``X``, then (``refine``) apply
    pairwise swaps while they raise ``Σ (P A Pᵀ)_ab Ã_ab + Σ_a S_perm(a)a``.

    Returns:
        ``perm`` over the prediction's nodes, on the CPU: target node ``perm[a]`` sits at
        prediction slot ``a`` (so ``target[perm][:, perm] ≈ pred``).
    """
    # a small dense search ending in a Hungarian step on the CPU: done there, whatever the
    # inputs' device (a CUDA prediction met CPU constants here)
    a_t, a_p = target_adj.detach().cpu().double(), pred_adj.detach().cpu().double()
    if target_x is not None and pred_x is not None:
        target_x, pred_x = target_x.detach().cpu(), pred_x.detach().cpu()
    n = a_t.size(0)
    if a_p.shape != (n, n):
        raise ValueError(f"target has {n} nodes but the prediction is {tuple(a_p.shape)}")
    if n == 0:
        return torch.zeros(0, dtype=torch.long)                    # nothing to match
    a_t, w, node = _affinities(a_t, a_p, target_x, pred_x)
    x = node / node.norm().clamp(min=1e-30)
    for _ in range(iterations):
        x = x * node + a_t @ _max_pooled(x, w)
        x = x / x.norm().clamp(min=1e-30)
    # x[i, a]: target node i at prediction slot a; invert to slot -> node
    perm = hungarian_matching(x.t())
    if refine:
        perm = _refine_by_swaps(a_t, w, node, perm)
    return perm
