"""Loaders for :func:`graphvae.training.fit`: anything with ``batches(epoch, generator)``.

* :class:`FullBatch`: the same one batch every epoch (full-batch training).
* :class:`Shuffled`: minibatches of a tensor's rows or of a list, in an order drawn each
  epoch from the loop's generator (so a resumed run draws the same orders).
* :class:`PairBatches`: link prediction's mini-batch steps, each a subset of the
  positive pairs and sampled non-edges, the encoder on the whole training graph
  (optionally one process's share of a data-parallel step).
* :func:`divided_step`: the per-process share of a step, refused when the world size
  does not divide it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from graphvae.containers import LinkBatch, PairSample
from graphvae.devices import draw_device
from graphvae.likelihoods import draw_non_edges


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
            dev = draw_device(generator, self.items.device)
            perm = torch.randperm(n, generator=generator, device=dev).to(self.items.device)
            for i in range(0, n, self.batch_size):
                yield self.items[perm[i:i + self.batch_size]]
            return
        order = torch.randperm(n, generator=generator, device=draw_device(generator)).tolist()
        for i in range(0, n, self.batch_size):
            chunk = [self.items[j] for j in order[i:i + self.batch_size]]
            yield self.collate(chunk) if self.collate is not None else chunk


def divided_step(batch_size: int, negatives: float, world_size: int) -> int:
    """The non-edges of a step of ``batch_size`` positive pairs (``round(negatives · b)``,
    at least one); a one-line ``ValueError`` unless ``world_size`` processes can split
    both counts evenly."""
    num_neg = max(1, int(round(negatives * batch_size)))
    if batch_size % world_size or num_neg % world_size:
        raise ValueError(f"the world size {world_size} does not divide the work: a step's "
                         f"{batch_size} positive pairs and {num_neg} non-edges must both be "
                         f"multiples of it (choose --batch-size accordingly)")
    return num_neg


class PairBatches:
    """Mini-batch steps of a graph autoencoder on one large graph: each epoch is
    ``steps`` steps (default 1), each of which decodes ``batch_size`` positive pairs and
    ``round(negatives · batch_size)`` non-edges instead of every pair. ``steps = 0`` is
    one pass: ``ceil(N⁺ / batch_size)`` steps over the slices of one random permutation
    of the positives, so an epoch decodes each positive pair once, as a full-batch epoch
    does (the slices are as equal as can be, at most ``batch_size`` each; a slice's
    positives are scaled by ``N⁺`` over its size). One step per epoch keeps an epoch's
    cost at one encoder pass, which is what a large graph needs.

    The encoder still runs on the whole graph (its cost is linear in the edges, and it is
    what makes every node's latent depend on its neighbourhood); only the decoder's pairs
    are sampled, as in FastGAE (Salha et al., Neural Networks 2021), which samples nodes
    instead. The positives are a uniform random subset of the target's ``N⁺`` positive
    pairs (all of them when ``b = N⁺``, the largest batch allowed; drawn with replacement
    beyond ``WITHOUT_REPLACEMENT_UP_TO`` positives, where a permutation per step would cost
    ``O(N⁺)``) and the non-edges are drawn uniformly with replacement from its ``N⁻``
    non-edges (:func:`~graphvae.likelihoods.sample_non_edges`), so

        ``(N⁺ / b) Σ_batch log σ(l⁺) + (N⁻ / m) Σ_batch log σ(−l⁻)``

    is an unbiased estimate of the full-graph ``log p(A | Z)``; the KL term is computed
    exactly over all nodes, so the step's ``value`` is an unbiased estimate of the
    full-graph ELBO (``tests/test_minibatch.py`` checks the expectation).

    Data-parallel runs (``rank``, ``world_size``): every process draws the same global
    batch from a generator seeded alike and keeps its ``1 / world_size`` slice; the
    shards' values sum to the global estimate. ``batch_size`` and the number of
    non-edges must be multiples of ``world_size``.
    """

    def __init__(self, model: Any, x: torch.Tensor, adj: Any, batch_size: int,
                 target: Any = None, rank: int = 0, world_size: int = 1, steps: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if steps < 0:
            raise ValueError(f"steps per epoch must be >= 0 (0: one pass), got {steps}")
        self.full = model.batch(x, adj, target)
        obj = model.objective
        self.self_loops = obj.self_loops
        self.pairs, self.keys = self.full.target.positive_pairs(obj.self_loops)
        self.one_pass = steps == 0
        self.steps = math.ceil(self.pairs.size(1) / batch_size) if self.one_pass else steps
        if batch_size > self.pairs.size(1):
            raise ValueError(f"--batch-size {batch_size} is more than the training graph's "
                             f"{self.pairs.size(1)} positive pairs: give at most that many, or "
                             f"leave it out for full-batch steps")
        self.batch_size = batch_size
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad process rank {rank} of world size {world_size}")
        self.num_neg = divided_step(batch_size, obj.negatives, world_size)
        if self.full.stats.num_neg == 0:
            raise ValueError("every pair is an edge: there are no non-edges to sample")
        self.rank, self.world_size = rank, world_size
        self.neg_scale = self.full.stats.num_neg / self.num_neg

    def __len__(self) -> int:
        return self.steps

    def sample(self, generator: torch.Generator | None):
        """One step's batch (this process's shard of the global draw)."""
        idx = _positive_draw(self.pairs.size(1), self.batch_size, generator, self.pairs.device)
        return self._step(idx, generator)

    def _step(self, idx: torch.Tensor, generator: torch.Generator | None):
        """The batch of the positives ``idx`` and a fresh draw of non-edges."""
        neg = draw_non_edges(self.keys, self.full.stats.num_nodes, self.num_neg,
                             self.full.stats.num_neg, generator, diagonal=self.self_loops)
        b, m, r, w = idx.numel(), self.num_neg, self.rank, self.world_size
        pos = self.pairs[:, idx[r * b // w:(r + 1) * b // w]]
        neg = neg[:, r * m // w:(r + 1) * m // w]
        sample = PairSample(pos, neg, self.pairs.size(1) / b, self.neg_scale, 1.0 / w)
        f = self.full
        return LinkBatch(f.x, f.adj, f.target, f.stats, sample)

    def batches(self, epoch: int, generator: torch.Generator | None) -> Iterable[Any]:
        if not self.one_pass:
            for _ in range(self.steps):
                yield self.sample(generator)
            return
        # one pass: the slices of one permutation, every positive decoded once an epoch;
        # the slices are as equal as can be (sizes differ by one at most), so no short
        # last slice, its sum scaled by N⁺ over its few pairs, dominates its step
        num = self.pairs.size(1)
        perm = torch.randperm(num, generator=generator,
                              device=draw_device(generator, self.pairs.device)
                              ).to(self.pairs.device)
        for i in range(self.steps):
            yield self._step(perm[i * num // self.steps:(i + 1) * num // self.steps],
                             generator)


#: Up to this many positive pairs a batch is drawn without replacement (a random
#: permutation's first ``b``); beyond, with replacement (``O(b)`` instead of ``O(N⁺)``).
WITHOUT_REPLACEMENT_UP_TO = 1 << 22


def _positive_draw(num: int, b: int, generator: torch.Generator | None,
                   device: torch.device) -> torch.Tensor:
    """``b`` indices into ``num`` positives, uniform: every positive once if ``b ≥ num``,
    a uniform subset if ``num`` is at most ``WITHOUT_REPLACEMENT_UP_TO``, else uniform
    draws with replacement. Each makes ``(num / b) Σ_batch`` unbiased."""
    if b >= num:
        return torch.arange(num, device=device)
    where = draw_device(generator, device)                  # drawn there, then moved
    if num <= WITHOUT_REPLACEMENT_UP_TO:
        return torch.randperm(num, generator=generator, device=where)[:b].to(device)
    return torch.randint(num, (b,), generator=generator, device=where).to(device)
