"""The settings of ``graphvae linkpred`` (tasks/link_prediction_config.py): each refusal at
its bound, in full, each bound itself accepted, the defaults of Kipf & Welling's protocol,
and the notes on settings a run does not read."""

import pytest

from graphvae.tasks.link_prediction_config import LinkPredConfig

L = LinkPredConfig
_SELECTION_LAST = ("--patience and --eval-every act on the validation score, which "
                   "--selection last does not compute; use --selection val")


def _negatives(value):
    return (f"--negatives must lie in (0, 1000], got {value} (for every non-edge, use "
            f"--estimator dense)")


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("fields, message", [
    (dict(model="ae"), "--model must be one of gae, vgae, joint, got 'ae'"),
    (dict(epochs=0), "--epochs must be at least 1, got 0"),
    (dict(lr=0.0), "--lr must be a finite number > 0, got 0.0"),
    (dict(negatives=0.0), _negatives(0.0)),
    (dict(negatives=1000.0000000000001), _negatives(1000.0000000000001)),
    (dict(dropout=-0.0001), "--dropout must lie in [0, 1), got -0.0001"),
    (dict(dropout=1.0), "--dropout must lie in [0, 1), got 1.0"),
    (dict(val_fraction=0.0), "--val-fraction must lie in (0, 1), got 0.0"),
    (dict(val_fraction=1.0), "--val-fraction must lie in (0, 1), got 1.0"),
    (dict(test_fraction=0.0), "--test-fraction must lie in (0, 1), got 0.0"),
    (dict(test_fraction=1.0), "--test-fraction must lie in (0, 1), got 1.0"),
    # 0.25 + 0.75 is exactly 1 in binary: no edge would be left to train on
    (dict(val_fraction=0.25, test_fraction=0.75),
     "the validation and test fractions sum to 1, which leaves no edges to train on: "
     "--val-fraction + --test-fraction must be below 1"),
    (dict(hidden=(8, 0)), "--hidden needs widths from 1 to 65536, got 8,0"),
    (dict(latent=0), "--latent must be a width from 1 to 65536, got 0"),
    (dict(features="pca"), "--feature-mode must be one of raw, normalize, standardize, "
                           "identity, propagated, got 'pca'"),
    (dict(propagated_dim=0), "--propagated-dim must be a width from 1 to 65536, got 0"),
    (dict(propagated_dim=65537), "--propagated-dim must be a width from 1 to 65536, got 65537"),
    (dict(propagated_hops=-1), "--propagated-hops must lie in 0 … 1000 (more steps only "
                               "repeat the graph's stationary vector), got -1"),
    (dict(propagated_hops=1001), "--propagated-hops must lie in 0 … 1000 (more steps only "
                                 "repeat the graph's stationary vector), got 1001"),
    (dict(selection="best"), "--selection must be 'val' or 'last', got 'best'"),
    (dict(patience=-1), "--patience must be >= 0, got -1"),
    (dict(selection="last", patience=0), _SELECTION_LAST),
    (dict(selection="last", eval_every=2), _SELECTION_LAST),
    (dict(batch_size=0), "--batch-size must be at least 1, got 0"),
    (dict(batch_size=4, estimator="dense"),
     "mini-batch steps (--batch-size) sample their non-edges; use --estimator sampled"),
    (dict(batch_size=4, steps_per_epoch=-1),
     "--steps-per-epoch must be at least 0 (0: one pass), got -1"),
    (dict(steps_per_epoch=0), "--steps-per-epoch applies to mini-batch steps; give --batch-size"),
    (dict(steps_per_epoch=2), "--steps-per-epoch applies to mini-batch steps; give --batch-size"),
    (dict(eval_every=0), "--eval-every must be at least 1, got 0"),
])
def test_each_setting_is_refused_past_its_bound_in_one_line(fields, message):
    with pytest.raises(ValueError) as err:
        L(**fields)
    assert str(err.value) == message


@pytest.mark.parametrize("fields", [
    dict(negatives=1000.0), dict(negatives=5e-324),
    dict(dropout=0.0), dict(dropout=0.9999999999999999),
    dict(val_fraction=1e-9), dict(val_fraction=1e-9, test_fraction=0.999),
    # 0.5 + 0.4999999999999999 is 0.9999999999999999 in float64: below 1
    dict(val_fraction=0.5, test_fraction=0.4999999999999999),
    dict(hidden=()), dict(latent=1),
    dict(propagated_dim=1), dict(propagated_dim=65536),
    dict(propagated_hops=0), dict(propagated_hops=1000),
    dict(patience=0), dict(selection="last"),
    dict(batch_size=1), dict(batch_size=1, steps_per_epoch=0),
    dict(batch_size=1, steps_per_epoch=3),
])
def test_each_bound_itself_is_accepted(fields):
    assert all(getattr(L(**fields), k) == v for k, v in fields.items())


# ------------------------------------------------------------------ defaults
def test_the_defaults_are_kipf_and_wellings_protocol():
    """Kipf & Welling (2016, "Variational graph auto-encoders"): a 32-16 GCN encoder
    trained for 200 iterations with Adam at learning rate 0.01, 5 % of the edges held out
    for validation and 10 % for testing; dropout 0 is their code's default (tkipf/gae)."""
    cfg = L()
    assert (cfg.model, cfg.encoder, cfg.hidden, cfg.latent, cfg.decoder) == (
        "vgae", "gcn", (32,), 16, "inner")
    assert (cfg.epochs, cfg.lr, cfg.dropout) == (200, 0.01, 0.0)
    assert (cfg.val_fraction, cfg.test_fraction) == (0.05, 0.10)
    assert (cfg.estimator, cfg.negatives, cfg.steps_per_epoch, cfg.batch_size) == (
        "sampled", 1.0, 1, None)


# ------------------------------------------------------------------ notes
@pytest.mark.parametrize("fields, notes", [
    (dict(estimator="dense", negatives=2.0),
     ["--negatives applies only to --estimator sampled; ignored here"]),
    (dict(propagated_dim=8, propagated_hops=2),
     ["--propagated-dim applies only to --feature-mode propagated; ignored here",
      "--propagated-hops applies only to --feature-mode propagated; ignored here"]),
    (dict(propagated_hops=2),
     ["--propagated-hops applies only to --feature-mode propagated; ignored here"]),
    # where they apply, or left at their defaults, they are no note
    (dict(negatives=2.0), []),
    (dict(features="propagated", propagated_dim=8, propagated_hops=2), []),
    (dict(estimator="dense", features="identity"), []),
])
def test_a_setting_the_run_does_not_read_is_noted(fields, notes):
    assert L(**fields).ignored_settings() == notes
