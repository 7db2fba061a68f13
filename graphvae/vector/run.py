"""``graphvae vector``: train one vector model on a data set and write what it learned.

:func:`run_vector` checks its inputs before any training, trains, evaluates on the
test split and, given ``out``, writes ``metrics.json``, ``model.pt`` (and
``model_refined.pt`` with ``refine_epochs``), ``reconstructions.png``, ``samples.png``
(VAE / IWAE), ``interpolation.png`` (VAE / IWAE), ``codes.png`` (a 2-D
view of the codes) and ``training.png`` (the training curve) there, each atomically.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from graphvae.devices import check_model_memory, resolve_device
from graphvae.io import save_atomic, write_json
from graphvae.vector.config import VectorRunConfig
from graphvae.vector.data import VectorData, all_binary, check_matrix, check_scale
from graphvae.vector.models import build_vector_model
from graphvae.vector.train import (
    estimate_nll,
    evaluate_bound,
    refine_encoder,
    save_checkpoint,
    train_vector,
)


def default_latent_dim(d: int) -> int:
    """``d`` for d ≤ 2, ``min(10, max(2, d // 2))`` up to d = 100, else 40 (the MNIST size);
    ``--model linear`` takes ``min(10, d)`` instead."""
    if d <= 2:
        return d
    return min(10, max(2, d // 2)) if d <= 100 else 40


def _likelihood(cfg: VectorRunConfig, data: VectorData) -> str:
    """``--likelihood``, else Bernoulli when every training entry is 0 or 1 (the training
    rows only: a test value must not choose the model; a non-binary one is then refused).
    Standardised data are Gaussian: one training row standardises to zeros, which are 0/1."""
    if cfg.likelihood is not None:
        return cfg.likelihood
    return "bernoulli" if data.scales is None and all_binary(data.train) else "gaussian"


def resolved(cfg: VectorRunConfig, data: VectorData) -> VectorRunConfig:
    """``cfg`` with the likelihood a neural model will use on ``data`` filled in, so that
    the settings it then ignores (``--variance`` with an automatic Bernoulli) are noted
    and do not tie its training state, and with a ``--latent-dim`` equal to the default for
    ``data`` left out, as a command without it spells it (it ties the same state)."""
    if cfg.model == "linear":
        return cfg
    latent = None if cfg.latent_dim == default_latent_dim(data.dim) else cfg.latent_dim
    return cfg.replace(likelihood=_likelihood(cfg, data), latent_dim=latent)


def run_vector(data: VectorData, cfg: VectorRunConfig, out: str | Path | None = None,
               progress: bool = True, state: str | Path | None = None,
               resume: bool = False) -> dict[str, Any]:
    """Train ``cfg.model`` on ``data.train`` (selecting on ``data.valid``), score ``data.test``.

    ``state``: a folder for the resumable training states (``train.pt``, ``refine.pt``),
    which ``resume=True`` continues from."""
    cfg.validate()
    device = resolve_device(cfg.device)
    lik = _likelihood(cfg, data)
    for split in ("train", "valid", "test"):
        check_matrix(getattr(data, split), f"{data.name} {split} split",
                     binary=lik == "bernoulli" and cfg.model != "linear")
    if data.scales is None:
        check_scale(data)
    out = Path(out) if out is not None else None
    if cfg.model == "linear":
        if resume:
            raise ValueError("--model linear keeps no training state to resume (it refits "
                             "in seconds): drop --resume")
        return _run_linear(data, cfg, out, progress)
    latent = cfg.latent_dim or default_latent_dim(data.dim)
    torch.manual_seed(cfg.seed)
    kw: dict[str, Any] = {"latent_dim": latent, "hidden": tuple(cfg.hidden), "likelihood": lik,
                          "variance": cfg.variance, "activation": cfg.activation}
    if cfg.model == "dae":
        _check_corruption(cfg, data)
        kw.update(corruption=cfg.corruption, noise_level=cfg.noise_level)
    check_model_memory(lambda: build_vector_model(cfg.model, data.dim, **kw), device,
                       "--hidden or --latent-dim")
    model = build_vector_model(cfg.model, data.dim, **kw).to(device)
    # the settings the state is tied to: those this run reads, --likelihood as resolved
    # (a command that spells out the likelihood the data picks continues the state)
    settings = resolved(cfg, data).training_settings()
    objective = "iwae" if cfg.model == "iwae" else "elbo"
    k = cfg.num_samples if cfg.model == "iwae" else 1
    train, valid, test = (t.to(device=device, dtype=torch.float32)
                          for t in (data.train, data.valid, data.test))
    res = train_vector(model, train, valid, objective=objective, num_samples=k,
                       epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                       patience=cfg.patience, seed=cfg.seed, lr_decay=cfg.lr_decay,
                       decay_patience=cfg.decay_patience, ema=cfg.ema, kl_warmup=cfg.kl_warmup,
                       bf16=cfg.bf16, progress=progress,
                       state=None if state is None else Path(state) / "train.pt",
                       resume=resume, config={"data": data.name, **settings,
                                               "data_sha256": None if state is None
                                               else data.fingerprint()},
                       as_given=cfg.as_given,
                       canonical=lambda saved: VectorRunConfig.canonical_settings(
                           saved, lambda c: resolved(c, data)))
    model.eval()
    recon = model.reconstruct(test)
    metrics: dict[str, Any] = {
        "model": cfg.model, "data": data.name, "likelihood": lik, "latent_dim": latent,
        "n_train": int(train.size(0)), "n_test": int(test.size(0)), "dim": data.dim,
        "epochs_run": res.epochs, "best_epoch": res.best_epoch,
        "resumed_from_epoch": res.resumed_from,
        "train_seconds": res.seconds, "device": str(device),
        # a row's squared error summed over its columns, averaged over rows (not per entry)
        "test_mse": float((recon - test).pow(2).sum(1).mean()),
        # ae / dae: the log-likelihood of the point code's reconstruction, not a bound
        (f"test_{objective}" + (f"_{k}" if objective == "iwae" else "")
         if model.config.variational else "test_recon_loglik"):
            evaluate_bound(model, test, objective, k, seed=cfg.seed),
    }
    refined = None
    if model.config.variational:
        refined = _likelihood_metrics(metrics, model, train, valid, test, cfg, progress,
                                      state, resume)
    if data.scales is not None:
        _original_units(metrics, data, recon, test)
    if out is not None:
        _write_outputs(out, metrics, model, refined, res, data, test, recon, cfg)
    return metrics


def _check_corruption(cfg: VectorRunConfig, data: VectorData) -> None:
    """Salt-and-pepper noise needs data in [0, 1]: a one-line error before training."""
    if cfg.corruption == "salt_and_pepper" and bool(((data.train < 0) | (data.train > 1)).any()):
        raise ValueError(f"salt-and-pepper noise sets entries to 0 or 1, but the "
                         f"training rows of {data.name} leave [0, 1] (they run from "
                         f"{float(data.train.min()):.4g} to {float(data.train.max()):.4g}"
                         f"): use --corruption gaussian or masking, or data in [0, 1]")


def _likelihood_metrics(metrics: dict[str, Any], model: Any, train: Tensor, valid: Tensor,
                        test: Tensor, cfg: VectorRunConfig, progress: bool,
                        state: str | Path | None, resume: bool) -> Any:
    """A variational model's test ELBO and importance-sampled NLL into ``metrics``; with
    ``cfg.refine_epochs`` also the NLL under a refined encoder, which is returned (else
    ``None``)."""
    metrics["test_elbo"] = evaluate_bound(model, test, "elbo", 1, seed=cfg.seed)
    start = time.perf_counter()
    metrics.update(test_nll=estimate_nll(model, test, cfg.nll_samples, seed=cfg.seed,
                                         progress=progress),
                   nll_samples=cfg.nll_samples,
                   nll_seconds=time.perf_counter() - start)
    if not cfg.refine_epochs:
        return None
    refined, ref = refine_encoder(model, train, valid, num_samples=50,
                                  epochs=cfg.refine_epochs, batch_size=cfg.batch_size,
                                  ema=cfg.ema, bf16=cfg.bf16, seed=cfg.seed,
                                  progress=progress, resume=resume,
                                  state=None if state is None else Path(state) / "refine.pt")
    refined.eval()
    metrics.update(test_nll_refined=estimate_nll(refined, test, cfg.nll_samples,
                                                 seed=cfg.seed, progress=progress),
                   refine_seconds=ref.seconds, refine_best_epoch=ref.best_epoch,
                   refine_resumed_from_epoch=ref.resumed_from)
    return refined


def _original_units(metrics: dict[str, Any], data: VectorData, recon: Tensor,
                    test: Tensor) -> None:
    """The NLLs and the MSE of standardised data back in the data's own units:
    log p(x) = log p(standardised x) − Σ_j log s_j."""
    assert data.scales is not None
    shift = float(torch.log(data.scales.double()).sum())
    metrics["log_scale_sum"] = shift
    for key in ("test_nll", "test_nll_refined"):
        if key in metrics:
            metrics[f"{key}_original_units"] = metrics[key] + shift
    # column j's squared error times s_j², in float64: s_j² passes float32's range from
    # s_j ≈ 1.8e19 on
    err = (recon.double() - test.double()) * data.scales.to(test.device, torch.float64)
    metrics["test_mse_original_units"] = float(err.pow(2).sum(1).mean())


def _write_outputs(out: Path, metrics: dict[str, Any], model: Any, refined: Any, res: Any,
                   data: VectorData, test: Tensor, recon: Tensor,
                   cfg: VectorRunConfig) -> None:
    """``model.pt`` (and ``model_refined.pt``), the figures and ``metrics.json``."""
    # the fit's record without its timings: the same seed writes the same bytes
    save_checkpoint(model, out / "model.pt", model_kind=cfg.model, data=data.name,
                    result={k: v for k, v in res.__dict__.items() if "seconds" not in k})
    if refined is not None:  # same decoder, the refined encoder
        save_checkpoint(refined, out / "model_refined.pt", model_kind=cfg.model,
                        data=data.name)
    _plots(model, data, test, recon, out, cfg)
    from graphvae.plotting import plot_training
    k = cfg.num_samples if cfg.model == "iwae" else 1
    bound = (f"IWAE bound, K = {k}" if cfg.model == "iwae" else "ELBO"
             if model.config.variational else "reconstruction log-likelihood")
    plot_training(res.history, out / "training.png", res.weights_epoch,
                  f"validation {bound} (nats per row)", f"{cfg.model} on {data.name}",
                  "training bound (nats per row)" if model.config.variational else
                  "training reconstruction log-likelihood (nats per row; not a bound)")
    write_json({**metrics, "config": cfg.to_dict(),
                "history": {"train": res.column("train_bound"),
                            "valid": res.column("score")}},
               out / "metrics.json")


def _plots(model, data: VectorData, test: torch.Tensor, recon: torch.Tensor, out: Path,
           cfg: VectorRunConfig) -> None:
    from graphvae.plotting import plot_image_rows, plot_latent

    m = min(10, test.size(0))
    shape = data.image_shape
    units = data.original_units      # images are drawn in their own units (grey levels)
    pick = torch.randperm(test.size(0), generator=torch.Generator().manual_seed(cfg.seed))[:m]
    pick = pick.to(test.device)
    plot_image_rows([("test data", units(test[pick]).cpu().numpy()),
                     ("reconstruction", units(recon[pick]).cpu().numpy())],
                    out / "reconstructions.png", shape, f"{cfg.model} on {data.name}")
    if model.config.variational:
        g = torch.Generator(device=test.device).manual_seed(cfg.seed)
        s = units(model.sample(30, generator=g)).cpu().numpy()
        plot_image_rows([("samples E[x|z]", s[:10]), ("", s[10:20]), ("", s[20:30])],
                        out / "samples.png", shape, f"{cfg.model}: z ~ N(0, I)")
        if test.size(0) >= 2:
            path = units(model.interpolate(test[pick[0]], test[pick[-1]], steps=10)).cpu().numpy()
            plot_image_rows([("two test rows, linear path in z", path)],
                            out / "interpolation.png", shape,
                            "latent interpolation")
    codes = model.codes(test).cpu().numpy()
    plot_latent(codes, out / "codes.png", title=f"{cfg.model} codes of the test split (PCA)")


def _run_linear(data: VectorData, cfg: VectorRunConfig, out: Path | None,
                progress: bool) -> dict[str, Any]:
    from graphvae.vector.linear import (
        LinearAE,
        axis_alignment,
        pca,
        reconstruction_error,
        subspace_distance,
        train_linear_ae,
    )

    x = data.train.to(torch.float64)
    k = cfg.latent_dim or min(10, data.dim)
    if k > min(x.shape):
        given = (f"--latent-dim {k}" if cfg.latent_dim else
                 f"the default latent width, {k} (at most 10 and the column count),")
        raise ValueError(f"{given} is more than the data allow: the training rows "
                         f"({x.size(0)} of {x.size(1)} columns) span at most {min(x.shape)} "
                         f"dimension{'s' * (min(x.shape) != 1)}")
    p = pca(x, k)
    g = torch.Generator().manual_seed(cfg.seed)
    model = LinearAE(data.dim, k, ordering="rotation", generator=g,
                     l2_scale=1e-3 * float(p.explained_variance[-1]))
    steps = max(cfg.epochs * 100, 1000)
    fit = train_linear_ae(model, x, steps=steps, progress=progress)
    test = data.test.to(torch.float64)
    u = p.components.T
    with torch.no_grad():
        align = axis_alignment(u, model.W2)
        metrics: dict[str, Any] = {
            "model": "linear", "data": data.name, "k": k, "steps": fit.steps,
            "train_seconds": fit.seconds, "subspace_distance": subspace_distance(u, model.W2),
            "axis_alignment_max": float(align.max()),
            "pca_discarded_variance": p.discarded_variance,
            "train_mse_linear_ae": reconstruction_error(x, model.reconstruct(x)),
            "train_mse_pca": reconstruction_error(x, p.inverse_transform(p.transform(x))),
            "test_mse_linear_ae": reconstruction_error(test, model.reconstruct(test)),
            "test_mse_pca": reconstruction_error(test, p.inverse_transform(p.transform(test))),
            "explained_variance": p.explained_variance.tolist(),
        }
    if not all(math.isfinite(v) for v in metrics.values() if isinstance(v, float)):
        raise FloatingPointError("the linear AE did not converge (non-finite metrics)")
    if out is not None:
        from graphvae.plotting import plot_image_rows, plot_latent

        save_atomic({"task": "vector-linear", "state_dict": model.state_dict(), "k": k,
                     "pca_components": p.components, "pca_mean": p.mean}, out / "model.pt")
        m = min(10, test.size(0))
        with torch.no_grad():
            rows = [("test data", test[:m].numpy()),
                    ("linear AE", model.reconstruct(test[:m]).numpy()),
                    ("PCA", p.inverse_transform(p.transform(test[:m])).numpy()),
                    ("decoder columns", _unit(model.W2.detach().T[:m]).numpy()),
                    ("PCA components", _unit(p.components[:m]).numpy())]
        plot_image_rows(rows, out / "reconstructions.png", data.image_shape,
                        f"linear AE (rotation-augmented) vs PCA, k = {k}")
        with torch.no_grad():
            plot_latent(model.encode(test).numpy(), out / "codes.png",
                        title="linear AE codes of the test split (PCA)")
        write_json({**metrics, "config": cfg.to_dict()},
                   out / "metrics.json")
    return metrics


def _unit(w: torch.Tensor) -> torch.Tensor:
    """Rows rescaled to [0, 1] for display."""
    lo = w.min(1, keepdim=True).values
    hi = w.max(1, keepdim=True).values
    return (w - lo) / (hi - lo).clamp_min(1e-12)
