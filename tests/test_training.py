"""The one training loop: selection, callbacks, atomic checkpoints, and resuming each job to
the result of an uninterrupted run."""

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import graphvae.training.loop as training
from graphvae.bounds import BoundEstimate
from graphvae.devices import resolve_device
from graphvae.errors import DataError
from graphvae.io import save_atomic, write_json
from graphvae.training import (
    EMA,
    Callback,
    EarlyStopping,
    FullBatch,
    KLWarmup,
    PlateauDecay,
    Shuffled,
    fit,
)

ROOT = Path(__file__).resolve().parents[1]


class Quadratic(torch.nn.Module):
    """loss = (w − 3)², value = −loss; the batch is ignored."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.kl_weight = 1.0

    def forward(self, batch, generator=None):
        loss = (self.w - 3.0).pow(2)
        return BoundEstimate(-loss.detach().reshape(1), loss, -loss.detach(), loss.new_zeros(()))


def test_fit_restores_best_validation_epoch_and_stops_early(tmp_path):
    m = Quadratic()
    scores = iter([0.1, 0.5, 0.9, 0.2, 0.1, 0.0, 0.0, 0.0])
    seen = []

    def evaluate():
        seen.append(m.w.item())
        return {"score": next(scores)}

    res = fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.25), epochs=8,
              evaluate=evaluate, callbacks=[EarlyStopping(3)], progress=False)
    assert res.best_epoch == 3 and res.epochs == 6      # stopped 3 evaluations after the best
    assert res.weights_epoch == 3                       # the restored weights
    assert m.w.item() == pytest.approx(seen[2])
    # SGD on (w − 3)² with lr 0.25 halves the distance to 3 every step: 1.5, 2.25, 2.625
    assert seen[:3] == pytest.approx([1.5, 2.25, 2.625])
    assert res.column("score") == [0.1, 0.5, 0.9, 0.2, 0.1, 0.0]


def test_a_run_stopped_between_evaluations_is_evaluated_at_its_last_epoch():
    """Converged stops at epoch 3 (losses 9, 2.25, 0.5625: the last change 1.6875 is within
    10 × 0.5625), between evaluations every 2 epochs. The last epoch, w = 2.625, scores
    −0.140625, better than epoch 2's −0.5625 at w = 2.25; it was never evaluated, and the
    epoch-2 weights were restored."""
    from graphvae.training import Converged

    m = Quadratic()
    res = fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.25), epochs=10,
              evaluate=lambda: {"score": -float((m.w.detach() - 3) ** 2)}, eval_every=2,
              callbacks=[Converged(tol=10.0, every=1)], progress=False)
    assert res.epochs == 3 and res.column("loss") == [9.0, 2.25, 0.5625]
    assert [r["epoch"] for r in res.history if "score" in r] == [2.0, 3.0]
    assert res.weights_epoch == res.best_epoch == 3 and m.w.item() == 2.625
    assert res.best_score == -0.140625


@pytest.mark.parametrize("patience, eval_every, stop", [
    (0, 1, 4),     # the first evaluation that does not improve (epoch 4; 1-3 improve)
    (2, 1, 5),     # 2 epochs after the best (3)
    (2, 5, 10),    # evaluations at 5 (best) and 10: 5 epochs later, past the patience
    (12, 5, 20),   # 15 epochs after the best at 5, first evaluation past 12
])
def test_early_stopping_counts_epochs_since_the_best(patience, eval_every, stop):
    """Patience is epochs since the best evaluation, checked at evaluations (it counted
    evaluations, so with eval-every 10 a patience of 2 waited 20 epochs), and patience 0
    no longer stops after an evaluation that improved."""
    m = Quadratic()
    scores = iter([0.1, 0.5, 0.9] + [0.0] * 30) if eval_every == 1 else \
        iter([0.9] + [0.0] * 30)
    res = fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.25), epochs=30,
              evaluate=lambda: {"score": next(scores)}, eval_every=eval_every,
              callbacks=[EarlyStopping(patience)], progress=False)
    assert res.epochs == stop


def test_the_last_epoch_is_evaluated_when_eval_every_does_not_divide_the_epochs():
    """5 epochs, evaluated every 2: at 2, 4 and the last, 5 (scores 1, 2, 3), whose
    weights are the best and kept."""
    m = Quadratic()
    scores = iter([1.0, 2.0, 3.0])
    res = fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.25), epochs=5,
              evaluate=lambda: {"score": next(scores)}, eval_every=2, progress=False)
    assert [r["epoch"] for r in res.history if "score" in r] == [2.0, 4.0, 5.0]
    assert res.best_epoch == res.weights_epoch == 5


def test_a_tied_validation_score_keeps_the_earlier_epoch():
    """Scores 1, 2, 2, 1: the best is the first 2 (epoch 2), not the tie after it."""
    m = Quadratic()
    scores = iter([1.0, 2.0, 2.0, 1.0])
    res = fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.25), epochs=4,
              evaluate=lambda: {"score": next(scores)}, progress=False)
    assert res.best_epoch == res.weights_epoch == 2
    assert m.w.item() == pytest.approx(2.25)      # the weights after two halvings of 3


def test_fit_without_restore_best_keeps_the_last_weights():
    """Scores peak at epoch 2 of 4: the best epoch is still reported, but the weights stay
    the fourth step's, w = 3 − 3/2⁴ (SGD lr 0.25 halves the distance to 3 each step)."""
    m = Quadratic()
    scores = iter([0.1, 0.9, 0.2, 0.1])
    res = fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.25), epochs=4,
              evaluate=lambda: {"score": next(scores)}, restore_best=False, progress=False)
    assert res.best_epoch == 2 and res.epochs == 4 and res.weights_epoch == 4
    assert m.w.item() == pytest.approx(3 - 3 / 16)


def test_plateau_decay_cuts_the_rate_and_returns_to_the_best_weights():
    m = Quadratic()
    opt = torch.optim.SGD(m.parameters(), lr=0.25)
    scores = iter([1.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0])
    seen = []

    def evaluate():
        seen.append(m.w.item())
        return {"score": next(scores)}

    res = fit(m, FullBatch(None), opt, epochs=7, evaluate=evaluate,
              callbacks=[PlateauDecay(0.5, patience=2, min_lr=0.1)], progress=False)
    # epochs 2, 3 are stale: after epoch 3, lr 0.125 and back to w = 1.5 (epoch 1's weights)
    assert res.column("lr") == [0.25, 0.25, 0.25, 0.125, 0.125, 0.125]
    assert seen[3] == pytest.approx(1.5 + 0.125 * 2 * (3 - 1.5))
    # epochs 5, 6 stale again: 0.0625 < min_lr 0.1 stops the run after epoch 6
    assert res.epochs == 6 and res.best_epoch == 4 and m.w.item() == pytest.approx(seen[3])


def test_ema_averages_from_the_initial_weights():
    """avg ← d·avg + (1 − d)·w after each step, avg₀ = w₀ = 0; SGD lr ½ gives w = 1.5, 2.25."""
    m = Quadratic()
    fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.25), epochs=2,
        callbacks=[EMA(0.5)], progress=False)
    avg1 = 0.5 * 0.0 + 0.5 * 1.5
    assert m.w.item() == pytest.approx(0.5 * avg1 + 0.5 * 2.25)


def test_ema_without_restoring_the_best_ends_on_the_last_average():
    """With evaluation but restore_best=False the model ended on the live weights (the
    average was swapped back after each evaluation); it ends on the last average now, and
    with restore_best on the best evaluated average. Same steps as above: w = 1.5, 2.25,
    averages 0.75, 1.5; the first evaluation scores best."""
    for restore, expected in ((False, 0.5 * 0.75 + 0.5 * 2.25), (True, 0.75)):
        m = Quadratic()
        scores = iter([1.0, 0.0])
        fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.25), epochs=2,
            evaluate=lambda s=scores: {"score": next(s)}, callbacks=[EMA(0.5)],
            restore_best=restore, progress=False)
        assert m.w.item() == pytest.approx(expected), restore


class RowQuadratic(Quadratic):
    """One value per row of the batch, as the vector models give."""

    def forward(self, batch, generator=None):
        est = super().forward(batch)
        return BoundEstimate(est.value.expand(len(batch)), est.surrogate, est.recon, est.kl)


@pytest.mark.parametrize("warmup, expected", [
    # batches start at rows 0, 4, 8 of 10: t = epoch − 1 + row / 10, weight = t / 2
    (KLWarmup(2), [0.0, 0.2, 0.4, 0.5, 0.7, 0.9]),
    # one epoch to weight 0.5, then held: 0.5 · min(1, t)
    (KLWarmup(1, weight=0.5), [0.0, 0.2, 0.4, 0.5, 0.5, 0.5]),
])
def test_kl_warmup_weights_by_the_share_of_rows_seen(warmup, expected):
    """The weight ramps over the warm-up epochs to its target, holds it, and goes back to 1
    (the true bound) at the end."""
    m = RowQuadratic()
    weights = []

    class Spy(training.Callback):
        def on_step_end(self, state):
            weights.append(m.kl_weight)

    fit(m, Shuffled(torch.zeros(10, 1), 4), torch.optim.SGD(m.parameters(), lr=0.1), epochs=2,
        callbacks=[warmup, Spy()], progress=False)
    assert weights == pytest.approx(expected)
    assert m.kl_weight == 1.0


def test_fit_reports_divergence():
    class NaN(Quadratic):
        def forward(self, batch, generator=None):
            est = super().forward(batch)
            return BoundEstimate(est.value, est.surrogate * float("nan"), est.recon, est.kl)

    m = NaN()
    # the very first loss is NaN, before any step: the learning rate is not blamed
    with pytest.raises(FloatingPointError, match="^the loss is nan at the first step, before "
                                                 "any update, so the learning rate is not"):
        fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=3,
            progress=False)

    class LateNaN(Quadratic):               # finite at the first step, NaN from the second
        calls = 0

        def forward(self, batch, generator=None):
            est = super().forward(batch)
            self.calls += 1
            bad = float("nan") if self.calls > 1 else 1.0
            return BoundEstimate(est.value, est.surrogate * bad, est.recon, est.kl)

    m = LateNaN()
    with pytest.raises(FloatingPointError, match="^training diverged: the loss is nan at "
                                                 "epoch 2; try a lower learning rate$"):
        fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=3,
            progress=False)


def test_a_last_step_to_infinite_weights_is_divergence():
    """ToyBound's one step w += lr·batch, 4·10³⁸, overflows float32: the step's own
    loss was finite, and no later step checked the weights, so fit returned them."""
    from conftest import ToyBound
    model = ToyBound()
    with pytest.raises(FloatingPointError, match="training diverged at epoch 1: its last step "
                                                 "left weights that are not finite"):
        fit(model, [torch.full((3,), 4.0)], torch.optim.SGD(model.parameters(), lr=1e38),
            epochs=1, progress=False)
    assert torch.isinf(model.w).all()


def test_resume_refuses_another_config(tmp_path):
    m = Quadratic()
    state = tmp_path / "s.pt"
    fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=2,
        checkpoint=state, config={"lr": 0.1}, progress=False)
    with pytest.raises(ValueError, match=r"s\.pt: the training state belongs to a run with "
                                         r"other settings"):
        fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=2,
            checkpoint=state, resume=True, config={"lr": 0.2}, progress=False)


def test_settings_diff_names_what_differs_bounded():
    """The refusal names up to three differing settings, the data once, keys only the file
    has, and survives values a file may hold (a tensor, which == cannot make a bool of)."""
    from graphvae.training.state import _settings_diff

    now = {"epochs": 5, "lr": 0.1, "data": "b", "graph": "h2"}
    assert _settings_diff({"epochs": 4, "lr": 0.1, "data": "a", "graph": "h1"}, now) == (
        "epochs: 5 here, 4 in the state; other data")
    assert _settings_diff([1, 2], now) == "it records none"
    assert _settings_diff({**now, "old": [1]}, now) == "'old': unset here, [1] in the state"
    many = {f"k{i}": i for i in range(8)}
    assert _settings_diff({}, many) == ("k0: 0 here, unset in the state; k1: 1 here, unset "
                                        "in the state; k2: 2 here, unset in the state; 5 more")
    text = _settings_diff({"lr": torch.eye(40)}, {"lr": 0.1})
    assert text.startswith("lr: 0.1 here, tensor(") and "\n" not in text and len(text) < 400


def test_settings_diff_names_the_flags_a_user_gave():
    """With a config class's ``as_given`` the refusal reads as the command line: vector's
    IWAE K is ``--k`` (its field is ``num_samples``), a switch that defaults on is named by
    its ``--no-`` flag, an unset option as ``no --prior``, widths comma-separated; keys no
    flag sets keep the plain form, and values from the file stay bounded (an integer past
    str()'s 4,300 digits is named by its size, where it ended the message in a ValueError)."""
    from graphvae.tasks.generation import GenerationConfig
    from graphvae.tasks.link_prediction import LinkPredConfig
    from graphvae.training.state import _settings_diff
    from graphvae.vector.config import VectorRunConfig

    vec = VectorRunConfig.as_given
    assert _settings_diff({"num_samples": 50, "bf16": False, "data": "a"},
                          {"num_samples": 5, "bf16": True, "data": "b"}, vec) == (
        "--k 5 here, --k 50 in the state; --bf16 here, no --bf16 in the state; other data")
    assert _settings_diff({"reweight": True, "seed": 1}, {"reweight": False, "seed": 2},
                          LinkPredConfig.as_given) == (
        "--no-reweight here, no --no-reweight in the state; seed: 2 here, 1 in the state")
    gen = GenerationConfig.as_given
    assert _settings_diff({"hidden": [32]}, {"hidden": (64, 64)}, gen) == (
        "--hidden 64,64 here, --hidden 32 in the state")
    assert _settings_diff({}, {"prior": None}, gen) == "no --prior here, unset in the state"
    assert gen("model", "seq-vae") == "--model 'seq-vae'" and gen("task", 1) is None
    assert gen("epochs", "20") == "--epochs '20'"   # a file's string is not an int
    huge = 10 ** 5000
    text = _settings_diff({"epochs": huge, "lr": [huge]}, {"epochs": 5, "lr": 0.1}, gen)
    assert text == ("--epochs 5 here, --epochs <an integer of 16,610 bits> in the state; "
                    "--lr 0.1 here, --lr [<an integer of 16,610 bits>] in the state")


def test_resume_from_a_damaged_state_is_one_error_naming_the_file(tmp_path):
    """A state with the run's config whose contents are damaged (a key gone, a tensor of
    another shape, an RNG state of the wrong type, a history that is not records) used to
    end as an internal error (KeyError, RuntimeError, TypeError); the file is kept."""
    def run(state, resume):
        m = Quadratic()
        return fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=3,
                   evaluate=lambda: {"score": 0.0}, checkpoint=state, resume=resume,
                   config={"lr": 0.1}, progress=False)

    good = tmp_path / "s.pt"
    run(good, False)
    damages = {
        "callbacks gone": lambda ck: ck.pop("callbacks"),
        "weights of another shape": lambda ck: ck["model"].update(
            {k: torch.zeros(7) for k in ck["model"]}),
        "rng not a byte tensor": lambda ck: ck["rng"].update(torch=torch.zeros(3)),
        "history of numbers": lambda ck: ck.update(history=[1, 2]),
        "best without its score": lambda ck: ck["best"].pop("score"),
    }
    for name, damage in damages.items():
        ck = torch.load(good, weights_only=True)
        damage(ck)
        bad = tmp_path / f"{name.replace(' ', '_')}.pt"
        torch.save(ck, bad)
        with pytest.raises(ValueError, match=rf"{bad.name}: a damaged training state \(.*\); "
                                             rf"delete it to start the run afresh"):
            run(bad, True)
        assert bad.is_file(), name
    assert run(good, True).epochs == 3                  # the undamaged state resumes


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_atomic({"a": 1}, path)
    write_json({"b": 2}, tmp_path / "m.json")

    def broken(obj, f):
        f.write(b"half")                        # save_atomic gives torch an open file
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        save_atomic({"a": 2}, path)
    monkeypatch.undo()
    assert torch.load(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "m.json"]


def test_atomic_save_writes_the_same_bytes_for_the_same_object(tmp_path):
    """torch named the zip's inner folder after the temporary path it was given
    (".ck.pt.<pid>-<random>/data.pkl"): two runs of one seed wrote different model.pt
    files, and manifest.json different digests."""
    import zipfile
    obj = {"w": torch.arange(6.0).view(2, 3), "epoch": 3}
    save_atomic(obj, tmp_path / "a.pt")
    save_atomic(obj, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.pt") as z:
        assert all(name.startswith("archive/") for name in z.namelist())
    got = torch.load(tmp_path / "b.pt", weights_only=True)
    assert torch.equal(got["w"], obj["w"]) and got["epoch"] == 3


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("cpu:0") == torch.device("cpu", 0)
    with pytest.raises(ValueError):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="the CPU is cpu"):
        resolve_device("cpu:3")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
    else:
        count = torch.cuda.device_count()
        with pytest.raises(ValueError, match=f"torch sees {count} CUDA device"):
            resolve_device(f"cuda:{count}")


# ------------------------------------------------------------------------ kill and resume
class Killed(Exception):
    pass


@contextlib.contextmanager
def killed_at(epoch: int):
    """Abort the loop as a kill would, in the middle of ``epoch`` (before its checkpoint)."""
    real = training._train_epoch

    def train_epoch(state, *args):
        if state.epoch == epoch:
            raise Killed
        real(state, *args)

    training._train_epoch = train_epoch
    try:
        yield
    finally:
        training._train_epoch = real


@contextlib.contextmanager
def epochs_trained():
    """The epochs the loop trains inside the block, in order (a resume that retrained from
    the start would give the same seeded result: this tells them apart)."""
    real, seen = training._train_epoch, []

    def train_epoch(state, *args):
        seen.append(state.epoch)
        real(state, *args)

    training._train_epoch = train_epoch
    try:
        yield seen
    finally:
        training._train_epoch = real


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_killed_and_resumed_link_prediction_equals_an_uninterrupted_run(tmp_path,
                                                                       monkeypatch):
    import graphvae.tasks.link_prediction as lp
    from graphvae.datasets import make_sbm_graph
    from graphvae.tasks.link_prediction import PRESETS, run_link_prediction
    # the last write is the 25th epoch's however slow the machine (not a 300 s one)
    monkeypatch.setattr(lp, "STATE_SECONDS", None)

    data = make_sbm_graph(seed=0)
    cfg = PRESETS["vgae"].replace(epochs=60, patience=40)
    whole = run_link_prediction(data, cfg, seed=3, progress=False)
    state = tmp_path / "lp.pt"
    with killed_at(41), pytest.raises(Killed):
        run_link_prediction(data, cfg, seed=3, progress=False, state=state)
    assert torch.load(state, weights_only=True)["epoch"] == 25      # the last checkpoint
    again = run_link_prediction(data, cfg, seed=3, progress=False, state=state, resume=True)
    assert again.fit.resumed_from == 25 and again.metrics["resumed_from_epoch"] == 25
    assert whole.metrics["resumed_from_epoch"] == 0
    assert _same_weights(whole.model, again.model)
    for key in ("test_auc", "test_ap", "val_auc", "best_epoch", "epochs", "train_bound_nats"):
        assert again.metrics[key] == whole.metrics[key], key


def test_link_prediction_state_is_not_resumed_on_another_graph(tmp_path):
    """Same settings, same node count and feature width (so every weight shape fits), another
    edge list: the state is refused in one line and kept; the same graph resumes."""
    from graphvae.datasets import make_sbm_graph
    from graphvae.tasks.link_prediction import PRESETS, graph_fingerprint, run_link_prediction

    a, b = make_sbm_graph(seed=0), make_sbm_graph(seed=1)
    assert a.num_nodes == b.num_nodes and a.x.shape == b.x.shape
    assert graph_fingerprint(a) != graph_fingerprint(b)
    assert graph_fingerprint(a) == graph_fingerprint(make_sbm_graph(seed=0))
    cfg = PRESETS["vgae"].replace(epochs=30)
    state = tmp_path / "lp.pt"
    with killed_at(27), pytest.raises(Killed):
        run_link_prediction(a, cfg, seed=3, progress=False, state=state)
    saved = state.read_bytes()
    with pytest.raises(ValueError, match="other settings") as info:
        run_link_prediction(b, cfg, seed=3, progress=False, state=state, resume=True)
    assert "\n" not in str(info.value) and state.read_bytes() == saved
    again = run_link_prediction(a, cfg, seed=3, progress=False, state=state, resume=True)
    assert again.fit.resumed_from == 25


def test_a_refused_resume_names_the_preset_the_state_was_trained_with(tmp_path):
    """A --model best run, killed, then resumed as --model gae: the refusal lists the first
    differences as flags that can be typed (--hidden '' for none) and says the state's
    settings are --model best's; resumed as best, it goes on."""
    from graphvae.datasets import make_sbm_graph
    from graphvae.tasks.link_prediction import PRESETS, preset_of, run_link_prediction

    assert {preset_of(p.training_settings()) for p in PRESETS.values()} == set(PRESETS)
    assert preset_of(PRESETS["best"].replace(epochs=30).training_settings()) is None
    data, state = make_sbm_graph(seed=0), tmp_path / "lp.pt"
    with killed_at(27), pytest.raises(Killed):              # a state every 25 epochs
        run_link_prediction(data, PRESETS["best"], progress=False, state=state)
    with pytest.raises(ValueError) as info:
        run_link_prediction(data, PRESETS["gae"], progress=False, state=state, resume=True)
    assert str(info.value) == (
        f"{state}: the training state belongs to a run with other settings (--encoder 'gcn' "
        f"here, --encoder 'gnae' in the state; --hidden 32 here, --hidden '' in the state; "
        f"--latent 16 here, --latent 128 in the state; 5 more); its settings are those of "
        f"--model best; delete it or rerun with the same ones")
    with pytest.raises(ValueError) as info:       # no preset here: still named
        run_link_prediction(data, PRESETS["best"].replace(lr=0.001), progress=False,
                            state=state, resume=True)
    assert str(info.value).endswith("(--lr 0.001 here, --lr 0.005 in the state); its "
                                    "settings are those of --model best; delete it or "
                                    "rerun with the same ones")
    with killed_at(28), pytest.raises(Killed):              # resumed at 25, on to 28
        run_link_prediction(data, PRESETS["best"], progress=False, state=state, resume=True)


def test_generation_state_is_not_resumed_on_other_graphs(tmp_path):
    """Same settings, graphs of the same sizes, other edges: the state is refused in one line
    and kept; the same graphs resume."""
    import networkx as nx

    from graphvae.datasets.graphsets import GraphSet

    def graphs(make):
        return GraphSet("five", [make(5) for _ in range(6)], [make(5)], [make(5)])

    paths, stars = graphs(nx.path_graph), graphs(lambda n: nx.star_graph(n - 1))
    assert paths.fingerprint() == graphs(nx.path_graph).fingerprint()
    assert paths.fingerprint() != stars.fingerprint()
    state = tmp_path / "gen.pt"
    cfg = _killed_generation(paths, state)
    saved = state.read_bytes()
    with pytest.raises(ValueError, match="other settings") as info:
        _train_generation(cfg, stars, state, resume=True)
    assert "\n" not in str(info.value) and state.read_bytes() == saved
    assert _train_generation(cfg, paths, state, resume=True).resumed_from > 0


def _train_generation(cfg, graphs, state, resume=False):
    from graphvae.tasks.generation import build_generation_model, train_generation_model

    return train_generation_model(build_generation_model(cfg, graphs), graphs, cfg,
                                  torch.device("cpu"), progress=False, state=state,
                                  resume=resume)


def _killed_generation(graphs, state):
    """A 4-epoch generation run killed in its third epoch; its config."""
    from graphvae.tasks.generation import GenerationConfig

    cfg = GenerationConfig(epochs=4, batch_size=3, eval_every=1)
    with killed_at(3), pytest.raises(Killed):
        _train_generation(cfg, graphs, state)
    return cfg


def test_generation_resume_names_the_changed_setting_and_allows_scoring_ones(tmp_path):
    """A state is tied to what shapes training: another --epochs is refused with the
    setting named; another sample count, number of draws, kernel, or a flag this model
    ignores (--bound for a oneshot-vae) resumes the same training."""
    import networkx as nx

    from graphvae.datasets.graphsets import GraphSet

    paths = GraphSet("five", [nx.path_graph(5) for _ in range(6)], [nx.path_graph(5)],
                     [nx.path_graph(5)])
    state = tmp_path / "gen.pt"
    cfg = _killed_generation(paths, state)
    with pytest.raises(ValueError, match=r"other settings \(--epochs 5 here, --epochs 4 in "
                                         r"the state\); delete it"):
        _train_generation(cfg.replace(epochs=5), paths, state, resume=True)
    scoring = cfg.replace(num_samples=3, draws=2, protocol="rbf", bound="permutation")
    assert scoring.ignored_settings() == [
        "--bound applies only to --model graphvae; ignored here"]
    assert _train_generation(scoring, paths, state, resume=True).resumed_from > 0
    from graphvae.devices import resolve_device
    if resolve_device("auto").type == "cpu":   # --device auto is this run's CPU
        assert _train_generation(cfg.replace(device="auto"), paths, state,
                                 resume=True).resumed_from > 0


def test_a_state_of_the_previous_version_spelt_otherwise_still_resumes(tmp_path):
    """States written before the settings were spelt canonically hold what the command
    gave: --device auto, --generated on the default set, a preset's --negatives that
    --estimator dense ignores, vector's default --latent-dim written out. The first
    canonical version compared those with its own spelling and refused the same command
    ("--device 'cpu' here, --device 'auto' in the state"); the saved config is now spelt
    as the run spells its own before the comparison. A real difference is still named."""
    import networkx as nx

    from graphvae.datasets.graphsets import GraphSet
    from graphvae.devices import resolve_device
    from graphvae.tasks.link_prediction import LinkPredConfig
    from graphvae.vector.config import VectorRunConfig
    from graphvae.vector.data import VectorData
    from graphvae.vector.run import resolved

    paths = GraphSet("five", [nx.path_graph(5) for _ in range(6)], [nx.path_graph(5)],
                     [nx.path_graph(5)])
    state = tmp_path / "gen.pt"
    cfg = _killed_generation(paths, state)
    ck = torch.load(state, weights_only=True)
    assert (ck["config"]["device"], ck["config"]["generated"]) == ("cpu", False)
    ck["config"].update(generated=True)               # as 6118939 wrote --generated
    if resolve_device("auto").type == "cpu":
        ck["config"].update(device="auto")            # and --device auto
    torch.save(ck, state)
    for spelt in (cfg.replace(generated=True), cfg):
        assert _train_generation(spelt, paths, state, resume=True).resumed_from > 0
        torch.save(ck, state)
    with pytest.raises(ValueError, match=r"other settings \(--epochs 5 here, --epochs 4 in "):
        _train_generation(cfg.replace(epochs=5), paths, state, resume=True)
    # linkpred: the best preset's negatives, which --estimator dense does not read
    dense = LinkPredConfig(model="gae", estimator="dense", negatives=3.0)
    saved = {"task": "linkpred", "seed": 0, **dense.to_dict()}
    assert LinkPredConfig.canonical_settings(saved) == {
        "task": "linkpred", "seed": 0, **dense.training_settings()}
    assert dense.training_settings()["negatives"] == 1.0
    # vector: --latent-dim 10 on 20 columns (the default) saved as given
    rows = torch.rand(30, 20, generator=torch.Generator().manual_seed(0))
    data = VectorData(rows[:20], rows[20:25], rows[25:], "r")
    vae = VectorRunConfig(model="vae", latent_dim=10)
    old = {"data": "r", **vae.training_settings(), "data_sha256": "x"}
    assert old["latent_dim"] == 10
    now = {"data": "r", **resolved(vae, data).training_settings(), "data_sha256": "x"}
    assert now["latent_dim"] is None
    assert VectorRunConfig.canonical_settings(old, lambda c: resolved(c, data)) == now
    lacks = {k: v for k, v in old.items() if k != "ema"}        # an older version's keys
    assert "ema" not in VectorRunConfig.canonical_settings(lacks, lambda c: resolved(c, data))


def test_a_linkpred_state_resumes_with_a_flag_the_run_does_not_read(tmp_path, monkeypatch):
    """--negatives with --estimator dense is not read, yet tied the state: a resume that
    added it was refused as other settings. The state records it at its default."""
    import graphvae.tasks.link_prediction as lp
    from graphvae.datasets import make_sbm_graph
    from graphvae.tasks.link_prediction import PRESETS, run_link_prediction
    monkeypatch.setattr(lp, "STATE_SECONDS", None)
    data = make_sbm_graph(seed=0)
    cfg = PRESETS["gae"].replace(epochs=30, estimator="dense")
    state = tmp_path / "lp.pt"
    with killed_at(27), pytest.raises(Killed):
        run_link_prediction(data, cfg, seed=0, progress=False, state=state)
    again = run_link_prediction(data, cfg.replace(negatives=3.0), seed=0, progress=False,
                                state=state, resume=True)
    assert again.fit.resumed_from == 25


def test_graph_fingerprint_reads_sparse_features_by_their_entries():
    """CSR and COO copies of one feature matrix hash alike (the stored entries are hashed,
    not the layout); one changed entry, an edge, the node count or a column of zeros
    changes the hash."""
    from torch_geometric.data import Data

    from graphvae.tasks.link_prediction import graph_fingerprint

    x = torch.zeros(5, 4)
    x[1, 2], x[4, 0] = 1.0, 0.5
    ei = torch.tensor([[0, 1], [1, 2]])
    base = graph_fingerprint(Data(x=x.to_sparse_csr(), edge_index=ei, num_nodes=5))
    assert base == graph_fingerprint(Data(x=x.to_sparse_coo(), edge_index=ei, num_nodes=5))
    y = x.clone()
    y[4, 0] = 0.25
    assert base != graph_fingerprint(Data(x=y.to_sparse_csr(), edge_index=ei, num_nodes=5))
    assert base != graph_fingerprint(Data(x=x.to_sparse_csr(), edge_index=ei[:, :1],
                                          num_nodes=5))
    assert graph_fingerprint(Data(edge_index=ei, num_nodes=5)) != graph_fingerprint(
        Data(edge_index=ei, num_nodes=6))
    # a zero column added: the same stored entries, another matrix (its shape is hashed)
    wide = torch.cat([x, torch.zeros(5, 1)], 1)
    assert base != graph_fingerprint(Data(x=wide.to_sparse_csr(), edge_index=ei, num_nodes=5))


@pytest.mark.slow  # 22 s; the fast suite keeps the linkpred resume test above
def test_killed_and_resumed_generation_equals_an_uninterrupted_run(tmp_path):
    from graphvae.tasks.generation import GenerationConfig, run_generation

    for model in ("oneshot-vae", "graphvae", "seq-vae"):
        cfg = GenerationConfig(model=model, epochs=4, eval_every=2, batch_size=16)
        whole = run_generation(cfg, progress=False)
        state = tmp_path / f"{model}.pt"
        with killed_at(3), pytest.raises(Killed):
            run_generation(cfg, progress=False, state=state)
        saved = torch.load(state, weights_only=True)["epoch"]
        assert 1 <= saved <= 2, (model, saved)
        with epochs_trained() as seen:
            again = run_generation(cfg, progress=False, state=state, resume=True)
        assert seen == list(range(saved + 1, 5)), (model, seen)
        for key in ("test_bound_nats", "best_epoch", "mmd2", "generated_summary"):
            assert again[key] == whole[key], (model, key)


def test_killed_and_resumed_vector_run_equals_an_uninterrupted_run(tmp_path):
    from graphvae.vector.data import load_digits
    from graphvae.vector.run import VectorRunConfig, run_vector

    data = load_digits()
    cfg = VectorRunConfig(epochs=6, nll_samples=50, ema=0.9, lr_decay=0.5, decay_patience=1,
                          refine_epochs=2, hidden=(32,))
    whole = run_vector(data, cfg, progress=False)
    with killed_at(5), pytest.raises(Killed):
        run_vector(data, cfg, progress=False, state=tmp_path)
    assert torch.load(tmp_path / "train.pt", weights_only=True)["epoch"] == 4
    with epochs_trained() as seen:
        again = run_vector(data, cfg, progress=False, state=tmp_path, resume=True)
    assert seen == [5, 6, 1, 2]  # the VAE's last two epochs, then refine_encoder's two
    assert (whole["resumed_from_epoch"], again["resumed_from_epoch"]) == (0, 4)
    for key in ("test_elbo", "test_nll", "test_nll_refined", "best_epoch", "epochs_run"):
        assert again[key] == whole[key], key


def test_vector_run_killed_while_refining_says_where_refinement_went_on(tmp_path):
    """Killed in the refinement's second epoch: the resumed run retrains nothing, goes on
    from the refinement's state, and says so (resumed_from_epoch is the training's)."""
    from graphvae.vector.data import load_digits
    from graphvae.vector.run import VectorRunConfig, run_vector

    data = load_digits()
    cfg = VectorRunConfig(epochs=3, nll_samples=5, refine_epochs=3, hidden=(16,))
    real, calls = training._train_epoch, []

    def kill_in_refinement(state, *args):
        calls.append(state.epoch)
        if len(calls) == 5:                       # training 1, 2, 3; refinement 1, 2
            raise Killed
        real(state, *args)

    training._train_epoch = kill_in_refinement
    try:
        with pytest.raises(Killed):
            run_vector(data, cfg, progress=False, state=tmp_path)
    finally:
        training._train_epoch = real
    assert calls == [1, 2, 3, 1, 2]
    with epochs_trained() as seen:
        again = run_vector(data, cfg, progress=False, state=tmp_path, resume=True)
    assert seen == [2, 3]
    assert (again["resumed_from_epoch"], again["refine_resumed_from_epoch"]) == (3, 1)
    assert run_vector(data, cfg, progress=False)["refine_resumed_from_epoch"] == 0


def test_vector_state_is_not_resumed_on_other_rows_of_the_same_name(tmp_path):
    """The same name and shapes, one value changed: the state is refused and kept."""
    import dataclasses

    from graphvae.vector.data import load_digits
    from graphvae.vector.run import VectorRunConfig, run_vector

    data = load_digits()
    other = dataclasses.replace(data, train=data.train.clone())
    other.train[0, 0] = 1 - other.train[0, 0]
    assert other.name == data.name and data.fingerprint() != other.fingerprint()
    assert data.fingerprint() == load_digits().fingerprint()
    cfg = VectorRunConfig(epochs=3, nll_samples=5, hidden=(8,), refine_epochs=0)
    with killed_at(3), pytest.raises(Killed):
        run_vector(data, cfg, progress=False, state=tmp_path)
    saved = (tmp_path / "train.pt").read_bytes()
    with pytest.raises(ValueError, match=r"other settings \(other data\)"):
        run_vector(other, cfg, progress=False, state=tmp_path, resume=True)
    assert (tmp_path / "train.pt").read_bytes() == saved
    # the test estimate's sample count is read after training: another one resumes
    assert run_vector(data, cfg.replace(nll_samples=7), progress=False, state=tmp_path,
                      resume=True)["resumed_from_epoch"] == 2


@pytest.mark.slow
def test_cli_run_killed_with_sigkill_resumes_to_the_same_metrics(tmp_path):
    """``generate --out`` killed (SIGKILL) after its first checkpoints, then ``--resume``:
    the same metrics as a run never interrupted; the state is gone afterwards."""
    args = ["generate", "--epochs", "40", "--eval-every", "5", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(out, *extra):
        return subprocess.run([sys.executable, "-m", "graphvae", *args, "--out", str(out),
                               *extra], env=env, capture_output=True, text=True, timeout=600)

    assert run(tmp_path / "whole").returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "graphvae", *args, "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / ".killed.state" / "train.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and torch.load(state, weights_only=True)["epoch"] >= 5:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    res = run(out, "--resume")
    assert res.returncode == 0, res.stderr
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    again = json.loads((out / "metrics.json").read_text())
    for key in ("test_bound_nats", "best_epoch", "mmd2", "generated_summary", "history"):
        assert again[key] == whole[key], key
    # it went on from the killed run's state (a restart from epoch 0 gives the same numbers)
    assert whole["resumed_from_epoch"] == 0 and again["resumed_from_epoch"] >= 5
    assert not state.parent.exists()


def test_moving_a_state_to_its_device_visits_each_list_once():
    """A resumed state's callbacks and best weights are moved to the model's device; lists
    that hold the level below twice, 60 deep, took 2⁶⁰ steps (a hostile state file)."""
    import time

    from graphvae.training.state import _to
    nested: list = [torch.ones(1)]
    for _ in range(60):
        nested = [nested, nested]
    start = time.perf_counter()
    moved = _to(nested, torch.device("cpu"))
    assert time.perf_counter() - start < 1.0 and moved[0] is moved[1]
    plain = _to({"a": [torch.ones(2)], "b": 3}, torch.device("cpu"))
    assert plain["b"] == 3 and torch.equal(plain["a"][0], torch.ones(2))


def test_a_state_whose_generator_was_on_another_device_is_refused_by_name(tmp_path):
    """A CUDA run's generator state (16 bytes: seed and offset) given to a CPU run (5,056
    bytes) was 'a damaged training state; delete it', though nothing was damaged: resuming
    on the device it was written on continues it. The state now records the device; an
    older state without it is told apart by the state's size."""
    def run(state, resume):
        m = Quadratic()
        return fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=3,
                   evaluate=lambda: {"score": 0.0}, checkpoint=state, resume=resume,
                   config={"lr": 0.1}, progress=False,
                   generator=torch.Generator().manual_seed(0))

    good = tmp_path / "s.pt"
    run(good, False)
    ck = torch.load(good, weights_only=True)
    assert ck["rng"]["generator_device"] == "cpu"
    cuda_state = torch.zeros(16, dtype=torch.uint8)       # what a CUDA generator saves
    for name, saved in {"new": "cuda", "old": None}.items():
        ck = torch.load(good, weights_only=True)
        ck["rng"]["generator"] = cuda_state
        if saved is None:
            ck["rng"].pop("generator_device")
        else:
            ck["rng"]["generator_device"] = saved
        bad = tmp_path / f"{name}.pt"
        torch.save(ck, bad)
        where = "'cuda'" if saved else "another kind of device"
        with pytest.raises(ValueError, match=rf"{bad.name}: the training state was written by "
                                             rf"a run on {where}, and its random draws cannot "
                                             rf"continue on cpu; resume with the same "
                                             rf"--device"):
            run(bad, True)
    assert run(good, True).epochs == 3


def test_resume_names_a_state_of_an_older_version(tmp_path):
    """A state that agrees on every setting it records but lacks one this version records
    was written by an older graphvae, and the refusal says so; a state that also differs
    in a shared setting is still a run with other settings."""
    m = Quadratic()
    state = tmp_path / "s.pt"
    fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=2,
        checkpoint=state, config={"lr": 0.1}, progress=False)

    def resume(config):
        fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=2,
            checkpoint=state, resume=True, config=config, progress=False)

    with pytest.raises(ValueError, match=r"s\.pt: the training state was written by an "
                                         r"older version of graphvae, which did not record "
                                         r"prior, beta; it cannot be resumed"):
        resume({"lr": 0.1, "prior": "mixture", "beta": 1.0})
    with pytest.raises(ValueError, match=r"other settings \(lr: 0\.2 here, 0\.1 in the "
                                         r"state; prior"):
        resume({"lr": 0.2, "prior": "mixture"})
    fit(m, FullBatch(None), torch.optim.SGD(m.parameters(), lr=0.1), epochs=2,
        checkpoint=state, config={"lr": 0.1, "gone": 1}, progress=False)
    with pytest.raises(ValueError, match=r"written by another version of graphvae, which "
                                         r"did not record prior;"):
        resume({"lr": 0.1, "prior": "mixture"})


def test_checkpoint_seconds_writes_the_state_between_the_epochs_it_counts(tmp_path,
                                                                        monkeypatch):
    """linkpred writes its state every 25 epochs, which on a slow machine can be an hour of
    work lost to a kill; with checkpoint_seconds the state is also written whenever that
    long has passed. 0 s: every epoch; none: the counted epochs and the last only."""
    from conftest import ToyBound

    import graphvae.training.loop as loop
    from graphvae.training import fit
    real = loop.save_state
    for seconds, expected in [(0.0, [1, 2, 3, 4]), (None, [2, 4]), (3600.0, [2, 4])]:
        model, written = ToyBound(), []
        monkeypatch.setattr(loop, "save_state",
                            lambda path, state, result, *a, seen=written:
                            seen.append(result.epochs) or real(path, state, result, *a))
        fit(model, [torch.ones(3)], torch.optim.SGD(model.parameters(), lr=0.1), epochs=4,
            checkpoint=tmp_path / "s.pt", checkpoint_every=2, checkpoint_seconds=seconds,
            progress=False)
        assert written == expected, (seconds, written)
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match=f"checkpoint_seconds must be >= 0, got {bad}"):
            fit(ToyBound(), [torch.ones(3)], torch.optim.SGD(ToyBound().parameters(), lr=0.1),
                epochs=1, checkpoint_seconds=bad, progress=False)
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1, got 1, 1, 0"):
        fit(ToyBound(), [torch.ones(3)], torch.optim.SGD(ToyBound().parameters(), lr=0.1),
            epochs=1, checkpoint_every=0, progress=False)


# ------------------------------------------------- a SIGTERM held to the end of its epoch
class _SignalAt(Callback):
    """Send this process ``sig`` after step ``batch`` of ``epoch`` (each pair in ``at``),
    and count the steps taken."""

    def __init__(self, *at, sig=signal.SIGTERM):
        self.at, self.sig, self.steps = set(at), sig, []

    def on_step_end(self, state):
        self.steps.append((state.epoch, state.batch_index))
        if (state.epoch, state.batch_index) in self.at:
            os.kill(os.getpid(), self.sig)
            time.sleep(0.05)                     # the handler runs between bytecodes


def _toy_fit(tmp_path, epochs, callbacks=(), resume=False, checkpoint=True, every=100):
    from conftest import ToyBound
    torch.manual_seed(0)
    model = ToyBound()
    batches = Shuffled(torch.randn(6, 3), batch_size=2)
    res = fit(model, batches, torch.optim.Adam(model.parameters(), lr=0.1), epochs=epochs,
              generator=torch.Generator().manual_seed(1), callbacks=list(callbacks),
              checkpoint=tmp_path / "s.pt" if checkpoint else None, checkpoint_every=every,
              resume=resume, progress=False)
    return model, res


def test_a_sigterm_during_an_epoch_ends_it_writes_its_state_and_resumes_to_the_same_run(
        tmp_path):
    """A scheduler's SIGTERM (Slurm, ``timeout``, ``docker stop``) raised at once and lost
    every epoch since the last state write (25 epochs or 300 s for linkpred). Now the epoch
    in progress finishes, its state is written, and ``Terminated`` names it; resuming gives
    the weights of a run never stopped."""
    from graphvae.stopping import Terminated, signals_raise
    for d in ("whole", "stopped"):
        (tmp_path / d).mkdir()
    whole, _ = _toy_fit(tmp_path / "whole", 6, [_SignalAt()])
    signal_at = _SignalAt((3, 0))                 # after the first of epoch 3's three steps
    with pytest.raises(Terminated) as exc, signals_raise():
        _toy_fit(tmp_path / "stopped", 6, [signal_at])
    assert exc.value.signum == signal.SIGTERM
    assert exc.value.saved == (tmp_path / "stopped" / "s.pt", 3)
    assert signal_at.steps[-3:] == [(3, 0), (3, 1), (3, 2)]          # the epoch finished
    assert torch.load(tmp_path / "stopped" / "s.pt", weights_only=True)["epoch"] == 3
    with epochs_trained() as seen:
        again, res = _toy_fit(tmp_path / "stopped", 6, [_SignalAt()], resume=True)
    assert seen == [4, 5, 6] and res.resumed_from == 3
    assert _same_weights(whole, again)


def test_a_ctrl_c_during_an_epoch_is_held_says_so_and_resumes_to_the_same_run(tmp_path,
                                                                                capfd,
                                                                                monkeypatch):
    """Ctrl-C raised at once and lost every epoch since the last state write (24 for
    linkpred). Inside a command it is now held as SIGTERM is: the epoch ends, its state is
    written and named, and stderr tells the person waiting. Outside a command (a program
    using the package) Ctrl-C is Python's KeyboardInterrupt, at once, as before."""
    from graphvae.stopping import Terminated, held_line, signals_raise
    for d in ("whole", "stopped", "api"):
        (tmp_path / d).mkdir()
    whole, _ = _toy_fit(tmp_path / "whole", 6, [_SignalAt()])
    old = signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a command
    try:
        signal_at = _SignalAt((3, 0), sig=signal.SIGINT)
        capfd.readouterr()
        with pytest.raises(Terminated) as exc, signals_raise():
            _toy_fit(tmp_path / "stopped", 6, [signal_at])
        assert capfd.readouterr().err == held_line() == (
            "graphvae: stopping when this epoch ends, once its training state is written (8 s "
            "at most; Ctrl-C again, after 2 s, to stop at once)\n")
        assert held_line(saves=False) == ("graphvae: stopping when this epoch ends (8 s at "
                                          "most; Ctrl-C again, after 2 s, to stop at once)\n")
        assert (exc.value.signum, exc.value.word) == (signal.SIGINT, "interrupted")
        assert exc.value.saved == (tmp_path / "stopped" / "s.pt", 3)
        assert signal_at.steps[-3:] == [(3, 0), (3, 1), (3, 2)]      # the epoch finished
        monkeypatch.setenv("RANK", "1")        # another data-parallel rank: rank 0 speaks
        (tmp_path / "rank1").mkdir()
        with pytest.raises(Terminated) as exc, signals_raise():
            _toy_fit(tmp_path / "rank1", 6, [_SignalAt((3, 0), sig=signal.SIGINT)])
        assert exc.value.saved == (tmp_path / "rank1" / "s.pt", 3)
        assert capfd.readouterr().err == ""
        at_once = _SignalAt((2, 0), sig=signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            _toy_fit(tmp_path / "api", 6, [at_once])
        assert at_once.steps[-1] == (2, 0)
    finally:
        signal.signal(signal.SIGINT, old)
    again, res = _toy_fit(tmp_path / "stopped", 6, [_SignalAt()], resume=True)
    assert res.resumed_from == 3 and _same_weights(whole, again)


def test_one_stop_delivered_twice_is_held_once_and_a_later_signal_stops_at_once(
        tmp_path, monkeypatch):
    """Slurm signals every process of a step and torchrun passes the signal on, so a worker
    gets one stop twice, milliseconds apart: the second counted as "stop at once", and no
    state was written. A signal within DUPLICATE_SECONDS is now the same stop; a later one
    stops the epoch at once (the state of the last write stays)."""
    import graphvae.stopping as stopping
    from graphvae.stopping import Terminated, signals_raise
    for d in ("a", "b"):
        tmp_path.joinpath(d).mkdir()
    twice = _SignalAt((2, 0), (2, 1), sig=signal.SIGHUP)
    with pytest.raises(Terminated) as exc, signals_raise():
        _toy_fit(tmp_path / "a", 6, [twice])
    assert exc.value.saved == (tmp_path / "a" / "s.pt", 2) and exc.value.word == "hung up"
    assert twice.steps[-1] == (2, 2)                                  # the epoch ended
    monkeypatch.setattr(stopping, "DUPLICATE_SECONDS", 0.0)
    later = _SignalAt((2, 0), (2, 1), sig=signal.SIGHUP)
    with pytest.raises(Terminated) as exc, signals_raise():
        _toy_fit(tmp_path / "b", 6, [later])
    assert exc.value.saved is None and later.steps[-1] == (2, 1)       # mid-epoch
    assert not (tmp_path / "b" / "s.pt").exists()   # epoch 1 was not due for a write


def _fake_clock(monkeypatch):
    """The stopping module's clock, set by hand: a one-item list of seconds (from 1000)."""
    import types

    import graphvae.stopping as stopping
    clock = [1000.0]
    monkeypatch.setattr(stopping, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    return clock


def _copy_inside_at_each_bytecode(scenario, copy):
    """Run ``scenario(traced)`` once for each bytecode of the handler call it makes through
    ``traced``, with ``copy()`` run inside that call there (as Python runs a second signal's
    handler between two bytecodes of the first one's); yield ``(k, outcome)``, the
    outcome the scenario's exception or None, until a run ends before its k-th bytecode."""
    import graphvae.stopping as stopping
    k = 0
    while True:
        seen = [0]

        def local(frame, event, arg, seen=seen, k=k):
            if event == "opcode":
                seen[0] += 1
                if seen[0] == k + 1:        # (what it raises, raises in the frame traced)
                    copy()                  # (a trace function is not traced itself)
            return local

        def tracer(frame, event, arg, local=local):
            if frame.f_code is not stopping._raise.__code__:
                return None
            frame.f_trace_opcodes = True
            return local

        def traced(call, tracer=tracer):
            old = sys.gettrace()
            sys.settrace(tracer)
            try:
                return call()
            finally:
                sys.settrace(old)

        try:
            scenario(traced)
            outcome = None
        except BaseException as err:        # noqa: BLE001 - the outcome under test
            outcome = err
        if seen[0] <= k:
            return
        yield k, outcome
        k += 1


def test_a_copy_handled_inside_the_first_signals_handler_is_the_same_stop(monkeypatch):
    """Python runs a signal's handler between two bytecodes, of another handler too: under
    load torchrun's copy of a stop came while a worker's first handler ran, was noted as
    the first, and the first, finding a stop noted, took itself for a later signal and
    stopped at once. The worker wrote no state and left the other in a collective ("another
    process of the run stopped"). A copy handled at any bytecode of a handler is now the
    same stop as that handler's: held where it holds, one stop where it stops, and not
    "told again while cleaning up" after a later signal. (SIGINT: a second stop acted on
    is a KeyboardInterrupt here, not the end of the test's process.)"""
    import graphvae.stopping as stopping
    from graphvae.stopping import Terminated, held, signals_raise
    clock = _fake_clock(monkeypatch)
    sig = signal.SIGINT

    def handler():
        return stopping._raise(sig, None)

    held_to_the_end = []

    def first_held(traced):         # (a stop held to the block's end is raised there)
        with signals_raise(), held() as note:
            traced(handler)
            assert note.signum == sig and not stopping._STOP.acted
            held_to_the_end.append(True)

    def first_unheld(traced):
        with signals_raise():
            traced(handler)

    def later(traced):
        with signals_raise(), held() as note:
            handler()                                       # the stop, held
            assert note.signum == sig
            clock[0] += stopping.DUPLICATE_SECONDS + 1
            traced(handler)                                 # a later one: at once

    for scenario in (first_held, first_unheld, later):
        runs = list(_copy_inside_at_each_bytecode(scenario, handler))
        assert len(runs) > 10, scenario.__name__
        for k, outcome in runs:
            assert type(outcome) is Terminated and outcome.signum == sig, \
                (scenario.__name__, k, outcome)
        if scenario is first_held:
            assert len(held_to_the_end) == len(runs) + 1    # (+ the run past the last one)


def test_a_later_signals_copy_is_that_signal_and_not_told_again(monkeypatch):
    """A later stop comes twice as the first does (Slurm and torchrun both send it): its
    copy ended the process in its cleanup, as a third signal would. The copy window runs
    from the last signal acted on: at 1,000 s held, at 1,003 s at once, at 1,003.5 s a
    copy, at 1,006 s told again while cleaning up (SIGINT: KeyboardInterrupt)."""
    import graphvae.stopping as stopping
    from graphvae.stopping import Terminated, held, signals_raise
    clock = _fake_clock(monkeypatch)
    sig = signal.SIGINT
    with signals_raise(), held() as note:
        stopping._raise(sig, None)
        assert note.signum == sig and not stopping._STOP.acted
        clock[0] = 1003.0
        with pytest.raises(Terminated):
            stopping._raise(sig, None)
        clock[0] = 1003.5
        try:
            copied = stopping._raise(sig, None)                     # its copy: ignored
        except KeyboardInterrupt:
            pytest.fail("the later signal's copy was taken for a third signal")
        assert copied is None
        clock[0] = 1006.0
        with pytest.raises(KeyboardInterrupt):
            stopping._raise(sig, None)


def test_the_copy_window_and_the_stop_acted_on_at_the_epochs_end(monkeypatch, capfd):
    """With a fake clock: a signal exactly DUPLICATE_SECONDS after the first is a later one
    (the window is open at its end), and stops a held epoch at once; once the loop acts on
    a held stop (at the epoch's end), a later signal ends the run as a second Ctrl-C does;
    a held Ctrl-C says on stderr whether a state is written at the epoch's end."""
    import graphvae.stopping as stopping
    from graphvae.stopping import Terminated, held, held_line, signals_raise
    clock = _fake_clock(monkeypatch)
    monkeypatch.delenv("RANK", raising=False)
    sig = signal.SIGINT
    with signals_raise(), held(saves=False) as note:
        stopping._raise(sig, None)
        assert note.signum == sig
        assert capfd.readouterr().err == held_line(saves=False)
        clock[0] += stopping.DUPLICATE_SECONDS
        with pytest.raises(Terminated):
            stopping._raise(sig, None)
    clock[0] = 2000.0
    with pytest.raises(KeyboardInterrupt), signals_raise(), held() as note:
        stopping._raise(sig, None)
        assert capfd.readouterr().err == held_line(saves=True)
        clock[0] = 2001.0
        err = note.terminated()                       # the loop acts on it at the epoch end
        assert isinstance(err, Terminated) and stopping._STOP.acted
        clock[0] = 2004.0
        stopping._raise(sig, None)                    # told again while cleaning up


def test_an_overdue_stop_is_raised_in_the_main_thread_only(monkeypatch, capfd):
    """The main thread's held stop, past the hold, is the main thread's to raise: a fit in
    another thread neither raises it nor reports it overdue."""
    import threading

    import graphvae.stopping as stopping
    from graphvae.stopping import Terminated, held, overdue, signals_raise, stop_if_overdue
    clock = _fake_clock(monkeypatch)
    seen = []

    def other():
        try:
            stop_if_overdue()
            seen.append(overdue())
        except BaseException as err:        # noqa: BLE001 - what the thread must not see
            seen.append(err)

    with pytest.raises(Terminated), signals_raise(), held() as note:
        stopping._raise(signal.SIGINT, None)
        clock[0] += stopping.HOLD_SECONDS + 1
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert seen == [0] and note.signum == signal.SIGINT
        assert overdue() == signal.SIGINT               # in the main thread
        stop_if_overdue()
    capfd.readouterr()


def test_the_copy_window_runs_from_the_signal_not_from_the_stop_acted_on(monkeypatch,
                                                                          capfd):
    """The copy window opens when the first signal comes, not when the loop acts on it: a
    SIGTERM held at 1,000 s says nothing on stderr (only a person's Ctrl-C is told to
    wait); at 1,009 s, past the hold, the loop's next step acts on it, and from then on it
    is not overdue; a signal at 1,010 s, 10 s after the first, is a second stop told while
    cleaning up and ends at once (SIGINT here: a KeyboardInterrupt), though it comes 1 s
    after the stop was acted on."""
    import graphvae.stopping as stopping
    from graphvae.stopping import Terminated, held, overdue, signals_raise, stop_if_overdue
    clock = _fake_clock(monkeypatch)
    monkeypatch.delenv("RANK", raising=False)
    capfd.readouterr()
    with pytest.raises(KeyboardInterrupt), signals_raise(), held() as note:
        stopping._raise(signal.SIGTERM, None)
        assert note.signum == signal.SIGTERM and capfd.readouterr().err == ""
        clock[0] = 1009.0
        with pytest.raises(Terminated):
            stop_if_overdue()                   # the loop's step after the hold
        assert overdue() == 0
        stop_if_overdue()                       # acted on: nothing more to raise
        clock[0] = 1010.0
        stopping._raise(signal.SIGINT, None)


def test_only_the_commands_own_states_are_named(tmp_path, monkeypatch):
    """A stop names the training state the command last wrote (``last_written``): not one
    that a fit in another thread wrote, nor one written outside a command (a program using
    the package), nor one of a command that has ended."""
    import threading

    import graphvae.stopping as stopping
    from graphvae.stopping import last_written, signals_raise
    monkeypatch.setattr(stopping, "_STOP", stopping._Stop())
    for d in ("api", "thread", "main"):
        tmp_path.joinpath(d).mkdir()
    _toy_fit(tmp_path / "api", 2)
    assert last_written() is None
    with signals_raise():
        thread = threading.Thread(target=_toy_fit, args=(tmp_path / "thread", 2))
        thread.start()
        thread.join()
        assert (tmp_path / "thread" / "s.pt").is_file() and last_written() is None
        _toy_fit(tmp_path / "main", 2)
        assert last_written() == (tmp_path / "main" / "s.pt", 2)
    assert last_written() is None                              # the command has ended


def test_a_nested_block_keeps_the_stop_and_another_threads_block_changes_nothing(
        monkeypatch):
    """``signals_raise`` inside another (a program calling ``main()`` from a command) installs
    nothing and must not forget the outer block's stop: the stop's copy, 0.5 s later and
    after the inner block, is still that stop and ignored. In another thread the block
    does nothing (Python sets handlers in the main thread only)."""
    import threading

    import graphvae.stopping as stopping
    from graphvae.stopping import held, signals_raise
    clock = _fake_clock(monkeypatch)
    with pytest.raises(stopping.Terminated), signals_raise(), held() as note:
        stopping._raise(signal.SIGTERM, None)
        with signals_raise():
            pass
        clock[0] += 0.5
        try:
            copied = stopping._raise(signal.SIGTERM, None)     # the copy: ignored
        except stopping.Terminated:
            pytest.fail("the inner block forgot the stop: its copy was taken for a new one")
        assert copied is None
        assert note.signum == signal.SIGTERM and not stopping._STOP.acted
    before = {sig: signal.getsignal(sig) for sig in stopping.SIGNALS}
    seen = []

    def other():
        try:
            with signals_raise():
                seen.append({sig: signal.getsignal(sig) for sig in stopping.SIGNALS})
        except BaseException as err:        # noqa: BLE001 - what the thread must not see
            seen.append(err)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [before]


def test_a_stop_is_held_hold_seconds_at_most_and_not_without_a_state(tmp_path, monkeypatch):
    """Schedulers send SIGKILL some seconds after SIGTERM (docker stop: 10 s), and a killed
    run gets no cleanup: an epoch that has not ended HOLD_SECONDS after the signal stops
    after the step in progress, naming the state of the last write. The hold uses no
    timer of its own (a SIGALRM cap cancelled the program's ITIMER_REAL, and a thread's
    interrupt raced the main thread). Without a state nothing is held."""
    import graphvae.stopping as stopping
    from graphvae.stopping import Terminated, signals_raise

    class Slow(_SignalAt):
        def on_step_end(self, state):
            super().on_step_end(state)
            if state.epoch == 2:
                time.sleep(0.4)

    monkeypatch.setattr(stopping, "HOLD_SECONDS", 0.5)
    tmp_path.joinpath("a").mkdir()
    slow = Slow((2, 0))
    start = time.perf_counter()
    old = signal.signal(signal.SIGALRM, lambda *a: None)
    signal.setitimer(signal.ITIMER_REAL, 600)                   # the program's own timer
    try:
        with pytest.raises(Terminated) as exc, signals_raise():
            _toy_fit(tmp_path / "a", 6, [slow], every=1)
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 500     # still running
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert exc.value.saved == (tmp_path / "a" / "s.pt", 1)       # the last write
    assert slow.steps[-1] == (2, 1), slow.steps     # the first step past 0.5 s: mid-epoch
    assert time.perf_counter() - start < 5
    import threading
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    once = _SignalAt((2, 0))
    with pytest.raises(Terminated) as exc, signals_raise():
        _toy_fit(tmp_path / "a", 6, [once], checkpoint=False)
    assert exc.value.saved is None and once.steps[-1] == (2, 0)       # no state: at once


_CLEANUP = """
import os, signal, sys, time
import graphvae.stopping as stopping
stopping.DUPLICATE_SECONDS = float(sys.argv[1])
sig = getattr(signal, sys.argv[2])
try:
    with stopping.signals_raise():            # as main() holds it around the command
        try:
            os.kill(os.getpid(), sig)
            time.sleep(5)
        except stopping.Terminated:
            os.kill(os.getpid(), sig)         # told again while cleaning up
            time.sleep(1)
            print("cleaned up")
except KeyboardInterrupt:                     # (a program calling the command)
    print("host still alive")
"""


def test_a_signal_while_cleaning_up_ends_the_process_unless_it_repeats_the_stop():
    """After the stop is acted on, a later signal ends the process at once, as the default
    would; the same stop's second copy (within DUPLICATE_SECONDS) lets the cleanup finish
    (torchrun's copy used to kill a worker in its cleanup)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for window, code, out in (("0", -signal.SIGTERM, ""), ("60", 0, "cleaned up\n")):
        res = subprocess.run([sys.executable, "-c", _CLEANUP, window, "SIGTERM"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert (res.returncode, res.stdout) == (code, out), (window, res)


def test_a_second_ctrl_c_while_cleaning_up_leaves_a_host_program_alive():
    """A program calling graphvae in-process (a notebook) was killed by a second Ctrl-C
    during the command's cleanup: the handler gave SIGINT back to the system's default.
    It is Python's KeyboardInterrupt, which the program can catch."""
    res = subprocess.run([sys.executable, "-c", _CLEANUP, "0", "SIGINT"],
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                         text=True, timeout=60)
    assert (res.returncode, res.stdout) == (0, "host still alive\n"), res


def test_a_signal_during_a_state_write_stops_at_that_epoch(tmp_path, monkeypatch):
    """The stop was checked before the epoch's write, so a signal during the write waited
    a whole further epoch (up to 300 s for linkpred); it is checked after it now."""
    import graphvae.training.loop as loop
    from graphvae.stopping import Terminated, signals_raise
    real = loop.save_state

    def write(path, state, result, *args):
        real(path, state, result, *args)
        if result.epochs == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)

    monkeypatch.setattr(loop, "save_state", write)
    from conftest import ToyBound
    model = ToyBound()
    with epochs_trained() as seen, pytest.raises(Terminated) as exc, signals_raise():
        fit(model, [torch.ones(3)], torch.optim.SGD(model.parameters(), lr=0.1), epochs=6,
            checkpoint=tmp_path / "s.pt", checkpoint_every=2, progress=False)
    assert seen == [1, 2] and exc.value.saved == (tmp_path / "s.pt", 2)
    assert torch.load(tmp_path / "s.pt", weights_only=True)["epoch"] == 2


def test_a_fit_in_another_thread_does_not_hide_the_main_threads_hold():
    """held() blocks form a stack that the handler reads from the top: a block another
    thread opened sat on top, inactive (only the main thread gets signals), and made the
    main thread's held stop an immediate one."""
    import threading

    from graphvae.stopping import held, signals_raise
    inside, leave = threading.Event(), threading.Event()

    def other():
        with held():
            inside.set()
            leave.wait(10)

    with signals_raise(), held() as note:
        t = threading.Thread(target=other)
        t.start()
        inside.wait(10)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert note.signum == signal.SIGTERM           # noted, not raised
        note.signum = None                             # (acted on: nothing to raise here)
        leave.set()
        t.join()


def test_a_stop_noted_before_another_error_lets_that_error_end_the_run(tmp_path):
    """A fit that noted a SIGTERM and then diverged ended with the divergence, and left the
    stop half-taken: later signals raised at once instead of being held or ending the
    process. The error ends the run, and the stop counts as acted on (cleanup)."""
    import graphvae.stopping as stopping
    from graphvae.stopping import signals_raise

    class Diverges(_SignalAt):
        def on_epoch_end(self, state):
            if state.epoch == 2:
                raise FloatingPointError("training diverged")

    tmp_path.joinpath("a").mkdir()
    with pytest.raises(FloatingPointError), signals_raise():
        try:
            _toy_fit(tmp_path / "a", 6, [Diverges((2, 0))])
        finally:
            assert stopping._STOP.acted and stopping._STOP.signum == signal.SIGTERM


_EXITING = """
import atexit, os, signal, sys, time
import graphvae.stopping as stopping

def late_copy():                              # torchrun's copy, as the interpreter ends
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)
    print("ended by its own exit", flush=True)

atexit.register(late_copy)
with stopping.signals_raise(exiting=True):   # as the graphvae command enters it
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except stopping.Terminated:
        sys.exit(143)
"""


def test_the_stops_second_copy_cannot_kill_a_command_ending_after_its_last_line():
    """signals_raise gave the default handlers back as the command ended, so the stop's
    second copy (Slurm and torchrun) killed it while the interpreter shut down (-15, after
    its last line, atexit skipped); the command's entry point ignores them then. A program
    calling main() in-process gets its handlers back, a stop or not."""
    res = subprocess.run([sys.executable, "-c", _EXITING], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=60)
    assert (res.returncode, res.stdout) == (143, "ended by its own exit\n"), res
    from graphvae.cli import entry
    from graphvae.stopping import Terminated, signals_raise
    with pytest.raises(Terminated), signals_raise():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    import graphvae.__main__  # noqa: F401 - python -m graphvae runs the entry point
    text = (ROOT / "pyproject.toml").read_text()
    assert 'graphvae = "graphvae.cli:entry"' in text and callable(entry)
    assert "sys.exit(entry())" in (ROOT / "graphvae" / "__main__.py").read_text()


def test_a_stop_after_training_names_the_state_the_run_wrote_last(tmp_path):
    """A signal during the evaluation or the exports after training stopped at once with a
    bare "terminated", though the state of the finished fit stays for --resume: it is
    named too, until the command removes its states (it completed)."""
    from graphvae.cli.common import done
    from graphvae.stopping import Terminated, signals_raise
    tmp_path.joinpath("a").mkdir()
    with pytest.raises(Terminated) as exc, signals_raise():
        _toy_fit(tmp_path / "a", 3)
        os.kill(os.getpid(), signal.SIGTERM)                  # after the fit
        time.sleep(1)
    assert exc.value.saved == (tmp_path / "a" / "s.pt", 3)
    with pytest.raises(Terminated) as exc, signals_raise():
        _toy_fit(tmp_path / "a", 3)
        done(tmp_path / "a", ("s.pt",))                       # the run completed
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert exc.value.saved is None and not (tmp_path / "a").exists()


def test_a_state_whose_averaged_weights_do_not_fit_is_damaged(tmp_path):
    """vector --ema: an edited state whose average held words, other shapes or int64
    tensors failed in torch at the first step (internal error, exit 3)."""
    from graphvae.errors import DataError
    from graphvae.training.callbacks import EMA
    _toy_fit(tmp_path, 2, [EMA(0.9)])
    good = torch.load(tmp_path / "s.pt", weights_only=True)
    avg = good["callbacks"][0]["avg"]
    assert [a.dtype for a in avg] == [torch.float32] * len(avg)
    for bad in (["x"] * len(avg), [a[:1] for a in avg], [a.long() for a in avg],
                [a.fill_(float("inf")) for a in [b.clone() for b in avg]], avg[:-1]):
        ck = torch.load(tmp_path / "s.pt", weights_only=True)
        ck["callbacks"][0]["avg"] = bad
        torch.save(ck, tmp_path / "bad.pt")
        (tmp_path / "bad").mkdir(exist_ok=True)
        (tmp_path / "bad" / "s.pt").write_bytes((tmp_path / "bad.pt").read_bytes())
        with pytest.raises(DataError, match=r"a damaged training state \(its "
                                            r"averaged weights \(--ema\) do not fit the "
                                            r"model\)"):
            _toy_fit(tmp_path / "bad", 4, [EMA(0.9)], resume=True)
    _, res = _toy_fit(tmp_path, 4, [EMA(0.9)], resume=True)             # as saved
    assert res.resumed_from == 2


# ------------------------------------------------ the training state, field by field
def _fit_pair(lr: float = 0.1):
    """A one-layer model's fresh FitState and FitResult."""
    from graphvae.training.callbacks import FitState
    from graphvae.training.loop import FitResult
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    state = FitState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                     callbacks=[])
    return state, FitResult(0, 0, 0.0, 0.0)


def _saved_after_three_epochs(path, **edits):
    """save_state of a run stopped early after 3 epochs (best epoch 2, one evaluation
    since, 3.5 s), with the top-level entries ``edits`` (``best_*``: of its best) then
    written over it as a hand edit would."""
    from graphvae.training.state import save_state
    state, result = _fit_pair()
    state.stop, state.best_score, state.best_epoch, state.stale = True, -1.25, 2, 1
    result.epochs, result.seconds = 3, 3.5
    result.history = [{"loss": 1.0}, {"loss": 0.5}, {"loss": 0.25}]
    result.epoch_seconds = [1.0, 1.25, 1.25]
    save_state(path, state, result, None, {"lr": 0.1})
    if edits:
        ck = torch.load(path, weights_only=True)
        for key, value in edits.items():
            if key.startswith("best_"):
                ck["best"][key[5:]] = value
            elif key == "lr":
                ck["optimizer"]["param_groups"][0]["lr"] = value
            else:
                ck[key] = value
        torch.save(ck, path)


def test_a_state_restores_every_counter_it_saved(tmp_path):
    """Mutations that saved (or read back) the stop flag as False, the evaluations since
    the best as 0, the seconds as 0 or the best epoch as 0 passed every test: a resumed run
    then trained past its early stop, reset its patience, or reported another best epoch."""
    from graphvae.training.state import restore_state
    path = tmp_path / "s.pt"
    _saved_after_three_epochs(path)
    state, result = _fit_pair()
    restore_state(path, state, result, None, {"lr": 0.1}, epochs=10)
    assert (state.stop, state.best_score, state.best_epoch, state.stale) == (True, -1.25, 2, 1)
    assert (result.epochs, result.resumed_from, result.seconds) == (3, 3, 3.5)
    assert result.epoch_seconds == [1.0, 1.25, 1.25] and result.history[2] == {"loss": 0.25}


@pytest.mark.parametrize("edits, reason", [
    ({"best_epoch": 4}, r"its best epoch 4 \(score -1\.25\) is not one of its 3 epochs"),
    ({"best_score": float("inf")}, r"its best epoch 2 \(score inf\) is not one of its 3"),
    ({"lr": 0.0}, r"its learning rate 0\.0 is not a number in \(0, "),
    ({"seconds": float("inf")}, r"its timings hold inf, not a number of seconds"),
    ({"epoch_seconds": [1.0, float("inf"), 1.0]}, r"its timings hold inf"),
    ({"history": [{"loss": 1.0}, {"loss": True}, {"loss": 0.25}]},
     r"its history holds records that are not numbers by name"),
    ({"history": ({"loss": 1.0}, {"loss": 0.5}, {"loss": 0.25})},
     r"its history or epoch times are not lists"),
    ({"epoch": True}, r"its epoch counts are not integers"),
    ({"model": {"weight": torch.tensor([[float("nan"), 0.0]]), "bias": torch.zeros(1)}},
     r"its weights hold NaN"),
    # (it was "AttributeError: 'str' object has no attribute 'shape'")
    ({"best_state": {"weight": "w", "bias": torch.zeros(1)}},
     r"its best weights do not fit the model\)"),
])
def test_a_hand_edited_state_is_refused_as_damaged(tmp_path, edits, reason):
    """What no run saves (worked out from the saved run of 3 epochs): a best epoch past the
    last, an infinite best score, a rate of 0, infinite seconds, a bool in the history."""
    from graphvae.training.state import restore_state
    path = tmp_path / "s.pt"
    _saved_after_three_epochs(path, **edits)
    state, result = _fit_pair()
    with pytest.raises(DataError, match=rf"s\.pt: a damaged training state \("
                                        rf"{reason}"):
        restore_state(path, state, result, None, {"lr": 0.1}, epochs=10)


@pytest.mark.parametrize("damage, reason", [
    (lambda ck: ck.pop("history"), "it lacks 'history'"),
    (lambda ck: [ck.pop(k) for k in ("seconds", "stop")], "it lacks 'stop', 'seconds'"),
    (lambda ck: ck["best"].pop("score"), "its best epoch's record lacks 'score'"),
    (lambda ck: ck.update(model=[]), "its model entry is [], not a dict of weights"),
    (lambda ck: ck["model"].pop("bias"),
     "its weights do not fit the model: 1 missing (e.g. 'bias')"),
    (lambda ck: ck["model"].update(extra=torch.zeros(1)),
     "its weights do not fit the model: 1 unexpected (e.g. 'extra')"),
    (lambda ck: ck["model"].update(weight=torch.zeros(2, 2)),
     r"its weights do not fit the model: weight has shape (2, 2), the model needs (1, 2)"),
    (lambda ck: ck["model"].update(weight="w"),
     "its weights do not fit the model: weight is 'w', not a tensor"),
    (lambda ck: ck["optimizer"].pop("param_groups"), "its optimiser's state lacks "
                                                     "'param_groups'"),
    (lambda ck: ck["optimizer"]["param_groups"].append({}),
     "its optimiser has 2 parameter groups, this run's 1"),
    (lambda ck: ck["optimizer"]["param_groups"][0].update(params=None),
     "its optimiser's parameter group 0 lists None, not this run's 2 parameters"),
    # (torch's load cast a string slot into the text of a generator object: "could not
    # convert string to float: '<generator object ...>'")
    (lambda ck: ck["optimizer"]["state"].update({0: {"momentum_buffer": "w"}}),
     "its optimiser's 'momentum_buffer' is 'w', not a tensor or a number"),
    (lambda ck: ck["optimizer"]["state"].update({0: [1]}),
     "its optimiser's state holds [1], not a dict of slots"),
    # (Adam's load took float() of it: "TypeError: float() argument must be a string or a
    # real number, not 'NoneType'"; SGD's None momentum buffer stays allowed)
    (lambda ck: ck["optimizer"]["state"].update({0: {"step": None}}),
     "its optimiser's 'step' is None, not a tensor or a number"),
    (lambda ck: ck["best"].update(score={}), "its best score is {}, not a number"),
    (lambda ck: ck.update(seconds=True), "its seconds entry is True, not a number"),
    (lambda ck: ck["rng"].pop("torch"), "its rng entry lacks 'torch'"),
    (lambda ck: ck["rng"].update(torch=torch.zeros(3)),
     "its random state 'torch' is a torch.float32 tensor of shape (3,), not the 5,056 "
     "bytes this run's takes"),          # a CPU Mersenne twister's state: 5,056 bytes
    (lambda ck: ck["rng"].update(torch=None),
     "its random state 'torch' is None, not the 5,056 bytes this run's takes"),
    (lambda ck: ck["rng"].update(torch=ck["rng"]["torch"][:-1]),
     "its random state 'torch' is a torch.uint8 tensor of shape (5055,), not the 5,056 "
     "bytes this run's takes"),
    (lambda ck: ck.update(callbacks=[{}]), "it has other callbacks than this run"),
])
def test_a_damaged_state_names_the_entry_it_lacks_or_that_does_not_fit(tmp_path, damage,
                                                                        reason):
    """A missing entry was named as ``KeyError: 'history'``; weights of another shape,
    random states of another size and a parameter list that is not one in torch's words
    (``RuntimeError: Error(s) in loading state_dict``, ``TypeError: RNG state must be a
    torch.ByteTensor``, ``object of type 'NoneType' has no len()``). The state is the
    one-layer run of 3 epochs: weight (1, 2) and bias (1,), one SGD group, no callbacks."""
    from graphvae.training.state import restore_state
    path = tmp_path / "s.pt"
    _saved_after_three_epochs(path)
    ck = torch.load(path, weights_only=True)
    damage(ck)
    torch.save(ck, path)
    state, result = _fit_pair()
    with pytest.raises(DataError) as err:
        restore_state(path, state, result, None, {"lr": 0.1}, epochs=10)
    assert str(err.value) == f"{path}: a damaged training state ({reason}); delete it to " \
                             f"start the run afresh"


def test_a_state_naming_a_task_no_command_writes_says_so(tmp_path):
    """A state whose settings named the task 'generate' (generate's is 'generation') was
    "left by a command of task 'generate', not by graphvae generate: resume it with that
    command" (found by the reader fuzz's nineteenth reader)."""
    from graphvae.training.state import restore_state
    path = tmp_path / "s.pt"
    _saved_after_three_epochs(path, config={"task": "generate", "lr": 0.1})
    state, result = _fit_pair()
    with pytest.raises(DataError) as err:
        restore_state(path, state, result, None, {"task": "generation", "lr": 0.1}, epochs=10)
    assert str(err.value) == f"{path}: the training state names the task 'generate', which " \
                             f"no graphvae command writes (this run's is 'generation'): " \
                             f"delete it to start the run afresh, or use another --out"


def test_a_callbacks_state_or_the_runs_generator_that_does_not_fit_is_named(tmp_path):
    """--ema's state without its average was ``KeyError: 'avg'``; the run's generator
    (the batches' order) is checked as the process's own random state is."""
    from graphvae.training.callbacks import EMA
    _toy_fit(tmp_path, 2, [EMA(0.9)])

    def callback(ck, value):
        ck["callbacks"][0] = value

    def generator(ck, value):
        ck["rng"]["generator"] = value

    for entry, damaged, reason in (
            (callback, {}, "its EMA callback's state lacks 'avg'"),
            (callback, None, "its EMA callback's state is None, not a dict"),
            (generator, torch.zeros(3, dtype=torch.uint8),
             "its random state 'generator' is a torch.uint8 tensor of shape (3,), not the "
             "5,056 bytes this run's takes")):
        ck = torch.load(tmp_path / "s.pt", weights_only=True)
        entry(ck, damaged)
        (tmp_path / "bad").mkdir(exist_ok=True)
        torch.save(ck, tmp_path / "bad" / "s.pt")
        with pytest.raises(DataError, match=re.escape(f"a damaged training state ({reason}); "
                                                      f"delete it")):
            _toy_fit(tmp_path / "bad", 4, [EMA(0.9)], resume=True)


def test_a_state_that_records_no_settings_is_refused_by_a_run_that_has_them(tmp_path):
    from graphvae.training.state import restore_state
    path = tmp_path / "s.pt"
    _saved_after_three_epochs(path, config=None)
    state, result = _fit_pair()
    with pytest.raises(DataError, match=r"s\.pt: the training state belongs to a run with "
                                        r"other settings \(it records none\)"):
        restore_state(path, state, result, None, {"lr": 0.1}, epochs=10)


def test_settings_differences_are_listed_once_each_and_in_full():
    from graphvae.training.state import _refuse_other_version, _settings_diff, same_value
    # two data keys differ: one "other data"
    assert _settings_diff({"data": 1, "graph": 2}, {"data": 3, "graph": 4}) == "other data"
    # three keys only the state has: all three, and no "more"
    assert _settings_diff({"a": 1, "b": 2, "c": 3}, {}) == \
        "'a': unset here, 1 in the state; 'b': unset here, 2 in the state; " \
        "'c': unset here, 3 in the state"
    assert _settings_diff({"a": 1, "b": 2, "c": 3, "d": 4}, {}).endswith("; 1 more")
    # tensors compare element-wise: their truth value raises, so they are not the same
    assert same_value(torch.ones(2), torch.ones(2)) is False
    assert same_value({"a": 1}, {"a": 1}) is True
    with pytest.raises(DataError, match=r"did not record b, c, d and 1 more; it cannot be "
                                        r"resumed"):
        _refuse_other_version(Path("s.pt"), {"a": 1}, {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1})


class _Items(torch.nn.Module):
    """Bound w · x for each item x of a batch (one value per item), loss its negative sum;
    records whether each call ran in training mode. ``x = inf`` gives an infinite loss."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.modes = []

    def forward(self, batch, generator=None):
        self.modes.append(self.training)
        v = self.w * torch.as_tensor(batch, dtype=torch.float32)
        return BoundEstimate(v, -v.sum(), v, torch.zeros_like(v))


def test_the_loop_counts_items_modes_and_refuses_what_cannot_train():
    """With a learning rate of 0, items 1, 2, 3 in batches of 2 give a train_bound of
    (1 + 2 + 3) / 3 items = 2 (per batch it would be 3); evaluation runs in eval mode and
    the next epoch's steps in training mode; without evaluate, best_epoch is the last; a
    loader with no batches, and an infinite loss, are refused; a NaN in the second step
    of epoch 1 is divergence, not a first-step failure."""
    model = _Items()
    evals = []

    def evaluate():
        evals.append(model.training)
        return {"score": 0.0}

    items = Shuffled(torch.tensor([1.0, 2.0, 3.0]), 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    result = fit(model, items, opt, epochs=2, evaluate=evaluate, progress=False)
    assert result.column("train_bound") == [2.0, 2.0]
    assert evals == [False, False] and model.modes == [True] * 4
    assert fit(model, items, opt, epochs=3, progress=False).best_epoch == 3
    with pytest.raises(ValueError, match="the loader gave no batches"):
        fit(model, [], opt, epochs=1, progress=False)
    with pytest.raises(FloatingPointError, match="the loss is -inf at the first step"):
        fit(model, [torch.tensor([math.inf])], opt, epochs=1, progress=False)
    with pytest.raises(FloatingPointError, match="training diverged: the loss is nan at "
                                                 "epoch 1; try a lower"):
        fit(model, [torch.ones(1), torch.tensor([math.nan])], opt, epochs=1, progress=False)


def test_a_resumed_run_that_stopped_early_trains_no_further(tmp_path):
    """A run that early stopping ended at epoch 2 of 5 is finished: resumed with the same
    settings it trains no more epochs (its state says stop) and keeps its 2 epochs."""

    class StopAt2(Callback):
        def on_epoch_end(self, state):
            state.stop = state.epoch == 2

    model = _Items()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    first = fit(model, [torch.ones(1)], opt, epochs=5, callbacks=[StopAt2()],
                checkpoint=tmp_path / "s.pt", progress=False)
    assert first.epochs == 2
    model.modes.clear()
    again = fit(model, [torch.ones(1)], opt, epochs=5, callbacks=[StopAt2()],
                checkpoint=tmp_path / "s.pt", resume=True, progress=False)
    assert again.epochs == 2 and len(again.history) == 2 and model.modes == []


def test_shuffled_lists_follow_the_generators_permutation():
    """A list of 5 items in batches of 2 is 3 batches (the last of one item), in the order
    of the epoch's permutation drawn from the loop's generator (not the list's order)."""
    items = list("abcde")
    loader = Shuffled(items, 2)
    assert len(loader) == 3
    batches = list(loader.batches(1, torch.Generator().manual_seed(7)))
    order = torch.randperm(5, generator=torch.Generator().manual_seed(7)).tolist()
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [x for b in batches for x in b] == [items[i] for i in order]
    assert order != sorted(order)


def test_checkpoint_seconds_count_from_the_last_write(tmp_path, monkeypatch):
    """On a clock that moves 10 s a step (one step an epoch), a 25 s period writes the
    state at epoch 3 (30 s since the start) and then not until 25 s after that write: 6 is
    the last epoch, written anyway (counting from the start wrote 3, 4, 5 and 6)."""
    from conftest import ToyBound
    now = [0.0]
    monkeypatch.setattr(training, "time", type("Clock", (), {"perf_counter": lambda: now[0]}))

    class Tick(Callback):
        def on_step_start(self, state):
            now[0] += 10.0

    real, written = training.save_state, []
    monkeypatch.setattr(training, "save_state", lambda path, state, result, *a:
                        written.append(result.epochs) or real(path, state, result, *a))
    model = ToyBound()
    fit(model, [torch.ones(3)], torch.optim.SGD(model.parameters(), lr=0.1), epochs=6,
        callbacks=[Tick()], checkpoint=tmp_path / "s.pt", checkpoint_every=100,
        checkpoint_seconds=25.0, progress=False)
    assert written == [3, 6]
