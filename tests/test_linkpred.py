import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from graphvae.adjacency import Adjacency
from graphvae.datasets import load_dataset, make_sbm_graph
from graphvae.evaluation.metrics import average_precision, roc_auc
from graphvae.graph import edge_keys
from graphvae.tasks.link_prediction import (
    PRESETS,
    LinkPredConfig,
    prepare_features,
    run_link_prediction,
    split_edges,
    top_new_links,
)

DATA = Path(os.environ.get("GRAPHVAE_DATA",
                           Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=50).astype(float)   # many ties
    labels = rng.integers(0, 2, size=50)
    labels[:2] = [0, 1]
    s, y = torch.tensor(scores), torch.tensor(labels)
    assert roc_auc(s, y) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(s, y) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12)


def test_metrics_by_hand_and_bad_input():
    # positives 0.9, 0.4; negatives 0.5, 0.1: 3 of 4 pairs ordered right
    s, y = torch.tensor([0.9, 0.4, 0.5, 0.1]), torch.tensor([1, 1, 0, 0])
    assert roc_auc(s, y) == 0.75
    # ranks: 0.9 (P=1, R=.5), 0.5, 0.4 (P=2/3, R=1): AP = .5*1 + .5*2/3
    assert average_precision(s, y) == pytest.approx(0.5 + 1 / 3)
    with pytest.raises(ValueError):
        roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([1, 1]))


def test_split_sizes_and_no_leakage():
    data = make_sbm_graph(num_nodes=200, seed=1)
    n = data.num_nodes
    m = data.edge_index.size(1) // 2
    sp = split_edges(data.edge_index, n, seed=3)
    assert sp.test_pos.size(1) == m // 10 == sp.test_neg.size(1)
    assert sp.val_pos.size(1) == m // 20 == sp.val_neg.size(1)
    train = sp.train_edge_index
    assert train.size(1) == 2 * (m - m // 10 - m // 20)
    keys = lambda e: set(edge_keys(torch.stack([e.min(0).values, e.max(0).values]), n).tolist())  # noqa: E731
    tr, va, te = keys(train), keys(sp.val_pos), keys(sp.test_pos)
    vn, tn = keys(sp.val_neg), keys(sp.test_neg)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert tr | va | te == keys(data.edge_index)
    assert not ((vn | tn) & keys(data.edge_index))
    assert not (vn & tn) and len(vn) == sp.val_neg.size(1) and len(tn) == sp.test_neg.size(1)
    for pairs in (sp.val_pos, sp.val_neg, sp.test_pos, sp.test_neg):
        assert (pairs[0] < pairs[1]).all()
    # train graph stored in both directions
    assert keys(train) == keys(train.flip(0))
    again = split_edges(data.edge_index, n, seed=3)
    assert torch.equal(again.test_neg, sp.test_neg)
    assert not torch.equal(split_edges(data.edge_index, n, seed=4).test_pos, sp.test_pos)


def test_split_shares_are_the_fraction_as_written():
    """35 % of 180 edges is 63 and 30 % of them 54, by hand; in floats 0.35 · 180 is
    62.999… and its floor was 62. A path of 181 nodes has 180 edges."""
    n = 181
    path = torch.tensor([list(range(n - 1)), list(range(1, n))])
    sp = split_edges(path, n, val_fraction=0.3, test_fraction=0.35, seed=0)
    assert (sp.test_pos.size(1), sp.val_pos.size(1)) == (63, 54)
    assert sp.train_edge_index.size(1) == 2 * (180 - 63 - 54)
    sp = split_edges(path, n, val_fraction=0.05, test_fraction=0.1, seed=0)
    assert (sp.test_pos.size(1), sp.val_pos.size(1)) == (18, 9)
    # a third of 300 edges is 100, and float32's 0.35 of 20 edges is 7 (a share read as
    # the decimal its repr shows gave 99 and 6: 0.35f is 0.3499999940…)
    import numpy as np

    def ring(m):
        return torch.tensor([list(range(m)), [(i + 1) % m for i in range(m)]])
    assert split_edges(ring(300), 300, 0.05, 1 / 3).test_pos.size(1) == 100
    assert split_edges(ring(20), 20, 0.05, np.float32(0.35)).test_pos.size(1) == 7


def test_an_edge_list_given_twice_or_one_way_is_split_as_the_graph_it_is():
    """The Python API takes a user's edge list as given: listed twice, every held-out edge
    stayed in the training graph through its copy (test AUC 0.62 → 0.90 in the review's
    run); listed one way, the split found no edges or lost some. Each form now splits
    exactly as the simple symmetric list does."""
    data = make_sbm_graph(num_nodes=200, seed=1)
    n, ei = data.num_nodes, data.edge_index
    ref = split_edges(ei, n, seed=3)
    up = ei[:, ei[0] < ei[1]]
    mixed = torch.where(torch.arange(up.size(1)) % 2 == 0, up, up.flip(0))
    for variant in (torch.cat([ei, ei], 1), up.flip(0), mixed,
                    torch.cat([ei, torch.arange(5).repeat(2, 1)], 1)):       # + self-loops
        sp = split_edges(variant, n, seed=3)
        for name in ("train_edge_index", "val_pos", "val_neg", "test_pos", "test_neg"):
            assert torch.equal(getattr(sp, name), getattr(ref, name)), name


def test_the_split_reads_the_same_undirected_edges_as_the_loaders():
    """split_edges' own canonical form equals the loaders' (to_simple_undirected, then the
    columns i < j), columns and order, on random lists with repeats, both directions and
    self-loops."""
    from graphvae.datasets.link_split import _undirected
    from graphvae.graph import to_simple_undirected, upper_triangle
    g = torch.Generator().manual_seed(0)
    for n in (2, 7, 50):
        ei = torch.randint(0, n, (2, 3 * n), generator=g)
        torch.testing.assert_close(_undirected(ei, n),
                                   upper_triangle(to_simple_undirected(ei, n)), rtol=0, atol=0)


def test_joint_feature_likelihood_follows_the_prepared_features():
    """Binary raw features get a Bernoulli likelihood; standardised ones (no longer 0/1)
    a Gaussian (they got a Bernoulli before, whose 'log-probability' of a target of 52 is
    far above 0); features from node ids are refused for the joint model."""
    data = make_sbm_graph(num_nodes=60, seed=1)
    g = torch.Generator().manual_seed(0)
    data.x = (torch.rand(60, 5, generator=g) < 0.3).float()
    kinds = {}
    for mode in ("raw", "standardize"):
        cfg = PRESETS["joint"].replace(epochs=1, features=mode)
        res = run_link_prediction(data, cfg, seed=0, progress=False)
        kinds[mode] = res.model.init_kwargs()["feature_likelihood"]
    assert kinds == {"raw": "bernoulli", "standardize": "gaussian"}
    # under 10 % non-zero the prepared features are sparse CSR (as on Cora and CiteSeer):
    # the same choice, made on the stored values (the check crashed on CSR before)
    data.x = (torch.rand(60, 40, generator=g) < 0.05).float()
    assert prepare_features(data, "raw").layout == torch.sparse_csr
    for mode, kind in (("raw", "bernoulli"), ("normalize", "gaussian")):
        res = run_link_prediction(data, PRESETS["joint"].replace(epochs=1, features=mode),
                                  seed=0, progress=False)
        assert res.model.init_kwargs()["feature_likelihood"] == kind, mode
    for mode in ("identity", "propagated"):
        with pytest.raises(ValueError, match="--model joint reconstructs the node features"):
            run_link_prediction(data, PRESETS["joint"].replace(epochs=1, features=mode), seed=0,
                                progress=False)


def test_ranking_metrics_refuse_nan_scores():
    """A NaN ranked as the highest score (AUC 0.75 here); sklearn refuses it too."""
    scores, labels = torch.tensor([math.nan, 0.5, 0.2, 0.1]), torch.tensor([1, 0, 1, 0])
    for metric in (roc_auc, average_precision):
        with pytest.raises(ValueError, match="NaN among them"):
            metric(scores, labels)
    assert roc_auc(torch.tensor([math.inf, 0.5, 0.2, -math.inf]), labels) == 0.75


def test_ranking_metrics_refuse_labels_other_than_0_and_1():
    """``labels.bool()`` read any non-zero label as positive: labels 0.3 / 0 / 1 / 0 gave AUC
    1.0, and ±1 labels all counted as positives ('no negative'). Booleans and 0/1 of any
    dtype still work: AUC of these scores with the second and fourth negative is 1."""
    scores = torch.tensor([0.9, 0.1, 0.8, 0.2])
    for bad in (torch.tensor([0.3, 0.0, 1.0, 0.0]), torch.tensor([1, -1, 1, -1]),
                torch.tensor([2, 0, 1, 0])):
        for metric in (roc_auc, average_precision):
            with pytest.raises(ValueError, match="need labels 0 \\(negative\\) and 1"):
                metric(scores, bad)
    for good in (torch.tensor([True, False, True, False]), torch.tensor([1.0, 0.0, 1.0, 0.0]),
                 torch.tensor([1, 0, 1, 0], dtype=torch.uint8)):
        assert roc_auc(scores, good) == 1.0 and average_precision(scores, good) == 1.0


def test_run_link_prediction_checks_its_arguments_first():
    """Wrong arguments from Python are one line naming them, before any work (they failed
    inside numpy's seeding, torch's device parser or as an AttributeError)."""
    data, cfg = make_sbm_graph(num_nodes=40, seed=0), PRESETS["vgae"].replace(epochs=1)
    for kwargs, error, problem in (
            ({"seed": -1}, ValueError, "seed must be an integer from 0 to 4294967295, got -1"),
            ({"seed": 1.0}, TypeError, "seed must be an integer, got 1.0"),
            ({"device": "gpu"}, ValueError, "unknown device 'gpu'"),
            ({"data": None}, TypeError, "data must be a torch_geometric Data, got NoneType"),
            ({"config": cfg.to_dict()}, TypeError, "config must be a LinkPredConfig")):
        args = {"data": data, "config": cfg, **kwargs}
        with pytest.raises(error, match=problem):
            run_link_prediction(args.pop("data"), args.pop("config"), progress=False, **args)
    with pytest.raises(TypeError, match="name must be a data set's name, one of synthetic"):
        load_dataset(5)


def test_encoder_sees_only_training_edges():
    data = make_sbm_graph(num_nodes=120, seed=0)
    res = run_link_prediction(data, PRESETS["vgae"].replace(epochs=3), seed=0, progress=False)
    model, x = res.model, res.x
    with torch.no_grad():
        z_train = model.encode(x, Adjacency(res.split.train_edge_index, 120)).mean
        z_full = model.encode(x, Adjacency(data.edge_index, 120)).mean
    assert torch.allclose(res.z, z_train)
    assert not torch.allclose(res.z, z_full)


def test_same_seed_same_result_whatever_ran_before():
    data = make_sbm_graph(num_nodes=80, seed=1)
    cfg = PRESETS["vgae"].replace(epochs=5)
    first = run_link_prediction(data, cfg, seed=2, progress=False)
    torch.rand(5)  # move the global random state on
    second = run_link_prediction(data, cfg, seed=2, progress=False)
    timing = ("seconds", "median_epoch_ms")
    assert {k: v for k, v in first.metrics.items() if k not in timing} == {
        k: v for k, v in second.metrics.items() if k not in timing}
    assert torch.equal(first.z, second.z)


def test_top_new_links_matches_brute_force():
    torch.manual_seed(0)
    data = make_sbm_graph(num_nodes=40, p_in=0.3, p_out=0.05, seed=2)
    res = run_link_prediction(data, PRESETS["gae"].replace(epochs=2), seed=0, progress=False)
    pairs, probs = top_new_links(res.model, res.z, data.edge_index, k=7, block=6)
    z = res.z
    existing = set(map(tuple, data.edge_index.t().tolist()))
    cands = sorted(((float(z[i] @ z[j]), i, j) for i in range(40) for j in range(i + 1, 40)
                    if (i, j) not in existing), reverse=True)[:7]
    assert [tuple(p) for p in pairs.t().tolist()] == [(i, j) for _, i, j in cands]
    assert torch.allclose(probs, torch.sigmoid(torch.tensor([s for s, _, _ in cands])), atol=1e-5)


def _cosine_affinity(dec):
    t = math.exp(dec.log_temperature.item())
    return lambda cos: t * cos


def _vmf_affinity(dec):
    t, kappa = math.exp(dec.log_temperature.item()), math.exp(dec.log_kappa.item())
    return lambda cos: t * math.expm1(kappa * (cos - 1)) / kappa


@pytest.mark.parametrize("decoder, affinity", [("cosine-bias", _cosine_affinity),
                                               ("vmf-bias", _vmf_affinity)])
def test_top_new_links_with_node_terms_matches_brute_force(decoder, affinity):
    # logit = affinity(cos(u_i, u_j)) + β_i + β_j + c, every non-edge scored by hand
    torch.manual_seed(0)
    data = make_sbm_graph(num_nodes=40, p_in=0.3, p_out=0.05, seed=2)
    cfg = PRESETS["vgae"].replace(epochs=3, decoder=decoder)
    res = run_link_prediction(data, cfg, seed=0, progress=False)
    pairs, probs = top_new_links(res.model, res.z, data.edge_index, k=7, block=6)
    z, dec = res.z, res.model.edge_decoder
    u = z[:, :-1] / z[:, :-1].norm(dim=1, keepdim=True)
    f, c = affinity(dec), dec.offset.item()
    existing = set(map(tuple, data.edge_index.t().tolist()))
    cands = sorted(((f(float(u[i] @ u[j])) + float(z[i, -1] + z[j, -1]) + c, i, j)
                    for i in range(40) for j in range(i + 1, 40) if (i, j) not in existing),
                   reverse=True)[:7]
    assert [tuple(p) for p in pairs.t().tolist()] == [(i, j) for _, i, j in cands]
    assert torch.allclose(probs, torch.sigmoid(torch.tensor([s for s, _, _ in cands])), atol=1e-5)


def test_config_round_trip_and_unknown_keys():
    cfg = PRESETS["best"]
    assert LinkPredConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config key"):
        LinkPredConfig.from_dict({"modle": "gae"})
    with pytest.raises(ValueError, match="--feature-mode must be one of"):
        cfg.replace(features="scaled")


def test_split_rejects_tiny_graphs(path3):
    with pytest.raises(ValueError, match="too few"):
        split_edges(path3, 3)


@pytest.mark.skipif(not (DATA / "Planetoid" / "Cora" / "raw").is_dir(), reason="no Cora")
def test_vgae_learns_cora_quickly():
    data = load_dataset("cora", str(DATA))
    res = run_link_prediction(data, PRESETS["vgae"].replace(epochs=40), seed=0, progress=False)
    assert res.metrics["test_auc"] > 0.85 and res.metrics["test_ap"] > 0.85


def _dense_gcn(edge_index, n):
    """``D^-1/2 (A + I) D^-1/2`` as a dense matrix, from its definition."""
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[0], edge_index[1]] = 1.0
    a += torch.eye(n, dtype=torch.float64)
    d = a.sum(1)
    return a / torch.sqrt(d[:, None] * d[None, :])


@pytest.mark.parametrize("hops", [0, 1, 3])
def test_propagated_features_against_dense_powers(hops):
    from graphvae.tasks.link_prediction import propagated_features
    # a path 0-1-2-3 and a triangle 4-5-6, both directions, and an isolated node 7
    und = [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6), (4, 6)]
    ei = torch.tensor(und + [(j, i) for i, j in und]).t()
    n, dim, seed = 8, 5, 3
    x = propagated_features(Adjacency(ei, n), dim, hops, seed)
    r = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)).double()
    y = torch.linalg.matrix_power(_dense_gcn(ei, n), hops) @ r
    y = y / y.norm(dim=1, keepdim=True)
    assert x.shape == (n, dim + 1)
    torch.testing.assert_close(x[:, :dim].double(), y, rtol=1e-5, atol=1e-6)
    # degrees by hand: path 1, 2, 2, 1; triangle 2, 2, 2; isolated 0
    deg = torch.tensor([1, 2, 2, 1, 2, 2, 2, 0], dtype=torch.float64)
    torch.testing.assert_close(x[:, dim].double(), torch.log1p(deg))
    # the isolated node only ever sees itself: its row is its own noise, unit length
    torch.testing.assert_close(x[7, :dim].double(), r[7] / r[7].norm(), rtol=1e-5, atol=1e-6)


def test_propagated_features_come_from_the_training_edges_only():
    data = make_sbm_graph(num_nodes=120, seed=0)
    cfg = PRESETS["vgae"].replace(epochs=2, features="propagated", propagated_dim=8,
                                  propagated_hops=2)
    res = run_link_prediction(data, cfg, seed=4, progress=False)
    from graphvae.tasks.link_prediction import propagated_features
    train = propagated_features(Adjacency(res.split.train_edge_index, 120), 8, 2, 4)
    full = propagated_features(Adjacency(data.edge_index, 120), 8, 2, 4)
    assert torch.equal(res.x, train)
    assert not torch.allclose(res.x, full)       # the held-out edges would change them
    assert res.x.shape == (120, 9)                # 8 diffused columns and the log-degree


def test_mrr_compares_each_test_edge_with_non_edges_of_its_head_only():
    """A 60-node star joined to a ring: the hub's non-neighbours are few or none, where
    100 random redraws left edges and (i, i) among the comparison pairs (500 of 1,100 in
    a review's run). Every pair scored for the MRR must now be a non-edge of its head.
    A test edge whose head is the hub, with no non-neighbour, was left out (every one of a
    star numbered from its hub: the MRR was undefined, and defined when numbered from a
    leaf); it is now ranked from its other end."""
    from graphvae.datasets.link_split import split_edges
    from graphvae.tasks.link_prediction import MRR_NEGATIVES, ranking_metrics
    n = 60
    edges = [(0, i) for i in range(1, n)] + [(i, i % (n - 1) + 1) for i in range(1, n)]
    ei = torch.tensor(edges).t()
    split = split_edges(torch.cat([ei, ei.flip(0)], 1), n, 0.05, 0.3, seed=0)
    calls = []

    def score(pairs):
        calls.append(pairs.clone())
        return torch.rand(pairs.size(1), generator=torch.Generator().manual_seed(len(calls)))

    out = ranking_metrics(score, split, seed=0)
    everything = {(min(a, b), max(a, b)) for a, b in edges}
    tested = split.test_pos
    hub_edges = int((tested == 0).any(0).sum())
    negatives, positives = calls[2], calls[3]
    assert negatives.size(1) == tested.size(1) * MRR_NEGATIVES            # none left out
    heads = negatives[0].view(-1, MRR_NEGATIVES)
    assert (heads == heads[:, :1]).all() and torch.equal(heads[:, 0], positives[0])
    assert sorted(map(sorted, positives.t().tolist())) == sorted(map(sorted, tested.t().tolist()))
    assert 0 not in heads[:, 0].tolist()                  # the hub is never a head
    for h, t in negatives.t().tolist():
        assert h != t and (min(h, t), max(h, t)) not in everything
    # each head's tails are drawn among its non-neighbours, not one of them every time
    assert all(len(set(row)) > 1 for row in negatives[1].view(-1, MRR_NEGATIVES).tolist())
    assert hub_edges > 0 and 0 < out["test_mrr"] <= 1                 # the hub is the case


def test_pyg_encoder_layers_refuse_to_densify_a_large_sparse_input(monkeypatch):
    """sage / gin / gat densified a featureless graph's sparse identity at every forward
    (n × n: 40 GB at 10⁵ nodes). Past MAX_DENSIFIED entries (here lowered to 300² − 1 for
    a 300-node graph) that is one line naming the way out; at or under it, they train."""
    from torch_geometric.data import Data

    import graphvae.encoders.gnn as gnn

    g = torch.Generator().manual_seed(0)
    ei = torch.randint(300, (2, 900), generator=g)
    data = Data(edge_index=torch.cat([ei, ei.flip(0)], 1), num_nodes=300)
    monkeypatch.setattr(gnn, "MAX_DENSIFIED", 300 * 300 - 1)
    for encoder in ("sage", "gin", "gat"):
        with pytest.raises(ValueError, match=r"would be 300 × 300 floats .* use --encoder "
                                             r"gcn, gcn-bias, linear or gnae"):
            run_link_prediction(data, LinkPredConfig(model="gae", encoder=encoder, epochs=1),
                                seed=0, progress=False)
    monkeypatch.setattr(gnn, "MAX_DENSIFIED", 300 * 300)
    res = run_link_prediction(data, LinkPredConfig(model="gae", encoder="sage", epochs=1),
                              seed=0, progress=False)
    assert 0 <= res.metrics["test_auc"] <= 1


def test_hits_at_k_is_not_reported_as_perfect_with_fewer_test_non_edges_than_k():
    """OGB's rule gives Hits@K = 1.0 when there are fewer than K negatives; a 60-node graph
    of about 200 edges has 19 test non-edges, so every Hits@K read 1.0 whatever the model.
    It is NaN there (null in JSON), and a number where there are enough."""
    import math

    from torch_geometric.data import Data

    ei = torch.randint(60, (2, 200), generator=torch.Generator().manual_seed(0))
    data = Data(edge_index=torch.cat([ei, ei.flip(0)], 1), num_nodes=60)
    m = run_link_prediction(data, LinkPredConfig(epochs=1), seed=0, progress=False).metrics
    assert all(math.isnan(m[f"test_hits@{k}"]) for k in (20, 50, 100)), m
    assert 0 <= m["test_auc"] <= 1
    big = run_link_prediction(load_dataset("synthetic"), LinkPredConfig(epochs=1), seed=0,
                              progress=False).metrics
    assert all(0 <= big[f"test_hits@{k}"] <= 1 for k in (20, 50, 100))


def test_a_gae_reports_its_reconstruction_not_a_bound():
    """A point code (GAE) bounds nothing: metrics.json names its training value
    ``train_recon_loglik_nats``, and it is log p(A_train | Z = μ) over all pairs of the
    training graph (self-loops as edges, the preset's default), worked out here from the
    kept latent means; a VGAE keeps ``train_bound_nats``."""
    import torch.nn.functional as F

    from graphvae.graph import edge_index_to_dense

    data = make_sbm_graph(num_nodes=30, p_in=0.3, p_out=0.05, seed=2)
    cfg = PRESETS["gae"].replace(epochs=3, estimator="dense")
    res = run_link_prediction(data, cfg, seed=0, progress=False)
    assert "train_bound_nats" not in res.metrics and "train_bound_history" not in res.metrics
    assert len(res.metrics["train_recon_loglik_history"]) == 3
    a = edge_index_to_dense(res.split.train_edge_index, 30)
    target = ((a + a.t()) > 0).double() + torch.eye(30, dtype=torch.float64)
    logits = (res.z @ res.z.t()).double()
    by_hand = (target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits)).sum()
    assert res.metrics["train_recon_loglik_nats"] == pytest.approx(by_hand.item(), rel=1e-5)
    vgae = run_link_prediction(data, PRESETS["vgae"].replace(epochs=1), seed=0,
                               progress=False)
    assert "train_bound_nats" in vgae.metrics and "train_recon_loglik_nats" not in vgae.metrics


def test_an_unknown_device_is_named_before_the_graph_checks():
    """Splitting run_link_prediction's checks into a helper moved the device after the
    graph checks: a bad device was reported as the joint model's refusal. The device is
    checked right after the seed again."""
    from torch_geometric.data import Data
    data = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
    with pytest.raises(ValueError, match="bogus"):
        run_link_prediction(data, LinkPredConfig(model="joint"), seed=0, device="bogus",
                            progress=False)


def test_propagate_input_recomputes_for_another_tensor_of_the_same_version():
    """The kept Â x is keyed by the tensor's identity and version: every new tensor starts
    at version 0, so a key on the version alone would hand a second input the first
    one's product. Â of one edge is [[½, ½], [½, ½]]: ones give ones, zeros give zeros."""
    adj = Adjacency(torch.tensor([[0, 1], [1, 0]]), 2)
    ones = torch.ones(2, 1)
    assert torch.allclose(adj.propagate_input(ones), torch.ones(2, 1))
    assert torch.equal(adj.propagate_input(torch.zeros(2, 1)), torch.zeros(2, 1))
    assert torch.allclose(adj.propagate_input(ones), torch.ones(2, 1))


def test_gcn_operator_drops_given_self_loops_and_passes_messages_along_edges():
    """D^-1/2 (A + I) D^-1/2 by hand. A loop already in edge_index is not counted twice:
    edges 0-1 both ways and a loop at 0 give degrees 2, 2 and every entry ½ (with the
    loop counted, node 0's degree would be 3). A directed edge 0 → 1 sends node 0's
    value to node 1: degrees (in, with the loop) 1 and 2, so Â = [[1, 0], [1/√2, ½]],
    and Â (1, 10) = (1, 1/√2 + 5); the transpose would send it the other way."""
    looped = Adjacency(torch.tensor([[0, 0, 1], [0, 1, 0]]), 2)
    assert torch.allclose(looped.gcn_operator().to_dense(), torch.full((2, 2), 0.5))
    directed = Adjacency(torch.tensor([[0], [1]]), 2)
    r = 2 ** -0.5
    assert torch.allclose(directed.gcn_operator().to_dense(), torch.tensor([[1.0, 0.0],
                                                                           [r, 0.5]]))
    h = torch.tensor([[1.0], [10.0]], requires_grad=True)
    out = directed.propagate(h)
    assert torch.allclose(out, torch.tensor([[1.0], [r + 5.0]]))
    out.sum().backward()                                  # Âᵀ 1: column sums of Â
    assert torch.allclose(h.grad, torch.tensor([[1.0 + r], [0.5]]))


def test_feature_modes_by_hand():
    """normalize: each row over the sum of its entries' magnitudes, so (1, −1) is (½, −½)
    (over its plain sum, 0, it stayed (1, −1)); a row whose sum overflows float32 is
    scaled by its largest magnitude first, keeping its sign: (−3e38, −3e38) → (−½, −½).
    standardize works in float64: 1e8 and 1e8 + 2 (equal in float32, whose spacing there
    is 8) are −1 and 1. propagated diffuses over the data's own graph by default."""
    from torch_geometric.data import Data

    from graphvae.tasks.features import prepare_features, propagated_features

    def mode(x, name):
        return prepare_features(Data(x=x, edge_index=torch.zeros(2, 0, dtype=torch.long),
                                     num_nodes=x.size(0)), name)

    assert torch.equal(mode(torch.tensor([[1.0, -1.0], [2.0, 0.0]]), "normalize"),
                       torch.tensor([[0.5, -0.5], [1.0, 0.0]]))
    assert torch.equal(mode(torch.tensor([[-3e38, -3e38]]), "normalize"),
                       torch.tensor([[-0.5, -0.5]]))
    assert torch.equal(mode(torch.tensor([[1e8], [1e8 + 2]], dtype=torch.float64),
                            "standardize"), torch.tensor([[-1.0], [1.0]]))
    e = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    data = Data(edge_index=e, num_nodes=3)
    got = prepare_features(data, "propagated")
    assert torch.equal(got, propagated_features(Adjacency(e, 3), 64, 6, 0))
    assert not torch.equal(got, propagated_features(Adjacency(e[:, :0], 3), 64, 6, 0))


def test_raw_features_are_refused_from_a_magnitude_of_100_either_sign():
    from torch_geometric.data import Data

    from graphvae.tasks.features import check_feature_scale

    check_feature_scale(Data(x=torch.tensor([[99.9, -99.9]])), "raw")
    for value in (100.0, -100.0, -1000.0, -1e6):
        with pytest.raises(ValueError, match="too large to train on raw"):
            check_feature_scale(Data(x=torch.tensor([[0.5, value]])), "raw")
    check_feature_scale(Data(x=torch.tensor([[-1e6]])), "normalize")     # its fix


def test_the_run_hands_its_schedule_to_the_loop_and_saves_its_input_width(tmp_path):
    """What run_link_prediction hands to the training loop, read off its history: with
    ``eval_every`` 3 over 6 epochs, the evaluated epochs are 3 and 6; ``selection="last"``
    evaluates none and keeps the last epoch; ``patience`` 0 with evaluation every epoch
    stops at the first evaluation after the best, one epoch after it. The MRR's negatives
    are drawn with the run's seed. The checkpoint of an identity-feature run records its
    input width, the node count (X = I), and loads."""
    from graphvae.models.checkpoints import load_model
    data = make_sbm_graph(num_nodes=60, seed=1)
    base = PRESETS["vgae"].replace(epochs=6, hidden=(8,), latent=4)
    res = run_link_prediction(data, base.replace(eval_every=3), 0, progress=False)
    evaluated = [i + 1 for i, row in enumerate(res.fit.history) if "val_auc" in row]
    assert evaluated == [3, 6] and res.fit.epochs == 6
    import statistics  # (six epochs: the mean of the middle two, not of all)
    assert res.metrics["median_epoch_ms"] == pytest.approx(
        1e3 * statistics.median(res.fit.epoch_seconds), rel=1e-12)
    res = run_link_prediction(data, base.replace(selection="last"), 0, progress=False)
    assert res.fit.column("val_auc") == [] and res.metrics["best_epoch"] == 6
    res = run_link_prediction(data, base.replace(epochs=200, patience=0), 0, progress=False)
    assert res.fit.epochs == res.metrics["best_epoch"] + 1 < 200
    # the MRR's negatives are drawn with the run's seed (its value is recomputed here)
    from graphvae.tasks.link_prediction import ranking_metrics
    res = run_link_prediction(data, base.replace(epochs=2), 3, progress=False)
    ranks = {s: ranking_metrics(lambda p: res.model.score(res.z, p), res.split, s)["test_mrr"]
             for s in (0, 3)}
    assert ranks[0] != ranks[3] and res.metrics["test_mrr"] == ranks[3]
    ckpt = tmp_path / "model.pt"
    run_link_prediction(data, base.replace(epochs=1, features="identity"), 0, progress=False,
                        checkpoint=ckpt)
    model, ck = load_model(ckpt)
    assert ck["in_channels"] == 60


def test_the_loader_and_feature_likelihood_follow_the_config(monkeypatch):
    """The full batch up to AUTO_FULL_BATCH positive pairs, that count included, then
    steps of AUTO_BATCH pairs; steps of --batch-size pairs, --steps-per-epoch of them;
    data parallelism without a batch size refused; the most pairs a batch may take, n
    more with self-loops (the diagonal). The feature likelihood is chosen on the
    graph's own features, except for the joint model, which reconstructs the prepared
    ones: X = I is 0/1, but standard normal features are Gaussian."""
    from graphvae.tasks import link_prediction as lp
    from graphvae.training import FullBatch, PairBatches
    data = make_sbm_graph(num_nodes=60, seed=1)
    adj = Adjacency(data.edge_index, 60)
    cfg = PRESETS["vgae"].replace(hidden=(8,), latent=4)
    positives = adj.positive_pairs(cfg.self_loops)[0].size(1)    # (the diagonal in vgae's)
    model = lp.build_linkpred_model(cfg, data.x.size(1))
    monkeypatch.setattr(lp, "AUTO_FULL_BATCH", positives)
    assert isinstance(lp._loader(model, data.x, adj, cfg, 0, 1), FullBatch)
    monkeypatch.setattr(lp, "AUTO_FULL_BATCH", positives - 1)
    monkeypatch.setattr(lp, "AUTO_BATCH", 32)
    loader = lp._loader(model, data.x, adj, cfg, 0, 1)
    assert isinstance(loader, PairBatches) and loader.batch_size == 32
    loader = lp._loader(model, data.x, adj, cfg.replace(batch_size=16, steps_per_epoch=3),
                        0, 1)
    assert isinstance(loader, PairBatches) and loader.steps == 3
    with pytest.raises(ValueError, match="^data-parallel training needs --batch-size"):
        lp._loader(model, data.x, adj, cfg, 0, 2)
    # the largest --batch-size: the training edges both ways, and the diagonal with it
    with_loops = lp.training_positives(data, cfg.replace(self_loops=True))
    assert with_loops == lp.training_positives(data, cfg.replace(self_loops=False)) + 60
    gaussian = data.clone()
    gaussian.x = torch.randn(60, 5, generator=torch.Generator().manual_seed(0))
    eye = torch.eye(60)
    assert lp._feature_likelihood(cfg.replace(features="identity"), gaussian, eye) == "gaussian"
    assert lp._feature_likelihood(cfg.replace(model="joint"), gaussian, eye) == "bernoulli"


def test_a_state_is_named_by_its_preset_only_where_this_run_is_another():
    """preset_of: the preset all of whose training settings a run has (a setting missing
    is not the preset's None); _state_origin names it only when this run is not that
    preset too."""
    from graphvae.tasks.link_prediction import _state_origin, preset_of
    vgae = PRESETS["vgae"].training_settings()
    best = PRESETS["best"].training_settings()
    assert preset_of(vgae) == "vgae" and preset_of(best) == "best"
    nones = [k for k, v in vgae.items() if v is None]
    assert nones                                  # (batch size, patience: unset in vgae)
    assert preset_of({k: v for k, v in vgae.items() if k != nones[0]}) is None
    assert _state_origin(best, vgae) == "its settings are those of --model best"
    assert _state_origin(best, best) is None and _state_origin(vgae, best) is not None


def test_the_api_checks_the_graph_its_features_and_the_dropout_it_is_given():
    """run_link_prediction checks its graph before any work, as the command line does: an
    edge to node 3 of a 3-node graph, a NaN feature, and raw features of magnitude 500 (at
    or beyond RAW_FEATURE_LIMIT, 100), are named in one line. The model is built with the
    config's dropout."""
    from torch_geometric.data import Data

    from graphvae.tasks.link_prediction import build_linkpred_model
    cfg = PRESETS["vgae"].replace(epochs=1)
    edges = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    with pytest.raises(ValueError, match=r"^edge_index refers to node 3 but the graph has "
                                         r"only 3 nodes \(valid indices are 0\.\.2\)$"):
        run_link_prediction(Data(edge_index=edges, num_nodes=3), cfg, progress=False)
    with pytest.raises(ValueError, match=r"^node features reach 500 in magnitude, too large "
                                         r"to train on raw"):
        run_link_prediction(Data(x=torch.full((4, 2), 500.0), edge_index=edges, num_nodes=4),
                            cfg, progress=False)
    nan = torch.ones(4, 2)
    nan[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"^node features contain 1 NaN or infinite value"):
        run_link_prediction(Data(x=nan, edge_index=edges, num_nodes=4), cfg, progress=False)
    assert build_linkpred_model(cfg.replace(dropout=0.5), 5).encoder.dropout == 0.5


def test_the_seed_draws_the_split_and_the_training_noise_and_selection_adds_auc_and_ap(
        monkeypatch):
    """A run of seed 3 splits the edges as split_edges does with seed 3 (not seed 0's
    split), trains with a generator seeded 3, and selects weights by validation AUC + AP."""
    from graphvae.tasks import link_prediction as lp
    seen = {}

    def spy(*args, **kwargs):
        seen["seed"] = kwargs["generator"].initial_seed()
        seen["evaluation"] = kwargs["evaluate"]()
        return real(*args, **kwargs)
    real = lp.fit
    monkeypatch.setattr(lp, "fit", spy)
    data = make_sbm_graph(num_nodes=60, seed=1)
    cfg = PRESETS["vgae"].replace(epochs=1, hidden=(8,), latent=4)
    res = run_link_prediction(data, cfg, 3, progress=False)
    assert seen["seed"] == 3
    ev = seen["evaluation"]
    assert ev["score"] == ev["val_auc"] + ev["val_ap"] and ev["val_ap"] > 0
    split = {s: split_edges(data.edge_index, 60, cfg.val_fraction, cfg.test_fraction, s)
             for s in (0, 3)}
    assert torch.equal(res.split.test_pos, split[3].test_pos)
    assert not torch.equal(split[0].test_pos, split[3].test_pos)


def test_the_reported_codes_are_the_eval_modes_without_dropout():
    """With dropout 0.5, the codes a run reports (and scores the test pairs with) are the
    encoder's in eval mode: the same again when recomputed, none of them dropped; and so
    is the bound estimated at the end."""
    from graphvae.training import FullBatch
    data = make_sbm_graph(num_nodes=60, seed=1)
    cfg = PRESETS["vgae"].replace(epochs=2, hidden=(8,), latent=4, dropout=0.5,
                                  selection="last")
    res = run_link_prediction(data, cfg, 0, progress=False)
    assert not res.model.training
    adj = Adjacency(res.split.train_edge_index, 60)              # the graph it trained on
    with torch.no_grad():
        again = res.model.encode(res.x, adj).mean
    assert torch.equal(res.z, again)
    # the bound of a model left in training mode is estimated in eval mode too: the same
    # generator gives the same value twice, with no dropout drawn from torch's own
    from graphvae.tasks.link_prediction import estimate_bound
    loader = FullBatch(res.model.batch(res.x, adj))
    values = []
    for _ in range(2):
        res.model.train()
        values.append(estimate_bound(res.model, loader, torch.Generator().manual_seed(0)))
    assert values[0] == values[1] and not res.model.training
