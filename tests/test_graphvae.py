"""GraphVAE: padding, decoding, the padded-graph likelihood and the permutation bounds."""

import math

import networkx as nx
import pytest
import torch
from conftest import random_graph, undirected

from graphvae.adjacency import Adjacency
from graphvae.graph import permute_graph
from graphvae.likelihoods.graphs import padded_graph_log_prob
from graphvae.models.graphvae import GraphLogits, GraphVAE
from graphvae.models.padded import PaddedGraph
from graphvae.permutations import all_permutations, canonical_orderings, random_permutations

pytestmark = pytest.mark.usefixtures("float64")


def small_model(k, seed=0, in_channels=3, **kwargs):
    torch.manual_seed(seed)
    return GraphVAE(in_channels, k, latent_channels=4, hidden_channels=(8,),
                    decoder_hidden=(16,), **kwargs)


def automorphisms(ei, n):
    """|Aut(G)|, counted by networkx's matcher."""
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(ei.t().tolist())
    return sum(1 for _ in nx.algorithms.isomorphism.GraphMatcher(g, g).isomorphisms_iter())


def some_graph(n, seed):
    """A random graph on n nodes, neither empty nor complete (resampled until so)."""
    s = seed
    while True:
        ei = random_graph(n, 0.5, s)
        if 0 < ei.size(1) < n * (n - 1):
            return ei
        s += 1000


def extend(perms, k):
    """Node permutations ``(K, n)`` extended by the identity on padding slots ``n..k-1``."""
    pad = torch.arange(perms.size(1), k).expand(perms.size(0), -1)
    return torch.cat([perms, pad], dim=1)


def log_sigmoid(t):
    return -math.log1p(math.exp(-t))


def log_softmax_at(logits, i):
    return logits[i] - math.log(sum(math.exp(v) for v in logits))


# ---------------------------------------------------------------- sizes and padding

def test_too_many_nodes_is_an_error_naming_max_nodes():
    model = small_model(4)
    ei = random_graph(5, 0.5, 0)
    x = torch.randn(5, 3)
    for call in (lambda: model.bound(x, Adjacency(ei, 5)),
                 lambda: model.encode(x, Adjacency(ei, 5)),
                 lambda: model.pad(ei, 5)):
        with pytest.raises(ValueError, match=r"5 nodes.*max_nodes=4"):
            call()
    with pytest.raises(ValueError, match="max_nodes must be from 2 to 1,024"):
        GraphVAE(3, 1)
    # one integer once built a decoder of max_nodes² outputs (2,000: 2.2 GB) before a word
    with pytest.raises(ValueError, match=r"max_nodes must be from 2 to 1,024 \(the decoder "
                                         r"grows as its square\), got 2000"):
        GraphVAE(3, 2000)


def test_pad_a_small_graph_with_node_and_edge_types(path3):
    model = small_model(5, node_types=3, edge_types=2)
    # path3's columns are (0,1), (1,0), (1,2), (2,1); pair 0-1 has type 1, pair 1-2 type 0
    assert path3.t().tolist() == [[0, 1], [1, 0], [1, 2], [2, 1]]
    target = model.pad(path3, 3, node_types=torch.tensor([2, 0, 1]),
                       edge_types=torch.tensor([1, 1, 0, 0]))
    assert target.mask.tolist() == [1, 1, 1, 0, 0]
    expected_adj = torch.zeros(5, 5)
    for i, j in [(0, 1), (1, 2)]:
        expected_adj[i, j] = expected_adj[j, i] = 1
    assert torch.equal(target.adj, expected_adj)
    assert target.node_types.tolist() == [2, 0, 1, 0, 0]
    expected_et = torch.zeros(5, 5, dtype=torch.long)
    expected_et[0, 1] = expected_et[1, 0] = 1
    assert torch.equal(target.edge_types, expected_et)
    # untyped padding leaves the type fields empty; a self-loop in the input is dropped
    loops = torch.tensor([[0, 0, 1], [0, 1, 0]])
    plain = small_model(5).pad(loops, 2)
    assert plain.node_types is None and plain.edge_types is None
    assert plain.adj.diagonal().sum() == 0 and plain.adj[0, 1] == 1 and plain.adj[1, 0] == 1
    # a typed model given a graph without its types left the type terms out of the
    # likelihood; types outside its ranges failed inside an index
    with pytest.raises(ValueError, match="models 3 node types: give the graph's node_types"):
        model.pad(loops, 2)
    with pytest.raises(ValueError, match=r"node_types must lie in 0\.\.2 for this GraphVAE, "
                                         r"got 0\.\.5"):
        model.pad(path3, 3, torch.tensor([2, 0, 5]), torch.tensor([1, 1, 0, 0]))
    with pytest.raises(ValueError, match=r"edge_types must lie in 0\.\.1"):
        model.pad(path3, 3, torch.tensor([2, 0, 1]), torch.tensor([1, 1, 0, -1]))
    # an edge listed in one direction is the undirected edge (it was scored as no edge)
    one_way = model.pad(path3[:, ::2], 3, torch.tensor([2, 0, 1]), torch.tensor([1, 0]))
    assert torch.equal(one_way.adj, expected_adj) and torch.equal(one_way.edge_types,
                                                                  expected_et)


def test_permute_padded_graph_follows_the_convention(path3):
    model = small_model(4, node_types=3, edge_types=2)
    target = model.pad(path3, 3, node_types=torch.tensor([2, 0, 1]),
                       edge_types=torch.tensor([1, 1, 0, 0]))
    perm = torch.tensor([3, 1, 0, 2])                      # new slot 0 is the padding slot
    moved = target.permute(perm[None])
    assert moved.mask.tolist() == [[0, 1, 1, 1]]
    assert torch.equal(moved.adj[0], target.adj[perm][:, perm])
    assert moved.node_types.tolist() == [[0, 0, 2, 1]]
    assert torch.equal(moved.edge_types[0], target.edge_types[perm][:, perm])


def test_decode_is_symmetric_with_zero_diagonal():
    model = small_model(5, node_types=3, edge_types=2)
    z = torch.randn(7, 4)
    out = model.decode(z)
    assert out.node.shape == (7, 5)
    assert out.edge.shape == (7, 5, 5)
    assert out.node_type.shape == (7, 5, 3)
    assert out.edge_type.shape == (7, 5, 5, 2)
    assert torch.equal(out.edge, out.edge.transpose(-1, -2))
    assert torch.equal(out.edge.diagonal(dim1=-2, dim2=-1), torch.zeros(7, 5))
    assert torch.equal(out.edge_type, out.edge_type.transpose(1, 2))
    assert torch.equal(out.edge_type.diagonal(dim1=1, dim2=2), torch.zeros(7, 2, 5))
    # the upper triangle holds k(k-1)/2 = 10 free values per sample (not all equal)
    iu = torch.triu_indices(5, 5, 1)
    assert out.edge[:, iu[0], iu[1]].shape == (7, 10)
    assert len(set(out.edge[0, iu[0], iu[1]].tolist())) == 10
    # a batch decodes like its rows one at a time
    one = model.decode(z[2])
    assert torch.allclose(one.edge, out.edge[2], atol=1e-12)
    assert torch.allclose(one.edge_type, out.edge_type[2], atol=1e-12)
    untyped = small_model(5).decode(z)
    assert untyped.node_type is None and untyped.edge_type is None


def test_edge_probabilities_hold_node_existence_on_the_diagonal():
    model = small_model(4)
    z = torch.randn(4)
    logits = model.decode(z)
    probs = model.edge_probabilities(z)
    assert torch.allclose(probs.diagonal(), torch.sigmoid(logits.node), atol=1e-15)
    off = ~torch.eye(4, dtype=torch.bool)
    assert torch.allclose(probs[off], torch.sigmoid(logits.edge)[off], atol=1e-15)
    assert torch.equal(probs, probs.t())


def test_padded_graph_log_prob_by_hand():
    # 3 slots, 2 real nodes joined by one edge; node types T = 3, edge types R = 2
    nu = [0.5, -1.0, 2.0]
    edge = {(0, 1): 0.3, (0, 2): -0.7, (1, 2): 1.1}
    nt_logits = [[0.1, 0.2, 0.3], [1.0, 0.0, -1.0], [5.0, -5.0, 0.0]]
    et_01 = [0.4, -0.2]
    model = small_model(3, node_types=3, edge_types=2)
    target = model.pad(torch.tensor([[0, 1], [1, 0]]), 2, node_types=torch.tensor([2, 0]),
                       edge_types=torch.tensor([1, 1]))
    assert target.mask.tolist() == [1, 1, 0]
    edge_logits = torch.zeros(3, 3)
    for (i, j), v in edge.items():
        edge_logits[i, j] = edge_logits[j, i] = v
    et_logits = torch.randn(3, 3, 2) * 3                   # only pair (0, 1) may count
    et_logits[0, 1] = et_logits[1, 0] = torch.tensor(et_01)
    got = padded_graph_log_prob(torch.tensor(nu), edge_logits, target.mask, target.adj,
                                torch.tensor(nt_logits), target.node_types, et_logits,
                                target.edge_types)
    expected = (log_sigmoid(0.5) + log_sigmoid(-1.0) + log_sigmoid(-2.0)  # slot 2 is absent
                + log_sigmoid(0.3)                          # the edge 0-1; pairs with 2 skipped
                + log_softmax_at(nt_logits[0], 2) + log_softmax_at(nt_logits[1], 0)
                + log_softmax_at(et_01, 1))
    assert got.item() == pytest.approx(expected, abs=1e-12)
    # without the type terms only the first two lines remain
    plain = padded_graph_log_prob(torch.tensor(nu), edge_logits, target.mask, target.adj)
    assert plain.item() == pytest.approx(
        log_sigmoid(0.5) + log_sigmoid(-1.0) + log_sigmoid(-2.0) + log_sigmoid(0.3), abs=1e-12)
    # the model's log_likelihood broadcasts S decoded samples against K targets
    logits = GraphLogits(torch.tensor([nu, nu]), edge_logits.expand(2, 3, 3),
                         torch.tensor(nt_logits).expand(2, 3, 3), et_logits.expand(2, 3, 3, 2))
    stack = target.permute(torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 0]]))
    ll = model.log_likelihood(logits, stack)
    assert ll.shape == (2, 3)
    assert ll[0, 0].item() == pytest.approx(expected, abs=1e-12)
    assert torch.equal(ll[0], ll[1])
    # swapping the two real nodes: types and existence move, the edge stays
    swapped = (log_sigmoid(0.5) + log_sigmoid(-1.0) + log_sigmoid(-2.0) + log_sigmoid(0.3)
               + log_softmax_at(nt_logits[0], 0) + log_softmax_at(nt_logits[1], 2)
               + log_softmax_at(et_01, 1))
    assert ll[0, 1].item() == pytest.approx(swapped, abs=1e-12)
    # slot 0 is empty in the third target: node 1 sits at slot 1, node 0 at slot 2
    third = (log_sigmoid(-0.5) + log_sigmoid(-1.0) + log_sigmoid(2.0) + log_sigmoid(1.1)
             + log_softmax_at(nt_logits[1], 0) + log_softmax_at(nt_logits[2], 2)
             + float(torch.log_softmax(et_logits[1, 2], 0)[1]))
    assert ll[0, 2].item() == pytest.approx(third, abs=1e-12)


# ---------------------------------------------------------------- the exact bound

@pytest.mark.parametrize("n", [3, 4, 5, 6])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_bound_is_log_sum_exp_over_every_relabelling(n, seed):
    model = small_model(n, seed)
    ei = some_graph(n, seed)
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    eps = torch.randn(1, 4, generator=torch.Generator().manual_seed(seed + 7))
    perms = all_permutations(n)
    exact = model.bound(x, Adjacency(ei, n), perms, eps=eps).value
    plain, seen = [], set()
    for p in perms:
        xp, eip, _ = permute_graph(p, x, ei)
        key = frozenset(map(tuple, eip.t().tolist()))
        if key not in seen:                   # each distinct labelled graph once
            seen.add(key)
            plain.append(model.bound(xp, Adjacency(eip, n), eps=eps).value)
    assert len(plain) == math.factorial(n) // automorphisms(ei, n)   # the orbit's size
    brute = torch.logsumexp(torch.stack(plain), 0)
    assert exact.dtype == torch.float64
    assert exact.item() == pytest.approx(brute.item(), abs=1e-9)
    # the plain ELBOs really differ between relabellings (the model is not equivariant)
    assert max(plain).item() - min(plain).item() > 1e-3
    # and the exact bound is the same for P A Pᵀ
    for q in random_permutations(n, 3, torch.Generator().manual_seed(seed)):
        xq, eiq, _ = permute_graph(q, x, ei)
        other = model.bound(xq, Adjacency(eiq, n), perms, eps=eps).value
        assert other.item() == pytest.approx(exact.item(), abs=1e-9)


def test_exact_bound_is_the_unlabelled_graphs_log_probability_by_brute_force():
    """Where the ELBO is exact (q = the prior, a decoder that ignores z), the bound over all
    k! slot relabellings must equal log p of the unlabelled graph: the sum of p over every
    distinct padded graph isomorphic to it, found here by enumerating all 4-slot graphs
    (2⁴ masks × edges) and grouping them with networkx. Counting the relabellings that give
    the same graph (automorphisms, padding shuffles) would put it up to log(24) above."""
    import itertools
    k = 4
    model = GraphVAE(1, k, latent_channels=2)
    with torch.no_grad():
        model.decoder[-1].weight.zero_()                  # p(G | z) does not depend on z
        model.decoder[-1].bias.normal_(generator=torch.Generator().manual_seed(0))
        model.head[-1].weight.zero_()                     # q(z | G) = N(0, I) = the prior
        model.head[-1].bias.zero_()
    with torch.no_grad():
        logits = model.decode(torch.zeros(2))
    classes: list[list] = []                              # [graph, total probability]
    for bits in itertools.product([0, 1], repeat=k):
        slots = [i for i in range(k) if bits[i]]
        pairs = list(itertools.combinations(slots, 2))
        for on in itertools.product([0, 1], repeat=len(pairs)):
            adj = torch.zeros(k, k)
            edges = [p for p, e in zip(pairs, on) if e]
            for a, b in edges:
                adj[a, b] = adj[b, a] = 1
            p = math.exp(padded_graph_log_prob(logits.node, logits.edge,
                                               torch.tensor(bits, dtype=torch.float64), adj))
            g = nx.Graph(edges)
            g.add_nodes_from(slots)
            hit = next((c for c in classes if nx.is_isomorphic(c[0], g)), None)
            if hit is None:
                classes.append([g, p])
            else:
                hit[1] += p
    assert sum(c[1] for c in classes) == pytest.approx(1.0, abs=1e-12)
    assert len(classes) == 1 + 1 + 2 + 4 + 11            # graphs on 0 … 4 nodes
    eps = torch.zeros(1, 2)
    for g, p in classes:
        n = g.number_of_nodes()        # n = 0 too: the sampler draws the empty graph
        g = nx.convert_node_labels_to_integers(g)
        ei = undirected(list(g.edges), n) if g.number_of_edges() else \
            torch.empty(2, 0, dtype=torch.long)
        exact = model.bound(torch.ones(n, 1), Adjacency(ei, n), all_permutations(k), eps=eps)
        assert exact.value.item() == pytest.approx(math.log(p), abs=1e-9), (n, list(g.edges))
    # the empty graph's probability is that of no slot kept: Π (1 − σ(ν_i)), by hand
    empty = torch.sigmoid(-logits.node.double()).prod().item()
    assert classes[0][0].number_of_nodes() == 0 and classes[0][1] == pytest.approx(empty)
    # every objective's training bound takes the sampled empty graph (it was refused)
    for objective in ("plain", "matched", "permutation"):
        model.objective = objective
        nothing = Adjacency(torch.empty(2, 0, dtype=torch.long), 0)
        perms = model.training_permutations(torch.ones(0, 1), nothing)
        got = model.bound(torch.ones(0, 1), nothing, perms, eps=eps).value.item()
        assert got == pytest.approx(math.log(empty), abs=1e-9), objective


def test_bound_without_perms_is_the_identity_relabelling(triangle):
    model = small_model(5)
    x = torch.randn(3, 3)
    eps = torch.randn(1, 4)
    adj = Adjacency(triangle, 3)
    a = model.bound(x, adj, eps=eps)
    b = model.bound(x, adj, torch.arange(5)[None], eps=eps)
    assert a.value.item() == b.value.item()
    # ELBO = recon − KL with recon the padded log-likelihood at z = μ + σ ε
    q = model.encode(x, adj)
    z = q.loc + q.scale * eps
    target = model.pad(triangle, 3)
    recon = model.log_likelihood(model.decode(z), target.permute(torch.arange(5)[None]))
    assert a.value.item() == pytest.approx((recon.mean() - q.kl_to(model.prior).sum()).item(),
                                           abs=1e-12)


def test_matching_puts_the_real_nodes_on_the_slots_the_decoder_says_exist(monkeypatch):
    """One node, no edges, 3 slots whose predicted existence is 0.1, 0.1, 0.9: the
    matching target marks the node real and the padding absent on its diagonal, so the
    node goes to slot 2 (perm[2] = 0). Without the marks every slot counts as real and
    nothing tells the node from the padding (the identity came back: padding in slot 2)."""
    model = small_model(3)
    pred = torch.diag(torch.tensor([0.1, 0.1, 0.9]))
    monkeypatch.setattr(model, "edge_probabilities", lambda z, lg=None: pred)
    lone = Adjacency(torch.zeros(2, 0, dtype=torch.long), 1)
    perm = model.matched_permutation(torch.ones(1, 3), lone)
    assert int(perm[2]) == 0, perm


def test_samples_take_the_types_and_probabilities_of_their_own_slots(monkeypatch):
    """A decoding whose slot 0 is absent (node logit −50), slots 1 and 2 present (+50),
    every edge likely (logit 50) and node-type logits that pick type a at slot a: each
    sample has two nodes of types 1 and 2, the kept slots' own (the first two slots'
    types, 0 and 1, passed before), joined by an edge, and its edge probabilities have a
    zero diagonal (the slots' existence probabilities, 1 here, passed there)."""
    model = small_model(3, node_types=3)
    logits = GraphLogits(torch.tensor([-50., 50, 50]), torch.full((3, 3), 50.), 50 * torch.eye(3))
    monkeypatch.setattr(model, "decode", lambda z: logits)
    for g in model.sample(3, generator=torch.Generator().manual_seed(0)):
        assert g.node_types.tolist() == [1, 2]
        assert g.adj.tolist() == [[0, 1], [1, 0]]
        assert g.edge_prob.tolist() == [[0, 1], [1, 0]]


# ---------------------------------------------------------------- sampled bounds

K = 5                                                      # padded slots: 5! = 120 relabellings


@pytest.mark.parametrize("n", [3, 4, 5])
@pytest.mark.parametrize("seed", range(4))
def test_sampled_bounds_never_exceed_the_exact_bound(n, seed):
    model = small_model(K, seed)
    gen = torch.Generator().manual_seed(100 + seed)
    ei = some_graph(n, seed)
    x = torch.randn(n, 3, generator=gen)
    adj = Adjacency(ei, n)
    eps = torch.randn(1, 4, generator=gen)
    exact = model.bound(x, adj, all_permutations(K), eps=eps).value.item()
    families = {
        "canonical": extend(canonical_orderings(ei, n), K),
        "matched": model.matched_permutation(x, adj)[None],
    }
    for draws in (1, 4, 16, 64):
        families[f"slots{draws}"] = torch.unique(random_permutations(K, draws, gen), dim=0)
        families[f"nodes{draws}"] = extend(
            torch.unique(random_permutations(n, draws, gen), dim=0), K)
    for name, perms in families.items():
        assert torch.equal(perms.sort(1).values, torch.arange(K).expand_as(perms)), name
        assert len({tuple(r) for r in perms.tolist()}) == perms.size(0), name
        value = model.bound(x, adj, perms, eps=eps).value.item()
        assert value <= exact + 1e-12, (name, value, exact)
    # every one of the k! slots, in any order, is the exact bound
    shuffled = all_permutations(K)[torch.randperm(120, generator=gen)]
    assert model.bound(x, adj, shuffled, eps=eps).value.item() == pytest.approx(exact, abs=1e-9)


def test_sampled_bound_with_repeated_draws_stays_below_exact():
    k = 3
    model = small_model(k, 0)
    ei = random_graph(3, 1.0, 0)                            # a triangle
    x = torch.randn(3, 3)
    eps = torch.randn(1, 4)
    adj = Adjacency(ei, 3)
    exact = model.bound(x, adj, all_permutations(k), eps=eps).value.item()
    perms = random_permutations(k, 64, torch.Generator().manual_seed(0))
    assert model.bound(x, adj, perms, eps=eps).value.item() <= exact + 1e-12


def test_log_mean_exp_bound_is_below_exact_in_expectation_and_rises_with_draws():
    k, n = 4, 4
    model = small_model(k, 3)
    with torch.no_grad():                                   # spread the ELBOs of relabellings
        model.decoder[-1].weight.mul_(3.0)
    ei = undirected([(0, 1), (1, 2), (2, 3), (1, 3)], n)
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    adj = Adjacency(ei, n)
    eps = torch.randn(1, 4, generator=torch.Generator().manual_seed(1))
    everything = all_permutations(k)
    assert automorphisms(ei, n) == 2                        # 2 and 3 swap
    # the distinct labelled graphs: k! / |Aut(G)| = 12; the mean over all k! relabellings
    # counts each twice, so log-mean-exp + log 12 estimates the exact bound
    log_labellings = math.log(math.factorial(k) / 2)
    exact = model.bound(x, adj, everything, eps=eps).value.item()
    # the ELBO of each relabelling on its own
    elbos = torch.stack([model.bound(x, adj, p[None], eps=eps).value for p in everything])
    elbos = elbos.detach()
    assert torch.logsumexp(elbos, 0).item() == pytest.approx(exact + math.log(2), abs=1e-9)
    # all k! rows with mean=True: the log-mean-exp, exactly exact − log(k!/|Aut(G)|)
    lme = model.bound(x, adj, everything, mean=True, eps=eps).value.item()
    assert lme + log_labellings == pytest.approx(exact, abs=1e-9)

    gen = torch.Generator().manual_seed(2)
    # the API's mean=True value is the log-mean-exp of the drawn rows' ELBOs
    for draws in (1, 4, 16, 64):
        perms = random_permutations(k, draws, gen)
        idx = torch.tensor([everything.tolist().index(r) for r in perms.tolist()])
        value = model.bound(x, adj, perms, mean=True, eps=eps).value.item()
        expected = (torch.logsumexp(elbos[idx], 0) - math.log(draws)).item()
        assert value == pytest.approx(expected, abs=1e-9)
    # Monte Carlo over many draws (common random numbers across K), using those ELBOs
    trials = 100_000
    idx = torch.randint(0, everything.size(0), (trials, 64), generator=gen)
    means, ses, values = [], [], {}
    for draws in (1, 4, 16, 64):
        v = torch.logsumexp(elbos[idx[:, :draws]], 1) - math.log(draws) + log_labellings
        values[draws] = v
        means.append(v.mean().item())
        ses.append(v.std().item() / math.sqrt(trials))
    # E[value + log(k!/|Aut|)] ≤ exact (Jensen), up to Monte Carlo error; K = 1: plain mean
    assert means[0] == pytest.approx(elbos.mean().item() + log_labellings, abs=5 * ses[0])
    assert exact - elbos.mean().item() - log_labellings > 0.05           # a visible Jensen gap
    for m, se in zip(means, ses):
        assert m <= exact + 4 * se
    # and it rises with K (each step well beyond the Monte Carlo error of the difference)
    ks = (1, 4, 16, 64)
    for a, b in zip(ks, ks[1:]):
        diff = values[b] - values[a]
        assert diff.mean().item() > 4 * diff.std().item() / math.sqrt(trials), (a, b)


# ---------------------------------------------------------------- training

def test_adam_on_the_exact_bound_increases_it():
    k = 4
    model = small_model(k, 0)
    ei = undirected([(0, 1), (1, 2), (2, 3)], 4)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    adj = Adjacency(ei, 4)
    perms = all_permutations(k)
    eps = torch.zeros(1, 4)                                 # z = μ: a deterministic objective
    before = model.bound(x, adj, perms, eps=eps).value.item()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        opt.zero_grad()
        est = model.bound(x, adj, perms, generator=gen)     # a fresh ε each step
        assert torch.isfinite(est.surrogate)
        est.surrogate.backward()
        opt.step()
    after = model.bound(x, adj, perms, eps=eps).value.item()
    assert after > before + 1.0, (before, after)
    # the bound is a log-probability bound of a discrete graph: it stays ≤ 0 + log k!
    assert after <= math.log(math.factorial(k))


@pytest.mark.parametrize("objective", ["plain", "matched", "permutation"])
def test_forward_is_the_bound_over_its_training_permutations(path3, objective):
    """The protocol's forward(batch): per graph, the bound over the relabellings its
    objective names (none / the matched one / canonical orderings + random ones), drawn
    from the same generator in the same order; the loss is the mean negated bound."""
    from graphvae.containers import GraphBatch, GraphTensors
    model = small_model(4)
    model.objective, model.num_perms = objective, 3
    x = torch.randn(3, 3)
    adj = Adjacency(path3, 3)
    batch = GraphBatch.collate([GraphTensors(3, path3)] * 2, [x, x])
    out = model(batch, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    expected = [model.bound(x, adj, model.training_permutations(x, adj, gen), generator=gen)
                for _ in range(2)]
    assert out.value.tolist() == [e.value.item() for e in expected]
    assert out.surrogate.item() == pytest.approx(-out.value.mean().item(), abs=1e-12)


def test_training_permutations_by_objective_worked_out_by_hand(path3, monkeypatch):
    """What each objective sums over, on the path 0-1-2 padded to 4 slots: the plain ELBO
    none; "permutation" the path's one canonical ordering (BFS, DFS, degree and k-core all
    start at the centre 1: [1, 0, 2]) then ``num_perms`` random orderings of the three
    nodes, slot 3 (padding) fixed; "matched" the relabelling that puts the target on the
    decoded graph, here a decoded path with its centre in slot 3 and slot 1 empty."""
    model = small_model(4)
    x = torch.randn(3, 3)
    adj = Adjacency(path3, 3)
    model.objective = "plain"
    assert model.training_permutations(x, adj) is None
    model.objective, model.num_perms = "permutation", 3
    perms = model.training_permutations(x, adj, torch.Generator().manual_seed(0))
    assert perms.shape == (4, 4)
    assert perms[0].tolist() == [1, 0, 2, 3]
    for row in perms[1:].tolist():
        assert sorted(row[:3]) == [0, 1, 2] and row[3] == 3
    # the decoded graph: slots 0, 2, 3 present, edges 3-0 and 3-2
    pred = torch.full((4, 4), 0.05)
    pred[3, 0] = pred[0, 3] = pred[3, 2] = pred[2, 3] = 0.9
    pred[0, 0] = pred[2, 2] = pred[3, 3] = 0.95
    monkeypatch.setattr(model, "edge_probabilities", lambda z: pred)
    model.objective = "matched"
    (perm,) = model.training_permutations(x, adj).tolist()
    # slot i of the relabelled target holds target slot perm[i]: the centre (node 1) in
    # slot 3, the ends in slots 0 and 2 (either way: the path's automorphism), padding in 1
    assert perm[3] == 1 and perm[1] == 3 and {perm[0], perm[2]} == {0, 2}


def test_sampling_draws_the_types_the_likelihood_scores():
    """With types, sample() drew none (the likelihood scores them). At a fixed z the
    expected counts have closed forms: node type t, Σ_i σ(ν_i) softmax(T_i)[t]; edges of
    type r, Σ_{i<j} σ(ν_i) σ(ν_j) σ(e_ij) softmax(R_ij)[r]. Their sample means over 5,000
    graphs agree within 5 standard errors."""
    torch.manual_seed(0)
    model = GraphVAE(3, 3, latent_channels=2, hidden_channels=[4], decoder_hidden=[8],
                     node_types=2, edge_types=3)
    z = torch.randn(2)
    model.prior.sample = lambda shape, generator=None, device="cpu": z
    with torch.no_grad():
        lg = model.decode(z)
        node, edge = torch.sigmoid(lg.node), torch.sigmoid(lg.edge)
        want_nodes = (node[:, None] * torch.softmax(lg.node_type, -1)).sum(0)
        iu = torch.triu_indices(3, 3, 1)
        pair = node[iu[0]] * node[iu[1]] * edge[iu[0], iu[1]]
        want_edges = (pair[:, None] * torch.softmax(lg.edge_type[iu[0], iu[1]], -1)).sum(0)
    graphs = model.sample(5_000, torch.Generator().manual_seed(1))
    nodes = torch.stack([torch.bincount(g.node_types, minlength=2) for g in graphs]).double()
    edges = torch.stack([torch.bincount(g.bond_types[torch.triu(g.adj, 1) > 0] - 1,
                                        minlength=3) for g in graphs]).double()
    for got, want in ((nodes, want_nodes), (edges, want_edges)):
        se = got.std(0) / math.sqrt(got.size(0))
        assert ((got.mean(0) - want.double()).abs() < 5 * se).all(), (got.mean(0), want)
    for g in graphs[:50]:                     # codes 1..R on edges only, symmetric
        assert torch.equal(g.bond_types > 0, g.adj > 0) and torch.equal(g.bond_types,
                                                                        g.bond_types.T)
        assert g.node_types.numel() == g.num_nodes


@pytest.mark.parametrize("objective", ["matched", "permutation", "plain"])
def test_a_typed_graphvae_trains_under_each_objective(path3, objective):
    """The matching builds the padded structure alone: it went through pad(), which since
    it refuses an untyped graph on a typed model stopped every matched training step."""
    from graphvae.containers import GraphBatch, GraphTensors
    model = small_model(4, node_types=3, edge_types=2, objective=objective)
    g = GraphTensors(3, path3, torch.tensor([2, 0, 1]), torch.tensor([1, 1, 0, 0]))
    est = model(GraphBatch.collate([g], [torch.randn(3, 3)]))
    assert torch.isfinite(est.value).all()
    est.surrogate.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(bool(g.abs().sum() > 0) for g in grads)      # the step moves the model


def test_padded_graphs_that_differ_only_in_edge_types_are_distinct():
    """Path 0-1-2 with bond types 0 (0-1) and 1 (1-2) and its reversal: the same mask and
    adjacency, but the reversal moves type 1 onto pair (0, 1): two different labelled
    graphs, both kept by ``distinct`` (indices [0, 1])."""
    et = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0]])
    adj = torch.tensor([[0., 1, 0], [1, 0, 1], [0, 1, 0]])
    g = PaddedGraph(torch.ones(3), adj, torch.zeros(3, dtype=torch.long), et)
    stack = g.permute(torch.tensor([[0, 1, 2], [2, 1, 0], [0, 1, 2]]))
    assert stack.distinct().tolist() == [0, 1]


def test_pad_refuses_a_type_equal_to_the_number_of_types():
    """Types of a model with T = 2 node types and R = 2 edge types lie in 0..1: a type 2
    is out of range and refused, for nodes and for edges."""
    model = GraphVAE(1, 4, latent_channels=2, hidden_channels=(4,), decoder_hidden=(8,),
                     node_types=2, edge_types=2)
    ei = undirected([(0, 1)], 2)
    with pytest.raises(ValueError, match="node_types must lie in 0..1"):
        model.pad(ei, 2, torch.tensor([0, 2]), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="edge_types must lie in 0..1"):
        model.pad(ei, 2, torch.tensor([0, 1]), torch.tensor([2, 2]))
