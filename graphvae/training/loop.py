"""The one training loop of the package: :func:`fit`, over batches, for every model.

``fit(model, batches, optimizer, epochs=..., evaluate=..., callbacks=[...])`` runs
epochs of ``model(batch, generator=g)`` (the model protocol: a
:class:`~graphvae.bounds.BoundEstimate` whose ``surrogate`` is the loss and whose
``value`` is the bound in nats), backward, optimiser step. Full-batch training is a
loader of one batch (:class:`FullBatch`); minibatches come from :class:`Shuffled`,
which draws each epoch's order from the loop's generator.

* **Selection.** ``evaluate()`` (every ``eval_every`` epochs and after the last, also when
  a callback stops the run between evaluations) returns
  metrics with a ``"score"``, higher is better; the best-scoring weights are kept and
  restored at the end (``restore_best``).
* **Callbacks** (:class:`Callback`): :class:`EarlyStopping`, :class:`PlateauDecay`
  (cut the learning rate after a validation plateau, back to the best weights),
  :class:`EMA` (Polyak averaging; evaluation and selection see the average),
  :class:`KLWarmup`, :class:`GradientHook` (e.g. the linear AE's rotation), and
  :class:`Converged` (stop when the training loss settles). ``autocast=torch.bfloat16``
  runs the steps' products in bfloat16.
* **Checkpoints.** With ``checkpoint=PATH`` the loop writes, atomically, every
  ``checkpoint_every`` epochs (and, with ``checkpoint_seconds``, whenever that long has
  passed since the last write) and when it stops: the model, the optimiser (with its
  learning rate), every callback's state, the generator's and torch's RNG states, the
  epoch, the best weights so far, the history and ``config``. ``resume=True`` continues
  from that file to the same result, on the same seed, as a run never interrupted
  (``tests/test_training.py`` kills and resumes each job). A checkpoint of another
  ``config`` is refused. Where the file does not exist, ``resume=True`` starts afresh, so
  that one call serves a job's first start and its restarts (``FitResult.resumed_from``
  is then 0; the command line's ``--resume`` refuses a missing state instead).
* **Stopping.** A Ctrl-C / SIGTERM / SIGHUP that :mod:`graphvae.stopping` turns into an exception
  (the command line does) is held while the epoch in progress finishes, when the loop
  writes a state or trains data-parallel: the state is written at the epoch's end and
  :class:`~graphvae.stopping.Terminated` raised there, naming it, so that a scheduler's
  stop loses no finished work. Data-parallel processes decide together, after each
  epoch's state write, whether one of them was told to stop. A stop held longer than
  ``HOLD_SECONDS`` stops after the step in progress; data-parallel processes decide that
  together too, in each step's check of the loss, so all stop at the same step.
* **Processes.** Under ``torch.distributed`` only rank 0 writes checkpoints or draws the
  progress bar. Data-parallel models follow one convention: a process's ``value`` is its
  shard's share of the batch's bound (the shares sum to it), and its ``surrogate`` is at
  the scale of the whole batch's loss, because ``DistributedDataParallel`` averages the
  processes' gradients; the history's ``train_bound`` is the sum of the shares and its
  ``loss`` the mean of the processes' losses.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from graphvae.distributed import collective_device, current_world, highest, spread
from graphvae.stopping import Held, held, overdue, stop_if_overdue
from graphvae.training.callbacks import Callback, FitState, unwrap
from graphvae.training.state import (  # noqa: F401 - DATA_KEYS, as before the split
    DATA_KEYS,
    restore_state,
    save_state,
)


def is_main_process() -> bool:
    """Rank 0 under ``torch.distributed``, or the only process."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


@dataclass
class FitResult:
    """What :func:`fit` did: epochs run, best evaluation, timings, one history row an epoch
    (``train_bound`` mean nats per item, ``loss`` mean per batch, ``lr``, evaluation
    metrics on evaluated epochs). ``weights_epoch``: the epoch whose weights the model holds
    at the end (``best_epoch`` when they were restored, else the last)."""

    epochs: int
    best_epoch: int
    best_score: float
    seconds: float
    epoch_seconds: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0
    weights_epoch: int = 0

    def column(self, key: str) -> list[float]:
        return [row[key] for row in self.history if key in row]


def fit(model: nn.Module, batches: Any, optimizer: torch.optim.Optimizer, *, epochs: int,
        evaluate: Callable[[], dict[str, float]] | None = None, eval_every: int = 1,
        callbacks: Sequence[Callback] = (), restore_best: bool = True,
        generator: torch.Generator | None = None, autocast: torch.dtype | None = None,
        checkpoint: str | Path | None = None, checkpoint_every: int = 1,
        checkpoint_seconds: float | None = None,
        resume: bool = False, config: dict[str, Any] | None = None,
        as_given: Callable[[str, object], str | None] | None = None,
        canonical: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        origin: Callable[[dict[str, Any], dict[str, Any]], str | None] | None = None,
        progress: bool = True, desc: str = "train") -> FitResult:
    """Train ``model`` (see the module docstring); return a :class:`FitResult`.

    Args:
        batches: :class:`FullBatch`, :class:`Shuffled`, or anything with
            ``batches(epoch, generator)`` (or a plain re-iterable of batches).
        optimizer: over the parameters to train (``requires_grad`` ones).
        evaluate: validation metrics with ``"score"`` (higher is better), run in eval
            mode without gradients; ``None``: no selection, the last weights are kept.
        generator: passed to every ``model(batch, generator=...)`` and to the loader.
        checkpoint, checkpoint_every, checkpoint_seconds, resume, config: see the module
            docstring.
        as_given: ``(config key, value)`` as the user gave it (``Config.as_given``: the
            flag, e.g. ``--k 5``), or ``None`` for a key no flag sets; a refused
            ``--resume`` names the differing settings so.
        canonical: a saved config spelt as ``config`` spells it now
            (``Config.canonical_settings``), compared instead of the saved one.
        origin: ``(saved config, config)`` → a clause a refused ``--resume`` adds, or
            ``None`` (link prediction names the preset the state's settings are).
    """
    if checkpoint_seconds is not None and not checkpoint_seconds >= 0:
        raise ValueError(f"checkpoint_seconds must be >= 0, got {checkpoint_seconds}")
    if epochs < 1 or eval_every < 1 or checkpoint_every < 1:
        raise ValueError(f"epochs, eval_every and checkpoint_every must be >= 1, got {epochs}, "
                         f"{eval_every}, {checkpoint_every}")
    state = FitState(model, optimizer, list(callbacks))
    result = FitResult(0, 0, -math.inf, 0.0)
    main = is_main_process()
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        restore_state(Path(checkpoint), state, result, generator, config, as_given, epochs,
                      canonical, origin)
    if resume and current_world()[1] > 1:
        _same_start(result.epochs)
    first = epochs + 1 if state.stop else result.epochs + 1  # a stopped run is finished
    start = time.perf_counter() - result.seconds
    saved = time.perf_counter()                    # when the state was last written
    # a bar on a terminal only (disable=None): a log gets no carriage-return lines
    bar = tqdm(range(first, epochs + 1), desc=desc, disable=None if progress and main else True,
               leave=False, mininterval=0.5, initial=first - 1, total=epochs)
    # a stop is held to the epoch's end where a state is written, or where processes must
    # stop together
    holding = checkpoint is not None or current_world()[1] > 1
    path = Path(checkpoint) if checkpoint is not None and main else None   # the writer's
    with held(enabled=holding, saves=checkpoint is not None) as signalled:
        if path is not None and result.epochs:
            signalled.written = (path, result.epochs)   # resumed: a stop names this state
        for epoch in bar:
            t0 = time.perf_counter()
            state.epoch, state.row = epoch, {"epoch": float(epoch), "lr": state.lr}
            _train_epoch(state, batches, generator, autocast, signalled)
            due = epoch % eval_every == 0 or epoch == epochs
            if evaluate is not None and due:
                _evaluate(state, evaluate)
            for cb in state.callbacks:
                cb.on_epoch_end(state)
            if evaluate is not None and state.stop and not due:
                _evaluate(state, evaluate)      # stopped between evaluations: the last epoch
            result.history.append(state.row)
            result.epoch_seconds.append(time.perf_counter() - t0)
            result.epochs, result.seconds = epoch, time.perf_counter() - start
            bar.set_postfix({k: f"{v:.4g}" for k, v in state.row.items()
                             if k in ("train_bound", "score")}, refresh=False)
            last = state.stop or epoch == epochs
            wrote = path is not None and (
                epoch % checkpoint_every == 0 or last or checkpoint_seconds is not None
                and time.perf_counter() - saved >= checkpoint_seconds)
            if path is not None and wrote:
                save_state(path, state, result, generator, config)
                saved, signalled.written = time.perf_counter(), (path, epoch)
            # after the write, so that a signal during it is acted on at this epoch
            stopping = _signalled(signalled) if holding else 0
            if stopping:
                # a Ctrl-C / SIGTERM / SIGHUP came during the epoch: its state is written, the
                # run ends
                if path is not None and not wrote:
                    save_state(path, state, result, generator, config)
                    signalled.written = (path, epoch)
                signalled.signum = signalled.signum or stopping   # (another process's)
                raise signalled.terminated()
            if state.stop:
                break
    result.weights_epoch = result.epochs
    if restore_best and state.best_state is not None:
        unwrap(model).load_state_dict(state.best_state)
        result.weights_epoch = state.best_epoch
        state.restored_best = True
    for cb in state.callbacks:
        cb.on_fit_end(state)
    result.best_epoch = state.best_epoch if evaluate is not None else result.epochs
    result.best_score = state.best_score
    result.seconds = time.perf_counter() - start
    return result


def _signalled(signalled: Held) -> int:
    """The number of the Ctrl-C / SIGTERM / SIGHUP held during the epoch, or 0. Data-parallel
    processes decide together (one all-reduce an epoch): one that stopped alone would
    leave the others waiting in the next epoch's all-reduce until the group's timeout,
    and the state rank 0 writes must be of the epoch where all of them stop."""
    signum = signalled.signum or 0
    if current_world()[1] > 1:
        _, signum = (int(v) for v in spread(float(signum)))
    return signum


def _same_start(epochs_done: int) -> None:
    """Data-parallel resume: every process must continue from the same epoch. Only rank 0
    writes the training state, so a process that cannot see it (another machine without
    the file system that holds ``--out``) would start afresh and train other weights."""
    low, high = (int(v) for v in spread(epochs_done))
    if low != high:
        raise ValueError(f"--resume: the processes found different training states (epochs "
                         f"{low} to {high} done); every process must see the same --out (a "
                         f"shared file system)")


def _step_checks(loss: Tensor) -> tuple[bool, int]:
    """Whether ``loss`` is finite in every process, and the number of a held stop that is
    overdue (:func:`~graphvae.stopping.overdue`) in any process, or 0. Data-parallel
    processes decide together (one small all-reduce a step): a process that stopped alone
    would leave the others waiting in the gradient all-reduce until the process group's
    timeout, or failing there when its connection closed."""
    failed, late = highest(0.0 if bool(torch.isfinite(loss).all()) else 1.0, overdue())
    return failed == 0.0, int(late)


def _train_epoch(state: FitState, batches: Any, generator: torch.Generator | None,
                 autocast: torch.dtype | None, signalled: Held) -> None:
    model, opt = state.model, state.optimizer
    model.train()
    items = batches.batches(state.epoch, generator) if hasattr(batches, "batches") else batches
    state.num_batches = len(batches) if hasattr(batches, "__len__") else None
    num_items = getattr(batches, "num_items", None)
    total = count = loss_sum = 0.0
    nb = 0
    device = next(unwrap(model).parameters()).device.type
    data_parallel = current_world()[1] > 1      # (an overdue stop: at the next step's check)
    for b, batch in enumerate(items):
        state.batch_index = b
        state.fraction = (count / num_items if num_items else
                          b / state.num_batches if state.num_batches else 0.0)
        for cb in state.callbacks:
            cb.on_step_start(state)
        with torch.autocast(device, dtype=autocast) if autocast is not None else nullcontext():
            est = model(batch, generator=generator)
        if not hasattr(est, "surrogate"):
            raise TypeError(f"fit's model must return a BoundEstimate (the model protocol of "
                            f"graphvae.models: value, surrogate, ...), got "
                            f"{type(est).__name__}")
        loss = est.surrogate
        finite, late = _step_checks(loss.detach())
        if not finite:
            where = (f"is {float(loss.detach())}" if not torch.isfinite(loss.detach())
                     else "is not finite in another process")
            if state.epoch == 1 and b == 0:     # no step taken yet: not the learning rate
                raise FloatingPointError(
                    f"the loss {where} at the first step, before any update, so the learning "
                    f"rate is not the cause: the model's settings or the data give a loss "
                    f"that is not finite from the start (a setting that scales the inputs, "
                    f"noise or latents far up?)")
            raise FloatingPointError(f"training diverged: the loss {where} at epoch "
                                     f"{state.epoch}; try a lower learning rate")
        if late and data_parallel:
            # a held stop overdue in any process: all stop at this step, before the
            # gradient all-reduce (the state of the last write stays)
            signalled.signum = signalled.signum or late
            raise signalled.terminated()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for cb in state.callbacks:
            cb.on_after_backward(state)
        opt.step()
        for cb in state.callbacks:
            cb.on_step_end(state)
        if not data_parallel:
            stop_if_overdue()     # a held stop whose epoch outlasts the hold stops here
        total += float(est.value.detach().sum())
        count += est.value.numel()
        loss_sum += float(loss.detach())
        nb += 1
    if nb == 0:
        raise ValueError("the loader gave no batches")
    if current_world()[1] > 1:
        # data-parallel: each process holds its shard's share of the bound, and a loss at
        # the whole batch's scale (the module docstring): the shares sum, the losses average
        dist = torch.distributed
        sums = torch.tensor([total, loss_sum], dtype=torch.float64,
                            device=collective_device())
        dist.all_reduce(sums)
        total, loss_sum = float(sums[0]), float(sums[1]) / current_world()[1]
    state.row.update(train_bound=total / count, loss=loss_sum / nb)
    if not math.isfinite(state.row["train_bound"]):
        raise FloatingPointError(f"training diverged at epoch {state.epoch} (bound "
                                 f"{state.row['train_bound']}); lower the learning rate")
    # the epoch's last step is checked by no later loss: a step to non-finite weights in
    # the last epoch was scored as a model (AUC 50 from NaN latents). Processes hold the
    # same weights after a step, so they decide alike.
    if not all(bool(torch.isfinite(p).all()) for p in unwrap(model).parameters()):
        raise FloatingPointError(f"training diverged at epoch {state.epoch}: its last step "
                                 "left weights that are not finite; lower the learning rate")


def _evaluate(state: FitState, evaluate: Callable[[], dict[str, float]]) -> None:
    for cb in state.callbacks:
        cb.on_evaluate_start(state)
    state.model.eval()
    with torch.no_grad():
        metrics = evaluate()
    if not isinstance(metrics, dict) or "score" not in metrics:
        got = sorted(map(str, metrics))[:5] if isinstance(metrics, dict) else \
            type(metrics).__name__
        raise ValueError(f"fit's evaluate() must return a dict with a 'score' (higher is "
                         f"better: it chooses the weights and stops early), got {got}")
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
