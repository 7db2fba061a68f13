"""Scoring a trained link predictor: AUC and AP on pairs, OGB's Hits@K and MRR on the test
split (:func:`ranking_metrics`), and the highest-scoring pairs that are not edges
(:func:`top_new_links`). Pairs are scored in chunks; no ``n × n`` matrix is formed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from graphvae.datasets.link_split import LinkSplit
from graphvae.evaluation.linkmetrics import hits_at_k, mrr, score_pairs, top_pairs
from graphvae.evaluation.metrics import average_precision, roc_auc
from graphvae.graph import check_edge_index, edge_keys, to_simple_undirected, upper_triangle
from graphvae.likelihoods import contains_sorted
from graphvae.models import GraphAutoencoder


@torch.no_grad()
def pair_scores(model: GraphAutoencoder, z: Tensor, pairs: Tensor) -> Tensor:
    """Edge logits of ``(2, k)`` pairs, a chunk of pairs at a time."""
    return score_pairs(lambda p: model.score(z, p), pairs)


@torch.no_grad()
def evaluate_pairs(model: GraphAutoencoder, z: Tensor, pos: Tensor, neg: Tensor
                   ) -> tuple[float, float]:
    """``(AUC, AP)`` of edge logits on positive vs negative pairs (scored in chunks; the
    ranking sorts the ``k`` scores, never an ``n × n`` matrix). Non-finite latents are a
    ``FloatingPointError``: overflowed latents score every pair ±inf, whose ties gave AUC
    50 as if a model had been trained."""
    if not bool(torch.isfinite(z).all()):
        raise FloatingPointError("training diverged: the latents are not finite (they "
                                 "overflowed); lower the learning rate")
    scores = torch.cat([pair_scores(model, z, pos), pair_scores(model, z, neg)])
    labels = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))]).to(scores.device)
    return roc_auc(scores, labels), average_precision(scores, labels)


#: Test positives ranked for the MRR, and corrupted tails per positive (OGB's ogbl-citation2
#: ranks every test edge against 1,000; a subset keeps the cost bounded on large graphs).
MRR_POSITIVES, MRR_NEGATIVES = 10_000, 100
#: Hits@K cut-offs reported (OGB: 20 for ogbl-ddi, 50 for ogbl-collab, 100 for ogbl-ppa).
HITS_AT = (20, 50, 100)


@torch.no_grad()
def ranking_metrics(score: Callable[[Tensor], Tensor], split: LinkSplit, seed: int
                    ) -> dict[str, float]:
    """Hits@K of the test positives against the test non-edges, and the MRR of (at most
    ``MRR_POSITIVES``) test edges ``(i, j)`` each ranked against ``MRR_NEGATIVES`` pairs
    ``(i, j')`` with ``j'`` uniform among the non-neighbours of ``i`` (OGB's definitions,
    :mod:`graphvae.evaluation.linkmetrics`). The head ``i`` is the lower-numbered end, as
    the split stores the edge, or the other end when it has no non-neighbour (a hub joined
    to every node: a star ranked from its leaves whatever the hub's number); an edge
    neither of whose ends has one is left out of the MRR (NaN when every one is). Hits@K is
    NaN (``null`` in JSON) with fewer than K test non-edges, where OGB's rule gives 1.0
    whatever the scores."""
    pos_s = score_pairs(score, split.test_pos)
    neg_s = score_pairs(score, split.test_neg)
    out = {f"test_hits@{k}": hits_at_k(pos_s, neg_s, k) if neg_s.numel() >= k else math.nan
           for k in HITS_AT}
    g = torch.Generator().manual_seed(seed + 7919)
    pos = split.test_pos.cpu().clone()               # (a head may swap ends below)
    if pos.size(1) > MRR_POSITIVES:
        pos = pos[:, torch.randperm(pos.size(1), generator=g)[:MRR_POSITIVES]]
    n = split.num_nodes
    known = torch.unique(torch.cat([edge_keys(e.cpu(), n) for e in (
        split.train_edge_index, split.val_pos, split.val_pos.flip(0), split.test_pos,
        split.test_pos.flip(0))]))
    heads = pos[0].repeat_interleave(MRR_NEGATIVES)
    tails = torch.randint(n, heads.shape, generator=g)
    for _ in range(100):  # redraw the tails that hit an edge or the head itself
        bad = contains_sorted(known, heads * n + tails) | (heads == tails)
        if not bad.any():
            break
        tails[bad] = torch.randint(n, (int(bad.sum()),), generator=g)
    keep = torch.ones(pos.size(1), dtype=torch.bool)
    bad = contains_sorted(known, heads * n + tails) | (heads == tails)
    for row in torch.nonzero(bad.view(-1, MRR_NEGATIVES).any(1)).flatten().tolist():
        # a head with few non-neighbours: draw its tails from them exactly; a head with none
        # (a hub joined to every node) gives way to the edge's other end, and the positive
        # is dropped when that has none either
        span = slice(row * MRR_NEGATIVES, (row + 1) * MRR_NEGATIVES)
        free = _non_neighbours(known, int(pos[0, row]), n)
        if free.numel() == 0:
            free = _non_neighbours(known, int(pos[1, row]), n)
            if free.numel() == 0:
                keep[row] = False
                continue
            pos[:, row] = pos[:, row].flip(0)
            heads[span] = pos[0, row]
            bad[span] = True                            # every tail was the other head's
        fix = bad[span]
        tails[span][fix] = free[torch.randint(free.numel(), (int(fix.sum()),), generator=g)]
    if not bool(keep.any()):
        out["test_mrr"] = float("nan")  # no test edge has an end with a non-neighbour
        return out
    dev = split.test_pos.device
    rows = keep.repeat_interleave(MRR_NEGATIVES)
    neg = score_pairs(score, torch.stack([heads[rows], tails[rows]]).to(dev))
    out["test_mrr"] = mrr(score_pairs(score, pos[:, keep].to(dev)),
                          neg.view(-1, MRR_NEGATIVES))
    return out


def _non_neighbours(known: Tensor, h: int, n: int) -> Tensor:
    """The nodes other than ``h`` that are not joined to it, from the sorted keys
    ``known`` of every pair of the graph."""
    lo, hi = (int(torch.searchsorted(known, v)) for v in (h * n, (h + 1) * n))
    allowed = torch.ones(n, dtype=torch.bool)
    allowed[known[lo:hi] - h * n] = False
    allowed[h] = False
    return torch.nonzero(allowed).flatten()


@torch.no_grad()
def top_new_links(model: GraphAutoencoder, z: Tensor, edge_index: Tensor, k: int = 100,
                  block: int = 4096) -> tuple[Tensor, Tensor]:
    """The ``k`` highest-scoring pairs ``i < j`` that are not edges of ``edge_index``.

    Exact, by :func:`~graphvae.evaluation.linkmetrics.top_pairs` on the decoder's
    :meth:`~graphvae.decoders.InnerProductDecoder.pair_form` and ``pair_transform``:
    rows in blocks of ``block`` (memory ``O(block · n)``), and pairs that the bound rules
    out are never scored, so a large graph needs far fewer than ``n²`` scores. Returns
    ``((2, k) pairs, (k,) probabilities)``, the probabilities from the decoder's own
    logits.
    """
    n = z.size(0)
    check_edge_index(edge_index, n)                     # (2, E), not (E, 2): one line
    # either direction names the edge
    known = edge_keys(upper_triangle(to_simple_undirected(edge_index, n)), n).to(z.device)
    h, bias = model.edge_decoder.pair_form(z)
    pairs, _ = top_pairs(h, k, known, block=block, bias=bias,
                         transform=model.edge_decoder.pair_transform())
    return pairs, torch.sigmoid(model.score(z, pairs))
