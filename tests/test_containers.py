"""The graph containers (containers.py): a networkx graph as tensors, degree features, a
batch's padded layout and types, a sampled graph's type draws, copies and networkx form,
and the link-prediction counts. Every expected value is written out by hand."""

import networkx as nx
import pytest
import torch

from graphvae.containers import (
    MAX_DEGREE_FEATURE,
    EdgeStats,
    GraphBatch,
    GraphTensors,
    SampledGraph,
    degree_features,
)


def _pairs(t: GraphTensors) -> list[tuple[int, int]]:
    return sorted(map(tuple, t.edge_index.t().tolist()))


# ------------------------------------------------------------------ GraphTensors
def test_a_networkx_graph_of_any_labels_is_numbered_in_node_order():
    g = nx.Graph()
    g.add_edges_from([("b", "a"), ("a", "c")])        # nodes in the order b, a, c
    t = GraphTensors.from_networkx(g)
    assert t.num_nodes == 3
    assert _pairs(t) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    h = nx.Graph([(5, 7)])                            # integers, but not 0..n-1
    assert _pairs(GraphTensors.from_networkx(h)) == [(0, 1), (1, 0)]


def test_self_loops_are_dropped_and_edge_types_follow_both_directions():
    g = nx.Graph()
    g.add_nodes_from([(0, {"atom": 2}), (1, {"atom": 0}), (2, {"atom": 1})])
    g.add_edge(0, 0, bond=3)
    g.add_edge(0, 1, bond=1)
    g.add_edge(1, 2, bond=2)
    t = GraphTensors.from_networkx(g, "atom", "bond")
    assert t.node_types.tolist() == [2, 0, 1]
    types = dict(zip(map(tuple, t.edge_index.t().tolist()), t.edge_types.tolist()))
    assert types == {(0, 1): 1, (1, 0): 1, (1, 2): 2, (2, 1): 2}


def test_types_of_a_graph_without_edges_are_checked_without_a_minimum():
    none = torch.zeros(2, 0, dtype=torch.long)
    t = GraphTensors(2, none, torch.tensor([0, 1]), torch.zeros(0, dtype=torch.long))
    assert t.edge_types.shape == (0,)


# ------------------------------------------------------------------ degree features
def test_degree_features_one_hot_the_degree_up_to_the_cap():
    star = GraphTensors.from_networkx(nx.star_graph(MAX_DEGREE_FEATURE + 4))   # centre 0
    x = degree_features(star.num_nodes, star.edge_index)
    assert x.shape == (MAX_DEGREE_FEATURE + 5, MAX_DEGREE_FEATURE + 1)
    assert x[0].argmax().item() == MAX_DEGREE_FEATURE and x[0].sum().item() == 1
    assert (x[1:, 1] == 1).all() and x[1:].sum().item() == MAX_DEGREE_FEATURE + 4
    small = degree_features(3, torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), max_degree=1)
    assert small.tolist() == [[0, 1], [0, 1], [0, 1]]              # degree 2 capped at 1


# ------------------------------------------------------------------ GraphBatch
def _path(n, types=False):
    g = nx.path_graph(n)
    nx.set_node_attributes(g, {i: i % 2 for i in g}, "atom")
    nx.set_edge_attributes(g, {e: 1 + e[0] % 2 for e in g.edges}, "bond")
    return GraphTensors.from_networkx(g, *(("atom", "bond") if types else ()))


def test_a_batch_pads_each_graph_to_the_largest():
    """A 3-node and a 4-node path: k = 4, the first graph's slots are 0..2 and the
    second's 4..7 (b·k + i), its mask has three of four, and the union numbers the
    second graph's nodes from 3."""
    b = GraphBatch.collate([_path(3), _path(4)], [torch.ones(3, 2), torch.ones(4, 2)])
    assert (b.num_graphs, b.k) == (2, 4)
    assert b.slot.tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert b.mask.tolist() == [[True, True, True, False], [True, True, True, True]]
    assert b.sizes.tolist() == [3, 4]
    assert b.dense[0].tolist() == [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert sorted(map(tuple, b.adj.edge_index.t().tolist()))[-2:] == [(5, 6), (6, 5)]


def test_a_batch_keeps_every_graphs_edge_types_or_none():
    typed = GraphBatch.collate([_path(3, True), _path(2, True)],
                               [torch.ones(3, 1), torch.ones(2, 1)])
    assert typed.edge_types[0].tolist() == [[0, 1, 0], [1, 0, 2], [0, 2, 0]]
    assert typed.edge_types[1].tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    assert typed.node_types.tolist() == [0, 1, 0, 0, 1]
    # a graph without types would read as "no edge" on its edges: no types at all
    for graphs in ([_path(3, True), _path(2)], [_path(2), _path(3, True)]):
        mixed = GraphBatch.collate(graphs, [torch.ones(g.num_nodes, 1) for g in graphs])
        assert mixed.edge_types is None and mixed.node_types is None


@pytest.mark.parametrize("graphs, features, message", [
    ([], [], "an empty batch of graphs"),
    ([_path(2)], [torch.ones(2, 1), torch.ones(2, 1)], "1 graphs but 2 feature tables"),
    ([_path(2)], [torch.ones(2)],
     "graph 0 has 2 nodes but its features have shape (2,) (one row a node)"),
    ([_path(2), _path(3)], [torch.ones(2, 1), torch.ones(2, 1)],
     "graph 1 has 3 nodes but its features have shape (2, 1) (one row a node)"),
])
def test_a_batch_refuses_features_that_do_not_fit(graphs, features, message):
    with pytest.raises(ValueError) as err:
        GraphBatch.collate(graphs, features)
    assert str(err.value) == message


# ------------------------------------------------------------------ SampledGraph
_TRIANGLE_LESS_ONE = torch.tensor([[0., 1., 1.], [1., 0., 0.], [1., 0., 0.]])


def _certain(n, classes, pick):
    """Logits that put all but e^-60 of the mass on ``pick[i]`` in each row."""
    logits = torch.zeros(n, classes)
    logits[torch.arange(n), torch.as_tensor(pick)] = 60.0
    return logits


def test_types_are_drawn_per_row_and_bonds_coded_one_up_on_drawn_edges_only():
    g = SampledGraph(_TRIANGLE_LESS_ONE.clone())
    bond = torch.zeros(3, 3, 4)
    bond[..., 2] = 60.0                              # every pair's bond: type 2, code 3
    bond[1, 0] = torch.tensor([60.0, 0, 0, 0])      # ignored: the upper triangle is read
    g.draw_types(_certain(3, 5, [4, 0, 2]), bond, torch.Generator().manual_seed(0),
                 torch.device("cpu"))
    assert g.node_types.tolist() == [4, 0, 2]
    assert g.bond_types.tolist() == [[0, 3, 3], [3, 0, 0], [3, 0, 0]]
    assert torch.equal(g.bond_types, g.bond_types.T)
    assert g.bond_prob.shape == (3, 3, 4)


def test_node_types_are_drawn_from_each_rows_own_softmax():
    """Forty rows that all favour type 0 by e^50: every draw is 0 (a softmax over the
    rows instead would spread the draws over the three types)."""
    logits = torch.zeros(40, 3)
    logits[:, 0] = 50.0
    g = SampledGraph(torch.zeros(40, 40))
    g.draw_types(logits, None, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert g.node_types.tolist() == [0] * 40 and g.node_logits is logits


def test_types_are_drawn_not_taken_at_their_mode():
    """Two equally likely types over 200 rows: both are drawn (all one type has
    probability 2^-199)."""
    g = SampledGraph(torch.zeros(200, 200))
    g.draw_types(torch.zeros(200, 2), None, torch.Generator().manual_seed(0),
                 torch.device("cpu"))
    assert set(g.node_types.tolist()) == {0, 1}


def test_an_empty_graph_draws_no_types():
    g = SampledGraph(torch.zeros(0, 0))
    g.draw_types(torch.zeros(0, 3), torch.zeros(0, 0, 4), None, torch.device("cpu"))
    assert g.node_types.shape == (0,) and g.bond_types.shape == (0, 0)


def test_a_copy_on_the_cpu_keeps_every_field():
    g = SampledGraph(_TRIANGLE_LESS_ONE.clone(), edge_prob=torch.full((3, 3), 0.25))
    g.draw_types(_certain(3, 2, [1, 1, 0]), _certain(9, 4, [1] * 9).reshape(3, 3, 4),
                 torch.Generator().manual_seed(0), torch.device("cpu"))
    c = g.cpu()
    for name in ("adj", "edge_prob", "node_types", "node_logits", "bond_prob", "bond_types"):
        assert torch.equal(getattr(c, name), getattr(g, name)), name


def test_a_sampled_graph_as_networkx_keeps_isolated_nodes_and_bond_indices():
    adj = torch.zeros(4, 4)
    adj[0, 1] = adj[1, 0] = 1.0                       # nodes 2 and 3 isolated
    g = SampledGraph(adj, node_types=torch.tensor([1, 0, 2, 2]),
                     bond_types=(adj * 3).long())   # code 3: BOND_TYPES index 2
    nxg = g.to_networkx()
    assert sorted(nxg.nodes) == [0, 1, 2, 3]
    assert dict(nxg.nodes(data="atom")) == {0: 1, 1: 0, 2: 2, 3: 2}
    assert list(nxg.edges(data="bond")) == [(0, 1, 2)]
    assert list(SampledGraph(adj).to_networkx().edges(data=True)) == [(0, 1, {})]


# ------------------------------------------------------------------ EdgeStats
def test_the_non_edges_are_the_pairs_less_the_positives():
    assert EdgeStats(num_nodes=5, num_pairs=20, num_pos=6).num_neg == 14
    assert EdgeStats(num_nodes=5, num_pairs=25, num_pos=6).num_neg == 19
