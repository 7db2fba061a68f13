"""Bernoulli edge likelihood ``p(A | Z) = Π_{(i,j)} σ(l_ij)^{A_ij} σ(-l_ij)^{1 - A_ij}``.

Two estimators of the same sum over ordered pairs ``(i, j)``:

* :func:`bernoulli_edges_dense`: exact, over every pair of an ``(n, n)`` logit
  matrix (``O(n²)`` memory).
* :func:`bernoulli_edges_sampled`: every positive pair exactly, plus ``M``
  non-edges drawn uniformly from the ``N⁻`` non-edge pairs, their sum scaled by
  ``N⁻ / M``. This is an unbiased estimate of the dense sum and never forms an
  ``n × n`` matrix.

The positive re-weighting of Kipf & Welling's reference code
(https://github.com/tkipf/gae, ``optimizer.py``) multiplies the positive terms
by ``pos_weight``; :func:`balanced_weights` gives their choice
``pos_weight = N⁻ / N⁺`` and ``norm = P / (2 N⁻)``, with P the ordered pairs the
likelihood covers (``n²`` as in their code; ``n(n − 1)`` when the diagonal is left out),
N⁺ the positive pairs among them (the diagonal among them when it is positive; their
code labels ``A + I`` but counts the off-diagonal edges alone) and ``N⁻ = P − N⁺``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from graphvae.checks import check_count
from graphvae.devices import draw_device


@dataclass(frozen=True)
class LogLik:
    """A log-likelihood (``value``) and its re-weighted training version (``weighted``)."""

    value: Tensor
    weighted: Tensor

    def __add__(self, other: LogLik) -> LogLik:
        return LogLik(self.value + other.value, self.weighted + other.weighted)


def balanced_weights(num_pos: int, num_pairs: int) -> tuple[float, float]:
    """Kipf & Welling's ``(pos_weight, norm)`` for ``num_pos`` positives among ``num_pairs``."""
    num_neg = num_pairs - num_pos
    if num_pos <= 0 or num_neg <= 0:
        raise ValueError(f"cannot balance {num_pos} positive pairs among {num_pairs} pairs")
    return num_neg / num_pos, num_pairs / (2.0 * num_neg)


def bernoulli_edges_dense(logits: Tensor, target: Tensor, pos_weight: float = 1.0,
                          diagonal: bool = True) -> LogLik:
    """Exact edge log-likelihood over all ordered pairs.

    Args:
        logits: ``(..., n, n)`` edge logits ``l_ij``.
        target: ``(n, n)`` 0/1 adjacency (self-loops on the diagonal if wanted).
        pos_weight: factor on the positive terms of ``weighted``.
        diagonal: include the ``n`` pairs ``(i, i)``.

    Returns:
        :class:`LogLik` with shape ``logits.shape[:-2]``.

    A ``target`` of bools or integers is read as 0/1 in the logits' dtype; shapes other
    than these are a one-line ``ValueError``.
    """
    if logits.dim() < 2 or logits.size(-1) != logits.size(-2) or target.dim() != 2 \
            or tuple(target.shape) != tuple(logits.shape[-2:]):
        raise ValueError(f"bernoulli_edges_dense needs (..., n, n) logits and an (n, n) "
                         f"target, got {tuple(logits.shape)} and {tuple(target.shape)}")
    if not target.is_floating_point():
        target = target.to(logits.dtype)
    pos = F.logsigmoid(logits) * target
    neg = F.logsigmoid(-logits) * (1 - target)
    if not diagonal:
        off = 1 - torch.eye(target.size(-1), dtype=logits.dtype, device=logits.device)
        pos, neg = pos * off, neg * off
    pos_sum, neg_sum = pos.sum((-2, -1)), neg.sum((-2, -1))
    return LogLik(pos_sum + neg_sum, pos_weight * pos_sum + neg_sum)


#: Entries of the ``(rows, n)`` blocks in which :func:`bernoulli_edges_dense_rows` goes
#: (about 64 MiB of float64 logits a block).
DENSE_BLOCK_ENTRIES = 1 << 23


def row_blocks(n: int, desc: str, block_entries: int = DENSE_BLOCK_ENTRIES,
               device: torch.device | str | None = None) -> Iterator[Tensor]:
    """The rows ``0..n-1`` of an ``(n, n)`` matrix in consecutive index blocks of
    ``block_entries // n`` rows (at least one), with a bar named ``desc`` inside
    :func:`graphvae.progress.shown`."""
    from graphvae.progress import inner_steps
    step = max(1, block_entries // max(n, 1))
    for start in inner_steps(range(0, n, step), desc, " row blocks"):
        yield torch.arange(start, min(n, start + step), device=device)


def bernoulli_edges_dense_rows(logit_rows: Callable[[Tensor], Tensor], keys: Tensor,
                               num_nodes: int, pos_weight: float = 1.0, diagonal: bool = True,
                               block_entries: int = DENSE_BLOCK_ENTRIES) -> LogLik:
    """:func:`bernoulli_edges_dense` by blocks of rows, for a graph whose ``(n, n)`` logits
    (and the temporaries of the sum) do not fit in memory: the same sum, in another order.

    Each block reads its positives by index and sums ``log σ(−l)`` over the other pairs
    through a ``(B·n,)`` mask (the diagonal masked too without ``diagonal``), so no
    ``(B, n)`` float target is built. (Subtracting the positives' ``log σ(−l) ≈ −l`` from
    the block's total instead lost the non-edges' terms in float32 at large logits: 437
    nats of 5.8 M at logits of 10⁴.)

    Args:
        logit_rows: ``rows (B,) -> (..., B, n)``, the logits of those rows.
        keys: the sorted keys ``i * n + j`` of the positive ordered pairs (as
            :meth:`graphvae.adjacency.Adjacency.positive_pairs` gives them).
        num_nodes: ``n``.
        pos_weight, diagonal: as for :func:`bernoulli_edges_dense`.
        block_entries: about how many logits a block holds (at least one row).
    """
    check_count("num_nodes", num_nodes)
    check_keys(keys, num_nodes)
    n = num_nodes
    if not diagonal:
        keys = keys[keys // n != keys % n]
    pos_sum: Tensor | float = 0.0
    neg_sum: Tensor | float = 0.0
    for rows in row_blocks(n, "exact edge likelihood", block_entries, keys.device):
        start, stop = int(rows[0]), int(rows[-1]) + 1
        logits = logit_rows(rows)                                            # (..., B, n)
        flat = logits.flatten(-2)                                            # (..., B·n)
        lo, hi = torch.searchsorted(keys, torch.tensor([start * n, stop * n],
                                                       device=keys.device)).tolist()
        idx = (keys[lo:hi] - start * n).to(logits.device)
        at_pos = flat[..., idx]                                              # (..., P_b)
        keep = torch.ones(flat.size(-1), dtype=torch.bool, device=logits.device)
        keep[idx] = False
        if not diagonal:
            local = torch.arange(stop - start, device=logits.device)
            keep[local * n + local + start] = False
        rest = torch.where(keep, F.logsigmoid(-flat), 0.0).sum(-1)
        pos_sum = pos_sum + F.logsigmoid(at_pos).sum(-1)
        neg_sum = neg_sum + rest
    assert isinstance(pos_sum, Tensor) and isinstance(neg_sum, Tensor)
    return LogLik(pos_sum + neg_sum, pos_weight * pos_sum + neg_sum)


def bernoulli_edges_sampled(pos_logits: Tensor, neg_logits: Tensor, num_neg_pairs: int,
                            pos_weight: float = 1.0) -> LogLik:
    """Unbiased estimate of :func:`bernoulli_edges_dense` from sampled non-edges.

    Args:
        pos_logits: ``(..., P)`` logits of *every* positive pair.
        neg_logits: ``(..., M)`` logits of ``M`` non-edge pairs drawn uniformly
            (with replacement) from the ``num_neg_pairs`` non-edge pairs.
        num_neg_pairs: ``N⁻``, the number of non-edge pairs the dense sum covers.
        pos_weight: factor on the positive terms of ``weighted``.
    """
    if neg_logits.size(-1) == 0:
        raise ValueError("the sampled edge likelihood needs at least one negative pair")
    if not 0 <= num_neg_pairs < math.inf:
        raise ValueError(f"num_neg_pairs must be a count >= 0, got {num_neg_pairs!r}")
    pos_sum = F.logsigmoid(pos_logits).sum(-1)
    neg_sum = F.logsigmoid(-neg_logits).sum(-1) * (num_neg_pairs / neg_logits.size(-1))
    return LogLik(pos_sum + neg_sum, pos_weight * pos_sum + neg_sum)


def contains_sorted(sorted_keys: Tensor, keys: Tensor) -> Tensor:
    """Boolean mask: which ``keys`` occur in the sorted 1-D tensor ``sorted_keys``."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def check_keys(keys: Tensor, n: int, name: str = "keys", repeats: bool = False) -> None:
    """A one-line ``ValueError`` unless ``keys`` is a 1-D long tensor of pair keys
    ``i * n + j`` in ``[0, n²)``, ascending (strictly, unless ``repeats``), for ``n >= 0``
    nodes."""
    check_count("num_nodes", n, minimum=0)
    if keys.dim() != 1 or keys.dtype != torch.long:
        raise ValueError(f"{name} must be a 1-D long tensor, got {keys.dtype} of shape "
                         f"{tuple(keys.shape)}")
    if keys.numel() == 0:
        return
    step = keys[1:] - keys[:-1]
    if bool((step < 0).any()) or (not repeats and bool((step == 0).any())):
        raise ValueError(f"{name} must be in ascending order"
                         + ("" if repeats else ", each key once"))
    if int(keys[0]) < 0 or int(keys[-1]) >= n * n:
        raise ValueError(f"{name} must lie in [0, {n * n}) for {n} nodes, got "
                         f"{int(keys[0])}..{int(keys[-1])}")


def _excluded_pairs(sorted_keys: Tensor, n: int, diagonal: bool) -> int:
    """How many of the ``n²`` pairs are not non-edges: the distinct keys, and the diagonal
    unless ``diagonal``. A one-line ``ValueError`` for keys that are not ascending or not in
    ``[0, n²)`` (unsorted keys made real edges come back as non-edges)."""
    k = sorted_keys
    check_keys(k, n, "sorted_keys", repeats=True)
    if k.numel() == 0:
        return 0 if diagonal else n
    distinct = torch.unique_consecutive(k)
    if diagonal:
        return int(distinct.numel())
    return int(((distinct // n) != (distinct % n)).sum()) + n


def sample_non_edges(sorted_keys: Tensor, num_nodes: int, num_samples: int,
                     generator: torch.Generator | None = None, diagonal: bool = False,
                     max_rounds: int = 100) -> Tensor:
    """Draw ``num_samples`` ordered pairs uniformly (with replacement) from the non-edges.

    A pair ``(i, j)`` is a non-edge when its key ``i * n + j`` is not in
    ``sorted_keys`` (and ``i != j`` unless ``diagonal``). Rejection sampling from
    all ``n²`` pairs keeps the draw exactly uniform over the non-edges. ``sorted_keys``
    must be ascending keys in ``[0, n²)`` (repeats and diagonal keys are allowed).

    Returns:
        ``(2, num_samples)`` long tensor on ``sorted_keys.device``.
    """
    check_count("num_nodes", num_nodes, minimum=0)
    check_count("num_samples", num_samples, minimum=0)
    num_non_edges = num_nodes * num_nodes - _excluded_pairs(sorted_keys, num_nodes, diagonal)
    return draw_non_edges(sorted_keys, num_nodes, num_samples, num_non_edges, generator,
                          diagonal, max_rounds)


def draw_non_edges(sorted_keys: Tensor, num_nodes: int, num_samples: int, num_non_edges: int,
                   generator: torch.Generator | None = None, diagonal: bool = False,
                   max_rounds: int = 100) -> Tensor:
    """:func:`sample_non_edges` for keys known to be sorted, unique and in range (as
    :meth:`~graphvae.adjacency.Adjacency.positive_pairs` gives them) and their known count of
    non-edges, with no check: the samplers call it every step."""
    n, dev = num_nodes, sorted_keys.device
    total = n * n
    n_bad = total - num_non_edges
    if num_non_edges <= 0 and num_samples > 0:
        raise ValueError("the graph has no non-edges to sample")
    out: list[Tensor] = []
    need = num_samples
    for _ in range(max_rounds):
        if need <= 0:
            break
        draw = int(need * total / max(total - n_bad, 1) * 1.1) + 8
        keys = torch.randint(total, (draw,), generator=generator,
                             device=draw_device(generator, dev)).to(dev)
        ok = ~contains_sorted(sorted_keys, keys)
        if not diagonal:
            ok &= (keys // n) != (keys % n)
        keys = keys[ok][:need]
        out.append(keys)
        need -= keys.numel()
    if need > 0:
        raise ValueError("could not sample enough non-edges; the graph is almost complete")
    keys = torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=dev)
    return torch.stack([keys // n, keys % n])
