"""``graphvae generate`` and ``graphvae convert-graphs``: sets of small graphs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from graphvae.cli.common import (
    COMMAND_STATES,
    data_root_path,
    done,
    fresh_start,
    generation_summary,
    note_unread_root,
    output_args,
    path_arg,
    state_dir,
    wrote,
)
from graphvae.devices import resolve_device
from graphvae.io import json_text
from graphvae.run_folder import output_folder
from graphvae.threads import graph_work, threads_for

#: The training states this command keeps beside --out (see state_dir).
GENERATE_STATES = COMMAND_STATES["generate"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from graphvae.tasks.generation import GenerationConfig

    GenerationConfig.add_arguments(p)
    p.add_argument("--data-root", type=data_root_path, help="folder holding graphgen/ and qm9/ "
                   "(default: $GRAPHVAE_DATA, else ./data)")
    output_args(p, "metrics, checkpoint, sampled graphs and a PNG grid")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.tasks.generation import GenerationConfig, root_unread, run_generation

    cfg = GenerationConfig.from_args(args)
    for line in cfg.ignored_settings():
        print(f"graphvae generate: note: {line}", file=sys.stderr)
    note_unread_root("generate", args, root_unread(cfg))
    state = state_dir(args, "generate", GENERATE_STATES)
    device = resolve_device(cfg.device)
    work = graph_work(20 * cfg.batch_size, 80 * cfg.batch_size, 20 * cfg.batch_size * 17,
                      [*cfg.hidden, cfg.latent])
    with fresh_start(args, state, GENERATE_STATES), threads_for(work, device), \
            output_folder(args.out, "graphvae generate", device) as stage:
        metrics = run_generation(cfg, args.data_root, stage, progress=not args.quiet,
                                 state=None if state is None else state / "train.pt",
                                 resume=args.resume)
    done(state, GENERATE_STATES)
    print(json_text(metrics, indent=1))
    print("\n".join(generation_summary(metrics)), file=sys.stderr)
    wrote("generate", args.out)
    return metrics


def add_convert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", type=data_root_path,
                   help="folder holding graphgen/*.pkl (default: $GRAPHVAE_DATA, else ./data)")
    p.add_argument("--out", type=path_arg, required=True, metavar="DIR",
                   help="write DIR/graphgen/<stem>.g6 here (community_small, ego_small, "
                        "grid, ENZYMES; may be the data root itself)")


def run_convert(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.datasets.graphgen import convert_graph_sets
    from graphvae.io import resolve_data_root

    written = convert_graph_sets(resolve_data_root(args.data_root), args.out)
    for path in written:
        print(path)
    return {"written": [str(p) for p in written]}
