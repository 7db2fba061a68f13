"""Uniform draws that decide a sampler's choices exactly, and stay the draws seeded runs made.

The samplers decide a choice by comparing a uniform ``u`` with its boundaries: an edge when
``u < p``, option ``o`` of a categorical when ``u`` lies in its cumulative interval. On the
CPU, ``torch.rand`` in float32 returns ``k / 2²⁴`` with ``k`` uniform in ``0 .. 2²⁴ − 1``:
it stands for a uniform in the *cell* ``[k / 2²⁴, (k + 1) / 2²⁴)``, and a boundary inside
that cell was decided by the cell's left end. So a probability below ``2⁻²⁴ ≈ 6e-8`` was
drawn as 0 or ``2⁻²⁴`` while the likelihood charged its exact value (an edge of
probability 1e-9 was never drawn).

:func:`refine` places ``u`` inside its cell with a second, float64 draw, only where the cell
holds a boundary of the choice; elsewhere ``u`` is the float32 draw itself, and the
generator is not touched. A seeded sample is therefore the one it was, except where a cell
held a boundary (about one choice in 2²⁴ per boundary). Draws on another device (a CUDA
generator, whose float32 draws lie on another grid) are made in float64 instead
(:func:`uniform`).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: The spacing of ``torch.rand``'s float32 draws on the CPU.
STEP = 2.0 ** -24


def uniform(shape: tuple[int, ...], generator: torch.Generator | None,
            where: torch.device) -> Tensor:
    """Uniform draws on ``where`` for :func:`refine`: float32 on the CPU (the draws seeded
    runs have always made), float64 elsewhere."""
    dtype = torch.float32 if where.type == "cpu" else torch.float64
    return torch.rand(shape, generator=generator, device=where, dtype=dtype)


def refine(u: Tensor, cuts: Tensor, generator: torch.Generator | None) -> Tensor:
    """``u (...)`` from :func:`uniform` as float64, moved inside its float32 cell by a fresh
    uniform wherever one of the choice's boundaries ``cuts (..., C)`` (probabilities or
    cumulative probabilities, on ``u``'s device) lies strictly inside the cell. Compare the
    result with the same boundaries (in float64) to decide: the decision is then exact to
    float64's precision."""
    out = u.double()
    if u.dtype != torch.float32:
        return out
    c = cuts.double()
    inside = ((c > out[..., None]) & (c < out[..., None] + STEP)).any(-1)
    count = int(inside.sum())
    if count:
        out[inside] += STEP * torch.rand(count, generator=generator, device=u.device,
                                         dtype=torch.float64)
    return out


def bernoulli(p: Tensor, generator: torch.Generator | None, where: torch.device) -> Tensor:
    """Exact draws of ``u < p`` for probabilities ``p`` (any shape): a float64 ``p`` is
    compared with float64 draws as it always was, a float32 one with :func:`refine`'d
    draws. Drawn on ``where``, returned on ``p``'s device."""
    if p.dtype == torch.float64:
        u = torch.rand(p.shape, generator=generator, device=where, dtype=torch.float64)
    else:
        u = refine(uniform(tuple(p.shape), generator, where), p.to(where)[..., None],
                   generator)
    return u.to(p.device) < p
