"""The command line, ``graphvae linkpred`` (``graphvae.cli.main``), run in-process."""

from __future__ import annotations

import csv
import itertools
import json
import random
import re
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from graphvae.cli import main
from graphvae.datasets import make_sbm_graph

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METRICS = ("test_auc", "test_ap", "val_auc", "val_ap")


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def undirected_edges(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {(min(i, j), max(i, j)) for i, j in edge_index.t().tolist()}


# ---------------------------------------------------------------- the embedded default

@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("default") / "o"
    rc, stdout, stderr = run_cli(["linkpred", "--epochs", "5", "--quiet", "--json",
                                  "--out", str(out)])
    return rc, stdout, stderr, out


def test_default_run_prints_json_summary(default_run):
    rc, stdout, stderr, _ = default_run
    assert rc == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    for key in (*METRICS, "epochs", "seconds"):
        assert key in summary
    for key in METRICS:
        assert 0.0 <= summary[key] <= 1.0
        assert summary[f"{key}_std"] == 0.0                  # one seed
    assert summary["epochs"] == 5
    assert isinstance(summary["seconds"], float) and summary["seconds"] >= 0
    assert summary["dataset"] == "synthetic"
    assert summary["seeds"] == [0]
    assert summary["device"] == "cpu"
    assert summary["config"]["model"] == "vgae" and summary["config"]["epochs"] == 5
    g = make_sbm_graph(seed=0)
    assert summary["num_nodes"] == 600
    assert summary["num_edges"] == len(undirected_edges(g.edge_index))
    assert "runs" not in summary
    # with --json the human-readable lines go to stderr, stdout is only the JSON line
    assert len(stdout.strip().splitlines()) == 1
    assert "synthetic vgae: test AUC" in stderr


def test_default_run_writes_outputs(default_run):
    _, stdout, _, out = default_run
    summary = json.loads(stdout.strip().splitlines()[-1])
    names = {p.name for p in out.iterdir()}
    assert {"metrics.json", "model.pt", "embeddings.csv", "predicted_links.csv",
            "roc_pr.png", "latent.png", "training.png"} <= names

    metrics = json.loads((out / "metrics.json").read_text())
    # read_seconds was set after metrics.json was written: only --json had it
    for key in (*METRICS, "epochs", "num_nodes", "num_edges", "read_seconds"):
        assert metrics[key] == summary[key]
    assert isinstance(metrics["read_seconds"], float) and metrics["read_seconds"] >= 0
    assert len(metrics["runs"]) == 1

    ckpt = torch.load(out / "model.pt", weights_only=False)
    assert "state_dict" in ckpt and 1 <= ckpt["epoch"] <= 5

    emb = read_csv(out / "embeddings.csv")
    assert emb[0] == ["node", *(f"z{j}" for j in range(16))]      # vgae latent is 16
    assert len(emb) == 601
    assert [row[0] for row in emb[1:]] == [str(i) for i in range(600)]
    assert all(len(row) == 17 for row in emb[1:])
    float(emb[1][1])

    links = read_csv(out / "predicted_links.csv")
    assert links[0] == ["source", "target", "probability"]
    rows = links[1:]
    assert len(rows) == 100
    edges = undirected_edges(make_sbm_graph(seed=0).edge_index)
    found = [(int(s), int(t)) for s, t, _ in rows]
    assert all(0 <= s < t < 600 for s, t in found)
    assert len(set(found)) == 100
    assert not set(found) & edges                         # only new links
    probs = [float(p) for _, _, p in rows]
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert probs == sorted(probs, reverse=True)

    for png in ("roc_pr.png", "latent.png", "training.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------- a user's files

def two_cliques(tmp_path: Path, with_features: bool) -> tuple[Path, Path | None, list[str]]:
    """Two 6-cliques a0..a5 and b0..b5 joined by a5-b0: 12 nodes, 15 + 15 + 1 = 31 edges."""
    names = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)]
    edges = [(u, v) for block in (names[:6], names[6:])
             for u, v in itertools.combinations(block, 2)] + [("a5", "b0")]
    edge_file = tmp_path / "edges.csv"
    edge_file.write_text("source,target\n" + "".join(f"{u},{v}\n" for u, v in edges))
    if not with_features:
        return edge_file, None, names
    rng = random.Random(0)
    order = names[::-1]                                      # the feature file sets the order
    feat_file = tmp_path / "features.csv"
    feat_file.write_text("id,f1,f2,f3\n" + "".join(
        f"{n},{rng.gauss(0, 1):.4f},{rng.gauss(0, 1):.4f},{rng.gauss(0, 1):.4f}\n"
        for n in order))
    return edge_file, feat_file, order


def test_json_line_is_standard_json_when_a_metric_is_undefined(tmp_path):
    """A 60-node star holds fewer than 100 test non-edges, so Hits@100 is undefined. The
    --json line says null, as metrics.json does, not Python's NaN, which JSON parsers
    refuse."""
    edges = tmp_path / "star.csv"
    edges.write_text("".join(f"0,{j}\n" for j in range(1, 60)))
    rc, stdout, _ = run_cli(["linkpred", "--edges", str(edges), "--epochs", "1", "--quiet",
                             "--json"])
    assert rc == 0

    def refuse(name):
        raise AssertionError(f"{name} is not JSON")
    summary = json.loads(stdout.strip().splitlines()[-1], parse_constant=refuse)
    assert summary["test_hits@100"] is None and summary["test_hits@100_std"] is None
    assert 0.0 <= summary["test_auc"] <= 1.0


@pytest.mark.parametrize("with_features", [True, False])
def test_run_on_user_edge_list(tmp_path, with_features):
    edge_file, feat_file, order = two_cliques(tmp_path, with_features)
    out = tmp_path / "o"
    argv = ["linkpred", "--edges", str(edge_file), "--epochs", "3", "--quiet", "--json",
            "--out", str(out)]
    if feat_file is not None:
        argv += ["--features", str(feat_file)]
    rc, stdout, _ = run_cli(argv)
    assert rc == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["num_nodes"] == 12
    assert summary["num_edges"] == 31
    assert summary["epochs"] == 3
    assert summary["dataset"] == str(edge_file)
    assert all(0.0 <= summary[k] <= 1.0 for k in METRICS)

    emb = read_csv(out / "embeddings.csv")
    assert len(emb) == 13
    assert [row[0] for row in emb[1:]] == (order if with_features else sorted(order))

    # 66 pairs minus 31 edges leaves 35 non-edges: with --top-k 100 every one is listed once
    text = edge_file.read_text().splitlines()[1:]
    name_edges = {frozenset(line.split(",")) for line in text}
    assert len(name_edges) == 31
    all_pairs = {frozenset(p) for p in itertools.combinations(order, 2)}
    links = read_csv(out / "predicted_links.csv")[1:]
    listed = [frozenset((s, t)) for s, t, _ in links]
    assert len(listed) == 35 and len(set(listed)) == 35
    assert set(listed) == all_pairs - name_edges


# ---------------------------------------------------------------- bad input

def _features_without_edges(tmp_path):
    f = tmp_path / "f.csv"
    f.write_text("a,1\nb,2\n")
    return ["--features", str(f)]


def _non_numeric_feature(tmp_path):
    e, f = tmp_path / "e.csv", tmp_path / "f.csv"
    e.write_text("a,b\nb,c\n")
    f.write_text("a,1,2\nb,3,4\nc,5,five\n")
    return ["--edges", str(e), "--features", str(f)]


def _unknown_config_key(tmp_path):
    c = tmp_path / "cfg.json"
    c.write_text(json.dumps({"latent": 8, "learning_rate": 0.1}))
    return ["--config", str(c)]


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


BAD_INPUT = {
    "unknown dataset": (lambda p: ["--dataset", "nope"],
                        r"argument --dataset: invalid choice: 'nope'"),
    "features without edges": (_features_without_edges, r"--features needs --edges"),
    "zero epochs": (lambda p: ["--epochs", "0"], r"error: --epochs must be at least 1, got 0$"),
    # the same refusal from a file names its key
    "zero epochs in a config": (
        lambda p: ["--config", str(_write(p / "e.json", {"epochs": 0}))],
        r"^graphvae: error: config \S*e\.json: epochs must be at least 1, got 0$"),
    "zero seeds": (lambda p: ["--seeds", "0"], r"--seeds must be at least 1, got 0"),
    "zero top-k": (lambda p: ["--top-k", "0"], r"--top-k must be at least 1 .*, got 0"),
    "huge top-k": (lambda p: ["--top-k", str(2 ** 63)],
                   r"--top-k must be at least 1 and within 2\^63 - 1 \(torch's int64\), "
                   rf"got {2 ** 63}"),
    "non-numeric feature": (_non_numeric_feature, r"f\.csv:3: column 3: 'five' is not a number"),
    "missing edges file": (lambda p: ["--edges", str(p / "absent.csv")],
                           r"absent\.csv: no such file"),
    "unknown config key": (_unknown_config_key, r"cfg\.json: unknown key\(s\): "
                                                r"'learning_rate'; the keys are the fields of "
                                                r"LinkPredConfig: batch_size, decoder, .*, lr, "
                                                r"model, "),
    # a flag spelt as a key: its field named
    "config key spelt as its flag": (
        lambda p: ["--config", str(_write(p / "f.json", {"feature_mode": "normalize"}))],
        r"f\.json: unknown key\(s\): 'feature_mode' \(did you mean features\?\); the keys"),
    # a bad value is named with its file, and as the file spells its key (not --hidden)
    "config value out of range": (
        lambda p: ["--config", str(_write(p / "h.json", {"hidden": [0]}))],
        r"^graphvae: error: config \S*h\.json: hidden needs widths from 1 to 65536, got 0$"),
    "config value of the wrong type": (
        lambda p: ["--config", str(_write(p / "t.json", {"epochs": "5"}))],
        r"^graphvae: error: config \S*t\.json: field 'epochs' has the wrong type: '5', "
        r"not int$"),
    # a file's model ran under --model's name: a GAE reported as "joint" in metrics.json
    "config model against --model": (
        lambda p: ["--model", "joint", "--config", str(_write(p / "m.json", {"model": "gae"}))],
        r"m\.json sets model 'gae', but --model joint runs model 'joint': choose the model "
        r"with --model"),
    "unknown device": (lambda p: ["--device", "banana"], r"unknown device 'banana'"),
}


def assert_one_line_error(capsys, argv: list[str], pattern: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("graphvae: error: ")
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, case):
    make_args, pattern = BAD_INPUT[case]
    assert_one_line_error(capsys, ["linkpred", "--quiet", *make_args(tmp_path)], pattern)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_requested_without_cuda(capsys):
    assert_one_line_error(capsys, ["linkpred", "--device", "cuda", "--epochs", "1"],
                          r"--device cuda was asked for but torch sees no CUDA device")
    # the device as given, index included (cuda:99 was named as cuda)
    assert_one_line_error(capsys, ["linkpred", "--device", "cuda:99", "--epochs", "1"],
                          r"--device cuda:99 was asked for but torch sees no CUDA device")


@pytest.mark.parametrize("content, message", [
    ('{"epochs": "five"}', ": field 'epochs' has the wrong type: 'five', not int"),
    ('{"hidden": 5}', ": field 'hidden' has the wrong type: 5, not tuple[int, ...]"),
    ("[1, 2]", " must hold a JSON object of config fields"),
    # a bound named by the file's key, not by its flag (--negatives)
    ('{"negatives": -1}', ": negatives must lie in (0, 1000], got -1 (for every non-edge, "
                          "use --estimator dense)"),
    ('{"model": "gae"}', " sets model 'gae', but --model vgae runs model 'vgae': choose the "
                         "model with --model"),
    # a key whose flag is not its name (--feature-mode), and one written with underscores
    ('{"features": "pca"}', ": features must be one of raw, normalize, standardize, "
                            "identity, propagated, got 'pca'"),
    ('{"propagated_hops": 1001}', ": propagated_hops must lie in 0 … 1000 (more steps only "
                                  "repeat the graph's stationary vector), got 1001")],
    ids=["epochs-string", "hidden-int", "json-list", "negatives-bound", "other-model",
         "features-key", "underscored-key"])
def test_badly_typed_config_exits_2(tmp_path, capsys, content, message):
    """A config file's error names the file, then the key as the file spells it: the
    config's own words ("config field", "--negatives") are not repeated after its name."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(content)
    line = assert_one_line_error(capsys, ["linkpred", "--quiet", "--config", str(cfg)],
                                 r"config")
    assert line == f"graphvae: error: config {cfg}{message}", line


def test_config_file_sets_fields(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"latent": 4, "hidden": [8], "epochs": 2}))
    rc, stdout, _ = run_cli(["linkpred", "--config", str(cfg), "--quiet", "--json",
                             "--seeds", "2", "--out", str(tmp_path / "o")])
    assert rc == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["config"]["latent"] == 4
    assert summary["config"]["hidden"] == [8]
    assert summary["epochs"] == 2
    assert summary["seeds"] == [0, 1]
    emb = read_csv(tmp_path / "o" / "embeddings.csv")
    assert emb[0] == ["node", "z0", "z1", "z2", "z3"]
    runs = json.loads((tmp_path / "o" / "metrics.json").read_text())["runs"]
    assert len(runs) == 2
    mean = (runs[0]["test_auc"] + runs[1]["test_auc"]) / 2
    std = abs(runs[0]["test_auc"] - runs[1]["test_auc"]) / 2          # population std of 2
    assert summary["test_auc"] == pytest.approx(mean)
    assert summary["test_auc_std"] == pytest.approx(std)


def test_optional_numbers_reset_by_none(tmp_path, capsys):
    """On linkpred, whose --config file (or preset) sets fields, an optional number's flag
    takes ``none``, the field's unset value: it resets what the file set (patience and
    batch size ran with the file's values before, which no flag could undo), and anything
    else is a one-line error naming it. Commands without a file refuse ``none``, where a
    field's None is its resolved default (generate's --kl-warmup none would have run a
    warm-up of a third of the epochs, its help saying 0 turns it off)."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"patience": 3, "batch_size": 50, "epochs": 2, "latent": 4,
                               "hidden": [8]}))
    rc, stdout, _ = run_cli(["linkpred", "--config", str(cfg), "--quiet", "--json",
                             "--out", str(tmp_path / "a")])
    assert rc == 0
    assert json.loads(stdout.strip().splitlines()[-1])["config"]["batch_size"] == 50
    rc, stdout, _ = run_cli(["linkpred", "--config", str(cfg), "--quiet", "--json",
                             "--patience", "None", "--batch-size", "none",
                             "--out", str(tmp_path / "b")])
    assert rc == 0
    config = json.loads(stdout.strip().splitlines()[-1])["config"]
    assert config["patience"] is None and config["batch_size"] is None
    assert_one_line_error(capsys, ["linkpred", "--patience", "soon"],
                          r"--patience: must be a whole number or 'none', got 'soon'")
    assert_one_line_error(capsys, ["generate", "--kl-warmup", "none"],
                          r"--kl-warmup: invalid int value: 'none'")
    rc, text, _ = run_cli(["linkpred", "--help"])
    assert rc == 0 and "'none' resets what a preset or --config set" in " ".join(text.split())
    from graphvae.config import _scalar
    assert _scalar(float | None, True)("none") is None
    assert _scalar(float | None, True)("0.5") == 0.5
    assert _scalar(int)("7") == 7 and _scalar(str | None, True)("none") == "none"
    with pytest.raises(ValueError):
        _scalar(int | None)("none")


def test_propagated_features_from_the_shell(tmp_path, capsys):
    assert_one_line_error(capsys, ["linkpred", "--quiet", "--feature-mode", "propagated",
                                   "--propagated-dim", "0", "--epochs", "1"],
                          r"--propagated-dim must be a width from 1 to 65536, got 0")
    rc, stdout, _ = run_cli(["linkpred", "--quiet", "--json", "--feature-mode", "propagated",
                             "--propagated-dim", "4", "--propagated-hops", "2", "--epochs", "2",
                             "--out", str(tmp_path / "o")])
    assert rc == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["config"]["features"] == "propagated"
    assert summary["config"]["propagated_dim"] == 4 and summary["config"]["propagated_hops"] == 2
    # the checkpoint of such a run is checked on features of its own width, computed anew
    # for each relabelled graph: the seeded random columns follow node ids, not nodes, so
    # the encoder is not equivariant and the check says so
    rc, out, err = run_cli(["check-invariance", "--checkpoint", str(tmp_path / "o" / "model.pt"),
                            "--permutations", "2"])
    assert rc == 1 and "features 'propagated' are computed from node ids" in out, (out, err)


def test_generation_summary_of_hand_made_metrics():
    """The lines generate and score print on stderr, from metrics worked out here."""
    from graphvae.cli.common import generation_summary

    graphs = {"dataset": "ego-small", "model": "seq-vae", "seed": 2, "num_samples": 40,
              "protocol": "gdss", "bound": "elbo", "test_bound_nats": -31.25,
              "mmd2": {"generated": {"degree": 0.01, "clustering": 0.02, "orbit": 0.06,
                                     "spectral": 0.005, "empty_generated": 3.0},
                       "train_vs_test": {"degree": 0.1, "clustering": 0.2, "orbit": 0.3,
                                         "spectral": 0.0, "empty_generated": 0.0}},
              "mmd2_draws": {"draws": 100, "mean_of_three": {"mean": 0.026, "std": 0.0041}}}
    assert generation_summary(graphs) == [
        "ego-small, seq-vae, seed 2: 40 samples",
        "  MMD² (gdss): 0.01 / 0.02 / 0.06 (degree / clustering / orbit), mean 0.03, "
        "spectral 0.005; 3 empty samples left out",
        "  train vs test: 0.1 / 0.2 / 0.3, mean 0.2",
        "  over 100 sample sets: mean 0.026 ± 0.0041",
        "  test bound -31.25 nats per graph (elbo)"]
    molecules = {"dataset": "qm9", "seed": 0, "num_samples": 3000, "molecules": {
        "sampled": {"validity": 0.975, "gdss_validity": 1.0, "uniqueness": 0.998,
                    "novelty": 0.88975, "fcd": float("nan"), "nspdk": 0.00245},
        "valency_aware": {"validity": 1.0, "uniqueness": 0.5, "novelty": 0.25}}}
    assert generation_summary(molecules) == [
        "qm9, seed 0: 3000 samples",
        "  raw samples: validity 0.975, GDSS's validity 1, uniqueness 0.998, novelty 0.8898, "
        "FCD n/a, NSPDK 0.00245",
        "  valency-aware decoding: validity 1, uniqueness 0.5, novelty 0.25"]


def test_validation_flags_with_selection_last_are_refused(capsys):
    """--selection last computes no validation score: --patience 0 ran all 30 epochs
    (with val it stops after 10) and --eval-every did nothing; refused now."""
    for flags in (["--patience", "0"], ["--eval-every", "5"]):
        assert_one_line_error(capsys, ["linkpred", "--selection", "last", *flags],
                              r"--selection last does not compute")


def test_a_preset_switch_turns_back_from_the_command_line(capsys):
    """The best preset turns self-loops off and only --no-self-loops existed, so the README's
    'every field is a flag that overrides the preset' failed for switches (an unrecognised
    --self-loops). Each switch of linkpred now has both directions."""
    assert main(["linkpred", "--model", "best", "--self-loops", "--epochs", "1", "--quiet",
                 "--json"]) == 0
    config = json.loads(capsys.readouterr().out.splitlines()[-1])["config"]
    assert config["self_loops"] is True and config["model"] == "gae"
    assert main(["linkpred", "--model", "vgae", "--no-self-loops", "--reweight", "--epochs",
                 "1", "--quiet", "--json"]) == 0
    config = json.loads(capsys.readouterr().out.splitlines()[-1])["config"]
    assert (config["self_loops"], config["reweight"]) == (False, True)


@pytest.mark.slow       # several end-to-end runs: 5-9 s, kept out of make test's 3 minutes
def test_curves_and_deviations_are_named_for_what_they_measure(tmp_path, capsys, monkeypatch):
    """A point code's training value bounds nothing (vector ae: the reconstruction
    log-likelihood); the exemplar prior is fitted after training, so generate's curves
    are under N(0, I) and metrics.json says so; check-invariance --json gives null, not
    0.0, for a part the model lacks (a GAE's scale), as its table's n/a."""
    from graphvae import plotting

    labels = {}
    real = plotting.plot_training

    def record(history, path, weights_epoch=None, score_label="", title="",
               train_label=""):
        labels[title.split()[0]] = (score_label, train_label)
        real(history, path, weights_epoch, score_label, title, train_label)

    monkeypatch.setattr(plotting, "plot_training", record)
    assert main(["vector", "--model", "ae", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "ae")]) == 0
    assert labels["ae"][1] == "training reconstruction log-likelihood (nats per row; not a bound)"
    assert main(["vector", "--model", "vae", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "vae")]) == 0
    assert labels["vae"][1] == "training bound (nats per row)"
    assert main(["generate", "--model", "seq-vae", "--prior", "exemplar", "--epochs", "1",
                 "--num-samples", "2", "--quiet", "--out", str(tmp_path / "seq")]) == 0
    assert labels["seq-vae"] == ("validation bound under N(0, I), KL weighted by 0.001 "
                                 "(nats per graph)", "training bound under N(0, I) (nats "
                                 "per graph)")
    history = json.loads((tmp_path / "seq" / "metrics.json").read_text())["history"]
    assert history["prior"].startswith("N(0, I), which training used")
    assert main(["generate", "--model", "seq-vae", "--prior", "set-mixture", "--epochs", "1",
                 "--num-samples", "2", "--quiet", "--out", str(tmp_path / "mix")]) == 0
    assert labels["seq-vae"][1] == "training bound (nats per graph)"
    assert "prior" not in json.loads((tmp_path / "mix" / "metrics.json").read_text())["history"]
    capsys.readouterr()
    assert main(["linkpred", "--model", "gae", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "gae")]) == 0
    capsys.readouterr()
    assert main(["check-invariance", "--checkpoint", str(tmp_path / "gae" / "model.pt"),
                 "--permutations", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["deviations"]["encoder scale"] is None
    assert isinstance(report["deviations"]["encoder mean"], float)
    assert [c["status"] for c in report["components"]
            if c["component"] == "encoder scale"] == ["n/a"]


def test_hits_at_50_on_a_small_graph_prints_n_a(tmp_path):
    """A graph with fewer than 50 test non-edges has no Hits@50: metrics.json holds null
    and the seed's line says n/a, where it printed 'nan'."""
    edges = tmp_path / "e.csv"
    ring = [(i, (i + 1) % 12) for i in range(12)] + [(i, (i + 5) % 12) for i in range(12)]
    edges.write_text("".join(f"{a},{b}\n" for a, b in ring))
    rc, out, err = run_cli(["linkpred", "--edges", str(edges), "--epochs", "1", "--quiet",
                            "--out", str(tmp_path / "o")])
    assert rc == 0, err
    assert "Hits@50 n/a (fewer than 50 test non-edges)" in out + err
    runs = json.loads((tmp_path / "o" / "metrics.json").read_text())["runs"]
    assert runs[0]["test_hits@50"] is None


def test_help_shows_no_default_that_the_flag_cannot_take():
    """An unset (None) default is resolved by the run, as the help text says; '[none]'
    suggested a value that generate's and vector's flags refuse. Set defaults still show."""
    for command in ("generate", "vector", "linkpred"):
        rc, text, _ = run_cli([command, "--help"])
        assert rc == 0 and "[none]" not in text, command
    rc, text, _ = run_cli(["generate", "--help"])
    assert "training epochs [300]" in " ".join(text.split())


def test_version_names_the_package_and_its_torch():
    """``graphvae --version`` prints the package's version (the one pyproject.toml gives
    the installed package) and the torch and torch-geometric it runs on, and exits 0."""
    import importlib.metadata

    import torch_geometric

    import graphvae
    root = Path(__file__).resolve().parents[1]
    declared = re.search(r'^version = "([^"]+)"$', (root / "pyproject.toml").read_text(),
                         re.M).group(1)
    assert graphvae.__version__ == declared
    rc, out, err = run_cli(["--version"])
    assert rc == 0 and err == ""
    assert out.startswith(f"graphvae {declared} (torch {importlib.metadata.version('torch')}, "
                          f"torch-geometric {torch_geometric.__version__}, Python ")
    assert out.count("\n") == 1


def test_num_nodes_beyond_the_machines_memory_is_refused_before_reading(tmp_path,
                                                                        monkeypatch):
    """--num-nodes 100000000 with a 120-edge list built 10⁸ node names and a 10⁸ × 32 first
    layer: 24 GB, and the kernel killed the run with no message. The nodes' memory is
    estimated first (72 B a node, plus 16 B a first-layer weight when featureless, or
    12 B a propagated feature) against the machine's."""
    import graphvae.devices as devices
    monkeypatch.setattr(devices, "physical_memory", lambda: 2 ** 30)        # a 1-GB machine
    edges = tmp_path / "e.csv"
    edges.write_text("".join(f"{i},{(i * 7 + 3) % 60}\n" for i in range(60)))
    rc, _, err = run_cli(["linkpred", "--edges", str(edges), "--num-nodes", "2000000",
                          "--epochs", "1", "--quiet"])
    # 2·10⁶ × (72 + 16·32) B = 1.09 GiB
    assert rc == 2 and err.startswith("graphvae: error: --num-nodes 2,000,000 needs about 1 GB "
                                      "for the nodes alone with a learned 32-wide embedding"), err
    assert err.rstrip().endswith("or use --feature-mode propagated")
    rc, _, err = run_cli(["linkpred", "--edges", str(edges), "--num-nodes", "2000000",
                          "--feature-mode", "propagated", "--epochs", "1", "--quiet"])
    # 2·10⁶ × (72 + 12·65) B = 1.59 GiB
    assert rc == 2 and "needs about 2 GB for the nodes alone with 65 propagated features " \
        "each, more than this machine's 1 GB; declare only the nodes the graph has\n" in err
    rc, _, err = run_cli(["linkpred", "--edges", str(edges), "--num-nodes", "1000",
                          "--epochs", "1", "--quiet"])
    assert rc == 0, err
    # a feature file read as X = I (--feature-mode identity) learns the embedding too; as
    # its own columns (raw), the names and indices alone fit: 2·10⁶ × 72 B = 0.13 GiB
    import argparse

    from graphvae.cli.linkpred import check_node_memory
    from graphvae.tasks.link_prediction import PRESETS
    args = argparse.Namespace(num_nodes=2_000_000, features=tmp_path / "f.csv")
    with pytest.raises(ValueError, match=r"needs about 1 GB for the nodes alone with a "
                                         r"learned 32-wide embedding each"):
        check_node_memory(args, PRESETS["vgae"].replace(features="identity"))
    check_node_memory(args, PRESETS["vgae"].replace(features="raw"))


def test_a_run_says_where_its_out_went_and_what_it_holds(tmp_path, capsys):
    """linkpred, generate, vector and score wrote --out without a word of where: the last
    line on stderr now names the folder and its files."""
    from graphvae.cli.common import wrote

    out = tmp_path / "run"
    rc, _, err = run_cli(["linkpred", "--epochs", "1", "--quiet", "--out", str(out)])
    assert rc == 0, err
    assert err.splitlines()[-1] == (
        f"graphvae linkpred: wrote '{out}': embeddings.csv, latent.png, manifest.json, "
        f"metrics.json, model.pt, predicted_links.csv, roc_pr.png, training.png")
    rc, _, err = run_cli(["linkpred", "--epochs", "1", "--quiet"])
    assert rc == 0 and "wrote" not in err
    many = tmp_path / "many"
    many.mkdir()
    for name in "abcdefghij":
        (many / name).write_text("")
    (many / "k").mkdir()
    wrote("score", many, shown=3)
    assert capsys.readouterr().err == f"graphvae score: wrote '{many}': a, b, c, and 8 more\n"
    wrote("score", None)
    assert capsys.readouterr().err == ""
    (many / "a").unlink()
    wrote("score", many, shown=20)
    assert capsys.readouterr().err.endswith(": b, c, d, e, f, g, h, i, j, k/\n")


def test_linkpred_help_shows_the_presets_values():
    """linkpred's fields take their defaults from the --model preset, and its --help
    showed none of them. Each now shows vgae's value and best's where it differs: VGAE
    is Kipf & Welling's (GCN 32-16, lr 0.01, 200 epochs, raw features, one non-edge per
    positive) and best is as README describes it (GNAE, no hidden layer, 128 dimensions,
    lr 0.005, 300 epochs, 3 non-edges, row-normalised features, no diagonal)."""
    rc, help_text, _ = run_cli(["linkpred", "--help"])
    assert rc == 0
    flat = " ".join(help_text.split())
    for expected in ("encoder [gcn; best: gnae]", "comma-separated [32; best: '']",
                     "latent width per node [16; best: 128]", "edge decoder [inner] ",
                     "per positive pair [1.0; best: 3.0]", "learning rate [0.01; best: 0.005]",
                     "training epochs [200; best: 300]", "[raw; best: normalize]",
                     "leave the diagonal out of the positive pairs (best sets it)",
                     "re-weighting of the edge loss --reweight"):
        assert expected in flat, expected
    assert "[none" not in flat                  # --patience, --batch-size: left to the run


def test_a_runs_exports_are_its_first_seeds(tmp_path):
    """model.pt, embeddings.csv and predicted_links.csv of a two-seed run are those of
    seed 0 alone (the later seeds only add to the summary), and --top-k bounds the
    predicted links: 5 of the 35 non-edges of two joined 6-cliques."""
    edge_file, _, _ = two_cliques(tmp_path, False)
    base = ["linkpred", "--edges", str(edge_file), "--epochs", "3", "--quiet",
            "--top-k", "5", "--selection", "last"]
    for name, seeds in (("one", "1"), ("two", "2")):
        rc, _, err = run_cli([*base, "--seeds", seeds, "--out", str(tmp_path / name)])
        assert rc == 0, err
    one, two = tmp_path / "one", tmp_path / "two"
    a = torch.load(one / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(two / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in ("embeddings.csv", "predicted_links.csv"):
        assert (one / name).read_text() == (two / name).read_text(), name
    assert len(read_csv(one / "predicted_links.csv")) == 1 + 5
    # the second seed trained other weights: the equality above is not two copies of any run
    runs = json.loads((two / "metrics.json").read_text())["runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    assert runs[0]["train_bound_history"] != runs[1]["train_bound_history"]


def test_the_summary_averages_the_seeds_and_only_process_0_prints(monkeypatch, capsys):
    """The summary of seeds whose runs (stand-ins here) took 10 and 13 epochs, 1.5 and
    2.5 s, and 4 and 6 ms a median epoch: int((10 + 13) / 2) = 11 epochs, 4 s in all,
    5 ms; test AUC 0.6 and 0.8, so 0.7 ± 0.1 (the population std). Another process
    (rank 1) of a data-parallel run prints neither the seeds' lines nor the report."""
    import argparse
    from types import SimpleNamespace

    from graphvae.cli import linkpred
    from graphvae.tasks.link_prediction import PRESETS
    metrics = {0: dict(test_auc=0.6, epochs=10, seconds=1.5, median_epoch_ms=4.0),
               1: dict(test_auc=0.8, epochs=13, seconds=2.5, median_epoch_ms=6.0)}

    def fake_run(data, cfg, seed, device, **kwargs):
        return SimpleNamespace(metrics={
            **metrics[seed], "test_ap": 0.5, "val_auc": 0.5, "val_ap": 0.5, "test_mrr": 0.1,
            "test_hits@50": float("nan"), "best_epoch": 2, "batch": "full"})
    monkeypatch.setattr(linkpred, "run_link_prediction", fake_run)
    args = argparse.Namespace(seed=0, seeds=2, quiet=True, resume=False, json=False,
                              model="vgae", top_k=100)
    data = SimpleNamespace(num_nodes=3, edge_index=torch.tensor([[0, 1], [1, 0]]))
    for rank in (0, 1):
        summary = linkpred._runs(args, PRESETS["vgae"], data, "g", "cpu", None, None,
                                 rank=rank)
        assert summary["epochs"] == 11 and summary["seconds"] == 4.0
        assert summary["median_epoch_ms"] == 5.0 and summary["seeds"] == [0, 1]
        assert summary["test_auc"] == pytest.approx(0.7)
        assert summary["test_auc_std"] == pytest.approx(0.1)
        linkpred.report(summary, as_json=False)
        out, err = capsys.readouterr()
        if rank == 0:
            assert out.splitlines()[:2] == [
                "seed 0: test AUC 60.00  AP 50.00  Hits@50 n/a (fewer than 50 test "
                "non-edges)  (val 50.00 / 50.00, best epoch 2, 1.5s)",
                "seed 1: test AUC 80.00  AP 50.00  Hits@50 n/a (fewer than 50 test "
                "non-edges)  (val 50.00 / 50.00, best epoch 2, 2.5s)"], out
            assert out.splitlines()[2] == "g vgae: test AUC 70.00 ± 10.00, AP 50.00 ± 0.00 " \
                                          "over 2 seed(s)", out
        else:
            assert out == "" and err == ""


@pytest.mark.parametrize("argv, why", [
    (["linkpred"], "the synthetic graph is built in"),
    (["linkpred", "--edges", "E"], "the graph is read from --edges"),
    (["generate"], "the default community-small graphs are generated"),
    (["generate", "--dataset", "lobster"], "lobster graphs are generated (there is no file)"),
    (["generate", "--dataset", "grid", "--generated"], "--generated draws grid from its "
                                                       "generator"),
    (["vector"], "the digits are built in"),
    (["vector", "--data", "X"], "the data is read from --data"),
])
def test_a_data_root_the_run_does_not_read_is_noted(argv, why, tmp_path, training_stopped,
                                                    capsys):
    """``--data-root`` with a graph or data set that needs no file under it was taken
    without a word, so a user could believe the run read the folder; now a note says what
    the run reads instead (a note, not a refusal: scripts pass one root to every command)."""
    import numpy as np

    (tmp_path / "e.csv").write_text("".join(f"{i},{(i + k) % 30}\n" for i in range(30)
                                            for k in (1, 2)))               # 60 edges
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 3)))
    files = {"E": str(tmp_path / "e.csv"), "X": str(tmp_path / "x.npy")}
    argv = [files.get(a, a) for a in argv]
    with pytest.raises(training_stopped):
        main([*argv, "--data-root", str(tmp_path / "root"), "--out", str(tmp_path / "o"),
              "--quiet"])
    assert f"graphvae {argv[0]}: note: --data-root is not read: {why}; ignored here\n" \
        in capsys.readouterr().err
    with pytest.raises(training_stopped):                  # without the flag: no note
        main([*argv, "--out", str(tmp_path / "o"), "--quiet"])
    assert "--data-root" not in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["linkpred", "--dataset", "cora"],
                                  ["generate", "--dataset", "ego-small"],
                                  ["generate", "--dataset", "grid"],
                                  ["vector", "--data", "mnist"]])
def test_a_data_root_the_run_reads_is_not_noted(argv, tmp_path, capsys):
    """Data sets read from the root: an empty root is refused (the file named), with no
    note that the root goes unread."""
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "note: --data-root" not in err and str(tmp_path) in err, err


def test_check_invariance_notes_a_data_root_it_does_not_read(tmp_path, capsys):
    """check-invariance reads its graphs as the two tasks do: a linkpred checkpoint on the
    synthetic graph, a generation checkpoint on generated community-small, neither under
    --data-root (noted); a generation checkpoint of stored ego-small reads the root (an
    empty one is refused, with no note)."""
    from graphvae.datasets.graphsets import GraphSet
    from graphvae.models.checkpoints import save_model
    from graphvae.tasks.generation import (
        GenerationConfig,
        build_generation_model,
        load_generation_data,
    )
    from graphvae.tasks.link_prediction import PRESETS, build_linkpred_model
    lp = PRESETS["vgae"].replace(hidden=(4,), latent=2)
    save_model(tmp_path / "lp.pt", build_linkpred_model(lp, 64), task="linkpred",
               config=lp.to_dict(), in_channels=64, epoch=1)
    gen = GenerationConfig(model="oneshot-vae", hidden=(4,), latent=2)
    data = load_generation_data(gen)
    save_model(tmp_path / "gen.pt", build_generation_model(gen, data), task="generation",
               config=gen.to_dict(), in_channels=data.in_channels, epoch=1)
    stored = gen.replace(dataset="ego-small")
    small = GraphSet("ego-small", data.train, data.valid, data.test)
    save_model(tmp_path / "ego.pt", build_generation_model(stored, small), task="generation",
               config=stored.to_dict(), in_channels=data.in_channels, epoch=1)
    root = tmp_path / "root"
    root.mkdir()
    for ck, why in (("lp.pt", "the synthetic graph is built in"),
                    ("gen.pt", "the default community-small graphs are generated")):
        assert main(["check-invariance", "--checkpoint", str(tmp_path / ck), "--data-root",
                     str(root), "--num-graphs", "1", "--permutations", "1"]) == 0
        assert (f"graphvae check-invariance: note: --data-root is not read: {why}; "
                f"ignored here\n") in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["check-invariance", "--checkpoint", str(tmp_path / "ego.pt"), "--data-root",
              str(root), "--num-graphs", "1", "--permutations", "1"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "note:" not in err and str(root) in err, err
