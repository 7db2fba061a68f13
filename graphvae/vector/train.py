"""Minibatch training for :class:`~graphvae.vector.models.VectorAutoencoder` (no PyG).

Adam on the bound's surrogate, shuffled minibatches, a progress bar, the
validation bound after every epoch, early stopping on it with the best weights
restored, and an optional checkpoint written atomically.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from graphvae.io import save_atomic
from graphvae.vector.models import VectorAutoencoder, VectorConfig


@dataclass
class VectorFitResult:
    """Per-epoch training and validation bounds (mean nats per row), best epoch, seconds."""

    train_bound: list[float] = field(default_factory=list)
    valid_bound: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_valid: float = -math.inf
    seconds: float = 0.0


@torch.no_grad()
def evaluate_bound(model: VectorAutoencoder, x: Tensor, objective: str = "elbo",
                   num_samples: int = 1, batch_size: int = 1000, seed: int = 0) -> float:
    """Mean bound per row of ``x`` (no corruption), with a fixed seed so epochs compare."""
    was = model.training
    model.eval()
    g = torch.Generator(device=x.device).manual_seed(seed)
    total = 0.0
    for i in range(0, x.size(0), batch_size):
        xb = x[i:i + batch_size]
        total += float(model.bound(xb, objective, num_samples, generator=g).value.sum())
    model.train(was)
    return total / x.size(0)


def fit_vector(model: VectorAutoencoder, train: Tensor, valid: Tensor | None = None, *,
               objective: str = "elbo", num_samples: int = 1, epochs: int = 100,
               batch_size: int = 100, lr: float = 1e-3, patience: int | None = None,
               seed: int = 0, progress: bool = True, checkpoint: str | os.PathLike | None = None,
               extra: dict[str, Any] | None = None) -> VectorFitResult:
    """Train ``model`` to maximise the bound on ``train``; select on ``valid`` if given.

    Args:
        objective, num_samples: ``"elbo"`` with S draws or ``"iwae"`` with K samples.
        patience: stop when the validation bound has not improved for this many
            epochs (``None``: run all epochs). The best weights are restored.
        checkpoint: write ``{"config", "state_dict", "result", **extra}`` there
            (atomically) after training.
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, "
                         f"{batch_size}, {lr}")
    if train.dim() != 2 or train.size(1) != model.config.in_dim:
        raise ValueError(f"training data must be (n, {model.config.in_dim}), got "
                         f"{tuple(train.shape)}")
    dtype = next(model.parameters()).dtype
    train = train.to(dtype)
    valid = valid.to(dtype) if valid is not None else None
    torch.manual_seed(seed)
    g = torch.Generator(device=train.device).manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    res = VectorFitResult()
    best_state = None
    stale = 0
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), disable=not progress, desc=f"{objective} training",
               leave=False)
    for epoch in bar:
        model.train()
        perm = torch.randperm(train.size(0), generator=g, device=train.device)
        total = 0.0
        for i in range(0, train.size(0), batch_size):
            xb = train[perm[i:i + batch_size]]
            est = model.training_bound(xb, objective, num_samples, generator=g)
            opt.zero_grad(set_to_none=True)
            est.surrogate.backward()
            opt.step()
            total += float(est.value.detach().sum())
        res.train_bound.append(total / train.size(0))
        if valid is not None:
            v = evaluate_bound(model, valid, objective, num_samples, seed=seed)
            res.valid_bound.append(v)
            if v > res.best_valid:
                res.best_valid, res.best_epoch, stale = v, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            bar.set_postfix(train=f"{res.train_bound[-1]:.2f}", valid=f"{v:.2f}")
            if patience is not None and stale >= patience:
                break
        else:
            res.best_epoch, res.best_valid = epoch, res.train_bound[-1]
            bar.set_postfix(train=f"{res.train_bound[-1]:.2f}")
        if not math.isfinite(res.train_bound[-1]):
            raise RuntimeError(f"training diverged at epoch {epoch} (bound "
                               f"{res.train_bound[-1]}); lower the learning rate")
    if best_state is not None:
        model.load_state_dict(best_state)
    res.seconds = time.perf_counter() - start
    if checkpoint is not None:
        save_checkpoint(model, checkpoint, result=res.__dict__, **(extra or {}))
    return res


def save_checkpoint(model: VectorAutoencoder, path: str | os.PathLike, **extra: Any) -> None:
    save_atomic({"task": "vector", "config": model.config.to_dict(),
                 "state_dict": model.state_dict(), **extra}, path)


def load_vector_model(path: str | os.PathLike,
                      map_location: str | torch.device = "cpu") -> VectorAutoencoder:
    """Rebuild a model from a checkpoint written by :func:`fit_vector` / :func:`save_checkpoint`."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {path}: {err}") from None
    if not isinstance(ckpt, dict) or ckpt.get("task") != "vector" or "config" not in ckpt:
        raise ValueError(f"{path} is not a graphvae vector-model checkpoint")
    model = VectorAutoencoder(VectorConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model
