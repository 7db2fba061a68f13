"""``graphvae linkpred``: train a graph autoencoder on one graph and score held-out links."""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

from graphvae.cli.common import (
    COMMAND_STATES,
    agree_on_state,
    check_inputs_outside,
    done,
    fresh_start,
    graph_root_unread,
    graph_source,
    load_graph,
    note_unread_root,
    output_args,
    path_arg,
    state_dir,
    wrote,
)
from graphvae.config import MAX_INT, check_seed
from graphvae.devices import resolve_device
from graphvae.distributed import agree, process_group, together, world_from_env
from graphvae.errors import DataError, quote
from graphvae.io import MAX_SMALL_JSON_BYTES, json_text, read_json
from graphvae.run_folder import output_folder
from graphvae.tasks.features import check_feature_scale
from graphvae.tasks.link_prediction import PRESETS, LinkPredConfig, run_link_prediction, summarize
from graphvae.threads import graph_work, threads_for

#: The training states this command keeps beside --out (see state_dir).
LINKPRED_STATES = COMMAND_STATES["linkpred"]

#: The preset that ``--model`` picks when left out.
DEFAULT_PRESET = "vgae"


def add_arguments(p: argparse.ArgumentParser) -> None:
    graph_source(p)
    p.add_argument("--model", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                   help=f"a preset: gae, vgae, joint, or best (GNAE encoder, see README) "
                        f"[{DEFAULT_PRESET}]; the flags below override its fields, whose "
                        f"help shows {DEFAULT_PRESET}'s value and any other preset's that "
                        f"differs")
    LinkPredConfig.add_arguments(p, unset=True, presets=PRESETS, preset=DEFAULT_PRESET)
    p.add_argument("--config", type=path_arg, metavar="JSON",
                   help="a JSON file of LinkPredConfig fields (unknown keys are an error)")
    p.add_argument("--seed", type=int, default=0, help="first seed [0]")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds to average [1]")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto [cpu]")
    p.add_argument("--top-k", type=int, default=100, help="predicted new links to export [100]")
    p.add_argument("--planted", type=path_arg, metavar="NPZ",
                   help="the planted parameters of a graph from `graphvae make-graph` "
                        "(FILE.planted.npz): report the oracle's test AUC / AP beside the "
                        "model's")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object on the last line of stdout")
    output_args(p, "metrics, checkpoint, embeddings, predicted links and plots")


def _config(args: argparse.Namespace) -> LinkPredConfig:
    cfg = PRESETS[args.model]
    if args.config is not None:
        try:
            fields = read_json(args.config, MAX_SMALL_JSON_BYTES)
        except DataError as err:
            raise ValueError(f"cannot read config: {err}") from None
        if not isinstance(fields, dict):
            raise ValueError(f"config {args.config} must hold a JSON object of config fields")
        if "model" in fields and fields["model"] != cfg.model:
            # the run's name (its `preset`) is --model's: a file's model would run under it
            raise ValueError(f"config {args.config} sets model {quote(fields['model'])}, but "
                             f"--model {args.model} runs model {cfg.model!r}: choose the model "
                             f"with --model")
        try:
            cfg = cfg.replace(**fields)
        except (ValueError, TypeError) as err:   # named with the file that holds it,
            # its keys as the file spells them, not as flags (--hidden is the key hidden)
            text = re.sub(r"^(unknown )?config (field|key)", r"\1\2", str(err))
            text = LinkPredConfig.as_key(text)
            raise ValueError(f"config {args.config}: {text}") from None
    return cfg.replace(**LinkPredConfig.given(args))


def run(args: argparse.Namespace) -> dict[str, Any]:
    rank = world_from_env()[0]
    device = resolve_device(args.device)
    out = args.out if rank == 0 else None            # only the first process writes
    with process_group(device) as (rank, world, device):
        # the flags and files are checked once the processes have joined: one that refuses
        # its own (flags and files may differ between machines) stops the others at once,
        # and they must all have read the same
        cfg, state, planted, data, name, read_seconds, settings = together(
            lambda: _read(args, world))
        if world > 1:
            agree(settings, _setting_name)
            if args.resume:
                agree_on_state(state, LINKPRED_STATES, "linkpred")
        with fresh_start(args, state if rank == 0 else None, LINKPRED_STATES), \
                threads_for(_work(data, cfg), device), \
                output_folder(out, "graphvae linkpred", device) as stage:
            summary = _runs(args, cfg, data, name, device, stage, state, planted, rank,
                            read_seconds)
    if rank == 0:
        done(state, LINKPRED_STATES)
        wrote("linkpred", out)
    return summary


def _checked_config(args: argparse.Namespace, world: int) -> LinkPredConfig:
    """The run's configuration (preset, ``--config`` file, flags), with the data-parallel
    batch checked before the graph is read."""
    cfg = _config(args)
    if world > 1 and cfg.batch_size is None:
        raise ValueError("data-parallel training needs --batch-size: the positive pairs of "
                         "one step, a multiple of the number of processes")
    if world > 1 and cfg.batch_size is not None:
        from graphvae.training.loaders import divided_step
        divided_step(cfg.batch_size, cfg.negatives, world)
    return cfg


def _check_flags(args: argparse.Namespace) -> None:
    """The flags that need no file ("flags are bounded before any work")."""
    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    check_seed(args.seed, "--seed")
    check_seed(args.seed + args.seeds - 1, "--seed + --seeds - 1")
    if not 1 <= args.top_k <= MAX_INT:
        raise ValueError(f"--top-k must be at least 1 and within 2^63 - 1 (torch's int64), "
                         f"got {args.top_k}")
    check_inputs_outside(args.out, {"--edges": args.edges, "--features": args.features,
                                    "--planted": args.planted, "--config": args.config})


def _seeds(first: int, count: int) -> str:
    """``seed 3`` or ``seeds 3–5``."""
    return f"seed {first}" if count == 1 else f"seeds {first}–{first + count - 1}"


def _check_state_seeds(state: Path, first: int, count: int) -> None:
    """``--resume``: the seeds whose states the folder holds must be seeds of this run.
    Another ``--seed`` or a smaller ``--seeds`` trained the run's seeds afresh and then
    removed the folder, the interrupted run's states with it."""
    if not state.is_dir():
        return
    held = sorted(int(m.group(1)) for p in state.iterdir()
                  if (m := re.fullmatch(r"seed(\d+)\.pt", p.name)) and p.is_file())
    other = [s for s in held if not first <= s < first + count]
    if other:
        names = ", ".join(map(str, held[:10])) + (", ..." if len(held) > 10 else "")
        raise ValueError(f"--resume: {state} holds the training states of seeds {names}, "
                         f"and this run (--seed {first} --seeds {count}) trains "
                         f"{_seeds(first, count)}: rerun with the --seed and --seeds of the "
                         f"interrupted run (the states are kept), or without --resume to "
                         f"start afresh")


def _read(args: argparse.Namespace, world: int):
    """The run's flags (checked), configuration (preset, ``--config`` file, flags) and
    files: the training-state folder (checked), the planted model, the graph, the seconds
    the graph took to read, and (data-parallel) the settings every process must share
    (:func:`_settings`: it reads the planted file again, so a failure there stops every
    process too)."""
    _check_flags(args)
    cfg = _checked_config(args, world)
    from graphvae.distributed import world_from_env
    if world_from_env()[0] == 0:        # (a preset's own values are not the user's)
        for line in cfg.ignored_settings(base=PRESETS[args.model]):
            print(f"graphvae linkpred: note: {line}", file=sys.stderr)
        note_unread_root("linkpred", args, graph_root_unread(args))
    state = state_dir(args, "linkpred", LINKPRED_STATES, world)
    if args.resume and state is not None:
        _check_state_seeds(state, args.seed, args.seeds)
    planted = None
    if args.planted is not None:
        from graphvae.datasets.planted import PlantedSBM
        planted = PlantedSBM.load(args.planted)
    check_node_memory(args, cfg)
    start = time.perf_counter()
    data, name = load_graph(args)
    check_feature_scale(data, cfg.features, str(args.features or name))   # (file named)
    if planted is not None and args.num_nodes is not None \
            and args.num_nodes != planted.num_nodes:
        # (without --num-nodes the graph lacks make-graph's isolated nodes: fewer is right)
        raise ValueError(f"--planted {args.planted} is a model of {planted.num_nodes:,} "
                         f"nodes, and --num-nodes declares {args.num_nodes:,}: not the "
                         f"graph it was made with")
    seconds = time.perf_counter() - start
    return cfg, state, planted, data, name, seconds, \
        _settings(args, cfg, data) if world > 1 else None


#: Bytes a node of ``--num-nodes`` takes before its features: its name (a str of up to 9
#: digits in a list, about 60 B) and indices.
NODE_BYTES = 72


def check_node_memory(args: argparse.Namespace, cfg: LinkPredConfig) -> None:
    """A one-line refusal, before any file is read, of a ``--num-nodes`` whose nodes alone
    cannot fit this machine's memory: their names and indices, and, featureless, the
    first layer's row per node with its gradient and Adam's two moments (16 B a weight).
    ``--num-nodes 100000000`` on an edge list of 120 edges took 24 GB and was killed with
    no message."""
    from graphvae import devices
    from graphvae.datasets.edge_reader import MAX_NUM_NODES
    have = devices.physical_memory()
    if args.num_nodes is None or have is None or not 1 <= args.num_nodes <= MAX_NUM_NODES:
        return                  # (out of range: the reader's own one line says so)
    identity = cfg.features == "identity" or (
        args.features is None and cfg.features != "propagated")
    width = (cfg.hidden or (cfg.latent,))[0]
    propagated = cfg.features == "propagated"
    per_node = NODE_BYTES + (16 * width if identity else 0) + \
        (12 * (cfg.propagated_dim + 1) if propagated else 0)  # the input and two products
    need = args.num_nodes * per_node
    if need > have:
        what = (f" with a learned {width}-wide embedding each (no features: the first "
                f"layer's row, its gradient and Adam's moments)" if identity else
                f" with {cfg.propagated_dim + 1} propagated features each" if propagated
                else "")
        raise ValueError(f"--num-nodes {args.num_nodes:,} needs about {need / 2**30:.0f} GB "
                         f"for the nodes alone{what}, more than this machine's "
                         f"{have / 2**30:.0f} GB; declare only the nodes the graph has"
                         + (", or use --feature-mode propagated" if identity else ""))


def _settings(args: argparse.Namespace, cfg: LinkPredConfig, data) -> dict[str, Any]:
    """What every process of a data-parallel run must hold alike: the configuration, the
    seeds, the exports, ``--resume``, the graph (its fingerprint) and the planted model."""
    from graphvae.run_folder import file_digest
    from graphvae.tasks.link_prediction import graph_fingerprint
    return {**{f"config.{k}": v for k, v in cfg.to_dict().items()},
            "seed": args.seed, "seeds": args.seeds, "top_k": args.top_k,
            "resume": args.resume, "graph": graph_fingerprint(data),
            "planted": None if args.planted is None else file_digest(args.planted)}


def _setting_name(key: str) -> str:
    if key.startswith("config."):
        return LinkPredConfig.flag(key[len("config."):])
    return {"graph": "graphs (--dataset, --edges, --features or --num-nodes, or the files "
                     "they name)",
            "planted": "--planted files"}.get(key, "--" + key.replace("_", "-"))


def _work(data, cfg: LinkPredConfig) -> int:
    x = data.x
    if cfg.features == "propagated":
        entries = data.num_nodes * (cfg.propagated_dim + 1)
    elif x is None or cfg.features == "identity":
        entries = data.num_nodes
    else:
        entries = int(x.count_nonzero()) if not x.is_sparse else x._nnz()
    return graph_work(data.num_nodes, data.edge_index.size(1), entries,
                      [*cfg.hidden, cfg.latent])


def _runs(args: argparse.Namespace, cfg: LinkPredConfig, data, name: str,
          device, stage: Path | None, state: Path | None, planted=None, rank: int = 0,
          read_seconds: float | None = None) -> dict[str, Any]:
    runs, first = [], None
    for seed in range(args.seed, args.seed + args.seeds):
        ckpt = stage / "model.pt" if stage is not None and first is None else None
        res = run_link_prediction(data, cfg, seed, device, progress=not args.quiet,
                                  checkpoint=ckpt, resume=args.resume,
                                  state=None if state is None else state / f"seed{seed}.pt",
                                  planted=planted)
        first = first or res
        m = res.metrics
        runs.append(m)
        oracle = (f", oracle AUC {100 * m['oracle_test_auc']:.2f}" if "oracle_test_auc" in m
                  else "")
        if rank == 0:
            hits = m["test_hits@50"]          # NaN with fewer than 50 test non-edges
            hits50 = "n/a (fewer than 50 test non-edges)" if math.isnan(hits) else \
                f"{100 * hits:.2f}"
            print(f"seed {seed}: test AUC {100 * m['test_auc']:.2f}  AP "
                  f"{100 * m['test_ap']:.2f}  Hits@50 {hits50}  (val "
                  f"{100 * m['val_auc']:.2f} / {100 * m['val_ap']:.2f}, best epoch "
                  f"{m['best_epoch']}, {m['seconds']:.1f}s{oracle})",
                  file=sys.stderr if args.json else None)
    keys = ["test_auc", "test_ap", "val_auc", "val_ap", "test_mrr",
            *(k for k in runs[0] if k.startswith(("test_hits@", "oracle_")))]
    stats = summarize(runs, keys)
    summary: dict[str, Any] = {k: v["mean"] for k, v in stats.items()}
    summary.update({f"{k}_std": v["std"] for k, v in stats.items()})
    summary.update({"epochs": int(sum(r["epochs"] for r in runs) / len(runs)),
                    "seconds": sum(r["seconds"] for r in runs), "dataset": name,
                    "num_nodes": data.num_nodes, "num_edges": data.edge_index.size(1) // 2,
                    "seeds": list(range(args.seed, args.seed + args.seeds)), "preset": args.model,
                    "median_epoch_ms": float(sum(r["median_epoch_ms"] for r in runs) /
                                             len(runs)), "batch": runs[0]["batch"],
                    "device": str(device), "config": cfg.to_dict(), "runs": runs,
                    "rank": rank, "read_seconds": read_seconds})
    if stage is not None and first is not None:
        from graphvae.tasks.exports import export_link_prediction
        export_link_prediction(stage, first, summary, data.edge_index,
                               getattr(data, "node_names", None), getattr(data, "y", None),
                               args.top_k)
    return summary


def report(summary: dict[str, Any], as_json: bool) -> None:
    if summary.get("rank", 0) != 0:
        return                                    # one report per data-parallel run
    line = (f"{summary['dataset']} {summary['preset']}: test AUC "
            f"{100 * summary['test_auc']:.2f} ± {100 * summary['test_auc_std']:.2f}, AP "
            f"{100 * summary['test_ap']:.2f} ± {100 * summary['test_ap_std']:.2f} over "
            f"{len(summary['seeds'])} seed(s)")
    if as_json:
        print(line, file=sys.stderr)
        print(json_text({k: v for k, v in summary.items() if k != "runs"}))
    else:
        print(line)
