"""The array implementation of NSPDK (graphvae.evaluation.nspdk) against a direct dictionary
implementation of the feature map its docstring states, on seeded random labelled graphs:
self-loops, isolated nodes, several components, paths longer than the radius, labels of
several types. The hand-worked cases are in test_seqvae.py."""

from __future__ import annotations

import math
import random
from collections import defaultdict, deque

import networkx as nx
import numpy as np
import pytest

from graphvae.evaluation import nspdk
from graphvae.evaluation.nspdk import nspdk_difference, nspdk_mmd2


def _reference_features(g, radius=4, distance=4, label="label"):
    """Steps 1–4 of the module docstring, literally: edges become vertices, a BFS from
    every node to depth 2·max(R, D), signatures as the layers' sorted (label, degree)
    multisets, features counted in (ρ, δ) blocks, blocks then the vector scaled to unit
    norm. Keys are the signatures themselves (nested tuples)."""
    adj = {("n", v): [] for v in g.nodes}
    lab = {("n", v): repr(g.nodes[v].get(label)) for v in g.nodes}
    for k, (a, b) in enumerate(e for e in g.edges if e[0] != e[1]):
        adj[("e", k)] = [("n", a), ("n", b)]
        lab[("e", k)] = repr(g.edges[a, b].get(label))
        adj[("n", a)].append(("e", k))
        adj[("n", b)].append(("e", k))
    depth = 2 * max(radius, distance)
    layers, sig = {}, {}
    for v in (("n", x) for x in g.nodes):
        dist, queue = {v: 0}, deque([v])
        while queue:
            x = queue.popleft()
            for y in adj[x]:
                if y not in dist and dist[x] < depth:
                    dist[y] = dist[x] + 1
                    queue.append(y)
        layers[v] = [[x for x in dist if dist[x] == d] for d in range(max(dist.values()) + 1)]
        sig[v] = [tuple(tuple(sorted((lab[x], len(adj[x])) for x in layer))
                        for layer in layers[v][:d + 1]) for d in range(len(layers[v]))]
    blocks = defaultdict(lambda: defaultdict(float))
    for v in layers:
        for dd in range(0, 2 * distance + 1, 2):
            for u in (layers[v][dd] if dd < len(layers[v]) else []):
                if u[0] != "n":
                    continue
                for rr in range(0, 2 * radius + 1, 2):
                    if rr < len(sig[v]) and rr < len(sig[u]):
                        block = blocks[(rr, dd)]
                        block[("pair", frozenset((sig[v][rr], sig[u][rr])))] += 1
                        block[("half", sig[u][rr])] += 1
    out = {}
    for key, block in blocks.items():
        norm = math.sqrt(sum(c * c for c in block.values()))
        out.update({(key, f): c / norm for f, c in block.items()})
    total = math.sqrt(sum(c * c for c in out.values()))
    return {k: c / total for k, c in out.items()}


def _reference_mmd2(xs, ys, **kw):
    diff = defaultdict(float)
    for graphs, w in ((xs, 1 / len(xs)), (ys, -1 / len(ys))):
        for g in graphs:
            for k, c in _reference_features(g, **kw).items():
                diff[k] += w * c
    return sum(c * c for c in diff.values())


def _random_graph(rng: random.Random) -> nx.Graph:
    n = rng.choice([0, 1, 2, 3, 5, 8, 11])
    g = nx.Graph()
    labels = ["C", "N", "O", 1, 2, None]
    for v in rng.sample(range(100), n):          # node names not 0..n-1
        g.add_node(v, label=rng.choice(labels))
    nodes = list(g.nodes)
    shape = rng.random()
    for i, a in enumerate(nodes):
        for b in nodes[i:]:
            p = 0.15 if shape < 0.5 else (1.0 if nodes.index(b) == i + 1 else 0.0)  # or a path
            if rng.random() < p and (a != b or rng.random() < 0.3):
                g.add_edge(a, b, label=rng.choice([1, 2, 3, "ar"]))
    return g


def _sets(seed: int, size: int = 12) -> tuple[list[nx.Graph], list[nx.Graph]]:
    rng = random.Random(seed)
    xs = [_random_graph(rng) for _ in range(size)]
    ys = [g for g in (_random_graph(rng) for _ in range(size)) if g.number_of_nodes()]
    return xs, ys


@pytest.mark.parametrize("seed", range(8))
def test_mmd2_equals_the_dictionary_implementation(seed):
    xs, ys = _sets(seed)
    assert any(g.number_of_nodes() == 0 for g in xs) or seed   # empty reference graphs occur
    assert any(nx.diameter(g.subgraph(c)) > 4 for g in xs + ys
               for c in nx.connected_components(g)) or seed
    expected = _reference_mmd2(xs, ys)
    assert expected > 0
    assert nspdk_mmd2(xs, ys) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("radius, distance", [(0, 0), (1, 3), (3, 1), (2, 2), (5, 5)])
def test_each_graphs_vector_equals_the_dictionary_one(radius, distance):
    """Per graph, the same feature values (keys differ only in how they are numbered) and
    a unit vector; and the inner products between graphs agree."""
    xs, ys = _sets(100 + radius, 8)
    graphs = [g for g in xs + ys if g.number_of_nodes()]
    for g in graphs:
        ref = _reference_features(g, radius, distance)
        _, values = nspdk_difference([([g], 1.0)], radius, distance)
        np.testing.assert_allclose(np.sort(values), np.sort(list(ref.values())), rtol=1e-13)
        assert float(np.sum(values ** 2)) == pytest.approx(1.0, rel=1e-13)
    a, b = graphs[0], graphs[1]
    ref = _reference_mmd2([a], [b], radius=radius, distance=distance)
    _, diff = nspdk_difference([([a], 1.0), ([b], -1.0)], radius, distance)
    assert float(np.sum(diff ** 2)) == pytest.approx(ref, rel=1e-12, abs=1e-15)


def _shapes() -> list[nx.Graph]:
    """Shapes with every atom C, and every bond 1 or bonds of two kinds, where features of
    different graphs coincide often: rings of both parities (edges between nodes at the
    same distance), paths, stars, a wheel, a ladder, the Petersen graph, two components."""
    graphs = [nx.cycle_graph(k) for k in range(3, 10)] + [nx.path_graph(k) for k in (1, 2, 5, 9)]
    graphs += [nx.star_graph(4), nx.wheel_graph(6), nx.ladder_graph(4), nx.petersen_graph(),
               nx.complete_graph(4), nx.lollipop_graph(3, 4),
               nx.disjoint_union(nx.cycle_graph(5), nx.path_graph(3))]
    rng = random.Random(1)
    bonded = []                     # the same shapes with bonds 1 or 2 at random
    for g in graphs:
        nx.set_node_attributes(g, "C", "label")
        nx.set_edge_attributes(g, 1, "label")
        for _ in range(2):
            h = g.copy()
            nx.set_edge_attributes(h, {e: rng.choice((1, 2)) for e in h.edges}, "label")
            bonded.append(h)
    return graphs + bonded


@pytest.mark.parametrize("radius, distance", [(4, 4), (2, 3), (3, 1)])
def test_kernel_values_between_shapes_equal_the_dictionary_ones(radius, distance):
    """‖φ(a) − φ(b)‖² for 400 pairs of shapes: with one atom label and at most two bond
    labels, features of different graphs coincide often, so a signature counted wrong
    shows."""
    graphs = _shapes()
    rng = random.Random(radius * 10 + distance)
    pairs = [(a, b) for i, a in enumerate(graphs) for b in graphs[i + 1:]]
    for a, b in rng.sample(pairs, 400):
        _, diff = nspdk_difference([([a], 1.0), ([b], -1.0)], radius, distance)
        expected = _reference_mmd2([a], [b], radius=radius, distance=distance)
        assert float(np.sum(diff ** 2)) == pytest.approx(expected, rel=1e-12, abs=1e-14), \
            (a, b)
    xs, ys = rng.sample(graphs, 9), rng.sample(graphs, 7)
    assert nspdk_mmd2(xs, ys) == pytest.approx(_reference_mmd2(xs, ys), rel=1e-12)


def test_chunks_do_not_change_the_value(monkeypatch):
    xs, ys = _sets(3, 20)
    whole = nspdk_mmd2(xs, ys)
    monkeypatch.setattr(nspdk, "CHUNK", 3)
    assert nspdk_mmd2(xs, ys) == pytest.approx(whole, rel=1e-13)
    monkeypatch.setattr(nspdk, "CHUNK", 4096)
    monkeypatch.setattr(nspdk, "CHUNK_PAIRS", 10)           # a chunk ends after one graph
    assert nspdk_mmd2(xs, ys) == pytest.approx(whole, rel=1e-13)


def test_identical_sets_and_relabelled_graphs_give_zero():
    xs, _ = _sets(5)
    relabelled = [nx.relabel_nodes(g, {v: f"x{v}" for v in g}) for g in xs]
    nonempty = [g for g in relabelled if g.number_of_nodes()]
    assert nspdk_mmd2([g for g in xs if g.number_of_nodes()], nonempty) == pytest.approx(
        0.0, abs=1e-15)


def test_keys_that_would_overflow_are_refused():
    g = nx.path_graph(3)
    with pytest.raises(ValueError, match="radius 8 and distance 8"):
        nspdk_difference([([g], 1.0)], 8, 8)
    with pytest.raises(ValueError, match="radius -1"):
        nspdk_difference([([g], 1.0)], -1, 2)


def _bond(label):
    g = nx.Graph()
    g.add_node(0, label="C")
    g.add_node(1, label="O")
    g.add_edge(0, 1, label=label)
    return g


def test_labels_equal_as_values_are_one_label():
    """A C–O bond labelled 1, 1.0, True or numpy.int64(1) is one graph (EDeN's ``hash``
    makes them one label; keyed by ``repr`` they were different labels). By hand, for two
    bonds of different labels: each node has signatures at radii 0 and 1 (the edge, then the
    other node), and the pairs lie at δ = 0, 1, so φ = (1/2) Σ of 4 unit blocks. The ρ = 0
    blocks (node label and degree only) are shared, the ρ = 1 ones hold the bond label and
    are not: ⟨φ_x, φ_y⟩ = 2/4 and MMD² = 2 − 2·(1/2) = 1."""
    for same in (1.0, True, np.int64(1), np.float32(1.0)):
        assert nspdk_mmd2([_bond(1)], [_bond(same)]) == pytest.approx(0.0, abs=1e-15)
    for other in (2, 1.5, "1"):
        assert nspdk_mmd2([_bond(1)], [_bond(other)]) == pytest.approx(1.0, rel=1e-12)


def test_missing_labels_and_directed_graphs_are_refused():
    """A graph without the label attribute was labelled None (a 'C'–'O' graph against the
    same graph unlabelled gave 2.0); a DiGraph counted each edge twice (2.0 against the same
    graph undirected)."""
    with pytest.raises(ValueError, match="NSPDK: an edge has no 'label' attribute"):
        nspdk_mmd2([_bond(1)], [nx.path_graph(2)])
    unlabelled_nodes = nx.Graph()
    unlabelled_nodes.add_edge(0, 1, label=1)
    with pytest.raises(ValueError, match="NSPDK: a node has no 'label' attribute"):
        nspdk_mmd2([_bond(1)], [unlabelled_nodes])
    for kind in (nx.DiGraph, nx.MultiGraph):
        with pytest.raises(ValueError, match=f"got a {kind.__name__}"):
            nspdk_mmd2([_bond(1)], [kind(_bond(1))])


def test_a_huge_integer_label_is_a_label():
    """10**400 went through float() (OverflowError, an internal error in the CLI)."""
    assert nspdk_mmd2([_bond(10 ** 400)], [_bond(10 ** 400)]) == pytest.approx(0.0, abs=1e-15)
    assert nspdk_mmd2([_bond(10 ** 400)], [_bond(1)]) == pytest.approx(1.0, rel=1e-12)


def test_empty_samples_are_dropped_and_empty_sets_refused():
    """Empty generated graphs are dropped before the mean, as GDSS does: a set of the
    reference's one graph and an empty graph is at distance 0 (counted, the mean would
    be ½φ(b), and MMD² = ‖φ(b) − ½φ(b)‖² = ¼ with φ of unit norm). A set of empty
    graphs only, or an empty reference, is refused."""
    b = nx.Graph()
    b.add_node(0, label="C")
    b.add_node(1, label="O")
    b.add_edge(0, 1, label=1)
    assert nspdk_mmd2([b], [b, nx.Graph()]) == 0.0
    assert nspdk_mmd2([b], [nx.Graph(), b]) == 0.0
    for ref, gen in (([b], [nx.Graph()]), ([], [b])):
        with pytest.raises(ValueError, match="at least one reference and one non-empty"):
            nspdk_mmd2(ref, gen)
