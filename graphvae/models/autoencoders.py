"""GAE, VGAE and the joint ``(A, X)`` graph VAE.

All three are :class:`GraphAutoencoder` with different parts:

* **GAE** (Kipf & Welling 2016): point encoder, inner-product decoder; trained on
  the edge log-likelihood at ``Z = μ``.
* **VGAE** (same paper): Gaussian encoder, ``ELBO = E_q log p(A|Z) − KL(q ‖ N(0, I))``.
* **joint**: ``log p(X, A | Z) = log p(A | Z) + log p(X | A, Z)`` with the GNN
  feature decoder (:mod:`graphvae.decoders`), which passes messages over ``A`` from ``Z``.

The edge term sums over ordered pairs ``(i, j)`` of the target graph, with the
diagonal as positives when ``EdgeObjective.self_loops`` (as Kipf & Welling's
``adj_label = A + I``). It is computed exactly over all ``n²`` pairs
(``estimator="dense"``) or estimated without bias from all positives and
uniformly sampled non-edges (``estimator="sampled"``), which never forms an
``n × n`` matrix. The value reports the unweighted bound in nats per graph; the
training loss applies Kipf & Welling's ``pos_weight`` and ``norm`` when
``reweight`` and is divided by ``n²``. These weights and scales come from the whole
graph's :class:`~graphvae.containers.EdgeStats`, carried by the
:class:`~graphvae.containers.LinkBatch` that ``forward`` takes, never from the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphvae.adjacency import Adjacency
from graphvae.bounds import (
    ELBO,
    IWAE,
    BoundEstimate,
    DiagGaussian,
    PointMass,
    Prior,
    StandardNormal,
)
from graphvae.checks import is_whole
from graphvae.containers import EdgeStats, LinkBatch, PairRows, PairSample
from graphvae.decoders import EDGE_DECODERS, GNNFeatureDecoder, InnerProductDecoder
from graphvae.encoders import build_encoder
from graphvae.graph import check_edge_index, to_dense
from graphvae.likelihoods import (
    LogLik,
    balanced_weights,
    bernoulli_edges_dense,
    bernoulli_edges_dense_rows,
    bernoulli_edges_sampled,
    draw_non_edges,
)
from graphvae.likelihoods.edges import DENSE_BLOCK_ENTRIES


@dataclass(frozen=True)
class EdgeObjective:
    """How the edge likelihood is computed and weighted for training.

    Args:
        estimator: ``"sampled"`` (positives + uniform non-edges) or ``"dense"`` (all pairs).
        negatives: sampled non-edges per positive pair (``"sampled"`` only).
        reweight: Kipf & Welling's ``pos_weight = N⁻/N⁺`` and ``norm = P/(2N⁻)`` in the loss,
            ``P`` the ordered pairs the likelihood covers (``n²``, or ``n(n − 1)`` without
            the diagonal) and ``N⁻ = P − N⁺``.
        self_loops: count ``(i, i)`` as positive pairs.
    """

    estimator: str = "sampled"
    negatives: float = 1.0
    reweight: bool = True
    self_loops: bool = True

    def __post_init__(self) -> None:
        if self.estimator not in ("sampled", "dense"):
            raise ValueError(f"estimator must be 'sampled' or 'dense', got {self.estimator!r}")
        if not 0 < self.negatives < math.inf:
            raise ValueError(f"negatives must be a finite number > 0, got {self.negatives}")


class GraphAutoencoder(nn.Module):
    """Encoder + edge decoder (+ optional feature decoder), trained by a bound.

    Args:
        encoder: returns a posterior (``DiagGaussian``) or point code (``PointMass``).
        edge_decoder: inner-product style decoder (``forward`` / ``forward_all``, and
            ``forward_rows`` for the exact likelihood of a large graph by blocks).
        feature_decoder: optional :class:`GNNFeatureDecoder` for ``p(X | A, Z)``.
        objective: :class:`EdgeObjective`.
        bound: ``"elbo"`` or ``"iwae"``; ``num_samples`` draws of ``Z``.
        feature_weight: weight of the feature term in the loss (not in ``bound``).
        prior: ``p(Z)`` over each node's latent (default ``N(0, I)``).

    For a point encoder (GAE) the value equals ``recon``, the log-likelihood at
    ``Z = μ``; it is not a bound on ``log p(A)``.
    """

    kind = "graph-autoencoder"
    node_latents = True

    def __init__(self, encoder: nn.Module, edge_decoder: InnerProductDecoder,
                 feature_decoder: GNNFeatureDecoder | None = None,
                 objective: EdgeObjective | None = None, bound: str = "elbo",
                 num_samples: int = 1, feature_weight: float = 1.0, prior: Prior | None = None):
        super().__init__()
        if bound not in ("elbo", "iwae"):
            raise ValueError(f"bound must be 'elbo' or 'iwae', got {bound!r}")
        self.encoder = encoder
        self.edge_decoder: InnerProductDecoder = edge_decoder
        self.feature_decoder = feature_decoder
        self.objective = objective or EdgeObjective()
        self.bound_name = bound
        self.num_samples = num_samples
        if not 0 <= feature_weight < math.inf:
            raise ValueError(f"feature_weight must be a finite number >= 0, got {feature_weight}")
        self.feature_weight = feature_weight
        self.prior = prior if prior is not None else StandardNormal()
        self._init: dict[str, Any] | None = None   # set by build_model

    def encode(self, x: Tensor, adj: Adjacency):
        return self.encoder(x, adj)

    def score(self, z: Tensor, pairs: Tensor) -> Tensor:
        """Edge logits for the given ``(2, E)`` pairs of rows of ``z``; a pair index outside
        ``0 .. n-1`` is refused (a negative one read a row from the end)."""
        check_edge_index(pairs, z.size(-2))
        return self.edge_decoder(z, pairs)

    def _num_pairs(self, n: int) -> int:
        return n * n if self.objective.self_loops else n * (n - 1)

    def init_kwargs(self) -> dict[str, Any]:
        """The :func:`build_model` arguments that rebuild this model for its state dict."""
        init = self._init
        if init is None:
            raise ValueError("this GraphAutoencoder was assembled from parts; only models made "
                             "by build_model can be rebuilt from a checkpoint")
        return dict(init)

    def edge_stats(self, target: Adjacency) -> EdgeStats:
        """The weights and counts of :attr:`objective` for the whole graph ``target``."""
        n = target.num_nodes
        num_pos = target.positive_pairs(self.objective.self_loops)[0].size(1)
        pairs = self._num_pairs(n)
        pos_weight, norm = 1.0, 1.0
        if self.objective.reweight and num_pos < pairs:  # complete: no weights
            pos_weight, norm = balanced_weights(num_pos, pairs)
        return EdgeStats(n, pairs, num_pos, pos_weight, norm)

    def edge_loglik(self, z: Tensor, target: Adjacency, stats: EdgeStats,
                    generator: torch.Generator | None = None,
                    sample: PairSample | None = None) -> LogLik:
        """``log p(A | Z)`` (exact or sampled), shape ``z.shape[:-2]``; with a
        :class:`~graphvae.containers.PairSample`, its mini-batch estimate."""
        obj = self.objective
        if sample is not None:
            pos = F.logsigmoid(self.edge_decoder(z, sample.pos)).sum(-1) * sample.pos_scale
            neg = F.logsigmoid(-self.edge_decoder(z, sample.neg)).sum(-1) * sample.neg_scale
            return LogLik(pos + neg, stats.pos_weight * pos + neg)
        if obj.estimator == "dense":
            # evaluation of a large graph (no gradients to keep) goes by blocks of rows,
            # never the (n, n) logits, target and temporaries at once (PubMed: ~3 GB each)
            blocks = None if torch.is_grad_enabled() else self._pair_rows(z)
            if blocks is None:
                return bernoulli_edges_dense(self.edge_decoder.forward_all(z),
                                             target.dense_target(obj.self_loops),
                                             stats.pos_weight, diagonal=obj.self_loops)
            _, keys = target.positive_pairs(obj.self_loops)
            return bernoulli_edges_dense_rows(blocks.rows, keys, blocks.num_nodes,
                                              stats.pos_weight, diagonal=obj.self_loops,
                                              block_entries=DENSE_BLOCK_ENTRIES)
        pairs, keys = target.positive_pairs(obj.self_loops)
        pos_logits = self.edge_decoder(z, pairs)
        if stats.num_neg == 0:  # a complete graph: every pair is an edge
            ll = F.logsigmoid(pos_logits).sum(-1)
            return LogLik(ll, stats.pos_weight * ll)
        m = max(1, int(round(obj.negatives * pairs.size(1))))
        neg = draw_non_edges(keys, target.num_nodes, m, stats.num_neg, generator,
                             diagonal=obj.self_loops)
        return bernoulli_edges_sampled(pos_logits, self.edge_decoder(z, neg), stats.num_neg,
                                       stats.pos_weight)

    def forward(self, batch: LinkBatch, generator: torch.Generator | None = None,
                eps: Tensor | None = None) -> BoundEstimate:
        """The model protocol: bound (``value``, nats per graph) and training loss
        (``surrogate``) of ``batch``, weighted and scaled by its full-graph ``stats``."""
        stats, adj, x, sample = batch.stats, batch.adj, batch.x, batch.pairs
        n = stats.num_nodes
        share = 1.0 if sample is None else sample.share

        def loglik(z: Tensor) -> LogLik:
            ll = self.edge_loglik(z, batch.target, stats, generator, sample)
            if self.feature_decoder is None:
                return ll
            fx = share * self.feature_decoder.log_prob(to_dense(x), z, adj).sum(-1)
            return LogLik(ll.value + fx, ll.weighted + self.feature_weight * fx / stats.norm)

        q = self.encode(x, adj)
        if self.bound_name == "iwae":
            if sample is not None:
                raise ValueError("the IWAE bound has no unbiased mini-batch estimate; train "
                                 "it on the full graph")
            return IWAE(self.num_samples, scale=1.0 / (n * n), prior=self.prior,
                        recon_weight=stats.norm)(q, loglik, eps, generator)
        est = ELBO(self.num_samples, recon_weight=stats.norm, kl_weight=share,
                   scale=1.0 / (n * n), prior=self.prior)(q, loglik, eps, generator)
        if share != 1.0:
            # this process's shard of a data-parallel batch: its value carries share·KL so
            # the shards sum to the estimate, and its loss is divided by share because
            # DistributedDataParallel averages the processes' gradients (not sums them)
            est = BoundEstimate(est.recon - share * est.kl, est.surrogate / share, est.recon,
                                share * est.kl)
        return est

    def batch(self, x: Tensor, adj: Adjacency, target: Adjacency | None = None) -> LinkBatch:
        """A full-graph batch: the encoder sees ``adj``, the edges of ``target`` (default
        ``adj``) are scored, with ``target``'s own statistics."""
        target = adj if target is None else target
        return LinkBatch(x, adj, target, self.edge_stats(target))

    def bound(self, x: Tensor, adj: Adjacency, target: Adjacency | None = None,
              generator: torch.Generator | None = None, eps: Tensor | None = None
              ) -> BoundEstimate:
        """``forward`` on the full-graph batch of ``(x, adj)``."""
        return self(self.batch(x, adj, target), generator=generator, eps=eps)

    # ------------------------------------------------------------------ invariance protocol
    def invariance_batch(self, x: Tensor, edge_index: Tensor, node_types: Tensor | None = None,
                         edge_types: Tensor | None = None) -> LinkBatch:
        return self.batch(x, Adjacency(edge_index, x.size(0)))

    def graph_posterior(self, batch: LinkBatch) -> DiagGaussian | PointMass:
        return self.encode(batch.x, batch.adj)

    def _pair_rows(self, z: Tensor) -> PairRows | None:
        """The edge logits of ``z`` by blocks of rows where the graph has more than
        :data:`DENSE_BLOCK_ENTRIES` pairs and the decoder has ``forward_rows``; ``None``
        where they are taken whole."""
        n = z.size(-2)
        rows_of = getattr(self.edge_decoder, "forward_rows", None)
        if n * n <= DENSE_BLOCK_ENTRIES or rows_of is None:
            return None
        return PairRows(lambda rows: rows_of(z, rows), n)

    def decoder_outputs(self, z: Tensor, batch: LinkBatch
                        ) -> list[tuple[str, Tensor | PairRows, str]]:
        """All-pairs edge logits (``pairs``; past :data:`DENSE_BLOCK_ENTRIES` pairs, a
        :class:`~graphvae.testing.PairRows` that gives them by blocks of rows) and the
        feature decoder's means (``nodes``)."""
        blocks = self._pair_rows(z)
        logits = self.edge_decoder.forward_all(z) if blocks is None else blocks
        out: list[tuple[str, Tensor | PairRows, str]] = [("edge logits", logits, "pairs")]
        if self.feature_decoder is not None:
            out.append(("feature mean", self.feature_decoder(z, batch.adj)[0], "nodes"))
        return out

    def exact_bound(self, batch: LinkBatch, eps: Tensor) -> Tensor:
        """The bound with the exact dense edge likelihood, noise fixed (``eps (1, n, d)``)."""
        saved = self.objective
        self.objective = replace(saved, estimator="dense")
        try:
            return self(batch, eps=eps).value
        finally:
            self.objective = saved


def build_model(kind: str, in_channels: int, encoder: str = "gcn",
                hidden_channels: Sequence[int] = (32,), latent_channels: int = 16,
                decoder: str = "inner", objective: EdgeObjective | None = None,
                dropout: float = 0.0, feature_likelihood: str = "gaussian",
                **kwargs) -> GraphAutoencoder:
    """Build ``"gae"``, ``"vgae"`` or ``"joint"`` from registry names (one hidden width
    may be given as an int)."""
    if is_whole(hidden_channels):
        hidden_channels = (hidden_channels,)
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; choose one of {sorted(MODELS)}")
    if decoder not in EDGE_DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {sorted(EDGE_DECODERS)}")
    enc = build_encoder(encoder, in_channels, hidden_channels, latent_channels,
                        variational=kind != "gae", dropout=dropout)
    dec = (EDGE_DECODERS[decoder](latent_channels) if decoder == "mlp"
           else EDGE_DECODERS[decoder]())
    feat = (GNNFeatureDecoder(latent_channels, in_channels, likelihood=feature_likelihood)
            if kind == "joint" else None)
    model = GraphAutoencoder(enc, dec, feat, objective, **kwargs)
    obj = objective or EdgeObjective()
    model._init = {"kind": kind, "in_channels": in_channels, "encoder": encoder,
                   "hidden_channels": list(hidden_channels), "latent_channels": latent_channels,
                   "decoder": decoder, "objective": {"estimator": obj.estimator,
                                                     "negatives": obj.negatives,
                                                     "reweight": obj.reweight,
                                                     "self_loops": obj.self_loops},
                   "dropout": dropout, "feature_likelihood": feature_likelihood, **kwargs}
    return model


def rebuild_graph_autoencoder(init: dict[str, Any]) -> GraphAutoencoder:
    """The model of :meth:`GraphAutoencoder.init_kwargs` (as saved in checkpoints)."""
    init = dict(init)
    return build_model(init.pop("kind"), objective=EdgeObjective(**init.pop("objective")),
                       **init)


MODELS = ("gae", "vgae", "joint")
