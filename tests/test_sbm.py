"""The planted-partition graph generator (``graphvae.datasets.sbm``) and ``graphvae
make-graph``."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch

from graphvae.cli import main
from graphvae.cli.makegraph import default_blocks, planted_path
from graphvae.datasets.files import load_edge_list
from graphvae.datasets.sbm import (
    PlantedSBM,
    make_sbm,
    oracle_scores,
    plant_sbm,
    sample_edges,
    write_edge_list,
)


def all_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


@pytest.fixture(scope="module")
def mid():
    """n = 2000, m = 20000, 2 blocks: the graph and its planted parameters."""
    return make_sbm(2000, 20000, 2, seed=3)


# ---------------------------------------------------------------------------- sampling

def test_same_seed_same_graph_other_seed_other_graph():
    a, pa = make_sbm(500, 3000, 3, seed=7)
    b, pb = make_sbm(500, 3000, 3, seed=7)
    c, _ = make_sbm(500, 3000, 3, seed=8)
    assert torch.equal(a, b)
    for x, y in zip((pa.blocks, pa.theta, pa.omega), (pb.blocks, pb.theta, pb.omega)):
        assert np.array_equal(x, y)
    assert a.shape != c.shape or not torch.equal(a, c)


def test_edges_are_simple_sorted_and_in_range(mid):
    ei, planted = mid
    assert ei.dtype == torch.int64 and ei.dim() == 2 and ei.shape[0] == 2
    i, j = ei.numpy()
    assert (i < j).all()                                      # i < j: no loops, one direction
    assert i.min() >= 0 and j.max() < planted.num_nodes == 2000
    keys = i * 2000 + j
    assert (np.diff(keys) > 0).all()                          # sorted and unique


def test_edge_count_and_mixing_match_the_model(mid):
    ei, planted = mid
    i, j = all_pairs(planted.num_nodes)
    p = planted.prob(i, j)
    between = planted.blocks[i] != planted.blocks[j]
    # realised counts against their expectations under independent Bernoulli(p) pairs
    src, dst = ei.numpy()
    realised_between = int((planted.blocks[src] != planted.blocks[dst]).sum())
    realised_within = ei.shape[1] - realised_between
    for got, mask in ((realised_between, between), (realised_within, ~between)):
        mean, sd = p[mask].sum(), math.sqrt((p[mask] * (1 - p[mask])).sum())
        assert abs(got - mean) < 4 * sd, (got, mean, sd)
    # within a few per cent of the request: only merged parallel edges are lost
    assert 0.95 * 20000 < ei.shape[1] < 20000
    assert 0.95 * 20000 < p.sum() < 20000
    # the between-block fraction: the model's expectation within 4 binomial standard
    # deviations; that expectation exceeds mixing = 0.2 only by the merging of parallel
    # edges, which is stronger within blocks (larger λ)
    frac, expected = realised_between / ei.shape[1], p[between].sum() / p.sum()
    assert abs(frac - expected) < 4 * math.sqrt(expected * (1 - expected) / ei.shape[1])
    assert 0.2 <= expected < 0.21


def test_pair_frequencies_follow_one_minus_exp_minus_rate():
    """Edges of a tiny planted graph, over many samples: each pair's frequency is the
    Poisson-collapse probability 1 - exp(-λ), not min(1, λ)."""
    planted = PlantedSBM(np.array([0, 0, 0, 1, 1, 1]),
                         np.array([0.5, 0.3, 0.2, 0.6, 0.3, 0.1]),
                         np.array([[6.0, 0.8], [0.8, 4.0]]))
    i, j = all_pairs(6)
    p = planted.prob(i, j)
    lam = planted.rate(i, j)
    rng = np.random.default_rng(0)
    reps = 3000
    counts = np.zeros((6, 6))
    for _ in range(reps):
        a, b = sample_edges(planted, rng).numpy()
        assert (a < b).all() and len(set(zip(a, b))) == len(a)
        counts[a, b] += 1
    freq = counts[i, j] / reps
    sd = np.sqrt(p * (1 - p) / reps)
    assert np.all(np.abs(freq - p) < 4 * sd + 1e-12), (freq, p)
    assert np.abs(freq - np.minimum(1, lam)).max() > 0.2      # the test can tell them apart


def test_equal_degrees_and_block_sizes():
    planted = plant_sbm(1001, 5000, 4, np.random.default_rng(0), exponent=math.inf)
    sizes = np.bincount(planted.blocks)
    assert sizes.max() - sizes.min() <= 1
    for b, size in enumerate(sizes):
        assert np.allclose(planted.theta[planted.blocks == b], 1 / size)
    heavy = plant_sbm(1001, 5000, 4, np.random.default_rng(0))
    assert np.allclose(np.bincount(heavy.blocks, heavy.theta), 1.0)
    assert heavy.theta.max() > 5 * heavy.theta.min()


def test_single_block_ignores_mixing():
    ei, planted = make_sbm(300, 1000, 1, seed=0, mixing=0.7)
    assert planted.omega.shape == (1, 1) and ei.shape[1] > 900


@pytest.mark.parametrize("kwargs, reason", [
    ({"num_nodes": 1}, r"num_nodes must lie in \[2, "),
    ({"num_edges": 0}, r"num_edges must lie in \[1, 2475\], got 0"),
    ({"num_edges": 10**6}, r"num_edges must lie in \[1, 2475\], got 1000000"),
    ({"num_blocks": 0}, r"num_blocks must lie in \[1, 100\], got 0"),
    ({"num_blocks": 101}, r"num_blocks must lie in \[1, 100\], got 101"),
    ({"mixing": 1.5}, r"mixing must lie in \[0, 1\], got 1\.5"),
    ({"mixing": float("nan")}, r"mixing must be a number, got NaN"),
    ({"exponent": 2.0}, r"exponent must be greater than 2"),
    ({"seed": -1}, r"seed must lie in \[0, "),
    ({"num_nodes": 100.5}, r"num_nodes must be an integer, got 100\.5"),
    ({"num_blocks": 100}, r"one node per block no pair lies within a block"),
    ({"num_edges": True}, r"num_edges must be an integer, got True"),
    ({"mixing": "0.5"}, r"mixing must be a number, got '0\.5'"),
])
def test_make_sbm_rejects_bad_arguments(kwargs, reason):
    """Each case is refused for its own reason (without its own check, a NaN mixing would
    still be refused, later, as parameters holding NaN)."""
    args = {"num_nodes": 100, "num_edges": 500, "num_blocks": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=reason) as err:
        make_sbm(**args)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- rates and oracle

def test_rate_prob_and_oracle_scores():
    planted = PlantedSBM(np.array([0, 1, 1]), np.array([1.0, 0.5, 2.0]),
                         np.array([[2.0, 0.5], [0.5, 1.0]]))
    i, j = np.array([0, 1, 0, 2]), np.array([1, 2, 0, 1])
    assert np.allclose(planted.rate(i, j), [0.25, 1.0, 0.0, 1.0])
    assert np.allclose(planted.prob(i, j), 1 - np.exp(-np.array([0.25, 1.0, 0.0, 1.0])))
    scores = oracle_scores(planted, torch.tensor([[0, 1], [1, 2]]))
    assert isinstance(scores, torch.Tensor) and scores.dtype == torch.float64
    assert torch.allclose(scores, torch.tensor([1 - math.exp(-0.25), 1 - math.exp(-1.0)],
                                               dtype=torch.float64))
    with pytest.raises(ValueError, match="out of range"):
        planted.prob(np.array([0]), np.array([3]))
    with pytest.raises(ValueError, match="shape"):
        oracle_scores(planted, np.zeros((3, 2), dtype=np.int64))


def test_rates_keep_their_digits_mixed_inputs_and_bad_indices():
    """P(i ~ j) = 1 − exp(−λ) keeps its digits for a tiny λ (as −expm1(−λ); 1 − exp(−λ)
    is 0 below 1e−16, which ties the sparse pairs an oracle must rank); a tensor and an
    array give a tensor; float and negative node indices are refused (numpy would read
    −1 as the last node)."""
    planted = PlantedSBM(np.array([0, 0, 1]), np.array([1e-10, 2e-10, 1.0]),
                         np.array([[1.0, 0.0], [0.0, 1.0]]))
    p = planted.prob(np.array([0]), np.array([1]))
    assert p[0] == pytest.approx(2e-20, rel=1e-12, abs=0)
    rate = planted.rate(torch.tensor([0, 1]), np.array([1, 0]))
    assert isinstance(rate, torch.Tensor) and rate.dtype == torch.float64
    assert torch.allclose(rate, torch.tensor([2e-20, 2e-20], dtype=torch.float64), rtol=1e-12,
                          atol=0)
    assert isinstance(planted.prob(np.array([0]), torch.tensor([1])), torch.Tensor)
    with pytest.raises(ValueError, match="node indices must be integers, got dtype float64"):
        planted.prob(np.array([0.0]), np.array([1]))
    with pytest.raises(ValueError, match=r"node index out of range \[0, 3\): -1\.\.-1"):
        planted.rate(np.array([-1]), np.array([0]))


def test_the_fingerprint_counts_the_nodes():
    """The edge (0, 1) has the key 0·n + 1 = 1 whatever n is: the digest includes n, so a
    graph with an isolated node more is another graph; a self-loop, a repeat and a
    reversed edge change nothing."""
    from graphvae.datasets.planted import edge_fingerprint
    one = np.array([[0], [1]])
    assert edge_fingerprint(one, 2) != edge_fingerprint(one, 3)
    assert edge_fingerprint(np.array([[1, 0, 1, 2], [0, 1, 1, 2]]), 3) == \
        edge_fingerprint(one, 3)


def test_mixing_one_puts_no_edge_inside_a_block():
    """mixing 1: every edge joins two blocks, the diagonal rate is 0."""
    ei, planted = make_sbm(200, 1000, 4, seed=0, mixing=1.0)
    assert (np.diag(planted.omega) == 0).all() and (planted.omega[0, 1] > 0)
    i, j = ei.numpy()
    assert ei.shape[1] > 900 and (planted.blocks[i] != planted.blocks[j]).all()


def test_a_draw_at_either_end_of_the_uniform_picks_a_node_of_its_block_with_theta():
    """``_pick`` reads block ``r``'s node off ``r + u``: at ``u = 0`` it is the block's first
    node with θ > 0 (not the last node of block ``r − 1``, whose cumulative share is ``r``
    exactly); at the largest ``u`` below 1, ``r + u`` rounds to ``r + 1`` and it is the
    block's last node with θ > 0 (not a node after it with θ = 0, nor one of the next
    block, nor past the end). Blocks: 0 = {0, 1}, 1 = {2, 3, 4}, with θ_2 = θ_4 = 0."""
    from graphvae.datasets.sbm import _block_cdf, _pick

    class Fixed:
        def __init__(self, u):
            self.u = u

        def random(self, size):
            return np.full(size, self.u)

    blocks = np.array([0, 0, 1, 1, 1])
    theta = np.array([0.5, 0.5, 0.0, 1.0, 0.0])
    order, g, last = _block_cdf(blocks, theta, 2)
    top = np.nextafter(1.0, 0.0)
    assert 1.0 + top == 2.0                                   # rounds up, as described
    r = np.array([0, 1])
    assert _pick(order, g, last, r, Fixed(0.0)).tolist() == [0, 3]
    assert _pick(order, g, last, r, Fixed(top)).tolist() == [1, 3]


def test_oracle_ranks_held_out_edges_above_non_edges(mid):
    ei, planted = mid
    rng = np.random.default_rng(0)
    pos = ei[:, rng.choice(ei.shape[1], 1000, replace=False)].numpy()
    edges = set(map(tuple, ei.t().tolist()))
    cand = np.sort(rng.integers(0, 2000, (3000, 2)), axis=1)
    neg = np.array([c for c in map(tuple, cand.tolist())
                    if c[0] != c[1] and c not in edges][:1000]).T
    s_pos, s_neg = oracle_scores(planted, pos), oracle_scores(planted, neg)
    # ROC AUC as the Mann-Whitney statistic (ties count one half)
    diff = s_pos[:, None] - s_neg[None, :]
    auc = (diff > 0).mean() + 0.5 * (diff == 0).mean()
    assert 0.8 < auc < 1.0


# ------------------------------------------------------------------------------- files

def test_save_load_round_trip(tmp_path, mid):
    _, planted = mid
    path = planted.save(tmp_path / "p.npz")
    back = PlantedSBM.load(path)
    for name in ("blocks", "theta", "omega"):
        a, b = getattr(planted, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["p.npz"]  # no temporary file left


def test_a_failed_save_keeps_the_file_it_would_replace(tmp_path, mid, monkeypatch):
    """A write that fails half-way (a full disk) leaves the earlier file whole and no
    temporary file beside it."""
    _, planted = mid
    path = planted.save(tmp_path / "p.npz")
    before = path.read_bytes()

    def half_written(fh, **arrays):
        fh.write(before[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(OSError, match="No space left"):
        planted.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.npz"]


def _bad_files(tmp_path):
    """Bad planted files, each with the words its one-line refusal must hold."""
    good = {"blocks": np.array([0, 1, 1]), "theta": np.array([1.0, 0.5, 0.5]),
            "omega": np.array([[1.0, 0.1], [0.1, 1.0]])}
    cases = {
        "missing theta": ({k: v for k, v in good.items() if k != "theta"},
                          "missing array(s) theta; expected blocks, theta, omega"),
        "NaN": ({**good, "theta": np.array([1.0, np.nan, 0.5])}, "theta holds NaN or infinite"),
        "infinite": ({**good, "theta": np.array([1.0, np.inf, 0.5])},
                     "theta holds NaN or infinite"),
        "negative": ({**good, "omega": np.array([[1.0, -0.1], [-0.1, 1.0]])},
                     "omega holds negative values"),
        "block out of range": ({**good, "blocks": np.array([0, 1, 2])},
                               "block ids must lie in [0, 2) for a 2x2 omega, got 0..2"),
        "negative block": ({**good, "blocks": np.array([-1, 1, 1])},
                           "block ids must lie in [0, 2) for a 2x2 omega, got -1..1"),
        "wrong shape": ({**good, "theta": np.array([1.0, 0.5])},
                        "theta must have shape (3,) like blocks, got (2,)"),
        "theta a column": ({**good, "theta": np.array([[1.0], [0.5], [0.5]])},
                           "theta must have shape (3,) like blocks, got (3, 1)"),
        "no nodes": ({"blocks": np.zeros(0, dtype=np.int64), "theta": np.zeros(0),
                      "omega": good["omega"]}, "blocks must be a non-empty vector"),
        "omega not square": ({**good, "omega": np.ones((2, 3))},
                             "omega must be a non-empty square matrix, got shape (2, 3)"),
        "asymmetric": ({**good, "omega": np.array([[1.0, 0.2], [0.1, 1.0]])},
                       "omega must be symmetric"),
        "float blocks": ({**good, "blocks": np.array([0.0, 1.0, 1.0])},
                         "blocks must be integers, got dtype float64"),
        "bool theta": ({**good, "theta": np.array([True, False, True])},
                       "theta must be real numbers, got dtype bool"),
    }
    paths = []
    for name, (arrays, reason) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.npz"
        np.savez(path, **arrays)
        paths.append((path, reason))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip archive")
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, **good)
    truncated.write_bytes(truncated.read_bytes()[:200])
    text = tmp_path / "text.npz"
    text.write_text("blocks,theta\n")
    np.savez(tmp_path / "objects.npz", **{**good, "blocks": np.array([{}, {}, {}])})
    return [*paths, (corrupt, "not"), (truncated, "not"),
            (text, "not an .npz archive (the zip file numpy.savez writes)"),
            (tmp_path / "objects.npz", "Object arrays cannot be loaded"),
            (tmp_path / "absent.npz", "")]


def test_load_rejects_bad_files_with_one_line(tmp_path):
    for path, reason in _bad_files(tmp_path):
        with pytest.raises(ValueError) as err:
            PlantedSBM.load(path)
        msg = str(err.value)
        assert "\n" not in msg and str(path) in msg and reason in msg, (reason, msg)


def test_write_edge_list_exact_text(tmp_path):
    ei = torch.tensor([[0, 9, 10, 99, 1234], [5, 100, 1234, 7, 0]])
    path = write_edge_list(ei, tmp_path / "e.csv")
    assert path.read_text() == "source,target\n0,5\n9,100\n10,1234\n99,7\n1234,0\n"
    tsv = write_edge_list(ei[:, :2].numpy(), tmp_path / "e.tsv")
    assert tsv.read_text() == "source\ttarget\n0\t5\n9\t100\n"
    empty = write_edge_list(np.zeros((2, 0), dtype=np.int64), tmp_path / "empty.txt")
    assert empty.read_text() == "source target\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv", "e.tsv", "empty.txt"]
    with pytest.raises(ValueError, match="negative"):
        write_edge_list(np.array([[0], [-1]]), tmp_path / "neg.csv")


# --------------------------------------------------------------------------------- CLI

def test_cli_writes_edge_list_and_planted_parameters(tmp_path, capsys):
    out = tmp_path / "g.csv"
    assert main(["make-graph", "--nodes", "400", "--edges", "1500", "--blocks", "4",
                 "--seed", "5", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert len(stdout.strip().splitlines()) == 1 and "400 nodes" in stdout
    assert "; 4 blocks, " in stdout
    assert planted_path(out) == tmp_path / "g.planted.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.csv", "g.planted.npz"]
    ei, planted = make_sbm(400, 1500, 4, seed=5)
    data = load_edge_list(out)
    names = [int(s) for s in data.node_names]
    read = {(min(names[a], names[b]), max(names[a], names[b]))
            for a, b in data.edge_index.t().tolist()}
    assert read == set(map(tuple, ei.t().tolist()))
    back = PlantedSBM.load(planted_path(out))
    assert np.array_equal(back.theta, planted.theta)
    assert np.array_equal(back.blocks, planted.blocks)


def test_cli_replaces_its_own_pair_and_refuses_any_other_file(tmp_path, capsys):
    """A second make-graph to the same --out replaces the pair it wrote; a file of the
    user's at either name (the planted file is one the user never named), a FIFO or a link
    is refused in one line and kept as it was."""
    import os
    flags = ["make-graph", "--nodes", "50", "--edges", "60", "--out"]
    out = tmp_path / "g.csv"
    assert main([*flags, str(out), "--seed", "1"]) == 0
    first = out.read_bytes()
    assert main([*flags, str(out), "--seed", "2"]) == 0
    assert out.read_bytes() != first                               # replaced: its own pair
    # a draw with no edges (its note advises another --seed) is replaced too: the reader
    # refuses an edge list without edges, and the check took it for another graph
    empty = tmp_path / "e.csv"
    assert main(["make-graph", "--nodes", "2", "--edges", "1", "--out", str(empty)]) == 0
    assert empty.read_text() == "source,target\n"
    assert main(["make-graph", "--nodes", "2", "--edges", "1", "--seed", "1", "--out",
                 str(empty)]) == 0
    capsys.readouterr()

    def refused(path, message):
        with pytest.raises(SystemExit) as exc:
            main([*flags, str(path)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err

    mine = tmp_path / "mine.csv"
    mine.write_text("precious\n")
    refused(mine, "with no mine.planted.npz beside it")
    assert mine.read_text() == "precious\n"
    npz = tmp_path / "y.planted.npz"
    npz.write_text("precious\n")
    refused(tmp_path / "y.csv", "is not planted parameters make-graph wrote")
    assert npz.read_text() == "precious\n" and not (tmp_path / "y.csv").exists()
    out.write_text("1,2\n")                   # the user's list beside make-graph's planted
    refused(out, "does not start with make-graph's header")
    assert out.read_text() == "1,2\n"
    # with make-graph's header kept: a list the user edited, or a graph of names, was
    # replaced (the header was all that was checked)
    for edited in ("source,target\n1,2\n5,7\n", "source,target\nalice,bob\n"):
        out.write_text(edited)
        refused(out, "is not the graph make-graph wrote with g.planted.npz (its edges "
                     "differ: edited, or another graph's)")
        assert out.read_text() == edited
    os.mkfifo(tmp_path / "f.csv")
    refused(tmp_path / "f.csv", "not a regular file")
    (tmp_path / "link.csv").symlink_to(mine)
    refused(tmp_path / "link.csv", "not a regular file")
    assert mine.read_text() == "precious\n"
    # g.tsv would keep its parameters in g.planted.npz, g.csv's: refused, g.csv's pair kept
    out.unlink()
    assert main([*flags, str(out), "--seed", "3"]) == 0
    pair = out.read_bytes(), planted_path(out).read_bytes()
    capsys.readouterr()
    refused(tmp_path / "g.TSV", "g.csv is beside it, and both would keep their planted "
                                "parameters in g.planted.npz")
    assert (out.read_bytes(), planted_path(out).read_bytes()) == pair
    # not twins: another stem that starts alike, another suffix; a twin of a name that
    # holds glob characters is one
    (tmp_path / "g.old.csv").write_text("x")
    (tmp_path / "g.json").write_text("x")
    assert main([*flags, str(out), "--seed", "4"]) == 0
    assert main([*flags, str(tmp_path / "h[1].csv")]) == 0
    capsys.readouterr()
    refused(tmp_path / "h[1].tsv", "h[1].csv is beside it")
    # a header line that only starts like make-graph's is not its header
    out.write_bytes(out.read_bytes().replace(b"source,target\n", b"source,targets\n", 1))
    refused(out, "does not start with make-graph's header")


def test_planted_model_of_another_size_than_num_nodes_is_refused(tmp_path, capsys):
    """--num-nodes 30 with the planted parameters of a 50-node graph: its node ids all lie
    in the planted model's range, and the oracle row came out as a meaningless 50 %."""
    big = tmp_path / "big.csv"
    assert main(["make-graph", "--nodes", "50", "--edges", "60", "--out", str(big)]) == 0
    small = tmp_path / "small.csv"
    small.write_text("".join(f"{i},{(i + 1) % 30}\n" for i in range(30)))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["linkpred", "--quiet", "--edges", str(small), "--num-nodes", "30", "--epochs",
              "1", "--planted", str(planted_path(big)), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "is a model of 50 nodes, and --num-nodes declares 30" in err
    assert not (tmp_path / "o").exists()


def test_planted_parameters_of_another_graph_are_refused(tmp_path, capsys):
    """make-graph's planted file records its graph's edge fingerprint: the planted file of
    one 60-node graph given with another 60-node graph (or with the embedded default) gave
    an "oracle" below chance (AUC 43.5). Each is now one line, exit 2, before training; the
    right pair still runs, and the fingerprint ignores how the edges are listed."""
    from graphvae.datasets.planted import PlantedSBM, edge_fingerprint
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for path, seed in ((a, "0"), (b, "1")):
        assert main(["make-graph", "--nodes", "60", "--edges", "150", "--seed", seed,
                     "--out", str(path)]) == 0
    for graph in (["--edges", str(b)], []):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(["linkpred", "--quiet", *graph, "--epochs", "1",
                  "--planted", str(planted_path(a))])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert ("the planted parameters were drawn for another graph than this one" in err
                if graph else "not the graph it was made with" in err), err  # more nodes
    capsys.readouterr()
    assert main(["linkpred", "--quiet", "--edges", str(a), "--epochs", "1", "--json",
                 "--planted", str(planted_path(a))]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["oracle_test_auc"] > 0.5
    e = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 2]])               # a triangle and a loop
    listed = torch.tensor([[2, 1, 0, 1, 0], [1, 0, 2, 2, 1]])    # reversed, repeated
    assert edge_fingerprint(e, 5) == edge_fingerprint(listed, 5) != edge_fingerprint(e, 6)
    assert PlantedSBM.load(planted_path(a)).graph is not None


def test_cli_summary_says_one_block(tmp_path, capsys):
    assert main(["make-graph", "--nodes", "50", "--edges", "100", "--blocks", "1",
                 "--seed", "0", "--out", str(tmp_path / "g.csv")]) == 0
    assert "; 1 block, " in capsys.readouterr().out


def test_half_as_many_blocks_as_nodes_is_the_most_with_edges_inside(tmp_path):
    """--blocks N/2 (two nodes a block) is accepted; N/2 + 1 leaves one-node blocks and is
    refused (99 blocks of 100 nodes gave 40 of 200 requested edges, 97 % between)."""
    from graphvae.cli.makegraph import check_args

    def args(k, mixing=0.2):
        return argparse.Namespace(nodes=100, edges=200, blocks=k, mixing=mixing,
                                  exponent=2.5, seed=0, out=tmp_path / "g.csv")
    assert check_args(args(50)) == 50
    with pytest.raises(ValueError, match="use at most N/2 = 50 blocks, or --mixing 1"):
        check_args(args(51))
    assert check_args(args(99, mixing=1.0)) == 99          # all edges between blocks: fine


def test_default_blocks():
    assert [default_blocks(n) for n in (2, 3, 4, 2000, 10**4, 10**6)] == [1, 1, 2, 2, 10, 1000]
    assert default_blocks(10**7) == 4096                   # sbm.MAX_BLOCKS, not 10,000


@pytest.mark.parametrize("flags, problem", [
    (["--nodes", "1", "--edges", "1"], "--nodes must lie in [2, 2147483647], got 1"),
    (["--nodes", "100", "--edges", "0"], "--edges must lie in [1, 2475] (N(N-1)/4"),
    (["--nodes", "100", "--edges", "2476"], "--edges must lie in [1, 2475]"),
    (["--nodes", "100", "--edges", "200", "--blocks", "0"], "--blocks must lie in [1, 100]"),
    (["--nodes", "100", "--edges", "200", "--blocks", "101"], "--blocks must lie in [1, 100]"),
    (["--nodes", "10000", "--edges", "200", "--blocks", "4097"],
     "--blocks must lie in [1, 4096], got 4097"),
    (["--nodes", "100", "--edges", "200", "--blocks", "100"], "--blocks 100 leaves blocks"),
    (["--nodes", "100", "--edges", "200", "--blocks", "51"],      # one-node blocks: 40 edges
     "--blocks 51 leaves blocks of one node"),
    (["--nodes", "100", "--edges", "200", "--mixing", "-0.1"], "--mixing must lie in [0, 1]"),
    (["--nodes", "100", "--edges", "200", "--mixing", "1.5"], "--mixing must lie in [0, 1]"),
    (["--nodes", "100", "--edges", "200", "--exponent", "2"],
     "--exponent must be greater than 2 (inf: equal degrees), got 2.0"),
    (["--nodes", "100", "--edges", "200", "--exponent", "nan"],
     "--exponent must be greater than 2 (inf: equal degrees), got nan"),
    (["--nodes", "100", "--edges", "200", "--seed", "-3"], "--seed must"),
    (["--nodes", "100", "--edges", "200", "--out", "{tmp}/g.json"], "must end in .csv, .tsv"),
    (["--nodes", "100", "--edges", "200", "--out", "{tmp}/a_file/g.csv"],   # (missing folders
     "a_file is a file, not a folder"),                           # are made, as --out's are)
    (["--nodes", "100", "--edges", "200", "--out", "{tmp}/dir.csv"],
     "dir.csv is a folder; give a file path ending in .csv"),
    (["--nodes", "many", "--edges", "200"], "--nodes: invalid int value: 'many'"),
])
def test_cli_bad_flags_exit_2_with_one_line(tmp_path, capsys, flags, problem):
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "a_file").write_text("")
    flags = [f.format(tmp=tmp_path) for f in flags]
    if "--out" not in flags:
        flags += ["--out", str(tmp_path / "g.csv")]
    with pytest.raises(SystemExit) as exc:
        main(["make-graph", *flags])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("graphvae: error: ")
    assert problem in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "dir.csv"]   # nothing written


def test_make_graph_notes_a_graph_far_below_the_requested_edges(tmp_path, capsys):
    """150 blocks of 2 nodes with no mixing hold 150 distinct pairs: 22,425 requested
    edges came out as 150 with no word (the help promises a loss of a few per cent, up to a
    third near the density cap). Below 90 % of the request a note says why; the default
    3-block graph (19,494 of 20,000 here) has none."""
    assert main(["make-graph", "--nodes", "300", "--edges", "22425", "--blocks", "150",
                 "--mixing", "0", "--out", str(tmp_path / "a.csv")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("make-graph: note: 150 of the 22,425 requested edges (1%)"), err
    assert main(["make-graph", "--nodes", "3000", "--edges", "20000",
                 "--out", str(tmp_path / "b.csv")]) == 0
    assert capsys.readouterr().err == ""


def test_make_graph_does_not_blame_merging_for_the_poisson_count_of_a_small_request(
        tmp_path, capsys):
    """2 nodes and 1 requested edge: the number of draws is Poisson of mean 1, and seed 0
    draws none. The note blamed merged draws and small blocks ("0 of the 1 requested
    edges"); it now says the graph has no edges. A shortfall within three standard
    deviations of the Poisson count gets no note (seed 1: one edge, none missing)."""
    from graphvae.datasets.sbm import make_sbm
    assert make_sbm(2, 1, 1, 0)[0].shape == (2, 0)            # the case: no draw at all
    assert main(["make-graph", "--nodes", "2", "--edges", "1", "--out",
                 str(tmp_path / "a.csv")]) == 0
    out, err = capsys.readouterr()
    assert "2 nodes, 0 edges (requested 1; 1 block, 0.0% between blocks)" in out
    assert err == ("make-graph: note: the graph drawn has no edges (the number of draws is "
                   "Poisson, of mean about 1); another --seed or more --edges gives some\n")
    assert (tmp_path / "a.csv").read_text().splitlines() == ["source,target"]
    assert main(["make-graph", "--nodes", "2", "--edges", "1", "--seed", "1", "--out",
                 str(tmp_path / "one.csv")]) == 0
    assert "2 nodes, 1 edge (requested 1;" in capsys.readouterr().out
    assert make_sbm(40, 9, 2, 3)[0].size(1) < 0.9 * 9         # short by chance: 8 or fewer
    assert main(["make-graph", "--nodes", "40", "--edges", "9", "--seed", "3", "--out",
                 str(tmp_path / "b.csv")]) == 0
    assert capsys.readouterr().err == ""


def test_a_malformed_graph_fingerprint_in_a_planted_file_is_one_line(tmp_path):
    """The planted file's optional ``graph`` entry is read from a file like the rest: a
    member that is not .npy data (numpy hands back its raw bytes) was an AttributeError;
    it, a number and a string that is not a SHA-256 digest are one DataError each."""
    import zipfile

    from graphvae.datasets.sbm import PlantedSBM
    from graphvae.errors import DataError
    good = PlantedSBM(np.array([0, 0, 1, 1]), np.ones(4), np.array([[0.5, 0.1], [0.1, 0.5]]),
                      "ab" * 32)
    assert PlantedSBM.load(good.save(tmp_path / "ok.npz")).graph == "ab" * 32
    raw = tmp_path / "raw.npz"
    PlantedSBM(good.blocks, good.theta, good.omega).save(raw)
    with zipfile.ZipFile(raw, "a", compression=zipfile.ZIP_STORED) as z:
        z.writestr("graph.npy", b"not an array")
    cases = [raw]
    for name, value in (("number", np.array(7)), ("short", np.array("abc"))):
        path = tmp_path / f"{name}.npz"
        np.savez(path, blocks=good.blocks, theta=good.theta, omega=good.omega, graph=value)
        cases.append(path)
    for path in cases:
        with pytest.raises(DataError, match="its graph fingerprint is not a SHA-256 hex"):
            PlantedSBM.load(path)


def test_planted_rates_that_overflow_are_refused(tmp_path):
    """A planted file with theta 1e300 gave numpy's overflow warning on stderr and an
    oracle AUC of 50 from infinite rates; a rate θ_i θ_j ω that passes float64 is refused
    where the parameters are read, and 1e150 (1e300 · ω) still loads."""
    from graphvae.datasets.sbm import PlantedSBM
    from graphvae.errors import DataError
    blocks, omega = np.array([0, 0, 1, 1]), np.array([[0.5, 0.1], [0.1, 0.5]])
    with pytest.raises(ValueError, match=r"^the rates θ_i θ_j ω overflow float64 \(largest "
                                         r"theta 1e\+300, largest omega 0\.5\)$"):
        PlantedSBM(blocks, np.full(4, 1e300), omega)
    rate = PlantedSBM(blocks, np.full(4, 1e150), omega).rate(np.array([0]), np.array([1]))
    assert rate[0] == pytest.approx(0.5e300, rel=1e-15)
    path = tmp_path / "p.npz"
    np.savez(path, blocks=blocks, theta=np.full(4, 1e300), omega=omega)
    with pytest.raises(DataError, match=r"p\.npz: .*the rates θ_i θ_j ω overflow float64"):
        PlantedSBM.load(path)


def test_the_loss_near_the_cap_follows_the_closed_form():
    """The loss near the cap that the module docstring and make-graph's --edges help work
    out: a pair inside one of K blocks has λ ≈ (1 − mixing)·K/2, one between blocks
    λ ≈ mixing·K/(2(K − 1)), and a pair of mean λ keeps (1 − e^−λ)/λ of its draws; the
    kept share is those weighted by each kind's share of the draws. The sampled share
    lies within 0.02 of it (the closed form leaves out the degree correction's spread of
    λ and the block sizes' finite corrections). (The docstring's counts, seed 0, are the
    code's: checked as documentation.)"""
    from graphvae.datasets.sbm import make_sbm

    for n, k in ((1000, 2), (3500, 4)):
        inside, between = 0.8 * k / 2, 0.2 * k / (2 * (k - 1))
        kept = 0.8 * (1 - math.exp(-inside)) / inside + 0.2 * (1 - math.exp(-between)) / between
        m = n * (n - 1) // 4
        for seed in (1, 2):
            got = make_sbm(n, m, k, seed)[0].shape[1] / m
            assert abs(got - kept) < 0.02, (n, k, seed, got, kept)
    for n, m, k, e in ((1000, 5000, 2, 4803), (2000, 20000, 2, 19418), (100, 2475, 2, 1774),
                       (1000, 249750, 2, 181187), (3500, 3061625, 4, 1794844)):
        assert make_sbm(n, m, k, 0)[0].shape[1] == e


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError])
def test_make_graph_keeps_the_old_pair_when_writing_the_new_one_fails(tmp_path, capsys,
                                                                      monkeypatch, stop):
    """A replacing make-graph removed the old edge list first: a Ctrl-C or a full disk
    while the new one was written lost the old pair's edge list. Both old files now stay
    byte for byte until the new pair is whole, and no temporary file is left."""
    import errno

    import graphvae.datasets.edge_writer as writer
    out = tmp_path / "g.csv"
    assert main(["make-graph", "--nodes", "50", "--edges", "60", "--out", str(out)]) == 0
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(old) == ["g.csv", "g.planted.npz"]
    real = writer._lines

    def fail(*args):
        real(*args)
        raise stop() if stop is KeyboardInterrupt else OSError(errno.ENOSPC, "No space left")
    monkeypatch.setattr(writer, "_lines", fail)
    rc = None
    try:
        rc = main(["make-graph", "--nodes", "50", "--edges", "80", "--seed", "3",
                   "--out", str(out)])
    except SystemExit as exc:
        rc = exc.code
    assert rc in (2, 130), rc
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old
    if stop is OSError:                   # the file named is --out, not a temporary one
        assert capsys.readouterr().err.strip() == (f"graphvae: error: cannot write {out}: "
                                                   f"No space left")


def test_a_planted_file_whose_header_claims_a_huge_array_is_damaged(tmp_path):
    """A 772-byte .npz whose blocks.npy header declared 10¹⁰ numbers ended as "out of
    memory ... ask for less", naming no file: numpy allocates what the header says. The
    declared size is compared with the member's before anything is read."""
    import io
    import zipfile

    from graphvae.datasets.planted import PlantedSBM
    from graphvae.errors import DataError
    good = PlantedSBM(np.zeros(5, dtype=np.int64), np.ones(5), np.ones((1, 1)))
    good.save(tmp_path / "ok.npz")
    assert PlantedSBM.load(tmp_path / "ok.npz").num_nodes == 5
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<i8", "fortran_order": False,
                                               "shape": (10 ** 10,)})
    with zipfile.ZipFile(tmp_path / "ok.npz") as zf, \
            zipfile.ZipFile(tmp_path / "liar.npz", "w") as out:
        for info in zf.infolist():
            body = head.getvalue() + bytes(40) if info.filename == "blocks.npy" \
                else zf.read(info)
            out.writestr(info.filename, body)
    with pytest.raises(DataError, match=r"liar\.npz: damaged: its member 'blocks\.npy' "
                                        r"declares \(10000000000,\) of int64 "
                                        r"\(80,000,000,000 bytes\) and holds 40$"):
        PlantedSBM.load(tmp_path / "liar.npz")
    # numpy's 3.0 header (the 2.0 layout, UTF-8) was let through to a 74.5 GiB allocation
    v3 = b"\x93NUMPY\x03\x00"
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000,), }"
    text += " " * ((-(len(v3) + 4 + len(text) + 1)) % 64) + "\n"
    with zipfile.ZipFile(tmp_path / "ok.npz") as zf, \
            zipfile.ZipFile(tmp_path / "liar3.npz", "w") as out:
        for info in zf.infolist():
            body = v3 + len(text).to_bytes(4, "little") + text.encode() + bytes(40) \
                if info.filename == "theta.npy" else zf.read(info)
            out.writestr(info.filename, body)
    with pytest.raises(DataError, match=r"liar3\.npz: damaged: its member 'theta\.npy' "
                                        r"declares \(10000000000,\) of float64"):
        PlantedSBM.load(tmp_path / "liar3.npz")
    # valid members of every layout still load: Fortran order, 0-d, strings, 3.0 headers
    for name, arr in (("f", np.asfortranarray(np.ones((3, 2)))), ("s", np.array("ab")),
                      ("z", np.zeros((0, 4))), ("u", np.array(["x", "yz"]))):
        np.savez(tmp_path / f"{name}.npz", a=arr)
        from graphvae.io import check_zip_stored
        assert check_zip_stored(tmp_path / f"{name}.npz") == ["a.npy"]
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.arange(5.0), version=(3, 0))
    with zipfile.ZipFile(tmp_path / "v3.npz", "w") as out:
        out.writestr("a.npy", buf.getvalue())
    assert np.load(tmp_path / "v3.npz")["a"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert check_zip_stored(tmp_path / "v3.npz") == ["a.npy"]


def test_the_oracle_reads_each_graph_node_as_the_planted_node_it_names(tmp_path, capsys):
    """A make-graph edge list is read in the order its node names first appear, not as the
    planted model's numbers: the oracle's AUC / AP on a run's test pairs are those of the
    planted nodes the graph's names give (computed again here from the same split), which
    the nodes' positions would not give."""
    from graphvae.datasets.planted import PlantedSBM
    from graphvae.tasks.link_prediction import PRESETS, run_link_prediction
    from graphvae.tasks.oracle import oracle_metrics
    path = tmp_path / "a.csv"
    assert main(["make-graph", "--nodes", "60", "--edges", "150", "--seed", "0",
                 "--out", str(path)]) == 0
    data, planted = load_edge_list(path), PlantedSBM.load(planted_path(path))
    assert [int(s) for s in data.node_names] != list(range(data.num_nodes))
    res = run_link_prediction(data, PRESETS["vgae"].replace(epochs=1), 0, progress=False,
                              planted=planted)
    named = oracle_metrics(planted, res.split, data.node_names)
    assert {k: res.metrics[k] for k in named} == named
    assert oracle_metrics(planted, res.split, None) != named
