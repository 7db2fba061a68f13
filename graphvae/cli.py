"""Command line: ``graphvae <task> ...``.

``graphvae linkpred`` with no arguments trains a VGAE on the embedded synthetic
graph (no files needed). The flags of each task are generated from its configuration
(:class:`~graphvae.tasks.link_prediction.LinkPredConfig`,
:class:`~graphvae.tasks.generation.GenerationConfig`,
:class:`~graphvae.vector.run.VectorRunConfig`), so their defaults and choices are written
once. Errors in the user's input end the program with one line ``graphvae: error: ...``
and exit status 2; an internal error with one line and exit status 3 (``--debug``
shows the traceback).

With ``--out DIR`` each training run also keeps a resumable state in ``.DIR.state/``
beside ``DIR`` (removed when the run completes); ``--resume`` continues a killed run
from it to the same result.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from graphvae.datasets import LINKPRED_DATASETS, load_dataset, load_graph_file
from graphvae.devices import resolve_device
from graphvae.errors import describe, one_line
from graphvae.io import check_output_folder, output_folder
from graphvae.tasks.link_prediction import PRESETS, LinkPredConfig, run_link_prediction, summarize
from graphvae.threads import threads_for


def _state_dir(args: argparse.Namespace) -> Path | None:
    """Where a run with ``--out DIR`` keeps its resumable training state."""
    if args.out is None:
        if getattr(args, "resume", False):
            raise ValueError("--resume needs --out (the state of a run is kept beside it)")
        return None
    check_output_folder(args.out)
    state = args.out.parent / f".{args.out.name}.state"
    if args.resume and not state.is_dir():
        raise ValueError(f"--resume: no training state of an interrupted run at {state}")
    state.mkdir(parents=True, exist_ok=True)
    return state


def _output_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--out", type=Path, metavar="DIR", help=f"write {what} here")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run into --out from its saved state")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


# ------------------------------------------------------------------------------ linkpred
def _graph_source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, choices=LINKPRED_DATASETS,
                     help="a named graph (default: synthetic, no files needed)")
    src.add_argument("--edges", type=Path, metavar="FILE",
                     help="your graph: edge list (.csv/.tsv/whitespace) or .graphml/.gml")
    p.add_argument("--features", type=Path, metavar="FILE",
                   help="node-feature CSV for --edges (first column: node id)")
    p.add_argument("--data-root", type=Path, help="folder holding Planetoid/<Name>/raw "
                   "(default: $GRAPHVAE_DATA, else ./data)")


def _linkpred_args(p: argparse.ArgumentParser) -> None:
    _graph_source(p)
    p.add_argument("--model", default="vgae", choices=sorted(PRESETS),
                   help="a preset: gae, vgae, joint, or best (GNAE encoder, see README) "
                        "[vgae]; the flags below override its fields")
    LinkPredConfig.add_arguments(p, unset=True)
    p.add_argument("--config", type=Path, metavar="JSON",
                   help="a JSON file of LinkPredConfig fields (unknown keys are an error)")
    p.add_argument("--seed", type=int, default=0, help="first seed [0]")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds to average [1]")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto [cpu]")
    p.add_argument("--top-k", type=int, default=100, help="predicted new links to export [100]")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object on the last line of stdout")
    _output_args(p, "metrics, checkpoint, embeddings, predicted links and plots")


def _config(args: argparse.Namespace) -> LinkPredConfig:
    cfg = PRESETS[args.model]
    if args.config is not None:
        try:
            fields = json.loads(args.config.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read config {args.config}: {err}") from None
        if not isinstance(fields, dict):
            raise ValueError(f"config {args.config} must hold a JSON object of config fields")
        cfg = cfg.replace(**fields)
    return cfg.replace(**LinkPredConfig.given(args))


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
    state = _state_dir(args)
    device = resolve_device(args.device)
    cfg = _config(args)
    data, name = _load(args)
    with output_folder(args.out, "graphvae linkpred") as stage, \
            threads_for(data.num_nodes * max(cfg.hidden + (cfg.latent,)), device):
        summary = _linkpred_runs(args, cfg, data, name, device, stage, state)
    _done(state)
    return summary


def _linkpred_runs(args: argparse.Namespace, cfg: LinkPredConfig, data, name: str,
                   device, stage: Path | None, state: Path | None) -> dict[str, Any]:
    runs, first = [], None
    for seed in range(args.seed, args.seed + args.seeds):
        ckpt = stage / "model.pt" if stage is not None and first is None else None
        res = run_link_prediction(data, cfg, seed, device, progress=not args.quiet,
                                  checkpoint=ckpt, resume=args.resume,
                                  state=None if state is None else state / f"seed{seed}.pt")
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


def _done(state: Path | None) -> None:
    if state is not None:
        shutil.rmtree(state, ignore_errors=True)


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


# ------------------------------------------------------------------------------ check-invariance
def _invariance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="model.pt written by linkpred or generate --out")
    _graph_source(p)
    p.add_argument("--num-graphs", type=int, default=8,
                   help="generation checkpoints: test graphs of the run's data set to check [8]")
    p.add_argument("--permutations", type=int, default=10, help="random relabellings [10]")
    p.add_argument("--atol", type=float, default=1e-5, help="tolerance [1e-5]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float32", action="store_true", help="check in float32 (default float64)")


def run_invariance(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.tasks.invariance import check_model, format_table, generation_graphs, load_model
    from graphvae.tasks.link_prediction import prepare_features
    if args.permutations < 1 or args.num_graphs < 1:
        raise ValueError(f"--permutations and --num-graphs must be at least 1, got "
                         f"{args.permutations} and {args.num_graphs}")
    if not math.isfinite(args.atol) or args.atol < 0:
        raise ValueError(f"--atol must be a finite number >= 0, got {args.atol}")
    model, cfg, ck = load_model(args.checkpoint)
    graphs: list[tuple]
    if ck.get("task") == "generation":
        if args.dataset or args.edges or args.features:
            raise ValueError("a generation checkpoint is checked on its own data set's test "
                             "graphs: drop --dataset / --edges / --features")
        graphs, name = generation_graphs(cfg, args.data_root, args.num_graphs)
    else:
        data, name = _load(args)
        x = prepare_features(data, cfg.features)
        if x.size(1) != ck.get("in_channels"):
            raise ValueError(f"the checkpoint expects {ck.get('in_channels')} input features but "
                             f"{name} has {x.size(1)}")
        graphs = [(x, data.edge_index)]
    devs = check_model(model, graphs, args.permutations, args.atol, args.seed,
                       float64=not args.float32)
    print(format_table(devs, args.atol))
    failed = [d.component for d in devs if not d.value <= args.atol]
    return {"ok": not failed, "failed": failed, "dataset": name,
            "deviations": {d.component: d.value for d in devs}}


# ------------------------------------------------------------------------------ vector
def _vector_args(p: argparse.ArgumentParser) -> None:
    from graphvae.vector.run import VectorRunConfig

    p.add_argument("--data", default="digits", metavar="digits|mnist|FILE",
                   help="scikit-learn's digits (embedded), static binarized mnist, or a "
                   ".npy / .csv matrix (rows = data points) [digits]")
    p.add_argument("--data-root", type=Path, help="folder holding mnist/ (default: "
                   "$GRAPHVAE_DATA, else ./data)")
    p.add_argument("--binarize", action="store_true", help="threshold the data at 0.5 first")
    p.add_argument("--standardize", action="store_true",
                   help="scale every column to mean 0, variance 1 on the training rows first "
                        "(needed from magnitude 100 on); metrics also give test_nll in the "
                        "original units")
    VectorRunConfig.add_arguments(p)
    _output_args(p, "metrics, checkpoint and plots")


def run_vector_cmd(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.vector.data import load_vector_data
    from graphvae.vector.run import VectorRunConfig, run_vector

    cfg = VectorRunConfig.from_args(args)
    state = _state_dir(args)
    data = load_vector_data(str(args.data), args.data_root, cfg.seed)
    if args.binarize:
        data = data.binarized()
    if args.standardize:
        data = data.standardized()
    with output_folder(args.out, "graphvae vector") as stage, \
            threads_for(cfg.batch_size * max(cfg.hidden + (data.dim,)), resolve_device(cfg.device)):
        metrics = run_vector(data, cfg, stage, progress=not args.quiet, state=state,
                             resume=args.resume)
    _done(state)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    print(json.dumps(shown, indent=1))
    return metrics


# ------------------------------------------------------------------------------ generate
def _generate_args(p: argparse.ArgumentParser) -> None:
    from graphvae.tasks.generation import GenerationConfig

    GenerationConfig.add_arguments(p)
    p.add_argument("--data-root", type=Path, help="folder holding graphgen/ and qm9/ "
                   "(default: $GRAPHVAE_DATA, else ./data)")
    _output_args(p, "metrics, checkpoint, sampled graphs and a PNG grid")


def run_generate_cmd(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.tasks.generation import GenerationConfig, run_generation

    cfg = GenerationConfig.from_args(args)
    state = _state_dir(args)
    with output_folder(args.out, "graphvae generate") as stage, \
            threads_for(cfg.batch_size * 20 * max(cfg.hidden), resolve_device(cfg.device)):
        metrics = run_generation(cfg, args.data_root, stage, progress=not args.quiet,
                                 state=None if state is None else state / "train.pt",
                                 resume=args.resume)
    _done(state)
    print(json.dumps(metrics, indent=1))
    return metrics


# ------------------------------------------------------------------------------ convert-graphs
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


# ------------------------------------------------------------------------------ main
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
    "convert-graphs": ("write the stored graph-set pickles as graph6 files (no pickle needed "
                       "afterwards)", _convert_args, run_convert),
}

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
    if args.command == "linkpred":
        _report(summary, getattr(args, "json", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
