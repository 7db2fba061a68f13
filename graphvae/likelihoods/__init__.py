"""Log-likelihoods on logits, in plain torch (no torch-geometric import).

Each function returns log-probabilities in nats. Edge likelihoods return a
:class:`LogLik` pair: ``value`` (the log-likelihood, or an unbiased estimate of
it) and ``weighted`` (the same sum with the positive re-weighting a training
objective may use; equal to ``value`` when ``pos_weight == 1``).
"""

from graphvae.likelihoods.edges import (
    LogLik,
    balanced_weights,
    bernoulli_edges_dense,
    bernoulli_edges_dense_rows,
    bernoulli_edges_sampled,
    contains_sorted,
    draw_non_edges,
    sample_non_edges,
)
from graphvae.likelihoods.features import (
    FEATURE_LIKELIHOODS,
    MIN_LOGVAR,
    bernoulli_log_prob,
    categorical_log_prob,
    gaussian_log_prob,
)

__all__ = [
    "FEATURE_LIKELIHOODS",
    "MIN_LOGVAR",
    "LogLik",
    "balanced_weights",
    "bernoulli_edges_dense",
    "bernoulli_edges_dense_rows",
    "bernoulli_edges_sampled",
    "bernoulli_log_prob",
    "categorical_log_prob",
    "contains_sorted",
    "draw_non_edges",
    "gaussian_log_prob",
    "sample_non_edges",
]
