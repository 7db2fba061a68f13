"""The one training loop of the package: :func:`fit`, over batches, for every model.

``fit(model, batches, optimizer, epochs=..., evaluate=..., callbacks=[...])`` runs
epochs of ``model(batch, generator=g)`` (the model protocol: a
:class:`~graphvae.bounds.BoundEstimate` whose ``surrogate`` is the loss and whose
``value`` is the bound in nats), backward, optimiser step. Full-batch training is a
loader of one batch (:class:`FullBatch`); minibatches come from :class:`Shuffled`,
which draws each epoch's order from the loop's generator.

* **Selection.** ``evaluate()`` (every ``eval_every`` epochs and after the last) returns
  metrics with a ``"score"``, higher is better; the best-scoring weights are kept and
  restored at the end (``restore_best``).
* **Callbacks** (:class:`Callback`): :class:`EarlyStopping`, :class:`PlateauDecay`
  (cut the learning rate after a validation plateau, back to the best weights),
  :class:`EMA` (Polyak averaging; evaluation and selection see the average),
  :class:`KLWarmup`, :class:`GradientHook` (e.g. the linear AE's rotation), and
  :class:`Converged` (stop when the training loss settles). ``autocast=torch.bfloat16``
  runs the steps' products in bfloat16.
* **Checkpoints.** With ``checkpoint=PATH`` the loop writes, atomically, every
  ``checkpoint_every`` epochs and when it stops: the model, the optimiser (with its
  learning rate), every callback's state, the generator's and torch's RNG states, the
  epoch, the best weights so far, the history and ``config``. ``resume=True`` continues
  from that file to the same result, on the same seed, as a run never interrupted
  (``tests/test_training.py`` kills and resumes each job). A checkpoint of another
  ``config`` is refused.
* **Processes.** Under ``torch.distributed`` only rank 0 writes checkpoints or draws the
  progress bar.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from graphvae.errors import DataError
from graphvae.io import save_atomic


def is_main_process() -> bool:
    """Rank 0 under ``torch.distributed``, or the only process."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) \
        else model


# ------------------------------------------------------------------------------ loaders
class FullBatch:
    """The same one batch every epoch (full-batch training)."""

    def __init__(self, batch: Any):
        self.batch = batch

    def batches(self, epoch: int, generator: torch.Generator | None) -> Iterable[Any]:
        return [self.batch]


class Shuffled:
    """Minibatches of ``items`` (a tensor's rows or a list) in an order drawn each epoch
    from the loop's generator; ``collate`` turns a list of items into a batch."""

    def __init__(self, items: Any, batch_size: int, collate: Callable[[list], Any] | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.items, self.batch_size, self.collate = items, batch_size, collate

    def __len__(self) -> int:
        return math.ceil(len(self.items) / self.batch_size)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def batches(self, epoch: int, generator: torch.Generator | None) -> Iterable[Any]:
        n = len(self.items)
        if isinstance(self.items, torch.Tensor):
            dev = generator.device if generator is not None else self.items.device
            perm = torch.randperm(n, generator=generator, device=dev).to(self.items.device)
            for i in range(0, n, self.batch_size):
                yield self.items[perm[i:i + self.batch_size]]
            return
        order = torch.randperm(n, generator=generator).tolist()
        for i in range(0, n, self.batch_size):
            chunk = [self.items[j] for j in order[i:i + self.batch_size]]
            yield self.collate(chunk) if self.collate is not None else chunk


# ------------------------------------------------------------------------------ state
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
    """Stop after ``patience`` evaluations without a better score."""

    def __init__(self, patience: int):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience = patience

    def on_validation(self, state: FitState) -> None:
        if state.stale >= self.patience:
            state.stop = True


class PlateauDecay(Callback):
    """After ``patience`` evaluations without improvement, multiply the learning rate by
    ``factor`` and go back to the best weights; stop once it would fall below ``min_lr``."""

    def __init__(self, factor: float, patience: int = 10, min_lr: float = 1e-5):
        if not (0 < factor < 1 and patience >= 1 and min_lr > 0):
            raise ValueError(f"lr_decay must be in (0, 1), decay_patience >= 1 and min_lr > 0, "
                             f"got {factor}, {patience}, {min_lr}")
        self.factor, self.patience, self.min_lr = factor, patience, min_lr

    def on_validation(self, state: FitState) -> None:
        if state.stop or state.stale < self.patience:
            return
        new_lr = state.lr * self.factor
        if new_lr < self.min_lr * (1 - 1e-9):
            state.stop = True
            return
        for group in state.optimizer.param_groups:
            group["lr"] = new_lr
        state.restore_best()
        state.stale = 0


class EMA(Callback):
    """Polyak averaging: ``avg ← decay · avg + (1 − decay) · w`` after every step, over the
    trainable parameters. Evaluation and selection see the average; the final model is
    the best average (or, with no evaluation, the last one)."""

    def __init__(self, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"ema must be in (0, 1), got {decay}")
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
        if state.best_state is None and self.avg is not None:
            self._swap(state, self.avg)

    def state_dict(self) -> dict[str, Any]:
        return {"avg": self.avg}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.avg = state["avg"]


class KLWarmup(Callback):
    """Weight the KL term by ``min(1, t / epochs)`` over the first ``epochs`` epochs, ``t``
    counting steps in epochs (Bowman et al. 2016; Sønderby et al. 2016), through the
    model's ``kl_weight`` attribute. The reported bound is always the true one."""

    def __init__(self, epochs: int):
        if epochs < 1:
            raise ValueError(f"kl_warmup must be >= 1 epochs, got {epochs}")
        self.epochs = epochs

    def on_step_start(self, state: FitState) -> None:
        model: Any = unwrap(state.model)
        model.kl_weight = min(1.0, (state.epoch - 1 + state.fraction) / self.epochs)

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
    """Stop when the mean training loss of the last ``every`` epochs changes by at most
    ``tol`` (relative) from the previous ``every``; records it in ``losses`` (every
    ``every`` epochs, and the first)."""

    def __init__(self, tol: float, every: int = 100):
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


# ------------------------------------------------------------------------------ result
@dataclass
class FitResult:
    """What :func:`fit` did: epochs run, best evaluation, timings, one history row an epoch
    (``train_bound`` mean nats per item, ``loss`` mean per batch, ``lr``, evaluation
    metrics on evaluated epochs)."""

    epochs: int
    best_epoch: int
    best_score: float
    seconds: float
    epoch_seconds: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0

    def column(self, key: str) -> list[float]:
        return [row[key] for row in self.history if key in row]


# ------------------------------------------------------------------------------ the loop
def fit(model: nn.Module, batches: Any, optimizer: torch.optim.Optimizer, *, epochs: int,
        evaluate: Callable[[], dict[str, float]] | None = None, eval_every: int = 1,
        callbacks: Sequence[Callback] = (), restore_best: bool = True,
        generator: torch.Generator | None = None, autocast: torch.dtype | None = None,
        checkpoint: str | Path | None = None, checkpoint_every: int = 1,
        resume: bool = False, config: dict[str, Any] | None = None,
        progress: bool = True, desc: str = "train") -> FitResult:
    """Train ``model`` (see the module docstring); return a :class:`FitResult`.

    Args:
        batches: :class:`FullBatch`, :class:`Shuffled`, or anything with
            ``batches(epoch, generator)`` (or a plain re-iterable of batches).
        optimizer: over the parameters to train (``requires_grad`` ones).
        evaluate: validation metrics with ``"score"`` (higher is better), run in eval
            mode without gradients; ``None``: no selection, the last weights are kept.
        generator: passed to every ``model(batch, generator=...)`` and to the loader.
        checkpoint, checkpoint_every, resume, config: see the module docstring.
    """
    if epochs < 1 or eval_every < 1 or checkpoint_every < 1:
        raise ValueError(f"epochs, eval_every and checkpoint_every must be >= 1, got {epochs}, "
                         f"{eval_every}, {checkpoint_every}")
    state = FitState(model, optimizer, list(callbacks))
    result = FitResult(0, 0, -math.inf, 0.0)
    main = is_main_process()
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        _restore(Path(checkpoint), state, result, generator, config)
    first = epochs + 1 if state.stop else result.epochs + 1  # a stopped run is finished
    start = time.perf_counter() - result.seconds
    bar = tqdm(range(first, epochs + 1), desc=desc, disable=not (progress and main),
               leave=False, mininterval=0.5, initial=first - 1, total=epochs)
    for epoch in bar:
        t0 = time.perf_counter()
        state.epoch, state.row = epoch, {"epoch": float(epoch), "lr": state.lr}
        _train_epoch(state, batches, generator, autocast)
        if evaluate is not None and (epoch % eval_every == 0 or epoch == epochs):
            _evaluate(state, evaluate)
        for cb in state.callbacks:
            cb.on_epoch_end(state)
        result.history.append(state.row)
        result.epoch_seconds.append(time.perf_counter() - t0)
        result.epochs, result.seconds = epoch, time.perf_counter() - start
        bar.set_postfix({k: f"{v:.4g}" for k, v in state.row.items()
                         if k in ("train_bound", "score")}, refresh=False)
        last = state.stop or epoch == epochs
        if checkpoint is not None and main and (epoch % checkpoint_every == 0 or last):
            _save(Path(checkpoint), state, result, generator, config)
        if state.stop:
            break
    if restore_best and state.best_state is not None:
        unwrap(model).load_state_dict(state.best_state)
    for cb in state.callbacks:
        cb.on_fit_end(state)
    result.best_epoch = state.best_epoch if evaluate is not None else result.epochs
    result.best_score = state.best_score
    result.seconds = time.perf_counter() - start
    return result


def _train_epoch(state: FitState, batches: Any, generator: torch.Generator | None,
                 autocast: torch.dtype | None) -> None:
    model, opt = state.model, state.optimizer
    model.train()
    items = batches.batches(state.epoch, generator) if hasattr(batches, "batches") else batches
    state.num_batches = len(batches) if hasattr(batches, "__len__") else None
    num_items = getattr(batches, "num_items", None)
    total = count = loss_sum = 0.0
    nb = 0
    device = next(unwrap(model).parameters()).device.type
    for b, batch in enumerate(items):
        state.batch_index = b
        state.fraction = (count / num_items if num_items else
                          b / state.num_batches if state.num_batches else 0.0)
        for cb in state.callbacks:
            cb.on_step_start(state)
        with torch.autocast(device, dtype=autocast) if autocast is not None else nullcontext():
            est = model(batch, generator=generator)
        loss = est.surrogate
        if not torch.isfinite(loss.detach()):
            raise FloatingPointError(f"training diverged: the loss is {float(loss.detach())} at "
                                     f"epoch {state.epoch}; try a lower learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for cb in state.callbacks:
            cb.on_after_backward(state)
        opt.step()
        for cb in state.callbacks:
            cb.on_step_end(state)
        total += float(est.value.detach().sum())
        count += est.value.numel()
        loss_sum += float(loss.detach())
        nb += 1
    if nb == 0:
        raise ValueError("the loader gave no batches")
    state.row.update(train_bound=total / count, loss=loss_sum / nb)
    if not math.isfinite(state.row["train_bound"]):
        raise FloatingPointError(f"training diverged at epoch {state.epoch} (bound "
                                 f"{state.row['train_bound']}); lower the learning rate")


def _evaluate(state: FitState, evaluate: Callable[[], dict[str, float]]) -> None:
    for cb in state.callbacks:
        cb.on_evaluate_start(state)
    state.model.eval()
    with torch.no_grad():
        metrics = evaluate()
    state.row.update(metrics)
    score = float(metrics["score"])
    if score > state.best_score:
        state.best_score, state.best_epoch, state.stale = score, state.epoch, 0
        state.best_state = copy.deepcopy(unwrap(state.model).state_dict())
    else:
        state.stale += 1
    for cb in state.callbacks:
        cb.on_evaluate_end(state)
    for cb in state.callbacks:
        cb.on_validation(state)


def _rng_states(generator: torch.Generator | None) -> dict[str, Any]:
    out: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        out["generator"] = generator.get_state()
    return out


def _save(path: Path, state: FitState, result: FitResult, generator: torch.Generator | None,
          config: dict[str, Any] | None) -> None:
    save_atomic({
        "kind": "graphvae-training-state", "config": config, "epoch": result.epochs,
        "stop": state.stop, "model": unwrap(state.model).state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "callbacks": [cb.state_dict() for cb in state.callbacks],
        "rng": _rng_states(generator),
        "best": {"score": state.best_score, "epoch": state.best_epoch,
                 "state": state.best_state, "stale": state.stale},
        "history": result.history, "epoch_seconds": result.epoch_seconds,
        "seconds": result.seconds}, path)


def _restore(path: Path, state: FitState, result: FitResult, generator: torch.Generator | None,
             config: dict[str, Any] | None) -> None:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged file fails in many ways
        raise DataError(path, f"cannot resume from this training state ({type(err).__name__}: "
                              f"{err})") from None
    if not isinstance(ck, dict) or ck.get("kind") != "graphvae-training-state":
        raise DataError(path, "not a graphvae training state")
    if config is not None and ck.get("config") != config:
        raise DataError(path, "the training state belongs to a run with other settings; "
                              "delete it or rerun with the same ones")
    if len(ck["callbacks"]) != len(state.callbacks):
        raise DataError(path, "the training state has other callbacks than this run")
    model = unwrap(state.model)
    dev = next(model.parameters()).device
    model.load_state_dict(ck["model"])
    state.optimizer.load_state_dict(ck["optimizer"])
    for cb, cs in zip(state.callbacks, ck["callbacks"]):
        cb.load_state_dict(_to(cs, dev))
    torch.set_rng_state(ck["rng"]["torch"])
    if "cuda" in ck["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ck["rng"]["cuda"])
    if generator is not None and "generator" in ck["rng"]:
        generator.set_state(ck["rng"]["generator"])
    best = ck["best"]
    state.best_score, state.best_epoch, state.stale = best["score"], best["epoch"], best["stale"]
    state.best_state = _to(best["state"], dev)
    state.stop = bool(ck["stop"])
    result.history, result.epoch_seconds = list(ck["history"]), list(ck["epoch_seconds"])
    result.epochs = result.resumed_from = int(ck["epoch"])
    result.seconds = float(ck["seconds"])


def _to(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to(v, device) for v in obj]
    return obj
