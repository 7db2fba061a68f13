"""Mistakes a library user makes with the Python API, each named in one line."""

from __future__ import annotations

import re

import pytest
import torch


def test_float64_features_meet_a_float32_model_in_its_dtype():
    """torch.from_numpy gives float64: the encoders failed inside a matrix product ("expected
    m1 and m2 to have the same dtype"), naming no argument. Features are now taken in the
    weights' dtype, as the vector models take rows; a wrong width is named."""
    from graphvae.adjacency import Adjacency
    from graphvae.models import GraphVAE, build_model
    path = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    x = torch.randn(5, 8, dtype=torch.float64)
    torch.manual_seed(0)
    for model in (build_model("vgae", 8), build_model("vgae", 8, encoder="sage"),
                  build_model("gae", 8, encoder="gnae")):
        got = model.encoder(x, Adjacency(path, 5)).loc
        assert got.dtype == torch.float32
        assert torch.equal(got, model.encoder(x.float(), Adjacency(path, 5)).loc)
    vae = GraphVAE(8, 5)
    assert torch.equal(vae.encode(x, Adjacency(path, 5)).loc,
                       vae.encode(x.float(), Adjacency(path, 5)).loc)
    with pytest.raises(ValueError, match=r"x must be node features of shape \(n, 8\), got "
                                         r"\(5, 6\)"):
        vae.encode(torch.randn(5, 6), Adjacency(path, 5))


def test_one_hidden_width_may_be_an_int():
    """build_model("vgae", 8, hidden_channels=32) raised "'int' object is not iterable"."""
    from graphvae.encoders.gnn import build_encoder
    from graphvae.models import build_model
    a = build_model("vgae", 8, hidden_channels=32)
    b = build_model("vgae", 8, hidden_channels=(32,))
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert a.init_kwargs()["hidden_channels"] == [32]
    enc = build_encoder("gcn", 8, 16, 4)
    assert [p.shape for p in enc.parameters()] == [p.shape for p in
                                                    build_encoder("gcn", 8, (16,), 4).parameters()]


def test_top_new_links_takes_either_direction_and_refuses_a_transposed_edge_index():
    """top_new_links kept the i < j columns only: an edge list written once, as (j, i), or
    transposed to (E, 2), came back as 'new' links, all of them existing edges."""
    from graphvae.models import build_model
    from graphvae.tasks.link_scores import top_new_links
    torch.manual_seed(0)
    model = build_model("gae", 3)
    n = 6
    both = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    z = model.encoder(torch.randn(n, 3), both).loc.detach()
    ref = top_new_links(model, z, both, k=5)
    for one_way in (both[:, ::2], both[:, 1::2], both[:, 1::2].flip(0)):
        got = top_new_links(model, z, one_way, k=5)
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
    edges = {frozenset(p) for p in both.t().tolist()}
    assert not any(frozenset(p) in edges for p in ref[0].t().tolist())
    with pytest.raises(ValueError, match="edge_index"):
        top_new_links(model, z, both.t().contiguous(), k=5)


def test_a_vector_model_names_rows_of_the_wrong_shape():
    """fit(vae, tensor) iterated the tensor row by row, and forward took a 1-D row as 64
    rows of one pixel (loss 64x too small, training silently wrong); 10 columns of 64
    failed inside a matrix product."""
    from graphvae.vector import VectorAutoencoder, VectorConfig
    vae = VectorAutoencoder(VectorConfig(in_dim=64, latent_dim=4, hidden=(16,)))
    vae(torch.rand(3, 64))
    with pytest.raises(ValueError, match=r"x must be rows of shape \(N, 64\), got \(64,\)"):
        vae(torch.rand(64))
    with pytest.raises(ValueError, match=r"x must be rows of shape \(N, 64\), got \(3, 10\)"):
        vae.encode(torch.rand(3, 10))


def test_a_graph_whose_edges_leave_it_is_refused_before_batching():
    """GraphTensors took any edge index: batched, an edge to node 3 of a 3-node graph joined
    it to the next graph, and a negative index wrapped into the one before."""
    from graphvae.containers import GraphTensors
    ok = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    GraphTensors(3, ok, torch.zeros(3, dtype=torch.long), torch.ones(4, dtype=torch.long))
    with pytest.raises(ValueError, match="refers to node 3 but the graph has only 3 nodes"):
        GraphTensors(3, torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]]))
    with pytest.raises(ValueError, match="negative node index"):
        GraphTensors(3, torch.tensor([[0, -1], [-1, 0]]))
    with pytest.raises(ValueError, match=r"shape \(2, E\), got \(4, 2\)"):
        GraphTensors(3, ok.t().contiguous())
    with pytest.raises(ValueError, match=r"node_types must be a torch.long tensor of shape "
                                         r"\(3,\), got torch.int64 of shape \(2,\)"):
        GraphTensors(3, ok, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"edge_types must be a torch.long tensor of shape "
                                         r"\(4,\), got torch.float32"):
        GraphTensors(3, ok, None, torch.ones(4))
    with pytest.raises(ValueError, match=r"node_types holds a negative type \(-1\)"):
        GraphTensors(3, ok, torch.tensor([0, -1, 0]))


def test_evaluation_inputs_of_the_wrong_kind_are_named_or_taken():
    """graph_mmd took adjacency matrices into networkx calls (AttributeError), a generator
    as the reference set as empty, and statistics="degree" as the letters d, e, g, ...;
    graph_summary of an iterator returned NaN; roc_auc of lists failed on .detach()."""
    import networkx as nx

    from graphvae.evaluation import graph_mmd, graph_summary
    from graphvae.evaluation.metrics import average_precision, roc_auc
    ref = [nx.path_graph(4), nx.cycle_graph(5), nx.star_graph(3)]
    gen = [nx.path_graph(5), nx.cycle_graph(4)]
    whole = graph_mmd(ref, gen, "graphrnn")
    assert graph_mmd(iter(ref), (g for g in gen), "graphrnn") == whole
    assert graph_mmd(ref, gen, "graphrnn", statistics="degree") == {
        "degree": whole["degree"], "empty_generated": 0.0}
    with pytest.raises(ValueError, match=r"generated must hold networkx graphs, got a "
                                         r"ndarray \(from an adjacency matrix"):
        graph_mmd(ref, [nx.to_numpy_array(g) for g in gen], "graphrnn")
    with pytest.raises(ValueError, match="reference must be a sequence of networkx graphs, "
                                         "got Graph"):
        graph_mmd(ref[0], gen, "graphrnn")
    assert graph_summary(iter(ref)) == graph_summary(ref)
    # hand-worked: scores 0.9 (1), 0.8 (0), 0.3 (1), 0.1 (0): 3 of the 4 positive-negative
    # pairs are ordered, AUC 0.75; precision at the positives 1 and 2/3, AP 5/6
    s, y = [0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0]
    assert roc_auc(s, y) == pytest.approx(0.75)
    assert average_precision(s, y) == pytest.approx(5 / 6)


def test_an_evaluate_without_a_score_is_named():
    """fit's evaluate() returning no "score" was a bare KeyError: 'score'."""
    from graphvae.bounds import BoundEstimate
    from graphvae.training import FullBatch, fit

    class Quadratic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, batch, generator=None):
            loss = (self.w - 3.0).pow(2)
            return BoundEstimate(-loss.detach().reshape(1), loss, -loss.detach(),
                                 loss.new_zeros(()))

    m = Quadratic()
    with pytest.raises(ValueError, match=r"evaluate\(\) must return a dict with a 'score' "
                                         r".*got \['auc'\]"):
        fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=2,
            evaluate=lambda: {"auc": 0.5}, progress=False)


def test_the_linear_ae_names_rows_that_do_not_fit_it():
    """train_linear_ae(LinearAE(3, 2), torch.randn(50, 1)) spread the one column over all
    three inputs and trained; a numpy array failed on .to, NaN inside an SVD."""
    import numpy as np

    from graphvae.vector import LinearAE, train_linear_ae
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    a = train_linear_ae(LinearAE(3, 2, generator=torch.Generator().manual_seed(1)), x,
                        steps=50, progress=False)
    b = train_linear_ae(LinearAE(3, 2, generator=torch.Generator().manual_seed(1)),
                        x.numpy(), steps=50, progress=False)
    assert a.losses == b.losses
    with pytest.raises(ValueError, match="x has 1 columns but the linear AE takes 3"):
        train_linear_ae(LinearAE(3, 2), torch.randn(50, 1), steps=5, progress=False)
    bad = x.clone()
    bad[4, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN, infinite or beyond-float32 entries"):
        train_linear_ae(LinearAE(3, 2), bad, steps=5, progress=False)
    assert np.isfinite(a.losses).all()


def test_a_graph_with_an_edge_in_one_direction_is_refused():
    """EquivariantGraphVAE and GraphVAE read one triangle of the adjacency: a path listed
    as (0, 1), (1, 2) only was scored as a graph without edges."""
    from graphvae.containers import GraphTensors
    with pytest.raises(ValueError, match=r"\(0, 1\) is listed without \(1, 0\)"):
        GraphTensors(3, torch.tensor([[0, 1, 1, 2], [1, 2, 0, 1]])[:, :2])
    GraphTensors(3, torch.tensor([[0, 1, 1, 2, 1], [1, 0, 2, 1, 2]]))  # a repeat is fine


def test_counts_and_seeds_of_the_small_helpers_are_named():
    """all_permutations(0) failed in a reshape, random_permutations(5.0, 2) inside torch,
    make_sbm_graph(seed=-1) in numpy; a model whose forward returns a loss tensor failed on
    .surrogate."""
    from graphvae.datasets.synthetic import make_sbm_graph
    from graphvae.permutations import all_permutations, random_permutations
    from graphvae.training import FullBatch, fit
    assert all_permutations(1).tolist() == [[0]] and all_permutations(3).shape == (6, 3)
    with pytest.raises(ValueError, match="n must be a whole number >= 1, got 0"):
        all_permutations(0)
    with pytest.raises(ValueError, match="n must be a whole number >= 1, got 5.0"):
        random_permutations(5.0, 2)
    with pytest.raises(ValueError, match="seed must be an integer from 0"):
        make_sbm_graph(seed=-1)

    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, batch, generator=None):
            return (self.w - 1).pow(2)

    m = Loss()
    with pytest.raises(TypeError, match="must return a BoundEstimate .* got Tensor"):
        fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=1,
            progress=False)


def test_late_failures_of_the_generation_api_are_named_early():
    """GraphVAE(num_perms=2.5) and node_types=-1 were accepted and failed later;
    run_generation({...}) failed on 'dict' object has no attribute 'device'."""
    from graphvae.models import GraphVAE
    from graphvae.tasks.generation import run_generation
    with pytest.raises(ValueError, match="num_perms must be a whole number >= 1, got 2.5"):
        GraphVAE(3, 4, num_perms=2.5)
    with pytest.raises(ValueError, match="node_types must be a whole number >= 0, got -1"):
        GraphVAE(3, 4, node_types=-1)
    with pytest.raises(TypeError, match="run_generation takes a GenerationConfig, got dict"):
        run_generation({"epochs": 1})


def test_bool_features_train_as_zeros_and_ones():
    """Bool features failed in the raw-feature scale check ("abs_cpu" not implemented for
    'Bool'); they are 0/1 features."""
    from graphvae.datasets import make_sbm_graph
    from graphvae.tasks.link_prediction import PRESETS, run_link_prediction
    data = make_sbm_graph(num_nodes=100, feature_dim=8)
    floats = data.clone()
    data.x = data.x > 0
    floats.x = (floats.x > 0).float()
    cfg = PRESETS["vgae"].replace(epochs=3)
    got = run_link_prediction(data, cfg, 0, "cpu", progress=False).metrics
    want = run_link_prediction(floats, cfg, 0, "cpu", progress=False).metrics
    assert got["test_auc"] == want["test_auc"] and got["test_ap"] == want["test_ap"]


def test_an_edge_decoder_names_an_edge_list_of_the_wrong_shape_or_dtype():
    """An (E, 2) list went through the decoders silently: row 0 (the first edge's two ends)
    was read as the sources, row 1 as the targets, and two logits came back for three
    pairs; a float list failed inside torch's indexing."""
    from graphvae.decoders.edges import CosineBiasDecoder, InnerProductDecoder
    z = torch.randn(5, 3)
    for decoder in (InnerProductDecoder(), CosineBiasDecoder()):
        with pytest.raises(ValueError, match=r"edge_index must be a \(2, E\) tensor of "
                                             r"dtype torch.long, got shape \(3, 2\)"):
            decoder(z, torch.tensor([[0, 1], [1, 2], [2, 3]]))
        with pytest.raises(ValueError, match="dtype torch.float32"):
            decoder(z, torch.tensor([[0.0, 1.0], [1.0, 2.0]]))
        with pytest.raises(ValueError, match="got list"):
            decoder(z, [[0, 1], [1, 2]])
    # the right form: z_0·z_1 and z_1·z_2
    got = InnerProductDecoder()(z, torch.tensor([[0, 1], [1, 2]]))
    assert torch.allclose(got, torch.stack([z[0] @ z[1], z[1] @ z[2]]))


def test_invariance_tolerances_and_bound_functions_are_named_before_the_work():
    """atol="1e-5" failed after the whole measurement with "'<=' not supported between
    instances of 'int' and 'str'"; exact_permutation_bound given a graph autoencoder
    failed with an AttributeError on a private method."""
    import numpy as np

    import graphvae.testing as testing
    from graphvae.models import build_model
    model = build_model("vgae", 3)
    graph = (torch.randn(4, 3), torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
    for check in (testing.assert_bound_invariant, testing.assert_encoder_equivariant,
                  testing.assert_decoder_equivariant):
        for bad in ("1e-5", True, -1.0, float("nan"), None):
            with pytest.raises(ValueError, match=r"atol must be a finite number >= 0, got "):
                check(model, graph, atol=bad)
        with pytest.raises(ValueError, match=r"rtol must be a finite number >= 0, got '0'"):
            check(model, graph, rtol="0")
    # numpy scalars are numbers
    assert testing.assert_bound_invariant(model, graph, atol=np.float32(1e-4)) <= 1e-4
    with pytest.raises(ValueError, match="it needs a graphvae.models.GraphVAE, got "
                                         "GraphAutoencoder"):
        testing.assert_bound_invariant(model, graph,
                                       bound_fn=testing.exact_permutation_bound)


def test_train_linear_ae_names_its_steps():
    """steps=0 was refused as "epochs, eval_every and checkpoint_every must be >= 1, got 0,
    1, 1", naming arguments the function does not have; 2.5 and "10" failed inside range()
    and a comparison."""
    from graphvae.vector.linear import LinearAE, train_linear_ae
    for bad in (0, -1, 2.5, "10", True):
        with pytest.raises(ValueError, match=rf"steps must be a whole number >= 1, got "
                                             rf"{re.escape(repr(bad))}$"):
            train_linear_ae(LinearAE(5, 2), torch.randn(20, 5), steps=bad, progress=False)
