"""Device selection shared by every command (plain torch), and the machine's memory."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
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


def device_memory(device: torch.device | str | None) -> int | None:
    """The most memory a run on ``device`` can have, in bytes: the GPU's on CUDA, else this
    machine's (:func:`physical_memory`; ``None`` where the system does not say)."""
    if device is not None and torch.device(device).type == "cuda":
        return torch.cuda.get_device_properties(torch.device(device)).total_memory
    return physical_memory()


def meta_build(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The module ``build`` makes, on torch's meta device: its shapes, no storage, and no
    random number drawn (the warnings of empty initialisations are not shown)."""
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        return build()


#: Bytes a trained float32 weight holds: itself, its gradient and Adam's two moments.
TRAINED_WEIGHT_BYTES = 16


def check_model_memory(build: Callable[[], torch.nn.Module], device: torch.device | str,
                       flags: str) -> None:
    """A one-line ``ValueError`` where the model ``build`` makes cannot be trained in this
    machine's memory (the GPU's on CUDA): its weights, with their gradients and Adam's
    moments, need more than all of it, before any activation. The model is built on
    torch's meta device (:func:`meta_build`). Each width flag is
    capped alone, so ``--hidden 65536,65536`` (a 17 GB weight matrix) passed its checks
    and the kernel's out-of-memory killer could end the run with no message. ``flags``:
    the settings to lower, as the message names them."""
    count = sum(p.numel() for p in meta_build(build).parameters())
    device = torch.device(device)
    have = device_memory(device)
    need = TRAINED_WEIGHT_BYTES * count
    if have is not None and need > have:
        where = "the GPU's" if device.type == "cuda" else "this machine's"
        raise ValueError(f"the model has {count:,} weights, and training them needs "
                         f"{need / 2**30:,.1f} GB ({TRAINED_WEIGHT_BYTES} bytes a weight: "
                         f"it, its gradient, Adam's two moments), more than {where} "
                         f"{have / 2**30:,.1f} GB; lower {flags}")
