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
run to run. Here features are kept exact, which is EDeN's map without collisions: each
signature is numbered the first time it is met (a table shared by both sets), and a
feature is one 64-bit integer made of its block, its kind and its signatures' numbers.

Steps 1–2 walk each graph in Python; steps 3–4 and the means are array operations over
all the (node, node, radius) triples of a chunk of graphs at once (``tests/test_nspdk.py``
checks them against a direct dictionary implementation of the four steps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import networkx as nx
import numpy as np

COMPLEXITY = 4
CHUNK = 4096          # at most so many graphs' node pairs are held in memory at once,
CHUNK_PAIRS = 1 << 18  # and past so many pairs the chunk is counted (a 5,000-atom molecule
                       # has up to 805,000 pairs within D = 4: about 0.3 GB)


def _label(data: dict, name: str, what: str) -> str:
    """The label ``data[name]`` as a key in which labels equal as Python values are equal
    (``1``, ``1.0``, ``True`` and ``numpy.int64(1)`` alike, as EDeN's ``hash`` makes them);
    a one-line ``ValueError`` when the attribute is missing."""
    try:
        value = data[name]
    except KeyError:
        raise ValueError(f"NSPDK: {what} has no {name!r} attribute (the label attributes are "
                         f"node_label and edge_label)") from None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int)) or (isinstance(value, float) and value.is_integer()):
        value = int(value)                  # (an int is not passed through float: 10**400)
    return repr(value)


def _walk(g: nx.Graph, radius: int, distance: int, node_label: str, edge_label: str,
          ids: dict, codes: dict) -> tuple[list[list[int]], list[tuple[int, int, int]]]:
    """Steps 1–2 for one graph: each node's signature numbers at radii ``0..radius`` (−1
    where the visit ends before that depth), and the ``(v, u, δ)`` node pairs with
    ``δ ≤ distance`` (both orders, and ``v = u``).

    The visit in the graph with edge vertices is read off distances between nodes: from
    ``v``, a node at distance ``k`` lies at depth ``2k``, and an edge at depth ``2k + 1``
    where ``k`` is its nearer end's distance. Each vertex enters its layer as the number
    of its ``(label, degree)`` (``codes``, shared), and a signature as the number of its
    layers so far (``ids``, shared)."""
    if g.is_directed() or g.is_multigraph():
        raise ValueError(f"NSPDK takes undirected simple graphs (networkx Graph), got a "
                         f"{type(g).__name__}")
    index = {v: i for i, v in enumerate(g.nodes)}
    n = len(index)
    nbrs: list[list[int]] = [[] for _ in range(n)]
    incident: list[list[tuple[int, int]]] = [[] for _ in range(n)]   # (other end, edge code)
    for a, b, data in g.edges(data=True):
        if a == b:                  # self-loops are dropped
            continue
        i, j = index[a], index[b]
        c = codes.setdefault((_label(data, edge_label, "an edge"), 2), len(codes))
        nbrs[i].append(j)
        nbrs[j].append(i)
        incident[i].append((j, c))
        incident[j].append((i, c))
    node_code = [codes.setdefault((_label(g.nodes[v], node_label, "a node"), len(nbrs[i])),
                                  len(codes)) for v, i in index.items()]
    reach = max(radius, distance)   # the visit goes to depth 2·reach: nodes this far out
    sigs: list[list[int]] = []
    pairs: list[tuple[int, int, int]] = []
    for v in range(n):
        dist = [-1] * n
        dist[v] = 0
        rings = [[v]]
        while len(rings) <= reach:
            ring = []
            for x in rings[-1]:
                for y in nbrs[x]:
                    if dist[y] < 0:
                        dist[y] = len(rings)
                        ring.append(y)
            if not ring:
                break
            rings.append(ring)
        near: list[list[int]] = []      # edges by their nearer end's distance, below radius
        for k, ring in enumerate(rings[:radius]):
            near.append([c for x in ring for y, c in incident[x]
                         if dist[y] > k or (dist[y] == k and x < y)])   # each edge once
        row = [-1] * (radius + 1)
        last = -1
        for k, ring in enumerate(rings[:radius + 1]):   # deeper layers are in no signature
            last = ids.setdefault((last, tuple(sorted(node_code[x] for x in ring))), len(ids))
            row[k] = last
            if k == radius or not near[k]:
                break
            last = ids.setdefault((last, tuple(sorted(near[k]))), len(ids))
        sigs.append(row)
        for k, ring in enumerate(rings[:distance + 1]):
            pairs.extend((v, u, k) for u in ring)
    return sigs, pairs


SHIFT = 28            # a feature key: (2·block + kind) << 56 | first << 28 | second + 1
MAX_BLOCKS = 64       # (2·block + kind) < 128 keeps the key under 2⁶³


def _chunk_embedding(sigs: np.ndarray, pairs: np.ndarray, graph_of: np.ndarray,
                     weight: np.ndarray, radius: int, distance: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Steps 3–4 for a chunk: ``(keys, Σ_g weight_g φ_g)`` over the distinct feature keys
    (:data:`SHIFT`). ``sigs``: one row of signature numbers a node (all graphs of the
    chunk); ``pairs``: ``(v, u, δ)`` rows in those node indices; ``graph_of``: each pair's
    graph (0-based in the chunk); ``weight``: each graph's weight in the sum."""
    v, u, delta = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    span = distance + 1
    # the graph's vector is scaled by 1/√(its non-empty (ρ, δ) blocks): count them first
    ok = [(sigs[v, rho] >= 0) & (sigs[u, rho] >= 0) for rho in range(radius + 1)]
    blocks_of = np.zeros(len(weight), np.int64)
    for rho in range(radius + 1):
        cells = np.unique(graph_of[ok[rho]] * span + delta[ok[rho]])
        blocks_of += np.bincount(cells // span, minlength=len(weight))
    keys, sums = [], []
    for rho in range(radius + 1):           # one radius at a time: its blocks are its own
        sv, su, g = sigs[v[ok[rho]], rho], sigs[u[ok[rho]], rho], graph_of[ok[rho]]
        top = (rho * span + delta[ok[rho]]) << (2 * SHIFT + 1)
        feature, inverse = np.unique(np.concatenate([
            top | (np.minimum(sv, su) << SHIFT) | (np.maximum(sv, su) + 1),
            top | (1 << 2 * SHIFT) | (su << SHIFT)]), return_inverse=True)
        # one row a distinct (graph, feature): its count
        cell, count = np.unique(np.concatenate([g, g]) * len(feature) + inverse,
                                return_counts=True)
        gr, f = np.divmod(cell, len(feature))
        count = count.astype(np.float64)
        # each (graph, block) to unit norm
        gb = gr * span + (feature[f] >> (2 * SHIFT + 1)) - rho * span
        sq = np.bincount(gb, weights=count * count, minlength=len(weight) * span)
        value = count / np.sqrt(sq[gb]) / np.sqrt(blocks_of[gr]) * weight[gr]
        keys.append(feature)
        sums.append(np.bincount(f, weights=value, minlength=len(feature)))
    return np.concatenate(keys), np.concatenate(sums)


def _reduce(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``values`` over equal ``keys``; keys sorted."""
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=values, minlength=len(unique))


def nspdk_difference(sets: Sequence[tuple[Iterable[nx.Graph], float]],
                     radius: int = COMPLEXITY, distance: int = COMPLEXITY,
                     node_label: str = "label", edge_label: str = "label"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``Σ_sets weight · Σ_g φ(g)`` as ``(keys, values)``: one sorted ``int64`` key a
    feature that some graph has (:data:`SHIFT`). With weights ``1/|X|`` and ``−1/|Y|`` it is
    ``mean φ(X) − mean φ(Y)``. A graph without nodes adds nothing. Raises ``ValueError``
    for radii and distances whose blocks the keys cannot hold, and past ``2²⁸`` distinct
    signatures (about 10⁸ nodes of distinct neighbourhoods)."""
    if min(radius, distance) < 0 or (radius + 1) * (distance + 1) > MAX_BLOCKS:
        raise ValueError(f"NSPDK radius {radius} and distance {distance}: need both >= 0 "
                         f"and (radius + 1)(distance + 1) <= {MAX_BLOCKS}")
    ids: dict = {}
    codes: dict = {}
    keys: list[np.ndarray] = [np.zeros(0, np.int64)]
    values: list[np.ndarray] = [np.zeros(0)]
    sigs: list[list[int]] = []
    pairs: list[tuple[int, int, int]] = []
    graph_of: list[int] = []
    weights: list[float] = []

    def flush() -> None:
        if len(ids) >= (1 << SHIFT) - 1:
            raise ValueError(f"NSPDK: over {1 << SHIFT} distinct signatures")
        if pairs:
            k, v = _chunk_embedding(np.asarray(sigs, np.int64), np.asarray(pairs, np.int64),
                                    np.asarray(graph_of, np.int64), np.asarray(weights),
                                    radius, distance)
            keys.append(k)
            values.append(v)
        for buffer in (sigs, pairs, graph_of, weights):
            buffer.clear()

    for graphs, weight in sets:
        for g in graphs:
            rows, p = _walk(g, radius, distance, node_label, edge_label, ids, codes)
            offset = len(sigs)
            sigs.extend(rows)
            pairs.extend((a + offset, b + offset, d) for a, b, d in p)
            graph_of.extend([len(weights)] * len(p))
            weights.append(weight)
            if len(weights) == CHUNK or len(pairs) >= CHUNK_PAIRS:
                flush()
    flush()
    return _reduce(np.concatenate(keys), np.concatenate(values))


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
    _, diff = nspdk_difference(
        [(steps(reference, "NSPDK: reference", progress, " graphs"), 1.0 / len(reference)),
         (steps(gen, "NSPDK: samples", progress, " graphs"), -1.0 / len(gen))],
        node_label=node_label, edge_label=edge_label)
    return float(np.sum(diff * diff))
