"""``graphvae vector`` and the vector data loaders: runs with no files, and bad input fails early
with one line."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from graphvae.vector import check_matrix, load_matrix, load_mnist, load_vector_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_ROOT = Path(os.environ.get("GRAPHVAE_DATA", Path(__file__).resolve().parents[2] /
                                "shared" / "data"))


def _pngs(folder: Path, names):
    for n in names:
        assert (folder / n).read_bytes()[:8] == PNG_MAGIC, n


def test_vae_on_digits_with_no_files(tmp_path):
    rc, out, _ = run_cli(["vector", "--epochs", "3", "--nll-samples", "20", "--quiet",
                          "--out", str(tmp_path)])
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == "vae" and m["data"] == "digits" and m["likelihood"] == "gaussian"
    assert m["n_test"] == 180 and m["dim"] == 64
    # the importance-sampled log p(x) is at least the ELBO's value (both on the test split)
    assert -m["test_nll"] >= m["test_elbo"] - 1e-3
    _pngs(tmp_path, ["reconstructions.png", "samples.png", "codes.png", "interpolation.png",
                     "training.png"])
    assert (tmp_path / "model.pt").is_file()
    assert json.loads(out)["test_nll"] == pytest.approx(m["test_nll"])


def test_a_loss_not_finite_before_any_step_does_not_blame_the_learning_rate(tmp_path):
    """--noise 1e30 makes the first loss infinite, before any update: the advice was 'try a
    lower learning rate'."""
    rc, _, err = run_cli(["vector", "--model", "dae", "--noise", "1e30", "--epochs", "1",
                          "--quiet", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert err.startswith("graphvae: error: the loss is inf at the first step, before any "
                          "update, so the learning rate is not the cause") and \
        err.count("\n") == 1, err


@pytest.mark.parametrize("model", ["ae", "dae", "iwae"])
def test_other_models_run(tmp_path, model):
    rc, _, _ = run_cli(["vector", "--model", model, "--epochs", "2", "--nll-samples", "10",
                        "--binarize", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["likelihood"] == "bernoulli"
    _pngs(tmp_path, ["reconstructions.png", "codes.png", "training.png"])
    assert (tmp_path / "samples.png").exists() == (model == "iwae")
    if model == "iwae":
        assert "test_iwae_5" in m
    else:  # a point code: its reconstruction log-likelihood, not named as a bound
        assert "test_recon_loglik" in m and "test_elbo" not in m


def test_gated_activation_builds_gated_layers(tmp_path):
    rc, _, _ = run_cli(["vector", "--activation", "gated", "--hidden", "8", "--epochs", "2",
                        "--nll-samples", "10", "--binarize", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["config"]["activation"] == "gated"
    state = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    # one Linear(in, 2 * 8) per gated layer: the value half and the gate half
    assert state["encoder.0.linear.weight"].shape == (16, 64)
    assert state["decoder.0.linear.weight"].shape[0] == 16


@pytest.mark.slow  # 7 s; the full suite (CI) runs it
def test_bf16_flag_trains_and_is_recorded(tmp_path):
    rc, _, _ = run_cli(["vector", "--model", "iwae", "--bf16", "--epochs", "2",
                        "--nll-samples", "10", "--binarize", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["config"]["bf16"] is True
    # the evaluation stays float32: log p(x) (10 samples) is at least the ELBO, up to noise
    assert np.isfinite(m["test_nll"]) and -m["test_nll"] >= m["test_elbo"] - 1.0
    state = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 for v in state.values())


@pytest.mark.slow  # 4 s; the full suite (CI) runs it
def test_refined_proposal_keeps_the_decoder_and_tightens_log_p(tmp_path):
    rc, out, _ = run_cli(["vector", "--epochs", "3", "--nll-samples", "20",
                          "--refine-epochs", "3", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert 1 <= m["refine_best_epoch"] <= 3 and m["config"]["refine_epochs"] == 3
    # an encoder trained on IWAE_50 against a 3-epoch one: a much tighter estimate
    assert m["test_nll_refined"] < m["test_nll"]
    model = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    refined = torch.load(tmp_path / "model_refined.pt", weights_only=True)["state_dict"]
    assert set(model) == set(refined)
    for name in model:  # same p(x, z): decoder (and learned variance) bit for bit
        assert torch.equal(model[name], refined[name]) != name.startswith("encoder"), name
    assert json.loads(out)["test_nll_refined"] == pytest.approx(m["test_nll_refined"])


def test_same_seed_same_run_whatever_ran_before():
    from graphvae.vector.run import VectorRunConfig, run_vector

    data = load_vector_data("digits", None, 0)
    cfg = VectorRunConfig(epochs=2, nll_samples=10)
    first = run_vector(data, cfg, progress=False)
    torch.rand(5)  # move the global random state on
    second = run_vector(data, cfg, progress=False)
    drop = ("train_seconds", "nll_seconds")
    assert {k: v for k, v in first.items() if k not in drop} == {
        k: v for k, v in second.items() if k not in drop}


def test_python_config_rejects_unknown_activation_before_training():
    from graphvae.vector.run import VectorRunConfig

    with pytest.raises(ValueError, match="unknown activation 'sigmoid'"):
        VectorRunConfig(activation="sigmoid").validate()


@pytest.mark.slow
def test_linear_against_pca_on_digits(tmp_path):
    rc, _, _ = run_cli(["vector", "--model", "linear", "--latent-dim", "4", "--epochs", "30",
                        "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["subspace_distance"] < 1e-3
    assert m["train_mse_linear_ae"] == pytest.approx(m["pca_discarded_variance"], rel=0.01)
    assert m["train_mse_pca"] == pytest.approx(m["pca_discarded_variance"], rel=1e-9)
    _pngs(tmp_path, ["reconstructions.png", "codes.png"])


def test_user_matrix_file(tmp_path):
    g = np.random.default_rng(0)
    x = g.normal(size=(120, 5))
    np.save(tmp_path / "x.npy", x)
    rc, _, _ = run_cli(["vector", "--data", str(tmp_path / "x.npy"), "--model", "ae",
                        "--epochs", "2", "--quiet", "--out", str(tmp_path / "o")])
    assert rc == 0
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["dim"] == 5 and m["n_test"] == 12 and m["latent_dim"] == 2


def test_patience_off_runs_every_epoch(tmp_path):
    """--patience 0 stops at the first epoch that does not improve, the default (20) 20
    epochs after the best; off never stops, and the run records it (it once fell back to
    the default: ``off`` parses to None, which the flag collection took for "not given")."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(30, 4)))
    runs = {}
    for p in ("0", "default", "off"):
        rc, _, err = run_cli(["vector", "--data", str(tmp_path / "x.npy"), "--hidden", "8",
                              "--epochs", "40", "--lr", "0.05", "--nll-samples", "5",
                              "--quiet", "--out", str(tmp_path / p)]
                             + ([] if p == "default" else ["--patience", p]))
        assert rc == 0, err
        runs[p] = json.loads((tmp_path / p / "metrics.json").read_text())
    # the best validation epoch comes early on this data, so 20 epochs without a better one
    # end the default run before epoch 40
    assert runs["default"]["epochs_run"] == runs["default"]["best_epoch"] + 20 < 40
    assert runs["0"]["epochs_run"] == runs["0"]["best_epoch"] + 1 < 40
    assert runs["off"]["epochs_run"] == 40
    assert runs["off"]["config"]["patience"] is None
    assert runs["default"]["config"]["patience"] == 20


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


BAD = {
    "unknown model": (["--model", "gan"], "invalid choice"),
    "unknown data": (["--data", "cifar"], "unknown data set 'cifar'"),
    "missing file": (["--data", "nope.npy"], "data file not found"),
    "non-binary for bernoulli": (["--likelihood", "bernoulli"],
                                 "not binary but the Bernoulli likelihood"),
    "bad hidden": (["--hidden", "4,x"], "argument --hidden: expected comma-separated integers"),
    "unknown activation": (["--activation", "sigmoid"], "invalid choice: 'sigmoid'"),
    "zero epochs": (["--epochs", "0"], "epochs must be >= 1"),
    "bad variance": (["--variance", "big"], "argument --variance: must be 'learned' or a number"),
    "bad lr decay": (["--lr-decay", "2"], "lr-decay must be in (0, 1)"),
    "bad ema": (["--ema", "1"], "ema must be in (0, 1)"),
    "zero decay patience": (["--decay-patience", "0"], "decay-patience must be >= 1"),
    "bad patience": (["--patience", "soon"],
                     "argument --patience: must be a whole number of epochs or 'off'"),
    "warm-up with iwae": (["--model", "iwae", "--kl-warmup", "5"],
                          "kl-warmup must be >= 0 and applies to --model vae only"),
    "refine an ae": (["--model", "ae", "--refine-epochs", "2"],
                     "refine-epochs must be >= 0 and applies to --model vae / iwae only"),
    "negative refine": (["--refine-epochs", "-1"], "refine-epochs must be >= 0"),
    "zero k": (["--model", "iwae", "--k", "0"], "k must be >= 1"),
    # a saved model may ask for at most 100,000: a larger K trained a model nothing loads
    "huge k": (["--model", "iwae", "--k", "100001"], "k must be at most 100,000"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2(case):
    args, msg = BAD[case]
    rc, out, err = run_cli(["vector", *args, "--quiet"])
    assert rc == 2
    assert msg in err
    assert len(err.strip().splitlines()) == 1 or "invalid choice" in err


def test_bad_matrix_files(tmp_path):
    one_d = tmp_path / "v.npy"
    np.save(one_d, np.arange(5.0))
    with pytest.raises(ValueError, match="2-D matrix"):
        load_matrix(one_d)
    nan = tmp_path / "n.npy"
    arr = np.ones((20, 3))
    arr[4, 2] = np.nan
    np.save(nan, arr)
    with pytest.raises(ValueError, match="NaN, infinite or beyond-float32 entries "
                                         "\\(the first at index \\[4, 2\\], counted from "
                                         "0\\)"):
        load_matrix(nan)
    rows = _write(tmp_path, "r.csv", "a,b\n\n1,2\n3\n")
    with pytest.raises(ValueError, match=r"r\.csv:4: a row of 1 number, where the first "
                                         r"row \(line 3\) has 2$"):
        load_matrix(rows)
    # an odd first row is the one named, not the second (which every later row agrees with)
    odd_first = _write(tmp_path, "f.csv", "1,2,3\n4,5\n6,7\n8,9\n")
    with pytest.raises(ValueError, match=r"f\.csv:1: a row of 3 numbers, where 3 of the 4 "
                                         r"rows have 2$"):
        load_matrix(odd_first)
    # a NaN on file line 5 (a header and a blank line before): named by its line, not as
    # data row 2 counted from 0
    nans = _write(tmp_path, "nan.csv", "a,b\n\n1,2\n3,4\n5,nan\n6,inf\n")
    with pytest.raises(ValueError, match=r"nan\.csv:5: 2 NaN, infinite or beyond-float32 "
                                         r"entries \(the first in column 2\)$"):
        load_matrix(nans)
    words = _write(tmp_path, "w.csv", "1,2\n3,x\n")
    with pytest.raises(ValueError, match="w.csv:2: not a row of numbers"):
        load_matrix(words)
    for cell in ("1_0", "\uff13"):                # float() reads both: 10 and 3
        odd = _write(tmp_path, "u.csv", f"1,2\n3,{cell}\n")
        with pytest.raises(ValueError, match=r"u\.csv:2: not a row of numbers: '3,.*' "
                                             r"\(numbers are read as ASCII text only"):
            load_matrix(odd)
    from graphvae.vector.data import load_vector_data
    with pytest.raises(ValueError, match=r"use one of digits, mnist or a \.npy, \.csv or "
                                         r"\.txt file$"):
        load_vector_data(str(tmp_path / "x.npz"))
    with pytest.raises(ValueError, match="use .npy, .csv or .txt"):
        load_matrix(_write(tmp_path, "x.parquet", "junk"))
    with pytest.raises(ValueError, match="is empty"):
        check_matrix(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="not binary"):
        check_matrix(np.array([[0, 1], [0.5, 1]]), binary=True)


def test_csv_with_header_is_read(tmp_path):
    path = _write(tmp_path, "m.csv", "\ufeffx,y\n" + "".join(f"{i},{2 * i}\n" for i in range(30)))
    d = load_matrix(path)
    allrows = torch.cat([d.train, d.valid, d.test])
    assert allrows.shape == (30, 2)
    torch.testing.assert_close(allrows[:, 1], 2 * allrows[:, 0])


def test_pandas_default_header_is_a_header_and_its_index_column_an_error(tmp_path):
    """``DataFrame.to_csv(index=False)`` heads the rows with the column names 0..d-1: a
    header, not a data row (the rows below are 30 points on the line y = 2x, z = 1, so an
    extra (0, 1, 2) would break the relation). Two columns named 0,1 stay ambiguous and are
    data; the index column of ``to_csv()`` is a one-line error naming it."""
    body = "".join(f"{i}.5,{2 * i + 1}.0,1.0\n" for i in range(30))
    d = load_matrix(_write(tmp_path, "m.csv", "0,1,2\n" + body))
    allrows = torch.cat([d.train, d.valid, d.test])
    assert allrows.shape == (30, 3)
    torch.testing.assert_close(allrows[:, 1], 2 * allrows[:, 0])
    assert torch.all(allrows[:, 2] == 1)
    d = load_matrix(_write(tmp_path, "two.csv", "0,1\n" + "3,4\n" * 29))
    assert torch.cat([d.train, d.valid, d.test]).shape == (30, 2)
    d = load_matrix(_write(tmp_path, "shifted.csv", "1,2,3\n" + "3,4,5\n" * 29))
    assert torch.cat([d.train, d.valid, d.test]).shape == (30, 3)
    with pytest.raises(ValueError, match=r"idx\.csv:1: the first row ',0,1,2' starts with an "
                                         r"empty cell, as pandas writes an index column"):
        load_matrix(_write(tmp_path, "idx.csv", ",0,1,2\n" + "0,1.5,2,3\n" * 20))


def test_digits_split_is_seeded_and_disjoint():
    a, b = load_vector_data("digits", seed=3), load_vector_data("digits", seed=3)
    torch.testing.assert_close(a.test, b.test)
    assert a.train.size(0) + a.valid.size(0) + a.test.size(0) == 1797
    assert float(a.train.max()) <= 1.0 and not a.is_binary and a.binarized().is_binary


def test_mnist_missing_root_is_clear(tmp_path):
    with pytest.raises(ValueError, match="static binarized MNIST not found"):
        load_mnist(tmp_path)


@pytest.mark.skipif(not (DATA_ROOT / "mnist").is_dir(), reason="../shared/data/mnist absent")
@pytest.mark.slow  # 7 s (reads MNIST); the full suite (CI) runs it
def test_mnist_splits():
    d = load_mnist(DATA_ROOT)
    assert d.train.shape == (50000, 784) and d.valid.shape == (10000, 784)
    assert d.test.shape == (10000, 784)
    # the same pixels as SciPy reads them straight from the file, in the parent process
    from scipy.io import loadmat
    raw = loadmat(DATA_ROOT / "mnist" / "binarized_mnist_train.mat")["X"]
    assert torch.equal(d.train, torch.from_numpy(raw).to(d.train.dtype))
    assert d.is_binary


def test_integers_float32_cannot_hold_are_read_in_float64(tmp_path):
    """Counts near 10⁹ (±10) as int64: float32 rounds them to steps of 64, so two of three
    columns looked constant after --standardize. They are now float64, exactly; integers
    float32 holds (uint8 images) stay float32."""
    rng = np.random.default_rng(0)
    x = (1e9 + rng.normal(0, 10, (200, 3))).round().astype(np.int64)
    t = check_matrix(x)
    assert t.dtype == torch.float64 and torch.equal(t, torch.from_numpy(x).double())
    assert check_matrix(x - 10 ** 9).dtype == torch.float32       # within 2^24
    assert check_matrix(np.full((2, 2), 255, dtype=np.uint8)).dtype == torch.float32
    np.save(tmp_path / "x.npy", x)
    data = load_vector_data(str(tmp_path / "x.npy")).standardized()
    assert data.train.dtype == torch.float64
    assert ((data.scales > 8) & (data.scales < 12)).all(), data.scales   # std 10 each


def test_linear_refuses_resume_and_keeps_another_runs_state(tmp_path):
    """--model linear keeps no state: --resume is refused in one line, and the interrupted
    VAE's state beside --out is kept (it was removed, and a PCA written as if resumed)."""
    state = tmp_path / ".o.state"
    state.mkdir()
    (state / "train.pt").write_bytes(b"a killed VAE's state")
    rc, _, err = run_cli(["vector", "--model", "linear", "--epochs", "1", "--quiet", "--out",
                          str(tmp_path / "o"), "--resume"])
    assert rc == 2 and "--model linear keeps no training state to resume" in err, err
    assert len(err.strip().splitlines()) == 1
    assert (state / "train.pt").read_bytes() == b"a killed VAE's state"
    assert not (tmp_path / "o").exists()


def test_odd_matrices_are_read_or_refused_in_one_line(tmp_path):
    """Constant rows give a linear AE nothing to fit (was ZeroDivisionError, exit 3); long
    doubles are read as float64 (was a TypeError, exit 3); a file name that is not UTF-8
    works with --out (its fingerprint encoded the name)."""
    const = tmp_path / "const.npy"
    np.save(const, np.ones((30, 3)))
    rc, _, err = run_cli(["vector", "--model", "linear", "--data", str(const), "--quiet"])
    assert rc == 2 and "the training rows are all the same" in err, err
    x = np.random.default_rng(0).normal(size=(30, 3))
    wide = tmp_path / "ld.npy"
    np.save(wide, x.astype(np.longdouble))
    np.testing.assert_array_equal(torch.cat([load_matrix(wide).train, load_matrix(wide).valid,
                                             load_matrix(wide).test]).sort(0).values.numpy(),
                                  np.sort(x, 0))
    odd = tmp_path / os.fsdecode(b"\xfb.npy")
    np.save(odd, x)
    rc, _, err = run_cli(["vector", "--model", "ae", "--data", str(odd), "--epochs", "1",
                          "--quiet", "--out", str(tmp_path / "o")])
    assert rc == 0, err


def test_the_likelihood_is_chosen_on_the_training_rows(tmp_path):
    """One non-binary test entry switched the model to a Gaussian decoder; the training rows
    choose it now, and the test entry is then refused by name."""
    from graphvae.vector.data import _split

    x = (np.random.default_rng(0).random((100, 4)) < 0.5).astype(float)
    _, _, test = _split(torch.from_numpy(x), (0.1, 0.1), 0)   # load_matrix's split, seed 0
    x[int(test[0]), 0] = 0.5
    np.save(tmp_path / "x.npy", x)
    rc, _, err = run_cli(["vector", "--data", str(tmp_path / "x.npy"), "--epochs", "1",
                          "--quiet"])
    assert rc == 2 and "test split is not binary" in err, err


def test_standardized_run_gives_the_mse_in_the_original_units(tmp_path):
    """Two equal columns have one scale s: the MSE in the original units is s² times the
    standardised one (s from the training rows, as --standardize takes it)."""
    col = np.random.default_rng(1).normal(5.0, 30.0, size=(60, 1))
    np.save(tmp_path / "x.npy", np.hstack([col, col]))
    rc, _, err = run_cli(["vector", "--data", str(tmp_path / "x.npy"), "--standardize",
                          "--model", "ae", "--epochs", "2", "--quiet", "--out",
                          str(tmp_path / "o")])
    assert rc == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    s = float(load_vector_data(str(tmp_path / "x.npy")).standardized().scales[0])
    assert 20 < s < 40
    assert m["test_mse_original_units"] == pytest.approx(s * s * m["test_mse"], rel=1e-5)


def test_original_units_past_float32s_range(tmp_path):
    """The same data times 2⁶⁶ standardise to the same values, so the run is the same and
    the MSE in original units is 2¹³² ≈ 5.4e39 times as large, past float32's 3.4e38 (it
    was reported as null), and −log p(x) grows by 3 · 66 · log 2 (three columns)."""
    x = np.random.default_rng(1).random((100, 3)).astype(np.float32)
    runs = []
    for name, data in (("one", x), ("big", x * np.float32(2.0 ** 66))):
        np.save(tmp_path / f"{name}.npy", data)
        rc, _, err = run_cli(["vector", "--data", str(tmp_path / f"{name}.npy"),
                              "--standardize", "--hidden", "8", "--epochs", "2",
                              "--nll-samples", "5", "--quiet", "--out", str(tmp_path / name)])
        assert rc == 0, err
        runs.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    one, big = runs
    assert big["test_mse"] == one["test_mse"] and big["test_nll"] == one["test_nll"]
    assert big["test_mse_original_units"] == pytest.approx(
        2.0 ** 132 * one["test_mse_original_units"], rel=1e-9)
    assert big["test_nll_original_units"] - one["test_nll_original_units"] == pytest.approx(
        3 * 66 * math.log(2), rel=1e-9)


def test_text_matrices_headers_and_separators(tmp_path):
    """A first row is a header only when it holds no number: a bad first data row is an
    error naming line 1 (it was dropped as a header); np.savetxt's space-separated rows
    are read like commas."""
    with pytest.raises(ValueError, match=r"bad\.csv:1: not a row of numbers"):
        load_matrix(_write(tmp_path, "bad.csv", "0.1,0.2,x\n" + "1,2,3\n" * 20))
    x = np.random.default_rng(0).normal(size=(20, 3))
    np.savetxt(tmp_path / "sp.txt", x)
    np.savetxt(tmp_path / "tab.txt", x, delimiter="\t", header="a b c", comments="")
    for name in ("sp.txt", "tab.txt"):
        d = load_matrix(tmp_path / name)
        rows = torch.cat([d.train, d.valid, d.test]).numpy()
        np.testing.assert_allclose(np.sort(rows, 0), np.sort(x, 0), rtol=1e-6)


def test_flags_a_model_does_not_read_are_noted_and_do_not_tie_its_state(tmp_path):
    """--k for a VAE, --corruption / --noise for an AE, --variance with the Bernoulli
    likelihood, network flags for the linear model: one note each on stderr, and a training
    state is tied only to what the run reads (nll_samples is read after training)."""
    from graphvae.vector.run import VectorRunConfig

    rc, _, err = run_cli(["vector", "--model", "ae", "--k", "50", "--noise", "0.5",
                          "--epochs", "1", "--quiet"])
    assert rc == 0
    assert err.strip().splitlines() == [
        "graphvae vector: note: --k applies only to --model iwae; ignored here",
        "graphvae vector: note: --noise applies only to --model dae; ignored here"]
    vae = VectorRunConfig(model="vae")
    same = vae.replace(num_samples=50, corruption="masking", noise_level=0.5, nll_samples=9)
    assert same.training_settings() == vae.training_settings()
    assert vae.replace(epochs=7).training_settings() != vae.training_settings()
    iwae = VectorRunConfig(model="iwae")
    assert iwae.replace(num_samples=50).training_settings() != iwae.training_settings()
    # a --latent-dim equal to the data's default ties the state of a run without it
    from graphvae.vector.data import VectorData
    from graphvae.vector.run import default_latent_dim, resolved
    rows = torch.rand(30, 20, generator=torch.Generator().manual_seed(0))
    data = VectorData(rows[:20], rows[20:25], rows[25:], "r")
    assert default_latent_dim(20) == 10
    ties = resolved(vae, data).training_settings()
    assert resolved(vae.replace(latent_dim=10), data).training_settings() == ties
    assert resolved(vae.replace(latent_dim=9), data).training_settings() != ties
    assert resolved(vae.replace(device="cpu:0"), data).training_settings() == ties
    bern = VectorRunConfig(likelihood="bernoulli", variance=0.5)
    assert bern.ignored_settings() == [
        "--variance applies only to the gaussian likelihood; ignored here"]
    assert VectorRunConfig(model="linear", hidden=(3,)).ignored_settings() == [
        "--hidden applies only to the neural models; ignored here"]


def test_variance_on_data_that_picks_bernoulli_is_noted_and_does_not_tie_the_state(tmp_path):
    """Without --likelihood, 0/1 training rows pick Bernoulli, which never reads --variance:
    no note was printed, and the state recorded the variance, so a resume with another
    --variance was refused ('--variance 0.7 here, --variance 0.5 in the state'). With the
    Gaussian likelihood given, the variance is read and still ties the state."""
    from graphvae.vector.run import VectorRunConfig, run_vector

    x = (np.random.default_rng(0).random((200, 6)) > 0.5).astype(np.float32)
    np.save(tmp_path / "bin.npy", x)
    rc, _, err = run_cli(["vector", "--data", str(tmp_path / "bin.npy"), "--variance", "0.5",
                          "--epochs", "1", "--quiet"])
    assert rc == 0 and err.strip().splitlines() == [
        "graphvae vector: note: --variance applies only to the gaussian likelihood; "
        "ignored here"], err
    data = load_vector_data(str(tmp_path / "bin.npy"))
    first = VectorRunConfig(variance=0.5, epochs=2, hidden=(4,))
    run_vector(data, first, progress=False, state=tmp_path / "s")
    run_vector(data, first.replace(variance=0.7), progress=False, state=tmp_path / "s",
               resume=True)                                     # not tied: resumes (done)
    # the likelihood the data picks, spelled out, is the same run (it was refused: "--
    # likelihood 'bernoulli' here, no --likelihood in the state")
    run_vector(data, first.replace(likelihood="bernoulli"), progress=False,
               state=tmp_path / "s", resume=True)
    gauss = first.replace(likelihood="gaussian")
    run_vector(data, gauss, progress=False, state=tmp_path / "g")
    with pytest.raises(ValueError, match="other settings"):
        run_vector(data, gauss.replace(variance=0.7), progress=False, state=tmp_path / "g",
                   resume=True)
    rc, _, err = run_cli(["vector", "--model", "ae", "--nll-samples", "10", "--epochs", "1",
                          "--quiet"])
    assert rc == 0 and err.strip().splitlines() == [
        "graphvae vector: note: --nll-samples applies only to --model vae / iwae; ignored "
        "here"], err


def test_salt_and_pepper_needs_data_in_the_unit_interval(tmp_path):
    """Its noise is 0 or 1: on standardised or raw data it would corrupt towards values
    outside the data's range, so such data is refused in one line; 0-1 data trains."""
    rc, _, err = run_cli(["vector", "--model", "dae", "--corruption", "salt_and_pepper",
                          "--standardize", "--epochs", "1", "--quiet"])
    assert rc == 2 and "salt-and-pepper noise sets entries to 0 or 1" in err, err
    assert len(err.strip().splitlines()) == 1
    rc, _, err = run_cli(["vector", "--model", "dae", "--corruption", "salt_and_pepper",
                          "--binarize", "--epochs", "1", "--quiet"])
    assert rc == 0, err


def test_misnamed_or_scalar_npy_files_are_named_for_what_they_are(tmp_path):
    scalar = tmp_path / "s.npy"
    np.save(scalar, np.float64(3.0))
    with pytest.raises(ValueError, match=r"2-D matrix \(rows = data points\), got shape \(\)"):
        load_matrix(scalar)
    text = tmp_path / "t.npy"
    text.write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"t\.npy: not a \.npy file \(no NumPy header\)"):
        load_matrix(text)
    np.savez(tmp_path / "z.npz", a=np.ones((3, 3)))
    (tmp_path / "z.npz").rename(tmp_path / "z.npy")
    with pytest.raises(ValueError, match=r"no NumPy header; it is a zip archive, such as "
                                         r"\.npz\)"):
        load_matrix(tmp_path / "z.npy")


def test_two_runs_of_one_seed_write_the_same_model_file(tmp_path):
    """model.pt held the fit's timings (and, as every torch file, a zip folder named after
    its temporary path): two runs of one seed wrote different bytes."""
    for name in ("a", "b"):
        rc, _, err = run_cli(["vector", "--epochs", "2", "--nll-samples", "10", "--quiet", "--out",
                              str(tmp_path / name)])
        assert rc == 0, err
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()


def test_vector_prepares_binarized_then_standardized_data_prints_scalars_and_cleans_up(
        tmp_path, monkeypatch):
    """--binarize --standardize thresholds first, then scales each column to mean 0 on the
    training rows (the other order left 0/1 columns of mean > 0); stdout's JSON holds the
    scalar metrics only (metrics.json has the rest); the folder's manifest names the
    command; a finished run leaves no training-state folder beside --out."""
    import graphvae.vector.run as vrun

    seen = {}
    real = vrun.run_vector

    def spy(data, cfg, stage, **kwargs):
        seen["data"] = data
        return real(data, cfg, stage, **kwargs)
    monkeypatch.setattr(vrun, "run_vector", spy)
    out = tmp_path / "o"
    rc, printed, err = run_cli(["vector", "--quiet", "--model", "ae", "--epochs", "1",
                                "--binarize", "--standardize", "--out", str(out)])
    assert rc == 0, err
    train = seen["data"].train
    varying = train.std(0) > 0
    assert bool(varying.any())
    assert torch.allclose(train[:, varying].mean(0), torch.zeros(int(varying.sum())),
                          atol=1e-5)
    assert all(len(torch.unique(train[:, j])) <= 2 for j in range(train.size(1)))
    shown = json.loads(printed)
    assert all(isinstance(v, int | float | str) for v in shown.values())
    full = json.loads((out / "metrics.json").read_text())
    assert any(isinstance(v, dict | list) for v in full.values())
    assert {k: v for k, v in full.items() if k in shown} == shown
    assert json.loads((out / "manifest.json").read_text())["command"] == "graphvae vector"
    assert not (tmp_path / ".o.state").exists()
