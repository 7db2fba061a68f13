"""One training loop for every model: Adam, progress bar, validation-based early
stopping with the best weights restored, atomic checkpoints, CPU or CUDA."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from graphvae.io import save_atomic
from graphvae.models import ModelOutput


@dataclass
class FitResult:
    """What :func:`fit` did: epochs run, best validation epoch and score, timings, history."""

    epochs: int
    best_epoch: int
    best_score: float
    seconds: float
    epoch_seconds: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)


def fit(model: nn.Module, step: Callable[[], ModelOutput], *, epochs: int, lr: float = 0.01,
        evaluate: Callable[[], dict[str, float]] | None = None, patience: int | None = None,
        weight_decay: float = 0.0, checkpoint: str | Path | None = None,
        checkpoint_extra: dict[str, Any] | None = None, progress: bool = True,
        desc: str = "train") -> FitResult:
    """Train ``model`` by minimising ``step().loss`` with Adam.

    Args:
        step: computes the model's :class:`~graphvae.models.ModelOutput` on the training data.
        epochs: maximum number of optimisation steps (full-graph epochs).
        evaluate: returns validation metrics including ``"score"`` (higher is better);
            called after every epoch in eval mode without gradients. The weights of the
            best-scoring epoch are restored at the end.
        patience: stop after this many epochs without a better score (``None``: never).
        checkpoint: where to write ``{"state_dict", "epoch", **checkpoint_extra}``
            atomically at the end.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best, best_epoch, best_state = -math.inf, 0, None
    history: list[dict[str, float]] = []
    times: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False,
               mininterval=0.5)
    epoch = 0
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        opt.zero_grad(set_to_none=True)
        out = step()
        if not torch.isfinite(out.loss):
            raise FloatingPointError(f"training diverged: loss is {out.loss.item()} at epoch "
                                     f"{epoch}; try a lower learning rate")
        out.loss.backward()
        opt.step()
        row = {"epoch": float(epoch), "loss": out.loss.item(), "bound": out.bound.item()}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update(evaluate())
            if row["score"] > best:
                best, best_epoch = row["score"], epoch
                best_state = copy.deepcopy(model.state_dict())
            elif patience is not None and epoch - best_epoch >= patience:
                times.append(time.perf_counter() - t0)
                history.append(row)
                break
        times.append(time.perf_counter() - t0)
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False,
                        **({"val": f"{row['score']:.4f}"} if "score" in row else {}))
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = epoch
    if checkpoint is not None:
        save_atomic({"state_dict": model.state_dict(), "epoch": best_epoch,
                     **(checkpoint_extra or {})}, checkpoint)
    return FitResult(epoch, best_epoch, best, time.perf_counter() - start, times, history)
