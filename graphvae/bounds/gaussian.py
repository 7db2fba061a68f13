"""Posteriors: diagonal Gaussians and point masses (plain autoencoders).

``q(Z) = Π_i N(Z_i | μ_i, diag σ_i²)`` with ``Z = μ + σ ⊙ ε``, ``ε ~ N(0, I)``. The KL
to a prior comes from :meth:`DiagGaussian.kl_to`: the prior's closed form when it has
one (:mod:`graphvae.bounds.priors`), else a Monte-Carlo estimate on given draws.

The bounds draw with :meth:`DiagGaussian.draw`, which also returns ``ε``, and evaluate
``log q`` of their own draws from it: ``(Z − μ)² / σ² = ε²`` holds exactly, while ``Z − μ``
computed in float32 loses every digit once ``σ`` falls below ``|μ|`` times the float
precision (``log σ² < −32`` at ``|μ| = 1``; at ``−40`` ``Z`` rounds back to ``μ``, and
``log q`` came out ``ε²/2`` nats a coordinate too high). The gradients are the same:
through ``Z``, ``(Z − μ)² / σ²`` is ``ε²`` for every ``μ`` and ``σ``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphvae.bounds.priors import LOG_2PI, Prior
from graphvae.devices import draw_device


class DiagGaussian:
    """Per-row diagonal Gaussian, ``loc`` and ``logvar`` of shape ``(..., d)``.

    ``log_prob`` and ``kl_to`` sum over the last dimension, giving one value per row
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
        """Reparameterised draw ``loc + scale * eps``, shape ``sample_shape + loc.shape``;
        ``eps`` is drawn on the generator's device and moved to ``loc``'s (the generation
        task's CPU generator with a CUDA model: torch refuses a CPU generator for a CUDA
        draw), so a CPU generator gives the same draws on either device."""
        return self.draw(sample_shape, eps, generator)[0]

    def draw(self, sample_shape: tuple[int, ...] = (), eps: Tensor | None = None,
             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(z, eps)``: :meth:`rsample`'s draw and the standard-normal noise that made it,
        for :meth:`log_prob` and :meth:`kl_to` to evaluate ``z``'s density exactly."""
        if eps is None:
            where = draw_device(generator, self.loc.device)
            eps = torch.randn(tuple(sample_shape) + tuple(self.loc.shape), generator=generator,
                              dtype=self.loc.dtype, device=where).to(self.loc.device)
        return self.loc + self.scale * eps, eps

    def log_prob(self, z: Tensor, eps: Tensor | None = None) -> Tensor:
        """``log q(z)`` per row; given ``eps``, the noise that drew ``z`` (:meth:`draw`),
        ``(z − loc)² / σ²`` is taken as ``eps²``, exact at any ``σ`` (module docstring)."""
        if eps is not None:
            var_term = eps.pow(2)
        else:  # z at loc has 0, also where 1/σ overflows (log σ² < −177 in float32); d/σ
            # squared after the division, as d² underflows long before (d/σ)² does
            d = z - self.loc
            var_term = torch.where(d == 0, 0.0, (d * torch.exp(-0.5 * self.logvar)).pow(2))
        return -0.5 * (var_term + self.logvar + LOG_2PI).sum(-1)

    def kl_to(self, prior: Prior, z: Tensor | None = None, eps: Tensor | None = None
              ) -> Tensor:
        """``KL(q ‖ prior)`` per row: the prior's closed form, else the Monte-Carlo estimate
        ``mean_s [log q(z_s) − log p(z_s)]`` over draws ``z (S, ...)`` (required then;
        ``eps``, their noise from :meth:`draw`, makes ``log q`` exact)."""
        closed = prior.kl(self)
        if closed is not None:
            return closed
        if z is None:
            raise ValueError("this prior has no closed-form KL: pass draws z to estimate it")
        return (self.log_prob(z, eps) - prior.log_prob(z)).mean(0)

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

    def draw(self, sample_shape: tuple[int, ...] = (), eps: Tensor | None = None,
             generator: torch.Generator | None = None) -> tuple[Tensor, None]:
        """``(loc expanded, None)``: no noise."""
        return self.rsample(sample_shape), None

    def kl_to(self, prior: Prior, z: Tensor | None = None, eps: Tensor | None = None
              ) -> Tensor:
        """No KL term: a point code is not a distribution over latents."""
        return self.loc.new_zeros(self.loc.shape[:-1])
