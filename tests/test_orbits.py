"""Orbit counts against brute force over every node subset, and by hand."""

import itertools

import networkx as nx
import numpy as np
import pytest

from graphvae.tasks.orbits import NUM_ORBITS, orbit_counts

# Each graphlet on 3-4 nodes with the orbit of every node (Pržulj 2007 / ORCA numbering),
# written out by hand.
TEMPLATES = [
    (nx.path_graph(3), {0: 1, 1: 2, 2: 1}),
    (nx.complete_graph(3), {0: 3, 1: 3, 2: 3}),
    (nx.path_graph(4), {0: 4, 1: 5, 2: 5, 3: 4}),
    (nx.star_graph(3), {0: 7, 1: 6, 2: 6, 3: 6}),
    (nx.cycle_graph(4), {0: 8, 1: 8, 2: 8, 3: 8}),
    (nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)]), {0: 10, 1: 10, 2: 11, 3: 9}),
    (nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]), {0: 13, 2: 13, 1: 12, 3: 12}),
    (nx.complete_graph(4), {0: 14, 1: 14, 2: 14, 3: 14}),
]


def brute_force(g: nx.Graph) -> np.ndarray:
    nodes = list(g.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    out = np.zeros((len(nodes), NUM_ORBITS), dtype=np.int64)
    for v in nodes:
        out[index[v], 0] = g.degree[v]
    for size in (3, 4):
        for subset in itertools.combinations(nodes, size):
            sub = g.subgraph(subset)
            if not nx.is_connected(sub):
                continue
            matches = [(t, orb) for t, orb in TEMPLATES if nx.is_isomorphic(sub, t)]
            assert len(matches) == 1
            t, orb = matches[0]
            mapping = next(nx.algorithms.isomorphism.GraphMatcher(sub, t).isomorphisms_iter())
            for v, tv in mapping.items():
                out[index[v], orb[tv]] += 1
    return out


@pytest.mark.parametrize("seed", range(40))
def test_orbit_counts_equal_brute_force_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 10))
    g = nx.gnp_random_graph(n, float(rng.uniform(0.15, 0.9)), seed=seed)
    assert np.array_equal(orbit_counts(g), brute_force(g))


def test_each_graphlet_by_hand():
    for t, orb in TEMPLATES:
        counts = orbit_counts(t)
        for v, o in orb.items():
            assert counts[v, o] == 1
            assert counts[v, 0] == t.degree[v]
    # K4 also holds 4 triangles, each node in 3 of them, and no induced path or star
    k4 = orbit_counts(nx.complete_graph(4))
    assert (k4[:, 3] == 3).all() and (k4[:, 1:3] == 0).all() and (k4[:, 4:14] == 0).all()


def test_labels_and_self_loops():
    g = nx.Graph([("a", "b"), ("b", "c"), ("c", "c")])
    counts = orbit_counts(g)
    assert counts[:, 0].tolist() == [1, 2, 1]
    assert counts[:, 1].tolist() == [1, 0, 1] and counts[:, 2].tolist() == [0, 1, 0]
