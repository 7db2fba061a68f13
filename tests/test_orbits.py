"""Orbit counts against brute force over every node subset, and by hand."""

import itertools

import networkx as nx
import numpy as np
import pytest

from graphvae.evaluation.orbits import NUM_ORBITS, noninduced_counts, orbit_counts

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


@pytest.mark.parametrize("method", ["matrix", "esu"])
@pytest.mark.parametrize("seed", range(40))
def test_orbit_counts_equal_brute_force_on_random_graphs(seed, method):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 10))
    g = nx.gnp_random_graph(n, float(rng.uniform(0.15, 0.9)), seed=seed)
    assert np.array_equal(orbit_counts(g, method), brute_force(g))


@pytest.mark.parametrize("seed", range(6))
def test_matrix_counts_equal_enumeration_on_larger_graphs(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(15, 35))
    g = nx.gnp_random_graph(n, float(rng.uniform(0.05, 0.5)), seed=seed)
    g.add_nodes_from(range(n, n + 2))  # isolated nodes
    assert np.array_equal(orbit_counts(g), orbit_counts(g, "esu"))


def test_sparse_and_dense_paths_agree():
    g = nx.gnp_random_graph(40, 0.3, seed=3)
    a = nx.to_scipy_sparse_array(g, dtype=np.int64, format="csr")
    assert np.array_equal(noninduced_counts(a), noninduced_counts(a, dense_limit=0))


@pytest.mark.parametrize("n", [4, 5, 7])
def test_complete_graph_counts_by_hand(n):
    # In K_n every pattern occurs on every node set of its size, each node in every role:
    # per node, m = n - 1 others; a 4-set holding v has 3 four-cycles, all through v.
    m = n - 1
    non = noninduced_counts(nx.to_scipy_sparse_array(nx.complete_graph(n), format="csr"))
    pairs, triples = m * (m - 1) // 2, m * (m - 1) * (m - 2) // 6
    expected = [m, 2 * pairs, pairs, pairs,
                6 * triples,      # v-u-w-x with v an end: ordered u, w, x
                6 * triples,      # u-v-w-x: v second, ordered u, w, x
                3 * triples,      # star leaf: centre, then the other two leaves
                triples, 3 * triples,
                3 * triples,      # paw tail: v's neighbour u fixes the triangle (u, w, x)
                6 * triples,      # paw degree 2: 3 choices of the degree-3 node x 2 tails
                3 * triples,      # paw degree 3: the tail is one of the 3 others
                3 * triples,      # diamond tip: 3 choices of the opposite tip
                3 * triples,      # diamond, v of degree 3: 3 choices of the other one
                triples]
    assert non[0].tolist() == expected
    induced = orbit_counts(nx.complete_graph(n))
    assert (induced[:, 0] == m).all() and (induced[:, 3] == pairs).all()
    assert (induced[:, 14] == triples).all()
    assert induced[:, [1, 2] + list(range(4, 14))].sum() == 0


def test_unknown_method():
    with pytest.raises(ValueError, match="method must be"):
        orbit_counts(nx.path_graph(3), "orca")


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


@pytest.mark.parametrize("method", ["matrix", "esu"])
def test_parallel_edges_count_once_and_empty_graphs(method):
    multi = orbit_counts(nx.MultiGraph([(0, 1), (0, 1), (1, 2)]), method)
    assert multi.tolist() == orbit_counts(nx.path_graph(3), method).tolist()
    assert orbit_counts(nx.Graph(), method).shape == (0, NUM_ORBITS)
    assert orbit_counts(nx.empty_graph(3), method).sum() == 0


def test_the_sparse_path_counts_a_4_clique_at_nodes_of_degree_3():
    """Graphs over the dense limit take the sparse path; in K4 every node has exactly three
    neighbours and lies in the one 4-clique (orbit 14)."""
    from graphvae.evaluation.orbits import _adjacency

    counts = noninduced_counts(_adjacency(nx.complete_graph(4)), dense_limit=0)
    assert counts[:, 14].tolist() == [1, 1, 1, 1]
