"""``graphvae vector``: autoencoders on vector data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from graphvae.cli.common import (
    COMMAND_STATES,
    check_inputs_outside,
    data_root_path,
    done,
    fresh_start,
    note_unread_root,
    output_args,
    path_arg,
    state_dir,
    wrote,
)
from graphvae.devices import resolve_device
from graphvae.io import json_text
from graphvae.run_folder import output_folder
from graphvae.threads import dense_work, threads_for

#: The training states this command keeps beside --out (see state_dir).
VECTOR_STATES = COMMAND_STATES["vector"]


def _data_arg(text: str) -> str:
    """``--data``: a name, or a path checked as every path flag's (:func:`path_arg`)."""
    path_arg(text)
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    from graphvae.vector.run import VectorRunConfig

    p.add_argument("--data", default="digits", type=_data_arg, metavar="digits|mnist|FILE",
                   help="scikit-learn's digits (embedded), static binarized mnist, or a "
                   ".npy / .csv / .txt matrix (rows = data points) [digits]")
    p.add_argument("--data-root", type=data_root_path, help="folder holding mnist/ (default: "
                   "$GRAPHVAE_DATA, else ./data)")
    p.add_argument("--binarize", action="store_true", help="threshold the data at 0.5 first")
    p.add_argument("--standardize", action="store_true",
                   help="scale every column to mean 0, variance 1 on the training rows first "
                        "(needed from magnitude 100 on); every metric is then in those "
                        "units, and test_mse (and a vae / iwae's test_nll) are also given in "
                        "the original ones")
    VectorRunConfig.add_arguments(p)
    output_args(p, "metrics, checkpoint and plots")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.vector.data import load_vector_data, root_unread
    from graphvae.vector.run import VectorRunConfig, resolved, run_vector

    cfg = VectorRunConfig.from_args(args)  # validated on construction
    check_inputs_outside(args.out, {"--data": args.data})
    state = state_dir(args, "vector", VECTOR_STATES)
    note_unread_root("vector", args, root_unread(str(args.data)))
    data = load_vector_data(str(args.data), args.data_root, cfg.seed)
    if args.binarize:
        data = data.binarized()
    if args.standardize:
        data = data.standardized()
    # after the data: the likelihood a run picks decides whether --variance is read
    for line in resolved(cfg, data).ignored_settings():
        print(f"graphvae vector: note: {line}", file=sys.stderr)
    device = resolve_device(cfg.device)
    work = dense_work(cfg.batch_size, [data.dim, *cfg.hidden, 2 * (cfg.latent_dim or 40)])
    with fresh_start(args, state, VECTOR_STATES), threads_for(work, device), \
            output_folder(args.out, "graphvae vector", device) as stage:
        metrics = run_vector(data, cfg, stage, progress=not args.quiet, state=state,
                             resume=args.resume)
    done(state, VECTOR_STATES)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    print(json_text(shown, indent=1))
    wrote("vector", args.out)
    return metrics
