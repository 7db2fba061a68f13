"""Autoencoders for vector data, on the same likelihoods and bounds as the graph models.

Imports no torch-geometric. ``pca`` / ``LinearAE`` (linear.py), deep / denoising /
variational / importance-weighted autoencoders (models.py), minibatch training
(train.py) and the data sets (data.py).
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
from graphvae.vector.models import (
    VECTOR_MODELS,
    Corruption,
    VectorAutoencoder,
    VectorConfig,
    build_vector_model,
)
from graphvae.vector.train import (
    VectorFitResult,
    estimate_nll,
    evaluate_bound,
    fit_vector,
    load_vector_model,
    refine_encoder,
    save_checkpoint,
)

__all__ = [
    "VECTOR_DATASETS",
    "VECTOR_MODELS",
    "Corruption",
    "VectorAutoencoder",
    "VectorConfig",
    "VectorData",
    "VectorFitResult",
    "build_vector_model",
    "check_matrix",
    "estimate_nll",
    "evaluate_bound",
    "fit_vector",
    "load_digits",
    "load_matrix",
    "load_mnist",
    "load_vector_data",
    "load_vector_model",
    "refine_encoder",
    "save_checkpoint",
]
