"""Mistakes a library user makes with the Python API, each named in one line."""

from __future__ import annotations

import math
import re

import numpy as np
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


def test_counts_past_what_torch_can_size_are_named_by_the_model():
    """A saved seq-vae / oneshot-vae whose edge_types was 2^70 (reader fuzz, seed 0) was
    refused as "TypeError: empty(): … Overflow when unpacking long long", from inside the
    layer it sized; an in_channels of 2^62 as "Storage size calculation overflowed". Type
    counts are layer widths (at most 2^16), features at most 2^40, every count an int64,
    and an exemplar prior's buffers at most 2^63 - 1 bytes as float64 (2^20 · 2^20 · 2^19
    values take 2^62 bytes, 2^20 · 2^20 · 2^20 take 2^63)."""
    from graphvae.bounds.priors import ExemplarPrior
    from graphvae.models import EquivariantGraphVAE, GraphVAE, SequentialGraphVAE
    sizes = [0, 1, 1]
    for kind, build in (("oneshot", lambda **k: EquivariantGraphVAE(3, sizes, 2, (4,), **k)),
                        ("graphvae", lambda **k: GraphVAE(3, 4, 2, (4,), **k)),
                        ("seq", lambda **k: SequentialGraphVAE(3, sizes, 2, (4,), **k))):
        with pytest.raises(ValueError, match=r"^edge_types must be at most 65,536, got "
                                             r"1180591620717411303424$"):
            build(edge_types=2 ** 70)
        with pytest.raises(ValueError, match=r"^node_types must be at most 65,536, got 65537$"):
            build(node_types=65537)
        assert build(edge_types=3) is not None, kind
    with pytest.raises(ValueError, match=r"^in_channels must be at most 1,099,511,627,776, "
                                         r"got 4611686018427387904$"):
        EquivariantGraphVAE(2 ** 62, sizes, 2, (4,))
    with pytest.raises(ValueError, match=r"^latent_channels must be a width from 1 to 65536, "
                                         r"got <an integer of 16,610 bits>$"):
        EquivariantGraphVAE(3, sizes, 10 ** 5000, (4,))    # printed, it passed Python's limit
    with pytest.raises(ValueError, match=r"^graph_latent must be at most 65,536, got 65537$"):
        EquivariantGraphVAE(3, sizes, 2, (4,), components=2, graph_latent=65537)
    with pytest.raises(ValueError, match=r"^exemplars must be at most 2\^63 - 1 \(torch's "
                                         r"int64\), got 9223372036854775808$"):
        EquivariantGraphVAE(3, sizes, 2, (4,), exemplars=2 ** 63)
    with torch.device("meta"):
        assert ExemplarPrior(2 ** 19, 2 ** 20, 2 ** 20).double().loc.numel() == 2 ** 59
        with pytest.raises(ValueError, match=r"an exemplar prior of 1048576 exemplars of up "
                                             r"to 1048576 nodes in 1048576 dimensions holds "
                                             r"more bytes than torch counts"):
            ExemplarPrior(2 ** 20, 2 ** 20, 2 ** 20)


def test_graphvae_relabellings_are_held_to_the_commands_limit_in_the_model():
    """``generate --num-perms`` stops at 10,000 relabellings; the model took any int64, so a
    saved GraphVAE with num_perms 10^12 loaded, and its bound asked for a (10^12, n) table
    of permutations. The model holds the command's limit."""
    from graphvae.models import GraphVAE
    from graphvae.models.graphvae import MAX_PERMS
    from graphvae.tasks.generation_config import MAX_PERMS as COMMAND_LIMIT
    assert MAX_PERMS == COMMAND_LIMIT == 10_000
    with pytest.raises(ValueError, match=r"^num_perms must be at most 10,000, got 10001$"):
        GraphVAE(3, 4, 2, (4,), objective="permutation", num_perms=10_001)
    model = GraphVAE(3, 4, 2, (4,), objective="permutation", num_perms=10_000)
    assert model.num_perms == 10_000


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
                                             r"dtype torch.long \(or int32\), got shape "
                                             r"\(3, 2\)"):
            decoder(z, torch.tensor([[0, 1], [1, 2], [2, 3]]))
        with pytest.raises(ValueError, match="dtype torch.float32"):
            decoder(z, torch.tensor([[0.0, 1.0], [1.0, 2.0]]))
        with pytest.raises(ValueError, match="got list"):
            decoder(z, [[0, 1], [1, 2]])
    # the right form: z_0·z_1 and z_1·z_2, as long or int32 (which torch indexes with)
    want = torch.stack([z[0] @ z[1], z[1] @ z[2]])
    for dtype in (torch.long, torch.int32):
        got = InnerProductDecoder()(z, torch.tensor([[0, 1], [1, 2]], dtype=dtype))
        assert torch.allclose(got, want)


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
    # numpy scalars and 0-d tensors are numbers
    assert testing.assert_bound_invariant(model, graph, atol=np.float32(1e-4)) <= 1e-4
    assert testing.assert_bound_invariant(model, graph, atol=torch.tensor(1e-4)) <= 1e-4
    with pytest.raises(ValueError, match="atol must be a finite number >= 0"):
        testing.assert_bound_invariant(model, graph, atol=torch.tensor([1e-4, 1e-4]))
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


def _ring_with_chords(n: int = 30):
    """A seeded 30-node ring with chords and 8 random features: a small graph that splits."""
    from torch_geometric.data import Data
    g = torch.Generator().manual_seed(0)
    ring = [(i, (i + 1) % n) for i in range(n)] + [(i, (i + 7) % n) for i in range(0, n, 2)]
    ei = torch.tensor(ring).t()
    x = (torch.rand(n, 8, generator=g) < 0.3).float()
    return Data(x=x, edge_index=torch.cat([ei, ei.flip(0)], 1), num_nodes=n)


@pytest.mark.parametrize("mode", ["raw", "normalize", "standardize"])
def test_sparse_features_train_as_their_dense_matrix(mode):
    """A sparse data.x (COO or CSR) failed inside torch ("Could not run 'aten::max' with
    arguments from the 'SparseCsrCPU' backend", "unsupported tensor layout"), though the
    graph checks had taken it; it now trains to the same figures as the dense matrix."""
    from graphvae.tasks.link_prediction import LinkPredConfig, run_link_prediction
    data = _ring_with_chords()
    cfg = LinkPredConfig(epochs=3, features=mode)
    dense = run_link_prediction(data, cfg, seed=0, progress=False).metrics
    for sparse in (data.x.to_sparse(), data.x.to_sparse_csr()):
        got = run_link_prediction(data.clone().update({"x": sparse}), cfg, seed=0,
                                  progress=False).metrics
        assert got["test_auc"] == dense["test_auc"] and got["test_ap"] == dense["test_ap"]


@pytest.mark.parametrize("mode", ["raw", "standardize"])
@pytest.mark.parametrize("encoder", ["gcn", "linear", "gat"])
def test_blank_features_are_refused_for_encoders_that_cannot_tell_nodes_apart(mode, encoder):
    """All-zero features (or constant columns, standardised) gave every node one latent
    under these encoders and every pair the same score: AUC and AP 50.00, reported as a
    trained model's."""
    from graphvae.tasks.link_prediction import LinkPredConfig, run_link_prediction
    data = _ring_with_chords()
    data.x = torch.zeros_like(data.x) if mode == "raw" else torch.full_like(data.x, 5.0)
    what = (r"the node features are all zero \(feature mode 'raw'\)" if mode == "raw" else
            r"every feature column is constant, which feature mode 'standardize' maps to 0")
    with pytest.raises(ValueError, match=rf"{what}: the {encoder} encoder then gives every "
                                         rf"node the same latent"):
        run_link_prediction(data, LinkPredConfig(epochs=1, features=mode, encoder=encoder),
                            progress=False)


def test_blank_features_still_train_encoders_that_read_the_structure():
    """gin, sage, gnae and gcn-bias add terms that differ with a node's neighbourhood:
    zero features train them (a review measured 64.5 test AUC for gin on Cora)."""
    from graphvae.tasks.features import prepare_features
    from graphvae.tasks.link_prediction import LinkPredConfig, run_link_prediction
    data = _ring_with_chords()
    data.x = torch.zeros_like(data.x)
    for encoder in ("gin", "sage", "gnae", "gcn-bias"):
        got = run_link_prediction(data, LinkPredConfig(epochs=2, encoder=encoder), seed=0,
                                  progress=False).metrics
        assert 0.0 <= got["test_auc"] <= 1.0
    # the check is the run's: the feature helper (check-invariance's too) takes zeros
    x = prepare_features(data, "raw")
    assert x.shape == (30, 8) and not bool(x.to_dense().any())


def test_float64_features_beyond_float32_are_refused():
    """1e300 passed the finiteness check, became inf in float32 and then NaN: "training
    diverged ... try a lower learning rate"."""
    from graphvae.graph import check_features
    x = torch.ones(4, 2, dtype=torch.float64)
    x[2, 1] = -1e300
    with pytest.raises(ValueError, match="1 value\\(s\\) beyond float32's range"):
        check_features(x, 4)
    with pytest.raises(ValueError, match="beyond float32's range"):
        check_features(x.to_sparse(), 4)
    check_features(x.clamp(min=-3e38), 4)             # within float32's range: taken


def test_a_graph_of_no_nodes_is_refused_by_the_generation_model_builder():
    """A 0-node graph in a GraphSet had probability 0 under p(n): "training diverged: the
    loss is inf ... try a lower learning rate"."""
    import networkx as nx

    from graphvae.datasets.graphsets import GraphSet
    from graphvae.tasks.generation import GenerationConfig, build_generation_model
    p4 = nx.path_graph(4)
    for model in ("oneshot-vae", "seq-vae", "graphvae"):
        cfg = GenerationConfig(model=model, epochs=1)
        with pytest.raises(ValueError, match=r"2 training graphs of 'custom' have no nodes "
                                             r"\(the first is graph 1, counted from 0\)"):
            build_generation_model(cfg, GraphSet("custom", [p4, nx.Graph(), nx.Graph()],
                                                 [p4], [p4]))
        with pytest.raises(ValueError, match=r"1 test graph of 'custom' has no nodes"):
            build_generation_model(cfg, GraphSet("custom", [p4, p4], [p4], [nx.Graph()]))


def test_categorical_log_prob_takes_one_hot_or_indices_and_refuses_a_column():
    """An (n, 1) column of indices was read as one-hot: -7.01 and 0.0 for log 0.5 and
    log 0.6."""
    from graphvae.likelihoods import categorical_log_prob
    p = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    want = torch.tensor([0.5, 0.6]).log()
    assert torch.allclose(categorical_log_prob(torch.tensor([2, 0]), p.log()), want)
    assert torch.allclose(categorical_log_prob(torch.tensor([[0.0, 0, 1], [1, 0, 0]]),
                                               p.log()), want)
    # indices, and one-hot rows, broadcast over leading sample dimensions of the logits
    got = categorical_log_prob(torch.tensor([2, 0]), p.log().expand(3, 2, 3))
    assert torch.allclose(got, want.expand(3, 2))
    got = categorical_log_prob(torch.tensor([[0.0, 0, 1], [1, 0, 0]]), p.log().expand(3, 2, 3))
    assert torch.allclose(got, want.expand(3, 2))
    for bad in (torch.tensor([[2], [0]]), torch.tensor([2.0, 0.0]), torch.tensor([True, False]),
                torch.tensor([2, 0, 1])):
        with pytest.raises(ValueError, match=r"x must be one-hot of the logits' shape \(2, 3\) "
                                             r"or integer class indices of shape \(2,\), got"):
            categorical_log_prob(bad, p.log())


def test_pair_keys_refuse_a_node_count_whose_keys_would_wrap():
    """to_simple_undirected((0, 10^12), 10^12 + 1) returned four edges, among them
    (2003765, 10^12): the keys i·n + j wrapped round int64."""
    from graphvae.graph import MAX_GRAPH_NODES, edge_keys, to_simple_undirected
    with pytest.raises(ValueError, match="num_nodes must be from 0 to 3,037,000,499"):
        to_simple_undirected(torch.tensor([[0], [10 ** 12]]), 10 ** 12 + 1)
    with pytest.raises(ValueError, match="got 8589934592"):
        edge_keys(torch.tensor([[2 ** 32], [2 ** 32 + 1]]), 2 ** 33)
    with pytest.raises(ValueError, match="refers to node 5 but the graph has only 3 nodes"):
        to_simple_undirected(torch.tensor([[0], [5]]), 3)
    n = MAX_GRAPH_NODES                          # the largest count: its keys still fit
    got = to_simple_undirected(torch.tensor([[n - 1], [0]]), n)
    assert got.tolist() == [[0, n - 1], [n - 1, 0]]


def test_empty_rows_and_contradictory_corruption_messages():
    """logmeanexp of nothing said "math domain error"; an empty validation matrix a
    ZeroDivisionError; a gaussian corruption of -1 that it must be "in [0, 1] for gaussian
    (a standard deviation >= 0 for gaussian)"."""
    from graphvae.bounds import logmeanexp
    from graphvae.vector.layers import Corruption
    from graphvae.vector.models import build_vector_model
    from graphvae.vector.train import evaluate_bound, train_vector
    with pytest.raises(ValueError, match="a mean of no entries is undefined"):
        logmeanexp(torch.empty(0))
    assert logmeanexp(torch.tensor([0.0, math.log(3.0)])).item() == pytest.approx(math.log(2))
    model = build_vector_model("vae", 5, latent_dim=2)
    with pytest.raises(ValueError, match="^x holds no rows$"):
        evaluate_bound(model, torch.empty(0, 5))
    with pytest.raises(ValueError, match="^validation data holds no rows$"):
        train_vector(model, torch.rand(10, 5).round(), torch.empty(0, 5), epochs=1)
    with pytest.raises(ValueError, match=r"^the gaussian corruption's level must be a finite "
                                         r"standard deviation >= 0, got -1$"):
        Corruption("gaussian", -1)
    with pytest.raises(ValueError, match=r"^the masking corruption's level must be a "
                                         r"probability in \[0, 1\], got 5$"):
        Corruption("masking", 5)


def test_subspace_distance_of_one_span_is_zero_not_below():
    """Rounding gave -2.2e-16 for a basis of u's own span (seed 1), which metrics.json
    showed as a negative distance."""
    from graphvae.vector.linear import subspace_distance
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        u, _ = torch.linalg.qr(torch.randn(7, 3, generator=g, dtype=torch.float64))
        assert 0.0 <= subspace_distance(u, u @ torch.randn(3, 3, generator=g,
                                                           dtype=torch.float64)) < 1e-12


def test_standardising_sets_a_constant_column_to_exactly_zero_and_stays_gaussian():
    """50 copies of 1e30 have a float64 mean that is not 1e30: the column was left at
    1.4e14 (scale 1), and training diverged with advice to lower the learning rate. And
    one training row standardises to zeros, which chose a Bernoulli model, refused then
    for the validation rows "not binary"."""
    from graphvae.vector.config import VectorRunConfig
    from graphvae.vector.data import VectorData
    from graphvae.vector.run import resolved
    col = torch.full((50, 1), 1e30, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    other = torch.randn(50, 1, generator=g, dtype=torch.float64)
    data = VectorData(torch.cat([col, other], 1), torch.cat([col[:5], other[:5]], 1),
                      torch.cat([col[:5], other[:5]], 1), "c").standardized()
    assert torch.equal(data.train[:, 0], torch.zeros(50, dtype=torch.float64))
    assert torch.equal(data.test[:, 0], torch.zeros(5, dtype=torch.float64))
    assert data.train[:, 1].mean().abs() < 1e-12 and (data.train[:, 1].std(unbiased=False)
                                                       - 1).abs() < 1e-12
    rows = torch.rand(3, 5, generator=g)
    one_row = VectorData(rows[:1], rows[1:2], rows[2:], "r3").standardized()
    assert resolved(VectorRunConfig(model="vae"), one_row).likelihood == "gaussian"
    binary = VectorData(rows.round(), rows.round(), rows.round(), "b")
    assert resolved(VectorRunConfig(model="vae"), binary).likelihood == "bernoulli"


def test_identical_rows_of_an_inexact_value_are_refused_by_the_linear_autoencoder():
    """300 rows of (0.1, 7, 0.1, 0.1): x.mean(0) is not 0.1 in floating point, centring
    left rounding noise, and the linear AE and PCA fitted it (exit 0, subspace distance
    0.059); rows of 1.0 were refused. Both are refused now, and PCA finds no variance."""
    from graphvae.vector.linear import LinearAE, pca, train_linear_ae
    x = torch.tensor([[0.1, 7.0, 0.1, 0.1]]).repeat(300, 1)       # float32, as trained
    assert not torch.equal(x.mean(0), x[0])                       # the case
    assert torch.equal(pca(x, 2).explained_variance, torch.zeros(2))
    with pytest.raises(ValueError, match="the training rows are all the same"):
        train_linear_ae(LinearAE(4, 2), x, steps=10, progress=False)


def test_bernoulli_and_gaussian_log_probs_refuse_a_column_of_another_width():
    """An (n, 1) column against (n, 3) parameters was broadcast: each value scored three
    times, as if it were three features."""
    from graphvae.likelihoods import bernoulli_log_prob, gaussian_log_prob
    params = torch.zeros(5, 3)
    for f in (lambda x: bernoulli_log_prob(x, params),
              lambda x: gaussian_log_prob(x, params, 0.0)):
        with pytest.raises(ValueError, match=r"x must end in the parameters' feature width, "
                                             r"got shape \(5, 1\) against parameters of "
                                             r"shape \(5, 3\)"):
            f(torch.ones(5, 1))
    # the right width, broadcast over samples: log σ(0) = log ½ a feature, three features
    assert torch.allclose(bernoulli_log_prob(torch.ones(5, 3), torch.zeros(4, 5, 3)),
                          torch.full((4, 5), 3 * math.log(0.5)))
    assert torch.allclose(gaussian_log_prob(torch.zeros(5, 3), torch.zeros(4, 5, 3), 0.0),
                          torch.full((4, 5), -1.5 * math.log(2 * math.pi)))


def test_non_edge_sampling_refuses_negative_counts_and_the_exact_sum_checks_its_keys():
    """sample_non_edges(keys, -3, 4) returned negative node ids (the key range check passed
    as (-3)² = 9) and num_samples -5 an empty draw; the row-blocked exact likelihood
    dropped a key out of range (100 for 3 nodes) silently and counted a repeated key twice,
    and an empty graph ended on a bare assert."""
    from graphvae.likelihoods import (
        bernoulli_edges_dense,
        bernoulli_edges_dense_rows,
        sample_non_edges,
    )
    with pytest.raises(ValueError, match=r"^num_nodes must be a whole number >= 0, got -3$"):
        sample_non_edges(torch.tensor([1]), -3, 4)
    with pytest.raises(ValueError, match=r"^num_samples must be a whole number >= 0, got -5$"):
        sample_non_edges(torch.tensor([1, 6]), 4, -5)
    assert sample_non_edges(torch.tensor([1, 6]), 4, 0).shape == (2, 0)
    logits = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5], [-2.0, 3.0, 0.0]])

    def rows(r):
        return logits[r]

    for keys, match in ((torch.tensor([1, 100]), r"keys must lie in \[0, 9\) for 3 nodes, "
                                                 r"got 1\.\.100"),
                        (torch.tensor([1, 1]), "keys must be in ascending order, each key once"),
                        (torch.tensor([5, 1]), "keys must be in ascending order"),
                        (torch.tensor([1.0]), "keys must be a 1-D long tensor")):
        with pytest.raises(ValueError, match=match):
            bernoulli_edges_dense_rows(rows, keys, 3)
    with pytest.raises(ValueError, match=r"num_nodes must be a whole number >= 1, got 0"):
        bernoulli_edges_dense_rows(lambda r: torch.zeros(len(r), 0),
                                   torch.tensor([], dtype=torch.long), 0)
    # keys 1 and 5 are the pairs (0, 1) and (1, 2): by hand, log σ at those two and log σ(−l)
    # at the seven others
    target = torch.zeros(3, 3)
    target[0, 1] = target[1, 2] = 1
    by_hand = sum(math.log(1 / (1 + math.exp(-v))) if target[i, j] else
                  math.log(1 / (1 + math.exp(v)))
                  for i, row in enumerate(logits.tolist()) for j, v in enumerate(row))
    got = bernoulli_edges_dense_rows(rows, torch.tensor([1, 5]), 3).value
    assert got.item() == pytest.approx(by_hand, rel=1e-6)
    # the dense form: a bool target is read as 0/1; shapes other than (n, n) are refused
    assert bernoulli_edges_dense(logits, target.bool()).value.item() == pytest.approx(
        by_hand, rel=1e-6)
    for lg, tg in ((torch.zeros(3, 5), torch.zeros(3, 5)), (torch.zeros(4, 4), target)):
        with pytest.raises(ValueError, match=r"needs \(\.\.\., n, n\) logits and an \(n, n\) "
                                             r"target"):
            bernoulli_edges_dense(lg, tg)


def test_constructors_name_their_own_arguments_and_refuse_what_fails_later():
    """GNNFeatureDecoder(conv='gcnn') was a bare KeyError; Converged(every=0) failed at the
    first epoch's end with a modulo by zero; PlateauDecay and EMA named only the command
    line's flags; ELBO(num_samples=1.5) failed inside torch.randn; a loglik_fn of the wrong
    shape an IndexError; build_vector_model('linear') said 'use linear'; evaluate_bound's
    batch_size 0 a bare range() error."""
    from graphvae.bounds import ELBO, IWAE, DiagGaussian, PermutationELBO
    from graphvae.decoders import GNNFeatureDecoder
    from graphvae.training import EMA, Converged, PlateauDecay
    from graphvae.vector import build_vector_model, evaluate_bound
    with pytest.raises(ValueError, match=r"^unknown conv 'gcnn'; choose one of \['gat', 'gcn'"):
        GNNFeatureDecoder(16, 8, conv="gcnn")
    with pytest.raises(ValueError, match=r"^out_channels must be a width from 1"):
        GNNFeatureDecoder(16, 0)
    with pytest.raises(ValueError, match=r"^every must be a whole number >= 1, got 0$"):
        Converged(1e-3, every=0)
    with pytest.raises(ValueError, match=r"^Converged needs a finite tol >= 0, got -1"):
        Converged(-1.0)
    with pytest.raises(ValueError, match=r"^PlateauDecay needs a factor \(lr_decay\) in "
                                         r"\(0, 1\)"):
        PlateauDecay(2.0)
    with pytest.raises(ValueError, match=r"^EMA needs a decay \(ema\) in \(0, 1\), got 1.5"):
        EMA(1.5)
    for cls in (ELBO, IWAE, PermutationELBO):
        for bad in (0, 1.5, "2", True):
            with pytest.raises(ValueError, match=r"^num_samples must be a whole number >= 1"):
                cls(num_samples=bad)
    q = DiagGaussian(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"loglik_fn must return the \(S, K\) = \(2, K\) "
                                         r"log-likelihoods .* got \(4,\)$"):
        PermutationELBO(num_samples=2)(q, lambda z: torch.zeros(4))
    right = PermutationELBO(num_samples=2)(q, lambda z: torch.zeros(z.size(0), 4))
    assert right.value.item() == pytest.approx(math.log(4))     # logsumexp of four zeros
    with pytest.raises(ValueError, match=r"^unknown model 'linear': use one of \['ae', 'dae', "
                                         r"'iwae', 'vae'\]; the linear autoencoder is "
                                         r"graphvae.vector.LinearAE"):
        build_vector_model("linear", 6)
    m = build_vector_model("vae", 6, latent_dim=2, likelihood="gaussian")
    with pytest.raises(ValueError, match=r"^batch_size must be a whole number >= 1, got 0$"):
        evaluate_bound(m, torch.zeros(4, 6), batch_size=0)


def test_vector_data_refuses_splits_of_other_widths_and_an_image_shape_that_does_not_fit(
        tmp_path):
    """load_matrix(path, image_shape=(3, 3)) of a 4-column matrix, and splits of widths 4
    and 5, were accepted and failed later, in the plots or in training."""
    from graphvae.vector import load_matrix
    from graphvae.vector.data import VectorData
    path = tmp_path / "m.csv"
    path.write_text("\n".join(",".join(str(i + j) for j in range(4)) for i in range(20)))
    assert load_matrix(path, image_shape=(2, 2)).image_shape == (2, 2)
    assert load_matrix(path, image_shape=(np.int64(2), 2)).image_shape == (2, 2)
    with pytest.raises(ValueError, match=r"image_shape \(3, 3\) does not hold a row of 4 "
                                         r"values"):
        load_matrix(path, image_shape=(3, 3))
    with pytest.raises(ValueError, match=r"splits must have one width, got train 4, valid 5, "
                                         r"test 4"):
        VectorData(torch.zeros(3, 4), torch.zeros(2, 5), torch.zeros(2, 4), "x")
    with pytest.raises(ValueError, match=r"test split must be a 2-D tensor of rows, got \(4,\)"):
        VectorData(torch.zeros(3, 4), torch.zeros(2, 4), torch.zeros(4), "x")


def test_small_graph_helpers_by_hand(monkeypatch, tmp_path):
    """identity_features is the identity; upper_triangle keeps i < j only (no loop, no
    reversed copy); a bool is not a node count; max-pool matching refuses a prediction of
    another shape; --num-nodes' range is 1 … MAX_NUM_NODES inclusive, named as such."""
    from graphvae.datasets import edge_reader
    from graphvae.graph import check_num_nodes, upper_triangle
    from graphvae.permutations import max_pool_matching
    from graphvae.tasks.features import identity_features

    assert torch.equal(identity_features(3).to_dense(), torch.eye(3))
    ei = torch.tensor([[0, 1, 2, 1], [1, 0, 2, 2]])
    assert upper_triangle(ei).tolist() == [[0, 1], [1, 2]]
    for bad in (True, False):
        with pytest.raises(ValueError, match="num_nodes must be a whole number"):
            check_num_nodes(bad)
    with pytest.raises(ValueError, match=r"target has 2 nodes but the prediction is \(2, 3\)"):
        max_pool_matching(torch.zeros(2, 2), torch.zeros(2, 3))
    path = tmp_path / "e.csv"
    path.write_text("0,1\n")
    monkeypatch.setattr(edge_reader, "MAX_NUM_NODES", 5)
    assert edge_reader.read_edge_index(path, 5)[0] == ["0", "1", "2", "3", "4"]
    for n in (0, 6):
        with pytest.raises(ValueError, match=rf"^--num-nodes must be at least 1 and at most "
                                             rf"5 \(.*\), got {n}$"):
            edge_reader.read_edge_index(path, n)
