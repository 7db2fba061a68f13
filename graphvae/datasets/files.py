"""Users' graphs: an edge-list CSV/TSV with an optional node-feature CSV, or GraphML / GML.

Edge list: one edge per line, ``source<sep>target[<sep>anything]``, where the
separator is ``,`` for ``.csv``, a tab for ``.tsv`` and any whitespace otherwise;
blank lines and lines starting with ``#`` are skipped. A first line is a header
when it names the columns (``source,target``, ``src,dst``, ``u,v``, words such as
``node_a,node_b``), or when its ids are words and every later id is an integer.
Node ids are any strings. Feature table: ``id,f1,f2,...`` with an optional header
row; every other cell must be a number within the float32 range. The graph is made
simple and undirected.

Files are UTF-8, or UTF-8 / UTF-16 / UTF-32 with a byte-order mark. Everything
else (other bytes, NUL characters, unterminated quotes, over-long cells) is a
:class:`~graphvae.errors.DataError` naming the file and line, never a silently
different graph.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import networkx as nx
import torch
from torch_geometric.data import Data

from graphvae.errors import DataError, describe, quote
from graphvae.graph import check_graph, to_simple_undirected
from graphvae.io import csv_rows, text_lines

_HEADER_NAMES = {"source", "target", "src", "dst", "from", "to", "u", "v", "node1", "node2",
                 "head", "tail", "i", "j", "id1", "id2"}
#: Words that mark a first row as column names (``node_a,node_b``, ``from_id,to_id``, ...).
_HEADER_WORDS = ("node", "source", "target", "src", "dst", "from", "to", "head", "tail", "id",
                 "vertex")
#: Largest float32 value: features beyond it would become infinite.
_FLOAT32_MAX = 3.4028234663852886e38


def _delimiter(path: Path) -> str | None:
    return {".csv": ",", ".tsv": "\t"}.get(path.suffix.lower())


def _rows(path: Path):
    """Yield ``(line_number, cells)`` of the non-empty, non-comment lines."""
    delim = _delimiter(path)
    if delim is None:
        for lineno, line in enumerate(text_lines(path), start=1):
            cells = line.split()
            if cells and not cells[0].startswith("#"):
                yield lineno, cells
        return
    for lineno, cells in csv_rows(path, delim):
        cells = [c.strip() for c in cells]
        if cells and any(cells) and not cells[0].startswith("#"):
            yield lineno, cells


def _order(names: set[str]) -> list[str]:
    """Sort numerically when every id is an integer (keeping each id's spelling), else as
    strings."""
    try:
        return sorted(names, key=lambda s: (int(s), s))
    except ValueError:
        return sorted(names)


def _is_int(cell: str) -> bool:
    try:
        int(cell)
    except ValueError:
        return False
    return True


def _looks_like_header(cells: list[str], rest_numeric: bool) -> bool:
    """A first row names the columns when both cells are known column names, contain a
    column word (``node_a``, ``from_id``), or are words while every later id is an integer."""
    a, b = (c.lower() for c in cells[:2])
    if a in _HEADER_NAMES and b in _HEADER_NAMES:
        return True
    if any(w in a for w in _HEADER_WORDS) and any(w in b for w in _HEADER_WORDS) \
            and not (_is_int(a) or _is_int(b)):
        return True
    return rest_numeric and not _is_int(a) and not _is_int(b)


def read_edge_list(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read ``(source, target)`` name pairs from an edge-list file."""
    path = Path(path)
    rows: list[tuple[int, list[str]]] = []
    for lineno, cells in _rows(path):
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise DataError(path, f"an edge needs two node ids, got {quote(cells)}", lineno)
        rows.append((lineno, cells))
    if rows and _looks_like_header(rows[0][1], len(rows) > 1 and all(
            _is_int(c[0]) and _is_int(c[1]) for _, c in rows[1:])):
        rows = rows[1:]
    if not rows:
        raise DataError(path, "the edge list is empty (no edges)")
    return [(c[0], c[1]) for _, c in rows]


def _number(cell: str, path: Path, lineno: int, col: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataError(path, f"column {col}: {quote(cell)} is not a number", lineno) from None
    if not math.isfinite(value):
        raise DataError(path, f"column {col}: {quote(cell)} is NaN or infinite", lineno)
    if abs(value) > _FLOAT32_MAX:
        raise DataError(path, f"column {col}: {quote(cell)} is beyond the float32 range",
                        lineno)
    return value


def read_features(path: str | os.PathLike) -> tuple[list[str], torch.Tensor]:
    """Read a node-feature table: ``(node ids, (n, d) float tensor)``."""
    path = Path(path)
    names: list[str] = []
    rows: list[list[float]] = []
    width = None
    for k, (lineno, cells) in enumerate(_rows(path)):
        if k == 0 and all(not _is_number(c) for c in cells[1:]) and len(cells) > 1:
            continue  # header
        if len(cells) < 2:
            raise DataError(path, "a feature row needs a node id and a value", lineno)
        if width is not None and len(cells) != width:
            raise DataError(path, f"{len(cells) - 1} features, expected {width - 1}", lineno)
        width = len(cells)
        names.append(cells[0])
        rows.append([_number(c, path, lineno, j + 2) for j, c in enumerate(cells[1:])])
    if not rows:
        raise DataError(path, "the feature table has no rows")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(path, f"node {quote(name)} has more than one feature row")
        seen.add(name)
    return names, torch.tensor(rows, dtype=torch.float)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _build(pairs: list[tuple[str, str]], names: list[str], x: torch.Tensor | None,
           path: Path) -> Data:
    index = {name: i for i, name in enumerate(names)}
    try:
        ei = torch.tensor([[index[a] for a, _ in pairs], [index[b] for _, b in pairs]],
                          dtype=torch.long)
    except KeyError as err:
        raise DataError(path, f"the edge list names node {quote(err.args[0])}, which has no "
                              f"row in the feature table") from None
    n = len(names)
    edge_index = to_simple_undirected(ei, n)
    check_graph(x, edge_index, n)
    return Data(x=x, edge_index=edge_index, num_nodes=n, node_names=names)


def load_edge_list(edges: str | os.PathLike, features: str | os.PathLike | None = None) -> Data:
    """A user's graph from an edge list and an optional feature table.

    Without a feature table ``x`` is ``None`` (the task then uses identity features).
    With one, its rows define the nodes (isolated nodes included).
    """
    pairs = read_edge_list(edges)
    if features is None:
        return _build(pairs, _order({v for p in pairs for v in p}), None, Path(edges))
    names, x = read_features(features)
    return _build(pairs, names, x, Path(edges))


def load_graph_file(path: str | os.PathLike, features: str | os.PathLike | None = None) -> Data:
    """Load ``.csv`` / ``.tsv`` / ``.txt`` / ``.edges`` edge lists, or ``.graphml`` / ``.gml``.

    For GraphML / GML, numeric node attributes shared by every node become the
    features (unless a feature table is given); parallel edges are merged.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".graphml", ".gml"):
        return load_edge_list(path, features)
    if not path.is_file():
        raise DataError(path, "no such file")
    try:
        g = nx.read_graphml(path) if suffix == ".graphml" else _read_gml(path)
        g = nx.Graph(g)  # multigraphs (parallel edges) and digraphs become simple graphs
    except Exception as err:  # noqa: BLE001 - the XML / GML parsers raise many types
        raise DataError(path, f"could not read {suffix[1:]} ({describe(err)})") from None
    names = [str(v) for v in g.nodes]
    if len(set(names)) != len(names):
        raise DataError(path, "two nodes have the same id once written as text")
    pairs = [(str(a), str(b)) for a, b in g.edges]
    if not pairs:
        raise DataError(path, "the graph is empty (no edges)")
    if features is not None:
        fnames, x = read_features(features)
        return _build(pairs, fnames, x, path)
    return _build(pairs, names, _node_attributes(g, path), path)


def _read_gml(path: Path) -> nx.Graph:
    """Nodes named by their ``label`` (as networkx writes them), else by their ``id``."""
    try:
        return nx.read_gml(path)
    except nx.NetworkXError:
        return nx.read_gml(path, label="id")


def _node_attributes(g: nx.Graph, path: Path) -> torch.Tensor | None:
    attrs = [d for _, d in g.nodes(data=True)]
    keys = sorted(str(k) for k in attrs[0] if all(isinstance(a.get(k), int | float)
                                                  and not isinstance(a.get(k), bool)
                                                  for a in attrs))
    if not keys:
        return None
    rows = []
    for node, a in g.nodes(data=True):
        row = []
        for k in keys:
            try:
                v = float(a[k])
            except OverflowError:
                v = math.inf
            if not math.isfinite(v) or abs(v) > _FLOAT32_MAX:
                raise DataError(path, f"node {quote(str(node))}: attribute {quote(k)} = "
                                      f"{quote(a[k])} is not a finite float32 number")
            row.append(v)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float)
