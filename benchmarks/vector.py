"""Vector autoencoders: static binarized MNIST test NLL (VAE, IWAE K=5, 50) and PCA vs the
linear autoencoder on digits.

    python benchmarks/vector.py                       # full (about 2.5 hours on 2 CPU cores)
    python benchmarks/vector.py --only mnist --resume # reuse finished checkpoints
    python benchmarks/vector.py --smoke               # seconds
    python benchmarks/vector.py --proxy runs/bench_vector/mnist_vae.pt  # validation proxy

MNIST (Larochelle & Murray's fixed binarization, 50k/10k/10k): an MLP VAE
784-300-300-40 with gated linear units (two gated hidden layers of 300 units each
way, Bernoulli decoder: the MLP of Tomczak & Welling's VampPrior paper; ``--hidden
400 --activation relu`` is pythae's 784-400-40 ReLU network) trained with Adam (lr
1e-3, batch 100) on the single-sample ELBO with the KL term warmed up linearly over
250 epochs, Polyak averaging of the weights (0.998 per step), and the rate cut by
0.3 after every 5 epochs without a better validation ELBO (stop below 2e-5); the
averaged weights with the best validation ELBO are kept. The IWAE rows start from
that VAE and continue on the IWAE_K objective (K = 5, 50 by default, ``--iwae-k``;
lr 3e-4, same schedule and averaging, at most 40 epochs, matrix products in
bfloat16 unless --no-iwae-bf16), selected on the validation IWAE_K; their time
includes the VAE's. Test NLL is ``-log p(x)`` estimated by importance sampling with
5000 samples from q(z|x) per test image (Burda et al. 2016), in float32, in nats,
averaged over the 10,000 test images; then (unless --refine-epochs 0) a copy of each
model has its encoder alone trained for 5 more epochs on IWAE_50 (decoder frozen)
and the same estimate is made with that proposal: the same model, a tighter
estimate of its log-likelihood. Every model's initial weights come from --seed
(torch.manual_seed right before it is built), so a full run and ``--only mnist``
train the same VAE.

Digits: PCA by SVD against a linear autoencoder trained by gradient descent,
plain and with the rotation-augmented gradient (Bao et al. 2020) and non-uniform
L2 (Kunin et al. 2019): subspace distance, axis alignment, reconstruction error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from graphvae.checks import MAX_LR, check_count, check_seed, check_widths
from graphvae.devices import resolve_device
from graphvae.errors import DataError, OneLineParser, run_script
from graphvae.io import load_torch, read_json, write_json
from graphvae.provenance import environment
from graphvae.vector import (
    VectorData,
    build_vector_model,
    estimate_nll,
    evaluate_bound,
    load_digits,
    load_mnist,
    load_vector_model,
    refine_encoder,
    save_checkpoint,
    train_vector,
)
from graphvae.vector.layers import ACTIVATIONS

RESULTS = Path(__file__).resolve().parent / "results"

# Published test NLL (nats) on static binarized MNIST, for the table (pythae's
# reproducibility table, examples/scripts/reproducibility/README.md).
PUBLISHED = {
    "vae": ("pythae reproduced VAE 784-400-40: 89.78 with 200 importance samples "
            "(reference 89.9, Rezende & Mohamed 2015)", 89.78),
    "iwae-5": ("no published figure for this binarization in the issue", None),
    "iwae-50": ("reference 87.1 (Burda et al. 2016, as listed by pythae); pythae's "
                "reproduction, 784-200-200-50 tanh trained 3,280 epochs: 86.82", 87.1),
}


def _finished(path: Path, device: torch.device) -> tuple:
    """A finished row's model file: the model, its training seconds and best epoch."""
    model = load_vector_model(path).to(device)       # checks the file (one-line errors)
    info = load_torch(path, "checkpoint", "not a torch checkpoint")
    result = info.get("result") if isinstance(info, dict) else None
    if not isinstance(result, dict) or not {"seconds", "best_epoch"} <= set(result):
        raise DataError(path, "a vector checkpoint without its training result (seconds, "
                              "best_epoch): rerun the row without --resume")
    return model, result["seconds"], result["best_epoch"]


def _evaluated(model, args, data, cache: Path, key: dict, with_elbo: bool = False) -> dict:
    """The test NLL (and ELBO) of ``model``; with --resume, read from ``cache`` when it
    was written under the same ``key`` (sample count, ...), else computed and cached."""
    cached = read_json(cache) if args.resume and cache.is_file() else {}
    cached = cached if isinstance(cached, dict) else {}
    if all(cached.get(k) == v for k, v in key.items()):
        return cached
    start = time.perf_counter()
    res = {"test_nll": estimate_nll(model, data.test, args.nll_samples, args.nll_batch,
                                    args.seed, not args.quiet)}
    res["nll_eval_seconds"] = time.perf_counter() - start
    if with_elbo:
        res["test_elbo"] = evaluate_bound(model, data.test, "elbo", 1, seed=args.seed)
    write_json({**res, **key}, cache)
    return res


def run_mnist(args, data, work: Path, recipe: dict) -> list[dict]:
    work.mkdir(parents=True, exist_ok=True)
    check_recipe(work / "recipe.json", {**recipe, "data": data.fingerprint()}, args.resume)
    rows = []
    arch = {"latent_dim": args.latent, "hidden": tuple(args.hidden), "likelihood": "bernoulli",
            "activation": args.activation}
    if args.encoder_noise > 0:  # the encoder sees x + σε in training (a denoising VAE)
        arch.update(corruption="gaussian", noise_level=args.encoder_noise)
    vae_path = work / "mnist_vae.pt"
    vae_seconds = 0.0
    stages: list[tuple[str, str, int, Path | None]] = [("vae", "elbo", 1, None)]
    stages += [(f"iwae-{k}", "iwae", k, vae_path) for k in args.iwae_k]
    for name, objective, k, init in stages:
        path = work / f"mnist_{name}.pt"
        if args.resume and path.is_file():
            model, seconds, best_epoch = _finished(path, args.device)
        else:
            torch.manual_seed(args.seed)  # the initial weights, whatever ran before
            model = build_vector_model("vae", 784, **arch).to(args.device)
            if init is not None:
                model.load_state_dict(load_vector_model(init).state_dict())
            epochs = args.epochs if init is None else args.iwae_epochs
            res = train_vector(model, data.train, data.valid, objective=objective,
                               num_samples=k, epochs=epochs, batch_size=args.batch_size,
                               lr=args.lr if init is None else args.iwae_lr,
                               patience=args.patience, lr_decay=args.lr_decay,
                               decay_patience=args.decay_patience, min_lr=args.min_lr,
                               ema=args.ema, kl_warmup=args.kl_warmup if init is None else 0,
                               bf16=args.iwae_bf16 and init is not None,
                               weight_decay=args.weight_decay, seed=args.seed,
                               progress=not args.quiet, state=work / "state" / f"{name}.pt",
                               resume=args.resume)
            seconds, best_epoch = res.seconds, res.best_epoch
            save_checkpoint(model, path, name=name,
                            result={"seconds": seconds, "best_epoch": best_epoch,
                                    "history": res.history})
        if name == "vae":
            vae_seconds = seconds
        total_seconds = seconds + (vae_seconds if init is not None else 0.0)
        ev = _evaluated(model, args, data, work / f"mnist_{name}_eval.json",
                        {"nll_samples": args.nll_samples}, with_elbo=True)
        nll, eval_s, test_elbo = ev["test_nll"], ev["nll_eval_seconds"], ev["test_elbo"]
        published = PUBLISHED.get(name, ("no published figure listed", None))
        row = {"model": name, "objective": objective, "K": k, "test_nll": nll,
               "test_elbo": test_elbo, "best_epoch": best_epoch,
               "train_seconds": total_seconds, "nll_eval_seconds": eval_s,
               "nll_samples": args.nll_samples, "published": published[0],
               "published_nll": published[1],
               "init": "trained VAE" if init is not None else "random"}
        if args.refine_epochs:
            row.update(refined_proposal(args, data, model, name, work))
        rows.append(row)
        print(f"{name:8s} test NLL {nll:7.2f} nats  (ELBO {-test_elbo:7.2f}; best epoch "
              f"{best_epoch}; train {total_seconds / 60:.1f} min)", flush=True)
        if args.refine_epochs:
            print(f"{'':8s} with the refined proposal {row['test_nll_refined']:7.2f} nats "
                  f"(refining {row['refine_seconds'] / 60:.1f} min)", flush=True)
    return rows


def check_recipe(path: Path, recipe: dict, resume: bool) -> None:
    """``--resume`` reuses the checkpoints and cached test NLLs of ``--workdir`` only when
    ``recipe.json`` there records this recipe and data (another recipe's models were
    reported under this one's settings); a fresh run records them."""
    recipe = json.loads(json.dumps(recipe))          # as JSON reads it back (tuples: lists)
    if resume and any(path.parent.glob("mnist_*")):
        if not path.is_file():
            raise ValueError(f"--resume: {path.parent} holds checkpoints without a record of "
                             f"their recipe (recipe.json): rerun without --resume")
        saved = read_json(path)
        differ = sorted(k for k in set(saved) | set(recipe)
                        if not isinstance(saved, dict) or saved.get(k) != recipe.get(k))
        if differ:
            raise ValueError(f"--resume: the checkpoints in {path.parent} were made with other "
                             f"settings or data ({', '.join(differ)} differ): give the same "
                             f"flags, or rerun without --resume")
    write_json(recipe, path)


def refined_proposal(args, data, model, name: str, work: Path) -> dict:
    """The same model's test NLL with its encoder alone trained further on IWAE_K
    (decoder frozen; training set; selected on the validation IWAE_K): a better
    importance-sampling proposal, hence a tighter estimate of the same log p(x)."""
    path = work / f"mnist_{name}_refined.pt"
    if args.resume and path.is_file():
        refined, seconds, best_epoch = _finished(path, args.device)
    else:
        refined, res = refine_encoder(
            model, data.train, data.valid, num_samples=args.refine_k,
            epochs=args.refine_epochs, batch_size=args.batch_size, lr=args.iwae_lr,
            ema=args.ema, bf16=args.iwae_bf16, seed=args.seed, progress=not args.quiet,
            state=work / "state" / f"{name}_refined.pt", resume=args.resume)
        seconds, best_epoch = res.seconds, res.best_epoch
        save_checkpoint(refined, path, name=f"{name}-refined",
                        result={"seconds": seconds, "best_epoch": best_epoch})
    ev = _evaluated(refined, args, data, work / f"mnist_{name}_refined_eval.json",
                    {"nll_samples": args.nll_samples, "refine_k": args.refine_k})
    return {"test_nll_refined": ev["test_nll"], "refine_k": args.refine_k,
            "refine_best_epoch": best_epoch, "refine_seconds": seconds,
            "refine_nll_eval_seconds": ev["nll_eval_seconds"]}


PROXY_IMAGES, PROXY_SAMPLES = 1000, 500


def validation_proxy(model, valid: torch.Tensor, seed: int) -> dict:
    """How recipes are compared without the test set: the 500-sample NLL on 1,000
    validation images (a fixed permutation, seed 1) and the validation ELBO."""
    idx = torch.randperm(valid.size(0), generator=torch.Generator().manual_seed(1))
    nll = estimate_nll(model, valid[idx[:PROXY_IMAGES]], PROXY_SAMPLES, 100, seed)
    return {"proxy_nll": nll, "valid_elbo": evaluate_bound(model, valid, "elbo", 1, seed=seed)}


SYNTHETIC_SPECTRUM = [10.0, 8.0, 6.0, 4.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]


def run_denoise(args) -> dict:
    from graphvae.vector.checks import gaussian_denoiser_error, spiral_field_cosine

    seeds = range(args.seed, args.seed + (1 if args.smoke else 3))
    ep_gauss, ep_spiral = (5, 5) if args.smoke else (120, 60)
    gauss = [gaussian_denoiser_error(seed=s, epochs=ep_gauss) for s in seeds]
    spiral = [spiral_field_cosine(seed=s, epochs=ep_spiral)[0] for s in seeds]
    print(f"denoising: gaussian relative error {gauss}, spiral cosine {spiral}", flush=True)
    return {"gaussian_relative_error": gauss, "spiral_mean_cosine_near_curve": spiral,
            "seeds": list(seeds), "epochs": {"gaussian": ep_gauss, "spiral": ep_spiral}}


def run_linear(args) -> dict:
    from graphvae.vector.linear import compare_pca_linear_ae, synthetic_spectrum

    data = load_digits(args.seed)
    x = torch.cat([data.train, data.valid, data.test]).double()
    xs, _ = synthetic_spectrum(2000, SYNTHETIC_SPECTRUM, seed=args.seed)
    out = {}
    sets = [("synthetic", xs, 5), ("digits", x, args.pca_k)]
    for name, mat, k in sets[:1] if args.smoke else sets:  # smoke: the checked set only
        res = compare_pca_linear_ae(mat, k=k, steps=args.linear_steps, seed=args.seed,
                                    progress=not args.quiet)
        out[name] = res
        for row in res["linear_ae"]:
            print(f"{name:9s} {row['ordering']:8s} subspace {row['subspace_distance']:.1e}  "
                  f"max 1-cos² {row['axis_alignment_max']:.1e}  error/discarded - 1 "
                  f"{row['relative_error_vs_discarded']:+.1e}  ({row['seconds']:.1f}s)",
                  flush=True)
    return out


def _smoke_mnist(root) -> VectorData:
    """The first MNIST rows, or (no data files) random binary 28×28 'images' of the same size."""
    try:
        d = load_mnist(root)
        return VectorData(d.train[:200], d.valid[:100], d.test[:100], "mnist", (28, 28))
    except ValueError:
        g = torch.Generator().manual_seed(0)
        protos = (torch.rand(10, 784, generator=g) < 0.13).float()
        x = protos[torch.randint(0, 10, (400,), generator=g)]
        x = torch.where(torch.rand(x.shape, generator=g) < 0.02, 1 - x, x)
        return VectorData(x[:200], x[200:300], x[300:], "random binary stand-in", (28, 28))


def main(argv=None) -> int:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--smoke", action="store_true", help="tiny run (seconds)")
    p.add_argument("--only", choices=["mnist", "linear", "denoise"], help="run one part")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=[300, 300],
                   help="MNIST hidden widths, encoder order [300 300]")
    p.add_argument("--latent", type=int, default=40, help="MNIST latent size [40]")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="gated",
                   help="MNIST hidden layers: gated (gated linear units, as in Tomczak & "
                        "Welling 2018), relu, tanh or elu [gated]")
    p.add_argument("--epochs", type=int, default=600, help="VAE epochs (max) [600]")
    p.add_argument("--iwae-k", type=int, nargs="*", default=[5, 50],
                   help="the IWAE rows' K, each fine-tuned from the VAE [5 50]")
    p.add_argument("--iwae-epochs", type=int, default=40, help="IWAE epochs after the VAE [40]")
    p.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without a better validation bound")
    p.add_argument("--batch-size", type=int, default=100, help="minibatch size [100]")
    p.add_argument("--lr", type=float, default=1e-3, help="VAE learning rate [1e-3]")
    p.add_argument("--iwae-lr", type=float, default=3e-4, help="IWAE learning rate [3e-4]")
    p.add_argument("--lr-decay", type=float, default=0.3,
                   help="rate factor after each validation plateau [0.3]")
    p.add_argument("--decay-patience", type=int, default=5, help="plateau length (epochs) [5]")
    p.add_argument("--min-lr", type=float, default=2e-5, help="stop below this rate [2e-5]")
    p.add_argument("--kl-warmup", type=int, default=250,
                   help="VAE: KL weight rises linearly from 0 to 1 over these epochs [250]")
    p.add_argument("--ema", type=float, default=0.998,
                   help="weight averaging factor per step (Polyak) [0.998]")
    p.add_argument("--encoder-noise", type=float, default=0.0,
                   help="training only: Gaussian noise of this std added to the encoder's "
                        "input (0: off) [0]")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="decoupled (AdamW) weight decay, every stage (0: Adam) [0]")
    p.add_argument("--iwae-bf16", action=argparse.BooleanOptionalAction, default=True,
                   help="IWAE training steps with bfloat16 matrix products (autocast; "
                   "validation and the test NLL stay float32) [on]")
    p.add_argument("--refine-epochs", type=int, default=5,
                   help="then train each model's encoder alone (decoder frozen) on IWAE_K for "
                        "this many epochs and report the test NLL with that proposal too "
                        "(0: off) [5]")
    p.add_argument("--refine-k", type=int, default=50,
                   help="K of the IWAE_K objective that refines the proposal [50]")
    p.add_argument("--nll-samples", type=int, default=5000)
    p.add_argument("--nll-batch", type=int, default=100)
    p.add_argument("--pca-k", type=int, default=8)
    p.add_argument("--linear-steps", type=int, default=20000)
    p.add_argument("--resume", action="store_true", help="reuse checkpoints in --workdir")
    p.add_argument("--workdir", default=None,
                   help="checkpoints and training states [runs/bench_vector; with --smoke a "
                        "temporary folder, removed afterwards]")
    p.add_data_root("mnist/")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/vector.json; "
                        "vector.smoke.json with --smoke]")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--device", default="cpu", help="MNIST part: cpu, cuda, cuda:N or auto [cpu]")
    p.add_argument("--proxy", type=Path, nargs="+", metavar="CKPT",
                   help="only print the validation proxy (500-sample NLL on 1,000 validation "
                        "images, validation ELBO) of these MNIST checkpoints")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "vector.json", args.smoke)
    for flag in ("encoder_noise", "weight_decay", "refine_epochs"):
        if not getattr(args, flag) >= 0:
            p.error(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    if any(k < 1 for k in args.iwae_k):
        p.error(f"--iwae-k values must be >= 1, got {args.iwae_k}")
    if args.refine_k < 1:
        p.error(f"--refine-k must be >= 1, got {args.refine_k}")
    try:
        args.device = resolve_device(args.device)
    except ValueError as err:
        p.error(str(err))
    missing = [str(path) for path in args.proxy or [] if not path.is_file()]
    if missing:
        p.error(f"--proxy: no such checkpoint: {', '.join(missing)}")
    if args.proxy:
        valid = (_smoke_mnist(args.data_root) if args.smoke
                 else load_mnist(args.data_root)).valid.to(args.device)
        for path in args.proxy:
            res = validation_proxy(load_vector_model(path).to(args.device), valid, args.seed)
            print(f"{path}: proxy NLL {res['proxy_nll']:.3f}  valid ELBO "
                  f"{res['valid_elbo']:.3f}", flush=True)
        return 0
    try:
        check_flags(args)
    except ValueError as err:
        p.error(str(err))
    if args.only and args.out.is_file():
        read_report(args.out)                  # refused before the runs, not after
    if args.smoke:
        args.epochs, args.iwae_epochs, args.patience, args.kl_warmup = 2, 1, None, 1
        args.refine_epochs, args.refine_k = min(args.refine_epochs, 1), min(args.refine_k, 5)
        args.nll_samples, args.linear_steps, args.pca_k = 50, 2000, 4
        args.resume = args.resume and args.workdir is not None
    report: dict = {"seed": args.seed, "torch_threads": torch.get_num_threads(),
                    "smoke": args.smoke}
    env: dict = {}                                 # per part: parts may come from other runs
    data: VectorData | None = None
    if args.only in (None, "mnist"):               # read first: a missing file is found
        if args.smoke:                             # before the other parts run
            data = _smoke_mnist(args.data_root)
            report["mnist_source"] = data.name
        else:
            data = load_mnist(args.data_root)
    if args.only in (None, "linear"):
        report["linear"], env["linear"] = run_linear(args), environment()
    if args.only in (None, "denoise"):
        report["denoise"], env["denoise"] = run_denoise(args), environment()
    if data is not None:
        data = VectorData(data.train.to(args.device), data.valid.to(args.device),
                          data.test.to(args.device), data.name, data.image_shape)
        recipe = {k: getattr(args, k) for k in RECIPE}
        with workdir(args) as work:
            report["mnist"] = run_mnist(args, data, work, recipe)
        env["mnist"] = environment(args.device)
        report["mnist_device"] = str(args.device)
        report["mnist_recipe"] = recipe
    if args.only and args.out.is_file():
        # read again now: what another run wrote into the file meanwhile is kept
        old = read_report(args.out)
        report = {**old, **report, "environment": {**old.get("environment", {}), **env}}
    else:
        report["environment"] = env
    write_json(report, args.out)
    print(f"wrote {args.out}")
    return 0


#: The settings of the MNIST models: a --resume continues only checkpoints made with them.
RECIPE = ("hidden", "latent", "activation", "epochs", "iwae_k", "iwae_epochs", "batch_size",
          "lr", "iwae_lr", "lr_decay", "decay_patience", "min_lr", "ema", "kl_warmup",
          "patience", "iwae_bf16", "encoder_noise", "weight_decay", "refine_epochs",
          "refine_k", "seed")


def check_flags(args) -> None:
    """Every numeric flag, before any part runs (the MNIST part's were read only after the
    linear and denoising parts, minutes in)."""
    check_seed(args.seed, "--seed")
    for flag in ("epochs", "iwae_epochs", "batch_size", "decay_patience", "nll_samples",
                 "nll_batch", "pca_k", "linear_steps"):            # (--refine-k: main's)
        check_count(f"--{flag.replace('_', '-')}", getattr(args, flag))
    check_count("--kl-warmup", args.kl_warmup, minimum=0)   # (--refine-epochs: main's)
    if args.patience is not None:
        check_count("--patience", args.patience)
    check_widths("--hidden", tuple(args.hidden))
    check_widths("--latent", args.latent)
    for flag in ("lr", "iwae_lr", "min_lr"):
        value = getattr(args, flag)
        if not 0 < value <= MAX_LR:
            raise ValueError(f"--{flag.replace('_', '-')} must lie in (0, {MAX_LR:g}], "
                             f"got {value}")
    if not 0 < args.lr_decay < 1 or not 0 < args.ema < 1:
        raise ValueError(f"--lr-decay and --ema must lie in (0, 1), got {args.lr_decay} "
                         f"and {args.ema}")
    for flag in ("encoder_noise", "weight_decay"):          # (main refused below 0)
        if not getattr(args, flag) < math.inf:
            raise ValueError(f"--{flag.replace('_', '-')} must be a finite number >= 0, "
                             f"got {getattr(args, flag)}")
    if args.workdir is not None and Path(args.workdir).exists() \
            and not Path(args.workdir).is_dir():
        raise ValueError(f"--workdir {args.workdir} is a file, not a folder")


def read_report(path: Path) -> dict:
    """The vector report at ``path`` whose other parts a one-part run (``--only``) keeps; a
    one-line ``ValueError`` for a file that is not one."""
    old = read_json(path)
    if not isinstance(old, dict) or not isinstance(old.get("environment", {}), dict):
        raise ValueError(f"--out {path} is not a vector report (a JSON object of parts), and "
                         f"a one-part run would replace it: name another file")
    return old


@contextlib.contextmanager
def workdir(args):
    """The MNIST part's folder of checkpoints: ``--workdir``; by default
    ``runs/bench_vector``, or with ``--smoke`` a temporary folder removed afterwards (smoke
    checkpoints went beside ``--out`` and replaced files there)."""
    if args.workdir is not None or not args.smoke:
        yield Path(args.workdir or "runs/bench_vector")
        return
    with tempfile.TemporaryDirectory(prefix="bench_vector_smoke_") as tmp:
        yield Path(tmp)


if __name__ == "__main__":
    sys.exit(run_script(main))
