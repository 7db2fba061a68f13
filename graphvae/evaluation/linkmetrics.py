"""Link-prediction ranking metrics of the OGB protocol, chunked pair scoring, and an exact
top-k search over all node pairs that prunes with Cauchy–Schwarz.

* :func:`hits_at_k` and :func:`mrr` follow the OGB link-property-prediction evaluator,
  ``Evaluator._eval_hits`` and ``Evaluator._eval_mrr`` in ``ogb/linkproppred/evaluate.py``
  of https://github.com/snap-stanford/ogb (read at commit
  ``1b89f1b4d8e0593748f8730a6023d82a1020c59e``).
* :func:`score_pairs` scores a long list of pairs a chunk at a time.
* :func:`top_pairs` finds the ``k`` largest inner products ``h_i · h_j`` over the pairs
  ``i < j`` of a graph's nodes without scoring all ``n²`` pairs in the common case.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from graphvae.config import check_count

__all__ = ["hits_at_k", "mrr", "score_pairs", "top_pairs"]


def _no_nan(*scores: Tensor) -> None:
    """A one-line ``ValueError`` for NaN scores: every comparison with NaN is False, so a
    NaN positive ranked first (MRR 1.0) and a NaN threshold made no hit."""
    if any(bool(torch.isnan(s).any()) for s in scores):
        raise ValueError("ranking metrics need scores that are numbers: NaN among them "
                         "(a diverged model?)")


def hits_at_k(pos_scores: Tensor, neg_scores: Tensor, k: int) -> float:
    """OGB's Hits@K: the fraction of positive scores strictly above the ``k``-th highest
    negative score (1.0 when there are fewer than ``k`` negatives).

    As ``Evaluator._eval_hits`` of ``ogb/linkproppred/evaluate.py`` (the ogbl-collab,
    ogbl-ppa and ogbl-ddi metric): the threshold is ``topk(neg, K)[0][-1]``, a positive
    scores a hit when ``pos > threshold`` (a positive tied with the threshold is a miss),
    and ``len(neg) < K`` gives ``1.0`` whatever the positives. All positives are ranked
    against the same negatives.
    """
    check_count("k", k)
    pos, neg = pos_scores.detach(), neg_scores.detach()
    if pos.dim() != 1 or neg.dim() != 1:
        raise ValueError(f"pos_scores and neg_scores must be 1-D, got shapes "
                         f"{tuple(pos.shape)} and {tuple(neg.shape)}")
    if pos.numel() == 0:
        raise ValueError("hits_at_k needs at least one positive score")
    _no_nan(pos, neg)
    if neg.numel() < k:
        return 1.0
    threshold = torch.topk(neg, k).values[-1]
    return float((pos.to(neg.device) > threshold).double().mean())


def mrr(pos_scores: Tensor, neg_scores: Tensor) -> float:
    """OGB's mean reciprocal rank of each positive among its own row of negatives, ties
    ranked halfway: ``rank = ½ (#{neg > pos} + #{neg ≥ pos}) + 1``, MRR = mean ``1 / rank``.

    As ``Evaluator._eval_mrr`` of ``ogb/linkproppred/evaluate.py`` (the ogbl-citation2 and
    wikikg metric; the evaluator returns the per-positive ``1 / rank`` list and the caller
    averages it). ``pos_scores``: ``(P,)``; ``neg_scores``: ``(P, K)``, row ``i`` holding
    the negatives that positive ``i`` is ranked against.
    """
    pos, neg = pos_scores.detach(), neg_scores.detach()
    if pos.dim() != 1 or neg.dim() != 2 or neg.size(0) != pos.size(0):
        raise ValueError(f"need pos_scores (P,) and neg_scores (P, K), got shapes "
                         f"{tuple(pos.shape)} and {tuple(neg.shape)}")
    if pos.numel() == 0:
        raise ValueError("mrr needs at least one positive score")
    _no_nan(pos, neg)
    pos = pos.to(neg.device).view(-1, 1)
    optimistic = (neg > pos).sum(1)
    pessimistic = (neg >= pos).sum(1)
    rank = 0.5 * (optimistic + pessimistic).double() + 1
    return float((1.0 / rank).mean())


def score_pairs(score_fn: Callable[[Tensor], Tensor], pairs: Tensor,
                chunk: int = 1 << 20) -> Tensor:
    """``score_fn`` applied to ``pairs`` (``(2, k)``) ``chunk`` columns at a time, the
    ``(k,)`` scores concatenated.

    ``score_fn`` maps a ``(2, m)`` block of pairs to ``(m,)`` scores (e.g.
    ``lambda p: model.score(z, p)``), so no more than ``chunk`` pairs of embeddings are
    gathered at once. Gradients are not switched off here: call it under
    ``torch.no_grad()`` for evaluation, or the autograd graph keeps every chunk alive.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(f"pairs must have shape (2, k), got {tuple(pairs.shape)}")
    k = pairs.size(1)
    if k <= chunk:
        return _checked(score_fn(pairs), k)
    parts = [_checked(score_fn(pairs[:, s:s + chunk]), min(chunk, k - s))
             for s in range(0, k, chunk)]
    return torch.cat(parts)


def _checked(scores: Tensor, m: int) -> Tensor:
    if scores.shape != (m,):
        raise ValueError(f"score_fn returned shape {tuple(scores.shape)} for {m} pairs, "
                         f"expected ({m},)")
    return scores


def _checked_inputs(h: Tensor, k: int, block: int, bias: Tensor | None
                    ) -> tuple[Tensor, Tensor | None]:
    """:func:`top_pairs`'s arguments checked (one-line errors), ``h`` as floats and
    ``bias`` flat in ``h``'s dtype."""
    if h.dim() != 2:
        raise ValueError(f"h must have shape (n, d), got {tuple(h.shape)}")
    n = h.size(0)
    if n < 2:
        raise ValueError(f"top_pairs needs at least 2 nodes, got {n}")
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    if not h.is_floating_point():
        h = h.float()
    if not bool(torch.isfinite(h).all()):
        raise ValueError("h has non-finite entries")
    if bias is not None:
        bias = bias.detach().to(h.dtype).flatten()
        if bias.numel() != n:
            raise ValueError(f"bias must have one entry per node ({n}), got {bias.numel()}")
        if not bool(torch.isfinite(bias).all()):
            raise ValueError("bias has non-finite entries")
    return h, bias


@torch.no_grad()
def top_pairs(h: Tensor, k: int, exclude_keys: Tensor | None = None, block: int = 4096,
              stats: dict | None = None, bias: Tensor | None = None,
              transform: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """The ``k`` largest inner products ``h_i · h_j`` (plus ``bias_i + bias_j`` if given)
    over the pairs ``i < j`` not in ``exclude_keys``: ``((2, k) pairs with i < j, (k,)
    scores)``, highest score first.

    Exact (the same pairs and scores as scoring every pair and taking the top ``k``, up to
    the order of tied scores and float rounding of the scores), but it prunes with
    Cauchy–Schwarz, ``h_i · h_j ≤ |h_i| |h_j|``:

    1. nodes are sorted by norm, largest first, and rows are scored in that order in
       blocks (a first small block, doubling up to ``block`` rows) against the columns
       after them, keeping a running top ``k``;
    2. once ``k`` pairs are held, ``τ`` is the ``k``-th best score; when ``τ > 0`` only the
       columns with ``|h_j| ≥ τ / |h_i|`` (a prefix of the norm order, taken for the
       block's first row, whose norm is the largest) can beat it, so a block scores only
       that prefix; when ``τ ≤ 0`` nothing is pruned (every bound ``|h_i||h_j| ≥ 0``);
    3. the search stops at the first block whose first row ``i`` has
       ``|h_i| |h_next| < τ`` (``h_next`` the largest norm after it): no later pair can
       reach ``τ``.

    With ``bias`` the bound is additive instead, ``h_i · h_j + b_i + b_j ≤ κ_i + κ_j`` with
    ``κ_i = |h_i|² / 2 + b_i`` (``h_i · h_j ≤ (|h_i|² + |h_j|²) / 2``), valid whatever the
    sign of ``τ``: nodes are sorted by ``κ``, a block scores the columns with
    ``κ_j ≥ τ − κ_i`` and the search stops once ``κ_s + κ_{s+1} < τ``. When every ``|h_i|``
    is the same (:class:`~graphvae.decoders.CosineBiasDecoder`) the bound is tight.

    With ``transform`` (a non-decreasing ``g``, e.g. the kernel of
    :class:`~graphvae.decoders.VMFBiasDecoder`) a pair scores ``g(h_i · h_j) + b_i + b_j``
    (``b = 0`` without ``bias``) and the additive bound uses ``κ_i = g(M) / 2 + b_i``,
    ``M = max |h|²``: ``h_i · h_j ≤ M`` and ``g`` does not decrease. With unit rows
    (``M = 1``) it is as tight as the cosine-bias bound.

    The bounds carry a slack of a few ``d · eps`` (relative to the largest products and
    terms) so that float rounding never prunes a pair that scores above ``τ``.

    Cost. Typical case (norms spread out, e.g. log-normal, and ``k ≪ n²``): the top pairs
    sit among the large-norm nodes, ``τ`` is found in the first block and the search
    scores a small fraction of the ``n(n−1)/2`` pairs (about 0.2 % for ``n = 20000``,
    ``d = 16``, log-normal norms with σ = 1 and ``k = 100``). Worst case (all norms
    equal, or ``τ ≤ 0``, or ``k`` near the number of pairs): nothing can be pruned and
    every pair is scored, block by block, ``O(n² d)`` time as brute force. Memory is
    ``O(block × n)``: a ``(rows, columns)`` score tile of at most ``block × n`` scores and
    the masks and candidates made from it, about four tiles at the peak when nothing is
    pruned (all norms equal), plus ``O(k)``.

    Args:
        h: ``(n, d)`` finite node embeddings (a pair's score is ``h_i · h_j``).
        bias: optional ``(n,)`` finite node terms added to each score, ``b_i + b_j``.
        transform: optional non-decreasing function applied elementwise to the products
            before the terms are added; it must map finite values to finite values.
        k: number of pairs; more than the pairs available returns all of them.
        exclude_keys: int64 keys ``i * n + j`` of pairs to skip, in either orientation
            (``(i, j)`` and ``(j, i)`` both skip the pair ``{i, j}``), e.g. the known edges
            ``edge_keys(edge_index, n)``; order and duplicates do not matter.
        block: most rows scored at once.
        stats: if a dict, filled with ``pair_scores`` (dot products computed),
            ``all_pairs`` (``n(n−1)/2``), ``rows`` (rows reached before stopping) and
            ``blocks``.

    Returns:
        ``(pairs, scores)``: ``(2, m)`` int64 pairs in the original node labels with
        ``pairs[0] < pairs[1]``, and their ``(m,)`` scores in decreasing order,
        ``m = min(k, available pairs)``.
    """
    h, bias = _checked_inputs(h, k, block, bias)
    n, d = h.shape
    dev = h.device
    if transform is not None and bias is None:
        bias = torch.zeros(n, dtype=h.dtype, device=dev)

    norms = torch.linalg.vector_norm(h, dim=1)
    largest = float(norms.max() ** 2)              # no product exceeds it
    slack = 4.0 * (d + 2) * torch.finfo(h.dtype).eps
    g_top = g_low = 0.0
    if transform is not None:       # g of the largest and smallest possible products
        m_top = largest * (1 + slack) + slack
        g_top, g_low = (float(v) for v in transform(torch.tensor([m_top, -m_top],
                                                                  dtype=h.dtype, device=dev)))
        if not (math.isfinite(g_top) and math.isfinite(g_low)):
            raise ValueError("transform gave a non-finite value")
    # the sort key: |h_i| (product bound), κ_i = |h_i|²/2 + b_i (additive bound), or
    # κ_i = g(M)/2 + b_i (additive bound through the transform)
    if bias is None:
        key = norms
    elif transform is None:
        key = 0.5 * norms * norms + bias
    else:
        key = 0.5 * g_top + bias
    order = torch.argsort(key, descending=True, stable=True)
    hs, ks = h[order], key[order]
    bs = None if bias is None else bias[order]
    neg_ks = -ks                                   # ascending, for searchsorted
    ks_list = ks.tolist()
    ex = _position_keys(exclude_keys, order, n, dev)
    if bias is not None:  # absolute: rounding of products ≤ |h|²max and of the two terms
        biggest = largest if transform is None else max(abs(g_top), abs(g_low))
        slack *= biggest + 2 * float(bias.abs().max()) + 1.0

    best_s = torch.empty(0, dtype=h.dtype, device=dev)
    best_k = torch.empty(0, dtype=torch.long, device=dev)
    scored = rows_reached = blocks = 0
    s, b = 0, max(1, min(block, 16, n))
    while s < n - 1 and k > 0:
        tau = float(best_s[-1]) if best_s.numel() == k else float("-inf")
        cols = n                                   # tile columns: positions [s, cols)
        if bs is not None and tau > float("-inf"):
            # every later pair (p, q), s <= p < q, scores at most κ_s + κ_{s+1}
            if ks_list[s] + ks_list[s + 1] + slack < tau:
                break
            cut = tau - ks_list[s] - slack         # columns with κ_q >= cut can reach τ
            cols = int(torch.searchsorted(neg_ks, torch.tensor([-cut], dtype=ks.dtype,
                                                                 device=dev), right=True))
            if cols <= s + 1:
                break
        elif bs is None and tau > 0:
            # every later pair (p, q), s <= p < q, has |h_p||h_q| <= ks[s] ks[s + 1]
            if ks_list[s] * ks_list[s + 1] * (1 + slack) < tau:
                break
            cut = tau / (ks_list[s] * (1 + slack))
            cols = int(torch.searchsorted(neg_ks, torch.tensor([-cut], dtype=ks.dtype,
                                                                 device=dev), right=True))
            if cols <= s + 1:                      # rounding at the edge of the bound
                break
        e = min(s + b, n - 1, cols - 1)            # rows [s, e) each have a column after them
        tile = hs[s:e] @ hs[s:cols].t()            # (e - s, cols - s), column c is q = s + c
        if transform is not None:
            tile = transform(tile)
        if bs is not None:
            tile += bs[s:e, None] + bs[None, s:cols]
        scored += tile.numel()
        rows_reached, blocks = e, blocks + 1
        r = e - s
        tri = torch.ones(r, r, dtype=torch.bool, device=dev).tril_()   # q <= p
        tile[:, :r].masked_fill_(tri, float("-inf"))
        if ex.numel():
            lo, hi = torch.searchsorted(ex, torch.tensor([s * n, e * n], device=dev)).tolist()
            if hi > lo:
                p, q = ex[lo:hi] // n, ex[lo:hi] % n
                keep = q < cols
                tile[p[keep] - s, q[keep] - s] = float("-inf")
        flat = tile.flatten()
        top = torch.topk(flat, min(k, flat.numel()))
        ok = top.values > float("-inf")
        vals, idx = top.values[ok], top.indices[ok]
        keys = (idx // (cols - s) + s) * n + (idx % (cols - s) + s)
        merged_s, merged_k = torch.cat([best_s, vals]), torch.cat([best_k, keys])
        keep_top = torch.topk(merged_s, min(k, merged_s.numel())).indices
        best_s, best_k = merged_s[keep_top], merged_k[keep_top]
        s, b = e, min(2 * b, block)

    if stats is not None:
        stats.update(pair_scores=scored, all_pairs=n * (n - 1) // 2, rows=rows_reached,
                     blocks=blocks)
    a, c = order[best_k // n], order[best_k % n]
    pairs = torch.stack([torch.minimum(a, c), torch.maximum(a, c)])
    return pairs, best_s


def _position_keys(exclude_keys: Tensor | None, order: Tensor, n: int,
                   dev: torch.device) -> Tensor:
    """Excluded pairs as sorted unique keys ``p * n + q``, ``p < q`` positions in the norm
    order ``order`` (self-pairs dropped)."""
    if exclude_keys is None or exclude_keys.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=dev)
    keys = exclude_keys.detach().to(device=dev, dtype=torch.long).flatten()
    if bool(((keys < 0) | (keys >= n * n)).any()):
        raise ValueError(f"exclude_keys must lie in [0, n²) = [0, {n * n})")
    pos = torch.empty_like(order)
    pos[order] = torch.arange(n, device=dev)
    pa, pb = pos[keys // n], pos[keys % n]
    lo, hi = torch.minimum(pa, pb), torch.maximum(pa, pb)
    return torch.unique(lo[lo < hi] * n + hi[lo < hi])
