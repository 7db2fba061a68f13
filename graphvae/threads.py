"""Intra-op threads that fit the work.

torch runs each operation on all its OpenMP threads. For small tensors the hand-offs
cost more than the work, and on a machine whose cores are busy with other jobs the
threads spin waiting for each other: the embedded ``graphvae generate`` took 9 s on a
quiet 2-core machine and 585 s beside another job. :func:`threads_for` runs small work
on one thread and leaves larger work (and the GPU) alone; ``SMALL_WORK`` is the size
below which one thread is measured to be as fast on a quiet machine (see
``benchmarks/README.md``, "Threads").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: Work size (elements of the largest activation of a step) below which one intra-op
#: thread is used.
SMALL_WORK = 2_000_000


@contextmanager
def threads_for(work: int, device: torch.device | str = "cpu") -> Iterator[int]:
    """Use one intra-op thread inside the block when ``work < SMALL_WORK`` on the CPU;
    yields the number of threads in use and restores the setting afterwards."""
    old = torch.get_num_threads()
    small = torch.device(device).type == "cpu" and work < SMALL_WORK
    if small:
        torch.set_num_threads(1)
    try:
        yield torch.get_num_threads()
    finally:
        if small:
            torch.set_num_threads(old)
