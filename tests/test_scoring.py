"""``graphvae score``: a sample file scored as ``graphvae generate`` scores its own.

Expected values come from the run's own ``metrics.json`` (the file must give back what the
run measured), from closed forms (a set scored against itself has MMD² 0) and from
molecules whose validity, uniqueness and novelty are counted by hand.
"""

from __future__ import annotations

import json
import pickle

import networkx as nx
import pytest
from conftest import run_cli

from graphvae import plotting
from graphvae.evaluation.graph_stats import graph_mmd
from graphvae.tasks import scoring
from graphvae.tasks.generation import GenerationConfig, load_generation_data

SCORED = ("mmd2", "copies", "generated_summary", "test_summary", "split", "num_samples",
          "protocol")


def _write_graphs(path, graphs):
    path.write_text("".join(json.dumps({"num_nodes": g.number_of_nodes(),
                                        "edges": [sorted(e) for e in g.edges()]}) + "\n"
                            for g in graphs))
    return path


def measured_files(run):
    return [*json.loads((run / "manifest.json").read_text())["files"], "manifest.json"]


@pytest.mark.slow  # 8 s (a run, then score on it)
def test_score_gives_back_the_metrics_of_the_run(tmp_path):
    run = tmp_path / "run"
    rc, _, err = run_cli(["generate", "--epochs", "2", "--protocol", "gdss", "--seed", "3",
                          "--quiet", "--out", str(run)])
    assert rc == 0, err
    measured = json.loads((run / "metrics.json").read_text())
    same = ["--protocol", "gdss", "--seed", "3"]
    for argv in ([str(run)], [str(run / "samples.jsonl"), *same],
                 [str(run / "samples.g6"), *same]):
        rc, text, err = run_cli(["score", *argv])
        assert rc == 0, err
        assert err.startswith(f"community-small (generated), seed 3: {measured['num_samples']} "
                              "samples\n  MMD² (gdss): ")          # the summary on stderr
        scored = json.loads(text)
        assert {k: scored[k] for k in SCORED} == {k: measured[k] for k in SCORED}, argv
        assert scored["seed"] == 3 and scored["protocol"] == "gdss" and scored["generated"]
    # another seed is another split: the same samples score differently
    rc, text, _ = run_cli(["score", str(run / "samples.jsonl"), "--protocol", "gdss"])
    other = json.loads(text)
    assert rc == 0 and other["seed"] == 0
    assert other["mmd2"]["train_vs_test"] != measured["mmd2"]["train_vs_test"]
    # a run folder brings its own split: flags that would change it are refused
    rc, _, err = run_cli(["score", str(run), "--seed", "1"])
    assert rc == 2 and "run folder" in err and "--seed" in err
    # its files are the run's, as its manifest lists them: three samples kept of twenty, or
    # an edited seed, were scored as the run's
    import shutil
    for name, edit in (("samples.jsonl", lambda t: "".join(t.splitlines(True)[:3])),
                       ("metrics.json", lambda t: t.replace('"seed": 3', '"seed": 4', 1))):
        copy = tmp_path / f"edited_{name}"
        shutil.copytree(run, copy)
        (copy / name).write_text(edit((copy / name).read_text()))
        rc, _, err = run_cli(["score", str(copy)])
        assert rc == 2 and err == (f"graphvae: error: {copy / name}: is not the file the run "
                                   f"wrote (manifest.json lists another size or digest): "
                                   f"edited since; score the file itself, with the run's "
                                   f"flags\n"), err
    # --out is a folder of its own, never the run scored
    for inside in (run, run / "scores"):
        rc, _, err = run_cli(["score", str(run), "--out", str(inside)])
        assert rc == 2 and "--out" in err and (run / "model.pt").is_file()
    assert sorted(p.name for p in run.iterdir()) == sorted(measured_files(run))
    rc, _, err = run_cli(["score", str(run), "--out", str(tmp_path / "scores")])
    assert rc == 0, err
    written = json.loads((tmp_path / "scores" / "metrics.json").read_text())
    assert written["mmd2"] == measured["mmd2"]
    assert (tmp_path / "scores" / "manifest.json").is_file()


def test_the_test_graphs_scored_against_themselves(tmp_path):
    """MMD² of a set against itself is 0 (mean K_xx + mean K_yy − 2 mean K_xy, all three
    the same mean); the copies of training graphs are counted here by brute force."""
    cfg = GenerationConfig(seed=1)
    data = load_generation_data(cfg)
    path = _write_graphs(tmp_path / "test.jsonl", data.test)
    got = scoring.score_samples(path, cfg)
    assert all(abs(v) < 1e-12 for v in got["mmd2"]["generated"].values())
    copies = sum(any(nx.is_isomorphic(g, h) for h in data.train) for g in data.test)
    classes: list[nx.Graph] = []
    for g in data.test:
        if not any(nx.is_isomorphic(g, h) for h in classes):
            classes.append(g)
    assert got["copies"] == {"in_training": copies / len(data.test),
                             "unique": len(classes) / len(data.test), "undetermined": 0}
    assert got["num_samples"] == len(data.test) and got["dataset"] == data.name
    # a file that differs from the reference: its own graphs are scored, not the split's
    paths = [nx.path_graph(3), nx.path_graph(3)]
    other = _write_graphs(tmp_path / "other.jsonl", [*data.test[1:], *paths])
    got = scoring.score_samples(other, cfg)
    mine = [*data.test[1:], *paths]
    expected = graph_mmd(data.test, mine, cfg.protocol)
    assert got["mmd2"]["generated"]["degree"] == pytest.approx(expected["degree"], rel=1e-12)
    assert got["mmd2"]["generated"]["degree"] > 1e-4
    in_training = sum(any(nx.is_isomorphic(g, h) for h in data.train) for g in mine)
    assert got["num_samples"] == len(mine) == len(data.test) + 1
    assert got["copies"]["in_training"] == in_training / len(mine)


def test_molecules_counted_by_hand(tmp_path, monkeypatch):
    pytest.importorskip("rdkit")
    root = tmp_path / "data"
    (root / "qm9").mkdir(parents=True)
    (root / "qm9" / "qm9.csv").write_text("smiles\n" + "CCO\n" * 20)   # every split: ethanol
    records = [
        {"atoms": ["C", "C", "O"], "bonds": [[0, 1, 1], [1, 2, 1]]},            # CCO
        {"atoms": ["O", "C", "C"], "bonds": [[0, 1, 1], [1, 2, 1]]},            # CCO again
        {"atoms": ["C", "C", "O"], "bonds": [[0, 1, 1], [1, 2, 2]]},            # CC=O, novel
        {"atoms": ["C", "C"], "bonds": []},                                     # disconnected
        {"atoms": ["N", "C", "C", "C", "C", "C"],
         "bonds": [[0, t, 1] for t in range(1, 6)]},                          # N, five bonds
    ]
    path = tmp_path / "mols.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    rc, text, err = run_cli(["score", str(path), "--dataset", "qm9", "--data-root", str(root),
                             "--no-fcd"])
    assert rc == 0, err
    raw = json.loads(text)["molecules"]["sampled"]
    assert list(json.loads(text)["molecules"]) == ["sampled"]      # no valency-aware row
    assert (raw["num_generated"], raw["num_valid"], raw["num_unique"], raw["num_novel"]) == (
        5, 3, 2, 1)
    assert raw["validity"] == 3 / 5 and raw["uniqueness"] == 2 / 3 and raw["novelty"] == 1 / 2
    assert raw["invalid"] == {"empty": 0, "unsanitizable": 1, "disconnected": 1}
    assert raw["gdss_validity"] == 4 / 5                   # GDSS's check accepts C.C
    assert "fcd" not in raw and raw["nspdk"] > 0
    # --out also gets the samples drawn as molecules under training ones, each marked
    rc, _, err = run_cli(["score", str(path), "--dataset", "qm9", "--data-root", str(root),
                          "--no-fcd", "--out", str(tmp_path / "scores")])
    assert rc == 0, err
    assert (tmp_path / "scores" / "samples.png").read_bytes()[:4] == b"\x89PNG"
    assert "samples.png" in measured_files(tmp_path / "scores")
    drawn = []
    monkeypatch.setattr(plotting, "_save", lambda fig, where: drawn.append(fig))
    scoring.score_samples(path, GenerationConfig(dataset="qm9", fcd=False), root,
                          figure=tmp_path / "unused.png")
    titles = [ax.get_title() for ax in drawn[0].axes if ax.get_title()]
    assert [t for t in titles if t.startswith("train")] == ["train n=3"] * 8
    assert [t.split("\n")[1] for t in titles if t.startswith("sample")] == [
        "valid", "valid", "valid", "invalid", "invalid"]
    # molecules are not graphs, nor graphs molecules
    rc, _, err = run_cli(["score", str(path)])
    assert rc == 2 and "--dataset qm9" in err and len(err.strip().splitlines()) == 1
    graphs = _write_graphs(tmp_path / "g.jsonl", [nx.path_graph(3)])
    rc, _, err = run_cli(["score", str(graphs), "--dataset", "qm9", "--data-root", str(root)])
    assert rc == 2 and "without atoms" in err


BAD_LINES = [
    ("not json", "not a JSON object"),
    ("[1, 2]", "each line must be an object"),
    ('{"num_nodes": 2}', "each line must be an object"),
    ('{"num_nodes": 2, "edges": [], "x": 1}', "each line must be an object"),
    ('{"num_nodes": -1, "edges": []}', "num_nodes must be"),
    ('{"num_nodes": true, "edges": []}', "num_nodes must be"),
    ('{"num_nodes": 1000000000, "edges": []}', "num_nodes must be"),
    ('{"num_nodes": 2, "edges": {"0": 1}}', "edges must be a list"),
    ('{"num_nodes": 2, "edges": [[0, 0]]}', "self-loop"),
    ('{"num_nodes": 3, "edges": [[0, 5]]}', "outside 0..2"),
    ('{"num_nodes": 3, "edges": [[0, 1.0]]}', "2 whole numbers"),
    ('{"num_nodes": 3, "edges": [[0, 1, 2]]}', "2 whole numbers"),
    ('{"num_nodes": 3, "edges": [[0, 1], [1, 0]]}', "listed twice"),
    ('{"atoms": ["C", "Cl"], "bonds": []}', "is not one of C, N, O, F"),
    ('{"atoms": "CC", "bonds": []}', "atoms must be a list"),
    ('{"atoms": ["C", "C"], "bonds": [[0, 1, 4]]}', "the order must be 1..3"),
    ('{"atoms": ["C", "C"], "bonds": [[0, 1, 0]]}', "the order must be 1..3"),
    ('{"atoms": ["C", "C"], "bonds": [[0, 1]]}', "3 whole numbers"),
    ("[" * 100000 + "]" * 100000, "not a JSON object"),
]


@pytest.mark.parametrize("line, problem", BAD_LINES)
def test_a_bad_line_is_one_line_naming_file_and_line(tmp_path, line, problem):
    path = tmp_path / "s.jsonl"
    first = '{"atoms": ["C"], "bonds": []}' if "atoms" in line else \
        '{"num_nodes": 1, "edges": []}'                   # a good line of the same kind
    path.write_text(first + "\n\n" + line + "\n")
    rc, _, err = run_cli(["score", str(path)])
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"{path}:3" in err and problem in err, err


def test_mixed_empty_and_oversized_files(tmp_path, monkeypatch):
    mixed = tmp_path / "m.jsonl"
    mixed.write_text('{"num_nodes": 1, "edges": []}\n{"atoms": ["C"], "bonds": []}\n')
    with pytest.raises(ValueError, match=r"m.jsonl:2: graphs and molecules are mixed"):
        scoring.read_samples(mixed)
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="holds no samples"):
        scoring.read_samples(empty)
    with pytest.raises(ValueError, match="no such file"):
        scoring.read_samples(tmp_path / "absent.jsonl")
    # Σ n² over the samples is capped: 3² + 3² = 18 > 17 fails at the second line
    monkeypatch.setattr(scoring, "MAX_PAIRS", 17)
    big = _write_graphs(tmp_path / "b.jsonl", [nx.path_graph(3), nx.path_graph(3)])
    with pytest.raises(ValueError, match=r"b.jsonl:2: the samples up to here hold more than"):
        scoring.read_samples(big)
    monkeypatch.setattr(scoring, "MAX_PAIRS", 18)
    assert [s.num_nodes for s in scoring.read_samples(big)[0]] == [3, 3]


def test_graphs_too_dense_to_score_are_one_line_before_any_statistic(tmp_path, monkeypatch):
    """Orbit counting costs Σ_v d_v³, which the node and pair limits do not bound (a complete
    graph of 2,000 nodes passes both and took hours). By hand: K_5 has five nodes of degree
    4 (5·64 = 320), a star with 3 leaves 3³ + 3·1 = 30, so the two cost 350."""
    graphs = [nx.complete_graph(5), nx.star_graph(3)]
    path = tmp_path / "g.jsonl"
    _write_graphs(path, graphs)
    assert scoring.orbit_work(scoring.read_samples(path)[0]) == 350

    def no_statistics(*args, **kwargs):
        raise AssertionError("scored before the cost was checked")
    monkeypatch.setattr("graphvae.tasks.generation.load_generation_data", no_statistics)
    monkeypatch.setattr(scoring, "MAX_ORBIT_WORK", 349)
    rc, _, err = run_cli(["score", str(path)])
    assert rc == 2 and err.count("\n") == 1
    assert "too dense to score: their orbit counts take 3.5e+02 multiply-adds" in err
    monkeypatch.setattr(scoring, "MAX_ORBIT_WORK", 350)       # at the limit: scored
    rc, _, err = run_cli(["score", str(path)])
    assert rc != 2 and "scored before the cost was checked" in err


def test_jsonl_graph6_and_pickle_read_the_same_graphs(tmp_path):
    graphs = [nx.path_graph(4), nx.empty_graph(2), nx.complete_graph(5), nx.cycle_graph(6)]
    js, molecules = scoring.read_samples(_write_graphs(tmp_path / "a.jsonl", graphs))
    (tmp_path / "a.g6").write_text("".join(nx.to_graph6_bytes(g, header=False).decode()
                                           for g in graphs))
    g6, _ = scoring.read_samples(tmp_path / "a.g6")
    import pickle
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(graphs))
    pk, _ = scoring.read_samples(tmp_path / "a.pkl")
    assert not molecules
    for a, b, c, g in zip(js, g6, pk, graphs, strict=True):
        assert a.adj.equal(b.adj) and a.adj.equal(c.adj) and a.adj.equal(a.adj.T)
        assert {tuple(sorted(e)) for e in g.edges()} == {
            tuple(p) for p in a.adj.triu(1).nonzero().tolist()}


def test_a_hostile_pickle_runs_nothing(tmp_path):
    import os
    import pickle

    sentinel = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {sentinel}",)

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([nx.path_graph(2), Evil()]))
    rc, _, err = run_cli(["score", str(path)])
    assert rc == 2 and "evil.pkl" in err and len(err.strip().splitlines()) == 1
    assert not sentinel.exists()


def test_an_unusable_out_is_refused_before_scoring(tmp_path, monkeypatch):
    path = _write_graphs(tmp_path / "s.jsonl", [nx.path_graph(3)])
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    monkeypatch.setattr(scoring, "score_samples", lambda *a, **k: pytest.fail("scored"))
    rc, _, err = run_cli(["score", str(path), "--out", str(tmp_path / "taken")])
    assert rc == 2 and "taken" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_a_file_scored_without_flags_is_scored_against_its_runs_split_or_says_which(
        tmp_path, monkeypatch):
    """With no flag a file gets generate's default split. Beside the metrics.json of a run
    of another split that would score it against the wrong graphs (ego-small samples scored
    as community-small, silently): refused. Flags, or a run of the default split, score it
    as before, and so is a file with no run beside it."""
    def reached(path, cfg, *args, **kwargs):
        raise ValueError(f"scored against {cfg.dataset} seed {cfg.seed}")
    monkeypatch.setattr(scoring, "score_samples", reached)
    run = tmp_path / "run"
    run.mkdir()
    samples = _write_graphs(run / "samples.jsonl", [nx.path_graph(3)])
    (run / "metrics.json").write_text(json.dumps({"config": {"dataset": "ego-small",
                                                             "seed": 2}}))
    rc, _, err = run_cli(["score", str(samples)])
    assert rc == 2 and err == (f"graphvae: error: {samples} lies in the output folder of a "
                               f"graphvae generate run (--dataset ego-small, --seed 2), and "
                               f"without flags it would be scored against the default "
                               f"split: score the folder ({run}), which takes the run's "
                               f"settings, or give the flags\n")
    rc, _, err = run_cli(["score", str(samples), "--dataset", "grid"])
    assert rc == 2 and err == "graphvae: error: scored against grid seed 0\n"
    rc, _, err = run_cli(["score", str(samples), "--seed", "0"])     # 0 is a flag given
    assert rc == 2 and err == "graphvae: error: scored against None seed 0\n"
    (run / "metrics.json").write_text(json.dumps({"config": {"dataset": "community-small",
                                                             "generated": True}}))
    rc, _, err = run_cli(["score", str(samples)])                 # a switch by its flag alone
    assert rc == 2 and "generate run (--dataset community-small, --generated), and" in err
    (run / "metrics.json").write_text(json.dumps({"config": {"epochs": 3}}))  # default split
    rc, _, err = run_cli(["score", str(samples)])
    assert rc == 2 and err == "graphvae: error: scored against None seed 0\n"
    loose = _write_graphs(tmp_path / "loose.jsonl", [nx.path_graph(3)])
    rc, _, err = run_cli(["score", str(loose)])
    assert rc == 2 and err == "graphvae: error: scored against None seed 0\n"


def test_a_run_folder_takes_no_flags_and_out_may_hold_neither_the_samples_nor_lie_in_their_run(
        tmp_path, monkeypatch):
    """A run folder is scored with its own split: --seed 0 and --dataset are refused for
    it (0 too, which is given). --out may not hold the samples scored, nor lie inside the
    run folder that holds them, whether --out or the samples are given by a relative path
    (the paths are compared resolved); each is one line before any scoring."""
    monkeypatch.setattr(scoring, "score_samples", lambda *a, **k: pytest.fail("scored"))
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    for flags, dropped in ((["--seed", "0"], "--seed"), (["--dataset", "grid"], "--dataset")):
        rc, _, err = run_cli(["score", str(run), *flags])
        assert rc == 2 and err == (f"graphvae: error: {run} is a run folder, scored with its "
                                   f"own dataset, generated, protocol, seed, qm9_limit: drop "
                                   f"{dropped}\n"), err
    loose = tmp_path / "loose"
    loose.mkdir()
    samples = _write_graphs(loose / "samples.jsonl", [nx.path_graph(3)])
    for target, out in ((str(samples), "loose"), ("loose/samples.jsonl", str(loose))):
        rc, _, err = run_cli(["score", target, "--out", out])
        assert rc == 2 and err == (f"graphvae: error: --out {out} holds the samples scored, "
                                   f"and would be replaced by the scores: choose another "
                                   f"folder\n"), err
    (loose / "manifest.json").write_text("{}")                    # a run's folder
    for target, out in ((str(samples), "loose/scores"), ("loose/samples.jsonl",
                                                         str(loose / "scores"))):
        rc, _, err = run_cli(["score", target, "--out", out])
        assert rc == 2 and err == (f"graphvae: error: --out {out} lies inside the output "
                                   f"folder of the run scored ({loose}), which would then "
                                   f"hold more than its manifest lists: choose another "
                                   f"folder\n"), err
    assert sorted(p.name for p in loose.iterdir()) == ["manifest.json", "samples.jsonl"]


@pytest.mark.parametrize("text, problem", [
    (None, "no such file"),
    ("{not json", "not JSON"),
    ("[1, 2]", "no config object"),
    ('{"config": {"dataset": "nope"}}', "unknown data set"),
    ('{"config": {"seed": "3"}}', "wrong type"),
    ('{"config": {"surprise": 1}}', "unknown config key"),
])
def test_a_run_folder_with_a_bad_metrics_json_is_one_line(tmp_path, text, problem):
    run = tmp_path / "run"
    run.mkdir()
    _write_graphs(run / "samples.jsonl", [nx.path_graph(3)])
    if text is not None:
        (run / "metrics.json").write_text(text)
    rc, _, err = run_cli(["score", str(run)])
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "metrics.json" in err and problem in err, err


def test_sample_lines_are_the_files_own_lines(tmp_path):
    """Lines end at \\n, \\r\\n or \\r only: two records joined by an information separator
    (U+001C, which str.splitlines() also splits at) are one bad line, and a form feed is
    a bad line 1, not a blank line 1 that shifts the numbers of the errors after it."""
    from graphvae.errors import DataError
    good = json.dumps({"num_nodes": 2, "edges": [[0, 1]]})
    bad = json.dumps({"num_nodes": 2, "edges": [[0, 9]]})
    joined = tmp_path / "joined.jsonl"
    joined.write_text(good + "\x1c" + good + "\n")
    with pytest.raises(DataError, match=r"joined\.jsonl:1: not a JSON object"):
        scoring.read_samples_jsonl(joined)
    shifted = tmp_path / "shifted.jsonl"                  # was read as lines 1 (blank) to 4
    shifted.write_text(good + "\n" + good + "\n" + bad + "\n")
    with pytest.raises(DataError, match=r"shifted\.jsonl:3: edges"):
        scoring.read_samples_jsonl(shifted)
    twice = tmp_path / "twice.jsonl"                      # json would keep the last 3
    twice.write_text(good + "\n" + '{"num_nodes": 300, "edges": [], "num_nodes": 3}\n')
    with pytest.raises(DataError, match=r"twice\.jsonl:2: the key 'num_nodes' appears twice"):
        scoring.read_samples_jsonl(twice)
    shifted.write_text("\x0c" + good + "\n" + good + "\n" + bad + "\n")
    with pytest.raises(DataError, match=r"shifted\.jsonl:1: not a JSON object"):
        scoring.read_samples_jsonl(shifted)                # a form feed is not JSON


def test_metrics_files_never_hold_nan(tmp_path):
    """An FCD of no valid molecule is NaN, which Python's json writes as the non-JSON
    token NaN: write_json writes null (and infinities too), so strict readers can parse
    every metrics.json."""
    from graphvae.io import write_json
    path = write_json({"fcd": float("nan"), "x": [1.0, float("inf")], "y": {"z": -1e400}},
                      tmp_path / "m.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "fcd": None, "x": [1.0, None], "y": {"z": None}}


def test_more_graphs_than_the_mmd_can_compare_are_refused_before_scoring(tmp_path):
    """30,000 two-node graphs were read and scored until the pairwise MMD² ran out of
    memory (8,000 took 67 s and 1.8 GB); a graph set of more than MAX_GRAPH_SAMPLES is
    refused once read, before any statistic."""
    from graphvae.tasks.generation_config import MAX_GRAPH_SAMPLES
    path = tmp_path / "many.jsonl"
    path.write_text('{"num_nodes": 2, "edges": [[0, 1]]}\n' * (MAX_GRAPH_SAMPLES + 1))
    rc, _, err = run_cli(["score", str(path), "--quiet"])
    assert rc == 2 and err == (f"graphvae: error: {path}: holds 10,001 graphs; at most 10,000 "
                               f"are scored (the MMD² compares every pair of samples: minutes "
                               f"and gigabytes beyond)\n"), err


def test_graph6_and_pickled_sets_past_the_cap_are_refused_before_they_are_built(
        tmp_path, monkeypatch):
    """A graph6 or pickled set of more than MAX_GRAPH_SAMPLES graphs was built whole (a
    2 MB graph6 file of a million empty graphs: 0.68 GB, 18 s) before its count was
    compared; now the reader stops at graph MAX_GRAPH_SAMPLES + 1, building none past it."""
    import graphvae.datasets.graphgen as gg
    from graphvae.tasks.generation_config import MAX_GRAPH_SAMPLES
    built = []
    real = gg.nx.from_graph6_bytes
    monkeypatch.setattr(gg.nx, "from_graph6_bytes", lambda line: built.append(1) or real(line))
    path = tmp_path / "many.g6"
    path.write_bytes(b"Bw\n" * (MAX_GRAPH_SAMPLES + 5))
    rc, _, err = run_cli(["score", str(path), "--quiet"])
    assert rc == 2 and err == (f"graphvae: error: {path}:10001: holds more than 10,000 "
                               f"graphs; at most 10,000 are read here\n"), err
    assert len(built) == MAX_GRAPH_SAMPLES
    real_simple = gg._simple              # builds one graph of a pickle
    monkeypatch.setattr(gg, "_simple", lambda *a: (real_simple(*a), built.append(1))[0])
    built.clear()
    path = tmp_path / "many.pkl"
    path.write_bytes(pickle.dumps([nx.path_graph(3)] * (MAX_GRAPH_SAMPLES + 1), protocol=4))
    rc, _, err = run_cli(["score", str(path), "--quiet"])
    assert rc == 2 and err == (f"graphvae: error: {path}: holds 10,001 graphs; at most "
                               f"10,000 are read here\n"), err
    assert built == []


def test_a_samples_file_larger_than_its_cap_is_refused_before_it_is_read(tmp_path,
                                                                         monkeypatch):
    """samples.jsonl was read whole with no cap, at about 18 times its size in memory (a
    50 MB file took 1 GB); past MAX_SAMPLES_BYTES it is refused by its size."""
    monkeypatch.setattr(scoring, "MAX_SAMPLES_BYTES", 100)
    path = tmp_path / "s.jsonl"
    path.write_text('{"num_nodes": 2, "edges": [[0, 1]]}\n' * 3)            # 108 bytes
    rc, _, err = run_cli(["score", str(path), "--quiet"])
    assert rc == 2 and err == (f"graphvae: error: {path}: 108 bytes is more than the 100 "
                               f"such a file may have\n"), err


def test_score_notes_a_data_root_it_does_not_read(tmp_path, capsys):
    """Scored against the default (generated) community-small, a sample file reads nothing
    under --data-root, and says so; against stored ego-small the root is read (an empty
    one is refused, with no note)."""
    from graphvae.cli import main
    data = load_generation_data(GenerationConfig())
    path = _write_graphs(tmp_path / "test.jsonl", data.test)
    root = tmp_path / "root"
    root.mkdir()
    assert main(["score", str(path), "--data-root", str(root), "--quiet"]) == 0
    assert ("graphvae score: note: --data-root is not read: the default community-small "
            "graphs are generated; ignored here\n") in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["score", str(path), "--dataset", "ego-small", "--data-root", str(root),
              "--quiet"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "note:" not in err and str(root) in err, err
