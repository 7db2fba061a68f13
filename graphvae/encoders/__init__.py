"""GNN encoders ``q_φ(Z | X, A) = Π_i N(Z_i | μ_i, diag σ_i²)`` (or a point code for GAE).

``ENCODERS`` maps a name to a constructor taking ``(in_channels,
hidden_channels, latent_channels, variational, dropout)``.
"""

from graphvae.encoders.gnn import (
    ENCODERS,
    GCNLayer,
    GNAEEncoder,
    GNNEncoder,
    build_encoder,
)

__all__ = ["ENCODERS", "GCNLayer", "GNAEEncoder", "GNNEncoder", "build_encoder"]
