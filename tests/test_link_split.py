"""The link-prediction split (datasets/link_split.py) and the scoring of its held-out pairs
(tasks/link_scores.py): the non-edges it draws, its shares and refusals, and the ranking
metrics, each against a value worked out by hand or by counting."""

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import undirected

from graphvae.datasets.link_split import LinkSplit, split_edges
from graphvae.tasks.link_scores import (
    MRR_NEGATIVES,
    evaluate_pairs,
    ranking_metrics,
    top_new_links,
)


def _complete_minus(n, dropped):
    """K_n without the pairs ``dropped``, as a symmetric edge index, and the pairs kept."""
    kept = [p for p in itertools.combinations(range(n), 2) if p not in dropped]
    return undirected(kept, n), kept


def _path(m):
    """A path of m edges on nodes 0..m, each edge once."""
    return torch.tensor([list(range(m)), list(range(1, m + 1))])


def _ring(n):
    """A cycle on nodes 0..n-1, each edge once."""
    return torch.tensor([list(range(n)), [(i + 1) % n for i in range(n)]])


def _negatives(split):
    return [tuple(p) for p in torch.cat([split.val_neg, split.test_neg], 1).t().tolist()]


# ------------------------------------------------------------------ the non-edges drawn
def test_a_graph_with_exactly_as_many_non_edges_as_held_out_edges_gives_all_of_them():
    """K11 less 6 pairs keeps 49 edges: floor(49/10) + floor(49/20) = 4 + 2 = 6 held-out
    edges, so the split needs 6 non-edges and the graph has exactly those 6. They come
    back as they are, each once and as (i, j) with i < j; K10 less 5 pairs (40 edges,
    4 + 2 = 6 needed, 5 there) is one short and refused."""
    dropped = [(0, 1), (2, 7), (3, 10), (4, 5), (6, 9), (8, 10)]
    ei, kept = _complete_minus(11, dropped)
    assert len(kept) == 49
    for seed in range(5):
        split = split_edges(ei, 11, seed=seed)
        assert sorted(_negatives(split)) == sorted(dropped)
        assert (split.val_neg.size(1), split.test_neg.size(1)) == (2, 4)
    ei, kept = _complete_minus(10, [(0, 1), (2, 7), (3, 8), (4, 5), (6, 9)])
    assert len(kept) == 40
    with pytest.raises(ValueError, match=r"^the split needs 6 non-edges \(as many as the "
                                         r"held-out edges\) but the graph has only 5: it is "
                                         r"too dense for link prediction$"):
        split_edges(ei, 10, seed=0)


def test_a_dense_graphs_non_edges_are_drawn_uniformly():
    """K11 less 9 pairs: 46 edges, 4 + 2 = 6 held out, 6 of the 9 non-edges drawn. Over
    300 seeds each non-edge is drawn with probability 6/9: 200 times expected, binomial
    standard deviation sqrt(300 · 2/3 · 1/3) = 8.2; 40 either side is five of them. (The
    first six of the list every time gave 300 and 0.)"""
    dropped = [(0, 1), (0, 2), (1, 2), (3, 4), (5, 6), (5, 10), (7, 8), (7, 9), (8, 9)]
    ei, _ = _complete_minus(11, dropped)
    counts = dict.fromkeys(dropped, 0)
    for seed in range(300):
        for pair in _negatives(split_edges(ei, 11, seed=seed)):
            counts[pair] += 1
    assert sum(counts.values()) == 300 * 6
    assert all(160 <= c <= 240 for c in counts.values()), counts


def test_a_sparse_graphs_non_edges_are_drawn_uniformly():
    """A path of 1,000 nodes: 999 edges, 99 + 49 = 148 non-edges per split. For a pair
    drawn uniformly among the pairs i < j of n nodes, P(i = k) is proportional to
    n − 1 − k, so E[i] = (n − 2) / 3 = 332.67 and E[j] = (2n − 1) / 3 = 666.33, each with a
    standard deviation of about n / sqrt(18) = 235.7. Over 20 seeds (2,960 pairs) a mean
    is within 4.3 of its expectation per standard deviation; 25 is six of them. Keeping
    the smallest keys drawn (a sorted unique in place of first appearance) put the mean i
    near 130."""
    n = 1000
    pairs = np.array([p for seed in range(20)
                      for p in _negatives(split_edges(_path(n - 1), n, seed=seed))])
    assert pairs.shape == (20 * 148, 2)
    assert abs(pairs[:, 0].mean() - (n - 2) / 3) < 25
    assert abs(pairs[:, 1].mean() - (2 * n - 1) / 3) < 25
    assert (pairs[:, 0] < pairs[:, 1]).all() and not (pairs[:, 1] - pairs[:, 0] == 1).any()


def test_only_a_dense_graph_lists_its_pairs(monkeypatch):
    """The module's rule: with fewer than 4 · count non-edges every non-edge is listed and
    drawn from; otherwise pairs are drawn and rejected, and the n² pairs are never listed
    (at 10⁵ nodes the list is 40 GB). K11 less 9 pairs (9 non-edges, 6 needed: 9 < 24)
    lists them; K11 less 25 pairs (30 edges, 3 + 1 = 4 needed, 25 ≥ 16) and a path of
    2,000 nodes do not."""
    listed = []
    triu = torch.triu_indices

    def spy(*args, **kwargs):
        listed.append(args[:2])
        return triu(*args, **kwargs)

    monkeypatch.setattr(torch, "triu_indices", spy)
    pairs = list(itertools.combinations(range(11), 2))
    split_edges(_complete_minus(11, pairs[:9])[0], 11, seed=0)
    assert listed == [(11, 11)]
    split_edges(_complete_minus(11, pairs[:25])[0], 11, seed=0)
    split_edges(_path(1999), 2000, seed=0)
    assert listed == [(11, 11)]


# ------------------------------------------------------------------ shares and refusals
@pytest.mark.parametrize("fraction", [0.1, 1 / 3, np.nextafter(1 / 3, 0), 0.25,
                                      0.19999999999999996])
def test_the_fewest_edges_named_is_the_fewest_that_split(fraction):
    """The refusal of a test fraction that holds no edge names the fewest edges that would
    hold one; tried by brute force on paths of 3 edges and up (validation fraction 0),
    it is the first that splits. 0.2 less two ulps: 1 / f is 5.000000000000001, whose
    ceiling 6 is one too many (five edges hold one: 5 · f rounds to 1). A third, either
    side of its float, holds one of 3 edges, the fewest the message is given for."""
    with pytest.raises(ValueError) as err:
        split_edges(_path(2), 3, 0.0, fraction)          # two edges: the general message
    assert "too few to split" in str(err.value)
    first = next(m for m in range(3, 40) if _splits(_path(m), m + 1, fraction))
    if first > 3:
        with pytest.raises(ValueError, match=rf"^the graph has {first - 1} edges: a test "
                                             rf"fraction of {fraction:g} holds none of them "
                                             rf"\(it needs {first} edges or more\); raise "
                                             rf"--test-fraction$"):
            split_edges(_path(first - 1), first, 0.0, fraction)
    else:
        assert first == 3 and 1 / fraction < 3.01


def _splits(ei, n, fraction):
    try:
        split_edges(ei, n, 0.0, fraction)
    except ValueError as err:
        assert "holds none of them" in str(err), err
        return False
    return True


def test_a_vanishing_fraction_is_named_without_counting_to_it():
    ring = _ring(10)
    with pytest.raises(ValueError, match=r"a test fraction of 1e-20 holds none of them "
                                         r"\(it needs about 1e\+20 edges or more\)"):
        split_edges(ring, 10, 0.05, 1e-20)
    with pytest.raises(ValueError, match=r"a validation fraction of 4.94066e-324 holds none "
                                         r"of them \(it needs more edges than a float can "
                                         r"count\); raise --val-fraction"):
        split_edges(ring, 10, 5e-324, 0.2)


@pytest.mark.parametrize("val, test", [(0.5, 0.5), (0.7, 0.4), (0.05, 0.0), (0.05, -0.1),
                                       (-0.01, 0.1), (1.0, 0.1), (0.05, 1.0)])
def test_fractions_outside_their_range_are_named(val, test):
    """Validation in [0, 1), test in (0, 1), their sum under 1: anything else is named
    as the fractions it is, before the graph is counted (a test fraction of 0 or a sum of
    1 otherwise fell through to "too few to split")."""
    with pytest.raises(ValueError, match=rf"^bad split fractions: val {val}, test {test}$"):
        split_edges(_ring(100), 100, val, test)


def test_a_validation_fraction_of_zero_holds_no_validation_pairs():
    split = split_edges(_ring(40), 40, 0.0, 0.1, seed=0)
    assert split.val_pos.shape == split.val_neg.shape == (2, 0)
    assert split.test_pos.shape == split.test_neg.shape == (2, 4)
    assert split.train_edge_index.size(1) == 2 * 36


def test_three_edges_are_a_graph_that_could_be_split():
    """From three edges a fraction holding none of them is named as such (it needs 10
    edges for 0.1); two edges are too few whatever the fractions."""
    with pytest.raises(ValueError, match=r"^the graph has 3 edges: a test fraction of 0.1 "
                                         r"holds none of them \(it needs 10 edges or more\)"):
        split_edges(_path(3), 4)
    with pytest.raises(ValueError, match=r"^the graph has 2 edges, too few to split into "
                                         r"train/val/test$"):
        split_edges(_path(2), 3)


def test_a_split_that_would_leave_no_training_edge_is_refused():
    """Two edges with fractions 0.4999999999999999 and 0.5 (their sum, 0.9999999999999999,
    is under 1): each share rounds to one edge (2 · f is within a few roundings of 1), so
    no edge would be left to train on."""
    val = 0.4999999999999999
    assert val + 0.5 < 1
    with pytest.raises(ValueError, match=r"^the graph has 2 edges, too few to split"):
        split_edges(_path(2), 3, val, 0.5)


def test_the_split_checks_its_edge_index():
    with pytest.raises(ValueError, match=r"^edge_index refers to node 10 but the graph has "
                                         r"only 10 nodes \(valid indices are 0\.\.9\)$"):
        split_edges(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 10]]), 10)
    with pytest.raises(ValueError, match=r"^edge_index contains a negative node index \(-1\)$"):
        split_edges(torch.tensor([[0, 1, 2, -1], [1, 2, 3, 4]]), 10)


def test_a_split_moves_every_tensor():
    moved = split_edges(_ring(40), 40, seed=0).to(torch.device("meta"))
    assert moved.num_nodes == 40
    for name in ("train_edge_index", "val_pos", "val_neg", "test_pos", "test_neg"):
        assert getattr(moved, name).device.type == "meta", name


# ------------------------------------------------------------------ scoring
class _InnerProduct:
    """Scores a pair by the inner product of its codes, as the inner-product decoder does."""

    def score(self, z, pairs):
        return (z[pairs[0]] * z[pairs[1]]).sum(-1)


#: One-dimensional codes: pairs with node 4 (code 1) score 3, 1 (positives) and 2, 0.
_CODES = torch.tensor([[3.0], [1.0], [2.0], [0.0], [1.0]])
_POS, _NEG = torch.tensor([[0, 1], [4, 4]]), torch.tensor([[2, 3], [4, 4]])


def test_evaluate_pairs_gives_auc_and_ap_by_hand():
    """Positives score 3 and 1, negatives 2 and 0. AUC: 3 of the 4 (positive, negative)
    pairs are ordered right, 0.75. AP: ranked 3+, 2−, 1+, 0−, the precision at the two
    positives is 1/1 and 2/3: (1 + 2/3) / 2 = 0.8333."""
    auc, ap = evaluate_pairs(_InnerProduct(), _CODES, _POS, _NEG)
    assert auc == pytest.approx(0.75) and ap == pytest.approx(5 / 6)


def test_evaluate_pairs_refuses_one_non_finite_code():
    z = _CODES.clone()
    z[3, 0] = math.nan
    with pytest.raises(FloatingPointError, match="the latents are not finite"):
        evaluate_pairs(_InnerProduct(), z, _POS, _NEG)


def _hand_split(n, train, test_pos, test_neg):
    empty = torch.empty(2, 0, dtype=torch.long)
    t = torch.tensor(train).t()
    return LinkSplit(n, torch.cat([t, t.flip(0)], 1), empty, empty,
                     torch.tensor(test_pos).t(), torch.tensor(test_neg).t())


def _table_score(values, calls=None):
    """A score function reading each pair (either order) from ``values`` (0 if absent),
    appending the pairs of each call to ``calls`` when given."""
    def score(pairs):
        if calls is not None:
            calls.append(pairs.clone())
        return torch.tensor([values.get((min(a, b), max(a, b)), 0.0)
                             for a, b in pairs.t().tolist()])
    return score


def test_hits_at_k_needs_k_negatives_and_no_more():
    """Hits@20 with exactly 20 test non-edges scoring 0..19: of the positives scoring 100
    and −5, one beats the 20th-best non-edge (score 0): 0.5. Hits@50 and @100 have too few
    and are NaN; with 19 non-edges Hits@20 is NaN too."""
    n = 60
    train = [(i, i + 1) for i in range(40, 59)]
    test_pos = [(0, 1), (2, 3)]
    test_neg = [(4 + i, 30 + i) for i in range(20)]
    values = {(0, 1): 100.0, (2, 3): -5.0, **{p: float(k) for k, p in enumerate(test_neg)}}
    out = ranking_metrics(_table_score(values), _hand_split(n, train, test_pos, test_neg), 0)
    assert out["test_hits@20"] == 0.5
    assert math.isnan(out["test_hits@50"]) and math.isnan(out["test_hits@100"])
    out = ranking_metrics(_table_score(values), _hand_split(n, train, test_pos, test_neg[1:]), 0)
    assert math.isnan(out["test_hits@20"])


#: Eight test edges; those with an even sum score 1, the others −1 (every other pair 0).
_EIGHT = [(0, 2), (1, 3), (4, 6), (5, 7), (8, 9), (10, 11), (12, 13), (14, 15)]
_EVEN_FIRST = {p: (1.0 if sum(p) % 2 == 0 else -1.0) for p in _EIGHT}


def test_the_mrr_ranks_every_test_edge_when_there_are_few():
    """Eight test edges, the four with an even sum scoring 1 and the others −1, every
    non-edge 0: the first four rank first (1), the others below all 100 of their
    non-edges (1/101). The MRR is (4 + 4/101) / 8 = 0.50495; any subset of five gives
    another value."""
    split = _hand_split(40, [(20, 21), (22, 23)], _EIGHT, [(30, 31)])
    out = ranking_metrics(_table_score(_EVEN_FIRST), split, seed=0)
    assert out["test_mrr"] == pytest.approx((4 + 4 / 101) / 8)


def test_the_mrr_ranks_at_most_mrr_positives_distinct_test_edges(monkeypatch):
    """With the cap lowered to 6, six of the eight test edges are ranked, each once, and
    the MRR is the mean of their reciprocal ranks (1 or 1/101, as above)."""
    import graphvae.tasks.link_scores as link_scores
    monkeypatch.setattr(link_scores, "MRR_POSITIVES", 6)
    calls = []
    split = _hand_split(40, [(20, 21), (22, 23)], _EIGHT, [(30, 31)])
    out = ranking_metrics(_table_score(_EVEN_FIRST, calls), split, seed=0)
    ranked = [tuple(p) for p in calls[3].t().tolist()]
    assert len(ranked) == len(set(ranked)) == 6 and set(ranked) <= set(_EIGHT)
    first = sum(_EVEN_FIRST[p] == 1.0 for p in ranked)
    assert out["test_mrr"] == pytest.approx((first + (6 - first) / 101) / 6)


def test_a_test_edge_between_two_hubs_is_left_out_of_the_mrr_alone():
    """Nodes 0 and 1 are joined to every node; the test edge (0, 1) has no end with a
    non-neighbour and is left out, while (2, 3), whose head 2 has the non-neighbours
    4..9, is ranked (first: it scores 1, every non-edge 0): the MRR is 1, not NaN."""
    n = 10
    train = [(h, k) for h in (0, 1) for k in range(2, n)]
    calls = []
    out = ranking_metrics(_table_score({(0, 1): 1.0, (2, 3): 1.0}, calls),
                          _hand_split(n, train, [(0, 1), (2, 3)], [(4, 5)]), 0)
    assert out["test_mrr"] == 1.0
    negatives, positives = calls[2], calls[3]
    assert positives.t().tolist() == [[2, 3]]
    assert negatives.size(1) == MRR_NEGATIVES and set(negatives[0].tolist()) == {2}
    assert set(negatives[1].tolist()) <= set(range(4, n))


def test_top_new_links_refuses_an_edge_list_given_as_rows():
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    rows = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    with pytest.raises(ValueError, match=r"^edge_index must have shape \(2, E\), got \(5, 2\)$"):
        top_new_links(_InnerProduct(), z, rows, k=3)
