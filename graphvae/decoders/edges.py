"""Inner-product edge decoders ``p(A_ij = 1 | Z) = σ(H_iᵀ H_j)``.

``H = Z`` for the plain inner product of Kipf & Welling (2016); ``H = MLP(Z)``
for the MLP inner product (``../shared/DESIGN.md`` §2). Both are equivariant:
relabelling the rows of ``Z`` relabels the logits the same way.

Shapes:
    ``z (..., n, k)``; ``edge_index (2, E)`` → ``(..., E)``; ``forward_all`` → ``(..., n, n)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class InnerProductDecoder(nn.Module):
    """Edge logits ``l_ij = z_iᵀ z_j``."""

    def embed(self, z: Tensor) -> Tensor:
        return z

    def forward(self, z: Tensor, edge_index: Tensor) -> Tensor:
        h = self.embed(z)                                               # (..., n, k)
        return (h[..., edge_index[0], :] * h[..., edge_index[1], :]).sum(-1)  # (..., E)

    def forward_all(self, z: Tensor) -> Tensor:
        h = self.embed(z)
        return h @ h.transpose(-1, -2)                                  # (..., n, n)


class MLPInnerProductDecoder(InnerProductDecoder):
    """Edge logits ``l_ij = H_iᵀ H_j`` with ``H = MLP(Z)``.

    Args:
        latent_channels: ``k``.
        hidden_channels: widths of the MLP's hidden layers (ReLU), default ``(32,)``.
        out_channels: width of ``H`` (default 16).
    """

    def __init__(self, latent_channels: int, hidden_channels: Sequence[int] = (32,),
                 out_channels: int = 16):
        super().__init__()
        dims = [latent_channels, *hidden_channels, out_channels]
        layers: list[nn.Module] = []
        for a, b in zip(dims, dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*layers[:-1])

    def embed(self, z: Tensor) -> Tensor:
        return self.mlp(z)


EDGE_DECODERS = {"inner": InnerProductDecoder, "mlp": MLPInnerProductDecoder}
