"""Fuzz every reader of users' files with seeded malformed input.

    python benchmarks/fuzz_readers.py                 # 10,000+ cases (a few minutes)
    python benchmarks/fuzz_readers.py --cases 50000   # more
    python benchmarks/fuzz_readers.py --smoke         # a few hundred cases (seconds)

Readers: edge lists (``.csv`` / ``.tsv`` / whitespace), feature tables, GraphML, GML,
graph-set pickles, graph6, the Planetoid raw files, ``.npy`` / ``.csv`` / ``.mat``
matrices, the QM9 SMILES file, checkpoints (``graphvae check-invariance``; the current
format of each model kind, and the older linkpred format), vector checkpoints, sample
files (``graphvae score``), training states (``--resume``; linkpred's, and generate's
and vector's), planted parameters (``linkpred --planted``) and config files (``linkpred
--config``). Each case is a file built from a valid one and then damaged: random bytes,
other encodings and byte-order marks, separators, huge / NaN numbers, long fields, ragged
rows, truncated XML, GraphML attribute types, ``.npy`` dtypes and byte orders, ``.mat``
contents, corrupted and hostile pickles (which try to create a sentinel file), and torch
files whose ``data.pkl`` is a tuple that holds itself over and over (whose hash would take
hours).

A case passes when the reader returns, or raises the package's ``DataError`` /
``ValueError`` whose message names the file. It fails on any other exception, on a
hang (10 s), if the sentinel file appears, if a reader returns a graph other than
the one a case encodes (an edge list in another encoding, with a header, comments or
other line endings must read as its graph or be refused, never silently differ), or if
it refuses an intact file (every reader has intact cases: files as the library or tool
that writes them wrote them, in an encoding that says what it is).
The report counts outcomes per reader and lists every failure; the exit status is 1
when there is one. It also counts, without failing on them, the refusals whose only
reason is an exception a library raised from its inside (:data:`LIBRARY_WORDS`:
"cannot read the checkpoint (IndexError: list index out of range)"), which tell a user
nothing of what is wrong with the file, and lists the first of them.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import random
import re
import signal
import sys
import tempfile
import time
import warnings
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from graphvae.errors import OneLineParser, run_script

RESULTS = Path(__file__).resolve().parent / "results"

warnings.simplefilter("ignore")

SENTINEL = "fuzz_sentinel_created"
HANG_SECONDS = 10


class Case:
    """Files to write (name → bytes), the file the reader is pointed at, optionally what
    the reader must return (an edge list's, GraphML or GML file's graph: ``(node ids, set
    of frozenset edges)``; a feature table's rows by node id; a matrix's rows, sorted for
    ``.npy`` and ``.csv``, whose split is seeded; a graph pickle's or graph6 file's graphs:
    :func:`_simple_graphs`; a QM9 file's row counts; a sample file's samples), and whether
    the files are intact, so that a refusal fails the case (``must_read``)."""

    def __init__(self, files: dict[str, bytes], main: str, expect: Any = None, note: str = "",
                 must_read: bool = False):
        self.files, self.main, self.expect, self.note = files, main, expect, note
        self.must_read = must_read      # intact: a refusal is a failure too


# --------------------------------------------------------------------------- byte damage
def damage(rng: random.Random, data: bytes) -> bytes:
    """One random corruption of ``data``."""
    kind = rng.randrange(7)
    b = bytearray(data)
    if kind == 0 and b:                       # flip a few bits
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1 and b:                     # truncate
        del b[rng.randrange(len(b)):]
    elif kind == 2:                           # insert random bytes
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randint(1, 64))
    elif kind == 3 and b:                     # duplicate a chunk
        i = rng.randrange(len(b))
        b[i:i] = b[i:i + rng.randint(1, 200)] * rng.randint(2, 5)
    elif kind == 4:                           # random bytes altogether
        b = bytearray(rng.randbytes(rng.randint(0, 400)))
    elif kind == 5 and b:                     # overwrite a run with one byte
        i = rng.randrange(len(b))
        b[i:i + rng.randint(1, 50)] = bytes([rng.randrange(256)]) * rng.randint(1, 50)
    else:                                     # empty
        b = bytearray()
    return bytes(b)


def maybe_damage(rng: random.Random, data: bytes, p: float = 0.5) -> bytes:
    return damage(rng, data) if rng.random() < p else data


ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1")
#: The encodings of ENCODINGS that do not say what they are: UTF-16 without a byte-order
#: mark, which the text readers refuse by design (as NUL characters), so a file in one is
#: never an intact case.
UNMARKED = ("utf-16-le", "utf-16-be")
ODD_NUMBERS = ("nan", "NaN", "inf", "-inf", "1e39", "-1e39", "1e308", "1e309", "1" * 400,
               "0x10", "1_000", " 7 ", "", "-0", "1e-320", "3.4028236e38", "e5", "--1")


def encode(rng: random.Random, text: str) -> tuple[bytes, str]:
    enc = rng.choice(ENCODINGS)
    return text.encode(enc, errors="replace"), enc


def random_graph(rng: random.Random) -> nx.Graph:
    n = rng.randint(2, 12)
    g = nx.gnp_random_graph(n, rng.uniform(0.2, 0.8), seed=rng.randrange(1 << 30))
    if g.number_of_edges() == 0:
        g.add_edge(0, 1)
    return g


# --------------------------------------------------------------------------- edge lists
def edge_list_case(rng: random.Random) -> Case:
    g = random_graph(rng)
    suffix = rng.choice([".csv", ".tsv", ".txt"])
    sep = {".csv": ",", ".tsv": "\t", ".txt": rng.choice([" ", "\t", "  "])}[suffix]
    words = rng.random() < 0.3
    name = (lambda v: f"n{v}") if words else str
    lines = [f"{name(a)}{sep}{name(b)}" for a, b in g.edges]
    rng.shuffle(lines)
    header = rng.choice([None, "source,target", "node_a,node_b", "from_id,to_id", "alpha,beta"])
    if header and not (header == "alpha,beta" and words):  # unknown words only with int ids
        lines.insert(0, header.replace(",", sep))
    for _ in range(rng.randint(0, 3)):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(["", "# a comment", "   "]))
    eol = rng.choice(["\n", "\r\n", "\r"])
    text = eol.join(lines) + rng.choice([eol, ""])
    data, enc = encode(rng, text)
    expect: Any = ({name(v) for v in g.nodes if g.degree(v) > 0},
              {frozenset((name(a), name(b))) for a, b in g.edges})
    structural = rng.random()
    if structural < 0.15:   # ragged row, long field, open quote, odd number as id
        bad = rng.choice(["7", "x" * rng.choice([100, 140_000]), '"1,2', f"1{sep}",
                          rng.choice(ODD_NUMBERS) + sep + "3", "1" + sep + "2" + sep + "3"])
        lines.insert(rng.randrange(len(lines) + 1), bad)
        data, expect = (eol.join(lines) + eol).encode(enc, errors="replace"), None
    elif structural < 0.45:
        data, expect = damage(rng, data), None
    # intact: undamaged, in an encoding that says what it is
    return Case({f"g{suffix}": data}, f"g{suffix}", expect, f"{enc} {suffix}",
                must_read=expect is not None and enc not in UNMARKED)


def features_case(rng: random.Random) -> Case:
    n, d = rng.randint(2, 8), rng.randint(1, 4)
    edges = "\n".join(f"{i},{i + 1}" for i in range(n - 1)) + "\n"
    rows = [[str(i)] + [f"{rng.gauss(0, 1):.4g}" for _ in range(d)] for i in range(n)]
    expect = {r[0]: [float(np.float32(c)) for c in r[1:]] for r in rows}
    edits = rng.randint(0, 3)
    for _ in range(edits):
        r = rng.randrange(n)
        kind = rng.randrange(4)
        if kind == 0 and len(rows[r]) > 1:
            rows[r][rng.randrange(1, len(rows[r]))] = rng.choice(ODD_NUMBERS)
        elif kind == 1:
            rows[r] = rows[r][:rng.randint(0, d)]
        elif kind == 2:
            rows[r].append("9")
        else:
            rows.append(list(rows[r]))
    if rng.random() < 0.5:
        rows.insert(0, ["id"] + [f"f{j}" for j in range(d)])
    text, enc = encode(rng, "\n".join(",".join(r) for r in rows) + "\n")
    data = maybe_damage(rng, text, 0.3)
    # intact: no row edited, undamaged, in an encoding that says what it is
    intact = edits == 0 and data == text and enc not in UNMARKED
    return Case({"e.csv": edges.encode(), "f.csv": data}, "f.csv", expect if intact else None,
                note=f"features {enc}", must_read=intact)


def _features_of(data: Any) -> dict[str, list[float]]:
    return dict(zip(data.node_names, data.x.tolist()))


GRAPHML_TYPES = ("int", "long", "float", "double", "boolean", "string")


def graphml_case(rng: random.Random) -> Case:
    g = random_graph(rng)
    keys = [(f"d{k}", rng.choice(GRAPHML_TYPES)) for k in range(rng.randint(0, 3))]
    odd = False

    def value(t: str) -> str:
        nonlocal odd
        if rng.random() < 0.2:
            odd = True
            return rng.choice(ODD_NUMBERS + ("true", "x", "&lt;", "1" * 320))
        return {"int": str(rng.randint(-9, 9)), "long": str(rng.randint(-10**12, 10**12)),
                "boolean": rng.choice(["true", "false"]), "string": "s"}.get(
                    t, f"{rng.gauss(0, 1):.3g}")

    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">']
    out += [f'<key id="{k}" for="node" attr.name="a{k}" attr.type="{t}"/>' for k, t in keys]
    # what networkx does not read, or reads as text: a port's data (of any value), a key
    # without attr.type (read as a string, with networkx's warning)
    extras = rng.random()
    out += ['<key id="p0" for="port" attr.name="pw" attr.type="int"/>'] if extras < 0.1 else []
    out += ['<key id="u0" for="node" attr.name="note"/>'] if 0.1 <= extras < 0.2 else []
    out.append(f'<graph edgedefault="{rng.choice(["undirected", "directed"])}">')
    for v in g.nodes:
        inner = "".join(f'<data key="{k}">{value(t)}</data>' for k, t in keys)
        if extras < 0.1 and v == 0:
            inner += '<port name="p"><data key="p0">not a number</data></port>'
        elif 0.1 <= extras < 0.2 and v == 0:
            inner += '<data key="u0">1e5 or so</data>'
        out.append(f'<node id="v{v}">{inner}</node>')
    edges = list(g.edges) + ([rng.choice(list(g.edges))] if rng.random() < 0.3 else [])
    out += [f'<edge source="v{a}" target="v{b}"/>' for a, b in edges]
    missing = rng.random() < 0.1
    if missing:
        out.append('<edge source="v0" target="missing"/>')
    out.append("</graph></graphml>")
    text = "\n".join(out).encode()
    data = text
    if rng.random() < 0.1:  # entity expansion
        data = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                b"<graphml><graph>&lol2;</graph></graphml>")
    damaged = maybe_damage(rng, data, 0.4)
    # intact: every value of its key's type, every edge's ends declared, undamaged (a
    # repeated edge is merged: graphvae's graphs are simple)
    intact = not odd and not missing and damaged == text
    expect = ({f"v{v}" for v in g.nodes}, {frozenset((f"v{a}", f"v{b}")) for a, b in g.edges})
    return Case({"g.graphml": damaged}, "g.graphml", expect if intact else None,
                note="graphml", must_read=intact)


def gml_case(rng: random.Random) -> Case:
    g = random_graph(rng)
    multigraph = rng.randint(0, 1) if rng.random() < 0.5 else None
    out = ["graph [", "" if multigraph is None else f"  multigraph {multigraph}"]
    odd = False
    for v in g.nodes:
        attr = ""
        if rng.random() < 0.3:
            w = rng.choice(ODD_NUMBERS[:9] + ("3", "-2.5"))
            odd |= w not in ("3", "-2.5")
            attr = f" w {w}"
        out.append(f'  node [ id {v} label "n{v}"{attr} ]')
    repeated = rng.random() < 0.3
    edges = list(g.edges) + ([rng.choice(list(g.edges))] if repeated else [])
    out += [f"  edge [ source {a} target {b} ]" for a, b in edges]
    closed = rng.random() < 0.9
    out.append("]" if closed else "")
    nested = rng.random() < 0.05
    if nested:                          # a graph attribute of lists nested 500 to 5,000 deep
        depth = rng.randint(500, 5000)
        out.insert(1, "  nest " + "[ a " * depth + "1" + " ]" * depth)
    text = "\n".join(out).encode()
    data = maybe_damage(rng, text, 0.4)
    # intact: finite numbers, a repeated edge only in a multigraph (networkx refuses it in a
    # simple graph), the list closed, not nested, undamaged
    intact = (not odd and (bool(multigraph) or not repeated) and closed and not nested
              and data == text)
    expect = ({f"n{v}" for v in g.nodes}, {frozenset((f"n{a}", f"n{b}")) for a, b in g.edges})
    return Case({"g.gml": data}, "g.gml", expect if intact else None, note="gml",
                must_read=intact)


# --------------------------------------------------------------------------- pickles
def _u(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def hostile_pickle(rng: random.Random, folder_hint: str) -> bytes:
    """A pickle that calls something dangerous to create the sentinel file."""
    cmd = f"touch {folder_hint}/{SENTINEL}"
    code = f"open({str(Path(folder_hint) / SENTINEL)!r}, 'w').close()"
    target = rng.choice([("os", "system", cmd), ("posix", "system", cmd),
                         ("builtins", "exec", code), ("builtins", "eval", code),
                         ("subprocess", "getoutput", cmd),
                         ("numpy._core._methods", "os.system", cmd),
                         ("numpy.lib._datasource", "os.system", cmd),
                         ("numpy._core.numeric", "builtins.exec", code),
                         ("networkx.utils.backends", "os.system", cmd)])
    mod, name, arg = target
    if rng.random() < 0.5 and "." not in name:  # protocol 0 GLOBAL
        return (f"c{mod}\n{name}\n(V{arg}\ntR.").encode()
    return b"\x80\x04" + _u(mod) + _u(name) + b"\x93" + _u(arg) + b"\x85R."


def tuple_bomb(depth: int) -> bytes:
    """A protocol-2 pickle of a dict keyed by tuples that each hold the one before twice:
    2^(depth+1) - 1 parts as a tree, which a dict key's hash visits (at 40, hours by the
    0.08 s measured at 22, doubling a level)."""
    ops = b"\x80\x02}q\x00(" + b")q\x01" + b"h\x01h\x01\x86q\x01" * depth
    return ops + (b"K\x01" if depth % 2 == 0 else b"") + b"u."


def with_data_pkl(data: bytes, pickled: bytes) -> bytes:
    """``data``, a torch zip archive, with its ``data.pkl`` replaced by ``pickled``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, pickled if info.filename.endswith("/data.pkl")
                          else zin.read(info))
    return out.getvalue()


def hostile_torch_file(rng: random.Random, folder: str, data: bytes) -> bytes:
    """A hostile pickle (:func:`hostile_pickle`) as the whole file or as ``data``'s
    ``data.pkl``, or a tuple bomb (:func:`tuple_bomb`, 25 to 60 levels) as its
    ``data.pkl``."""
    r = rng.random()
    if r < 0.5:
        return hostile_pickle(rng, folder)
    if r < 0.75:
        return with_data_pkl(data, hostile_pickle(rng, folder))
    return with_data_pkl(data, tuple_bomb(rng.randint(25, 60)))


def graph_pickle_case(rng: random.Random, folder: str) -> Case:
    graphs = [random_graph(rng) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.3:
        graphs[0] = graphs[0].subgraph(list(graphs[0].nodes)[:3])  # a view, as ENZYMES
        # another class (the view stays one: a directed view does not pickle), and the
        # views networkx caches in a graph's __dict__: pickled with it, and damaged with
        # it (a degree view without its graph), they must not be read
        if len(graphs) > 1:
            graphs[-1] = rng.choice([nx.Graph, nx.DiGraph, nx.MultiGraph,
                                     nx.MultiDiGraph])(graphs[-1])
        for name in ("nodes", "adj", "edges", "degree", "in_edges", "in_degree",
                     "out_degree", "pred"):
            getattr(graphs[-1], name, None)
    data = pickle.dumps(graphs, protocol=rng.randint(0, 5))
    r = rng.random()
    if r < 0.2:
        data = hostile_pickle(rng, folder)
    elif r < 0.25:
        data = pickle.dumps(rng.choice([{"a": 1}, [1, 2], "text", [nx.Graph(), 3],
                                        np.arange(3), [set()]]))
    elif r < 0.7:
        data = damage(rng, data)
    intact = r >= 0.7
    return Case({"g.pkl": data}, "g.pkl", _simple_graphs(graphs) if intact else None,
                "pickle", must_read=intact)


def _simple_graphs(graphs: list[nx.Graph]) -> list[tuple[int, list[tuple[int, int]]]]:
    """Each graph's node count and its pairs ``i < j`` (nodes numbered in its order,
    directions, loops and repeated edges dropped): what a graph pickle reads as."""
    out = []
    for g in graphs:
        index = {v: i for i, v in enumerate(g.nodes)}
        pairs = {(min(index[u], index[v]), max(index[u], index[v])) for u, v in g.edges()
                 if u != v}
        out.append((len(index), sorted(pairs)))
    return out


def graph6_case(rng: random.Random) -> Case:
    graphs = [random_graph(rng) for _ in range(rng.randint(1, 4))]
    lines = [nx.to_graph6_bytes(g, header=rng.random() < 0.3).strip() for g in graphs]
    odd = rng.random() < 0.3
    if odd:
        lines.append(rng.choice([b"~~" + b"?" * 20, b"~", bytes([rng.randrange(256)]) * 5,
                                 b"A" * 2000, b"", b"!!"]))
    text = b"\n".join(lines) + b"\n"
    data = maybe_damage(rng, text, 0.4)
    intact = not odd and data == text
    return Case({"g.g6": data}, "g.g6", _simple_graphs(graphs) if intact else None,
                "graph6", must_read=intact)


def planetoid_files(rng: random.Random, folder: str) -> tuple[dict[str, bytes], bool]:
    """The Planetoid raw files of a 9-node graph, one of them hostile, of the wrong
    content or damaged (80 %), and whether they are intact."""
    import scipy.sparse as sp
    n_train, n_test, d, c = 4, 3, 5, 3
    n = n_train + 2 + n_test

    def onehot(k: int) -> np.ndarray:
        return np.eye(c)[np.arange(k) % c].astype(np.int32)

    def csr(k: int) -> sp.csr_matrix:
        return sp.csr_matrix((np.arange(k * d) % 2).reshape(k, d).astype(np.float32))

    graph = defaultdict(list)
    for i in range(n):
        graph[i] = [(i + 1) % n, (i + 2) % n]
    test = list(range(n - n_test, n))
    rng.shuffle(test)
    items = {"x": csr(n_train), "tx": csr(n_test), "allx": csr(n - n_test),
             "y": onehot(n_train), "ty": onehot(n_test), "ally": onehot(n - n_test),
             "graph": graph}
    files = {f"ind.cora.{k}": pickle.dumps(v, protocol=4) for k, v in items.items()}
    files["ind.cora.test.index"] = "\n".join(map(str, test)).encode() + b"\n"
    victim = rng.choice(sorted(files))
    r = rng.random()
    if r < 0.15 and victim != "ind.cora.test.index":
        files[victim] = hostile_pickle(rng, folder)
    elif r < 0.35:  # valid pickles, wrong content
        files[victim] = pickle.dumps(rng.choice([np.zeros((2, 2)), {1: [99]}, {1: ["a"]},
                                                 sp.csr_matrix(np.ones((1, 9))), [1],
                                                 np.array(["a"]), {-1: [0]}]), protocol=4) \
            if victim != "ind.cora.test.index" else rng.choice(
                [b"-1\n", b"100\n", b"x\n", b"5\n5\n5\n", b""])
    elif r < 0.8:
        files[victim] = damage(rng, files[victim])
    return files, r >= 0.8


def planetoid_case(rng: random.Random, folder: str) -> Case:
    files, intact = planetoid_files(rng, folder)
    return Case(files, ".", note="planetoid", must_read=intact)


# --------------------------------------------------------------------------- matrices
NPY_DTYPES = ("<f2", ">f2", "<f4", ">f4", "<f8", ">f8", "|i1", "<i2", ">i4", "<i8", ">i8",
              "|u1", "<u2", ">u4", "<u8", "|b1", "<c8", "<U3", "|S2", "<M8[D]", "<m8[s]",
              "[('a', '<f4'), ('b', '<i4')]")


def npy_case(rng: random.Random) -> Case:
    spec = rng.choice(NPY_DTYPES)
    dtype = np.dtype(eval(spec) if spec.startswith("[") else spec)  # noqa: S307 - fixed list
    shape = rng.choice([(12, 3), (12, 3), (5,), (), (0, 3), (4, 2, 2), (2, 1), (30, 2)])
    raw = np.random.default_rng(rng.randrange(1 << 30)).integers(0, 3, size=shape)
    try:
        arr = raw.astype(dtype)
    except (TypeError, ValueError):
        arr = np.zeros(shape, dtype=dtype)
    if arr.dtype.kind == "f" and arr.size and rng.random() < 0.3:
        arr.flat[rng.randrange(arr.size)] = rng.choice([np.nan, np.inf, 1e30, -1e39])
    if rng.random() < 0.2 and arr.ndim == 2:
        arr = np.asfortranarray(arr)
    buf = io.BytesIO()
    np.save(buf, arr)
    data = maybe_damage(rng, buf.getvalue(), 0.3)
    # intact: numbers of a kind torch holds, a matrix of at least the 3 rows a split needs,
    # every entry a finite float32 number, undamaged
    matrix = arr.dtype.kind in "biuf" and arr.ndim == 2 and arr.shape[0] >= 3
    values = arr.astype(np.float64 if arr.dtype.kind == "f" and arr.dtype.itemsize == 8
                        else np.float32) if matrix else None
    intact = (values is not None and bool(np.isfinite(values).all())
              and bool((np.abs(values) <= np.finfo(np.float32).max).all())
              and data == buf.getvalue())
    return Case({"m.npy": data}, "m.npy", _sorted_rows(values) if intact else None,
                note=spec, must_read=intact)


def matrix_csv_case(rng: random.Random) -> Case:
    rows = [[f"{rng.gauss(0, 1):.3g}" for _ in range(3)] for _ in range(rng.randint(0, 15))]
    expect = sorted(tuple(float(c) for c in r) for r in rows)
    edits = rng.randint(0, 3)
    for _ in range(edits):
        if rows:
            r = rng.randrange(len(rows))
            rows[r][rng.randrange(len(rows[r]))] = rng.choice(ODD_NUMBERS)
            if rng.random() < 0.3:
                rows[r] = rows[r][:1]
    if rng.random() < 0.3:
        rows.insert(0, ["a", "b", "c"])
    text, enc = encode(rng, "\n".join(",".join(r) for r in rows) + "\n")
    data = maybe_damage(rng, text, 0.3)
    # intact: no row edited, the 3 rows a split needs, undamaged, in an encoding that says
    # what it is
    intact = (edits == 0 and len(expect) >= 3 and data == text
              and enc not in UNMARKED)
    return Case({"m.csv": data}, "m.csv", expect if intact else None,
                note=f"matrix csv {enc}", must_read=intact)


def mat_case(rng: random.Random) -> Case:
    import scipy.sparse as sp
    from scipy.io import savemat
    x = rng.choice([np.ones((4, 3)), np.eye(3, dtype=np.int8), np.array(["ab", "cd"]),
                    np.array([[1, 2]], dtype=object), np.zeros((2, 2, 2)),
                    {"field": np.ones(2)}, sp.csr_matrix(np.eye(3)), np.zeros((0, 3)),
                    np.array([[np.nan, 1.0]]), np.array([[1 + 2j]])])
    key = rng.choice(["X", "X", "Y"])
    buf = io.BytesIO()
    savemat(buf, {key: x})
    data = maybe_damage(rng, buf.getvalue(), 0.4)
    # intact: a numeric X (dense or sparse) of rows and columns, finite, undamaged
    values = x.toarray() if sp.issparse(x) else x
    intact = (key == "X" and isinstance(values, np.ndarray) and values.dtype.kind in "biuf"
              and values.ndim == 2 and values.size > 0 and bool(np.isfinite(values).all())
              and data == buf.getvalue())
    return Case({"m.mat": data}, "m.mat", values.tolist() if intact else None, note="mat",
                must_read=intact)


def _sorted_rows(values: Any) -> list[tuple[float, ...]]:
    """A matrix's rows in sorted order: what a split of them holds, whatever the seed."""
    return sorted(tuple(float(v) for v in row) for row in np.asarray(values).tolist())


def _rows_of(data: Any) -> list[tuple[float, ...]]:
    import torch
    return _sorted_rows(torch.cat([data.train, data.valid, data.test]).numpy())


SMILES = ("C", "CC", "CO", "C#N", "c1ccccc1", "OC1CC1", "[NH3+]CC([O-])=O")
BAD_SMILES = ("C1CC", "CCl", "xyz", "C" * 20, "O=O=O", "", "C,C", '"C', "N#N#N", "[Na+]",
              "CC(", "é", "C" * 10_000)


def qm9_case(rng: random.Random) -> Case:
    rows = [rng.choice(BAD_SMILES if rng.random() < 0.1 else SMILES)
            for _ in range(rng.randint(0, 8))]
    header = rng.choice(["smiles"] * 6 + ["smile", "SMILES,x", ""])
    text, enc = encode(rng, header + "\n" + "\n".join(rows) + "\n")
    data = maybe_damage(rng, text, 0.3)
    # intact: the header, known molecules, bytes as encoded, in an encoding that says
    # what it is
    intact = (header == "smiles" and data == text and not set(rows) & set(BAD_SMILES)
              and enc not in UNMARKED)
    charged = sum(r == "[NH3+]CC([O-])=O" for r in rows)
    expect = {"rows": len(rows), "kept": len(rows) - charged, "skipped_charged": charged}
    return Case({"qm9/qm9.csv": data}, "qm9/qm9.csv", expect if intact else None, "qm9",
                must_read=intact)


SAMPLE_DAMAGE = [
    lambda r: {**r, "edges" if "edges" in r else "bonds": [[0, 0] + ([1] if "bonds" in r else [])]},
    lambda r: {**r, "num_nodes": -1} if "num_nodes" in r else {**r, "atoms": ["Cl"]},
    lambda r: {**r, "num_nodes": 10**30} if "num_nodes" in r else {**r, "atoms": "CCO"},
    lambda r: {**r, "num_nodes": True} if "num_nodes" in r else {**r, "bonds": [[0, 1, 4]]},
    lambda r: {**r, "edges" if "edges" in r else "bonds": [[0, 1.0] + ([1] if "bonds" in r
                                                                        else [])]},
    lambda r: {**r, "edges" if "edges" in r else "bonds": [[0, 99] + ([1] if "bonds" in r
                                                                       else [])]},
    lambda r: {**r, "extra": 1},
    lambda r: {k: v for k, v in r.items() if k not in ("edges", "bonds")},
    lambda r: [r],
    lambda r: "[" * 5000 + "]" * 5000,
    lambda r: {"num_nodes": 2, "edges": [[0, 1]]} if "atoms" in r else {"atoms": ["C"],
                                                                         "bonds": []},
    lambda r: {**r, "edges": [[0, 1], [1, 0]]} if "edges" in r else {
        "atoms": ["C", "C"], "bonds": [[0, 1, 1], [1, 0, 2]]},
]


def samples_case(rng: random.Random) -> Case:
    """A ``samples.jsonl`` of graphs or molecules (``graphvae score``), perhaps with a
    damaged record (wrong types and keys, self-loops, repeated pairs, nodes out of range,
    deep nesting, mixed kinds) and perhaps damaged bytes."""
    molecules = rng.random() < 0.5
    records: list[Any] = []
    expect = []
    for _ in range(rng.randint(1, 5)):
        g = random_graph(rng) if rng.random() < 0.9 else nx.empty_graph(rng.randint(0, 3))
        g = nx.convert_node_labels_to_integers(g)
        edges = sorted((min(e), max(e)) for e in g.edges())
        n = g.number_of_nodes()
        if molecules:
            records.append({"atoms": [rng.choice("CNOF") for _ in range(n)],
                            "bonds": [[i, j, rng.randint(1, 3)] for i, j in edges]})
        else:
            records.append({"num_nodes": n, "edges": [list(e) for e in edges]})
        expect.append((n, edges))
    hurt = rng.random() < 0.5
    if hurt:
        k = rng.randrange(len(records))
        records[k] = rng.choice(SAMPLE_DAMAGE)(records[k])
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    data = maybe_damage(rng, text.encode(), 0.3)
    intact = not hurt and data == text.encode()
    return Case({"s.jsonl": data}, "s.jsonl", expect if intact else None, note="samples",
                must_read=intact)


def _samples_of(path: Path) -> list[tuple[int, list[tuple[int, int]]]]:
    """Each sample's node count and pairs ``i < j`` (the form ``samples_case`` expects)."""
    from graphvae.tasks.scoring import read_samples
    samples, _ = read_samples(path)
    return [(s.num_nodes, [(i, j) for i, j in s.adj.triu(1).nonzero().tolist()])
            for s in samples]


_CKPT: dict[str, Any] = {}


def _valid_checkpoint() -> dict[str, Any]:
    if not _CKPT:
        import torch

        from graphvae.tasks.link_prediction import PRESETS, build_linkpred_model
        cfg = PRESETS["vgae"].replace(hidden=(4,), latent=2)
        torch.manual_seed(0)
        model = build_linkpred_model(cfg, 3)
        _CKPT.update({"task": "linkpred", "config": cfg.to_dict(), "in_channels": 3,
                      "feature_likelihood": None, "state_dict": model.state_dict(),
                      "epoch": 1})
    return _CKPT


def checkpoint_case(rng: random.Random, folder: str) -> Case:
    import torch
    ck = dict(_valid_checkpoint())
    ck["config"] = dict(ck["config"])
    r = rng.random()
    if r < 0.5:
        kind = rng.randrange(6)
        if kind == 0:
            ck.pop(rng.choice(sorted(ck)))
        elif kind == 1:
            field = rng.choice(sorted(ck["config"]))
            ck["config"][field] = rng.choice([None, "x", -1, 10**9, [10**9], 1.5, [], True])
        elif kind == 2:
            ck["in_channels"] = rng.choice([0, -3, 10**9, "3", 4])
        elif kind == 3:
            sd = dict(ck["state_dict"])
            key = rng.choice(sorted(sd))
            sd[key] = rng.choice([torch.zeros(7, 7), torch.zeros(0), "w", None])
            ck["state_dict"] = sd
        elif kind == 4:
            ck["task"] = rng.choice(["generation", "vector", None, 3])
        else:
            ck["config"]["hidden"] = [10**9]  # must be refused without allocating
    buf = io.BytesIO()
    torch.save(ck, buf)
    data = buf.getvalue()
    if 0.5 <= r < 0.6:
        data = hostile_torch_file(rng, folder, data)
    elif 0.6 <= r < 0.75:
        data = damage(rng, data)          # mostly caught by the members' CRC-32
    elif 0.75 <= r < 0.9:
        data = damage_member(rng, data)   # behind valid CRCs: the unpickler's own checks
    return Case({"model.pt": data}, "model.pt", note="checkpoint", must_read=r >= 0.9)


def damage_member(rng: random.Random, data: bytes) -> bytes:
    """``data``, a zip archive, with one member damaged and the archive written again, so
    that every CRC-32 is right and the damage reaches the member's reader."""
    with zipfile.ZipFile(io.BytesIO(data)) as zin:
        members = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    k = rng.randrange(len(members))
    members[k] = (members[k][0], damage(rng, members[k][1]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for name, content in members:
            zout.writestr(name, content)
    return out.getvalue()


# --------------------------------------------------------------------------- training states
#: The settings the valid training state was written under (``--resume`` compares them).
STATE_CONFIG = {"task": "linkpred", "lr": 0.01, "seed": 0}
ODD_VALUES: tuple[Any, ...] = (None, "x", -1, 0, 10**9, 2**70, 1.5, float("nan"),
                               float("inf"), True, [], {}, [1e9], "1")
_STATE: dict[str, Any] = {}


def _fit_parts() -> tuple[Any, Any, list, Any]:
    """A tiny VGAE's training pieces, the same on every call: the model, its optimiser,
    early stopping and weight averaging (both keep state in the file), the one batch."""
    import torch

    from graphvae.adjacency import Adjacency
    from graphvae.tasks.link_prediction import PRESETS, build_linkpred_model
    from graphvae.training import EMA, EarlyStopping, FullBatch
    torch.manual_seed(0)
    model = build_linkpred_model(PRESETS["vgae"].replace(hidden=(4,), latent=2), 3)
    ring = torch.arange(6)
    adj = Adjacency(torch.stack([torch.cat([ring, (ring + 1) % 6]),
                                 torch.cat([(ring + 1) % 6, ring])]), 6)
    batch = FullBatch(model.batch(torch.ones(6, 3), adj))
    return (model, torch.optim.Adam(model.parameters(), lr=0.01),
            [EarlyStopping(5), EMA(0.9)], batch)


def _resume(path: Path, fresh: bool = False) -> Any:
    """``--resume`` of the run that wrote the valid state (``fresh``: that run itself): the
    same pieces, 2 epochs, the best of a score that never improves kept."""
    import torch

    from graphvae.training import fit
    model, opt, callbacks, batch = _fit_parts()
    return fit(model, batch, opt, epochs=2, evaluate=lambda: {"score": 0.0},
               callbacks=callbacks, generator=torch.Generator().manual_seed(0),
               checkpoint=path, resume=not fresh, config=STATE_CONFIG, progress=False)


def _valid_state() -> bytes:
    if not _STATE:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "state.pt"
            _resume(path, fresh=True)
            _STATE["bytes"] = path.read_bytes()
    return _STATE["bytes"]


def _odd_tensor(rng: random.Random, like: Any) -> Any:
    import torch
    shape = tuple(like.shape) if isinstance(like, torch.Tensor) else (2,)
    return rng.choice([torch.zeros(7, 7), torch.zeros(0), torch.full(shape, float("nan")),
                       torch.full(shape, -1.0), torch.zeros(shape, dtype=torch.int64),
                       torch.zeros(shape, dtype=torch.complex64), torch.zeros(shape).t(),
                       torch.full(shape, 1e38), "w", None])


def torch_file_case(rng: random.Random, folder: str, data: bytes,
                    damage_fields: Callable[[dict[str, Any]], None], name: str,
                    note: str) -> Case:
    """The file ``name`` from ``data``, which ``torch.save`` wrote: 60 % of the cases load
    it, let ``damage_fields`` change its dict in place and save it again; 10 % are hostile
    (:func:`hostile_torch_file`), 10 % damaged bytes, 10 % one zip member damaged behind
    valid CRCs, 10 % the file as it is."""
    import torch
    r = rng.random()
    if r < 0.6:
        ck = torch.load(io.BytesIO(data), weights_only=True)
        damage_fields(ck)
        buf = io.BytesIO()
        torch.save(ck, buf)
        data = buf.getvalue()
    elif r < 0.7:
        data = hostile_torch_file(rng, folder, data)
    elif r < 0.8:
        data = damage(rng, data)
    elif r < 0.9:
        data = damage_member(rng, data)
    return Case({name: data}, name, note=note, must_read=r >= 0.9)


def damage_state(rng: random.Random, ck: dict[str, Any]) -> None:
    """One part of a training state's dict ``ck`` damaged in place: an entry missing or
    odd, a weight, the best epoch's record or weights, the optimiser's groups or slots, the
    callbacks' states, the random states, the per-epoch records, the epoch count, or the
    settings (another run's)."""
    import torch
    kind = rng.randrange(10)
    if kind == 0:
        ck.pop(rng.choice(sorted(ck)))
    elif kind == 1:
        ck[rng.choice(sorted(ck))] = rng.choice(ODD_VALUES)
    elif kind == 2:                                  # a weight
        key = rng.choice(sorted(ck["model"]))
        if rng.random() < 0.2:
            ck["model"].pop(key)
        else:
            ck["model"][key] = _odd_tensor(rng, ck["model"][key])
    elif kind == 3:                                  # the best epoch and its weights
        field = rng.choice(["score", "epoch", "stale", "state"])
        if field == "state" and ck["best"]["state"] and rng.random() < 0.7:
            key = rng.choice(sorted(ck["best"]["state"]))
            ck["best"]["state"][key] = _odd_tensor(rng, ck["best"]["state"][key])
        else:
            ck["best"][field] = rng.choice(ODD_VALUES)
    elif kind == 4:                                  # the optimiser
        opt = ck["optimizer"]
        if rng.random() < 0.5:
            opt["param_groups"][0][rng.choice(["lr", "betas", "eps", "params"])] = \
                rng.choice(ODD_VALUES)
        else:
            slots = opt["state"][rng.choice(sorted(opt["state"]))]
            key = rng.choice(sorted(slots))
            slots[key] = _odd_tensor(rng, slots[key])
    elif kind == 5:                                  # the callbacks' own states
        cbs = ck["callbacks"]
        if rng.random() < 0.3:
            cbs.pop(rng.randrange(len(cbs)))
        elif rng.random() < 0.3:
            cbs.reverse()
        else:
            cb = cbs[rng.randrange(len(cbs))]
            key = rng.choice(sorted(cb)) if cb else "x"
            cb[key] = rng.choice([*ODD_VALUES, [torch.zeros(3)]])
    elif kind == 6:                                  # the random number generators
        rs = ck["rng"]
        rs[rng.choice(sorted(rs))] = rng.choice(
            [torch.zeros(3, dtype=torch.uint8), torch.zeros(5000), None, "x"])
    elif kind == 7:                                  # the per-epoch records
        field = rng.choice(["history", "epoch_seconds"])
        ck[field] = rng.choice([ck[field][:1], ck[field] * 2, [1, 2], ["a", "b"],
                                [{"x": float("nan")}] * 2, "ab", None])
    elif kind == 8:
        ck["epoch"] = rng.choice([-1, 1, 3, 10**9, 1.5, "2", True])
    else:                                            # another run's settings
        ck["config"] = rng.choice([{**STATE_CONFIG, "lr": 0.1}, {"task": "generate"},
                                   None, [1], {"lr": [[[]]]}])


def state_case(rng: random.Random, folder: str) -> Case:
    """A training state (``--resume``): valid, with one part damaged
    (:func:`damage_state`), or damaged bytes."""
    return torch_file_case(rng, folder, _valid_state(), lambda ck: damage_state(rng, ck),
                           "state.pt", "training state")


#: The other tasks' training states: ``generation`` (seq-vae, KL warm-up, its data's
#: fingerprint in the settings) and ``vector`` (a VAE with early stopping, plateau decay,
#: weight averaging and KL warm-up).
_OTHER_STATES: dict[str, bytes] = {}


def _other_run(kind: str, path: Path, fresh: bool = False) -> Any:
    """``--resume`` of a tiny ``generate`` or ``vector`` run of 2 epochs (``fresh``: the run
    that wrote the valid state), as the commands call it."""
    import torch
    if kind == "generation":
        from graphvae.datasets.graphsets import GraphSet
        from graphvae.tasks.generation import (
            GenerationConfig,
            build_generation_model,
            train_generation_model,
        )
        graphs = [nx.cycle_graph(4), nx.path_graph(3), nx.star_graph(3)]
        data = GraphSet("tiny", graphs, graphs[:1], graphs[:1])
        cfg = GenerationConfig(model="seq-vae", hidden=(4,), latent=2, epochs=2,
                               kl_warmup=1, batch_size=2)
        torch.manual_seed(0)
        return train_generation_model(build_generation_model(cfg, data), data, cfg,
                                      torch.device("cpu"), progress=False, state=path,
                                      resume=not fresh)
    from graphvae.vector.models import build_vector_model
    from graphvae.vector.train import train_vector
    torch.manual_seed(0)
    x = torch.rand(12, 5, generator=torch.Generator().manual_seed(0))
    model = build_vector_model("vae", 5, latent_dim=2, hidden=(4,), likelihood="gaussian")
    return train_vector(model, x[:8], x[8:], epochs=2, batch_size=4, patience=5,
                        lr_decay=0.5, ema=0.9, kl_warmup=1, progress=False, state=path,
                        resume=not fresh, config={"task": "vector", "seed": 0})


def _valid_other_states() -> dict[str, bytes]:
    if not _OTHER_STATES:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("generation", "vector"):
                path = Path(tmp) / f"{kind}.pt"
                _other_run(kind, path, fresh=True)
                _OTHER_STATES[kind] = path.read_bytes()
    return _OTHER_STATES


def other_state_case(rng: random.Random, folder: str) -> Case:
    """A ``generate`` or ``vector`` training state: valid, with one part damaged
    (:func:`damage_state`), or damaged bytes. The file's name says the run it is resumed
    by."""
    kind = rng.choice(sorted(_valid_other_states()))
    return torch_file_case(rng, folder, _valid_other_states()[kind],
                           lambda ck: damage_state(rng, ck), f"{kind}.pt",
                           f"training state ({kind})")


_MODELS: dict[str, bytes] = {}


def _valid_models() -> dict[str, bytes]:
    """``model.pt`` as the package writes it (kind, constructor arguments, weights) for each
    kind of graph model, tiny: a linkpred VGAE, and oneshot-vae (with the set-mixture
    prior), seq-vae and graphvae generators of three small graphs."""
    if not _MODELS:
        import torch

        from graphvae.datasets.graphsets import GraphSet
        from graphvae.models.checkpoints import save_model
        from graphvae.tasks.generation import GenerationConfig, build_generation_model
        from graphvae.tasks.link_prediction import PRESETS, build_linkpred_model
        graphs = [nx.cycle_graph(4), nx.path_graph(3), nx.star_graph(3)]
        data = GraphSet("tiny", graphs, graphs[:1], graphs[:1])
        lp = PRESETS["vgae"].replace(hidden=(4,), latent=2)
        torch.manual_seed(0)
        runs: list[tuple[Any, dict[str, Any]]] = [
            (build_linkpred_model(lp, 3), {"task": "linkpred", "config": lp.to_dict(),
                                            "in_channels": 3, "epoch": 1})]
        kinds: list[tuple[str, dict[str, Any]]] = [
            ("oneshot-vae", {"prior": "set-mixture", "components": 2}), ("seq-vae", {}),
            ("graphvae", {})]
        for kind, extra in kinds:
            cfg = GenerationConfig(model=kind, hidden=(4,), latent=2, **extra)
            runs.append((build_generation_model(cfg, data),
                         {"task": "generation", "config": cfg.to_dict(),
                          "in_channels": data.in_channels, "epoch": 1}))
        with tempfile.TemporaryDirectory() as tmp:
            for model, extra in runs:
                path = Path(tmp) / "model.pt"
                save_model(path, model, **extra)
                _MODELS[model.kind] = path.read_bytes()
    return _MODELS


ODD_INIT = (*ODD_VALUES, [10**9], [4] * 2000, [0], [-4], [4.0], "gcn", "gin", "x" * 10_000,
            10**6, -6.0, 1e308, [[4]], {"kind": "x"})


def model_checkpoint_case(rng: random.Random, folder: str) -> Case:
    """A ``model.pt`` of the current format (what ``graphvae linkpred`` and ``generate``
    write): one constructor argument odd, missing or unknown, another kind's arguments, a
    weight or top-level entry damaged, or damaged bytes."""
    kind = rng.choice(sorted(_valid_models()))

    def damage_fields(ck: dict[str, Any]) -> None:
        init = ck["init"]
        what = rng.randrange(6)
        if what == 0:
            init[rng.choice(sorted(init))] = rng.choice(ODD_INIT)
        elif what == 1:
            init.pop(rng.choice(sorted(init)))
        elif what == 2:
            init[rng.choice(["prior", "x", "__class__", "hidden"])] = rng.choice(ODD_INIT)
        elif what == 3:
            ck["model"] = rng.choice([*sorted(_valid_models()), "x", 3, None, ["seq-vae"]])
        elif what == 4:
            sd = ck["state_dict"]
            sd[rng.choice(sorted(sd))] = _odd_tensor(rng, None)
        else:
            ck[rng.choice(sorted(ck))] = rng.choice(ODD_INIT)
    return torch_file_case(rng, folder, _valid_models()[kind], damage_fields, "model.pt",
                           f"model checkpoint ({kind})")


_VECTOR: list[bytes] = []


def _valid_vector_models() -> list[bytes]:
    """``model.pt`` of ``graphvae vector``, tiny: a Gaussian VAE trained with IWAE (K = 5),
    a gated Bernoulli VAE, and a denoising autoencoder."""
    if not _VECTOR:
        import torch

        from graphvae.vector import VectorConfig
        from graphvae.vector.models import VectorAutoencoder
        from graphvae.vector.train import save_checkpoint
        configs = [(VectorConfig(in_dim=6, latent_dim=2, hidden=(4,), likelihood="gaussian"),
                    "iwae", 5),
                   (VectorConfig(in_dim=6, latent_dim=2, hidden=(4, 3), activation="gated"),
                    "elbo", 1),
                   (VectorConfig(in_dim=6, latent_dim=2, hidden=(4,), variational=False,
                                 likelihood="gaussian", corruption="gaussian"), "elbo", 1)]
        with tempfile.TemporaryDirectory() as tmp:
            for cfg, objective, k in configs:
                torch.manual_seed(0)
                model = VectorAutoencoder(cfg)
                model.set_objective(objective, k)
                path = Path(tmp) / "model.pt"
                save_checkpoint(model, path, epoch=1)
                _VECTOR.append(path.read_bytes())
    return _VECTOR


def vector_checkpoint_case(rng: random.Random, folder: str) -> Case:
    """A ``graphvae vector`` ``model.pt``: one config field, the objective or its K odd,
    missing or unknown, a weight or entry damaged, or damaged bytes."""
    data = rng.choice(_valid_vector_models())

    def damage_fields(ck: dict[str, Any]) -> None:
        what = rng.randrange(5)
        if what == 0:
            ck["config"][rng.choice(sorted(ck["config"]))] = rng.choice(ODD_INIT)
        elif what == 1:
            key = rng.choice([*sorted(ck["config"]), "x"])
            if key in ck["config"] and rng.random() < 0.5:
                ck["config"].pop(key)
            else:
                ck["config"][key] = rng.choice(ODD_INIT)
        elif what == 2:
            ck[rng.choice(["objective", "num_samples"])] = rng.choice(
                [*ODD_INIT, "iwae", "elbo", 100_001, 0])
        elif what == 3:
            sd = ck["state_dict"]
            key = rng.choice(sorted(sd))
            sd[key] = _odd_tensor(rng, sd[key])
        else:
            ck[rng.choice(sorted(ck))] = rng.choice(ODD_INIT)
    return torch_file_case(rng, folder, data, damage_fields, "model.pt",
                           "vector checkpoint")


# --------------------------------------------------------------------------- planted models
def planted_case(rng: random.Random) -> Case:
    """The planted parameters (``linkpred --planted``): valid, one array damaged, other
    archives, damaged bytes."""
    blocks = np.array([0, 0, 1, 1, 2], dtype=np.int64)
    theta = np.array([1.0, 0.5, 2.0, 1.0, 0.0])
    omega = np.array([[3.0, 0.5, 0.1], [0.5, 2.0, 0.2], [0.1, 0.2, 1.0]])
    arrays: dict[str, Any] = {"blocks": blocks, "theta": theta, "omega": omega,
                              "graph": np.array("ab" * 32)}
    r = rng.random()
    if r < 0.5:
        key = rng.choice(sorted(arrays))
        if rng.random() < 0.2:
            arrays.pop(key)
        else:
            arrays[key] = rng.choice([
                np.zeros(0), np.full(5, np.nan), np.full(5, -1.0), np.full((3, 3), np.inf),
                np.array(["a"] * 5), np.zeros((5, 2)), np.array(5), np.arange(5) + 7,
                np.array([1e308] * 5), np.zeros(5, dtype=np.complex64),
                np.zeros(5, dtype=bool), np.array([[0.0, 1.0], [2.0, 0.0]]),
                np.array([0, 0, 1, 1, 2], dtype=np.uint8), np.array("Z" * 64),
                np.array(["ab" * 32]), np.zeros(5, dtype=np.float16)])
    buf = io.BytesIO()
    if 0.5 <= r < 0.6:                                     # compressed, or holding objects
        if rng.random() < 0.5:
            np.savez_compressed(buf, **arrays)
        else:
            np.savez(buf, **arrays, extra=np.array([{"a": 1}], dtype=object))
    else:
        np.savez(buf, **arrays)
    data = buf.getvalue()
    if 0.6 <= r < 0.75:
        data = damage(rng, data)
    elif 0.75 <= r < 0.9:
        data = damage_member(rng, data)
    return Case({"g.planted.npz": data}, "g.planted.npz", note="planted", must_read=r >= 0.9)


# --------------------------------------------------------------------------- config files
def config_case(rng: random.Random) -> Case:
    """A ``linkpred --config`` file: valid fields, odd values, unknown keys, other JSON."""
    fields: dict[str, Any] = {"hidden": [8], "latent": 4, "lr": 0.02, "epochs": 3,
                              "dropout": 0.1, "estimator": "sampled", "negatives": 2.0}
    r = rng.random()
    if r < 0.5:
        key = rng.choice([*sorted(fields), "model", "features", "patience", "batch_size",
                          "val_fraction", "selection", "propagated_hops", "seed", "x" * 300])
        fields[key] = rng.choice([*ODD_VALUES, [8, -1], [[8]], "vgae", "gae", 1e39, -0.0,
                                  5e-324, "𝟘", {"a": [1]}, [True]])
        text = json.dumps(fields)
    elif r < 0.65:
        text = rng.choice(["[1, 2]", "null", "3", '"x"', "{", '{"lr": NaN}', '{"lr": 1e999}',
                           '{"lr": 0.1, "lr": 0.2}', "[" * 5000 + "]" * 5000,
                           '{"epochs": 1' + "0" * 5000 + "}", "", "\ufeff{}",
                           '{"hidden": [' + "8," * 100000 + "8]}"])
    else:
        text = json.dumps(fields)
    encoded = rng.random() < 0.2
    data, _ = encode(rng, text) if encoded else (text.encode(), "utf-8")
    damaged = rng.random() < 0.2
    if damaged:
        data = damage(rng, data)
    return Case({"config.json": data}, "config.json", note="config",
                must_read=r >= 0.65 and not encoded and not damaged)


def _config_of(path: Path) -> Any:
    from graphvae.cli import build_parser
    from graphvae.cli.linkpred import _config
    return _config(build_parser().parse_args(["linkpred", "--config", str(path)]))


# --------------------------------------------------------------------------- readers
def _graph_of(data: Any) -> tuple[set[str], set[frozenset[str]]]:
    names = data.node_names
    pairs = {frozenset((names[a], names[b])) for a, b in data.edge_index.t().tolist()}
    return set(names), pairs


def _readers() -> dict[str, tuple[Callable, Callable[[Path, Path], Any]]]:
    from graphvae.datasets.files import load_graph_file
    from graphvae.datasets.graphgen import load_graph_pickle, read_graph6
    from graphvae.datasets.planetoid import read_planetoid_raw
    from graphvae.datasets.planted import PlantedSBM
    from graphvae.tasks.invariance import load_model
    from graphvae.vector.data import load_matrix, read_mat_matrix
    from graphvae.vector.train import load_vector_model

    readers: dict[str, tuple[Callable, Callable[[Path, Path], Any]]] = {
        "edge list": (edge_list_case, lambda d, p: _graph_of(load_graph_file(p))),
        "feature table": (features_case,
                          lambda d, p: _features_of(load_graph_file(d / "e.csv", p))),
        "graphml": (graphml_case, lambda d, p: _graph_of(load_graph_file(p))),
        "gml": (gml_case, lambda d, p: _graph_of(load_graph_file(p))),
        "graph pickle": (graph_pickle_case, lambda d, p: _simple_graphs(load_graph_pickle(p))),
        "graph6": (graph6_case, lambda d, p: _simple_graphs(read_graph6(p))),
        "planetoid": (planetoid_case, lambda d, p: read_planetoid_raw(d, "cora")),
        "npy": (npy_case, lambda d, p: _rows_of(load_matrix(p))),
        "matrix csv": (matrix_csv_case, lambda d, p: _rows_of(load_matrix(p))),
        "mat": (mat_case, lambda d, p: read_mat_matrix(p).tolist()),
        "checkpoint": (checkpoint_case, lambda d, p: load_model(p)),
        "model checkpoint": (model_checkpoint_case, lambda d, p: load_model(p)),
        "vector checkpoint": (vector_checkpoint_case, lambda d, p: load_vector_model(p)),
        "samples": (samples_case, lambda d, p: _samples_of(p)),
        "training state": (state_case, lambda d, p: _resume(p)),
        "training state, other tasks": (other_state_case,
                                        lambda d, p: _other_run(p.stem, p)),
        "planted": (planted_case, lambda d, p: PlantedSBM.load(p)),
        "config": (config_case, lambda d, p: _config_of(p)),
    }
    try:
        import rdkit  # noqa: F401

        from graphvae.chem.load import load_qm9
        readers["qm9"] = (qm9_case, lambda d, p: load_qm9(d)[1])
    except ImportError:
        pass
    return readers


#: A refusal in a library's words: a generic lead (those of the package's last-resort
#: handlers, which show the exception they caught: "cannot read the checkpoint", "not a
#: readable pickle", "could not read gml", "not a graph6 line", "a damaged training
#: state", "the checkpoint's config is not usable") whose reason is an exception that
#: says where the library failed (an index, a key, an attribute, a type, a variable, a
#: token, a byte, torch's runtime), not what is wrong with the file.
LIBRARY_WORDS = re.compile(
    r"(?:cannot read the [\w .]+|could not read \w+|not a readable [\w .]+|not a \w+ line"
    r"|not JSON|a damaged training state|not a usable list of graphs"
    r"|the checkpoint's config is not usable) \((?:IndexError|KeyError|AttributeError"
    r"|TypeError|UnboundLocalError|TokenError|EOFError|UnicodeDecodeError"
    r"|RecursionError|RuntimeError)\b|RuntimeError: record size")


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise Hang(f"no answer after {seconds} s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_case(name: str, reader: Callable, case: Case, folder: Path) -> tuple[str, str]:
    """``(outcome, detail)``: outcome is ``read``, ``refused`` (detail: the message) or
    ``FAIL`` (detail: why)."""
    for rel, data in case.files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    path = folder / case.main
    try:
        with time_limit(HANG_SECONDS), contextlib.redirect_stderr(io.StringIO()):
            result = reader(folder, path)
    except ValueError as err:
        named = path.name in str(err) or str(folder) in str(err)
        if (folder / SENTINEL).exists():
            return "FAIL", f"code ran ({case.note})"
        if not named:
            return "FAIL", f"message does not name the file: {type(err).__name__}: {err}"
        if "\n" in str(err) or len(str(err)) > 700:
            return "FAIL", f"message is not one short line ({len(str(err))} characters)"
        if case.must_read:
            return "FAIL", f"an intact file was refused ({case.note}): {err}"
        return "refused", str(err).replace(str(folder), "<case>")
    except BaseException as err:  # noqa: BLE001 - every other exception is a finding
        if isinstance(err, KeyboardInterrupt):
            raise
        return "FAIL", f"{type(err).__name__}: {str(err)[:200]} ({case.note})"
    if (folder / SENTINEL).exists():
        return "FAIL", f"code ran ({case.note})"
    if case.expect is not None and result != case.expect:
        return "FAIL", f"silently different graph ({case.note}): read {result}, wrote " \
                       f"{case.expect}"
    return "read", ""


def fuzz(cases: int, seed: int, progress: bool = True) -> dict[str, Any]:
    readers = _readers()
    names = sorted(readers)
    counts: dict[str, Counter] = {n: Counter() for n in names}
    failures: list[dict[str, Any]] = []
    library: list[dict[str, Any]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(cases):
            name = names[i % len(names)]
            rng = random.Random(f"{seed}-{i}")
            folder = Path(tmp) / f"c{i}"
            folder.mkdir()
            make, reader = readers[name]
            needs_folder = make in (graph_pickle_case, planetoid_case, checkpoint_case,
                                    model_checkpoint_case, vector_checkpoint_case,
                                    state_case, other_state_case)
            case = make(rng, str(folder)) if needs_folder else make(rng)
            outcome, detail = run_case(name, reader, case, folder)
            counts[name][outcome] += 1
            if outcome == "refused" and LIBRARY_WORDS.search(detail):
                library.append({"case": i, "reader": name, "message": detail[:300]})
            if outcome == "FAIL":
                failures.append({"case": i, "reader": name, "detail": detail})
                if progress:
                    print(f"case {i} ({name}): {detail}", file=sys.stderr)
            for p in sorted(folder.rglob("*"), reverse=True):
                p.unlink() if p.is_file() else p.rmdir()
            folder.rmdir()
            if progress and (i + 1) % 1000 == 0:
                print(f"{i + 1} cases, {len(failures)} failures", file=sys.stderr)
    return {"cases": cases, "seed": seed, "seconds": time.perf_counter() - start,
            "failures": len(failures), "by_reader": {n: dict(c) for n, c in counts.items()},
            "library_words": dict(Counter(r["reader"] for r in library)),
            "failure_list": failures[:200], "library_word_list": library[:50]}


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="400 cases")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/fuzz_readers.json; "
                        "fuzz_readers.smoke.json with --smoke]")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "fuzz_readers.json", args.smoke)
    if args.cases < 1:
        p.error("--cases must be >= 1")
    import torch
    torch.set_num_threads(1)
    report = fuzz(400 if args.smoke else args.cases, args.seed, progress=not args.quiet)
    from graphvae.io import write_json
    from graphvae.provenance import environment
    write_json({**report, "environment": environment()}, args.out)
    print(json.dumps({k: v for k, v in report.items()
                      if k not in ("failure_list", "library_word_list")}, indent=1))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(run_script(main))
