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

import os

# Under torchrun, torch's C++ side logs a failed rendezvous as warnings with a C++ stack
# trace before the Python error; a command's failure is one line, so those logs are cut
# to fatal ones (set TORCH_CPP_LOG_LEVEL to see them). This must precede torch's import.
if os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")

import argparse  # noqa: E402
import importlib  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

from graphvae.cli.guard import forgiving_streams  # noqa: E402
from graphvae.errors import OneLineParser, WriteError, describe, one_line  # noqa: E402
from graphvae.stopping import Terminated, last_written, signals_raise  # noqa: E402


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """``graphvae.cli.<module>.<name>``, imported when first called: a command imports
    only what it runs (``graphvae vector`` never loads torch_geometric, and ``graphvae
    --help`` no torch at all), which takes seconds off every start."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"graphvae.cli.{module}"), name)(*args, **kwargs)
    call.__qualname__ = call.__name__ = f"{module}.{name}"
    return call


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], dict[str, Any]]]] = {
    "linkpred": ("train a graph autoencoder and score held-out links",
                 _lazy("linkpred", "add_arguments"), _lazy("linkpred", "run")),
    "check-invariance": ("check a saved model's equivariance under node relabelling",
                         _lazy("invariance", "add_arguments"), _lazy("invariance", "run")),
    "generate": ("train a graph VAE on a set of small graphs, sample and evaluate",
                 _lazy("generate", "add_arguments"), _lazy("generate", "run")),
    "score": ("score a file of sampled graphs or molecules (samples.jsonl, graph6, a "
              "pickle of networkx graphs, or a generate run folder) as generate scores its "
              "own", _lazy("score", "add_arguments"), _lazy("score", "run")),
    "vector": ("train a linear AE / AE / denoising AE / VAE / IWAE on vector data",
               _lazy("vector", "add_arguments"), _lazy("vector", "run")),
    "convert-graphs": ("write the stored graph-set pickles as graph6 files (no pickle needed "
                       "afterwards)", _lazy("generate", "add_convert_arguments"),
                       _lazy("generate", "run_convert")),
    "make-graph": ("write a large seeded graph with planted communities (degree-corrected "
                   "SBM) and its planted parameters, the link-prediction oracle",
                   _lazy("makegraph", "add_arguments"), _lazy("makegraph", "run")),
}

#: The commands that run under torchrun (data-parallel training); the others refuse to.
DATA_PARALLEL = ("linkpred",)

#: Exit status of an unexpected internal error (2 is the user's error, 1 a failed check).
INTERNAL_ERROR = 3


class _Version(argparse.Action):
    """``--version``: the versions, looked up only when asked for (about 30 ms)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit()


def _version() -> str:
    """``graphvae 0.1.0 (torch 2.13.0, torch-geometric 2.8.1, Python 3.11.7)``, read from
    the installed packages' metadata (nothing is imported)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from graphvae import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"
    return (f"graphvae {__version__} (torch {installed('torch')}, torch-geometric "
            f"{installed('torch-geometric')}, Python {platform.python_version()})")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``graphvae`` argument parser: every command's sub-parser, or, given the
    command line ``argv``, only its command's flags (the other commands' modules are not
    imported; argparse parses one sub-command's flags in any case)."""
    parser = OneLineParser(prog="graphvae", description="Command line: graphvae <task> ...")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error")
    parser.add_argument("--version", action=_Version, nargs=0, default=argparse.SUPPRESS,
                        help="print the versions of graphvae, torch, torch-geometric and Python")
    sub = parser.add_subparsers(dest="command", required=True)
    # the top level has flags without values only: its first other word is the command
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for name, (help_, add, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the Python traceback of an error")
        if chosen is None or name == chosen:
            add(p)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with a flag no command knows refused by its command's
    parser, whose help lists the flags (argparse's top level said ``see graphvae --help``)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        commands = next(a for a in parser._actions
                        if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` reports an allocation that failed: Python's ``MemoryError``, CUDA's
    ``OutOfMemoryError``, or on the CPU a ``RuntimeError`` from torch's allocator."""
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text
                                              or "out of memory" in text.lower())


def entry() -> int:
    """The ``graphvae`` command (the console script and ``python -m graphvae``):
    :func:`main` in a process that ends after it, so that after a stop the stop's second
    copy (Slurm and torchrun each send one) cannot kill it as it exits."""
    return main(exiting=True)


def main(argv: Sequence[str] | None = None, *, exiting: bool = False) -> int:
    """Run one command; expected failures end with one line and exit status 2, Ctrl-C,
    SIGTERM and SIGHUP with one line ("interrupted", "terminated", "hung up") and 128 + the
    signal's number (while training with a state, once the epoch in progress has finished
    and its state is written: :mod:`graphvae.stopping`; :mod:`graphvae.cli.guard` also keeps a run
    going when its reader goes away)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with signals_raise(exiting), forgiving_streams():
        try:  # building the parser imports torch: seconds in which a Ctrl-C is likely
            parser = build_parser(argv)
            args = _parse(parser, argv)
            return _run(parser, args)
        except (KeyboardInterrupt, Terminated) as err:
            # (the command's own stops end in _run; this catches those while the parser
            # imports and while an error line is written)
            if "--debug" in argv:
                _debug_raise(err)
            status, line = _stopped(err)
            sys.stderr.write(line)
            raise SystemExit(status) from None


def _debug_raise(err: KeyboardInterrupt | Terminated) -> NoReturn:
    """``--debug``: the traceback, and a Ctrl-C as Python's ``KeyboardInterrupt`` (the
    process then ends by SIGINT, which shells and make read as an interrupt)."""
    if isinstance(err, Terminated) and err.signum == signal.SIGINT:
        raise KeyboardInterrupt from err
    raise err


def _stopped(err: KeyboardInterrupt | Terminated) -> tuple[int, str]:
    """Exit status and last line of a command stopped by Ctrl-C or another signal; both
    name the training state last written, when the run keeps one. (A
    ``KeyboardInterrupt`` comes where SIGINT had another handler than Python's when the
    command began, and is acted on at once.)"""
    status, word, saved = ((128 + err.signum, err.word, err.saved)
                           if isinstance(err, Terminated) else (130, "interrupted",
                                                                last_written()))
    if saved is not None:
        path, epoch = saved
        return status, (f"graphvae: {word}; the training state of epoch {epoch:,} is in "
                        f"{path} (rerun with --resume to continue)\n")
    return status, f"graphvae: {word}\n"


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        world = os.environ.get("WORLD_SIZE", "1")
        if args.command not in DATA_PARALLEL and world not in ("", "1"):
            # each of torchrun's processes would run the whole job and write the same files
            raise ValueError(f"graphvae {args.command} runs in one process, but WORLD_SIZE="
                             f"{world!r} (torchrun?): only {', '.join(DATA_PARALLEL)} trains "
                             f"data-parallel; run {args.command} without torchrun")
        summary = COMMANDS[args.command][2](args)
        if args.command == "check-invariance":
            return 0 if summary["ok"] else 1
        if args.command == "linkpred":
            _lazy("linkpred", "report")(summary, getattr(args, "json", False))
        return 0
    except (KeyboardInterrupt, Terminated) as err:
        if args.debug:
            _debug_raise(err)
        parser.exit(*_stopped(err))
    except (ValueError, FloatingPointError, OSError) as err:
        if args.debug:
            raise
        text = one_line(str(err)) if isinstance(err, ValueError | FloatingPointError
                                                | WriteError) else describe(err)
        parser.exit(2, f"graphvae: error: {text}\n")
    except Exception as err:  # noqa: BLE001 - one line, never a traceback, unless --debug
        if args.debug:
            raise
        if out_of_memory(err):
            parser.exit(2, f"graphvae: error: out of memory ({describe(err)}); ask for less: "
                           "fewer samples or nodes, narrower layers, smaller batches\n")
        parser.exit(INTERNAL_ERROR, f"graphvae: internal error: {describe(err)} (rerun with "
                                    f"--debug for the traceback)\n")
    raise AssertionError("unreachable: parser.exit raises")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["COMMANDS", "INTERNAL_ERROR", "build_parser", "main"]
