"""Loading the pickles that public graph data sets ship, without letting them run code.

A pickle names the functions that rebuild its objects, and loading it calls them, so a
crafted file can call ``os.system``. :func:`restricted_load` resolves only the exact
``(module, name)`` pairs of one *profile* — the classes and functions that a file of
that kind needs, found by reading the shipped files opcode by opcode — and refuses
everything else, dotted names (``os.system`` reached through a module attribute)
included. Only an allowed pair is looked up: its module is imported (they are all
numpy, scipy, networkx or builtins modules) and the name read with ``getattr``.

Profiles:

* ``"networkx"``: lists of networkx graphs (GDSS's ``graphgen/*.pkl``; ENZYMES holds
  subgraph views, hence the filter classes).
* ``"planetoid"``: the ``ind.<name>.*`` files of the Planetoid citation graphs
  (SciPy CSR matrices, NumPy arrays, a ``defaultdict`` of lists).

The caller still validates what comes out (its type, sizes, index ranges).
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import pickletools
import sys
import warnings
from pathlib import Path
from typing import Any

from graphvae.errors import DataError, describe

_NUMPY = {
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}
_NX_CLASSES = "networkx.classes"
_NETWORKX = {
    *((f"{_NX_CLASSES}.graph", "Graph"), (f"{_NX_CLASSES}.digraph", "DiGraph"),
      (f"{_NX_CLASSES}.multigraph", "MultiGraph"),
      (f"{_NX_CLASSES}.multidigraph", "MultiDiGraph")),
    # subgraph views (ENZYMES) and the cached views that networkx 3 pickles with a graph
    *((f"{_NX_CLASSES}.coreviews", n) for n in (
        "AtlasView", "AdjacencyView", "MultiAdjacencyView", "FilterAtlas", "FilterAdjacency",
        "FilterMultiInner", "FilterMultiAdjacency")),
    *((f"{_NX_CLASSES}.reportviews", n) for n in (
        "NodeView", "EdgeView", "OutEdgeView", "InEdgeView", "MultiEdgeView",
        "OutMultiEdgeView", "InMultiEdgeView", "DegreeView", "DiDegreeView", "InDegreeView",
        "OutDegreeView", "MultiDegreeView")),
    *((f"{_NX_CLASSES}.filters", n) for n in ("no_filter", "show_nodes")),
    (f"{_NX_CLASSES}.function", "frozen"),
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "set"), ("builtins", "frozenset"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"),
    # protocols 0 and 1 rebuild objects through copyreg; its arguments are allowed classes
    ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"), ("builtins", "object"),
    ("__builtin__", "object"),
    *_NUMPY,
}
_PLANETOID = {
    ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse._csr", "csr_matrix"),
    ("collections", "defaultdict"), ("__builtin__", "list"), ("builtins", "list"),
    *_NUMPY,
}
PROFILES: dict[str, frozenset[tuple[str, str]]] = {
    "networkx": frozenset(_NETWORKX), "planetoid": frozenset(_PLANETOID)}
#: Python 2 module names in old pickles, as ``pickle`` maps them.
_PY2 = {"__builtin__": "builtins", "copy_reg": "copyreg"}
#: Largest pickle read (bytes); the shipped files are at most 8 MB.
MAX_BYTES = 1 << 30


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh: io.BufferedIOBase, allowed: frozenset[tuple[str, str]], **kw: Any):
        super().__init__(fh, **kw)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if "." in name or (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")
        real = _PY2.get(module, module)
        mod = sys.modules.get(real) or importlib.import_module(real)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy.core / scipy.sparse.csr are deprecated names
            return getattr(mod, name)


_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def _check_memo(path: Path, data: bytes) -> None:
    """Refuse memo indices that no pickler writes. Picklers number their memo entries in
    order (from 0; Python 2's cPickle from 1), so an index never exceeds the opcodes
    before it, while CPython's unpickler sizes its memo table to twice the largest index
    it is given: a 9-byte pickle that puts at index 2²⁷ asked for gigabytes. The scan
    reads the opcodes only (about 2 million a second)."""
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(data)):
            if op.name in _PUTS and (not isinstance(arg, int) or arg > count):
                raise DataError(path, f"not a readable pickle (memo index {arg} at opcode "
                                      f"{count}; picklers number their entries in order)")
            if op.name == "STOP":
                break
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged pickle fails in many ways
        raise DataError(path, f"not a readable pickle ({describe(err)})") from None


def restricted_load(path: str | os.PathLike, profile: str, encoding: str = "ASCII") -> Any:
    """Unpickle ``path`` resolving only the globals of ``profile``; :class:`DataError` on
    any failure (the message names the file), never another exception type."""
    path = Path(path)
    allowed = PROFILES[profile]
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise DataError(path, "not a regular file")
        if size > MAX_BYTES:
            raise DataError(path, f"{size} bytes is too large for a pickled data set")
        data = path.read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot read the file ({describe(err)})") from None
    _check_memo(path, data)
    try:
        return _Unpickler(io.BytesIO(data), allowed, encoding=encoding).load()
    except pickle.UnpicklingError as err:
        raise DataError(path, f"not a readable {profile} pickle: {err}") from None
    except RecursionError:
        raise DataError(path, "not a readable pickle (nested too deeply)") from None
    except MemoryError:
        raise DataError(path, "not a readable pickle (it asks for more memory than there "
                              "is)") from None
    except Exception as err:  # noqa: BLE001 - a damaged pickle fails in many ways
        raise DataError(path, f"not a readable {profile} pickle ({describe(err)})") from None
