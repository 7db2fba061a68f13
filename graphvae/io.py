"""Reading users' text files, and writing outputs so that a kill never leaves a mixed or
half-written result.

* Every file is written to a temporary file beside its target and renamed into place
  (:func:`atomic_path`, :func:`save_atomic`, :func:`write_json`, :func:`write_text`).
* A run's output folder is written whole (:func:`output_folder`): the run writes into a
  fresh hidden folder beside ``--out``, ``manifest.json`` (every file with its size and
  SHA-256, and the environment it was computed in: :mod:`graphvae.provenance`) goes in
  last, and the folder then replaces ``--out`` by renames. A folder that ``--out``
  names is therefore either absent or complete and from one run. Leftovers of killed
  runs (their process gone) are removed by the next run into the same parent folder.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import json
import math
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from graphvae.errors import DataError, describe, quote
from graphvae.provenance import environment

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
    written."""
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = os.fsencode(path.name)[:100].decode("utf-8", "ignore")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{stem}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        try:
            old = path.lstat().st_mode
            mode = stat.S_IMODE(old) if stat.S_ISREG(old) else 0o666 & ~_umask()
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
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


MANIFEST = "manifest.json"
_STAGE, _OLD = "tmp", "old"


@functools.cache
def _machine() -> str:
    """8 hex digits naming this host and process-id namespace: a process id means nothing
    on another host sharing the folder (NFS) or in another container, so a leftover is
    judged dead only by the machine that made it."""
    try:
        ns = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        ns = ""
    return hashlib.sha256(f"{socket.gethostname()}/{ns}".encode()).hexdigest()[:8]


def _stage_name(out: Path, kind: str) -> str:
    return f".{out.name}.{kind}-{_machine()}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours
        return True
    return True


_LEFTOVER = re.compile(r"(?:(?P<machine>[0-9a-f]{8})-)?(?P<pid>[0-9]{1,10})-[a-z0-9_]{8}")


def _leftovers(out: Path) -> list[tuple[Path, str]]:
    """``(path, kind)`` of the staging / replaced folders of dead processes beside ``out``."""
    found = []
    for kind in (_STAGE, _OLD):
        prefix = f".{out.name}.{kind}-"
        # matched literally: a name holding glob characters (?, *, [) must not match
        # another run's leftovers
        for p in out.parent.glob(".*"):
            if not p.name.startswith(prefix):
                continue
            # exactly the names graphvae makes: <machine>-<pid>-<mkdtemp's 8 characters> or
            # <machine>-<pid>-<8 hex digits> (older versions: no <machine>); a folder of yours
            # named like ".o.tmp-2024-backup" is not. Another machine's are left alone.
            m = _LEFTOVER.fullmatch(p.name[len(prefix):])
            if m and m["machine"] in (None, _machine()) and not _pid_alive(int(m["pid"])):
                found.append((p, kind))
    return found


def clean_leftovers(out: Path) -> None:
    """Remove what killed runs left beside ``out``; if a kill fell between the two renames
    that replace a folder, put the complete old folder back first."""
    for p, kind in _leftovers(out):
        if kind == _OLD and not out.exists() and (p / MANIFEST).is_file():
            os.replace(p, out)
        elif kind == _OLD and not p.is_symlink() and p.is_dir() and foreign_files(p):
            # killed while replacing a folder that had gained files: keep them in view
            os.replace(p, out.parent / f"{out.name}.replaced-{uuid.uuid4().hex[:8]}")
        else:
            shutil.rmtree(p, ignore_errors=True)


def foreign_files(path: Path) -> list[str]:
    """What in the folder ``path`` this package did not write, as paths inside it: nothing
    for an empty folder; for a folder whose ``manifest.json`` says graphvae wrote it, every
    file or folder the manifest does not list and every listed file whose size or SHA-256
    changed (the digest is compared where the manifest has one);
    for any other folder, what its top level holds."""
    listed: dict[str, Any] | None = None
    try:
        manifest = read_json(path / MANIFEST)
        if isinstance(manifest, dict) and manifest.get("written_by") == "graphvae" \
                and isinstance(manifest.get("files"), dict):
            listed = manifest["files"]
    except (OSError, ValueError):   # DataError among them: then the folder is not ours
        pass
    if listed is None:                               # the top level is enough to refuse
        return sorted(p.name for p in path.iterdir())
    entries = sorted(path.rglob("*"))
    keep = {MANIFEST} | {str(parent) for name in listed
                         for parent in Path(name).parents if str(parent) != "."}
    out = []
    for p in entries:
        name = str(p.relative_to(path))
        if name in keep and (p.is_dir() or name == MANIFEST) and not p.is_symlink():
            continue
        info = listed.get(name)
        if isinstance(info, dict) and p.is_file() and not p.is_symlink() \
                and p.stat().st_size == info.get("bytes") \
                and info.get("sha256") in (None, file_digest(p)):
            continue
        out.append(name)
    return out


def _first_names(names: list[str]) -> str:
    """The first three of ``names``, and how many more."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_output_folder(out: str | os.PathLike) -> Path:
    """Check, before any training, that ``out`` can be (re)written as a run's folder: a new
    path, an empty folder, or a folder a graphvae command wrote, holding only what its
    manifest lists (:func:`foreign_files`)."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        raise ValueError(f"--out {str(out) or repr('')} names no folder of its own (graphvae "
                         "replaces its output folder as a whole); give a path such as "
                         "runs/name")
    if out.is_symlink() and not out.exists():
        raise ValueError(f"--out {out} is a symbolic link to nothing "
                         f"({os.readlink(out)}); give a folder path")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder; give a folder path")
    if out.is_dir():
        foreign = foreign_files(out)
        if foreign:
            raise ValueError(f"--out {out} is a folder with other files in it "
                             f"({_first_names(foreign)}); "
                             "graphvae replaces its output folder as a whole, so give a new "
                             "or empty folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the folder for --out {out}: {describe(err)}") from None
    check_writable(out)
    return out


def check_writable(out: Path) -> None:
    """A one-line ``ValueError`` unless a file can be written beside ``out``: a real write
    (removed at once), so that the reason (read-only, permission, disk full) is the OS's."""
    try:
        fd, probe = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"cannot write to {out.parent} (for --out {out}): "
                         f"{describe(err)}") from None


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest(stage: Path, run_id: str, command: str,
              device: torch.device | str | None = None) -> dict[str, Any]:
    files = {str(p.relative_to(stage)): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
             for p in sorted(stage.rglob("*")) if p.is_file()}
    return {"written_by": "graphvae", "run_id": run_id, "command": command,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": files,
            "environment": environment(device)}


def _replace_folder(stage: Path, out: Path) -> None:
    """``stage`` becomes ``out``: two renames, the old folder moved aside first (a kill
    between them leaves ``out`` absent, and :func:`clean_leftovers` puts the old one back).
    The old folder is checked again once aside (the run may have lasted hours since
    :func:`check_output_folder`): if it holds files graphvae did not write, it is kept
    beside ``out`` as ``<name>.replaced-<id>``, and stderr says so."""
    if out.exists() or out.is_symlink():
        old = out.parent / f"{_stage_name(out, _OLD)}{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        os.replace(stage, out)
        if old.is_symlink():                # --out was a link: the folder it named stays
            old.unlink()
            return
        foreign = foreign_files(old) if old.is_dir() else [old.name]
        if not foreign:
            shutil.rmtree(old, ignore_errors=True)
            return
        kept = out.parent / f"{out.name}.replaced-{uuid.uuid4().hex[:8]}"
        os.replace(old, kept)
        print(f"graphvae: {out} gained files during the run ({_first_names(foreign)}); its "
              f"old contents are kept in {kept}", file=sys.stderr)
    else:
        os.replace(stage, out)


@contextmanager
def output_folder(out: str | os.PathLike | None, command: str = "graphvae",
                  device: torch.device | str | None = None):
    """Yield a fresh staging folder for a run whose outputs go to ``out`` (``None``: yield
    ``None``, nothing is written). On success the staging folder gets ``manifest.json``
    and replaces ``out``; on an exception it is removed and ``out`` is left as it was.
    The manifest's environment is read when the block ends, with ``device`` (a CUDA
    run's GPU is recorded): enter the run's thread setting (``threads_for``) outside this
    block, so that the manifest records the threads the run used."""
    if out is None:
        yield None
        return
    out = check_output_folder(out)
    clean_leftovers(out)
    try:
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=_stage_name(out, _STAGE)))
    except OSError as err:
        raise ValueError(f"cannot write to {out.parent} (for --out {out}): "
                         f"{describe(err)}") from None
    try:
        yield stage
        write_json(_manifest(stage, uuid.uuid4().hex, command, device), stage / MANIFEST)
        os.chmod(stage, 0o777 & ~_umask())
        _replace_folder(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
