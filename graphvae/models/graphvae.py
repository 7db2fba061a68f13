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
    objective: the training bound of :meth:`GraphVAE.forward`: ``"matched"`` (the ELBO
        of the relabelling that max-pooling matching aligns with the decoded graph, the
        paper's choice), ``"permutation"`` (``log Σ_{P∈S} exp ELBO(PG)`` over the
        canonical orderings and ``num_perms`` random relabellings) or ``"plain"`` (the
        ELBO of the graph as labelled).

Shapes:
    encoder: ``x (n, d)``, adjacency of ``n ≤ k`` nodes → posterior over ``(latent,)``;
    decoder: ``z (..., latent)`` → :class:`GraphLogits` with leading dims ``...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphvae.adjacency import Adjacency
from graphvae.bounds import DiagGaussian, PermutationELBO, StandardNormal
from graphvae.bounds.elbo import BoundEstimate
from graphvae.checks import MAX_WIDTH, check_count, check_width_list
from graphvae.containers import GraphBatch, GraphTensors, SampledGraph
from graphvae.devices import draw_device
from graphvae.encoders.gnn import CONVS, check_encoder_widths, encoder_inputs
from graphvae.graph import check_permutations, to_dense
from graphvae.likelihoods.graphs import padded_graph_log_prob
from graphvae.models.padded import GraphLogits, PaddedGraph
from graphvae.permutations import (
    canonical_orderings,
    max_pool_matching,
    random_permutations,
)
from graphvae.uniform import bernoulli

OBJECTIVES = ("matched", "permutation", "plain")


def _mlp(dims: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


#: The most decoder slots GraphVAE may have: its MLP decoder's output grows as n² (and
#: its graph matching's time as n³ an iteration, 75 iterations a graph: about 40 s
#: a graph at 1,024 slots); the model is for small graphs (Simonovsky & Komodakis: up to
#: 38 atoms). 1,024 slots are already a 537 MB output layer at the default width.
MAX_GRAPHVAE_SLOTS = 1024
#: The most random relabellings the permutation bound may sum over per graph and step:
#: each is a decoding of every graph, and they are drawn as one (R, n) table.
MAX_PERMS = 10_000


class GraphVAE(nn.Module):
    """Graph-level VAE with a fixed-size MLP decoder (see the module docstring)."""

    def __init__(self, in_channels: int, max_nodes: int, latent_channels: int = 32,
                 hidden_channels: Sequence[int] = (64, 64),
                 decoder_hidden: Sequence[int] = (128, 256), conv: str = "gcn",
                 node_types: int = 0, edge_types: int = 0, objective: str = "matched",
                 num_perms: int = 8):
        super().__init__()
        if not 2 <= max_nodes <= MAX_GRAPHVAE_SLOTS:
            raise ValueError(f"max_nodes must be from 2 to {MAX_GRAPHVAE_SLOTS:,} (the decoder "
                             f"grows as its square), got {max_nodes}")
        if conv not in CONVS:
            raise ValueError(f"unknown conv {conv!r}; choose one of {sorted(CONVS)}")
        check_encoder_widths(in_channels, hidden_channels, latent_channels)
        check_width_list("decoder_hidden", decoder_hidden, allow_empty=True)
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        check_count("num_perms", num_perms, maximum=MAX_PERMS)
        check_count("node_types", node_types, minimum=0, maximum=MAX_WIDTH)
        check_count("edge_types", edge_types, minimum=0, maximum=MAX_WIDTH)
        self.in_channels = in_channels
        self._init = {"in_channels": in_channels, "max_nodes": max_nodes,
                      "latent_channels": latent_channels, "hidden_channels": list(hidden_channels),
                      "decoder_hidden": list(decoder_hidden), "conv": conv,
                      "node_types": node_types, "edge_types": edge_types,
                      "objective": objective, "num_perms": num_perms}
        self.objective, self.num_perms = objective, num_perms
        dims = [in_channels, *hidden_channels]
        self.convs = nn.ModuleList(CONVS[conv](a, b) for a, b in zip(dims, dims[1:]))
        self.head = _mlp([dims[-1], dims[-1], 2 * latent_channels])
        k, pairs = max_nodes, max_nodes * (max_nodes - 1) // 2
        self.sizes = [k, pairs, k * node_types, pairs * edge_types]
        self.decoder = _mlp([latent_channels, *decoder_hidden, sum(self.sizes)])
        self.max_nodes, self.latent_channels = max_nodes, latent_channels
        self.node_types, self.edge_types = node_types, edge_types
        self.register_buffer("_iu", torch.triu_indices(k, k, offset=1), persistent=False)
        self.prior = StandardNormal()

    # ----------------------------------------------------------------- encoder
    def encode(self, x: Tensor, adj: Adjacency) -> DiagGaussian:
        x, adj = encoder_inputs(x, adj, self.in_channels, next(self.parameters()).dtype)
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

    def edge_probabilities(self, z: Tensor, lg: GraphLogits | None = None) -> Tensor:
        """``(k, k)`` edge probabilities with node-existence probabilities on the diagonal
        (from ``lg``, ``z``'s decoding, when given)."""
        lg = self.decode(z) if lg is None else lg
        off = 1 - torch.eye(self.max_nodes, device=z.device)
        return torch.sigmoid(lg.edge) * off + torch.diag_embed(torch.sigmoid(lg.node))

    # ----------------------------------------------------------------- targets
    def pad(self, edge_index: Tensor, num_nodes: int, node_types: Tensor | None = None,
            edge_types: Tensor | None = None) -> PaddedGraph:
        """The padded target of a graph (``edge_types`` aligned with ``edge_index``). An
        edge listed in one direction only is the undirected edge (the likelihood reads one
        triangle: such a graph was scored as if it had no edges). A typed model refuses a
        graph without its types, or with types outside its ranges (they were left out of
        the likelihood, or failed inside an index)."""
        mask, adj = self._padded_adjacency(edge_index, num_nodes)       # checks the size
        for name, count, types in (("node_types", self.node_types, node_types),
                                   ("edge_types", self.edge_types, edge_types)):
            if count and types is None:
                raise ValueError(f"this GraphVAE models {count} {name.replace('_', ' ')}: "
                                 f"give the graph's {name}")
            if count and types is not None and types.numel() and not (
                    0 <= int(types.min()) and int(types.max()) < count):
                raise ValueError(f"{name} must lie in 0..{count - 1} for this GraphVAE, got "
                                 f"{int(types.min())}..{int(types.max())}")
        k, dev = self.max_nodes, edge_index.device
        nt = None if node_types is None else F.pad(node_types.to(dev).long(),
                                                   (0, k - num_nodes))
        et = None
        if edge_types is not None:        # (a batch keeps its types on the CPU)
            et = torch.zeros(k, k, dtype=torch.long, device=dev)
            et[edge_index[1], edge_index[0]] = edge_types.to(dev).long()
            et[edge_index[0], edge_index[1]] = edge_types.to(dev).long()
        return PaddedGraph(mask, adj, nt, et)

    def _padded_adjacency(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
        """``(mask (k,), adj (k, k))`` of a graph padded to the slots: the structure alone,
        which the graph matching aligns (an edge in either direction is the edge)."""
        self.check_size(num_nodes)
        k, dev = self.max_nodes, edge_index.device
        mask = torch.zeros(k, device=dev)
        mask[:num_nodes] = 1
        adj = torch.zeros(k, k, device=dev)
        adj[edge_index[0], edge_index[1]] = 1
        adj[edge_index[1], edge_index[0]] = 1
        adj.fill_diagonal_(0)
        return mask, adj

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
        """``log Σ_{G'} exp ELBO(G')`` over the distinct padded graphs ``G' = PG``,
        ``P ∈ perms``; ``perms=None`` is the plain ELBO of the graph in its given order.
        ``perms`` act on the ``k`` padded slots, shape ``(K, k)``. Relabellings that give
        the same padded graph (a repeated row, an automorphism of the graph, a shuffle of
        the padding) are counted once, so the value is a lower bound on the log-probability
        of the unlabelled graph; except with ``mean=True``, the log-mean-exp estimator,
        where draws with replacement are the point."""
        return self._bound(self.encode(x, adj), adj, perms, node_types, edge_types, mean,
                           num_samples, eps, generator)

    def _bound(self, q: DiagGaussian, adj: Adjacency, perms: Tensor | None,
               node_types: Tensor | None, edge_types: Tensor | None, mean: bool,
               num_samples: int, eps: Tensor | None, generator: torch.Generator | None
               ) -> BoundEstimate:
        target = self.pad(adj.edge_index, adj.num_nodes, node_types, edge_types)
        if perms is None:
            perms = torch.arange(self.max_nodes, device=q.loc.device)[None]
        check_permutations(perms, self.max_nodes, "perms", dim=2)
        targets = target.permute(perms)
        if not mean:  # a sum over distinct labelled graphs: a repeat would count twice
            targets = targets.select(targets.distinct())
        return PermutationELBO(num_samples, mean, prior=self.prior)(
            q, lambda z: self.log_likelihood(self.decode(z), targets), eps, generator)

    @torch.no_grad()
    def matched_permutation(self, x: Tensor, adj: Adjacency) -> Tensor:
        """The relabelling of the padded input that max-pooling matching aligns with the
        decoded graph at ``z = μ`` (GraphVAE's training target), shape ``(k,)``."""
        mask, target = self._padded_adjacency(adj.edge_index, adj.num_nodes)
        pred = self.edge_probabilities(self.encode(x, adj).loc)
        a_t = target + torch.diag(mask)
        return max_pool_matching(a_t, pred).to(x.device)

    # ----------------------------------------------------------------- the model protocol
    kind = "graphvae"
    node_latents = False

    def init_kwargs(self) -> dict[str, Any]:
        """Constructor arguments (JSON types) that rebuild this model for its state dict."""
        return dict(self._init)

    def training_permutations(self, x: Tensor, adj: Adjacency,
                              generator: torch.Generator | None = None) -> Tensor | None:
        """The relabellings of the padded slots that :attr:`objective` sums over, ``(K, k)``
        (``None`` for the plain ELBO)."""
        if self.objective == "plain":
            return None
        if self.objective == "matched":
            return self.matched_permutation(x, adj)[None]
        k, n = self.max_nodes, adj.num_nodes
        if n == 0:      # the empty graph (a sample can be): one labelling, the slots' own
            return torch.arange(k, device=x.device)[None]
        canon = canonical_orderings(adj.edge_index.cpu(), n)                     # (C, n)
        rand = random_permutations(n, self.num_perms, generator)                 # (R, n)
        inner = torch.cat([canon, rand]).to(x.device)
        pad = torch.arange(n, k, device=x.device).expand(inner.size(0), k - n)
        return torch.cat([inner, pad], 1)

    def forward(self, batch: GraphBatch, generator: torch.Generator | None = None
                ) -> BoundEstimate:
        """The training bound (:attr:`objective`) of each graph of ``batch``: ``value``
        ``(B,)`` in nats, ``surrogate`` the mean loss over the graphs."""
        ests = []
        for g, x in zip(batch.graphs, batch.features):
            adj = Adjacency(g.edge_index.to(x.device), g.num_nodes)
            perms = self.training_permutations(x, adj, generator)
            ests.append(self.bound(x, adj, perms, g.node_types, g.edge_types,
                                   generator=generator))
        def stack(name: str) -> Tensor:
            return torch.stack([getattr(e, name).reshape(()) for e in ests])
        return BoundEstimate(stack("value"), stack("surrogate").mean(), stack("recon"),
                             stack("kl"))

    @torch.no_grad()
    def sample(self, num_graphs: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> list[SampledGraph]:
        """Draw ``z ~ p(z)``, keep slot ``i`` with probability ``σ(ν_i)`` and each pair of kept
        slots with its edge probability; with types, each kept slot's node type and each
        drawn edge's type from their softmaxes (the terms :meth:`log_likelihood` scores)."""
        check_count("num_graphs", num_graphs, minimum=0)
        out = []
        where = draw_device(generator, torch.device("cpu"))
        for _ in range(num_graphs):
            z = self.prior.sample((self.latent_channels,), generator, device=device)
            lg = self.decode(z)
            probs = self.edge_probabilities(z, lg).cpu()
            k = probs.size(0)
            keep = bernoulli(torch.diagonal(probs), generator, where)
            u = torch.triu(bernoulli(probs, generator, where), diagonal=1)
            adj = (u | u.T)[keep][:, keep].float()
            g = SampledGraph(adj, (probs * (1 - torch.eye(k)))[keep][:, keep])
            g.draw_types(None if lg.node_type is None else lg.node_type.cpu()[keep],
                         None if lg.edge_type is None
                         else lg.edge_type.cpu()[keep][:, keep], generator, where)
            out.append(g)
        return out

    # ----------------------------------------------------------------- invariance protocol
    def invariance_batch(self, x: Tensor, edge_index: Tensor, node_types: Tensor | None = None,
                         edge_types: Tensor | None = None) -> GraphBatch:
        g = GraphTensors(x.size(0), edge_index.cpu(), node_types, edge_types)
        return GraphBatch.collate([g], [to_dense(x)], x.device)

    def _single(self, batch: GraphBatch) -> tuple[Tensor, Adjacency, GraphTensors]:
        g, x = batch.graphs[0], batch.features[0]
        return x, Adjacency(g.edge_index.to(x.device), g.num_nodes), g

    def graph_posterior(self, batch: GraphBatch) -> DiagGaussian:
        """The graph latent of a one-graph batch, ``(d,)``: it should not move at all."""
        x, adj, _ = self._single(batch)
        return self.encode(x, adj)

    def decoder_outputs(self, z: Tensor, batch: GraphBatch) -> list[tuple[str, Tensor, str]]:
        """``log p(G | z)`` of the padded graph as labelled (``graph``): the slot-ordered
        decoder makes it depend on the labelling, which is what the permutation bounds
        are for."""
        _, adj, g = self._single(batch)
        target = self.pad(adj.edge_index, adj.num_nodes, g.node_types, g.edge_types)
        ident = torch.arange(self.max_nodes, device=z.device)[None]
        return [("log p(G | z)", self.log_likelihood(self.decode(z[None]),
                                                     target.permute(ident))[0], "graph")]

    def exact_bound(self, batch: GraphBatch, eps: Tensor) -> Tensor:
        """The plain ELBO of the graph as labelled, noise fixed (``eps (1, d)``)."""
        x, adj, g = self._single(batch)
        return self.bound(x, adj, None, g.node_types, g.edge_types, eps=eps).value
