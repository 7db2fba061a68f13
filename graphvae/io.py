"""Reading users' text files, and writing each output file atomically (to a temporary
file beside its target, renamed into place: :func:`atomic_path`, :func:`save_atomic`,
:func:`write_json`, :func:`write_text`), so that a kill never leaves a half-written file.
A run's whole output folder is written by :mod:`graphvae.run_folder`.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from graphvae.errors import DataError, WriteError, describe, one_line, quote
from graphvae.processes import owner_gone, owner_tag

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
         (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root`` if given, else ``$GRAPHVAE_DATA``, else ``./data``."""
    if data_root is not None:
        return Path(data_root)
    return Path(os.environ.get("GRAPHVAE_DATA") or "data")


def check_zip_stored(path: str | os.PathLike) -> None:
    """Refuse a zip archive (what ``torch.save`` and ``numpy.savez`` write) that holds a
    compressed member or members larger than the file: neither writer compresses, and a
    deflated member of zeros inflates about a thousandfold when read. A file that starts
    as a zip archive but which :mod:`zipfile` cannot read is refused too (torch or numpy
    might read it without this check); other files pass (their readers say what they
    are)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise DataError(path, f"cannot read the file ({describe(err)})") from None
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        return
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
        size = path.stat().st_size
    except OSError as err:
        raise DataError(path, f"cannot read the file ({describe(err)})") from None
    except Exception as err:  # noqa: BLE001 - zipfile raises several types
        raise DataError(path, f"not a readable zip archive ({describe(err)})") from None
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise DataError(path, f"holds a compressed member ({info.filename[:80]}); "
                                  f"torch.save and numpy.savez never compress")
    claimed = sum(info.file_size for info in infos)
    if claimed > size:
        raise DataError(path, f"its members claim {claimed:,} bytes, more than the file's "
                              f"{size:,}")


def nan_weight(state: dict[str, torch.Tensor]) -> str | None:
    """The first weight of ``state`` that holds NaN, or ``None``: no graphvae run saves one
    (training stops on a non-finite loss). ``-inf`` is allowed: a log-probability of 0."""
    return next((k for k, v in state.items() if v.is_floating_point() and bool(v.isnan().any())),
                None)


def check_weight_storage(state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse weights that hold fewer bytes than their shapes claim: a tensor saved as a
    view that repeats one value (stride 0) or many tensors on one storage would let a
    small file ask for a model of any size, which is built before its weights load."""
    storages: dict[tuple[int, int], int] = {}
    need = 0
    for k, v in state.items():
        st = v.untyped_storage()
        nbytes = v.numel() * v.element_size()
        if nbytes > st.nbytes():
            raise DataError(path, f"the weights hold fewer values than their shapes: {k} has "
                                  f"shape {tuple(v.shape)} on a storage of {st.nbytes()} bytes")
        storages[st.data_ptr(), st.nbytes()] = st.nbytes()
        need += nbytes
    have = sum(storages.values())
    if need > have:
        raise DataError(path, f"the weights hold fewer values than their shapes: {need} bytes "
                              f"of tensors on {have} bytes of storage")


def require_file(path: str | os.PathLike, missing: str = "no such file") -> Path:
    """``path`` if it is a regular file; else a :class:`~graphvae.errors.DataError` that
    says what it is instead (missing, a folder, or a FIFO / device / socket)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        raise DataError(path, "is a folder, not a file")
    raise DataError(path, missing if not path.exists() else "not a regular file")


def read_bytes(path: str | os.PathLike, missing: str = "no such file",
               max_bytes: int | None = None) -> bytes:
    """A regular file's bytes (at most ``max_bytes``, if given), or a
    :class:`~graphvae.errors.DataError` naming it."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "is a folder, not a file")
    if not path.is_file():
        raise DataError(path, missing if not path.exists() else "not a regular file")
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise DataError(path, f"{path.stat().st_size:,} bytes is more than the "
                                  f"{max_bytes:,} such a file may have")
        return path.read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot read the file ({describe(err)})") from None


def read_text(path: str | os.PathLike, max_bytes: int | None = None) -> str:
    """A text file's contents: UTF-8, or UTF-8 / UTF-16 / UTF-32 with a byte-order mark.

    :class:`~graphvae.errors.DataError` (naming the file and line) for bytes that are not
    UTF-8 and for NUL characters, which is what UTF-16 without a byte-order mark looks like.
    """
    path = Path(path)
    raw = read_bytes(path, max_bytes=max_bytes)
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise DataError(path, f"not {encoding} text (byte 0x{raw[err.start]:02x}); save the "
                              f"file as UTF-8", line) from None
    if "\0" in text:
        line = text[:text.index("\0")].count("\n") + 1
        raise DataError(path, "contains NUL characters (UTF-16 without a byte-order mark?); "
                              "save the file as UTF-8", line)
    return text.lstrip("\ufeff")


#: The largest JSON file read (configs, manifests, a run's metrics.json).
MAX_JSON_BYTES = 64 << 20


class RepeatedKey(ValueError):
    """A JSON object names one key twice (Python's reader keeps the last silently)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise RepeatedKey(key)
        out[key] = value
    return out


def _not_a_number(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON number")


def parse_json(text: str) -> Any:
    """``json.loads`` refusing what is not JSON, though Python reads it: ``NaN`` and
    ``Infinity`` (``ValueError``) and an object naming a key twice (:class:`RepeatedKey`,
    whose argument is the key)."""
    return json.loads(text, object_pairs_hook=_object, parse_constant=_not_a_number)


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's value; :class:`~graphvae.errors.DataError` naming the file for a file
    that is missing, not regular, over :data:`MAX_JSON_BYTES`, not UTF-8 or not JSON
    (nesting too deep, integers of thousands of digits, ``NaN`` / ``Infinity`` and a key
    named twice in one object included)."""
    text = read_text(path, max_bytes=MAX_JSON_BYTES)
    try:
        return parse_json(text)
    except RepeatedKey as err:
        raise DataError(path, f"not JSON: the key {err.args[0]!r} appears twice in an "
                              f"object") from None
    except (ValueError, RecursionError) as err:
        raise DataError(path, f"not JSON ({describe(err)})") from None


def is_number(cell: str) -> bool:
    """Whether a text cell reads as a float (the header tests of the CSV readers)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def text_lines(path: str | os.PathLike) -> list[str]:
    """:func:`read_text` split at ``\\n``, ``\\r\\n`` or ``\\r``: the file's own lines."""
    lines = read_text(path).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and not lines[-1] else lines  # no line after the last newline


def csv_rows(path: str | os.PathLike, delimiter: str = ","):
    """Yield ``(line_number, cells)`` of a CSV / TSV file read by :func:`text_lines`; a
    malformed line (over-long cell, a quote left open) is a :class:`DataError` naming it."""
    lines = text_lines(path)
    reader = csv.reader(lines, delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            if reader.line_num > start:  # only a quote lets a record span lines
                raise DataError(path, "a quoted cell runs over several lines (unterminated "
                                      "quote?)", start)
            start = reader.line_num + 1
            yield reader.line_num, cells
    except csv.Error as err:
        raise DataError(path, f"not a valid {'CSV' if delimiter == ',' else 'TSV'} line "
                              f"({err})", max(reader.line_num, 1)) from None


#: The longest file name (bytes) that Linux file systems take.
NAME_MAX = 255


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` as a file to write (atomically, by renaming over it): absent, a regular
    file, or a link (replaced, its target untouched). Anything else is refused in one line,
    before any work: a folder, and a device or FIFO, which the rename would replace (run as
    root, a benchmark's ``--out /dev/full`` replaced the device with a JSON file), and a
    name longer than a file name can be."""
    path = Path(path)
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise ValueError(f"cannot write {quote(str(path))}: its name is longer than "
                         f"{NAME_MAX} bytes")
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):     # (under a file: below)
        mode = None
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ValueError(f"cannot write {path}: it is {kind}, and writing would replace it")
    parent = path.parent
    while not (parent.exists() or parent.is_symlink()) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot write {path}: {parent} is not a folder")
    return path


def results_file(out: str | os.PathLike | None, default: str | os.PathLike,
                 smoke: bool) -> Path:
    """A benchmark's ``--out``, checked by :func:`check_output_file`: ``out`` when given,
    else ``default`` (its committed results), or with ``--smoke`` the sibling
    ``NAME.smoke.json``, so that a smoke run never overwrites the measured results."""
    if out is None:
        path = Path(default)
        out = path.with_name(f"{path.stem}.smoke{path.suffix}") if smoke else path
    return check_output_file(out)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it to ``path`` (which
    :func:`check_output_file` allows). The file gets the mode of the regular file it
    replaces (a private file stays private), else ``0o666`` less the umask. The temporary
    name starts with at most 100 bytes of the target's, so that any legal name can be
    written, and names the machine and process writing it
    (``.NAME.<machine>-<pid>-XXXXXXXX.tmp``): a SIGKILL leaves it behind (a
    10-GB edge list of ``make-graph``), and the next write to the same name removes those
    whose process is gone (:mod:`graphvae.processes`)."""
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = os.fsencode(path.name)[:100].decode("utf-8", "ignore")
    _remove_dead_temporaries(path.parent, f".{stem}.")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{stem}.{owner_tag()}", suffix=".tmp")
    os.close(fd)
    try:
        try:
            yield Path(tmp)
        except (OSError, RuntimeError) as err:
            raise _write_error(err, path, Path(tmp)) from None
        try:
            old = path.lstat().st_mode
            mode = stat.S_IMODE(old) if stat.S_ISREG(old) else 0o666 & ~umask()
        except FileNotFoundError:
            mode = 0o666 & ~umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


_TEMPORARY = re.compile(r"(?P<machine>[0-9a-f]{8})-(?P<pid>[0-9]{1,10})-[a-z0-9_]{8}\.tmp")


def _remove_dead_temporaries(folder: Path, prefix: str) -> None:
    """Remove the temporary files ``<prefix><machine>-<pid>-XXXXXXXX.tmp`` in ``folder``
    that killed writers of this machine left (a live writer's stay; so do files of yours
    not named exactly so)."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.startswith(prefix)
                     and e.name.endswith(".tmp") and e.is_file(follow_symlinks=False)]
    except OSError:
        return
    for name in names:
        m = _TEMPORARY.fullmatch(name[len(prefix):])
        if m and owner_gone(m["machine"], int(m["pid"])):
            with contextlib.suppress(OSError):
                (folder / name).unlink()


def _write_error(err: OSError | RuntimeError, path: Path, tmp: Path) -> BaseException:
    """``err``, raised while writing ``tmp`` for ``path``, as a :class:`WriteError` naming
    ``path``: an ``OSError`` keeps its errno and reason (a full disk: "No space left on
    device"); torch's serialiser reports a write that stopped part-way (a full disk) as a
    ``RuntimeError`` ("unexpected pos ..."), which was an internal error. Other errors
    pass through as they are."""
    if isinstance(err, WriteError) and err.filename != str(tmp):
        return err                              # named already (a nested atomic write's own
    if isinstance(err, OSError):                # temporary file is named as its target)
        if err.filename not in (None, str(tmp), tmp):
            return err                          # another file's error: its own name
        return WriteError(err.errno, err.strerror or describe(err), str(path))
    text = str(err)
    if not any(m in text for m in ("PytorchStreamWriter", "unexpected pos", "file write failed")):
        return err
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    first = one_line(text.strip().splitlines()[0] if text.strip() else type(err).__name__)
    if free is not None and free < 1 << 20:
        return WriteError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free:,} bytes free; "
                                        f"torch: {first})", str(path))
    return WriteError(errno.EIO, f"the write stopped part-way (torch: {first})", str(path))


def umask() -> int:
    """The process's umask, read from /proc where it can be (setting it to 0 for a moment
    and back would make a file another thread creates then world-writable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(path: str | os.PathLike, writer: Callable[[Path], object]) -> Path:
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` atomically."""
    return _write(path, lambda tmp: torch.save(obj, tmp))


def _json_safe(obj: Any) -> Any:
    """``obj`` with NaN and infinite floats as ``None``: JSON has no such numbers, and a
    file holding Python's ``NaN`` is not JSON to other readers."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def json_text(obj: Any, indent: int | None = None) -> str:
    """Standard JSON text of ``obj``: NaN and infinities as ``null`` (Python's ``json``
    writes ``NaN`` and ``-Infinity``, which other parsers refuse)."""
    return json.dumps(_json_safe(obj), indent=indent, allow_nan=False)


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """JSON (indented) atomically; NaN and infinities are written as ``null``."""
    text = json_text(obj, indent=2) + "\n"
    return _write(path, lambda tmp: tmp.write_text(text))


def write_text(text: str, path: str | os.PathLike) -> Path:
    return _write(path, lambda tmp: tmp.write_text(text))


#: Names that moved to :mod:`graphvae.run_folder`, still importable from here (loaded on
#: first use: run_folder imports this module).
_MOVED = frozenset({"MANIFEST", "check_output_folder", "check_writable", "clean_leftovers",
                    "file_digest", "foreign_files", "output_folder"})


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from graphvae import run_folder
        return getattr(run_folder, name)
    raise AttributeError(f"module 'graphvae.io' has no attribute {name!r}")
