"""Loaders for :func:`graphvae.training.fit`: anything with ``batches(epoch, generator)``.

* :class:`FullBatch`: the same one batch every epoch (full-batch training).
* :class:`Shuffled`: minibatches of a tensor's rows or of a list, in an order drawn each
  epoch from the loop's generator (so a resumed run draws the same orders).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch


class FullBatch:
    """The same one batch every epoch (full-batch training)."""

    def __init__(self, batch: Any):
        self.batch = batch

    def batches(self, epoch: int, generator: torch.Generator | None) -> Iterable[Any]:
        return [self.batch]


class Shuffled:
    """Minibatches of ``items`` (a tensor's rows or a list) in an order drawn each epoch
    from the loop's generator; ``collate`` turns a list of items into a batch."""

    def __init__(self, items: Any, batch_size: int, collate: Callable[[list], Any] | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.items, self.batch_size, self.collate = items, batch_size, collate

    def __len__(self) -> int:
        return math.ceil(len(self.items) / self.batch_size)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def batches(self, epoch: int, generator: torch.Generator | None) -> Iterable[Any]:
        n = len(self.items)
        if isinstance(self.items, torch.Tensor):
            dev = generator.device if generator is not None else self.items.device
            perm = torch.randperm(n, generator=generator, device=dev).to(self.items.device)
            for i in range(0, n, self.batch_size):
                yield self.items[perm[i:i + self.batch_size]]
            return
        order = torch.randperm(n, generator=generator).tolist()
        for i in range(0, n, self.batch_size):
            chunk = [self.items[j] for j in order[i:i + self.batch_size]]
            yield self.collate(chunk) if self.collate is not None else chunk


