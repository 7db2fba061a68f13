"""Atomic writes: every file the package produces is written to a temporary file
beside its target and renamed into place, so an interrupted run never leaves a
half-written checkpoint or output behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root`` if given, else ``$GRAPHVAE_DATA``, else ``./data``."""
    if data_root is not None:
        return Path(data_root)
    return Path(os.environ.get("GRAPHVAE_DATA") or "data")


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
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


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """JSON (indented) atomically."""
    return _write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2) + "\n"))


def write_text(text: str, path: str | os.PathLike) -> Path:
    return _write(path, lambda tmp: tmp.write_text(text))
