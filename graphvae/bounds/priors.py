"""Priors over latents ``p(z)``: the seam where a learned prior goes.

A prior is a small :class:`torch.nn.Module` (so that a learned one trains and moves
with its model, and the standard normal adds nothing to a state dict) with

* ``log_prob(z)``: ``log p(z)`` summed over the last dimension (one value per row);
* ``sample(shape, generator)``: draws of shape ``shape`` (the last entry is the latent
  width);
* ``kl(q)``: ``KL(q ‖ p)`` per row in closed form, or ``None`` when there is none —
  the bounds then use the Monte-Carlo estimate ``E_q[log q(z) − log p(z)]`` on their
  own draws of ``z`` (:meth:`graphvae.bounds.DiagGaussian.kl_to`), and say so.

Models own their prior (``model.prior``) and hand it to the bounds. The standard
normal ``N(0, I)`` is :class:`StandardNormal`, written here once: ``log N(z | 0, I) =
−½ Σ_j (z_j² + log 2π)`` and, for ``q = N(μ, diag σ²)``, ``KL(q ‖ N(0, I)) = ½ Σ_j
(μ_j² + σ_j² − 1 − log σ_j²)`` (Kingma & Welling, ICLR 2014, appendix B).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

LOG_2PI = math.log(2 * math.pi)


class Prior(nn.Module):
    """Interface of a prior over latent rows (see the module docstring)."""

    def log_prob(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None, device: torch.device | str | None = None
               ) -> Tensor:
        raise NotImplementedError

    def kl(self, q: Any) -> Tensor | None:
        """Closed-form ``KL(q ‖ p)`` per row, or ``None`` (the bounds estimate it)."""
        return None


class StandardNormal(Prior):
    """``p(z) = N(0, I)``, the default prior of every model."""

    def log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)

    def sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None, device: torch.device | str | None = None
               ) -> Tensor:
        """Drawn on the generator's device (the CPU without one) and moved to ``device``, so
        a CPU generator gives the same draws whatever the model's device."""
        where = generator.device if generator is not None else None
        z = torch.randn(tuple(shape), generator=generator, dtype=dtype, device=where)
        return z if device is None else z.to(device)

    def kl(self, q: Any) -> Tensor | None:
        loc, logvar = getattr(q, "loc", None), getattr(q, "logvar", None)
        if loc is None or logvar is None:
            return None
        return 0.5 * (loc.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
