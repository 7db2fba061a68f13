"""Callbacks of :func:`graphvae.training.fit`, and the state they share with the loop.

:class:`FitState` is what the loop and its callbacks see: the model, the optimiser, the
epoch, the best evaluation so far, and ``stop``. A :class:`Callback` has hooks around the
step, the evaluation and the epoch, and a ``state_dict`` that the loop's checkpoints
keep, so that a resumed run continues each callback where it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from graphvae.checks import check_count


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) \
        else model


@dataclass
class FitState:
    """What the loop and its callbacks share; callbacks may set ``stop``."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    callbacks: Sequence[Callback]
    epoch: int = 0
    batch_index: int = 0
    num_batches: int | None = None
    fraction: float = 0.0               # share of the epoch's items before this batch
    stop: bool = False
    best_score: float = -math.inf
    best_epoch: int = 0
    best_state: dict[str, Any] | None = None
    stale: int = 0                      # evaluations since the best one
    row: dict[str, float] = field(default_factory=dict)
    restored_best: bool = False         # the loop ended by loading best_state

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def restore_best(self) -> None:
        """Load the best weights so far (callbacks hear of it through ``on_restore``)."""
        if self.best_state is not None:
            unwrap(self.model).load_state_dict(self.best_state)
            for cb in self.callbacks:
                cb.on_restore(self)


class Callback:
    """Hooks of :func:`fit`; each returns nothing and may change ``state``."""

    def on_step_start(self, state: FitState) -> None: ...
    def on_after_backward(self, state: FitState) -> None: ...
    def on_step_end(self, state: FitState) -> None: ...
    def on_evaluate_start(self, state: FitState) -> None: ...
    def on_evaluate_end(self, state: FitState) -> None: ...
    def on_validation(self, state: FitState) -> None: ...
    def on_epoch_end(self, state: FitState) -> None: ...
    def on_restore(self, state: FitState) -> None: ...
    def on_fit_end(self, state: FitState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class EarlyStopping(Callback):
    """Stop at the first evaluation that is not better than the best, once ``patience``
    epochs or more have passed since the best (epochs, not evaluations: with
    ``eval_every`` 10 and patience 2, a run stops at the first evaluation 10 epochs after
    its best; patience 0 stops at the first evaluation that does not improve)."""

    def __init__(self, patience: int):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience = patience

    def on_validation(self, state: FitState) -> None:
        if state.stale > 0 and state.epoch - state.best_epoch >= self.patience:
            state.stop = True


class PlateauDecay(Callback):
    """After ``patience`` evaluations without improvement, multiply the learning rate of
    every parameter group by ``factor`` (their ratios kept) and go back to the best
    weights; stop once the first group's rate (the one ``fit`` reports) would fall below
    ``min_lr``."""

    def __init__(self, factor: float, patience: int = 10, min_lr: float = 1e-5):
        if not (0 < factor < 1 and patience >= 1 and min_lr > 0):
            raise ValueError(f"PlateauDecay needs a factor (lr_decay) in (0, 1), a patience "
                             f"(decay_patience) >= 1 and min_lr > 0, got {factor}, "
                             f"{patience}, {min_lr}")
        self.factor, self.patience, self.min_lr = factor, patience, min_lr

    def on_validation(self, state: FitState) -> None:
        if state.stop or state.stale < self.patience:
            return
        new_lr = state.lr * self.factor
        if new_lr < self.min_lr * (1 - 1e-9):
            state.stop = True
            return
        for group in state.optimizer.param_groups:
            group["lr"] = group["lr"] * self.factor
        state.restore_best()
        state.stale = 0


class EMA(Callback):
    """Polyak averaging: ``avg ← decay · avg + (1 − decay) · w`` after every step, over the
    trainable parameters. Evaluation and selection see the average; the final model is
    the best average when the loop restores the best weights, else the last average."""

    def __init__(self, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA needs a decay (ema) in (0, 1), got {decay}")
        self.decay = decay
        self.avg: list[torch.Tensor] | None = None
        self._live: list[torch.Tensor] | None = None

    def _params(self, state: FitState) -> list[nn.Parameter]:
        return [p for p in unwrap(state.model).parameters() if p.requires_grad]

    def on_step_start(self, state: FitState) -> None:
        if self.avg is None:  # the average starts from the initial weights
            self.avg = [p.detach().clone() for p in self._params(state)]

    def on_step_end(self, state: FitState) -> None:
        assert self.avg is not None
        with torch.no_grad():
            for a, p in zip(self.avg, self._params(state)):
                a.lerp_(p, 1 - self.decay)

    @torch.no_grad()
    def _swap(self, state: FitState, values: list[torch.Tensor]) -> list[torch.Tensor]:
        params = self._params(state)
        old = [p.detach().clone() for p in params]
        for p, v in zip(params, values):
            p.copy_(v)
        return old

    def on_evaluate_start(self, state: FitState) -> None:
        if self.avg is not None:
            self._live = self._swap(state, self.avg)

    def on_evaluate_end(self, state: FitState) -> None:
        if self._live is not None:
            self._swap(state, self._live)
            self._live = None

    def on_restore(self, state: FitState) -> None:
        self.avg = [p.detach().clone() for p in self._params(state)]

    def on_fit_end(self, state: FitState) -> None:
        if not state.restored_best and self.avg is not None:
            self._swap(state, self.avg)

    def state_dict(self) -> dict[str, Any]:
        return {"avg": self.avg}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.avg = state["avg"]


class KLWarmup(Callback):
    """Weight the KL term by ``weight · min(1, t / epochs)`` over the first ``epochs`` epochs
    (``t`` counting steps in epochs; Bowman et al. 2016; Sønderby et al. 2016) and by
    ``weight`` after them (``epochs = 0``: from the start), through the model's
    ``kl_weight`` attribute; ``weight < 1`` is a β-VAE objective (Higgins et al., ICLR 2017).
    The reported bound is always the true one, and the weight goes back to 1 at the end."""

    def __init__(self, epochs: int, weight: float = 1.0):
        if epochs < 0:
            raise ValueError(f"kl_warmup must be >= 0 epochs, got {epochs}")
        if not 0 < weight <= 1:
            raise ValueError(f"the KL weight must lie in (0, 1], got {weight}")
        self.epochs, self.weight = epochs, weight

    def on_step_start(self, state: FitState) -> None:
        model: Any = unwrap(state.model)
        ramp = min(1.0, (state.epoch - 1 + state.fraction) / self.epochs) if self.epochs else 1.0
        model.kl_weight = self.weight * ramp

    def on_fit_end(self, state: FitState) -> None:
        model: Any = unwrap(state.model)
        model.kl_weight = 1.0


class GradientHook(Callback):
    """Call ``hook(model)`` between backward and the optimiser step (gradient surgery)."""

    def __init__(self, hook: Callable[[nn.Module], None]):
        self.hook = hook

    def on_after_backward(self, state: FitState) -> None:
        self.hook(unwrap(state.model))


class Converged(Callback):
    """Stop when the training loss, read at epoch 1 and every ``every`` epochs (one
    epoch's loss each time, kept in ``losses``), changes by at most ``tol`` (relative to
    the newer) between two readings after the first; ``tol = 0`` never stops (the linear
    autoencoder's default: its steps run out)."""

    def __init__(self, tol: float, every: int = 100):
        if not (isinstance(tol, (int, float)) and 0 <= tol < math.inf):
            raise ValueError(f"Converged needs a finite tol >= 0, got {tol!r}")
        check_count("every", every)
        self.tol, self.every = tol, every
        self.losses: list[float] = []

    def on_epoch_end(self, state: FitState) -> None:
        if state.epoch % self.every and state.epoch != 1:
            return
        self.losses.append(state.row["loss"])
        if self.tol > 0 and len(self.losses) > 2 and \
                abs(self.losses[-2] - self.losses[-1]) <= self.tol * abs(self.losses[-1]):
            state.stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"losses": self.losses}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses = list(state["losses"])


