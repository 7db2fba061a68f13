"""GNN feature decoder ``p(X | A, Z) = Π_i p(X_i | θ_i)``, ``θ = Readout(GNN_θ(Z, A))``.

For Gaussian features ``θ_i = (μ̃_i, log σ̃_i²)`` (the variance learned per
node and feature, floored at ``e^MIN_LOGVAR``, or one fixed value); for Bernoulli /
categorical features ``θ_i`` are logits. The decoder is equivariant in the nodes.

Args:
    latent_channels: ``k``.
    out_channels: feature dimension ``d``.
    hidden_channels: widths of the GNN layers (default ``(32,)``).
    conv: message-passing kind (as for the encoders).
    likelihood: ``"gaussian"``, ``"bernoulli"`` or ``"categorical"``.
    learn_variance: Gaussian only: learned ``log σ̃²`` (else ``fixed_logvar``).

Shapes:
    ``z (n, k)`` or ``(S, n, k)`` → parameters ``(.., n, d)``; ``log_prob`` → ``(.., n)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphvae.adjacency import Adjacency
from graphvae.checks import check_width_list, check_widths
from graphvae.encoders.gnn import CONVS, check_conv
from graphvae.likelihoods.features import FEATURE_LIKELIHOODS, MIN_LOGVAR, gaussian_log_prob


class GNNFeatureDecoder(nn.Module):
    """Node-feature decoder (see the module docstring)."""

    def __init__(self, latent_channels: int, out_channels: int,
                 hidden_channels: Sequence[int] = (32,), conv: str = "gcn",
                 likelihood: str = "gaussian", learn_variance: bool = True,
                 fixed_logvar: float = 0.0):
        super().__init__()
        if likelihood not in FEATURE_LIKELIHOODS:
            raise ValueError(f"unknown feature likelihood {likelihood!r}; "
                             f"choose one of {sorted(FEATURE_LIKELIHOODS)}")
        check_conv(conv)
        check_widths("latent_channels", latent_channels)
        check_width_list("hidden_channels", hidden_channels, allow_empty=True)
        check_widths("out_channels", out_channels)
        dims = [latent_channels, *hidden_channels]
        self.layers = nn.ModuleList(CONVS[conv](a, b) for a, b in zip(dims, dims[1:]))
        self.two_params = likelihood == "gaussian" and learn_variance
        self.readout = nn.Linear(dims[-1], out_channels * (2 if self.two_params else 1))
        self.likelihood = likelihood
        self.out_channels = out_channels
        self.fixed_logvar = fixed_logvar

    def _one(self, z: Tensor, adj: Adjacency) -> Tensor:
        h = z
        for layer in self.layers:
            h = F.relu(layer(h, adj))                                   # (n, hidden)
        return self.readout(h)                                          # (n, d or 2d)

    def forward(self, z: Tensor, adj: Adjacency) -> tuple[Tensor, Tensor | float]:
        """``(mean, logvar)`` for Gaussian features with a learned variance; otherwise
        ``(mean or logits, fixed_logvar)`` (0.0 unless set)."""
        out = self._one(z, adj) if z.dim() == 2 else torch.stack([self._one(s, adj) for s in z])
        if self.two_params:
            mean, logvar = out.split(self.out_channels, dim=-1)
            return mean, logvar.clamp(min=MIN_LOGVAR)
        return out, self.fixed_logvar

    def log_prob(self, x: Tensor, z: Tensor, adj: Adjacency) -> Tensor:
        """``log p(X_i | A, Z)`` per node, shape ``z.shape[:-1]``."""
        params, logvar = self(z, adj)
        if self.likelihood == "gaussian":
            return gaussian_log_prob(x, params, logvar)
        return FEATURE_LIKELIHOODS[self.likelihood](x, params)
