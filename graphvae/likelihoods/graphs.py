"""Likelihood of a whole padded graph under a fixed-size decoder (GraphVAE).

A graph with ``n ≤ k`` nodes is a padded target: node mask ``m ∈ {0,1}^k``
(``m_a = 1`` for the ``n`` real nodes), adjacency ``A ∈ {0,1}^{k×k}``
(symmetric, zero diagonal), optional node types ``t_a`` and edge types ``τ_ab``.
The decoder gives logits: node existence ``ν_a``, edges ``l_ab`` (symmetric), node
types and edge types. Then

.. math::
    \\log p(G | z) = Σ_a \\log Bern(m_a | σ(ν_a))
        + Σ_{a<b,\\, m_a m_b = 1} \\log Bern(A_ab | σ(l_ab))
        + Σ_{a: m_a = 1} \\log Cat(t_a) + Σ_{a<b: A_ab = 1} \\log Cat(τ_ab),

edges are scored only between existing nodes, each unordered pair once. All
inputs broadcast over leading dimensions, so ``K`` permuted targets against
``S`` decoded samples is one call with shapes ``(S, 1, ...)`` and ``(1, K, ...)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def padded_graph_log_prob(node_logits: Tensor, edge_logits: Tensor, mask: Tensor, adj: Tensor,
                          node_type_logits: Tensor | None = None,
                          node_types: Tensor | None = None,
                          edge_type_logits: Tensor | None = None,
                          edge_types: Tensor | None = None) -> Tensor:
    """``log p(G | z)`` (see the module docstring); returns the broadcast leading shape.

    Shapes: ``node_logits (..., k)``, ``edge_logits (..., k, k)``, ``mask (..., k)``,
    ``adj (..., k, k)``, ``node_type_logits (..., k, T)``, ``node_types (..., k)`` long,
    ``edge_type_logits (..., k, k, R)``, ``edge_types (..., k, k)`` long.
    """
    k = node_logits.size(-1)
    mask = mask.to(node_logits.dtype)
    adj = adj.to(edge_logits.dtype)
    lp = _bern(node_logits, mask).sum(-1)
    upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=adj.device), diagonal=1)
    pair = (mask[..., :, None] * mask[..., None, :]) * upper
    lp = lp + (_bern(edge_logits, adj) * pair).sum((-2, -1))
    if node_type_logits is not None and node_types is not None:
        nt = _cat(node_type_logits, node_types)
        lp = lp + (nt * mask).sum(-1)
    if edge_type_logits is not None and edge_types is not None:
        et = _cat(edge_type_logits, edge_types)
        lp = lp + (et * adj * upper).sum((-2, -1))
    return lp


def _bern(logits: Tensor, target: Tensor) -> Tensor:
    """Elementwise ``log Bern(target | σ(logits))``, broadcasting."""
    return target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits)


def _cat(logits: Tensor, index: Tensor) -> Tensor:
    """Elementwise ``log softmax(logits)[index]``, broadcasting the leading dims."""
    logp = F.log_softmax(logits, dim=-1)
    shape = torch.broadcast_shapes(logp.shape[:-1], index.shape)
    logp = logp.expand(*shape, logp.size(-1))
    return logp.gather(-1, index.expand(shape).unsqueeze(-1)).squeeze(-1)
