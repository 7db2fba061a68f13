"""The invariance-testing toolkit (graphvae.testing) and ``graphvae check-invariance``."""

import ast
import contextlib
import io
import json
import re

import numpy as np
import pytest
import torch
from conftest import default_dtype, random_graph
from hypothesis import given, settings
from torch import nn

from graphvae.adjacency import Adjacency
from graphvae.bounds import DiagGaussian
from graphvae.cli import main
from graphvae.containers import GraphBatch, GraphTensors
from graphvae.datasets import make_sbm_graph
from graphvae.decoders import InnerProductDecoder
from graphvae.graph import permute_graph
from graphvae.models import EdgeObjective, EquivariantGraphVAE, build_model
from graphvae.models.graphvae import GraphVAE
from graphvae.testing import (
    InvarianceError,
    assert_bound_invariant,
    assert_decoder_equivariant,
    assert_encoder_equivariant,
    check_all,
    exact_permutation_bound,
    graph_strategy,
    measure_bound,
    measure_decoder,
    measure_encoder,
)

COMPONENTS = ("encoder mean", "encoder scale", "decoder", "bound")


def graphs(sizes=(5, 7, 9), d=3, seed=0):
    out = []
    for i, n in enumerate(sizes):
        ei = random_graph(n, 0.4, seed + i)
        x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed + i),
                        dtype=torch.float64)
        out.append((x, ei))
    return out


def parse_error(message):
    """``(deviation, graph, permutation)`` read back from an InvarianceError's message."""
    m = re.search(r"worst deviation (\S+) > atol .* on graph (\d+) .*under permutation (\[.*\])",
                  message)
    assert m, message
    return float(m.group(1)), int(m.group(2)), ast.literal_eval(m.group(3))


# ---------------------------------------------------------------- equivariant models pass

@pytest.mark.parametrize("encoder", ["gcn", "sage", "gin", "gat"])
@pytest.mark.parametrize("kind", ["gae", "vgae", "joint"])
def test_graph_autoencoders_pass_every_check(float64, kind, encoder):
    torch.manual_seed(0)
    model = build_model(kind, 3, encoder, (8,), 4)
    data = graphs()
    assert assert_encoder_equivariant(model, data, num_permutations=4, atol=1e-5) <= 1e-5
    assert assert_decoder_equivariant(model, data, num_permutations=4, atol=1e-5) <= 1e-5
    assert assert_bound_invariant(model, data, num_permutations=4, atol=1e-5) <= 1e-5
    # one graph given as a bare (x, edge_index) tuple works as well
    assert assert_bound_invariant(model, data[0], num_permutations=2, atol=1e-5) <= 1e-5


class RowShifted(InnerProductDecoder):
    """``l_ij + i``: the logits depend on the row's position, so the decoder is not
    equivariant; by hand, ``P l Pᵀ`` and ``l(Pz)`` differ by ``|r − perm[r]|`` in row r."""

    def forward_all(self, z):
        return super().forward_all(z) + torch.arange(z.size(-2), dtype=z.dtype)[:, None]

    def forward_rows(self, z, rows):
        return super().forward_rows(z, rows) + rows.to(z.dtype)[:, None]


@pytest.mark.parametrize("self_loops", [True, False])
@pytest.mark.parametrize("kind, decoder", [("vgae", "inner"), ("joint", "mlp"),
                                           ("gae", "cosine-bias")])
def test_large_graphs_are_checked_by_blocks_of_rows_with_the_same_results(
        float64, monkeypatch, kind, decoder, self_loops):
    """Past DENSE_BLOCK_ENTRIES pairs (lowered here to 20: blocks of two rows for graphs of
    5, 7 and 9 nodes) the decoder check and the exact bound go by blocks of rows (PubMed's
    (n, n) float64 logits alone are 3 GB): the same deviations, bounds equal to 1e-12, and a
    broken decoder's worst entry found and named at the same place."""
    import graphvae.models.autoencoders as autoencoders
    import graphvae.testing as testing
    from graphvae.containers import PairRows

    torch.manual_seed(0)
    model = build_model(kind, 3, "gcn", (8,), 4, decoder=decoder,
                        objective=EdgeObjective(estimator="dense", self_loops=self_loops))
    broken = build_model("vgae", 3, "gcn", (8,), 4)
    broken.edge_decoder = RowShifted()
    data = graphs()
    x, ei = data[2]
    batch = model.invariance_batch(x, ei)
    eps = torch.randn(1, 9, 4, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    with torch.no_grad():
        whole_bound = model.exact_bound(batch, eps)
    whole = check_all(model, data, num_permutations=3)
    whole_broken = measure_decoder(broken, data, num_permutations=3)
    for module in (autoencoders, testing):
        monkeypatch.setattr(module, "DENSE_BLOCK_ENTRIES", 20)
    with torch.no_grad():
        outs = model.decoder_outputs(model.graph_posterior(batch).loc, batch)
        assert isinstance(outs[0][1], PairRows)
        torch.testing.assert_close(model.exact_bound(batch, eps), whole_bound, rtol=1e-12,
                                   atol=0)
    blocked = check_all(model, data, num_permutations=3)
    for a, b in zip(whole, blocked, strict=True):
        assert b.component == a.component and b.excess <= 1e-9
        assert b.value == pytest.approx(a.value, abs=1e-12)
    got = measure_decoder(broken, data, num_permutations=3)
    assert (got.value, got.graph, got.permutation, got.detail) == (
        whole_broken.value, whole_broken.graph, whole_broken.permutation, whole_broken.detail)
    row = int(re.search(r"at entry \((\d+), \d+\)", got.detail).group(1))
    assert got.value == abs(row - got.permutation[row]) == max(
        abs(r - p) for r, p in enumerate(got.permutation))


def test_sparse_features_are_checked_without_being_made_dense(float64, monkeypatch):
    """Sparse inputs (a featureless graph's identity: 80 GB dense at 10⁵ nodes) go through
    every check sparse: a model fed bag-of-words CSR features passes, with dense copies of
    (n, d) matrices refused; and identity features recomputed for each relabelling make
    the encoder check fail, as they should (a node's input is its id)."""
    from graphvae.graph import sparse_features
    from graphvae.tasks.features import identity_features
    torch.manual_seed(0)
    n, d = 30, 12
    g = torch.Generator().manual_seed(3)
    x = torch.rand(n, d, generator=g, dtype=torch.float64)
    x[x < 0.8] = 0
    ei = random_graph(n, 0.2, 5)
    model = build_model("vgae", d, "gcn", (8,), 4)
    real = torch.Tensor.to_dense

    def refuse_full(t, *args, **kwargs):
        if t.dim() == 2 and t.size(0) == n:
            raise AssertionError("a sparse feature matrix was made dense")
        return real(t, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to_dense", refuse_full)
    devs = check_all(model, [(sparse_features(x), ei)], num_permutations=3)
    assert all(dv.excess <= 1e-9 for dv in devs), devs
    model = build_model("vgae", n, "gcn", (8,), 4).double()
    devs = check_all(model, [(identity_features(n).double(), ei)], num_permutations=3,
                     features=lambda e: identity_features(n))
    assert devs[0].component == "encoder mean" and devs[0].value > 1e-3


# ---------------------------------------------------------------- GraphVAE

def graphvae_and_graphs(k=5):
    torch.manual_seed(0)
    model = GraphVAE(3, k, latent_channels=4, hidden_channels=(8,), decoder_hidden=(16,))
    return model, graphs(sizes=(3, 4, 5), seed=10)


def test_graphvae_encoder_is_invariant(float64):
    model, data = graphvae_and_graphs()
    assert assert_encoder_equivariant(model, data, atol=1e-5) <= 1e-5


def test_graphvae_plain_elbo_is_not_invariant(float64):
    model, data = graphvae_and_graphs()
    with pytest.raises(InvarianceError) as info:
        assert_bound_invariant(model, data, atol=1e-5)
    msg = str(info.value)
    for word in ("bound", "worst deviation", "graph", "permutation"):
        assert word in msg
    value, gi, perm = parse_error(msg)
    n = data[gi][0].size(0)
    assert sorted(perm) == list(range(n)) and perm != list(range(n))
    assert str(perm) in msg
    assert value > 1e-5
    # its decoder has a fixed node order as well
    with pytest.raises(InvarianceError, match="decoder"):
        assert_decoder_equivariant(model, data, atol=1e-5)


def test_graphvae_deviation_in_message_is_reproducible(float64):
    """With ε = 0 the bound is deterministic: the reported permutation, applied by hand,
    gives the reported deviation."""
    model, data = graphvae_and_graphs()

    def at_mean(m, batch, eps):
        return m.exact_bound(batch, torch.zeros_like(eps))

    with pytest.raises(InvarianceError) as info:
        assert_bound_invariant(model, data, atol=1e-5, bound_fn=at_mean)
    value, gi, perm = parse_error(str(info.value))
    x, ei = data[gi]
    n = x.size(0)
    xp, eip, _ = permute_graph(torch.tensor(perm), x, ei)
    eps = torch.zeros(1, 4)
    with torch.no_grad():
        ref = model.bound(x, Adjacency(ei, n), eps=eps).value
        got = model.bound(xp, Adjacency(eip, n), eps=eps).value
    assert f"{abs(got - ref).item():.3g}" == f"{value:.3g}"
    assert f"expected {ref.item():.10g}, got {got.item():.10g}" in str(info.value)


@pytest.mark.parametrize("k", [4, 6])
def test_graphvae_exact_permutation_bound_is_invariant(float64, k):
    model, data = graphvae_and_graphs(k)
    data = [g for g in data if g[0].size(0) <= k]
    assert assert_bound_invariant(model, data, atol=1e-5, bound_fn=exact_permutation_bound) \
        <= 1e-5


# ---------------------------------------------------------------- a broken encoder

class PositionShifted(nn.Module):
    """A model whose node latents get ``+ i`` at position ``i``: not equivariant. It speaks
    the checks' protocol by delegating to the model it wraps."""

    node_latents = True

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def encode(self, x, adj):
        q = self.inner.encode(x, adj)
        shift = torch.arange(adj.num_nodes, dtype=q.loc.dtype)[:, None]
        return DiagGaussian(q.loc + shift, q.logvar)

    def invariance_batch(self, *graph):
        return self.inner.invariance_batch(*graph)

    def graph_posterior(self, batch):
        return self.encode(batch.x, batch.adj)


def test_broken_encoder_fails_with_a_reproducible_message(float64):
    torch.manual_seed(0)
    inner = build_model("vgae", 3, "gcn", (8,), 4)
    data = graphs()
    assert_encoder_equivariant(inner, data)                 # the unbroken model passes
    model = PositionShifted(inner)
    with pytest.raises(InvarianceError, match="encoder mean") as info:
        assert_encoder_equivariant(model, data)
    value, gi, perm = parse_error(str(info.value))
    # by hand: μ(PG)_i + i against μ(G)_perm[i] + perm[i] deviates by max_i |i - perm[i]|
    assert value == max(abs(i - p) for i, p in enumerate(perm))
    x, ei = data[gi]
    n = x.size(0)
    p = torch.tensor(perm)
    xp, eip, _ = permute_graph(p, x, ei)
    with torch.no_grad():
        ref = model.encode(x, Adjacency(ei, n)).loc[p]
        got = model.encode(xp, Adjacency(eip, n)).loc
    assert (got - ref).abs().max().item() == pytest.approx(value, abs=1e-9)
    # the same worst deviation over every graph and permutation the check drew
    mean, scale = measure_encoder(model, data)
    assert mean.value == pytest.approx(value, abs=1e-9) and mean.permutation == perm
    assert scale.value <= 1e-12                              # the scale was left alone


class FirstEdgeShifted(PositionShifted):
    """Node ``i``'s latents get ``+ k``, ``k`` the column of ``i``'s first listed edge: the
    same under any relabelling that keeps the columns' order, not under a re-sorted list."""

    def encode(self, x, adj):
        q = self.inner.encode(x, adj)
        src = adj.edge_index[0]
        first = torch.full((adj.num_nodes,), float(src.numel()), dtype=q.loc.dtype)
        cols = torch.arange(src.numel(), dtype=q.loc.dtype)
        first = first.scatter_reduce(0, src, cols, reduce="amin")
        return DiagGaussian(q.loc + first[:, None], q.logvar)


def test_a_model_that_reads_the_edge_order_fails(float64):
    """Relabelled graphs list their edges in a shuffled order: relabelling the ids in place
    (what the check did) leaves this model's output equivariant; a re-sorted list does not."""
    torch.manual_seed(0)
    inner = build_model("vgae", 3, "gcn", (8,), 4)
    model = FirstEdgeShifted(inner)
    data = graphs()
    x, ei = data[0]
    n = x.size(0)
    p = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    xp, eip, _ = permute_graph(p, x, ei)
    with torch.no_grad():
        ref = model.encode(x, Adjacency(ei, n)).loc[p]
        in_place = model.encode(xp, Adjacency(eip, n)).loc
        order = torch.argsort(eip[0] * n + eip[1])               # the same edges, sorted
        resorted = model.encode(xp, Adjacency(eip[:, order], n)).loc
    assert (in_place - ref).abs().max() <= 1e-12
    assert (resorted - ref).abs().max() >= 1.0
    mean, _ = measure_encoder(model, data)
    assert mean.value >= 1.0                                   # integer shifts moved
    assert measure_encoder(inner, data)[0].value <= 1e-9


def test_a_graph_without_features_is_named():
    """A PyG Data with no x ended in "'NoneType' object has no attribute 'size'"."""
    from torch_geometric.data import Data
    model = build_model("vgae", 3, "gcn", (8,), 4)
    with pytest.raises(ValueError, match="graph 0: x and edge_index must be tensors, got "
                                         "NoneType and Tensor"):
        measure_encoder(model, Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2))


def test_the_table_names_unmeasured_parts_and_what_rtol_shows():
    """A GAE has no scale: its row said 0.000e+00 ok; it says n/a. Under --rtol the value
    shown is at the entry furthest past its tolerance, and the header says so."""
    from graphvae.tasks.invariance import format_table
    from graphvae.testing import Deviation
    mean = Deviation("encoder mean", 1e-6)
    f64 = torch.float64
    mean.update(torch.tensor([1000.0, 1.0], dtype=f64),
                torch.tensor([1000.0005, 1.0000009], dtype=f64), 0, torch.tensor([1, 0]))
    # excesses 5e-4 - 1e-3 = -5e-4 and 9e-7 - 1e-6 = -1e-7: the second entry is the worst,
    # though the first deviates most
    assert mean.value == pytest.approx(9e-7, rel=1e-6) and mean.excess < 0
    lines = format_table([mean, Deviation("encoder scale", 1e-6)], 1e-5).splitlines()
    assert lines[0].split()[:4] == ["component", "worst", "entry", "atol"]
    assert lines[1].split()[2] == "9.000e-07" and lines[1].endswith("ok")
    assert lines[2].split()[2] == "n/a" and lines[2].endswith("n/a")
    plain = format_table([Deviation("bound")], 1e-5).splitlines()
    assert "max deviation" in plain[0] and plain[1].split()[1] == "n/a"


# ---------------------------------------------------------------- property: any small graph

def _vgae64(**kwargs):
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        return build_model("vgae", 3, "gcn", (8,), 4, **kwargs)


VGAE64 = _vgae64()
# Kipf & Welling's positive re-weighting only enters the training loss, not the bound
VGAE64_UNWEIGHTED = _vgae64(objective=EdgeObjective(reweight=False))


@given(graph_strategy(max_nodes=7, dtype=torch.float64))
@settings(max_examples=25, deadline=None)
def test_vgae_bound_is_invariant_on_any_small_graph(graph):
    x, ei = graph
    n = x.size(0)
    assert x.dtype == torch.float64 and 2 <= n <= 7 and ei.size(1) >= 2
    with default_dtype(torch.float64):
        assert assert_bound_invariant(VGAE64_UNWEIGHTED, graph, num_permutations=3,
                                      atol=1e-5) <= 1e-5
        # the default (re-weighted) VGAE too, complete graphs included
        assert assert_bound_invariant(VGAE64, graph, num_permutations=3, atol=1e-5) <= 1e-5


@given(graph_strategy(max_nodes=5))
@settings(max_examples=5, deadline=None)
def test_the_default_strategy_meets_a_default_model(graph):
    """The README's recipe: a model built with defaults (float32) checked on
    ``graph_strategy()``'s graphs, whose float64 features raised a dtype error."""
    x, _ = graph
    assert x.dtype == torch.get_default_dtype() == torch.float32
    model = build_model("vgae", 3, "gcn", (8,), 4)
    assert assert_encoder_equivariant(model, graph, num_permutations=2, atol=1e-4) <= 1e-4


@pytest.mark.parametrize("n", [2, 3])
def test_default_vgae_bound_check_on_a_complete_graph(float64, n):
    x = torch.randn(n, 3)
    ei = torch.tensor([(i, j) for i in range(n) for j in range(n) if i != j]).t()
    assert assert_bound_invariant(VGAE64, (x, ei), num_permutations=3, atol=1e-5) <= 1e-5


# ---------------------------------------------------------------- the command line

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("linkpred")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["linkpred", "--epochs", "3", "--quiet", "--out", str(out)]) == 0
    return out / "model.pt"


def table_rows(stdout):
    rows = {}
    for line in stdout.splitlines():
        for name in COMPONENTS:
            if line.startswith(name + " "):
                value, atol, status = line[len(name):].split()
                rows[name] = (float(value), float(atol), status)
    return rows


def test_check_invariance_passes_on_a_trained_model(checkpoint, capsys):
    rc = main(["check-invariance", "--checkpoint", str(checkpoint), "--permutations", "3"])
    out = capsys.readouterr().out
    assert rc == 0
    # --quiet (no bars) prints the same table
    assert main(["check-invariance", "--checkpoint", str(checkpoint), "--permutations", "3",
                 "--quiet"]) == 0
    assert capsys.readouterr().out == out
    assert out.splitlines()[0].split() == ["component", "max", "deviation", "atol", "status"]
    rows = table_rows(out)
    assert list(rows) == list(COMPONENTS)
    for value, atol, status in rows.values():
        assert 0.0 <= value <= 1e-5 and atol == 1e-5 and status == "ok"
    assert "FAIL" not in out


def test_check_invariance_fails_in_float32_at_a_tiny_tolerance(checkpoint, capsys):
    rc = main(["check-invariance", "--checkpoint", str(checkpoint), "--permutations", "3",
               "--float32", "--atol", "1e-12", "--rtol", "0"])
    out = capsys.readouterr().out
    assert rc == 1
    rows = table_rows(out)
    assert list(rows) == list(COMPONENTS)
    failed = [name for name, (value, _, status) in rows.items() if status == "FAIL"]
    assert "encoder mean" in failed                          # float32 rounding > 1e-12
    for value, atol, status in rows.values():
        assert atol == 1e-12 and status == ("FAIL" if value > 1e-12 else "ok")
    assert "worst on graph 0" in out and "under permutation" in out
    # --json: the same check as one JSON object on stdout, the table on stderr
    assert main(["check-invariance", "--checkpoint", str(checkpoint), "--permutations", "3",
                 "--float32", "--atol", "1e-12", "--rtol", "0", "--json"]) == 1
    captured = capsys.readouterr()
    assert table_rows(captured.err) == rows
    report = json.loads(captured.out)
    assert report["ok"] is False and report["failed"] == failed
    assert report["permutations"] == 3 and report["float64"] is False
    assert report["graphs"] == [make_sbm_graph().num_nodes] and report["identity_features"] is False
    assert [c["component"] for c in report["components"]] == list(COMPONENTS)
    for c in report["components"]:
        value, _, status = rows[c["component"]]
        assert c["status"] == status and c["max_deviation"] == pytest.approx(value, rel=1e-3)
        assert "expected" in c["where"] and c["graph"] == 0     # the worst entry, named


@pytest.mark.slow  # 6 s (a 2,000-node graph)
def test_float32_bounds_of_a_large_graph_pass_within_the_default_relative_tolerance(
        tmp_path, capsys):
    """A 2,000-node graph's bound is millions of nats, where float32 steps by 0.25 or more: a sum
    in another order lands a step away, so an absolute 1e-5 fails every invariant model.
    With --float32 a deviation may be 1e-6 of the value (about 13 steps): it passes."""
    edges, feats = tmp_path / "g.csv", tmp_path / "x.csv"
    assert main(["make-graph", "--out", str(edges), "--nodes", "2000", "--edges", "10000",
                 "--seed", "1"]) == 0
    values = torch.rand(2000, 3, generator=torch.Generator().manual_seed(0))
    feats.write_text("id,a,b,c\n" + "".join(f"{i},{a:.6f},{b:.6f},{c:.6f}\n"
                                           for i, (a, b, c) in enumerate(values.tolist())))
    assert main(["linkpred", "--edges", str(edges), "--features", str(feats), "--epochs", "2",
                 "--quiet", "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    cmd = ["check-invariance", "--checkpoint", str(tmp_path / "o" / "model.pt"), "--edges",
           str(edges), "--features", str(feats), "--permutations", "3", "--float32"]
    assert main(cmd) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "1e-06·|value|" in out
    assert main([*cmd, "--rtol", "0"]) == 1                   # absolute 1e-5 alone: fails
    rows = table_rows(capsys.readouterr().out)
    assert rows["bound"][2] == "FAIL" and rows["bound"][0] >= 0.25   # whole float32 steps


def test_features_computed_from_node_ids_are_computed_anew_for_a_relabelled_graph(
        tmp_path, capsys):
    """With --feature-mode identity a node's input is its id (X = I): a relabelled graph's
    input is I again, not I's rows moved, so the encoder is not equivariant, and the check
    must say so (it used to move the rows and pass)."""
    assert main(["linkpred", "--feature-mode", "identity", "--epochs", "3", "--quiet",
                 "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    assert main(["check-invariance", "--checkpoint", str(tmp_path / "o" / "model.pt"),
                 "--permutations", "3"]) == 1
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert rows["encoder mean"][2] == "FAIL" and rows["encoder mean"][0] > 1e-3
    assert "features 'identity' are computed from node ids" in out
    # a graph without features gets X = I in the default mode too
    edges = tmp_path / "g.csv"
    assert main(["make-graph", "--out", str(edges), "--nodes", "100", "--edges", "400"]) == 0
    assert main(["linkpred", "--edges", str(edges), "--epochs", "2", "--quiet", "--out",
                 str(tmp_path / "p")]) == 0
    capsys.readouterr()
    assert main(["check-invariance", "--checkpoint", str(tmp_path / "p" / "model.pt"),
                 "--edges", str(edges), "--permutations", "2"]) == 1
    out = capsys.readouterr().out
    assert table_rows(out)["encoder mean"][2] == "FAIL"
    assert "features 'identity' are computed from node ids" in out


def test_a_nan_deviation_fails_and_unmeasured_parts_are_null_in_the_json(checkpoint, capsys,
                                                                          monkeypatch):
    """The command's verdict from the deviations, stood in for here: a NaN deviation (the
    relabelled graph's output NaN, the original's finite) is a failure, not a pass; a part
    nothing was compared for (a GAE's scale) is status n/a with null value, graph and
    where; a measured part without a detail has where null, not ''."""
    import math

    from graphvae.deviations import Deviation
    from graphvae.tasks import invariance as task

    devs = [Deviation("encoder mean", value=0.0, excess=0.0, graph=0),
            Deviation("encoder scale"),
            Deviation("decoder", value=math.nan, excess=math.nan, graph=0,
                      detail="at entry (1, 2) (expected 0.5, got nan)")]
    monkeypatch.setattr(task, "check_model", lambda *a, **k: devs)
    assert main(["check-invariance", "--checkpoint", str(checkpoint), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["failed"] == ["decoder"]
    assert report["deviations"]["encoder scale"] is None
    assert report["components"][:2] == [
        {"component": "encoder mean", "max_deviation": 0.0, "status": "ok", "rtol": 0.0,
         "graph": 0, "where": None},
        {"component": "encoder scale", "max_deviation": None, "status": "n/a", "rtol": 0.0,
         "graph": None, "where": None}]
    assert report["components"][2]["status"] == "FAIL"


def test_features_made_from_node_ids_are_named_by_their_mode(tmp_path, capsys):
    """A model trained with --feature-mode propagated on a graph without features is
    checked with propagated features, and the note names them so (not 'identity'); a model
    of identity features checked on a graph of another size is refused without the hint
    that the graph has no features (that hint is for models that read a feature file)."""
    edges = tmp_path / "g.csv"
    assert main(["make-graph", "--out", str(edges), "--nodes", "60", "--edges", "200"]) == 0
    small = tmp_path / "h.csv"
    assert main(["make-graph", "--out", str(small), "--nodes", "40", "--edges", "100"]) == 0
    for mode in ("propagated", "identity"):
        assert main(["linkpred", "--edges", str(edges), "--feature-mode", mode, "--epochs",
                     "1", "--quiet", "--out", str(tmp_path / mode)]) == 0
    capsys.readouterr()
    main(["check-invariance", "--checkpoint", str(tmp_path / "propagated" / "model.pt"),
          "--edges", str(edges), "--permutations", "2"])
    assert "(features 'propagated' are computed from node ids" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["check-invariance", "--checkpoint", str(tmp_path / "identity" / "model.pt"),
              "--edges", str(small), "--num-nodes", "40", "--permutations", "2"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.rstrip().endswith(
        f"expects 60 input features but {small} has 40"), err


def test_checks_take_graphs_once_and_refuse_none():
    """A generator of graphs is read once for all four checks (the decoder and bound checks
    used to get an exhausted iterator and report 0); no graphs at all is an error, not a
    pass."""
    torch.manual_seed(0)
    model = GraphVAE(3, 5, latent_channels=4)                # a slot-ordered decoder
    graphs = [(torch.randn(5, 3), random_graph(5, 0.5, s)) for s in range(2)]
    listed = [d.value for d in check_all(model, graphs, 2)]
    assert [d.value for d in check_all(model, iter(graphs), 2)] == listed
    assert listed[2] > 0.01 and listed[3] > 0.01             # decoder and bound move
    with pytest.raises(ValueError, match="no graphs to check"):
        check_all(model, [], 2)
    with pytest.raises(ValueError, match="no graphs to check"):
        assert_decoder_equivariant(model, iter([]))


def test_check_invariance_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["check-invariance", "--checkpoint", str(tmp_path / "absent.pt")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("graphvae: error:") and "absent.pt" in err


def test_check_invariance_wrong_feature_width(checkpoint, tmp_path, capsys):
    expected = make_sbm_graph(seed=0).x.size(1)              # what the model was trained on
    assert expected != 2
    edges = tmp_path / "edges.csv"
    edges.write_text("source,target\na,b\nb,c\nc,d\nd,a\na,c\n")
    feats = tmp_path / "features.csv"
    feats.write_text("id,f1,f2\na,0.1,0.2\nb,0.3,0.4\nc,0.5,0.6\nd,0.7,0.8\n")
    with pytest.raises(SystemExit) as info:
        main(["check-invariance", "--checkpoint", str(checkpoint), "--edges", str(edges),
              "--features", str(feats)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("graphvae: error:")
    assert f"checkpoint {checkpoint} expects {expected} input features" in err and \
        "has 2" in err
    # the file's top-level copy of the width, edited, said "expects 64 ... but synthetic
    # has 64"; the model's own width decides (a string there is not read at all)
    ck = torch.load(checkpoint, weights_only=True)
    for value in (str(expected), expected + 1, None):
        torch.save({**ck, "in_channels": value}, tmp_path / "edited.pt")
        main(["check-invariance", "--checkpoint", str(tmp_path / "edited.pt"), "--quiet"])
        assert "error" not in capsys.readouterr().err


def test_relative_tolerance_scales_with_the_value(float64):
    """GraphVAE's plain ELBO moves by about 1 nat on bounds of about -20 nats: rtol 0.2
    (4 nats allowed) accepts it, rtol 1e-3 (0.02 nats) does not."""
    torch.manual_seed(0)
    model = GraphVAE(3, 6, latent_channels=4)
    graphs = [(torch.randn(6, 3), random_graph(6, 0.5, seed=s)) for s in range(2)]
    dev = measure_bound(model, graphs, num_permutations=5)
    assert dev.value > 0.05
    assert assert_bound_invariant(model, graphs, 5, atol=0.0, rtol=0.2) == dev.value
    with pytest.raises(InvarianceError, match="rtol"):
        assert_bound_invariant(model, graphs, 5, atol=0.0, rtol=1e-3)


# ---------------------------------------------------------------- the one-shot model

def typed_graphs(sizes=(4, 6), seed=0, node_types=3, edge_types=2):
    """(x, edge_index, node_types, edge_types) with one-hot types in the features."""
    from graphvae.containers import degree_features

    gen = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(sizes):
        ei = random_graph(n, 0.6, seed + i)
        und = ei[:, ei[0] < ei[1]]
        ei = torch.cat([und, und.flip(0)], 1)
        bond = torch.randint(0, edge_types, (und.size(1),), generator=gen)
        nt = torch.randint(0, node_types, (n,), generator=gen)
        x = torch.cat([degree_features(n, ei),
                       torch.nn.functional.one_hot(nt, node_types).float()], 1)
        out.append((x, ei, nt, torch.cat([bond, bond])))
    return out


def oneshot_model(in_ch, node_types=0, edge_types=0):
    from graphvae.models.oneshot import EquivariantGraphVAE

    torch.manual_seed(0)
    return EquivariantGraphVAE(in_ch, [0, 1, 1, 1, 1, 1, 1], latent_channels=4,
                               hidden_channels=(8, 8), node_types=node_types,
                               edge_types=edge_types)


@pytest.mark.parametrize("typed", [False, True])
def test_oneshot_model_passes_every_check(float64, typed):
    gs = typed_graphs()
    if not typed:
        gs = [(x[:, :17], ei) for x, ei, _, _ in gs]          # degree features only
    model = oneshot_model(gs[0][0].size(1), *((3, 2) if typed else (0, 0))).double()
    assert assert_encoder_equivariant(model, gs, num_permutations=4) <= 1e-5
    assert assert_decoder_equivariant(model, gs, num_permutations=4) <= 1e-5
    assert assert_bound_invariant(model, gs, num_permutations=4) <= 1e-5
    # the decoder check includes log p(G | Z): it is a finite number of nats, not zero
    b = model.bound(GraphBatch.collate([GraphTensors(4, gs[0][1], *(gs[0][2:] if typed else
                                                                     (None, None)))],
                                       [gs[0][0]]))
    assert torch.isfinite(b.value).all() and float(b.value.detach()) < 0


def test_oneshot_checks_catch_a_position_dependent_decoder(float64):
    gs = [(x[:, :17], ei) for x, ei, _, _ in typed_graphs(sizes=(5,))]
    model = oneshot_model(17).double()
    plain = model.edge_logits

    def skewed(z):  # adds a term that depends on node positions: not equivariant
        logits, h = plain(z)
        k = z.size(-2)
        return logits + torch.arange(k, dtype=z.dtype)[:, None] * 0.1, h

    model.edge_logits = skewed
    with pytest.raises(InvarianceError, match="decoder"):
        assert_decoder_equivariant(model, gs, num_permutations=4)
    with pytest.raises(InvarianceError, match="bound"):
        assert_bound_invariant(model, gs, num_permutations=4)
    assert assert_encoder_equivariant(model, gs, num_permutations=4) <= 1e-5


def test_typed_graphs_keep_types_with_their_nodes(float64):
    """A relabelling that forgot to move the node types would change log p(G | Z)."""
    from graphvae.testing import _relabellings

    gs = typed_graphs(sizes=(6,))
    model = oneshot_model(gs[0][0].size(1), 3, 2)
    for r in _relabellings(model, gs, 3, seed=0):
        b, bp = r.batch, r.batch_p
        assert torch.equal(bp.node_types, b.node_types[r.perm])
        assert torch.equal(bp.edge_types[0], b.edge_types[0][r.perm][:, r.perm])
        assert torch.equal(bp.dense[0], b.dense[0][r.perm][:, r.perm])


def test_a_generation_checkpoint_checked_on_graphs_it_cannot_take_is_a_one_line_error(
        tmp_path, capsys):
    """A one-shot model trained on ego graphs of at most 6 nodes, checked with a data root
    whose ego-small set has 12-node graphs: its p(n) has no 12, which used to surface as an
    IndexError (exit 3)."""
    import networkx as nx

    from graphvae.datasets.graphgen import write_graph6
    for name, sizes in (("a", [4, 5, 6]), ("b", [12])):
        graphs = [nx.star_graph(sizes[i % len(sizes)] - 1) for i in range(20)]
        write_graph6(graphs, tmp_path / name / "graphgen" / "ego_small.g6")
    out = tmp_path / "o"
    assert main(["generate", "--dataset", "ego-small", "--data-root", str(tmp_path / "a"),
                 "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["check-invariance", "--checkpoint", str(out / "model.pt"), "--data-root",
              str(tmp_path / "b"), "--permutations", "2"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "the model does not take graph 0 of ego-small" in err and "(12 nodes)" in err


@pytest.mark.slow       # several end-to-end runs: 5-9 s, kept out of make test's 3 minutes
def test_check_invariance_on_generation_checkpoints(tmp_path, capsys):
    for model in ("seq-vae", "oneshot-vae"):        # the default, and the one-shot VAE
        out = tmp_path / model
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            assert main(["generate", "--model", model, "--epochs", "2", "--quiet", "--out",
                         str(out)]) == 0
        rc = main(["check-invariance", "--checkpoint", str(out / "model.pt"),
                   "--permutations", "3", "--num-graphs", "3"])
        text = capsys.readouterr().out
        assert rc == 0, (model, text)
        rows = table_rows(text)
        assert list(rows) == list(COMPONENTS)
        assert all(status == "ok" and value <= 1e-5 for value, _, status in rows.values())

    out = tmp_path / "graphvae"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["generate", "--model", "graphvae", "--epochs", "1", "--quiet",
                     "--out", str(out)]) == 0
    rc = main(["check-invariance", "--checkpoint", str(out / "model.pt"), "--permutations", "3",
               "--num-graphs", "2"])
    rows = table_rows(capsys.readouterr().out)
    # GraphVAE's graph-level encoder pools over nodes (invariant); its decoder has fixed slots
    assert rows["encoder mean"][2] == "ok" and rows["decoder"][2] == "FAIL" and rc == 1

    for flags in (["--dataset", "cora"], ["--features", str(tmp_path / "x.csv")]):
        with pytest.raises(SystemExit) as info:
            main(["check-invariance", "--checkpoint", str(out / "model.pt"), *flags])
        assert info.value.code == 2 and "its own data set" in capsys.readouterr().err


def test_checks_refuse_what_would_pass_any_model_or_never_end():
    """Zero relabellings passed every model (``check_all`` reported excess −inf); 10¹²
    ran for ever; an empty graph divided by zero; NaN features made every output NaN and
    the model was blamed ("expected nan, got nan"); a negative tolerance failed every
    model. Each is a one-line error before any model pass."""
    model = build_model("vgae", 3)
    path = (torch.randn(4, 3), torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]))
    for count in (0, -5, 10 ** 12, 2.0, True):
        with pytest.raises(ValueError, match="num_permutations must be a whole number from 1 "
                                             "to 10,000"):
            assert_encoder_equivariant(model, path, count)
        with pytest.raises(ValueError, match="num_permutations must be"):
            check_all(model, path, count)
    assert_encoder_equivariant(model, path, np.int64(2))   # numpy's integers are counts
    with pytest.raises(ValueError, match="graph 0 has no nodes"):
        assert_encoder_equivariant(model, (torch.zeros(0, 3),
                                           torch.zeros(2, 0, dtype=torch.long)))
    nan = path[0].clone()
    nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match="graph 0: its features are not all finite"):
        assert_decoder_equivariant(model, (nan, path[1]))
    with pytest.raises(ValueError, match="no graphs to check"):
        assert_bound_invariant(model, None)
    with pytest.raises(ValueError, match="atol must be a finite number >= 0, got -1"):
        assert_encoder_equivariant(model, path, 2, atol=-1.0)
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0, got -0.1"):
        measure_bound(model, path, 2, rtol=-0.1)
    with pytest.raises(TypeError, match="seed must be an integer, got 'a'"):
        assert_encoder_equivariant(model, path, 2, seed="a")
    assert assert_encoder_equivariant(model, path, 3) < 1e-5      # a sound call still checks


def test_one_shot_models_refuse_impossible_size_counts():
    """``size_counts`` are p(n) up to a factor: a negative count gave another size a
    probability above 1 (a bound too high), NaN a NaN bound, inf a bound of −inf, and a
    list running to 10⁶ nodes an exemplar prior of that many slots."""
    from graphvae.models import EquivariantGraphVAE, SequentialGraphVAE

    for cls in (EquivariantGraphVAE, SequentialGraphVAE):
        for counts in ([0, 1, -5, 3, 4], [0, 1, float("nan")], [0, 2, float("inf")]):
            with pytest.raises(ValueError, match="size_counts must be finite counts >= 0"):
                cls(3, counts, latent_channels=4, hidden_channels=(8,))
        with pytest.raises(ValueError, match="size_counts runs to graphs of 6,000 nodes"):
            cls(3, [0.0] * 6000 + [1.0], latent_channels=4, hidden_channels=(8,))
    model = EquivariantGraphVAE(3, [0, 1, 0, 3], latent_channels=4, hidden_channels=(8,))
    assert torch.allclose(model.size_logprob.exp(), torch.tensor([0, 0.25, 0, 0.75]))


def test_graph_models_refuse_graphs_past_their_sizes_and_bad_sample_counts():
    """A graph larger than p(n)'s support indexed past ``size_logprob`` (a raw IndexError);
    ``sample(-1)`` gave ``[]`` (GraphVAE) or torch's multinomial error, and ``sample(0)``
    of the one-shot models failed."""
    import numpy as np

    from graphvae.models import EquivariantGraphVAE, SequentialGraphVAE

    path = GraphTensors(4, torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]))
    batch = GraphBatch.collate([path], [torch.ones(4, 3)])
    gen = torch.Generator().manual_seed(0)
    models = [cls(3, [0, 1, 2, 3], latent_channels=4, hidden_channels=(8,))
              for cls in (EquivariantGraphVAE, SequentialGraphVAE)]
    for model in models:
        with pytest.raises(ValueError, match="a graph of 4 nodes; this model's p\\(n\\) runs "
                                             "to 3 nodes"):
            model.bound(batch)
        short = GraphTensors(3, path.edge_index[:, :4])
        value = model.bound(GraphBatch.collate([short], [torch.ones(3, 3)]), generator=gen)
        assert torch.isfinite(value.value).all()        # a size it has stays scored
    for model in models + [GraphVAE(3, 4, latent_channels=4)]:
        for count in (-1, 1.5, True, "2"):
            with pytest.raises(ValueError, match="num_graphs must be a whole number >= 0"):
                model.sample(count, gen)
        assert model.sample(0, gen) == []
        assert len(model.sample(np.int64(2), gen)) == 2


def test_the_tolerance_is_inclusive_and_generation_graphs_are_the_first_test_graphs():
    """A deviation exactly at atol passes (the check is |f(PG) − P f(G)| <= atol); one
    above fails and names where. check-invariance on a generation checkpoint takes the
    first N test graphs of the run's split: N, not N + 1."""
    from graphvae.deviations import Deviation
    from graphvae.tasks.generation import load_generation_data
    from graphvae.tasks.generation_config import GenerationConfig
    from graphvae.tasks.invariance import format_table, generation_graphs

    at = Deviation("edge logits", value=0.5, excess=0.5, graph=0, permutation=[1, 0])
    over = Deviation("node mean", value=0.75, excess=0.75, graph=3, permutation=[0, 1])
    table = format_table([at, over], atol=0.5).splitlines()
    assert table[1].endswith("  ok") and table[2].endswith("  FAIL")
    assert table[3].startswith("  worst on graph 3") and len(table) == 4
    cfg = GenerationConfig()
    graphs, label = generation_graphs(cfg, None, 2)
    test = load_generation_data(cfg, None).test[:2]
    assert label.endswith(", 2 test graphs") and len(graphs) == 2
    assert [g[1].size(1) for g in graphs] == [2 * t.number_of_edges() for t in test]


def test_size_distribution_ignores_a_count_of_empty_graphs_and_refuses_small_negatives():
    """p(n) is over n >= 1: a count given for n = 0 is dropped, so counts [2, 1, 0, 3]
    give p = [0, 1/4, 0, 3/4]; and any negative count, even one above -1, is refused."""
    model = EquivariantGraphVAE(3, [2, 1, 0, 3], latent_channels=4, hidden_channels=(8,))
    assert torch.allclose(model.size_logprob.exp(), torch.tensor([0, 0.25, 0, 0.75]))
    with pytest.raises(ValueError, match="size_counts must be finite counts >= 0"):
        EquivariantGraphVAE(3, [0, 1, -0.5, 3], latent_channels=4, hidden_channels=(8,))
