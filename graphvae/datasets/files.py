"""Users' graphs: an edge-list CSV/TSV with an optional node-feature CSV, or GraphML / GML.

Edge list: one edge per line, ``source<sep>target[<sep>anything]``, where the
separator is ``,`` for ``.csv``, a tab for ``.tsv`` and any whitespace otherwise;
blank lines and lines starting with ``#`` are skipped, and a first line naming
the columns (``source,target``, ``src,dst``, ``u,v``, ...) is a header. Node ids
are any strings. Feature table: ``id,f1,f2,...`` with an optional header row;
every other cell must be a number. The graph is made simple and undirected.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import networkx as nx
import torch
from torch_geometric.data import Data

from graphvae.graph import check_graph, to_simple_undirected

_HEADER_NAMES = {"source", "target", "src", "dst", "from", "to", "u", "v", "node1", "node2",
                 "head", "tail", "i", "j", "id1", "id2"}


def _delimiter(path: Path) -> str | None:
    return {".csv": ",", ".tsv": "\t"}.get(path.suffix.lower())


def _rows(path: Path):
    """Yield ``(line_number, cells)`` of the non-empty, non-comment lines."""
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    delim = _delimiter(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: drop Excel's BOM
        lines = (ln for ln in fh)
        reader = csv.reader(lines, delimiter=delim) if delim else (ln.split() for ln in lines)
        for lineno, cells in enumerate(reader, start=1):
            cells = [c.strip() for c in cells]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            yield lineno, cells


def _order(names: set[str]) -> list[str]:
    """Sort numerically when every id is an integer (keeping each id's spelling), else as
    strings."""
    try:
        return sorted(names, key=lambda s: (int(s), s))
    except ValueError:
        return sorted(names)


def read_edge_list(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read ``(source, target)`` name pairs from an edge-list file."""
    path = Path(path)
    pairs: list[tuple[str, str]] = []
    for k, (lineno, cells) in enumerate(_rows(path)):
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise ValueError(f"{path}:{lineno}: an edge needs two node ids, got {cells!r}")
        if k == 0 and cells[0].lower() in _HEADER_NAMES and cells[1].lower() in _HEADER_NAMES:
            continue
        pairs.append((cells[0], cells[1]))
    if not pairs:
        raise ValueError(f"{path}: the edge list is empty (no edges)")
    return pairs


def _number(cell: str, path: Path, lineno: int, col: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{path}:{lineno}, column {col}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}:{lineno}, column {col}: {cell!r} is NaN or infinite")
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
            raise ValueError(f"{path}:{lineno}: a feature row needs a node id and a value")
        if width is not None and len(cells) != width:
            raise ValueError(f"{path}:{lineno}: {len(cells) - 1} features, expected {width - 1}")
        width = len(cells)
        names.append(cells[0])
        rows.append([_number(c, path, lineno, j + 2) for j, c in enumerate(cells[1:])])
    if not rows:
        raise ValueError(f"{path}: the feature table has no rows")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"{path}: node {dup!r} has more than one feature row")
    return names, torch.tensor(rows, dtype=torch.float)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _build(pairs: list[tuple[str, str]], names: list[str], x: torch.Tensor | None) -> Data:
    index = {name: i for i, name in enumerate(names)}
    try:
        ei = torch.tensor([[index[a] for a, _ in pairs], [index[b] for _, b in pairs]],
                          dtype=torch.long)
    except KeyError as err:
        raise ValueError(f"the edge list names node {err.args[0]!r}, which has no row in the "
                         f"feature table") from None
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
        return _build(pairs, _order({v for p in pairs for v in p}), None)
    names, x = read_features(features)
    return _build(pairs, names, x)


def load_graph_file(path: str | os.PathLike, features: str | os.PathLike | None = None) -> Data:
    """Load ``.csv`` / ``.tsv`` / ``.txt`` / ``.edges`` edge lists, or ``.graphml`` / ``.gml``.

    For GraphML / GML, numeric node attributes shared by every node become the
    features (unless a feature table is given).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".graphml", ".gml"):
        return load_edge_list(path, features)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        g = nx.read_graphml(path) if suffix == ".graphml" else _read_gml(path)
    except Exception as err:
        raise ValueError(f"{path}: could not read {suffix[1:]} ({err})") from None
    names = [str(v) for v in g.nodes]
    pairs = [(str(a), str(b)) for a, b in g.edges]
    if not pairs:
        raise ValueError(f"{path}: the graph is empty (no edges)")
    if features is not None:
        fnames, x = read_features(features)
        return _build(pairs, fnames, x)
    return _build(pairs, names, _node_attributes(g))


def _read_gml(path: Path) -> nx.Graph:
    """Nodes named by their ``label`` (as networkx writes them), else by their ``id``."""
    try:
        return nx.read_gml(path)
    except nx.NetworkXError:
        return nx.read_gml(path, label="id")


def _node_attributes(g: nx.Graph) -> torch.Tensor | None:
    attrs = [d for _, d in g.nodes(data=True)]
    keys = sorted(k for k in attrs[0] if all(isinstance(a.get(k), int | float)
                                                and not isinstance(a.get(k), bool)
                                                for a in attrs))
    if not keys:
        return None
    return torch.tensor([[float(a[k]) for k in keys] for a in attrs], dtype=torch.float)
