"""Autoencoders for vector data, on the same likelihoods, bounds and training loop as the
graph models.

Imports no torch-geometric. ``pca`` / ``LinearAE`` (linear.py), deep / denoising /
variational / importance-weighted autoencoders (models.py), their training through
:func:`graphvae.training.fit` (train.py) and the data sets (data.py).
"""

from graphvae.vector.data import (
    VECTOR_DATASETS,
    VectorData,
    check_matrix,
    load_digits,
    load_matrix,
    load_mnist,
    load_vector_data,
)
from graphvae.vector.linear import LinearAE, PCAResult, pca, train_linear_ae
from graphvae.vector.models import (
    VECTOR_MODELS,
    Corruption,
    VectorAutoencoder,
    VectorConfig,
    build_vector_model,
)
from graphvae.vector.train import (
    estimate_nll,
    evaluate_bound,
    load_vector_model,
    refine_encoder,
    save_checkpoint,
    train_vector,
)

__all__ = [
    "VECTOR_DATASETS",
    "VECTOR_MODELS",
    "Corruption",
    "LinearAE",
    "PCAResult",
    "VectorAutoencoder",
    "VectorConfig",
    "VectorData",
    "build_vector_model",
    "check_matrix",
    "estimate_nll",
    "evaluate_bound",
    "load_digits",
    "load_matrix",
    "load_mnist",
    "load_vector_data",
    "load_vector_model",
    "pca",
    "refine_encoder",
    "save_checkpoint",
    "train_linear_ae",
    "train_vector",
]
