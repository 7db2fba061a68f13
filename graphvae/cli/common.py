"""Pieces the commands share: graph sources, output folders and resumable states."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from graphvae.datasets import LINKPRED_DATASETS, load_dataset, load_graph_file
from graphvae.io import check_output_folder


def state_dir(args: argparse.Namespace) -> Path | None:
    """Where a run with ``--out DIR`` keeps its resumable training state (``.DIR.state/``
    beside it; :func:`done` removes it when the run completes)."""
    if args.out is None:
        if getattr(args, "resume", False):
            raise ValueError("--resume needs --out (the state of a run is kept beside it)")
        return None
    check_output_folder(args.out)
    state = args.out.parent / f".{args.out.name}.state"
    if args.resume and not state.is_dir():
        raise ValueError(f"--resume: no training state of an interrupted run at {state}")
    return state  # created by the first checkpoint the run writes


def output_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--out", type=Path, metavar="DIR", help=f"write {what} here")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run into --out from its saved state")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def graph_source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, choices=LINKPRED_DATASETS,
                     help="a named graph (default: synthetic, no files needed)")
    src.add_argument("--edges", type=Path, metavar="FILE",
                     help="your graph: edge list (.csv/.tsv/whitespace) or .graphml/.gml")
    p.add_argument("--features", type=Path, metavar="FILE",
                   help="node-feature CSV for --edges (first column: node id)")
    p.add_argument("--num-nodes", type=int, metavar="N",
                   help="--edges ids are the integers 0..N-1 and are the node indices "
                        "(isolated nodes kept; an id outside is an error naming its line)")
    p.add_argument("--data-root", type=Path, help="folder holding Planetoid/<Name>/raw "
                   "(default: $GRAPHVAE_DATA, else ./data)")


def load_graph(args: argparse.Namespace):
    if args.features is not None and args.edges is None:
        raise ValueError("--features needs --edges")
    num_nodes = getattr(args, "num_nodes", None)
    if num_nodes is not None and args.edges is None:
        raise ValueError("--num-nodes needs --edges")
    if args.edges is not None:
        return load_graph_file(args.edges, args.features, num_nodes), str(args.edges)
    name = args.dataset or "synthetic"
    return load_dataset(name, args.data_root), name


def done(state: Path | None) -> None:
    if state is not None:
        shutil.rmtree(state, ignore_errors=True)
