"""Training: the one loop (:func:`fit`), its loaders and its callbacks.

See :mod:`graphvae.training.loop` for what the loop does and keeps in its checkpoints, and
:mod:`graphvae.training.state` for writing and resuming them.
"""

from graphvae.training.callbacks import (
    EMA,
    Callback,
    Converged,
    EarlyStopping,
    FitState,
    GradientHook,
    KLWarmup,
    PlateauDecay,
    unwrap,
)
from graphvae.training.loaders import FullBatch, PairBatches, Shuffled
from graphvae.training.loop import FitResult, fit, is_main_process

__all__ = ["EMA", "Callback", "Converged", "EarlyStopping", "FitResult", "FitState",
           "FullBatch", "GradientHook", "KLWarmup", "PairBatches", "PlateauDecay", "Shuffled",
           "fit", "is_main_process", "unwrap"]
