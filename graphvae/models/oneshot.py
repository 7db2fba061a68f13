"""An equivariant one-shot graph VAE for sets of small graphs, built from the package's parts.

For a graph with ``n`` nodes, adjacency ``A`` and optional node / edge types:

* ``n ~ p(n)``: the empirical distribution of training-set sizes (``size_counts``);
* node latents ``Z = (z_1..z_n)`` from the prior: ``N(0, I)`` per node by default, or
  a prior over the set (a mixture given a graph-level latent, ``components``; the
  training graphs' posteriors, ``exemplars``), encoded by a :class:`GNNEncoder` into
  ``q(z_i | G) = N(μ_i, σ_i²)``;
* ``A_ij ~ Bern(σ(h_iᵀ h_j + b))`` for ``i < j`` with ``h = MLP(z)``
  (:class:`MLPInnerProductDecoder` plus a learned bias ``b``);
* node types ``t_i ~ Cat(GNN(z, A))`` (:class:`GNNFeatureDecoder`) and bond types
  ``τ_ij ~ Cat(MLP([h_i ⊙ h_j, h_i + h_j]))`` on present edges (molecules only).

Every part is permutation-equivariant, so the ELBO of a graph does not depend on
its node order (``tests/test_generation.py`` checks it), and no matching or
permutation sampling is needed. The bound is on ``log p(n, A, t, τ)`` of the
*labelled* graph: ``log p(n) + E_q[log p(A, t, τ | Z)] − KL(q ‖ p)``.
Batches are padded to the largest graph; padded slots have ``μ = 0, log σ² = 0``
(KL exactly 0) and are masked out of every likelihood term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphvae.adjacency import Adjacency
from graphvae.bounds import ELBO, BoundEstimate, DiagGaussian, Prior, StandardNormal
from graphvae.bounds.priors import ExemplarPrior, SetMixturePrior
from graphvae.checks import MAX_WIDTH, check_count, check_width_list, check_widths, is_real
from graphvae.containers import GraphBatch, GraphTensors, SampledGraph
from graphvae.datasets.graphgen import MAX_NODES as MAX_SIZE
from graphvae.decoders import GNNFeatureDecoder, MLPInnerProductDecoder
from graphvae.devices import draw_device
from graphvae.encoders.gnn import GNNEncoder, check_encoder_widths
from graphvae.graph import to_dense
from graphvae.likelihoods import LogLik
from graphvae.uniform import bernoulli


class EquivariantGraphVAE(nn.Module):
    """One-shot graph VAE with per-node latents (see the module docstring).

    Args:
        in_channels: input node-feature width.
        size_counts: how many training graphs have ``n`` nodes, indexed by ``n`` (may be
            fractional: pseudo-counts).
        latent_channels, hidden_channels, conv: the GNN encoder.
        decoder_hidden, embed_channels: the MLP inner-product edge decoder.
        node_types, edge_types: numbers of node / edge classes (0: untyped).
        components, graph_latent: a :class:`~graphvae.bounds.priors.SetMixturePrior` of
            ``components`` mixture components given a graph latent ``u`` of that width
            (0 components: the standard normal prior).
        logvar_offset: added to the encoder's log-variances (a fixed posterior-width
            shift; 0: none).
        exemplars: the number of training graphs held by an
            :class:`~graphvae.bounds.priors.ExemplarPrior` (0: none; fitted after
            training by :meth:`fit_exemplar_prior`); not with ``components``.
    """

    size_logprob: Tensor

    def __init__(self, in_channels: int, size_counts: Sequence[float], latent_channels: int = 16,
                 hidden_channels: Sequence[int] = (64, 64), conv: str = "gin",
                 decoder_hidden: Sequence[int] = (64,), embed_channels: int = 32,
                 node_types: int = 0, edge_types: int = 0, components: int = 0,
                 graph_latent: int = 8, logvar_offset: float = 0.0, exemplars: int = 0):
        super().__init__()
        # each setting named as the caller wrote it (a float count failed inside torch, a
        # width of 0 was named as an inner layer's "out_channels")
        check_encoder_widths(in_channels, hidden_channels, latent_channels)
        check_width_list("decoder_hidden", decoder_hidden, allow_empty=not edge_types)
        check_widths("embed_channels", embed_channels)
        # type counts and components are widths of a layer; the exemplars' count is
        # checked with the buffers it sizes (ExemplarPrior)
        for name, count, least in (("node_types", node_types, 0), ("edge_types", edge_types, 0),
                                   ("components", components, 0),
                                   ("graph_latent", graph_latent, 1)):
            check_count(name, count, minimum=least, maximum=MAX_WIDTH)
        check_count("exemplars", exemplars, minimum=0)
        if not is_real(logvar_offset) or not math.isfinite(logvar_offset):
            raise ValueError(f"logvar_offset must be a finite number, got {logvar_offset!r}")
        if exemplars and components:
            raise ValueError("exemplars and mixture components exclude each other: give one")
        self._init = {"in_channels": in_channels, "size_counts": [float(c) for c in size_counts],
                      "latent_channels": latent_channels, "hidden_channels": list(hidden_channels),
                      "conv": conv, "decoder_hidden": list(decoder_hidden),
                      "embed_channels": embed_channels, "node_types": node_types,
                      "edge_types": edge_types}
        if components or logvar_offset:
            self._init.update(components=components, graph_latent=graph_latent,
                              logvar_offset=float(logvar_offset))
        if exemplars:
            self._init["exemplars"] = exemplars
        self.logvar_offset = float(logvar_offset)
        counts = torch.as_tensor(list(size_counts), dtype=torch.float, device="cpu")
        if counts.dim() != 1 or counts.numel() < 2 or float(counts[1:].sum()) <= 0:
            raise ValueError("size_counts must count at least one graph with >= 1 node")
        if not bool((torch.isfinite(counts) & (counts >= 0)).all()):
            raise ValueError("size_counts must be finite counts >= 0 (they are p(n) up to a "
                             "factor: a negative one made another size's probability pass 1)")
        if counts.numel() - 1 > MAX_SIZE:
            raise ValueError(f"size_counts runs to graphs of {counts.numel() - 1:,} nodes; the "
                             f"model takes at most {MAX_SIZE:,}")
        counts[0] = 0.0
        self.register_buffer("size_logprob", torch.log(counts / counts.sum()))
        self.encoder = GNNEncoder(in_channels, hidden_channels, latent_channels, conv=conv)
        self.edges = MLPInnerProductDecoder(latent_channels, decoder_hidden, embed_channels)
        self.edge_bias = nn.Parameter(torch.zeros(()))
        self.node_types, self.edge_types = node_types, edge_types
        self.latent_channels = latent_channels
        self.prior: Prior = (SetMixturePrior(latent_channels, components, graph_latent)
                             if components else StandardNormal())
        if exemplars:
            self.prior = ExemplarPrior(latent_channels, exemplars, len(size_counts) - 1)
        self.node_decoder = (GNNFeatureDecoder(latent_channels, node_types, tuple(hidden_channels),
                                               conv="gcn", likelihood="categorical")
                             if node_types else None)
        self.bond_decoder = (nn.Sequential(nn.Linear(2 * embed_channels, decoder_hidden[0]),
                                           nn.ReLU(), nn.Linear(decoder_hidden[0], edge_types))
                             if edge_types else None)

    kind = "oneshot-vae"
    node_latents = True
    kl_weight = 1.0   # the surrogate's KL weight (KL warm-up sets it; the bound never uses it)

    @property
    def max_nodes(self) -> int:
        return int(self.size_logprob.numel() - 1)

    def init_kwargs(self) -> dict[str, Any]:
        """Constructor arguments (JSON types) that rebuild this model for its state dict."""
        return dict(self._init)

    def forward(self, batch: GraphBatch, generator: torch.Generator | None = None,
                eps: Tensor | None = None) -> BoundEstimate:
        """The model protocol: :meth:`bound` of each graph of ``batch`` (one draw of Z)."""
        return self.bound(batch, generator=generator, eps=eps)

    # ------------------------------------------------------------------ pieces
    def posterior(self, batch: GraphBatch) -> DiagGaussian:
        """``q(Z | G)`` in the padded ``(B, k, d)`` layout (padding: μ = 0, log σ² = 0)."""
        q = self.encoder(batch.x, batch.adj)
        assert isinstance(q, DiagGaussian)
        if self.logvar_offset:
            q = DiagGaussian(q.loc, q.logvar + self.logvar_offset)
        shape = (batch.num_graphs * batch.k, self.latent_channels)
        loc = q.loc.new_zeros(shape).index_copy(0, batch.slot, q.loc)
        logvar = q.logvar.new_zeros(shape).index_copy(0, batch.slot, q.logvar)
        lead = (batch.num_graphs, batch.k, self.latent_channels)
        return DiagGaussian(loc.reshape(lead), logvar.reshape(lead))

    def edge_logits(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(..., k, d)`` → edge logits ``(..., k, k)`` and the embeddings ``h``."""
        h = self.edges.embed(z)
        return h @ h.transpose(-1, -2) + self.edge_bias, h

    def bond_logits(self, h: Tensor) -> Tensor:
        """``(..., k, e)`` → symmetric bond-type logits ``(..., k, k, R)``."""
        assert self.bond_decoder is not None
        hi, hj = h.unsqueeze(-2), h.unsqueeze(-3)
        pair = torch.cat(torch.broadcast_tensors(hi * hj, hi + hj), -1)
        return self.bond_decoder(pair)

    def log_likelihood(self, z: Tensor, batch: GraphBatch) -> Tensor:
        """``log p(A, t, τ | Z)`` per graph for ``z (S, B, k, d)`` → ``(S, B)``."""
        logits, h = self.edge_logits(z)
        k = batch.k
        upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=z.device), diagonal=1)
        pair = batch.mask[:, :, None] & batch.mask[:, None, :] & upper       # (B, k, k)
        bern = -F.binary_cross_entropy_with_logits(
            logits, batch.dense.to(logits.dtype).expand_as(logits), reduction="none")
        lp = (bern * pair).sum((-2, -1))
        if self.bond_decoder is not None and batch.edge_types is not None:
            cat = F.log_softmax(self.bond_logits(h), -1)
            et = batch.edge_types.expand(cat.shape[:-1])
            bond = cat.gather(-1, et.unsqueeze(-1)).squeeze(-1)
            lp = lp + (bond * (pair & (batch.dense > 0))).sum((-2, -1))
        if self.node_decoder is not None and batch.node_types is not None:
            flat = z.reshape(z.size(0), -1, z.size(-1))[:, batch.slot]       # (S, N, d)
            types = batch.node_types.expand(flat.shape[:-1])
            nt = self.node_decoder.log_prob(types, flat, batch.adj)              # (S, N)
            graph_of = torch.div(batch.slot, k, rounding_mode="floor")
            lp = lp + nt.new_zeros(z.size(0), batch.num_graphs).index_add(1, graph_of, nt)
        return lp

    def bound(self, batch: GraphBatch, num_samples: int = 1,
              generator: torch.Generator | None = None, eps: Tensor | None = None,
              u_noise: Tensor | None = None) -> BoundEstimate:
        """ELBO of each graph (``(B,)``, nats) including ``log p(n)``; surrogate = mean loss
        (the KL part weighted by ``kl_weight``).

        With the standard normal prior the KL is in closed form. A prior over the set of
        node latents (``set_prior``: :class:`~graphvae.bounds.priors.SetMixturePrior`,
        :class:`~graphvae.bounds.priors.ExemplarPrior`) has none: then the KL is
        ``log q(Z | G) − log p(Z)`` on the same draws, with ``log p(Z)`` itself bounded below
        (by a one-draw estimate through ``q(u | Z)``, ``u_noise`` fixing its draw, or by the
        best node matching), so ``value`` is a (stochastic) lower bound on ``log p(G)`` of
        the labelled graph."""
        # from the CPU graphs where the batch has them: no device sync every step
        largest = max(g.num_nodes for g in batch.graphs) if batch.graphs \
            else int(batch.sizes.max())
        if largest > self.max_nodes:
            raise ValueError(f"a graph of {largest:,} nodes; this model's p(n) runs to "
                             f"{self.max_nodes:,} nodes (the largest size of its size_counts)")
        q = self.posterior(batch)
        size_lp = self.size_logprob[batch.sizes]
        if getattr(self.prior, "set_prior", False):
            return self._set_bound(batch, q, num_samples, generator, eps, u_noise, size_lp)

        def loglik(z: Tensor) -> LogLik:
            v = self.log_likelihood(z, batch)
            return LogLik(v, v)

        est = ELBO(num_samples, scale=1.0 / batch.num_graphs, prior=self.prior,
                   kl_weight=self.kl_weight)(
            q, loglik, eps=eps, generator=generator)
        return BoundEstimate(est.value + size_lp, est.surrogate - size_lp.mean(), est.recon,
                             est.kl)

    def _set_bound(self, batch: GraphBatch, q: DiagGaussian, num_samples: int,
                   generator: torch.Generator | None, eps: Tensor | None,
                   u_noise: Tensor | None, size_lp: Tensor) -> BoundEstimate:
        z, eps = q.draw((num_samples,), eps=eps, generator=generator)      # (S, B, k, d)
        recon = self.log_likelihood(z, batch).mean(0)
        log_q = (q.log_prob(z, eps) * batch.mask.to(z.dtype)).sum(-1)
        prior: Any = self.prior
        log_p = prior.set_log_prob(z, batch.mask, generator, u_noise)
        kl = (log_q - log_p).mean(0)
        surrogate = -(recon - self.kl_weight * kl + size_lp).mean()
        return BoundEstimate(recon - kl + size_lp, surrogate, recon, kl)

    @torch.no_grad()
    def fit_exemplar_prior(self, graphs: Sequence[tuple[GraphTensors, Tensor]],
                           batch_size: int = 64) -> None:
        """Replace the prior by :class:`~graphvae.bounds.priors.ExemplarPrior` fitted to the
        posteriors of ``graphs`` (the training set: ``(graph, input features)`` pairs)."""
        if not graphs:
            raise ValueError("the exemplar prior needs at least one training graph")
        param = self.edge_bias
        locs, logvars = [], []
        for start in range(0, len(graphs), batch_size):
            part = graphs[start:start + batch_size]
            batch = GraphBatch.collate([g for g, _ in part], [x for _, x in part], param.device)
            q = self.posterior(batch)
            for b, (g, _) in enumerate(part):
                locs.append(q.loc[b, :g.num_nodes])
                logvars.append(q.logvar[b, :g.num_nodes])
        prior = ExemplarPrior(self.latent_channels, len(graphs), self.max_nodes)
        prior.fit(locs, logvars)
        self.prior = prior.to(device=param.device, dtype=param.dtype)
        self._init.update(components=0, exemplars=len(graphs),
                          graph_latent=self._init.get("graph_latent", 8),
                          logvar_offset=self.logvar_offset)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, num_graphs: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> list[SampledGraph]:
        """Draw graphs: ``n ~ p(n)``, ``z ~ p(z)`` per node, then edges, node types, bond types
        (see :class:`~graphvae.containers.SampledGraph`)."""
        check_count("num_graphs", num_graphs, minimum=0)
        if num_graphs == 0:
            return []
        where = draw_device(generator, torch.device("cpu"))
        probs = self.size_logprob.exp().to(where)
        sizes = torch.multinomial(probs, num_graphs, replacement=True, generator=generator)
        out = []
        for n in sizes.tolist():
            z = self.prior.sample_set(n, self.latent_channels, generator,
                                      self.edge_bias.dtype, device)
            logits, h = self.edge_logits(z)
            p = torch.sigmoid(logits)
            upper = torch.triu(bernoulli(p, generator, where), diagonal=1)
            adj = (upper | upper.T).float()
            g = SampledGraph(adj, p * (1 - torch.eye(n, device=device)))
            node_logits = None
            if self.node_decoder is not None:
                node_logits, _ = self.node_decoder(z, Adjacency(adj.nonzero().t(), n))
            g.draw_types(node_logits, None if self.bond_decoder is None
                         else self.bond_logits(h), generator, where)
            out.append(g)
        return out

    # ------------------------------------------------------------------ invariance protocol
    def invariance_batch(self, x: Tensor, edge_index: Tensor, node_types: Tensor | None = None,
                         edge_types: Tensor | None = None) -> GraphBatch:
        g = GraphTensors(x.size(0), edge_index.cpu(), node_types, edge_types)
        return GraphBatch.collate([g], [to_dense(x)], x.device)

    def graph_posterior(self, batch: GraphBatch) -> DiagGaussian:
        """The node latents of a one-graph batch, ``(n, d)``."""
        q = self.posterior(batch)
        return DiagGaussian(q.loc[0], q.logvar[0])

    def decoder_outputs(self, z: Tensor, batch: GraphBatch) -> list[tuple[str, Tensor, str]]:
        """Edge logits (``pairs``) and ``log p(G | Z)`` with node and bond types (``graph``)
        for node latents ``z (n, d)`` of a one-graph batch."""
        logits, _ = self.edge_logits(z)
        return [("edge logits", logits, "pairs"),
                ("log p(G | Z)", self.log_likelihood(z[None, None], batch), "graph")]

    def exact_bound(self, batch: GraphBatch, eps: Tensor) -> Tensor:
        """The ELBO with the noise fixed: ``eps (1, n, d)`` for the node latents and, for a
        set prior, its graph latent at the mean of ``q(u | Z)``."""
        u = torch.zeros(1, 1, getattr(self.prior, "graph_latent", 1), device=eps.device)
        return self.bound(batch, eps=eps[:, None], u_noise=u).value
