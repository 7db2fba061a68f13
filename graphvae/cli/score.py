"""``graphvae score``: the metrics of ``graphvae generate``, recomputed from a sample file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from graphvae.cli.common import (
    data_root_path,
    generation_summary,
    note_unread_root,
    path_arg,
    wrote,
)
from graphvae.io import json_text, write_json
from graphvae.run_folder import (
    MANIFEST,
    check_as_written,
    check_output_folder,
    output_folder,
    resolved_parent,
    written_by,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from graphvae.evaluation.graph_stats import PROTOCOLS
    from graphvae.tasks.generation import GEN_DATASETS

    p.add_argument("samples", type=path_arg, help="samples.jsonl (graphs or molecules), a .pkl "
                   "list of networkx graphs (no code in it runs), a graph6 file, or the --out "
                   "folder of graphvae generate (its samples.jsonl, scored "
                   "with the run's own data set, seed and protocol)")
    p.add_argument("--dataset", choices=GEN_DATASETS,
                   help="the data set whose test split the samples are scored against "
                        "(default: the generated community-small of graphvae generate)")
    p.add_argument("--generated", action="store_true", default=None,
                   help="community-small / grid from their published generators")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS),
                   help="MMD kernels or GDSS's whole set-up, as for generate [graphrnn]")
    p.add_argument("--seed", type=int, help="the seed of the run's split [0]")
    p.add_argument("--qm9-limit", type=int, metavar="N", help="qm9: the run's --qm9-limit")
    p.add_argument("--no-fcd", action="store_true",
                   help="qm9: skip the FCD (a run folder's own --no-fcd is not taken: "
                        "scoring it computes the FCD the run skipped)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (they show on a "
                   "terminal only)")
    p.add_argument("--data-root", type=data_root_path, help="folder holding graphgen/ and qm9/ "
                   "(default: $GRAPHVAE_DATA, else ./data)")
    p.add_argument("--out", type=path_arg, metavar="DIR", help="write metrics.json and samples.png "
                   "(the first samples under training graphs) here (a folder of its own: not "
                   "the run folder scored)")


def _check_defaults_fit(path: Path) -> None:
    """A file scored with no flag gets the default split. Refuse that when the file sits in
    the output folder of a ``generate`` run of another split (its ``metrics.json`` beside
    it), which would be scored against the wrong graphs. (The summary's first line names the
    data set scored against.)"""
    from graphvae.errors import DataError
    from graphvae.tasks.generation import GenerationConfig
    from graphvae.tasks.scoring import SCORING_FIELDS, run_config

    home = path.parent
    default = {k: getattr(GenerationConfig(), k) for k in SCORING_FIELDS}
    run = None
    if (home / "metrics.json").is_file():
        try:
            run = run_config(home)
        except DataError:
            pass                      # not a generate run's metrics: nothing to go by
    if run is not None and run != default:
        settings = ", ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
                             for k, v in run.items() if v != default[k])
        raise ValueError(f"{path} lies in the output folder of a graphvae generate run "
                         f"({settings}), and without flags it would be scored against "
                         f"the default split: score the folder ({home}), which takes the "
                         f"run's settings, or give the flags")


def _check_generate_run(folder: Path) -> None:
    """A one-line ``ValueError`` unless ``folder`` looks like a ``graphvae generate`` run:
    its manifest names that command (an older run without one: it holds ``samples.jsonl``).
    A linkpred run or an empty folder was refused for a file it lacked."""
    wrote = written_by(folder)
    if wrote is not None and wrote != "graphvae generate":
        raise ValueError(f"{folder} is a run folder of {wrote}; score takes the folder of a "
                         f"graphvae generate run, or a samples file")
    if wrote is None and not (folder / "samples.jsonl").is_file():
        raise ValueError(f"{folder} is not the folder of a graphvae generate run (it holds no "
                         f"samples.jsonl); score takes such a folder, or a samples file")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.tasks.generation import GenerationConfig, root_unread
    from graphvae.tasks.scoring import SCORING_FIELDS, run_config, score_samples

    given = {k: getattr(args, k) for k in SCORING_FIELDS if getattr(args, k) is not None}
    path = args.samples
    if path.is_dir():
        if given:
            raise ValueError(f"{path} is a run folder, scored with its own "
                             f"{', '.join(SCORING_FIELDS)}: drop "
                             f"{', '.join('--' + k.replace('_', '-') for k in given)}")
        _check_generate_run(path)
        check_as_written(path, ("metrics.json", "samples.jsonl"))
        given = run_config(path)
        path = path / "samples.jsonl"
    if args.out is not None:
        out = resolved_parent(args.out, whole=True)
        home = path.resolve().parent
        if path.resolve().is_relative_to(out):
            raise ValueError(f"--out {args.out} holds the samples scored, and would be "
                             "replaced by the scores: choose another folder")
        if (home / MANIFEST).is_file() and out.is_relative_to(home):
            raise ValueError(f"--out {args.out} lies inside the output folder of the run "
                             f"scored ({home}), which would then hold more than its "
                             "manifest lists: choose another folder")
        check_output_folder(args.out, "graphvae score")  # before the scoring (minutes)
    if not given:
        _check_defaults_fit(path)
    cfg = GenerationConfig.from_dict({**given, "fcd": not args.no_fcd})
    note_unread_root("score", args, root_unread(cfg))
    with output_folder(args.out, "graphvae score") as stage:
        metrics = score_samples(path, cfg, args.data_root,
                                None if stage is None else stage / "samples.png",
                                progress=not args.quiet)
        if stage is not None:
            write_json(metrics, stage / "metrics.json")
    print(json_text(metrics, indent=1))
    print("\n".join(generation_summary(metrics)), file=sys.stderr)
    wrote("score", args.out)
    return metrics
