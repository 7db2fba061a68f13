"""Diagonal Gaussian posteriors and the standard-normal prior.

``q(Z) = Π_i N(Z_i | μ_i, diag σ_i²)`` with ``Z = μ + σ ⊙ ε``, ``ε ~ N(0, I)``,
and the closed form ``KL(q ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²)``
(Kingma & Welling 2014, appendix B).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_LOG_2PI = math.log(2 * math.pi)


def kl_standard_normal(loc: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(loc, exp(logvar)) ‖ N(0, 1))`` summed over the last dimension."""
    return 0.5 * (loc.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z | 0, I)`` summed over the last dimension."""
    return -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)


class DiagGaussian:
    """Per-row diagonal Gaussian, ``loc`` and ``logvar`` of shape ``(..., d)``.

    ``log_prob`` and ``kl`` sum over the last dimension, giving one value per row
    (per node for a graph encoder, per data point for a vector encoder). The
    object holds tensors only, so a bound may sample it as often as it likes.
    """

    def __init__(self, loc: Tensor, logvar: Tensor):
        if loc.shape != logvar.shape:
            raise ValueError(f"loc {tuple(loc.shape)} and logvar {tuple(logvar.shape)} differ")
        self.loc = loc
        self.logvar = logvar

    @property
    def scale(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def mean(self) -> Tensor:
        return self.loc

    def rsample(self, sample_shape: tuple[int, ...] = (), eps: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Reparameterised draw ``loc + scale * eps``, shape ``sample_shape + loc.shape``."""
        if eps is None:
            eps = torch.randn(tuple(sample_shape) + tuple(self.loc.shape), generator=generator,
                              dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.scale * eps

    def log_prob(self, z: Tensor) -> Tensor:
        var_term = (z - self.loc).pow(2) * torch.exp(-self.logvar)
        return -0.5 * (var_term + self.logvar + _LOG_2PI).sum(-1)

    def kl(self) -> Tensor:
        """Closed-form ``KL(q ‖ N(0, I))`` per row."""
        return kl_standard_normal(self.loc, self.logvar)

    def distribution(self) -> torch.distributions.Independent:
        """The same law as a ``torch.distributions`` object."""
        return torch.distributions.Independent(
            torch.distributions.Normal(self.loc, self.scale), 1)


class PointMass:
    """A deterministic code (plain autoencoders): ``rsample`` returns ``loc``, KL is 0."""

    def __init__(self, loc: Tensor):
        self.loc = loc

    @property
    def mean(self) -> Tensor:
        return self.loc

    def rsample(self, sample_shape: tuple[int, ...] = (), eps: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        return self.loc.expand(tuple(sample_shape) + tuple(self.loc.shape))

    def kl(self) -> Tensor:
        return self.loc.new_zeros(self.loc.shape[:-1])
