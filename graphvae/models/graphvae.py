"""GraphVAE: a graph-level latent and an MLP decoder over a fixed node budget ``k``.

Simonovsky & Komodakis, *GraphVAE: Towards Generation of Small Graphs Using
Variational Autoencoders*, ICANN 2018 (https://arxiv.org/abs/1802.03480).

.. math::
    h = Σ_i \\mathrm{GNN}_φ(X, A)_i, \\quad [μ, \\log σ^2] = \\mathrm{MLP}_φ(h), \\quad
    q(z | G) = N(μ, \\mathrm{diag}\\, σ^2),\\quad
    [ν, l, \\ldots] = \\mathrm{MLP}_θ(z)

The decoder emits node-existence logits ``ν ∈ R^k``, edge logits for the upper
triangle (made symmetric), and optionally node-type ``(k, T)`` and edge-type
``(k, k, R)`` logits. Its output has a fixed node order, so the model is *not*
equivariant: its ELBO depends on how the input graph is labelled, and the
permutation bounds of :mod:`graphvae.bounds.permutation` are the correct
objectives. The encoder (sum pooling) is invariant.

Args:
    in_channels: node-feature dimension ``d``.
    max_nodes: ``k``; a graph with more nodes is a ``ValueError``.
    latent_channels: size of the graph latent (default 32).
    hidden_channels: encoder GNN widths (default ``(64, 64)``).
    decoder_hidden: decoder MLP widths (default ``(128, 256)``).
    node_types, edge_types: numbers of categories ``T``, ``R`` (0: not modelled).

Shapes:
    encoder: ``x (n, d)``, adjacency of ``n ≤ k`` nodes → posterior over ``(latent,)``;
    decoder: ``z (..., latent)`` → :class:`GraphLogits` with leading dims ``...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphvae.bounds import DiagGaussian, PermutationELBO
from graphvae.bounds.elbo import BoundEstimate
from graphvae.encoders.gnn import CONVS
from graphvae.graph import Adjacency
from graphvae.likelihoods.graphs import padded_graph_log_prob
from graphvae.models.autoencoders import ModelOutput
from graphvae.permutations import max_pool_matching, permute_dense


@dataclass
class PaddedGraph:
    """A graph padded to ``k`` nodes; every field may carry leading batch dims ``(K, ...)``."""

    mask: Tensor                       # (..., k) 1 for real nodes
    adj: Tensor                        # (..., k, k) symmetric 0/1, zero diagonal
    node_types: Tensor | None = None   # (..., k) long
    edge_types: Tensor | None = None   # (..., k, k) long

    def permute(self, perms: Tensor) -> PaddedGraph:
        """Stack of relabellings: row ``p`` of ``perms (K, k)`` gives ``adj[p][:, p]``."""
        return PaddedGraph(self.mask[perms], permute_dense(self.adj, perms),
                           None if self.node_types is None else self.node_types[perms],
                           None if self.edge_types is None
                           else permute_dense(self.edge_types, perms))


@dataclass
class GraphLogits:
    node: Tensor                       # (..., k)
    edge: Tensor                       # (..., k, k), symmetric
    node_type: Tensor | None = None    # (..., k, T)
    edge_type: Tensor | None = None    # (..., k, k, R)


def _mlp(dims: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class GraphVAE(nn.Module):
    """Graph-level VAE with a fixed-size MLP decoder (see the module docstring)."""

    def __init__(self, in_channels: int, max_nodes: int, latent_channels: int = 32,
                 hidden_channels: Sequence[int] = (64, 64),
                 decoder_hidden: Sequence[int] = (128, 256), conv: str = "gcn",
                 node_types: int = 0, edge_types: int = 0):
        super().__init__()
        if max_nodes < 2:
            raise ValueError(f"max_nodes must be at least 2, got {max_nodes}")
        dims = [in_channels, *hidden_channels]
        self.convs = nn.ModuleList(CONVS[conv](a, b) for a, b in zip(dims, dims[1:]))
        self.head = _mlp([dims[-1], dims[-1], 2 * latent_channels])
        k, pairs = max_nodes, max_nodes * (max_nodes - 1) // 2
        self.sizes = [k, pairs, k * node_types, pairs * edge_types]
        self.decoder = _mlp([latent_channels, *decoder_hidden, sum(self.sizes)])
        self.max_nodes, self.latent_channels = max_nodes, latent_channels
        self.node_types, self.edge_types = node_types, edge_types
        self.register_buffer("_iu", torch.triu_indices(k, k, offset=1), persistent=False)

    # ----------------------------------------------------------------- encoder
    def encode(self, x: Tensor, adj: Adjacency) -> DiagGaussian:
        self.check_size(adj.num_nodes)
        h = x
        for conv in self.convs:
            h = F.relu(conv(h, adj))                                     # (n, hidden)
        loc, logvar = self.head(h.sum(0)).split(self.latent_channels)    # (latent,) each
        return DiagGaussian(loc, logvar)

    def check_size(self, num_nodes: int) -> None:
        if num_nodes > self.max_nodes:
            raise ValueError(f"the graph has {num_nodes} nodes but this GraphVAE decodes at most "
                             f"max_nodes={self.max_nodes}")
        if num_nodes < 1:
            raise ValueError("the graph is empty: it has no nodes")

    # ----------------------------------------------------------------- decoder
    def decode(self, z: Tensor) -> GraphLogits:
        k = self.max_nodes
        node, edge, ntype, etype = self.decoder(z).split(self.sizes, dim=-1)
        lead = z.shape[:-1]
        return GraphLogits(node, self._symmetric(edge),
                           ntype.reshape(*lead, k, self.node_types) if self.node_types else None,
                           self._symmetric(etype.reshape(*lead, -1, self.edge_types)
                                           .movedim(-1, 0)).movedim(0, -1)
                           if self.edge_types else None)

    def _symmetric(self, upper: Tensor) -> Tensor:
        """``(..., k(k-1)/2)`` → symmetric ``(..., k, k)`` with zero diagonal."""
        k = self.max_nodes
        out = upper.new_zeros(*upper.shape[:-1], k, k)
        iu: Tensor = self._iu  # type: ignore[assignment]
        out[..., iu[0], iu[1]] = upper
        return out + out.transpose(-1, -2)

    def edge_probabilities(self, z: Tensor) -> Tensor:
        """``(k, k)`` edge probabilities with node-existence probabilities on the diagonal."""
        lg = self.decode(z)
        off = 1 - torch.eye(self.max_nodes, device=z.device)
        return torch.sigmoid(lg.edge) * off + torch.diag_embed(torch.sigmoid(lg.node))

    # ----------------------------------------------------------------- targets
    def pad(self, edge_index: Tensor, num_nodes: int, node_types: Tensor | None = None,
            edge_types: Tensor | None = None) -> PaddedGraph:
        """The padded target of a graph (``edge_types`` aligned with ``edge_index``)."""
        self.check_size(num_nodes)
        k, dev = self.max_nodes, edge_index.device
        mask = torch.zeros(k, device=dev)
        mask[:num_nodes] = 1
        adj = torch.zeros(k, k, device=dev)
        adj[edge_index[0], edge_index[1]] = 1
        adj.fill_diagonal_(0)
        nt = None if node_types is None else F.pad(node_types.long(), (0, k - num_nodes))
        et = None
        if edge_types is not None:
            et = torch.zeros(k, k, dtype=torch.long, device=dev)
            et[edge_index[0], edge_index[1]] = edge_types.long()
        return PaddedGraph(mask, adj, nt, et)

    def log_likelihood(self, logits: GraphLogits, target: PaddedGraph) -> Tensor:
        """``log p(P_k G | z_s)`` for ``S`` decoded samples and ``K`` targets → ``(S, K)``."""
        def s(t):  # (S, ...) -> (S, 1, ...)
            return None if t is None else t.unsqueeze(1)
        return padded_graph_log_prob(s(logits.node), s(logits.edge), target.mask, target.adj,
                                     s(logits.node_type), target.node_types,
                                     s(logits.edge_type), target.edge_types)

    # ----------------------------------------------------------------- bounds
    def bound(self, x: Tensor, adj: Adjacency, perms: Tensor | None = None,
              node_types: Tensor | None = None, edge_types: Tensor | None = None,
              mean: bool = False, num_samples: int = 1, eps: Tensor | None = None,
              generator: torch.Generator | None = None) -> BoundEstimate:
        """``log Σ_{P∈perms} exp ELBO(PG)``; ``perms=None`` is the plain ELBO of the graph
        in its given order. ``perms`` act on the ``k`` padded slots, shape ``(K, k)``;
        repeated rows are counted once (the bound needs a set), except with ``mean=True``,
        the log-mean-exp estimator, where draws with replacement are the point."""
        return self._bound(self.encode(x, adj), adj, perms, node_types, edge_types, mean,
                           num_samples, eps, generator)

    def _bound(self, q: DiagGaussian, adj: Adjacency, perms: Tensor | None,
               node_types: Tensor | None, edge_types: Tensor | None, mean: bool,
               num_samples: int, eps: Tensor | None, generator: torch.Generator | None
               ) -> BoundEstimate:
        target = self.pad(adj.edge_index, adj.num_nodes, node_types, edge_types)
        if perms is None:
            perms = torch.arange(self.max_nodes, device=q.loc.device)[None]
        elif not mean:
            perms = torch.unique(perms, dim=0)  # S must be a set: a repeat would count twice
        targets = target.permute(perms)
        return PermutationELBO(num_samples, mean)(
            q, lambda z: self.log_likelihood(self.decode(z), targets), eps, generator)

    @torch.no_grad()
    def matched_permutation(self, x: Tensor, adj: Adjacency) -> Tensor:
        """The relabelling of the padded input that max-pooling matching aligns with the
        decoded graph at ``z = μ`` (GraphVAE's training target), shape ``(k,)``."""
        target = self.pad(adj.edge_index, adj.num_nodes)
        pred = self.edge_probabilities(self.encode(x, adj).loc)
        a_t = target.adj + torch.diag(target.mask)
        return max_pool_matching(a_t, pred)

    def forward(self, x: Tensor, adj: Adjacency, perms: Tensor | None = None,
                mean: bool = False, eps: Tensor | None = None,
                generator: torch.Generator | None = None) -> ModelOutput:
        q = self.encode(x, adj)
        est = self._bound(q, adj, perms, None, None, mean, 1, eps, generator)
        return ModelOutput(est.surrogate, est.value, est.recon, est.kl, q.loc)
