"""Loading the pickles that public graph data sets ship, without letting them run code.

A pickle names the functions that rebuild its objects, and loading it calls them, so a
crafted file can call ``os.system``. :func:`restricted_load` resolves only the exact
``(module, name)`` pairs of one *profile* — the classes and functions that a file of
that kind needs, found by reading the shipped files opcode by opcode — and refuses
everything else, dotted names (``os.system`` reached through a module attribute)
included. Only an allowed pair is looked up: its module is imported (they are all
numpy, scipy, networkx or builtins modules) and the name read with ``getattr``.

Profiles:

* ``"networkx"``: lists of networkx graphs of any of the four classes (GDSS's
  ``graphgen/*.pkl``; ENZYMES holds subgraph views, hence the filter classes), with the
  views networkx 3 caches on a graph and pickles with it (``g.degree``, ``g.in_edges``…).
* ``"planetoid"``: the ``ind.<name>.*`` files of the Planetoid citation graphs
  (SciPy CSR matrices, NumPy arrays, a ``defaultdict`` of lists).

Resolving only allowed names is not enough: an allowed class called with the file's
own arguments (``list`` of a stride-0 ``ndarray`` whose shape the file writes, a graph
built from one) is gigabytes from a 66-byte file, and a tuple that holds the level below
it twice, 40 levels deep, is a 540-byte dict key whose hash takes hours. So the file is
read by Python's own unpickler with its opcodes overridden: an allowed global is called
only as the shipped files call it (``_args_ok``), objects are built with ``__new__`` and
no arguments, an object's state (BUILD) is only a dict of attributes on an instance of an
allowed class or numpy's own state of a numeric dtype or of an array of one (never a
class's: that would rewrite the class for the whole process), and dict keys and set items
must be scalars or short tuples of scalars.

The caller still validates what comes out (its type, sizes, index ranges).
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import pickletools
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from graphvae.errors import DataError, describe, quote

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
        "OutDegreeView", "MultiDegreeView", "DiMultiDegreeView", "InMultiDegreeView",
        "OutMultiDegreeView")),
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
#: Largest pickle read (bytes): 8 times the largest shipped file (PubMed's ``allx``, 7.6 MB).
MAX_BYTES = 64 << 20
#: Most memory that the lists, dicts, sets, tuples and objects of one load may take
#: (bytes, as ``sys.getsizeof`` counts them when they are made or grow). An empty set is
#: 1 byte of pickle and 216 bytes of memory, so a 64 MB file of them alone asked for 15 GB.
#: ENZYMES, the largest shipped networkx pickle (2.9 MB), builds 24 MB so counted (82 MB
#: at its peak in all, strings and numbers included, which take at most about 13 bytes of
#: memory a byte of file).
MAX_BUILT = 512 << 20


#: Dict keys and set items: scalars, or short tuples of scalars (grid graphs' ``(i, j)``
#: nodes). A tuple holding itself twice at each of 40 levels is 540 bytes of pickle whose
#: hash, taken when it becomes a key, costs 2⁴⁰ steps.
_SCALARS = (int, float, str, bytes, bool, type(None), np.number, np.bool_)  # ENZYMES: int64
#: The dtypes a shipped array has (``dtype('f8', False, True)``): numbers and booleans.
_NUMERIC_DTYPE = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")


def _shallow(key: Any) -> bool:
    return isinstance(key, _SCALARS) or (type(key) is tuple and len(key) <= 8 and all(
        isinstance(v, _SCALARS) for v in key))


def _args_ok(name: str, args: Any) -> bool:
    """Whether REDUCE may call the allowed global ``name`` with ``args``: the calls the
    shipped files make, and no other. (Calling an allowed class freely is a bomb: ``list``
    of a stride-0 ``ndarray`` whose shape the file writes, or a networkx graph built from
    one, is gigabytes from a 66-byte file.)"""
    if type(args) is not tuple:
        return False
    if name == "_reconstruct":          # numpy: _reconstruct(ndarray, (0,), b'b'), then BUILD
        # (Python 2's pickles give b'b' as the str 'b', read with latin-1)
        return (len(args) == 3 and args[0] is np.ndarray and type(args[1]) is tuple
                and args[1] == (0,) and isinstance(args[2], bytes | str) and len(args[2]) <= 1)
    if name == "scalar":                # numpy scalars: scalar(dtype, its bytes)
        return (len(args) == 2 and isinstance(args[0], np.dtype)
                and isinstance(args[1], bytes | str) and len(args[1]) == args[0].itemsize)
    if name == "dtype":                 # dtype('f8', False, True); Python 2's: ('i4', 0, 1)
        return (1 <= len(args) <= 3 and isinstance(args[0], str)
                and _NUMERIC_DTYPE.fullmatch(args[0]) is not None
                and all(type(a) in (bool, int) and a in (0, 1) for a in args[1:]))
    if name == "_reconstructor":        # protocols 0 and 1: object.__new__(cls), then BUILD
        return len(args) == 3 and isinstance(args[0], type) and args[1] is object \
            and args[2] is None
    if name in ("set", "frozenset"):    # protocols up to 3: set([items])
        return len(args) == 0 or (len(args) == 1 and type(args[0]) is list
                                  and all(_shallow(v) for v in args[0]))
    if name == "defaultdict":           # defaultdict(list), its items set after
        return args == () or (len(args) == 1 and args[0] is list)
    return False


#: Python's own unpickler (untyped to mypy: its opcode methods are private).
_PyUnpickler: Any = pickle._Unpickler  # type: ignore[attr-defined]


class _Unpickler(_PyUnpickler):
    """Python's own unpickler, whose opcodes can be overridden (the C one's cannot): it
    resolves only allowed globals, calls them only as :func:`_args_ok` allows, builds
    objects with ``__new__`` and no arguments, and takes only shallow dict keys and set
    items. About 4 times slower than the C unpickler, for files of at most a few MB."""

    dispatch: dict[int, Any] = dict(_PyUnpickler.dispatch)

    def __init__(self, fh: io.BufferedIOBase, allowed: frozenset[tuple[str, str]], **kw: Any):
        super().__init__(fh, **kw)
        self._allowed = allowed
        self._callable: dict[int, tuple[Any, str]] = {}
        self._built = 0

    def _charge(self, nbytes: int) -> None:
        self._built += nbytes
        if self._built > MAX_BUILT:
            self._refuse(f"refusing to build more than {MAX_BUILT / 2**20:g} MiB of objects "
                         "(ENZYMES, the largest shipped graph set, builds 24 MB)")

    def find_class(self, module: str, name: str) -> Any:
        if "." in name or (module, name) not in self._allowed:
            shown = f"{module}.{name}"      # (a damaged name: control bytes, pickle data)
            if not shown.isprintable() or len(shown) > 100:
                shown = quote(shown, 100)
            raise pickle.UnpicklingError(f"refusing to load the global {shown}")
        real = _PY2.get(module, module)
        mod = sys.modules.get(real) or importlib.import_module(real)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy.core / scipy.sparse.csr are deprecated names
            obj = getattr(mod, name)
        self._callable[id(obj)] = (obj, name)
        return obj

    def _refuse(self, what: str) -> None:
        raise pickle.UnpicklingError(what)

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        known = self._callable.get(id(func))
        if known is None or known[0] is not func or not _args_ok(known[1], args):
            name = known[1] if known is not None and known[0] is func else type(func).__name__
            self._refuse(f"refusing to call {name} with these arguments (not a call the "
                         "data sets' pickles make)")
        self.stack[-1] = func(*args)
    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_build(self) -> None:
        """BUILD sets an object's state: ``__setstate__``, or its ``__dict__`` and ``setattr``
        for a ``(dict, slots)`` pair. Let through only what the shipped files do: a dict of
        attributes on an instance of an allowed class, and the states numpy writes for a
        numeric dtype and an array of one. (A state set on an allowed *class* rewrote it
        for the whole process, ``Graph.number_of_nodes`` included; a dtype given fields at
        any offset made arrays that read outside their memory.)"""
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.dtype):
            if not (type(state) is tuple and len(state) == 8
                    and state[2] is None and state[3] is None and state[4] is None):
                self._refuse("refusing a dtype state with fields or a subarray")
            super().load_build()
            if inst.__reduce__()[2] != np.dtype(inst.str).__reduce__()[2]:
                self._refuse(f"refusing a dtype state unlike numpy's for {inst.str}")
            return
        if isinstance(inst, np.ndarray):
            if not (type(inst) is np.ndarray and type(state) is tuple and len(state) == 5
                    and isinstance(state[2], np.dtype) and state[2].kind in "biufc"
                    and state[2].fields is None and state[2].subdtype is None
                    and isinstance(state[4], bytes | str)):
                self._refuse("refusing an array state other than numbers in a buffer")
            super().load_build()
            # numpy copies the buffer (byte-swapped or text data): one memoised 1 MB
            # buffer set on 2,000 arrays was 2 GB from a 1 MB file
            self._charge(inst.nbytes)
            return
        allowed = {id(obj) for obj, _ in self._callable.values() if isinstance(obj, type)}
        if isinstance(inst, type) or id(type(inst)) not in allowed \
                or getattr(type(inst), "__module__", "").split(".")[0] in ("builtins", "numpy") \
                or type(state) is not dict or not all(type(k) is str for k in state):
            what = f"the class {inst.__name__}" if isinstance(inst, type) else \
                f"a {type(inst).__name__}"
            self._refuse(f"refusing to set the state of {what} (only a dict of attributes "
                         f"on an instance of an allowed class)")
        # the attributes are copied into the instance's own dict: one memoised state of
        # 100,000 keys set on 400 graphs was 1.8 GB from 0.7 MB
        before = sys.getsizeof(getattr(inst, "__dict__", {}))
        super().load_build()
        self._charge(sys.getsizeof(getattr(inst, "__dict__", {})) - before)
    dispatch[pickle.BUILD[0]] = load_build

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if args != () or not isinstance(cls, type):
            self._refuse("refusing to build an object with constructor arguments")
        self.append(cls.__new__(cls))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if args != () or kwargs != {} or not isinstance(cls, type):
            self._refuse("refusing to build an object with constructor arguments")
        self.append(cls.__new__(cls))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _instantiate(self, klass: Any, args: Any) -> None:  # INST and OBJ (protocols 0, 1)
        if args or not isinstance(klass, type):
            self._refuse("refusing to build an object with constructor arguments")
        self.append(klass.__new__(klass))

    def _keys(self, keys: Any) -> None:
        for k in keys:
            if not _shallow(k):
                self._refuse(f"refusing a dict key or set item of type {type(k).__name__}")

    def load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self._keys([key])
        self.stack[-1][key] = value
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self) -> None:
        items = self.pop_mark()
        self._keys(items[0::2])
        target = self.stack[-1]
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_dict(self) -> None:
        items = self.pop_mark()
        self._keys(items[0::2])
        self.append({items[i]: items[i + 1] for i in range(0, len(items), 2)})
    dispatch[pickle.DICT[0]] = load_dict

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._keys(items)
        target = self.stack[-1]
        if not isinstance(target, set):
            self._refuse("refusing to add items to something not a set")
        target.update(items)
    dispatch[pickle.ADDITEMS[0]] = load_additems

    def load_frozenset(self) -> None:
        items = self.pop_mark()
        self._keys(items)
        self.append(frozenset(items))
    dispatch[pickle.FROZENSET[0]] = load_frozenset


def _made(load: Any) -> Any:
    """``load`` followed by charging the object it left on the stack."""
    def run(self: _Unpickler) -> None:
        load(self)
        self._charge(sys.getsizeof(self.stack[-1]))
    return run


def _grown(load: Any, target: Any) -> Any:
    """``load`` charged with the growth of the container it adds to (``target(self)``
    finds that container before the opcode runs; after it, it is on top of the stack)."""
    def run(self: _Unpickler) -> None:
        try:
            before = sys.getsizeof(target(self))
        except IndexError:          # a damaged pickle: let the opcode fail its own way
            load(self)
            return
        load(self)
        self._charge(sys.getsizeof(self.stack[-1]) - before)
    return run


def _below_mark(u: _Unpickler) -> Any:
    return u.metastack[-1][-1]


for _op in (pickle.EMPTY_DICT, pickle.EMPTY_LIST, pickle.EMPTY_SET, pickle.LIST, pickle.TUPLE,
            pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3, pickle.DICT, pickle.FROZENSET,
            pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.REDUCE, pickle.INST, pickle.OBJ):
    _Unpickler.dispatch[_op[0]] = _made(_Unpickler.dispatch[_op[0]])
for _op, _target in ((pickle.APPEND, lambda u: u.stack[-2]),
                     (pickle.SETITEM, lambda u: u.stack[-3]), (pickle.APPENDS, _below_mark),
                     (pickle.SETITEMS, _below_mark), (pickle.ADDITEMS, _below_mark)):
    _Unpickler.dispatch[_op[0]] = _grown(_Unpickler.dispatch[_op[0]], _target)

_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def pickle_fault(data: bytes, visit: Callable[[int, str, Any], None] | None = None
                 ) -> tuple[int, str] | None:
    """Where :mod:`pickletools` stops reading ``data`` as one pickle, and why, said of the
    pickle: ``(8, "ends at byte 8 without the STOP opcode that closes a pickle")``. The
    byte is where the opcode it failed on starts (0: ``data`` does not begin as a pickle);
    ``None`` if it reads to STOP. ``visit(count, name, arg)`` sees each opcode before
    STOP as it is read (the callers' own checks, in the same pass); what it raises passes
    through."""
    fh = io.BytesIO(data)
    ops = pickletools.genops(fh)
    start = count = 0
    while True:
        try:
            op, arg, _ = next(ops)
        except UnicodeDecodeError as err:
            return start, (f"has a string at byte {start:,} that is not "
                           f"{err.encoding.upper()} text")
        except Exception as err:  # noqa: BLE001 - pickletools raises ValueError, and others
            # (StopIteration is not reached: genops raises "pickle exhausted before seeing
            # STOP" at the end)
            text = str(err)
            if "exhausted before seeing STOP" in text:
                return start, (f"ends at byte {start:,} without the STOP opcode that closes "
                               f"a pickle")
            if " remain" in text or "not enough data" in text or "no newline found" in text:
                return start, f"ends inside its opcode at byte {start:,} ({text})"
            if text.endswith(" unknown"):
                return start, (f"has 0x{data[start:start + 1].hex()} at byte {start:,}, "
                               f"which is not a pickle opcode")
            return start, (f"has an opcode at byte {start:,} that cannot be read "
                           f"({describe(err)})")
        if op.name == "STOP":
            return None
        if visit is not None:
            visit(count, op.name, arg)
        start = fh.tell()                   # where the next opcode starts
        count += 1


def _check_memo(path: Path, data: bytes) -> None:
    """Refuse a pickle that is not whole (:func:`pickle_fault`), and memo indices that no
    pickler writes, in one pass over its opcodes (about 2 million a second). Picklers
    number their memo entries in order (from 0; Python 2's cPickle from 1), so an index
    never exceeds the opcodes before it, while CPython's unpickler sizes its memo table to
    twice the largest index it is given: a 9-byte pickle that puts at index 2²⁷ asked for
    gigabytes."""
    def memo(count: int, name: str, arg: Any) -> None:
        if name in _PUTS and (not isinstance(arg, int) or arg > count):
            raise DataError(path, f"not a readable pickle (memo index {arg} at opcode "
                                  f"{count}; picklers number their entries in order)")

    fault = pickle_fault(data, memo)
    if fault is not None:
        at, why = fault
        raise DataError(path, f"not a pickle: it {why}" if at == 0
                        else f"damaged: the pickle {why}")


def failed_opcode(data: bytes, u: Any, fh: io.BytesIO) -> str:
    """``"the APPEND opcode at byte 57"``: the opcode that ``u``, an unpickler of Python's
    own kind reading ``data`` from ``fh``, failed on. It starts before the last byte read,
    which is ``fh``'s position, less what is left of the frame the unpickler holds
    (protocol 4 reads a frame, up to 64 KiB, at once)."""
    read = fh.tell()
    frame = getattr(getattr(u, "_unframer", None), "current_frame", None)
    if frame is not None:
        read -= len(frame.getbuffer()) - frame.tell()
    last = None
    for op, _, pos in pickletools.genops(data):
        if pos is None or pos >= read:
            break
        last = (op.name, pos)
    return "an opcode" if last is None else f"the {last[0]} opcode at byte {last[1]:,}"


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
    fh = io.BytesIO(data)
    u = _Unpickler(fh, allowed, encoding=encoding)
    try:
        return u.load()
    except pickle.UnpicklingError as err:
        raise DataError(path, f"not a readable {profile} pickle: {err}") from None
    except RecursionError:
        raise DataError(path, "not a readable pickle (nested too deeply)") from None
    except MemoryError:
        raise DataError(path, "not a readable pickle (it asks for more memory than there "
                              "is)") from None
    except Exception as err:  # noqa: BLE001 - opcodes that do not fit together
        raise DataError(path, f"damaged: {failed_opcode(data, u, fh)} does not fit the "
                              f"objects before it ({describe(err)})") from None
