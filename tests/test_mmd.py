"""MMD² and its kernels against direct evaluation of their formulas."""

import math
import warnings

import networkx as nx
import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from graphvae.evaluation.graph_stats import (
    THREE_STATS,
    degree_histogram,
    graph_mmd,
    local_clustering,
    mean_of_three,
    mmd_table,
    spectral_histogram,
)
from graphvae.evaluation.mmd import kernel_matrix, mmd_squared
from graphvae.evaluation.pool_mmd import (
    PoolMMD,
    expected_mmd,
    kernel_min_eigenvalues,
    lowest_expected_mmd,
)


def direct_mmd(xs, ys, k):
    def mean(a, b):
        return sum(k(u, v) for u in a for v in b) / (len(a) * len(b))
    return mean(xs, xs) + mean(ys, ys) - 2 * mean(xs, ys)


def pad(v, n):
    return np.r_[np.asarray(v, float), np.zeros(n - len(v))]


def test_local_clustering_by_hand_and_bit_for_bit_networkx():
    """A triangle 0-1-2 with a pendant 3 on node 0, a self-loop on 1 and an isolated
    node 4: node 0 has 3 neighbours, one adjacent pair of them (1/3); 1 and 2 sit in a
    closed triangle (1; the self-loop counts for nothing); 3 and 4 have no pair (0). Then
    random graphs, with self-loops and string labels, equal networkx to the last bit."""
    g = nx.Graph([(0, 1), (1, 2), (2, 0), (0, 3), (1, 1)])
    g.add_node(4)
    assert local_clustering(g).tolist() == [1 / 3, 1.0, 1.0, 0.0, 0.0]
    assert local_clustering(nx.Graph()).shape == (0,)
    rng = np.random.default_rng(0)
    for i in range(60):
        n = int(rng.integers(1, 40))
        h = nx.gnp_random_graph(n, float(rng.uniform(0.05, 0.9)), seed=i)
        h.add_edges_from((int(v), int(v)) for v in rng.integers(0, n, size=3))
        if i % 3 == 0:
            h = nx.relabel_nodes(h, {v: f"v{v}" for v in h})
        assert local_clustering(h).tolist() == list(nx.clustering(h).values()), i
    d = nx.gnp_random_graph(12, 0.4, seed=1, directed=True)   # networkx's directed rule
    assert local_clustering(d).tolist() == list(nx.clustering(d).values())


def test_kernels_on_a_hand_made_pair():
    x, y = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    # EMD: half the mass moves two bins; F_x = (.5, 1, 1), F_y = (0, .5, 1), Σ|ΔF| = 1.0
    assert kernel_matrix(x[None], y[None], "gaussian_emd", 1.0)[0, 0] == pytest.approx(
        math.exp(-1.0 / 2))
    # with distance_scaling 2 and sigma 0.5: d = 0.5, k = exp(-0.25 / 0.5)
    assert kernel_matrix(x[None], y[None], "gaussian_emd", 0.5, 2.0)[0, 0] == pytest.approx(
        math.exp(-0.5))
    # TV = ½ (0.5 + 0 + 0.5) = 0.5
    assert kernel_matrix(x[None], y[None], "gaussian_tv", 1.0)[0, 0] == pytest.approx(
        math.exp(-0.125))
    # L2 = sqrt(0.5): k = exp(-0.5 / 2)
    assert kernel_matrix(x[None], y[None], "gaussian_rbf", 1.0)[0, 0] == pytest.approx(
        math.exp(-0.25))


@pytest.mark.parametrize("kernel", ["gaussian_rbf", "gaussian_emd"])
def test_a_tiny_sigma_gives_the_limit_not_nan(kernel):
    """As σ → 0 the kernel is 1 at distance 0 and 0 elsewhere: X = {x, y}, Y = {x} gives
    mean k(X, X) = ½, k(Y, Y) = 1, mean k(X, Y) = ½, MMD² = ½ + 1 − 2·½ = ½. At σ = 1e-170,
    σ² underflowed to 0 and every zero distance gave 0/0 (NaN)."""
    x, y = [1.0, 2.0], [2.0, 1.0]
    for sigma in (1e-150, 1e-170, 5e-324):
        got = mmd_squared([np.array(x), np.array(y)], [np.array(x)], kernel, sigma)
        assert got == pytest.approx(0.5), (sigma, got)


@pytest.mark.parametrize("seed", range(5))
def test_mmd_matches_direct_formula_with_scipy_emd(seed):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(0, 5, size=rng.integers(2, 7)).astype(float) + 0.1 for _ in range(4)]
    ys = [rng.integers(0, 5, size=rng.integers(2, 7)).astype(float) + 0.1 for _ in range(3)]
    n = max(len(v) for v in xs + ys)
    norm = [pad(v / v.sum(), n) for v in xs], [pad(v / v.sum(), n) for v in ys]

    def emd_kernel(u, v, sigma=0.7, scaling=3.0):
        d = wasserstein_distance(np.arange(n), np.arange(n), u, v) / scaling
        return math.exp(-d * d / (2 * sigma ** 2))

    def tv_kernel(u, v, sigma=0.3):
        d = 0.5 * np.abs(u - v).sum()
        return math.exp(-d * d / (2 * sigma ** 2))

    assert mmd_squared(xs, ys, "gaussian_emd", 0.7, 3.0) == pytest.approx(
        direct_mmd(*norm, emd_kernel), abs=1e-12)
    assert mmd_squared(xs, ys, "gaussian_tv", 0.3) == pytest.approx(
        direct_mmd(*norm, tv_kernel), abs=1e-12)
    raw = [pad(v, n) for v in xs], [pad(v, n) for v in ys]

    def rbf(u, v, sigma=30.0):
        return math.exp(-np.sum((u - v) ** 2) / (2 * sigma ** 2))

    assert mmd_squared(xs, ys, "gaussian_rbf", 30.0, normalize=False) == pytest.approx(
        direct_mmd(*raw, rbf), abs=1e-12)


@pytest.mark.parametrize("kernel", ["gaussian_emd", "gaussian_tv", "gaussian_rbf"])
def test_mmd_of_a_set_with_itself_is_zero_and_grows_with_a_planted_shift(kernel):
    rng = np.random.default_rng(0)
    base = [np.bincount(rng.poisson(3, size=30), minlength=12)[:12] for _ in range(20)]
    assert mmd_squared(base, base, kernel, 1.0) == pytest.approx(0.0, abs=1e-12)
    values = []
    for shift in (0, 1, 2, 4):
        other = [np.bincount(rng.poisson(3 + shift, size=30), minlength=12)[:12]
                 for _ in range(20)]
        values.append(mmd_squared(base, other, kernel, 1.0))
    assert values[0] < values[1] < values[2] < values[3]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown kernel"):
        mmd_squared([np.ones(2)], [np.ones(2)], "emd", 1.0)
    with pytest.raises(ValueError, match="sigma"):
        mmd_squared([np.ones(2)], [np.ones(2)], "gaussian_tv", 0.0)
    with pytest.raises(ValueError, match="at least one"):
        mmd_squared([], [np.ones(2)], "gaussian_tv", 1.0)


def test_nonsense_inputs_are_refused_not_scored():
    """Before: a negative 'histogram' was divided by max(sum, 1e-12) to [-1e12, 0] (MMD² at
    its maximum 2), σ = NaN or distance_scaling = 0 gave NaN, and the EMD kernel blamed a
    missing normalize=True for an all-zero histogram that it had been given."""
    one = [np.array([1.0, 0.0])]
    with pytest.raises(ValueError, match="the first set has negative entries"):
        mmd_squared([np.array([-1.0, 0.0])], one, "gaussian_tv", 1.0)
    with pytest.raises(ValueError, match="the second set has entries that are not finite"):
        mmd_squared(one, [np.array([np.nan, 1.0])], "gaussian_rbf", 1.0, normalize=False)
    for sigma in (np.nan, np.inf, -1.0):
        with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
            mmd_squared(one, one, "gaussian_tv", sigma)
    with pytest.raises(ValueError, match="distance_scaling must be a finite number > 0"):
        mmd_squared(one, one, "gaussian_emd", 1.0, distance_scaling=0.0)
    with pytest.raises(ValueError, match="equal mass: an all-zero histogram has none"):
        mmd_squared(one, [np.zeros(2)], "gaussian_emd", 1.0)
    # without normalize, signed vectors are fine: ‖(−1, 0) − (1, 0)‖ = 2, k = e^{−2}
    got = mmd_squared([np.array([-1.0, 0.0])], one, "gaussian_rbf", 1.0, normalize=False)
    assert got == pytest.approx(2 - 2 * np.exp(-2.0), abs=1e-15)
    with pytest.raises(ValueError, match="num_samples must be a whole number >= 1, got 2.5"):
        expected_mmd([nx.path_graph(3)], [nx.path_graph(3)], "graphrnn", 2.5)
    with pytest.raises(ValueError, match="a reference graph has no nodes"):
        graph_mmd([nx.empty_graph(0)], [nx.path_graph(3)], "gran")


def test_graph_mmd_protocols_by_hand_and_on_planted_differences():
    import networkx as nx

    from graphvae.evaluation.graph_stats import graph_mmd, orbit_vector

    # two single graphs: a triangle and a 3-path under GraphRNN's degree kernel.
    # degree histograms (0, 0, 3) and (0, 2, 1) -> pmfs (0,0,1), (0,2/3,1/3):
    # F = (0,0,1) vs (0,2/3,1): EMD = 2/3, k = exp(-(2/3)^2 / 2)
    tri, path = nx.complete_graph(3), nx.path_graph(3)
    got = graph_mmd([tri], [path], "graphrnn", ["degree"])["degree"]
    assert got == pytest.approx(2 - 2 * math.exp(-(2 / 3) ** 2 / 2))
    # orbit vectors: triangle (2, 0, 0, 1, 0...), path: mean over nodes of
    # deg (1,2,1) -> 4/3, orbit 1 (ends) 2/3, orbit 2 (centre) 1/3
    assert orbit_vector(path)[:4].tolist() == pytest.approx([4 / 3, 2 / 3, 1 / 3, 0])
    ref = [nx.gnp_random_graph(12, 0.3, seed=s) for s in range(15)]
    same = [nx.gnp_random_graph(12, 0.3, seed=100 + s) for s in range(15)]
    denser = [nx.gnp_random_graph(12, 0.6, seed=200 + s) for s in range(15)]
    for protocol in ("graphrnn", "gran"):
        near, far = graph_mmd(ref, same, protocol), graph_mmd(ref, denser, protocol)
        itself = graph_mmd(ref, ref, protocol)
        for stat in near:
            if stat == "empty_generated":
                continue
            assert itself[stat] == pytest.approx(0.0, abs=1e-12)
            assert far[stat] > 0
            # GRAN's clustering kernel (TV, σ = 0.1 on 100-bin histograms of 12-node graphs)
            # saturates: nearly every pair of histograms is at TV ≈ 1, so it barely separates
            if (protocol, stat) != ("gran", "clustering"):
                assert near[stat] < far[stat], (protocol, stat)
    assert graph_mmd(ref, ref + [nx.Graph()], "gran")["empty_generated"] == 1.0
    # every sample empty: each MMD² undefined (NaN, null in JSON), the count kept, so a
    # run still writes its outputs (it stopped after training before); no reference: error
    none = graph_mmd(ref, [nx.Graph(), nx.Graph()], "graphrnn")
    assert none["empty_generated"] == 2.0
    assert set(none) == {"degree", "clustering", "orbit", "empty_generated"}
    assert all(math.isnan(none[k]) for k in ("degree", "clustering", "orbit"))
    with pytest.raises(ValueError, match="at least one reference graph"):
        graph_mmd([], ref, "graphrnn")
    from graphvae.cli.common import generation_summary
    row = {"degree": 0.5, "clustering": 0.25, "orbit": 0.0, "empty_generated": 3.0}
    lines = generation_summary({"dataset": "d", "model": "m", "seed": 0, "num_samples": 4,
                                "protocol": "graphrnn",
                                "mmd2": {"generated": row, "train_vs_test": row}})
    assert lines[1] == ("  MMD² (graphrnn): 0.5 / 0.25 / 0 (degree / clustering / orbit), "
                        "mean 0.25; 3 empty samples left out")
    with pytest.raises(ValueError, match="protocol"):
        graph_mmd(ref, ref, "graphrnn", ["spectral"])
    with pytest.raises(ValueError, match="unknown MMD protocol"):
        graph_mmd(ref, ref, "gdss-ish")


def test_each_protocols_kernels_and_bins_on_a_hand_worked_pair():
    """The paw (a triangle 0-1-2 with 3 hanging from 0) against the diamond (K4 less one
    edge), one graph a side, so MMD² = 2 − 2 k(paw, diamond).

    Degrees (3, 2, 2, 1) and (3, 3, 2, 2): pmfs over 0..3 of (0, 1/4, 1/2, 1/4) and
    (0, 0, 1/2, 1/2); CDF gaps 0, 1/4, 1/4, 0, so GraphRNN's EMD (unit ground distance,
    σ = 1) is 1/2; GRAN's total variation (half the L1 gap, σ = 1) is 1/4.
    Clustering (1/3, 1, 1, 0) and (2/3, 2/3, 1, 1), in 100 bins of [0, 1]: 1/4 in bins
    0 and 33 and 1/2 in bin 99, against 1/2 in bins 66 and 99. The CDF gap is 1/4 over
    bins 0–32 and 1/2 over bins 33–65: 24.75 bin-steps, which GraphRNN's distance
    scaling of 100 makes an EMD of 0.2475 (σ = 0.1); GRAN's total variation is 1/2
    (σ = 0.1). A Gaussian kernel is exp(−d² / 2σ²)."""
    from graphvae.evaluation.graph_stats import graph_mmd
    paw = nx.Graph([(0, 1), (1, 2), (2, 0), (0, 3)])
    diamond = nx.complete_graph(4)
    diamond.remove_edge(2, 3)

    def mmd2(d: float, sigma: float) -> float:
        return 2 - 2 * math.exp(-d * d / (2 * sigma * sigma))

    stats = ["degree", "clustering"]
    graphrnn = graph_mmd([paw], [diamond], "graphrnn", stats)
    assert graphrnn["degree"] == pytest.approx(mmd2(0.5, 1.0), rel=1e-12)
    assert graphrnn["clustering"] == pytest.approx(mmd2(0.2475, 0.1), rel=1e-12)
    gran = graph_mmd([paw], [diamond], "gran", stats)
    assert gran["degree"] == pytest.approx(mmd2(0.25, 1.0), rel=1e-12)
    assert gran["clustering"] == pytest.approx(mmd2(0.5, 0.1), rel=1e-12)


def test_spectral_histogram_bins_as_gran_and_gdss_take_them():
    """200 bins of (−1e-5, 2], as GRAN's and GDSS's ``spectral_stats``: the normalised
    Laplacian of the 3-path has eigenvalues 0, 1, 2 (bins 0, 100, 199: 1 lies 1e-5 past
    the edge of bin 100), the 6-cycle's are 1 − cos(2πk/6): 0, 1/2, 1/2, 3/2, 3/2, 2."""
    p3 = spectral_histogram(nx.path_graph(3))
    assert np.flatnonzero(p3).tolist() == [0, 100, 199]
    assert p3[[0, 100, 199]] == pytest.approx([1 / 3] * 3)
    c6 = spectral_histogram(nx.cycle_graph(6))
    assert np.flatnonzero(c6).tolist() == [0, 50, 150, 199]
    assert c6[[0, 50, 150, 199]] == pytest.approx([1 / 6, 1 / 3, 1 / 3, 1 / 6])


# -- GDSS's set-up ------------------------------------------------------------------------------

def test_gdss_split_is_unshuffled_first_fifth_test():
    from graphvae.datasets.graphsets import gdss_split
    graphs = [nx.path_graph(n) for n in range(2, 12)]           # 10 graphs, told apart by size
    sp = gdss_split(graphs)
    assert [g.number_of_nodes() for g in sp.test] == [2, 3]
    assert [g.number_of_nodes() for g in sp.train] == list(range(4, 12))
    assert sp.valid is sp.train
    with pytest.raises(ValueError, match="at least 5"):
        gdss_split(graphs[:4])


def test_gdss_generated_drops_isolated_nodes_and_self_loops():
    from graphvae.evaluation.graph_stats import gdss_generated
    g = nx.Graph([(0, 1), (1, 1)])
    g.add_nodes_from([2, 3])
    h = gdss_generated(g)
    assert sorted(h.nodes) == [0, 1] and sorted(h.edges) == [(0, 1)]
    empty = nx.empty_graph(3)
    assert gdss_generated(empty).number_of_nodes() == 1
    assert g.number_of_nodes() == 4                             # the input is left alone


def test_spectral_histogram_keeps_the_eigenvalue_two_of_bipartite_graphs():
    """Every connected bipartite graph has normalised-Laplacian eigenvalue 2. The 3 × 3 grid
    (LAPACK returns 2 + 4e-16 for it) and the even cycles: 1/n of the mass in the last bin
    and 1/n in the first (eigenvalue 0); the grid's was dropped and the rest rescaled."""
    for g in (nx.grid_2d_graph(3, 3), nx.grid_2d_graph(10, 10), nx.cycle_graph(6),
              nx.complete_bipartite_graph(2, 5)):
        h = spectral_histogram(g)
        n = g.number_of_nodes()
        assert h.sum() == pytest.approx(1.0)
        assert h[-1] == pytest.approx(1 / n) and h[0] == pytest.approx(1 / n)


def test_gdss_spectral_mmd_by_hand():
    """K2's normalised Laplacian has eigenvalues 0, 2; the path on 3 nodes 0, 1, 2. Their
    200-bin pmfs: (1/2 at the first bin, 1/2 at the last) and thirds at the first, a middle
    and the last bin. With ground distance |i − j| (in bins) the EMD is the sum of the CDF
    gaps: 1/6 over each of the 199 steps, wherever the middle bin lies: 199/6. One graph a
    side: MMD² = 2 − 2 exp(−(199/6)² / 2)."""
    got = graph_mmd([nx.path_graph(2)], [nx.path_graph(3)], "gdss", ["spectral"])["spectral"]
    assert got == pytest.approx(2 - 2 * math.exp(-(199 / 6) ** 2 / 2), abs=1e-12)
    c5 = nx.cycle_graph(5)
    same = graph_mmd([c5], [nx.relabel_nodes(c5, {i: (2 * i) % 5 for i in range(5)})], "gdss")
    assert all(same[k] == pytest.approx(0.0, abs=1e-12)
               for k in ("degree", "clustering", "orbit", "spectral"))


def test_gdss_kernels_are_graphrnns_for_the_three_statistics():
    ref = [nx.cycle_graph(6), nx.path_graph(5), nx.star_graph(4)]
    gen = [nx.complete_graph(4), nx.path_graph(6)]
    a, b = graph_mmd(ref, gen, "gdss"), graph_mmd(ref, gen, "graphrnn")
    for k in ("degree", "clustering", "orbit"):
        assert a[k] == b[k]


def test_generate_with_the_gdss_protocol(tmp_path):
    from graphvae.tasks.generation import GenerationConfig, run_generation
    m = run_generation(GenerationConfig(epochs=1, protocol="gdss"), progress=False)
    assert m["split"]["test"] == 20 and m["split"]["train"] == 80
    assert set(m["mmd2"]["generated"]) >= {"degree", "clustering", "orbit", "spectral"}
    with pytest.raises(ValueError, match="qm9"):
        GenerationConfig(dataset="qm9", protocol="gdss")


def test_graph_novelty_counts_copies_up_to_isomorphism():
    from graphvae.evaluation.graph_stats import graph_novelty
    train = [nx.cycle_graph(5), nx.path_graph(4)]
    relabelled = nx.relabel_nodes(nx.cycle_graph(5), {0: 3, 1: 0, 2: 4, 3: 1, 4: 2})
    star = nx.star_graph(3)                                   # 4 nodes, 3 edges, like P4
    got = graph_novelty([relabelled, star, nx.path_graph(4), star], train)
    # copies: C5 and P4 (2 of 4); classes: C5, star, P4 (3 of 4)
    assert got == {"in_training": 0.5, "unique": 0.75, "undetermined": 0}


def test_graph_novelty_bounds_the_exact_tests_and_counts_what_it_cut_off(monkeypatch):
    """A cycle and two half cycles agree in size, degrees and Weisfeiler-Lehman hash, so
    only VF2 tells them apart, in time growing as n³: two such graphs of 5,000 nodes (a
    116 KB samples file) took hours in score. The tests share a work budget; one cut off
    counts as "not isomorphic" and in ``undetermined``. Under the budget the answer is the
    exact one (checked against networkx's unbounded test)."""
    import graphvae.evaluation.graph_stats as gs
    c = nx.cycle_graph(60)
    halves = nx.disjoint_union(nx.cycle_graph(30), nx.cycle_graph(30))
    assert not nx.is_isomorphic(c, halves)
    with warnings.catch_warnings():         # networkx 3.5 notes that its hashes changed
        warnings.simplefilter("ignore", UserWarning)
        assert nx.weisfeiler_lehman_graph_hash(c) == nx.weisfeiler_lehman_graph_hash(halves)
    relabelled = nx.relabel_nodes(c, {i: (7 * i) % 60 for i in range(60)})
    assert gs.graph_novelty([halves, relabelled], [c]) == {
        "in_training": 0.5, "unique": 1.0, "undetermined": 0}
    monkeypatch.setattr(gs, "NOVELTY_WORK", 0)
    # 3 n² (1 + d) a sample: 32,400 units; C60 against itself needs about 72 checks of
    # 60 + 2 m units (done first), the halves against C60 thousands
    got = gs.graph_novelty([relabelled, halves], [c])
    assert got == {"in_training": 0.5, "unique": 1.0, "undetermined": 2}
    # a check costs n + m d: VF2 scans the matched nodes' neighbours, so three cliques of
    # 400 took 25 s for 1,200 checks. Three cliques of 20 against themselves: about 60
    # checks, 60 · 60 + 19 · 1,770 = 37,000 units (3,600 when a check cost n alone)
    cliques = nx.disjoint_union_all([nx.complete_graph(20) for _ in range(3)])
    monkeypatch.setattr(gs, "NOVELTY_MAX_WORK", 20_000)
    assert gs.graph_novelty([cliques], [cliques.copy()])["undetermined"] == 1
    monkeypatch.undo()
    assert gs.graph_novelty([cliques], [cliques.copy()]) == {
        "in_training": 1.0, "unique": 1.0, "undetermined": 0}


@pytest.mark.parametrize("protocol", ["gdss", "graphrnn"])
def test_expected_mmd_is_the_average_over_every_possible_draw(protocol):
    """Three pool graphs drawn twice with probabilities 0.5 / 0.3 / 0.2: the closed form
    equals the MMD² of all nine ordered draws weighted by their probabilities. One pool
    graph has an isolated node, which GDSS's set-up removes from generated graphs."""
    reference = [nx.path_graph(4), nx.cycle_graph(5), nx.star_graph(3)]
    with_isolated = nx.complete_graph(3)
    with_isolated.add_node(3)
    pool = [nx.cycle_graph(4), with_isolated, nx.path_graph(5)]
    w = [0.5, 0.3, 0.2]
    brute: dict[str, float] = {}
    for i in range(3):
        for j in range(3):
            m = mmd_table(reference, [pool[i], pool[j]], protocol)["generated"]
            for k, v in m.items():
                if k != "empty_generated":
                    brute[k] = brute.get(k, 0.0) + w[i] * w[j] * v
    got = expected_mmd(reference, pool, protocol, 2, w)
    assert set(got) == set(brute)
    for k in brute:
        assert got[k] == pytest.approx(brute[k], rel=1e-12, abs=1e-15), k
    # uniform weights by default
    uniform = expected_mmd(reference, pool, protocol, 2)
    assert uniform == expected_mmd(reference, pool, protocol, 2, [1 / 3] * 3)
    for bad in ([0.5, 0.5], [0.7, 0.7, -0.4], [0.2, 0.2, 0.2]):
        with pytest.raises(ValueError, match="weights"):
            expected_mmd(reference, pool, protocol, 2, bad)


def _mean_of_three_expected(reference, pool, m, w):
    return mean_of_three(expected_mmd(reference, pool, "gdss", m, list(w)))


@pytest.mark.slow  # 7 s (every weighting of the grid)
def test_lowest_expected_mmd_beats_every_weighting_of_a_grid():
    """Three pool graphs: the weights found score no more than the best of all 231
    weightings on a 0.05 grid of the simplex, and less than the uniform weights. With
    groups, each group keeps its share of the pool, and the weights beat a grid over the
    weightings that keep it."""
    reference = [nx.path_graph(4), nx.cycle_graph(5), nx.star_graph(3), nx.cycle_graph(4)]
    pool = [nx.complete_graph(4), nx.path_graph(5), nx.star_graph(4)]
    w = lowest_expected_mmd(reference, pool, "gdss", 3)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    got = _mean_of_three_expected(reference, pool, 3, w)
    steps = np.linspace(0, 1, 21)
    grid = [_mean_of_three_expected(reference, pool, 3, (a, b, max(1 - a - b, 0.0)))
            for a in steps for b in steps if a + b <= 1 + 1e-12]
    assert len(grid) == 231
    assert got <= min(grid) + 1e-9
    assert got < _mean_of_three_expected(reference, pool, 3, [1 / 3] * 3) - 1e-4

    pool4 = [*pool, nx.cycle_graph(5)]                         # sizes 4, 5, 5, 5
    sizes = [g.number_of_nodes() for g in pool4]
    w4 = lowest_expected_mmd(reference, pool4, "gdss", 3, groups=sizes)
    assert w4[0] == pytest.approx(0.25) and w4[1:].sum() == pytest.approx(0.75)
    got4 = _mean_of_three_expected(reference, pool4, 3, w4)
    grid4 = [_mean_of_three_expected(reference, pool4, 3, (0.25, a, b, max(0.75 - a - b, 0.0)))
             for a in steps * 0.75 for b in steps * 0.75 if a + b <= 0.75 + 1e-12]
    assert got4 <= min(grid4) + 1e-9
    with pytest.raises(ValueError, match="one label per pool graph"):
        lowest_expected_mmd(reference, pool4, "gdss", 3, groups=[4, 5])


def _pair_kernel(a, b, protocol="gdss"):
    """Each statistic's kernel value between two graphs from the MMD² of the one-graph sets
    ``{a}`` and ``{b}``: ``k(a, a) + k(b, b) − 2 k(a, b) = 2 − 2 k(a, b)``."""
    return {k: 1 - v / 2 for k, v in graph_mmd([a], [b], protocol).items()
            if k != "empty_generated"}


def test_lowest_leave_one_out_beats_a_grid_of_hand_kernel_values():
    """Fitted to the training graphs alone: the objective is, by hand from pairwise kernel
    values, ``(1 − 1/m) wᵀKw − 2 Σ_i w_i mean_{j≠i} k(j, i)`` averaged over the three
    statistics; the weights found are no worse than every weighting on a 0.05 grid. A pool
    that is not its own reference is refused."""
    train = [nx.path_graph(4), nx.cycle_graph(5), nx.complete_graph(4)]  # none isolated
    m, n = 10, len(train)
    pair = [[_pair_kernel(a, b) for b in train] for a in train]

    def objective(w):
        total = 0.0
        for s in THREE_STATS:
            k = np.array([[pair[i][j][s] for j in range(n)] for i in range(n)])
            others = np.array([sum(k[j, i] for j in range(n) if j != i) / (n - 1)
                               for i in range(n)])
            total += (1 - 1 / m) * w @ k @ w - 2 * others @ w
        return total / 3

    pm = PoolMMD(train, train, "gdss", m)
    w = pm.lowest(leave_one_out=True)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    steps = np.linspace(0, 1, 21)
    grid = [objective(np.array([a, b, max(1 - a - b, 0.0)]))
            for a in steps for b in steps if a + b <= 1 + 1e-12]
    assert objective(w) <= min(grid) + 1e-9
    assert 0 < w[2] < 1                          # inside the simplex: not a grid vertex
    # each graph matched with itself as well: copying pays, and the weights differ
    plain = pm.lowest()
    assert np.abs(plain - w).max() > 1e-3
    with pytest.raises(ValueError, match="its own reference"):
        PoolMMD(train[:2], train, "gdss", m).lowest(leave_one_out=True)


def test_kernel_min_eigenvalues_by_hand():
    """Two graphs: the kernel matrix [[1, k], [k, 1]] has smallest eigenvalue 1 − |k|.
    Four graphs: the smallest eigenvalue of the matrix built from pairwise kernel values."""
    a, b = nx.path_graph(4), nx.star_graph(4)
    k = _pair_kernel(a, b, "graphrnn")
    got = kernel_min_eigenvalues([a, b], "graphrnn")
    assert set(got) == set(k)
    for s in k:
        assert got[s] == pytest.approx(1 - abs(k[s]), abs=1e-12)
    graphs = [nx.path_graph(4), nx.cycle_graph(5), nx.star_graph(3), nx.complete_graph(4)]
    pair = [[_pair_kernel(x, y) for y in graphs] for x in graphs]
    got = kernel_min_eigenvalues(graphs, "gdss")
    for s in got:
        mat = np.array([[pair[i][j][s] for j in range(4)] for i in range(4)])
        assert got[s] == pytest.approx(np.linalg.eigvalsh(mat).min(), abs=1e-12)
    with pytest.raises(ValueError, match="at least one graph"):
        kernel_min_eigenvalues([], "gdss")


@pytest.mark.parametrize("kernel", ["gaussian_emd", "gaussian_tv", "gaussian_rbf"])
def test_kernel_matrix_in_row_blocks_is_the_same_matrix(kernel, monkeypatch):
    """Blocks of 3 rows (the default holds 2^24 entries) give the kernel matrix bit for bit:
    the blocks bound memory (3,000 samples of 100-bin histograms asked for about 14 GB) and
    change no value."""
    import graphvae.evaluation.mmd as mmd
    rng = np.random.default_rng(0)
    a, b = rng.random((37, 50)), rng.random((23, 50))
    whole = kernel_matrix(a, b, kernel, 1.0)
    monkeypatch.setattr(mmd, "CHUNK_ENTRIES", 23 * 50 * 3)
    assert np.array_equal(kernel_matrix(a, b, kernel, 1.0), whole)


def test_graph_statistics_refuse_directed_graphs_and_multigraphs():
    """A directed 3-cycle had clustering 0.5 and counted as a triangle among the orbits."""
    c3 = nx.cycle_graph(3)
    for kind in (nx.DiGraph, nx.MultiGraph):
        bad = kind(nx.cycle_graph(3, create_using=kind))
        with pytest.raises(ValueError, match=f"undirected simple graphs, got a {kind.__name__}"):
            graph_mmd([c3], [bad], "graphrnn")
        with pytest.raises(ValueError, match="undirected simple graphs"):
            expected_mmd([bad], [c3], "gran", 1)


def test_a_gaussian_emd_mmd2_can_be_negative_as_graphrnn_computes_it():
    """The Gaussian-EMD degree kernel is not positive definite on these six graphs, so the
    V-statistic comes out below 0; the module docstring called it a squared distance. The
    value is recomputed here from the definition (scipy's 1-D EMD on degree histograms
    normalised to sum 1, σ = 1, every pair with the diagonal)."""
    ref = [nx.complete_graph(3), nx.path_graph(4), nx.star_graph(3)]
    gen = [nx.path_graph(3), nx.Graph([(0, 1), (1, 2), (0, 2), (2, 3)]), nx.cycle_graph(4)]

    def hist(g):
        counts = np.array(nx.degree_histogram(g), float)
        return np.pad(counts / counts.sum(), (0, 4 - len(counts)))

    def k(a, b):
        support = np.arange(4)
        return math.exp(-wasserstein_distance(support, support, a, b) ** 2 / 2)

    def mean_k(xs, ys):
        return sum(k(hist(x), hist(y)) for x in xs for y in ys) / (len(xs) * len(ys))

    by_definition = mean_k(ref, ref) + mean_k(gen, gen) - 2 * mean_k(ref, gen)
    assert by_definition < -0.003
    assert graph_mmd(ref, gen, "graphrnn", ["degree"])["degree"] == pytest.approx(
        by_definition, rel=1e-12)


def test_protocol_settings_and_histograms_that_earlier_cases_left_free(monkeypatch):
    """Closed forms, one graph against one (MMD² = 2 − 2k):
    - GDSS's clustering: paw against diamond, EMD 0.2475 (as under GRAN), σ = 0.1 with the
      distance scaled by 100 bins: k = exp(−0.2475² / 0.02).
    - Orbits, raw counts (not normalised): per node means, triangle (2, 0, 0, 1) and
      3-path (4/3, 2/3, 1/3, 0) on orbits 0–3. GRAN's TV is ½ Σ|·| = 4/3, σ = 30:
      k = exp(−(16/9) / 1800); the RBF's distance² is 2: k = exp(−2 / 1800).
    - Clustering bins of [0, 1]: a hub joined to the path a-b-c-d has clustering
      ½ (hub), 1, ⅔, ⅔, 1: bins 50, 66, 66, 99, 99.
    - Spectral: eigenvalues clipped to [0, 2], so 2 + 4e-16 (LAPACK's rounding on some
      machines) lands in the last bin.
    - fraction_connected counts a one-node graph as connected."""
    from graphvae.evaluation import graph_stats

    paw = nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)])
    diamond = nx.Graph([(0, 1), (1, 2), (2, 0), (1, 3), (2, 3)])
    assert graph_mmd([paw], [diamond], "gdss", ["clustering"])["clustering"] == \
        pytest.approx(2 - 2 * math.exp(-0.2475 ** 2 / 0.02), rel=1e-9)
    tri, p3 = nx.complete_graph(3), nx.path_graph(3)
    assert graph_mmd([tri], [p3], "gran", ["orbit"])["orbit"] == \
        pytest.approx(2 - 2 * math.exp(-(16 / 9) / 1800), rel=1e-9)
    assert graph_mmd([tri], [p3], "rbf", ["orbit"])["orbit"] == \
        pytest.approx(2 - 2 * math.exp(-2 / 1800), rel=1e-9)
    hub = nx.Graph([("h", v) for v in "abcd"] + [("a", "b"), ("b", "c"), ("c", "d")])
    h = graph_stats.clustering_histogram(hub)
    assert {i: float(v) for i, v in enumerate(h) if v} == {50: 1.0, 66: 2.0, 99: 2.0}
    monkeypatch.setattr(graph_stats, "eigvalsh", lambda m: np.array([0.0, 1.0, 2 + 4e-16]))
    spec = graph_stats.spectral_histogram(nx.path_graph(3))
    assert spec[0] == spec[-1] == pytest.approx(1 / 3) and spec.sum() == pytest.approx(1)
    assert graph_stats.graph_summary([nx.empty_graph(1), nx.empty_graph(2)])[
        "fraction_connected"] == 0.5
    assert graph_stats.graph_summary([nx.empty_graph(1)])["fraction_connected"] == 1.0


def test_mmd_refuses_an_empty_second_set_and_infinite_entries():
    """The empty-set check looks at both sides (an empty second set gave NaN and a
    RuntimeWarning), and an infinite entry is refused as a NaN is (it gave 0 or NaN
    kernel values, and a number or NaN out)."""
    with pytest.raises(ValueError, match="at least one sample on each side"):
        mmd_squared([np.ones(2)], [], "gaussian_tv", 1.0)
    with pytest.raises(ValueError, match="the first set has entries that are not finite"):
        mmd_squared([np.array([np.inf, 0.0])], [np.array([1.0, 0.0])], "gaussian_rbf", 1.0,
                    normalize=False)


def test_isolated_nodes_count_in_the_degree_statistic_and_edgeless_samples_are_scored():
    """Degree histograms start at degree 0. A 3-path plus an isolated node: (1, 2, 1) →
    (1/4, 1/2, 1/4) against the 3-path's (0, 2/3, 1/3): total variation ½(1/4 + 1/6 +
    1/12) = 1/4, GRAN's σ = 1, k = e^{−1/32}, MMD² = 2 − 2e^{−1/32}. A generated graph
    with nodes and no edges is a sample (only graphs with no nodes are dropped): three
    isolated nodes (1, 0, 0) against the 3-path: total variation ½(1 + 2/3 + 1/3) = 1,
    MMD² = 2 − 2e^{−1/2}, and no empty sample counted."""
    g = nx.path_graph(3)
    g.add_node(3)
    assert degree_histogram(g).tolist() == [1.0, 2.0, 1.0]
    got = graph_mmd([nx.path_graph(3)], [g], "gran", ["degree"])
    assert got["degree"] == pytest.approx(2 - 2 * math.exp(-1 / 32), abs=1e-12)
    out = graph_mmd([nx.path_graph(3)], [nx.empty_graph(3)], "gran", ["degree"])
    assert out["empty_generated"] == 0.0
    assert out["degree"] == pytest.approx(2 - 2 * math.exp(-0.5), abs=1e-12)


def test_pool_terms_take_the_pool_as_generated_graphs_under_gdss():
    """Under gdss a pool graph is a generated graph, so its isolated nodes go first.
    ``kernel_min_eigenvalues``: an edge plus an isolated node becomes the edge itself, so
    every kernel matrix of [that, an edge] is [[1, 1], [1, 1]], smallest eigenvalue 0
    (kept, the degree histograms (1, 2) and (0, 2) would give 1 − e^{−1/18}).
    ``others`` leaves each graph's own copy out, which matters here alone: the reference
    [a, b], a an edge plus an isolated node and b a 3-path, is also the pool [a' (the
    edge), b]. Normalised degree histograms a (1/3, 2/3), a' (0, 1), b (0, 2/3, 1/3); the
    EMDs from the cumulative sums are d(b, a') = 1/3 and d(a, b) = 2/3, so others =
    [k(a', b), k(b, a)] = [e^{−1/18}, e^{−2/9}] (σ = 1); with the own copies each would
    gain k(a, a') = e^{−1/18} or k(b, b) = 1. A pool graph with no nodes is refused under
    gran (its all-zero histogram was scored as a sample)."""
    with_isolated = nx.path_graph(2)
    with_isolated.add_node(2)
    got = kernel_min_eigenvalues([with_isolated, nx.path_graph(2)], "gdss")
    assert set(got) == {"degree", "clustering", "orbit", "spectral"}
    for name, value in got.items():
        assert value == pytest.approx(0.0, abs=1e-12), name
    graphs = [with_isolated, nx.path_graph(3)]
    pm = PoolMMD(graphs, graphs, "gdss", 2)
    assert pm.self_reference
    assert pm.others["degree"] == pytest.approx([math.exp(-1 / 18), math.exp(-2 / 9)],
                                                abs=1e-12)
    with pytest.raises(ValueError, match="a pool graph is empty"):
        expected_mmd([nx.path_graph(3)], [nx.path_graph(3), nx.empty_graph(0)], "gran", 2)
