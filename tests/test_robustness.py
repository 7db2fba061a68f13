"""Bad input, bad output folders, extreme values and dense graphs: every command ends in a
result or one line ``graphvae: error: ...`` with exit status 2, before any training."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from graphvae import cli
from graphvae.run_folder import MANIFEST, clean_leftovers, output_folder

ROOT = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    """``main(argv)``: ``(exit status, stdout, stderr)``."""
    try:
        rc = cli.main(argv)
    except SystemExit as exc:
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_line_error(capsys, argv, pattern):
    rc, out, err = run(argv, capsys)
    assert rc == 2, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphvae: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# ------------------------------------------------------------------ the issue's command lines
def test_edge_list_field_over_the_csv_limit(tmp_path, capsys):
    f = write(tmp_path / "e.csv", "1,2\n3," + "x" * 140_000 + "\n")
    msg = one_line_error(capsys, ["linkpred", "--edges", str(f)], r"e\.csv:2: not a valid CSV")
    assert len(msg) < 300


def test_edge_list_unterminated_quote(tmp_path, capsys):
    f = write(tmp_path / "e.csv", '1,2\n"3,4\n5,6\n')
    one_line_error(capsys, ["linkpred", "--edges", str(f)],
                   r"e\.csv:2: a quoted cell runs over several lines")


GRAPHML_BODY = ('<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><key id="d0" '
                'for="node" attr.name="label" attr.type="string"/><graph '
                'edgedefault="undirected"><node id="a"><data key="d0">{}</data></node>'
                '<node id="b"/><edge source="a" target="b"/></graph></graphml>')


@pytest.mark.parametrize("name, dtd, use, encoding", [
    # ten levels of ten references: 10^10 copies of a 20-byte string from a 1 kB file
    ("laughs", "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lolololololololololo"}">'
                       for i in range(11)), "&l10;", "utf-8"),
    ("laughs16", '<!ENTITY l0 "lol"><!ENTITY l1 "&l0;&l0;&l0;&l0;&l0;">', "&l1;", "utf-16"),
    ("external", '<!ENTITY x SYSTEM "file:///etc/passwd">', "&x;", "utf-8"),
], ids=["laughs", "laughs16", "external"])
def test_graphml_with_a_document_type_declaration_is_refused(name, dtd, use, encoding,
                                                             tmp_path, capsys):
    """GraphML needs no DTD, and a DTD's entities can expand a small file without bound or
    name other files. They were refused only by the expat build's own limits (2.4 and
    later); the reader now refuses any DTD, in UTF-8 and UTF-16 alike, before parsing."""
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n<!DOCTYPE g [{dtd}]>\n'
            + GRAPHML_BODY.format(use))
    f = write(tmp_path / f"{name}.graphml", text.encode(encoding))
    one_line_error(capsys, ["linkpred", "--edges", str(f), "--epochs", "1"],
                   rf"{name}\.graphml: has a document type declaration \(<!DOCTYPE")
    plain = write(tmp_path / "plain.graphml", GRAPHML_BODY.format("a label").encode(encoding))
    from graphvae.datasets.files import load_graph_file
    assert load_graph_file(plain).num_nodes == 2           # the same file without the DTD


def test_graphml_long_attribute_of_310_digits(tmp_path, capsys):
    f = write(tmp_path / "g.graphml", (
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        '<key id="d0" for="node" attr.name="w" attr.type="long"/><graph edgedefault="undirected">'
        f'<node id="a"><data key="d0">{"9" * 310}</data></node>'
        '<node id="b"><data key="d0">2</data></node><edge source="a" target="b"/>'
        '</graph></graphml>'))
    msg = one_line_error(capsys, ["linkpred", "--edges", str(f)],
                         r"g\.graphml: node 'a': attribute 'w' = .* is not a finite float32")
    assert "(310 characters)" in msg                        # the 310 digits are cut


@pytest.mark.parametrize("command", [["linkpred"], ["generate"], ["vector"]])
def test_out_is_an_existing_file(tmp_path, capsys, command):
    f = write(tmp_path / "taken", "mine")
    start = time.perf_counter()
    one_line_error(capsys, [*command, "--quiet", "--out", str(f)],
                   r"--out .*taken exists and is not a folder")
    assert time.perf_counter() - start < 5                  # refused before training
    assert f.read_text() == "mine"


@pytest.mark.parametrize("command", [["linkpred"], ["generate"], ["vector"]])
def test_out_is_a_folder_of_other_files(tmp_path, capsys, command):
    thesis = write(tmp_path / "docs" / "thesis.tex", "\\begin{document}")
    one_line_error(capsys, [*command, "--quiet", "--out", str(tmp_path / "docs")],
                   r"folder with other files in it")
    assert thesis.read_text() == "\\begin{document}"


@pytest.mark.slow  # 6 s each (a child process in its own mount namespace)
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
@pytest.mark.parametrize("command", [["linkpred"], ["generate"], ["vector"]])
def test_out_on_a_read_only_file_system(tmp_path, command):
    """A read-only tmpfs in a private mount namespace: refused in one line before training."""
    ro = tmp_path / "ro"
    ro.mkdir()
    script = (f"mount -t tmpfs -o ro none {ro} || exit 77; exec {sys.executable} -m graphvae "
              f"{' '.join(command)} --quiet --epochs 1 --out {ro}/out")
    res = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                         text=True, timeout=120)
    if res.returncode == 77:
        pytest.skip("cannot mount a tmpfs here")
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert "Read-only file system" in res.stderr and "seed 0" not in res.stdout


@pytest.mark.parametrize("dtype, shown", [("<U3", r"<U3 \(text\)"), ("|S2", r"\|S2 \(bytes\)"),
                                          ("<M8[D]", r"datetime64\[D\] \(dates\)")])
def test_vector_npy_of_text_bytes_or_dates(tmp_path, capsys, dtype, shown):
    arr = np.zeros((20, 3), dtype=dtype)
    np.save(tmp_path / "m.npy", arr)
    one_line_error(capsys, ["vector", "--data", str(tmp_path / "m.npy")],
                   rf"m\.npy must be numeric, got dtype {shown}")


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_vector_data_that_cannot_be_read_is_named(tmp_path, capsys, suffix):
    """A file whose read fails (a link to /proc/self/mem: an I/O error) is named with the
    OS's error; a .npy's header was read outside the check and said only "OSError"."""
    (tmp_path / f"m{suffix}").symlink_to("/proc/self/mem")
    one_line_error(capsys, ["vector", "--data", str(tmp_path / f"m{suffix}")],
                   rf"m\{suffix}: cannot read the file \(OSError: \[Errno 5\] Input/output "
                   r"error\)")


def test_vector_csv_beyond_float32(tmp_path, capsys):
    f = write(tmp_path / "m.csv", "\n".join(["1e39,2,3"] * 20))
    one_line_error(capsys, ["vector", "--data", str(f)], r"m\.csv:1: 20 NaN, infinite or "
                                                         r"beyond-float32 entries \(the "
                                                         r"first in column 1\)")


@pytest.mark.parametrize("dtype", [">f8", ">i4", "<u2", "<u4", "<u8", "|u1"])
def test_vector_npy_of_any_byte_order_or_unsigned_type_is_read(tmp_path, dtype):
    from graphvae.vector.data import load_matrix
    arr = (np.arange(60) % 7).reshape(20, 3).astype(dtype)
    np.save(tmp_path / "m.npy", arr)
    data = load_matrix(tmp_path / "m.npy")
    rows = torch.cat([data.train, data.valid, data.test])
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, arr.astype(float).tolist()))


def _checkpoint(tmp_path, capsys) -> Path:
    out = tmp_path / "run"
    rc, _, err = run(["linkpred", "--quiet", "--epochs", "2", "--out", str(out)], capsys)
    assert rc == 0, err
    return out / "model.pt"


def test_check_invariance_on_a_featureless_graph_says_why_the_widths_differ(tmp_path, capsys):
    """The synthetic graph's model (64 features) on an edge list without features: '... but
    ring.csv has 30' did not say that the 30 are X = I's columns, one a node."""
    good = _checkpoint(tmp_path, capsys)
    ring = write(tmp_path / "ring.csv", "".join(f"{i},{(i + 1) % 30}\n" for i in range(30)))
    one_line_error(capsys, ["check-invariance", "--checkpoint", str(good), "--edges", str(ring)],
                   r"expects 64 input features but .*ring\.csv has 30 \(it has no features: "
                   r"X = I, one column a node; give --features\)$")


def test_check_invariance_on_broken_checkpoints(tmp_path, capsys):
    good = _checkpoint(tmp_path, capsys)
    ck = torch.load(good, weights_only=True)
    cases = {
        "no config": ({k: v for k, v in ck.items() if k != "config"}, "lacks 'config'"),
        "no state": ({k: v for k, v in ck.items() if k != "state_dict"},
                     "no state_dict of tensors"),
        "wrong size": ({**ck, "state_dict": {k: torch.zeros(3, 3) for k in ck["state_dict"]}},
                       "do not fit the saved config"),
        # ("0 missing (e.g. []), 1 unexpected (e.g. ['bogus'])")
        "extra key": ({**ck, "state_dict": {**ck["state_dict"], "bogus": torch.zeros(1)}},
                      r"do not fit the saved config: 1 unexpected \(e\.g\. 'bogus'\)$"),
    }
    for name, (content, pattern) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pt"
        torch.save(content, path)
        one_line_error(capsys, ["check-invariance", "--checkpoint", str(path)], pattern)
    empty = write(tmp_path / "empty.pt", b"")
    one_line_error(capsys, ["check-invariance", "--checkpoint", str(empty)],
                   r"empty\.pt: cannot read the checkpoint: the file is empty$")


def test_checkpoint_arguments_of_the_wrong_type_are_one_line(tmp_path, capsys):
    """A saved constructor argument of the wrong type built a model that failed when it
    first ran (a string dropout: an internal error from torch's dropout; a string width:
    "expects 30 input features but the graph has 30"); each is now named on loading."""
    from graphvae.errors import DataError
    from graphvae.models import SequentialGraphVAE
    from graphvae.models.checkpoints import load_model, save_model
    good = _checkpoint(tmp_path, capsys)
    ck = torch.load(good, weights_only=True)
    init = ck["init"]
    cases = [({"dropout": "x"}, "dropout is 'x', not float"),
             ({"in_channels": str(init["in_channels"])},
              f"in_channels is '{init['in_channels']}', not int"),
             ({"latent_channels": True}, "latent_channels is True, not int"),
             ({"hidden_channels": [32.5]}, "hidden_channels is [32.5], not Sequence[int]"),
             ({"objective": {**init["objective"], "reweight": "yes"}},
              "objective reweight is 'yes', not bool"),
             ({"objective": [1]}, "its objective is not a dict of arguments"),
             ({"prior": {"kind": "x"}}, "prior is {'kind': 'x'}, not")]
    for i, (change, message) in enumerate(cases):
        path = tmp_path / f"bad{i}.pt"
        torch.save({**ck, "init": {**init, **change}}, path)
        line = one_line_error(capsys, ["check-invariance", "--checkpoint", str(path)], ".")
        assert f"the checkpoint's config is not usable: {message}" in line, line
    # NaN weights: "FAIL, expected nan, got nan" (exit 1) named an invariance failure
    first = next(iter(ck["state_dict"]))
    one_nan = ck["state_dict"][first].clone()
    one_nan.view(-1)[-1] = float("nan")                     # one entry is enough
    torch.save({**ck, "state_dict": {**ck["state_dict"], first: one_nan}},
               tmp_path / "nan.pt")
    one_line_error(capsys, ["check-invariance", "--checkpoint", str(tmp_path / "nan.pt")],
                   rf"the weights hold NaN \({re.escape(first)}\)")
    # infinite weights: the outputs are inf and NaN, and every row read "FAIL (expected
    # inf, got inf)", exit 1, as if the model were not invariant
    torch.save({**ck, "state_dict": {k: torch.full_like(v, float("inf")) if
                                     v.is_floating_point() else v
                                     for k, v in ck["state_dict"].items()}},
               tmp_path / "inf.pt")
    for extra in ([], ["--float32"]):
        one_line_error(capsys, ["check-invariance", "--checkpoint", str(tmp_path / "inf.pt"),
                                "--permutations", "2", *extra],
                       r"the model's outputs are not finite on these graphs \(its encoder "
                       r"\w+ is (nan|-?inf) on graph 0\): relabellings cannot be compared "
                       r"with them; the weights or the features overflow float(32|64)$")
    # a width of 0 is one line too (torch may warn about zero-element tensors while the
    # model is built; the build is silenced)
    torch.save({**ck, "init": {**init, "in_channels": 0}}, tmp_path / "zero.pt")
    one_line_error(capsys, ["check-invariance", "--checkpoint", str(tmp_path / "zero.pt")],
                   r"in_channels must be a whole number >= 1, got 0")
    # a generation model: checked against its own constructor's annotations
    model = SequentialGraphVAE(3, [0.0, 1.0, 2.0], 4, (8,), "gcn", (8,), 8, node_types=2,
                               edge_types=1, valences=[4, 2], connect=True, components=2)
    path = save_model(tmp_path / "seq.pt", model)
    assert isinstance(load_model(path)[0], SequentialGraphVAE)         # as saved: loads
    saved = torch.load(path, weights_only=True)
    for change, message in [({"connect": "yes"}, "connect is 'yes', not bool"),
                            ({"valences": ["C", "O"]}, "valences is ['C', 'O'], not "
                                                       "Sequence[int] | None"),
                            ({"size_counts": 3}, "size_counts is 3, not Sequence[float]"),
                            ({"logvar_offset": None}, "logvar_offset is None, not float")]:
        torch.save({**saved, "init": {**saved["init"], **change}}, path)
        with pytest.raises(DataError, match="the checkpoint's config is not usable") as err:
            load_model(path)
        assert message in str(err.value), err.value


def test_checkpoint_arguments_the_constructor_does_not_take_or_needs_are_named(tmp_path):
    """An unknown or missing constructor argument was named in Python's words ("__init__()
    got an unexpected keyword argument 'x'", "missing 1 required positional argument");
    now each is named against the constructor's own arguments, with the one a misspelling
    may mean, before any model is built."""
    from graphvae.errors import DataError
    from graphvae.models import SequentialGraphVAE, build_model
    from graphvae.models.checkpoints import load_model, save_model
    prefix = "the checkpoint's config is not usable: "
    seq_takes = ("components, connect, connect_rule, conv, decoder_hidden, edge_types, "
                 "embed_channels, exemplars, graph_latent, hidden_channels, in_channels, "
                 "latent_channels, logvar_offset, max_rounds, node_types, size_counts, "
                 "valences")
    gae_takes = ("bound, decoder, dropout, encoder, feature_likelihood, feature_weight, "
                 "hidden_channels, in_channels, kind, latent_channels, num_samples, "
                 "objective, prior")
    seq = save_model(tmp_path / "seq.pt", SequentialGraphVAE(3, [0.0, 1.0, 2.0], 4, (8,),
                                                              "gcn", (8,), 8))
    gae = save_model(tmp_path / "gae.pt", build_model("vgae", 5), task="linkpred")

    def refused(path, change=None, drop=(), objective=None):
        ck = torch.load(path, weights_only=True)
        init = {k: v for k, v in {**ck["init"], **(change or {})}.items() if k not in drop}
        if objective is not None:
            init["objective"] = objective
        bad = tmp_path / "bad.pt"
        torch.save({**ck, "init": init}, bad)
        with pytest.raises(DataError) as err:
            load_model(bad)
        if str(err.value).startswith(f"{bad}: {prefix}"):
            return str(err.value)[len(f"{bad}: {prefix}"):]
        assert "the weights do not fit the saved config" in str(err.value), err.value
        return None

    assert refused(seq, {"x": 1}) == f"SequentialGraphVAE takes no argument(s) 'x'; it " \
                                     f"takes {seq_takes}"
    assert refused(seq, {"latent_channel": 4}).startswith(
        "SequentialGraphVAE takes no argument(s) 'latent_channel' (did you mean "
        "latent_channels?); it takes ")
    assert refused(seq, drop=("in_channels", "size_counts")) == \
        "it lacks SequentialGraphVAE's argument(s) 'in_channels', 'size_counts'"
    # an argument with a default may be absent (files saved before it existed): the
    # default's model is built, and its weights are compared as always
    assert refused(seq, drop=("conv",)) is None
    assert refused(gae, {"encoders": "gcn"}) == \
        f"build_model takes no argument(s) 'encoders' (did you mean encoder?); it takes " \
        f"{gae_takes}"
    assert refused(gae, drop=("kind", "objective")) == \
        "it lacks build_model's argument(s) 'kind', 'objective'"
    good_objective = torch.load(gae, weights_only=True)["init"]["objective"]
    assert refused(gae, objective={**good_objective, "negative": 1.0}) == \
        "its objective (EdgeObjective) takes no argument(s) 'negative' (did you mean " \
        "negatives?); it takes estimator, negatives, reweight, self_loops"
    # the model's own keyword arguments (build_model's **kwargs) are taken, as saved
    ck = torch.load(gae, weights_only=True)
    torch.save({**ck, "init": {**ck["init"], "bound": "iwae", "num_samples": 2}},
               tmp_path / "iwae.pt")
    assert load_model(tmp_path / "iwae.pt")[0].bound_name == "iwae"


@pytest.mark.parametrize("atol", ["-1", "nan", "inf"])
def test_check_invariance_rejects_bad_atol(tmp_path, capsys, atol):
    one_line_error(capsys, ["check-invariance", "--checkpoint", str(tmp_path / "m.pt"),
                            "--atol", atol], r"--atol must be a finite number >= 0")


# ------------------------------------------------------------------ files read right or refused
def test_utf16_without_bom_is_refused_and_with_bom_is_read(tmp_path):
    from graphvae.datasets import load_graph_file
    text = "1,2\n2,3\n3,1\n"
    write(tmp_path / "le.csv", text.encode("utf-16-le"))
    with pytest.raises(ValueError, match=r"le\.csv:1: contains NUL characters"):
        load_graph_file(tmp_path / "le.csv")
    write(tmp_path / "bom.csv", text.encode("utf-16"))
    data = load_graph_file(tmp_path / "bom.csv")
    assert data.num_nodes == 3 and data.edge_index.size(1) == 6      # the triangle


@pytest.mark.parametrize("header", ["node_a,node_b", "from_id,to_id", "alpha,beta",
                                    "source,target"])
def test_headers_are_not_read_as_edges(tmp_path, header):
    from graphvae.datasets import load_graph_file
    data = load_graph_file(write(tmp_path / "e.csv", f"{header}\n1,2\n2,3\n"))
    assert data.node_names == ["1", "2", "3"] and data.edge_index.size(1) == 4


@pytest.mark.parametrize("suffix, text", [
    (".graphml", '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph '
                 'edgedefault="undirected"><node id="a"/><node id="b"/><node id="c"/>'
                 '<edge source="a" target="b"/><edge source="a" target="b"/>'
                 '<edge source="b" target="c"/></graph></graphml>'),
    (".gml", 'graph [ multigraph 1 node [ id 0 label "a" ] node [ id 1 label "b" ] '
             'node [ id 2 label "c" ] edge [ source 0 target 1 ] edge [ source 0 target 1 ] '
             'edge [ source 1 target 2 ] ]'),
])
def test_parallel_edges_are_merged(tmp_path, suffix, text):
    from graphvae.datasets import load_graph_file
    data = load_graph_file(write(tmp_path / f"g{suffix}", text))
    assert data.node_names == ["a", "b", "c"]
    assert sorted(map(tuple, data.edge_index.t().tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]


def test_a_long_bad_cell_is_cut_in_the_message(tmp_path):
    from graphvae.datasets import load_graph_file
    write(tmp_path / "e.csv", "a,b\n")
    write(tmp_path / "f.csv", "a,1\nb," + "z" * 100_000 + "\n")
    with pytest.raises(ValueError) as info:
        load_graph_file(tmp_path / "e.csv", tmp_path / "f.csv")
    assert len(str(info.value)) < 300 and "(100000 characters)" in str(info.value)


# ------------------------------------------------------------------ extreme values, dense graphs
def _edge_and_feature_files(tmp_path: Path, scale: float) -> tuple[Path, Path]:
    from graphvae.datasets import make_sbm_graph
    d = make_sbm_graph(seed=0)
    pairs = [(a, b) for a, b in d.edge_index.t().tolist() if a < b]
    edges = write(tmp_path / "e.csv", "".join(f"{a},{b}\n" for a, b in pairs))
    feats = write(tmp_path / "f.csv", "".join(
        f"{i}," + ",".join(f"{v * scale:g}" for v in row) + "\n"
        for i, row in enumerate(d.x.tolist())))
    return edges, feats


@pytest.mark.parametrize("model", ["gae", "vgae", "joint"])
def test_features_times_a_million(tmp_path, capsys, model):
    edges, feats = _edge_and_feature_files(tmp_path, 1e6)
    start = time.perf_counter()
    one_line_error(capsys, ["linkpred", "--quiet", "--model", model, "--edges", str(edges),
                            "--features", str(feats)],
                   rf"error: {re.escape(str(feats))}: node features reach 1e\+06 .* "
                   r"--feature-mode normalize")
    assert time.perf_counter() - start < 10
    rc, out, err = run(["linkpred", "--quiet", "--model", model, "--epochs", "5", "--json",
                        "--feature-mode", "standardize", "--edges", str(edges), "--features",
                        str(feats)], capsys)
    summary = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and all(np.isfinite(summary[k]) for k in ("test_auc", "test_ap"))


def test_standardized_features_are_z_scores():
    from torch_geometric.data import Data

    from graphvae.tasks.features import prepare_features
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]]) * 1e6
    z = prepare_features(Data(x=x, num_nodes=3), "standardize")
    s = (8 / 3) ** 0.5                             # population std of 1, 3, 5
    assert torch.allclose(z, torch.tensor([[-2 / s, 0.0], [0.0, 0.0], [2 / s, 0.0]]))


def test_row_normalised_features_near_the_float32_limit_sum_to_one():
    """Rows whose absolute sum passes float32's range (3e38 three times) made every
    feature 0 (x / inf), silently; each row is now divided by its sum all the same."""
    from torch_geometric.data import Data

    from graphvae.tasks.features import prepare_features
    x = torch.tensor([[3e38, 3e38, -3e38], [1.0, 0.0, 3.0], [0.0, 0.0, 0.0]])
    z = prepare_features(Data(x=x, num_nodes=3), "normalize")
    third, quarter = 1 / 3, 1 / 4
    torch.testing.assert_close(z, torch.tensor([[third, third, -third],
                                                [quarter, 0.0, 3 * quarter], [0.0, 0.0, 0.0]]))
    # rows whose sum does not overflow keep their exact values, beside one that does too
    small = torch.tensor([[0.1, 0.7, 0.2], [1.0, 0.0, 3.0]])
    both = prepare_features(Data(x=torch.cat([small, x[:1]]), num_nodes=3), "normalize")
    assert both[:2].equal(small / small.abs().sum(1, keepdim=True))


def test_row_normalised_features_of_tiny_scale_sum_to_one():
    """Rows of tiny sums are scaled to sum 1 like any other: a float32 row summing to 4e-13
    was divided by a floor of 1e-12 (0.1 / 0.3, not 1/4 / 3/4), and float64 features of
    1e-50 were cast to float32 (0) before their row was scaled."""
    from torch_geometric.data import Data

    from graphvae.tasks.features import prepare_features
    want = torch.tensor([[0.25, 0.75], [0.0, 0.0]])
    for x in (torch.tensor([[1e-13, 3e-13], [0.0, 0.0]]),
              torch.tensor([[1e-50, 3e-50], [0.0, 0.0]], dtype=torch.float64),
              torch.tensor([[1e300, 3e300], [0.0, 0.0]], dtype=torch.float64)):
        z = prepare_features(Data(x=x, num_nodes=2), "normalize")
        assert z.dtype == torch.float32
        torch.testing.assert_close(z, want)


def test_vector_data_times_a_million(tmp_path, capsys):
    from sklearn.datasets import load_digits

    from graphvae.vector.data import load_matrix
    np.save(tmp_path / "d.npy", load_digits().data[:300] * 1e6)
    one_line_error(capsys, ["vector", "--quiet", "--data", str(tmp_path / "d.npy")],
                   rf"error: {re.escape(str(tmp_path / 'd.npy'))} has entries up to "
                   r"1\.6e\+07 .* --standardize")                # (the file, not its stem d)
    rc, out, err = run(["vector", "--quiet", "--data", str(tmp_path / "d.npy"), "--epochs",
                        "3", "--nll-samples", "20", "--standardize"], capsys)
    metrics = json.loads(out)
    assert rc == 0, err
    assert np.isfinite(metrics["test_nll"]) and np.isfinite(metrics["test_nll_original_units"])
    # −log p(x) = −log p(y) + Σ_j log s_j for y = (x − m) / s; constant columns keep s = 1
    train = load_matrix(tmp_path / "d.npy").train.double()
    s = train.std(0, unbiased=False)
    shift = float(torch.log(torch.where(s > 0, s, torch.ones_like(s))).sum())
    assert metrics["test_nll_original_units"] - metrics["test_nll"] == pytest.approx(shift,
                                                                                    rel=1e-6)


def _complete_graph_file(tmp_path: Path, n: int, drop: int) -> Path:
    pairs = list(itertools.combinations(range(n), 2))[drop:]
    return write(tmp_path / f"k{n}.csv", "".join(f"{a + 2},{b + 2}\n" for a, b in pairs))


@pytest.mark.parametrize("n, drop, needed, available", [(12, 0, 9, 0), (20, 1, 27, 1)])
def test_dense_graphs_end_in_seconds(tmp_path, capsys, n, drop, needed, available):
    """K12 has no non-edge; K20 minus one edge has one; the 85/5/10 split needs as many
    non-edges as held-out edges: floor(m/10) + floor(m/20)."""
    f = _complete_graph_file(tmp_path, n, drop) if drop == 0 else write(
        tmp_path / "k.csv", "".join(f"{a},{b}\n" for a, b in
                                    itertools.combinations(range(n), 2) if (a, b) != (0, 1)))
    m = n * (n - 1) // 2 - drop
    assert needed == m // 10 + m // 20
    start = time.perf_counter()
    one_line_error(capsys, ["linkpred", "--quiet", "--edges", str(f)],
                   rf"needs {needed} non-edges .* only {available}: it is too dense")
    assert time.perf_counter() - start < 10


def test_dense_but_possible_split_draws_from_the_listed_non_edges():
    """Half of K30's pairs plus a quarter: 108 of 435 pairs are non-edges, fewer than
    4 × 48 held-out pairs, so they are listed and drawn from: distinct, never an edge,
    i < j. (With an eighth, as this test had it, 162 non-edges are not fewer than 4 × 40:
    the pairs were drawn and rejected, and the listing went untested.)"""
    from conftest import undirected

    from graphvae.tasks.link_prediction import split_edges
    pairs = list(itertools.combinations(range(30), 2))
    kept = pairs[::2] + pairs[1::4]
    ei = undirected(kept, 30)
    split = split_edges(ei, 30, seed=0)
    neg = torch.cat([split.val_neg, split.test_neg], 1).t().tolist()
    assert len({tuple(p) for p in neg}) == len(neg)
    assert not {tuple(p) for p in neg} & set(kept)
    assert all(a < b for a, b in neg)


# ------------------------------------------------------------------ output folders
def test_a_run_replaces_its_folder_whole_and_lists_it(tmp_path, capsys):
    out = tmp_path / "o"
    for seed in ("1", "2"):
        rc, _, err = run(["linkpred", "--quiet", "--epochs", "2", "--seed", seed, "--out",
                          str(out)], capsys)
        assert rc == 0, err
        manifest = json.loads((out / MANIFEST).read_text())
        assert set(manifest["files"]) == {p.name for p in out.iterdir()} - {MANIFEST}
        assert manifest["environment"]["packages"]["torch"] == torch.__version__
        assert json.loads((out / "metrics.json").read_text())["seeds"] == [int(seed)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]      # nothing left beside


def test_files_put_into_out_during_a_run_are_kept(tmp_path, capsys):
    """The folder is checked before training and again when it is replaced: a note saved
    into it while the run lasted was removed with the old outputs; it is kept aside."""
    out = tmp_path / "o"
    with output_folder(out, "test") as stage:              # a first run's outputs
        (stage / "metrics.json").write_text("{}")
    with output_folder(out, "test") as stage:
        (stage / "metrics.json").write_text('{"run": 2}')
        (out / "my_notes.txt").write_text("mine")           # written while it ran
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "metrics.json"]
    assert (out / "metrics.json").read_text() == '{"run": 2}'
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("o.replaced-")]
    assert len(kept) == 1 and (kept[0] / "my_notes.txt").read_text() == "mine"
    assert f"its old contents are kept in {kept[0]}" in capsys.readouterr().err
    with output_folder(out, "test") as stage:              # nothing added: nothing kept
        (stage / "metrics.json").write_text('{"run": 3}')
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("o.")]) == 1


def test_a_finished_run_removes_only_its_own_states(tmp_path, capsys):
    """``.o.state`` holding a note and another command's state: the run trains, writes its
    own state there (checkpoints every 25 epochs and at the end) and removes only that;
    the whole folder was removed before. Left empty, the folder goes."""
    state = tmp_path / ".o.state"
    state.mkdir()
    (state / "notes.txt").write_text("mine")
    (state / "train.pt").write_bytes(b"generate's")
    rc, _, err = run(["linkpred", "--quiet", "--epochs", "30", "--out", str(tmp_path / "o")],
                     capsys)
    assert rc == 0, err
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt", "train.pt"]
    (state / "notes.txt").unlink()
    (state / "train.pt").unlink()
    rc, _, err = run(["linkpred", "--quiet", "--epochs", "30", "--out", str(tmp_path / "o")],
                     capsys)
    assert rc == 0, err
    assert not state.exists()


def test_leftovers_of_dead_runs_are_removed_and_an_old_folder_restored(tmp_path):
    out = tmp_path / "o"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stage = tmp_path / f".o.tmp-{dead.pid}-abc_1234"
    stage.mkdir()
    (stage / "model.pt").write_bytes(b"half")
    old = tmp_path / f".o.old-{dead.pid}-def01234"       # killed between the two renames
    old.mkdir()
    (old / MANIFEST).write_text(json.dumps({"written_by": "graphvae", "files": {}}))
    live = tmp_path / f".o.tmp-{os.getpid()}-ghi01234"    # this process's own: left alone
    live.mkdir()
    # yours, named like a leftover but not as graphvae names them: left alone
    backup = tmp_path / f".o.tmp-{dead.pid}-backup"
    backup.mkdir()
    (backup / "thesis.tex").write_text("mine")
    clean_leftovers(out)
    assert not stage.exists() and out.is_dir() and (out / MANIFEST).is_file()
    assert live.exists() and (backup / "thesis.tex").read_text() == "mine"
    # killed while replacing a folder that had gained a file of yours: kept in view
    gained = tmp_path / f".o.old-{dead.pid}-0123abcd"
    gained.mkdir()
    (gained / "notes.txt").write_text("mine")
    clean_leftovers(out)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("o.replaced-")]
    assert not gained.exists() and len(kept) == 1
    assert (kept[0] / "notes.txt").read_text() == "mine"


def test_an_old_folder_left_beside_a_complete_out_is_removed_not_restored(tmp_path):
    """A dead run's '.o.old-…' is put back only where --out is missing: beside a complete
    run (a later one finished), restoring it failed (a rename onto a folder that is not
    empty) in every run into the folder, or replaced an empty one."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "o"
    with output_folder(out, "test") as stage:                       # run B, complete
        (stage / "b.txt").write_text("B")

    def run_a_aside(name: str) -> None:
        old = tmp_path / f".{name}.old-{dead.pid}-def01234"
        old.mkdir()
        (old / "a.txt").write_text("A")
        (old / MANIFEST).write_text(json.dumps({"written_by": "graphvae", "files": {
            "a.txt": {"bytes": 1}}}))
    run_a_aside("o")
    clean_leftovers(out)
    assert (out / "b.txt").read_text() == "B" and not (out / "a.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]
    empty = tmp_path / "e"                                        # an empty folder as --out
    empty.mkdir()
    run_a_aside("e")
    clean_leftovers(empty)
    assert list(empty.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == \
        ["e", "o"]


def test_leftovers_are_judged_dead_only_by_the_machine_that_made_them(tmp_path):
    """A folder shared between hosts (NFS) or containers: a process id from elsewhere
    says nothing here, so another machine's staging folder, live or not, is left alone;
    this machine's dead one goes."""
    from graphvae.run_folder import _machine, _stage_name

    out = tmp_path / "o"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ours = _machine()
    assert _stage_name(out, "tmp") == f".o.tmp-{ours}-{os.getpid()}-"
    other = "0" * 8 if ours != "0" * 8 else "1" * 8
    theirs = tmp_path / f".o.tmp-{other}-{dead.pid}-abc_1234"
    mine = tmp_path / f".o.tmp-{ours}-{dead.pid}-abc_1234"
    for p in (theirs, mine):
        p.mkdir()
    clean_leftovers(out)
    assert theirs.is_dir() and not mine.exists()


def test_an_out_name_with_glob_characters_touches_only_its_own_leftovers(tmp_path):
    """``--out runs/?xp1`` matched ``.exp1.old-…`` (another run's recoverable folder,
    which it then took over) and ``?ther`` removed ``.other.tmp-…``: names are matched
    literally now."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    other_old = tmp_path / f".exp1.old-{dead.pid}-abcd0123"
    other_old.mkdir()
    (other_old / MANIFEST).write_text(json.dumps({"written_by": "graphvae", "files": {}}))
    other_stage = tmp_path / f".other.tmp-{dead.pid}-zz012345"
    other_stage.mkdir()
    own = tmp_path / f".?ther.tmp-{dead.pid}-yy012345"
    own.mkdir()
    clean_leftovers(tmp_path / "?xp1")
    clean_leftovers(tmp_path / "?ther")
    assert other_old.is_dir() and other_stage.is_dir()
    assert not (tmp_path / "?xp1").exists() and not own.exists()


def test_a_failed_run_leaves_the_previous_folder_untouched(tmp_path):
    out = tmp_path / "o"
    with output_folder(out) as stage:
        (stage / "metrics.json").write_text("{}")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(RuntimeError), output_folder(out) as stage:
        (stage / "metrics.json").write_text('{"new": 1}')
        raise RuntimeError("training failed")
    assert sorted(p.name for p in out.iterdir()) == before
    assert (out / "metrics.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


# ------------------------------------------------------------------ unexpected errors
def test_internal_errors_are_one_line_with_a_hint(monkeypatch, capsys):
    def boom(args):
        raise KeyError("a bug")
    monkeypatch.setitem(cli.COMMANDS, "linkpred", (*cli.COMMANDS["linkpred"][:2], boom))
    rc, out, err = run(["linkpred"], capsys)
    assert rc == cli.INTERNAL_ERROR
    assert err.strip() == ("graphvae: internal error: KeyError: 'a bug' (rerun with --debug "
                           "for the traceback)")
    with pytest.raises(KeyError):
        cli.main(["--debug", "linkpred"])
    with pytest.raises(KeyError):
        cli.main(["linkpred", "--debug"])
    with pytest.raises(ValueError, match="--nodes must lie in"):     # the user's errors too
        cli.main(["--debug", "make-graph", "--nodes", "1", "--edges", "1", "--out", "g.csv"])


def test_the_parser_builds_only_what_its_command_needs_and_torchrun_is_read_as_such(
        tmp_path, monkeypatch, capsys):
    """Given a command line, only its command's flags are built (``vector`` imports no
    other command's module, nor torch_geometric); without one, every command's. A WORLD_SIZE
    that is empty is one process, as torchrun's variables are read elsewhere; one of 2
    quiets torch's C++ logs before torch is imported. The lazily imported commands are
    named by their module and function."""
    code = ("import sys; from graphvae.cli import build_parser; build_parser(['vector']); "
            "print('torch_geometric' in sys.modules, 'graphvae.cli.linkpred' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE",
                                                            "TORCH_CPP_LOG_LEVEL")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr
    whole = cli.build_parser()
    assert whole.parse_args(["linkpred", "--epochs", "3"]).config_epochs == 3
    assert whole.parse_args(["vector", "--epochs", "4"]).config_epochs == 4
    level = ("import os, graphvae.cli; "
             "print(os.environ.get('TORCH_CPP_LOG_LEVEL'))")
    for world, seen in (("2", "FATAL"), ("1", "None"), ("", "None")):
        out = subprocess.run([sys.executable, "-c", level], env={**env, "WORLD_SIZE": world},
                             capture_output=True, text=True, timeout=120)
        assert out.stdout.strip() == seen, (world, out.stderr)
    monkeypatch.setenv("WORLD_SIZE", "")
    assert cli.main(["make-graph", "--nodes", "20", "--edges", "30", "--out",
                     str(tmp_path / "g.csv")]) == 0
    assert cli.COMMANDS["linkpred"][2].__name__ == "linkpred.run"


BAD_COMMAND_LINES = [
    (["linkpred", "--epochs", "0"], "epochs must be at least 1"),
    # the flags' names, as the other commands give them (it said eval_every, batch size)
    (["linkpred", "--eval-every", "0"], "eval-every must be at least 1, got 0"),
    (["linkpred", "--batch-size", "0"], "batch-size must be at least 1, got 0"),
    (["linkpred", "--batch-size", "8", "--steps-per-epoch", "-1"],
     "steps-per-epoch must be at least 0 (0: one pass), got -1"),
    (["linkpred", "--lr", "nan"], "lr must be a finite number > 0, got nan"),
    (["linkpred", "--lr", "-1"], "lr must be a finite number > 0, got -1"),
    (["linkpred", "--dataset", "coraa"], "argument --dataset: invalid choice: 'coraa'"),
    (["linkpred", "--seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1"),
    (["linkpred", "--seed", "4294967295", "--seeds", "2"],
     "--seed + --seeds - 1 must be an integer from 0 to 4294967295, got 4294967296"),
    (["linkpred", "--top-k", "0"], "--top-k must be at least 1"),
    (["linkpred", "--device", "nonsense"], "unknown device 'nonsense'"),
    # torch takes any CPU index and runs on the one CPU; the run recorded "cpu:99"
    (["linkpred", "--device", "cpu:99"], "unknown device 'cpu:99': the CPU is cpu"),
    (["vector", "--device", "cpu:1"], "unknown device 'cpu:1': the CPU is cpu"),
    (["linkpred", "--features", "x.csv"], "--features needs --edges"),
    (["linkpred", "--config", "/nonexistent.json"], "cannot read config"),
    (["linkpred", "--model", "vgea"], "invalid choice: 'vgea'"),
    (["linkpred", "--epochs", "1e3"], "invalid int value: '1e3'"),
    (["generate", "--lr", "inf"], "lr must be a finite number > 0, got inf"),
    # one step to overflowing latents: the ties of ±inf scores were reported as AUC 50
    (["linkpred", "--epochs", "1", "--lr", "1e30"],
     "training diverged: the latents are not finite (they overflowed)"),
    (["generate", "--hidden", "a,b"], "argument --hidden: expected comma-separated integers"),
    (["generate", "--model", "onehot-vae"], "invalid choice: 'onehot-vae'"),
    (["generate", "--dataset", "nope"], "argument --dataset: invalid choice: 'nope'"),
    (["generate", "--max-nodes", "3"], "max-nodes applies to --model graphvae"),
    (["generate", "--model", "graphvae", "--max-nodes", "1000000000"],
     "max-nodes applies to --model graphvae and must lie in 2 … 1,024, got 1000000000"),
    (["generate", "--model", "graphvae", "--max-nodes", "1"],
     "max-nodes applies to --model graphvae and must lie in 2 … 1,024, got 1"),
    (["generate", "--model", "graphvae", "--bound", "permutation", "--num-perms", "10001"],
     "num-perms must be at most 10,000"),
    (["generate", "--seed", "-5"], "seed must be an integer from 0 to 4294967295, got -5"),
    (["generate", "--seed", "99999999999999999999"], "seed must lie within ±(2^63 - 1)"),
    (["linkpred", "--hidden", "99999999999999999999999"], "hidden must lie within ±(2^63 - 1)"),
    (["linkpred", "--lr", "1e300"], "lr must lie within the float32 range"),
    # Adam's first step, about 10·lr, overflowed float32 inside torch (an internal error)
    (["linkpred", "--lr", "1e38"], "lr must be at most 1e+30 (the optimiser's steps overflow "
     "float32 beyond), got 1e+38"),
    (["generate", "--lr", "3.4e38"], "lr must be at most 1e+30"),
    (["vector", "--lr", "1.01e30"], "lr must be at most 1e+30"),
    (["vector", "--lr", "1e300"], "lr must lie within the float32 range"),
    (["linkpred", "--negatives", "inf"], "negatives must lie in (0, 1000], got inf"),
    (["linkpred", "--negatives", "1e30"], "negatives must lie in (0, 1000], got 1e+30"),
    (["linkpred", "--negatives", "nan"], "negatives must lie in (0, 1000], got nan"),
    (["linkpred", "--dropout", "nan"], "dropout must lie in [0, 1), got nan"),
    (["linkpred", "--val-fraction", "0"], "--val-fraction must lie in (0, 1), got 0.0"),
    (["linkpred", "--test-fraction", "1.5"], "--test-fraction must lie in (0, 1), got 1.5"),
    (["linkpred", "--val-fraction", "0.5", "--test-fraction", "0.5"],
     "the validation and test fractions sum to 1, which leaves no edges to train on: "
     "--val-fraction + --test-fraction must be below 1"),
    (["score", "x.jsonl", "--seed", "-1"], "seed must be an integer from 0 to"),
    (["score", "x.jsonl", "--dataset", "ego-small", "--qm9-limit", "5"],
     "--qm9-limit applies to --dataset qm9, not ego-small"),
    (["generate", "--qm9-limit", "5"], "--qm9-limit applies to --dataset qm9, not the default"),
    # (one garbled sentence: "applies to --dataset qm9 and must be >= 0, got -3 with qm9")
    (["generate", "--dataset", "qm9", "--qm9-limit", "-3"], "qm9-limit must be >= 0, got -3"),
    (["vector", "--seed", str(2 ** 32)], "seed must be an integer from 0 to 4294967295"),
    (["make-graph", "--out", "g.csv", "--nodes", "100", "--edges", "300", "--seed", "-1"],
     "--seed must be an integer from 0"),
    (["generate", "--protocol", "x"], "invalid choice: 'x'"),
    (["generate", "--generated", "--dataset", "ego-small"], "--generated applies to"),
    (["vector", "--lr", "inf"], "lr must be a finite number > 0, got inf"),
    (["vector", "--k", "0"], "k must be >= 1, got 0"),
    (["vector", "--variance", "nan"], "variance must be 'learned' or a number from 1e-30"),
    (["vector", "--variance", "1e-300"], "variance must be 'learned' or a number from 1e-30"),
    (["vector", "--noise", "-1"], "noise must be finite and >= 0"),
    (["vector", "--model", "dae", "--corruption", "masking", "--noise", "5"],
     r"noise must be in [0, 1] for masking"),
    (["vector", "--ema", "1.5"], "ema must be in (0, 1)"),
    (["vector", "--patience", "-1"], "patience must be >= 0"),
    (["vector", "--data", "/nonexistent.npy"], "/nonexistent.npy: data file not found"),
    (["vector", "--model", "linear", "--latent-dim", "1000"],
     "--latent-dim 1000 is more than the data allow: the training rows"),
    (["linkpred", "--hidden", "65537"], "--hidden needs widths from 1 to 65536, got 65537"),
    (["linkpred", "--latent", "0"], "--latent must be a width from 1 to 65536, got 0"),
    (["linkpred", "--feature-mode", "propagated", "--propagated-hops", "1001"],
     "--propagated-hops must lie in 0 … 1000 (more steps only repeat the graph's "
     "stationary vector), got 1001"),
    (["generate", "--hidden", "64,70000"],
     "--hidden needs at least one width, each from 1 to 65536, got 64,70000"),
    (["generate", "--latent", str(10 ** 13)], "--latent must be a width from 1 to 65536"),
    (["generate", "--num-samples", "100001"], "num-samples must lie in 1 … 100,000"),
    # the MMD² of a graph set grows with the square of the samples (30,000: out of memory)
    (["generate", "--num-samples", "10001"], "num-samples must be at most 10,000 for a graph "
                                             "set (the MMD² compares every pair of samples"),
    # named by their flags, not the config's fields num_samples and noise_level
    (["vector", f"--k={2 ** 63}"], "k must lie within ±(2^63 - 1)"),
    (["vector", "--model", "dae", "--noise=1e300"], "noise must lie within the float32 range"),
    (["generate", "--draws", "10001"], "draws must be at most 10,000, got 10001"),
    (["generate", "--components", "0"], "--components must be a width from 1 to 65536"),
    (["generate", "--kl-warmup", "-1"], "kl-warmup must be >= 0, got -1"),
    (["vector", "--hidden", "0"], "--hidden needs at least one width, each from 1 to 65536"),
    (["vector", "--latent-dim", "70000"], "--latent-dim must be a width from 1 to 65536"),
    (["vector", "--nll-samples", "1000001"], "nll-samples must be at most 1,000,000"),
    (["check-invariance", "--checkpoint", "/nonexistent.pt"], "/nonexistent.pt: no such"),
    (["check-invariance", "--checkpoint", "x", "--seed", "-1"], "--seed must be an integer"),
    (["check-invariance", "--checkpoint", "x", "--permutations", "0"],
     "--permutations must lie in 1 … 10,000 and --num-graphs must be at least 1"),
    (["check-invariance", "--checkpoint", "x", "--permutations", "10001"],
     "--permutations must lie in 1 … 10,000"),
    (["check-invariance", "--checkpoint", "x", "--num-graphs", str(2 ** 63)],
     f"--num-graphs must be at least 1 (and within int64), got 10 and {2 ** 63}"),
    (["check-invariance", "--checkpoint", "x", "--rtol", "nan"],
     "--rtol must be a finite number >= 0, got nan"),
    (["convert-graphs", "--out", "o", "--data-root", "/nonexistent"], "holds none of"),
    # the command's help lists its flags (it said "see graphvae --help")
    (["linkpred", "--foo", "3"], "unrecognized arguments: --foo 3 (see graphvae linkpred --help)"),
    (["vector", "extra"], "unrecognized arguments: extra (see graphvae vector --help)"),
    # a flag is taken as spelt: --epoch (a prefix of --epochs alone) and --num-s (of
    # --num-samples alone) were read as those, so a script's meaning hung on which flags
    # came later
    (["linkpred", "--epoch", "3"], "unrecognized arguments: --epoch 3 (see graphvae linkpred"),
    (["generate", "--num-s", "2"], "unrecognized arguments: --num-s 2 (see graphvae generate"),
]


@pytest.mark.parametrize("argv, message", BAD_COMMAND_LINES, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_bad_command_lines_are_one_line_errors(argv, message, capsys):
    line = one_line_error(capsys, [*argv, *(["--quiet"] if argv[0] in ("linkpred", "generate",
                                                                       "vector") else [])],
                          ".")
    assert message in line, line


def test_files_a_run_did_not_write_keep_its_folder_from_being_replaced(tmp_path, capsys):
    """A folder graphvae wrote is replaced only while it holds what its manifest lists: a
    note, a folder of the user's, a listed file that changed, or (no manifest) any file
    at all makes ``--out`` a one-line error before training, and nothing is removed."""
    out = tmp_path / "o"
    rc, _, err = run(["linkpred", "--quiet", "--epochs", "1", "--out", str(out)], capsys)
    assert rc == 0, err
    cmd = ["linkpred", "--quiet", "--epochs", "1", "--out", str(out)]
    before = {p: p.read_bytes() for p in out.iterdir()}
    for extra, shown in ((out / "notes.txt", "notes.txt"),
                         (out / "mine" / "a.py", "mine, mine/a.py")):
        write(extra, "mine")
        one_line_error(capsys, cmd, rf"other files in it \({re.escape(shown)}\)")
        assert extra.read_text() == "mine"
        shutil.rmtree(out / "mine", ignore_errors=True)
        extra.unlink(missing_ok=True)
    metrics = out / "metrics.json"
    text = metrics.read_text()
    same_size = text.replace('"', "'", 1)                          # an edit of equal size
    assert len(same_size) == len(text) and same_size != text
    metrics.write_text(same_size)
    one_line_error(capsys, cmd, r"other files in it \(metrics\.json\)")
    metrics.write_text(text + "\n")                                # edited after the run
    one_line_error(capsys, cmd, r"other files in it \(metrics\.json\)")
    assert {p: p.read_bytes() for p in out.iterdir()} != before   # the edit is still there
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in before)
    plain = tmp_path / "figs"                                     # no manifest
    write(plain / "metrics.json", "{}")
    write(plain / "my_plot.png", b"\x89PNG")
    one_line_error(capsys, ["linkpred", "--quiet", "--out", str(plain)],
                   r"other files in it \(metrics\.json, my_plot\.png\)")
    assert (plain / "my_plot.png").read_bytes() == b"\x89PNG"
    metrics.write_text(metrics.read_text()[:-1])                   # as written: replaced
    rc, _, err = run(cmd, capsys)
    assert rc == 0, err


def test_out_that_names_no_folder_or_a_dangling_link_is_refused_before_training(
        tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for out in (".", "runs/.."):
        one_line_error(capsys, ["generate", "--quiet", "--out", out], r"names no folder")
    one_line_error(capsys, ["generate", "--quiet", "--out", ""], r"--out: an empty path")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    one_line_error(capsys, ["generate", "--quiet", "--out", "dangling"],
                   r"--out dangling is a symbolic link to nothing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling"]


def test_out_given_as_a_link_to_an_output_folder_leaves_nothing_beside_it(tmp_path, capsys):
    target = tmp_path / "real"
    rc, _, err = run(["linkpred", "--quiet", "--epochs", "1", "--out", str(target)], capsys)
    assert rc == 0, err
    link = tmp_path / "link"
    link.symlink_to(target)
    rc, _, err = run(["linkpred", "--quiet", "--epochs", "1", "--seed", "1", "--out",
                      str(link)], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
    assert link.is_dir() and not link.is_symlink()                  # the run's own folder
    assert json.loads((target / "metrics.json").read_text())["seeds"] == [0]   # untouched


def test_resume_from_another_commands_state_is_refused_and_the_state_kept(tmp_path, capsys):
    state = tmp_path / ".o.state"
    write(state / "seed0.pt", b"a linkpred state")
    one_line_error(capsys, ["generate", "--quiet", "--resume", "--out", str(tmp_path / "o")],
                   r"holds no training state of graphvae generate \(train\.pt; it holds "
                   r"seed0\.pt, left by graphvae linkpred\)")
    assert (state / "seed0.pt").read_bytes() == b"a linkpred state"
    write(state / "train.pt", b"x")
    one_line_error(capsys, ["linkpred", "--quiet", "--resume", "--out", str(tmp_path / "p")],
                   r"no training state of an interrupted run")


def test_resume_from_a_folder_named_as_a_state_names_it(tmp_path, capsys):
    """'.o.state holds no training state of graphvae linkpred (seed*.pt; it holds
    seed0.pt)' contradicted itself: seed0.pt was a folder."""
    (tmp_path / ".o.state" / "seed0.pt").mkdir(parents=True)
    one_line_error(capsys, ["linkpred", "--quiet", "--resume", "--out", str(tmp_path / "o")],
                   r"--resume: .*\.o\.state/seed0\.pt is not a file, so not a training "
                   r"state of graphvae linkpred$")
    assert (tmp_path / ".o.state" / "seed0.pt").is_dir()


def test_score_names_a_folder_that_is_not_a_generate_run(tmp_path, capsys):
    """An empty folder was refused for 'metrics.json: no such file', a linkpred run for
    its manifest not listing samples.jsonl."""
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(capsys, ["score", str(empty)],
                   r"empty is not the folder of a graphvae generate run \(it holds no "
                   r"samples\.jsonl\); score takes such a folder, or a samples file$")
    with output_folder(tmp_path / "lp", "graphvae linkpred") as stage:
        (stage / "metrics.json").write_text("{}")
    one_line_error(capsys, ["score", str(tmp_path / "lp")],
                   r"lp is a run folder of graphvae linkpred; score takes the folder of a "
                   r"graphvae generate run, or a samples file$")


def test_a_file_where_the_training_state_goes_is_refused_before_training(tmp_path, capsys,
                                                                        monkeypatch):
    """`.o.state` a regular file: every epoch ran, then the first state write failed
    ('cannot write .o.state/seed0.pt') — after 25 epochs on a long run. Now refused first,
    and the file is kept."""
    import graphvae.tasks.link_prediction as lp

    write(tmp_path / ".o.state", b"mine")
    monkeypatch.setattr(lp, "run_link_prediction", lambda *a, **k: pytest.fail("trained"))
    for argv in (["linkpred", "--quiet", "--epochs", "5", "--out", str(tmp_path / "o")],
                 ["generate", "--quiet", "--epochs", "1", "--out", str(tmp_path / "o")]):
        one_line_error(capsys, argv, r"\.o\.state is not a folder: a run with --out .* keeps "
                                     r"its training state there")
    assert (tmp_path / ".o.state").read_bytes() == b"mine"
    long = "r" * 250                     # a legal --out, whose '.r…r.state' is 257 bytes
    one_line_error(capsys, ["linkpred", "--quiet", "--epochs", "5", "--out",
                            str(tmp_path / long)], r"would be longer than 255 bytes")


def test_an_allocation_torch_cannot_make_is_a_one_line_error(capsys, monkeypatch):
    """A model that asks torch's CPU allocator for 2^62 bytes, beyond any address space
    (widths are bounded up front now, so the allocation is made where the model is built):
    torch's RuntimeError is the user's error (exit 2, one line), not an internal one."""
    import graphvae.tasks.generation as generation

    def huge(*args, **kwargs):        # on the CPU also where the model is counted (meta)
        torch.empty(2 ** 62, dtype=torch.uint8, device="cpu")

    monkeypatch.setattr(generation, "build_generation_model", huge)
    one_line_error(capsys, ["generate", "--quiet", "--epochs", "1"],
                   r"out of memory \(RuntimeError: .*can't allocate memory.*\); ask for less")
    from graphvae.cli import out_of_memory
    assert not out_of_memory(RuntimeError("shape mismatch"))
    assert out_of_memory(type("OutOfMemoryError", (RuntimeError,), {})("CUDA"))
    assert out_of_memory(RuntimeError("CUDA error: Out of memory"))   # in any case


def test_python_running_out_of_memory_is_named_as_such(capsys, monkeypatch):
    """Python's own MemoryError has no message: ``--num-nodes 100000000`` on a two-edge
    list ended as "graphvae: error: MemoryError" after 35 s at an 8 GB limit. It now gets
    the out-of-memory line and its advice, like torch's failed allocations."""
    import graphvae.tasks.generation as generation

    def huge(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(generation, "build_generation_model", huge)
    one_line_error(capsys, ["generate", "--quiet", "--epochs", "1"],
                   r"^graphvae: error: out of memory \(MemoryError\); ask for less: fewer")


def test_check_invariance_reports_running_out_of_memory_as_such(tmp_path):
    """fits() turned every RuntimeError into "the model does not take graph 0", torch's
    failed allocation on PubMed included; that one now reaches the command's own
    out-of-memory line, and a real misfit is still named."""
    from graphvae.cli.invariance import fits

    class Model:
        def __init__(self, error):
            self.error = error

        def invariance_batch(self, *args):
            raise self.error

    graph = [(torch.zeros(3, 1), torch.zeros(2, 0, dtype=torch.long))]
    oom = RuntimeError("[enforce fail at alloc_cpu.cpp:118] . DefaultCPUAllocator: can't "
                       "allocate memory: you tried to allocate 1555040356 bytes")
    with pytest.raises(RuntimeError, match="can't allocate memory"):
        fits(Model(oom), graph, "pubmed", tmp_path / "m.pt")
    with pytest.raises(ValueError, match="m.pt: the model does not take graph 0 of pubmed "
                                         r"\(3 nodes\): RuntimeError: shape mismatch"):
        fits(Model(RuntimeError("shape mismatch")), graph, "pubmed", tmp_path / "m.pt")


def test_linkpred_refuses_before_training_what_would_fail_after(tmp_path, capsys, monkeypatch):
    """Three inputs that used to fail only after every epoch (or, for joint, to grow
    memory with n²): each is a one-line error before the first step (``fit`` is never
    reached)."""
    import graphvae.tasks.link_prediction as lp

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(lp, "fit", no_training)
    small = tmp_path / "small.csv"                         # 19 edges: 5 % of them is none
    write(small, "".join(f"{i},{i + 1}\n" for i in range(19)))
    one_line_error(capsys, ["linkpred", "--quiet", "--edges", str(small)],
                   r"19 edges: a validation fraction of 0\.05 holds none of them \(it needs "
                   r"20 edges or more\)")
    # the test share likewise names its flag, and a subnormal fraction (1 / it overflows to
    # infinity: an internal error) is one line too
    one_line_error(capsys, ["linkpred", "--quiet", "--edges", str(small), "--test-fraction",
                            "1e-10"],
                   r"19 edges: a test fraction of 1e-10 holds none of them \(it needs "
                   r"10000000000 edges or more\); raise --test-fraction")
    one_line_error(capsys, ["linkpred", "--quiet", "--edges", str(small), "--val-fraction",
                            "1e-320"],
                   r"a validation fraction of 9\.99989e-321 holds none of them \(it needs "
                   r"more edges than a float can count\); raise --val-fraction")
    g4, g8 = tmp_path / "g4.csv", tmp_path / "g8.csv"
    for path, n in ((g4, 400), (g8, 800)):
        assert cli.main(["make-graph", "--out", str(path), "--nodes", str(n), "--edges",
                         str(4 * n), "--seed", "1"]) == 0
    capsys.readouterr()
    one_line_error(capsys, ["linkpred", "--quiet", "--edges", str(g8), "--planted",
                            str(tmp_path / "g4.planted.npz")],
                   r"the graph names node 4\d\d, but the planted model has nodes 0 … 399")
    one_line_error(capsys, ["linkpred", "--quiet", "--edges", str(g4), "--model", "joint"],
                   r"--model joint reconstructs the node features, and this graph has none")
    # the embedded graph has 64 features: it is the feature mode that replaces them
    one_line_error(capsys, ["linkpred", "--quiet", "--model", "joint", "--feature-mode",
                            "identity"],
                   r"--model joint reconstructs the node features, which --feature-mode "
                   r"identity replaces")


def test_json_files_that_are_not_plain_json_files_are_one_line(tmp_path, capsys):
    """--config and an --out folder's manifest.json are read as regular files of bounded
    size: a FIFO hung the command, deep nesting was an internal error (RecursionError),
    and a 5,001-digit integer's message did not name the file."""
    deep = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    one_line_error(capsys, ["linkpred", "--quiet", "--config", str(deep)],
                   r"cannot read config: .*deep.json: its arrays or objects are nested deeper "
                   r"than Python's JSON reader can follow \(no graphvae file nests more "
                   r"than a few levels\)$")
    big = write(tmp_path / "big.json", '{"epochs": ' + "9" * 5001 + "}")
    one_line_error(capsys, ["linkpred", "--quiet", "--config", str(big)],
                   r"cannot read config: .*big.json: not JSON \(.*digits")
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    one_line_error(capsys, ["linkpred", "--quiet", "--config", str(fifo)],
                   r"cannot read config: .*fifo.json: not a regular file")
    out = tmp_path / "run"
    out.mkdir()
    os.mkfifo(out / MANIFEST)                  # an --out folder whose manifest is a FIFO
    start = time.monotonic()
    one_line_error(capsys, ["generate", "--epochs", "1", "--quiet", "--out", str(out)],
                   r"is a folder with other files in it \(manifest.json\)")
    assert time.monotonic() - start < 60


def test_a_fifo_given_as_a_file_is_named_as_such(tmp_path, capsys):
    """A FIFO (or device) where a file is expected was reported as missing."""
    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    one_line_error(capsys, ["linkpred", "--quiet", "--edges", str(fifo)],
                   r"x.csv: not a regular file")
    one_line_error(capsys, ["check-invariance", "--checkpoint", str(fifo)],
                   r"x.csv: not a regular file")
    one_line_error(capsys, ["vector", "--quiet", "--data", str(fifo)],
                   r"x.csv: not a regular file")
    one_line_error(capsys, ["linkpred", "--quiet", "--edges", str(tmp_path / "absent.csv")],
                   r"absent.csv: no such file")


@pytest.mark.parametrize("argv", [["vector", "--epochs", "1"], ["generate", "--epochs", "1"],
                                  ["score", "x.jsonl"],
                                  ["make-graph", "--nodes", "50", "--edges", "100",
                                   "--out", "g.csv"]])
def test_commands_without_data_parallel_training_refuse_torchrun(argv, tmp_path, capsys,
                                                                 monkeypatch):
    """Under torchrun every process ran the whole vector job and wrote the same --out; only
    linkpred trains data-parallel, so the others refuse a world of more than one process
    before anything runs or is written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    one_line_error(capsys, argv, rf"graphvae {argv[0]} runs in one process, but "
                                 r"WORLD_SIZE='2' \(torchrun\?\): only linkpred trains")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("WORLD_SIZE", "1")       # one process: runs as ever
    rc, _, err = run(["vector", "--epochs", "1", "--quiet", "--nll-samples", "5"], capsys)
    assert rc == 0, err


def test_a_full_disk_is_named_with_the_file_it_stopped(tmp_path, monkeypatch, capsys):
    """torch.save reports a full disk as a RuntimeError ("unexpected pos"), which was an
    internal error (exit 3); a plain write's OSError named no file. Both are now
    "cannot write PATH: ..." (exit 2), the old file stays and no temporary file is left."""
    import collections
    import errno

    import graphvae.atomic as atomic
    import graphvae.io as gio
    from graphvae.cli import main

    def torn(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 37312 "
                           "vs 37200")
    target = tmp_path / "state.pt"
    target.write_bytes(b"old")
    monkeypatch.setattr(torch, "save", torn)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: usage(100, 100, 0))
    with pytest.raises(gio.WriteError) as exc:
        gio.save_atomic({"a": 1}, target)
    assert exc.value.errno == errno.ENOSPC
    assert str(exc.value) == (f"cannot write {target}: No space left on device (0 bytes free; "
                              f"torch: [enforce fail at inline_container.cc:672] . unexpected "
                              f"pos 37312 vs 37200)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]
    assert target.read_bytes() == b"old"
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: usage(100, 0, 100 << 20))
    with pytest.raises(gio.WriteError, match=r"state\.pt: the write stopped part-way \(torch"):
        gio.save_atomic({"a": 1}, target)
    monkeypatch.undo()

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(gio.WriteError, match=rf"^cannot write {re.escape(str(tmp_path))}/m\."
                                             r"json: No space left on device$"):
        gio.write_json({"a": 1}, tmp_path / "m.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]
    monkeypatch.undo()
    monkeypatch.setattr(torch, "save", torn)
    with pytest.raises(SystemExit) as stop:
        main(["linkpred", "--quiet", "--epochs", "1", "--out", str(tmp_path / "o")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith("graphvae: error: cannot write ") \
        and "the write stopped part-way (torch:" in err, err


def test_a_second_run_into_a_folder_being_written_is_refused(tmp_path):
    """Two runs into one --out at once: the later one silently replaced the first's results
    and shared its training state. A live run of this machine staging that folder (its
    process alive and holding the folder's lock) now refuses the second before any work;
    a killed run's folder whose process id another program reused does not, and a dead
    one's leftovers are still cleaned."""
    from graphvae.run_folder import _machine, check_output_folder, output_folder
    holder = ("import fcntl, os, sys, time\n"
              "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
              "if sys.argv[2] == 'lock': fcntl.flock(fd, fcntl.LOCK_EX)\n"
              "print('ready', flush=True); time.sleep(60)\n")
    for mode in ("lock", "no lock"):
        made = tmp_path / "made"
        made.mkdir()
        other = subprocess.Popen([sys.executable, "-c", holder, str(made), mode],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert other.stdout is not None and other.stdout.readline() == "ready\n"
            stage = tmp_path / f".o.tmp-{_machine()}-{other.pid}-abcd_123"
            made.rename(stage)                  # named as a run of that process names it
            if mode == "lock":
                with pytest.raises(ValueError, match=rf"--out {re.escape(str(tmp_path / 'o'))} "
                                                     rf"is being written by another graphvae "
                                                     rf"run \(process {other.pid} on this "
                                                     rf"machine, into {stage.name}\)"):
                    check_output_folder(tmp_path / "o")
            else:
                check_output_folder(tmp_path / "o")       # alive, not holding it: not refused
        finally:
            other.kill()
            other.wait()
        if mode == "lock":
            stage.rmdir()
    with output_folder(tmp_path / "o", "test") as staged:        # its process is gone
        (staged / "a.txt").write_text("a")
    assert not stage.exists() and (tmp_path / "o" / "a.txt").read_text() == "a"


def test_an_out_name_too_long_for_the_staging_folder_is_refused_first(tmp_path):
    """A name of 225-241 bytes passed the checks, and the run failed only when it made its
    hidden staging folder, after reading its data."""
    from graphvae.run_folder import check_output_folder
    check_output_folder(tmp_path / ("a" + "b" * 200))
    with pytest.raises(ValueError, match=r"the hidden folder a run writes beside it .* would "
                                         r"be longer than 255 bytes; use a shorter name"):
        check_output_folder(tmp_path / ("a" * 232))


def test_a_failed_rename_into_place_puts_the_old_folder_back(tmp_path, monkeypatch):
    """Between the two renames that replace --out, a failure hid both folders: the new one
    was removed with the staging folder and the old one waited as '.o.old-…' for the next
    run. The old folder is now renamed back at once."""
    import errno

    import graphvae.run_folder as rf
    with rf.output_folder(tmp_path / "o", "test") as staged:
        (staged / "a.txt").write_text("old")
    real, calls = os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        # the check moves out aside and back; at the end, the manifest's rename, out aside,
        # then the stage into place
        if len(calls) == 5:
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)
    monkeypatch.setattr(rf.os, "replace", second_fails)
    with pytest.raises(ValueError, match=r"could not be replaced \(Input/output error\); the "
                                         r"results are in .*o\.unplaced-"), \
            rf.output_folder(tmp_path / "o", "test") as staged:
        (staged / "a.txt").write_text("new")
    assert len(calls) == 7            # the sixth: the old folder back; the seventh: the new
    assert (tmp_path / "o" / "a.txt").read_text() == "old"      # one kept beside it
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0] == "o" and names[1].startswith("o.unplaced-")
    assert (tmp_path / names[1] / "a.txt").read_text() == "new"


def test_inputs_inside_out_are_refused_before_they_are_replaced(tmp_path, capsys):
    """linkpred read its --edges and --features from the --out it then replaced (the run's
    own exports, fed back in), and metrics.json named files whose contents had changed;
    score already refused its own case. linkpred's files (--planted and --config too) and
    vector's --data now are."""
    from graphvae.cli import main
    from graphvae.run_folder import output_folder
    out = tmp_path / "x"
    with output_folder(out, "graphvae linkpred") as stage:   # a run's folder: replaceable
        (stage / "e.csv").write_text("0,1\n1,2\n2,0\n")
    elsewhere = tmp_path / "e.csv"
    elsewhere.write_text("0,1\n1,2\n2,0\n")
    # each of linkpred's four input files (refused before it is read: e.csv is no
    # feature table, planted model or JSON config)
    for argv, flag in [(["linkpred", "--edges", str(out / "e.csv")], "--edges"),
                       (["linkpred", "--edges", str(elsewhere), "--features",
                         str(out / "e.csv")], "--features"),
                       (["linkpred", "--edges", str(elsewhere), "--planted",
                         str(out / "e.csv")], "--planted"),
                       (["linkpred", "--config", str(out / "e.csv")], "--config"),
                       (["vector", "--data", str(out / "e.csv")], "--data")]:
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--quiet", "--out", str(out)])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"graphvae: error: {flag} {out / 'e.csv'} lies inside --out {out}, "
                       f"which the run replaces as a whole: copy it elsewhere first, or give "
                       f"another --out"), err
    assert (out / "e.csv").read_text() == "0,1\n1,2\n2,0\n"
    # not inputs inside --out: a data set's name that an output folder shares, a file in
    # the folder a link names (the link is replaced, not its target), and '.' (refused
    # for naming no folder of its own)
    from graphvae.cli.common import check_inputs_outside
    (tmp_path / "digits").mkdir()
    check_inputs_outside(tmp_path / "digits", {"--data": tmp_path / "digits"})
    (tmp_path / "link").symlink_to(out)
    check_inputs_outside(tmp_path / "link", {"--edges": out / "e.csv"})
    check_inputs_outside(Path("."), {"--edges": out / "e.csv"})


def test_state_folders_are_judged_by_their_owner_and_rank_and_inputs_through_links(
        tmp_path, capsys, monkeypatch):
    """What the commands' shared pieces decide, each from a case worked out here: --resume
    without --out and --num-nodes without --edges are refused; a training-state folder name
    past 255 bytes is named as such; a --resume under torch.distributed is left to the
    processes' joint check (agree_on_state, which refuses none and some alike); the note
    of a fresh start is rank 0's alone; a fresh generate run over its own train.pt starts
    afresh, over vector's it is refused; a refused --resume lists five of what the folder
    holds; an input reached through a link into --out, or given absolute beside a
    relative --out, lies inside it; a link in a state folder, or a state folder that is a
    link, is not cleared; only a fresh start registers its states to be replaced, and the
    block forgets them however it ends."""
    import argparse

    import graphvae.distributed as gd
    from graphvae.cli.common import (
        agree_on_state,
        check_inputs_outside,
        clear_states,
        fresh_start,
        state_dir,
    )
    from graphvae.training import state as st
    from graphvae.training.state import state_command

    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["generate", "--quiet", "--resume"],
                   r"--resume needs --out \(the state of a run is kept beside it\)$")
    one_line_error(capsys, ["linkpred", "--quiet", "--num-nodes", "5"],
                   r"--num-nodes needs --edges$")

    def ns(out, resume=False):
        return argparse.Namespace(out=out, resume=resume)
    with pytest.raises(ValueError, match=r"its training-state folder '\.NAME\.state' would be "
                                         r"longer than 255 bytes"):
        state_dir(ns(tmp_path / ("a" * 249)), "linkpred", ("seed*.pt",))
    out = tmp_path / "o"
    state = tmp_path / ".o.state"
    with pytest.raises(ValueError, match=r"--resume: no training state of an interrupted "
                                         r"run at"):
        state_dir(ns(out, True), "linkpred", ("seed*.pt",))
    assert state_dir(ns(out, True), "linkpred", ("seed*.pt",), world=2) == state
    with pytest.raises(ValueError, match=r"--resume: no training state of an interrupted run "
                                         r"at .*\.o\.state \(in any of the 1 processes\)$"):
        agree_on_state(state, ("seed*.pt",), "linkpred")
    with monkeypatch.context() as m, \
            pytest.raises(ValueError, match=r"some of the 1 processes found no training state"):
        m.setattr(gd, "spread", lambda value: (0.0, 1.0))            # one process has one
        agree_on_state(state, ("seed*.pt",), "linkpred")

    state.mkdir()
    for name in ("a", "b", "c", "d", "e", "f"):
        (state / name).write_text("")
    with pytest.raises(ValueError, match=r"it holds a, b, c, d, e\)$"):
        state_dir(ns(out, True), "generate", ("train.pt",))
    torch.save({"kind": "graphvae-training-state", "config": {"task": "generation"}},
               state / "train.pt")
    assert state_command(state / "train.pt") == "graphvae generate"
    capsys.readouterr()
    assert state_dir(ns(out), "generate", ("train.pt",)) == state
    assert "note: starting afresh" in capsys.readouterr().err
    with monkeypatch.context() as m:
        for key, value in (("WORLD_SIZE", "2"), ("RANK", "1"), ("MASTER_ADDR", "127.0.0.1"),
                           ("MASTER_PORT", "29500")):
            m.setenv(key, value)
        assert state_dir(ns(out), "generate", ("train.pt",)) == state
    assert capsys.readouterr().err == ""                      # rank 1 says nothing
    torch.save({"kind": "graphvae-training-state", "config": {"task": "vector"}},
               state / "train.pt")
    with pytest.raises(ValueError, match=r"train\.pt is the training state of an interrupted "
                                         r"run of graphvae vector"):
        state_dir(ns(out), "generate", ("train.pt",))

    with output_folder(out, "graphvae linkpred") as stage:
        (stage / "e.csv").write_text("0,1\n")
    link = tmp_path / "e-link.csv"
    link.symlink_to(out / "e.csv")
    for inputs in ({"--edges": link}, {"--edges": tmp_path / "o" / "e.csv"}):
        with pytest.raises(ValueError, match=r"lies inside --out o, which the run replaces"):
            check_inputs_outside(Path("o"), inputs)

    mine = tmp_path / "mine.pt"
    mine.write_text("keep")
    (state / "seed0.pt").symlink_to(mine)
    (state / "seed1.pt").write_text("")
    clear_states(state, ("seed*.pt",))
    assert (state / "seed0.pt").is_symlink() and not (state / "seed1.pt").exists()
    shutil.rmtree(state)
    other = tmp_path / "other"
    other.mkdir()
    (other / "seed2.pt").write_text("")
    state.symlink_to(other)
    clear_states(state, ("seed*.pt",))
    assert (other / "seed2.pt").is_file()
    state.unlink()

    key = os.path.abspath(state)
    with fresh_start(ns(out, True), state, ("seed*.pt",)):
        assert key not in st._REPLACED                       # a resumed run keeps them all
    with pytest.raises(RuntimeError), fresh_start(ns(out), state, ("seed*.pt",)):
        assert key in st._REPLACED
        raise RuntimeError
    assert key not in st._REPLACED


def test_a_run_over_an_interrupted_runs_state_says_so(tmp_path, capsys):
    """A new run into the same --out without --resume overwrote an interrupted run's
    training state without a word; it now notes it on stderr (and still runs)."""
    write(tmp_path / ".o.state" / "seed0.pt", b"an interrupted linkpred state")
    rc, _, err = run(["linkpred", "--quiet", "--epochs", "1", "--out", str(tmp_path / "o")],
                     capsys)
    assert rc == 0, err
    assert (f"graphvae linkpred: note: starting afresh; the training state of an interrupted "
            f"run in {tmp_path / '.o.state'} is replaced by this run's (--resume "
            f"continues it instead)") in err, err
    rc, _, err = run(["linkpred", "--quiet", "--epochs", "1", "--out", str(tmp_path / "p")],
                     capsys)
    assert rc == 0 and "note" not in err, err


def test_a_staging_folder_is_locked_before_it_takes_its_name(tmp_path, monkeypatch):
    """A probe of another run (which briefly takes the lock to test it) could hold the
    lock at the moment this run took it, leaving the run unlocked for its whole life, or
    see the folder alive and unlocked in between. The folder is now made under another
    name, locked, then renamed; a killed run's half-made folder is cleaned like the
    others."""
    import graphvae.run_folder as rf
    locked, real = [], rf._lock
    monkeypatch.setattr(rf, "_lock", lambda p: locked.append(p.name) or real(p))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    half = tmp_path / f".o.new-{rf._machine()}-{dead}-abcd_123"
    half.mkdir()
    with rf.output_folder(tmp_path / "o", "test") as stage:
        assert stage.name.startswith(".o.tmp-") and rf._locked(stage)
        (stage / "a.txt").write_text("a")
    assert locked[0].startswith(".o.new-")           # then the probe's, on the staged name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_an_interrupt_while_the_staging_folder_is_made_leaves_nothing(tmp_path, monkeypatch):
    """A Ctrl-C between making the staging folder and taking its name left a '.o.new-…'
    folder (and its lock) behind, which no run of the same process removes."""
    import graphvae.run_folder as rf
    real = rf._lock

    def interrupted(path):
        fd = real(path)
        if fd is not None:
            os.close(fd)
        raise KeyboardInterrupt
    monkeypatch.setattr(rf, "_lock", interrupted)
    with pytest.raises(KeyboardInterrupt), rf.output_folder(tmp_path / "o", "test"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_in_a_run_folder_names_the_file_in_out(tmp_path, monkeypatch):
    """'cannot write' for a file of a run's folder named the hidden staging folder
    (.o.tmp-…/metrics.json); it names --out's file now."""
    import errno

    import graphvae.run_folder as rf
    from graphvae.io import WriteError, write_json

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(WriteError) as exc, rf.output_folder(tmp_path / "o", "test") as stage:
        monkeypatch.setattr(Path, "write_text", full)
        write_json({"a": 1}, stage / "sub" / "m.json")
    monkeypatch.undo()
    assert str(exc.value) == f"cannot write {tmp_path / 'o' / 'sub' / 'm.json'}: No space " \
                             f"left on device"
    assert list(tmp_path.iterdir()) == []


_HOLD_A_TEMPORARY = """
import sys, time
from graphvae.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half")
    print(tmp.name, flush=True)
    time.sleep(120)
"""


def test_a_temporary_file_left_by_a_sigkill_is_removed_by_the_next_write(tmp_path):
    """SIGKILL runs no cleanup: a killed write left its ``.NAME.XXXX.tmp`` (10 GB for a
    large make-graph edge list) for good. The temporary name now carries the machine and
    process, and the next write to the name removes those of processes that are gone; a
    live writer's, another machine's and files of yours named otherwise stay."""
    import signal

    from graphvae.io import write_text
    from graphvae.processes import machine_id

    target = tmp_path / "edges.csv"

    def writer():
        proc = subprocess.Popen([sys.executable, "-c", _HOLD_A_TEMPORARY, str(target)],
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.stdout is not None
        return proc, tmp_path / proc.stdout.readline().strip()

    live, held = writer()
    killed, left = writer()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    try:
        assert left.is_file() and held.is_file()
        assert re.fullmatch(rf"\.edges\.csv\.{machine_id()}-{killed.pid}-[a-z0-9_]{{8}}\.tmp",
                            left.name), left.name
        foreign = tmp_path / f".edges.csv.0123abcd-{killed.pid}-abcd_123.tmp"  # another host
        yours = tmp_path / ".edges.csv.backup.tmp"
        other = tmp_path / f".nodes.csv.{machine_id()}-{killed.pid}-abcd_123.tmp"
        # a made-up name whose pid no process can have (beyond a pid_t) was an internal
        # error (OverflowError) of every write to the name; it is kept
        made_up = tmp_path / f".edges.csv.{machine_id()}-9999999999-abcd_123.tmp"
        for p in (foreign, yours, other, made_up):
            p.write_text("keep")
        write_text("0,1\n", target)
        assert target.read_text() == "0,1\n"
        assert not left.exists()
        assert all(p.is_file() for p in (held, foreign, yours, other, made_up))
    finally:
        live.kill()
        live.wait()


def test_a_text_file_as_a_training_state_is_named(tmp_path):
    """`echo hello > .o.state/seed0.pt` then --resume said "cannot resume from this
    training state (KeyError: 101)"; check-invariance named such a file already."""
    state = tmp_path / ".o.state"
    state.mkdir()
    (state / "seed0.pt").write_text("hello\n")
    rc, _, err = run_cli(["linkpred", "--quiet", "--epochs", "2", "--out",
                          str(tmp_path / "o"), "--resume"])
    err = err.strip()
    assert rc == 2 and "\n" not in err, err
    assert err.endswith("seed0.pt: not a graphvae training state (graphvae writes them "
                        "beside --out); it starts with b'hell'"), err
    assert (state / "seed0.pt").read_text() == "hello\n"            # kept


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_data_root_that_is_a_file_is_named(tmp_path, monkeypatch, how):
    """--data-root naming a file gave "NotADirectoryError: [Errno 20] Not a directory:
    '.../g.csv/Planetoid/Cora/raw/ind.cora.x'"."""
    root = tmp_path / "g.csv"
    root.write_text("0,1\n")
    argv = ["linkpred", "--quiet", "--dataset", "cora", "--epochs", "1"]
    if how == "flag":
        argv += ["--data-root", str(root)]
    else:
        monkeypatch.setenv("GRAPHVAE_DATA", str(root))
    rc, _, err = run_cli(argv)
    err = err.strip()
    source = "--data-root" if how == "flag" else "GRAPHVAE_DATA"
    assert rc == 2 and "\n" not in err, err
    assert f"the data root {root} ({source}) is a file, not a folder" in err, err


@pytest.mark.parametrize("held, flags", [
    (["seed0.pt"], ["--seed", "1", "--seeds", "3"]),
    (["seed0.pt", "seed1.pt"], ["--seeds", "1"]),
])
def test_linkpred_resume_with_other_seeds_is_refused_and_keeps_the_states(tmp_path, held,
                                                                          flags):
    """A run stopped in seed 0 (or 1), resumed with another --seed (or fewer --seeds),
    trained its own seeds afresh, exited 0, and removed the folder: the interrupted run's
    states were lost. It is now refused before anything is read, and they stay."""
    state = tmp_path / ".o.state"
    state.mkdir()
    for name in held:
        (state / name).write_bytes(b"state of " + name.encode())
    rc, _, err = run_cli(["linkpred", "--quiet", "--epochs", "2", "--out",
                          str(tmp_path / "o"), "--resume", *flags])
    assert rc == 2 and err.count("\n") == 1, err
    assert f"--resume: {state} holds the training states of seeds " \
           f"{', '.join(n[4:-3] for n in held)}, and this run" in err, err
    assert sorted(p.name for p in state.iterdir()) == held
    assert all((state / n).read_bytes() == b"state of " + n.encode() for n in held)


def test_linkpred_resume_with_more_seeds_than_the_states_is_allowed(tmp_path):
    """The interrupted run's seeds within this run's: nothing to refuse (more seeds
    continue the run and add the rest)."""
    from graphvae.cli.linkpred import _check_state_seeds
    for name in ("seed0.pt", "seed1.pt", "seed12.pt.tmp", "notes.txt"):
        (tmp_path / name).write_text("x")
    _check_state_seeds(tmp_path, 0, 2)
    _check_state_seeds(tmp_path, 0, 5)
    _check_state_seeds(tmp_path / "missing", 7, 1)
    with pytest.raises(ValueError, match="seeds 0, 1, and this run \\(--seed 1 --seeds 2\\) "
                                         "trains seeds 1–2"):
        _check_state_seeds(tmp_path, 1, 2)
    with pytest.raises(ValueError, match="seeds 0, 1, and this run \\(--seed 1 --seeds 1\\) "
                                         "trains seed 1: rerun"):        # (not "seeds 1–1")
        _check_state_seeds(tmp_path, 1, 1)
    # more than ten: the first ten by number (seed10 after seed9, not after seed1), then ...
    for seed in range(2, 12):
        (tmp_path / f"seed{seed}.pt").write_text("x")
    with pytest.raises(ValueError, match="seeds 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ..., and this "
                                         "run \\(--seed 20 --seeds 1\\)"):
        _check_state_seeds(tmp_path, 20, 1)


def test_a_state_of_generate_or_vector_resumed_by_the_other_names_the_command(tmp_path):
    """generate and vector both keep train.pt: each took the other's state for its own
    with other settings, listing settings neither has ("no --dataset here, unset in the
    state; ... 33 more") and advising to rerun with the same ones."""
    from graphvae.tasks.generation import GenerationConfig, run_generation
    from graphvae.vector.data import load_digits
    from graphvae.vector.run import VectorRunConfig, run_vector

    made = {"generate": tmp_path / "g", "vector": tmp_path / "v"}
    run_generation(GenerationConfig(epochs=1, eval_every=1), progress=False,
                   state=made["generate"] / "train.pt")
    run_vector(load_digits(), VectorRunConfig(epochs=1, nll_samples=2, hidden=(8,)),
               progress=False, state=made["vector"])
    for left_by, other in (("generate", "vector"), ("vector", "generate")):
        state = tmp_path / f".{left_by}-out.state"
        made[left_by].rename(state)
        before = (state / "train.pt").read_bytes()
        rc, _, err = run_cli([other, "--quiet", "--epochs", "1", "--out",
                              str(tmp_path / f"{left_by}-out"), "--resume"])
        assert rc == 2 and err.count("\n") == 1, err
        assert err.rstrip().endswith(
            f"train.pt: the training state was left by graphvae {left_by}, not by graphvae "
            f"{other}: resume it with that command, or use another --out"), err
        assert (state / "train.pt").read_bytes() == before
        # a fresh run of the other command wrote over it, with a note that it replaced "an
        # interrupted run's" state, and --resume of the command that left it found none
        rc, _, err = run_cli([other, "--quiet", "--epochs", "1", "--out",
                              str(tmp_path / f"{left_by}-out")])
        assert rc == 2 and err.count("\n") == 1, err
        assert err.rstrip().endswith(
            f"train.pt is the training state of an interrupted run of graphvae {left_by}, "
            f"which this run would write over: resume it with that command, delete it, or "
            f"choose another --out"), err
        assert (state / "train.pt").read_bytes() == before
        assert not (tmp_path / f"{left_by}-out").exists()


def test_a_state_folder_that_is_a_symlink_is_refused(tmp_path):
    """A .OUT.state link was written through: a fresh vector run replaced a file of the
    link's target (its note called it an interrupted run's state), and a completed linkpred
    run left its seed0.pt there (the removal skips a link)."""
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "train.pt").write_text("my notes")
    (tmp_path / ".v.state").symlink_to(keep)
    for command in ("vector", "linkpred", "generate"):
        rc, _, err = run_cli([command, "--quiet", "--epochs", "1", "--out",
                              str(tmp_path / "v")])
        assert rc == 2 and err.count("\n") == 1, (command, err)
        assert f".v.state is a symbolic link: a run with --out {tmp_path / 'v'} writes" in err
    assert sorted(p.name for p in keep.iterdir()) == ["train.pt"]
    assert (keep / "train.pt").read_text() == "my notes"
    assert not (tmp_path / "v").exists()


def test_a_run_folder_of_another_command_is_not_replaced(tmp_path):
    """`graphvae score ... --out RUN` onto a finished generate run replaced its model.pt
    and samples with score's three files, exit 0 and no note. A run folder is replaced by
    a run of the command that wrote it only; another command's is refused and kept."""
    from graphvae.run_folder import MANIFEST, check_output_folder, output_folder

    run = tmp_path / "gen"
    with output_folder(run, "graphvae generate") as stage:
        (stage / "model.pt").write_bytes(b"weights")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert check_output_folder(run, "graphvae generate") == run        # the same command
    with pytest.raises(ValueError, match=rf"--out {re.escape(str(run))} holds a run of "
                                         r"graphvae generate \(manifest\.json, model\.pt\), "
                                         r"which graphvae score would replace"):
        check_output_folder(run, "graphvae score")
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"num_nodes": 2, "edges": [[0, 1]]}\n')
    rc, _, err = run_cli(["score", str(samples), "--dataset", "community-small", "--out",
                          str(run)])
    assert rc == 2 and err.count("\n") == 1 and "holds a run of graphvae generate" in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert MANIFEST in before
    with output_folder(run, "graphvae generate") as stage:               # rerun: replaced
        (stage / "model.pt").write_bytes(b"new weights")
    assert (run / "model.pt").read_bytes() == b"new weights"


def test_a_fresh_run_removes_an_interrupted_runs_states_so_its_own_resume_works(
        tmp_path, monkeypatch):
    """A fresh run into a folder holding an older run's seed0.pt and seed1.pt, itself
    interrupted, could not be resumed with its own --seed: the folder held seeds 0, 1 and
    5, and the seed check refused. The fresh run now removes the older states at its first
    state write (its note says so), so the folder holds its own alone."""
    import graphvae.cli.linkpred as lp
    state = tmp_path / ".o.state"
    state.mkdir()
    for name in ("seed0.pt", "seed1.pt"):
        (state / name).write_bytes(b"an older run's state")
    (state / "notes.txt").write_text("mine")
    monkeypatch.setattr(lp, "done", lambda *a: None)         # as if killed after training
    argv = ["linkpred", "--quiet", "--model", "gae", "--epochs", "3", "--seed", "5",
            "--out", str(tmp_path / "o")]
    rc, _, err = run_cli(argv)
    assert rc == 0, err
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt", "seed5.pt"]
    monkeypatch.undo()
    rc, _, err = run_cli([*argv, "--resume"])
    assert rc == 0, err
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["runs"][0]["resumed_from_epoch"] == 3
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("command", ["linkpred", "vector"])
def test_a_fresh_run_that_fails_before_its_first_state_write_keeps_the_older_states(
        tmp_path, monkeypatch, command):
    """linkpred and vector removed an interrupted run's states as soon as a fresh run had
    read its inputs: a fresh run that then failed (here: training raises at once) had
    removed them, and --resume found nothing. They now go at the fresh run's first state
    write, when the folder holds a state of its own."""
    import graphvae.cli.linkpred as lp
    import graphvae.vector.run as vr

    state = tmp_path / ".o.state"
    state.mkdir()
    names = ["seed0.pt", "seed1.pt"] if command == "linkpred" else ["train.pt", "refine.pt"]
    for name in names:
        (state / name).write_bytes(b"an interrupted run's state")

    def fail(*args, **kwargs):
        raise ValueError("training failed")

    if command == "linkpred":
        monkeypatch.setattr(lp, "_runs", fail)
        argv = ["linkpred", "--quiet", "--model", "gae", "--epochs", "3"]
    else:
        monkeypatch.setattr(vr, "run_vector", fail)
        argv = ["vector", "--quiet", "--model", "ae", "--epochs", "1"]
    rc, _, err = run_cli([*argv, "--out", str(tmp_path / "o")])
    assert rc == 2 and "training failed" in err, err
    assert sorted(p.name for p in state.iterdir()) == sorted(names)


def _write_a_state(path):
    """save_state of a one-layer model after one epoch: a training state written at
    ``path`` as the loop writes one."""
    from graphvae.training.callbacks import FitState
    from graphvae.training.loop import FitResult
    from graphvae.training.state import save_state
    model = torch.nn.Linear(2, 1)
    fit_state = FitState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                         callbacks=[])
    save_state(path, fit_state, FitResult(1, 0, 0.0, 0.0), None, None)


def test_a_failed_fresh_run_leaves_no_clear_behind_for_a_later_resume(tmp_path,
                                                                       monkeypatch):
    """The first-write clear of a fresh run that failed before writing stayed registered
    in the process: a later --resume in the same process (the API, a notebook) then
    removed the interrupted run's other seeds at its first state write, and retrained
    them."""
    import graphvae.cli.linkpred as lp

    state = tmp_path / ".o.state"
    state.mkdir()
    for name in ("seed0.pt", "seed1.pt"):
        (state / name).write_bytes(b"an interrupted run's state")

    def fail(*args, **kwargs):
        raise ValueError("training failed")

    monkeypatch.setattr(lp, "_runs", fail)
    rc, _, err = run_cli(["linkpred", "--quiet", "--model", "gae", "--epochs", "3",
                          "--out", str(tmp_path / "o")])
    assert rc == 2 and "training failed" in err, err
    _write_a_state(state / "seed1.pt")      # a resumed run writes seed 1's: seed 0's stays
    assert sorted(p.name for p in state.iterdir()) == ["seed0.pt", "seed1.pt"]
    assert (state / "seed0.pt").read_bytes() == b"an interrupted run's state"


def test_the_first_state_write_removes_the_older_states_and_keeps_its_own(tmp_path):
    """The first save_state into a registered folder calls the clear with its own path,
    once; later writes do not."""
    from graphvae.cli.common import clear_states
    from graphvae.training.state import replace_on_first_write

    state = tmp_path / "s"
    state.mkdir()
    for name in ("seed0.pt", "seed3.pt", ".seed3.pt.123.tmp", "notes.txt"):
        (state / name).write_bytes(b"old")
    calls = []

    def clear(kept):
        calls.append(kept.name)
        clear_states(state, ("seed*.pt",), keep=kept.name)

    replace_on_first_write(state, clear)
    for _ in range(2):
        _write_a_state(state / "seed0.pt")
    assert calls == ["seed0.pt"]
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt", "seed0.pt"]
    assert (state / "seed0.pt").read_bytes() != b"old"


def test_a_fresh_generate_that_cannot_read_its_data_keeps_the_interrupted_state(tmp_path):
    """generate replaces its one state file at its first state write, after its data are
    read: a fresh run that fails before (here: no graph-set file under --data-root) leaves
    the interrupted run's state for --resume."""
    state = tmp_path / ".g.state"
    state.mkdir()
    (state / "train.pt").write_bytes(b"an interrupted run's state")
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(["generate", "--dataset", "ego-small", "--data-root",
                          str(tmp_path / "empty"), "--epochs", "1", "--quiet", "--out",
                          str(tmp_path / "g")])
    assert rc == 2, err
    assert (state / "train.pt").read_bytes() == b"an interrupted run's state"


def test_ctrl_c_names_the_training_state_it_leaves(tmp_path, monkeypatch):
    """Ctrl-C's line said only "graphvae: interrupted", though the state of epoch 25 was
    kept for --resume; it now names it, as SIGTERM's line does (here a Ctrl-C outside the
    held epoch: a KeyboardInterrupt from the training step). With no state written it
    says what it said."""
    import graphvae.tasks.link_prediction as lp
    import graphvae.training.loop as loop
    monkeypatch.setattr(lp, "STATE_SECONDS", None)        # states every 25 epochs
    real = loop._train_epoch

    def ctrl_c_at(epoch):
        def train_epoch(state, *args):
            if state.epoch == epoch:
                raise KeyboardInterrupt
            real(state, *args)
        return train_epoch

    for epoch, line in ((30, "graphvae: interrupted; the training state of epoch 25 is in "
                             f"{tmp_path}/.o.state/seed0.pt (rerun with --resume to "
                             f"continue)"),
                        (3, "graphvae: interrupted")):
        monkeypatch.setattr(loop, "_train_epoch", ctrl_c_at(epoch))
        rc, _, err = run_cli(["linkpred", "--quiet", "--model", "gae", "--epochs", "40",
                              "--out", str(tmp_path / "o")])
        assert rc == 130 and err.strip().splitlines()[-1] == line, err
        main_states = sorted(p.name for p in (tmp_path / ".o.state").glob("*.pt"))
        assert main_states == ["seed0.pt"]


def test_resume_on_another_commands_state_folder_names_that_command(tmp_path):
    """linkpred --resume on a folder left by generate listed its train.pt but not the
    command that left it (the README says the command is named)."""
    for folder, names in ((".g.state", ["train.pt"]), (".v.state", ["train.pt", "refine.pt"]),
                          (".l.state", ["seed0.pt"])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(b"a state")
    cases = [(["linkpred", "--out", str(tmp_path / "g")], "left by graphvae generate or vector"),
             (["linkpred", "--out", str(tmp_path / "v")], "left by graphvae vector)"),
             (["vector", "--out", str(tmp_path / "l")], "it holds seed0.pt, left by graphvae "
                                                        "linkpred)")]
    for argv, told in cases:
        rc, _, err = run_cli([*argv, "--resume", "--epochs", "1", "--quiet"])
        assert rc == 2 and told in err and len(err.strip().splitlines()) == 1, err


def test_an_out_path_through_a_loop_of_links_is_one_line(tmp_path):
    """--out under a loop of symbolic links ended in "internal error: RuntimeError: Symlink
    loop" (exit 3) for linkpred, vector and score, where the path was resolved."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    samples = tmp_path / "s.jsonl"
    samples.write_text('{"num_nodes": 2, "edges": [[0, 1]]}\n')
    for command in (["linkpred", "--epochs", "1"], ["vector", "--epochs", "1"],
                    ["generate", "--epochs", "1"],
                    ["score", str(samples), "--dataset", "community-small"]):
        out = tmp_path / "a" / "run"
        rc, _, err = run_cli([*command, "--quiet", "--out", str(out)])
        assert rc == 2 and err.count("\n") == 1, (command, err)
        assert f"--out {out}: its folder cannot be resolved (RuntimeError: " in err, err
        rc, _, err = run_cli([*command, "--quiet", "--out", str(tmp_path / "a")])
        assert rc == 2 and err.count("\n") == 1, (command, err)   # the loop itself


def test_linkpred_writes_its_out_under_a_name_that_is_not_utf8(tmp_path):
    """A folder name of other bytes than UTF-8 (a Latin-1 name) trained, then failed in
    the embeddings export with pyarrow's "surrogates not allowed", naming no file."""
    out = tmp_path / os.fsdecode(b"r\xe9sultats")
    rc, _, err = run_cli(["linkpred", "--quiet", "--epochs", "1", "--out", str(out)])
    assert rc == 0, err
    lines = (out / "embeddings.csv").read_text().splitlines()
    assert lines[0].startswith('"node","z0",') and len(lines) > 10


def test_more_layers_than_a_saved_model_may_hold_are_refused_before_training():
    """linkpred trained 1,001 hidden layers, then check-invariance and load_model refused
    the model.pt it wrote ("asks for 1,001 layers (at most 1,000)"). The width flags are
    held to the loader's limit."""
    from graphvae.models.checkpoints import MAX_LAYERS
    from graphvae.tasks.generation import GenerationConfig
    from graphvae.tasks.link_prediction import LinkPredConfig
    from graphvae.vector.config import VectorRunConfig
    assert MAX_LAYERS == 1000
    LinkPredConfig(hidden=(2,) * 1000).validate()                    # the limit itself
    for kind in (LinkPredConfig, GenerationConfig, VectorRunConfig):
        with pytest.raises(ValueError, match=r"^--hidden asks for 1,001 layers, at most "
                                             r"1,000$"):
            kind(hidden=(2,) * 1001).validate()
    rc, _, err = run_cli(["linkpred", "--epochs", "1", "--hidden", ",".join(["2"] * 1001)])
    assert (rc, err) == (2, "graphvae: error: --hidden asks for 1,001 layers, at most "
                            "1,000\n")


def test_linkpred_notes_the_flags_it_does_not_read_and_they_do_not_tie_its_state(
        capsys, monkeypatch):
    """--propagated-dim without --feature-mode propagated, and --negatives with --estimator
    dense, were ignored without a word, yet tied the training state: resuming a run with
    one of them added was refused as other settings. As generate and vector do, linkpred
    notes them on stderr and its states record them at their defaults."""
    from graphvae.tasks.link_prediction import LinkPredConfig
    base = LinkPredConfig()
    assert base.replace(propagated_dim=3, propagated_hops=2).training_settings() == \
        base.training_settings()
    dense = LinkPredConfig(estimator="dense")
    assert dense.replace(negatives=3.0).training_settings() == dense.training_settings()
    for used in (base.replace(negatives=3.0),
                 LinkPredConfig(features="propagated", propagated_dim=3)):
        assert used.training_settings() != used.replace(
            negatives=1.0, propagated_dim=64).training_settings()
        assert used.ignored_settings() == []
    rc, _, err = run_cli(["linkpred", "--quiet", "--epochs", "1", "--propagated-dim", "3",
                          "--estimator", "dense", "--negatives", "3"])
    assert rc == 0, err
    assert err.splitlines()[:2] == [
        "graphvae linkpred: note: --negatives applies only to --estimator sampled; "
        "ignored here",
        "graphvae linkpred: note: --propagated-dim applies only to --feature-mode "
        "propagated; ignored here"], err
    # the best preset's own --negatives 3 is not the user's: no note
    rc, _, err = run_cli(["linkpred", "--model", "best", "--quiet", "--epochs", "1",
                          "--estimator", "dense"])
    assert rc == 0 and "note" not in err, err
    # under torchrun, process 0 alone notes them (rank 1 reads the same flags)
    import graphvae.distributed as distributed
    from graphvae.cli import build_parser
    from graphvae.cli.linkpred import _read
    args = build_parser().parse_args(["linkpred", "--quiet", "--estimator", "dense",
                                      "--negatives", "3"])
    for rank, notes in ((0, 1), (1, 0)):
        with monkeypatch.context() as m:
            m.setattr(distributed, "world_from_env", lambda r=rank: (r, r, 2))
            _read(args, 1)
        err = capsys.readouterr().err
        assert err.count("graphvae linkpred: note: --negatives applies only") == notes, err


def test_a_manifest_of_deep_names_costs_its_size_not_its_square(tmp_path):
    """foreign_files built every parent of every listed name: a name of d parts cost d²
    (an 80 KB manifest listing "a/a/.../a" took 1.8 GB and 9 s, in every command's --out
    check). Folders are now tested from those found on disk; listed subfolders still
    count as the run's, and unlisted ones do not."""
    import tracemalloc

    from graphvae.run_folder import MANIFEST, foreign_files
    run = tmp_path / "run"
    (run / "plots" / "deep").mkdir(parents=True)
    (run / "plots" / "deep" / "a.png").write_bytes(b"png")
    (run / "other").mkdir()
    files = {"plots/deep/a.png": {"bytes": 3}, "a/" * 20_000 + "f": {"bytes": 0}}
    (run / MANIFEST).write_text(json.dumps({"written_by": "graphvae",
                                            "command": "graphvae generate", "files": files}))
    tracemalloc.start()
    found = foreign_files(run)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found == ["other"]
    assert peak < 5_000_000, peak                 # the old code: 0.6 GB for this manifest


@pytest.mark.parametrize("text, message", [
    # line 2 is ' "lr" 0.1}': after the key, a colon is expected where 0.1 starts (column 7)
    ('{"epochs": 3,\n "lr" 0.1}', "config.json:2: not JSON at column 7: Expecting ':' "
                                   "delimiter"),
    ('{"a": "b}', "config.json:1: not JSON at column 7: Unterminated string"),
    ('{"epochs": 3}\n\n{}', "config.json:3: not JSON at column 1: Extra data"),
])
def test_a_config_that_is_not_json_names_the_line_and_column(tmp_path, capsys, text,
                                                             message):
    """Python's words were "not JSON (JSONDecodeError: Expecting ':' delimiter: line 2
    column 7 (char 20))"; the place is now given as every other reader gives it."""
    path = write(tmp_path / "config.json", text)
    line = one_line_error(capsys, ["linkpred", "--quiet", "--config", str(path)], "")
    assert line == f"graphvae: error: cannot read config: {tmp_path}/{message}", line


def test_configs_and_manifests_are_read_only_up_to_a_megabyte(tmp_path):
    """JSON takes up to 33 bytes of memory a byte of file, and configs and manifests were
    read up to 64 MiB (2 GB); they are now capped at 1 MiB, other JSON at 16 MiB."""
    from graphvae.io import MAX_SMALL_JSON_BYTES
    from graphvae.run_folder import MANIFEST, foreign_files
    config = tmp_path / "c.json"
    config.write_text('{"epochs": 3' + " " * MAX_SMALL_JSON_BYTES + "}")
    rc, _, err = run_cli(["linkpred", "--config", str(config), "--quiet"])
    assert rc == 2 and err == (f"graphvae: error: cannot read config: {config}: "
                               f"{config.stat().st_size:,} bytes "
                               f"is more than the 1,048,576 such a file may have\n"), err
    run = tmp_path / "run"
    run.mkdir()
    (run / MANIFEST).write_text(json.dumps({"written_by": "graphvae", "files": {},
                                            "pad": " " * MAX_SMALL_JSON_BYTES}))
    assert foreign_files(run) == [MANIFEST]        # too large to be ours: not graphvae's


@pytest.mark.parametrize("argv", [["linkpred"], ["generate"], ["score", "s.jsonl"],
                                  ["vector"], ["convert-graphs", "--out", "o"],
                                  ["check-invariance", "--checkpoint", "m.pt"]])
def test_an_empty_data_root_is_refused_not_taken_for_the_working_folder(argv, monkeypatch,
                                                                         tmp_path):
    """Path("") is ".", so --data-root "" (an unset shell variable) read the data from the
    working folder; it is now refused, from the shell and from Python."""
    from graphvae.io import resolve_data_root
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli([*argv, "--data-root", ""])
    assert rc == 2 and out == "" and err.startswith(
        "graphvae: error: argument --data-root: an empty path; leave the flag out to use "
        "$GRAPHVAE_DATA, else ./data"), err
    assert err.count("\n") == 1 and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="--data-root is an empty path"):
        resolve_data_root("")
    assert resolve_data_root(tmp_path) == tmp_path


@pytest.mark.parametrize("argv, flag", [
    (["linkpred", "--out", "{}"], "--out"), (["linkpred", "--edges", "{}"], "--edges"),
    (["linkpred", "--edges", "e.csv", "--features", "{}"], "--features"),
    (["linkpred", "--config", "{}"], "--config"), (["linkpred", "--planted", "{}"], "--planted"),
    (["generate", "--out", "{}"], "--out"), (["vector", "--out", "{}"], "--out"),
    (["vector", "--data", "{}"], "--data"), (["score", "{}"], "samples"),
    (["score", "s.jsonl", "--out", "{}"], "--out"),
    (["make-graph", "--nodes", "9", "--edges", "9", "--out", "{}"], "--out"),
    (["convert-graphs", "--out", "{}"], "--out"),
    (["check-invariance", "--checkpoint", "{}"], "--checkpoint")])
def test_every_path_flag_refuses_an_empty_or_overlong_path_naming_the_flag(argv, flag,
                                                                         monkeypatch, tmp_path):
    """An empty path was read as "." (the working folder: "--out . names no folder of its
    own", ".: is a folder", "metrics.json: no such file"), and a name longer than Linux's
    255 bytes got the OS's "File name too long", naming neither flag nor path."""
    monkeypatch.chdir(tmp_path)
    long_part = "é" * 128                          # 256 bytes in UTF-8, 128 characters
    for value, problem in (("", "an empty path"),
                           (f"a/{long_part}/b", f"its part {'é' * 20}… is 256 bytes long; "
                                                f"a file name takes at most 255"),
                           ("d/" * 2048, "the path is 4096 bytes long; a path takes at "
                                         "most 4095")):
        rc, out, err = run_cli([a.replace("{}", value) for a in argv])
        assert rc == 2 and out == "", err
        assert err.startswith(f"graphvae: error: argument {flag}: {problem} "), err
        assert err.count("\n") == 1 and list(tmp_path.iterdir()) == []
    rc, _, err = run_cli([a.replace("{}", "a/" + "é" * 127) for a in argv])  # 254 bytes
    assert "bytes long" not in err and "empty path" not in err


@pytest.mark.parametrize("argv, weights, flags", [
    # GAE on the embedded graph's 64 features: GCN weights 64×8 and 8×4, no biases
    (["linkpred", "--model", "gae", "--hidden", "8", "--latent", "4"], 64 * 8 + 8 * 4,
     "--hidden or --latent"),
    # AE on the 64 pixels of digits, fixed variance: 64→10→2→10→64 with biases
    (["vector", "--model", "ae", "--hidden", "10", "--latent-dim", "2", "--variance", "1"],
     (64 * 10 + 10) + (10 * 2 + 2) + (2 * 10 + 10) + (10 * 64 + 64), "--hidden or --latent-dim")])
def test_a_model_whose_trained_weights_exceed_the_memory_is_refused_before_training(
        argv, weights, flags, monkeypatch, tmp_path):
    """Each width flag is capped alone, so --hidden 65536,65536 (4.4·10⁹ weights, 65 GB with
    gradients and Adam's moments) passed every check and ran into the kernel's
    out-of-memory killer. The weights are now counted on the meta device and refused where
    16 bytes each exceed the machine's memory: one byte short is refused, exactly enough
    trains."""
    from graphvae import devices
    monkeypatch.setattr(devices, "physical_memory", lambda: 16 * weights - 1)
    out = tmp_path / "run"
    rc, stdout, err = run_cli([*argv, "--epochs", "1", "--quiet", "--out", str(out)])
    assert rc == 2 and stdout == "" and err.count("\n") == 1, err
    assert err.startswith(f"graphvae: error: the model has {weights:,} weights, and training "
                          f"them needs "), err
    assert err.endswith(f"(16 bytes a weight: it, its gradient, Adam's two moments), more "
                        f"than this machine's {(16 * weights - 1) / 2**30:,.1f} GB; lower "
                        f"{flags}\n"), err
    assert not out.exists()
    monkeypatch.setattr(devices, "physical_memory", lambda: 16 * weights)
    rc, _, err = run_cli([*argv, "--epochs", "1", "--quiet", "--out", str(out)])
    assert rc == 0, err


def test_generate_counts_its_model_before_training(monkeypatch, tmp_path):
    """The generation models are counted too: with a byte of memory nothing trains."""
    from graphvae import devices
    monkeypatch.setattr(devices, "physical_memory", lambda: 1)
    rc, _, err = run_cli(["generate", "--epochs", "1", "--quiet", "--out", str(tmp_path / "g")])
    assert rc == 2 and re.match(r"graphvae: error: the model has [\d,]+ weights, .* lower "
                                r"--hidden or --latent\n$", err), err
    assert not (tmp_path / "g").exists()


def test_run_folders_list_nested_files_and_only_graphvae_manifests_count(tmp_path):
    """The manifest lists files in subfolders too (a rerun into the folder was refused,
    and check_as_written could not vouch for them); a listed subfolder replaced by a link
    is foreign; a manifest.json another program wrote ("written_by": "other") makes the
    folder not graphvae's, so it is never replaced. Infinite metrics are JSON null (json
    refuses them at the run's last write)."""
    from graphvae.io import json_text
    from graphvae.run_folder import check_output_folder, foreign_files

    out = tmp_path / "o"
    with output_folder(out, "graphvae test") as stage:
        (stage / "sub").mkdir()
        (stage / "sub" / "a.txt").write_text("x")
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["sub/a.txt"]
    assert foreign_files(out) == [] and check_output_folder(out) == out
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(out / "sub", elsewhere)
    shutil.rmtree(out / "sub")
    (out / "sub").symlink_to(elsewhere)
    assert foreign_files(out) == ["sub"]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / MANIFEST).write_text(json.dumps({"written_by": "other", "files": {}}))
    assert foreign_files(theirs) == [MANIFEST]
    with pytest.raises(ValueError, match=r"other files in it \(manifest\.json\)"):
        check_output_folder(theirs)
    assert json_text({"a": float("inf"), "b": [-float("inf"), float("nan"), 1.5]}) == \
        '{"a": null, "b": [null, null, 1.5]}'


def test_run_folder_edges_leftovers_sizes_and_name_lengths(tmp_path):
    """A dead run's replaced folder is put back as --out only when it is a graphvae run
    (has its manifest): an empty one is removed. A manifest entry without a digest still
    holds its file to its size. The hidden folder beside --out is '.NAME.tmp-' + machine
    (8) + '-' + pid (up to 10 digits) + '-' + mkdtemp's 8 characters: NAME + 34 bytes, so
    a 221-byte name fits 255 and a 222-byte one is refused up front."""
    from graphvae.run_folder import check_output_folder, foreign_files

    out = tmp_path / "o"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    empty_old = tmp_path / f".o.old-{dead.pid}-aaaa0000"
    empty_old.mkdir()
    clean_leftovers(out)
    assert not out.exists() and not empty_old.exists()
    run = tmp_path / "run"
    run.mkdir()
    (run / "a.txt").write_text("xy")
    (run / MANIFEST).write_text(json.dumps({"written_by": "graphvae",
                                            "files": {"a.txt": {"bytes": 1}}}))
    assert foreign_files(run) == ["a.txt"]
    (run / "a.txt").write_text("x")
    assert foreign_files(run) == []
    assert check_output_folder(tmp_path / ("a" * 221)) == tmp_path / ("a" * 221)
    with pytest.raises(ValueError, match="would be longer than 255 bytes"):
        check_output_folder(tmp_path / ("a" * 222))


def test_atomic_writes_modes_errors_and_leftovers(tmp_path, monkeypatch):
    """- A file written over a link gets 0o666 less the umask (a link's own lstat mode is
      0o777: copied, the new file was world-writable); the link is replaced.
    - An error inside the write that is not the write's own passes through as it is: a
      RuntimeError of the caller's, another file's OSError (it was renamed to the target).
    - NaN inside a tuple is JSON null; JSON files end in a newline.
    - A dead writer's leftovers are removed only when named exactly so: a .bak of yours
      and a link named like a leftover stay, the real leftover goes.
    - A dangling link as the parent folder is refused before the write."""
    from graphvae.atomic import atomic_path, check_output_file
    from graphvae.errors import WriteError
    from graphvae.io import json_text, write_json, write_text
    from graphvae.processes import owner_tag

    mine = tmp_path / "mine.txt"
    mine.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(mine)
    old_mask = os.umask(0o022)
    try:
        write_text("new\n", link)
    finally:
        os.umask(old_mask)
    assert not link.is_symlink() and link.stat().st_mode & 0o777 == 0o644
    assert mine.read_text() == "old"
    target = tmp_path / "t.csv"
    with pytest.raises(RuntimeError, match="^boom$") as info, atomic_path(target):
        raise RuntimeError("boom")
    assert not isinstance(info.value, WriteError) and not target.exists()
    with pytest.raises(FileNotFoundError) as info, atomic_path(target):
        raise FileNotFoundError(2, "No such file or directory", "/elsewhere/input.csv")
    assert not isinstance(info.value, WriteError)
    assert info.value.filename == "/elsewhere/input.csv"
    assert json_text({"a": (float("nan"), 1.5)}) == '{"a": [null, 1.5]}'
    write_json({"a": 1}, tmp_path / "p.json")
    assert (tmp_path / "p.json").read_text() == '{\n  "a": 1\n}\n'
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    prefix = f".e.csv.{owner_tag(dead.pid)}"
    bak, fake, left = (tmp_path / f"{prefix}abcdefgh.bak", tmp_path / f"{prefix}abcdefgi.tmp",
                       tmp_path / f"{prefix}abcdefgj.tmp")
    bak.write_text("mine")
    fake.symlink_to(mine)
    left.write_text("half")
    write_text("x", tmp_path / "e.csv")
    assert bak.exists() and fake.is_symlink() and not left.exists()
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    with pytest.raises(ValueError, match="dangling is not a folder"):
        check_output_file(tmp_path / "dangling" / "x.json")


def _immutable(folder: Path) -> bool:
    """Make ``folder`` immutable (``chattr +i``: root, on a file system that has the flag)."""
    return shutil.which("chattr") is not None and subprocess.run(
        ["chattr", "+i", str(folder)], capture_output=True).returncode == 0


@pytest.mark.parametrize("command", [["linkpred"], ["vector"]])
def test_an_out_folder_that_cannot_be_moved_aside_is_refused_before_training(
        tmp_path, capsys, command):
    """An immutable --out was found only at the run's end (a bare PermissionError, the
    results removed): now refused first, the folder left as it was."""
    out = tmp_path / "o"
    out.mkdir()
    if not _immutable(out):
        pytest.skip("cannot make a folder immutable here")
    try:
        start = time.perf_counter()
        one_line_error(capsys, [*command, "--quiet", "--out", str(out)],
                       r"--out .*o cannot be replaced: moving it aside fails \(Operation not "
                       r"permitted\); give another --out")
        assert time.perf_counter() - start < 5                  # before training
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]   # nothing left aside


def test_a_run_whose_out_cannot_be_replaced_at_the_end_keeps_its_results(tmp_path,
                                                                         monkeypatch):
    """The last rename failing (the folder made immutable during the run) removed the
    finished results with the staging folder; they are kept beside --out, and named."""
    import errno

    import graphvae.run_folder as rf

    out = tmp_path / "o"
    with rf.output_folder(out, "test") as stage:                # a first run's folder
        (stage / "a.txt").write_text("first")

    def refuse(old, new):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(old))
    with pytest.raises(ValueError) as exc, rf.output_folder(out, "test") as stage:
        (stage / "a.txt").write_text("second")
        monkeypatch.setattr(rf, "_replace_folder", refuse)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("o.unplaced-")]
    assert len(kept) == 1 and (kept[0] / "a.txt").read_text() == "second"
    assert (kept[0] / rf.MANIFEST).is_file()                     # complete, with its manifest
    assert str(exc.value) == f"--out {out} could not be replaced (Operation not permitted); " \
                             f"the results are in {kept[0]}"
    assert (out / "a.txt").read_text() == "first"                # the old folder untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", kept[0].name]


def test_a_manifest_vouches_only_for_what_it_lists_and_a_folder_changed_during_a_run_is_kept(
        tmp_path, capsys, monkeypatch):
    """A listed file replaced by a link to an identical copy is not the run's file; a
    manifest whose "files" is not a mapping makes the folder not graphvae's (it failed
    inside ``dict.get``); only a "graphvae …" command is read as the folder's writer. A
    --out that became a file during the run is kept beside it, under its own name in the
    note (it was hidden as '.o.old-…', then removed by the next run), and a failure after
    the new folder is in place is raised as itself: the results are in --out, not "lost"."""
    import errno

    import graphvae.run_folder as rf

    out = tmp_path / "o"
    with output_folder(out, "graphvae test") as stage:
        (stage / "a.txt").write_text("x")
    copy = tmp_path / "copy.txt"
    copy.write_text("x")
    (out / "a.txt").unlink()
    (out / "a.txt").symlink_to(copy)
    assert rf.foreign_files(out) == ["a.txt"]
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / MANIFEST).write_text(json.dumps({"written_by": "graphvae", "files": ["a.txt"]}))
    (odd / "a.txt").write_text("x")
    assert rf.foreign_files(odd) == ["a.txt", MANIFEST]
    for i, (command, seen) in enumerate((("graphvae generate", "graphvae generate"),
                                         ("generate", None), ("rm -rf ~", None))):
        with output_folder(tmp_path / f"w{i}", command):
            pass
        assert rf.written_by(tmp_path / f"w{i}") == seen

    run_dir = tmp_path / "r"
    with output_folder(run_dir, "graphvae test") as stage:
        (stage / "r.txt").write_text("1")
    capsys.readouterr()
    with output_folder(run_dir, "graphvae test") as stage:
        (stage / "r.txt").write_text("2")
        shutil.rmtree(run_dir)
        run_dir.write_text("a file of yours")
    assert (run_dir / "r.txt").read_text() == "2"
    kept = sorted(tmp_path.glob("r.replaced-*"))
    assert len(kept) == 1 and kept[0].read_text() == "a file of yours"
    assert capsys.readouterr().err == f"graphvae: {run_dir} became a file during the run (not " \
                                      f"a folder); the file is kept in {kept[0]}\n"

    def broken(path):
        raise OSError(errno.EIO, "Input/output error")
    with pytest.raises(OSError, match="Input/output error"), \
            output_folder(run_dir, "graphvae test") as stage:
        (stage / "r.txt").write_text("3")
        monkeypatch.setattr(rf, "foreign_files", broken)   # the old folder's check, aside
    assert (run_dir / "r.txt").read_text() == "3"
    assert not list(tmp_path.glob("r.unplaced-*"))


def test_a_parent_of_out_that_is_a_file_is_named(tmp_path, capsys):
    """'cannot create the folder …: FileExistsError: [Errno 17] File exists' before; and
    make-graph said the folder 'does not exist'. It makes missing folders now, as --out's
    are made everywhere."""
    write(tmp_path / "afile", "mine")
    one_line_error(capsys, ["linkpred", "--quiet", "--out", str(tmp_path / "afile" / "sub")],
                   r"cannot create the folder for --out .*afile/sub: .*afile is a file, not a "
                   r"folder$")
    one_line_error(capsys, ["make-graph", "--nodes", "20", "--edges", "30", "--out",
                            str(tmp_path / "afile" / "g.csv")],
                   r"--out .*afile/g\.csv: .*afile is a file, not a folder$")
    assert run(["make-graph", "--nodes", "20", "--edges", "30", "--out",
                str(tmp_path / "new" / "deeper" / "g.csv")], capsys)[0] == 0
    assert (tmp_path / "new" / "deeper" / "g.planted.npz").is_file()
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_run_folder_takes_the_umask_mode_and_its_checks_name_what_they_found(tmp_path,
                                                                              capsys):
    """What the rest of mutation round 6's run-folder list left free: the finished folder's
    mode (mkdtemp's 0o700 left others unable to read a run), every foreign file counted
    ("and 2 more"), a manifest that does not list samples.jsonl refused by score, and a
    name's length counted in bytes."""
    import stat as stat_mod

    from graphvae.atomic import check_output_file
    old = os.umask(0o022)
    try:
        with output_folder(tmp_path / "o", "test") as stage:
            (stage / "a.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat_mod.S_IMODE((tmp_path / "o").stat().st_mode) == 0o755     # 0o777 & ~0o022
    for name in "abcde":
        (tmp_path / "o" / f"{name}.tex").write_text("mine")
    one_line_error(capsys, ["linkpred", "--quiet", "--out", str(tmp_path / "o")],
                   r"other files in it \(a\.tex, b\.tex, c\.tex and 2 more\)")
    run_dir = tmp_path / "g"
    with output_folder(run_dir, "graphvae generate") as stage:
        (stage / "metrics.json").write_text("{}")
        (stage / "samples.jsonl").write_text("")
    manifest = json.loads((run_dir / MANIFEST).read_text())
    del manifest["files"]["samples.jsonl"]
    (run_dir / MANIFEST).write_text(json.dumps(manifest))
    one_line_error(capsys, ["score", str(run_dir)],
                   r"g/manifest\.json: does not list samples\.jsonl: not the run's file$")
    with pytest.raises(ValueError, match=r"its name is longer than 255 bytes"):
        check_output_file(tmp_path / ("é" * 128))              # 128 characters, 256 bytes
    assert check_output_file(tmp_path / ("é" * 127)) == tmp_path / ("é" * 127)
