"""Variational bounds as estimator objects apart from models (plain torch, no PyG).

Each bound is called with a posterior (:class:`DiagGaussian` or :class:`PointMass`)
and a function ``z -> LogLik``, takes the model's prior (:mod:`~graphvae.bounds.priors`,
``N(0, I)`` by default), and returns a :class:`BoundEstimate`:
``value`` (the bound, in nats, per batch element, to report) and ``surrogate``
(a scalar *loss* to minimise whose gradient is that of the training objective).
"""

from graphvae.bounds.elbo import ELBO, IWAE, BoundEstimate, logmeanexp
from graphvae.bounds.gaussian import DiagGaussian, PointMass
from graphvae.bounds.permutation import PermutationELBO
from graphvae.bounds.priors import Prior, StandardNormal

__all__ = [
    "ELBO",
    "IWAE",
    "BoundEstimate",
    "DiagGaussian",
    "PermutationELBO",
    "PointMass",
    "Prior",
    "StandardNormal",
    "logmeanexp",
]
