"""Graph containers that the models, tasks and tests pass around.

* :class:`GraphTensors`: one small graph as tensors (nodes, both edge directions, types).
* :class:`GraphBatch`: small graphs as one disjoint union (for the GNNs) and as padded
  dense tensors (for edge likelihoods); it keeps its graphs for per-graph models.
* :class:`SampledGraph`: one graph a generator drew, with the decoder's probabilities
  (molecule decoding reads them).
* :class:`EdgeStats`, :class:`PairSample` and :class:`LinkBatch`: a link-prediction
  training batch with the full graph's counts, so that a batch's bound estimates the
  whole graph's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import networkx as nx
import torch
import torch.nn.functional as F
from torch import Tensor

from graphvae.adjacency import Adjacency
from graphvae.graph import check_edge_index

MAX_DEGREE_FEATURE = 16


@dataclass
class GraphTensors:
    """One graph: ``n`` nodes, ``edge_index`` (both directions), optional types."""

    num_nodes: int
    edge_index: Tensor
    node_types: Tensor | None = None   # (n,) long
    edge_types: Tensor | None = None   # (E,) long, aligned with edge_index

    def __post_init__(self) -> None:
        """A one-line ``ValueError`` for an edge index of another shape or dtype, naming a
        node outside ``0..n-1`` (batched, such an edge joined two graphs, or wrapped into
        the one before) or an edge in one direction only (the models read one triangle of
        the adjacency: such a graph was scored as another), and for types of the wrong
        length or dtype (an error deep inside a model, or silently truncated floats)."""
        check_edge_index(self.edge_index, self.num_nodes)
        heads, tails = self.edge_index.tolist()
        listed = set(zip(heads, tails))
        one_way = next(((a, b) for a, b in listed if (b, a) not in listed), None)
        if one_way is not None:
            raise ValueError(f"GraphTensors holds undirected graphs, each edge in both "
                             f"directions: ({one_way[0]}, {one_way[1]}) is listed without "
                             f"({one_way[1]}, {one_way[0]}) (torch_geometric.utils."
                             f"to_undirected adds them)")
        for name, types, size in (("node_types", self.node_types, self.num_nodes),
                                  ("edge_types", self.edge_types, self.edge_index.size(1))):
            if types is None:
                continue
            if not isinstance(types, Tensor) or types.dtype != torch.long \
                    or tuple(types.shape) != (size,):
                got = (f"{types.dtype} of shape {tuple(types.shape)}"
                       if isinstance(types, Tensor) else type(types).__name__)
                raise ValueError(f"{name} must be a torch.long tensor of shape ({size},), got "
                                 f"{got}")
            if types.numel() and int(types.min()) < 0:
                raise ValueError(f"{name} holds a negative type ({int(types.min())})")

    @classmethod
    def from_networkx(cls, g: nx.Graph, node_attr: str | None = None,
                      edge_attr: str | None = None) -> GraphTensors:
        """An undirected simple networkx graph (self-loops dropped); a directed graph or a
        multigraph is a one-line ``ValueError`` (a DiGraph's two directions of an edge
        became two edges)."""
        if g.is_directed() or g.is_multigraph():
            raise ValueError(f"GraphTensors holds undirected simple graphs, got a "
                             f"{type(g).__name__} (convert it with nx.Graph(g))")
        n = g.number_of_nodes()
        if sorted(g.nodes) != list(range(n)):
            g = nx.convert_node_labels_to_integers(g)
        pairs = [(a, b) for a, b in g.edges if a != b]
        ei = torch.tensor(pairs + [(b, a) for a, b in pairs], dtype=torch.long).reshape(-1, 2).t()
        nt = et = None
        if node_attr is not None:
            nt = torch.tensor([g.nodes[i][node_attr] for i in range(n)], dtype=torch.long)
        if edge_attr is not None:
            vals = [g.edges[a, b][edge_attr] for a, b in pairs]
            et = torch.tensor(vals + vals, dtype=torch.long)
        return cls(n, ei.contiguous(), nt, et)


def degree_features(num_nodes: int, edge_index: Tensor,
                    max_degree: int = MAX_DEGREE_FEATURE) -> Tensor:
    """One-hot node degree, capped at ``max_degree`` (an equivariant input feature)."""
    deg = torch.zeros(num_nodes, dtype=torch.long)
    if edge_index.numel():
        deg.index_add_(0, edge_index[0].cpu(), torch.ones(edge_index.size(1), dtype=torch.long))
    return F.one_hot(deg.clamp(max=max_degree), max_degree + 1).float()


@dataclass
class GraphBatch:
    """Graphs as one disjoint union (for the GNNs) and as padded dense tensors (for edges).

    ``x (N, F)``, ``adj`` the union :class:`Adjacency`, ``slot (N,)`` each node's
    flat position ``b·k + i`` in the padded ``(B, k)`` layout, ``mask (B, k)``,
    ``dense (B, k, k)`` 0/1, ``node_types (N,)`` and ``edge_types (B, k, k)`` (0 where
    there is no edge) where every graph has them (else ``None``), ``sizes (B,)``;
    ``graphs`` and ``features`` are the graphs themselves (on the CPU) and their input
    features (on the batch's device).
    """

    x: Tensor
    adj: Adjacency
    slot: Tensor
    mask: Tensor
    dense: Tensor
    sizes: Tensor
    node_types: Tensor | None = None
    edge_types: Tensor | None = None
    graphs: tuple[GraphTensors, ...] = ()
    features: tuple[Tensor, ...] = ()

    @property
    def num_graphs(self) -> int:
        return int(self.mask.size(0))

    @property
    def k(self) -> int:
        return int(self.mask.size(1))

    @classmethod
    def collate(cls, graphs: Sequence[GraphTensors], features: Sequence[Tensor],
                device: torch.device | str = "cpu") -> GraphBatch:
        b = len(graphs)
        if b == 0:
            raise ValueError("an empty batch of graphs")
        if len(features) != b:
            raise ValueError(f"{b} graphs but {len(features)} feature tables")
        for i, (g, f) in enumerate(zip(graphs, features)):
            if f.dim() != 2 or f.size(0) != g.num_nodes:
                raise ValueError(f"graph {i} has {g.num_nodes} nodes but its features have "
                                 f"shape {tuple(f.shape)} (one row a node)")
        k = max(g.num_nodes for g in graphs)
        offs, slots, eis = 0, [], []
        dense = torch.zeros(b, k, k)
        # types only where every graph has them: a graph without would read as all 0
        # ("no edge") on its edges
        typed = all(g.edge_types is not None for g in graphs)
        etypes = torch.zeros(b, k, k, dtype=torch.long) if typed else None
        for i, g in enumerate(graphs):
            eis.append(g.edge_index + offs)
            slots.append(torch.arange(g.num_nodes) + i * k)
            dense[i, g.edge_index[0], g.edge_index[1]] = 1.0
            if etypes is not None and g.edge_types is not None:       # every graph's
                etypes[i, g.edge_index[0], g.edge_index[1]] = g.edge_types
            offs += g.num_nodes
        sizes = torch.tensor([g.num_nodes for g in graphs])
        mask = torch.arange(k)[None, :] < sizes[:, None]
        nts = [g.node_types for g in graphs]
        node_types = torch.cat(nts) if all(t is not None for t in nts) else None  # type: ignore
        ei = torch.cat(eis, 1).to(device)
        feats = tuple(f.to(device) for f in features)
        return cls(torch.cat(feats), Adjacency(ei, offs), torch.cat(slots).to(device),
                   mask.to(device), dense.to(device), sizes.to(device),
                   None if node_types is None else node_types.to(device),
                   None if etypes is None else etypes.to(device), tuple(graphs), feats)


def _categorical(probs: Tensor, generator: torch.Generator | None,
                 where: torch.device) -> Tensor:
    """One draw from each row of ``probs (m, C)`` (``(0,)`` for no rows), made on
    ``where``."""
    if probs.size(0) == 0:
        return torch.zeros(0, dtype=torch.long, device=where)
    return torch.multinomial(probs.to(where), 1, generator=generator).squeeze(-1)


@dataclass
class SampledGraph:
    """A drawn graph: ``adj (n, n)`` 0/1, the edge probabilities it was drawn from and, for
    molecules, ``node_types (n,)``, ``node_logits (n, T)``, ``bond_prob (n, n, R)`` and
    ``bond_types (n, n)`` (the bond's type index + 1 on drawn edges, 0 elsewhere)."""

    adj: Tensor
    edge_prob: Tensor | None = None
    node_types: Tensor | None = None
    node_logits: Tensor | None = None
    bond_prob: Tensor | None = None
    bond_types: Tensor | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.adj.size(0))

    def draw_types(self, node_logits: Tensor | None, bond_logits: Tensor | None,
                   generator: torch.Generator | None, where: torch.device) -> None:
        """Draw the node types (``node_logits (n, T)``) and then the drawn edges' types
        (``bond_logits (n, n, R)``, symmetric) from their softmaxes, on ``where`` (the
        generator's device), and keep them with their logits and probabilities on the
        graph's device; ``None`` draws none of that kind."""
        n, device = self.num_nodes, self.adj.device
        if node_logits is not None:
            self.node_logits = node_logits
            self.node_types = _categorical(F.softmax(node_logits, -1), generator,
                                           where).to(device)
        if bond_logits is not None:
            self.bond_prob = F.softmax(bond_logits, -1)
            flat = _categorical(self.bond_prob.reshape(n * n, bond_logits.size(-1)), generator,
                                where).reshape(n, n).to(device)
            sym = torch.triu(flat + 1, diagonal=1)
            self.bond_types = (sym + sym.T) * self.adj.long()   # codes 1..R, 0 = no edge

    def cpu(self) -> SampledGraph:
        def cpu(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.cpu()
        return SampledGraph(self.adj.cpu(), cpu(self.edge_prob), cpu(self.node_types),
                            cpu(self.node_logits), cpu(self.bond_prob), cpu(self.bond_types))

    def to_networkx(self) -> nx.Graph:
        """Nodes 0..n-1; ``atom`` (type index) and ``bond`` (``BOND_TYPES`` index)
        attributes when typed."""
        n = self.num_nodes
        g = nx.Graph()
        g.add_nodes_from(range(n))
        if self.node_types is not None:
            for i, t in enumerate(self.node_types.tolist()):
                g.nodes[i]["atom"] = t
        for a, b in torch.triu(self.adj, diagonal=1).nonzero().tolist():
            if self.bond_types is not None:
                g.add_edge(a, b, bond=int(self.bond_types[a, b]) - 1)
            else:
                g.add_edge(a, b)
        return g


@dataclass(frozen=True)
class EdgeStats:
    """Counts of the whole graph that weight and scale a link-prediction bound.

    ``num_nodes`` n, ``num_pairs`` (``n²``, or ``n(n−1)`` without the diagonal),
    ``num_pos`` positive pairs, and Kipf & Welling's ``pos_weight = N⁻/N⁺`` and
    ``norm = num_pairs / (2 N⁻)`` (1 and 1 when not re-weighting or when every pair is an
    edge).
    """

    num_nodes: int
    num_pairs: int
    num_pos: int
    pos_weight: float = 1.0
    norm: float = 1.0

    @property
    def num_neg(self) -> int:
        return self.num_pairs - self.num_pos


@dataclass
class PairSample:
    """The pairs one mini-batch step decodes: ``pos`` drawn uniformly with replacement
    from the target's positive pairs, ``neg`` uniformly with replacement from its
    non-edges, and the factors that scale their sums to the whole graph's:
    ``pos_scale = N⁺ / b`` and ``neg_scale = N⁻ / m`` for the *global* batch of ``b``
    positives and ``m`` non-edges (a process of a data-parallel run holds a shard of it).
    ``share`` is the part of the graph-level terms (the KL, the feature likelihood) that
    this shard carries: ``1 / world_size``, so the shards' values sum to one estimate."""

    pos: Tensor
    neg: Tensor
    pos_scale: float
    neg_scale: float
    share: float = 1.0


@dataclass
class LinkBatch:
    """One training batch of a graph autoencoder: input features ``x``, the graph the
    encoder sees (``adj``), the graph whose edges are scored (``target``), and the whole
    graph's :class:`EdgeStats`; ``pairs`` (a :class:`PairSample`) for a mini-batch step,
    ``None`` to score every positive pair."""

    x: Tensor
    adj: Adjacency
    target: Adjacency
    stats: EdgeStats
    pairs: PairSample | None = None


class PairRows(NamedTuple):
    """All-pairs outputs ``(..., n, n)`` given by blocks of rows, for graphs whose ``n²``
    entries do not fit at once: ``rows(r)`` is ``full[..., r, :]`` for an index tensor ``r``."""

    rows: Callable[[Tensor], Tensor]
    num_nodes: int
