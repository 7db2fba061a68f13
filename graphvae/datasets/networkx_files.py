"""GraphML and GML files, read by networkx behind the checks its readers lack
(:func:`read_networkx_file`).

networkx's readers hold tens of bytes of memory a byte of file, follow a document type
declaration's entities, copy the whole graph for each nested graph, and name what they
cannot read in Python's words (``KeyError: 'nan'``, ``invalid literal for int()``). So the
file is read whole up to a cap (:data:`MAX_NETWORKX_BYTES`); GraphML is refused with a
``<!DOCTYPE`` or more than one ``<graph>``, and its typed values are checked against their
keys as networkx would read them, in one streaming pass (:class:`_KeyScan`); the parsers'
refusals get the file, line and column (:func:`_parse_error`). Every refusal is a
:class:`~graphvae.errors.DataError` naming the file. :func:`node_attributes` makes the
numeric node attributes shared by every node a feature matrix.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
import sys
import warnings
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.parsers import expat

import networkx as nx
import torch

from graphvae.config import FLOAT32_MAX
from graphvae.errors import DataError, describe, quote
from graphvae.io import read_bytes

#: The largest GraphML / GML file read. networkx holds 30–60 bytes of memory a byte of
#: either (a GraphML file of 200,000 edges: 8.8 MB read into 0.53 GB in all; 20 MB of
#: empty ``<y/>`` elements, 1.16 GB), so this caps a read near 4 GB. Edge lists, read
#: without networkx at about 15 bytes a byte, take larger graphs.
MAX_NETWORKX_BYTES = 64 * 2**20


def read_networkx_file(path: Path) -> nx.Graph:
    """The undirected graph of a ``.graphml`` or ``.gml`` file (parallel edges merged,
    directions dropped, self-loops kept), node ids as networkx reads them."""
    suffix = path.suffix.lower()
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
    return g


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


def node_attributes(g: nx.Graph, path: Path) -> torch.Tensor | None:
    """The numeric (not boolean) attributes every node of ``g`` has, as an ``(n, k)``
    float tensor with columns in the attributes' sorted order; None if there are none."""
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
