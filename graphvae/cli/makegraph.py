"""``graphvae make-graph``: write a large seeded graph with planted communities.

A degree-corrected stochastic block model (:mod:`graphvae.datasets.sbm`), for judging
link prediction at scale against the oracle that knows the planted parameters. Writes
the edge list to ``--out FILE.csv`` (``.tsv``: tab-separated, ``.txt``: space-separated;
a ``source,target`` header, then one edge ``i,j`` with ``i < j`` per line, nodes
numbered ``0 .. N-1``; isolated nodes appear in no line) and the planted parameters to
``FILE.planted.npz`` beside it (read them with
:meth:`graphvae.datasets.planted.PlantedSBM.load`; :func:`~graphvae.datasets.planted.oracle_scores`
gives the Bayes-optimal scores of held-out pairs). An existing pair that make-graph
wrote (an edge list with its header, whose edges are still the graph the planted
parameters beside it were drawn for, by the fingerprint stored with them) is replaced;
any other file at either name, or an edge list of the same stem and another suffix
(``g.csv`` and ``g.tsv`` would share ``g.planted.npz``), is refused in one line, before
anything is written, so no file of the user's is lost. The edge list is written last,
so an edge list always has its own planted parameters beside it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from graphvae.atomic import check_writable
from graphvae.cli.common import path_arg
from graphvae.config import check_seed
from graphvae.errors import describe

SUFFIXES = (".csv", ".tsv", ".txt")
#: Nodes per block when ``--blocks`` is not given.
NODES_PER_BLOCK = 1000


def planted_path(out: Path) -> Path:
    """Where the planted parameters of the edge list ``out`` go: ``FILE.planted.npz``."""
    return out.with_name(f"{out.stem}.planted.npz")


def default_blocks(nodes: int) -> int:
    """About one block per 1000 nodes, at least 2 and at most N/2 (every block holds two
    nodes or more; 1 block for N < 4), and at most :data:`~graphvae.datasets.sbm.MAX_BLOCKS`."""
    from graphvae.datasets.sbm import MAX_BLOCKS

    return max(1, min(max(2, round(nodes / NODES_PER_BLOCK)), nodes // 2, MAX_BLOCKS))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, required=True, metavar="N", help="number of nodes")
    p.add_argument("--edges", type=int, required=True, metavar="M",
                   help="expected number of undirected edges; the graph has fewer, as "
                        "parallel edges merge: a few per cent in a sparse graph (-4%% at "
                        "N=1000, M=5000); near the cap of N(N-1)/4 a pair inside a block "
                        "draws about (1 - mixing) K/2 edges, so the loss grows with the "
                        "blocks K (-27%% at N=1000 with 2 blocks, -41%% at N=3500 with 4)")
    p.add_argument("--blocks", type=int, default=None, metavar="K",
                   help="number of planted communities, of equal size (default: one per "
                        f"{NODES_PER_BLOCK} nodes, at least 2 and at most N/2; 1 below 4 "
                        "nodes)")
    p.add_argument("--mixing", type=float, default=0.2,
                   help="expected fraction of edges between communities [0.2]")
    p.add_argument("--exponent", type=float, default=2.5,
                   help="power-law exponent of the degrees, > 2 (inf: equal degrees) [2.5]")
    p.add_argument("--seed", type=int, default=0, help="random seed [0]")
    p.add_argument("--out", type=path_arg, required=True, metavar="FILE.csv",
                   help="edge list to write (.csv, .tsv or .txt); the planted parameters go "
                        "to FILE.planted.npz beside it")


def _check_out(out: Path) -> None:
    if out.suffix.lower() not in SUFFIXES:
        raise ValueError(f"--out {out} must end in {', '.join(SUFFIXES)}")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file path ending in .csv")
    planted = planted_path(out)
    for path in (out, planted):
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ValueError(f"cannot write {path}: it is "
                             f"{'a folder' if path.is_dir() else 'not a regular file'}")
    twins = sorted(q.name for q in out.parent.glob(f"{glob_escape(out.stem)}.*")
                   if q.stem == out.stem and q.suffix.lower() in SUFFIXES and q.name != out.name)
    if twins:        # g.csv, g.tsv and g.txt all keep their parameters in g.planted.npz
        raise ValueError(f"--out {out}: {twins[0]} is beside it, and both would keep their "
                         f"planted parameters in {planted.name}; choose another name")
    if out.exists() or planted.exists():
        _check_replaceable(out, planted)
    check_writable(out, create=True)           # missing folders are made, as --out's are


def _check_replaceable(out: Path, planted: Path) -> None:
    """A one-line ``ValueError`` unless ``out`` and ``planted`` are a pair that make-graph
    wrote: the edge list (if there) starts with its header, and the planted parameters are
    there and load."""
    from graphvae.datasets.edge_writer import edge_list_delimiter, edge_list_header
    from graphvae.datasets.planted import PlantedSBM

    advice = "move it or choose another --out"
    if not planted.exists():
        raise ValueError(f"--out {out} exists, with no {planted.name} beside it: not an edge "
                         f"list make-graph wrote; {advice}")
    try:
        model = PlantedSBM.load(planted)
    except ValueError:
        raise ValueError(f"{planted} exists and is not planted parameters make-graph wrote "
                         f"(--out {out} writes them there); {advice}") from None
    if out.exists():
        try:
            with open(out, "rb") as fh:
                head = fh.readline(64)
        except OSError as err:
            raise ValueError(f"cannot read --out {out}: {describe(err)}") from None
        header = edge_list_header(edge_list_delimiter(out))
        if head.rstrip(b"\r\n") != header:
            raise ValueError(f"--out {out} exists and does not start with make-graph's "
                             f"header ({header.decode()!r}); {advice}")
        if model.graph is not None and not _same_graph(out, model):
            raise ValueError(f"--out {out} exists and is not the graph make-graph wrote with "
                             f"{planted.name} (its edges differ: edited, or another graph's); "
                             f"{advice}")


def _same_graph(out: Path, model) -> bool:
    """Whether the edge list ``out`` is the graph the planted ``model`` was drawn for (the
    fingerprint make-graph stores with it)."""
    import numpy as np

    from graphvae.datasets.files import load_graph_file
    from graphvae.datasets.planted import edge_fingerprint

    with open(out, "rb") as fh:
        fh.readline()                       # the header (checked by the caller)
        empty = not fh.read(4096).strip()
    if empty:                               # a draw with no edges: the reader refuses it
        return edge_fingerprint(np.zeros((2, 0), np.int64), model.num_nodes) == model.graph
    try:
        data = load_graph_file(out, None, model.num_nodes)
    except ValueError:
        return False                        # not even a graph of the model's nodes
    return edge_fingerprint(data.edge_index, model.num_nodes) == model.graph


def check_args(args: argparse.Namespace) -> int:
    """Validate the flags (one-line ``ValueError``); the number of blocks to use."""
    from graphvae.datasets.sbm import MAX_BLOCKS, MAX_NODES

    n, m = args.nodes, args.edges
    if not 2 <= n <= MAX_NODES:
        raise ValueError(f"--nodes must lie in [2, {MAX_NODES}], got {n}")
    limit = max(1, n * (n - 1) // 4)
    if not 1 <= m <= limit:
        raise ValueError(f"--edges must lie in [1, {limit}] (N(N-1)/4: a sparse graph) for "
                         f"--nodes {n}, got {m}")
    k = default_blocks(n) if args.blocks is None else args.blocks
    if not 1 <= k <= min(n, MAX_BLOCKS):
        raise ValueError(f"--blocks must lie in [1, {min(n, MAX_BLOCKS)}], got {k}")
    if not 0.0 <= args.mixing <= 1.0:
        raise ValueError(f"--mixing must lie in [0, 1], got {args.mixing}")
    if math.isnan(args.exponent) or args.exponent <= 2:
        raise ValueError(f"--exponent must be greater than 2 (inf: equal degrees), got "
                         f"{args.exponent}")
    if k > max(1, n // 2) and args.mixing < 1:
        raise ValueError(f"--blocks {k} leaves blocks of one node, which no edge can lie "
                         f"within (the edges meant for them crowd into a few pairs): use at "
                         f"most N/2 = {n // 2} blocks, or --mixing 1")
    check_seed(args.seed, "--seed")
    _check_out(args.out)
    return k


def run(args: argparse.Namespace) -> dict[str, Any]:
    from graphvae.datasets.edge_writer import edge_list_delimiter, write_edge_list
    from graphvae.datasets.planted import edge_fingerprint
    from graphvae.datasets.sbm import make_sbm
    from graphvae.io import atomic_path

    k = check_args(args)
    out: Path = args.out
    planted_file = planted_path(out)
    start = time.perf_counter()
    edge_index, planted = make_sbm(args.nodes, args.edges, k, args.seed, args.mixing,
                                   args.exponent)
    sampled = time.perf_counter() - start
    blocks = planted.blocks
    src, dst = edge_index.numpy()
    between = float((blocks[src] != blocks[dst]).mean()) if src.size else 0.0
    # the old pair stays until the new one is whole: the edge list is written beside
    # --out, the planted parameters renamed into place, then the edge list (a kill between
    # the two renames leaves a pair that linkpred --planted refuses by its fingerprint)
    planted.graph = edge_fingerprint(edge_index, args.nodes)   # linkpred --planted checks it
    with atomic_path(out) as edges:
        write_edge_list(edge_index, edges, edge_list_delimiter(out))
        planted.save(planted_file)
    seconds = time.perf_counter() - start
    summary = {"out": str(out), "planted": str(planted_file), "num_nodes": args.nodes,
               "num_edges": int(edge_index.shape[1]), "requested_edges": args.edges,
               "blocks": k, "mixing": args.mixing, "between_fraction": between,
               "exponent": args.exponent, "seed": args.seed,
               "sample_seconds": sampled, "seconds": seconds}
    got = summary["num_edges"]
    print(f"make-graph: {args.nodes} nodes, {got} edge{'s' * (got != 1)} (requested "
          f"{args.edges}; {k} block{'' if k == 1 else 's'}, {100 * between:.1f}% between blocks) "
          f"in {seconds:.2f}s "
          f"-> {out}; planted parameters -> {planted_file} (oracle: rank held-out pairs by "
          f"graphvae.datasets.planted.oracle_scores)")
    if got == 0:
        print(f"make-graph: note: the graph drawn has no edges (the number of draws is "
              f"Poisson, of mean about {args.edges:,}); another --seed or more --edges "
              f"gives some", file=sys.stderr)
    elif got < 0.9 * args.edges and args.edges - got > 3 * math.sqrt(args.edges):
        # (--edges' help promises a few per cent; a shortfall within three standard
        # deviations of the Poisson count of draws is that count's chance, not merging)
        print(f"make-graph: note: {summary['num_edges']:,} of the {args.edges:,} requested "
              f"edges ({100 * summary['num_edges'] / args.edges:.0f}%): draws that fell on "
              f"the same pair merged, which small blocks ({args.nodes / k:.3g} nodes each) "
              f"or a low --mixing crowd into few pairs; fewer --blocks, a higher --mixing or "
              f"fewer --edges come closer", file=sys.stderr)
    return summary
