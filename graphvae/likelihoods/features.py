"""Node-feature likelihoods: Gaussian, Bernoulli and categorical.

Each returns the log-probability summed over the last (feature) dimension,
so a ``(n, d)`` table gives ``(n,)`` per-node values in nats.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

_LOG_2PI = math.log(2 * math.pi)
#: A learned Gaussian log-variance is floored here (variance e^-7 ≈ 9e-4): unfloored, a
#: feature column the mean fits exactly (a constant one) drives it, and the density with
#: it, to infinity, and that column's term outgrows the rest of the bound.
MIN_LOGVAR = -7.0


def _same_width(x: Tensor, params: Tensor) -> None:
    """``x`` and the parameters must have the same last (feature) width: an ``(n, 1)``
    column broadcast over ``(n, d)`` parameters was scored as ``d`` copies of itself."""
    if x.dim() == 0 or params.dim() == 0 or x.size(-1) != params.size(-1):
        raise ValueError(f"x must end in the parameters' feature width, got shape "
                         f"{tuple(x.shape)} against parameters of shape "
                         f"{tuple(params.shape)}")


def gaussian_log_prob(x: Tensor, mean: Tensor, logvar: Tensor | float) -> Tensor:
    """``Σ_k log N(x_k | mean_k, exp(logvar_k))``; ``logvar`` learned (tensor) or fixed (float)."""
    _same_width(x, mean)
    logvar_t = torch.as_tensor(logvar, dtype=mean.dtype, device=mean.device)
    lp = -0.5 * (_LOG_2PI + logvar_t + (x - mean).pow(2) * torch.exp(-logvar_t))
    return lp.sum(-1)


def bernoulli_log_prob(x: Tensor, logits: Tensor) -> Tensor:
    """``Σ_k [x_k log σ(l_k) + (1 - x_k) log σ(-l_k)]`` for 0/1 (or fractional) ``x``.

    Computed as ``Σ_k (x_k l_k − softplus(l_k))`` (the identity
    ``binary_cross_entropy_with_logits`` uses, term by term: summing the two parts first
    and subtracting them loses everything at large logits, 0 instead of −0.127 for
    logits (10⁸, −2)): with many samples of ``logits`` per row of ``x`` this is several
    times faster than the elementwise BCE on an expanded ``x``, which matters for
    5000-sample ``log p(x)`` estimates.

    Infinite logits give the limits: 0 for a certain, right decision (``l = +inf`` with
    ``x = 1``, ``l = -inf`` with ``x = 0``) and ``-inf`` otherwise (the terms were
    ``inf - inf``, NaN). Only a sum that came out NaN is recomputed that way, so finite
    logits pay one check of the summed values.
    """
    _same_width(x, logits)
    out = (x * logits - F.softplus(logits)).sum(-1)
    if not torch.isnan(out).any():
        return out
    big = torch.finfo(logits.dtype).max
    finite = logits.clamp(-big, big)         # NaN logits stay NaN
    terms = x * finite - F.softplus(finite)
    wrong = torch.isinf(logits) & (x != (logits > 0).to(x.dtype))
    return terms.masked_fill(wrong, -math.inf).sum(-1)


def categorical_log_prob(x: Tensor, logits: Tensor) -> Tensor:
    """``log softmax(logits)[class]`` with ``x`` one-hot (floating, ``C`` wide, broadcasting
    to the logits' shape ``(..., C)``) or integer class indices of a shape that broadcasts
    to ``(...)``.

    Anything else is refused in one line: an ``(n, 1)`` column of indices against ``(n, C)``
    logits was read as one-hot and gave wrong numbers."""
    logp = F.log_softmax(logits, dim=-1)
    if x.is_floating_point() and x.dim() and x.size(-1) == logits.size(-1):
        try:                                    # one-hot, broadcast over leading dimensions
            if torch.broadcast_shapes(x.shape, logits.shape) == logits.shape:
                return (x * logp).sum(-1)
        except RuntimeError:
            pass
    batch = logits.shape[:-1]
    fits = not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool
    try:
        fits = fits and torch.broadcast_shapes(x.shape, batch) == batch
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"x must be one-hot of the logits' shape {tuple(logits.shape)} or "
                         f"integer class indices of shape {tuple(batch)}, got "
                         f"{x.dtype} of shape {tuple(x.shape)}")
    return logp.gather(-1, x.long().expand(batch).unsqueeze(-1)).squeeze(-1)


FEATURE_LIKELIHOODS: dict[str, Callable[..., Tensor]] = {
    "gaussian": gaussian_log_prob,
    "bernoulli": bernoulli_log_prob,
    "categorical": categorical_log_prob,
}
