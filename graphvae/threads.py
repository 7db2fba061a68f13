"""Intra-op threads that fit the work.

torch runs each operation on all its OpenMP threads. For small tensors the hand-offs
cost more than the work, and on a machine whose cores are busy with other jobs the
threads spin waiting for each other: the embedded ``graphvae generate`` took 9 s on a
quiet 2-core machine and 585 s beside another job. :func:`threads_for` runs small steps
on one thread and leaves larger ones (and the GPU) alone.

The size of a step is estimated in multiply-adds (:func:`dense_work`,
:func:`graph_work`). Measured on the project's quiet 2-core machine (ms per epoch, one
thread / two): the embedded link-prediction graph 4.4 / 4.4, Cora VGAE 11.1 / 10.9,
digits VAE 25.0 / 25.8 and the embedded generation set 12.1 / 11.7 (0.56, 3.3, 11.5 and
4.1 million multiply-adds a step, as the commands estimate them), against PubMed VGAE
97 / 71 and the gated MNIST VAE 3060 / 2221 (45 and 70 million; the estimate leaves out
the gates): :data:`SMALL_WORK` sits between them.

A large job inside a one-thread block (the FCD at the end of a generation run) takes the
threads the block set aside back for its length: :func:`large_work`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

#: Multiply-adds per step below which one intra-op thread is used.
SMALL_WORK = 20_000_000

#: The thread counts that enclosing one-thread blocks of :func:`threads_for` replaced.
_REPLACED: list[int] = []


def dense_work(rows: int, widths: Sequence[int]) -> int:
    """Multiply-adds of an MLP over ``rows`` inputs, forward and back up (×2): ``Σ w_i w_{i+1}``."""
    return 2 * rows * sum(a * b for a, b in zip(widths, widths[1:]))


def graph_work(num_nodes: int, num_edges: int, feature_entries: int,
               widths: Sequence[int]) -> int:
    """Multiply-adds of a GNN step: the first layer on the feature entries (``nnz`` of
    sparse features), the others on nodes, and one message per edge and width."""
    first = feature_entries * widths[0]
    rest = num_nodes * sum(a * b for a, b in zip(widths, widths[1:]))
    return first + rest + num_edges * max(widths)


@contextmanager
def threads_for(work: int, device: torch.device | str = "cpu") -> Iterator[int]:
    """Use one intra-op thread inside the block when ``work < SMALL_WORK`` on the CPU;
    yields the number of threads in use and restores the setting afterwards."""
    old = torch.get_num_threads()
    small = torch.device(device).type == "cpu" and work < SMALL_WORK
    if small:
        _REPLACED.append(old)
        torch.set_num_threads(1)
    try:
        yield torch.get_num_threads()
    finally:
        if small:
            _REPLACED.pop()
            torch.set_num_threads(old)


@contextmanager
def large_work() -> Iterator[int]:
    """A large job inside a run's one-thread block (ChemNet over 29,000 SMILES for the FCD
    inside a seq-vae run: 1.8 times faster on two threads than on one, and the same value)
    runs on the threads that the innermost :func:`threads_for` block replaced. Outside such
    a block nothing changes, so a caller that chose one thread (the benchmarks) keeps it.
    Yields the number of threads in use."""
    inner = torch.get_num_threads()
    if _REPLACED:
        torch.set_num_threads(_REPLACED[-1])
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(inner)
