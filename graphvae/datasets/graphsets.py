"""Sets of small graphs for generation: published generators, the stored sets, seeded splits.

Generators (no files needed), each following its published recipe:

* :func:`community_small` — GDSS / EDP-GNN (Niu et al. 2020): ``max_nodes`` drawn
  from 12..20, two communities of ``max_nodes // 2`` nodes, each ``G(n, 0.7)``
  drawn with networkx seeds 0 and 1 (so, as in the recipe, two graphs of the same
  size share their communities and differ in their bridges), bridges between the
  communities with probability ``2 p_inter / N`` (``p_inter = 0.05``), at least one.
* :func:`grid_graphs` — GraphRNN (You et al. 2018): every ``m × n`` 2-D grid with
  ``10 ≤ m, n < 20`` (100 graphs, up to 361 nodes).
* :func:`lobster_graphs` — GRAN (Liao et al. 2019): ``nx.random_lobster(80, 0.7,
  0.7)`` with seeds counting up from ``seed``, kept when 10 ≤ nodes ≤ 100.

Stored sets (``ROOT/graphgen/*.g6`` or GDSS's ``*.pkl``): community-small, ego-small,
grid, ENZYMES. Splits (:func:`split_graphs`): a seeded shuffle, the last 20% is
the test set (as GraphRNN / GDSS), and the last 10% of the rest the validation
set used for model selection; the test set is never used to choose anything.
:class:`GraphSet` holds a split with its node / edge type attributes and gives the
tensors (with input features) the models train on.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import torch

from graphvae.containers import GraphTensors, degree_features
from graphvae.datasets.graphgen import GRAPHGEN_FILES, load_graphgen
from graphvae.io import resolve_data_root

GENERATED = ("community-small", "grid", "lobster")
GRAPH_SETS = ("community-small", "ego-small", "grid", "lobster", "enzymes")


def community_small(num_graphs: int = 100, seed: int = 0, p_inter: float = 0.05,
                    sizes: tuple[int, ...] = tuple(range(12, 21))) -> list[nx.Graph]:
    """Two-community graphs by the GDSS / EDP-GNN recipe (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_graphs):
        max_nodes = int(rng.choice(sizes))
        c = max_nodes // 2
        parts = [nx.gnp_random_graph(c, 0.7, seed=i) for i in range(2)]
        g = nx.disjoint_union_all(parts)
        p_bridge = p_inter * 2 / c
        bridges = [(a, c + b) for a in range(c) for b in range(c) if rng.random() < p_bridge]
        if not bridges:
            bridges = [(0, c)]
        g.add_edges_from(bridges)
        out.append(g)
    return out


def grid_graphs() -> list[nx.Graph]:
    """All ``m × n`` grids with 10 ≤ m, n ≤ 19, nodes relabelled 0..mn-1 (GraphRNN)."""
    return [nx.convert_node_labels_to_integers(nx.grid_2d_graph(m, n))
            for m in range(10, 20) for n in range(10, 20)]


#: Draws per lobster asked for before :func:`lobster_graphs` gives up (GRAN's recipe keeps
#: most draws).
LOBSTER_TRIES = 100


def lobster_graphs(num_graphs: int = 100, seed: int = 1234, mean_nodes: int = 80,
                   p1: float = 0.7, p2: float = 0.7, min_nodes: int = 10,
                   max_nodes: int = 100) -> list[nx.Graph]:
    """Random lobsters by GRAN's recipe (see the module docstring): draws with seeds
    ``seed, seed + 1, ...``, keeping those of ``min_nodes..max_nodes`` nodes. A one-line
    ``ValueError`` when ``LOBSTER_TRIES`` draws a graph keep fewer than ``num_graphs``
    (a size range that the draws rarely or never hit).

    Most draws are refused (GRAN's recipe: 1,495 draws for 100 lobsters), so each draw's
    size is first counted from its random numbers alone (:func:`lobster_size`) and
    networkx builds only the first draw and the graphs kept; should a built graph's size
    differ from its count (networkx drawing lobsters otherwise), every draw is built."""
    if not 1 <= min_nodes <= max_nodes or mean_nodes < 1 or not (0 <= p1 < 1 and 0 <= p2 < 1):
        raise ValueError(f"lobsters need 1 <= min_nodes <= max_nodes, mean_nodes >= 1 and "
                         f"p1, p2 in [0, 1), got {min_nodes}, {max_nodes}, {mean_nodes}, "
                         f"{p1}, {p2}")
    seeds = range(seed, seed + LOBSTER_TRIES * max(num_graphs, 1))
    recipe, sizes = (mean_nodes, p1, p2), (min_nodes, max_nodes)
    out = _lobsters(seeds, num_graphs, recipe, sizes, counted=True)
    if out is None:     # networkx drew a lobster otherwise than lobster_size counts it
        out = _lobsters(seeds, num_graphs, recipe, sizes, counted=False) or []
    if len(out) < num_graphs:
        raise ValueError(f"only {len(out)} of {len(seeds):,} lobster draws had "
                         f"{min_nodes}..{max_nodes} nodes ({num_graphs} asked for): widen "
                         f"the range or move mean_nodes into it")
    return out


def _lobsters(seeds: range, num_graphs: int, recipe: tuple[float, float, float],
              sizes: tuple[int, int], counted: bool) -> list[nx.Graph] | None:
    """The kept draws of ``seeds``: with ``counted``, only the first draw and those whose
    counted size is kept are built, and None if a built graph's size is not its count."""
    low, high = sizes
    out: list[nx.Graph] = []
    for s in seeds:
        if len(out) >= num_graphs:
            break
        size = lobster_size(*recipe, seed=s) if counted else None
        if size is not None and not low <= size <= high and s != seeds[0]:
            continue
        g = nx.random_lobster(*recipe, seed=s)
        if size is not None and g.number_of_nodes() != size:
            return None
        if low <= g.number_of_nodes() <= high:
            out.append(nx.convert_node_labels_to_integers(g))
    return out


def lobster_size(mean_nodes: float, p1: float, p2: float, seed: int) -> int:
    """The number of nodes of ``nx.random_lobster(mean_nodes, p1, p2, seed=seed)`` for an
    integer seed, from the same random numbers in the same order (networkx 3.x draws the
    backbone's length, then for each backbone node a leg while a draw is below ``p1``, and
    on each leg a further node while a draw is below ``p2``), without building the graph:
    1,495 draws of GRAN's recipe took 0.10-0.14 s, against 5.4-6.3 s built by networkx.
    Needs ``p1, p2 < 1``, as networkx does."""
    draw = random.Random(seed).random
    backbone = int(2 * draw() * mean_nodes + 0.5)
    size = backbone
    for _ in range(backbone):
        while draw() < p1:
            size += 1
            while draw() < p2:
                size += 1
    return size


def load_graph_set(name: str, root: str | os.PathLike | None = None, generated: bool = False,
                   seed: int = 0) -> list[nx.Graph]:
    """A named set: the stored file (``root/graphgen``), or with ``generated=True`` (and for
    ``lobster``, which has no file) the generator's output. Graphs are simple, undirected,
    with nodes 0..n-1."""
    key = name.lower()
    if key not in GRAPH_SETS:
        raise ValueError(f"unknown graph data set {name!r}: use one of {', '.join(GRAPH_SETS)}"
                         f" (or qm9)")
    if key == "lobster" or generated:
        if key == "community-small":
            graphs = community_small(seed=seed)
        elif key == "grid":
            graphs = grid_graphs()
        elif key == "lobster":
            graphs = lobster_graphs()
        else:
            raise ValueError(f"{name} has no generator; it is read from "
                             f"graphgen/{GRAPHGEN_FILES[key]}")
    else:
        graphs = load_graphgen(key, resolve_data_root(root))
    return [_simple(g) for g in graphs]


def _simple(g: nx.Graph) -> nx.Graph:
    h = nx.convert_node_labels_to_integers(nx.Graph(g))
    h.remove_edges_from(nx.selfloop_edges(h))
    return h


@dataclass
class GraphSplit:
    train: list[nx.Graph]
    valid: list[nx.Graph]
    test: list[nx.Graph]
    seed: int

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def split_graphs(graphs: list[nx.Graph], seed: int = 0, test_fraction: float = 0.2,
                 valid_fraction: float = 0.1) -> GraphSplit:
    """Seeded shuffle; the last ``test_fraction`` is the test set, the last ``valid_fraction``
    of the remainder the validation set (at least one graph each when there are ≥ 3:
    fractions that would leave a set empty give it one graph). Fractions lie in ``[0, 1)``."""
    n = len(graphs)
    if n < 3:
        raise ValueError(f"need at least 3 graphs to split into train/valid/test, got {n}")
    for name, f in (("test_fraction", test_fraction), ("valid_fraction", valid_fraction)):
        if not 0 <= f < 1:
            raise ValueError(f"{name} must lie in [0, 1), got {f!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, int(round(test_fraction * n))), n - 2)
    rest = order[:n - n_test]
    n_valid = min(max(1, int(round(valid_fraction * len(rest)))), len(rest) - 1)
    return GraphSplit([graphs[i] for i in rest[:len(rest) - n_valid]],
                      [graphs[i] for i in rest[len(rest) - n_valid:]],
                      [graphs[i] for i in order[n - n_test:]], seed)


def gdss_split(graphs: list[nx.Graph], test_fraction: float = 0.2) -> GraphSplit:
    """GDSS's split (``utils/data_loader.py``): no shuffle, the first ``int(0.2 n)`` graphs
    are the test set and the rest the training set. GDSS has no validation set; here the
    training set doubles as one (it picks the epoch by the training objective)."""
    n = len(graphs)
    n_test = int(test_fraction * n)
    if n_test < 1 or n_test >= n:
        raise ValueError(f"GDSS's split needs at least 5 graphs, got {n}")
    train = graphs[n_test:]
    return GraphSplit(train, train, graphs[:n_test], 0)


@dataclass
class GraphSet:
    """Split graphs as networkx objects and as tensors (with input features)."""

    name: str
    train: list[nx.Graph]
    valid: list[nx.Graph]
    test: list[nx.Graph]
    node_attr: str | None = None
    edge_attr: str | None = None
    node_types: int = 0
    edge_types: int = 0
    train_smiles: set[str] = field(default_factory=set)
    info: dict[str, Any] = field(default_factory=dict)

    def tensors(self, graphs: list[nx.Graph]) -> list[tuple[GraphTensors, torch.Tensor]]:
        """Each graph's tensors and input features, on the CPU whatever the default device
        (a model counted on the meta device reads :attr:`in_channels`)."""
        out = []
        with torch.device("cpu"):
            for g in graphs:
                t = GraphTensors.from_networkx(g, self.node_attr, self.edge_attr)
                out.append((t, input_features(t, self.node_types)))
        return out

    @property
    def in_channels(self) -> int:
        return int(self.tensors(self.train[:1])[0][1].size(1))

    @property
    def largest(self) -> int:
        return max(g.number_of_nodes() for g in self.train + self.valid + self.test)

    def fingerprint(self) -> str:
        """SHA-256 of the set's name and type attributes and of the split graphs (each
        split's graphs in order: nodes and edges with their type attributes), recorded in
        a training state so that ``--resume`` never continues a state on other data."""
        h = hashlib.sha256(f"{self.name};{self.node_attr};{self.edge_attr}".encode())
        for part, graphs in (("train", self.train), ("valid", self.valid),
                             ("test", self.test)):
            h.update(f"|{part}:{len(graphs)}".encode())
            for g in graphs:
                nodes = [(repr(v), d.get(self.node_attr) if self.node_attr else None)
                         for v, d in g.nodes(data=True)]
                edges = [(repr(u), repr(v), d.get(self.edge_attr) if self.edge_attr else None)
                         for u, v, d in g.edges(data=True)]
                h.update(repr((nodes, edges)).encode())
        return h.hexdigest()


def input_features(t: GraphTensors, node_types: int) -> torch.Tensor:
    """Degree one-hot, plus the node-type one-hot for typed graphs."""
    x = degree_features(t.num_nodes, t.edge_index)
    if node_types and t.node_types is not None:
        x = torch.cat([x, torch.nn.functional.one_hot(t.node_types, node_types).float()], 1)
    return x
