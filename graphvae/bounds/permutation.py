"""Permutation-sampled bounds for models that are not permutation-equivariant.

A decoder over a fixed node order (GraphVAE's MLP) assigns different
likelihoods to the relabellings ``PG = (PX, PAPᵀ)`` of one graph. The graph as
an *unlabelled* object has probability ``Σ_{G'∈[G]} p(G')``, the sum over the
distinct labelled graphs isomorphic to it; the ``n!`` relabellings give each of them
``|Aut(G)|`` times, so it is ``(1/|Aut(G)|) Σ_{P∈Π} p(PG)``. For any set ``S`` of
permutations whose relabellings ``PG`` are pairwise distinct graphs

.. math::
    \\log Σ_{G'∈[G]} p(G') \\;≥\\; \\log Σ_{P∈S} p(PG) \\;≥\\; \\log Σ_{P∈S} e^{\\mathrm{ELBO}(PG)}

the first because the dropped terms are non-negative, the second termwise
(``p(PG) ≥ exp ELBO(PG)``). :class:`PermutationELBO` estimates the right-hand side
for ``S`` given as a ``(K, n)`` tensor (random draws, canonical orderings, a
matched permutation, or all ``n!`` for the exact version), vectorised over ``K``.
Each ``ELBO(P_k G)`` is estimated from the *same* draws ``z_1..z_s ~ q`` (``s`` =
``num_samples``), ``ELBO_k = (1/s) Σ_j log p(P_k G | z_j) − KL(q ‖ p)``, and the value
is ``log Σ_k exp ELBO_k``. Its expectation lies between the right-hand side (Jensen:
log-sum-exp is convex) and the middle term: with ``s = 1`` it is the one-draw ELBO of
the summed likelihood ``Σ_k p(P_k G | z)``, and averaging draws inside the log-sum-exp
only lowers it. So it is a lower bound on the middle term in expectation, and it comes
down to the right-hand side as ``s`` grows.
The relabelled graphs must be *distinct*: one listed twice (a repeated
permutation, or two that differ by an automorphism of the graph) is counted twice
and the value can exceed ``log p`` of the unlabelled graph, even 0 nats on a
symmetric one. Callers remove the repeats; ``GraphVAE.bound`` does, by comparing the
relabelled graphs themselves. With ``mean=True`` it returns
``log (1/K) Σ_{k} exp ELBO_k``: for ``K`` uniform random permutations (repeats kept) its
expectation is at most ``log (1/n!) Σ_{P∈Π} p(PG)`` (Jensen), which is ``log p`` of the
unlabelled graph minus ``log (n!/|Aut(G)|)``; with ``s = 1`` it rises, as ``K`` grows, to
``E_q log (1/n!) Σ_{P∈Π} p(PG | z) − KL``, like the importance-weighted bound (Burda et
al. 2016).

The encoder is assumed permutation-*invariant* (a GNN with sum pooling), so
``q(z | PG) = q(z | G)`` and one posterior serves every ``P``;
:func:`graphvae.testing.assert_encoder_equivariant` checks that assumption.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from graphvae.bounds.elbo import BoundEstimate
from graphvae.bounds.gaussian import DiagGaussian, PointMass
from graphvae.bounds.priors import Prior, StandardNormal
from graphvae.checks import check_count


class PermutationELBO:
    """``log Σ_{k=1..K} exp ELBO_k``, the ``K`` ELBOs estimated from shared draws of ``z``
    (or the log-mean-exp, ``mean=True``); see the module docstring for what it bounds.

    Args:
        num_samples: draws of ``z`` for each ``E_q`` (shared by all ``K`` permutations).
        mean: subtract ``log K`` (log-mean-exp variant).
        scale: factor of the surrogate ``−scale · value``.
        prior: ``p(z)`` (default :class:`~graphvae.bounds.priors.StandardNormal`).

    Call with a posterior ``q`` and ``loglik_fn(z) -> (S, K)``, the log-likelihood
    of the ``K`` relabelled graphs under each of the ``S`` samples. Returns a
    :class:`BoundEstimate` with ``value`` the bound in nats per graph, ``recon`` and
    ``kl`` the parts of the best-scoring permutation's ELBO.
    """

    def __init__(self, num_samples: int = 1, mean: bool = False, scale: float = 1.0,
                 prior: Prior | None = None):
        check_count("num_samples", num_samples)
        self.prior = prior if prior is not None else StandardNormal()
        self.num_samples = num_samples
        self.mean = mean
        self.scale = scale

    def per_permutation(self, q: DiagGaussian | PointMass, loglik_fn: Callable[[Tensor], Tensor],
                        eps: Tensor | None = None, generator: torch.Generator | None = None
                        ) -> tuple[Tensor, Tensor, Tensor]:
        """``(ELBO_k (K,), recon_k (K,), kl ())`` for each permutation."""
        z, eps = q.draw((self.num_samples,), eps=eps, generator=generator)  # (S, ..., d)
        lik = loglik_fn(z)
        if not isinstance(lik, Tensor) or lik.dim() != 2 or lik.size(0) != self.num_samples:
            got = tuple(lik.shape) if isinstance(lik, Tensor) else type(lik).__name__
            raise ValueError(f"loglik_fn must return the (S, K) = ({self.num_samples}, K) "
                             f"log-likelihoods of K relabellings under each of the S samples, "
                             f"got {got}")
        recon = lik.mean(0)                                                # (K,)
        kl = q.kl_to(self.prior, z, eps).sum()
        return recon - kl, recon, kl

    def __call__(self, q: DiagGaussian | PointMass, loglik_fn: Callable[[Tensor], Tensor],
                 eps: Tensor | None = None, generator: torch.Generator | None = None
                 ) -> BoundEstimate:
        elbos, recon, kl = self.per_permutation(q, loglik_fn, eps, generator)
        value = torch.logsumexp(elbos, 0) - (math.log(elbos.numel()) if self.mean else 0.0)
        best = int(elbos.argmax())
        return BoundEstimate(value, -self.scale * value, recon[best], kl)
