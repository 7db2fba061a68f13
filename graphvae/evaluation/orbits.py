"""Node orbit counts of the graphlets on 2–4 nodes (15 orbits), written for graphvae.

For every node ``v`` and orbit ``o``, ``counts[v, o]`` is the number of connected
induced subgraphs on 2, 3 or 4 nodes that contain ``v`` in position ``o``, with
the orbit numbering of Pržulj (Bioinformatics 2007) used by the ORCA tool
(Hočevar & Demšar, Bioinformatics 2014) that GraphRNN's evaluation calls:

==  ==========================  ==  ==================================
 0  edge (degree)                8  4-cycle
 1  3-path, end                  9  paw (tailed triangle), tail end
 2  3-path, centre              10  paw, triangle node of degree 2
 3  triangle                    11  paw, node of degree 3
 4  4-path, end                 12  diamond, node of degree 2
 5  4-path, inner               13  diamond, node of degree 3
 6  3-star, leaf                14  4-clique
 7  3-star, centre
==  ==========================  ==  ==================================

ORCA itself is GPL-licensed C++ and is not shipped. Two counters are here:

* ``method="matrix"`` (the default) counts every pattern as a *non-induced*
  subgraph in closed form from sparse products of the adjacency matrix (degrees,
  common-neighbour counts ``A²``, triangles per node and per edge; 4-cliques from
  the triangles inside each neighbourhood), then turns those counts into induced
  counts with one fixed integer matrix: a non-induced copy of a pattern sits
  inside exactly one induced graphlet on the same nodes, so non-induced counts
  are a fixed linear combination of induced ones (the idea ORCA rests on). The
  matrix is not typed in: it is the same closed forms applied to each graphlet on
  its own. Cost is a few sparse matrix products and one small dense product per
  node for the 4-cliques.
* ``method="esu"`` enumerates the connected induced subgraphs on 3 and 4 nodes
  with the ESU algorithm (Wernicke, IEEE/ACM TCBB 2006) and classifies each by its
  edge count and degrees: simple and slow on dense graphs, kept as a reference.

The tests compare both with brute-force enumeration of every node subset.
"""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx
import numpy as np
import scipy.sparse as sp

NUM_ORBITS = 15

#: (number of edges, sorted degree sequence) -> orbit of a node by its degree in the graphlet
_GRAPHLETS: dict[tuple[int, tuple[int, ...]], dict[int, int]] = {
    (2, (1, 1, 2)): {1: 1, 2: 2},            # 3-path
    (3, (2, 2, 2)): {2: 3},                  # triangle
    (3, (1, 1, 2, 2)): {1: 4, 2: 5},         # 4-path
    (3, (1, 1, 1, 3)): {1: 6, 3: 7},         # 3-star
    (4, (2, 2, 2, 2)): {2: 8},               # 4-cycle
    (4, (1, 2, 2, 3)): {1: 9, 2: 10, 3: 11},  # paw
    (5, (2, 2, 3, 3)): {2: 12, 3: 13},       # diamond
    (6, (3, 3, 3, 3)): {3: 14},              # 4-clique
}

#: one graphlet per entry of _GRAPHLETS, as edge lists on nodes 0..2 or 0..3
_TEMPLATE_EDGES = [
    [(0, 1), (1, 2)], [(0, 1), (1, 2), (0, 2)],
    [(0, 1), (1, 2), (2, 3)], [(0, 1), (0, 2), (0, 3)], [(0, 1), (1, 2), (2, 3), (3, 0)],
    [(0, 1), (1, 2), (0, 2), (2, 3)], [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)],
    [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)],
]
_THREE, _FOUR = slice(1, 4), slice(4, 15)


def connected_subsets(adj: list[set[int]], size: int) -> Iterator[tuple[int, ...]]:
    """Every connected node set of ``size`` nodes exactly once (ESU enumeration)."""

    def extend(sub: tuple[int, ...], ext: set[int], root: int) -> Iterator[tuple[int, ...]]:
        if len(sub) == size:
            yield sub
            return
        ext = set(ext)
        covered = set(sub).union(*(adj[u] for u in sub))
        while ext:
            w = ext.pop()
            exclusive = {u for u in adj[w] if u > root and u not in covered}
            yield from extend(sub + (w,), ext | exclusive, root)

    for v in range(len(adj)):
        yield from extend((v,), {u for u in adj[v] if u > v}, v)


def _choose2(x: np.ndarray) -> np.ndarray:
    return x * (x - 1) // 2


def noninduced_counts(adj: sp.csr_array, dense_limit: int = 2048) -> np.ndarray:
    """``(n, 15)`` counts of each pattern as a (not necessarily induced) subgraph.

    Column ``o`` counts the copies of orbit ``o``'s graphlet that contain node ``v``
    in orbit ``o``'s position, whatever other edges join the copy's nodes.
    ``adj``: symmetric 0/1 adjacency, no self-loops. Graphs of at most
    ``dense_limit`` nodes are counted with dense float64 products (exact below
    2**53), larger ones with sparse integer products.
    """
    n = adj.shape[0]
    dense = n <= dense_limit
    if dense:
        a = sp.csr_array(adj).toarray().astype(np.float64)
    else:
        a = sp.csr_array(adj, dtype=np.int64)

    def mul(x, y):  # elementwise product
        return x * y if dense else x.multiply(y).tocsr()

    def rowsum(x) -> np.ndarray:
        return np.rint(np.asarray(x.sum(axis=1), dtype=np.float64).ravel()).astype(np.int64)

    def times(x, vec: np.ndarray) -> np.ndarray:  # x @ vec as exact integers
        return np.rint(np.asarray(x @ vec.astype(x.dtype), dtype=np.float64)).astype(np.int64)

    d = rowsum(a)
    a2 = a @ a                                  # a2[v, w]: common neighbours (diagonal: d)
    ta = mul(a, a2)                             # triangles through each edge
    tri = rowsum(ta) // 2                       # triangles at each node
    if dense:
        pairs = a2 * (a2 - 1) / 2               # pairs of common neighbours
    else:
        pairs = a2.copy()
        pairs.data = _choose2(pairs.data)
    out = np.zeros((n, NUM_ORBITS), dtype=np.int64)
    out[:, 0] = d
    out[:, 1] = times(a, d - 1)                                 # v–u–w, v an end
    out[:, 2] = _choose2(d)                                     # u–v–w
    out[:, 3] = tri
    out[:, 4] = times(a2, d - 1) - d * (d - 1) - 2 * tri        # v–u–w–x, v an end
    out[:, 5] = (d - 1) * times(a, d - 1) - 2 * tri             # u–v–w–x
    out[:, 6] = times(a, _choose2(d - 1))                       # star, v a leaf
    out[:, 7] = _choose2(d) * (d - 2) // 3                      # star, v the centre
    out[:, 8] = rowsum(pairs) - _choose2(d)                     # 4-cycles
    out[:, 9] = times(a, tri) - 2 * tri                         # paw, v the tail
    out[:, 10] = times(ta, d - 2)                               # paw, v of degree 2
    out[:, 11] = tri * (d - 2)                                  # paw, v of degree 3
    out[:, 12] = rowsum(mul(a @ (ta - a), a)) // 2              # diamond, v a tip
    out[:, 13] = rowsum(mul(a, pairs))                          # diamond, degree 3
    out[:, 14] = _cliques4(a, dense)
    return out


def _cliques4(a, dense: bool) -> np.ndarray:
    """4-cliques at each node: the triangles among its neighbours (trace(B³) / 6)."""
    n = a.shape[0]
    out = np.zeros(n, dtype=np.int64)
    for v in range(n):
        if dense:
            nb = np.flatnonzero(a[v])
            if len(nb) >= 3:
                sub = a[np.ix_(nb, nb)]
                out[v] = round(float(((sub @ sub) * sub).sum())) // 6
        else:
            nb = a.indices[a.indptr[v]:a.indptr[v + 1]]
            if len(nb) >= 3:
                s = a[nb][:, nb]
                out[v] = int((s @ s).multiply(s).sum()) // 6
    return out


def _adjacency(graph: nx.Graph) -> sp.csr_array:
    """Symmetric 0/1 CSR adjacency in ``graph.nodes`` order (no self-loops, no repeats)."""
    n = graph.number_of_nodes()
    index = {v: i for i, v in enumerate(graph.nodes)}
    edges = np.array([(index[a], index[b]) for a, b in graph.edges() if a != b],
                     dtype=np.int64).reshape(-1, 2)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    a = sp.csr_array((np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(n, n))
    a.sum_duplicates()
    a.data[:] = 1
    return a


def _conversion() -> np.ndarray:
    """Integer matrix ``M`` with ``induced = noninduced @ M`` (block by graphlet size)."""
    c = np.eye(NUM_ORBITS, dtype=np.int64)
    for edges in _TEMPLATE_EDGES:
        g = nx.Graph(edges)
        size = g.number_of_nodes()
        block = _THREE if size == 3 else _FOUR
        counts = noninduced_counts(_adjacency(g))                # rows in g.nodes order
        degs = [g.degree[v] for v in g.nodes]
        orbit_of = _GRAPHLETS[(len(edges), tuple(sorted(degs)))]
        for v in range(size):
            c[orbit_of[degs[v]], block] = counts[v, block]   # row: induced orbit
    inverse = np.rint(np.linalg.inv(c.astype(float))).astype(np.int64)
    if not np.array_equal(c @ inverse, np.eye(NUM_ORBITS, dtype=np.int64)):
        raise AssertionError("orbit conversion matrix is not unimodular")
    return inverse


_TO_INDUCED = _conversion()


def orbit_counts(graph: nx.Graph, method: str = "matrix") -> np.ndarray:
    """``(n, 15)`` integer orbit counts, nodes in ``graph.nodes`` order; self-loops ignored.

    ``method``: ``"matrix"`` (closed form, fast) or ``"esu"`` (enumeration); both
    give the same counts.
    """
    if method == "matrix":
        return noninduced_counts(_adjacency(graph)) @ _TO_INDUCED
    if method != "esu":
        raise ValueError(f"method must be 'matrix' or 'esu', got {method!r}")
    a = _adjacency(graph)
    adj = [set(a.indices[a.indptr[v]:a.indptr[v + 1]].tolist()) for v in range(a.shape[0])]
    counts = np.zeros((len(adj), NUM_ORBITS), dtype=np.int64)
    counts[:, 0] = [len(s) for s in adj]
    for size in (3, 4):
        for sub in connected_subsets(adj, size):
            deg = [sum(1 for u in sub if u in adj[v]) for v in sub]
            orbit_of = _GRAPHLETS[(sum(deg) // 2, tuple(sorted(deg)))]
            for v, d in zip(sub, deg):
                counts[v, orbit_of[d]] += 1
    return counts
