"""Small-graph generation: generators and splits, the equivariant one-shot VAE, sampling, the
``graphvae generate`` command and its errors."""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli, undirected

from graphvae.adjacency import Adjacency
from graphvae.containers import GraphBatch, GraphTensors, SampledGraph
from graphvae.datasets.graphsets import (
    community_small,
    grid_graphs,
    input_features,
    load_graph_set,
    lobster_graphs,
    lobster_size,
    split_graphs,
)
from graphvae.evaluation.graph_stats import mmd_table
from graphvae.models import EquivariantGraphVAE
from graphvae.tasks.generation import (
    GenerationConfig,
    build_generation_model,
    load_generation_data,
    mmd_over_draws,
    run_generation,
    train_generation_model,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- data --------------------------------------------------------------------------------------

def test_community_small_follows_the_recipe():
    graphs = community_small(num_graphs=40, seed=3)
    for g in graphs:
        n = g.number_of_nodes()
        assert n % 2 == 0 and 12 <= n <= 20
        c = n // 2
        for part, seed in ((range(c), 0), (range(c, n), 1)):
            sub = nx.convert_node_labels_to_integers(g.subgraph(part))
            assert set(sub.edges) == set(nx.gnp_random_graph(c, 0.7, seed=seed).edges)
        bridges = [(a, b) for a, b in g.edges if (a < c) != (b < c)]
        assert len(bridges) >= 1
    assert [g.number_of_nodes() for g in community_small(10, seed=3)] == \
        [g.number_of_nodes() for g in graphs[:10]]


def test_community_small_sizes_and_bridge_probability_by_hand():
    """A drawn size of 13 gives two communities of 13 // 2 = 6 nodes (12 in all); with
    ``p_inter`` 3 the bridge probability is 2 · 3 / 6 = 1, so all 36 pairs across are
    bridged."""
    for g in community_small(num_graphs=3, seed=0, sizes=(13,)):
        assert g.number_of_nodes() == 12
    for g in community_small(num_graphs=2, seed=0, sizes=(12,), p_inter=3.0):
        assert sum((a < 6) != (b < 6) for a, b in g.edges) == 36


def test_lobster_bounds_are_inclusive_and_probabilities_checked():
    """The draw of seed 1238 has 14 nodes (networkx's random_lobster(80, 0.7, 0.7)), so
    bounds of exactly 14 keep it; a probability above 1 is refused."""
    assert nx.random_lobster(80, 0.7, 0.7, seed=1238).number_of_nodes() == 14
    (g,) = lobster_graphs(num_graphs=1, seed=1238, min_nodes=14, max_nodes=14)
    assert g.number_of_nodes() == 14
    for p1, p2 in ((1.5, 0.7), (1.0, 0.7), (0.7, 1.0)):    # networkx loops for ever at 1
        with pytest.raises(ValueError, match="p1, p2 in \\[0, 1\\)"):
            lobster_graphs(num_graphs=1, p1=p1, p2=p2)


def test_a_graph_sets_fingerprint_and_size_cover_every_part():
    """The fingerprint that guards ``--resume`` tells apart two sets that differ only in a
    bond's type, or only in their name; ``largest`` counts the test graphs too (a 5-node
    test graph beside 3-node training graphs)."""
    from graphvae.datasets.graphsets import GraphSet

    def typed(bond):
        g = nx.path_graph(3)
        nx.set_node_attributes(g, 0, "atom")
        nx.set_edge_attributes(g, bond, "bond")
        return g

    def graph_set(name, bond, test):
        return GraphSet(name, [typed(0), typed(bond)], [typed(0)], [test], "atom", "bond", 4, 3)

    a = graph_set("qm9", 0, typed(0))
    assert a.fingerprint() == graph_set("qm9", 0, typed(0)).fingerprint()
    assert a.fingerprint() != graph_set("qm9", 1, typed(0)).fingerprint()
    assert a.fingerprint() != graph_set("other", 0, typed(0)).fingerprint()
    big = nx.path_graph(5)
    nx.set_node_attributes(big, 0, "atom")
    assert a.largest == 3 and graph_set("qm9", 0, big).largest == 5


def test_grid_and_lobster_generators():
    grids = grid_graphs()
    assert len(grids) == 100
    assert sorted({g.number_of_nodes() for g in grids})[0] == 100
    assert max(g.number_of_nodes() for g in grids) == 361
    g = grids[0]  # 10 × 10: 2·10·9 edges
    assert g.number_of_edges() == 180
    lobsters = lobster_graphs(num_graphs=10)
    for t in lobsters:
        assert 10 <= t.number_of_nodes() <= 100 and nx.is_tree(t)
        # a lobster becomes a path after removing leaves twice
        core = t.copy()
        for _ in range(2):
            core.remove_nodes_from([v for v in list(core) if core.degree(v) <= 1])
        assert core.number_of_nodes() == 0 or max(d for _, d in core.degree) <= 2


def test_lobster_generator_refuses_sizes_it_cannot_draw():
    """min_nodes > max_nodes looped for ever; a range the draws never hit now stops after
    LOBSTER_TRIES draws per graph. The first draws are those of seeds 1234, 1235, ..."""
    with pytest.raises(ValueError, match="min_nodes <= max_nodes"):
        lobster_graphs(num_graphs=1, min_nodes=50, max_nodes=20)
    with pytest.raises(ValueError, match=r"only [0-2] of 300 lobster draws had 5\.\.6 nodes"):
        lobster_graphs(num_graphs=3, mean_nodes=500, min_nodes=5, max_nodes=6)
    kept = [g for g in (nx.random_lobster(80, 0.7, 0.7, seed=s) for s in range(1234, 1334))
            if 10 <= g.number_of_nodes() <= 100][:3]
    assert [g.number_of_nodes() for g in lobster_graphs(3)] == \
        [g.number_of_nodes() for g in kept]


def test_a_lobsters_size_is_counted_from_the_draws_networkx_makes():
    """lobster_size counts the nodes of nx.random_lobster without building it: equal to
    networkx's graph for every seed tried, with a backbone of 0 (mean 0.4 draws lengths of
    0 and 1: int(0.8 u + 0.5)), with no legs (p1 = 0) and with legs of one node (p2 = 0)."""
    for recipe in ((80, 0.7, 0.7), (5, 0.5, 0.3), (0.4, 0.7, 0.7), (30, 0.0, 0.9),
                   (30, 0.9, 0.0)):
        sizes = [lobster_size(*recipe, seed=s) for s in range(300)]
        assert sizes == [nx.random_lobster(*recipe, seed=s).number_of_nodes()
                         for s in range(300)], recipe
        assert len(set(sizes)) > 1, recipe
    assert {lobster_size(0.4, 0.7, 0.7, seed=s) for s in range(300)} >= {0, 1}
    assert {lobster_size(30, 0.0, 0.9, seed=s) for s in range(50)} <= set(range(61))


def test_lobsters_are_networkxs_draws_counted_or_built(monkeypatch):
    """The kept lobsters are the draws of networkx kept by size, seed after seed (worked out
    here by building every draw), whether sizes are counted first or, when a count is
    wrong (one too many; 0, which keeps no draw but the first, always built), every draw
    is built."""
    import graphvae.datasets.graphsets as gs

    def built(num_graphs, seed, low, high):
        draws = (nx.random_lobster(80, 0.7, 0.7, seed=s) for s in itertools.count(seed))
        return list(itertools.islice((g for g in draws if low <= g.number_of_nodes() <= high),
                                     num_graphs))

    def same(ours, theirs):
        return len(ours) == len(theirs) and all(
            sorted(a.edges) == sorted(nx.convert_node_labels_to_integers(b).edges)
            and a.number_of_nodes() == b.number_of_nodes() for a, b in zip(ours, theirs))

    expected = built(12, 1234, 10, 100)
    assert len(expected) == 12 and same(lobster_graphs(12), expected)
    assert same(lobster_graphs(4, seed=9, min_nodes=40, max_nodes=60), built(4, 9, 40, 60))
    counted = gs.lobster_size
    for wrong in (lambda *a, **k: counted(*a, **k) + 1, lambda *a, **k: 0):
        monkeypatch.setattr(gs, "lobster_size", wrong)
        assert same(lobster_graphs(12), expected)


def test_split_keeps_one_graph_in_each_set_and_refuses_bad_fractions():
    """Fractions that would empty the training set (0.5 test, 0.9 of the rest valid, of 4
    graphs: 0 / 2 / 2) now keep one graph there, as the docstring promises."""
    graphs = [nx.path_graph(i + 2) for i in range(4)]
    sp = split_graphs(graphs, test_fraction=0.5, valid_fraction=0.9)
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (1, 1, 2)
    sp = split_graphs(graphs, test_fraction=0.99, valid_fraction=0.0)
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (1, 1, 2)
    # shares are rounded, not truncated: 13 graphs, test round(2.6) = 3, valid round(1.0) = 1
    sp = split_graphs([nx.path_graph(i + 2) for i in range(13)])
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (9, 1, 3)
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="test_fraction must lie in \\[0, 1\\)"):
            split_graphs(graphs, test_fraction=bad)


def test_split_is_seeded_disjoint_and_complete():
    graphs = community_small(50, seed=0)
    for i, g in enumerate(graphs):
        g.graph["id"] = i
    sp = split_graphs(graphs, seed=7)
    ids = [[g.graph["id"] for g in part] for part in (sp.train, sp.valid, sp.test)]
    assert sorted(sum(ids, [])) == list(range(50))
    assert (len(ids[0]), len(ids[1]), len(ids[2])) == (36, 4, 10)
    again = split_graphs(graphs, seed=7)
    assert [g.graph["id"] for g in again.test] == ids[2]
    with pytest.raises(ValueError, match="at least 3 graphs"):
        split_graphs(graphs[:2])


def test_unknown_set_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown graph data set 'cora'"):
        load_graph_set("cora", tmp_path)
    with pytest.raises(ValueError, match="has neither ego_small.g6 nor ego_small.pkl"):
        load_graph_set("ego-small", tmp_path)
    with pytest.raises(ValueError, match="ego-small has no generator"):
        load_graph_set("ego-small", tmp_path, generated=True)


# -- the equivariant one-shot VAE ------------------------------------------------------------------

def _model(types=False, seed=0, **kwargs):
    torch.manual_seed(seed)
    in_ch = 17 + (4 if types else 0)
    return EquivariantGraphVAE(in_ch, [0, 0, 1, 2, 3, 2], latent_channels=3,
                               hidden_channels=(8,), node_types=4 if types else 0,
                               edge_types=3 if types else 0, **kwargs).double()


def _typed_graph(n, seed):
    g = torch.Generator().manual_seed(seed)
    nxg = nx.gnp_random_graph(n, 0.5, seed=seed)
    for v in nxg:
        nxg.nodes[v]["atom"] = int(torch.randint(0, 4, (1,), generator=g))
    for a, b in nxg.edges:
        nxg.edges[a, b]["bond"] = int(torch.randint(0, 3, (1,), generator=g))
    return nxg


def _batch(graphs, types=False):
    ts = [GraphTensors.from_networkx(g, "atom" if types else None, "bond" if types else None)
          for g in graphs]
    feats = [input_features(t, 4 if types else 0).double() for t in ts]
    return GraphBatch.collate(ts, feats)


def test_size_distribution_and_sampling_support():
    m = _model()
    assert float(m.size_logprob.exp().sum()) == pytest.approx(1.0)
    assert m.size_logprob[0] == -math.inf and m.max_nodes == 5
    g = torch.Generator().manual_seed(0)
    sizes = [s.num_nodes for s in m.sample(300, generator=g)]
    assert set(sizes) <= {2, 3, 4, 5}
    # frequencies follow the counts 1:2:3:2 (binomial 4-sigma band)
    for n, c in zip((2, 3, 4, 5), (1, 2, 3, 2)):
        p = c / 8
        assert abs(sizes.count(n) / 300 - p) < 4 * math.sqrt(p * (1 - p) / 300)


def test_log_likelihood_matches_a_loop_over_pairs():
    m = _model(types=True)
    graphs = [_typed_graph(4, 1), _typed_graph(5, 2)]
    batch = _batch(graphs, types=True)
    z = torch.randn(2, batch.num_graphs, batch.k, 3, dtype=torch.float64)
    with torch.no_grad():
        got = m.log_likelihood(z, batch)
    with torch.no_grad():
        _check_loop(m, graphs, z, got)


def _check_loop(m, graphs, z, got):
    for s in range(2):
        for b, g in enumerate(graphs):
            n = g.number_of_nodes()
            zz = z[s, b, :n]
            logits, h = m.edge_logits(zz)
            bond = F.log_softmax(m.bond_logits(h), -1)
            total = 0.0
            for i in range(n):
                for j in range(i + 1, n):
                    p = torch.sigmoid(logits[i, j])
                    e = g.has_edge(i, j)
                    total += float(torch.log(p if e else 1 - p))
                    if e:
                        total += float(bond[i, j, g.edges[i, j]["bond"]])
            t = GraphTensors.from_networkx(g, "atom", "bond")
            from graphvae.adjacency import Adjacency
            lg, _ = m.node_decoder(zz, Adjacency(t.edge_index, n))
            lp = F.log_softmax(lg, -1)
            total += sum(float(lp[i, g.nodes[i]["atom"]]) for i in range(n))
            assert float(got[s, b]) == pytest.approx(total, abs=1e-9)


def test_bound_is_invariant_to_node_order(float64):
    m = _model(types=True)
    g = _typed_graph(5, 3)
    perm = [3, 0, 4, 1, 2]                     # new node i is old node perm[i]
    h = nx.relabel_nodes(g, {old: new for new, old in enumerate(perm)})
    eps = torch.randn(4, 1, 5, 3, dtype=torch.float64)
    a = m.bound(_batch([g], True), num_samples=4, eps=eps).value
    b = m.bound(_batch([h], True), num_samples=4, eps=eps[:, :, perm]).value
    torch.testing.assert_close(a, b, atol=1e-9, rtol=0)


def test_padding_adds_nothing():
    m = _model()
    g1, g2 = nx.cycle_graph(5), nx.path_graph(3)
    eps = torch.randn(2, 2, 5, 3, dtype=torch.float64)
    both = m.bound(_batch([g1, g2]), num_samples=2, eps=eps).value
    alone = m.bound(_batch([g2]), num_samples=2, eps=eps[:, 1:, :3]).value
    torch.testing.assert_close(both[1:], alone, atol=1e-9, rtol=0)


@pytest.mark.parametrize("kind", ["oneshot-vae", "graphvae"])
def test_sampling_is_seeded(kind):
    cfg = GenerationConfig(epochs=3, eval_every=1, model=kind)
    from graphvae.tasks.generation import build_generation_model, load_generation_data
    data = load_generation_data(cfg)
    model = build_generation_model(cfg, data)
    a = model.sample(5, torch.Generator().manual_seed(4))
    b = model.sample(5, torch.Generator().manual_seed(4))
    assert all(isinstance(x, SampledGraph) for x in a)
    assert [sorted(x.to_networkx().edges) for x in a] == [sorted(x.to_networkx().edges)
                                                          for x in b]
    for s in a:                                  # symmetric 0/1, no self-loops
        assert torch.equal(s.adj, s.adj.T) and not s.adj.diagonal().any()


# -- the run and the command line -----------------------------------------------------------------

def test_default_generate_runs_without_files(tmp_path):
    rc, out, err = run_cli(["generate", "--epochs", "4", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert json.loads(out)["mmd2"] == m["mmd2"]          # the whole JSON on stdout
    assert m["dataset"] == "community-small (generated)" and m["protocol"] == "graphrnn"
    # the summary on stderr: the MMD² row as metrics.json has it, to four digits
    gen = m["mmd2"]["generated"]
    assert err.splitlines()[0] == "community-small (generated), seq-vae, seed 0: 20 samples"
    assert err.splitlines()[1].startswith(
        f"  MMD² (graphrnn): {gen['degree']:.4g} / {gen['clustering']:.4g} / "
        f"{gen['orbit']:.4g} (degree / clustering / orbit), mean "
        f"{(gen['degree'] + gen['clustering'] + gen['orbit']) / 3:.4g}")
    env = m["environment"]          # what the numbers were computed with
    assert env["packages"]["torch"] == torch.__version__ and env["packages"]["networkx"] \
        == nx.__version__ and env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(m["mmd2"]["generated"]) >= {"degree", "clustering", "orbit"}
    assert all(v >= 0 for v in m["mmd2"]["train_vs_test"].values())
    assert (tmp_path / "samples.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "training.png").read_bytes()[:8] == PNG_MAGIC
    lines = (tmp_path / "samples.g6").read_text().split()
    assert len(lines) == m["num_samples"] == m["split"]["test"]
    graphs = [nx.from_graph6_bytes(s.encode()) for s in lines]
    assert [g.number_of_nodes() for g in graphs][:1] and all(g.number_of_nodes() >= 1
                                                            for g in graphs)
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ck["task"] == "generation" and ck["model"] == "seq-vae"     # the default model
    assert ck["init"]["in_channels"] == 17 and ck["config"]["epochs"] == 4


def test_graphvae_permutation_bound_runs(tmp_path):
    cfg = GenerationConfig(model="graphvae", bound="permutation", epochs=2, eval_every=1,
                           num_perms=3)
    m = run_generation(cfg, None, tmp_path, progress=False)
    assert m["bound"] == "permutation" and math.isfinite(m["test_bound_nats"])


@pytest.mark.parametrize("model", ["oneshot-vae",
                                   pytest.param("graphvae", marks=pytest.mark.slow)])  # 7 s
def test_same_seed_same_run_whatever_ran_before(model):
    """The initial weights come from the seed, not from the global random state (which
    torch seeds at random in a new process, and which earlier work moves on)."""
    cfg = GenerationConfig(model=model, epochs=2, eval_every=1)
    first = run_generation(cfg, None, None, progress=False)
    torch.rand(7)  # move the global random state on
    torch.manual_seed(12345)
    second = run_generation(cfg, None, None, progress=False)
    assert first["test_bound_nats"] == second["test_bound_nats"]
    assert first["mmd2"] == second["mmd2"]


class _ReplaySampler:
    """Returns given graph lists in turn, and records the generator it is handed."""

    def __init__(self, sets: list[list[nx.Graph]]):
        self.sets, self.gens = list(sets), []

    def sample(self, num: int, generator, device):
        self.gens.append(generator)
        graphs = self.sets.pop(0)
        assert len(graphs) == num
        return [SampledGraph(torch.tensor(nx.to_numpy_array(g, nodelist=sorted(g)),
                                          dtype=torch.float)) for g in graphs]


def test_mmd_over_draws_averages_the_scored_set_and_the_further_draws():
    """The mean and std over draws, worked by hand: two further draws that are the test
    set itself (MMD² exactly 0) after a first set whose values are given."""
    test = [nx.path_graph(4), nx.cycle_graph(5), nx.star_graph(3)]
    first = {"degree": 0.3, "clustering": 0.6, "orbit": 0.9, "empty_generated": 0.0}
    sampler = _ReplaySampler([test, test])
    gen = torch.Generator().manual_seed(3)
    cfg = GenerationConfig(draws=3)
    out = mmd_over_draws(sampler, test, first, cfg, gen, torch.device("cpu"))
    assert sampler.gens == [gen, gen] and not sampler.sets
    assert out["draws"] == 3 and "empty_generated" not in out
    for k, v in (("degree", 0.3), ("clustering", 0.6), ("orbit", 0.9), ("mean_of_three", 0.6)):
        assert out[k]["mean"] == pytest.approx(v / 3, abs=1e-12)
        # values v, 0, 0: mean v/3, sample variance ((2v/3)² + 2 (v/3)²) / 2 = v²/3
        assert out[k]["std"] == pytest.approx(v / math.sqrt(3), abs=1e-12)


@pytest.mark.slow       # several end-to-end runs: 5-9 s, kept out of make test's 3 minutes
def test_draws_continue_the_scored_sets_generator():
    """``--draws 3``: the first draw is the scored set (the same as a one-draw run), the
    other two come from the same generator after it."""
    one = run_generation(GenerationConfig(epochs=2, eval_every=1), None, None, progress=False)
    cfg = GenerationConfig(epochs=2, eval_every=1, draws=3)
    three = run_generation(cfg, None, None, progress=False)
    assert three["mmd2"] == one["mmd2"]
    data = load_generation_data(cfg)
    torch.manual_seed(cfg.seed)
    model = build_generation_model(cfg, data)
    train_generation_model(model, data, cfg, torch.device("cpu"), False, None, False)
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed)
    by_hand = []
    for _ in range(3):
        g = [s.to_networkx() for s in model.sample(len(data.test), gen)]
        by_hand.append(mmd_table(data.test, g, cfg.protocol)["generated"]["degree"])
    assert by_hand[0] == one["mmd2"]["generated"]["degree"]
    assert three["mmd2_draws"]["degree"]["mean"] == pytest.approx(sum(by_hand) / 3, rel=1e-12)


BAD = {
    "unknown data set": (["--dataset", "cifar"], "invalid choice: 'cifar'"),
    "unknown model": (["--model", "gan"], "invalid choice: 'gan'"),
    "too large for the decoder": (["--model", "graphvae", "--max-nodes", "10"],
                                  "has a graph with 20 nodes but the GraphVAE decoder has "
                                  "max_nodes=10"),
    "generated for a file-only set": (["--dataset", "ego-small", "--generated"],
                                      "--generated applies to"),
    "bad protocol": (["--protocol", "mine"], "invalid choice"),
    "no draws": (["--draws", "0"], "draws must be >= 1"),
    "unknown connectivity rule": (["--model", "seq-vae", "--connect-rule", "exact"],
                                  "invalid choice: 'exact'"),
    "draws on qm9": (["--dataset", "qm9", "--model", "seq-vae", "--draws", "3"],
                     "draws must be >= 1 (and 1 on qm9"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2(case):
    args, msg = BAD[case]
    rc, _, err = run_cli(["generate", *args, "--epochs", "1", "--quiet"])
    assert rc == 2
    assert msg in err


def test_settings_a_run_does_not_use_are_named():
    """Each changed setting the run ignores gets one line; used ones and defaults none."""
    cfg = GenerationConfig(model="seq-vae", bound="permutation", num_perms=3, components=6,
                           valency=False)               # seq-vae on graph sets: exemplar prior
    assert cfg.ignored_settings() == [
        "--bound applies only to --model graphvae; ignored here",
        "--num-perms applies only to --model graphvae --bound permutation; ignored here",
        "--components applies only to the set-mixture prior; ignored here",
        "--no-valency applies only to --dataset qm9; ignored here"]
    assert GenerationConfig(model="graphvae", num_perms=3, connect_rule="cuts"
                            ).ignored_settings() == [
        "--num-perms applies only to --model graphvae --bound permutation; ignored here",
        "--connect-rule applies only to --model seq-vae; ignored here"]
    for used in (GenerationConfig(),
                 GenerationConfig(model="graphvae", bound="permutation", num_perms=3),
                 GenerationConfig(model="seq-vae", dataset="qm9", components=6, fcd=False,
                                  connect_rule="budget"),
                 GenerationConfig(prior="set-mixture", components=6)):
        assert used.ignored_settings() == []


def test_command_line_prints_ignored_settings(tmp_path):
    (tmp_path / "taken").write_text("x")   # --out is a file: the run stops after the notes
    rc, _, err = run_cli(["generate", "--model", "oneshot-vae", "--connect-rule", "cuts",
                          "--quiet", "--out", str(tmp_path / "taken")])
    assert rc == 2
    assert err.splitlines()[0] == ("graphvae generate: note: --connect-rule applies only to "
                                   "--model seq-vae; ignored here")


def _qm9_root(tmp_path: Path, rows: list[str]) -> Path:
    (tmp_path / "qm9").mkdir()
    (tmp_path / "qm9" / "qm9.csv").write_text("smiles\n" + "\n".join(rows) + "\n")
    return tmp_path


def test_unreadable_smiles_row_is_a_one_line_error(tmp_path):
    pytest.importorskip("rdkit")
    root = _qm9_root(tmp_path, ["C", "CC", "C1CC", "CO"])
    rc, _, err = run_cli(["generate", "--dataset", "qm9", "--data-root", str(root),
                          "--epochs", "1", "--quiet"])
    assert rc == 2 and "qm9.csv:4:" in err and "C1CC" in err
    assert len(err.strip().splitlines()) == 1


def test_rdkit_missing_is_a_one_line_error(tmp_path, monkeypatch):
    root = _qm9_root(tmp_path, ["C", "CC", "CO", "CN"])
    monkeypatch.setitem(sys.modules, "rdkit", None)
    monkeypatch.setitem(sys.modules, "rdkit.Chem", None)
    rc, _, err = run_cli(["generate", "--dataset", "qm9", "--data-root", str(root),
                          "--epochs", "1", "--quiet"])
    assert rc == 2 and "RDKit" in err and len(err.strip().splitlines()) == 1


def test_fcd_without_two_test_molecules_is_refused_before_training(tmp_path, monkeypatch):
    """Five rows leave one test molecule, the FCD's whole reference set: one line before
    training (it stopped after training before), and --no-fcd runs."""
    pytest.importorskip("rdkit")
    pytest.importorskip("fcd")
    import graphvae.tasks.generation as generation
    root = _qm9_root(tmp_path, ["C", "CC", "CO", "CN", "CCO"])
    real = generation.train_generation_model

    def no_training(*args, **kwargs):
        raise AssertionError("trained before refusing")
    monkeypatch.setattr(generation, "train_generation_model", no_training)
    cfg = GenerationConfig(dataset="qm9", epochs=1, num_samples=4)
    with pytest.raises(ValueError, match="the FCD needs at least two test molecules, and this "
                                         "split has 1; read more rows"):
        run_generation(cfg, root, None, progress=False)
    monkeypatch.setattr(generation, "train_generation_model", real)
    m = run_generation(cfg.replace(fcd=False), root, None, progress=False)
    assert "fcd" not in m["molecules"]["sampled"]


def test_qm9_run_reports_both_decodings(tmp_path):
    pytest.importorskip("rdkit")
    rows = ["C", "N", "O", "CC", "CO", "CN", "C=O", "C#N", "CCO", "CCN", "CC=O", "OCO",
            "CCC", "C1CC1", "CC#C", "NC=O", "CCCO", "CC(C)C", "OC=O", "C1CO1"]
    root = _qm9_root(tmp_path, rows)
    cfg = GenerationConfig(dataset="qm9", epochs=3, eval_every=1, num_samples=40)
    m = run_generation(cfg, root, tmp_path / "out", progress=False)
    mol = m["molecules"]
    assert set(mol) == {"sampled", "valency_aware"}
    assert mol["valency_aware"]["num_generated"] == 40
    # the valency-aware decoding never exceeds a valence (tests/test_qm9.py), so it is at
    # least as valid as the raw samples
    assert mol["valency_aware"]["validity"] >= mol["sampled"]["validity"]
    smi = (tmp_path / "out" / "samples_valency_aware.smi").read_text().split()
    assert len(smi) == 40
    assert smi.count("INVALID") == 40 - mol["valency_aware"]["num_valid"]


def test_conv_default_depends_on_the_model_and_an_explicit_one_is_used():
    """GraphVAE's encoder defaults to GCN and the per-node-latent models' to GIN; a named
    --conv is what gets built (``--model graphvae --conv gin`` used to build GCN while the
    config said gin)."""
    data = load_generation_data(GenerationConfig())
    built = {}
    for model, conv in (("graphvae", None), ("graphvae", "gin"), ("oneshot-vae", None),
                        ("oneshot-vae", "gcn")):
        cfg = GenerationConfig(model=model, conv=conv)
        built[model, conv] = build_generation_model(cfg, data).init_kwargs()["conv"]
        assert built[model, conv] == cfg.conv_name
    assert built == {("graphvae", None): "gcn", ("graphvae", "gin"): "gin",
                     ("oneshot-vae", None): "gin", ("oneshot-vae", "gcn"): "gcn"}
    with pytest.raises(ValueError, match="unknown conv 'gru'"):
        GenerationConfig(conv="gru")


def test_graph_summary_by_hand():
    """An empty graph, a path of 3 and two disjoint edges: 7/3 nodes and 4/3 edges on
    average, one empty graph in three, and one connected graph of the two non-empty."""
    import networkx as nx

    from graphvae.evaluation.graph_stats import graph_summary
    two_edges = nx.Graph([(0, 1), (2, 3)])
    s = graph_summary([nx.Graph(), nx.path_graph(3), two_edges])
    assert s == pytest.approx({"mean_nodes": 7 / 3, "mean_edges": 4 / 3,
                               "fraction_empty": 1 / 3, "fraction_connected": 1 / 2})
    assert graph_summary([nx.Graph()])["fraction_connected"] == 0.0


def test_a_default_spelled_out_ties_a_training_state_as_leaving_it_out():
    """``--resume`` refused a killed run resumed with a default written out (``--selection
    last``, ``--prior exemplar``, ``--beta 0.001``, ``--connect-rule lookahead``,
    ``--kl-warmup 8`` for 24 epochs of seq-vae on community-small: each is what the run
    resolves with the flag left out). The state now records the resolved settings; a
    setting that really differs still differs."""
    from graphvae.tasks.generation import GenerationConfig
    base = GenerationConfig(dataset="community-small", model="seq-vae", epochs=24)
    same = dict(selection="last", prior="exemplar", beta=0.001, connect_rule="lookahead",
                kl_warmup=8, conv="gin", logvar_offset=-6.0)
    for name, value in same.items():
        assert base.replace(**{name: value}).training_settings() == \
            base.training_settings(), name
    other = dict(selection="val", prior="normal", beta=0.5, connect_rule="budget",
                 kl_warmup=3, conv="gcn", logvar_offset=-2.0)
    for name, value in other.items():
        assert base.replace(**{name: value}).training_settings() != \
            base.training_settings(), name
    one = GenerationConfig(dataset="community-small", model="oneshot-vae", epochs=30)
    assert one.replace(prior="normal", beta=1.0, kl_warmup=0, selection="val"
                       ).training_settings() == one.training_settings()
    gv = GenerationConfig(dataset="community-small", model="graphvae", epochs=30)
    assert gv.replace(selection="val", conv="gcn", kl_warmup=0).training_settings() == \
        gv.training_settings()


def test_the_default_set_and_device_tie_a_state_however_they_are_spelt():
    """``--resume`` refused a run of the default set resumed with ``--dataset
    community-small --generated`` or ``--generated`` (the same graphs), lobster with and
    without ``--generated`` (always generated), and ``--device auto`` against ``--device
    cpu`` where auto is the CPU. The stored community-small file and another device kind
    still differ, and states written with the default spelling still match."""
    from graphvae.devices import resolve_device
    from graphvae.tasks.generation import GenerationConfig
    base = GenerationConfig(epochs=24)
    assert base.training_settings()["dataset"] is None
    assert base.training_settings()["generated"] is False   # as earlier versions wrote it
    assert base.training_settings()["device"] == "cpu"
    for spelt in (GenerationConfig(epochs=24, generated=True),
                  GenerationConfig(epochs=24, dataset="community-small", generated=True)):
        assert spelt.training_settings() == base.training_settings()
    stored = GenerationConfig(epochs=24, dataset="community-small")
    assert stored.training_settings()["dataset"] == "community-small"
    assert stored.training_settings() != base.training_settings()
    lob = GenerationConfig(epochs=24, dataset="lobster")
    assert lob.replace(generated=True).training_settings() == lob.training_settings()
    grid = GenerationConfig(epochs=24, dataset="grid")
    assert grid.replace(generated=True).training_settings() != grid.training_settings()
    auto = base.replace(device="auto").training_settings()
    assert auto["device"] == resolve_device("auto").type
    assert (auto == base.training_settings()) == (resolve_device("auto").type == "cpu")
    assert base.replace(device="cpu:0").training_settings() == base.training_settings()


def test_a_set_mixture_larger_than_memory_is_refused_before_training(monkeypatch):
    """--components 65,536 (within its bound) on lobster asked for about 73 GB a step, and
    the kernel's out-of-memory killer ended the run with no message (exit 137). The
    densities' size is worked out first: batch 32 × 97 nodes × K components × 16 dims ×
    24 bytes, against the machine's memory (here said to be 1 GiB)."""
    import graphvae.tasks.generation as gen
    from graphvae.tasks.generation import GenerationConfig, load_generation_data
    cfg = GenerationConfig(dataset="lobster", prior="set-mixture", components=512)
    data = load_generation_data(cfg)
    assert max(g.number_of_nodes() for g in data.train) == 97
    from graphvae import devices
    monkeypatch.setattr(devices, "physical_memory", lambda: 2 ** 30)   # (device_memory's)
    gen.check_mixture_memory(cfg, data)                  # 24·32·97·512·16 B = 0.58 GiB
    with pytest.raises(ValueError, match=r"^--components 1,024: the set-mixture prior's "
                                         r"densities need about 1 GB a step \(batch 32 × 97 "
                                         r"nodes × 1,024 components × 16 dims\), more than "
                                         r"this machine's 1 GB; use fewer components or a "
                                         r"smaller --batch-size$"):
        gen.check_mixture_memory(cfg.replace(components=1024), data)   # 1.14 GiB
    gen.check_mixture_memory(cfg.replace(components=1024, prior="normal"), data)
    gen.check_mixture_memory(cfg.replace(components=1024, batch_size=16), data)
    # a batch holds at most the training set (72 graphs): 24·72·97·256·16 B = 0.67 GiB,
    # where --batch-size 4096 taken as it is would ask for 36 GiB
    assert len(data.train) == 72
    gen.check_mixture_memory(cfg.replace(components=256, batch_size=4096), data)
    with pytest.raises(ValueError, match=r"\(batch 72 × 97 nodes × 1,024 components"):
        gen.check_mixture_memory(cfg.replace(components=1024, batch_size=4096), data)
    with pytest.raises(ValueError, match=r"^--components 1,024: .* \(batch 32 × 97 nodes"):
        gen.run_generation(cfg.replace(components=1024), progress=False)   # before training


def test_set_prior_bound_assembles_its_terms_over_the_real_nodes():
    """With a prior over the set of node latents the one-shot bound is recon − (log q(Z | G)
    − log p(Z)) + log p(n) on the drawn Z, with log q summed over each graph's real nodes
    only, and the loss is its negative mean with the KL part weighted by kl_weight. Here
    log q is torch's Normal density at the posterior's mean and standard deviation, for a
    3-node path padded to the 5 slots of the batch's 5-node graph; p(3) = p(5) = 2/8 from
    the counts 1:2:3:2 of sizes 2 to 5; u is fixed at the mean of q(u | Z)."""
    model = _model(components=2, graph_latent=2)
    batch = _batch([nx.path_graph(3), nx.gnp_random_graph(5, 0.6, seed=1)])
    eps = torch.randn(1, 2, 5, 3, generator=torch.Generator().manual_seed(2),
                      dtype=torch.float64)
    u0 = torch.zeros(1, 2, 2, dtype=torch.float64)
    real = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float64)
    with torch.no_grad():
        q = model.posterior(batch)
        z = q.loc + torch.exp(0.5 * q.logvar) * eps
        normal = torch.distributions.Normal(q.loc, torch.exp(0.5 * q.logvar))
        log_q = (normal.log_prob(z).sum(-1) * real).sum(-1)[0]
        log_p = model.prior.set_log_prob(z, batch.mask, u_noise=u0)[0]
        recon = model.log_likelihood(z, batch)[0]
        size = torch.full((2,), math.log(2 / 8), dtype=torch.float64)
        est = model.bound(batch, eps=eps, u_noise=u0)
        # (p(n) is stored in float32: log(2/8) to within 1e-7)
        assert torch.allclose(est.value, recon - (log_q - log_p) + size, rtol=0, atol=1e-6)
        assert float(est.surrogate) == pytest.approx(-float(est.value.mean()), abs=1e-9)
        model.kl_weight = 0.5
        loss = model.bound(batch, eps=eps, u_noise=u0).surrogate
    assert float(loss) == pytest.approx(
        -float((recon - 0.5 * (log_q - log_p) + size).mean()), abs=1e-6)
    assert float((log_q - log_p).abs().min()) > 0.1   # the terms checked are not negligible


def test_standard_prior_loss_is_the_negative_mean_bound_with_log_p_n():
    """Under the standard normal prior too the loss (at kl_weight 1, one draw) is the
    negative mean bound, log p(n) included with its sign (it has no gradient, but the
    reported loss is the bound's)."""
    model = _model()
    batch = _batch([nx.path_graph(3), nx.cycle_graph(4)])
    eps = torch.randn(1, 2, 4, 3, generator=torch.Generator().manual_seed(3),
                      dtype=torch.float64)
    with torch.no_grad():
        est = model.bound(batch, eps=eps)
    assert float(est.surrogate) == pytest.approx(-float(est.value.mean()), abs=1e-9)


def test_oneshot_samples_decode_node_types_on_the_sampled_edges(monkeypatch):
    """The node-type decoder of a sample sees the edges drawn for it: with every edge
    likely (bias 50) and the latents fixed, each sample's node logits are the decoder's on
    its own edges, which differ from its logits on no edges (what an edgeless input gave),
    and its edge probabilities have a zero diagonal."""
    model = _model(types=True)
    zs = torch.randn(5, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    monkeypatch.setattr(model.prior, "sample_set", lambda n, d, *a, **k: zs[:n])
    with torch.no_grad():
        model.edge_bias.fill_(50.0)
        samples = model.sample(4, generator=torch.Generator().manual_seed(0))
        for g in samples:
            n = g.num_nodes
            assert g.adj.sum() == n * (n - 1)
            on_edges, _ = model.node_decoder(zs[:n], Adjacency(g.adj.nonzero().t(), n))
            alone, _ = model.node_decoder(zs[:n], Adjacency(torch.zeros(2, 0, dtype=torch.long), n))
            assert torch.allclose(g.node_logits, on_edges)
            assert not torch.allclose(on_edges, alone, atol=1e-3)
            assert torch.equal(g.edge_prob.diagonal(), torch.zeros(n, dtype=torch.float64))


def test_oneshot_refuses_exemplars_with_components_and_a_non_finite_offset():
    """An exemplar prior replaces the mixture prior, so asking for both is refused; an
    infinite or NaN log-variance offset would make every posterior degenerate."""
    with pytest.raises(ValueError, match="exemplars and mixture components exclude each other"):
        EquivariantGraphVAE(2, [0, 1], exemplars=3, components=2)
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError, match="logvar_offset must be a finite number, got"):
            EquivariantGraphVAE(2, [0, 1], logvar_offset=bad)


def test_edge_bias_is_added_to_every_edge_logit():
    """``l_ij = h_iᵀ h_j + b``: raising the learned bias from 0 to 1.5 raises every edge
    logit by exactly 1.5."""
    torch.manual_seed(0)
    model = EquivariantGraphVAE(3, [0, 1, 1, 1], latent_channels=4, hidden_channels=(8,))
    z = torch.randn(3, 4)
    with torch.no_grad():
        before, h = model.edge_logits(z)
        model.edge_bias.fill_(1.5)
        after, _ = model.edge_logits(z)
    assert torch.allclose(after - before, torch.full((3, 3), 1.5))
    assert torch.allclose(before, h @ h.t())


def test_oneshot_bound_includes_log_p_n():
    """The one-shot bound is on log p(n, A, …): two models with the same parameters whose
    size counts differ only in how the sizes are weighted, [0, 1, 1, 0] (p(2) = 1/2) and
    [0, 1, 3, 0] (p(2) = 3/4), differ on a 2-node graph by exactly log(3/4) − log(1/2)
    = log 1.5 (same noise, same likelihood and KL)."""
    torch.manual_seed(0)
    a = EquivariantGraphVAE(2, [0, 1, 1, 0], latent_channels=3, hidden_channels=(4,))
    b = EquivariantGraphVAE(2, [0, 1, 3, 0], latent_channels=3, hidden_channels=(4,))
    b.load_state_dict({k: v for k, v in a.state_dict().items() if k != "size_logprob"},
                      strict=False)
    g = GraphTensors(2, undirected([(0, 1)], 2))
    batch = GraphBatch.collate([g], [torch.eye(2)], torch.device("cpu"))
    eps = torch.randn(1, 1, 2, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        va, vb = a.bound(batch, eps=eps).value, b.bound(batch, eps=eps).value
    assert float(vb - va) == pytest.approx(math.log(1.5), abs=1e-5)


def test_generate_hands_on_quiet_names_its_folder_says_where_it_wrote_and_cleans_up(
        tmp_path, monkeypatch):
    """A finished generate run removes its training-state folder beside --out, records
    "graphvae generate" in the manifest, ends stderr with the line naming --out and what
    it holds, and hands --quiet on as no progress (the bars' own switch)."""
    import graphvae.tasks.generation as gen

    progress = []
    real = gen.run_generation

    def spy(*args, **kwargs):
        progress.append(kwargs["progress"])
        return real(*args, **kwargs)
    monkeypatch.setattr(gen, "run_generation", spy)
    out = tmp_path / "o"
    rc, _, err = run_cli(["generate", "--quiet", "--epochs", "1", "--out", str(out)])
    assert rc == 0, err
    assert not (tmp_path / ".o.state").exists()
    assert json.loads((out / "manifest.json").read_text())["command"] == "graphvae generate"
    names = ", ".join(sorted(p.name for p in out.iterdir()))
    assert err.splitlines()[-1] == f"graphvae generate: wrote '{out}': {names}"
    rc, _, err = run_cli(["generate", "--epochs", "1", "--out", str(out)])
    assert rc == 0, err
    assert progress == [False, True]
