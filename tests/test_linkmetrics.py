"""OGB Hits@K and MRR, chunked pair scoring and the pruned exact top-k pair search, each
checked against hand-worked values or a brute-force definition written out here."""

import itertools
import math
import time

import pytest
import torch

from graphvae.evaluation.linkmetrics import hits_at_k, mrr, score_pairs, top_pairs

T = torch.tensor


# ----------------------------------------------------------------------------- Hits@K

@pytest.mark.parametrize("k, expected", [(1, 1 / 3), (2, 2 / 3), (3, 1.0)])
def test_hits_hand_cases(k, expected):
    # negatives sorted: 0.8, 0.4, 0.1 -> thresholds 0.8 (K=1), 0.4 (K=2), 0.1 (K=3)
    pos, neg = T([0.9, 0.5, 0.3]), T([0.8, 0.4, 0.1])
    assert hits_at_k(pos, neg, k) == pytest.approx(expected)


def test_hits_tie_at_threshold_is_a_miss():
    assert hits_at_k(T([0.8, 0.9]), T([0.8, 0.1]), 1) == pytest.approx(0.5)
    # repeated negatives: the 2nd highest of [0.7, 0.7, 0.2] is 0.7
    assert hits_at_k(T([0.7, 0.71, 0.69]), T([0.7, 0.2, 0.7]), 2) == pytest.approx(1 / 3)


def test_hits_fewer_negatives_than_k_is_one():
    assert hits_at_k(T([0.1, 0.2]), T([0.5]), 2) == 1.0
    assert hits_at_k(T([0.1]), torch.empty(0), 1) == 1.0
    # exactly k negatives: the threshold is the smallest one
    assert hits_at_k(T([0.1, 0.6]), T([0.5, 0.9]), 2) == pytest.approx(0.5)


def test_hits_matches_counting_definition():
    # a positive is a hit iff fewer than K negatives score at least as high (ties included)
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        pos = torch.randint(0, 12, (int(torch.randint(1, 30, (1,), generator=g)),),
                            generator=g).double()
        neg = torch.randint(0, 12, (int(torch.randint(1, 30, (1,), generator=g)),),
                            generator=g).double()
        for k in (1, 3, 10, 50):
            if len(neg) < k:
                expected = 1.0
            else:
                expected = sum(sum(1 for b in neg.tolist() if b >= a) < k
                               for a in pos.tolist()) / len(pos)
            assert hits_at_k(pos, neg, k) == pytest.approx(expected), (trial, k)


def test_hits_rejects_bad_input():
    with pytest.raises(ValueError):
        hits_at_k(T([0.5]), T([0.1]), 0)
    with pytest.raises(ValueError):
        hits_at_k(T([[0.5]]), T([0.1]), 1)
    with pytest.raises(ValueError):
        hits_at_k(torch.empty(0), T([0.1]), 1)


# ----------------------------------------------------------------------------- MRR

def test_mrr_hand_cases():
    # 0.5 vs [0.5, 0.2]: 0 negatives above, 1 at least as high -> rank 1.5
    assert mrr(T([0.5]), T([[0.5, 0.2]])) == pytest.approx(1 / 1.5)
    # ranks 1 and 3
    assert mrr(T([0.9, 0.1]), T([[0.5, 0.2], [0.5, 0.2]])) == pytest.approx((1 + 1 / 3) / 2)
    # all tied with 3 negatives: rank 0.5 * (0 + 3) + 1 = 2.5
    assert mrr(T([1.0]), T([[1.0, 1.0, 1.0]])) == pytest.approx(0.4)
    # each positive is ranked against its own row only
    assert mrr(T([0.3, 0.3]), T([[0.9, 0.1], [0.1, 0.2]])) == pytest.approx((1 / 2 + 1) / 2)


def test_mrr_matches_loop_definition():
    g = torch.Generator().manual_seed(1)
    pos = torch.randint(0, 6, (40,), generator=g).float()
    neg = torch.randint(0, 6, (40, 9), generator=g).float()
    recip = []
    for a, row in zip(pos.tolist(), neg.tolist()):
        above = sum(b > a for b in row)
        tied = sum(b == a for b in row)
        recip.append(1 / (above + tied / 2 + 1))
    assert mrr(pos, neg) == pytest.approx(sum(recip) / len(recip))


def test_mrr_rejects_bad_shapes():
    with pytest.raises(ValueError):
        mrr(T([0.5, 0.4]), T([[0.1, 0.2]]))
    with pytest.raises(ValueError):
        mrr(T([0.5]), T([0.1, 0.2]))
    with pytest.raises(ValueError):
        mrr(torch.empty(0), torch.empty(0, 3))


def test_ranking_metrics_refuse_nan_scores_and_fractional_k():
    """A NaN positive compared below nothing and ranked first (MRR 1.0, from a diverged
    model); a NaN negative made the Hits threshold NaN (0.0 whatever the positives)."""
    nan = float("nan")
    with pytest.raises(ValueError, match="NaN among them"):
        mrr(T([nan]), T([[0.1, 0.9]]))
    with pytest.raises(ValueError, match="NaN among them"):
        mrr(T([0.5]), T([[nan, 0.9]]))
    with pytest.raises(ValueError, match="NaN among them"):
        hits_at_k(T([0.5, 0.7]), T([nan, 0.1, 0.2]), 2)
    with pytest.raises(ValueError, match="NaN among them"):
        hits_at_k(T([nan]), T([0.1]), 1)
    for k in (1.5, True, 0):
        with pytest.raises(ValueError, match="k must be a whole number >= 1"):
            hits_at_k(T([0.5]), T([0.1]), k)
    import numpy as np
    assert hits_at_k(T([0.5, 0.05]), T([0.1, 0.2]), np.int64(1)) == 0.5   # numpy k: a count
    # infinities are numbers: +inf outranks every negative, −inf none
    assert mrr(T([math.inf, -math.inf]), T([[0.1, 0.9], [0.1, 0.9]])) == pytest.approx(
        (1 + 1 / 3) / 2)


# ----------------------------------------------------------------------------- score_pairs

def test_score_pairs_chunked_equals_unchunked():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(30, 4, generator=g)
    pairs = torch.randint(0, 30, (2, 50), generator=g)
    sizes = []

    def score(p):
        sizes.append(p.size(1))
        return (z[p[0]] * z[p[1]]).sum(1)

    full = score(pairs)
    sizes.clear()
    chunked = score_pairs(score, pairs, chunk=7)
    assert torch.equal(chunked, full)
    assert sizes == [7] * 7 + [1]
    sizes.clear()
    assert torch.equal(score_pairs(score, pairs), full) and sizes == [50]
    assert score_pairs(score, pairs[:, :0], chunk=3).shape == (0,)


def test_score_pairs_checks_shapes():
    pairs = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError):
        score_pairs(lambda p: torch.zeros(p.size(1), 2), pairs)
    with pytest.raises(ValueError):
        score_pairs(lambda p: torch.zeros(p.size(1)), pairs.t())
    with pytest.raises(ValueError):
        score_pairs(lambda p: torch.zeros(p.size(1)), pairs, chunk=0)


# ----------------------------------------------------------------------------- top_pairs

def brute_top(h, k, exclude=(), bias=None, transform=None):
    """All pairs i < j scored, excluded pairs (either orientation) dropped, sorted."""
    n = h.size(0)
    i, j = torch.triu_indices(n, n, 1)
    full = h @ h.t() if transform is None else transform(h @ h.t())
    full = full if bias is None else full + bias[:, None] + bias[None, :]
    scores = full[i, j]
    skip = torch.zeros(n, n, dtype=torch.bool)
    ex = torch.tensor(list(exclude), dtype=torch.long)
    skip[ex // n, ex % n] = True
    keep = ~(skip | skip.t())[i, j]
    scores, i, j = scores[keep], i[keep], j[keep]
    top = torch.argsort(scores, descending=True)[:k]
    return list(zip(scores[top].tolist(), i[top].tolist(), j[top].tolist()))


def check_against_brute(h, k, exclude_keys=None, block=4096, stats=None, bias=None,
                        transform=None):
    pairs, scores = top_pairs(h, k, exclude_keys, block=block, stats=stats, bias=bias,
                              transform=transform)
    ref = brute_top(h, k, [] if exclude_keys is None else exclude_keys.tolist(), bias,
                    transform)
    assert pairs.shape == (2, len(ref)) and scores.shape == (len(ref),)
    assert pairs.dtype == torch.long
    assert bool((pairs[0] < pairs[1]).all())
    assert bool((scores[:-1] >= scores[1:]).all())
    assert {(i, j) for i, j in pairs.t().tolist()} == {(i, j) for _, i, j in ref}
    torch.testing.assert_close(scores, torch.tensor([v for v, _, _ in ref], dtype=h.dtype))
    # each score is the inner product (plus the two terms) of its own pair
    own = (h[pairs[0]] * h[pairs[1]]).sum(1)
    if transform is not None:
        own = transform(own)
    if bias is not None:
        own = own + bias[pairs[0]] + bias[pairs[1]]
    torch.testing.assert_close(scores, own)
    return pairs, scores


def random_embeddings(n, d, seed, spread=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n, d, generator=g, dtype=torch.float64) + shift
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    return dirs * torch.exp(spread * torch.randn(n, 1, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("n, d, k, block, spread, shift", [
    (2, 3, 1, 4096, 1.0, 0.0),
    (3, 1, 5, 4096, 1.0, 0.0),          # d = 1: scores of both signs; k > 3 pairs
    (17, 3, 10, 2, 0.5, 0.0),
    (60, 8, 25, 4096, 1.0, 0.0),
    (60, 8, 25, 1, 1.5, 0.5),           # one row per block
    (120, 2, 40, 16, 2.0, 0.0),         # strongly skewed norms: pruning active
    (120, 16, 200, 8, 0.0, 0.0),        # equal norms
    (50, 4, 1225, 7, 1.0, 0.0),         # k = every pair
    (400, 2, 300, 8, 1.0, 0.0),         # low dimension: top scores close to the bound
    (400, 3, 50, 32, 1.0, 3.0),         # directions clustered: bound nearly tight
])
def test_top_pairs_equals_brute_force(n, d, k, block, spread, shift):
    h = random_embeddings(n, d, seed=n + d + k, spread=spread, shift=shift)
    check_against_brute(h, k, block=block)


@pytest.mark.parametrize("d, k, block", [(1, 40, 1), (1, 300, 1), (1, 1000, 4), (2, 300, 1),
                                         (2, 1000, 64), (3, 1000, 4)])
def test_top_pairs_tight_bound(d, k, block):
    # directions clustered around one axis (in d = 1 nearly all entries share a sign):
    # many scores lie just under their Cauchy–Schwarz bound and the best pairs reach far
    # down the norm order, so a cut or stop a few per cent too early loses pairs
    h = random_embeddings(300, d, seed=11, spread=1.0, shift=3.0)
    stats = {}
    check_against_brute(h, k, block=block, stats=stats)
    assert stats["pair_scores"] < stats["all_pairs"] / 4


@pytest.mark.parametrize("n, d, k, block, spread, bias_scale, shift", [
    (2, 3, 1, 4096, 0.0, 1.0, 0.0),
    (30, 4, 10, 2, 0.0, 1.0, 0.0),      # equal norms (the cosine-bias decoder): tight bound
    (200, 8, 50, 16, 0.0, 3.0, 0.0),    # terms dominate: pruning active
    (200, 8, 50, 1, 0.0, 0.1, 2.0),     # directions dominate, clustered
    (150, 3, 100, 8, 1.0, 1.0, 0.0),    # norms and terms both vary
    (80, 2, 3160, 7, 0.5, 1.0, 0.0),    # k = every pair
    (120, 5, 40, 4096, 0.0, -1.0, 0.0), # every term negative (scores of both signs)
])
def test_top_pairs_with_bias_equals_brute_force(n, d, k, block, spread, bias_scale, shift):
    h = random_embeddings(n, d, seed=n + d, spread=spread, shift=shift)
    g = torch.Generator().manual_seed(n * d)
    bias = bias_scale * torch.randn(n, generator=g, dtype=torch.float64)
    if bias_scale < 0:
        bias = -bias.abs() - 5.0
    stats = {}
    check_against_brute(h, k, block=block, stats=stats, bias=bias)
    if bias_scale >= 3.0:
        assert stats["pair_scores"] < stats["all_pairs"] / 4


def _kernel(temperature, kappa):
    return lambda c: temperature * torch.expm1(kappa * (c - 1.0)) / kappa


@pytest.mark.parametrize("n, d, k, block, kappa, bias_scale, spread", [
    (2, 3, 1, 4096, 10.0, 1.0, 0.0),
    (40, 4, 15, 2, 10.0, 1.0, 0.0),     # unit rows (the vmf-bias decoder): tight bound
    (200, 3, 60, 16, 30.0, 4.0, 0.0),   # terms dominate: pruning active
    (200, 6, 60, 1, 1.0, 0.1, 0.0),     # the kernel dominates
    (150, 3, 100, 8, 5.0, 1.0, 1.0),    # norms vary too (M > 1)
    (60, 2, 1770, 7, 10.0, 1.0, 0.0),   # k = every pair
    (80, 4, 30, 4096, 10.0, None, 0.0), # no node terms
])
def test_top_pairs_with_transform_equals_brute_force(n, d, k, block, kappa, bias_scale,
                                                     spread):
    h = random_embeddings(n, d, seed=n + d + 1, spread=spread)
    g = torch.Generator().manual_seed(n + k)
    bias = (None if bias_scale is None
            else bias_scale * torch.randn(n, generator=g, dtype=torch.float64))
    stats = {}
    check_against_brute(h, k, block=block, stats=stats, bias=bias,
                        transform=_kernel(3.0, kappa))
    if bias_scale is not None and bias_scale >= 4.0:
        assert stats["pair_scores"] < stats["all_pairs"] / 4
    # a transform that gives non-finite values is refused
    with pytest.raises(ValueError, match="non-finite"):
        top_pairs(h, 3, transform=lambda c: torch.full_like(c, float("inf")))


def test_top_pairs_transform_bound_follows_the_transform():
    # two long rows in one direction with low node terms: their product 4 lies far above
    # every other, and only g(M) (not M itself) bounds what the kernel makes of it, so a
    # search that bounded by M would stop before reaching them
    n = 60
    h = random_embeddings(n, 3, seed=5, spread=0.0)
    h[7] = h[40] = 2.0 * h[7]
    bias = 0.5 * torch.rand(n, generator=torch.Generator().manual_seed(6),
                            dtype=torch.float64)
    bias[7] = bias[40] = -3.0
    pairs, _ = check_against_brute(h, 5, block=2, bias=bias, transform=_kernel(1.0, 3.0))
    assert pairs[:, 0].tolist() == [7, 40]


def test_top_pairs_with_bias_excluded_and_errors():
    n = 60
    h = random_embeddings(n, 4, seed=9, spread=0.0)
    bias = torch.randn(n, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    best = brute_top(h, 10, bias=bias)
    exclude = torch.tensor([i * n + j for _, i, j in best[::2]] + [j * n + i for _, i, j in
                                                                    best[1::2]])
    pairs, _ = check_against_brute(h, 20, exclude, block=3, bias=bias)
    assert not set(map(tuple, pairs.t().tolist())) & {(i, j) for _, i, j in best}
    with pytest.raises(ValueError, match="one entry per node"):
        top_pairs(h, 5, bias=bias[:-1])
    with pytest.raises(ValueError, match="non-finite"):
        top_pairs(h, 5, bias=torch.full((n,), float("nan"), dtype=torch.float64))


def test_top_pairs_all_scores_negative():
    # a scaled regular simplex: every pair's inner product is -c_i c_j / (n - 1) < 0,
    # so the best pairs are those with the smallest norm products and tau < 0
    n = 12
    v = torch.eye(n, dtype=torch.float64) - 1.0 / n
    v = v / v.norm(dim=1, keepdim=True)
    c = torch.linspace(1.0, 3.0, n, dtype=torch.float64)[torch.randperm(
        n, generator=torch.Generator().manual_seed(3))]
    h = v * c[:, None]
    stats = {}
    pairs, scores = check_against_brute(h, 10, block=3, stats=stats)
    assert bool((scores < 0).all())
    assert stats["pair_scores"] >= stats["all_pairs"]        # nothing can be pruned


def test_top_pairs_excluded_keys():
    g = torch.Generator().manual_seed(4)
    n = 80
    h = random_embeddings(n, 6, seed=5, spread=1.5)
    # exclude the 15 best pairs (some given as (j, i)), random others, self-pairs and
    # duplicates, unsorted
    best = brute_top(h, 15)
    keys = [i * n + j if t % 2 else j * n + i for t, (_, i, j) in enumerate(best)]
    keys += torch.randint(0, n * n, (300,), generator=g).tolist()
    keys += [5 * n + 5, keys[0], keys[3]]
    exclude = torch.tensor(keys)[torch.randperm(len(keys), generator=g)]
    for block in (1, 5, 4096):
        pairs, _ = check_against_brute(h, 30, exclude, block=block)
        got = set(map(tuple, pairs.t().tolist()))
        assert not got & {(i, j) for _, i, j in best}


def test_top_pairs_k_beyond_available_returns_all():
    n = 6
    h = random_embeddings(n, 3, seed=6)
    all_pairs = list(itertools.combinations(range(n), 2))
    keep = {(0, 1), (2, 5), (3, 4)}
    exclude = torch.tensor([i * n + j for i, j in all_pairs if (i, j) not in keep])
    pairs, scores = check_against_brute(h, 100, exclude, block=2)
    assert set(map(tuple, pairs.t().tolist())) == keep
    pairs, _ = top_pairs(h, 100)
    assert pairs.size(1) == len(all_pairs)


def test_top_pairs_original_labels_and_float32():
    n = 40
    h = random_embeddings(n, 5, seed=7, spread=1.0)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(8))
    pairs, scores = top_pairs(h, 20)
    pp, ps = top_pairs(h[perm], 20)
    mapped = torch.sort(perm[pp], dim=0).values       # back to h's labels, i < j
    assert set(map(tuple, mapped.t().tolist())) == set(map(tuple, pairs.t().tolist()))
    torch.testing.assert_close(ps, scores)
    p32, s32 = top_pairs(h.float(), 20, block=3)
    assert s32.dtype == torch.float32
    assert set(map(tuple, p32.t().tolist())) == set(map(tuple, pairs.t().tolist()))
    torch.testing.assert_close(s32, scores.float())


def test_top_pairs_edge_cases():
    with pytest.raises(ValueError):
        top_pairs(torch.randn(1, 3), 1)
    with pytest.raises(ValueError):
        top_pairs(torch.randn(5), 1)
    with pytest.raises(ValueError):
        top_pairs(torch.randn(4, 2), 1, exclude_keys=torch.tensor([16]))
    with pytest.raises(ValueError):
        top_pairs(torch.tensor([[1.0], [float("nan")]]), 1)
    pairs, scores = top_pairs(torch.randn(4, 2), 0)
    assert pairs.shape == (2, 0) and scores.shape == (0,)


def test_top_pairs_prunes_skewed_norms():
    n, d, k = 20000, 16, 100
    h = random_embeddings(n, d, seed=9, spread=1.0).float()   # log-normal norms
    stats = {}
    start = time.perf_counter()
    pairs, scores = top_pairs(h, k, stats=stats)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0
    assert stats["all_pairs"] == n * (n - 1) // 2
    assert stats["pair_scores"] < 0.01 * n * n
    assert pairs.shape == (2, k) and bool((pairs[0] < pairs[1]).all())
    # certificate of exactness without scoring all pairs: every pair of nodes whose norm
    # product reaches the k-th score was scored exactly; check them by brute force
    norms = h.double().norm(dim=1)
    tau = float(scores[-1])
    top_nodes = torch.nonzero(norms * norms.max() >= tau * (1 - 1e-4)).flatten()
    assert top_nodes.numel() < 2000
    sub = h[top_nodes]
    s = sub @ sub.t()
    s = s.masked_fill(~torch.ones_like(s, dtype=torch.bool).triu(1), float("-inf"))
    ref = torch.topk(s.flatten(), k)
    m = top_nodes.numel()
    a, b = top_nodes[ref.indices // m], top_nodes[ref.indices % m]
    ref_pairs = set(zip(torch.minimum(a, b).tolist(), torch.maximum(a, b).tolist()))
    assert set(map(tuple, pairs.t().tolist())) == ref_pairs
    torch.testing.assert_close(scores, ref.values)


def test_top_pairs_equal_norms_scans_everything():
    n = 300
    h = random_embeddings(n, 4, seed=10, spread=0.0)
    stats = {}
    check_against_brute(h, 5, block=64, stats=stats)
    assert stats["pair_scores"] >= stats["all_pairs"]
    assert stats["rows"] == n - 1
    assert math.isclose(stats["all_pairs"], n * (n - 1) / 2)
