"""Graph autoencoder models sharing one output record (:class:`ModelOutput`)."""

from graphvae.models.autoencoders import (
    MODELS,
    EdgeObjective,
    GraphAutoencoder,
    ModelOutput,
    build_model,
)

__all__ = ["MODELS", "EdgeObjective", "GraphAutoencoder", "ModelOutput", "build_model"]
