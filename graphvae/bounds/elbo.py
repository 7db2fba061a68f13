"""The evidence lower bound and the importance-weighted bound, as estimator objects.

Both take a posterior ``q`` (rows of a :class:`~graphvae.bounds.DiagGaussian`)
and ``loglik_fn(z) -> LogLik`` evaluated on ``S`` stacked samples
``z: (S, *q.loc.shape)`` and returning tensors of shape ``(S, *batch)``:
``batch = ()`` for one graph (sums over nodes and edges inside), ``(B,)`` for
a batch of vectors. Per-row KL / log-density terms are summed down to
``batch``, so the reduction is always "one value per graph (or data point)".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from graphvae.bounds.gaussian import DiagGaussian, PointMass
from graphvae.bounds.priors import Prior, StandardNormal
from graphvae.checks import check_count
from graphvae.likelihoods.edges import LogLik

LogLikFn = Callable[[Tensor], LogLik]


@dataclass
class BoundEstimate:
    """A bound's reported ``value`` (nats, shape ``batch``) and training ``surrogate`` (a loss).

    ``recon`` and ``kl`` are the ELBO's two parts, ``E_q log p(x|z)`` and ``KL(q ‖ p)``
    (Monte-Carlo where needed): ``value = recon − kl`` for the ELBO, not for IWAE, whose
    ``value`` is the tighter importance-weighted bound.
    """

    value: Tensor
    surrogate: Tensor
    recon: Tensor
    kl: Tensor


def logmeanexp(x: Tensor, dim: int = 0) -> Tensor:
    """``log( mean_k exp(x_k) )`` along ``dim``, computed stably; ``dim`` must hold at
    least one entry (a mean of none is undefined)."""
    if x.size(dim) == 0:
        raise ValueError(f"logmeanexp over dimension {dim} of shape {tuple(x.shape)}: a mean "
                         f"of no entries is undefined")
    return torch.logsumexp(x, dim=dim) - math.log(x.size(dim))


def _sum_rows(t: Tensor, ndim: int) -> Tensor:
    """Sum the trailing dimensions of ``t`` beyond the first ``ndim``."""
    return t.flatten(ndim).sum(-1) if t.dim() > ndim else t


class ELBO:
    """``ELBO = E_q[log p(x | z)] − KL(q(z|x) ‖ p(z))`` (Kingma & Welling, ICLR 2014).

    The expectation is estimated with ``num_samples`` reparameterised draws; the KL
    term is the prior's closed form (``N(0, I)`` by default), or, for a prior without
    one, the Monte-Carlo estimate on the same draws — then ``value`` is an unbiased
    estimate of the ELBO rather than the ELBO with an exact KL. ``value`` bounds
    ``log p(x)`` from below (for a :class:`PointMass` posterior it is just the
    reconstruction log-likelihood).

    The surrogate is the loss ``−scale · Σ_batch (recon_weight · E_q[weighted]
    − kl_weight · KL)``; with all weights 1 and ``scale = 1/B`` it is the negated
    mean ELBO. Kipf & Welling's graph objective is ``recon_weight = norm``,
    ``scale = 1/n²`` with the ``pos_weight``-re-weighted likelihood.

    Args:
        num_samples: draws ``S`` of ``z`` per call (default 1).
        recon_weight, kl_weight, scale: weights of the surrogate only.
        prior: ``p(z)`` (default :class:`~graphvae.bounds.priors.StandardNormal`).
    """

    def __init__(self, num_samples: int = 1, recon_weight: float = 1.0, kl_weight: float = 1.0,
                 scale: float = 1.0, prior: Prior | None = None):
        check_count("num_samples", num_samples)
        self.prior = prior if prior is not None else StandardNormal()
        self.num_samples = num_samples
        self.recon_weight = recon_weight
        self.kl_weight = kl_weight
        self.scale = scale

    def __call__(self, q: DiagGaussian | PointMass, loglik_fn: LogLikFn,
                 eps: Tensor | None = None,
                 generator: torch.Generator | None = None) -> BoundEstimate:
        z, eps = q.draw((self.num_samples,), eps=eps, generator=generator)  # (S, ..., d)
        ll = loglik_fn(z)                                                 # (S, *batch)
        recon, recon_w = ll.value.mean(0), ll.weighted.mean(0)            # (*batch)
        kl = _sum_rows(q.kl_to(self.prior, z, eps), recon.dim())           # (*batch)
        surrogate = -self.scale * (self.recon_weight * recon_w - self.kl_weight * kl).sum()
        return BoundEstimate(recon - kl, surrogate, recon, kl)


class IWAE:
    """Importance-weighted bound ``log (1/K) Σ_k p(x | z_k) p(z_k) / q(z_k | x)``, ``z_k ~ q``.

    Burda, Grosse & Salakhutdinov, ICLR 2016: ``ELBO ≤ IWAE_K ≤ IWAE_{K+1} ≤
    log p(x)`` in expectation, and ``IWAE_K → log p(x)`` as ``K → ∞``. ``value``
    is the bound itself (per batch element); the surrogate is
    ``−scale · Σ_batch`` of the same quantity with the re-weighted likelihood, times
    ``recon_weight``: with weights 1 its gradient is the IWAE gradient (not an ELBO-shaped
    stand-in); otherwise it is the IWAE gradient of that tempered likelihood, whose
    importance weights are the tempered model's, not the bound's. With ``K = 1`` the
    surrogate is the one-draw ELBO's with the same weights: only the likelihood carries
    ``recon_weight``, not ``log p(z)/q(z)``.

    Args:
        num_samples: ``K`` importance samples.
        scale: factor of the surrogate.
        prior: ``p(z)`` (default :class:`~graphvae.bounds.priors.StandardNormal`).
        recon_weight: factor of the re-weighted likelihood in the surrogate (Kipf &
            Welling's ``norm``, as the ELBO's ``recon_weight``).
    """

    def __init__(self, num_samples: int = 5, scale: float = 1.0, prior: Prior | None = None,
                 recon_weight: float = 1.0):
        check_count("num_samples", num_samples)
        self.prior = prior if prior is not None else StandardNormal()
        self.num_samples = num_samples
        self.scale = scale
        self.recon_weight = recon_weight

    def __call__(self, q: DiagGaussian, loglik_fn: LogLikFn, eps: Tensor | None = None,
                 generator: torch.Generator | None = None) -> BoundEstimate:
        if not isinstance(q, DiagGaussian):
            raise ValueError("IWAE needs a Gaussian posterior (a variational encoder)")
        z, eps = q.draw((self.num_samples,), eps=eps, generator=generator)  # (K, ..., d)
        ll = loglik_fn(z)                                                 # (K, *batch)
        nd = ll.value.dim()
        log_ratio = _sum_rows(self.prior.log_prob(z) - q.log_prob(z, eps), nd)  # (K, *batch)
        value = logmeanexp(ll.value + log_ratio, 0)
        trained = logmeanexp(self.recon_weight * ll.weighted + log_ratio, 0)
        return BoundEstimate(value, -self.scale * trained.sum(), ll.value.mean(0),
                             -log_ratio.mean(0))
