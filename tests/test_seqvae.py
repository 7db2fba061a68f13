"""``seq-vae``: the sequential decoder is a normalised distribution that sampling follows, its
rules hold, its bound does not depend on node order; the set prior's bound; NSPDK and GDSS's
validity on hand-worked cases."""

from __future__ import annotations

import itertools
import math
import os

import networkx as nx
import pytest
import torch
import torch.nn.functional as F

from graphvae.bounds.priors import SetMixturePrior
from graphvae.containers import GraphBatch, GraphTensors
from graphvae.datasets.graphsets import input_features
from graphvae.decoders.sequential import pair_order, round_starts, rounds, run
from graphvae.evaluation.nspdk import nspdk_mmd2
from graphvae.models import SequentialGraphVAE
from graphvae.models.sequential import inverse_cdf

VALENCES = [4, 3, 2, 1]          # C N O F


def _model(typed=False, connect=False, seed=0, components=2, max_rounds=256,
           connect_rule="lookahead"):
    torch.manual_seed(seed)
    return SequentialGraphVAE(17 + (4 if typed else 0), [0, 0, 1, 2, 3, 2], latent_channels=3,
                              hidden_channels=(8,), decoder_hidden=(16,), embed_channels=8,
                              node_types=4 if typed else 0, edge_types=3 if typed else 0,
                              valences=VALENCES if typed else None, connect=connect,
                              components=components, graph_latent=2,
                              max_rounds=max_rounds, connect_rule=connect_rule).double()


def _graph(n, pairs, atoms=None, bonds=None):
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for v in range(n):
        if atoms is not None:
            g.nodes[v]["atom"] = atoms[v]
    for t, (a, b) in enumerate(pairs):
        g.add_edge(a, b)
        if bonds is not None:
            g.edges[a, b]["bond"] = bonds[t]
    return g


def _batch(graphs, typed=False):
    ts = [GraphTensors.from_networkx(g, "atom" if typed else None, "bond" if typed else None)
          for g in graphs]
    return GraphBatch.collate(ts, [input_features(t, 4 if typed else 0).double() for t in ts])


def _all_graphs(n):
    pairs = list(itertools.combinations(range(n), 2))
    for bits in itertools.product([0, 1], repeat=len(pairs)):
        yield [p for p, b in zip(pairs, bits) if b]


# -- the decoder is a distribution, and sampling is that distribution ----------------------------

@pytest.mark.parametrize("connect, rule", [(False, "lookahead"), (True, "lookahead"),
                                           (True, "budget"), (True, "cuts")])
def test_untyped_likelihood_sums_to_one_over_every_graph(connect, rule):
    m = _model(connect=connect, connect_rule=rule)
    edge_sets = list(_all_graphs(4))                         # 2^6 labelled graphs
    graphs = [_graph(4, e) for e in edge_sets]
    z = torch.randn(1, 1, 4, 3, dtype=torch.float64).expand(1, len(graphs), 4, 3)
    with torch.no_grad():
        lp = m.log_likelihood(z, _batch(graphs))[0]
    connected = torch.tensor([nx.is_connected(g) for g in graphs])
    assert int(connected.sum()) == 38                       # connected labelled graphs on 4
    if connect:
        assert torch.isinf(lp[~connected]).all() and torch.isfinite(lp[connected]).all()
    else:
        assert torch.isfinite(lp).all()
    assert float(torch.logsumexp(lp, 0)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("rule", ["lookahead", "budget", "cuts"])
def test_typed_likelihood_sums_to_the_type_probability(rule):
    m = _model(typed=True, connect=True, seed=1, connect_rule=rule)
    atoms = [0, 1, 2]                                        # C, N, O: valences 4, 3, 2
    pairs = [(0, 1), (0, 2), (1, 2)]
    graphs, codes = [], []
    for c in itertools.product(range(4), repeat=3):           # 0: no bond, 1..3: order
        on = [(p, b - 1) for p, b in zip(pairs, c) if b]
        graphs.append(_graph(3, [p for p, _ in on], atoms, [b for _, b in on]))
        codes.append(c)
    z = torch.randn(1, 1, 3, 3, dtype=torch.float64).expand(1, len(graphs), 3, 3)
    with torch.no_grad():
        lp = m.log_likelihood(z, _batch(graphs, typed=True))[0]
        types_lp = F.log_softmax(m.type_head(z[0, 0]), -1)[torch.arange(3), atoms].sum()
    for c, v in zip(codes, lp.tolist()):
        deg = [c[0] + c[1], c[0] + c[2], c[1] + c[2]]      # bond orders at C, N, O
        ok = all(d <= val for d, val in zip(deg, VALENCES)) and sum(b > 0 for b in c) >= 2
        assert math.isfinite(v) == ok, c
    assert float(torch.logsumexp(lp, 0)) == pytest.approx(float(types_lp), abs=1e-9)


@pytest.mark.parametrize("rule", ["lookahead", "budget", "cuts"])
def test_typed_likelihood_on_four_atoms_sums_to_the_type_probability(rule):
    """Four atoms (C, N, O, F and two mixes), every one of the 4⁶ bond-code matrices:
    the probabilities sum to the atoms' type probability under each connectivity rule,
    and every connected molecule within valence is possible (no rule refuses a choice
    that could still be completed). Only ``cuts`` also rules out every other graph: the
    weaker rules can reach a state no choice completes (lookahead does not count the
    valence that joining the pieces needs) and then end disconnected."""
    m = _model(typed=True, connect=True, seed=4, connect_rule=rule)
    pairs = list(itertools.combinations(range(4), 2))
    g = torch.Generator().manual_seed(0)
    for atoms in [(0, 1, 2, 3), (2, 2, 3, 3), (0, 3, 3, 3)]:
        graphs, feasible = [], []
        for c in itertools.product(range(4), repeat=6):
            on = [(p, b) for p, b in zip(pairs, c) if b]
            graph = _graph(4, [p for p, _ in on], list(atoms), [b - 1 for _, b in on])
            deg = [sum(b for p, b in on if v in p) for v in range(4)]
            graphs.append(graph)
            feasible.append(nx.is_connected(graph) and
                            all(d <= VALENCES[a] for d, a in zip(deg, atoms)))
        z = torch.randn(4, 3, dtype=torch.float64, generator=g) * 2
        with torch.no_grad():
            lp = torch.cat([m.log_likelihood(z.expand(1, len(graphs[i:i + 1024]), 4, 3),
                                             _batch(graphs[i:i + 1024], typed=True))[0]
                            for i in range(0, len(graphs), 1024)])
            types_lp = F.log_softmax(m.type_head(z), -1)[torch.arange(4), list(atoms)].sum()
        ok = torch.tensor(feasible)
        assert torch.isfinite(lp[ok]).all(), (rule, atoms)
        if rule == "cuts":
            assert torch.isinf(lp[~ok]).all(), atoms
        assert float(torch.logsumexp(lp, 0)) == pytest.approx(float(types_lp), abs=1e-9)


@pytest.mark.parametrize("rule", ["lookahead", "cuts"])
def test_typed_sampling_with_rules_draws_from_the_likelihood(monkeypatch, rule):
    """Z fixed, three atoms, the valence and connectivity rules on: the frequencies of the
    typed graphs (atom types and bond orders) in 6,000 samples match ``exp log p`` (each
    within 4.5 standard deviations plus 0.002), and no sample has probability 0."""
    m = _model(typed=True, connect=True, seed=5, connect_rule=rule)
    m.size_logprob.copy_(torch.log(torch.tensor([0, 0, 0, 1.0, 0, 0], dtype=torch.float64)))
    z = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(m.prior, "sample_set", lambda n, d, g, dtype, device: z.clone())
    pairs = [(0, 1), (0, 2), (1, 2)]
    graphs, keys = [], []
    for atoms in itertools.product(range(4), repeat=3):
        for c in itertools.product(range(4), repeat=3):
            on = [(p, b) for p, b in zip(pairs, c) if b]
            graphs.append(_graph(3, [p for p, _ in on], list(atoms), [b - 1 for _, b in on]))
            keys.append((atoms, c))
    with torch.no_grad():
        p = m.log_likelihood(z.expand(1, len(graphs), 3, 3), _batch(graphs, typed=True))[0].exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-9)
    index = {k: i for i, k in enumerate(keys)}
    counts = torch.zeros(len(keys), dtype=torch.float64)
    draws = 6000
    for s in m.sample(draws, torch.Generator().manual_seed(0)):
        key = (tuple(s.node_types.tolist()),
               tuple(int(s.bond_types[i, j]) for i, j in pairs))
        counts[index[key]] += 1
    assert float(counts[p == 0].sum()) == 0
    freq, sd = counts / draws, (p * (1 - p) / draws).sqrt()
    assert ((freq - p).abs() <= 4.5 * sd + 2e-3).all()


def test_sampling_draws_from_the_likelihood(monkeypatch):
    """With Z fixed, the frequencies of the 8 graphs on 3 nodes match ``exp log p(A | Z)``."""
    m = _model(seed=2)
    m.size_logprob.copy_(torch.log(torch.tensor([0, 0, 0, 1.0, 0, 0], dtype=torch.float64)))
    z = torch.randn(3, 3, dtype=torch.float64)
    monkeypatch.setattr(m.prior, "sample_set", lambda n, d, g, dtype, device: z.clone())
    edge_sets = list(_all_graphs(3))
    with torch.no_grad():
        lp = m.log_likelihood(z.expand(1, 8, 3, 3), _batch([_graph(3, e) for e in edge_sets]))
    p = lp[0].exp()
    draws = m.sample(4000, torch.Generator().manual_seed(0))
    index = {frozenset(e): t for t, e in enumerate(edge_sets)}
    counts = torch.zeros(8, dtype=torch.float64)
    for s in draws:
        counts[index[frozenset(map(tuple, torch.triu(s.adj, 1).nonzero().tolist()))]] += 1
    freq = counts / 4000
    sd = (p * (1 - p) / 4000).sqrt()
    assert ((freq - p).abs() <= 4.5 * sd + 1e-3).all(), (freq, p)


def test_typed_samples_respect_valence():
    m = _model(typed=True, connect=True, seed=3)
    for s in m.sample(60, torch.Generator().manual_seed(1)):
        n = s.num_nodes
        order = s.bond_types.double()
        assert torch.equal(order, order.T) and not order.diagonal().any()
        assert torch.equal((order > 0).double(), s.adj.double())
        val = torch.tensor(VALENCES, dtype=torch.float64)[s.node_types]
        assert (order.sum(1) <= val).all() and n == len(s.node_types)


def test_bound_is_invariant_to_node_order(float64):
    m = _model(typed=True, connect=True, seed=4)
    g = _graph(5, [(0, 1), (1, 2), (2, 3), (3, 4), (1, 4)], [0, 0, 1, 2, 0], [0, 1, 0, 0, 0])
    perm = [3, 0, 4, 1, 2]                                    # new node i is old node perm[i]
    h = nx.relabel_nodes(g, {old: new for new, old in enumerate(perm)})
    eps = torch.randn(3, 1, 5, 3, dtype=torch.float64)
    u = torch.randn(3, 1, 2, dtype=torch.float64)
    a = m.bound(_batch([g], True), num_samples=3, eps=eps, u_noise=u)
    b = m.bound(_batch([h], True), num_samples=3, eps=eps[:, :, perm], u_noise=u)
    assert torch.isfinite(a.value).all()
    torch.testing.assert_close(a.value, b.value, atol=1e-9, rtol=0)


def test_one_node_graphs_have_only_a_type_term():
    m = _model(typed=True, seed=6)
    g = _graph(1, [], [2])
    z = torch.randn(1, 1, 1, 3, dtype=torch.float64)
    with torch.no_grad():
        lp = m.log_likelihood(z, _batch([g], typed=True))
        want = F.log_softmax(m.type_head(z[0, 0]), -1)[0, 2]
        # beside a 2-node graph its padded slot adds no type term of its own
        beside = _batch([g, _graph(2, [(0, 1)], [0, 0], [0])], typed=True)
        zz = torch.cat([torch.cat([z, torch.randn(1, 1, 1, 3, dtype=torch.float64)], 2),
                        torch.randn(1, 1, 2, 3, dtype=torch.float64)], 1)
        lp_beside = m.log_likelihood(zz, beside)[0, 0]
    assert float(lp) == pytest.approx(float(want), abs=1e-12)
    assert float(lp_beside) == pytest.approx(float(want), abs=1e-12)


def test_the_pair_score_offsets_the_edge_options_only():
    """With the pair head's last layer zeroed, an untyped pair's logits are (0, s_ij) for
    (no edge, edge): log p(edge) = log σ(s), log p(no edge) = log σ(−s), s the pair's
    score from the same latents."""
    m = _model(seed=2)
    with torch.no_grad():
        m.pair_head[-1].weight.zero_()
        m.pair_head[-1].bias.zero_()
        z = torch.randn(1, 1, 2, 3, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(3))
        s, _ = m.edge_logits(z[0])
        sij = float(s[0, 0, 1])
        edge = float(m.log_likelihood(z, _batch([_graph(2, [(0, 1)])])))
        none = float(m.log_likelihood(z, _batch([_graph(2, [])])))
    assert edge == pytest.approx(-math.log1p(math.exp(-sij)), abs=1e-12)
    assert none == pytest.approx(-math.log1p(math.exp(sij)), abs=1e-12)


def test_rounds_and_order():
    assert rounds(3, None) == [(0, 1), (1, 2), (2, 3)]
    assert rounds(10, 4) == [(0, 2), (2, 5), (5, 8), (8, 10)]        # round(2.5) = 2
    score = torch.tensor([[[0, 5, 1], [5, 0, 3], [1, 3, 0]]], dtype=torch.float64)
    i, j = pair_order(score, torch.tensor([[True, True, True]]))
    assert list(zip(i[0].tolist(), j[0].tolist())) == [(0, 1), (1, 2), (0, 2)]
    i, j = pair_order(score, torch.tensor([[True, False, True]]))
    assert (i[0, 0].item(), j[0, 0].item()) == (0, 2)                  # padded pairs last


def test_a_real_pair_scored_minus_inf_is_still_decided_in_rounds():
    """Three real nodes of four; the pair (1, 2) scores −inf. The stable sort put it behind
    the padded pairs (also −inf), so the runs, which take a graph's real pairs from the
    front, never decided it: a chooser that always adds an allowed edge left it out."""
    mask = torch.tensor([[True, True, True, False]])
    score = torch.zeros(1, 4, 4)
    score[0, 1, 2] = score[0, 2, 1] = -torch.inf
    i, j = pair_order(score, mask)
    assert list(zip(i[0, :3].tolist(), j[0, :3].tolist())) == [(0, 1), (0, 2), (1, 2)]
    edge = lambda i, j, f, allowed: torch.where(allowed[..., 1], 1, 0)  # noqa: E731
    for max_rounds in (None, 1, 2):
        adj = run(score, mask, None, 2, False, edge, max_rounds=max_rounds).adj[0]
        assert adj[:3, :3].sum().item() == 6 and adj[3].sum().item() == 0, max_rounds


def test_many_pairs_in_few_rounds_still_sum_to_one():
    m = _model(seed=5, max_rounds=2)                        # 6 pairs in 2 rounds of 3
    edge_sets = list(_all_graphs(4))
    z = torch.randn(1, 1, 4, 3, dtype=torch.float64).expand(1, 64, 4, 3)
    with torch.no_grad():
        lp = m.log_likelihood(z, _batch([_graph(4, e) for e in edge_sets]))[0]
    assert float(torch.logsumexp(lp, 0)) == pytest.approx(0.0, abs=1e-9)
    # batched with a 5-node graph (10 pairs), each 4-node graph keeps its own two rounds
    # of 3: the same values, which still sum to one
    big = _graph(5, [(0, 1), (1, 2), (2, 3), (3, 4)])
    z5 = torch.randn(1, 1, 5, 3, dtype=torch.float64)
    z5[..., :4, :] = z[:, :1]
    with torch.no_grad():
        mixed = torch.stack([m.log_likelihood(z5.expand(1, 2, 5, 3),
                                              _batch([_graph(4, e), big]))[0, 0]
                             for e in edge_sets])
    torch.testing.assert_close(mixed, lp, atol=1e-12, rtol=0)


def test_each_graph_decides_its_own_runs_whatever_it_is_batched_with():
    """``run`` without rules on graphs of 4, 5 and 0 nodes, at most 2 rounds: the pairs each
    graph decides in each round are its own order split by ``rounds`` of its own count
    (4 nodes: 3 + 3; 5 nodes: 5 + 5); a shorter run is filled with the pair (0, 0), on
    which no option is allowed and nothing is recorded."""
    assert round_starts([3, 10, 0, 6], 4).tolist() == [[0, 1, 2, 3, 3], [0, 2, 5, 8, 10],
                                                      [0, 0, 0, 0, 0], [0, 2, 3, 4, 6]]
    # (6 pairs: 0, 1.5, 3, 4.5, 6 rounded half to even)
    torch.manual_seed(0)
    score = torch.randn(3, 5, 5, dtype=torch.float64)
    score = score + score.transpose(1, 2)
    mask = torch.arange(5)[None, :] < torch.tensor([4, 5, 0])[:, None]
    seen = []

    def choose(i, j, feats, allowed):
        seen.append((i, j, allowed))
        return torch.ones_like(i)                            # an edge wherever allowed

    state = run(score, mask, None, 2, False, choose, max_rounds=2)
    i_all, j_all = pair_order(score, mask)
    for g, runs in enumerate([[(0, 3), (3, 6)], [(0, 5), (5, 10)], []]):
        decided = [[(a, b) for a, b, ok in zip(i[g].tolist(), j[g].tolist(),
                                                allowed[g].any(-1).tolist()) if ok]
                   for i, j, allowed in seen]
        want = [list(zip(i_all[g, a:b].tolist(), j_all[g, a:b].tolist())) for a, b in runs]
        assert decided[:len(runs)] == want and not any(decided[len(runs):])
        assert not any((a, b) == (0, 0) for i, j, al in seen
                       for a, b, ok in zip(i[g].tolist(), j[g].tolist(), al[g].any(-1).tolist())
                       if ok)
    n = torch.tensor([4, 5, 0])
    assert state.adj.sum((1, 2)).tolist() == (n * (n - 1)).double().tolist()  # all joined
    assert not state.adj.diagonal(dim1=1, dim2=2).any()


def test_an_empty_graph_in_the_batch_leaves_the_gradients_finite():
    m = _model(seed=0)
    batch = _batch([_graph(3, [(0, 1), (1, 2)]), nx.empty_graph(0)])
    z = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    lp = m.log_likelihood(z, batch)
    lp[0, 0].backward()
    assert torch.isfinite(lp[0, 0])
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    assert torch.isfinite(z.grad).all()


def test_inverse_cdf_never_draws_a_refused_option():
    allowed = torch.tensor([[False, True, True, False], [True, True, False, False],
                            [True, True, True, True]])
    p = torch.tensor([[0.0, 0.25, 0.75, 0.0], [0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    at = {u: inverse_cdf(p, torch.full((3,), u), allowed).tolist()
          for u in (0.0, 0.2, 0.25, 0.5, 0.6, 0.99)}
    assert at == {0.0: [1, 0, 0], 0.2: [1, 0, 0], 0.25: [2, 0, 1], 0.5: [2, 1, 2],
                  0.6: [2, 1, 2], 0.99: [2, 1, 3]}
    short = torch.tensor([[0.5, 0.5 - 1e-6, 0.0, 0.0]])      # a float sum that ends short of 1
    assert inverse_cdf(short, torch.tensor([1 - 2 ** -24]), allowed[1:2]).tolist() == [1]


# -- the set prior -------------------------------------------------------------------------------

def test_set_prior_bound_lies_below_the_exact_log_density():
    """With a one-dimensional graph latent, ``log p(Z) = log ∫ N(u) Π p(z_i | u) du`` by
    quadrature; the one-draw estimates average below it, at exactly ``log p(Z)`` minus
    ``KL(q(u | Z) ‖ p(u | Z))``, which the same quadrature gives."""
    torch.manual_seed(0)
    prior = SetMixturePrior(dim=2, components=3, graph_latent=1, hidden=8).double()
    z = torch.randn(1, 5, 2, dtype=torch.float64)
    mask = torch.ones(1, 5, dtype=torch.bool)
    u = torch.linspace(-10, 10, 8001, dtype=torch.float64)[:, None, None]    # (U, 1, 1)
    with torch.no_grad():
        inner = prior.node_log_prob(z.expand(len(u), 5, 2), u.squeeze(-1)).sum(-1)
        log_n = -0.5 * (u.squeeze() ** 2 + math.log(2 * math.pi))
        exact = float(torch.logsumexp(inner + log_n, 0) + math.log(20 / 8000))
        draws = prior.set_log_prob(z.expand(4000, 5, 2), mask.expand(4000, 5),
                                   torch.Generator().manual_seed(1))
        # E[estimate] = ∫ q(u | Z) [log p(Z | u) + log N(u) − log q(u | Z)] du
        #             = exact − KL(q(u | Z) ‖ p(u | Z)), on the same grid
        loc, logvar = prior.posterior_u(z, mask)
        q_u = torch.distributions.Normal(loc.reshape(()), (0.5 * logvar).exp().reshape(()))
        log_q = q_u.log_prob(u.squeeze())
        expected = float((log_q.exp() * (inner + log_n - log_q)).sum() * (20 / 8000))
    assert torch.isfinite(draws).all()
    se = float(draws.std()) / math.sqrt(4000)
    assert abs(float(draws.mean()) - expected) < 4 * se, (float(draws.mean()), expected)
    assert expected <= exact                       # the gap is a KL divergence
    assert float(draws.mean()) <= exact + 3 * se


def test_set_prior_bound_at_the_posterior_mean_by_hand():
    """With ``u`` fixed at the mean of ``q(u | Z)`` (``u_noise`` zero), the estimate is
    ``Σ_i log Σ_k π_k N(z_i; μ_k, σ_k²) − KL(N(1.5, e⁻¹) ‖ N(0, 1))``; the MLPs' last
    layers are set so that every parameter is a chosen number, and a masked node is left
    out of both terms."""
    prior = SetMixturePrior(dim=1, components=2, graph_latent=1, hidden=4).double()
    with torch.no_grad():
        for layer, bias in ((prior.rho[-1], [1.5, -1.0]),              # loc, logvar of q(u|Z)
                            (prior.decode[-1], [0.0, math.log(3.0),    # π = (1/4, 3/4)
                                                -1.0, 2.0,              # μ
                                                0.0, math.log(4.0)])):  # σ² = (1, 4)
            layer.weight.zero_()
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    z = torch.tensor([[[0.5], [-1.0], [3.0], [50.0]]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, False]])

    def normal(x: float, mean: float, var: float) -> float:
        return math.exp(-(x - mean) ** 2 / (2 * var)) / math.sqrt(2 * math.pi * var)

    nodes = sum(math.log(0.25 * normal(x, -1.0, 1.0) + 0.75 * normal(x, 2.0, 4.0))
                for x in (0.5, -1.0, 3.0))
    kl = 0.5 * (1.5 ** 2 + math.exp(-1.0) - 1.0 - (-1.0))
    with torch.no_grad():
        got = prior.set_log_prob(z, mask, u_noise=torch.zeros(1, 1, dtype=torch.float64))
    assert float(got) == pytest.approx(nodes - kl, rel=1e-12)


def test_the_bound_holds_log_p_n_from_the_size_counts():
    """p(n) is the size counts normalised with size 0 excluded: counts (1, 1, 2) for sizes
    0, 1, 2 give (−∞, log 1/3, log 2/3). Two models alike but for the counts of sizes 2 and
    3 (1, 3 against 3, 1) score a 2-node graph log(1/4) − log(3/4) = −log 3 apart."""
    from graphvae.models.oneshot import EquivariantGraphVAE
    model = EquivariantGraphVAE(2, [1, 1, 2])
    assert model.size_logprob.tolist() == pytest.approx([-math.inf, math.log(1 / 3),
                                                         math.log(2 / 3)])
    batch = _batch([_graph(2, [(0, 1)])])
    eps = torch.randn(1, 1, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    values = []
    for counts in ([0, 0, 1, 3], [0, 0, 3, 1]):
        torch.manual_seed(0)
        m = EquivariantGraphVAE(17, counts, latent_channels=3).double()
        with torch.no_grad():
            values.append(float(m.bound(batch, eps=eps).value))
    assert values[0] - values[1] == pytest.approx(-math.log(3), rel=1e-6)   # p(n) in float32


def test_a_graphs_set_prior_bound_is_the_same_alone_or_beside_a_larger_one():
    """The padded slots of a smaller graph, batched with a larger one, enter neither its
    likelihood nor its log q(Z) nor its set prior: the same draws give the same bound."""
    m = _model(seed=4)
    small, path = _graph(2, [(0, 1)]), _graph(4, [(0, 1), (1, 2), (2, 3)])
    gen = torch.Generator().manual_seed(1)
    eps = torch.randn(1, 2, 4, 3, dtype=torch.float64, generator=gen)
    u = torch.randn(2, 2, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        alone = m.bound(_batch([small]), eps=eps[:, :1, :2], u_noise=u[:1]).value
        beside = m.bound(_batch([small, path]), eps=eps, u_noise=u).value
    assert float(beside[0]) == pytest.approx(float(alone[0]), rel=1e-12)


def test_set_prior_density_is_order_free():
    torch.manual_seed(1)
    prior = SetMixturePrior(dim=3, components=2, graph_latent=2).double()
    z = torch.randn(1, 4, 3, dtype=torch.float64)
    mask = torch.ones(1, 4, dtype=torch.bool)
    u = torch.randn(1, 2, dtype=torch.float64)
    a = prior.set_log_prob(z, mask, u_noise=u)
    b = prior.set_log_prob(z[:, [2, 0, 3, 1]], mask, u_noise=u)
    torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def _exemplar_prior(locs, logvars):
    from graphvae.bounds.priors import ExemplarPrior
    prior = ExemplarPrior(dim=locs[0].size(1), exemplars=len(locs), max_nodes=4).double()
    prior.fit(locs, logvars)
    return prior


def _exact_log_r(z, mu, lv):
    """log (1/n!) Σ_π Π_i N(z_π(i); μ_i, σ_i²) by enumerating the n! orders."""
    n = z.size(0)
    terms = []
    for perm in itertools.permutations(range(n)):
        d = z[list(perm)] - mu
        terms.append(-0.5 * (d.pow(2) / lv.exp() + lv + math.log(2 * math.pi)).sum())
    return torch.logsumexp(torch.stack(terms), 0) - math.lgamma(n + 1)


def test_exemplar_prior_bound_against_every_order():
    torch.manual_seed(3)
    mus = [torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64),
           torch.randn(2, 2, dtype=torch.float64)]
    lvs = [torch.randn(m.shape, dtype=torch.float64) * 0.3 for m in mus]
    prior = _exemplar_prior(mus, lvs)
    z = torch.randn(1, 4, 2, dtype=torch.float64)
    mask = torch.tensor([[True, True, True, False]])
    got = float(prior.set_log_prob(z, mask))
    exact = float(torch.logsumexp(torch.stack([_exact_log_r(z[0, :3], mus[m], lvs[m])
                                               for m in (0, 1)]), 0) - math.log(2))
    assert got <= exact + 1e-12
    # the bound keeps the best order of each exemplar: within log 3! of the exact value
    assert got >= exact - math.log(6) - 1e-12
    # one exemplar of two identical rows and a third: 2 of the 6 orders are the best
    same = torch.tensor([[0.5, -1.0], [0.5, -1.0], [6.0, 0.0]], dtype=torch.float64)
    prior = _exemplar_prior([same], [torch.zeros(3, 2, dtype=torch.float64)])
    assert float(prior.log_sym[0]) == pytest.approx(math.log(2))
    z = same[[2, 0, 1]][None] + 0.01
    got = float(prior.set_log_prob(z, torch.ones(1, 3, dtype=torch.bool)))
    exact = float(_exact_log_r(z[0], same, torch.zeros(3, 2, dtype=torch.float64)))
    assert got <= exact + 1e-12 and exact - got < 1e-3     # the other 4 orders are far worse
    # a size with no exemplar: N(0, I)
    z2 = torch.randn(1, 4, 2, dtype=torch.float64)
    got = float(prior.set_log_prob(z2, torch.tensor([[True, True, True, True]])))
    assert got == pytest.approx(float(-0.5 * (z2.pow(2) + math.log(2 * math.pi)).sum()))
    # ... and its draws are N(0, I)'s, in the exemplars' dtype
    draw = prior.sample_set(4, 2, torch.Generator().manual_seed(5))
    assert torch.equal(draw, torch.randn(4, 2, generator=torch.Generator().manual_seed(5),
                                         dtype=torch.float64))


def test_exemplar_prior_samples_an_exemplar_of_the_size_in_any_order():
    mus = [torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64),
           torch.tensor([[5.0, 5.0], [6.0, 5.0], [5.0, 6.0]], dtype=torch.float64),
           torch.tensor([[9.0, 9.0]], dtype=torch.float64)]
    prior = _exemplar_prior(mus, [torch.full(m.shape, -40.0, dtype=torch.float64) for m in mus])
    g = torch.Generator().manual_seed(0)
    picks, orders = [], set()
    for _ in range(400):
        z = prior.sample_set(3, 2, g)
        m = 0 if float(z.sum()) < 10 else 1
        assert sorted(map(tuple, z.round(decimals=6).tolist())) == sorted(
            map(tuple, mus[m].tolist()))
        picks.append(m)
        orders.add(tuple(map(tuple, z.round(decimals=6).tolist())))
    assert abs(sum(picks) / 400 - 0.5) < 4 * math.sqrt(0.25 / 400)     # uniform exemplars
    assert len(orders) == 12                          # every order of both exemplars
    assert torch.allclose(prior.sample_set(1, 2, g), mus[2])


def test_exemplar_model_round_trips_through_its_checkpoint(tmp_path):
    from graphvae.models.checkpoints import load_model, save_model
    m = _model(components=0)
    graphs = [_graph(4, [(0, 1), (1, 2), (2, 3)]), _graph(5, [(0, 1), (1, 2), (2, 3), (3, 4),
                                                               (0, 4)])]
    ts = [GraphTensors.from_networkx(g) for g in graphs]
    m.fit_exemplar_prior([(t, input_features(t, 0).double()) for t in ts])
    assert m.init_kwargs()["exemplars"] == 2
    save_model(tmp_path / "m.pt", m, task="generation", config={}, in_channels=17)
    back = load_model(tmp_path / "m.pt")[0].double()
    a = m.sample(6, torch.Generator().manual_seed(2))
    b = back.sample(6, torch.Generator().manual_seed(2))
    assert [x.adj.tolist() for x in a] == [y.adj.tolist() for y in b]
    batch = _batch(graphs)
    eps = torch.randn(1, 2, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(m.bound(batch, eps=eps).value, back.bound(batch, eps=eps).value)


# -- NSPDK and GDSS's validity, by hand ----------------------------------------------------------

def _mol(atoms, bonds):
    g = nx.Graph()
    for v, a in enumerate(atoms):
        g.add_node(v, label=a)
    for a, b, o in bonds:
        g.add_edge(a, b, label=o)
    return g


def test_nspdk_single_bond_carbon_against_oxygen_by_hand():
    """C–C against C–O. Edge vertices turn each graph into a path n–e–n (node degrees 1, the
    edge vertex 2); radii and distances count in the expanded graph (twice the molecule's),
    so only (ρ, δ) in {0, 1} x {0, 1} reach both ends: four blocks. Signatures at ρ = 0:
    a = [(C, 1)], b = [(O, 1)]; at ρ = 1 they add the edge vertex and the other end, so
    S = [(C,1)],[(1,2)],[(C,1)] in C–C differs from both of C–O's.

    C–C: both ends alike; every block holds one pair and one half feature, each counted from
    both ends: (2, 2)/(2√2) = 1/√2 each; four unit blocks, so 1/(2√2) after the last scaling.

    C–O, (0, 0): pair (a,a), pair (b,b), half a, half b, once each: 1/2 each; (0, 1): pair
    {a,b} twice, halves a and b once: (2, 1, 1)/√6. The ρ = 1 blocks alike, with other
    signatures. Four unit blocks: everything halved, so 1/4 and (2, 1, 1)/(2√6).

    Shared keys: (0, 0) pair (a,a) and half a, 2 · 1/(2√2) · 1/4 = 1/(4√2); (0, 1) half a,
    1/(2√2) · 1/(2√6) = 1/(8√3); none at ρ = 1. Both vectors have unit norm, so
    MMD² = 2 − 2 (1/(4√2) + 1/(8√3)) = 1.502109...
    """
    cc, co = _mol("CC", [(0, 1, 1)]), _mol("CO", [(0, 1, 1)])
    inner = 1 / (4 * math.sqrt(2)) + 1 / (8 * math.sqrt(3))
    assert nspdk_mmd2([cc], [co]) == pytest.approx(2 - 2 * inner, abs=1e-12)
    assert nspdk_mmd2([cc], [cc]) == pytest.approx(0.0, abs=1e-12)


def test_nspdk_mean_embedding_of_two_graphs_by_hand():
    """{C, C–C} against {C–C}: a lone C has only the (0, 0) block, one pair and one half
    feature (1, 1)/√2, and shares neither with C–C (its C has degree 0, C–C's degree 1).
    So φ(C) ⟂ φ(C–C), both unit: ‖(φ(C) + φ(C–C))/2 − φ(C–C)‖² = ‖φ(C) − φ(C–C)‖²/4 = 2/4."""
    c, cc = _mol("C", []), _mol("CC", [(0, 1, 1)])
    assert nspdk_mmd2([c, cc], [cc]) == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(ValueError, match="at least one"):
        nspdk_mmd2([cc], [nx.Graph()])


def test_nspdk_is_the_same_to_the_last_digit_under_any_string_hash_seed():
    """Python salts string hashes per process; the MMD² must not depend on that salt (a sum
    over a set of keys holding strings did, in its last digits)."""
    import subprocess
    import sys

    import graphvae.evaluation.nspdk as module
    # the module file alone (networkx, and tqdm for its bars): a process without torch
    # starts fast
    code = ("import importlib.util, sys\nimport networkx as nx\n"
            "spec = importlib.util.spec_from_file_location('nspdk', sys.argv[1])\n"
            "nspdk = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(nspdk)\n"
            "nspdk_mmd2 = nspdk.nspdk_mmd2\n"
            "def mol(a, b):\n    g = nx.Graph()\n"
            "    g.add_nodes_from((v, {'label': x}) for v, x in enumerate(a))\n"
            "    g.add_edges_from((i, j, {'label': o}) for i, j, o in b)\n    return g\n"
            "ref = [mol('CCO', [(0, 1, 1), (1, 2, 1)]), mol('CNCF', [(0, 1, 2), (1, 2, 1), "
            "(2, 3, 1)]), mol('OCCN', [(0, 1, 1), (1, 2, 1), (2, 3, 3)])]\n"
            "gen = [mol('CCN', [(0, 1, 1), (1, 2, 2)]), mol('CO', [(0, 1, 2)]), "
            "mol('FCCO', [(0, 1, 1), (1, 2, 1), (2, 3, 1)])]\n"
            "print(repr(nspdk_mmd2(ref, gen)))\n")
    outs = {subprocess.run([sys.executable, "-c", code, module.__file__], check=True,
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": str(s)}).stdout
            for s in range(6)}
    assert len(outs) == 1 and 0 < float(outs.pop()) < 2


@pytest.mark.parametrize("atoms, bonds, strict, gdss", [
    ([0, 0], [(0, 1, 1)], True, True),                     # ethane
    ([1, 0, 0, 0, 0], [(0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 4, 1)], False, True),  # [N+]
    ([2, 0, 0, 0], [(0, 1, 1), (0, 2, 1), (0, 3, 1)], False, True),                 # [O+]
    ([0, 0], [], False, True),                               # C.C: disconnected
    ([3, 3], [(0, 1, 2)], False, False),                     # F=F
    ([0, 1], [(0, 1, 3)], True, True),                       # HCN
    ([1, 0], [(0, 1, 3), ], True, True),
    ([1, 0, 0, 0, 0, 0], [(0, t, 1) for t in range(1, 6)], False, False),   # N, five bonds
    # a neutral five-bond N: RDKit's clean-up would pass these as charged groups
    ([0, 1, 2, 2], [(0, 1, 1), (1, 2, 2), (1, 3, 2)], False, False),       # C-N(=O)=O
    ([0, 1, 0, 2], [(0, 1, 2), (1, 2, 1), (1, 3, 2)], False, False),       # C=N(C)=O
    ([1, 1, 1], [(0, 1, 2), (1, 2, 3)], False, False),                     # N=N#N
    ([], [], False, True),                                   # empty: GDSS's code passes it
])
def test_strict_and_gdss_validity_by_hand(atoms, bonds, strict, gdss):
    pytest.importorskip("rdkit")
    from graphvae.chem.molecules import mols_from_decoded
    from graphvae.chem.validity import gdss_valid
    n = len(atoms)
    codes = torch.zeros(n, n, dtype=torch.long)
    for a, b, o in bonds:
        codes[a, b] = codes[b, a] = o
    types = torch.tensor(atoms, dtype=torch.long)
    assert gdss_valid(types, codes) is gdss
    assert (mols_from_decoded([(types, codes)])[0] is not None) is strict


def test_gdss_validity_checks_its_input_as_graph_to_mol_does():
    """Floats were truncated (types 0.9 / 0.2 and a bond of 1.7 were read as C–C, valid),
    an empty molecule skipped the bond matrix ([[5]] passed), a diagonal was ignored."""
    pytest.importorskip("rdkit")
    from graphvae.chem.qm9 import graph_to_mol
    from graphvae.chem.validity import gdss_construct, gdss_valid
    for types, bonds, message in [([0.9, 0.2], [[0, 1.7], [1.7, 0]], "node_types must hold "
                                   "integers"),
                                  ([0, 0], [[0, 1.7], [1.7, 0]], "bonds must hold integers"),
                                  ([], [[5]], r"bonds must have shape \(0, 0\)"),
                                  ([0, 0], [[1, 1], [1, 0]], "zero diagonal"),
                                  ([0, 0], [[0, 1], [2, 0]], "symmetric"),
                                  ([0, 7], [[0, 1], [1, 0]], "node_types must lie in 0..3")]:
        for fn in (gdss_valid, gdss_construct, graph_to_mol):
            with pytest.raises(ValueError, match=message):
                fn(types, bonds)
    # whole floats are integers: C–C single, valid under both definitions
    assert gdss_valid([0.0, 0.0], [[0.0, 1.0], [1.0, 0.0]]) is True


# -- the command line ----------------------------------------------------------------------------

def _jsonl(path):
    import json
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow  # 9 s (a generate run and check-invariance); the full suite runs it
def test_seq_vae_run_writes_raw_samples_and_passes_check_invariance(tmp_path):
    from conftest import run_cli
    out = tmp_path / "out"
    rc, text, err = run_cli(["generate", "--model", "seq-vae", "--epochs", "2", "--eval-every",
                             "1", "--num-samples", "12", "--out", str(out), "--quiet"])
    assert rc == 0, err
    rows = _jsonl(out / "samples.jsonl")
    g6 = nx.read_graph6(out / "samples.g6")
    assert len(rows) == 12 == len(g6)
    for row, g in zip(rows, g6):
        assert set(row) == {"num_nodes", "edges"} and row["num_nodes"] == g.number_of_nodes()
        assert all(0 <= i < j < row["num_nodes"] for i, j in row["edges"])
        assert sorted(map(tuple, row["edges"])) == sorted(tuple(sorted(e)) for e in g.edges)
    rc, text, err = run_cli(["check-invariance", "--checkpoint", str(out / "model.pt"),
                             "--permutations", "3", "--num-graphs", "3"])
    assert rc == 0, text + err
    assert "FAIL" not in text and "bound" in text


QM9_ROWS = ["C", "N", "O", "CC", "CO", "CN", "C=O", "C#N", "CCO", "CCN", "CC=O", "OCO", "CCC",
            "C1CC1", "CC#C", "NC=O", "CCCO", "CC(C)C", "OC=O", "C1CO1"]


def _qm9_root(tmp_path, rows=QM9_ROWS):
    (tmp_path / "qm9").mkdir()
    (tmp_path / "qm9" / "qm9.csv").write_text("smiles\n" + "\n".join(rows) + "\n")
    return tmp_path


@pytest.mark.parametrize("rule", ["lookahead", "budget", "cuts"])
def test_seq_vae_molecules_are_raw_and_within_valence(rule, tmp_path):
    pytest.importorskip("rdkit")
    root, out = _qm9_root(tmp_path), tmp_path / "out"
    from conftest import run_cli
    rc, text, err = run_cli(["generate", "--dataset", "qm9", "--model", "seq-vae", "--data-root",
                             str(root), "--epochs", "2", "--eval-every", "1", "--num-samples",
                             "30", "--no-fcd", "--connect-rule", rule, "--out", str(out),
                             "--quiet"])
    assert rc == 0, err
    import json
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["connect_rule"] == rule
    raw = metrics["molecules"]["sampled"]
    assert {"validity", "uniqueness", "novelty", "gdss_validity", "nspdk"} <= set(raw)
    assert "fcd" not in raw
    rows = _jsonl(out / "samples.jsonl")
    assert len(rows) == 30
    valence = dict(zip("CNOF", VALENCES))
    smiles = (out / "samples_sampled.smi").read_text().split()
    strict = 0
    for row, smi in zip(rows, smiles):
        used = [0] * len(row["atoms"])
        for i, j, order in row["bonds"]:
            assert 0 <= i < j < len(row["atoms"]) and order in (1, 2, 3)
            used[i] += order
            used[j] += order
        assert all(u <= valence[a] for u, a in zip(used, row["atoms"]))
        strict += smi != "INVALID"
    assert strict == raw["num_valid"]
    # within valence, a raw sample can only fail by being in pieces: count them by hand
    import networkx as nx
    pieces = 0
    for row in rows:
        g = nx.Graph()
        g.add_nodes_from(range(len(row["atoms"])))
        g.add_edges_from((i, j) for i, j, _ in row["bonds"])
        pieces += not nx.is_connected(g)
    assert raw["invalid"] == {"empty": 0, "unsanitizable": 0, "disconnected": pieces}
    assert pieces == raw["num_generated"] - raw["num_valid"]
    # symmetric molecules (CC, OCO, ...) give automorphic atoms equal posterior means
    rc, text, err = run_cli(["check-invariance", "--checkpoint", str(out / "model.pt"),
                             "--data-root", str(root), "--permutations", "3"])
    assert rc == 0, text + err


def test_resume_with_a_corrupt_or_mismatched_state_is_one_line(tmp_path):
    from conftest import run_cli

    from graphvae.tasks.generation import GenerationConfig, run_generation
    out = tmp_path / "out"
    state = tmp_path / ".out.state"
    state.mkdir()
    (state / "train.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    base = ["generate", "--epochs", "2", "--eval-every", "1", "--out", str(out), "--quiet",
            "--resume"]
    rc, _, err = run_cli(base)
    assert rc == 2 and "train.pt" in err and len(err.strip().splitlines()) == 1, err
    # a real state of a run with other settings
    run_generation(GenerationConfig(epochs=2, eval_every=1, lr=1e-3), progress=False,
                   state=state / "train.pt")
    rc, _, err = run_cli(base)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "other settings (--lr 0.003 here, --lr 0.001 in the state)" in err, err
    assert not out.exists()


@pytest.mark.slow       # several end-to-end runs: 5-9 s, kept out of make test's 3 minutes
def test_resume_from_a_hand_edited_state_is_one_line_and_keeps_it(tmp_path):
    """States a run of this code never saves: each trained a negative or huge number of
    epochs, kept NaN weights or a NaN best score (exit 0, wrong metrics), or failed inside
    torch (internal error, exit 3). Each is a one-line "damaged training state" now, and
    the state file is kept."""
    from conftest import run_cli

    from graphvae.tasks.generation import GenerationConfig, run_generation
    out, state = tmp_path / "out", tmp_path / ".out.state"
    state.mkdir()
    run_generation(GenerationConfig(epochs=2, eval_every=1), progress=False,
                   state=state / "train.pt")
    good = torch.load(state / "train.pt", weights_only=True)
    first = next(iter(good["model"]))

    def edited(change):
        ck = torch.load(state / "train.pt", weights_only=True)
        change(ck)
        return ck

    cases = {
        "epoch -5": lambda ck: ck.update(epoch=-5),
        "epoch 10**6": lambda ck: ck.update(epoch=10 ** 6),
        "epoch True": lambda ck: ck.update(epoch=True),
        "best epoch 10**9": lambda ck: ck["best"].update(score=1e9, epoch=10 ** 9),
        "NaN best score": lambda ck: ck["best"].update(score=float("nan")),
        "NaN best weights": lambda ck: ck["best"].update(
            state={k: v.clone().fill_(float("nan")) if k == first else v
                   for k, v in ck["model"].items()}),
        "best weights of another shape": lambda ck: ck["best"].update(
            state={**ck["model"], first: torch.zeros(2, 2)}),
        "optimiser slot of another shape": lambda ck: ck["optimizer"]["state"][0].update(
            exp_avg=torch.zeros(2)),
        "negative learning rate": lambda ck: ck["optimizer"]["param_groups"][0].update(lr=-1.0),
        "negative second moment": lambda ck: ck["optimizer"]["state"][0]["exp_avg_sq"].fill_(-1),
        # the resumed run's history (metrics.json, training.png) lost the epochs cut off
        "history cut short": lambda ck: ck.update(history=ck["history"][:1]),
        "epoch times cut short": lambda ck: ck.update(epoch_seconds=[]),
        # each trained to its end, then failed in the training plot, the timings or the
        # optimiser's step (exit 3), and wrote the same fields back for every resume
        "history of words": lambda ck: ck.update(
            history=[{k: "x" for k in row} for row in ck["history"]]),
        "epoch times of words": lambda ck: ck.update(
            epoch_seconds=["x"] * len(ck["epoch_seconds"])),
        "NaN total time": lambda ck: ck.update(seconds=float("nan")),
        "learning rate 1e300": lambda ck: ck["optimizer"]["param_groups"][0].update(lr=1e300),
        "negative step count": lambda ck: ck["optimizer"]["state"][0].update(
            step=torch.tensor(-5.0)),
        "complex step count": lambda ck: ck["optimizer"]["state"][0].update(
            step=torch.tensor(1 + 1j)),
        # load_state_dict cast these to the model's float32, silently: a resumed run that
        # is not the run it continues
        "complex weights": lambda ck: ck["model"].update({first: ck["model"][first].cfloat()}),
        "float64 weights": lambda ck: ck["model"].update({first: ck["model"][first].double()}),
        "sparse weights": lambda ck: ck["model"].update(
            {first: ck["model"][first].to_sparse()}),
        # a few bytes of file, gigabytes once read: list() of 3·10⁶ repeated values took
        # 2.3 GB, and an optimiser slot of them was cast to float32 before its shape check
        "history of one repeated value": lambda ck: ck.update(
            history=torch.zeros(1).expand(3_000_000)),
        "history as a tensor": lambda ck: ck.update(history=torch.zeros(3)),
        "optimiser slot of one repeated value": lambda ck: ck["optimizer"]["state"][0].update(
            exp_avg=torch.zeros(1, dtype=torch.float64).expand(300_000_000)),
    }
    named = {"history of one repeated value": "its tensors hold fewer values than their "
                                              "shapes: history has shape (3000000,)",
             "optimiser slot of one repeated value": "exp_avg has shape (300000000,)"}
    base = ["generate", "--epochs", "2", "--eval-every", "1", "--out", str(out), "--quiet",
            "--resume"]
    for name, change in cases.items():
        torch.save(edited(change), state / "train.pt")
        saved = (state / "train.pt").read_bytes()
        rc, _, err = run_cli(base)
        assert rc == 2 and len(err.strip().splitlines()) == 1, (name, err)
        assert "train.pt: a damaged training state" in err, (name, err)
        assert named.get(name, "") in err, (name, err)      # refused before it is read
        assert (state / "train.pt").read_bytes() == saved and not out.exists(), name
        torch.save(good, state / "train.pt")
    rc, _, err = run_cli(base)                               # the state as saved: resumes
    assert rc == 0, err


def test_unwritable_samples_file_is_one_line_and_leaves_no_output(tmp_path, monkeypatch):
    import errno

    from conftest import run_cli

    import graphvae.io as gio
    real = gio.write_text

    def full(text, path):
        if str(path).endswith("samples.jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(text, path)

    monkeypatch.setattr(gio, "write_text", full)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")       # not a graphvae folder: refused before training
    rc, _, err = run_cli(["generate", "--epochs", "1", "--out", str(out), "--quiet"])
    assert rc == 2 and len(err.strip().splitlines()) == 1
    fresh = tmp_path / "fresh"
    rc, _, err = run_cli(["generate", "--epochs", "1", "--out", str(fresh), "--quiet"])
    assert rc == 2 and "samples.jsonl" in err and "No space left" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not fresh.exists() and (out / "keep.txt").read_text() == "mine"
    # the training state stays, so that the run resumes once the disk has room
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fresh")] == [
        ".fresh.state"]
    monkeypatch.setattr(gio, "write_text", real)
    rc, _, err = run_cli(["generate", "--epochs", "1", "--out", str(fresh), "--quiet",
                          "--resume"])
    assert rc == 0, err
    assert len(_jsonl(fresh / "samples.jsonl")) == 20
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fresh")] == []


def test_fcd_missing_is_a_one_line_error_before_training(tmp_path, monkeypatch):
    import sys

    from conftest import run_cli
    root = _qm9_root(tmp_path)
    monkeypatch.setitem(sys.modules, "fcd", None)
    rc, _, err = run_cli(["generate", "--dataset", "qm9", "--data-root", str(root),
                          "--epochs", "1", "--quiet"])
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "fcd" in err and "--no-fcd" in err


def _single_bond_finish_exists(n, valence, codes, later):
    """Brute force: some subset of the later pairs, as single bonds within the remaining
    valences, connects the graph."""
    rem = [valence[u] - sum(codes[u]) for u in range(n)]
    base = [(u, v) for u in range(n) for v in range(u + 1, n) if codes[u][v]]
    for k in range(len(later) + 1):
        for chosen in itertools.combinations(later, k):
            used = [0] * n
            for u, v in chosen:
                used[u] += 1
                used[v] += 1
            if any(x > r for x, r in zip(used, rem)):
                continue
            g = nx.Graph()
            g.add_nodes_from(range(n))
            g.add_edges_from([*base, *chosen])
            if nx.is_connected(g):
                return True
    return False


def _joinable(state, u, v, option, later):
    li = torch.tensor([[a for a, _ in later]], dtype=torch.long).reshape(1, -1)
    lj = torch.tensor([[b for _, b in later]], dtype=torch.long).reshape(1, -1)
    return bool(state._joinable_after(torch.tensor([u]), torch.tensor([v]), option, li, lj)[0])


def _random_walk(seed, cases, low, high, rules, check, pick):
    """Random molecule-like cases: ``n`` atoms (``low``-``high``) of valence 1-4, their pairs
    in random order, decided one by one with a state for each connectivity rule. At each
    pair, ``check(n, valence, states, codes, u, v, o, after, later)`` runs for every option
    ``o`` within the valences (``after``: the bond orders with ``o`` on ``(u, v)``), then
    ``pick(rng, states, u, v, later, options)`` chooses the option to record."""
    from graphvae.decoders.sequential import SequenceState
    rng = __import__("random").Random(seed)
    for _ in range(cases):
        n = rng.randint(low, high)
        valence = [rng.choice([1, 1, 2, 2, 3, 4]) for _ in range(n)]
        pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
        rng.shuffle(pairs)
        states = {r: SequenceState(torch.ones(1, n, dtype=torch.bool),
                                   torch.tensor([valence], dtype=torch.float), 4, True,
                                   r != "lookahead", r == "cuts") for r in rules}
        codes = [[0] * n for _ in range(n)]
        for t, (u, v) in enumerate(pairs):
            later = pairs[t + 1:]
            rem = [valence[x] - sum(codes[x]) for x in range(n)]
            options = range(min(rem[u], rem[v], 3) + 1)
            for o in options:
                after = [row[:] for row in codes]
                after[u][v] = after[v][u] = o
                check(n, valence, states, codes, u, v, o, after, later)
            o = pick(rng, states, u, v, later, options)
            codes[u][v] = codes[v][u] = o
            for state in states.values():
                state.apply(torch.tensor([[u]]), torch.tensor([[v]]), torch.tensor([[o]]))


@pytest.mark.slow  # 6 s (every small case)
def test_budget_and_cuts_rules_never_refuse_an_option_that_can_still_be_joined():
    """Random small molecules-like cases (options drawn among those the cuts rule allows):
    whenever some finish of the later pairs connects the graph within the valences (brute
    force over their subsets), the budget and cuts rules allow the option, so a connected
    target keeps a non-zero probability; each never allows what the rule before it
    refuses; and each refuses options that the rule before it allows."""
    stricter = {"budget": 0, "cuts": 0}

    def check(n, valence, states, codes, u, v, o, after, later):
        ok = {r: _joinable(st, u, v, o, later) for r, st in states.items()}
        if not ok["cuts"]:       # refused: brute force finds no finish
            assert not _single_bond_finish_exists(n, valence, after, later), (
                valence, codes, (u, v, o), later)
        assert ok["lookahead"] or not ok["budget"]
        assert ok["budget"] or not ok["cuts"]
        stricter["budget"] += ok["lookahead"] and not ok["budget"]
        stricter["cuts"] += ok["budget"] and not ok["cuts"]

    def pick(rng, states, u, v, later, options):
        allowed = states["cuts"].allowed(torch.tensor([u]), torch.tensor([v]),
                                         *(torch.tensor([[p[s] for p in later]],
                                                        dtype=torch.long).reshape(1, -1)
                                           for s in (0, 1)))[0]
        return rng.choice([x for x in range(4) if allowed[x]])

    _random_walk(0, 90, 3, 6, ("lookahead", "budget", "cuts"), check, pick)
    assert stricter["budget"] > 0 and stricter["cuts"] > 0, stricter


def _cuts_by_definition(n, rem, codes, later):
    """The cut conditions with nothing skipped, by networkx: for every set X of one or
    two atoms, the components that the feasible later pairs not at X join number at most
    1 + Σ_{v∈X} min(free valence, feasible later pairs at v)."""
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from((u, v) for u in range(n) for v in range(u + 1, n) if codes[u][v])
    comp_of = {v: c for c, part in enumerate(nx.connected_components(g)) for v in part}
    feas = [(a, b) for a, b in later if comp_of[a] != comp_of[b] and rem[a] > 0 and rem[b] > 0]
    cap = [min(rem[v], sum(v in p for p in feas)) for v in range(n)]
    for x in [{v} for v in range(n)] + [set(p) for p in itertools.combinations(range(n), 2)]:
        h = nx.Graph()
        h.add_nodes_from(set(comp_of.values()))
        h.add_edges_from((comp_of[a], comp_of[b]) for a, b in feas if not {a, b} & x)
        if nx.number_connected_components(h) - 1 > sum(cap[v] for v in x):
            return False
    return True


def test_cuts_rule_is_the_budget_rule_and_every_cut_condition():
    """Random states of up to 8 atoms, options drawn among all within the valences: the
    cuts rule, which skips the sets whose condition holds anyway, decides exactly as the
    budget rule and every one- and two-atom cut condition computed in full by networkx."""
    refused = [0]

    def check(n, valence, states, codes, u, v, o, after, later):
        rem_after = [valence[x] - sum(after[x]) for x in range(n)]
        joined = nx.Graph()
        joined.add_nodes_from(range(n))
        joined.add_edges_from((a, b) for a in range(n) for b in range(n) if after[a][b])
        budget = _joinable(states["budget"], u, v, o, later)
        expect = nx.is_connected(joined) or (
            budget and _cuts_by_definition(n, rem_after, after, later))
        got = _joinable(states["cuts"], u, v, o, later)
        assert got == expect, (valence, codes, (u, v, o), later)
        refused[0] += budget and not got

    _random_walk(3, 40, 4, 8, ("budget", "cuts"), check,
                 lambda rng, states, u, v, later, options: rng.choice(options))
    assert refused[0] > 0


def test_node_capacity_by_hand():
    """Remaining valences (2, 1.5, 1, 1); later pairs 1-2 and 1-3 feasible, 0-2 not. Node
    0 is in no feasible pair, so it can make no join whatever its valence; node 1 is in
    two but has ⌊1.5⌋ = 1 free; nodes 2 and 3 one each: caps (0, 1, 1, 1)."""
    from graphvae.decoders.components import node_capacity
    rem = torch.tensor([[2.0, 1.5, 1.0, 1.0]])
    li, lj = torch.tensor([[1, 1, 0]]), torch.tensor([[2, 3, 2]])
    feas = torch.tensor([[True, True, False]])
    pairs_at, cap = node_capacity(rem, li, lj, feas)
    assert pairs_at.tolist() == [[0.0, 2.0, 1.0, 1.0]]
    assert cap.tolist() == [[0.0, 1.0, 1.0, 1.0]]


def test_groups_match_networkx_components():
    """The label propagation that counts groups, on random component graphs (chains and
    stars included, the longest label paths): the number of connected components that
    networkx finds among the present components with the kept pairs."""
    from graphvae.decoders.components import groups
    rng = __import__("random").Random(5)
    for _ in range(300):
        k = rng.randint(1, 9)
        present = [rng.random() < 0.8 for _ in range(k)]
        used = [c for c in range(k) if present[c]] or [0]
        present[used[0]] = True
        shape = rng.choice(["random", "chain", "star"])
        if shape == "chain":
            pairs = [(a, b) for a, b in zip(used[::-1], used[-2::-1])]
        elif shape == "star":
            pairs = [(used[-1], c) for c in used[:-1]]
        else:
            pairs = [(rng.choice(used), rng.choice(used)) for _ in range(rng.randint(0, 12))]
        keep = [rng.random() < 0.85 for _ in pairs]
        g = nx.Graph()
        g.add_nodes_from(used)
        g.add_edges_from(p for p, kept in zip(pairs, keep) if kept)
        ci = torch.tensor([[a for a, _ in pairs]], dtype=torch.long).reshape(1, -1)
        cj = torch.tensor([[b for _, b in pairs]], dtype=torch.long).reshape(1, -1)
        got = groups(ci, cj, torch.tensor([keep], dtype=torch.bool).reshape(1, -1),
                     torch.tensor([present]))
        assert int(got[0]) == nx.number_connected_components(g), (k, present, pairs, keep)


def test_budget_needs_the_later_pairs_to_join_every_component():
    """Two one-node components, each able to make one join (capacity enough: 1 + 1 >= 2),
    joined only by the later pair (0, 1): the budget holds when that pair is feasible and
    fails when it is not, as the components could then never become one (counting two
    groups as joined passed the infeasible case)."""
    from graphvae.decoders.components import budget_ok
    comp, cap = torch.tensor([[0, 1]]), torch.tensor([[1.0, 1.0]])
    ci, cj, present = torch.tensor([[0]]), torch.tensor([[1]]), torch.tensor([[True, True]])
    assert budget_ok(comp, ci, cj, torch.tensor([[True]]), present, cap).tolist() == [True]
    assert budget_ok(comp, ci, cj, torch.tensor([[False]]), present, cap).tolist() == [False]


def test_rounds_of_many_pairs_keep_components_and_common_neighbours():
    """The state over rounds of many pairs each (as large untyped graphs are decided), on
    three random graphs of up to 9 nodes at a time: before every round each node's
    component label is the smallest node of its networkx component of the edges so far,
    and each pair's features (degrees, common neighbours, size, components) are counted
    from the edge list;
    the filler pair (0, 0) with no edge changes nothing."""
    from graphvae.decoders.sequential import SequenceState
    rng = __import__("random").Random(11)
    checked = 0
    for _ in range(60):
        sizes = [rng.randint(0, 9) for _ in range(3)]
        k = max(max(sizes), 1)
        mask = torch.arange(k)[None, :] < torch.tensor(sizes)[:, None]
        state = SequenceState(mask, None, 2, connect=False)
        graphs = [nx.empty_graph(n) for n in sizes]
        todo = [rng.sample(list(itertools.combinations(range(n), 2)), n * (n - 1) // 2)
                for n in sizes]                               # each pair once, in any order
        density = rng.choice([0.1, 0.4, 0.9])
        for _ in range(4):
            width = rng.randint(2, 12)
            i, j, option = (torch.zeros(3, width, dtype=torch.long) for _ in range(3))
            for g, pairs in enumerate(todo):
                for t in range(min(width, len(pairs))):
                    i[g, t], j[g, t] = pairs.pop()
                    option[g, t] = int(rng.random() < density)
            feats = state.features(i, j, mask.sum(1))
            for g, graph in enumerate(graphs):
                for t in range(width):
                    a, b = int(i[g, t]), int(j[g, t])
                    if a == b:                                # the filler pair (0, 0)
                        continue
                    common = len(set(graph[a]) & set(graph[b]))
                    da, db = graph.degree(a), graph.degree(b)
                    want = [math.log1p(da + db), abs(da - db) / (da + db + 1),
                            math.log1p(common), common / (min(da, db) + 1),
                            math.log(max(sizes[g], 1)), float(nx.has_path(graph, a, b)),
                            math.log(max(nx.number_connected_components(graph), 1)),
                            0.0, 0.0, 0.0]            # untyped: no remaining valences
                    assert feats[g, t].tolist() == pytest.approx(want), (g, a, b)
                    checked += 1
            state.apply(i, j, option)
            for g, graph in enumerate(graphs):
                graph.add_edges_from((int(a), int(b)) for a, b, o in
                                     zip(i[g], j[g], option[g]) if o)
                label = {v: min(c) for c in nx.connected_components(graph) for v in c}
                assert state.comp[g, :sizes[g]].tolist() == [label[v] for v in range(sizes[g])]
                assert state.adj[g, :sizes[g], :sizes[g]].equal(
                    torch.tensor(nx.to_numpy_array(graph, range(sizes[g])) > 0))
    assert checked > 1000


def test_budget_rule_by_hand():
    """Two cases the look-ahead rule lets through: three lone atoms of valence 1 whose only
    later pairs both need atom 2 (it can join one of them); and four atoms whose later
    pairs join 0-1 and 2-3 but never the two halves."""
    from graphvae.decoders.sequential import SequenceState

    def state(valence, budget):
        return SequenceState(torch.ones(1, len(valence), dtype=torch.bool),
                             torch.tensor([valence], dtype=torch.float), 4, True, budget)
    hub = [(0, 2), (1, 2)]
    assert _joinable(state([1, 1, 1], False), 0, 1, 0, hub)
    assert not _joinable(state([1, 1, 1], True), 0, 1, 0, hub)
    assert _joinable(state([1, 1, 2], True), 0, 1, 0, hub)        # atom 2 can take both
    halves = [(0, 1), (2, 3)]
    assert _joinable(state([4, 4, 4, 4], False), 0, 2, 0, halves)
    assert not _joinable(state([4, 4, 4, 4], True), 0, 2, 0, halves)
    assert _joinable(state([4, 4, 4, 4], True), 0, 2, 1, halves)   # joined now: fine


def test_cuts_rule_by_hand():
    """Two states the budget rule lets through although no finish joins them.

    Six atoms in components {0}, {1}, {2, 3}, {4, 5}, deciding (0, 2); the later pairs
    (3, 4), (1, 5), (1, 2), (0, 4) connect them and the components' joins add up (1, 1, 2,
    2 ≥ 2·3), but atoms 1 and 4 have one free valence each and carry all four pairs:
    {0} needs (0, 4), {2, 3} then needs (1, 2), and nothing joins the two halves (the set
    {1, 4}: 4 groups, 2 joins). Bonding 0-2 now leaves a finish (1, 2), (3, 4).

    And a state met when sampling QM9 (atoms with valence 4 but for 4 and 7, bonds 1=7,
    3-8, 4=5; a single bond on (5, 8)): atom 5's last free valence would be counted on by
    {0}, {1, 7} and {6} (the set {5}: 3 groups, 1 join)."""
    from graphvae.decoders.sequential import SequenceState

    def state(valence, bonds, rule):
        st = SequenceState(torch.ones(1, len(valence), dtype=torch.bool),
                           torch.tensor([valence], dtype=torch.float), 4, True,
                           rule != "lookahead", rule == "cuts")
        for u, v, o in bonds:
            st.apply(torch.tensor([[u]]), torch.tensor([[v]]), torch.tensor([[o]]))
        return st

    def codes(n, bonds, extra=()):
        c = [[0] * n for _ in range(n)]
        for u, v, o in [*bonds, *extra]:
            c[u][v] = c[v][u] = o
        return c
    valence, bonds = [2, 1, 3, 3, 2, 4], [(2, 3, 1), (4, 5, 1)]
    later = [(3, 4), (1, 5), (1, 2), (0, 4)]
    for rule in ("lookahead", "budget"):
        assert _joinable(state(valence, bonds, rule), 0, 2, 0, later)
    assert not _joinable(state(valence, bonds, "cuts"), 0, 2, 0, later)
    assert not _single_bond_finish_exists(6, valence, codes(6, bonds), later)
    assert _joinable(state(valence, bonds, "cuts"), 0, 2, 1, later)
    assert _single_bond_finish_exists(6, valence, codes(6, bonds, [(0, 2, 1)]), later)

    valence, bonds = [4, 4, 4, 4, 2, 4, 4, 2, 4], [(1, 7, 2), (3, 8, 1), (4, 5, 2)]
    later = [(5, 6), (1, 2), (0, 5), (4, 7), (2, 4), (0, 6), (4, 6), (1, 5), (0, 7)]
    for rule in ("lookahead", "budget"):
        assert _joinable(state(valence, bonds, rule), 5, 8, 1, later)
    assert not _joinable(state(valence, bonds, "cuts"), 5, 8, 1, later)
    assert not _single_bond_finish_exists(9, valence, codes(9, bonds, [(5, 8, 1)]), later)


def test_connect_rule_is_kept_and_checked():
    m = SequentialGraphVAE(3, [0, 0, 1, 1], connect=True, connect_rule="budget")
    assert m.budget and m.init_kwargs()["connect_rule"] == "budget"
    assert SequentialGraphVAE(**m.init_kwargs()).budget
    assert not SequentialGraphVAE(3, [0, 0, 1, 1], connect=True).budget
    m = SequentialGraphVAE(3, [0, 0, 1, 1], connect=True, connect_rule="cuts")
    assert m.budget and m.cuts and SequentialGraphVAE(**m.init_kwargs()).cuts
    assert not SequentialGraphVAE(3, [0, 0, 1, 1], connect=True, connect_rule="budget").cuts
    from graphvae.decoders.sequential import SequenceState
    with pytest.raises(ValueError, match="cuts extends the budget rule"):
        SequenceState(torch.ones(1, 3, dtype=torch.bool), None, 2, True, False, True)
    with pytest.raises(ValueError, match="unknown connect_rule 'exact'"):
        SequentialGraphVAE(3, [0, 0, 1, 1], connect=True, connect_rule="exact")
    from graphvae.tasks.generation import GenerationConfig
    assert GenerationConfig(model="seq-vae", dataset="qm9").connect_rule_name == "cuts"
    assert GenerationConfig(model="seq-vae").connect_rule_name == "lookahead"
    assert GenerationConfig(model="seq-vae", dataset="qm9",
                            connect_rule="budget").connect_rule_name == "budget"


def test_connect_rule_is_decided_on_every_split():
    """Connected training graphs and one disconnected validation graph: the rule stays off,
    so that graph has a finite bound (under the rule it had probability 0, and validation
    could never pick an epoch); with every graph connected the rule is on."""
    from graphvae.datasets.graphsets import GraphSet
    from graphvae.tasks.generation import (
        GenerationConfig,
        build_generation_model,
        mean_bound,
    )
    paths = [nx.path_graph(5) for _ in range(6)]
    split = nx.disjoint_union(nx.path_graph(2), nx.path_graph(3))
    cfg = GenerationConfig(model="seq-vae", prior="normal")
    torch.manual_seed(0)
    on = build_generation_model(cfg, GraphSet("paths", paths, [nx.path_graph(5)], paths[:2]))
    torch.manual_seed(0)
    off = build_generation_model(cfg, GraphSet("paths", paths, [split], paths[:2]))
    assert on.connect and not off.connect
    data = GraphSet("paths", paths, [split], paths[:2])
    value = mean_bound(off, data.tensors([split]), 4, torch.device("cpu"), 1, 1.0)
    assert math.isfinite(value)
    assert mean_bound(on, data.tensors([split]), 4, torch.device("cpu"), 1, 1.0) == -math.inf


@pytest.mark.slow  # 12 s (two seq-vae runs)
def test_selection_keeps_the_last_or_the_best_validation_weights(tmp_path, monkeypatch):
    """The exemplar prior keeps the final epoch's weights by default, the others the best
    validation epoch's; ``selection`` overrides either way and an unknown value is refused
    (one line, exit 2, from the command). The validation scores are scripted to peak at
    epoch 2 of 4; the test bound is the real one, so it tells the two weights apart."""
    from conftest import run_cli

    import graphvae.tasks.generation as gen
    from graphvae.tasks.generation import GenerationConfig, run_generation
    assert GenerationConfig(model="seq-vae").selection_name == "last"        # exemplar prior
    assert GenerationConfig(model="seq-vae", dataset="qm9").selection_name == "val"
    assert GenerationConfig(model="seq-vae", prior="normal").selection_name == "val"
    assert GenerationConfig(model="oneshot-vae").selection_name == "val"
    assert GenerationConfig(model="graphvae").selection_name == "val"
    assert GenerationConfig(model="seq-vae", selection="val").selection_name == "val"
    with pytest.raises(ValueError, match="unknown selection 'best'"):
        GenerationConfig(selection="best")

    real = gen.mean_bound

    def scripted(*args, **kwargs):      # four validations, then the real test bound
        scores.append(real(*args, **kwargs))
        return [-3.0, -1.0, -2.0, -4.0][len(scores) - 1] if len(scores) <= 4 else scores[-1]

    monkeypatch.setattr(gen, "mean_bound", scripted)
    base = dict(model="seq-vae", epochs=4, eval_every=1, num_samples=6)
    scores: list[float] = []
    last = run_generation(GenerationConfig(**base), progress=False)
    assert last["selection"] == "last" and (last["best_epoch"], last["weights_epoch"]) == (2, 4)
    scores = []
    best = run_generation(GenerationConfig(**base, selection="val"), progress=False)
    assert (best["best_epoch"], best["weights_epoch"]) == (2, 2)
    assert best["test_bound_nats"] != last["test_bound_nats"]       # other weights
    scores = []
    rc, text, err = run_cli(["generate", "--selection", "best", "--out", str(tmp_path / "o")])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "best" in err


def test_recorded_pair_probabilities_keep_rare_edges_and_bond_types():
    """A sampled pair's edge probability was 1 − p(no edge) in float32, which rounds an edge
    of probability 1e-20 to 0 (and the valency-aware decoding then joins by label order),
    and its bond types were renormalised from underflowed probabilities (rows summing to
    0). With the last layer's bias (30, −17, −19, −25) and its weights zeroed every pair has
    these logits, less the options the valence rules forbid: the records keep a positive
    edge probability, bond distributions that sum to 1, and the logits' odds."""
    m = _model(typed=True).float()
    last = m.pair_head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([30.0, -17.0, -19.0, -25.0]))
    seen = 0
    for s in m.sample(20, torch.Generator().manual_seed(0)):
        n = s.adj.size(0)
        off = ~torch.eye(n, dtype=torch.bool)
        possible = s.edge_prob[off] > 0
        if n < 2 or not bool(possible.any()):
            continue
        seen += int(possible.sum())
        assert float(s.edge_prob[off].max()) < 1e-18                  # e^(-47) and below
        bond = s.bond_prob[off][possible].double()
        torch.testing.assert_close(bond.sum(-1), torch.ones(len(bond), dtype=torch.float64),
                                   rtol=1e-5, atol=0)                 # float32 rounding
        both = (bond[:, 0] > 0) & (bond[:, 1] > 0)
        torch.testing.assert_close(bond[both, 0] / bond[both, 1],
                                   torch.full((int(both.sum()),), math.exp(2.0),
                                              dtype=torch.float64), rtol=1e-5, atol=0)
    assert seen > 0


def test_exemplar_prior_in_float32_survives_a_very_sharp_exemplar():
    """An exemplar whose log-variance is below −88 overflowed exp(−lv) in float32: the
    assignment cost became infinite and SciPy refused it (or 0 · inf gave NaN). Such
    inputs are now computed in float64; both dtypes give the hand-worked value."""
    from graphvae.bounds.priors import ExemplarPrior
    locs = [torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.tensor([[5.0, 5.0], [6.0, 6.0]])]
    lvs = [torch.full((2, 2), -95.0), torch.zeros(2, 2)]
    z = torch.tensor([[[5.1, 5.0], [6.0, 6.2], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    values = {}
    for dtype in (torch.float32, torch.float64):
        prior = ExemplarPrior(dim=2, exemplars=2, max_nodes=3).to(dtype)
        prior.fit([t.to(dtype) for t in locs], [t.to(dtype) for t in lvs])
        values[dtype] = float(prior.set_log_prob(z.to(dtype), mask))
    assert math.isfinite(values[torch.float32])
    # by hand: the sharp exemplar lies far off (its term underflows to 0); the other's best
    # order is the identity, squared distance 0.1² + 0.2² = 0.05 over 4 unit-variance
    # coordinates; 1/2 for the exemplar's weight, 1/2! for the order
    by_hand = -0.05 / 2 - 2 * math.log(2 * math.pi) - math.log(2) - math.log(2)
    for dtype in values:
        assert values[dtype] == pytest.approx(by_hand, abs=1e-5), dtype


def test_a_recorded_edge_probability_never_rounds_above_one():
    """Bond probabilities that sum to about 1 with a vanishing no-edge option gave a pair's
    edge probability 1.0000002 in float32, and the valency-aware decoding of a QM9 run
    refused it ("edge_prob must hold probabilities in [0, 1]") after all its training and
    sampling. With these logits for every pair (a review's case) the records stay in
    [0, 1]."""
    m = _model(typed=True).float()
    last = m.pair_head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-37.47431945800781, -1.20010244846344,
                                      3.1183857917785645, 1.0744593143463135]))
    top = []
    for s in m.sample(20, torch.Generator().manual_seed(0)):
        if s.adj.size(0) > 1:
            top.append(float(s.edge_prob.max()))
    assert top and max(top) == 1.0 and min(top) > 0.999


def test_recorded_edge_probabilities_are_symmetric_and_are_the_pair_probability(monkeypatch):
    """Untyped, no rules, the pair head's last layer zeroed: every pair's options have
    logits (0, s_ij), so its recorded edge probability is σ(s_ij) at (i, j) and at (j, i)
    (an unordered pair), 0 on the diagonal."""
    m = _model()
    m.size_logprob.copy_(torch.log(torch.tensor([0, 0, 0, 0, 1.0, 0], dtype=torch.float64)))
    with torch.no_grad():
        m.pair_head[-1].weight.zero_()
        m.pair_head[-1].bias.zero_()
    z = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(m.prior, "sample_set", lambda n, d, g, dtype, device: z.clone())
    with torch.no_grad():
        s, _ = m.edge_logits(z[None])
    expect = torch.sigmoid(s[0]) * (1 - torch.eye(4, dtype=torch.float64))
    for rec in m.sample(3, torch.Generator().manual_seed(0)):
        assert rec.edge_prob.shape == (4, 4)
        torch.testing.assert_close(rec.edge_prob, rec.edge_prob.T, rtol=0, atol=0)
        torch.testing.assert_close(rec.edge_prob.double(), expect, rtol=1e-12, atol=1e-15)


def test_small_graphs_sampled_beside_larger_ones_follow_their_own_likelihood(monkeypatch):
    """Sizes 3 and 4 drawn half and half into one chunk, Z fixed per size, the
    connectivity rule on: every sampled graph is connected (the rule gives a disconnected
    graph on 3 nodes probability 0, as the exhaustive sum below shows) and the 3-node
    graphs' frequencies match exp log p(A | Z) of the 3-node graphs alone: the chunk's padding
    slot of a 3-node graph is no node."""
    m = _model(connect=True, seed=2)
    m.size_logprob.copy_(torch.log(torch.tensor([0, 0, 0, 0.5, 0.5, 0], dtype=torch.float64)))
    z = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(m.prior, "sample_set", lambda n, d, g, dtype, device: z[:n].clone())
    edge_sets = list(_all_graphs(3))
    graphs = [_graph(3, e) for e in edge_sets]
    with torch.no_grad():
        p = m.log_likelihood(z[:3].expand(1, 8, 3, 3), _batch(graphs))[0].exp()
    connected = torch.tensor([nx.is_connected(g) for g in graphs])
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-9)
    assert float(p[~connected].sum()) == 0.0
    index = {frozenset(e): t for t, e in enumerate(edge_sets)}
    counts = torch.zeros(8, dtype=torch.float64)
    for s in m.sample(3000, torch.Generator().manual_seed(0)):
        g = nx.from_numpy_array(s.adj.numpy())
        assert nx.is_connected(g)
        if s.adj.size(0) == 3:
            counts[index[frozenset(map(tuple, torch.triu(s.adj, 1).nonzero().tolist()))]] += 1
    draws = counts.sum()
    assert 1200 < draws < 1800
    freq, sd = counts / draws, (p * (1 - p) / draws).sqrt()
    assert ((freq - p).abs() <= 4.5 * sd + 2e-3).all(), (freq, p)


@pytest.mark.parametrize("max_rounds", [0, -3])
def test_seq_vae_refuses_max_rounds_below_one(max_rounds):
    """With no round every pair would go undecided (log p(A | Z) = 0 for every graph):
    max_rounds < 1 is refused in one line."""
    with pytest.raises(ValueError, match="max_rounds"):
        _model(max_rounds=max_rounds)


def test_seq_vae_refuses_typed_graphs_without_edge_types():
    """node types (atoms with valences) but no bond types is refused in one line."""
    with pytest.raises(ValueError, match="edge"):
        SequentialGraphVAE(21, [0, 0, 1, 2], latent_channels=3, hidden_channels=(8,),
                           decoder_hidden=(16,), embed_channels=8, node_types=4, edge_types=0,
                           valences=[4, 3, 2, 1])


def test_sampling_refines_a_draw_in_the_first_float32_cell(monkeypatch):
    """Every uniform forced to 0 (the float32 cell [0, 2⁻²⁴)) and one pair whose
    'no edge' option has probability p0 = 2⁻²⁴/4 < 2⁻²⁴: the exact decision u < p0 holds within
    the cell with probability p0 · 2²⁴ = 1/4, so about a quarter of the 2-node samples have
    no edge (unrefined, u = 0 < p0 always: every sample)."""
    import graphvae.models.sequential as seq

    m = _model()
    m.size_logprob.copy_(torch.log(torch.tensor([0, 0, 1.0, 0, 0, 0], dtype=torch.float64)))
    z = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(m.prior, "sample_set", lambda n, d, g, dtype, device: z[:n].clone())
    p0 = 2.0 ** -24 / 4
    with torch.no_grad():
        s, _ = m.edge_logits(z[None])
        m.pair_head[-1].weight.zero_()
        m.pair_head[-1].bias.copy_(torch.tensor([float(s[0, 0, 1]) + math.log(p0 / (1 - p0)),
                                                 0.0], dtype=torch.float64))
    monkeypatch.setattr(seq, "uniform",
                        lambda shape, g, where: torch.zeros(shape, dtype=torch.float32))
    draws = m.sample(2000, torch.Generator().manual_seed(0))
    none = torch.tensor([float(d.adj[0, 1] == 0) for d in draws], dtype=torch.float64)
    se = (0.25 * 0.75 / len(draws)) ** 0.5
    assert abs(float(none.mean()) - 0.25) < 5 * se
