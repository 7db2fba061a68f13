"""NSPDK MMD²: the neighbourhood subgraph pairwise distance kernel (Costa & De Grave, ICML
2010) between two sets of labelled graphs, as GDSS (Jo et al., ICML 2022) reports it for
molecules, via the EDeN vectoriser with ``complexity=4``.

The feature map, as EDeN computes it:

1. Each edge becomes a vertex carrying the edge's label, joined to its two endpoints
   (distances double; an edge vertex has degree 2, a node its degree).
2. For each node ``v``, a breadth-first visit to depth ``2·max(R, D)`` in that graph. The
   *signature* of ``v`` at radius ``ρ`` lists, for each depth ``0..ρ``, the sorted
   multiset of ``(label, degree)`` of the vertices at exactly that depth.
3. For every node ``v``, every node ``u`` at distance ``δ ≤ D`` (``u = v`` included) and
   every radius ``ρ ≤ R`` reached from both: count the feature ``(ρ, δ, {sig_v, sig_u})``
   (the unordered pair) and the "half" feature ``(ρ, δ, sig_u)``.
4. Each ``(ρ, δ)`` block is scaled to unit norm, then the whole vector.

The kernel is the inner product of these vectors; ``MMD² = mean K(X, X) + mean K(Y, Y) −
2 mean K(X, Y)`` over all pairs, diagonals included (GDSS's estimator), which for this
linear kernel is ``‖mean φ(X) − mean φ(Y)‖²``, computed so. ``R = D = 4``.

EDeN hashes signatures and features into ``2¹⁶`` buckets with Python's ``hash``, which is
salted per process for strings (atom labels), so its values move by hash collisions from
run to run. Here features are kept exact (tuples), which is EDeN's map without collisions.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Hashable, Sequence

import networkx as nx

COMPLEXITY = 4

Features = dict[tuple, float]


def _expanded(g: nx.Graph, node_label: str, edge_label: str) -> tuple[dict, dict, list]:
    """Adjacency, labels and the original nodes of ``g`` with its edges turned into vertices."""
    adj: dict[Hashable, list] = {("n", v): [] for v in g.nodes}
    label: dict[Hashable, Hashable] = {("n", v): g.nodes[v].get(node_label) for v in g.nodes}
    for k, (a, b) in enumerate(e for e in g.edges if e[0] != e[1]):
        w = ("e", k)
        label[w] = g.edges[a, b].get(edge_label)
        adj[w] = [("n", a), ("n", b)]
        adj[("n", a)].append(w)
        adj[("n", b)].append(w)
    return adj, label, [("n", v) for v in g.nodes]


def _levels(adj: dict, root: Hashable, depth: int) -> list[list]:
    """The vertices at each exact distance ``0..`` (at most ``depth``) from ``root``."""
    seen, levels, queue = {root: 0}, [[root]], deque([root])
    while queue:
        x = queue.popleft()
        d = seen[x] + 1
        if d > depth:
            continue
        for y in adj[x]:
            if y not in seen:
                seen[y] = d
                if d == len(levels):
                    levels.append([])
                levels[d].append(y)
                queue.append(y)
    return levels


def nspdk_features(g: nx.Graph, radius: int = COMPLEXITY, distance: int = COMPLEXITY,
                   node_label: str = "label", edge_label: str = "label",
                   ids: dict | None = None) -> Features:
    """The normalised NSPDK feature vector of ``g`` (see the module docstring) as a dict.
    ``ids``: a table shared across graphs that numbers the signatures, so that features are
    small tuples (the same map, faster); a fresh one when ``None``."""
    ids = {} if ids is None else ids
    adj, label, nodes = _expanded(g, node_label, edge_label)
    depth = 2 * max(radius, distance)
    levels = {v: _levels(adj, v, depth) for v in nodes}
    sigs: dict[Hashable, list[int]] = {}
    for v, lev in levels.items():
        prefix: list[int] = []
        last = -1
        for layer in lev:
            layer_key = tuple(sorted((repr(label[x]), len(adj[x])) for x in layer))
            last = ids.setdefault((last, layer_key), len(ids))
            prefix.append(last)
        sigs[v] = prefix
    blocks: dict[tuple[int, int], dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
    for v in nodes:
        for dd in range(0, 2 * distance + 1, 2):
            if dd >= len(levels[v]):
                break
            for u in levels[v][dd]:
                if u[0] != "n":
                    continue
                for rr in range(0, 2 * radius + 1, 2):
                    if rr >= len(sigs[v]) or rr >= len(sigs[u]):
                        continue
                    a, b = sorted((sigs[v][rr], sigs[u][rr]))
                    block = blocks[(rr // 2, dd // 2)]
                    block[("pair", rr, dd, a, b)] += 1.0
                    block[("half", rr, dd, sigs[u][rr])] += 1.0
    out: Features = {}
    for block in blocks.values():
        norm = math.sqrt(sum(c * c for c in block.values()))
        for key, c in block.items():
            out[key] = c / norm
    total = math.sqrt(sum(c * c for c in out.values()))
    return {k: c / total for k, c in out.items()} if total else out


def _mean(vectors: Sequence[Features]) -> Features:
    out: Features = defaultdict(float)
    for v in vectors:
        for k, c in v.items():
            out[k] += c / len(vectors)
    return out


def nspdk_mmd2(reference: Sequence[nx.Graph], generated: Sequence[nx.Graph],
               node_label: str = "label", edge_label: str = "label",
               progress: bool = False) -> float:
    """NSPDK MMD² between two sets of labelled graphs (empty generated graphs dropped, as
    GDSS does); raises ``ValueError`` when either set is empty. ``progress``: a bar on a
    terminal."""
    from graphvae.progress import steps

    gen = [g for g in generated if g.number_of_nodes()]
    if not reference or not gen:
        raise ValueError("NSPDK MMD needs at least one reference and one non-empty generated "
                         "graph")
    ids: dict = {}
    mx = _mean([nspdk_features(g, node_label=node_label, edge_label=edge_label, ids=ids)
                for g in steps(reference, "NSPDK: reference", progress, " graphs")])
    my = _mean([nspdk_features(g, node_label=node_label, edge_label=edge_label, ids=ids)
                for g in steps(gen, "NSPDK: samples", progress, " graphs")])
    # keys in insertion order, not a set's: a set of tuples holding strings iterates in
    # the order of the per-process string hash, which moves the sum's last digits
    keys = [*mx, *(k for k in my if k not in mx)]
    return sum((mx.get(k, 0.0) - my.get(k, 0.0)) ** 2 for k in keys)
