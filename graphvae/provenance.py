"""What a result was computed with, recorded beside it.

Two runs of the same command and seed give the same numbers on one machine, but not
always across machines: the same code has given different QM9 samples after a fresh
install on another machine (see ``benchmarks/README.md``), and the environment of the
first runs was not recorded, so the cause could not be found afterwards. So every
output folder's ``manifest.json``, every ``graphvae generate`` ``metrics.json`` and every
benchmark row carry :func:`environment`: the package versions, the Python, the platform,
the CPU model and the instruction set torch dispatches to, torch's thread count and,
for a CUDA run, the device and the CUDA / cuDNN versions.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import torch

#: The distributions whose versions are recorded (``None``: not installed).
PACKAGES = ("torch", "torch-geometric", "numpy", "scipy", "networkx", "scikit-learn",
            "rdkit", "fcd", "pyarrow")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """``{distribution: version}`` as installed, ``None`` for one that is not."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The CPU's model name (Linux: the first ``model name`` of ``cpuinfo``; elsewhere
    :func:`platform.processor`), ``None`` when neither says."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """The record described in the module docstring (JSON-serialisable)."""
    from graphvae import __version__

    env: dict[str, Any] = {
        "graphvae": __version__, "python": platform.python_version(),
        "platform": platform.platform(), "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(), "packages": package_versions()}
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        env["cuda"] = {"device": torch.cuda.get_device_name(device),
                       "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    return env


__all__ = ["PACKAGES", "cpu_model", "environment", "package_versions"]
