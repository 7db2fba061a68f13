"""Writing each output file atomically: to a temporary file beside its target, renamed
into place (:func:`atomic_path`, :func:`save_atomic`, :func:`write_json`,
:func:`write_text`), so that a kill never leaves a half-written file, and a full disk is
one line naming the target (:class:`~graphvae.errors.WriteError`). A run's whole output
folder is written by :mod:`graphvae.run_folder`; :mod:`graphvae.io` gives these names too.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from graphvae.errors import DataError, WriteError, describe, one_line, quote
from graphvae.processes import owner_gone, owner_of, owner_tag

#: The longest file name (bytes) that Linux file systems take.
NAME_MAX = 255


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` as a file to write (atomically, by renaming over it): absent, a regular
    file, or a link (replaced, its target untouched). Anything else is refused in one line,
    before any work: a folder, and a device or FIFO, which the rename would replace (run as
    root, a benchmark's ``--out /dev/full`` replaced the device with a JSON file), and a
    name longer than a file name can be."""
    text = os.fspath(path)
    if not text:                              # Path("") is "." (a folder)
        raise ValueError("cannot write '': an empty file name")
    if text.endswith(os.sep):                 # Path() drops the slash: "new/" wrote "new"
        raise ValueError(f"cannot write {quote(text)}: it names a folder (it ends in "
                         f"{os.sep}), and this writes a file")
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
    blocking = file_above(path)
    if blocking is not None:
        raise ValueError(f"cannot write {path}: {blocking} is not a folder")
    return path


def file_above(path: Path) -> Path | None:
    """The nearest existing path above ``path`` when it is not a folder (a file where a
    folder of ``path`` should be), else ``None``."""
    parent = path.parent
    while not (parent.exists() or parent.is_symlink()) and parent != parent.parent:
        parent = parent.parent
    return None if parent.is_dir() else parent


def results_file(out: str | os.PathLike | None, default: str | os.PathLike,
                 smoke: bool) -> Path:
    """A benchmark's ``--out``, checked by :func:`check_output_file`: ``out`` when given,
    else ``default`` (its committed results), or with ``--smoke`` the sibling
    ``NAME.smoke.json``, so that a smoke run never overwrites the measured results: a
    smoke run given a measured report's name in that folder as ``out`` (a full run's
    command with ``--smoke`` added) is refused in one line, as is an existing file that is
    not a JSON object (a report is one)."""
    path = Path(default)
    if out is None:
        out = path.with_name(f"{path.stem}.smoke{path.suffix}") if smoke else path
    elif smoke and not Path(out).name.endswith(".smoke.json") and \
            Path(os.path.realpath(out)).parent == Path(os.path.realpath(path)).parent:
        # (real paths: a link to the repository reached its reports by another name)
        raise ValueError(f"--smoke with --out {out}: a smoke run would replace a measured "
                         f"report of {path.parent}; drop --out (it then writes "
                         f"{path.stem}.smoke{path.suffix}) or name a file elsewhere, or one "
                         f"ending in .smoke.json")
    out = check_output_file(out)
    if out.is_file():                     # a note of yours at --out is not replaced
        from graphvae.io import read_json  # (io imports this module)
        try:
            old = read_json(out)
        except DataError:
            old = None
        if not isinstance(old, dict):
            raise ValueError(f"--out {out} is not a benchmark report (a JSON object), and "
                             f"this run would replace it: name another file")
    check_writable(out, create=True)
    return out


def check_writable(out: Path, create: bool = False) -> None:
    """A one-line ``ValueError`` unless a file can be written beside ``out``: a real write
    (removed at once), so that the reason (read-only, permission, disk full) is the OS's,
    before a long run rather than at its last write. ``create``: make the missing folders
    above ``out`` first, as its write would."""
    if create:
        blocking = file_above(out)
        if blocking is not None:
            raise ValueError(f"cannot create the folder for --out {out}: {blocking} is a "
                             f"file, not a folder")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"cannot create the folder for --out {out}: "
                             f"{describe(err)}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:          # (the OS's reason: the probe's own name says nothing)
        raise ValueError(f"cannot write to {out.parent} (for --out {out}): "
                         f"{err.strerror or describe(err)}") from None


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
        owner = owner_of(name[len(prefix):-len(".tmp")])
        if owner is not None and owner_gone(*owner):
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
    """``torch.save(obj)`` atomically. Into an open file, not the temporary path: torch names
    the zip's inner folder after a path it is given (the temporary file's name, which holds
    the machine, the process id and a random part: ``.model.pt.<...>/data.pkl``),
    so two runs of one seed wrote different bytes; a file object gets ``archive/``."""
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
    return _write(path, save)


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


__all__ = ["NAME_MAX", "atomic_path", "check_output_file", "check_writable", "json_text",
           "results_file", "save_atomic", "umask", "write_json", "write_text"]
