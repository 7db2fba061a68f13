"""Reading the torch files graphvae writes (model checkpoints, training states) and numpy's
``.npz`` files without trusting them: :func:`load_torch` reads tensors and plain data only
(``torch.load(weights_only=True)``), after :func:`check_zip_stored` has refused compressed,
oversized and damaged archives, and after ``data.pkl`` has been read opcode by opcode
(calls that make bytes from nothing; a pickle cut short) and its tensor records checked
against the sizes it describes; the tensors read must then hold the bytes their shapes
claim (:mod:`graphvae.weight_checks`, which also checks weights against a model). Every
refusal is a one-line
:class:`~graphvae.errors.DataError` naming the file, and says what is damaged where
torch's own error would say only where torch failed ("record size (20 bytes) does not
match expected size", "EOFError").
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import pickletools
import re
import tokenize
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from graphvae.errors import DataError, describe, quote
from graphvae.safe_pickle import failed_opcode, pickle_fault
from graphvae.weight_checks import (
    castable,
    check_dtypes,
    check_plain_entries,
    check_tensor_storage,
    check_weight_storage,
    nan_weight,
    not_plain,
    shape_misfit,
)

#: How the files of torch.save begin: a zip archive (since torch 1.6) or a pickle.
TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


def _head(path: Path, what: str) -> bytes:
    """The first 4 bytes of ``path`` (what kind of file it is); a one-line error naming
    ``what`` if it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4)
    except OSError as err:
        raise DataError(path, f"cannot read the {what} ({describe(err)})") from None


def check_zip_stored(path: str | os.PathLike) -> list[str] | None:
    """Refuse a zip archive (what ``torch.save`` and ``numpy.savez`` write) that holds a
    compressed member, members larger than the file, or a member whose bytes fail its
    CRC-32: neither writer compresses, a deflated member of zeros inflates about a
    thousandfold when read, and torch reads a member without checking its CRC, so a damaged
    checkpoint loaded garbage weights (a CRC of 0, what torch writes with its CRCs
    switched off, is not checked). A file that starts as a zip archive but which
    :mod:`zipfile` cannot read is refused too. Returns the members' names, or ``None`` for
    a file that is not a zip archive (its reader says what it is)."""
    path = Path(path)
    magic = _head(path, "file")
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            size = path.stat().st_size
            for info in infos:
                if not 0 <= info.header_offset < size:      # (a seek there: EINVAL)
                    raise DataError(path, f"not a readable zip archive (its member "
                                          f"{quote(info.filename[:80])} starts at byte "
                                          f"{info.header_offset:,}, outside the file's "
                                          f"{size:,})")
                if info.compress_type != zipfile.ZIP_STORED:
                    raise DataError(path, f"holds a compressed member ({info.filename[:80]}); "
                                          f"torch.save and numpy.savez never compress")
            claimed = sum(info.file_size for info in infos)
            if claimed > size:
                raise DataError(path, f"its members claim {claimed:,} bytes, more than the "
                                      f"file's {size:,}")
            bad = _bad_crc(zf, infos)
            for info in infos:
                _check_npy_size(zf, info, path)
    except DataError:
        raise
    except OSError as err:
        raise DataError(path, f"cannot read the file ({describe(err)})") from None
    except UnicodeDecodeError as err:
        raise DataError(path, f"not a readable zip archive (a member's name is marked UTF-8 "
                              f"and is not: {describe(err)})") from None
    except Exception as err:  # noqa: BLE001 - zipfile raises several types
        raise DataError(path, f"not a readable zip archive ({describe(err)})") from None
    if bad is not None:
        raise DataError(path, f"damaged: its member {quote(bad)} fails its CRC-32 check (the "
                              f"file changed after it was written)")
    return [info.filename for info in infos]


def _check_npy_size(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> None:
    """An ``.npy`` member (``numpy.savez``'s) whose header declares more (or fewer) bytes
    than the member holds is refused as damaged: numpy allocated what the header said
    first, so a 772-byte file that declared 10¹⁰ numbers ended as "out of memory"."""
    import numpy as np

    if not info.filename.endswith(".npy"):
        return
    with zf.open(info) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:                       # 2.0, and 3.0 (the same layout, a UTF-8 header)
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        except (ValueError, SyntaxError, EOFError):
            return                      # not .npy data: numpy reads it as bytes, its reader
            #                             refuses them
        except tokenize.TokenError as err:
            # a header with an unclosed bracket: numpy's parser lets tokenize's error out
            # (np.load raises it too), which no reader expects
            raise DataError(path, f"damaged: its member {quote(info.filename)} has a header "
                                  f"numpy cannot parse ({describe(err)})") from None
        if dtype.hasobject:
            return                      # pickled objects: their reader refuses them
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        held = info.file_size - fh.tell()
        if declared != held:
            raise DataError(path, f"damaged: its member {quote(info.filename)} declares "
                                  f"{quote(shape)} of {dtype} ({declared:,} bytes) and holds "
                                  f"{held:,}")


def _bad_crc(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> str | None:
    """The first member whose bytes fail its CRC-32, read to its end. A member whose CRC
    is 0 is not checked: ``torch.save`` writes 0 for every member after
    ``torch.serialization.set_crc32_options(False)``, and torch reads those files."""
    for info in infos:
        if info.CRC == 0:
            continue
        try:
            with zf.open(info) as fh:
                while fh.read(1 << 24):
                    pass
        except zipfile.BadZipFile:
            return info.filename
    return None


def load_torch(path: str | os.PathLike, what: str, not_ours: str,
               map_location: str | torch.device = "cpu", check: bool = True) -> Any:
    """What ``torch.save`` wrote to ``path``, read without running code. ``what`` names
    the file in errors (``"checkpoint"``: "cannot read the checkpoint (...)"), and
    ``not_ours`` says what the file is not, for one that is neither a zip archive nor a
    pickle, or a zip archive without torch's ``data.pkl`` (numpy's ``.npz``). Every tensor
    in it must be dense and hold the bytes its shape claims (:func:`check_tensor_storage`),
    unless ``check`` is false (the caller checks, to word the refusal its own way)."""
    path = Path(path)
    head = _head(path, what)
    if not head:                    # (torch's reader said only "EOFError")
        raise DataError(path, f"cannot read the {what}: the file is empty")
    if not head.startswith(TORCH_MAGIC):
        raise DataError(path, f"{not_ours}; it starts with {quote(head)}")
    names = check_zip_stored(path)
    if names is not None and not any(n == "data.pkl" or n.endswith("/data.pkl")
                                      for n in names):
        shown = ", ".join(quote(n) for n in names[:3]) or "no members"
        raise DataError(path, f"{not_ours}: a zip archive without torch's data.pkl (it holds "
                              f"{shown})")
    misfit = _check_pickle(path, names)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged file fails in many ways
        reason = refusal(err) if isinstance(err, pickle.UnpicklingError) else describe(err)
        if misfit is not None:          # (torch: "Can only append to lists", "KeyError: 5")
            raise DataError(path, f"damaged: {misfit} of its data.pkl does not fit the "
                                  f"objects before it ({reason})") from None
        if isinstance(err, pickle.UnpicklingError):
            raise DataError(path, f"refused: the file holds more than tensors and plain "
                                  f"data, which graphvae {what}s never do ({reason})") from None
        raise DataError(path, f"cannot read the {what} ({reason})") from None
    if check:
        check_tensor_storage(loaded, path)
    return loaded


#: Globals that torch's weights-only reader allows and that make any number of bytes
#: from a few (``bytearray(2.5e9)``: 2.7 GB from an 833-byte file); no graphvae file holds
#: one.
_UNBOUNDED = frozenset({"builtins bytearray", "__builtin__ bytearray"})


def _check_pickle(path: Path, names: list[str] | None) -> str | None:
    """Scan the pickled part of a torch file (``data.pkl`` of a zip archive, or the
    pickles of the legacy format) for :data:`_UNBOUNDED` calls, for the protocol-4
    global opcode, whose names this scan cannot see (``torch.save`` writes protocol 2),
    and for tuples past :data:`MAX_TUPLE_PARTS`, before torch unpickles it. A zip
    archive's ``data.pkl`` that is not one whole pickle is refused as damaged (torch said
    ``EOFError`` or ``UnicodeDecodeError``), and so are its other records and its tensor
    records where they do not fit (:func:`_check_records`); a damaged legacy file is left
    to ``torch.load``. Returns the opcode of ``data.pkl`` on which the dry run of
    :func:`_check_records` failed ("the APPEND opcode at byte 57"), which names the damage
    if ``torch.load`` fails too; ``None`` if it did not fail, and for a legacy file."""
    def calls(_count: int, name: str, arg: Any) -> None:
        if name in ("GLOBAL", "INST") and arg in _UNBOUNDED:
            raise DataError(path, f"refused: the file calls {arg.split()[-1]}, which makes "
                                  f"any number of bytes from a few (graphvae never saves "
                                  f"one)")
        if name == "STACK_GLOBAL":
            raise DataError(path, "refused: the file is pickled with protocol 4 or later, "
                                  "which torch.save never writes")

    if names is None:
        fh = io.BytesIO(path.read_bytes())
        try:
            for _ in range(5):                  # magic, protocol, info, object, keys
                for op, arg, _ in pickletools.genops(fh):
                    calls(0, op.name, arg)
        except DataError:
            raise
        except Exception:  # noqa: BLE001 - a damaged legacy pickle: torch.load names it
            return None
        _check_legacy_tuples(path, fh.getvalue())
        return None
    member = next(n for n in names if n == "data.pkl" or n.endswith("/data.pkl"))
    with zipfile.ZipFile(path) as z:
        data = _read_member(z, member)
    fault = pickle_fault(data, calls)           # the calls checked in the same pass
    if fault is not None:
        at, why = fault
        raise DataError(path, f"its data.pkl is not a pickle: it {why}" if at == 0
                        else f"damaged: its data.pkl {why}")
    return _check_records(path, member, data)


def _read_member(z: zipfile.ZipFile, name: str, limit: int = -1) -> bytes:
    """A member's bytes (at most ``limit``). One whose CRC is 0, as torch.save writes with
    its CRCs switched off, is read without :mod:`zipfile`'s check, which it would fail;
    :func:`check_zip_stored` checked the others."""
    info = z.getinfo(name)
    if info.CRC == 0:
        info = copy.copy(info)
        del info.CRC                    # (ZipExtFile checks a CRC only if its info has one)
    with z.open(info) as fh:
        return fh.read(limit)


class _StandIn:
    """What a global of ``data.pkl`` stands for in the dry run of :class:`_Storages`:
    calling it, building one with it as the class, setting its items or state, or appending
    to it makes or changes nothing, so no code of the file's choosing runs."""

    name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> _StandIn:
        return object.__new__(_StandIn)     # (NEWOBJ calls a stand-in's __new__ with it)

    def __init__(self, name: str = "") -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> _StandIn:
        return _StandIn()

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


#: The most parts a tuple of a torch file may have, counted as a tree (a part held twice
#: counts twice). A tuple holding the one before it twice, 40 deep, is a few hundred
#: bytes of pickle and 2⁴¹ parts: as a dict key, its hash would hold torch's reader for
#: hours (22 deep: 0.08 s; each level doubles it). graphvae's files hold tuples of a few
#: parts.
MAX_TUPLE_PARTS = 1 << 20


class TupleBomb(Exception):
    """A tuple of more than :data:`MAX_TUPLE_PARTS` parts."""


#: Python's own unpickler (untyped to mypy: its opcode methods are private).
_PyUnpickler: Any = pickle._Unpickler  # type: ignore[attr-defined]


class _Storages(_PyUnpickler):
    """Python's own unpickler (its memo is a dict, which a large memo index cannot
    inflate), with every global a :class:`_StandIn`, every persistent id collected, and
    every tuple's parts counted as a tree (:class:`TupleBomb` past
    :data:`MAX_TUPLE_PARTS`)."""

    dispatch: dict[int, Any] = dict(_PyUnpickler.dispatch)

    def __init__(self, fh: io.BytesIO) -> None:
        super().__init__(fh)
        self.ids: list[Any] = []
        self.parts: dict[int, tuple[int, tuple]] = {}   # id -> (parts, the tuple, kept)

    def find_class(self, module: str, name: str) -> _StandIn:
        return _StandIn(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> None:
        self.ids.append(pid)

    def count_parts(self) -> None:
        """After a tuple opcode: the new tuple's parts, 1 and its items' (a tuple's as
        counted when it was made, anything else 1)."""
        t = self.stack[-1]
        n = 1 + sum(self.parts[id(v)][0] if id(v) in self.parts else 1 for v in t)
        if n > MAX_TUPLE_PARTS:
            raise TupleBomb(n)
        self.parts[id(t)] = (n, t)


def _counted(load: Any) -> Any:
    def run(self: _Storages) -> None:
        load(self)
        self.count_parts()
    return run


for _op in (pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3):
    _Storages.dispatch[_op[0]] = _counted(_Storages.dispatch[_op[0]])


def _bomb(err: TupleBomb) -> str:
    return (f"refused: its pickle builds a tuple of {err.args[0]:,} parts or more (parts "
            f"held again inside themselves), past the {MAX_TUPLE_PARTS:,} allowed: hashing "
            f"or comparing it takes time in proportion, hours for a few hundred bytes of "
            f"file; graphvae never saves one")


def _check_legacy_tuples(path: Path, data: bytes) -> None:
    """The tuple count of :class:`_Storages` over the pickles of a legacy torch file (its
    magic number, protocol, system information, the object, its storage keys), in turn;
    anything else that fails is left to ``torch.load``."""
    fh = io.BytesIO(data)
    for _ in range(5):
        try:
            _Storages(fh).load()
        except TupleBomb as err:
            raise DataError(path, _bomb(err)) from None
        except Exception:  # noqa: BLE001 - torch.load names what else is wrong
            return


def _storage_bytes(kind: Any, numel: Any) -> tuple[int, str] | None:
    """The bytes torch reads for a storage of ``numel`` elements of the class ``kind``
    (``torch.FloatStorage``; ``torch.UntypedStorage`` holds bytes), and the dtype's name;
    ``None`` where torch would not get that far."""
    if not isinstance(kind, _StandIn) or type(numel) is not int or numel < 0:
        return None
    module, _, name = kind.name.rpartition(".")
    if module not in ("torch", "torch.storage"):    # (torch.FloatStorage, torch.storage.
        return None                                 # UntypedStorage)
    cls = getattr(torch, name, None)
    if cls is torch.UntypedStorage:
        return numel, "byte"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # TypedStorage is deprecated
        dtype = getattr(cls, "dtype", None)
    if not isinstance(dtype, torch.dtype):
        return None
    return numel * torch.empty((), dtype=dtype).element_size(), str(dtype).split(".")[-1]


#: The records beside ``data.pkl`` that torch reads as text: their first 64 bytes are
#: checked (what torch.save writes: ``3``, ``little``, 40 digits, ``64``).
_RECORDS = (".data/version", "version", "byteorder", ".data/serialization_id",
            ".storage_alignment")


def _check_version(path: Path, version: bytes) -> None:
    """:class:`DataError` unless the version record reads as torch reads it (an unsigned
    64-bit number, its leading digits only) and is 1 or more: a version of 0 or less was
    "Attempted to read a PyTorch file with version 0, but the minimum supported version
    …", one of 2^64 or more an ``IndexError: stoull``. Above torch's newest, torch's
    words stand (they name both versions)."""
    digits = re.match(rb"\s*([+-]?[0-9]+)", version)
    if digits is None:
        raise DataError(path, f"damaged: its version record holds {quote(version[:40])}, "
                              f"not a number")
    number = int(digits[1])
    if number < 1:
        raise DataError(path, f"damaged: its version record holds {quote(version[:40])}; "
                              f"torch files are of version 1 and up")
    if number >= 2 ** 64:
        raise DataError(path, f"damaged: its version record holds a number past 64 bits "
                              f"({quote(version[:40])})")


def _check_records(path: Path, member: str, data: bytes) -> str | None:
    """Refuse, before ``torch.load`` does in its own words, a zip archive whose version
    record is not a number ("Couldn't parse the version ... as Long Long") or not one torch
    takes (:func:`_check_version`), whose byteorder record is neither ``little`` nor
    ``big``, whose serialization id is not UTF-8 (``UnicodeDecodeError``), whose storage
    alignment is not a number (``invalid literal for int()``), or whose ``data.pkl`` names
    a tensor record the archive lacks, or one of another size than the values it describes
    ("record size ... does not match expected size"); and one whose ``data.pkl`` builds a
    tuple past :data:`MAX_TUPLE_PARTS`. The records and tuples are found by unpickling
    ``data.pkl`` with stand-ins (:class:`_Storages`); a pickle that cannot be so read is
    left to ``torch.load``, and the opcode it failed on is returned
    (:func:`~graphvae.safe_pickle.failed_opcode`: opcodes that do not fit together), else
    ``None``."""
    prefix = member[:-len("data.pkl")]
    with zipfile.ZipFile(path) as z:
        sizes = {i.filename: i.file_size for i in z.infolist()}
        head = {n: _read_member(z, prefix + n, 64) for n in _RECORDS if prefix + n in sizes}
    version = head.get(".data/version", head.get("version"))
    if version is not None:
        _check_version(path, version)
    if head.get("byteorder", b"little") not in (b"little", b"big"):
        raise DataError(path, f"damaged: its byteorder record holds "
                              f"{quote(head['byteorder'][:40])}, not little or big")
    try:
        head.get(".data/serialization_id", b"").decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(path, "damaged: its serialization id record is not UTF-8 text") \
            from None
    try:
        int(head.get(".storage_alignment", b"64"))     # as torch reads it
    except ValueError:
        raise DataError(path, f"damaged: its storage alignment record holds "
                              f"{quote(head['.storage_alignment'][:40])}, not a "
                              f"number") from None
    fh = io.BytesIO(data)
    reader = _Storages(fh)
    try:
        reader.load()
    except TupleBomb as err:
        raise DataError(path, _bomb(err)) from None
    except Exception:  # noqa: BLE001 - named by its opcode if torch.load fails too
        return failed_opcode(data, reader, fh)
    seen: set[str] = set()
    for pid in reader.ids:
        if type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage" \
                or not isinstance(pid[2], str) or pid[2] in seen:
            continue
        seen.add(pid[2])
        need = _storage_bytes(pid[1], pid[4])
        if need is None:
            continue
        record = f"{prefix}data/{pid[2]}"
        if record not in sizes:
            raise DataError(path, f"damaged: its data.pkl names the tensor record "
                                  f"{quote(record[:80])}, which the archive does not hold")
        if sizes[record] != need[0]:
            raise DataError(path, f"damaged: its tensor record {quote(record[:80])} holds "
                                  f"{sizes[record]:,} bytes, where data.pkl describes "
                                  f"{pid[4]:,} {need[1]} values ({need[0]:,} bytes)")
    return None


def refusal(err: Exception) -> str:
    """What torch's weights-only unpickler refused, from its message, without the advice
    around it (to load the file with ``weights_only=False``: to run its code)."""
    text = " ".join(str(err).split())
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].strip()
        for cut in (" Please use", " Check the documentation"):
            text = text.split(cut, 1)[0]
        return text.strip()[:160] or "not a torch checkpoint"
    skip = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(skip) and "weights_only" not in ln]
    return lines[0][:160] if lines else "not a torch checkpoint"


# checks of the loaded tensors live in weight_checks; kept importable here
__all__ = ["MAX_TUPLE_PARTS", "TORCH_MAGIC", "TupleBomb", "castable", "check_dtypes",
           "check_plain_entries", "check_tensor_storage", "check_weight_storage",
           "check_zip_stored", "load_torch", "nan_weight", "not_plain", "refusal",
           "shape_misfit"]
