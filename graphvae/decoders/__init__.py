"""Decoders: edge logits from latents, and node-feature distribution parameters.

Edge decoders return logits, never probabilities: ``forward(z, edge_index) ->
(E,)`` for given pairs, ``forward_all(z) -> (n, n)`` for all pairs.
"""

from graphvae.decoders.edges import (
    EDGE_DECODERS,
    CosineBiasDecoder,
    InnerProductDecoder,
    MLPInnerProductDecoder,
    VMFBiasDecoder,
)
from graphvae.decoders.features import GNNFeatureDecoder

__all__ = [
    "EDGE_DECODERS",
    "CosineBiasDecoder",
    "GNNFeatureDecoder",
    "InnerProductDecoder",
    "MLPInnerProductDecoder",
    "VMFBiasDecoder",
]
