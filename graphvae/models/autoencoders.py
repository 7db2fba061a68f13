"""GAE, VGAE and the joint ``(A, X)`` graph VAE.

All three are :class:`GraphAutoencoder` with different parts:

* **GAE** (Kipf & Welling 2016): point encoder, inner-product decoder; trained on
  the edge log-likelihood at ``Z = μ``.
* **VGAE** (same paper): Gaussian encoder, ``ELBO = E_q log p(A|Z) − KL(q ‖ N(0, I))``.
* **joint**: ``log p(X, A | Z) = log p(A | Z) + log p(X | A, Z)`` with the GNN
  feature decoder (``../shared/DESIGN.md`` §2).

The edge term sums over ordered pairs ``(i, j)`` of the target graph, with the
diagonal as positives when ``EdgeObjective.self_loops`` (as Kipf & Welling's
``adj_label = A + I``). It is computed exactly over all ``n²`` pairs
(``estimator="dense"``) or estimated without bias from all positives and
uniformly sampled non-edges (``estimator="sampled"``), which never forms an
``n × n`` matrix. ``bound`` reports the unweighted bound in nats per graph; the
training loss applies Kipf & Welling's ``pos_weight`` and ``norm`` when
``reweight`` and is divided by ``n²``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphvae.bounds import ELBO, IWAE, BoundEstimate
from graphvae.decoders import EDGE_DECODERS, GNNFeatureDecoder, InnerProductDecoder
from graphvae.encoders import build_encoder
from graphvae.graph import Adjacency, to_dense
from graphvae.likelihoods import (
    LogLik,
    balanced_weights,
    bernoulli_edges_dense,
    bernoulli_edges_sampled,
    sample_non_edges,
)


@dataclass(frozen=True)
class EdgeObjective:
    """How the edge likelihood is computed and weighted for training.

    Args:
        estimator: ``"sampled"`` (positives + uniform non-edges) or ``"dense"`` (all pairs).
        negatives: sampled non-edges per positive pair (``"sampled"`` only).
        reweight: Kipf & Welling's ``pos_weight = N⁻/N⁺`` and ``norm = n²/(2N⁻)`` in the loss.
        self_loops: count ``(i, i)`` as positive pairs.
    """

    estimator: str = "sampled"
    negatives: float = 1.0
    reweight: bool = True
    self_loops: bool = True

    def __post_init__(self) -> None:
        if self.estimator not in ("sampled", "dense"):
            raise ValueError(f"estimator must be 'sampled' or 'dense', got {self.estimator!r}")
        if self.negatives <= 0:
            raise ValueError(f"negatives must be positive, got {self.negatives}")


@dataclass
class ModelOutput:
    """What every model returns. ``bound``, ``recon``, ``kl``: nats per graph (0-d)."""

    loss: Tensor
    bound: Tensor
    recon: Tensor
    kl: Tensor
    z: Tensor


class GraphAutoencoder(nn.Module):
    """Encoder + edge decoder (+ optional feature decoder), trained by a bound.

    Args:
        encoder: returns a posterior (``DiagGaussian``) or point code (``PointMass``).
        edge_decoder: inner-product style decoder (``forward`` / ``forward_all``).
        feature_decoder: optional :class:`GNNFeatureDecoder` for ``p(X | A, Z)``.
        objective: :class:`EdgeObjective`.
        bound: ``"elbo"`` or ``"iwae"``; ``num_samples`` draws of ``Z``.
        feature_weight: weight of the feature term in the loss (not in ``bound``).

    For a point encoder (GAE) ``bound`` equals ``recon``, the log-likelihood at
    ``Z = μ``; it is not a bound on ``log p(A)``.
    """

    def __init__(self, encoder: nn.Module, edge_decoder: InnerProductDecoder,
                 feature_decoder: GNNFeatureDecoder | None = None,
                 objective: EdgeObjective | None = None, bound: str = "elbo",
                 num_samples: int = 1, feature_weight: float = 1.0):
        super().__init__()
        if bound not in ("elbo", "iwae"):
            raise ValueError(f"bound must be 'elbo' or 'iwae', got {bound!r}")
        self.encoder = encoder
        self.edge_decoder: InnerProductDecoder = edge_decoder
        self.feature_decoder = feature_decoder
        self.objective = objective or EdgeObjective()
        self.bound_name = bound
        self.num_samples = num_samples
        self.feature_weight = feature_weight

    def encode(self, x: Tensor, adj: Adjacency):
        return self.encoder(x, adj)

    def score(self, z: Tensor, pairs: Tensor) -> Tensor:
        """Edge logits for the given ``(2, E)`` pairs."""
        return self.edge_decoder(z, pairs)

    def _num_pairs(self, n: int) -> int:
        return n * n if self.objective.self_loops else n * (n - 1)

    def edge_loglik(self, z: Tensor, target: Adjacency, pos_weight: float,
                    generator: torch.Generator | None = None) -> LogLik:
        """``log p(A | Z)`` (exact or sampled), shape ``z.shape[:-2]``."""
        obj = self.objective
        if obj.estimator == "dense":
            return bernoulli_edges_dense(self.edge_decoder.forward_all(z),
                                         target.dense_target(obj.self_loops), pos_weight,
                                         diagonal=obj.self_loops)
        pairs, keys = target.positive_pairs(obj.self_loops)
        pos_logits = self.edge_decoder(z, pairs)
        num_neg = self._num_pairs(target.num_nodes) - pairs.size(1)
        if num_neg == 0:  # a complete graph: every pair is an edge
            ll = F.logsigmoid(pos_logits).sum(-1)
            return LogLik(ll, pos_weight * ll)
        m = max(1, int(round(obj.negatives * pairs.size(1))))
        neg = sample_non_edges(keys, target.num_nodes, m, generator, diagonal=obj.self_loops)
        return bernoulli_edges_sampled(pos_logits, self.edge_decoder(z, neg), num_neg,
                                       pos_weight)

    def forward(self, x: Tensor, adj: Adjacency, target: Adjacency | None = None,
                generator: torch.Generator | None = None, eps: Tensor | None = None
                ) -> ModelOutput:
        """Bound and loss for graph ``(x, adj)``; ``target`` (default ``adj``) is the graph
        whose edges are scored, ``adj`` the one the encoder and feature decoder see."""
        target = adj if target is None else target
        n = target.num_nodes
        pos_weight, norm = 1.0, 1.0
        num_pos = target.positive_pairs(self.objective.self_loops)[0].size(1)
        if self.objective.reweight and num_pos < self._num_pairs(n):  # complete: no weights
            pos_weight, norm = balanced_weights(num_pos, self._num_pairs(n))

        def loglik(z: Tensor) -> LogLik:
            ll = self.edge_loglik(z, target, pos_weight, generator)
            if self.feature_decoder is None:
                return ll
            fx = self.feature_decoder.log_prob(to_dense(x), z, adj).sum(-1)
            return LogLik(ll.value + fx, ll.weighted + self.feature_weight * fx / norm)

        q = self.encode(x, adj)
        est: BoundEstimate
        if self.bound_name == "iwae":
            est = IWAE(self.num_samples, scale=norm / (n * n))(q, loglik, eps, generator)
        else:
            est = ELBO(self.num_samples, recon_weight=norm, scale=1.0 / (n * n))(
                q, loglik, eps, generator)
        return ModelOutput(est.surrogate, est.value, est.recon, est.kl, q.mean)


def build_model(kind: str, in_channels: int, encoder: str = "gcn",
                hidden_channels: Sequence[int] = (32,), latent_channels: int = 16,
                decoder: str = "inner", objective: EdgeObjective | None = None,
                dropout: float = 0.0, feature_likelihood: str = "gaussian",
                **kwargs) -> GraphAutoencoder:
    """Build ``"gae"``, ``"vgae"`` or ``"joint"`` from registry names."""
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
    return GraphAutoencoder(enc, dec, feat, objective, **kwargs)


MODELS = ("gae", "vgae", "joint")
