"""Stored sets of small graphs for generation (community-small, ego-small, grid, ENZYMES).

Two formats, looked up in ``ROOT/graphgen/`` in this order:

* **graph6** (``<stem>.g6``, one graph a line, nauty's format; networkx writes and reads
  it): plain text, no code, the format to keep graph sets in. Nodes are 0..n-1 in the
  file's order; graph6 holds structure only, which is all generation uses.
* **pickle** (``<stem>.pkl``, GDSS's ``data/*.pkl``: a list of networkx graphs), read
  by :func:`graphvae.safe_pickle.restricted_load` with the ``networkx`` profile, which
  resolves only the exact classes such a file needs, so a crafted file cannot run code.

:func:`convert_graph_sets` (``graphvae convert-graphs``) writes the graph6 twin of
every stored pickle, so a data root can drop pickles altogether; loading either file
gives the same graphs, node for node.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from graphvae.errors import DataError, describe, quote
from graphvae.io import atomic_path, read_bytes, require_file, write_text
from graphvae.safe_pickle import restricted_load

GRAPHGEN_FILES = {"community-small": "community_small", "ego-small": "ego_small",
                  "grid": "grid", "enzymes": "ENZYMES"}
#: Largest graph of a generation set (nodes); generation models are dense in n.
MAX_NODES = 5000


#: The most a graph set may hold in all, counted as its nodes, its edges and 2 for each
#: graph (a node or an edge takes about 225 bytes as networkx objects, an empty graph about
#: 430, 680 with the reader's own): 4·10⁶, 60 times the grid set (the largest of GDSS's),
#: at most about 1.3 GB. Counted before each graph is built: a graph6 file of a million
#: empty graphs (2 bytes a line) took 0.68 GB and 18 s to read, and one of ten million is
#: now refused after two million.
MAX_SET_SIZE = 4_000_000


def set_size(n: int, e: int) -> int:
    """What a graph of ``n`` nodes and ``e`` edges counts towards :data:`MAX_SET_SIZE`."""
    return 2 + n + e


def _over_size(path: Path, total: int, lineno: int | None = None) -> None:
    if total > MAX_SET_SIZE:
        raise DataError(path, f"the graphs up to here hold more than {MAX_SET_SIZE:,} "
                              "nodes, edges and graphs (2 each) in all; graph sets for "
                              "generation are small graphs", lineno)


def _budget(path: Path) -> int:
    """Most a pickle's graphs may count (as :func:`set_size`) for the file's size: a real
    file spends several bytes on each node, edge and graph (at least 230 a graph in
    GDSS's files), so a larger count means shared references are being multiplied out."""
    return 4 * path.stat().st_size + 10_000


def _tables(g: nx.Graph, path: Path, index: int) -> tuple[list[Any], Any]:
    """The node order and the adjacency table of graph ``index``, read from the graph's
    own ``_node`` and ``_adj`` (plain dicts, or the filtered views of a subgraph, as in
    ENZYMES) and not through ``g.nodes`` / ``g.adj`` / ``g.degree``: networkx caches those
    views in the graph's ``__dict__``, so a pickle brings its own, and a damaged one
    (a degree view without its graph) failed inside networkx."""
    tables = vars(g)
    node, adj = tables.get("_node"), tables.get("_adj")
    for name, key, table in (("node", "_node", node), ("adjacency", "_adj", adj)):
        if not isinstance(table, Mapping):
            raise DataError(path, f"graph {index} has no {name} table (its {key} is "
                                  f"{quote(table)}, not a mapping)")
    try:
        return list(node), adj
    except Exception as err:  # noqa: BLE001 - a subgraph's pickled filter, damaged
        raise DataError(path, f"graph {index}'s node table cannot be read: networkx's view "
                              f"of it fails ({describe(err)})") from None


def _simple(g: Any, path: Path, index: int, budget: list[int]) -> nx.Graph:
    """Graph ``index`` of a pickle as a simple undirected graph on nodes 0..n-1, keeping the
    file's node order; :class:`DataError` if it is not a networkx graph or too large.
    ``budget`` is ``[left of the file's budget, counted so far]``."""
    if not isinstance(g, nx.Graph):
        raise DataError(path, f"item {index} is of type {type(g).__name__}, not a networkx graph")
    nodes, adj = _tables(g, path, index)
    n = len(nodes)
    if n > MAX_NODES:
        raise DataError(path, f"graph {index} has {n} nodes; graph sets for generation hold "
                              f"graphs of at most {MAX_NODES}")
    # a node table of 1 beside an adjacency of 3·10⁶ was copied
    if len(adj) != n or any(u not in adj for u in nodes):
        raise DataError(path, f"graph {index}'s node and adjacency tables disagree "
                              f"({n} nodes, adjacency of {len(adj)})")
    rows = [(u, adj[u]) for u in nodes]
    odd = next((u for u, row in rows if not isinstance(row, Mapping)), None)
    if odd is not None:
        raise DataError(path, f"graph {index}'s adjacency of node {quote(odd)} is "
                              f"{quote(adj[odd])}, not a mapping")
    entries = sum(len(row) for _, row in rows)
    loops = sum(u in row for u, row in rows)    # counted once where an edge counts twice
    size = set_size(n, (entries + loops) // 2)
    budget[0] -= size
    budget[1] += size
    if budget[0] < 0:
        raise DataError(path, "holds more nodes, edges and graphs than its size allows "
                              "(shared references multiplied out); refusing to expand it")
    _over_size(path, budget[1])
    # built here, node by node in the file's order, with the edges in the order
    # nx.Graph(g) adds them and none of their attributes (one shared 100,000-key dict on
    # every edge was copied per edge, twice: 2.3 GB from 0.5 MB)
    index_of = {v: i for i, v in enumerate(nodes)}
    h = nx.Graph()
    h.add_nodes_from(range(n))
    for i, (_, row) in enumerate(rows):
        for v in row:
            j = index_of.get(v)
            if j is None:
                raise DataError(path, f"graph {index} has an edge to {quote(v)}, which is not "
                                      f"one of its nodes")
            if j != i:
                h.add_edge(i, j)
    return h


def load_graph_pickle(path: str | os.PathLike, max_graphs: int | None = None) -> list[nx.Graph]:
    """A list of simple graphs (nodes 0..n-1) from a pickle, loaded without running code;
    at most ``max_graphs`` of them, if given (counted before any is built)."""
    path = Path(path)
    require_file(path, "no such graph file")
    obj = restricted_load(path, "networkx")
    if not isinstance(obj, list) or not obj:
        raise DataError(path, "expected a non-empty list of networkx graphs")
    if max_graphs is not None and len(obj) > max_graphs:
        raise DataError(path, f"holds {len(obj):,} graphs; at most {max_graphs:,} are read here")
    budget = [_budget(path), 0]
    try:
        return [_simple(g, path, i, budget) for i, g in enumerate(obj)]
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - a crafted graph object fails in many ways
        raise DataError(path, f"not a usable list of graphs ({describe(err)})") from None


def _graph6_header(line: bytes) -> tuple[int, int] | None:
    """``(node count, header length)`` of a graph6 line's size header, read in the form
    its bytes take (1 byte up to 62 nodes, ``~`` and 3 up to 258,047, ``~~`` and 6
    beyond); ``None`` if the line is too short for its form."""
    d = [b - 63 for b in line[:8]]
    if d[0] < 63:
        return d[0], 1
    if len(d) >= 4 and d[1] < 63:
        return (d[1] << 12) | (d[2] << 6) | d[3], 4
    if len(d) >= 8:
        return (d[2] << 30) | (d[3] << 24) | (d[4] << 18) | (d[5] << 12) | (d[6] << 6) | d[7], 8
    return None


#: The longest graph6 line: the optional ``>>graph6<<`` header, the 8-byte size of a graph of
#: :data:`MAX_NODES` nodes, its n(n-1)/2 bits six to a byte, and a line end. The file is
#: read a line at a time, never more than this, so a file's size costs nothing before its
#: lines are checked.
_MAX_LINE = 10 + 8 + -(-MAX_NODES * (MAX_NODES - 1) // 12) + 2


def read_graph6(path: str | os.PathLike, max_pairs: int | None = None,
                max_graphs: int | None = None) -> list[nx.Graph]:
    """Graphs from a graph6 file (one a line; an optional ``>>graph6<<`` header per line;
    blank lines skipped). :class:`DataError` naming the line on anything else. Sizes are
    read from each line's header and its set bits before the graph is built: at most
    :data:`MAX_NODES` nodes a graph, :data:`MAX_SET_SIZE` in all (six edges fit in a byte,
    so a 2 MB line is a complete graph of 5,000 nodes, 2.8 GB as networkx objects) and, if
    given, ``max_pairs`` node pairs (n² summed over the graphs) and ``max_graphs`` graphs."""
    path = require_file(path, "no such graph file")
    try:
        with path.open("rb") as fh:
            graphs = _graph6_lines(path, iter(lambda: fh.readline(_MAX_LINE + 1), b""),
                                   max_pairs, max_graphs)
    except OSError as err:
        raise DataError(path, f"cannot read the file ({describe(err)})") from None
    if not graphs:
        raise DataError(path, "holds no graphs")
    return graphs


def _graph6_lines(path: Path, lines: Any, max_pairs: int | None,
                  max_graphs: int | None) -> list[nx.Graph]:
    graphs: list[nx.Graph] = []
    total = pairs = 0
    for lineno, chunk in enumerate(lines, start=1):
        line = chunk.strip()
        if line.startswith(b">>graph6<<"):
            line = line[len(b">>graph6<<"):]
        if not line:
            continue
        if max_graphs is not None and len(graphs) == max_graphs:
            raise DataError(path, f"holds more than {max_graphs:,} graphs; at most "
                                  f"{max_graphs:,} are read here", lineno)
        codes = np.frombuffer(line, np.uint8)
        if ((codes < 63) | (codes > 126)).any():
            raise DataError(path, f"not graph6: bytes outside 63..126 in {quote(line)}", lineno)
        header = _graph6_header(line)
        if header is None:
            raise DataError(path, f"not graph6: {quote(line)} is shorter than its size header "
                                  f"('~' begins one of 4 bytes, '~~' one of 8)", lineno)
        n, head = header
        if n > MAX_NODES:
            raise DataError(path, f"a graph of {n} nodes; at most {MAX_NODES}", lineno)
        if len(chunk) > _MAX_LINE:          # only the first _MAX_LINE + 1 bytes were read
            raise DataError(path, f"not graph6: a line longer than {_MAX_LINE:,} bytes, the "
                                  f"line of a graph of {MAX_NODES} nodes", lineno)
        need = -(-n * (n - 1) // 12)        # n(n-1)/2 bits, six a byte
        if len(line) - head != need:
            raise DataError(path, f"not graph6: its size header says {n:,} nodes, whose "
                                  f"{n * (n - 1) // 2:,} pairs take {need:,} "
                                  f"byte{'' if need == 1 else 's'}, and {len(line) - head:,} "
                                  f"follow it", lineno)
        pairs += n ** 2
        if max_pairs is not None and pairs > max_pairs:
            raise DataError(path, f"the graphs up to here hold more than {max_pairs:.0e} node "
                                  f"pairs (n² summed over the graphs)", lineno)
        # its edges: the set bits after the size header (which has bits of its own: K3's
        # "Bw" counted 5 edges)
        total += set_size(n, int(np.unpackbits(codes[head:] - 63).sum()))
        _over_size(path, total, lineno)
        try:
            g = nx.from_graph6_bytes(line)
        except Exception as err:  # noqa: BLE001 - networkx raises several types
            raise DataError(path, f"not a graph6 line ({describe(err)})", lineno) from None
        graphs.append(g)
    return graphs


def graph6_text(graphs: list[nx.Graph]) -> str:
    """Simple graphs as graph6, one a line."""
    lines = [nx.to_graph6_bytes(g, header=False).decode().strip() for g in graphs]
    return "\n".join(lines) + "\n"


def write_graph6(graphs: list[nx.Graph], path: str | os.PathLike) -> Path:
    """Write simple graphs as graph6, one a line, atomically."""
    return write_text(graph6_text(graphs), path)


def load_graphgen(name: str, root: str | os.PathLike) -> list[nx.Graph]:
    """One of ``GRAPHGEN_FILES`` from ``ROOT/graphgen/``: its ``.g6`` file if present, else its
    ``.pkl`` (see the module docstring)."""
    key = name.lower()
    if key not in GRAPHGEN_FILES:
        raise ValueError(f"unknown graph set {name!r}; choose one of {sorted(GRAPHGEN_FILES)}")
    folder = Path(root) / "graphgen"
    g6 = folder / f"{GRAPHGEN_FILES[key]}.g6"
    pkl = folder / f"{GRAPHGEN_FILES[key]}.pkl"
    if g6.is_file():
        path, graphs = g6, read_graph6(g6)
    elif pkl.is_file():
        path, graphs = pkl, load_graph_pickle(pkl)
    else:
        raise DataError(folder, f"has neither {g6.name} nor {pkl.name} (set --data-root or "
                                f"GRAPHVAE_DATA to the folder holding graphgen/)")
    for t, g in enumerate(graphs):
        if g.number_of_nodes() == 0:
            raise DataError(path, f"graph {t + 1} of {len(graphs)} has no nodes; a set of "
                                  "graphs to generate from needs at least one node in each")
    return graphs


def convert_graph_sets(root: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Write ``OUT/graphgen/<stem>.g6`` for every ``ROOT/graphgen/<stem>.pkl`` of
    ``GRAPHGEN_FILES`` (read with the restricted unpickler); return the files written.
    Every pickle is read and every target checked before any file is written, and the
    files are renamed into place only once all are written, so a bad pickle, a target that
    is a folder or a failed write leaves nothing new. A target that exists is replaced
    only by the same text (a rerun); any other file there is refused, so none of the
    user's is lost."""
    src, dst = Path(root) / "graphgen", Path(out) / "graphgen"
    for folder in (Path(out), dst):            # before the pickles are read (seconds)
        if folder.exists() and not folder.is_dir():
            raise DataError(folder, "is not a folder (nothing was written)")
    graph_sets = {stem: load_graph_pickle(src / f"{stem}.pkl")
                  for stem in GRAPHGEN_FILES.values() if (src / f"{stem}.pkl").is_file()}
    if not graph_sets:
        names = ", ".join(f"{stem}.pkl" for stem in GRAPHGEN_FILES.values())
        raise DataError(src, f"holds none of {names}")
    texts = {dst / f"{stem}.g6": graph6_text(graphs) for stem, graphs in graph_sets.items()}
    for target, text in texts.items():
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise DataError(target, "is not a regular file (nothing was written)")
        data = text.encode()
        # the size first: a 5 GB file there was read whole (25 s, 5.4 GB) to be refused
        if target.exists() and (target.stat().st_size != len(data)
                                or read_bytes(target) != data):
            raise DataError(target, "exists and holds other graphs than the conversion "
                                    "writes; move it or choose another --out (nothing was "
                                    "written)")
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(dst, f"cannot create the folder ({describe(err)})") from None
    with contextlib.ExitStack() as stack:      # each renamed into place at the end, or none
        for target, text in texts.items():
            stack.enter_context(atomic_path(target)).write_text(text)
    return list(texts)
