"""Hostile files: pickles that try to run code, checkpoints that try to, and the proof that
each payload is live (the plain unpickler does run it)."""

from __future__ import annotations

import importlib
import io
import os
import pickle
import pkgutil
import re
import struct
import subprocess
import sys
import types
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import run_cli

from graphvae.datasets.graphgen import load_graph_pickle, load_graphgen, read_graph6
from graphvae.datasets.planetoid import read_planetoid_raw
from graphvae.errors import DataError
from graphvae.tasks.invariance import load_model

DATA_ROOT = Path(os.environ.get("GRAPHVAE_DATA", Path(__file__).resolve().parents[2] /
                                "shared" / "data"))


def _u(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b  # SHORT_BINUNICODE


def stack_global(module: str, name: str, arg: str) -> bytes:
    """Protocol 4: push module and name, STACK_GLOBAL, call it with one string argument."""
    return b"\x80\x04" + _u(module) + _u(name) + b"\x93" + _u(arg) + b"\x85R."


def old_global(module: str, name: str, arg: str) -> bytes:
    """Protocol 0: ``c<module>\\n<name>\\n`` then call it with one string argument."""
    return f"c{module}\n{name}\n(V{arg}\ntR.".encode()


def touch_call(target: Path) -> dict[str, str]:
    """The argument that makes each dangerous callable create ``target``."""
    code = f"open({str(target)!r}, 'w').close()"
    return {"system": f"touch {target}", "getoutput": f"touch {target}", "exec": code,
            "eval": code, "popen": f"touch {target}"}


def test_the_issue_payload_is_live_and_refused(tmp_path):
    """An 81-byte STACK_GLOBAL pickle naming a numpy module and ``os.system``: the plain
    unpickler runs it; the graph loader refuses it and nothing runs."""
    module = "numpy._core._methods"
    assert importlib.import_module(module).os is os           # the module exposes os
    ran = tmp_path / "ran"
    payload = stack_global(module, "os.system", f"touch {ran}")
    pickle.loads(payload)
    assert ran.exists()                                       # the payload is live
    ran.unlink()
    path = tmp_path / "graphgen" / "community_small.pkl"
    path.parent.mkdir()
    path.write_bytes(payload)
    with pytest.raises(DataError, match=r"community_small\.pkl: .*refusing to load the global "
                                        r"numpy\._core\._methods\.os\.system"):
        load_graphgen("community-small", tmp_path)
    assert not ran.exists()


def _exposures() -> list[tuple[str, str, str]]:
    """``(module, dotted name, callable)`` for every numpy / networkx module attribute that
    is ``os``, ``subprocess``, ``builtins`` or ``importlib``, or is one of the dangerous
    callables itself."""
    dangerous_modules = {"os": os, "subprocess": subprocess, "builtins": __builtins__
                         if isinstance(__builtins__, types.ModuleType) else
                         importlib.import_module("builtins"), "importlib": importlib,
                         "posix": importlib.import_module("posix")}
    calls = {"os": "system", "posix": "system", "subprocess": "getoutput", "builtins": "exec",
             "importlib": "import_module"}
    direct = {id(os.system): "system", id(eval): "eval", id(exec): "exec",
              id(getattr): "getattr", id(importlib.import_module): "import_module",
              id(subprocess.getoutput): "getoutput"}
    found = []
    warnings.simplefilter("ignore")
    import networkx
    for pkg in (np, networkx):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if any(s in info.name for s in (".tests", "conftest", "f2py", "_pyinstaller",
                                            "testing", "distutils")):
                continue
            try:
                mod = importlib.import_module(info.name)
            except Exception:  # noqa: BLE001 - optional backends that do not import
                continue
            for attr, value in list(vars(mod).items()):
                for kind, dangerous in dangerous_modules.items():
                    if value is dangerous:
                        found.append((info.name, f"{attr}.{calls[kind]}", calls[kind]))
                if id(value) in direct:
                    found.append((info.name, attr, direct[id(value)]))
    return found


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


# a stride-0 uint8 array of 10¹² elements over one byte: ((10**12,), 'u1', b'\x01', 0, (0,))
_HUGE_VIEW_ARGS = b"((I1000000000000\ntS'u1'\nC\x01\x01I0\n(I0\ntt"


def _memo_get(i: int) -> bytes:
    """Protocol 4's LONG_BINGET of memo slot ``i``."""
    return b"j" + i.to_bytes(4, "little")


def _dag_tuple(depth: int) -> bytes:
    """Protocol 4, an empty list, then t (memo ``depth``) holding the level below twice at
    each of ``depth`` levels, left off the stack: a key whose hash costs 2^depth steps."""
    out = b"\x80\x04])\x940"
    for i in range(1, depth + 1):
        out += _memo_get(i - 1) * 2 + b"\x86\x940"
    return out


def _dag_key(depth: int) -> bytes:
    """[{t: 0}] for :func:`_dag_tuple`'s t: a few hundred bytes whose hash costs 2^depth
    steps."""
    return _dag_tuple(depth) + b"}" + _memo_get(depth) + b"K\x00sa."


#: the deep key's memo slot: 2^30 steps take seconds where the key is not refused (a
#: deeper one would hang the test instead of failing it)
_GET30 = _memo_get(30)

BOMBS = {
    # REDUCE on an allowed class with the file's arguments: list(ndarray(...))
    "list of a stride-0 array": (b"\x80\x02" + _global("builtins", "list")
                                 + _global("numpy", "ndarray") + _HUGE_VIEW_ARGS
                                 + b"R\x85R.", "refusing to call ndarray"),
    # the same array through NEWOBJ's constructor arguments
    "NEWOBJ with arguments": (b"\x80\x02" + _global("numpy", "ndarray") + _HUGE_VIEW_ARGS
                              + b"\x81.", "refusing to build an object with constructor"),
    # protocol 0's INST calls the class with its arguments
    "INST with arguments": (b"(I5\ni" + b"numpy\nndarray\n.",
                            "refusing to build an object with constructor"),
    # copyreg rebuilding a Graph through Graph.__init__(data)
    "Graph.__init__ through copyreg": (
        _global("copyreg", "_reconstructor") + b"(" + _global("networkx.classes.graph", "Graph")
        + _global("networkx.classes.graph", "Graph") + b"(lp0\nI1\natR.",
        "refusing to call _reconstructor"),
    # set() of something not a list of scalars
    "set of a tuple": (_global("builtins", "set") + b"((I1\nI2\nttR.",
                       "refusing to call set"),
    "dtype object": (_global("numpy", "dtype") + b"(S'O8'\nI0\nI1\ntR.",
                     "refusing to call dtype"),
    "a key whose hash takes 2^40 steps": (_dag_key(40), "refusing a dict key or set item"),
    # the same key through every other opcode that hashes what the file gives it
    "the deep key by SETITEMS": (_dag_tuple(30) + b"}(" + _GET30 + b"K\x00ua.",
                                 "refusing a dict key or set item"),
    "the deep key by DICT": (_dag_tuple(30) + b"(" + _GET30 + b"K\x00da.",
                             "refusing a dict key or set item"),
    "the deep item by ADDITEMS": (_dag_tuple(30) + b"\x8f(" + _GET30 + b"\x90a.",
                                  "refusing a dict key or set item"),
    "the deep item by FROZENSET": (_dag_tuple(30) + b"(" + _GET30 + b"\x91a.",
                                   "refusing a dict key or set item"),
    "the deep item by set()": (_dag_tuple(30) + _global("builtins", "set") + b"]" + _GET30
                               + b"a\x85Ra.", "refusing to call set"),
    # allowed globals called other than as the data sets call them
    "a 10^12-element array by _reconstruct": (
        b"\x80\x02" + _global("numpy.core.multiarray", "_reconstruct")
        + _global("numpy", "ndarray") + b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85C\x01b\x87R.",
        "refusing to call _reconstruct"),
    "a dtype with an object field": (_global("numpy", "dtype") + b"(S'f8,O'\nI0\nI1\ntR.",
                                     "refusing to call dtype"),
    # scalar(float64, 9 bytes) and dtype('f8', 5, 1): the shipped files give the dtype's
    # own size and 0 / 1 flags
    "a scalar of more bytes than its dtype": (
        b"\x80\x02" + _global("numpy.core.multiarray", "scalar") + _global("numpy", "dtype")
        + b"X\x02\x00\x00\x00f8\x89\x88\x87R" + b"C\x09" + bytes(9) + b"\x86R.",
        "refusing to call scalar"),
    "a dtype with flags other than 0 and 1": (_global("numpy", "dtype") + b"(S'f8'\nI5\nI1\ntR.",
                                               "refusing to call dtype"),
    # copyreg's _reconstructor(cls, base, state) calls base.__new__(cls, state) and, for a
    # base other than object (the shipped files' only one), base.__init__(obj, state):
    # ndarray's, with a state of None here, and of a shape asking for terabytes (refused
    # by its state too, (10**12,)) in the second
    "an array by _reconstructor": (
        b"\x80\x02" + _global("copyreg", "_reconstructor") + _global("numpy", "ndarray")
        + _global("numpy", "ndarray") + b"N\x87R.", "refusing to call _reconstructor"),
    "a 10^12-element array by _reconstructor": (
        b"\x80\x02" + _global("copyreg", "_reconstructor") + _global("numpy", "ndarray")
        + _global("numpy", "ndarray") + b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85\x87R.",
        "refusing to call _reconstructor"),
    # BUILD's state only as attributes of an allowed class's instance: not on a dict (a
    # builtin: its state is its items) even once dict is looked up, nor non-string names
    "a state set on a dict": (
        b"\x80\x02" + _global("builtins", "dict") + b"0}}X\x01\x00\x00\x00aK\x01sb.",
        "refusing to set the state of a dict"),
    "a state of non-string attribute names": (
        b"\x80\x02" + _global("networkx.classes.graph", "Graph") + b")\x81}K\x01K\x02sb.",
        "refusing to set the state of a Graph"),
    # a key tuple of 9 scalars (grid graphs' nodes are pairs; 8 is the most taken)
    "a dict key of 9 numbers": (b"\x80\x02}(K\x01K\x02K\x03K\x04K\x05K\x06K\x07K\x08K\x09tK\x00s.",
                                "refusing a dict key or set item of type tuple"),
    # protocol 4's NEWOBJ_EX with keyword arguments, which the shipped files never give
    "a Graph built with keyword arguments": (
        b"\x80\x04" + _global("networkx.classes.graph", "Graph")
        + b")}X\x01\x00\x00\x00aK\x01s\x92.", "refusing to build an object with constructor"),
    # _reconstruct(ndarray, (0,), 'f8,O'): the shipped files give a one-letter code
    "an array of a structured dtype by _reconstruct": (
        b"\x80\x02" + _global("numpy.core.multiarray", "_reconstruct")
        + _global("numpy", "ndarray") + b"K\x00\x85C\x04f8,O\x87R.",
        "refusing to call _reconstruct"),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_allowed_globals_are_called_only_as_the_data_sets_call_them(tmp_path, name):
    """Each file is under 600 bytes; the C unpickler with the same allowed globals builds a
    10¹²-element list, a complete graph, or hashes for hours. Refused, in one line, at
    once."""
    import time

    from graphvae.safe_pickle import restricted_load
    data, message = BOMBS[name]
    path = tmp_path / "bomb.pkl"
    path.write_bytes(data)
    assert len(data) < 600
    start = time.perf_counter()
    with pytest.raises(DataError, match=message) as info:
        restricted_load(path, "networkx")
    assert time.perf_counter() - start < 1.0
    assert "\n" not in str(info.value)


def test_the_restricted_unpickler_still_reads_every_protocol():
    """What the data sets' pickles hold, at every protocol: graphs (with a subgraph view,
    tuple nodes and numpy ids), CSR matrices, arrays, numpy scalars, defaultdicts, sets."""
    from graphvae.safe_pickle import PROFILES, _Unpickler
    g = nx.cycle_graph(5)
    g.nodes[0]["label"] = 3
    view = nx.path_graph(4).subgraph([0, 1, 2])
    grid = nx.grid_2d_graph(2, 3)
    ids = nx.relabel_nodes(nx.path_graph(3), {i: np.int64(10 + i) for i in range(3)})
    csr = sp.csr_matrix(np.arange(6, dtype=np.float32).reshape(2, 3))
    for proto in range(6):
        def load(obj, profile, proto=proto):
            return _Unpickler(io.BytesIO(pickle.dumps(obj, protocol=proto)),
                              PROFILES[profile]).load()
        out = load([g, view, grid, {1, 2}, frozenset({3})], "networkx")
        assert sorted(out[0].edges) == sorted(g.edges) and out[0].nodes[0]["label"] == 3
        assert sorted(out[1].edges) == [(0, 1), (1, 2)]
        assert sorted(out[2].edges) == sorted(grid.edges)
        assert out[3:] == [{1, 2}, frozenset({3})]
        if proto in (3, 4):  # numpy's bytes: protocol 2 through _codecs.encode, 5 frombuffer
            assert sorted(load(ids, "networkx").edges) == [(10, 11), (11, 12)]
            assert (load(csr, "planetoid") != csr).nnz == 0
            assert np.array_equal(load(np.eye(3), "planetoid"), np.eye(3))
            assert load(defaultdict(list, {0: [1]}), "planetoid") == {0: [1]}


def test_the_wrong_kind_of_file_is_named_for_what_it_is(tmp_path):
    """metrics.json given as a checkpoint was "refused: the file holds more than tensors"
    (torch's pickle reader on a '{'); a vector model was "not a graphvae checkpoint"."""
    from graphvae.vector.data import load_digits
    from graphvae.vector.run import VectorRunConfig, run_vector
    path = tmp_path / "metrics.json"
    path.write_text('{"test_auc": 0.9}')
    with pytest.raises(DataError, match=r"metrics.json: not a torch checkpoint \(a model.pt "
                                        r"that graphvae wrote\); it starts with b'\{\"te'"):
        load_model(path)
    run_vector(load_digits(), VectorRunConfig(epochs=1, nll_samples=2, hidden=(4,),
                                              refine_epochs=0), tmp_path / "v",
               progress=False)
    with pytest.raises(DataError, match="model.pt: a graphvae vector model: this takes the "
                                        "model.pt of graphvae linkpred or graphvae generate"):
        load_model(tmp_path / "v" / "model.pt")


def test_messages_show_hostile_values_bounded(tmp_path):
    """A value read from a file is quoted three levels and six items deep: a tuple holding
    the level below twice, 60 levels deep (2⁶⁰ parts), and a list nested 10⁵ deep are
    named at once; in a checkpoint's task field the first took minutes and gigabytes, the
    second ended in a RecursionError (exit 3)."""
    import time

    from graphvae.errors import quote
    dag: tuple = (1,)
    for _ in range(60):
        dag = (dag, dag)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    start = time.perf_counter()
    assert quote(deep) == "[[[[...]]]]"
    assert quote(dag).startswith("((((...), (...)), ((...), (...))), ")
    assert quote(list(range(100))) == "[0, 1, 2, 3, 4, 5, ...]"
    assert quote("x" * 200, 10) == "'xxxxxxxxx... (200 characters)"
    path = tmp_path / "dag.pt"
    torch.save({"task": dag, "state_dict": {}}, path)     # the pickle memo shares levels
    assert path.stat().st_size < 20_000
    # (refused by its parts before it is read: torch_files.MAX_TUPLE_PARTS)
    with pytest.raises(DataError, match=r"dag\.pt: refused: its pickle builds a tuple of "):
        load_model(path)
    small = (1,)
    for _ in range(18):                                 # 3 · 2^18 - 1 = 786,431 parts: allowed
        small = (small, small)
    torch.save({"task": small, "state_dict": {}}, path)
    with pytest.raises(DataError, match=r"not a graphvae checkpoint \(task \(\(\(\("):
        load_model(path)
    assert time.perf_counter() - start < 5


def _nested_list(depth: int) -> bytes:
    """Pickle opcodes for a list nested ``depth`` deep, ``[[[...[]...]]]`` (no pickler
    writes one: pickling it recurses, and so would comparing or printing it naively)."""
    return b"]" * depth + b"a" * (depth - 1)


def _binunicode(s: str) -> bytes:
    """A string as protocol 2 writes it (BINUNICODE): torch's weights-only reader refuses
    protocol 4's SHORT_BINUNICODE, which :func:`_u` writes."""
    return b"X" + struct.pack("<I", len(s.encode())) + s.encode()


def test_lists_nested_past_the_recursion_limit_are_refused_in_one_line(tmp_path):
    """The unpicklers build a list nested 10⁵ deep without recursing (it is opcodes in a
    loop), so what comes out is as deep as the file says; every reader that takes one then
    refuses it by its type, names it bounded, or compares it without a RecursionError: as
    a graph set's item, a Planetoid neighbour list, a checkpoint's task and a training
    state's setting."""
    from graphvae.training.state import restore_state
    deep = _nested_list(100_000)
    graphs = tmp_path / "g.pkl"
    graphs.write_bytes(b"\x80\x02]" + deep + b"a.")             # [deep]
    with pytest.raises(DataError, match=r"g\.pkl: item 0 is of type list, not a networkx "
                                        r"graph$"):
        load_graph_pickle(graphs)
    _planetoid_files(tmp_path)
    (tmp_path / "ind.cora.graph").write_bytes(b"\x80\x02}K\x00" + deep + b"s.")  # {0: deep}
    with pytest.raises(DataError, match=r"ind\.cora\.graph: node 0: neighbour ids must be "
                                        r"integers in 0\.\.506$"):
        read_planetoid_raw(tmp_path, "cora")
    task = _torch_file_with_pickle(tmp_path / "t.pt", b"\x80\x02}(" + _binunicode("task") + deep
                                   + _binunicode("state_dict") + b"}u.")
    with pytest.raises(DataError, match=r"t\.pt: not a graphvae checkpoint \(task "
                                        r"\[\[\[\[\.\.\.\]\]\]\]\)$"):
        load_model(task)
    state = _torch_file_with_pickle(
        tmp_path / "s.pt", b"\x80\x02}(" + _binunicode("kind")
        + _binunicode("graphvae-training-state") + _binunicode("config") + b"}"
        + _binunicode("lr") + deep + b"su.")
    with pytest.raises(DataError, match=r"s\.pt: the training state belongs to a run with "
                                        r"other settings \(lr: 0\.1 here, \[\[\[\[\.\.\.\]\]\]\] "
                                        r"in the state\)"):
        restore_state(state, None, None, None, {"lr": 0.1})  # refused before either is used


def test_every_numpy_and_networkx_route_to_os_or_exec_is_refused(tmp_path):
    routes = _exposures()
    assert len(routes) >= 10                     # the scan finds the routes the issue names
    assert any(name == "os.system" for _, name, _ in routes)
    ran = tmp_path / "ran"
    args = touch_call(ran)
    for k, (module, name, call) in enumerate(routes):
        for build in (stack_global, old_global):
            path = tmp_path / f"p{k}{build.__name__}.pkl"
            path.write_bytes(build(module, name, args.get(call, "os")))
            with pytest.raises(DataError, match="refusing to load the global"):
                load_graph_pickle(path)
            assert not ran.exists(), (module, name)


def test_direct_dangerous_globals_are_refused_by_every_profile(tmp_path):
    ran = tmp_path / "ran"
    args = touch_call(ran)
    raw = tmp_path / "raw"
    raw.mkdir()
    for module, name in [("os", "system"), ("posix", "system"), ("builtins", "exec"),
                         ("builtins", "eval"), ("subprocess", "getoutput"),
                         ("__builtin__", "eval"), ("builtins", "getattr"),
                         ("builtins", "__import__"), ("nt", "system")]:
        payload = old_global(module, name, args.get(name, "x"))
        (tmp_path / "g.pkl").write_bytes(payload)
        refused = f"refusing to load the global {module}.{name}"   # not only not called
        with pytest.raises(DataError, match=refused):
            load_graph_pickle(tmp_path / "g.pkl")
        _planetoid_files(raw)
        (raw / "ind.cora.tx").write_bytes(payload)
        with pytest.raises(DataError, match=r"ind\.cora\.tx: .*" + refused):
            read_planetoid_raw(raw, "cora")
        assert not ran.exists()


def test_graph_pickles_of_every_protocol_and_views_load(tmp_path):
    g = nx.cycle_graph(5)
    h = nx.path_graph(4).subgraph([0, 1, 2])          # a subgraph view, as in ENZYMES
    _ = g.nodes, g.adj                                  # cached views get pickled too
    for proto in range(6):
        path = tmp_path / f"g{proto}.pkl"
        path.write_bytes(pickle.dumps([g, h, nx.DiGraph([(0, 1), (1, 0)])], protocol=proto))
        graphs = load_graph_pickle(path)
        assert [sorted(x.edges) for x in graphs] == [sorted(g.edges), [(0, 1), (1, 2)],
                                                     [(0, 1)]]


def test_graphs_of_every_class_load_with_every_view_networkx_caches(tmp_path):
    """networkx 3 pickles the views a graph has cached (``g.degree``, ``g.in_edges``, …)
    with it. A MultiDiGraph whose degree had been read was refused ("refusing to load the
    global networkx.classes.reportviews.DiMultiDegreeView"), as were its in- and
    out-degree views. Every class, with every view it caches, reads as the undirected
    simple graph of its edges, each node in the file's order."""
    names = ("nodes", "adj", "edges", "degree", "succ", "pred", "in_edges", "out_edges",
             "in_degree", "out_degree")
    graphs = []
    for cls in (nx.Graph, nx.DiGraph, nx.MultiGraph, nx.MultiDiGraph):
        g = cls()
        g.add_nodes_from([3, 0, 2, 1])
        g.add_edges_from([(3, 0), (0, 2), (2, 0), (2, 2), (1, 3)])
        for name in names:
            getattr(g, name, None)
        graphs.append(g)
    assert {type(v).__name__ for v in vars(graphs[3]).values()} >= {
        "DiMultiDegreeView", "InMultiDegreeView", "OutMultiDegreeView"}
    path = tmp_path / "g.pkl"
    for proto in (2, 4):
        path.write_bytes(pickle.dumps(graphs, protocol=proto))
        for h in load_graph_pickle(path):
            assert list(h.nodes) == [0, 1, 2, 3]     # 3, 0, 2, 1 renumbered in order
            assert sorted(h.edges) == [(0, 1), (0, 3), (1, 2)]


def test_shared_references_cannot_multiply_a_small_pickle(tmp_path):
    """``{i: X for i in range(k)}`` with one shared neighbour dict X of k entries is k²
    edges from O(k) bytes: refused before expanding it."""
    k = 3000
    shared = {j: {} for j in range(k)}
    g = nx.Graph()
    g._adj = {i: shared for i in range(k)}
    g._node = {i: {} for i in range(k)}
    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle.dumps([g], protocol=4))
    assert path.stat().st_size < 100_000
    with pytest.raises(DataError, match="multiplied out"):
        load_graph_pickle(path)


def _containers(obj):
    """Every list, dict, set and tuple reachable from ``obj`` (each once)."""
    seen, todo = {}, [obj]
    while todo:
        x = todo.pop()
        if isinstance(x, list | dict | set | tuple) and id(x) not in seen:
            seen[id(x)] = x
            todo.extend(x.values() if isinstance(x, dict) else x)
            if isinstance(x, dict):
                todo.extend(x.keys())
    return list(seen.values())


@pytest.mark.parametrize("protocol", [4, 5])   # 2 and 3 make sets through a list, freed
def test_the_memory_a_pickle_builds_is_counted_and_capped(tmp_path, monkeypatch, protocol):
    """An empty set is 1 byte of pickle and 216 of memory: a 64 MB file of them asked for
    15 GB. What a load makes is counted as ``sys.getsizeof`` of every container when made
    and as it grows, so the count equals the sizes of the containers that come out
    (summed here independently, from the result), and a cap one byte lower refuses it."""
    import graphvae.safe_pickle as sp
    data = [{1, 2, 3}, {"a": [1.5, 2.5], "b": (1, 2)}, [], (3, (4, 5)), set(range(40))]
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    expected = sum(sys.getsizeof(c) for c in _containers(sp.restricted_load(path, "networkx"))
                   if c != ())      # the empty tuple is a shared singleton, never made
    monkeypatch.setattr(sp, "MAX_BUILT", expected)
    assert sp.restricted_load(path, "networkx") == data
    monkeypatch.setattr(sp, "MAX_BUILT", expected - 1)
    with pytest.raises(DataError, match="c.pkl: .*refusing to build more than"):
        sp.restricted_load(path, "networkx")
    # the bomb: 100,000 one-byte empty sets are 21.6 MB; a 1 MiB cap stops it early
    monkeypatch.setattr(sp, "MAX_BUILT", 1 << 20)
    path.write_bytes(b"\x80\x04](" + b"\x8f" * 100_000 + b"e.")
    with pytest.raises(DataError, match="refusing to build more than 1 MiB of objects"):
        sp.restricted_load(path, "networkx")
    # made by a call: set() of one memoized 5,000-item list, twenty times, 5 bytes each
    ints = b"".join(b"K" + bytes([i]) if i < 256 else b"M" + i.to_bytes(2, "little")
                    for i in range(5000))
    again = b"h\x01h\x02\x85Ra"                       # BINGET set, BINGET list, (list,), call
    path.write_bytes(b"\x80\x02]q\x00c__builtin__\nset\nq\x01]q\x02(" + ints + b"e\x85Ra"
                     + again * 19 + b".")
    monkeypatch.setattr(sp, "MAX_BUILT", 1 << 30)
    assert sp.restricted_load(path, "networkx") == [set(range(5000))] * 20
    monkeypatch.setattr(sp, "MAX_BUILT", 1 << 20)        # each set takes 0.5 MB
    with pytest.raises(DataError, match="refusing to build more than 1 MiB"):
        sp.restricted_load(path, "networkx")
    # objects made by NEWOBJ: 50,000 bare Graphs of one memoised class, 4 bytes each, are
    # at least 40 bytes each (2 MB) in a list of 0.4 MB
    assert sys.getsizeof(nx.Graph.__new__(nx.Graph)) >= 40
    path.write_bytes(b"\x80\x04" + _global("networkx.classes.graph", "Graph") + b"\x940](" +
                     b"h\x00)\x81" * 50_000 + b"e.")
    with pytest.raises(DataError, match="refusing to build more than 1 MiB"):
        sp.restricted_load(path, "networkx")


@pytest.mark.parametrize("protocol", [0, 1, 2, 3])
def test_the_memory_of_every_protocols_containers_is_counted(tmp_path, monkeypatch, protocol):
    """Protocols 0 and 1 make dicts by DICT and every tuple by TUPLE (2 and 3 tuples of 4
    or more): those are counted as the later protocols' opcodes are, exactly, and a cap
    one byte lower refuses the file (set-free data, whose containers all come out)."""
    import graphvae.safe_pickle as sp
    data = [{"a": [1.5], "b": {"c": 2}}, (1, 2, 3, 4), (5, (6, 7, 8, 9, 10))]
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    expected = sum(sys.getsizeof(c) for c in _containers(sp.restricted_load(path, "networkx")))
    monkeypatch.setattr(sp, "MAX_BUILT", expected)
    assert sp.restricted_load(path, "networkx") == data
    monkeypatch.setattr(sp, "MAX_BUILT", expected - 1)
    with pytest.raises(DataError, match="c.pkl: .*refusing to build more than"):
        sp.restricted_load(path, "networkx")


def test_state_copied_by_build_is_counted(tmp_path, monkeypatch):
    """BUILD copies what it is given: numpy copies an array's byte-swapped buffer, and an
    object's attributes go into its own dict, so one memoised buffer or attribute dict set
    on many objects multiplied a small pickle (1 MB of buffer on 2,000 arrays: 2.2 GB; a
    100,000-key dict on 400 graphs: 1.8 GB). Both copies are counted."""
    import graphvae.safe_pickle as sp

    def get(i):
        return b"h" + bytes([i])

    def put(i):
        return b"q" + bytes([i])

    n, count = 8000, 200                      # 8 kB of buffer on 200 arrays: 1.6 MB
    arrays = b"".join([
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n" + put(0),
        b"cnumpy\nndarray\n" + put(1), b"cnumpy\ndtype\n" + put(2),
        get(2) + b"X\x03\x00\x00\x00>f8\x89\x88\x87R" + put(3),
        get(1) + b"K\x00\x85C\x01b\x87" + put(4),
        b"(K\x01J" + struct.pack("<i", n // 8) + b"\x85" + get(3) + b"\x89B"
        + struct.pack("<I", n) + b"\x00" * n + b"t" + put(5),
        b"](" + (get(0) + get(4) + b"R" + get(5) + b"b") * count + b"e."])
    keys = b"".join(b"\x8c" + bytes([len(k)]) + k + b"N" for k in
                    (format(i, "x").encode() for i in range(1000)))
    graphs = b"".join([b"\x80\x02cnetworkx.classes.graph\nGraph\n" + put(0), b")" + put(1),
                       b"}" + put(2) + b"(" + keys + b"u",
                       b"](" + (get(0) + get(1) + b"\x81" + get(2) + b"b") * 50 + b"e."])
    for name, data in (("arrays", arrays), ("graphs", graphs)):
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(data)
        assert path.stat().st_size < 50_000
        monkeypatch.setattr(sp, "MAX_BUILT", 1 << 30)
        got = sp.restricted_load(path, "networkx")
        assert len(got) == (count if name == "arrays" else 50)
        if name == "arrays":
            assert all(a.shape == (n // 8,) and not a.any() for a in got)
        monkeypatch.setattr(sp, "MAX_BUILT", 1 << 20)          # 1.6 and 1.8 MB built
        with pytest.raises(DataError, match=f"{name}.pkl: .*refusing to build more than 1 MiB"):
            sp.restricted_load(path, "networkx")


def test_a_pickle_larger_than_the_cap_is_refused_by_its_size(tmp_path):
    """Checked before a byte is read (a sparse file: nothing is written to disk)."""
    import graphvae.safe_pickle as sp
    path = tmp_path / "big.pkl"
    with path.open("wb") as fh:
        fh.truncate(sp.MAX_BYTES + 1)
    with pytest.raises(DataError, match=f"big.pkl: {sp.MAX_BYTES + 1} bytes is too large"):
        sp.restricted_load(path, "networkx")
    assert sp.MAX_BYTES == 64 << 20
    with path.open("wb") as fh:                  # the cap itself is allowed: read, and then
        fh.truncate(sp.MAX_BYTES)                # refused as no pickle (zeros)
    with pytest.raises(DataError, match="big.pkl: not a pickle: it has 0x00 at byte 0, "):
        sp.restricted_load(path, "networkx")


def test_a_pickle_cannot_grow_the_memo_table(tmp_path):
    """CPython's unpickler sizes its memo table to twice the largest index it is given: a
    9-byte pickle putting at index 2^27 took 2.5 GB before failing. Memo indices that
    no pickler writes (beyond the opcodes so far) are refused first; real pickles, whose
    indices run 0, 1, 2, … (Python 2's from 1), still load (the shipped Planetoid files,
    written by Python 2, are read by other tests)."""
    path = tmp_path / "memo.pkl"
    path.write_bytes(b"\x80\x02]r\x00\x00\x00\x08.")
    with pytest.raises(DataError, match="memo index 134217728 at opcode 2"):
        load_graph_pickle(path)
    path.write_bytes(b"\x80\x02]q\x03.")          # one beyond the opcodes before it
    with pytest.raises(DataError, match="memo index 3 at opcode 2"):
        load_graph_pickle(path)
    g = nx.path_graph(4)
    path.write_bytes(pickle.dumps([g, g], protocol=2))      # BINPUT 0, 1, …, a BINGET
    assert [sorted(h.edges) for h in load_graph_pickle(path)] == [[(0, 1), (1, 2), (2, 3)]] * 2
    for protocol in (0, 4, 5):                              # PUT text, MEMOIZE
        path.write_bytes(pickle.dumps([g], protocol=protocol))
        assert sorted(load_graph_pickle(path)[0].edges) == [(0, 1), (1, 2), (2, 3)]


def test_each_profile_allows_its_own_globals_and_calls_only(tmp_path):
    """A graph pickle may not name a Planetoid class nor the reverse, a defaultdict's
    default is the list the Planetoid files give it, and ADDITEMS adds to sets only (a
    Graph's update() would add edges that no memory count sees)."""
    from graphvae.safe_pickle import restricted_load
    graph = _global("networkx.classes.graph", "Graph")
    csr = _global("scipy.sparse._csr", "csr_matrix")
    cases = [
        ("planetoid", b"\x80\x02" + graph + b")\x81.",
         "refusing to load the global networkx.classes.graph.Graph"),
        ("networkx", b"\x80\x02" + csr + b")\x81.",
         "refusing to load the global scipy.sparse._csr.csr_matrix"),
        ("planetoid", b"\x80\x02" + _global("collections", "defaultdict") + csr + b"\x85R.",
         "refusing to call defaultdict"),
        ("networkx", b"\x80\x04" + graph + b")\x81(K\x00K\x01\x86\x90.",
         "refusing to add items to something not a set"),
    ]
    for i, (profile, data, message) in enumerate(cases):
        path = tmp_path / f"case{i}.pkl"
        path.write_bytes(data)
        with pytest.raises(DataError, match=message):
            restricted_load(path, profile)


_BUILD_PAYLOADS = r"""
import pickle as P, sys
import networkx as nx, numpy as np, scipy.sparse as sp
from numpy._core.multiarray import _reconstruct
from graphvae.errors import DataError
from graphvae.safe_pickle import restricted_load

def state_on_class(module, cls, attr, value):
    # (None, {attr: value}) set on the class object itself: setattr(cls, attr, value)
    return (P.PROTO + b"\x02" + P.GLOBAL + f"{module}\n{cls}\n".encode() + P.NONE
            + P.EMPTY_DICT + P.SHORT_BINUNICODE + bytes([len(attr)]) + attr.encode()
            + P.GLOBAL + f"builtins\n{value}\n".encode() + P.SETITEM + P.TUPLE2 + P.BUILD
            + P.POP + P.EMPTY_LIST + P.STOP)

def array_of(state):
    d = np.dtype("f8", False, True)
    d.__setstate__(state)
    a = _reconstruct(np.ndarray, (0,), b"b")
    a.__setstate__((1, (2,), d, False, b"\0" * 16))
    return P.dumps(a, protocol=3)

cases = [("networkx", state_on_class("networkx.classes.graph", "Graph", "number_of_nodes",
                                     "frozenset"), "the state of the class Graph"),
         ("planetoid", state_on_class("scipy.sparse._csr", "csr_matrix", "toarray", "list"),
          "the state of the class csr_matrix"),
         ("planetoid", array_of((3, "|", None, ("a",), {"a": (np.dtype("f8"), 1 << 40)},
                                 -1, -1, 0)), "a dtype state with fields"),
         ("planetoid", array_of((3, "|", (np.dtype("f8"), (1 << 20,)), None, None, -1, -1,
                                 0)), "a dtype state with fields or a subarray"),
         # flags 63 where numpy writes 0: an f8 whose items count as object references
         *(("planetoid", P.dumps(obj, protocol=3).replace(
             b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t", b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK?t"),
            "a dtype state unlike numpy's for <f8") for obj in (np.array([1.0, 2.0]),
                                                                 np.dtype("f8")))]
for _, data, _ in cases[-2:]:
    assert b"K?t" in data                      # (the flags were where they are replaced)
for i, (profile, data, message) in enumerate(cases):
    path = f"{sys.argv[1]}/ind.case{i}.x"
    open(path, "wb").write(data)
    try:
        restricted_load(path, profile, encoding="latin1")
        print("LOADED", i)
    except DataError as err:
        assert message in str(err), (i, str(err))
print(nx.path_graph(5).number_of_nodes(), sp.csr_matrix(np.eye(2)).toarray().tolist())
"""


def test_a_pickle_cannot_set_the_state_of_classes_or_make_unsafe_dtypes(tmp_path):
    """BUILD went to ``setattr`` or ``__setstate__`` on anything: a refused file had still
    replaced ``Graph.number_of_nodes`` (by ``frozenset``) or ``csr_matrix.toarray`` (by
    ``list``) for the whole process, and a dtype given a field at offset 2⁴⁰ made an array
    that passed the Planetoid checks and crashed Python when read (a subarray dtype read
    32 MB past its buffer). Run in a child process, so that a failure poisons only it."""
    out = subprocess.run([sys.executable, "-c", _BUILD_PAYLOADS, str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "5 [[1.0, 0.0], [0.0, 1.0]]", out.stdout


def test_non_graph_content_is_refused_with_the_file_name(tmp_path):
    for obj in ([1, 2], {"a": 1}, [], [nx.Graph(), "x"]):
        path = tmp_path / "x.pkl"
        path.write_bytes(pickle.dumps(obj))
        with pytest.raises(DataError, match=r"x\.pkl: "):
            load_graph_pickle(path)


def test_graph_pickle_items_are_held_to_their_type_size_and_tables(tmp_path):
    """What each refusal names: an allowed object that merely has an ``adj`` attribute is
    not a graph (a degree view given one by its state); 5,000 nodes are read and 5,001
    refused; a node table of 3 beside an adjacency of 1 is named as such."""
    from networkx.classes.reportviews import DiDegreeView
    view = DiDegreeView.__new__(DiDegreeView)
    view.__dict__["adj"] = {}
    path = tmp_path / "v.pkl"
    path.write_bytes(pickle.dumps([view], protocol=2))
    with pytest.raises(DataError, match=r"v\.pkl: item 0 is of type DiDegreeView, not a "
                                        r"networkx graph$"):
        load_graph_pickle(path)
    for n in (5000, 5001):
        path.write_bytes(pickle.dumps([nx.empty_graph(n)], protocol=4))
        if n == 5000:
            assert load_graph_pickle(path)[0].number_of_nodes() == 5000
            continue
        with pytest.raises(DataError, match="graph 0 has 5001 nodes; graph sets for "
                                            "generation hold graphs of at most 5000"):
            load_graph_pickle(path)
    g = nx.path_graph(3)
    g._adj = {0: {}}
    path.write_bytes(pickle.dumps([g], protocol=4))
    with pytest.raises(DataError, match=r"graph 0's node and adjacency tables disagree "
                                        r"\(3 nodes, adjacency of 1\)"):
        load_graph_pickle(path)


def test_a_graph_pickle_is_read_from_its_tables_not_the_views_it_caches(tmp_path):
    """networkx 3 caches ``g.degree`` (and ``g.nodes``, ``g.adj``) in the graph's
    ``__dict__``, so a pickle carries its own views. One whose degree view had lost its
    ``_nodes`` was refused as "not a usable list of graphs (AttributeError: 'DegreeView'
    object has no attribute '_nodes')": the edge count went through it. The graph is read
    from its ``_node`` and ``_adj`` tables; tables of the wrong kind are named."""
    g = nx.cycle_graph(4)
    g.add_edge(0, 2)
    del g.degree._nodes                     # the view is cached; its copy in the pickle
    assert "degree" in vars(g)
    path = tmp_path / "g.pkl"
    path.write_bytes(pickle.dumps([g], protocol=2))
    (h,) = load_graph_pickle(path)
    assert list(h.nodes) == [0, 1, 2, 3]
    assert sorted(h.edges) == [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)]
    g = nx.path_graph(3)
    g._node = 3
    path.write_bytes(pickle.dumps([g], protocol=2))
    with pytest.raises(DataError, match=r"g\.pkl: graph 0 has no node table \(its _node is "
                                        r"3, not a mapping\)$"):
        load_graph_pickle(path)
    g = nx.path_graph(3)
    g._adj[1] = [0, 2]
    path.write_bytes(pickle.dumps([g], protocol=2))
    with pytest.raises(DataError, match=r"g\.pkl: graph 0's adjacency of node 1 is \[0, 2\], "
                                        r"not a mapping$"):
        load_graph_pickle(path)


def test_a_graph_pickle_may_count_four_times_its_bytes_and_not_one_more(tmp_path,
                                                                         monkeypatch):
    """300 nodes sharing one neighbour dict of 300 (45,150 edges) is 2 + 300 + 45,150 from
    a file of a few kB: between 4 and 40 times its size (plus 10,000), so refused by the
    budget of 4 bytes a count. With the budget set to the set's exact count it loads; one
    less is refused."""
    from graphvae.datasets import graphgen
    shared = {j: {} for j in range(300)}
    g = nx.Graph()
    g._node = {i: {} for i in range(300)}
    g._adj = {i: shared for i in range(300)}
    path = tmp_path / "g.pkl"
    path.write_bytes(pickle.dumps([g], protocol=4))
    count = 2 + 300 + g.number_of_edges()
    assert g.number_of_edges() == 45_150
    assert 4 * path.stat().st_size + 10_000 < count < 40 * path.stat().st_size + 10_000
    with pytest.raises(DataError, match="holds more nodes, edges and graphs than its size "
                                        "allows"):
        load_graph_pickle(path)
    small = tmp_path / "s.pkl"
    small.write_bytes(pickle.dumps([nx.path_graph(4), nx.path_graph(3)], protocol=4))
    exact = (2 + 4 + 3) + (2 + 3 + 2)
    monkeypatch.setattr(graphgen, "_budget", lambda p: exact)
    assert [h.number_of_nodes() for h in load_graph_pickle(small)] == [4, 3]
    monkeypatch.setattr(graphgen, "_budget", lambda p: exact - 1)
    with pytest.raises(DataError, match="than its size allows"):
        load_graph_pickle(small)


@pytest.mark.parametrize("n", [0, 1, 62, 63, 4095, 258047, 258048, 2**36 - 1])
def test_graph6_sizes_are_read_from_every_header_form(n):
    """The node count and the header's length in the three header forms of the graph6
    format (one byte up to 62, ``~`` and 18 bits up to 258,047, ``~~`` and 36 bits
    beyond), written by networkx's own encoder; a header cut short is no size."""
    from networkx.readwrite.graph6 import n_to_data

    from graphvae.datasets.graphgen import _graph6_header
    head = bytes(b + 63 for b in n_to_data(n))
    assert _graph6_header(head) == (n, len(head))
    assert _graph6_header(head[:-1] or b"~") is None


def _planetoid_files(raw: Path, key: str = "cora") -> None:
    """A small Planetoid set in the upstream layout: 3 labelled training nodes, 505 nodes in
    ``allx`` (PyG's reader assumes 500 validation nodes follow the training ones) and two
    test nodes listed out of order."""
    def onehot(k):
        return np.eye(2)[np.arange(k) % 2]

    def csr(k, start=0):
        return sp.csr_matrix(np.arange(start, start + k * 3, dtype=np.float32).reshape(k, 3))

    graph = defaultdict(list, {i: [(i + 1) % 507] for i in range(507)})
    items = {"x": csr(3), "tx": csr(2, 10_000), "allx": csr(505), "y": onehot(3),
             "ty": onehot(2), "ally": onehot(505), "graph": graph}
    for k, v in items.items():
        (raw / f"ind.{key}.{k}").write_bytes(pickle.dumps(v, protocol=4))
    (raw / f"ind.{key}.test.index").write_text("506\n505\n")


def test_planetoid_files_that_ask_for_more_than_their_size_are_refused(tmp_path):
    """CiteSeer's test rows are spread over the span of the test indices, which a 13-byte
    index file sets (3·10⁷ here: a 3·10⁷ × 3 matrix); one neighbour list shared by 3,000
    nodes through the pickle memo is 9·10⁶ edges from 23 kB. Both refused before built."""
    from graphvae.datasets.planetoid import MAX_ENTRIES
    _planetoid_files(tmp_path, "citeseer")
    x, _, _ = read_planetoid_raw(tmp_path, "citeseer")      # the small set reads
    assert x.shape == (507, 3)
    (tmp_path / "ind.citeseer.test.index").write_text("505\n30000000\n")
    with pytest.raises(DataError, match=r"ind.citeseer.test.index: test indices from 505 to "
                                        r"30000000 ask for a 29,999,496 × 3 test matrix"):
        read_planetoid_raw(tmp_path, "citeseer")
    assert 29_999_496 * 3 > MAX_ENTRIES
    _planetoid_files(tmp_path, "cora")
    shared = list(range(3000))
    (tmp_path / "ind.cora.graph").write_bytes(
        pickle.dumps(defaultdict(list, {i: shared for i in range(3000)}), protocol=4))
    assert (tmp_path / "ind.cora.graph").stat().st_size < 40_000
    with pytest.raises(DataError, match="lists 9,000,000 neighbours, more than a file of its"):
        read_planetoid_raw(tmp_path, "cora")


def test_a_planetoid_matrix_declaring_a_huge_shape_is_refused_before_densifying(tmp_path):
    """A 349-byte ``tx`` declaring a 1 × 2·10⁸ sparse matrix was made dense (1.2 GB)
    before the shapes were compared; its shape is checked first."""
    from graphvae.datasets.planetoid import MAX_ENTRIES
    _planetoid_files(tmp_path)
    read_planetoid_raw(tmp_path, "cora")                 # the small set reads
    (tmp_path / "ind.cora.tx").write_bytes(
        pickle.dumps(sp.csr_matrix((1, MAX_ENTRIES + 1), dtype=np.float32), protocol=4))
    assert (tmp_path / "ind.cora.tx").stat().st_size < 1000
    with pytest.raises(DataError, match=f"ind.cora.tx: a 1 × {MAX_ENTRIES + 1:,} matrix"):
        read_planetoid_raw(tmp_path, "cora")


def test_planetoid_matrices_and_lists_are_held_to_their_kinds(tmp_path):
    """Each file of the small set replaced by what the reader refuses, by name: a sparse
    matrix whose column index is past its width (made dense unchecked, it wrote out of
    bounds: a segmentation fault), complex features (their imaginary part would be
    dropped), labels given sparse (they are dense in every release), a boolean neighbour id
    (True is not node 1), a neighbour or a node numbered 507 of nodes 0..506; feature
    widths or row counts that disagree, test indices repeated, missing, fewer than the test
    rows or past the last node. Self-loops in the lists are dropped."""
    _planetoid_files(tmp_path)

    def refused(suffix, obj, message):
        good = (tmp_path / f"ind.cora.{suffix}").read_bytes()
        (tmp_path / f"ind.cora.{suffix}").write_bytes(pickle.dumps(obj, protocol=4))
        with pytest.raises(DataError, match=message):
            read_planetoid_raw(tmp_path, "cora")
        (tmp_path / f"ind.cora.{suffix}").write_bytes(good)

    bad = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    bad.indices[-1] = 7
    refused("tx", bad, r"ind\.cora\.tx: not a valid sparse matrix \(ValueError: ")
    refused("ally", np.eye(2, dtype=np.complex64)[np.arange(505) % 2],
            r"ind\.cora\.ally: expected a 2-D numeric matrix, got ndarray of shape \(505, 2\)")
    refused("ally", sp.csr_matrix(np.eye(2)[np.arange(505) % 2]),
            r"ind\.cora\.ally: expected a 2-D numeric matrix, got csr_matrix")
    refused("graph", defaultdict(list, {i: [True] for i in range(507)}),
            r"ind\.cora\.graph: node 0: neighbour ids must be integers in 0\.\.506")
    refused("graph", defaultdict(list, {i: [(i + 1) % 508] for i in range(507)}),   # 506: [507]
            r"ind\.cora\.graph: node 506: neighbour ids must be integers in 0\.\.506")
    refused("graph", defaultdict(list, {i + 1: [i] for i in range(507)}),         # 507: [506]
            r"ind\.cora\.graph: node 507: neighbour ids must be integers in 0\.\.506")
    assert read_planetoid_raw(tmp_path, "cora")[0].shape == (507, 3)   # restored
    refused("tx", sp.csr_matrix(np.ones((2, 4), dtype=np.float32)),
            r"ind\.cora\.\* matrices disagree in shape: tx \(2, 4\), ty \(2, 2\), allx "
            r"\(505, 3\)")
    refused("tx", sp.csr_matrix(np.ones((3, 3), dtype=np.float32)),
            r"ind\.cora\.\* matrices disagree in shape: tx \(3, 3\), ty \(2, 2\)")
    refused("ty", np.eye(2)[[0, 1, 0]], r"matrices disagree in shape: tx \(2, 3\), ty \(3, 2\)")

    def index_refused(text, message):
        (tmp_path / "ind.cora.test.index").write_text(text)
        with pytest.raises(DataError, match=message):
            read_planetoid_raw(tmp_path, "cora")

    index_refused("506\n506\n", r"ind\.cora\.test\.index: test indices must be distinct "
                                 r"non-negative integers")
    index_refused("", r"ind\.cora\.test\.index: test indices must be distinct")
    index_refused("506\n", r"ind\.cora\.tx: 2 rows for 1 test indices")
    index_refused("507\n505\n", r"ind\.cora\.test\.index: index 507 is beyond the 507 nodes")
    # 2^63 = 9223372036854775808 is one past int64; found by the fuzz (seed 7)
    index_refused("506\n9223372036854775808\n",
                  r"ind\.cora\.test\.index: test index 9223372036854775808 does not fit in "
                  r"64 bits")
    index_refused("-9223372036854775809\n", r"test index -9223372036854775809 does not fit")
    # a word, a byte that is not ASCII, and 5,000 digits (past int()'s 4,300) were named
    # only as "(ValueError)" or "(UnicodeDecodeError)"
    index_refused("506\n505\n5o5\n", r"ind\.cora\.test\.index: line 3: expected one "
                                     r"integer node index per line, found '5o5'$")
    (tmp_path / "ind.cora.test.index").write_bytes(b"506\n50\xff\n")
    with pytest.raises(DataError, match=r"ind\.cora\.test\.index: expected one integer "
                                        r"node index per line, found byte 0xff, not ASCII "
                                        r"text, at offset 6$"):
        read_planetoid_raw(tmp_path, "cora")
    index_refused("506\n" + "5" * 5000 + "\n", r"ind\.cora\.test\.index: line 2: a test "
                                               r"index of 5,000 digits does not fit in 64 "
                                               r"bits$")
    index_refused("506\n505\n--" + "5" * 50 + "\n", r"line 3: expected one integer node "
                                                    r"index per line, found '--555")
    (tmp_path / "ind.cora.test.index").write_text("506\n505\n")
    loops = defaultdict(list, {i: [i, (i + 1) % 507] for i in range(507)})
    (tmp_path / "ind.cora.graph").write_bytes(pickle.dumps(loops, protocol=4))
    edges = read_planetoid_raw(tmp_path, "cora")[2]
    assert sorted(map(tuple, edges.t().tolist())) == [(i, (i + 1) % 507) for i in range(507)]
    # CiteSeer spreads its test rows over the span of its indices: one per index still
    _planetoid_files(tmp_path, "citeseer")
    (tmp_path / "ind.citeseer.tx").write_bytes(pickle.dumps(sp.csr_matrix(np.ones((3, 3))),
                                                                protocol=4))
    (tmp_path / "ind.citeseer.ty").write_bytes(pickle.dumps(np.eye(2)[[0, 1, 0]], protocol=4))
    with pytest.raises(DataError, match="3 test rows for 2 test indices"):
        read_planetoid_raw(tmp_path, "citeseer")


def test_planetoid_neighbour_lists_may_hold_four_per_byte(tmp_path):
    """200 nodes sharing one list of 200 ids through the pickle memo are 40,000 neighbours
    from about 1.3 kB: between 4 and 40 per byte (plus 10,000), refused by the budget of
    4 a byte."""
    _planetoid_files(tmp_path)
    path = tmp_path / "ind.cora.graph"
    shared = list(range(200))
    path.write_bytes(pickle.dumps(defaultdict(list, {i: shared for i in range(200)}),
                                  protocol=4))
    assert 4 * path.stat().st_size + 10_000 < 40_000 < 40 * path.stat().st_size + 10_000
    with pytest.raises(DataError, match="lists 40,000 neighbours, more than a file of its"):
        read_planetoid_raw(tmp_path, "cora")


def test_planetoid_reader_assembles_like_pyg(tmp_path):
    from torch_geometric.io import read_planetoid_data

    _planetoid_files(tmp_path)
    x, y, ei = read_planetoid_raw(tmp_path, "cora")
    ref = read_planetoid_data(str(tmp_path), "cora")
    assert torch.equal(x, ref.x) and torch.equal(y, ref.y)
    assert sorted(map(tuple, ei.t().tolist())) == sorted(map(tuple, ref.edge_index.t().tolist()))
    # row i of tx belongs to the i-th listed test index (x[test] = x[sorted(test)]): node
    # 506, listed first, holds tx's first row and node 505 its second
    assert x[506].tolist() == [10_000.0, 10_001.0, 10_002.0]
    assert x[505].tolist() == [10_003.0, 10_004.0, 10_005.0]


@pytest.mark.skipif(not (DATA_ROOT / "Planetoid").is_dir(), reason="needs ../shared/data")
@pytest.mark.parametrize("key, name", [("cora", "Cora"), ("citeseer", "CiteSeer"),
                                       ("pubmed", "PubMed")])
def test_planetoid_reader_equals_pyg_on_the_real_files(key, name):
    from torch_geometric.io import read_planetoid_data

    from graphvae.graph import to_simple_undirected
    raw = DATA_ROOT / "Planetoid" / name / "raw"
    x, y, ei = read_planetoid_raw(raw, key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = read_planetoid_data(str(raw), key)
    assert torch.equal(x, ref.x) and torch.equal(y, ref.y)
    n = x.size(0)
    assert torch.equal(to_simple_undirected(ei, n), to_simple_undirected(ref.edge_index, n))


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"model\.pt: cannot read the checkpoint: the file is "
                                        r"empty$"):
        load_model(path)
    torch.save({"task": "linkpred"}, path)
    with pytest.raises(DataError, match=r"model\.pt: the checkpoint lacks 'config'"):
        load_model(path)
    path.write_bytes(pickle.dumps({"task": "linkpred"}, protocol=4))
    with pytest.raises(DataError, match=r"refused: .*\(Unsupported operand 149\)") as info:
        load_model(path)
    assert "\n" not in str(info.value)
    torch.save({"model": {"weight": torch.zeros(2)}}, path)         # unhashable, not a name
    with pytest.raises(DataError, match=r"not a graphvae model checkpoint \(its model is a "
                                        r"dict\)"):
        load_model(path)


def test_a_training_state_given_as_a_model_is_named(tmp_path):
    from graphvae.tasks.generation import GenerationConfig, run_generation
    state = tmp_path / "train.pt"
    run_generation(GenerationConfig(epochs=1, eval_every=1), progress=False, state=state)
    with pytest.raises(DataError, match=r"train\.pt: a training state .* give the run's "
                                        r"model\.pt"):
        load_model(state)


def test_checkpoint_that_runs_code_is_refused_in_one_line(tmp_path):
    ran = tmp_path / "ran"
    path = tmp_path / "model.pt"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {ran}",))

    torch.save({"task": "linkpred", "x": Evil()}, path)
    with pytest.raises(DataError, match=r"model\.pt: refused: the file holds more than "
                                        r"tensors.*GLOBAL posix\.system") as info:
        load_model(path)
    assert "\n" not in str(info.value) and not ran.exists()


def _linkpred_checkpoint(tmp_path: Path, **changes) -> Path:
    from graphvae.tasks.link_prediction import PRESETS, build_linkpred_model
    cfg = PRESETS["vgae"].replace(hidden=(4,), latent=2)
    model = build_linkpred_model(cfg, 3)
    ck = {"task": "linkpred", "config": cfg.to_dict(), "in_channels": 3,
          "state_dict": model.state_dict()}
    ck.update(changes)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "model.pt"
    torch.save(ck, path)
    return path


def test_tensors_outside_the_weights_are_held_to_their_size_too(tmp_path):
    """Only the state_dict's tensors were checked for repeated-value views: an old-format
    model file (no init) whose config gave hidden as torch.zeros(1).expand(3e6) took
    2.1 GB from 1.9 KB, as tuple() made a tensor of each value before the layer count was
    compared. Every tensor of a loaded file is now checked, and hidden must be integers."""
    from graphvae.tasks.link_prediction import PRESETS
    cfg = PRESETS["vgae"].replace(hidden=(4,), latent=2).to_dict()
    path = _linkpred_checkpoint(tmp_path, config={**cfg, "hidden": torch.zeros(1).expand(
        3_000_000)})
    assert path.stat().st_size < 10_000
    with pytest.raises(DataError, match=r"model.pt: the file's tensors hold fewer values than "
                                        r"their shapes: config.hidden has shape \(3000000,\) "
                                        r"on a storage of 4 bytes"):
        load_model(path)
    path = _linkpred_checkpoint(tmp_path, config={**cfg, "hidden": torch.tensor([4])})
    with pytest.raises(DataError, match="hidden must be a list of at most 1,000 integers"):
        load_model(path)


def test_an_older_model_files_settings_of_the_wrong_type_are_named(tmp_path):
    """A model file of the previous format (no init) is rebuilt from its config's fields;
    a list for the decoder's name failed as "TypeError: unhashable type: 'list'", and a
    config that is not a dict as "'list' object is not subscriptable"."""
    from graphvae.tasks.link_prediction import PRESETS
    cfg = PRESETS["vgae"].replace(hidden=(4,), latent=2).to_dict()
    assert isinstance(load_model(_linkpred_checkpoint(tmp_path))[0], torch.nn.Module)
    for change, message in (({"decoder": [1]}, "config decoder is [1], not str"),
                            ({"latent": True}, "config latent is True, not int"),
                            ({"negatives": "1"}, "config negatives is '1', not float"),
                            ({"self_loops": 1}, "config self_loops is 1, not bool")):
        path = _linkpred_checkpoint(tmp_path, config={**cfg, **change})
        with pytest.raises(DataError) as err:
            load_model(path)
        assert str(err.value) == f"{path}: the checkpoint's config is not usable: {message}"
    path = _linkpred_checkpoint(tmp_path, config=[1])
    with pytest.raises(DataError, match=r"model\.pt: the checkpoint's config is not usable: "
                                        r"it is \[1\], not a dict of settings$"):
        load_model(path)


def _torch_file_with_pickle(path: Path, pickled: bytes) -> Path:
    """A torch zip archive whose data.pkl is ``pickled`` (the other members as torch
    writes them)."""
    buf = io.BytesIO()
    torch.save({"a": 1}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, pickled if info.filename.endswith("/data.pkl")
                          else data)
    return path


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_not_read_as_a_pickle():
    """A device has size 0, under every size cap: reading /dev/zero never ends (and a FIFO
    blocks forever). Anything but a regular file is refused before the read; /dev/null
    stands for them here, since it ends the test quickly where the check is missing."""
    from graphvae.safe_pickle import restricted_load
    with pytest.raises(DataError, match="/dev/null: not a regular file"):
        restricted_load("/dev/null", "networkx")


@pytest.mark.parametrize("module", ["builtins", "__builtin__"])
def test_torch_files_that_make_bytes_from_nothing_are_refused_before_loading(tmp_path,
                                                                             module):
    """torch's weights-only reader allows bytearray(n): 833 bytes of file asked for 2.7 GB
    (bytearray(2.5e9) as a training state's history). The pickle is scanned first, and
    protocol 4's global opcode, whose names the scan cannot see, is refused too (torch.save
    writes protocol 2). A legacy (pre-zip) torch file still loads."""
    from graphvae.torch_files import load_torch
    # (torch's reader maps Python 2's __builtin__ to builtins, as pickle does)
    bomb = (b"\x80\x02}(X\x07\x00\x00\x00historyc" + module.encode() + b"\nbytearray\n\x8a\x08"
            + struct.pack("<q", 10**12) + b"\x85Ru.")
    path = _torch_file_with_pickle(tmp_path / "b.pt", bomb)
    with pytest.raises(DataError, match="b.pt: refused: the file calls bytearray"):
        load_torch(path, "checkpoint", "not a checkpoint")
    # the same call by protocol 0's INST opcode (module and name in its argument too)
    inst = (b"\x80\x02}(X\x07\x00\x00\x00history(\x8a\x08" + struct.pack("<q", 10**12)
            + b"i" + module.encode() + b"\nbytearray\nu.")
    with pytest.raises(DataError, match="i.pt: refused: the file calls bytearray"):
        load_torch(_torch_file_with_pickle(tmp_path / "i.pt", inst), "checkpoint", "no")
    from conftest import run_cli
    rc, _, err = run_cli(["check-invariance", "--checkpoint", str(path)])
    assert rc == 2 and "refused: the file calls bytearray" in err, err
    stacked = b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04list\x93)R."
    path = _torch_file_with_pickle(tmp_path / "s.pt", stacked)
    with pytest.raises(DataError, match="s.pt: refused: the file is pickled with protocol 4"):
        load_torch(path, "checkpoint", "not a checkpoint")
    torch.save({"x": torch.ones(2)}, tmp_path / "legacy.pt",
               _use_new_zipfile_serialization=False)
    assert torch.equal(load_torch(tmp_path / "legacy.pt", "checkpoint", "no")["x"],
                       torch.ones(2))
    # a legacy file is five pickles (magic, version, system info, the object, storage
    # keys): the bomb as its fourth is scanned too
    legacy = (pickle.dumps(0x1950a86a20f9469cfc6c, 2) + pickle.dumps(1001, 2)
              + pickle.dumps({"little_endian": True, "type_sizes": {},
                              "protocol_version": 1001}, 2) + bomb + pickle.dumps([], 2))
    (tmp_path / "legacy_bomb.pt").write_bytes(legacy)
    with pytest.raises(DataError, match="legacy_bomb.pt: refused: the file calls bytearray"):
        load_torch(tmp_path / "legacy_bomb.pt", "checkpoint", "not a checkpoint")


def test_one_tensor_that_claims_more_than_its_storage_is_named():
    """Three values read from a storage of two (a stride-0 view, 12 bytes claimed on 8):
    refused naming the tensor, its shape and its storage; the view of two is fine."""
    from graphvae.weight_checks import check_tensor_storage
    base = torch.ones(2)
    check_tensor_storage({"h": base.as_strided((2,), (0,))}, None)
    with pytest.raises(DataError, match=r"hold fewer values than their shapes: h has shape "
                                        r"\(3,\) on a storage of 8 bytes"):
        check_tensor_storage({"h": base.as_strided((3,), (0,))}, None)


def test_the_tensor_walk_names_its_children_only_when_it_reports(tmp_path):
    """The walk over a loaded file built the name of every child before it skipped those
    already seen: 100 nested dicts under one memoised 10 kB key named each of 2,500
    children with 1 MB (2.7 GB from a 17 kB file)."""
    import tracemalloc

    from graphvae.weight_checks import check_tensor_storage
    key = "k" * 10_000
    root = x = {}
    for _ in range(100):
        x[key] = {}
        x = x[key]
    x[key] = [[]] * 250 + [torch.zeros(1).expand(5)]
    tracemalloc.start()
    with pytest.raises(DataError, match=r"hold fewer values than their shapes: config\.k{50}"):
        check_tensor_storage({"config": root}, tmp_path / "f.pt")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20_000_000, peak             # the old walk: 250 names of 1 MB
    small = {"a": {"b": [[], (torch.ones(2), torch.zeros(1).expand(3))]}}
    with pytest.raises(DataError, match=r"shapes: a\.b\[1\]\[1\] has shape \(3,\) on a "
                                        r"storage of 4 bytes"):
        check_tensor_storage(small, tmp_path / "f.pt")
    # in a set, or as a dict key, a tensor passed unseen
    for hidden, where in (({"s": {torch.zeros(1).expand(4)}}, r"s\[0\]"),
                          ({"k": {torch.zeros(1).expand(4): 1}}, r"k \(key 0\)")):
        with pytest.raises(DataError, match=rf"shapes: {where} has shape \(4,\)"):
            check_tensor_storage(hidden, tmp_path / "f.pt")


def test_checkpoint_of_the_wrong_size_or_without_weights(tmp_path):
    load_model(_linkpred_checkpoint(tmp_path))              # the unchanged one loads
    with pytest.raises(DataError, match="no state_dict of tensors"):
        load_model(_linkpred_checkpoint(tmp_path, state_dict=None))
    with pytest.raises(DataError, match=r"the model needs \(4, 5\)|has shape"):
        load_model(_linkpred_checkpoint(tmp_path, in_channels=5))
    with pytest.raises(DataError, match="lacks 'in_channels'"):
        path = _linkpred_checkpoint(tmp_path)
        ck = torch.load(path, weights_only=True)
        del ck["in_channels"]
        torch.save(ck, path)
        load_model(path)


def test_weights_of_another_kind_are_refused_not_cast(tmp_path):
    """load_state_dict cast complex weights to real (dropping the imaginary part) and
    integer or boolean weights to floats, silently; a sparse weight failed inside torch and
    was reported as a config error. Real floating point of any width still loads (cast to
    the model's float32, as a model saved after .double() is)."""
    from graphvae.tasks.link_prediction import PRESETS, build_linkpred_model
    cfg = PRESETS["vgae"].replace(hidden=(4,), latent=2)
    state = build_linkpred_model(cfg, 3).state_dict()
    key = next(k for k, v in state.items() if v.dim() == 2)
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        changed = dict(state, **{key: state[key].to(dtype)})
        model, _, _ = load_model(_linkpred_checkpoint(tmp_path, state_dict=changed))
        assert torch.equal(model.state_dict()[key], state[key].to(dtype).float())
    for dtype, name in ((torch.complex64, "complex64"), (torch.int64, "int64"),
                        (torch.bool, "bool")):
        changed = dict(state, **{key: state[key].to(dtype)})
        with pytest.raises(DataError, match=f"model.pt: the weights do not fit the model: "
                                            f"{re.escape(key)} is {name}, the model needs "
                                            f"float32"):
            load_model(_linkpred_checkpoint(tmp_path, state_dict=changed))
    changed = dict(state, **{key: state[key].to_sparse()})
    with pytest.raises(DataError, match=f"model.pt: the file's tensors are not all dense: "
                                        f"state_dict.{re.escape(key)} is torch.sparse_coo"):
        load_model(_linkpred_checkpoint(tmp_path, state_dict=changed))


def test_only_floating_weights_are_cast_and_other_kinds_must_match_exactly():
    """load_state_dict casts, so a model saved after .half() or .double() loads; integer
    and boolean weights must be of the model's own dtype (an int32 or bool count read into
    an int64 buffer was taken as a number silently)."""
    from graphvae.weight_checks import castable, check_dtypes
    assert castable(torch.float16, torch.float32) and castable(torch.float64, torch.float32)
    assert castable(torch.int64, torch.int64) and castable(torch.bool, torch.bool)
    for have, want in ((torch.int32, torch.int64), (torch.bool, torch.int64),
                       (torch.int64, torch.bool), (torch.int64, torch.float32),
                       (torch.complex64, torch.float32)):
        assert not castable(have, want), (have, want)
    with pytest.raises(DataError, match="count is int32, the model needs int64"):
        check_dtypes({"count": torch.zeros(1, dtype=torch.int32)},
                     {"count": torch.zeros(1, dtype=torch.int64)}, "m.pt")


def test_a_huge_config_is_refused_without_allocating(tmp_path):
    """A saved config of two layers of the widest width allowed would ask for 17 GB
    (65,536² float32 weights) before the weights are compared; the shapes are compared on
    the meta device first, so the refusal allocates nothing (checked under an address-space
    limit 2 GB above what the process maps now)."""
    import resource

    from graphvae.config import MAX_WIDTH
    from graphvae.tasks.link_prediction import PRESETS
    cfg = PRESETS["vgae"].to_dict()
    cfg.update(hidden=[MAX_WIDTH, MAX_WIDTH], latent=2)
    path = _linkpred_checkpoint(tmp_path / "a", config=cfg)
    mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + (2 << 30), hard))
    try:
        with pytest.raises(DataError, match="do not fit the saved config"):
            load_model(path)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _graphvae_checkpoint(path, n, weights):
    from graphvae.models import GraphVAE
    from graphvae.tasks.generation import GenerationConfig
    with torch.device("meta"):
        m = GraphVAE(3, n, latent_channels=2, hidden_channels=[4], decoder_hidden=[4, 256])
    sd = {k: weights(k, v) for k, v in m.state_dict().items()}
    torch.save({"model": "graphvae", "init": m.init_kwargs(), "state_dict": sd,
                "task": "generation", "config": GenerationConfig(model="graphvae").to_dict()},
               path)
    return path


@pytest.mark.slow  # 6 s; the full suite (CI) runs it
def test_weights_that_repeat_one_value_cannot_ask_for_a_big_model(tmp_path):
    """A few-KB file of stride-0 views (one float each, any shape) or of views that all
    share one storage used to pass the shape check and then have the model built at the
    size its init asks for (1.5 GB at 1,500 slots, 0.5 GB at 1,000; GraphVAE now takes at
    most 1,024). Refused before building: the weights must hold the bytes their shapes
    claim. Real weights of the same model load."""
    n = 1000
    stride0 = _graphvae_checkpoint(tmp_path / "a.pt", n,
                                   lambda k, v: torch.zeros(1).expand(v.shape))
    assert stride0.stat().st_size < 20_000
    with pytest.raises(DataError, match=r"hold fewer values than their shapes: \S+ has shape"):
        load_model(stride0)
    big = torch.zeros(max(v.numel() for v in _graphvae_state(n).values()))
    shared = _graphvae_checkpoint(tmp_path / "b.pt", n,
                                  lambda k, v: big[:v.numel()].view(v.shape))
    with pytest.raises(DataError, match="bytes of tensors on .* bytes of storage"):
        load_model(shared)
    real = _graphvae_checkpoint(tmp_path / "c.pt", 6, lambda k, v: torch.randn(v.shape))
    assert load_model(real)[0].max_nodes == 6


def _graphvae_state(n):
    from graphvae.models import GraphVAE
    with torch.device("meta"):
        return GraphVAE(3, n, latent_channels=2, hidden_channels=[4],
                        decoder_hidden=[4, 256]).state_dict()


def test_a_saved_init_of_many_layers_is_refused_before_building(tmp_path):
    """100,000 tiny layers in a 200 KB file were built one module at a time (390 MB)."""
    from graphvae.models.checkpoints import MAX_LAYERS
    path = tmp_path / "deep.pt"
    real = _graphvae_checkpoint(tmp_path / "c.pt", 6, lambda k, v: torch.randn(v.shape))
    ck = torch.load(real, weights_only=True)
    ck["init"]["hidden_channels"] = [1] * (MAX_LAYERS + 1)
    torch.save(ck, path)
    with pytest.raises(DataError, match=f"hidden_channels asks for {MAX_LAYERS + 1:,} layers"):
        load_model(path)


def _recompressed(src, dst, member_suffix):
    """A copy of the zip ``src`` whose members ending in ``member_suffix`` are deflated."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as o:
        for name in z.namelist():
            o.writestr(name, z.read(name), compress_type=zipfile.ZIP_DEFLATED
                       if name.endswith(member_suffix) else zipfile.ZIP_STORED)
    return dst


def test_compressed_members_are_refused_before_they_inflate(tmp_path):
    """torch.save and numpy.savez never compress; a deflated member of zeros inflates about
    a thousandfold (a 2 MB checkpoint read 2 GB). Model files, training states, vector
    checkpoints and planted-parameter files with a compressed member are refused before
    reading; the same files stored as written load."""
    from conftest import ToyBound

    from graphvae.datasets.sbm import PlantedSBM
    from graphvae.training import fit
    from graphvae.vector import build_vector_model, load_vector_model
    from graphvae.vector.train import save_checkpoint
    model_pt = _graphvae_checkpoint(tmp_path / "m.pt", 6, lambda k, v: torch.randn(v.shape))
    load_model(model_pt)
    with pytest.raises(DataError, match="holds a compressed member .*never compress"):
        load_model(_recompressed(model_pt, tmp_path / "m2.pt", "data/0"))

    state = tmp_path / "state.pt"
    toy = ToyBound(2)
    fit(toy, [torch.ones(2)], torch.optim.SGD(toy.parameters(), lr=0.1), epochs=1,
        checkpoint=state, progress=False)
    _recompressed(state, tmp_path / "s2.pt", "data/0")
    with pytest.raises(DataError, match="holds a compressed member"):
        fit(toy, [torch.ones(2)], torch.optim.SGD(toy.parameters(), lr=0.1), epochs=2,
            checkpoint=tmp_path / "s2.pt", resume=True, progress=False)

    vec = tmp_path / "v.pt"
    save_checkpoint(build_vector_model("vae", 4, latent_dim=2, hidden=(8,)), vec)
    assert load_vector_model(vec).config.in_dim == 4
    with pytest.raises(DataError, match="holds a compressed member"):
        load_vector_model(_recompressed(vec, tmp_path / "v2.pt", "data/0"))

    planted = tmp_path / "p.planted.npz"
    PlantedSBM(np.array([0, 1]), np.ones(2), np.eye(2)).save(planted)
    assert PlantedSBM.load(planted).blocks.tolist() == [0, 1]
    with pytest.raises(DataError, match="holds a compressed member \\(omega.npy\\)"):
        PlantedSBM.load(_recompressed(planted, tmp_path / "p2.planted.npz", "omega.npy"))


def test_zip_members_that_claim_more_bytes_than_the_file_are_refused(tmp_path):
    """A stored member of 100 bytes whose central directory claims one byte more than the
    whole file (a claim zipfile believes until it reads): refused by the sum of the
    claims, naming both numbers; the file as written passes."""
    from graphvae.torch_files import check_zip_stored
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.npy", bytes(100))
    assert check_zip_stored(path) == ["a.npy"]
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02") + 24           # the central directory's uncompressed size
    data[at:at + 4] = (len(data) + 1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"its members claim {len(data) + 1:,} bytes, more "
                                        f"than the file's {len(data):,}"):
        check_zip_stored(path)


def test_a_zip_member_said_to_start_before_the_file_is_refused_as_unreadable(tmp_path):
    """The end record's central-directory offset raised by 10 (found by fuzzing the new
    training-state reader): zipfile reads the directory where it lies, but places the
    first member at byte 0 − 10, and a seek there failed as "cannot read the file
    (OSError: [Errno 22] Invalid argument)", the words of an I/O failure. A member placed
    at the file's end (its central-directory entry's offset) is refused the same way."""
    from graphvae.torch_files import check_zip_stored
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.npy", bytes(100))
    data = bytearray(path.read_bytes())
    at = data.rindex(b"PK\x05\x06") + 16          # the end record's directory offset
    offset = int.from_bytes(data[at:at + 4], "little")
    data[at:at + 4] = (offset + 10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"not a readable zip archive \\(its member 'a.npy' "
                                        f"starts at byte -10, outside the file's "
                                        f"{len(data):,}\\)$"):
        check_zip_stored(path)
    data[at:at + 4] = offset.to_bytes(4, "little")          # as written, then the
    at = data.index(b"PK\x01\x02") + 42              # member's own offset at the end
    data[at:at + 4] = len(data).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"its member 'a.npy' starts at byte {len(data):,}, "
                                        f"outside the file's {len(data):,}\\)$"):
        check_zip_stored(path)


def test_an_npy_member_that_declares_fewer_bytes_than_it_holds_is_refused(tmp_path):
    """numpy.save's ten float64 whose header is rewritten to declare nine (the same header
    length), stored in a zip archive: 72 bytes declared, 80 held, refused as damaged (a
    declared size above the held one is checked elsewhere)."""
    from graphvae.torch_files import check_zip_stored
    buf = io.BytesIO()
    np.save(buf, np.zeros(10))
    npy = buf.getvalue()
    assert npy.count(b"'shape': (10,), }") == 1
    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:   # its own CRC
        zf.writestr("a.npy", npy.replace(b"'shape': (10,), }", b"'shape': (9,), } "))
    with pytest.raises(DataError, match=r"its member 'a.npy' declares \(9,\) of float64 "
                                        r"\(72 bytes\) and holds 80"):
        check_zip_stored(path)


def test_an_npy_header_with_an_unclosed_bracket_is_refused_as_damaged(tmp_path):
    """A fuzzed planted file (seen among the fuzz's refusal messages): a version-1.0
    header with a stray '(' after its dict went to numpy's header filter, whose tokenizer
    raised TokenError ("EOF in multi-line statement"), an error no reader catches; it was
    refused only by the zip check's last resort, as "not a readable zip archive". The
    member is named as damaged now, and the planted reader says the same."""
    from graphvae.datasets.planted import PlantedSBM
    from graphvae.torch_files import check_zip_stored
    buf = io.BytesIO()
    np.save(buf, np.zeros(5))
    npy = buf.getvalue()
    assert npy.count(b"}      ") == 1                    # the header's padding
    path = tmp_path / "g.planted.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("blocks.npy", npy.replace(b"}      ", b"}  (   ", 1))
    message = (r"g\.planted\.npz: damaged: its member 'blocks\.npy' has a header numpy "
               r"cannot parse \(TokenError: ")
    with pytest.raises(DataError, match=message):
        check_zip_stored(path)
    with pytest.raises(DataError, match=message):
        PlantedSBM.load(path)


def test_zip_checks_leave_object_arrays_to_their_reader_and_see_an_empty_archive(tmp_path):
    """An .npz of pickled objects is not "damaged" by its sizes (its bytes are a pickle):
    the check passes it on, and numpy's reader, without pickles, refuses it; an archive
    with no members is a zip archive with no names, not "not a zip archive"."""
    from graphvae.datasets.sbm import PlantedSBM
    from graphvae.torch_files import check_zip_stored
    objects = tmp_path / "o.planted.npz"
    np.savez(objects, blocks=np.array([{}, 1], dtype=object), theta=np.ones(2),
             omega=np.eye(2))
    assert check_zip_stored(objects) == ["blocks.npy", "theta.npy", "omega.npy"]
    with pytest.raises(DataError, match="Object arrays cannot be loaded"):
        PlantedSBM.load(objects)
    empty = tmp_path / "e.zip"
    zipfile.ZipFile(empty, "w").close()
    assert empty.read_bytes()[:4] == b"PK\x05\x06" and check_zip_stored(empty) == []


def test_a_zip_that_zipfile_cannot_read_is_refused_not_passed_on(tmp_path):
    """A checkpoint whose central directory asks for zip version 12.8 made the stored-
    members check raise NotImplementedError (found by the reader fuzz, seed 35); a file
    that starts as a zip but cannot be checked is refused in one line."""
    good = _graphvae_checkpoint(tmp_path / "m.pt", 6, lambda k, v: torch.randn(v.shape))
    raw = bytearray(good.read_bytes())
    at = raw.index(b"PK\x01\x02")                      # the first central-directory entry
    raw[at + 6:at + 8] = (128).to_bytes(2, "little")   # version needed to extract: 12.8
    bad = tmp_path / "v.pt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"v.pt: not a readable zip archive \(NotImplemented"):
        load_model(bad)


def test_vector_checkpoints_are_checked_before_the_model_is_built(tmp_path):
    """load_vector_model used to build the model its config asked for and then fail in
    load_state_dict with torch's multi-line error; now one line naming the file."""
    from graphvae.vector import build_vector_model, load_vector_model
    from graphvae.vector.train import save_checkpoint
    vec = tmp_path / "v.pt"
    save_checkpoint(build_vector_model("vae", 4, latent_dim=2, hidden=(8,)), vec)
    ck = torch.load(vec, weights_only=True)
    ck["config"]["hidden"] = [9]
    torch.save(ck, tmp_path / "w.pt")
    with pytest.raises(DataError, match="w.pt: the weights do not fit the saved config"):
        load_vector_model(tmp_path / "w.pt")
    ck = torch.load(vec, weights_only=True)
    ck["state_dict"] = {k: torch.zeros(1).expand(v.shape) for k, v in ck["state_dict"].items()}
    torch.save(ck, tmp_path / "h.pt")
    with pytest.raises(DataError, match="hold fewer values than their shapes"):
        load_vector_model(tmp_path / "h.pt")
    ck = torch.load(vec, weights_only=True)      # cast silently, as the graph models' were
    key = next(iter(ck["state_dict"]))
    ck["state_dict"][key] = ck["state_dict"][key].cfloat()
    torch.save(ck, tmp_path / "c.pt")
    with pytest.raises(DataError, match=f"c.pt: the weights do not fit the model: "
                                        f"{re.escape(key)} is complex64, the model needs "
                                        f"float32"):
        load_vector_model(tmp_path / "c.pt")
    ck["state_dict"][key] = ck["state_dict"][key].real.to_sparse()
    torch.save(ck, tmp_path / "s.pt")
    with pytest.raises(DataError, match="s.pt: the file's tensors are not all dense"):
        load_vector_model(tmp_path / "s.pt")


@pytest.mark.slow  # 4 s; the fast suite keeps the reader fuzz (graph6 among them)
def test_graph6_sizes_are_read_before_the_graphs_are_built(tmp_path, monkeypatch):
    """A 2 MB graph6 line is a complete graph of 5,000 nodes (2.8 GB in networkx), and
    score checked its pair limit only after building every graph. The node count (header)
    and the edges (set bits) are now counted before a line is decoded."""
    import graphvae.datasets.graphgen as gg
    from graphvae.datasets.graphgen import write_graph6
    path = write_graph6([nx.empty_graph(2000), nx.path_graph(3)], tmp_path / "a.g6")
    assert [g.number_of_nodes() for g in read_graph6(path)] == [2000, 3]
    # (the header forms: test_graph6_sizes_are_read_from_every_header_form)

    def never(line):
        raise AssertionError("decoded a line that should have been refused")

    monkeypatch.setattr(gg.nx, "from_graph6_bytes", never)
    with pytest.raises(DataError, match=r"a.g6:1: the graphs up to here hold more than 1e\+06"):
        read_graph6(path, max_pairs=10**6)
    write_graph6([nx.complete_graph(6)], tmp_path / "k6.g6")
    monkeypatch.setattr(gg, "MAX_SET_SIZE", 22)          # K6: 2 + 6 nodes + 15 edges = 23
    with pytest.raises(DataError, match="k6.g6:1: the graphs up to here hold more than 22 "
                                        "nodes, edges and graphs"):
        read_graph6(tmp_path / "k6.g6")
    def empty_graph6(n):   # networkx takes 16 s to write 5001 nodes; the format by hand
        head = bytes([126] + [(n >> s) % 64 + 63 for s in (12, 6, 0)])
        return head + b"?" * -(-n * (n - 1) // 12) + b"\n"

    assert empty_graph6(70) == nx.to_graph6_bytes(nx.empty_graph(70), header=False)
    (tmp_path / "big.g6").write_bytes(empty_graph6(5001))
    with pytest.raises(DataError, match="big.g6:1: a graph of 5001 nodes; at most 5000"):
        read_graph6(tmp_path / "big.g6")


def test_many_small_graphs_are_counted_before_they_are_built(tmp_path, monkeypatch):
    """An empty graph is 2 bytes of graph6 (``?``) and 430 bytes as networkx objects, so a
    20 MB file of them asked for 4 GB; a pickle repeats one graph for 2 bytes a copy. Each
    graph counts 2 towards MAX_SET_SIZE, with its nodes and edges, before it is built."""
    import graphvae.datasets.graphgen as gg
    monkeypatch.setattr(gg, "MAX_SET_SIZE", 1000)
    built = []
    real = gg.nx.from_graph6_bytes
    monkeypatch.setattr(gg.nx, "from_graph6_bytes", lambda line: built.append(1) or real(line))
    (tmp_path / "e.g6").write_bytes(b"?\n" * 500)
    assert len(read_graph6(tmp_path / "e.g6")) == 500 and len(built) == 500   # 1000 exactly
    (tmp_path / "e.g6").write_bytes(b"?\n" * 5000)
    built.clear()
    with pytest.raises(DataError, match="e.g6:501: the graphs up to here hold more than 1,000"):
        read_graph6(tmp_path / "e.g6")
    assert len(built) == 500
    # a pickle of one graph repeated: P2 (2 + 2 nodes + 1 edge = 5) 200 times fits, 201 not
    real_simple = gg._simple              # builds one graph of a pickle
    monkeypatch.setattr(gg, "_simple", lambda *a: (real_simple(*a), built.append(1))[0])
    g = nx.path_graph(2)
    for copies, ok in ((200, True), (201, False), (100_000, False)):
        (tmp_path / "r.pkl").write_bytes(pickle.dumps([g] * copies, protocol=4))
        built.clear()
        if ok:
            assert len(load_graph_pickle(tmp_path / "r.pkl")) == copies
        else:
            with pytest.raises(DataError, match="more than 1,000 nodes, edges and graphs"):
                load_graph_pickle(tmp_path / "r.pkl")
        assert len(built) == min(copies, 200)


def test_pickled_graphs_are_rebuilt_without_their_attributes_or_stray_adjacency(tmp_path):
    """nx.Graph(g) copied every edge's attribute dict (one shared 100,000-key dict on 200
    edges: 2.3 GB from 0.5 MB), and took the nodes of the adjacency table while the count
    read the node table (1 node beside an adjacency of 3·10⁶: 2.5 GB). The graph is now
    built from the node table, without attributes; an adjacency that disagrees is refused."""
    shared = {i: None for i in range(1000)}
    g = nx.Graph()
    g.add_node(0)
    for v in range(1, 6):
        g.add_edge(0, v)
        g._adj[0][v] = g._adj[v][0] = shared
    (tmp_path / "a.pkl").write_bytes(pickle.dumps([g], protocol=2))
    (h,) = load_graph_pickle(tmp_path / "a.pkl")
    assert sorted(h.edges) == [(0, v) for v in range(1, 6)]
    assert all(d == {} for _, _, d in h.edges(data=True))
    stray = nx.Graph()
    stray._node[0] = {}
    stray._adj.update((i, {}) for i in range(100))
    (tmp_path / "s.pkl").write_bytes(pickle.dumps([stray], protocol=2))
    with pytest.raises(DataError, match=r"s.pkl: graph 0's node and adjacency tables "
                                        r"disagree \(1 nodes, adjacency of 100\)"):
        load_graph_pickle(tmp_path / "s.pkl")
    odd = nx.Graph([(0, 1)])
    odd._adj[0]["x"] = {}                                  # an edge to a node not listed
    odd._adj[1] = {0: {}}
    (tmp_path / "o.pkl").write_bytes(pickle.dumps([odd], protocol=2))
    with pytest.raises(DataError, match="o.pkl: graph 0 has an edge to 'x', which is not"):
        load_graph_pickle(tmp_path / "o.pkl")


@pytest.mark.parametrize("stem", ["ENZYMES", "grid", "community_small", "ego_small"])
def test_pickled_graphs_keep_the_adjacency_order_networkx_gave_them(stem):
    """Canonical orderings (BFS, DFS) follow the adjacency's order, so the graphs built
    without nx.Graph(g) must list every node's neighbours as it did: checked on the
    shipped pickles (ENZYMES holds subgraph views) against the old construction."""
    path = DATA_ROOT / "graphgen" / f"{stem}.pkl"
    if not path.is_file():
        pytest.skip("the shipped graph sets are not here")
    from graphvae.safe_pickle import restricted_load
    for g, h in zip(restricted_load(path, "networkx"), load_graph_pickle(path), strict=True):
        old = nx.convert_node_labels_to_integers(nx.Graph(g))
        old.remove_edges_from(list(nx.selfloop_edges(old)))
        assert list(h.nodes) == list(old.nodes)
        assert all(list(h.adj[v]) == list(old.adj[v]) for v in old)


def test_a_graph6_file_is_read_a_bounded_line_at_a_time(tmp_path, monkeypatch):
    """The file was read whole (and split, a second copy) before any line was checked; a
    line longer than the graph6 line of a 5,000-node graph is now refused when met, after
    reading at most that much of it."""
    import graphvae.datasets.graphgen as gg
    n = gg.MAX_NODES
    longest = 10 + 8 + -(-n * (n - 1) // 12) + 2
    assert gg._MAX_LINE == longest
    monkeypatch.setattr(gg, "_MAX_LINE", 40)
    (tmp_path / "l.g6").write_bytes(b"Bw\n" + b"?" * 100 + b"\n")
    with pytest.raises(DataError, match="l.g6:2: not graph6: a line longer than 40 bytes"):
        read_graph6(tmp_path / "l.g6")
    # K3 ("w": its three bits set), then 21 isolated nodes: a header and 35 bytes, 37 in all
    (tmp_path / "l.g6").write_bytes(b">>graph6<<Bw\r\n" + b"T" + b"?" * 35 + b"\n")
    k3, empty = read_graph6(tmp_path / "l.g6")
    assert sorted(k3.edges) == [(0, 1), (0, 2), (1, 2)]
    assert empty.number_of_nodes() == 21 and empty.number_of_edges() == 0
    # blank lines (and lines of spaces) are skipped, not the file's end; a bad line after
    # them is still named by its number
    (tmp_path / "b.g6").write_bytes(b"Bw\n\n  \nA_\n\nBw\n\n")
    assert [g.number_of_edges() for g in read_graph6(tmp_path / "b.g6")] == [3, 1, 3]
    (tmp_path / "b.g6").write_bytes(b"Bw\n\n\x00\n")
    with pytest.raises(DataError, match=r"b\.g6:3: not graph6"):
        read_graph6(tmp_path / "b.g6")


def test_graph6_counts_nodes_pairs_and_edges_before_building(tmp_path, monkeypatch):
    """Each line's counts, from its header and its set bits, before networkx builds it:
    a header of 5,001 nodes is refused by its size (the line need not be complete); node
    pairs are n² summed (K3 and P4 on 4 nodes: 9 + 16 = 25, so a cap of 24 stops line 2
    and 25 reads both); the set's size counts edges, the set bits after the size header (K3
    is 2 + 3 nodes + 3 edges = 8; a 63-node graph with one edge is 2 + 63 + 1 = 66, where
    its 4-byte header holds 12 set bits)."""
    from networkx.readwrite.graph6 import n_to_data

    import graphvae.datasets.graphgen as gg
    path = tmp_path / "g.g6"
    path.write_bytes(bytes(b + 63 for b in n_to_data(5001)) + b"???\n")
    with pytest.raises(DataError, match=r"g\.g6:1: a graph of 5001 nodes; at most 5000"):
        read_graph6(path)
    path.write_bytes(nx.to_graph6_bytes(nx.complete_graph(3), header=False)
                     + nx.to_graph6_bytes(nx.path_graph(4), header=False))
    assert len(read_graph6(path, max_pairs=25)) == 2
    with pytest.raises(DataError, match=r"g\.g6:2: the graphs up to here hold more than "
                                        r"2e\+01 node pairs"):
        read_graph6(path, max_pairs=24)
    path.write_bytes(nx.to_graph6_bytes(nx.complete_graph(3), header=False))
    monkeypatch.setattr(gg, "MAX_SET_SIZE", 8)
    assert read_graph6(path)[0].number_of_edges() == 3
    monkeypatch.setattr(gg, "MAX_SET_SIZE", 7)
    with pytest.raises(DataError, match=r"g\.g6:1: the graphs up to here hold more than 7 "):
        read_graph6(path)
    one = nx.empty_graph(63)
    one.add_edge(0, 62)
    path.write_bytes(nx.to_graph6_bytes(one, header=False))
    monkeypatch.setattr(gg, "MAX_SET_SIZE", 66)
    assert read_graph6(path)[0].number_of_edges() == 1
    monkeypatch.setattr(gg, "MAX_SET_SIZE", 65)
    with pytest.raises(DataError, match="more than 65 "):
        read_graph6(path)


def test_a_graph_set_prefers_its_graph6_file_and_an_empty_one_is_named(tmp_path):
    """``load_graphgen`` reads ``.g6`` where both files are there (a path here, a cycle in
    the pickle); a graph6 file of blank lines holds no graphs."""
    folder = tmp_path / "graphgen"
    folder.mkdir()
    (folder / "grid.pkl").write_bytes(pickle.dumps([nx.cycle_graph(4)]))
    (folder / "grid.g6").write_bytes(nx.to_graph6_bytes(nx.path_graph(4), header=False))
    assert [sorted(g.edges) for g in load_graphgen("grid", tmp_path)] == [[(0, 1), (1, 2),
                                                                          (2, 3)]]
    (folder / "grid.g6").write_bytes(b"\n  \n")
    with pytest.raises(DataError, match=r"grid\.g6: holds no graphs$"):
        load_graphgen("grid", tmp_path)


def test_graph6_reads_what_it_writes_and_names_bad_lines(tmp_path):
    from graphvae.datasets.graphgen import write_graph6
    graphs = [nx.cycle_graph(4), nx.complete_graph(3), nx.empty_graph(2)]
    write_graph6(graphs, tmp_path / "g.g6")
    back = read_graph6(tmp_path / "g.g6")
    assert [sorted(g.edges) for g in back] == [sorted(g.edges) for g in graphs]
    (tmp_path / "bad.g6").write_bytes(b"Cr\n\x00\x01\n")
    with pytest.raises(DataError, match=r"bad\.g6:2: not graph6"):
        read_graph6(tmp_path / "bad.g6")


def test_converted_graph_sets_equal_the_pickles(tmp_path):
    """``graphvae convert-graphs`` writes graph6 twins that load as the same graphs, node for
    node, and the loader prefers them."""
    root = tmp_path / "root"
    (root / "graphgen").mkdir(parents=True)
    graphs = [nx.relabel_nodes(nx.path_graph(4), {0: "a", 1: "b", 2: "c", 3: "d"}),
              nx.Graph([(5, 3), (3, 9), (9, 5), (7, 7)])]
    (root / "graphgen" / "grid.pkl").write_bytes(pickle.dumps(graphs))
    out = tmp_path / "converted"
    rc, printed, _ = run_cli(["convert-graphs", "--data-root", str(root), "--out", str(out)])
    assert rc == 0 and printed == f"{out / 'graphgen' / 'grid.g6'}\n"    # what it wrote
    from_pickle = load_graphgen("grid", root)
    from_g6 = load_graphgen("grid", out)
    assert (out / "graphgen" / "grid.g6").is_file()
    for a, b in zip(from_pickle, from_g6):
        assert list(a.nodes) == list(b.nodes) == list(range(a.number_of_nodes()))
        assert {frozenset(e) for e in a.edges} == {frozenset(e) for e in b.edges}
    assert [sorted(map(sorted, g.edges)) for g in from_g6] == [[[0, 1], [1, 2], [2, 3]],
                                                              [[0, 1], [0, 2], [1, 2]]]


def test_convert_graphs_writes_nothing_when_one_pickle_is_bad(tmp_path, capsys):
    """community_small.pkl is good and comes first; ego_small.pkl runs code: refused in one
    line, and no .g6 is written, not even the good one's."""
    from graphvae.cli import main
    root = tmp_path / "root"
    (root / "graphgen").mkdir(parents=True)
    (root / "graphgen" / "community_small.pkl").write_bytes(pickle.dumps([nx.path_graph(3)]))
    (root / "graphgen" / "ego_small.pkl").write_bytes(
        b"cposix\nsystem\n(S'touch " + str(tmp_path / "ran").encode() + b"'\ntR.")
    out = tmp_path / "converted"
    with pytest.raises(SystemExit) as info:
        main(["convert-graphs", "--data-root", str(root), "--out", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ego_small.pkl" in err and "posix" in err, err
    assert not out.exists() and not (tmp_path / "ran").exists()


def test_convert_graphs_writes_all_or_nothing(tmp_path, monkeypatch):
    """A target that is a folder, or a write that fails after the first file, left the
    earlier .g6 files in place (and unlisted): now every file is renamed into place only
    once all are written."""
    import graphvae.datasets.graphgen as gg
    root = tmp_path / "root"
    (root / "graphgen").mkdir(parents=True)
    for stem in ("community_small", "ego_small", "grid"):
        (root / "graphgen" / f"{stem}.pkl").write_bytes(pickle.dumps([nx.path_graph(3)]))
    out = tmp_path / "converted"
    (out / "graphgen" / "grid.g6").mkdir(parents=True)
    with pytest.raises(DataError, match="grid.g6: is not a regular file"):
        gg.convert_graph_sets(root, out)
    assert sorted(p.name for p in (out / "graphgen").iterdir()) == ["grid.g6"]
    (out / "graphgen" / "grid.g6").rmdir()
    real, calls = gg.nx.to_graph6_bytes, []

    def fails_on_the_third_set(g, header):
        calls.append(g)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(g, header=header)

    monkeypatch.setattr(gg.nx, "to_graph6_bytes", fails_on_the_third_set)
    with pytest.raises(OSError, match="disk full"):
        gg.convert_graph_sets(root, out)
    assert list((out / "graphgen").iterdir()) == []           # no file, no temporary
    monkeypatch.setattr(gg.nx, "to_graph6_bytes", real)
    written = gg.convert_graph_sets(root, out)
    assert sorted(p.name for p in written) == ["community_small.g6", "ego_small.g6", "grid.g6"]


def test_convert_graphs_replaces_only_its_own_text(tmp_path, capsys, monkeypatch):
    """A file of the user's where a .g6 goes was replaced silently; now a rerun (the same
    text) passes, any other file there is refused in one line and kept, and an --out that
    is a file is named as such (it printed a raw NotADirectoryError)."""
    from graphvae.cli import main
    root = tmp_path / "root"
    (root / "graphgen").mkdir(parents=True)
    for stem in ("community_small", "ego_small"):
        (root / "graphgen" / f"{stem}.pkl").write_bytes(pickle.dumps([nx.path_graph(3)]))
    out = tmp_path / "converted"
    argv = ["convert-graphs", "--data-root", str(root), "--out", str(out)]
    assert main(argv) == 0 and main(argv) == 0                     # a rerun: the same text
    capsys.readouterr()

    def refused(args, message):
        with pytest.raises(SystemExit) as info:
            main(args)
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and len(err.splitlines()) == 1 and message in err, err

    mine = out / "graphgen" / "ego_small.g6"
    mine.write_text("my notes\n")
    refused(argv, "ego_small.g6: exists and holds other graphs than the conversion writes")
    assert mine.read_text() == "my notes\n"
    # a large file of another size is refused by its size, without reading it (a 5 GB file
    # was read whole, 25 s and 5.4 GB, to be refused)
    import graphvae.datasets.graphgen as gg
    reads = []
    real_read = gg.read_bytes
    monkeypatch.setattr(gg, "read_bytes",
                        lambda path, *a, **k: reads.append(path) or real_read(path, *a, **k))
    with open(mine, "wb") as fh:
        fh.truncate(1 << 30)                          # sparse: 1 GiB of size, no disk
    refused(argv, "ego_small.g6: exists and holds other graphs than the conversion writes")
    assert mine not in reads and mine.stat().st_size == 1 << 30
    # a file of the same size whose text differs is read and refused
    ours = (out / "graphgen" / "community_small.g6").read_text()
    other = ours.replace(ours[0], "A" if ours[0] != "A" else "B", 1)
    assert len(other) == len(ours) and other != ours
    mine.write_text(other)
    refused(argv, "ego_small.g6: exists and holds other graphs than the conversion writes")
    assert mine.read_text() == other
    # a link there, even to the very text the conversion writes, is not replaced
    twin = tmp_path / "twin.g6"
    twin.write_text(ours)
    mine.unlink()
    mine.symlink_to(twin)
    refused(argv, "ego_small.g6: is not a regular file (nothing was written)")
    assert mine.is_symlink() and twin.read_text() == ours
    afile = tmp_path / "afile"
    afile.write_text("x")
    refused(["convert-graphs", "--data-root", str(root), "--out", str(afile)],
            "afile: is not a folder (nothing was written)")
    # before any pickle is read (seconds on the shipped ones)
    monkeypatch.setattr(gg, "load_graph_pickle", lambda *a, **k: pytest.fail("read first"))
    refused(["convert-graphs", "--data-root", str(root), "--out", str(afile)],
            "afile: is not a folder (nothing was written)")


@pytest.mark.slow  # 8 s (every shipped pickle); the full suite runs it
@pytest.mark.skipif(not (DATA_ROOT / "graphgen").is_dir(), reason="needs ../shared/data")
def test_shipped_pickles_convert_to_identical_graph_sets(tmp_path):
    from graphvae.datasets.graphgen import GRAPHGEN_FILES, convert_graph_sets
    convert_graph_sets(DATA_ROOT, tmp_path)
    for name in GRAPHGEN_FILES:
        a, b = load_graphgen(name, DATA_ROOT), load_graphgen(name, tmp_path)
        assert len(a) == len(b)
        assert all(list(x.nodes) == list(y.nodes) and
                   {frozenset(e) for e in x.edges} == {frozenset(e) for e in y.edges}
                   for x, y in zip(a, b))


def test_the_payload_builders_make_pickles_that_call_what_they_name():
    """Both builders produce payloads the plain unpickler executes, so the refusals above
    refuse live payloads."""
    assert pickle.loads(old_global("builtins", "repr", "x")) == "'x'"
    assert pickle.loads(stack_global("numpy._core._methods", "os.path.basename", "/a/b")) == "b"


def test_seeded_fuzz_of_every_reader():
    """400 seeded hostile files over every reader (benchmarks/fuzz_readers.py, in process):
    each is read, or refused with a one-line ValueError naming the file; no other
    exception, no hang, no code run, no silently different edge list."""
    import importlib.util
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("fuzz_readers",
                                                  root / "benchmarks" / "fuzz_readers.py")
    assert spec is not None and spec.loader is not None
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    report = fuzz.fuzz(400, seed=0, progress=False)
    assert report["failures"] == 0, report["failure_list"]
    assert len(report["by_reader"]) >= 17         # 18 with RDKit (the QM9 reader)
    for reader, outcomes in report["by_reader"].items():
        assert outcomes.get("refused", 0) > 0 and sum(outcomes.values()) >= 20, reader


def test_a_graph_set_holding_an_empty_graph_is_named_not_trained_on(tmp_path, capsys):
    """graph6 ``?`` is the graph with no nodes: refused with the file and the graph's number,
    before training (it used to end as 'training diverged')."""
    from graphvae.cli import main
    from graphvae.datasets.graphgen import write_graph6
    root = tmp_path / "root"
    write_graph6([nx.cycle_graph(4), nx.path_graph(5)], root / "graphgen" / "grid.g6")
    with (root / "graphgen" / "grid.g6").open("ab") as fh:
        fh.write(b"?\n")
    with pytest.raises(SystemExit) as info:
        main(["generate", "--dataset", "grid", "--data-root", str(root), "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("grid.g6: graph 3 of 3 has no nodes; a set of graphs to generate "
                        "from needs at least one node in each"), err


def test_atomic_writes_never_replace_a_device_fifo_or_folder(tmp_path):
    """An atomic write renames a temporary file over its target: over a device (as root),
    a FIFO or a link's place that is fine, but a device or FIFO is not a file of ours, so
    it is refused, and left as it was; a link is replaced, its target untouched."""
    from graphvae.io import write_json, write_text
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    (tmp_path / "mine.txt").write_text("mine\n")
    os.symlink(tmp_path / "mine.txt", tmp_path / "link.json")
    for name, problem in (("fifo", "it is not a regular file"), ("folder", "it is a folder"),
                          ("mine.txt/x.json", "mine.txt is not a folder")):
        with pytest.raises(ValueError, match=f"cannot write .*{name}: .*{problem}"):
            write_json({"a": 1}, tmp_path / name)
    assert (tmp_path / "fifo").is_fifo() and not any((tmp_path / "folder").iterdir())
    write_text("new\n", tmp_path / "link.json")
    assert not (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "link.json").read_text() == "new\n"
    assert (tmp_path / "mine.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "folder", "link.json",
                                                          "mine.txt"]


def test_atomic_writes_keep_the_mode_and_take_any_legal_name(tmp_path):
    """A private file rewritten became 0o644 (the temporary file's mode); a 250-byte name
    failed with a raw 'File name too long' (the temporary name is 14 bytes longer); a name
    past 255 bytes is refused before any work."""
    from graphvae.io import write_json

    private = tmp_path / "secret.json"
    private.write_text("{}")
    os.chmod(private, 0o600)
    write_json({"a": 1}, private)
    assert stat_mode(private) == 0o600 and private.read_text().startswith("{")
    fresh = tmp_path / "fresh.json"
    mask = os.umask(0o022)
    try:
        write_json({"a": 1}, fresh)
    finally:
        os.umask(mask)
    assert stat_mode(fresh) == 0o644
    long = tmp_path / ("m" * 250 + ".json")                     # 255 bytes: legal
    write_json({"a": 1}, long)
    assert long.read_text().startswith("{")
    with pytest.raises(ValueError, match="its name is longer than 255 bytes"):
        write_json({"a": 1}, tmp_path / ("m" * 251 + ".json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["secret.json", "fresh.json", long.name])


def stat_mode(path):
    return os.stat(path).st_mode & 0o777


def test_read_json_refuses_what_is_not_json(tmp_path):
    """NaN / Infinity (which this package never writes: it writes null) and a key named
    twice (Python keeps the last) were read without a word."""
    from graphvae.io import read_json

    path = tmp_path / "m.json"
    for text, message in [('{"a": NaN}', "NaN is not a JSON number"),
                          ('{"b": -Infinity}', "-Infinity is not a JSON number"),
                          ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
                          ('[{"x": {"y": 1, "y": 1}}]', "the key 'y' appears twice")]:
        path.write_text(text)
        with pytest.raises(DataError, match=message):
            read_json(path)
    path.write_text('{"a": [1.5, null, 1e308], "b": {"a": 2}}')
    assert read_json(path) == {"a": [1.5, None, 1e308], "b": {"a": 2}}


def test_a_checkpoint_whose_bytes_changed_is_refused_by_its_crc(tmp_path):
    """torch reads a zip member without checking its CRC-32, so a checkpoint with 200
    bytes flipped in its weights loaded, and check-invariance reported a model that is not
    invariant ("expected 22189.5, got 1.59") where the file was damaged. Every member's
    CRC is now checked first; the same file unchanged still loads."""
    good = _linkpred_checkpoint(tmp_path / "a")
    load_model(good)
    raw = bytearray(good.read_bytes())
    with __import__("zipfile").ZipFile(good) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)    # the largest weight
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + min(200, info.file_size)):
        raw[i] ^= 0x5A
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=rf"bad\.pt: damaged: its member "
                                        rf"'{info.filename}' fails its CRC-32 check"):
        load_model(bad)


def test_refused_pickles_are_named_without_torchs_advice_to_run_them(tmp_path):
    """torch's refusal begins by advising weights_only=False, which runs the file's code;
    the line quoted it ("Re-running torch.load with weights_only set to False will likely
    succeed"). It now names what was refused, and nothing else."""
    path = tmp_path / "model.pt"
    torch.save({"task": "linkpred", "x": Path("/")}, path)      # a class: not plain data
    with pytest.raises(DataError) as info:
        load_model(path)
    text = str(info.value)
    assert "weights_only" not in text and "Re-running" not in text, text
    assert re.search(r"refused: the file holds more than tensors and plain data, which "
                     r"graphvae checkpoints never do \(Unsupported global: GLOBAL "
                     r"pathlib\.\w*Path was not an allowed global by default\.\)$", text), text


def test_an_npz_or_a_text_file_given_as_a_checkpoint_is_named(tmp_path):
    """numpy's .npz is a zip archive too: torch's own error was "[enforce fail at
    inline_container.cc:180] . file in archive is not in a subdirectory: blocks.npy"."""
    npz = tmp_path / "g.planted.npz"
    np.savez(npz, blocks=np.zeros(3))
    with pytest.raises(DataError, match=r"g\.planted\.npz: not a torch checkpoint \(a "
                                        r"model\.pt that graphvae wrote\): a zip archive "
                                        r"without torch's data\.pkl \(it holds "
                                        r"'blocks\.npy'\)$"):
        load_model(npz)
    # a member whose name merely ends in data.pkl is not torch's (a folder's data.pkl)
    other = tmp_path / "o.pt"
    with zipfile.ZipFile(other, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/mydata.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(DataError, match=r"without torch's data\.pkl \(it holds "
                                        r"'archive/mydata\.pkl'\)$"):
        load_model(other)


def test_a_checkpoint_saved_with_torchs_crcs_switched_off_loads(tmp_path):
    """torch.serialization.set_crc32_options(False) makes torch.save write a CRC of 0 for
    every member, and torch.load reads such files: so does graphvae (the CRC check had
    called them damaged). With the CRCs on again, the same damage is still refused."""
    import torch.serialization as ser
    good = _linkpred_checkpoint(tmp_path / "a")
    ck = torch.load(good, weights_only=True)
    path = tmp_path / "nocrc.pt"
    was = ser.get_crc32_options()
    ser.set_crc32_options(False)
    try:
        torch.save(ck, path)
    finally:
        ser.set_crc32_options(was)
    with __import__("zipfile").ZipFile(path) as zf:
        assert {i.CRC for i in zf.infolist()} == {0}
    model = load_model(path)[0]
    assert all(torch.equal(v, ck["state_dict"][k]) for k, v in model.state_dict().items())


# ----------------------------------------------------------------------------- damage named
# Refusals that gave only a library's inside ("IndexError: list index out of range") say
# what is damaged, and where. Found by reading the reader fuzz's refusal messages; the fuzz
# now counts such refusals (benchmarks/fuzz_readers.py, LIBRARY_WORDS).

@pytest.mark.parametrize("data, message", [
    # EMPTY_LIST at 2, BINPUT at 3, MARK at 5, BININT1 at 6: the next opcode would be at 8
    (b"\x80\x02]q\x00(K\x01", "ends at byte 8 without the STOP opcode that closes a pickle"),
    (b"\x80\x02X\x03\x00\x00\x00\xff\xfeab.", "has a string at byte 2 that is not UTF-8 text"),
    (b"\x80\x02\xfe.", "has 0xfe at byte 2, which is not a pickle opcode"),
    (b"\x80\x02X\x09\x00\x00\x00ab.", r"ends inside its opcode at byte 2 \(expected 9 bytes"),
])
def test_a_pickle_that_is_not_whole_is_named_at_the_byte_it_breaks(tmp_path, data, message):
    """It was "not a readable pickle (UnicodeDecodeError: ...)", "(ValueError: pickle
    exhausted before seeing STOP)" and the like."""
    from graphvae.safe_pickle import restricted_load
    (tmp_path / "g.pkl").write_bytes(data)
    with pytest.raises(DataError, match=r"g\.pkl: damaged: the pickle " + message):
        restricted_load(tmp_path / "g.pkl", "networkx")


def test_pickle_opcodes_that_do_not_fit_are_named_with_their_byte(tmp_path):
    """APPEND on a dict was "not a readable networkx pickle (AttributeError: 'dict' object
    has no attribute 'append')". The opcode and its byte are named, also inside protocol
    4's frames, which the unpickler reads whole."""
    from graphvae.safe_pickle import restricted_load
    path = tmp_path / "g.pkl"
    path.write_bytes(b"\x80\x02}q\x00K\x01a.")     # PROTO, EMPTY_DICT, BINPUT, BININT1: 7
    with pytest.raises(DataError, match=r"g\.pkl: damaged: the APPEND opcode at byte 7 does "
                                        r"not fit the objects before it \(AttributeError: "
                                        r"'dict' object has no attribute 'append'\)$"):
        restricted_load(path, "networkx")
    framed = pickle.dumps([1, 2, {3: 4}], protocol=4)
    path.write_bytes(framed[:-1] + b"a.")           # an APPEND in STOP's place
    with pytest.raises(DataError, match=rf"damaged: the APPEND opcode at byte "
                                        rf"{len(framed) - 1} does not fit"):
        restricted_load(path, "networkx")


def test_a_global_name_of_damaged_bytes_is_quoted(tmp_path):
    """A GLOBAL whose line ends were damaged named a "global" of raw pickle bytes, control
    characters included, in the one-line message."""
    from graphvae.safe_pickle import restricted_load
    (tmp_path / "g.pkl").write_bytes(b"\x80\x02c__builtin__\nobj\tX\x01\n)R.")
    with pytest.raises(DataError, match=r"refusing to load the global '__builtin__\.obj\\tX"
                                        r"\\x01'$"):
        restricted_load(tmp_path / "g.pkl", "networkx")


def _torch_archive(path: Path, change: dict[str, bytes | None]) -> Path:
    """A torch file of a 2x3 float32 tensor (record data/0) and a 3-element int64 one
    (data/1), with the members in ``change`` replaced (or, for ``None``, left out)."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2, 3), "b": torch.ones(3, dtype=torch.int64)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = change.get(info.filename.split("/", 1)[1], zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
    return path


@pytest.mark.parametrize("change, message", [
    ({"data/0": b"x" * 20}, "its tensor record 'archive/data/0' holds 20 bytes, where "
                            r"data\.pkl describes 6 float32 values \(24 bytes\)$"),
    ({"data/1": b"x" * 8}, "its tensor record 'archive/data/1' holds 8 bytes, where "
                           r"data\.pkl describes 3 int64 values \(24 bytes\)$"),
    ({"data/1": None}, r"its data\.pkl names the tensor record 'archive/data/1', which the "
                       "archive does not hold$"),
    ({"version": b"IIII"}, "its version record holds b'IIII', not a number$"),
    ({"version": b"0\n"}, r"its version record holds b'0\\n'; torch files are of version 1 "
                         "and up$"),
    ({"version": b"-3\n"}, r"its version record holds b'-3\\n'; torch files are of version 1 "
                          "and up$"),
    ({"version": b"18446744073709551616\n"}, "its version record holds a number past 64 bits "
                                            r"\(b'18446744073709551616\\n'\)$"),
    ({"byteorder": b"middle"}, "its byteorder record holds b'middle', not little or big$"),
    ({".data/serialization_id": b"\xa2" * 40}, "its serialization id record is not UTF-8 "
                                               "text$"),
    ({".storage_alignment": b"f" * 39}, "its storage alignment record holds b'f{39}', not a "
                                        "number$"),
])
def test_torch_records_that_do_not_fit_are_named(tmp_path, change, message):
    """torch said "record size (20 bytes) does not match expected size (24 bytes = 6
    elements * 4 bytes/element) for dtype Byte", "[enforce fail at inline_container.cc:325]
    . Couldn't parse the version IIII as Long Long.", "Attempted to read a PyTorch file with
    version 0, but the minimum supported version for reading is 1", "IndexError: stoull"
    (a version of 2^64) and "UnicodeDecodeError" for these, all behind valid CRCs."""
    from graphvae.torch_files import load_torch
    assert list(load_torch(_torch_archive(tmp_path / "ok.pt", {}), "checkpoint", "no")) \
        == ["w", "b"]
    path = _torch_archive(tmp_path / "m.pt", change)
    with pytest.raises(DataError, match=r"m\.pt: damaged: " + message):
        load_torch(path, "checkpoint", "no")


def test_a_torch_data_pkl_cut_short_is_named_and_torchs_source_place_is_dropped(tmp_path):
    """A cut data.pkl was "cannot read the checkpoint (EOFError)"; torch's C++ errors began
    with the place in its sources ("[enforce fail at inline_container.cc:325] .")."""
    from graphvae.errors import describe
    from graphvae.torch_files import load_torch
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2, 3), "b": torch.ones(3, dtype=torch.int64)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        pkl = z.read("archive/data.pkl")
    # torch's data.pkl ends BINPUT (q and its index), SETITEMS (u), STOP (.)
    assert pkl[-4:-3] == b"q" and pkl[-2:] == b"u."
    path = _torch_archive(tmp_path / "m.pt", {"data.pkl": pkl[:-2]})
    with pytest.raises(DataError, match=rf"m\.pt: damaged: its data\.pkl ends at byte "
                                        rf"{len(pkl) - 2} without the STOP opcode"):
        load_torch(path, "checkpoint", "no")
    path = _torch_archive(tmp_path / "m.pt", {"data.pkl": pkl[:-3]})    # BINPUT's index cut
    with pytest.raises(DataError, match=rf"m\.pt: damaged: its data\.pkl ends inside its "
                                        rf"opcode at byte {len(pkl) - 4} "):
        load_torch(path, "checkpoint", "no")
    err = RuntimeError("[enforce fail at inline_container.cc:325] . Couldn't parse the "
                       "version  as Long Long.")
    assert describe(err) == "RuntimeError: Couldn't parse the version  as Long Long."


def test_a_zip_member_name_marked_utf8_that_is_not_is_named(tmp_path):
    """zipfile's UnicodeDecodeError was the whole reason given."""
    from graphvae.torch_files import check_zip_stored
    path = tmp_path / "m.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("é.bin", b"1")                  # a non-ASCII name: flagged UTF-8
    path.write_bytes(path.read_bytes().replace("é".encode(), b"\xc3\x28"))
    with pytest.raises(DataError, match=r"m\.pt: not a readable zip archive \(a member's "
                                        r"name is marked UTF-8 and is not: "
                                        r"UnicodeDecodeError"):
        check_zip_stored(path)


@pytest.mark.parametrize("line, message", [
    (b"~", "b'~' is shorter than its size header"),
    (b"~~@@", "b'~~@@' is shorter than its size header"),
    # C: 4 nodes, 6 pairs, one byte of six bits
    (b"Crr", "its size header says 4 nodes, whose 6 pairs take 1 byte, and 2 follow it$"),
    (b"C", "its size header says 4 nodes, whose 6 pairs take 1 byte, and 0 follow it$"),
    # ~?@d: 0 << 12 | 1 << 6 | 37 = 101 nodes, 5,050 pairs, 842 bytes of six bits
    (b"~?@d" + b"?" * 20, "its size header says 101 nodes, whose 5,050 pairs take 842 "
                          "bytes, and 20 follow it$"),
])
def test_graph6_lines_cut_short_are_named(tmp_path, line, message):
    """'~' alone was "not a graph6 line (IndexError: list index out of range)"; a line of
    the wrong length was networkx's "Expected 6 bits but got 12 in graph6"."""
    (tmp_path / "g.g6").write_bytes(b"Cr\n" + line + b"\n")
    with pytest.raises(DataError, match=r"g\.g6:2: not graph6: " + re.escape(message)
                       .replace(r"\$", "$")):
        read_graph6(tmp_path / "g.g6")


def test_a_lone_npy_with_an_unclosed_bracket_and_a_damaged_mat_are_named(tmp_path):
    """The .npz members' words (stop 67) for a lone .npy, which was "cannot read the file
    (TokenError: ...)"; a .mat file on which SciPy's reader fails inside is called damaged,
    one that is not a MAT file is called that, and a MemoryError stays what it was."""
    import scipy.io

    from graphvae.vector.data import load_matrix
    from graphvae.vector.mat_file import _failure, read_mat_array
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 2)))
    (tmp_path / "x.npy").write_bytes(buf.getvalue().replace(b"}      ", b"}  (   ", 1))
    with pytest.raises(DataError, match=r"x\.npy: damaged: it has a header numpy cannot "
                                        r"parse \(TokenError: "):
        load_matrix(tmp_path / "x.npy")
    scipy.io.savemat(tmp_path / "ok.mat", {"X": np.ones((3, 4))})
    (tmp_path / "cut.mat").write_bytes((tmp_path / "ok.mat").read_bytes()[:-20])
    with pytest.raises(DataError, match=r"cut\.mat: damaged: SciPy's MAT reader fails inside "
                                        r"it \(OSError: could not read bytes\)$"):
        read_mat_array(tmp_path / "cut.mat")
    (tmp_path / "junk.mat").write_bytes(b"x" * 300)
    with pytest.raises(DataError, match=r"junk\.mat: not a MATLAB \.mat file \(ValueError: "
                                        r"Unknown mat file type"):
        read_mat_array(tmp_path / "junk.mat")
    assert _failure("MemoryError: Unable to allocate") == \
        "cannot read the .mat file (MemoryError: Unable to allocate)"
    assert _failure("holds no variable named X") == \
        "cannot read the .mat file (holds no variable named X)"


def test_torch_data_pkl_opcodes_that_do_not_fit_are_named_not_refused_as_hostile(tmp_path):
    """torch's weights-only reader calls APPEND on a dict "Can only append to lists", an
    UnpicklingError, which was shown as "refused: the file holds more than tensors and
    plain data"; a list as a dict key was "cannot read the checkpoint (TypeError:
    unhashable type: 'list')". Both are named as damage, at their opcode; a global torch
    refuses is still refused."""
    from graphvae.torch_files import load_torch
    cases = {
        b"\x80\x02}q\x00K\x01a.": r"the APPEND opcode at byte 7 of its data\.pkl does not fit "
                                 r"the objects before it \(Can only append to lists",
        # EMPTY_DICT at 2, BINPUT, EMPTY_LIST at 5, BINPUT, BININT1 at 8, SETITEM at 10
        b"\x80\x02}q\x00]q\x01K\x01s.": r"the SETITEM opcode at byte 10 of its data\.pkl "
                                       r"does not fit .*unhashable type: 'list'\)$",
        b"\x80\x02h\x05.": r"the BINGET opcode at byte 2 of its data\.pkl does not fit the "
                           r"objects before it \(KeyError: 5\)$",
    }
    for i, (pickled, message) in enumerate(cases.items()):
        path = _torch_file_with_pickle(tmp_path / f"m{i}.pt", pickled)
        with pytest.raises(DataError, match=rf"m{i}\.pt: damaged: {message}"):
            load_torch(path, "checkpoint", "no")
    path = _torch_file_with_pickle(tmp_path / "h.pt", b"\x80\x02cos\nsystem\nq\x00.")
    with pytest.raises(DataError, match=r"h\.pt: refused: the file holds more than tensors "
                                        r"and plain data.*os\.system"):
        load_torch(path, "checkpoint", "no")


def _tuple_bomb(depth: int) -> bytes:
    """A protocol-2 pickle of a dict whose keys are tuples, each holding the one before
    it twice (memo references): level k has 2^(k+1) - 1 parts as a tree, and hashing it
    visits every one."""
    ops = b"\x80\x02}q\x00(" + b")q\x01"            # dict, MARK, () as memo 1
    ops += b"h\x01h\x01\x86q\x01" * depth             # (memo 1, memo 1) as memo 1
    return ops + (b"K\x01" if depth % 2 == 0 else b"") + b"u."   # pairs after MARK


def test_a_torch_file_of_a_tuple_that_holds_itself_over_and_over_is_refused(tmp_path):
    """torch's weights-only reader builds such a tuple and hashes it as a dict key: 22
    levels took it 0.08 s, and each level doubles that (40 levels, a 400-byte file: about
    6 hours by that rate). The tuples are counted as trees before torch reads the file;
    19 levels (2^20 - 1 parts, the most allowed) still load."""
    from graphvae.torch_files import MAX_TUPLE_PARTS, load_torch
    assert MAX_TUPLE_PARTS == 2**20
    ok = load_torch(_torch_file_with_pickle(tmp_path / "ok.pt", _tuple_bomb(19)), "x", "no")
    assert len(ok) == 10                             # keys: levels 0, 2, ..., 18
    path = _torch_file_with_pickle(tmp_path / "b.pt", _tuple_bomb(40))
    assert path.stat().st_size < 2000
    message = (r"b\.pt: refused: its pickle builds a tuple of 2,097,151 parts or more "
               r"\(parts held again inside themselves\), past the 1,048,576 allowed")
    with pytest.raises(DataError, match=message):   # level 20 is the first past the cap
        load_torch(path, "checkpoint", "no")
    rc, _, err = run_cli(["check-invariance", "--checkpoint", str(path)])
    assert rc == 2 and "parts held again inside themselves" in err, err
    # the legacy format: five pickles, the object fourth
    legacy = (pickle.dumps(0x1950a86a20f9469cfc6c, 2) + pickle.dumps(1001, 2)
              + pickle.dumps({"little_endian": True, "type_sizes": {},
                              "protocol_version": 1001}, 2) + _tuple_bomb(40)
              + pickle.dumps([], 2))
    (tmp_path / "legacy.pt").write_bytes(legacy)
    with pytest.raises(DataError, match=r"legacy\.pt: refused: its pickle builds a tuple"):
        load_torch(tmp_path / "legacy.pt", "checkpoint", "no")
