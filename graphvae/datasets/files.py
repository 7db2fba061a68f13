"""Users' graphs: an edge-list CSV/TSV with an optional node-feature CSV, or GraphML / GML.

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

import dataclasses
import io
import math
import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree
from xml.parsers import expat

import networkx as nx
import torch

from graphvae.config import FLOAT32_MAX
from graphvae.datasets.edge_reader import MAX_NUM_NODES, data_rows, read_edge_index, read_edge_list
from graphvae.errors import DataError, describe, quote
from graphvae.graph import check_graph, to_simple_undirected
from graphvae.io import is_number, not_plain_hint, number, read_bytes

if TYPE_CHECKING:
    from torch_geometric.data import Data

#: The largest GraphML / GML file read. networkx holds 30–60 bytes of memory a byte of
#: either (a GraphML file of 200,000 edges: 8.8 MB read into 0.53 GB in all; 20 MB of
#: empty ``<y/>`` elements, 1.16 GB), so this caps a read near 4 GB. Edge lists, read
#: without networkx at about 15 bytes a byte, take larger graphs.
MAX_NETWORKX_BYTES = 64 * 2**20

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
    too_big = (f"is larger than the {MAX_NETWORKX_BYTES // 2**20} MiB graphvae reads "
               f"from a {suffix[1:]} file (networkx holds tens of bytes of memory a byte): "
               f"write the graph as an edge list (and a feature table)")
    raw = read_bytes(path, max_bytes=MAX_NETWORKX_BYTES, too_big=too_big)
    if suffix == ".graphml":
        if any(mark in raw for mark in _DOCTYPE_MARKS):
            raise DataError(path, "has a document type declaration (<!DOCTYPE ...>), which "
                                  "GraphML never needs and which can define entities that "
                                  "expand without bound or name other files: remove it")
        _one_graph(path, raw)
    try:
        g = _read_graphml(raw) if suffix == ".graphml" else _read_gml(raw)
        g = nx.Graph(g)  # multigraphs (parallel edges) and digraphs become simple graphs
    except RecursionError:              # (networkx's GML parser recurses a level a list)
        raise DataError(path, f"its lists are nested deeper than networkx's "
                              f"{suffix[1:].upper()} reader can follow (Python's recursion "
                              f"limit, {sys.getrecursionlimit():,})") from None
    except Exception as err:  # noqa: BLE001 - the XML / GML parsers raise many types
        raise _parse_error(path, suffix[1:], err) from None
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


def _one_graph(path: Path, raw: bytes) -> None:
    """Refuse a GraphML file with more than one ``<graph>`` element: networkx copies the
    whole graph read so far for each nested graph (a node holding a graph, yEd's groups),
    so 8,000 of them (471 KB) took 46 s, growing as their square. The file is parsed in one
    call (fed in 16 kB pieces, this machine's expat re-scans a long token from its start
    at each: a 32 MB comment took 37 s). A parse error is left to networkx's reader,
    which names it. The elements are counted as expat meets them, without building the
    tree that networkx's reader builds after. The same pass finds the attribute values
    networkx's reader fails on in its own words (see :class:`_KeyScan`)."""
    graphs = 0
    keys = _KeyScan()

    def start(name: str, attributes: Any) -> None:
        nonlocal graphs
        graphs += name.rsplit(" ", 1)[-1] == "graph"      # "namespace local-name"
        keys.start(name, attributes)

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True           # one call for a run of text, not one a line
    parser.StartElementHandler = start
    parser.EndElementHandler = keys.end
    parser.CharacterDataHandler = keys.text
    try:
        parser.Parse(raw, True)
    except expat.ExpatError:
        return
    except (LookupError, ValueError) as err:
        # the encoding the XML declaration names: unknown to Python ("UPF-8", found by the
        # reader fuzz at seed 43), not a text codec ("rot13"), multi-byte ("utf-7"), or
        # not one the text decodes in; networkx's parser meets the same
        why = describe(err)
        raise DataError(path, f"cannot be read in the encoding its XML declaration names "
                              f"({why if len(why) <= 200 else why[:200] + '...'}); save it "
                              f"as UTF-8") from None
    if graphs > 1:
        raise DataError(path, "holds more than one <graph> element (a graph nested in a "
                              "node, or a second graph); graphvae reads GraphML files of "
                              "one flat graph")
    keys.check(path)


#: GraphML's boolean values as networkx reads them (after ``lower()``, nothing stripped).
_GRAPHML_BOOLEANS = ("true", "false", "1", "0")


@dataclasses.dataclass
class _Value:
    """A ``<data>`` or ``<default>`` element being read by :class:`_KeyScan`."""

    key: str                     # the key id it gives a value of
    how: str                     # "holds" (data), "has the default", "" (no value: yFiles)
    text: list[str] = dataclasses.field(default_factory=list)
    reading: bool = True         # False once an element inside has started
    depth: int = 0               # elements open inside it


class _KeyScan:
    """The ``<key>`` declarations and the typed values of a GraphML file, met element by
    element, for the failures networkx's reader names in Python's words: an ``attr.type``
    it has no type for (``KeyError: 'x'``), a boolean value other than true, false, 1
    or 0 (``KeyError: 'nan'``; an empty default, ``AttributeError``), and an integer or
    number value that ``int`` or ``float`` does not read (``ValueError: invalid literal
    for int() with base 10: '1e5'``; checked for keys declared before the value).

    Only what networkx reads counts, as it reads it: elements of the GraphML namespace
    (or of none); a ``<key>`` that is a child of ``<graphml>``, declared twice counting as
    its last declaration; a ``<default>`` that is a child of its key, its value its text
    before any element inside; a ``<data>`` that is a child of ``<graph>`` or of a node or
    edge in it (not of a port), with no elements inside (those are yFiles', no value)."""

    def __init__(self) -> None:
        self.types: dict[str, str | None] = {}        # key id -> attr.type (None: yfiles)
        self.names: dict[str, str] = {}
        self.values: dict[tuple[str, str], str] = {}  # (key id, how) -> first odd value
        self.key: str | None = None                   # the <key> being read
        self.inside: _Value | None = None
        self.open: list[str | None] = []              # the open elements' local names
        # attr.type -> the type networkx reads a value with (``bool``, ``int``, ``str``...)
        self.known: dict[str, type] = nx.readwrite.graphml.GraphMLReader().python_type

    @staticmethod
    def _local(name: str) -> str | None:
        ns, _, local = name.rpartition(" ")
        return local if ns in ("", "http://graphml.graphdrawing.org/xmlns") else None

    def _read_data(self) -> bool:
        """Whether networkx reads a ``<data>`` opened here (its parent's path)."""
        return (self.open[-1:] == ["graph"]
                or (self.open[-1:] in (["node"], ["edge"]) and self.open[-2:-1] == ["graph"]))

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if self.inside is not None:         # an element inside <data> / <default>
            self.inside.depth += 1
            self.inside.reading = False
            if self.inside.how == "holds":  # yFiles' data: networkx reads no value
                self.inside.how = ""
            return
        local = self._local(name)
        if local == "key" and self.open == ["graphml"]:
            self.key = attributes.get("id", "")
            self.types[self.key] = (None if attributes.get("yfiles.type") is not None
                                    else attributes.get("attr.type", "string"))
            self.names[self.key] = attributes.get("attr.name", "")
        elif local == "data" and self._read_data():
            self.inside = _Value(attributes.get("key", ""), "holds")
        elif local == "default" and self.key is not None and self.open[-1:] == ["key"]:
            self.inside = _Value(self.key, "has the default")
        self.open.append(local)

    def text(self, data: str) -> None:
        if self.inside is not None and self.inside.reading:
            self.inside.text.append(data)

    def end(self, name: str) -> None:
        inside = self.inside
        if inside is not None and inside.depth:
            inside.depth -= 1
            return
        local = self.open.pop() if self.open else None
        if inside is None:
            if local == "key":
                self.key = None
            return
        self.inside = None
        value = "".join(inside.text)
        if inside.how == "holds" and not value:       # networkx skips an empty <data>
            return
        if inside.how and not self._fits(self.types.get(inside.key, ""), value):
            self.values.setdefault((inside.key, inside.how), value)

    def _fits(self, kind: str | None, value: str) -> bool:
        """Whether networkx's GraphML reader reads ``value`` as a key of type ``kind`` (as
        a boolean, or with ``int`` / ``float``, as it does); a key not declared yet
        (``""``) holds what a boolean would, and yFiles' (``None``) anything."""
        if kind in ("boolean", ""):
            return value.lower() in _GRAPHML_BOOLEANS
        convert = self.known.get(kind or "")
        if convert not in (int, float):     # text, yFiles' data, or a type refused apart
            return True
        try:
            convert(value)
        except ValueError:
            return False
        return True

    def check(self, path: Path) -> None:
        known = self.known
        for key, kind in self.types.items():
            if kind is not None and kind not in known:
                defined = ", ".join(sorted(k for k in known if k != "yfiles"))
                raise DataError(path, f"key {quote(key)} has attr.type {quote(kind)}, which "
                                      f"networkx's GraphML reader has no type for (it "
                                      f"knows {defined})")
        for (key, how), value in self.values.items():
            kind = self.types.get(key)
            if kind is None or self._fits(kind, value):
                continue
            wanted = ("true, false, 1 or 0" if kind == "boolean" else
                      "an integer" if known[kind] is int else "a number")
            digits = value.strip()
            digits = digits[1:] if digits[:1] in ("+", "-") else digits
            limit = sys.get_int_max_str_digits()
            if wanted == "an integer" and digits.isdigit() and len(digits) > limit:
                wanted = f"an integer of at most {limit:,} digits (Python's limit on " \
                         f"reading them)"
            raise DataError(path, f"{kind} attribute {quote(self.names[key])} (key "
                                  f"{quote(key)}) {how} {quote(value, 40)}, not {wanted}")


def _read_graphml(raw: bytes) -> nx.Graph:
    """networkx's reader given the whole text in one call (:func:`nx.read_graphml` feeds
    the parser in pieces; see :func:`_one_graph`), with its fallback for a ``<graphml>``
    element without the namespace."""
    reader = nx.readwrite.graphml.GraphMLReader(node_type=str)
    with warnings.catch_warnings():
        # networkx's notes that it reads no <port> and that a key without attr.type is
        # read as a string: neither changes the graph read, nor its features (numbers)
        warnings.simplefilter("ignore", UserWarning)
        graphs = list(reader(string=raw))
        if not graphs:
            header = f'<graphml xmlns="{reader.NS_GRAPHML}">'.encode()
            graphs = list(reader(string=raw.replace(b"<graphml>", header)))
    if not graphs:
        raise nx.NetworkXError("file not successfully read as graphml")
    return graphs[0]


#: ``<!DOCTYPE`` as it reads in UTF-8 (and ASCII) and in UTF-16 of either byte order, the
#: encodings an XML parser reads without a declaration.
_DOCTYPE_MARKS = tuple("<!DOCTYPE".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be"))


_XML_PLACE = re.compile(r": line \d+, column \d+$")
_GML_PLACE = re.compile(r"(.*) at \((\d+), (\d+)\)", re.S)
_GML_DUPLICATE = re.compile(r"edge #\d+ \(.*\) is duplicated$", re.S)
_NOT_GML_NUMBERS = ("'nan'", "'inf'", "'infinity'")


def _parse_error(path: Path, kind: str, err: Exception) -> DataError:
    """The XML or GML parser's refusal, with its place in the file as graphvae names places
    (``file:line: ... at column c``, columns from 1) rather than in the parser's words
    ("ParseError: ...: line 3, column 40", "... at (3, 41)"), and the fix where there is
    one: a repeated GML edge, and NaN or infinity spelt otherwise than GML spells them."""
    text = str(err)
    if isinstance(err, ElementTree.ParseError):         # expat counts columns from 0
        line, column = err.position
        why = _XML_PLACE.sub("", text)
        return DataError(path, f"not readable XML at column {column + 1}: {why}", line)
    if kind == "gml" and isinstance(err, nx.NetworkXError):
        place = _GML_PLACE.fullmatch(text)
        if place is not None:                            # networkx counts from 1
            why = place.group(1)
            if why.startswith("cannot tokenize "):
                why = f"{quote(why.removeprefix('cannot tokenize '))} is not a GML token"
            if why.lower().endswith(_NOT_GML_NUMBERS):
                why += " (GML spells NaN and infinity NAN and INF; node attributes must be " \
                       "finite numbers)"
            return DataError(path, f"not readable GML at column {place.group(3)}: {why}",
                             int(place.group(2)))
        if _GML_DUPLICATE.match(text):
            return DataError(path, f"not readable GML: {text} (a graph with parallel edges "
                                   f"says \"multigraph 1\" in its header; graphvae merges "
                                   f"them)")
        if text == "input is not ASCII-encoded":
            return DataError(path, "not ASCII text, as GML is (networkx writes other "
                                   "characters as &#233;)")
        if text == "input contains no graph":
            return DataError(path, "holds no \"graph [ ... ]\" list, as every GML file does")
    if isinstance(err, nx.NetworkXError):   # networkx's own words name what is wrong
        return DataError(path, f"not readable {'GML' if kind == 'gml' else 'GraphML'}: "
                               f"{text}")
    return DataError(path, f"could not read {kind} ({describe(err)})")


def _read_gml(raw: bytes) -> nx.Graph:
    """Nodes named by their ``label`` (as networkx writes them), else by their ``id``."""
    try:
        return nx.read_gml(io.BytesIO(raw))
    except nx.NetworkXError:
        return nx.read_gml(io.BytesIO(raw), label="id")


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
            if not math.isfinite(v) or abs(v) > FLOAT32_MAX:
                raise DataError(path, f"node {quote(str(node))}: attribute {quote(k)} = "
                                      f"{quote(a[k])} is not a finite float32 number")
            row.append(v)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float)


# read_edge_index, read_edge_list and MAX_NUM_NODES live in edge_reader; kept importable here
__all__ = ["MAX_NUM_NODES", "load_edge_list", "load_graph_file", "read_edge_index",
           "read_edge_list", "read_features"]
