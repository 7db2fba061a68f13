"""The record of an invariance check (:class:`Deviation`): the worst ``|f(PG) − P f(G)|``
seen, where and under which permutation, and the one-line :class:`InvarianceError` it
raises past a tolerance. :mod:`graphvae.testing` fills it; ``check-invariance`` reports it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import torch
from torch import Tensor


class InvarianceError(AssertionError):
    """A model component changed under node relabelling by more than the tolerance."""


def check_tolerance(name: str, value: object) -> None:
    """A one-line ``ValueError`` unless ``value`` is a finite real number >= 0 (a string
    such as ``"1e-5"`` failed in a comparison, naming neither argument)."""
    if isinstance(value, Tensor) and value.dim() == 0 and not value.dtype.is_complex \
            and value.dtype != torch.bool:
        value = value.item()                    # a 0-d tensor, as torch's tolerances take
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 <= float(value) < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass
class Deviation:
    """The worst ``|f(PG) − P f(G)|`` seen: where, and under which permutation.

    With ``rtol > 0`` "worst" means the largest excess ``|got − expected| − rtol·|expected|``
    (the tolerance test is ``excess <= atol``); ``value`` is the deviation at that entry.
    """

    component: str
    rtol: float = 0.0
    value: float = 0.0
    excess: float = -math.inf
    graph: int = -1
    permutation: list[int] = field(default_factory=list)
    detail: str = ""
    #: The first output of the unrelabelled graph that is not finite (``"inf on graph 0"``;
    #: empty while none was): relabellings cannot be judged against it.
    nonfinite: str = ""

    def __post_init__(self) -> None:
        check_tolerance("rtol", self.rtol)

    @property
    def measured(self) -> bool:
        """Whether any entry was compared (a part the model lacks, such as a GAE's scale,
        has none: its table row reads n/a and its JSON value null)."""
        return self.excess != -math.inf

    def update(self, ref: Tensor, got: Tensor, graph: int, perm: Tensor,
               row_offset: int = 0) -> None:
        """Compare ``got`` with ``ref``; ``row_offset``: the first row's index in the whole
        output when these are a block of its rows (named in :attr:`detail`)."""
        ref, got = ref.double(), got.double()
        diff = (got - ref).abs()
        if not diff.numel():
            return
        if not self.nonfinite:
            finite = torch.isfinite(ref)
            if not bool(finite.all()):
                self.nonfinite = f"{float(ref[~finite][0])} on graph {graph}"
        excess = diff - self.rtol * ref.abs() if self.rtol else diff
        worst = float(excess.max())
        if worst > self.excess or (worst != worst):  # NaN counts as a failure
            idx = int(excess.flatten().argmax())
            self.value, self.excess = float(diff.flatten()[idx]), worst
            self.graph, self.permutation = graph, perm.tolist()
            entry = _unravel(idx, diff.shape)
            if entry:
                entry[0] += row_offset
            where = f"at entry {tuple(int(i) for i in entry)} " if entry else ""
            self.detail = (f"{where}(expected {float(ref.flatten()[idx]):.10g}, got "
                           f"{float(got.flatten()[idx]):.10g})")

    def check(self, atol: float) -> float:
        check_tolerance("atol", atol)
        if not self.excess <= atol:
            tol = f"atol {atol:g}" + (f" + rtol {self.rtol:g}·|expected|" if self.rtol else "")
            raise InvarianceError(
                f"{self.component} is not permutation-invariant: worst deviation "
                f"{self.value:.3g} > {tol} on graph {self.graph} {self.detail} under "
                f"permutation {self.permutation}")
        return self.value


def _unravel(idx: int, shape: torch.Size) -> list[int]:
    out = []
    for size in reversed(shape):
        out.append(idx % size)
        idx //= size
    return out[::-1]
