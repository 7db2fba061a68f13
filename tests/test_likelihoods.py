import math

import pytest
import torch
import torch.nn.functional as F

from graphvae.adjacency import Adjacency
from graphvae.graph import edge_index_to_dense
from graphvae.likelihoods import (
    balanced_weights,
    bernoulli_edges_dense,
    bernoulli_edges_dense_rows,
    bernoulli_edges_sampled,
    bernoulli_log_prob,
    categorical_log_prob,
    gaussian_log_prob,
    sample_non_edges,
)
from graphvae.likelihoods.edges import check_keys

LOG_HALF = math.log(0.5)
LOGSIG1 = -math.log(1 + math.exp(-1.0))  # log σ(1)


def test_dense_triangle_zero_logits_is_nine_halves(triangle):
    target = edge_index_to_dense(triangle, 3) + torch.eye(3)
    ll = bernoulli_edges_dense(torch.zeros(3, 3), target)
    assert ll.value.item() == pytest.approx(9 * LOG_HALF)
    # without the diagonal: 6 ordered pairs
    ll = bernoulli_edges_dense(torch.zeros(3, 3), target, diagonal=False)
    assert ll.value.item() == pytest.approx(6 * LOG_HALF)


def test_dense_path_by_hand(path3):
    # z = (1, 0, -1): logits z zᵀ = [[1,0,-1],[0,0,0],[-1,0,1]], target A + I of the path.
    z = torch.tensor([[1.0], [0.0], [-1.0]])
    target = edge_index_to_dense(path3, 3) + torch.eye(3)
    ll = bernoulli_edges_dense(z @ z.t(), target, pos_weight=3.0)
    # positives: (0,0) σ(1), (0,1) σ(0), (1,0), (1,1), (1,2), (2,1) σ(0), (2,2) σ(1)
    # negatives: (0,2), (2,0) with logit -1: log σ(1)
    pos = 2 * LOGSIG1 + 5 * LOG_HALF
    neg = 2 * LOGSIG1
    assert ll.value.item() == pytest.approx(pos + neg)
    assert ll.weighted.item() == pytest.approx(3 * pos + neg)


def test_balanced_weights_star(star5):
    # 8 ordered edges + 5 self-loops = 13 positives among 25 pairs
    w, norm = balanced_weights(13, 25)
    assert w == pytest.approx(12 / 13)
    assert norm == pytest.approx(25 / 24)
    with pytest.raises(ValueError):
        balanced_weights(0, 25)


def test_sampler_never_returns_positive_pairs_and_is_uniform(star5):
    adj = Adjacency(star5, 5)
    pairs, keys = adj.positive_pairs(self_loops=True)
    gen = torch.Generator().manual_seed(0)
    neg = sample_non_edges(keys, 5, 60000, gen, diagonal=True)
    k = neg[0] * 5 + neg[1]
    assert not torch.isin(k, keys).any()
    counts = torch.bincount(k, minlength=25)[counts_mask(keys)]
    # 12 non-edges (the leaf-leaf pairs), each with probability 1/12
    assert counts.numel() == 12
    expected = 60000 / 12
    assert ((counts - expected).abs() < 5 * math.sqrt(expected)).all()


def counts_mask(keys):
    m = torch.ones(25, dtype=torch.bool)
    m[keys] = False
    return m


def test_sampler_excludes_diagonal_when_asked(triangle):
    adj = Adjacency(triangle, 3)
    _, keys = adj.positive_pairs(self_loops=False)
    with pytest.raises(ValueError, match="no non-edges"):
        sample_non_edges(keys, 3, 5, diagonal=False)


def test_sampler_counts_diagonal_and_repeated_keys_once_and_refuses_unsorted_keys():
    """Non-edges of 2 nodes whose keys hold both loops: (0, 1) and (1, 0), each half the
    draws (the diagonal keys were counted twice: "no non-edges"). Unsorted keys let the
    edge (0, 1) (key 1) come back as a non-edge; now they are refused."""
    gen = torch.Generator().manual_seed(0)
    neg = sample_non_edges(torch.tensor([0, 3]), 2, 4000, gen, diagonal=False)
    k = neg[0] * 2 + neg[1]
    assert set(k.tolist()) == {1, 2} and abs((k == 1).sum().item() - 2000) < 5 * math.sqrt(1000)
    # 3 nodes, the edge (0, 1) listed twice: 5 non-edges, none of them (0, 1)
    neg = sample_non_edges(torch.tensor([1, 1]), 3, 5000, gen, diagonal=False)
    assert set((neg[0] * 3 + neg[1]).tolist()) == {2, 3, 5, 6, 7}
    with pytest.raises(ValueError, match="sorted_keys must be in ascending order"):
        sample_non_edges(torch.tensor([5, 1]), 3, 10, gen)
    with pytest.raises(ValueError, match=r"sorted_keys must lie in \[0, 9\) for 3 nodes"):
        sample_non_edges(torch.tensor([1, 9]), 3, 10, gen)


def test_positive_pairs_without_self_loops_drop_the_loops_of_the_edge_list():
    """A path 0-1-2 given with loops (0, 0) and (3, 3): 4 ordered pairs when loops are not
    pairs (it gave 6, so the sampled estimate scored log σ(l_ii) as edges and counted 2
    non-edges too few), and 4 + 5 diagonal pairs when they are."""
    from graphvae.models import EdgeObjective, build_model

    adj = Adjacency(torch.tensor([[0, 1, 1, 2, 3, 0], [1, 0, 2, 1, 3, 0]]), 5)
    assert adj.positive_pairs(False)[0].tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert adj.positive_pairs(True)[1].tolist() == [0, 1, 5, 6, 7, 11, 12, 18, 24]
    model = build_model("gae", 5, objective=EdgeObjective(estimator="sampled",
                                                         self_loops=False, reweight=False))
    stats = model.edge_stats(adj)
    assert (stats.num_pos, stats.num_neg) == (4, 16)
    # the sampled estimate's mean: positives exactly, 16 × the mean over the non-edges
    z = torch.randn(5, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    logits = z @ z.t()
    dense = bernoulli_edges_dense(logits, edge_index_to_dense(adj.positive_pairs(False)[0], 5)
                                  .double(), diagonal=False).value
    model.double()
    gen = torch.Generator().manual_seed(0)
    est = torch.stack([model.edge_loglik(z, adj, stats, gen).value for _ in range(2000)])
    assert abs(est.mean() - dense) < 5 * est.std() / math.sqrt(2000)


def test_sampled_estimate_refuses_a_negative_count_of_non_edges():
    with pytest.raises(ValueError, match="num_neg_pairs must be a count >= 0, got -10"):
        bernoulli_edges_sampled(torch.zeros(2), torch.zeros(3), -10)


def test_sampled_estimate_is_unbiased_for_dense(star5):
    torch.manual_seed(0)
    logits = torch.randn(5, 5, dtype=torch.float64)
    adj = Adjacency(star5, 5)
    pairs, keys = adj.positive_pairs(self_loops=True)
    dense = bernoulli_edges_dense(logits, adj.dense_target(True).double(), pos_weight=2.0)
    gen = torch.Generator().manual_seed(1)
    estimates, weighted = [], []
    for _ in range(4000):
        neg = sample_non_edges(keys, 5, 3, gen, diagonal=True)
        ll = bernoulli_edges_sampled(logits[pairs[0], pairs[1]], logits[neg[0], neg[1]],
                                     25 - pairs.size(1), pos_weight=2.0)
        estimates.append(ll.value)
        weighted.append(ll.weighted)
    est = torch.stack(estimates)
    se = est.std() / math.sqrt(est.numel())
    assert abs(est.mean() - dense.value) < 4 * se
    # the positive part is exact, so the weighted version has the same error
    assert torch.allclose(torch.stack(weighted) - est, dense.weighted - dense.value)


def test_gaussian_log_prob_matches_torch():
    torch.manual_seed(0)
    x, mean, logvar = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    ref = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(x).sum(-1)
    assert torch.allclose(gaussian_log_prob(x, mean, logvar), ref, atol=1e-6)
    ref0 = torch.distributions.Normal(mean, 1.0).log_prob(x).sum(-1)
    assert torch.allclose(gaussian_log_prob(x, mean, 0.0), ref0, atol=1e-6)


def test_bernoulli_log_prob_keeps_its_precision_at_large_logits():
    """x·l and Σ softplus(l) were summed before subtracting: logits (10⁸, −2) gave 0, not
    log σ(10⁸) + log σ(2) = −0.126928; term by term the float32 sum of 784 logits of
    scale 30 is within 1e-4 nats of float64 (it was 2e-3 off)."""
    x, logits = torch.tensor([1.0, 0.0]), torch.tensor([1e8, -2.0])
    assert bernoulli_log_prob(x, logits).item() == pytest.approx(-math.log1p(math.exp(-2)),
                                                                 rel=1e-6)
    g = torch.Generator().manual_seed(0)
    lg = torch.randn(200, 784, generator=g) * 30
    xs = (torch.rand(200, 784, generator=g) < torch.sigmoid(lg)).float()
    ref = bernoulli_log_prob(xs.double(), lg.double())
    assert float((bernoulli_log_prob(xs, lg).double() - ref).abs().max()) < 1e-4


def test_bernoulli_and_categorical_by_hand():
    x = torch.tensor([[1.0, 0.0]])
    logits = torch.tensor([[0.0, 1.0]])
    # log σ(0) + log σ(-1)
    expected = LOG_HALF + math.log(1 / (1 + math.e))
    assert bernoulli_log_prob(x, logits).item() == pytest.approx(expected)
    lg = torch.tensor([[1.0, 2.0, 3.0]])
    ref = F.log_softmax(lg, -1)[0, 2].item()
    assert categorical_log_prob(torch.tensor([2]), lg).item() == pytest.approx(ref)
    assert categorical_log_prob(torch.tensor([[0.0, 0.0, 1.0]]), lg).item() == pytest.approx(ref)


@pytest.mark.parametrize("diagonal", [True, False])
@pytest.mark.parametrize("block_entries", [1, 23, 10_000])
def test_dense_likelihood_by_blocks_of_rows_is_the_same_sum(diagonal, block_entries):
    """By blocks of one row, of two rows (23 // 11) and of the whole matrix, the sum over
    row blocks equals the whole-matrix sum, for two draws of logits at once (leading
    dimension 2) and a target with and without the diagonal."""
    g = torch.Generator().manual_seed(4)
    n = 11
    logits = 3 * torch.randn(2, n, n, generator=g, dtype=torch.float64)
    ei = torch.randint(0, n, (2, 30), generator=g)
    ei = ei[:, ei[0] != ei[1]]                                  # a simple graph
    adj = Adjacency(torch.cat([ei, ei.flip(0)], 1), n)
    pairs, keys = adj.positive_pairs(diagonal)
    target = edge_index_to_dense(pairs, n).double()
    whole = bernoulli_edges_dense(logits, target, pos_weight=2.5, diagonal=diagonal)
    blocks = bernoulli_edges_dense_rows(lambda rows: logits[:, rows, :], keys, n,
                                        pos_weight=2.5, diagonal=diagonal,
                                        block_entries=block_entries)
    torch.testing.assert_close(blocks.value, whole.value, rtol=1e-13, atol=0)
    torch.testing.assert_close(blocks.weighted, whole.weighted, rtol=1e-13, atol=0)
    # by hand at zero logits: every counted pair gives log ½, the positives weighted 2.5
    counted = n * n - (0 if diagonal else n)
    pos = len(keys)
    zero = bernoulli_edges_dense_rows(lambda rows: torch.zeros(len(rows), n,
                                                               dtype=torch.float64),
                                      keys, n, pos_weight=2.5, diagonal=diagonal,
                                      block_entries=block_entries)
    assert zero.value.item() == pytest.approx(counted * math.log(0.5), rel=1e-14)
    assert zero.weighted.item() == pytest.approx((2.5 * pos + counted - pos) * math.log(0.5),
                                                 rel=1e-14)
    # float32 with confident positives (logits 1e8, log σ(−l) = −1e8) and the diagonal's
    # large logits: subtracting those from each block's total left nothing of the
    # non-edges' O(1) terms (−128 against −3.4); by the float64 sum, with a float32 margin
    big = logits.clone()
    big[:, target.bool()] = 1e8
    big[:, torch.arange(n), torch.arange(n)] = 1e8 if diagonal else 5e7
    exact = bernoulli_edges_dense(big, target, diagonal=diagonal).value
    rows32 = bernoulli_edges_dense_rows(lambda rows: big.float()[:, rows, :], keys, n,
                                        diagonal=diagonal, block_entries=block_entries)
    assert rows32.value.dtype == torch.float32
    torch.testing.assert_close(rows32.value.double(), exact, rtol=1e-6, atol=1e-5)


def test_bernoulli_log_prob_takes_the_limit_at_infinite_logits():
    """log σ(+inf) = 0 for x = 1 and log σ(−inf) = 0 for x = 0; the wrong certain decision
    is −inf. They were inf − inf (NaN), which turned a whole bound into NaN."""
    inf = math.inf
    logits = torch.tensor([[inf, -inf, 0.0], [inf, 0.0, 0.0], [-inf, 0.0, 0.0],
                           [inf, -inf, 0.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.5, 0.0, 1.0]],
                     dtype=torch.float64)
    out = bernoulli_log_prob(x, logits)
    assert out[0].item() == pytest.approx(LOG_HALF)
    assert out[1:].tolist() == [-inf, -inf, -inf]
    out32 = bernoulli_log_prob(x.float(), logits.float())
    assert out32[0].item() == pytest.approx(LOG_HALF) and out32[1:].isneginf().all()


def test_dense_rows_without_diagonal_ignores_self_loop_keys():
    """n = 3, positives (0,0) (a self-loop), (0,1), (1,0), zero logits, diagonal left out:
    the 6 off-diagonal pairs each give log 1/2; the loop is not counted at all. With
    pos_weight 2 the two off-diagonal positives count twice: 8 log 1/2."""
    keys = torch.tensor([0, 1, 3])
    out = bernoulli_edges_dense_rows(lambda rows: torch.zeros(len(rows), 3, dtype=torch.float64),
                                     keys, 3, pos_weight=2.0, diagonal=False)
    assert out.value.item() == pytest.approx(6 * math.log(0.5), rel=1e-14)
    assert out.weighted.item() == pytest.approx(8 * math.log(0.5), rel=1e-14)


@pytest.mark.parametrize("keys", [[3, 2], [0, 5, 4], [1, 0]])
def test_check_keys_refuses_keys_that_step_down_by_one(keys):
    """keys that go down by exactly one are out of order, like any other descent."""
    with pytest.raises(ValueError, match="ascending"):
        check_keys(torch.tensor(keys), 4)
    with pytest.raises(ValueError, match="ascending"):
        check_keys(torch.tensor(keys), 4, repeats=True)
