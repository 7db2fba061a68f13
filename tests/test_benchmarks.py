"""Every benchmark script's --smoke mode runs (seconds, no data files needed)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# every test here starts benchmark scripts in their own processes: the full suite only
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def _script_main(argv, capsys, name):
    """``benchmarks/<name>``'s ``main(argv)`` in this process (a flag check needs no fresh
    interpreter): ``(exit status, stderr)``; an exception other than argparse's exit
    fails the test with its traceback."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"_bench_{name[:-3]}", ROOT / "benchmarks" / name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        rc = module.main(argv)
    except SystemExit as exc:
        rc = exc.code
    finally:
        del sys.modules[spec.name]
    return rc, capsys.readouterr().err


def _check_linkpred(report):
    """One seed a row (so no spread), models better than chance on the planted graph, and
    the timing ratio recomputed from its own row."""
    assert report["accuracy"] and report["timing"]
    for row in report["accuracy"]:
        assert row["seeds"] == 1 and row["test_auc_std"] == row["test_ap_std"] == 0.0
        assert 55.0 < row["test_auc_mean"] <= 100.0, row["model"]
    for t in report["timing"]:
        assert t["ratio_graphvae_over_pyg"] == pytest.approx(
            t["graphvae_median_epoch_ms"] / t["pyg_median_epoch_ms"], rel=1e-12)
        for impl in ("pyg", "graphvae"):     # one repeat: the row's median is that run's
            (run,) = t["runs"][impl]
            assert run["median_epoch_ms"] == t[f"{impl}_median_epoch_ms"] > 0


def _check_permutation_bounds(report):
    gaps = report["accuracy"][0]
    assert gaps["violations"] == 0
    assert all(g["min_gap"] >= -1e-9 for name, g in gaps["gaps"].items() if "mean-exp" not in name)
    for t in report["timing"]:
        assert t["vectorised_ms"] > 0 and t["speedup"] == pytest.approx(
            t["loop_ms"] / t["vectorised_ms"], rel=1e-12)


def _check_vector(report):
    rows = {r["ordering"]: r for r in report["linear"]["synthetic"]["linear_ae"]}
    assert set(rows) == {"none", "l2", "rotation"}
    assert all(r["subspace_distance"] < 1e-3 for r in rows.values())
    assert rows["rotation"]["axis_alignment_max"] < 1e-3
    mnist = {r["model"]: r for r in report["mnist"]}
    assert set(mnist) == {"vae", "iwae-5", "iwae-50"}
    for r in mnist.values():  # -log p(x) estimate is below -ELBO (up to sampling noise)
        assert 0 < r["test_nll"] <= -r["test_elbo"] + 1.0
        assert 0 < r["test_nll_refined"] <= -r["test_elbo"] + 1.0  # same model, other q


def _check_generation(report):
    assert report["results"]
    for row in report["results"]:
        if "generated" in row:
            assert all(v["mean"] >= -1e-9 for v in row["generated"].values())
            assert all(v["mean"] >= -1e-9 for v in row.get("train_vs_test", {}).values())
            if row["dataset"] in ("community-small", "ego-small"):  # smoke: two sets a seed
                d = row["over_draws"]
                assert d["draws"] == 2 and d["mean_of_three"]["std_draws"] >= 0
                assert d["mean_of_three"]["mean"] == pytest.approx(
                    sum(d[k]["mean"] for k in ("degree", "clustering", "orbit")) / 3)
        else:
            for dec in row["molecules"].values():
                assert 0.0 <= dec["validity"]["mean"] <= 1.0
            raw = row["molecules"]["sampled"]          # every failure has one reason
            (reasons,) = raw["invalid"]                # the smoke run's one seed
            assert sum(reasons.values()) == pytest.approx(
                row["num_samples"] * (1 - raw["validity"]["mean"]))


def _check_fuzz_readers(report):
    """A few hundred seeded hostile files, every reader among them, none mishandled, and
    none refused in a library's words alone."""
    assert report["cases"] == 400 and report["failures"] == 0, report["failure_list"]
    assert report["library_words"] == {}, report["library_word_list"]
    assert len(report["by_reader"]) >= 17
    for reader, outcomes in report["by_reader"].items():
        assert sum(outcomes.values()) >= 20 and outcomes.get("refused", 0) > 0, reader


def _check_kill_safety(report):
    """kill -9 at random moments: every output folder absent or complete, nothing left over."""
    assert report["ok"]
    for row in report["results"]:
        assert row["states"]["broken"] == 0 and row["final_state"] == "complete"
        assert row["leftovers_after_final"] == [] and row["kills"] == 2


def _check_threads(report):
    """Both embedded commands ran quiet and beside a busy job (the ratio itself is measured
    by the full run; a smoke run on a shared machine is too short to hold it to 2)."""
    assert [r["command"].split()[0] for r in report["results"]] == ["generate", "linkpred"]
    assert all(r["median_quiet_s"] > 0 and r["ratio"] > 0 for r in report["results"])


def _check_scale(report):
    """The smoke graph went end to end; the oracle ranks the planted model's test pairs
    at least as well as a trained model can (it knows the parameters); PyG ran beside."""
    (row,) = report["rows"]
    assert row["nodes"] == 2000 and 0.5 < row["test_auc"] <= 1 and row["peak_rss_gb"] > 0
    assert row["oracle_auc"] > 0.75 and row["s_per_epoch"] > 0 and row["read_s"] >= 0
    assert 0 <= row["pyg"]["test_auc"] <= 1 and row["pyg"]["median_epoch_s"] > 0


def _check_minibatch(report):
    (row,) = report["rows"]
    assert row["dataset"] == "synthetic"
    for m in ("full", "mini", "pass"):   # one seed: its AUC, no spread; above chance
        assert row[f"{m}_test_auc_seeds"] == [row[f"{m}_test_auc"]]
        assert row[f"{m}_test_auc_std"] == 0.0 and 55 < row[f"{m}_test_auc"] <= 100, m
        assert row[f"{m}_ms_per_epoch"] > 0
    assert row["pass_auc_gap"] == pytest.approx(row["pass_test_auc"] - row["full_test_auc"])
    assert row["auc_gap"] == pytest.approx(row["mini_test_auc"] - row["full_test_auc"])
    assert row["epoch_time_ratio"] == pytest.approx(
        row["mini_ms_per_epoch"] / row["full_ms_per_epoch"])
    assert row["pass_epoch_time_ratio"] == pytest.approx(
        row["pass_ms_per_epoch"] / row["full_ms_per_epoch"])
    assert all(row[f"{m}_lr"] == 0.01 for m in ("full", "mini", "pass"))  # preset's rate
    assert row["mini_lr0.01_test_auc"] == pytest.approx(row["mini_test_auc"])


def _check_sampling_noise(report):
    """Copies of training graphs scored like samples: summaries ordered and non-negative,
    the draws differ, and the averages agree with one another."""
    for row in report["rows"]:
        assert row["draws"] == 6 and row["samples_per_draw"] == row["test"]
        assert 0 < row["per_draw"]["unique"]["mean"] <= 1 and 0 < row["train_unique"] <= 1
        for k in ("degree", "clustering", "orbit", "mean_of_three"):
            d = row["per_draw"][k]
            assert d["q05"] <= d["median"] <= d["q95"] and d["q05"] >= -1e-9
            assert d["std"] > 0                    # the draws differ
        three = [row["per_draw"][k]["mean"] for k in ("degree", "clustering", "orbit")]
        assert row["per_draw"]["mean_of_three"]["mean"] == pytest.approx(sum(three) / 3)
        assert row["three_draw_average"]["mean"] == pytest.approx(
            row["per_draw"]["mean_of_three"]["mean"])   # 6 draws: two full triples
        assert row["train_vs_test"]["mean_of_three"] >= 0
        ex = row["expected"]           # closed forms: the test set itself has no distance term
        assert 0 < ex["test_itself"]["mean_of_three"] < ex["data_distribution"]["mean_of_three"]
        assert ex["copier"]["mean_of_three"] > 0
        # U from the training set replaces wᵀKw ≥ U: below the copier
        assert ex["data_distribution_given_test"]["mean_of_three"] < ex["copier"][
            "mean_of_three"]
        # a search that starts from the uniform weights ends no higher; keeping the node
        # counts' shares is a constraint, so it ends no lower than the free search
        low, same = ex["lowest_reweighting"], ex["lowest_reweighting_same_sizes"]
        assert low["mean_of_three"] <= ex["copier"]["mean_of_three"] + 1e-9
        assert same["mean_of_three"] <= ex["copier"]["mean_of_three"] + 1e-9
        assert low["mean_of_three"] <= same["mean_of_three"] + 1e-6
        # fitted to the training graphs alone, then scored on the test set: no better than
        # the free search fitted to the test set itself
        assert low["mean_of_three"] <= ex["lowest_reweighting_from_train"][
            "mean_of_three"] + 1e-6
        assert set(row["kernel_min_eigenvalue"]) >= {"degree", "clustering", "orbit"}
        assert row["kernel_min_eigenvalue"]["orbit"] > -1e-9   # a Gaussian RBF: PD
        sweep = {(x["tau"], x["within_sizes"]): x["mean_of_three"]
                 for x in row["sharpening_sweep"]}
        assert len(sweep) == 10       # a class ∝ c² over the whole set is the sharpened one
        assert sweep[(2.0, False)] == pytest.approx(ex["sharpened"]["mean_of_three"], rel=1e-9)
        for own in (row["test_itself"], row["sharpened"]):
            assert own["mean_of_three"]["mean"] == pytest.approx(
                sum(own[k]["mean"] for k in ("degree", "clustering", "orbit")) / 3)
            assert own["mean_of_three"]["q05"] >= -1e-9 and own["mean_of_three"]["std"] > 0


def _check_invariance_scale(report):
    """The smoke graph (3,000 nodes: 9·10⁶ pairs, past the 2²³ at which the check goes by
    row blocks) with random features: an equivariant model, so every row passes, at
    rounding level in float64, and the child's peak memory was measured."""
    (row,) = report["rows"]
    assert row["nodes"] == 3000 and row["pairs"] == 9_000_000 > 2 ** 23
    assert row["float64"] and not row["identity_features"] and row["exit_status"] == 0
    assert row["status"] == dict.fromkeys(("encoder mean", "encoder scale", "decoder",
                                           "bound"), "ok") and row["as_expected"]
    dev = row["deviations"]
    assert all(0 <= dev[k] <= 1e-9 for k in ("encoder mean", "encoder scale", "decoder"))
    # the bound is about -1.9e7 nats, where float64 values lie 2^-28 = 3.7e-9 apart: 1e-9
    # asked for no rounding at all (one step, on another machine's CPU); a few steps pass
    assert 0 <= dev["bound"] <= 8 * 2.0 ** -28
    assert 0 < row["peak_rss_gb"] < row["max_gb"] and row["wall_s"] > 0


CHECKS = {"generation.py": _check_generation, "sampling_noise.py": _check_sampling_noise,
          "linkpred.py": _check_linkpred,
          "permutation_bounds.py": _check_permutation_bounds, "vector.py": _check_vector,
          "fuzz_readers.py": _check_fuzz_readers, "kill_safety.py": _check_kill_safety,
          "threads.py": _check_threads, "scale.py": _check_scale,
          "minibatch.py": _check_minibatch, "invariance_scale.py": _check_invariance_scale}


def test_every_benchmark_has_a_check():
    assert {p.name for p in SCRIPTS} == set(CHECKS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_smoke(script, tmp_path):
    out = tmp_path / "result.json"
    work = ["--workdir", str(tmp_path / "smoke_ckpt")] if script.name == "vector.py" else []
    subprocess.run([sys.executable, str(script), "--smoke", *work, "--out", str(out)],
                   check=True, cwd=ROOT, timeout=300)
    CHECKS[script.name](json.loads(out.read_text()))
    if script.name == "vector.py":  # the validation proxy of the smoke run's VAE
        ckpt = tmp_path / "smoke_ckpt" / "mnist_vae.pt"
        text = subprocess.run([sys.executable, str(script), "--smoke", "--proxy", str(ckpt)],
                              check=True, cwd=ROOT, timeout=300, capture_output=True,
                              text=True).stdout
        nll, elbo = (float(v) for v in re.findall(r"proxy NLL (\S+)  valid ELBO (\S+)", text)[0])
        assert 0 < nll <= -elbo + 1.0  # importance sampling is tighter than the ELBO


def test_vector_benchmark_is_reproducible_across_processes(tmp_path):
    """torch seeds each new process at random: the MNIST models' initial weights must
    come from --seed, so two runs give the same numbers. Equal to 1e-6 relative, not to
    the last bit: a run beside another job once differed by 2e-9 (the order of a
    multithreaded sum), while an unseeded initialisation moves the NLL by whole nats."""
    rows = []
    for i in range(2):
        out = tmp_path / f"r{i}.json"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vector.py"), "--smoke",
                        "--only", "mnist", "--quiet", "--iwae-k", "5", "--out", str(out)],
                       check=True, cwd=ROOT, timeout=300)
        rows.append([(r["test_nll"], r["test_nll_refined"])
                     for r in json.loads(out.read_text())["mnist"]])
    assert len(rows[0]) == len(rows[1]) > 0
    for a, b in zip(rows[0], rows[1]):
        assert a == pytest.approx(b, rel=1e-6, abs=0)


def test_vector_benchmark_architecture_flags(tmp_path):
    """--hidden / --latent / --activation reach every MNIST model (Burda et al.'s
    784-200-200-50 tanh network is a flag away) and the recipe records them."""
    from graphvae.vector import load_vector_model

    out = tmp_path / "r.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vector.py"), "--smoke",
                    "--only", "mnist", "--quiet", "--hidden", "16", "12", "--latent", "3",
                    "--activation", "tanh", "--refine-epochs", "0", "--device", "cpu",
                    "--workdir", str(tmp_path / "smoke_ckpt"), "--out", str(out)],
                   check=True, cwd=ROOT, timeout=300)
    report = json.loads(out.read_text())
    assert report["mnist_recipe"]["activation"] == "tanh" and report["mnist_device"] == "cpu"
    for name in ("vae", "iwae-5", "iwae-50"):
        m = load_vector_model(tmp_path / "smoke_ckpt" / f"mnist_{name}.pt")
        linears = [layer for layer in m.decoder if isinstance(layer, torch.nn.Linear)]
        assert [(lin.in_features, lin.out_features) for lin in linears] == \
            [(3, 12), (12, 16), (16, 784)]
        assert sum(isinstance(layer, torch.nn.Tanh) for layer in m.encoder) == 2
        assert not any(isinstance(layer, torch.nn.ReLU) for layer in m.encoder)


def test_vector_benchmark_gated_layers_and_chosen_iwae_rows(tmp_path):
    """--activation gated builds gated linear units; --iwae-k picks the IWAE rows."""
    from graphvae.vector import load_vector_model
    from graphvae.vector.layers import GatedLinear

    out = tmp_path / "r.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vector.py"), "--smoke",
                    "--only", "mnist", "--quiet", "--hidden", "6", "--latent", "2",
                    "--activation", "gated", "--iwae-k", "3", "--refine-epochs", "0",
                    "--workdir", str(tmp_path / "smoke_ckpt"), "--out", str(out)],
                   check=True, cwd=ROOT, timeout=300)
    report = json.loads(out.read_text())
    assert [(r["model"], r["K"]) for r in report["mnist"]] == [("vae", 1), ("iwae-3", 3)]
    assert report["mnist_recipe"]["iwae_k"] == [3]
    assert report["mnist"][1]["published_nll"] is None
    ckpts = sorted(p.name for p in (tmp_path / "smoke_ckpt").glob("mnist_*.pt"))
    assert ckpts == ["mnist_iwae-3.pt", "mnist_vae.pt"]
    m = load_vector_model(tmp_path / "smoke_ckpt" / "mnist_iwae-3.pt")
    assert [type(layer) for layer in m.decoder] == [GatedLinear, torch.nn.Linear]
    assert m.decoder[0].linear.out_features == 12


@pytest.mark.parametrize("args, message", [
    (["--encoder-noise", "-0.1"], "--encoder-noise must be >= 0"),
    (["--weight-decay", "-1"], "--weight-decay must be >= 0"),
    (["--proxy", "absent.pt"], "no such checkpoint: absent.pt"),
    (["--refine-epochs", "-1"], "--refine-epochs must be >= 0"),
    (["--refine-k", "0"], "--refine-k must be >= 1"),
    (["--device", "nonsense"], "unknown device 'nonsense'"),
    (["--activation", "sigmoid"], "invalid choice: 'sigmoid'"),
    (["--iwae-k", "5", "0"], "--iwae-k values must be >= 1"),
    # the MNIST part's flags were read only after the linear and denoising parts
    (["--hidden", "100000"], "--hidden needs at least one width, each from 1 to 65536"),
    (["--lr", "nan"], "--lr must lie in (0, 1e+30], got nan"),
    (["--ema", "2"], "--lr-decay and --ema must lie in (0, 1)"),
    (["--nll-batch", "0"], "--nll-batch must be a whole number >= 1, got 0"),
    (["--weight-decay", "inf"], "--weight-decay must be a finite number >= 0, got inf"),
])
def test_vector_benchmark_rejects_bad_flags_before_loading_data(args, message, tmp_path,
                                                                capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, err = _script_main([*args, "--out", str(tmp_path / "r.json")], capsys, "vector.py")
    assert rc == 2 and message in err, (rc, err)
    assert not (tmp_path / "r.json").exists()


def test_sampling_noise_over_seeds(tmp_path):
    """Two seeds of our set-up (each its own shuffled split): one row a seed, and
    ``over_seeds`` is the plain mean of the rows' closed forms; ``--seeds 0`` is refused in
    one line."""
    script = str(ROOT / "benchmarks" / "sampling_noise.py")
    out = tmp_path / "r.json"
    no_data = {k: v for k, v in os.environ.items() if k != "GRAPHVAE_DATA"}  # embedded set
    res = subprocess.run([sys.executable, script, "--smoke", "--protocol", "graphrnn",
                          "--seeds", "2", "--out", str(out)], cwd=ROOT, timeout=300,
                         capture_output=True, text=True, env=no_data)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [r["seed"] for r in rows] == [0, 1] and len({r["dataset"] for r in rows}) == 1
    assert rows[0]["expected"]["copier"] != rows[1]["expected"]["copier"]   # other splits
    for k, v in report["over_seeds"][rows[0]["dataset"]].items():
        assert v == pytest.approx((rows[0]["expected"][k]["mean_of_three"]
                                   + rows[1]["expected"][k]["mean_of_three"]) / 2)
    bad = subprocess.run([sys.executable, script, "--seeds", "0", "--out", str(tmp_path / "b")],
                         cwd=ROOT, timeout=120, capture_output=True, text=True)
    assert bad.returncode == 2 and "--draws and --seeds must be >= 1" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("flag", ["--seeds", "--draws", "--threads", "--epochs"])
def test_generation_benchmark_rejects_counts_below_one(flag, tmp_path, capsys):
    """``--seeds 0`` used to run nothing and fail with an IndexError traceback; ``--epochs
    0`` was taken for "not given" and ran every row's default training."""
    rc, err = _script_main([flag, "0", "--out", str(tmp_path / "r.json")], capsys,
                           "generation.py")
    assert rc == 2 and "--threads, --draws, --seeds and --epochs must be >= 1" in err, (rc, err)
    assert not (tmp_path / "r.json").exists()


def test_a_partial_generation_run_keeps_what_others_wrote_and_refuses_other_files(
        tmp_path, capsys, monkeypatch):
    """--only / --rows read --out at the start and wrote it at the end: a row that another
    run wrote meanwhile was lost, a file that was not a generation report (notes, another
    script's results) was replaced by one, smoke rows went into a measured report without a
    mark, and a --rows matching no row ran nothing and exited 0."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("_bench_generation_merge",
                                                  ROOT / "benchmarks" / "generation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        out = tmp_path / "gen.json"
        old = {"results": [{"dataset": "ego-small", "label": "graphvae (matched)", "v": 1},
                           {"dataset": "ego-small", "label": "seq-vae, exemplar prior",
                            "v": "old"}], "smoke": False}
        out.write_text(json.dumps(old))

        def run_part(name, args):            # another run adds a row while this one trains
            meanwhile = json.loads(out.read_text())
            meanwhile["results"].append({"dataset": "grid", "label": "x", "v": "theirs"})
            out.write_text(json.dumps(meanwhile))
            return [{"dataset": name, "label": "seq-vae, exemplar prior", "v": "new"}]

        monkeypatch.setattr(module, "run_part", run_part)
        monkeypatch.setattr(module, "check_data", lambda parts, root: None)
        assert module.main(["--only", "ego-small", "--rows", "seq-vae, exemplar prior",
                            "--out", str(out)]) == 0
        rows = json.loads(out.read_text())["results"]
        assert [(r["label"], r["v"]) for r in rows] == [
            ("graphvae (matched)", 1), ("x", "theirs"), ("seq-vae, exemplar prior", "new")]
        notes = tmp_path / "notes.json"
        for text, kind in (('{"my": "notes"}', "generation"), ("[1, 2]", "benchmark")):
            notes.write_text(text)              # (not a JSON object: any run refuses it)
            with pytest.raises(ValueError, match=rf"is not a {kind} report"):
                module.main(["--only", "ego-small", "--out", str(notes)])
            assert notes.read_text() == text
        with pytest.raises(ValueError, match=r"would mix smoke rows into a measured report"):
            module.main(["--smoke", "--only", "ego-small", "--out", str(out)])
        with pytest.raises(SystemExit):
            module.main(["--only", "ego-small", "--rows", "seqvae", "--out", str(out)])
        assert "--rows 'seqvae' matches no row of ego-small" in capsys.readouterr().err
    finally:
        del sys.modules[spec.name]


def test_gdss_cross_check_without_a_checkout_is_one_line(tmp_path):
    """The cross-check against GDSS's code needs their checkout (not shipped): without one it
    says so in one line, exit 2 (the comparison itself is in benchmarks/README.md)."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "crosscheck" / "gdss_mmd.py"),
                           "--gdss-repo", str(tmp_path / "absent"), "--out",
                           str(tmp_path / "r.json")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "absent" in proc.stderr and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("script", ["generation.py", "invariance_scale.py", "linkpred.py",
                                    "minibatch.py", "permutation_bounds.py",
                                    "sampling_noise.py", "vector.py", "crosscheck/gdss_mmd.py"])
def test_every_benchmark_data_root_refuses_an_empty_path(
        script, tmp_path):
    """``--data-root ""`` (an unset shell variable) was taken as given: Path("") is the
    working folder, where generation.py and sampling_noise.py found no graphgen/ and left
    their data sets out. Every script's flag now refuses it as the commands' flag does,
    and its help names its default, $GRAPHVAE_DATA."""
    path = ROOT / "benchmarks" / script
    name = path.name
    res = subprocess.run([sys.executable, str(path), "--data-root", "", "--out",
                          str(tmp_path / "r.json")], cwd=ROOT, timeout=120,
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr == (
        f"{name}: error: argument --data-root: an empty path; leave the flag out to use "
        f"$GRAPHVAE_DATA (see {name} --help)\n")
    assert not (tmp_path / "r.json").exists()
    help_text = subprocess.run([sys.executable, str(path), "--help"], cwd=ROOT, timeout=120,
                               capture_output=True, text=True, check=True).stdout
    assert "--data-root DIR" in help_text and "[$GRAPHVAE_DATA]" in " ".join(help_text.split())


@pytest.mark.parametrize("script", [s.name for s in SCRIPTS if '"--out", type=Path'
                                    in s.read_text()])
def test_every_benchmark_refuses_an_unusable_out_before_any_work(script, tmp_path, capsys,
                                                                 monkeypatch):
    """``--out`` was first looked at when the report was written, after all the work: a
    folder or a path under a file failed with a traceback then, and a device file was
    replaced (as root, ``--out /dev/full`` became a JSON file). A FIFO stands in for the
    device here; each is refused in one line, exit 2, and left as it was."""
    import graphvae.errors

    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))     # invariance_scale imports scale
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("mine\n")
    os.mkfifo(tmp_path / "fifo")
    monkeypatch.setattr(sys, "argv", [script])
    cases = {"folder": "it is a folder", "file/r.json": f"{tmp_path / 'file'} is not a folder",
             "fifo": "it is not a regular file"}
    for out, problem in cases.items():
        def main(out=out):
            return _script_main(["--smoke", "--out", str(tmp_path / out)], capsys, script)[0]
        rc = graphvae.errors.run_script(main)
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1, (out, err)
        assert err.startswith(f"{script}: error: cannot write ") and problem in err, err
    assert (tmp_path / "file").read_text() == "mine\n" and (tmp_path / "fifo").is_fifo()
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == []


@pytest.mark.parametrize("script", [s.name for s in SCRIPTS])
def test_a_smoke_run_without_out_leaves_the_committed_results_alone(script, tmp_path, capsys,
                                                                     monkeypatch):
    """Every ``--out`` defaulted to the committed ``benchmarks/results/NAME.json``, so
    ``--smoke`` without ``--out`` replaced the measured report with a smoke run's. Its
    default is now ``NAME.smoke.json`` beside it (ignored by git), whatever the working
    folder; a full run's default and a given ``--out`` are unchanged."""
    import graphvae.io

    real, seen = graphvae.io.results_file, []

    def stop(out, default, smoke):
        seen.append(real(out, default, smoke))
        raise ValueError("stopped before any work")

    monkeypatch.chdir(tmp_path)             # the default is the script's folder, not the cwd
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setattr(graphvae.io, "results_file", stop)
    name = script[:-3]
    for argv in (["--smoke"], [], ["--smoke", "--out", "mine.json"]):
        with pytest.raises(ValueError, match="stopped before any work"):
            _script_main(argv, capsys, script)
    results = ROOT / "benchmarks" / "results"
    assert seen == [results / f"{name}.smoke.json", results / f"{name}.json",
                    Path("mine.json")], seen
    assert not list(tmp_path.iterdir())


def test_a_smoke_run_refuses_a_measured_reports_name(tmp_path):
    """--smoke added to a full run's command (benchmarks/README.md names
    --out benchmarks/results/linkpred_accuracy.json, not the default linkpred.json)
    replaced that measured report with a smoke run's. A smoke run's --out in the results
    folder must now be a NAME.smoke.json; elsewhere anything goes."""
    from graphvae.io import results_file
    results = ROOT / "benchmarks" / "results"
    default = results / "linkpred.json"
    for name in ("linkpred.json", "linkpred_accuracy.json", "new.json"):
        with pytest.raises(ValueError, match=rf"^--smoke with --out .*{name}: a smoke run "
                                             rf"would replace a measured report of "):
            results_file(results / name, default, smoke=True)
    assert results_file(results / "x.smoke.json", default, True) == results / "x.smoke.json"
    assert results_file(tmp_path / "linkpred.json", default, True) == tmp_path / "linkpred.json"
    assert results_file(results / "linkpred_accuracy.json", default, False) == \
        results / "linkpred_accuracy.json"                         # a full run: as given


def test_a_results_file_is_checked_through_links_and_for_writing_before_the_run(tmp_path):
    """A link to the repository reached a measured report by another name, past the smoke
    guard; an --out where no file can be created (/proc) failed only at the final write,
    after the whole run, naming the temporary file; --out new/ wrote a file named new, and
    --out '' was taken for the folder '.'."""
    from graphvae.io import results_file
    results = ROOT / "benchmarks" / "results"
    (tmp_path / "repo").symlink_to(ROOT)
    linked = tmp_path / "repo" / "benchmarks" / "results" / "linkpred_accuracy.json"
    with pytest.raises(ValueError, match=r"a smoke run would replace a measured report"):
        results_file(linked, results / "linkpred.json", smoke=True)
    with pytest.raises(ValueError, match=r"^cannot write to /proc \(for --out "
                                         r"/proc/graphvae_x\.json\): "):
        results_file("/proc/graphvae_x.json", results / "linkpred.json", smoke=False)
    deep = tmp_path / "a" / "b" / "r.json"          # missing folders are made, as the write
    assert results_file(deep, results / "linkpred.json", smoke=False) == deep   # would
    assert deep.parent.is_dir() and not list(deep.parent.iterdir())    # no probe left behind
    with pytest.raises(ValueError, match=r"^cannot write 'new/': it names a folder"):
        results_file("new/", results / "linkpred.json", smoke=False)
    with pytest.raises(ValueError, match=r"^cannot write '': an empty file name$"):
        results_file("", results / "linkpred.json", smoke=False)
    assert not (ROOT / "new").exists()


def test_a_results_file_that_is_not_a_report_is_not_replaced(tmp_path):
    """A full run replaced any file at --out (a note of yours) with its report."""
    from graphvae.io import results_file
    default = ROOT / "benchmarks" / "results" / "linkpred.json"
    for content in ("hello\n", "[1, 2]", "", "{\"a\": NaN}"):
        note = tmp_path / "r.json"
        note.write_text(content)
        with pytest.raises(ValueError, match=r"^--out .*r\.json is not a benchmark report \(a "
                                             r"JSON object\), and this run would replace it: "
                                             r"name another file$"):
            results_file(note, default, smoke=False)
        assert note.read_text() == content
    note.write_text('{"rows": []}')                         # a report: replaced, as before
    assert results_file(note, default, smoke=False) == note


def test_benchmark_flag_errors_are_one_line(tmp_path):
    """Run as a script: a bad flag is one line and exit 2 (argparse printed its usage block
    first), a ValueError from deep inside too (a traceback before), and an epoch count of 0
    is refused (it was taken for "not given" and started the full default training)."""
    cases = [("linkpred.py", ["--seeds", "0"], "--seeds must be >= 1, got 0"),
             ("linkpred.py", ["--models", "bogus"], "invalid choice: 'bogus'"),
             ("generation.py", ["--epochs", "0"], "--epochs must be >= 1"),
             ("scale.py", ["--sizes", "abc"], "--sizes takes nodes:edges pairs such as "
                                              "1e4:1e5, separated by commas, got 'abc'"),
             # an OverflowError traceback (inf to int), and errors found only after the
             # graph was drawn: the child's own reason is named
             ("scale.py", ["--sizes", "1e4:inf"], "--sizes takes whole numbers of nodes"),
             ("scale.py", ["--smoke", "--model", "junk"],
              "the linkpred flags: failed (exit status 2): graphvae: error: argument --model: "
              "invalid choice: 'junk'"),
             ("scale.py", ["--smoke", "--linkpred-args=--lr -1"],
              "graphvae: error: --lr must be a finite number > 0, got -1.0"),
             ("invariance_scale.py", ["--graphs", "3000,inf"], "--graphs takes cora"),
             ("invariance_scale.py", ["--smoke", "--timeout", "inf"],
              "--timeout in (0, 1e7] seconds"),
             ("invariance_scale.py", ["--smoke", "--seed", "-1"],
              "--seed must be an integer from 0 to 4294967295, got -1"),
             # MNIST was read after the linear and denoising parts (minutes)
             ("vector.py", ["--data-root", "/nonexistent"], "static binarized MNIST not found"),
             # found after the earlier data sets' or modes' runs
             ("linkpred.py", ["--datasets", "synthetic", "citseer", "--no-timing"],
              "invalid choice: 'citseer'"),
             ("minibatch.py", ["--smoke", "--batch-size", "0"], "batch-size must be at least 1"),
             ("minibatch.py", ["--datasets", "synthetic,nosuch"], "--datasets: unknown nosuch"),
             # --smoke replaced the flag's value before it was checked: exit 0
             ("minibatch.py", ["--smoke", "--datasets", "nosuch"], "--datasets: unknown nosuch"),
             ("minibatch.py", ["--smoke", "--seeds", "-1"], "--seeds must lie in 1"),
             ("scale.py", ["--smoke", "--sizes", "abc"], "--sizes takes nodes:edges pairs"),
             ("invariance_scale.py", ["--smoke", "--graphs", "abc"], "--graphs takes cora"),
             # found by the first mini-batch run, after the full-batch runs. The embedded
             # graph: 600 nodes, 2361 edges; 236 test and 118 validation edges
             # (⌊m/10⌋, ⌊m/20⌋) leave 2007, so 2·2007 + 600 = 4614 training positives
             # (the diagonal too) of 2·2361 + 600 = 5322 in all
             ("minibatch.py", ["--smoke", "--batch-size", "5000"],
              "--batch-size 5000 is more than the 4614 positive pairs of synthetic's "
              "training graph"),
             ("minibatch.py", ["--smoke", "--batch-size", "1000000000"],
              "more than the 4614 positive pairs"),
             ("permutation_bounds.py", ["--smoke", "--seed", "-7"],
              "--seed must be an integer from 0 to 4294967295, got -7"),
             # each after the first data set's draws (minutes)
             ("sampling_noise.py", ["--seed", "4294967295", "--seeds", "2"],
              "--seed + --seeds - 1 must be an integer from 0 to 4294967295, got 4294967296"),
             ("sampling_noise.py", ["--datasets", "community-small,ego-small", "--data-root",
                                    str(tmp_path / "only_community")], "ego_small.pkl")]
    (tmp_path / "only_community" / "graphgen").mkdir(parents=True)
    (tmp_path / "only_community" / "graphgen" / "community_small.g6").write_bytes(
        b"Bw\n" * 20)
    for script, argv, problem in cases:
        res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *argv,
                              "--out", str(tmp_path / "r.json")], cwd=ROOT, timeout=120,
                             capture_output=True, text=True)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, (script, res.stderr)
        assert res.stderr.startswith(f"{script}: error: ") and problem in res.stderr
        assert not (tmp_path / "r.json").exists()


def test_vector_benchmark_resumes_only_its_own_recipe_and_smoke_keeps_no_checkpoints(
        tmp_path):
    """--resume reused another recipe's checkpoints and cached NLLs while the report named
    the requested flags; a --smoke run wrote its checkpoints into smoke_ckpt/ beside --out,
    replacing files there."""
    out = tmp_path / "o" / "r.json"
    (tmp_path / "o" / "smoke_ckpt").mkdir(parents=True)
    (tmp_path / "o" / "smoke_ckpt" / "mnist_vae_eval.json").write_text("precious")
    base = [sys.executable, str(ROOT / "benchmarks" / "vector.py"), "--smoke", "--only",
            "mnist", "--quiet", "--iwae-k", "3", "--refine-epochs", "0"]
    subprocess.run([*base, "--out", str(out)], check=True, cwd=ROOT, timeout=300)
    assert (tmp_path / "o" / "smoke_ckpt" / "mnist_vae_eval.json").read_text() == "precious"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["r.json", "smoke_ckpt"]
    work = ["--workdir", str(tmp_path / "w")]
    subprocess.run([*base, *work, "--out", str(out)], check=True, cwd=ROOT, timeout=300)
    other = subprocess.run([*base, *work, "--resume", "--latent", "3", "--out",
                            str(tmp_path / "r2.json")], cwd=ROOT, timeout=300,
                           capture_output=True, text=True)
    assert other.returncode == 2 and other.stderr.count("\n") == 1, other.stderr
    assert "were made with other settings or data (latent differ)" in other.stderr
    same = subprocess.run([*base, *work, "--resume", "--out", str(tmp_path / "r3.json")],
                          cwd=ROOT, timeout=300, capture_output=True, text=True)
    assert same.returncode == 0, same.stderr
    assert json.loads((tmp_path / "r3.json").read_text())["mnist"] == \
        json.loads(out.read_text())["mnist"]


def test_a_failed_child_command_is_named_with_its_own_reason(capsys):
    """run_script named only the command line of a child that failed; where the child's
    stderr was captured, its last line (the reason) follows."""
    from graphvae.errors import run_script

    def main():
        subprocess.run([sys.executable, "-c", "import sys; sys.exit('graphvae: error: no "
                        "such data set')"], check=True, capture_output=True, text=True)

    assert run_script(main) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a child command failed (exit status 1)" in err
    assert err.rstrip().endswith(": graphvae: error: no such data set"), err


def test_a_child_past_its_timeout_is_one_line(capsys):
    """subprocess's TimeoutExpired is not a CalledProcessError: a benchmark whose child
    ran past its timeout ended in a traceback."""
    from graphvae.errors import run_script

    def main():
        subprocess.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5,
                       check=True)

    assert run_script(main) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a child command ran past its 0.5 s: " in err, err


def test_threads_benchmark_keeps_its_childrens_reason(tmp_path):
    """threads.py threw its children's stderr away, so a failed child was only its exit
    status; its last line now follows (here: an "interpreter" that fails saying why)."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'graphvae: error: no such data set' >&2\nexit 2\n")
    fake.chmod(0o755)
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "threads.py"), "--smoke",
                          "--python", str(fake), "--out", str(tmp_path / "t.json")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.rstrip().endswith("(exit status 2): " + " ".join(
        [str(fake), "-m", "graphvae", "generate", "--model", "oneshot-vae", "--quiet",
         "--epochs", "2"]) + ": graphvae: error: no such data set"), res.stderr


def test_the_fuzz_counts_a_last_resort_refusal_and_not_one_in_the_package_s_words(
        monkeypatch):
    """The leads of the package's last-resort handlers, each followed by an exception that
    says only where a library failed, are counted; the same exception after the package's
    own reason is not. ("a damaged training state" and ".npz" leads were missed at first.)"""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from fuzz_readers import LIBRARY_WORDS
    counted = [
        "p: a damaged training state (AttributeError: 'str' object has no attribute 'shape')",
        "p: not a readable .npz of planted parameters (KeyError: 'theta')",
        "p: the checkpoint's config is not usable (TypeError: unhashable type: 'list')",
        "p: cannot read the checkpoint (RuntimeError: record size (20 bytes) does not match",
        "p: not a graph6 line (IndexError: list index out of range)",
        "p: cannot read the checkpoint (RuntimeError: Storage size calculation overflowed "
        "with sizes=[4611686018427387904, 4])"]
    not_counted = [
        "p: damaged: the APPEND opcode at byte 7 does not fit the objects before it "
        "(AttributeError: 'dict' object has no attribute 'append')",
        "p: damaged: SciPy's MAT reader fails inside it (TypeError: Expecting miMATRIX type)",
        "p: could not read gml (NetworkXError: input contains no graph)"]
    assert [bool(LIBRARY_WORDS.search(m)) for m in counted + not_counted] == \
        [True] * len(counted) + [False] * len(not_counted)
