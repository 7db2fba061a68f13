"""``graphvae check-invariance``: relabel a saved model's graphs and report deviations."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from graphvae.cli.common import (
    graph_root_unread,
    graph_source,
    load_graph,
    note_unread_root,
    path_arg,
)
from graphvae.config import MAX_INT, MAX_PERMUTATIONS, check_seed
from graphvae.errors import DataError, quote


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=path_arg, required=True,
                   help="model.pt written by linkpred or generate --out")
    graph_source(p)
    p.add_argument("--num-graphs", type=int, default=8,
                   help="generation checkpoints: test graphs of the run's data set to check [8]")
    p.add_argument("--permutations", type=int, default=10,
                   help=f"random relabellings per graph, at most {MAX_PERMUTATIONS:,} [10]")
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance [1e-5]")
    p.add_argument("--rtol", type=float, default=None,
                   help="relative tolerance: a deviation passes within atol + rtol·|value| "
                        f"[0; {FLOAT32_RTOL:g} with --float32, whose bounds of large graphs "
                        "round in their last digits]")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the relabellings and of random input features "
                        "(--feature-mode propagated) [0]")
    p.add_argument("--float32", action="store_true", help="check in float32 (default float64)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (they show on a "
                   "terminal only)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object "
                   "on stdout (the table goes to stderr)")


#: The default relative tolerance in float32: ten units in the last place of float32's
#: 24-bit significand, where float64 (the default) needs none.
FLOAT32_RTOL = 1e-6


def run(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.tasks.features import prepare_features
    from graphvae.tasks.invariance import check_model, format_table, generation_graphs, load_model
    from graphvae.tasks.link_prediction_config import ID_FEATURE_MODES
    if not 1 <= args.permutations <= MAX_PERMUTATIONS or not 1 <= args.num_graphs <= MAX_INT:
        raise ValueError(f"--permutations must lie in 1 … {MAX_PERMUTATIONS:,} and --num-graphs "
                         f"must be at least 1 (and within int64), got {args.permutations} and "
                         f"{args.num_graphs}")
    check_seed(args.seed, "--seed")
    rtol = (FLOAT32_RTOL if args.float32 else 0.0) if args.rtol is None else args.rtol
    for flag, value in (("--atol", args.atol), ("--rtol", rtol)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{flag} must be a finite number >= 0, got {value}")
    model, cfg, ck = load_model(args.checkpoint)
    graphs: list[tuple]
    features = None
    if ck.get("task") == "generation":
        if args.dataset or args.edges or args.features:
            raise ValueError("a generation checkpoint is checked on its own data set's test "
                             "graphs: drop --dataset / --edges / --features")
        from graphvae.tasks.generation import root_unread
        note_unread_root("check-invariance", args, root_unread(cfg))
        graphs, name = generation_graphs(cfg, args.data_root, args.num_graphs)
    else:
        note_unread_root("check-invariance", args, graph_root_unread(args))
        data, name = load_graph(args)
        x = prepare_features(data, cfg.features, config=cfg, seed=args.seed)
        # the width the model was built with (the file's top-level in_channels is a copy
        # that a hand-edited file can contradict: "expects 64 ... but synthetic has 64")
        init = getattr(model, "_init", None)
        width = init.get("in_channels") if isinstance(init, dict) else ck.get("in_channels")
        if isinstance(width, bool) or not isinstance(width, int):
            raise DataError(args.checkpoint, f"records no usable input width (in_channels "
                                             f"{quote(width)})")
        if x.size(1) != width:
            how = "" if data.x is not None or cfg.features in ID_FEATURE_MODES else \
                " (it has no features: X = I, one column a node; give --features)"
            raise ValueError(f"the checkpoint {args.checkpoint} expects {width} input features "
                             f"but {name} has {x.size(1)}{how}")
        graphs = [(x, data.edge_index)]
        mode = cfg.features if cfg.features == "propagated" or data.x is not None \
            else "identity"                       # a graph without features gets X = I
        if mode in ID_FEATURE_MODES:  # computed anew for the relabelled graph, as a run does
            def features(edge_index):
                from torch_geometric.data import Data
                relabelled = Data(edge_index=edge_index, num_nodes=data.num_nodes)
                return prepare_features(relabelled, cfg.features, config=cfg, seed=args.seed)
    from graphvae.progress import shown
    with shown(not args.quiet):   # bars of the checks and of a large graph's row blocks
        fits(model, graphs, name, args.checkpoint)
        devs = check_model(model, graphs, args.permutations, args.atol, args.seed,
                           float64=not args.float32, rtol=rtol, features=features)
    blind = [d for d in devs if d.nonfinite]
    if blind:
        raise ValueError(f"the model's outputs are not finite on these graphs (its "
                         f"{blind[0].component} is {blind[0].nonfinite}): relabellings cannot "
                         f"be compared with them; the weights or the features overflow "
                         f"{'float32' if args.float32 else 'float64'}")
    table = sys.stderr if args.json else sys.stdout
    print(format_table(devs, args.atol), file=table)
    if features is not None:
        print(f"(features '{mode}' are computed from node ids: each relabelled graph "
              f"gets its own, as a run on it would)", file=table)
    failed = [d.component for d in devs if not d.excess <= args.atol]
    summary = {"ok": not failed, "failed": failed, "dataset": name, "atol": args.atol,
               "rtol": rtol,
               "deviations": {d.component: d.value if d.measured else None for d in devs}}
    if args.json:
        from graphvae.io import json_text
        summary |= {"graphs": [int(g[0].size(0)) for g in graphs],
                    "permutations": args.permutations, "float64": not args.float32,
                    "identity_features": features is not None,
                    "components": [_deviation_record(d, args.atol) for d in devs]}
        print(json_text(summary))
    return summary


def _deviation_record(d: Any, atol: float) -> dict[str, Any]:
    """One row of the table as JSON: ``status`` ok / FAIL / n/a (nothing was measured),
    and where the worst entry was."""
    measured = d.measured
    return {"component": d.component, "max_deviation": d.value if measured else None,
            "status": "n/a" if not measured else "ok" if d.excess <= atol else "FAIL",
            "rtol": d.rtol, "graph": d.graph if measured else None,
            "where": d.detail or None}


def fits(model: Any, graphs: list[tuple], name: str, path: Path) -> None:
    """A one-line ``ValueError`` unless the model takes each graph as it is (a checkpoint
    checked on graphs of another data set: more nodes or node types than it was built for)."""
    import torch

    from graphvae.errors import describe
    for i, (x, edge_index, *types) in enumerate(graphs):
        try:
            with torch.no_grad():
                batch = model.invariance_batch(x, edge_index, *(types or [None, None]))
                q = model.graph_posterior(batch)
                model.decoder_outputs(q.loc, batch)
                model.exact_bound(batch, torch.zeros_like(q.loc)[None])
        except (IndexError, RuntimeError, ValueError) as err:
            from graphvae.cli import out_of_memory
            if out_of_memory(err):
                raise          # the command's own out-of-memory line, not "does not take"
            raise ValueError(f"{path}: the model does not take graph {i} of {name} "
                             f"({x.size(0)} nodes): {describe(err)}") from None
