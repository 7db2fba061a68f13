"""A run's output folder, written whole so that a kill never leaves a mixed or
half-written result (:func:`output_folder`).

The run writes into a fresh hidden folder beside ``--out``; ``manifest.json`` (every
file with its size and SHA-256, and the environment it was computed in:
:mod:`graphvae.provenance`) goes in last, and the folder then replaces ``--out`` by
renames. A folder that ``--out`` names is therefore either absent or complete and from
one run. Leftovers of killed runs (their process gone) are removed by the next run into
the same parent folder. Each file inside is written atomically by :mod:`graphvae.io`.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from graphvae.atomic import check_writable
from graphvae.errors import DataError, describe, quote
from graphvae.io import MAX_SMALL_JSON_BYTES, NAME_MAX, WriteError, read_json, umask, write_json
from graphvae.processes import machine_id as _machine
from graphvae.processes import owner_gone, owner_of, owner_tag, pid_alive
from graphvae.provenance import environment

MANIFEST = "manifest.json"
_STAGE, _OLD, _NEW = "tmp", "old", "new"


def _stage_name(out: Path, kind: str, pid: int | None = None) -> str:
    """The start of the name of a run's ``kind`` of folder beside ``out`` (mkdtemp adds 8
    characters), for process ``pid`` (default: this one)."""
    return f".{out.name}.{kind}-{owner_tag(pid)}"


def _named_beside(out: Path, kinds: tuple[str, ...]
                  ) -> list[tuple[Path, str, str | None, int]]:
    """``(path, kind, machine, pid)`` of the folders beside ``out`` named as graphvae names
    its ``kinds`` of folder (staging, replaced, half-made): exactly
    ``.NAME.<kind>-<machine>-<pid>-<mkdtemp's 8 characters>`` or ``…-<8 hex digits>``
    (older versions: no ``<machine>``, then ``None``). A folder of yours named like
    ``.o.tmp-2024-backup`` is not one."""
    try:                 # matched literally: a name holding glob characters (?, *, [) must
        beside = list(out.parent.glob(".*"))          # not match another run's folders
    except OSError:
        return []
    found = []
    for kind in kinds:
        prefix = f".{out.name}.{kind}-"
        for p in beside:
            owner = owner_of(p.name[len(prefix):], legacy=True) \
                if p.name.startswith(prefix) else None
            if owner is not None:
                found.append((p, kind, *owner))
    return found


def _leftovers(out: Path) -> list[tuple[Path, str]]:
    """``(path, kind)`` of the staging / replaced / half-made folders of dead processes
    beside ``out`` (another machine's are left alone)."""
    return [(p, kind) for p, kind, machine, pid in _named_beside(out, (_STAGE, _OLD, _NEW))
            if owner_gone(machine, pid)]


def _live_writer(out: Path) -> tuple[int, Path] | None:
    """``(process id, staging folder)`` of another live run of this machine staging a
    folder for ``out``: its process is alive and holds the folder's lock (a killed run's
    folder whose process id was reused by another program is not one)."""
    for path, _, machine, pid in _named_beside(out, (_STAGE,)):
        if machine == _machine() and pid != os.getpid() and pid_alive(pid) \
                and _locked(path):
            return pid, path
    return None


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
    manifest = _graphvae_manifest(path)
    if manifest is None:                             # the top level is enough to refuse
        return sorted(p.name for p in path.iterdir())
    listed: dict[str, Any] = manifest["files"]
    entries = sorted(path.rglob("*"))
    # a folder is ours when it holds a listed name; tested from the folders found, as every
    # parent of every listed name cost d² for a name of d parts (80 KB of "a/a/...": 1.8 GB)
    names = sorted(listed)

    def holds_listed(folder: str) -> bool:
        i = bisect.bisect_left(names, folder + "/")
        return i < len(names) and names[i].startswith(folder + "/")

    out = []
    for p in entries:
        name = str(p.relative_to(path))
        if not p.is_symlink() and (name == MANIFEST or p.is_dir() and holds_listed(name)):
            continue
        if _as_listed(p, listed.get(name)):
            continue
        out.append(name)
    return out


def _as_listed(path: Path, info: Any) -> bool:
    """Whether ``path`` is the file a manifest entry ``info`` lists: a regular file, not a
    link, of its size and (where the entry has one) its SHA-256."""
    return isinstance(info, dict) and path.is_file() and not path.is_symlink() \
        and path.stat().st_size == info.get("bytes") \
        and info.get("sha256") in (None, file_digest(path))


def _first_names(names: list[str]) -> str:
    """The first three of ``names``, and how many more."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def resolved_parent(out: Path, whole: bool = False) -> Path:
    """``out``'s folder (``whole``: ``out`` itself) with its links resolved; a one-line
    ``ValueError`` where that fails (a loop of links raises ``RuntimeError``)."""
    try:
        return out.resolve() if whole else out.parent.resolve()
    except (RuntimeError, OSError) as err:
        raise ValueError(f"--out {out}: its folder cannot be resolved "
                         f"({describe(err)}); give a folder path") from None


def check_output_folder(out: str | os.PathLike, command: str | None = None) -> Path:
    """Check, before any training, that ``out`` can be (re)written as a run's folder: a new
    path, an empty folder, or a folder a graphvae command wrote, holding only what its
    manifest lists (:func:`foreign_files`); with ``command`` (``"graphvae score"``), a run
    of that same command (another command's model and samples are not replaced)."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        raise ValueError(f"--out {str(out) or repr('')} names no folder of its own (graphvae "
                         "replaces its output folder as a whole); give a path such as "
                         "runs/name")
    resolved_parent(out)
    if out.is_symlink() and not out.exists():
        raise ValueError(f"--out {out} is a symbolic link to nothing "
                         f"({os.readlink(out)}); give a folder path")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder; give a folder path")
    longest = len(os.fsencode(_stage_name(out, _STAGE, pid=10 ** 10 - 1))) + 8
    if longest > NAME_MAX:
        raise ValueError(f"--out {quote(out.name)}: the hidden folder a run writes beside it "
                         f"('.NAME.tmp-…', {longest - len(os.fsencode(out.name))} bytes more) "
                         f"would be longer than {NAME_MAX} bytes; use a shorter name")
    writer = _live_writer(out)
    if writer is not None:
        raise ValueError(f"--out {out} is being written by another graphvae run (process "
                         f"{writer[0]} on this machine, into {writer[1].name}): the later run "
                         f"would replace its results and share its training state; wait for "
                         f"it, or give another --out")
    if out.is_dir():
        foreign = foreign_files(out)
        if foreign:
            raise ValueError(f"--out {out} is a folder with other files in it "
                             f"({_first_names(foreign)}); "
                             "graphvae replaces its output folder as a whole, so give a new "
                             "or empty folder")
        theirs = written_by(out)
        if command is not None and theirs is not None and theirs != command:
            raise ValueError(f"--out {out} holds a run of {theirs} "
                             f"({_first_names(sorted(p.name for p in out.iterdir()))}), which "
                             f"{command} would replace: give another --out, or delete the "
                             f"folder first")
    check_writable(out, create=True)
    if out.is_dir():
        _check_movable(out)
    return out


def _check_movable(out: Path) -> None:
    """A one-line ``ValueError`` unless the folder ``out`` can be moved aside, as the run's
    end does to replace it (an immutable folder, or one in a sticky folder owned by another
    user, cannot): moved aside and back, now, rather than refused after hours of training.
    A kill between the two renames leaves the folder aside, where :func:`clean_leftovers`
    finds it (it holds a manifest, or nothing)."""
    aside = out.parent / f"{_stage_name(out, _OLD)}{uuid.uuid4().hex[:8]}"
    try:
        os.replace(out, aside)
    except OSError as err:
        raise ValueError(f"--out {out} cannot be replaced: moving it aside fails "
                         f"({err.strerror or describe(err)}); give another --out") from None
    os.replace(aside, out)


def _graphvae_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of the folder ``path`` when it says graphvae wrote the folder (and
    lists its files), else ``None``: the folder is not ours."""
    try:
        manifest = read_json(path / MANIFEST, MAX_SMALL_JSON_BYTES)
    except (OSError, ValueError):   # DataError among them
        return None
    if isinstance(manifest, dict) and manifest.get("written_by") == "graphvae" \
            and isinstance(manifest.get("files"), dict):
        return manifest
    return None


def check_as_written(folder: Path, names: tuple[str, ...]) -> None:
    """A one-line :class:`~graphvae.errors.DataError` when a file of ``names`` in the run
    folder ``folder`` is not what the run wrote, as its manifest lists it
    (:func:`_as_listed`): an edited ``samples.jsonl`` or ``metrics.json`` was scored as the
    run's. A folder without graphvae's manifest (an older run) is taken as it is."""
    manifest = _graphvae_manifest(folder)
    if manifest is None:
        return
    for name in names:
        listed = manifest["files"].get(name)
        if not isinstance(listed, dict):
            raise DataError(folder / MANIFEST, f"does not list {name}: not the run's file")
        if not _as_listed(folder / name, listed):
            raise DataError(folder / name, f"is not the file the run wrote ({MANIFEST} lists "
                                           f"another size or digest): edited since; score "
                                           f"the file itself, with the run's flags")


def written_by(out: Path) -> str | None:
    """The command that wrote the run folder ``out``, as its manifest records it."""
    manifest = _graphvae_manifest(out)
    command = None if manifest is None else manifest.get("command")
    return command if isinstance(command, str) and command.startswith("graphvae ") else None


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
        try:
            os.replace(stage, out)
        except BaseException:               # the old folder back in view, not hidden
            os.replace(old, out)
            raise
        if old.is_symlink():                # --out was a link: the folder it named stays
            old.unlink()
            return
        if old.is_dir():
            foreign = foreign_files(old)
            if not foreign:
                shutil.rmtree(old, ignore_errors=True)
                return
            what = f"gained files during the run ({_first_names(foreign)}); its old contents are"
        else:
            what = "became a file during the run (not a folder); the file is"
        kept = out.parent / f"{out.name}.replaced-{uuid.uuid4().hex[:8]}"
        os.replace(old, kept)
        print(f"graphvae: {out} {what} kept in {kept}", file=sys.stderr)
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
    out = check_output_folder(out, command)
    clean_leftovers(out)
    unwritable = f"cannot write to {out.parent} (for --out {out})"
    try:
        made = Path(tempfile.mkdtemp(dir=out.parent, prefix=_stage_name(out, _NEW)))
    except OSError as err:
        raise ValueError(f"{unwritable}: {describe(err)}") from None
    # locked before it takes the staging name: no other run sees it unlocked, and no
    # other run's probe (_locked) holds the lock while this one takes it
    lock = None
    stage = made.with_name(_stage_name(out, _STAGE) + made.name[-8:])
    try:
        lock = _lock(made)
        os.rename(made, stage)
    except BaseException as err:              # a failed rename, or a signal in between
        if lock is not None:
            os.close(lock)
        shutil.rmtree(made, ignore_errors=True)
        if isinstance(err, OSError):
            raise ValueError(f"{unwritable}: {describe(err)}") from None
        raise
    try:
        yield stage
        write_json(_manifest(stage, uuid.uuid4().hex, command, device), stage / MANIFEST)
        os.chmod(stage, 0o777 & ~umask())
        try:
            _replace_folder(stage, out)
        except OSError as err:               # the results kept in view, not removed
            if not stage.exists():           # (it is --out already: a later step failed)
                raise
            raise ValueError(_unplaced(stage, out, err)) from None
    except WriteError as err:                # named as the file in --out, not the hidden one
        name = Path(err.filename) if err.filename else None
        if name is None or not name.is_relative_to(stage):
            raise
        raise WriteError(err.errno, err.strerror, str(out / name.relative_to(stage))) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if lock is not None:
            os.close(lock)


def _unplaced(stage: Path, out: Path, err: OSError) -> str:
    """The message of a run whose finished folder ``stage`` could not replace ``out``:
    ``stage`` is first moved to ``<name>.unplaced-<id>`` beside ``out``, so that the results
    are not removed with the staging folder."""
    reason = err.strerror or describe(err)
    kept = out.parent / f"{out.name}.unplaced-{uuid.uuid4().hex[:8]}"
    try:
        os.replace(stage, kept)
    except OSError:
        return f"--out {out} could not be replaced ({reason}); the results are lost"
    return f"--out {out} could not be replaced ({reason}); the results are in {kept}"


def _lock(stage: Path) -> int | None:
    """An exclusive ``flock`` on the staging folder, held while the run lasts: it tells a
    live run's folder from a killed run's whose process id has since been reused
    (:func:`_live_writer`). ``None`` where the file system takes no locks."""
    try:
        fd = os.open(stage, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _locked(folder: Path) -> bool:
    """Whether another process holds :func:`_lock` on ``folder`` (``True`` where that
    cannot be told: no refusal is lifted from a run that may be alive)."""
    fd = _lock(folder)
    if fd is None:
        return True
    os.close(fd)                                     # closing it releases the lock
    return False
