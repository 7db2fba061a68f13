"""Pieces the commands share: graph sources, output folders and resumable states."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphvae.errors import quote
from graphvae.io import NAME_MAX
from graphvae.run_folder import check_output_folder
from graphvae.stopping import states_removed


def state_dir(args: argparse.Namespace, command: str, files: tuple[str, ...],
              world: int = 1) -> Path | None:
    """Where a run with ``--out DIR`` keeps its resumable training state (``.DIR.state/``
    beside it; :func:`done` removes it when the run completes). ``files``: the names (glob
    patterns) of ``command``'s states, one of which ``--resume`` needs there: a state
    folder of another command is refused, not trained over and removed. Under
    ``torch.distributed`` (``world`` > 1) the processes decide that together, once they
    have joined (:func:`agree_on_state`): one that refused alone left the others waiting
    for it until the group's timeout."""
    if args.out is None:
        if getattr(args, "resume", False):
            raise ValueError("--resume needs --out (the state of a run is kept beside it)")
        return None
    state = args.out.parent / f".{args.out.name}.state"
    if len(os.fsencode(state.name)) > NAME_MAX:
        raise ValueError(f"--out {quote(args.out.name)}: its training-state folder "
                         f"'.NAME.state' would be longer than {NAME_MAX} bytes; use a shorter "
                         f"name")
    check_output_folder(args.out, f"graphvae {command}")
    if state.is_symlink():
        raise ValueError(f"{state} is a symbolic link: a run with --out {args.out} writes "
                         f"and removes its training states there, and would do so in the "
                         f"link's target (remove the link, or put the folder it points to "
                         f"in its place to resume)")
    if state.exists() and not state.is_dir():           # (a link was refused above)
        raise ValueError(f"{state} is not a folder: a run with --out {args.out} keeps its "
                         f"training state there (move the file away)")
    if args.resume and world == 1:
        _has_state(state, files, command, refuse=True)
    elif not args.resume and _has_state(state, files, command, refuse=False):
        _refuse_other_commands_state(state, files, command)
        from graphvae.distributed import world_from_env
        if world_from_env()[0] == 0:
            print(f"graphvae {command}: note: starting afresh; the training state of an "
                  f"interrupted run in {state} is replaced by this run's (--resume "
                  f"continues it instead)", file=sys.stderr)
    return state  # created by the first checkpoint the run writes


def check_inputs_outside(out: Path | None, inputs: dict[str, Any]) -> None:
    """A one-line ``ValueError`` for an input file (``{flag: path or None}``) that lies
    inside ``--out``, which the run replaces as a whole: the run read it, then replaced it
    (``linkpred --edges runs/x/predicted_links.csv --out runs/x``)."""
    if out is None or out.name in ("", ".", ".."):       # check_output_folder refuses those
        return
    # the folder the run replaces: --out itself, a link replaced as a link (not its target)
    from graphvae.run_folder import resolved_parent
    home = resolved_parent(out) / out.name
    for flag, path in inputs.items():
        if path is not None and Path(path).is_file() \
                and Path(path).resolve().is_relative_to(home):
            raise ValueError(f"{flag} {path} lies inside --out {out}, which the run replaces "
                             f"as a whole: copy it elsewhere first, or give another --out")


#: The training states each command keeps in its state folder (``train.pt`` is both
#: generate's and vector's); a refused ``--resume`` names the commands whose states the
#: folder holds.
COMMAND_STATES: dict[str, tuple[str, ...]] = {
    "linkpred": ("seed*.pt",), "generate": ("train.pt",), "vector": ("train.pt", "refine.pt")}


def _state_owners(name: str) -> set[str]:
    """The commands of :data:`COMMAND_STATES` that keep a training state named ``name``."""
    return {command for command, patterns in COMMAND_STATES.items()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)}


def _has_state(state: Path, files: tuple[str, ...], command: str, refuse: bool) -> bool:
    """Whether ``state`` holds one of ``command``'s training states; with ``refuse``, a
    one-line ``ValueError`` saying why not."""
    if not state.is_dir():
        if refuse:
            raise ValueError(f"--resume: no training state of an interrupted run at {state}")
        return False
    named = sorted(p for pattern in files for p in state.glob(pattern))
    if not any(p.is_file() for p in named):
        if refuse:
            if named:                               # (named as a state, not a file)
                raise ValueError(f"--resume: {named[0]} is not a file, so not a training "
                                 f"state of graphvae {command}")
            held = sorted(p.name for p in state.iterdir())[:5]
            owners = [who for who in map(_state_owners, held) if who]
            whose = sorted(set.intersection(*owners) - {command}) if owners else []
            raise ValueError(f"--resume: {state} holds no training state of graphvae {command} "
                             f"({' or '.join(files)}; it holds {', '.join(held) or 'nothing'}"
                             + (f", left by graphvae {' or '.join(whose)}" if whose else "")
                             + ")")
        return False
    return True


def _refuse_other_commands_state(state: Path, files: tuple[str, ...], command: str) -> None:
    """A one-line ``ValueError`` where a state of ``command``'s file names in ``state`` was
    left by another command (``generate`` and ``vector`` both name theirs ``train.pt``): a
    fresh run would write over it, and ``--resume`` of that command could no longer
    continue it."""
    from graphvae.training.state import state_command

    for p in sorted(p for pattern in files for p in state.glob(pattern) if p.is_file()):
        if len(_state_owners(p.name)) < 2:
            continue                                  # the name is this command's alone
        who = state_command(p)
        if who is not None and who != f"graphvae {command}":
            raise ValueError(f"{p} is the training state of an interrupted run of {who}, "
                             f"which this run would write over: resume it with that "
                             f"command, delete it, or choose another --out")


def agree_on_state(state: Path | None, files: tuple[str, ...], command: str) -> None:
    """``--resume`` under ``torch.distributed``, once the processes have joined: every one
    must find a training state of ``command`` at ``state``. All of them refuse together,
    in one line, when none or only some do (some: they do not share the file system
    that holds ``--out``)."""
    from graphvae.distributed import current_world, spread

    have = state is not None and _has_state(state, files, command, refuse=False)
    fewest, most = spread(float(have))
    world = current_world()[1]
    if most == 0:
        raise ValueError(f"--resume: no training state of an interrupted run at {state} "
                         f"(in any of the {world} processes)")
    if fewest == 0:                                          # one process has none
        raise ValueError(f"--resume: some of the {world} processes found no training state "
                         f"at {state}; every process must see the same --out (a folder on "
                         f"a file system they share)")


def output_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--out", type=path_arg, metavar="DIR", help=f"write {what} here")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run into --out from its saved state")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


#: Linux's longest path in bytes (``PATH_MAX`` less its NUL); beyond it, or a name beyond
#: ``NAME_MAX``, the OS answers "File name too long".
PATH_BYTES = 4095


def path_arg(text: str) -> Path:
    """The type of every path flag. ``Path('')`` is the working folder, which an empty
    value (an unset shell variable, ``--out "$RUN"``) never means, so it is refused; a
    name longer than the OS takes is refused here, with its flag, instead of by the OS's
    message, which names neither."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    size = len(os.fsencode(text))
    if size > PATH_BYTES:
        raise argparse.ArgumentTypeError(f"the path is {size} bytes long; a path takes at "
                                         f"most {PATH_BYTES}")
    long = next((part for part in Path(text).parts if len(os.fsencode(part)) > NAME_MAX),
                None)
    if long is not None:
        raise argparse.ArgumentTypeError(
            f"its part {long[:20]}… is {len(os.fsencode(long))} bytes long; a file name takes "
            f"at most {NAME_MAX}")
    return Path(text)


def data_root_path(text: str) -> Path:
    """The ``--data-root`` flag's type: :func:`path_arg`, whose empty value names the
    default it could have meant."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; leave the flag out to use "
                                         "$GRAPHVAE_DATA, else ./data")
    return path_arg(text)


def graph_source(p: argparse.ArgumentParser) -> None:
    from graphvae.datasets import LINKPRED_DATASETS  # imports torch_geometric: not for vector

    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, choices=LINKPRED_DATASETS,
                     help="a named graph (default: synthetic, no files needed)")
    src.add_argument("--edges", type=path_arg, metavar="FILE",
                     help="your graph: edge list (.csv/.tsv/whitespace) or .graphml/.gml")
    p.add_argument("--features", type=path_arg, metavar="FILE",
                   help="node-feature CSV for --edges (first column: node id)")
    p.add_argument("--num-nodes", type=int, metavar="N",
                   help="--edges ids are the integers 0..N-1 and are the node indices "
                        "(isolated nodes kept; an id outside is an error naming its line)")
    p.add_argument("--data-root", type=data_root_path,
                   help="folder holding Planetoid/<Name>/raw, and for check-invariance on "
                        "a generation checkpoint graphgen/ and qm9/ (default: "
                        "$GRAPHVAE_DATA, else ./data)")


def note_unread_root(command: str, args: argparse.Namespace, why: str | None) -> None:
    """A note on standard error where ``--data-root`` was given but the run reads nothing
    under it (``why``: what it reads instead; ``None``: it does read there). The flag is
    noted, not refused: scripts pass one data root to every command."""
    if getattr(args, "data_root", None) is not None and why is not None:
        print(f"graphvae {command}: note: --data-root is not read: {why}; ignored here",
              file=sys.stderr)


def graph_root_unread(args: argparse.Namespace) -> str | None:
    """Why a graph of :func:`load_graph` is read from no data root (``None``: it is)."""
    if args.edges is not None:
        return "the graph is read from --edges"
    if args.dataset in (None, "synthetic"):
        return "the synthetic graph is built in"
    return None


def load_graph(args: argparse.Namespace):
    from graphvae.datasets import load_dataset, load_graph_file

    if args.features is not None and args.edges is None:
        raise ValueError("--features needs --edges")
    num_nodes = getattr(args, "num_nodes", None)
    if num_nodes is not None and args.edges is None:
        raise ValueError("--num-nodes needs --edges")
    if args.edges is not None:
        return load_graph_file(args.edges, args.features, num_nodes), str(args.edges)
    name = args.dataset or "synthetic"
    return load_dataset(name, args.data_root), name


def wrote(command: str, out: Path | None, shown: int = 8) -> None:
    """Say on stderr where a run's ``--out`` went and what it holds (at most ``shown``
    names, folders with a slash), once the folder is in place; nothing without ``--out``."""
    if out is None:
        return
    names = sorted(p.name + "/" * p.is_dir() for p in out.iterdir())
    more = f", and {len(names) - shown} more" if len(names) > shown else ""
    print(f"graphvae {command}: wrote {quote(str(out), PATH_BYTES)}: "
          f"{', '.join(names[:shown])}{more}", file=sys.stderr)


def done(state: Path | None, files: tuple[str, ...]) -> None:
    """A completed run removes its training states from ``state`` (the names ``files``, and
    the temporary files of their atomic writes), then the folder if that left it empty:
    anything else in it (another command's state, a file of yours) stays."""
    states_removed()                    # a stop from now on names no state
    clear_states(state, files)


@contextlib.contextmanager
def fresh_start(args: argparse.Namespace, state: Path | None, files: tuple[str, ...]
                ) -> Iterator[None]:
    """The block of a run that writes training states. Without ``--resume`` it replaces the
    states an interrupted run left in ``state``: the run's first state write removes the
    others (as :func:`done` does), so that the folder holds this run's alone and a later
    ``--resume`` continues this run, with nothing of the other (``linkpred``'s other seeds,
    ``vector``'s refinement) mixed in. A run that fails before its first state write (a bad
    input, a kill while it reads) leaves them for ``--resume``. The block's end forgets the
    folder however it ends: a later run in this process (the Python API, a notebook) that
    resumes them removes nothing."""
    from graphvae.training.state import replace_on_first_write

    if state is not None and not args.resume:
        replace_on_first_write(state, lambda kept: clear_states(state, files, keep=kept.name))
    try:
        yield
    finally:
        if state is not None:
            replace_on_first_write(state, None)


def clear_states(state: Path | None, files: tuple[str, ...], keep: str | None = None
                 ) -> None:
    """Remove the training states ``files`` (and their temporary files) from ``state``, all
    but the file named ``keep``, then the folder if that left it empty."""
    if state is None or not state.is_dir() or state.is_symlink():
        return
    for p in state.iterdir():
        if p.name != keep and p.is_file() and not p.is_symlink() and any(
                fnmatch.fnmatchcase(p.name, pattern)
                or fnmatch.fnmatchcase(p.name, f".{pattern}.*.tmp") for pattern in files):
            p.unlink(missing_ok=True)
    with contextlib.suppress(OSError):              # not empty: what is left is not ours
        state.rmdir()


def _number(x: Any, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


#: How the summary names the molecule decodings of ``metrics["molecules"]``.
DECODINGS = {"sampled": "raw samples", "valency_aware": "valency-aware decoding"}


def generation_summary(m: dict[str, Any]) -> list[str]:
    """The lines a person reads first of ``generate``'s and ``score``'s metrics (the whole
    JSON is on stdout): the MMD² table's row, or the molecule scores, and the test bound."""
    from graphvae.evaluation.graph_stats import THREE_STATS, mean_of_three

    who = [str(m[k]) for k in ("dataset", "model") if m.get(k)] + [f"seed {m.get('seed')}"]
    lines = [f"{', '.join(who)}: {m.get('num_samples')} samples"]
    mmd = m.get("mmd2")
    if mmd:
        gen, ref = mmd["generated"], mmd["train_vs_test"]
        extra = [k for k in gen if k not in (*THREE_STATS, "empty_generated")]
        lines.append(f"  MMD² ({m.get('protocol')}): "
                     + " / ".join(_number(gen[k]) for k in THREE_STATS)
                     + f" ({' / '.join(THREE_STATS)}), mean {_number(mean_of_three(gen))}"
                     + "".join(f", {k} {_number(gen[k])}" for k in extra)
                     + (f"; {int(gen['empty_generated'])} empty samples left out"
                        if gen.get("empty_generated") else ""))
        lines.append("  train vs test: " + " / ".join(_number(ref[k]) for k in THREE_STATS)
                     + f", mean {_number(mean_of_three(ref))}")
        draws = m.get("mmd2_draws")
        if draws:
            both = draws["mean_of_three"]
            lines.append(f"  over {draws['draws']} sample sets: mean "
                         f"{_number(both['mean'])} ± {_number(both['std'], 2)}")
    for name, mol in (m.get("molecules") or {}).items():
        parts = [f"validity {_number(mol['validity'])}"]
        if "gdss_validity" in mol:
            parts.append(f"GDSS's validity {_number(mol['gdss_validity'])}")
        parts += [f"uniqueness {_number(mol['uniqueness'])}",
                  f"novelty {_number(mol['novelty'])}"]
        parts += [f"{key.upper()} {_number(mol[key])}" for key in ("fcd", "nspdk") if key in mol]
        lines.append(f"  {DECODINGS.get(name, name)}: " + ", ".join(parts))
    if "test_bound_nats" in m:
        lines.append(f"  test bound {_number(m['test_bound_nats'], 6)} nats per graph "
                     f"({m.get('bound')})")
    return lines
