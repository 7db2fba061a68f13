"""Training, evaluating and saving :class:`~graphvae.vector.models.VectorAutoencoder` (no PyG).

:func:`train_vector` sets up the package's one loop (:func:`graphvae.training.fit`)
for vector data: shuffled minibatches, Adam (or AdamW), the validation bound after
every epoch, early stopping, learning-rate decay on plateau, Polyak averaging and KL
warm-up as callbacks, and a resumable training state.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from graphvae.config import check_count
from graphvae.errors import DataError, describe
from graphvae.io import load_torch, save_atomic
from graphvae.progress import steps
from graphvae.training import (
    EMA,
    Callback,
    EarlyStopping,
    FitResult,
    KLWarmup,
    PlateauDecay,
    Shuffled,
    fit,
)
from graphvae.vector.models import IWAE_DEFAULT_K, VectorAutoencoder, VectorConfig
from graphvae.weight_checks import check_dtypes, check_plain_entries


@torch.no_grad()
def evaluate_bound(model: VectorAutoencoder, x: Tensor, objective: str = "elbo",
                   num_samples: int = 1, batch_size: int = 1000, seed: int = 0) -> float:
    """Mean bound per row of ``x`` (no corruption), with a fixed seed so epochs compare."""
    check_count("batch_size", batch_size)
    x = model_rows(model, x, "x")
    was = model.training
    model.eval()
    g = torch.Generator(device=x.device).manual_seed(seed)
    total = 0.0
    for i in range(0, x.size(0), batch_size):
        xb = x[i:i + batch_size]
        total += float(model.bound(xb, objective, num_samples, generator=g).value.sum())
    model.train(was)
    return total / x.size(0)


def model_rows(model: VectorAutoencoder, x: Any, name: str) -> Tensor:
    """``x`` as rows for ``model``: a ``(n, in_dim)`` tensor, cast to the model's dtype and
    moved to its device; a one-line ``TypeError`` / ``ValueError`` naming ``name``
    otherwise."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of rows, got {type(x).__name__}")
    if x.dim() != 2 or x.size(1) != model.config.in_dim:
        raise ValueError(f"{name} must be (n, {model.config.in_dim}), got {tuple(x.shape)}")
    if x.size(0) == 0:                       # a mean over no rows divided by zero
        raise ValueError(f"{name} holds no rows")
    p = next(model.parameters())
    x = x.to(device=p.device, dtype=p.dtype)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds entries that are not finite numbers")
    if model.config.likelihood == "bernoulli" and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{name} holds entries other than 0 and 1, which a Bernoulli model "
                         f"does not score (its -log p would not be one)")
    return x


@torch.no_grad()
def estimate_nll(model: VectorAutoencoder, x: Tensor, num_samples: int = 5000,
                 batch_size: int = 100, seed: int = 0, progress: bool = False) -> float:
    """Mean ``-log p(x)`` over the rows of ``x`` in nats, each row's ``log p(x)``
    estimated by importance sampling with ``num_samples`` draws from the model's
    ``q(z|x)`` (``VectorAutoencoder.log_marginal``), ``batch_size`` rows at a time,
    seeded so that reruns give the same figure."""
    x = model_rows(model, x, "x")
    check_count("num_samples", num_samples)
    check_count("batch_size", batch_size)
    was = model.training
    model.eval()
    g = torch.Generator(device=x.device).manual_seed(seed)
    total = 0.0
    for i in steps(range(0, x.size(0), batch_size), "log p(x)", progress):
        total += float(model.log_marginal(x[i:i + batch_size], num_samples,
                                          generator=g).double().sum())
    model.train(was)
    return -total / x.size(0)


def train_vector(model: VectorAutoencoder, train: Tensor, valid: Tensor | None = None, *,
                 objective: str | None = None, num_samples: int | None = None,
                 epochs: int = 100,
                 batch_size: int = 100, lr: float = 1e-3, patience: int | None = None,
                 seed: int = 0, progress: bool = True, lr_decay: float | None = None,
                 decay_patience: int = 10, min_lr: float = 1e-5, ema: float | None = None,
                 kl_warmup: int = 0, bf16: bool = False, weight_decay: float = 0.0,
                 state: str | os.PathLike | None = None, resume: bool = False,
                 config: dict[str, Any] | None = None,
                 as_given: Callable[[str, object], str | None] | None = None,
                 canonical: Callable[[dict[str, Any]], dict[str, Any]] | None = None
                 ) -> FitResult:
    """Train ``model`` with :func:`graphvae.training.fit` to maximise its bound on ``train``;
    select on ``valid``'s bound if given.

    Args:
        objective, num_samples: ``"elbo"`` with S draws or ``"iwae"`` with K samples;
            ``None`` keeps the model's own (:meth:`VectorAutoencoder.set_objective`; what
            :func:`build_vector_model` chose: IWAE_K for ``"iwae"``, else the ELBO with one
            draw). A ``num_samples`` of ``None`` with an objective other than the model's
            takes that objective's default: ``IWAE_DEFAULT_K`` for ``"iwae"`` (1 made it
            the ELBO), one draw for ``"elbo"``.
        patience: with validation data, stop when the validation bound has not improved
            for this many epochs (``None``: run all epochs). With validation data the best
            weights are restored; without it, every epoch runs and the last weights stay.
        lr_decay: with validation data, multiply the learning rate by this factor
            (in (0, 1)) and go back to the best weights whenever the validation
            bound has not improved for ``decay_patience`` epochs; stop once the
            rate would fall below ``min_lr``. ``None``: a constant rate.
        ema: keep an exponential moving average of the weights (Polyak averaging,
            ``avg ← ema · avg + (1 − ema) · w`` after every step, e.g. 0.999);
            validation, selection and the returned model use the average.
        kl_warmup: ELBO only: weight the KL term by ``min(1, t / kl_warmup)`` over the
            first ``kl_warmup`` epochs, ``t`` counting steps in epochs (Bowman et al.
            2016; Sønderby et al. 2016). Validation always scores the true bound.
        bf16: run the training steps' matrix products in bfloat16 (``torch.autocast``;
            the weights, the optimiser, the likelihood and bound arithmetic and all
            validation stay in the model's dtype). About 2x faster IWAE_50 steps on
            CPUs with native bf16; the per-epoch training bound is then approximate.
        weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter 2019): every
            step also shrinks each weight by ``lr · weight_decay`` of itself; 0: Adam.
        state, resume, config, as_given, canonical: the resumable training state (``fit``'s
            ``checkpoint``), written every epoch; ``resume=True`` continues from it.

    Returns:
        :class:`~graphvae.training.FitResult`: per epoch ``train_bound`` (mean nats per
        row), ``score`` (the validation bound) and ``lr``.
    """
    check_count("epochs", epochs)
    check_count("batch_size", batch_size)
    if not 0 < lr < math.inf:
        raise ValueError(f"lr must be a finite number > 0, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    objective = model.objective if objective is None else objective
    if num_samples is None:                 # another objective: its own default count
        num_samples = model.num_samples if objective == model.objective else \
            IWAE_DEFAULT_K if objective == "iwae" else 1
    if kl_warmup < 0 or (kl_warmup and objective != "elbo"):
        raise ValueError(f"kl_warmup must be >= 0 and needs the elbo objective, got "
                         f"{kl_warmup} with {objective!r}")
    train = model_rows(model, train, "training data")
    valid = None if valid is None else model_rows(model, valid, "validation data")
    callbacks: list[Callback] = []
    if valid is not None and patience is not None:
        callbacks.append(EarlyStopping(patience))
    if valid is not None and lr_decay is not None:
        callbacks.append(PlateauDecay(lr_decay, decay_patience, min_lr))
    elif lr_decay is not None and not 0 < lr_decay < 1:
        raise ValueError(f"lr_decay must be in (0, 1), got {lr_decay}")
    if ema is not None:
        callbacks.append(EMA(ema))
    if kl_warmup:
        callbacks.append(KLWarmup(kl_warmup))
    model.set_objective(objective, num_samples)
    torch.manual_seed(seed)
    g = torch.Generator(device=train.device).manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]  # frozen ones stay as they are
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    opt = (torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay) if weight_decay
           else torch.optim.Adam(params, lr=lr))

    def evaluate() -> dict[str, float]:
        assert valid is not None
        return {"score": evaluate_bound(model, valid, objective, num_samples, seed=seed)}

    return fit(model, Shuffled(train, batch_size), opt, epochs=epochs,
               evaluate=evaluate if valid is not None else None, callbacks=callbacks,
               generator=g, autocast=torch.bfloat16 if bf16 else None,
               checkpoint=None if state is None else Path(state),
               resume=resume, config=config, as_given=as_given, canonical=canonical,
               progress=progress, desc=f"{objective} training")


def refine_encoder(model: VectorAutoencoder, train: Tensor, valid: Tensor | None = None, *,
                   objective: str = "iwae", num_samples: int = 50, epochs: int = 5,
                   lr: float = 3e-4, **kwargs: Any) -> tuple[VectorAutoencoder, FitResult]:
    """A copy of a trained VAE whose encoder alone is trained further, on ``train``.

    The generative model ``p(z) p(x|z)`` (decoder weights, a learned Gaussian
    variance) is frozen, so the copy has exactly the same ``log p(x)``; only the
    proposal ``q(z|x)`` changes. Trained on IWAE_K (K = 50 by default), it becomes a
    better importance-sampling proposal, and ``log_marginal`` with it is a tighter
    estimate of the same model's likelihood: still an unbiased estimate of ``p(x)``,
    so a stochastic lower bound on ``log p(x)`` (Cremer et al. 2018 measure the
    amortisation gap this way). The encoder sees clean inputs (no denoising
    corruption). ``kwargs`` go to :func:`train_vector` (``ema``, ``bf16``,
    ``lr_decay``, ``state``, ...); selection is on ``valid``'s bound if given.
    The model passed in is not modified.
    """
    if not model.config.variational:
        raise ValueError("refine_encoder needs a variational model (vae or iwae)")
    refined = copy.deepcopy(model)
    refined.corruption = None
    for p in refined.parameters():
        p.requires_grad_(False)
    for p in refined.encoder.parameters():
        p.requires_grad_(True)
    try:
        res = train_vector(refined, train, valid, objective=objective, num_samples=num_samples,
                           epochs=epochs, lr=lr, **kwargs)
    finally:
        for p in refined.parameters():
            p.requires_grad_(True)
        refined.corruption = model.corruption
        # the copy is the same model with a better proposal: it keeps the model's objective
        refined.set_objective(model.objective, model.num_samples)
    return refined, res


def save_checkpoint(model: VectorAutoencoder, path: str | os.PathLike, **extra: Any) -> None:
    """Write ``model`` (config, training objective, weights) and the ``extra`` entries to
    ``path`` atomically; :func:`load_vector_model` reads it back. An ``extra`` entry that is
    not plain data (a numpy number, an object) is refused before anything is written: the
    loader would refuse the file."""
    check_plain_entries(extra, "vector model")
    save_atomic({"task": "vector", "config": model.config.to_dict(),
                 "objective": model.objective, "num_samples": model.num_samples,
                 "state_dict": model.state_dict(), **extra}, path)


#: the largest IWAE K a checkpoint may ask for (memory: K latent draws a row)
MAX_CHECKPOINT_SAMPLES = 100_000


def load_vector_model(path: str | os.PathLike,
                      map_location: str | torch.device = "cpu") -> VectorAutoencoder:
    """Rebuild a model from a checkpoint written by :func:`save_checkpoint`, with the
    training objective it was saved with (an IWAE model keeps IWAE_K; checkpoints from
    before the objective was saved load with the ELBO); one-line ``ValueError`` naming the
    file on anything else (compressed or hollow weights, a config the weights do not fit,
    an unknown objective), checked before the model is built."""
    ckpt = load_torch(path, "checkpoint", "not a torch checkpoint (a model.pt that graphvae "
                                          "vector wrote)", map_location)
    if not isinstance(ckpt, dict) or ckpt.get("task") != "vector" or "config" not in ckpt:
        raise DataError(path, "not a graphvae vector-model checkpoint")
    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise DataError(path, "the checkpoint has no state_dict of tensors")
    # (load_torch held every tensor, the weights included, to its storage)
    try:
        config = VectorConfig.from_dict(ckpt["config"])
        with torch.device("meta"):
            skeleton = VectorAutoencoder(config).state_dict()
    except Exception as err:  # noqa: BLE001 - a crafted config fails in many ways
        raise DataError(path, f"the checkpoint's config is not usable ({describe(err)})"
                        ) from None
    if {k: tuple(v.shape) for k, v in skeleton.items()} != \
            {k: tuple(v.shape) for k, v in state.items()}:
        raise DataError(path, "the weights do not fit the saved config")
    check_dtypes(state, skeleton, path)
    model = VectorAutoencoder(config)
    model.load_state_dict(state)
    objective, k = ckpt.get("objective", "elbo"), ckpt.get("num_samples", 1)
    try:
        if type(k) is not int or k > MAX_CHECKPOINT_SAMPLES:
            raise ValueError("num_samples")
        model.set_objective(objective, k)   # its own checks: the names, K >= 1, variational
    except ValueError:
        raise DataError(path, f"the checkpoint's objective is not usable "
                              f"({repr(objective)[:40]} with num_samples {repr(k)[:40]}: "
                              f"'elbo' or 'iwae' with 1 to "
                              f"{MAX_CHECKPOINT_SAMPLES:,}, 'iwae' for variational models)"
                        ) from None
    return model.to(map_location)
