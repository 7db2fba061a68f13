import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import random_graph, undirected

from graphvae.adjacency import Adjacency
from graphvae.containers import EdgeStats, LinkBatch, PairSample
from graphvae.decoders import (
    EDGE_DECODERS,
    CosineBiasDecoder,
    GNNFeatureDecoder,
    InnerProductDecoder,
    MLPInnerProductDecoder,
    VMFBiasDecoder,
)
from graphvae.encoders import ENCODERS, build_encoder
from graphvae.graph import edge_index_to_dense, permute_graph
from graphvae.models import EdgeObjective, build_model
from graphvae.models.autoencoders import GraphAutoencoder

pytestmark = pytest.mark.usefixtures("float64")


def test_gcn_operator_on_path_by_hand(path3):
    # degrees with self-loops: 2, 3, 2
    op = Adjacency(path3, 3).gcn_operator().to_dense()
    r6 = 1 / math.sqrt(6)
    expected = torch.tensor([[0.5, r6, 0.0], [r6, 1 / 3, r6], [0.0, r6, 0.5]])
    assert torch.allclose(op.double(), expected, atol=1e-6)


@pytest.mark.parametrize("directed", [False, True])
def test_propagate_and_its_gradient_equal_the_dense_product(directed):
    """``Adjacency.propagate``'s hand-written backward (``Âᵀ g`` from a cached transpose)
    against autograd through the dense ``Â``; directed: ``Â`` is not symmetric."""
    g = torch.Generator().manual_seed(0)
    ei = random_graph(7, 0.4, seed=3)
    if directed:
        ei = ei[:, ei[0] < ei[1]]                        # one direction only
    adj = Adjacency(ei, 7)
    a = adj.gcn_operator(torch.float64).to_dense()
    assert torch.equal(a, a.t()) != directed
    assert (adj.gcn_operator_t(torch.float64) is adj.gcn_operator(torch.float64)) != directed
    h = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 3, generator=g, dtype=torch.float64)
    (adj.propagate(h) * w).sum().backward()
    h2 = h.detach().clone().requires_grad_(True)
    (a @ h2 * w).sum().backward()
    torch.testing.assert_close(adj.propagate(h.detach()), a @ h.detach())
    torch.testing.assert_close(h.grad, h2.grad)
    torch.testing.assert_close(h.grad, a.t() @ w)        # by hand: d/dh Σ w ∘ (Â h) = Âᵀ w
    assert torch.autograd.gradcheck(adj.propagate, (h.detach().requires_grad_(True),))


@pytest.mark.parametrize("widths", [(5, 3), (2, 6)], ids=["narrowing", "widening"])
def test_gcn_layer_orders_and_kept_input_equal_the_dense_formula(widths):
    """``GCNLayer`` against ``Â X W + b`` with the dense ``Â``: for a data input (``Â X``
    kept on the graph), a widening layer (``Â`` before ``W``) and a narrowing one, values
    and weight gradients; the kept ``Â X`` follows an in-place change of ``X``."""
    from graphvae.encoders import GCNLayer
    g = torch.Generator().manual_seed(1)
    ei = random_graph(8, 0.4, seed=2)
    adj = Adjacency(ei, 8)
    a = adj.gcn_operator(torch.float64).to_dense()
    layer = GCNLayer(*widths, bias=True)
    x = torch.randn(8, widths[0], generator=g, dtype=torch.float64)
    ref = GCNLayer(*widths, bias=True)
    ref.load_state_dict(layer.state_dict())
    for data in (True, False):
        layer.zero_grad()
        out = layer(x, adj, data=data)
        expected = a @ x @ ref.weight + ref.bias
        torch.testing.assert_close(out, expected)
        out.pow(2).sum().backward()
        ref.zero_grad()
        expected.pow(2).sum().backward()
        torch.testing.assert_close(layer.weight.grad, ref.weight.grad)
    kept = adj.propagate_input(x)
    assert adj.propagate_input(x) is kept                 # computed once
    x.mul_(2.0)                                          # in place: the version moves on
    torch.testing.assert_close(layer(x, adj, data=True), a @ x @ ref.weight + ref.bias)
    torch.testing.assert_close(adj.propagate_input(x), 2 * kept)


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("variational", [True, False])
def test_encoders_are_equivariant(name, variational):
    torch.manual_seed(0)
    n = 9
    ei = random_graph(n, 0.35, seed=3)
    x = torch.randn(n, 5)
    enc = build_encoder(name, 5, (8,), 4, variational=variational).eval()
    perm = torch.randperm(n)
    xp, eip, _ = permute_graph(perm, x, ei)
    q, qp = enc(x, Adjacency(ei, n)), enc(xp, Adjacency(eip, n))
    assert torch.allclose(qp.loc, q.loc[perm], atol=1e-10)
    if variational:
        assert torch.allclose(qp.logvar, q.logvar[perm], atol=1e-10)
    # no state kept between calls: a second call gives the same answer
    assert torch.equal(enc(x, Adjacency(ei, n)).loc, q.loc)


def _dense_gcn(adj: Adjacency) -> torch.Tensor:
    return adj.gcn_operator(torch.float64).to_dense()


@pytest.mark.parametrize("name, hidden", [("gcn", (5, 4)), ("gcn-bias", (5,)), ("linear", (5,))])
def test_gcn_encoders_by_the_dense_formula(name, hidden):
    """The GCN template, written out with the dense Â: every hidden layer ``H ← ReLU(Â H W +
    b)``, then ``[μ, log σ²] = Â H W + b`` split in that order (``gcn`` has no bias,
    ``gcn-bias`` has one, ``linear`` is the one layer ``Â X W`` whatever widths it is
    given). Dropout acts in training only."""
    g = torch.Generator().manual_seed(4)
    adj = Adjacency(random_graph(7, 0.4, seed=5), 7)
    a = _dense_gcn(adj)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    enc = build_encoder(name, 3, hidden, 2, dropout=0.5).double().eval()
    with torch.no_grad():
        for p in enc.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    layers = [*enc.layers, enc.head]
    assert len(layers) == (1 if name == "linear" else len(hidden) + 1)
    assert all((layer.bias is not None) == (name == "gcn-bias") for layer in layers)
    h = x
    for k, layer in enumerate(layers):
        h = a @ h @ layer.weight + (0 if layer.bias is None else layer.bias)
        if k < len(layers) - 1:
            h = h.relu()
    q = enc(x, adj)
    torch.testing.assert_close(q.loc, h[:, :2], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q.logvar, h[:, 2:], rtol=1e-12, atol=1e-12)
    if name != "linear":                          # (one layer: no dropout between layers)
        enc.train()
        torch.manual_seed(0)
        assert not torch.allclose(enc(x, adj).loc, q.loc, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoders_use_no_dropout_at_evaluation(name):
    """An encoder built with dropout 0.5 gives at evaluation what the same weights give
    without dropout."""
    torch.manual_seed(0)
    adj = Adjacency(random_graph(9, 0.35, seed=3), 9)
    x = torch.randn(9, 5)
    with_dropout = build_encoder(name, 5, (8,), 4, dropout=0.5).eval()
    without = build_encoder(name, 5, (8,), 4, dropout=0.0).eval()
    without.load_state_dict(with_dropout.state_dict())
    torch.testing.assert_close(with_dropout(x, adj).loc, without(x, adj).loc, rtol=0, atol=0)


def test_an_input_that_needs_its_gradient_gets_it_and_the_kept_product_stays():
    """The first GCN layer keeps ``Â X`` for a data input, which is not differentiable in
    ``X``: an input that asks for its gradient (a saliency map, an attack) is propagated
    afresh each call and gets its gradient, by hand ``Âᵀ (g W₀ᵀ)`` for a linear encoder;
    at evaluation the kept ``Â X`` of the features survives the encoder's later layers."""
    g = torch.Generator().manual_seed(2)
    adj = Adjacency(random_graph(6, 0.5, seed=1), 6)
    a = _dense_gcn(adj)
    enc = build_encoder("linear", 3, (), 2).double()
    x = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    for _ in range(2):
        x.grad = None
        enc(x, adj).loc.sum().backward()
        w = enc.head.weight[:, :2].detach()
        torch.testing.assert_close(x.grad, a.t() @ torch.ones(6, 2, dtype=torch.float64) @ w.t())
    deep = build_encoder("gcn", 3, (4, 4), 2).double().eval()
    data = x.detach().clone()
    kept = adj.propagate_input(data)
    with torch.no_grad():
        deep(data, adj)
        deep(data, adj)
    assert adj.propagate_input(data) is kept


def test_gin_layers_are_two_layer_mlps():
    """GIN's update is an MLP (Xu et al. 2019: two layers, a ReLU between)."""
    enc = build_encoder("gin", 3, (8,), 2)
    mlp = enc.layers[0].conv.nn
    assert [type(m).__name__ for m in mlp] == ["Linear", "ReLU", "Linear"]
    assert (mlp[0].in_features, mlp[0].out_features, mlp[2].out_features) == (3, 8, 8)


def test_encoder_accepts_sparse_features_and_edge_index():
    torch.manual_seed(0)
    ei = random_graph(7, 0.4, seed=1)
    x = (torch.rand(7, 6) < 0.3).double()
    enc = build_encoder("gcn", 6, (8,), 3).eval()
    dense = enc(x, ei).loc
    sparse = enc(x.to_sparse_csr(), Adjacency(ei, 7)).loc
    assert torch.allclose(dense, sparse, atol=1e-10)
    for name in sorted(ENCODERS):                 # (GNAE's linear map has a bias)
        enc = build_encoder(name, 6, (8,), 3).double().eval()
        torch.testing.assert_close(enc(x.to_sparse(), ei).loc, enc(x, ei).loc)


@pytest.mark.parametrize("make", [InnerProductDecoder, lambda: MLPInnerProductDecoder(4, (6,), 3),
                                  CosineBiasDecoder, VMFBiasDecoder])
def test_edge_decoders_pairs_agree_with_all_pairs_and_are_equivariant(make):
    torch.manual_seed(0)
    dec = make()
    z = torch.randn(6, 4)
    full = dec.forward_all(z)
    pairs = torch.cartesian_prod(torch.arange(6), torch.arange(6)).t()
    assert torch.allclose(dec(z, pairs), full.flatten())
    perm = torch.randperm(6)
    assert torch.allclose(dec.forward_all(z[perm]), full[perm][:, perm])
    # batched latents (S, n, k)
    zs = torch.randn(3, 6, 4)
    assert torch.allclose(dec(zs, pairs)[1], dec.forward_all(zs[1]).flatten())


def test_cosine_bias_by_hand(triangle):
    # z_i = (u_i, β_i): cos(u_0, u_1) = 0, cos(u_0, u_2) = 1/√2, cos(u_1, u_2) = 1/√2
    z = torch.tensor([[3.0, 0.0, 0.5], [0.0, 2.0, -1.0], [1.0, 1.0, 2.0]])
    dec = CosineBiasDecoder()
    with torch.no_grad():
        dec.log_temperature.fill_(math.log(4.0))
        dec.offset.fill_(-1.0)
    logits = dec(z, triangle)
    r = 1 / math.sqrt(2)
    expected = {(0, 1): 0.0 + 0.5 - 1.0 - 1.0, (0, 2): 4 * r + 0.5 + 2.0 - 1.0,
                (1, 2): 4 * r - 1.0 + 2.0 - 1.0}
    for (i, j), v in zip(triangle.t().tolist(), logits.tolist()):
        assert v == pytest.approx(expected[(min(i, j), max(i, j))], abs=1e-6)
    h, b = dec.pair_form(z)   # the same logits up to the offset
    torch.testing.assert_close(h @ h.t() + b[:, None] + b[None, :] - 1.0, dec.forward_all(z))
    with pytest.raises(ValueError, match="latent width of at least 2"):
        dec(torch.ones(3, 1), triangle)


def test_vmf_bias_by_hand(triangle):
    # the same latents as above: cos(u_0, u_1) = 0, cos(u_0, u_2) = cos(u_1, u_2) = 1/√2
    z = torch.tensor([[3.0, 0.0, 0.5], [0.0, 2.0, -1.0], [1.0, 1.0, 2.0]])
    dec = VMFBiasDecoder(kappa=2.0)
    with torch.no_grad():
        dec.log_temperature.fill_(math.log(4.0))
        dec.offset.fill_(-1.0)
    r = 1 / math.sqrt(2)
    kern = {0.0: 4 * (math.exp(-2.0) - 1) / 2, r: 4 * (math.exp(2 * (r - 1)) - 1) / 2}
    expected = {(0, 1): kern[0.0] + 0.5 - 1.0 - 1.0, (0, 2): kern[r] + 0.5 + 2.0 - 1.0,
                (1, 2): kern[r] - 1.0 + 2.0 - 1.0}
    logits = dec(z, triangle)
    for (i, j), v in zip(triangle.t().tolist(), logits.tolist()):
        assert v == pytest.approx(expected[(min(i, j), max(i, j))], abs=1e-6)
    h, b = dec.pair_form(z)   # unit rows, the node terms, and the kernel as the transform
    torch.testing.assert_close(h.norm(dim=1), torch.ones(3))
    g = dec.pair_transform()
    torch.testing.assert_close(g(h @ h.t()) + b[:, None] + b[None, :] - 1.0,
                               dec.forward_all(z))
    # κ → 0: the cosine-bias decoder with the same temperature, shifted by −e^τ
    small = VMFBiasDecoder(kappa=1e-7)
    cos = CosineBiasDecoder()
    with torch.no_grad():
        small.log_temperature.fill_(math.log(4.0))
        cos.log_temperature.fill_(math.log(4.0))
    torch.testing.assert_close(small.forward_all(z), cos.forward_all(z) - 4.0, atol=1e-5,
                               rtol=0)
    with pytest.raises(ValueError, match="latent width of at least 2"):
        dec(torch.ones(3, 1), triangle)
    for kappa in (0.0, float("inf"), float("nan")):     # inf gave NaN logits on the diagonal
        with pytest.raises(ValueError, match="kappa must be a finite number > 0"):
            VMFBiasDecoder(kappa=kappa)


def test_encoders_refuse_impossible_settings():
    """GNAE with steps 0 skipped its propagation (no longer GNAE), alpha 5 and scale NaN
    were taken; a dropout of 1.5 built an encoder that failed at its first step."""
    from graphvae.encoders.gnn import GNAEEncoder, GNNEncoder

    for kwargs in ({"steps": 0}, {"steps": -2}, {"steps": 1.5}):
        with pytest.raises(ValueError, match="GNAE steps must be a whole number >= 1"):
            GNAEEncoder(3, (), 4, **kwargs)
    for kwargs in ({"alpha": 5.0}, {"scale": float("nan")}, {"scale": 0.0}):
        with pytest.raises(ValueError, match=r"GNAE needs alpha in \[0, 1\] and a finite"):
            GNAEEncoder(3, (), 4, **kwargs)
    for cls in (GNAEEncoder, GNNEncoder):
        for p in (1.5, 1.0, -0.1, float("nan")):
            with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
                cls(3, (), 4, dropout=p)
    assert GNAEEncoder(3, (), 4, steps=3, alpha=0.1).steps == 3
    import numpy as np
    assert GNAEEncoder(3, (), 4, steps=np.int64(2)).steps == 2      # numpy integers too


def test_gnae_propagation_by_hand():
    """GNAE's code is s · X W / |X W| a row, then APPNP steps h ← (1 − α) Â h + α h₀ with
    Â = D^-½ (A + I) D^-½. On the path 0-1-2 (degrees with self-loops 2, 3, 2) with
    W = 1, b = 0, x = 1: h₀ = 1.8 everywhere, and one step with α = 1/4 gives node 0
    1.8 (¾ (½ + 1/√6) + ¼) and node 1 1.8 (¾ (⅓ + 2/√6) + ¼). Without edges Â = I, and
    every node's code has norm exactly s."""
    from graphvae.encoders.gnn import GNAEEncoder
    enc = GNAEEncoder(1, (), 1, alpha=0.25).double()
    with torch.no_grad():
        enc.lin.weight.fill_(1.0)
        enc.lin.bias.zero_()
    path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    loc = enc(torch.ones(3, 1, dtype=torch.float64), path).mean.detach().reshape(-1)
    r6 = math.sqrt(6)
    want = [1.8 * (0.75 * (0.5 + 1 / r6) + 0.25), 1.8 * (0.75 * (1 / 3 + 2 / r6) + 0.25)]
    assert loc[:2].tolist() == pytest.approx(want, rel=1e-12)
    assert float(loc[2]) == pytest.approx(want[0], rel=1e-12)          # the path's symmetry
    var = GNAEEncoder(1, (), 1, alpha=0.25, variational=True).double()
    two = GNAEEncoder(1, (), 1, steps=2).double()
    with torch.no_grad():
        for e in (var, two):
            e.load_state_dict(enc.state_dict(), strict=False)
        var.lin_logvar.weight.fill_(1.0)
        var.lin_logvar.bias.zero_()
    # log σ² = Â (X W' + b') with the same steps: W' = 1 gives μ / 1.8
    logvar = var(torch.ones(3, 1, dtype=torch.float64), path).logvar.detach().reshape(-1)
    assert logvar.tolist() == pytest.approx([want[0] / 1.8, want[1] / 1.8, want[0] / 1.8],
                                            rel=1e-12)
    # two plain steps: Â² 1.8 · 1, by the dense Â
    a = torch.tensor([[1 / 2, 1 / r6, 0], [1 / r6, 1 / 3, 1 / r6], [0, 1 / r6, 1 / 2]],
                     dtype=torch.float64)
    got = two(torch.ones(3, 1, dtype=torch.float64), path).mean.detach().reshape(-1)
    torch.testing.assert_close(got, 1.8 * a @ a @ torch.ones(3, dtype=torch.float64))
    wide = GNAEEncoder(2, (), 3).double()
    x = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    codes = wide(x, torch.zeros(2, 0, dtype=torch.long)).mean.detach()
    assert torch.linalg.vector_norm(codes, dim=1).tolist() == pytest.approx([1.8] * 3,
                                                                            rel=1e-12)


def test_inner_product_by_hand(triangle):
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    logits = InnerProductDecoder()(z, triangle)
    expected = {(0, 1): 0.0, (0, 2): 1.0, (1, 2): 2.0}
    for (i, j), v in zip(triangle.t().tolist(), logits.tolist()):
        assert v == expected[(min(i, j), max(i, j))]


def test_score_refuses_pairs_outside_the_nodes():
    """``score(z, pairs)`` read a negative index from the end of ``z``: the pair (-1, 0) of
    a 3-node graph scored as (2, 0). By hand, z_2ᵀ z_0 = 1 for the pair that is allowed."""
    model = build_model("gae", 2, "gcn", (4,), 2, decoder="inner")
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    assert model.score(z, torch.tensor([[2], [0]])).tolist() == [1.0]
    with pytest.raises(ValueError, match=r"negative node index \(-1\)"):
        model.score(z, torch.tensor([[-1], [0]]))
    with pytest.raises(ValueError, match="refers to node 3 but the graph has only 3 nodes"):
        model.score(z, torch.tensor([[0], [3]]))


def test_learned_feature_variance_is_floored():
    """A column the mean fits exactly (constant 0.5 here) sent the learned log-variance, and
    the density with it, to infinity; below ``MIN_LOGVAR`` it is now held there. By hand,
    each exactly-fitted entry scores −½ (log 2π + MIN_LOGVAR), and a log-variance of −2
    above the floor is kept: −½ (log 2π − 2 + 0.5² e²) for a residual of 0.5."""
    import math

    from graphvae.likelihoods import MIN_LOGVAR
    dec = GNNFeatureDecoder(3, 2, (4,))
    with torch.no_grad():
        dec.readout.weight.zero_()
        dec.readout.bias.copy_(torch.tensor([0.5, 0.5, -50.0, -2.0]))   # means, log-variances
    n = 3
    ei = torch.tensor([[0, 1], [1, 2]])
    x = torch.tensor([[0.5, 1.0]] * n)
    lp = dec.log_prob(x, torch.randn(n, 3), Adjacency(torch.cat([ei, ei.flip(0)], 1), n))
    one = -0.5 * (math.log(2 * math.pi) + MIN_LOGVAR) \
        - 0.5 * (math.log(2 * math.pi) - 2 + 0.25 * math.exp(2))
    assert MIN_LOGVAR == -7.0
    assert lp.tolist() == pytest.approx([one] * n, abs=1e-5)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_feature_decoder_is_equivariant(likelihood):
    torch.manual_seed(0)
    n = 8
    ei = random_graph(n, 0.4, seed=5)
    dec = GNNFeatureDecoder(3, 4, (6,), likelihood=likelihood)
    z, x = torch.randn(n, 3), (torch.rand(n, 4) < 0.5).double()
    perm = torch.randperm(n)
    xp, eip, _ = permute_graph(perm, x, ei)
    zp = z[perm]
    lp, lpp = dec.log_prob(x, z, Adjacency(ei, n)), dec.log_prob(xp, zp, Adjacency(eip, n))
    assert lp.shape == (n,)
    assert torch.allclose(lpp, lp[perm], atol=1e-10)


def _model(kind, estimator="dense", **kw):
    torch.manual_seed(0)
    return build_model(kind, 5, "gcn", (8,), 4, objective=EdgeObjective(estimator, **kw))


@pytest.mark.parametrize("kind", ["gae", "vgae", "joint"])
def test_bound_is_invariant_under_relabelling(kind):
    n = 8
    ei = random_graph(n, 0.4, seed=2)
    x = torch.randn(n, 5)
    model = _model(kind).eval()
    eps = torch.randn(1, n, 4)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    xp, eip, _ = permute_graph(perm, x, ei)
    out = model.bound(x, Adjacency(ei, n), eps=eps)
    outp = model.bound(xp, Adjacency(eip, n), eps=eps[:, perm])
    assert torch.allclose(out.value, outp.value, atol=1e-10)
    assert torch.allclose(out.surrogate, outp.surrogate, atol=1e-10)


def test_gae_bound_is_recon_and_vgae_bound_is_recon_minus_kl(star5):
    """Each part worked out by hand on the star (self-loops count as edges): the GAE's
    reconstruction at the encoder's mean with no KL; the VGAE's at ``μ + σ ε`` with the
    Gaussian KL ``½ Σ (μ² + σ² − 1 − log σ²)``, and the bound their difference."""
    x = torch.randn(5, 5)
    adj = Adjacency(star5, 5)
    target = edge_index_to_dense(star5, 5) + torch.eye(5)

    def log_lik(z):
        logits = z @ z.t()
        return (target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits)).sum()

    gae = _model("gae").eval()
    out = gae.bound(x, adj)
    assert out.kl.item() == 0
    by_hand = log_lik(gae.encode(x, adj).loc).item()
    assert out.recon.item() == pytest.approx(by_hand, rel=1e-10)
    assert out.value.item() == pytest.approx(by_hand, rel=1e-10)
    vgae = _model("vgae").eval()
    eps = torch.randn(1, 5, 4)
    out = vgae.bound(x, adj, eps=eps)
    q = vgae.encode(x, adj)
    recon = log_lik(q.loc + q.scale * eps[0]).item()
    kl = (0.5 * (q.loc ** 2 + q.logvar.exp() - 1 - q.logvar).sum()).item()
    assert kl > 0
    assert out.recon.item() == pytest.approx(recon, rel=1e-10)
    assert out.kl.item() == pytest.approx(kl, rel=1e-10)
    assert out.value.item() == pytest.approx(recon - kl, rel=1e-10)


def test_vgae_dense_bound_and_loss_by_hand(path3):
    """bound: unweighted Σ_pairs log-Bernoulli − KL; loss: Kipf & Welling's weighted form."""
    model = _model("vgae").eval()
    x = torch.randn(3, 5)
    adj = Adjacency(path3, 3)
    eps = torch.randn(1, 3, 4)
    out = model.bound(x, adj, eps=eps)
    q = model.encode(x, adj)
    z = q.loc + q.scale * eps[0]
    logits = z @ z.t()
    target = edge_index_to_dense(path3, 3) + torch.eye(3)
    pos = (target * torch.log(torch.sigmoid(logits))).sum()
    neg = ((1 - target) * torch.log(torch.sigmoid(-logits))).sum()
    kl = 0.5 * (q.loc ** 2 + q.logvar.exp() - 1 - q.logvar).sum()
    assert out.value.item() == pytest.approx((pos + neg - kl).item(), rel=1e-10)
    # 7 positive pairs (4 ordered edges + 3 self-loops), 2 negatives among 9:
    # pos_weight = 2/7, norm = 9/4, loss = -(norm (w pos + neg) - KL) / 9
    loss = -((9 / 4) * (2 / 7 * pos + neg) - kl) / 9
    assert out.surrogate.item() == pytest.approx(loss.item(), rel=1e-10)


def test_sampled_estimator_never_forms_all_pairs(star5, monkeypatch):
    model = _model("vgae", estimator="sampled")
    def boom(*_):
        raise AssertionError("forward_all called")
    monkeypatch.setattr(model.edge_decoder, "forward_all", boom)
    out = model.bound(torch.randn(5, 5), Adjacency(star5, 5), generator=torch.Generator())
    assert torch.isfinite(out.value)


def test_sampled_and_dense_model_bounds_agree_in_expectation():
    n = 10
    ei = random_graph(n, 0.3, seed=4)
    x = torch.randn(n, 5)
    adj = Adjacency(ei, n)
    eps = torch.randn(1, n, 4)
    dense = _model("vgae").bound(x, adj, eps=eps).value.item()
    sampled_model = _model("vgae", estimator="sampled", negatives=0.5)
    gen = torch.Generator().manual_seed(0)
    vals = torch.tensor([sampled_model.bound(x, adj, eps=eps, generator=gen).value.item()
                         for _ in range(3000)])
    assert abs(vals.mean().item() - dense) < 4 * vals.std().item() / math.sqrt(3000)


def test_complete_graph_has_no_negatives_and_both_estimators_agree(triangle):
    """Every pair is an edge: no re-weighting is possible and the sampled estimate is exact."""
    x = torch.randn(3, 5)
    adj = Adjacency(triangle, 3)
    eps = torch.randn(1, 3, 4)
    dense = _model("vgae").bound(x, adj, eps=eps)
    sampled = _model("vgae", estimator="sampled").bound(x, adj, eps=eps,
                                                      generator=torch.Generator())
    assert torch.allclose(dense.value, sampled.value)
    assert torch.allclose(dense.surrogate, sampled.surrogate)


@pytest.mark.parametrize("name", ["inner", "mlp", "cosine-bias", "vmf-bias"])
def test_forward_rows_are_the_rows_of_forward_all(name):
    """Every edge decoder's rows, in any order and with repeats, for a draw dimension."""
    torch.manual_seed(0)
    dec = EDGE_DECODERS[name](6) if name == "mlp" else EDGE_DECODERS[name]()
    z = torch.randn(3, 10, 6)
    rows = torch.tensor([7, 0, 7, 3])
    torch.testing.assert_close(dec.forward_rows(z, rows), dec.forward_all(z)[:, rows],
                               rtol=1e-6, atol=1e-6)


def test_widths_counts_and_weights_that_cannot_work_are_one_line():
    """A width of 0 built a model that trained on nothing, a NaN weight or negative-sample
    count failed inside forward, 4.5 nodes were taken as 4, and node counts past 3·10⁹
    wrapped the int64 pair keys round to other nodes. Each is refused when built."""
    from graphvae.adjacency import Adjacency
    from graphvae.encoders.gnn import GNAEEncoder, GNNEncoder
    from graphvae.models import EdgeObjective, EquivariantGraphVAE, GraphVAE, build_model
    from graphvae.models.sequential import SequentialGraphVAE

    cases = [
        (lambda: build_model("vgae", 3, hidden_channels=(0,)), "hidden_channels needs widths"),
        (lambda: build_model("gae", 3, encoder="gnae", latent_channels=0),
         "latent_channels must be a width from 1"),
        (lambda: build_model("vgae", 0), "in_channels must be a whole number >= 1, got 0"),
        (lambda: build_model("joint", 3, feature_weight=float("nan")),
         "feature_weight must be a finite number >= 0, got nan"),
        (lambda: EdgeObjective(negatives=float("inf")),
         "negatives must be a finite number > 0, got inf"),
        (lambda: GraphVAE(3, 5, conv="zzz"), "unknown conv 'zzz'"),
        (lambda: GraphVAE(3, 5, decoder_hidden=(8, 0)), "decoder_hidden needs widths"),
        (lambda: EquivariantGraphVAE(3, [0, 1], hidden_channels=(0,)),
         "hidden_channels needs widths"),
        (lambda: Adjacency(torch.zeros(2, 0, dtype=torch.long), 4.5),
         "num_nodes must be a whole number, got 4.5"),
        (lambda: Adjacency(torch.zeros(2, 0, dtype=torch.long), -3),
         "num_nodes must be from 0 to 3,037,000,499"),
        (lambda: Adjacency(torch.tensor([[5 * 10 ** 9 - 1], [5 * 10 ** 9 - 2]]), 5 * 10 ** 9),
         "num_nodes must be from 0 to 3,037,000,499"),
        # True was a width of 1; 4.0, (8.0,), '8' and a lone 8 failed inside torch or Python
        (lambda: build_encoder("gcn", 3, (8,), True), "latent_channels must be a whole number, "
                                                      "got True"),
        (lambda: build_encoder("gcn", 3, (8,), 4.0), "latent_channels must be a whole number"),
        (lambda: build_encoder("gcn", 3, (8.0,)), "hidden_channels needs whole numbers as "
                                                  "widths, got 8.0"),
        (lambda: build_encoder("gcn", 3, (True,)), "hidden_channels needs whole numbers"),
        (lambda: build_encoder("gcn", 3, True), "hidden_channels must be a list or tuple of "
                                                "widths, got True"),
        (lambda: build_encoder("gcn", 3, "8"), "hidden_channels must be a list or tuple"),
        (lambda: GNNEncoder(3, 8, 4), "hidden_channels must be a list or tuple of widths, got 8"),
        (lambda: GNNEncoder(True, (), 4), "in_channels must be a whole number >= 1, got True"),
        (lambda: GNNEncoder(3, (), 4, conv=["gcn"]), "unknown conv ['gcn']"),
        (lambda: build_encoder("nope", 3), "unknown encoder 'nope'; choose one of ['gat', "),
        (lambda: GNAEEncoder(3, (), 4, scale=float("inf")), "GNAE needs alpha in [0, 1] and a "
                                                            "finite scale > 0"),
        (lambda: MLPInnerProductDecoder(4, (6,), 2.5), "out_channels must be a whole number"),
        (lambda: MLPInnerProductDecoder(4, (0,), 3), "hidden_channels needs widths from 1"),
        # the generators' settings by their own names (an inner layer's "out_channels" was
        # named for embed_channels 0 and node_types -1; 1.5 components failed inside torch)
        (lambda: EquivariantGraphVAE(3, [0, 1], embed_channels=0),
         "embed_channels must be a width from 1"),
        (lambda: EquivariantGraphVAE(3, [0, 1], node_types=-1),
         "node_types must be a whole number >= 0, got -1"),
        (lambda: EquivariantGraphVAE(3, [0, 1], components=1.5),
         "components must be a whole number >= 0, got 1.5"),
        (lambda: EquivariantGraphVAE(3, [0, 1], components=2, graph_latent=2.5),
         "graph_latent must be a whole number >= 1, got 2.5"),
        (lambda: EquivariantGraphVAE(3, [0, 1], decoder_hidden=(0,)),
         "decoder_hidden needs widths from 1"),
        (lambda: EquivariantGraphVAE(3, [0, 1], decoder_hidden=(), edge_types=2),
         "decoder_hidden needs at least one width"),
        (lambda: SequentialGraphVAE(3, [0, 1], edge_types=1.5),
         "edge_types must be a whole number >= 0, got 1.5"),
        (lambda: SequentialGraphVAE(3, [0, 1], decoder_hidden=()),
         "seq-vae: decoder_hidden needs at least one width"),
        (lambda: SequentialGraphVAE(3, [0, 1], max_rounds=0),
         "max_rounds must be a whole number >= 1, got 0"),
        # a text offset failed inside math.isfinite; valences 2.5 were read as 2, 0 left a
        # type no bond could reach, and a lone 4 failed inside len()
        (lambda: EquivariantGraphVAE(3, [0, 1], logvar_offset="1"),
         "logvar_offset must be a finite number, got '1'"),
        (lambda: EquivariantGraphVAE(3, [0, 1], logvar_offset=True),
         "logvar_offset must be a finite number, got True"),
        (lambda: SequentialGraphVAE(3, [0, 1], node_types=2, edge_types=1, valences=[4, 2.5]),
         "valences[1] must be a whole number >= 1, got 2.5"),
        (lambda: SequentialGraphVAE(3, [0, 1], node_types=2, edge_types=1, valences=(0, 1)),
         "valences[0] must be a whole number >= 1, got 0"),
        (lambda: SequentialGraphVAE(3, [0, 1], node_types=1, edge_types=1, valences=4),
         "seq-vae: valences must be a list or tuple, got 4"),
    ]
    for build, problem in cases:
        with pytest.raises(ValueError, match=re.escape(problem)):
            build()
    assert build_encoder("gcn", 3, [np.int64(8)], np.int64(4)).latent_channels == 4
    # numpy's integers are whole numbers wherever a count or a width is asked for
    enc = build_encoder("gcn", np.int64(3), np.int32(8), 4)
    assert [tuple(p.shape) for p in enc.layers[0].parameters()] == [(3, 8)]
    gae = build_model("gae", 3, hidden_channels=np.int16(5))
    assert [tuple(p.shape) for p in gae.encoder.layers[0].parameters()] == [(3, 5)]
    seq = SequentialGraphVAE(3, [0, 1], node_types=2, edge_types=1, valences=[np.int64(4), 1])
    assert seq.valence.tolist() == [4.0, 1.0]
    assert EquivariantGraphVAE(3, [0, 1], logvar_offset=np.float32(0.5)).logvar_offset == 0.5
    # the largest count keyed exactly: n² − 1 fits int64, (n + 1)² − 1 does not
    n = 3_037_000_499
    assert n * n - 1 <= 2 ** 63 - 1 < (n + 1) ** 2 - 1
    assert Adjacency(torch.tensor([[n - 1], [n - 2]]), n).num_nodes == n


def test_encoders_name_features_that_do_not_fit():
    """Features of another width reached a matrix product ("mat1 and mat2 shapes cannot be
    multiplied"), integer features a dtype error, and features with more rows than the
    graph has nodes were encoded as if the graph had them."""
    from graphvae.adjacency import Adjacency
    from graphvae.models import build_model

    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    for encoder in ("gcn", "gnae"):
        model = build_model("vgae", 3, encoder=encoder)
        with pytest.raises(ValueError, match=r"x must be node features of shape \(n, 3\), "
                                             r"got \(3, 5\)"):
            model.encode(torch.randn(3, 5), Adjacency(ei, 3))
        with pytest.raises(ValueError, match="x must hold floating-point features, got "
                                             "torch.int64"):
            model.encode(torch.ones(3, 3, dtype=torch.long), Adjacency(ei, 3))
        with pytest.raises(ValueError, match="x has 4 rows for a graph of 3 nodes"):
            model.encode(torch.randn(4, 3), Adjacency(ei, 3))
        assert model.encode(torch.randn(3, 3), Adjacency(ei, 3)).loc.shape[0] == 3


def test_a_model_with_a_prior_object_is_refused_before_its_checkpoint_is_written(tmp_path):
    """build_model passes a prior object on to the model, which a checkpoint cannot hold
    as plain data: saving is refused in one line and nothing is written (the file it wrote
    before was one load_model refuses to read); plain arguments still save and load."""
    from graphvae.bounds.priors import StandardNormal
    from graphvae.models.checkpoints import load_model, save_model

    model = build_model("vgae", 5, prior=StandardNormal())
    path = tmp_path / "m.pt"
    with pytest.raises(ValueError, match=r"cannot save this graph-autoencoder model: its "
                                         r"constructor argument 'prior' is of type "
                                         r"graphvae\.bounds\.priors\.StandardNormal, not "
                                         r"plain data"):
        save_model(path, model)
    # numpy numbers subclass float / str but torch.load(weights_only=True) refuses them
    with pytest.raises(ValueError, match=r"constructor argument 'dropout' is of type "
                                         r"numpy\.float64"):
        save_model(path, build_model("vgae", 5, dropout=np.float64(0.1)))
    with pytest.raises(ValueError, match=r"its entry 'config'\['lr'\] is of type numpy\.float64"):
        save_model(path, build_model("vgae", 5), config={"lr": np.float64(0.01)})
    with pytest.raises(ValueError, match=r"its entry 'config'\['h'\]\[1\] is of type "
                                         r"numpy\.int64"):
        save_model(path, build_model("vgae", 5), config={"h": [8, np.int64(4)]})
    assert not path.exists() and list(tmp_path.iterdir()) == []
    save_model(path, build_model("vgae", 5, num_samples=2))
    assert load_model(path)[0].num_samples == 2


def _ls(x):
    return math.log(1 / (1 + math.exp(-x)))


def test_edge_objective_refuses_zero_negatives():
    """``negatives`` is the number of non-edges drawn per positive: 0 would draw none (the
    sampler silently drew one instead), so only a finite number > 0 is accepted."""
    with pytest.raises(ValueError, match="negatives must be a finite number > 0"):
        EdgeObjective(negatives=0)
    with pytest.raises(ValueError, match="negatives must be a finite number > 0"):
        EdgeObjective(negatives=-0.5)


def _inner_model(**objective):
    return GraphAutoencoder(torch.nn.Identity(), InnerProductDecoder(),
                            objective=EdgeObjective(**objective))


def test_sampled_estimator_without_self_loops_never_draws_the_diagonal():
    """Path 0-1-2, z = [[1,0],[1,1],[0,1]]: logits l01 = l12 = 1, l02 = 0, diagonal 1, 2, 1.
    Without self-loops the pairs are the 4 ordered edges and the 2 non-edges (0,2), (2,0),
    both of logit 0; every draw of non-edges is one of them, so each seed gives the exact
    value 4 log σ(1) + 2 log σ(0) (a diagonal pair drawn gave log σ(−1) or log σ(−2))."""
    model = _inner_model(estimator="sampled", self_loops=False, reweight=False)
    z = torch.tensor([[1., 0], [1, 1], [0, 1]])
    target = Adjacency(undirected([(0, 1), (1, 2)], 3), 3)
    stats = model.edge_stats(target)
    want = 4 * _ls(1) + 2 * _ls(0)
    for seed in range(20):
        got = model.edge_loglik(z, target, stats, torch.Generator().manual_seed(seed))
        assert float(got.value) == pytest.approx(want, abs=1e-6)


def test_minibatch_loss_weights_the_sampled_positives():
    """A mini-batch step with positives (0,1), (1,2) scaled by 2 and negative (0,2) scaled
    by 3, logits 1, 1, 0 (z as above), pos_weight 5: value 2·2 log σ(1) + 3 log σ(0) and
    weighted 5·2·2 log σ(1) + 3 log σ(0)."""
    model = _inner_model(estimator="sampled")
    z = torch.tensor([[1., 0], [1, 1], [0, 1]])
    target = Adjacency(undirected([(0, 1), (1, 2)], 3), 3)
    stats = EdgeStats(3, 9, 4, pos_weight=5.0, norm=1.0)
    sample = PairSample(torch.tensor([[0, 1], [1, 2]]), torch.tensor([[0], [2]]), 2.0, 3.0)
    got = model.edge_loglik(z, target, stats, sample=sample)
    assert float(got.value) == pytest.approx(4 * _ls(1) + 3 * _ls(0), abs=1e-6)
    assert float(got.weighted) == pytest.approx(20 * _ls(1) + 3 * _ls(0), abs=1e-6)


def test_feature_weight_changes_the_loss_but_not_the_bound():
    """``feature_weight`` weights the feature term in the training loss only: two joint
    models with the same parameters and noise, weights 1 and 3, report the same value
    and different surrogates."""
    x = torch.eye(3)
    adj = Adjacency(undirected([(0, 1), (1, 2)], 3), 3)
    eps = torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    a = build_model("joint", 3, "gcn", (8,), 4, objective=EdgeObjective("dense"))
    b = build_model("joint", 3, "gcn", (8,), 4, objective=EdgeObjective("dense"),
                    feature_weight=3.0)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        ea, eb = a.bound(x, adj, eps=eps), b.bound(x, adj, eps=eps)
    assert float(ea.value) == pytest.approx(float(eb.value), abs=1e-5)
    assert abs(float(ea.surrogate) - float(eb.surrogate)) > 1e-4


def test_data_parallel_shards_of_a_joint_model_sum_to_one_estimate():
    """Two processes' shards (share 1/2 each) of a mini-batch step, each with half of its
    pairs: their values sum to the one-process value of the whole step, and their losses
    average to its loss (DistributedDataParallel averages gradients), when the KL and the
    feature likelihood are split by share (a shard carrying the whole feature term or KL
    gave it twice; a KL weight of 1 in a shard's loss gave the loss twice the KL)."""
    x = torch.eye(4)
    adj = Adjacency(undirected([(0, 1), (1, 2), (2, 3)], 4), 4)
    torch.manual_seed(0)
    model = build_model("joint", 4, "gcn", (8,), 3, objective=EdgeObjective("sampled"))
    stats = model.edge_stats(adj)
    eps = torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(1))
    pos = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 2]])
    neg = torch.tensor([[0, 1, 3, 0], [2, 3, 0, 3]])

    def step(cols, share):
        sample = PairSample(pos[:, cols], neg[:, cols], stats.num_pos / 4, stats.num_neg / 4,
                            share)
        with torch.no_grad():
            return model(LinkBatch(x, adj, adj, stats, sample), eps=eps)

    whole, a, b = step([0, 1, 2, 3], 1.0), step([0, 1], 0.5), step([2, 3], 0.5)
    assert float(a.value + b.value) == pytest.approx(float(whole.value), rel=1e-6)
    assert float(a.kl + b.kl) == pytest.approx(float(whole.kl), rel=1e-6)
    assert float(a.surrogate + b.surrogate) / 2 == pytest.approx(float(whole.surrogate),
                                                                 rel=1e-6)
    assert float(whole.kl) > 0.01     # the split terms are far above the tolerance
    with torch.no_grad():
        feat = model.feature_decoder.log_prob(x, model.encode(x, adj).mean, adj).sum()
    assert abs(float(feat)) > 0.1


def test_feature_weight_must_be_non_negative():
    """A negative feature weight would reward a worse feature fit: refused, even -0.5."""
    with pytest.raises(ValueError, match="feature_weight must be a finite number >= 0"):
        build_model("joint", 3, feature_weight=-0.5)


def test_mlp_inner_product_embedding_has_no_output_activation():
    """With no hidden layer and the single linear map H = −Z, the logits are
    (−Z)(−Z)ᵀ = Z Zᵀ: for Z = [[1, 2], [3, 1]], [[5, 5], [5, 10]] (a ReLU on H would
    zero the positive latents' embeddings and give all-zero logits)."""
    dec = MLPInnerProductDecoder(2, (), 2)
    with torch.no_grad():
        lin = dec.mlp[0]
        lin.weight.copy_(-torch.eye(2))
        lin.bias.zero_()
    z = torch.tensor([[1., 2], [3, 1]])
    assert torch.allclose(dec.forward_all(z), torch.tensor([[5., 5], [5, 10]]))


def test_cosine_bias_offset_is_in_every_row_block():
    """l_ij = e^τ cos + β_i + β_j + c: with τ = 0, c = 0.7 and z = [[1, 0, 0], [0, 1, 0]]
    (orthogonal directions, β = 0), every logit is the offset except the diagonal, 1.7;
    rows given by blocks carry it as well."""
    dec = CosineBiasDecoder()
    with torch.no_grad():
        dec.log_temperature.zero_()
        dec.offset.fill_(0.7)
    z = torch.tensor([[1., 0, 0], [0, 1, 0]])
    want = torch.tensor([[1.7, 0.7], [0.7, 1.7]])
    assert torch.allclose(dec.forward_all(z), want)
    assert torch.allclose(dec.forward_rows(z, torch.tensor([1])), want[1:])


def test_a_batch_scores_its_target_with_the_targets_counts():
    """The encoder sees ``adj`` (the path 0-1-2); the edges scored are ``target``'s (the
    single edge 0-2), with its counts: without self-loops, n(n−1) = 6 pairs, 2 positive
    (both orders), pos_weight N⁻/N⁺ = 4/2 = 2 and norm pairs/(2N⁻) = 6/8 (the path's would
    be 4 positives, pos_weight 1/2 and norm 6/4)."""
    adj = Adjacency(undirected([(0, 1), (1, 2)], 3), 3)
    target = Adjacency(undirected([(0, 2)], 3), 3)
    batch = _inner_model(estimator="dense", self_loops=False).batch(torch.eye(3), adj, target)
    assert batch.adj is adj and batch.target is target
    s = batch.stats
    assert (s.num_nodes, s.num_pairs, s.num_pos) == (3, 6, 2)
    assert s.pos_weight == pytest.approx(2.0) and s.norm == pytest.approx(6 / 8)
