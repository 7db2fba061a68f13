"""Command line: ``graphvae <task> ...``.

``graphvae linkpred`` with no arguments trains a VGAE on the embedded synthetic
graph (no files needed). Errors in the user's input end the program with one
line ``graphvae: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from graphvae.datasets import LINKPRED_DATASETS, load_dataset, load_graph_file
from graphvae.devices import resolve_device
from graphvae.encoders import ENCODERS
from graphvae.errors import describe, one_line
from graphvae.io import check_output_folder, output_folder
from graphvae.tasks.link_prediction import (
    FEATURE_MODES,
    PRESETS,
    LinkPredConfig,
    run_link_prediction,
    summarize,
)


def _linkpred_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, metavar="NAME",
                     help=f"one of {', '.join(LINKPRED_DATASETS)} (default: synthetic)")
    src.add_argument("--edges", type=Path, metavar="FILE",
                     help="your graph: edge list (.csv/.tsv/whitespace) or .graphml/.gml")
    p.add_argument("--features", type=Path, metavar="FILE",
                   help="node-feature CSV for --edges (first column: node id)")
    p.add_argument("--model", default="vgae", choices=sorted(PRESETS),
                   help="gae, vgae, joint, or best (GNAE encoder, see README) [vgae]")
    p.add_argument("--encoder", choices=sorted(ENCODERS), help="override the model's encoder")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--lr", type=float, help="override the learning rate")
    p.add_argument("--estimator", choices=["sampled", "dense"],
                   help="edge likelihood: sampled non-edges or all n² pairs")
    p.add_argument("--feature-mode", choices=list(FEATURE_MODES),
                   help="input features: raw, row-normalised, column-standardised, or identity "
                        "(featureless)")
    p.add_argument("--config", type=Path, metavar="JSON",
                   help="a JSON file of LinkPredConfig fields (unknown keys are an error)")
    p.add_argument("--seed", type=int, default=0, help="first seed [0]")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds to average [1]")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto [cpu]")
    p.add_argument("--data-root", type=Path, help="folder holding Planetoid/<Name>/raw "
                   "(default: $GRAPHVAE_DATA, else ./data)")
    p.add_argument("--out", type=Path, metavar="DIR", help="write metrics, checkpoint, "
                   "embeddings, predicted links and plots here")
    p.add_argument("--top-k", type=int, default=100, help="predicted new links to export [100]")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object on the last line of stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _config(args: argparse.Namespace) -> LinkPredConfig:
    cfg = PRESETS[args.model]
    if args.config is not None:
        try:
            fields = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read config {args.config}: {err}") from None
        if not isinstance(fields, dict):
            raise ValueError(f"config {args.config} must hold a JSON object of config fields")
        cfg = cfg.replace(**fields)
    overrides = {"encoder": args.encoder, "epochs": args.epochs, "lr": args.lr,
                 "estimator": args.estimator, "features": args.feature_mode}
    return cfg.replace(**{k: v for k, v in overrides.items() if v is not None})


def _load(args: argparse.Namespace):
    if args.features is not None and args.edges is None:
        raise ValueError("--features needs --edges")
    if args.edges is not None:
        return load_graph_file(args.edges, args.features), str(args.edges)
    name = args.dataset or "synthetic"
    return load_dataset(name, args.data_root), name


def run_linkpred(args: argparse.Namespace) -> dict[str, Any]:
    if args.seeds < 1 or args.seed < 0:
        raise ValueError(f"--seeds must be at least 1 and --seed at least 0, got {args.seeds} "
                         f"and {args.seed}")
    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    if args.out is not None:
        check_output_folder(args.out)
    device = resolve_device(args.device)
    cfg = _config(args)
    data, name = _load(args)
    with output_folder(args.out, "graphvae linkpred") as stage:
        summary = _linkpred_runs(args, cfg, data, name, device, stage)
    return summary


def _linkpred_runs(args: argparse.Namespace, cfg: LinkPredConfig, data, name: str,
                   device, stage: Path | None) -> dict[str, Any]:
    runs, first = [], None
    for seed in range(args.seed, args.seed + args.seeds):
        ckpt = stage / "model.pt" if stage is not None and first is None else None
        res = run_link_prediction(data, cfg, seed, device, progress=not args.quiet,
                                  checkpoint=str(ckpt) if ckpt else None)
        first = first or res
        m = res.metrics
        runs.append(m)
        print(f"seed {seed}: test AUC {100 * m['test_auc']:.2f}  AP {100 * m['test_ap']:.2f}  "
              f"(val {100 * m['val_auc']:.2f} / {100 * m['val_ap']:.2f}, best epoch "
              f"{m['best_epoch']}, {m['seconds']:.1f}s)", file=sys.stderr if args.json else None)
    stats = summarize(runs)
    summary: dict[str, Any] = {k: v["mean"] for k, v in stats.items()}
    summary.update({f"{k}_std": v["std"] for k, v in stats.items()})
    summary.update({"epochs": int(sum(r["epochs"] for r in runs) / len(runs)),
                    "seconds": sum(r["seconds"] for r in runs), "dataset": name,
                    "num_nodes": data.num_nodes, "num_edges": data.edge_index.size(1) // 2,
                    "seeds": list(range(args.seed, args.seed + args.seeds)), "preset": args.model,
                    "device": str(device), "config": cfg.to_dict(), "runs": runs})
    if stage is not None and first is not None:
        from graphvae.tasks.exports import export_link_prediction
        export_link_prediction(stage, first, summary, data.edge_index,
                               getattr(data, "node_names", None), getattr(data, "y", None),
                               args.top_k)
    return summary


def _report(summary: dict[str, Any], as_json: bool) -> None:
    line = (f"{summary['dataset']} {summary['preset']}: test AUC "
            f"{100 * summary['test_auc']:.2f} ± {100 * summary['test_auc_std']:.2f}, AP "
            f"{100 * summary['test_ap']:.2f} ± {100 * summary['test_ap_std']:.2f} over "
            f"{len(summary['seeds'])} seed(s)")
    if as_json:
        print(line, file=sys.stderr)
        print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))
    else:
        print(line)


def _invariance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="model.pt written by linkpred or generate --out")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, metavar="NAME",
                     help=f"one of {', '.join(LINKPRED_DATASETS)} (default: synthetic)")
    src.add_argument("--edges", type=Path, metavar="FILE", help="your graph (as for linkpred)")
    p.add_argument("--features", type=Path, metavar="FILE")
    p.add_argument("--data-root", type=Path)
    p.add_argument("--num-graphs", type=int, default=8,
                   help="generation checkpoints: test graphs of the run's data set to check [8]")
    p.add_argument("--permutations", type=int, default=10, help="random relabellings [10]")
    p.add_argument("--atol", type=float, default=1e-5, help="tolerance [1e-5]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float32", action="store_true", help="check in float32 (default float64)")


def run_invariance(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.tasks.invariance import (
        check_model,
        format_table,
        generation_graphs,
        load_model,
    )
    from graphvae.tasks.link_prediction import prepare_features
    if args.permutations < 1:
        raise ValueError(f"--permutations must be at least 1, got {args.permutations}")
    if not math.isfinite(args.atol) or args.atol < 0:
        raise ValueError(f"--atol must be a finite number >= 0, got {args.atol}")
    if args.num_graphs < 1:
        raise ValueError(f"--num-graphs must be at least 1, got {args.num_graphs}")
    model, cfg, ck = load_model(args.checkpoint)
    graphs: list[tuple]
    if ck["task"] == "generation":
        if args.dataset or args.edges or args.features:
            raise ValueError("a generation checkpoint is checked on its own data set's test "
                             "graphs: drop --dataset / --edges / --features")
        graphs, name = generation_graphs(cfg, args.data_root, args.num_graphs)
    else:
        data, name = _load(args)
        x = prepare_features(data, cfg.features)
        if x.size(1) != ck["in_channels"]:
            raise ValueError(f"the checkpoint expects {ck['in_channels']} input features but "
                             f"{name} has {x.size(1)}")
        graphs = [(x, data.edge_index)]
    devs = check_model(model, graphs, args.permutations, args.atol, args.seed,
                       float64=not args.float32)
    print(format_table(devs, args.atol))
    failed = [d.component for d in devs if not d.value <= args.atol]
    return {"ok": not failed, "failed": failed, "dataset": name,
            "deviations": {d.component: d.value for d in devs}}


def _widths(text: str) -> tuple[int, ...]:
    """``--hidden 64,64`` → ``(64, 64)``, or a one-line error."""
    try:
        hidden = tuple(int(h) for h in str(text).split(",") if h.strip())
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers, got {text!r}") from None
    if not hidden or any(h < 1 for h in hidden):
        raise ValueError(f"--hidden needs at least one width >= 1, got {text!r}")
    return hidden


def _vector_args(p: argparse.ArgumentParser) -> None:
    from graphvae.vector.models import ACTIVATIONS
    from graphvae.vector.run import MODEL_CHOICES

    p.add_argument("--model", default="vae", choices=MODEL_CHOICES,
                   help="linear (vs PCA), ae, dae, vae or iwae [vae]")
    p.add_argument("--data", default="digits", metavar="digits|mnist|FILE",
                   help="scikit-learn's digits (embedded), static binarized mnist, or a "
                   ".npy / .csv matrix (rows = data points) [digits]")
    p.add_argument("--data-root", type=Path, help="folder holding mnist/ (default: "
                   "$GRAPHVAE_DATA, else ./data)")
    p.add_argument("--latent-dim", type=int, help="code size (default 2 / 10 / 40 by data size)")
    p.add_argument("--hidden", default="400", help="hidden widths, comma-separated [400]")
    p.add_argument("--activation", default="relu", choices=sorted(ACTIVATIONS),
                   help="hidden layers; gated: gated linear units (W x + b) * sigmoid(V x + c) "
                        "[relu]")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"],
                   help="decoder (default: bernoulli for 0/1 data, else gaussian)")
    p.add_argument("--variance", default="learned",
                   help="gaussian decoder variance: 'learned' or a number [learned]")
    p.add_argument("--binarize", action="store_true", help="threshold the data at 0.5 first")
    p.add_argument("--standardize", action="store_true",
                   help="scale every column to mean 0, variance 1 on the training rows first "
                        "(needed from magnitude 100 on); metrics also give test_nll in the "
                        "original units")
    p.add_argument("--corruption", default="gaussian",
                   choices=["gaussian", "masking", "salt_and_pepper"], help="dae noise [gaussian]")
    p.add_argument("--noise", type=float, default=0.1, help="dae noise level [0.1]")
    p.add_argument("--k", type=int, default=5, help="IWAE importance samples K [5]")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=20, help="early-stopping patience [20]")
    p.add_argument("--lr-decay", type=float, help="multiply the rate by this after each "
                   "validation plateau of --decay-patience epochs (default: constant rate)")
    p.add_argument("--decay-patience", type=int, default=5, help="plateau length [5]")
    p.add_argument("--ema", type=float, help="average the weights, e.g. 0.998 (Polyak)")
    p.add_argument("--kl-warmup", type=int, default=0,
                   help="vae: raise the KL weight from 0 to 1 over this many epochs [0]")
    p.add_argument("--bf16", action="store_true", help="training steps' matrix products in "
                   "bfloat16 (autocast; weights, bounds and evaluation stay float32)")
    p.add_argument("--nll-samples", type=int, default=5000,
                   help="importance samples for the test log p(x) [5000]")
    p.add_argument("--refine-epochs", type=int, default=0,
                   help="vae / iwae: then train the encoder alone (decoder frozen) on IWAE_50 "
                        "for this many epochs and also report test_nll_refined, the same "
                        "model's log p(x) with that better proposal (0: off) [0]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto [cpu]")
    p.add_argument("--out", type=Path, metavar="DIR", help="write metrics, checkpoint and plots")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_vector_cmd(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.vector.data import load_vector_data
    from graphvae.vector.run import VectorRunConfig, run_vector

    hidden = _widths(args.hidden)
    variance: str | float = args.variance
    if variance != "learned":
        try:
            variance = float(variance)
        except ValueError:
            raise ValueError(f"--variance must be 'learned' or a number, got "
                             f"{variance!r}") from None
    cfg = VectorRunConfig(model=args.model, latent_dim=args.latent_dim, hidden=hidden,
                          activation=args.activation, likelihood=args.likelihood, variance=variance,
                          corruption=args.corruption, noise_level=args.noise,
                          num_samples=args.k, epochs=args.epochs, batch_size=args.batch_size,
                          lr=args.lr, patience=args.patience, lr_decay=args.lr_decay,
                          decay_patience=args.decay_patience, ema=args.ema,
                          kl_warmup=args.kl_warmup, bf16=args.bf16,
                          nll_samples=args.nll_samples, refine_epochs=args.refine_epochs,
                          seed=args.seed, device=args.device)
    cfg.validate()
    if args.out is not None:
        check_output_folder(args.out)
    data = load_vector_data(str(args.data), args.data_root, args.seed)
    if args.binarize:
        data = data.binarized()
    if args.standardize:
        data = data.standardized()
    with output_folder(args.out, "graphvae vector") as stage:
        metrics = run_vector(data, cfg, stage, progress=not args.quiet)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    print(json.dumps(shown, indent=1))
    return metrics


def _generate_args(p: argparse.ArgumentParser) -> None:
    from graphvae.tasks.generation import GEN_DATASETS, GEN_MODELS, GRAPHVAE_BOUNDS
    from graphvae.tasks.graph_stats import PROTOCOLS

    p.add_argument("--dataset", metavar="NAME", help=f"one of {', '.join(GEN_DATASETS)} "
                   "(default: a generated community-small set, no files needed)")
    p.add_argument("--generated", action="store_true",
                   help="community-small / grid: use the published generator, not the file")
    p.add_argument("--model", default="oneshot-vae", choices=GEN_MODELS,
                   help=f"{' or '.join(GEN_MODELS)} [oneshot-vae]")
    p.add_argument("--bound", default="matched", choices=GRAPHVAE_BOUNDS,
                   help="graphvae training bound: matched or permutation-sampled [matched]")
    p.add_argument("--num-perms", type=int, default=8,
                   help="random relabellings in the permutation bound [8]")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--latent", type=int, default=16, help="latent width [16]")
    p.add_argument("--hidden", default="64,64", help="encoder widths, comma-separated [64,64]")
    p.add_argument("--conv", default="gin", help="message passing: gcn, sage, gin, gat [gin]")
    p.add_argument("--num-samples", type=int, help="graphs to sample (default: test-set size)")
    p.add_argument("--protocol", default="graphrnn", choices=sorted(PROTOCOLS),
                   help="MMD kernels: graphrnn (Gaussian-EMD), gran (Gaussian-TV), rbf")
    p.add_argument("--max-nodes", type=int, help="graphvae decoder slots (default: largest)")
    p.add_argument("--no-valency", action="store_true",
                   help="qm9: skip the valency-aware decoding")
    p.add_argument("--qm9-limit", type=int, help="qm9: read only the first N rows")
    p.add_argument("--eval-every", type=int, default=10, help="validation every N epochs [10]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto [cpu]")
    p.add_argument("--data-root", type=Path, help="folder holding graphgen/ and qm9/ "
                   "(default: $GRAPHVAE_DATA, else ./data)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write metrics, checkpoint, sampled graphs and a PNG grid")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_generate_cmd(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.tasks.generation import GenerationConfig, run_generation

    hidden = _widths(args.hidden)
    model = args.model
    cfg = GenerationConfig(dataset=args.dataset, generated=args.generated, model=model,
                           bound=args.bound, num_perms=args.num_perms, epochs=args.epochs,
                           batch_size=args.batch_size, lr=args.lr, latent=args.latent,
                           hidden=hidden, conv=args.conv, num_samples=args.num_samples,
                           protocol=args.protocol, max_nodes=args.max_nodes,
                           valency=not args.no_valency, qm9_limit=args.qm9_limit,
                           eval_every=args.eval_every, seed=args.seed, device=args.device)
    cfg.validate()
    if args.out is not None:
        check_output_folder(args.out)
    with output_folder(args.out, "graphvae generate") as stage:
        metrics = run_generation(cfg, args.data_root, stage, progress=not args.quiet)
    print(json.dumps(metrics, indent=1))
    return metrics


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], dict[str, Any]]]] = {
    "linkpred": ("train a graph autoencoder and score held-out links", _linkpred_args,
                 run_linkpred),
    "check-invariance": ("check a saved model's equivariance under node relabelling",
                         _invariance_args, run_invariance),
    "generate": ("train a graph VAE on a set of small graphs, sample and evaluate",
                 _generate_args, run_generate_cmd),
    "vector": ("train a linear AE / AE / denoising AE / VAE / IWAE on vector data",
               _vector_args, run_vector_cmd),
}


def _convert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", type=Path, help="folder holding graphgen/*.pkl (default: "
                   "$GRAPHVAE_DATA, else ./data)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="write DIR/graphgen/<name>.g6 here (may be the data root itself)")


def run_convert(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.datasets.graphgen import convert_graph_sets
    from graphvae.io import resolve_data_root

    written = convert_graph_sets(resolve_data_root(args.data_root), args.out)
    for path in written:
        print(path)
    return {"written": [str(p) for p in written]}


COMMANDS["convert-graphs"] = ("write the stored graph-set pickles as graph6 files (no pickle "
                              "needed afterwards)", _convert_args, run_convert)

#: Exit status of an unexpected internal error (2 is the user's error, 1 a failed check).
INTERNAL_ERROR = 3


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line, like every other error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"graphvae: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphvae", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_, add, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the Python traceback of an error")
        add(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; expected failures end with one line and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        parser.exit(130, "graphvae: interrupted\n")
    except (ValueError, FloatingPointError, OSError, MemoryError) as err:
        if args.debug:
            raise
        text = one_line(str(err)) if isinstance(err, ValueError | FloatingPointError) \
            else describe(err)
        parser.exit(2, f"graphvae: error: {text}\n")
    except Exception as err:  # noqa: BLE001 - one line, never a traceback, unless --debug
        if args.debug:
            raise
        parser.exit(INTERNAL_ERROR, f"graphvae: internal error: {describe(err)} (rerun with "
                                    f"--debug for the traceback)\n")
    if args.command == "check-invariance":
        return 0 if summary["ok"] else 1
    if args.command in ("vector", "generate", "convert-graphs"):
        return 0
    _report(summary, getattr(args, "json", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
