"""Users' graphs: an edge-list CSV/TSV with an optional node-feature CSV, or GraphML / GML
(read by :mod:`graphvae.datasets.networkx_files`).

Edge list: one edge per line, ``source<sep>target[<sep>anything]``, where the
separator is ``,`` for ``.csv``, a tab for ``.tsv`` and any whitespace otherwise;
blank lines and lines starting with ``#`` are skipped. A first line is a header
when it names the columns (``source,target``, ``src,dst``, ``u,v``, words such as
``node_a,node_b``), or when its ids are words and every later id is an integer.
Node ids are any strings. Feature table: ``id,f1,f2,...`` with an optional header
row (a row of words after its first cell, or one whose first cell is ``id``, ``node``,
``name`` and the like: ``node,0,1``, or one whose first cell is empty, as pandas'
``DataFrame.to_csv`` writes its index column: ``,0,1``), as wide as the rows; every
other cell must be a number within the float32 range, and no row's id may be empty.
The graph is made simple and undirected.

Files are UTF-8, or UTF-8 / UTF-16 / UTF-32 with a byte-order mark. Everything
else (other bytes, NUL characters, unterminated quotes, over-long cells) is a
:class:`~graphvae.errors.DataError` naming the file and line, never a silently
different graph.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from graphvae.config import FLOAT32_MAX
from graphvae.datasets.edge_reader import MAX_NUM_NODES, data_rows, read_edge_index, read_edge_list
from graphvae.datasets.networkx_files import (
    MAX_NETWORKX_BYTES,
    node_attributes,
    read_networkx_file,
)
from graphvae.errors import DataError, quote
from graphvae.graph import check_graph, to_simple_undirected
from graphvae.io import is_number, not_plain_hint, number

if TYPE_CHECKING:
    from torch_geometric.data import Data

#: First cells that make a feature table's first row a header, whatever follows them.
_ID_COLUMNS = {"id", "node", "nodes", "node_id", "nodeid", "name", "vertex", "index"}


def _number(cell: str, path: Path, lineno: int, col: int) -> float:
    try:
        value = number(cell)
    except ValueError:
        raise DataError(path, f"column {col}: {quote(cell)} is not a number"
                              f"{not_plain_hint(cell)}", lineno) from None
    if not math.isfinite(value):
        raise DataError(path, f"column {col}: {quote(cell)} is NaN or infinite", lineno)
    if abs(value) > FLOAT32_MAX:
        raise DataError(path, f"column {col}: {quote(cell)} is beyond the float32 range",
                        lineno)
    return value


def read_features(path: str | os.PathLike) -> tuple[list[str], torch.Tensor]:
    """Read a node-feature table: ``(node ids, (n, d) float tensor)``."""
    path = Path(path)
    names: list[str] = []
    lines: list[int] = []
    rows: list[list[float]] = []
    width = None
    for k, (lineno, cells) in enumerate(data_rows(path)):
        if k == 0 and len(cells) > 1 and (all(not is_number(c) for c in cells[1:])
                                          or cells[0].strip().lower() in _ID_COLUMNS
                                          or not cells[0].strip()):
            width = len(cells)
            continue  # header: words after the id, a named id column (``node,0,1``), or
            #           pandas' unnamed index column (``,0,1`` from ``DataFrame.to_csv``)
        if len(cells) < 2:
            raise DataError(path, "a feature row needs a node id and a value", lineno)
        if not cells[0].strip():
            raise DataError(path, "a feature row has an empty node id", lineno)
        if width is not None and len(cells) != width:
            raise DataError(path, f"{len(cells) - 1} features, expected {width - 1}"
                            + (" (as the header names)" if not names else ""), lineno)
        width = len(cells)
        names.append(cells[0])
        lines.append(lineno)
        rows.append([_number(c, path, lineno, j + 2) for j, c in enumerate(cells[1:])])
    if not rows:
        raise DataError(path, "the feature table has no rows")
    seen: dict[str, int] = {}
    for name, lineno in zip(names, lines):
        if name in seen:
            raise DataError(path, f"node {quote(name)} has a second feature row (the first is "
                                  f"line {seen[name]})", lineno)
        seen[name] = lineno
    return names, torch.tensor(rows, dtype=torch.float)


def _build(pairs: list[tuple[str, str]], names: list[str], x: torch.Tensor | None,
           path: Path) -> Data:
    index = {name: i for i, name in enumerate(names)}
    try:
        ei = torch.tensor([[index[a] for a, _ in pairs], [index[b] for _, b in pairs]],
                          dtype=torch.long)
    except KeyError as err:
        raise DataError(path, f"the edge list names node {quote(err.args[0])}, which has no "
                              f"row in the feature table") from None
    return _graph(ei, names, x, path)


def _graph(ei: torch.Tensor, names: list[str], x: torch.Tensor | None, path: Path) -> Data:
    n = len(names)
    edge_index = to_simple_undirected(ei, n)
    if edge_index.size(1) == 0 and ei.size(1) > 0:
        raise DataError(path, f"all {ei.size(1):,} edges are self-loops, which are dropped "
                              f"(the graph is made simple): the graph has no edges")
    check_graph(x, edge_index, n)
    from torch_geometric.data import Data  # at first use: ~2 s to import
    return Data(x=x, edge_index=edge_index, num_nodes=n, node_names=names)


def load_edge_list(edges: str | os.PathLike, features: str | os.PathLike | None = None,
                   num_nodes: int | None = None) -> Data:
    """A user's graph from an edge list and an optional feature table.

    Without a feature table ``x`` is ``None`` (the task then uses identity features).
    With one, its rows define the nodes (isolated nodes included). ``num_nodes``: integer
    ids ``0..num_nodes-1`` are the node indices (see :func:`read_edge_index`).
    """
    names, ei = read_edge_index(edges, num_nodes)
    if features is None:
        return _graph(ei, names, None, Path(edges))
    fnames, x = read_features(features)
    if num_nodes is not None and fnames != names:
        raise DataError(features, f"with --num-nodes the feature table must list the nodes "
                                  f"0..{num_nodes - 1} in order")
    index = {name: i for i, name in enumerate(fnames)}
    lookup = []
    for name in names:
        if name not in index:
            raise DataError(edges, f"the edge list names node {quote(name)}, which has no row "
                                   f"in the feature table {Path(features).name}")
        lookup.append(index[name])
    return _graph(torch.tensor(lookup, dtype=torch.long)[ei], fnames, x, Path(edges))


def load_graph_file(path: str | os.PathLike, features: str | os.PathLike | None = None,
                    num_nodes: int | None = None) -> Data:
    """Load ``.csv`` / ``.tsv`` / ``.txt`` / ``.edges`` edge lists, or ``.graphml`` / ``.gml``.

    For GraphML / GML, numeric node attributes shared by every node become the
    features (unless a feature table is given); parallel edges are merged.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".graphml", ".gml"):
        return load_edge_list(path, features, num_nodes)
    if num_nodes is not None:
        raise ValueError("--num-nodes is for edge lists, not GraphML / GML files")
    g = read_networkx_file(path)
    names = [str(v) for v in g.nodes]
    if len(set(names)) != len(names):
        raise DataError(path, "two nodes have the same id once written as text")
    pairs = [(str(a), str(b)) for a, b in g.edges]
    if not pairs:
        raise DataError(path, "the graph is empty (no edges)")
    if features is not None:
        fnames, x = read_features(features)
        return _build(pairs, fnames, x, path)
    return _build(pairs, names, node_attributes(g, path), path)


# read_edge_index, read_edge_list and MAX_NUM_NODES live in edge_reader, MAX_NETWORKX_BYTES
# in networkx_files; kept importable here
__all__ = ["MAX_NETWORKX_BYTES", "MAX_NUM_NODES", "load_edge_list", "load_graph_file",
           "read_edge_index", "read_edge_list", "read_features"]
