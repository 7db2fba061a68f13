"""``graphvae check-invariance``: relabel a saved model's graphs and report deviations."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from graphvae.cli.common import graph_source, load_graph
from graphvae.config import check_seed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="model.pt written by linkpred or generate --out")
    graph_source(p)
    p.add_argument("--num-graphs", type=int, default=8,
                   help="generation checkpoints: test graphs of the run's data set to check [8]")
    p.add_argument("--permutations", type=int, default=10, help="random relabellings [10]")
    p.add_argument("--atol", type=float, default=1e-5, help="tolerance [1e-5]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float32", action="store_true", help="check in float32 (default float64)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.tasks.invariance import check_model, format_table, generation_graphs, load_model
    from graphvae.tasks.link_prediction import prepare_features
    if args.permutations < 1 or args.num_graphs < 1:
        raise ValueError(f"--permutations and --num-graphs must be at least 1, got "
                         f"{args.permutations} and {args.num_graphs}")
    check_seed(args.seed, "--seed")
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
        data, name = load_graph(args)
        x = prepare_features(data, cfg.features, config=cfg, seed=args.seed)
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
