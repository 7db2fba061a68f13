"""The training loop's callbacks (training/callbacks.py), on the one-weight quadratic of
test_training: loss (w − 3)², SGD with rate 0.25 halving the distance to 3 each step
(w = 1.5, 2.25, 2.625, ...; the epoch losses 9, 2.25, 0.5625, 0.140625, ...)."""

import math

import pytest
import torch
from test_training import Quadratic

from graphvae.training import (
    EMA,
    Converged,
    EarlyStopping,
    FullBatch,
    GradientHook,
    KLWarmup,
    PlateauDecay,
    fit,
)
from graphvae.training.callbacks import FitState, unwrap


def _fit(epochs, callbacks, scores=None, lr=0.25, model=None, optimizer=None):
    m = model or Quadratic()
    opt = optimizer or torch.optim.SGD(m.parameters(), lr=lr)
    it = iter(scores) if scores is not None else None
    res = fit(m, FullBatch(None), opt, epochs=epochs, callbacks=callbacks, progress=False,
              evaluate=(lambda: {"score": next(it)}) if it is not None else None)
    return m, opt, res


class Wrapper(torch.nn.Module):
    """Holds the model as ``module``, as DistributedDataParallel does."""

    def __init__(self, inner):
        super().__init__()
        self.module = inner


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("make, message", [
    (lambda: EarlyStopping(-1), "patience must be >= 0, got -1"),
    (lambda: PlateauDecay(1.0), "PlateauDecay needs a factor (lr_decay) in (0, 1), a patience "
                                "(decay_patience) >= 1 and min_lr > 0, got 1.0, 10, 1e-05"),
    (lambda: PlateauDecay(0.5, patience=0), "got 0.5, 0, 1e-05"),
    (lambda: PlateauDecay(0.5, min_lr=0.0), "got 0.5, 10, 0.0"),
    (lambda: EMA(0.0), "EMA needs a decay (ema) in (0, 1), got 0.0"),
    (lambda: KLWarmup(-1), "kl_warmup must be >= 0 epochs, got -1"),
    (lambda: KLWarmup(2, weight=1.5), "the KL weight must lie in (0, 1], got 1.5"),
    (lambda: KLWarmup(2, weight=0.0), "the KL weight must lie in (0, 1], got 0.0"),
    (lambda: Converged(math.inf), "Converged needs a finite tol >= 0, got inf"),
])
def test_each_callback_names_a_setting_outside_its_range(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------ plateau decay
def test_plateau_decay_leaves_a_run_that_is_stopping_alone():
    """Early stopping (patience 0) stops at the first stale evaluation, epoch 2; the decay
    listed after it, due then too (patience 1), must not also cut the rate."""
    _, opt, res = _fit(5, [EarlyStopping(0), PlateauDecay(0.5, patience=1)], [1.0, 0.0, 0.0])
    assert res.epochs == 2 and opt.param_groups[0]["lr"] == 0.25


@pytest.mark.parametrize("lr, factor, min_lr", [(0.7, 0.1, 0.07), (0.25, 0.5, 0.125)])
def test_plateau_decay_may_reach_min_lr_but_not_pass_it(lr, factor, min_lr):
    """A rate cut to min_lr continues: 0.25 · 0.5 is 0.125 exactly, and 0.7 · 0.1 is
    0.06999999999999999 in floats, 0.07 as written. The next cut would pass it: the run
    stops at that evaluation (epoch 3), having trained epoch 3 at min_lr."""
    _, opt, res = _fit(6, [PlateauDecay(factor, patience=1, min_lr=min_lr)],
                       [1.0, 0.0, 0.0, 0.0], lr=lr)
    assert res.epochs == 3
    assert res.column("lr") == pytest.approx([lr, lr, min_lr])


def test_plateau_decay_counts_its_patience_again_after_each_cut():
    """Scores 1, 0, 0, 0, 0, 0 with patience 2: cuts after epochs 3 and 5, not after each
    stale evaluation once the first cut is made."""
    _, _, res = _fit(6, [PlateauDecay(0.5, patience=2, min_lr=1e-6)],
                     [1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert res.column("lr") == [0.25, 0.25, 0.25, 0.125, 0.125, 0.0625]


def test_plateau_decay_scales_every_parameter_group_and_reports_the_first():
    """Groups at rates 0.25 (the weight) and 0.5 (an idle one): a cut after epoch 2 gives
    0.125 and 0.25, their ratio kept (each group was set to the first's cut rate, 0.125);
    the rate reported each epoch is the first group's."""
    m = Quadratic()
    idle = torch.nn.Parameter(torch.zeros(()))
    opt = torch.optim.SGD([{"params": [m.w], "lr": 0.25}, {"params": [idle], "lr": 0.5}])
    _, _, res = _fit(3, [PlateauDecay(0.5, patience=1, min_lr=1e-6)], [1.0, 0.0, 2.0],
                     model=m, optimizer=opt)
    assert [g["lr"] for g in opt.param_groups] == [0.125, 0.25]
    assert res.column("lr") == [0.25, 0.25, 0.125]


def test_a_restore_restarts_the_average_from_the_restored_weights():
    """After w = 1 and a step to 2 the average (decay 0.5) is 1.5; restoring best weights
    w = 0.25 loads them and tells every callback: the average starts again from 0.25."""
    m = Quadratic()
    ema = EMA(0.5)
    state = FitState(model=m, optimizer=torch.optim.SGD(m.parameters(), lr=0.25),
                     callbacks=[ema])
    with torch.no_grad():
        m.w.fill_(1.0)
    ema.on_step_start(state)
    with torch.no_grad():
        m.w.fill_(2.0)
    ema.on_step_end(state)
    assert ema.avg is not None and float(ema.avg[0]) == 1.5
    state.best_state = {"w": torch.tensor(0.25)}
    state.restore_best()
    assert m.w.item() == 0.25 and float(ema.avg[0]) == 0.25


# ------------------------------------------------------------------ EMA and hooks
def test_ema_weights_the_new_weights_by_one_minus_the_decay():
    """Decay 0.75: avg = 0.75 · 0 + 0.25 · 1.5 = 0.375, then 0.75 · 0.375 + 0.25 · 2.25 =
    0.84375 (the decay 0.5 of test_training cannot tell the two weights apart)."""
    m, _, _ = _fit(2, [EMA(0.75)])
    assert m.w.item() == pytest.approx(0.84375)


def test_callbacks_reach_the_model_inside_a_wrapper():
    m = Quadratic()
    wrapped = Wrapper(m)
    assert unwrap(wrapped) is m and unwrap(m) is m
    odd = torch.nn.Module()
    odd.module = 3                               # not a module: the object itself
    assert unwrap(odd) is odd
    state = FitState(model=wrapped, optimizer=torch.optim.SGD(m.parameters(), lr=0.1),
                     callbacks=[])
    seen = []
    GradientHook(seen.append).on_after_backward(state)
    KLWarmup(0, weight=0.5).on_step_start(state)
    assert seen == [m] and m.kl_weight == 0.5 and "kl_weight" not in vars(wrapped)


# ------------------------------------------------------------------ convergence
def test_converged_reads_epoch_one_and_every_nth_epoch():
    """Every 2 epochs, never stopping (tol 0): readings at epochs 1, 2 and 4."""
    conv = Converged(0.0, every=2)
    _fit(4, [conv])
    assert conv.losses == [9.0, 2.25, 0.140625]


@pytest.mark.parametrize("tol, epochs", [(3.0, 3), (2.999, 8), (0.5, 8)])
def test_converged_compares_the_change_with_tol_times_the_newer_loss(tol, epochs):
    """Each loss is a quarter of the one before: every change is exactly 3 times the newer
    loss (2.25 − 0.5625 = 1.6875 = 3 · 0.5625). tol 3 stops at the first comparison
    (epoch 3), tol 2.999 never; tol 0.5 never either, though the change falls under 0.5
    itself at epoch 4 (0.5625 − 0.140625 = 0.42)."""
    _, _, res = _fit(8, [Converged(tol, every=1)])
    assert res.epochs == epochs


def test_converged_with_tol_zero_never_stops_even_on_a_flat_loss():
    _, _, res = _fit(5, [Converged(0.0, every=1)], lr=0.0)
    assert res.epochs == 5 and res.column("loss") == [9.0] * 5


def test_converged_keeps_its_readings_in_its_state():
    conv = Converged(0.1, every=1)
    _fit(3, [conv])
    again = Converged(0.1, every=1)
    again.load_state_dict(conv.state_dict())
    assert again.losses == conv.losses == [9.0, 2.25, 0.5625]
    again.losses.append(1.0)
    assert conv.losses == [9.0, 2.25, 0.5625]                  # a copy, not the same list
