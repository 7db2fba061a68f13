"""Device selection shared by every command (plain torch), and the machine's memory."""

from __future__ import annotations

import os
from typing import overload

import torch


def resolve_device(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``; a clear error when CUDA is absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name} was asked for but torch sees no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    if device.type == "cpu" and device.index not in (None, 0):
        raise ValueError(f"unknown device {name!r}: the CPU is cpu (or cpu:0)")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise ValueError(f"unknown device {name!r}: torch sees {torch.cuda.device_count()} "
                         f"CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


@overload
def draw_device(generator: torch.Generator | None, default: torch.device) -> torch.device: ...
@overload
def draw_device(generator: torch.Generator | None,
                default: None = None) -> torch.device | None: ...


def draw_device(generator: torch.Generator | None,
                default: torch.device | None = None) -> torch.device | None:
    """Where a random draw is made: the generator's device (torch refuses a generator of
    another device), else ``default``. The draws are then moved to the model's device, so
    that a CPU generator gives the same numbers whatever the model's device."""
    return generator.device if generator is not None else default


def physical_memory() -> int | None:
    """This machine's memory in bytes (``None`` where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
