"""The settings of ``graphvae generate`` (tasks/generation_config.py): each refusal at its
bound, the defaults that depend on other settings, and the settings a training state is
tied to."""

import pytest

from graphvae.models.graphvae import MAX_GRAPHVAE_SLOTS
from graphvae.tasks.generation_config import (
    MAX_DRAWS,
    MAX_GRAPH_SAMPLES,
    MAX_PERMS,
    MAX_SAMPLES,
    GenerationConfig,
)

G = GenerationConfig


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("fields, message", [
    (dict(model="graphvae", bound="permutation", num_perms=10_001),
     "--num-perms must be at most 10,000 (each is a decoding of every graph at every step), "
     "got 10001"),
    (dict(eval_every=0), "--eval-every must be >= 1, got 0"),
    (dict(batch_size=0), "--batch-size must be >= 1, got 0"),
    (dict(dataset="qm9", num_samples=100_001),
     "--num-samples must lie in 1 … 100,000 (every sample is drawn, kept in memory and "
     "scored: the bound keeps a mistyped count from running for hours), got 100001"),
    (dict(num_samples=10_001),
     "--num-samples must be at most 10,000 for a graph set (the MMD² compares every pair "
     "of samples: minutes and gigabytes beyond), got 10001"),
    (dict(draws=10_001), "--draws must be at most 10,000, got 10001"),
    (dict(model="graphvae", max_nodes=1),
     "--max-nodes applies to --model graphvae and must lie in 2 … 1,024, got 1 with graphvae"),
    (dict(model="graphvae", max_nodes=1025),
     "--max-nodes applies to --model graphvae and must lie in 2 … 1,024, got 1025 with "
     "graphvae"),
    (dict(dataset="qm9", model="graphvae"),
     "qm9 is supported with --model oneshot-vae or seq-vae (typed nodes and bonds)"),
    (dict(components=0), "--components must be a width from 1 to 65536, got 0"),
    (dict(kl_warmup=-1), "--kl-warmup must be >= 0, got -1"),
    (dict(prior="flow"), "unknown prior 'flow': use one of normal, set-mixture, exemplar"),
    (dict(selection="best"), "unknown selection 'best': use one of val, last"),
    (dict(model="graphvae", logvar_offset=-1.0),
     "--prior, --beta and --logvar-offset apply to oneshot-vae and seq-vae"),
    (dict(beta=0.0), "--beta must lie in (0, 1], got 0.0"),
    (dict(logvar_offset=float("inf")), "--logvar-offset must be finite, got inf"),
    (dict(logvar_offset=float("nan")), "--logvar-offset must be finite, got nan"),
    (dict(model="graphvae", kl_warmup=2), "--kl-warmup applies to oneshot-vae and seq-vae"),
    (dict(protocol="gdss", dataset="qm9"),
     "--protocol gdss is GDSS's set-up for graph sets; qm9 is scored with molecule metrics"),
    (dict(qm9_limit=5), "--qm9-limit applies to --dataset qm9, not the default data set"),
    (dict(dataset="ego-small", qm9_limit=5), "--qm9-limit applies to --dataset qm9, not "
                                             "ego-small"),
    (dict(dataset="qm9", qm9_limit=-1), "--qm9-limit must be >= 0, got -1"),
    (dict(seed=-1), "--seed must be an integer from 0 to 4294967295, got -1"),
    (dict(hidden=(0,)), "--hidden needs at least one width, each from 1 to 65536, got 0"),
    (dict(hidden=()), "--hidden needs at least one width, each from 1 to 65536, got none"),
])
def test_each_setting_is_refused_past_its_bound_in_one_line(fields, message):
    with pytest.raises(ValueError) as err:
        G(**fields)
    assert str(err.value) == message


@pytest.mark.parametrize("fields", [
    dict(model="graphvae", bound="permutation", num_perms=MAX_PERMS),
    dict(dataset="qm9", num_samples=MAX_SAMPLES),
    dict(dataset="qm9", num_samples=MAX_GRAPH_SAMPLES + 1),     # molecules: mean embeddings
    dict(num_samples=MAX_GRAPH_SAMPLES),
    dict(draws=MAX_DRAWS),
    dict(model="graphvae", max_nodes=2),
    dict(model="graphvae", max_nodes=MAX_GRAPHVAE_SLOTS),
    dict(beta=1.0), dict(beta=1e-9),
    dict(model="graphvae", kl_warmup=0),
    dict(dataset="qm9", qm9_limit=0),
])
def test_each_bound_itself_is_accepted(fields):
    assert all(getattr(G(**fields), k) == v for k, v in fields.items())


# ------------------------------------------------------------------ defaults resolved
@pytest.mark.parametrize("fields, prior, rule, conv, selection, warmup, beta, offset", [
    # seq-vae on a graph set: the exemplar prior, its KL weight and offset, the last weights
    (dict(), "exemplar", "lookahead", "gin", "last", 100, 0.001, -6.0),
    (dict(dataset="qm9"), "set-mixture", "cuts", "gin", "val", 100, 1.0, 0.0),
    (dict(model="oneshot-vae"), "normal", "lookahead", "gin", "val", 0, 1.0, 0.0),
    (dict(model="graphvae"), "normal", "lookahead", "gcn", "val", 0, 1.0, 0.0),
    # a third of the epochs, at least one
    (dict(epochs=2), "exemplar", "lookahead", "gin", "last", 1, 0.001, -6.0),
    (dict(epochs=9), "exemplar", "lookahead", "gin", "last", 3, 0.001, -6.0),
    # what is given wins
    (dict(prior="normal", kl_warmup=0, conv="gcn", connect_rule="cuts"),
     "normal", "cuts", "gcn", "val", 0, 1.0, 0.0),
    (dict(beta=0.5, logvar_offset=-2.0, selection="val"),
     "exemplar", "lookahead", "gin", "val", 100, 0.5, -2.0),
])
def test_the_defaults_that_depend_on_other_settings(fields, prior, rule, conv, selection,
                                                     warmup, beta, offset):
    cfg = G(**fields)
    assert (cfg.prior_name, cfg.connect_rule_name, cfg.conv_name, cfg.selection_name,
            cfg.kl_warmup_epochs, cfg.kl_beta, cfg.offset) == (prior, rule, conv, selection,
                                                              warmup, beta, offset)
    assert cfg.fits_exemplar == (prior == "exemplar")


@pytest.mark.parametrize("fields, name", [
    (dict(), "community-small (generated)"),
    (dict(dataset="community-small"), "community-small"),
    (dict(dataset="community-small", generated=True), "community-small (generated)"),
    (dict(dataset="grid", generated=True), "grid (generated)"),
    (dict(dataset="lobster"), "lobster (generated)"),            # always generated
    (dict(dataset="ego-small"), "ego-small"),
    (dict(dataset="qm9"), "qm9"),
])
def test_the_data_set_is_named_with_how_it_is_made(fields, name):
    assert G(**fields).dataset_name == name


def test_a_state_is_tied_to_the_training_settings_only():
    """Sample count, draws, the MMD kernels, the valency-aware row and the FCD act after
    training: changing them keeps the state's settings; anything else changes them."""
    base = G().training_settings()
    for fields in (dict(num_samples=7), dict(draws=3), dict(protocol="gran"),
                   dict(valency=False), dict(fcd=False)):
        assert G(**fields).training_settings() == base, fields
    for fields in (dict(epochs=7), dict(lr=0.01), dict(seed=1), dict(eval_every=5)):
        assert G(**fields).training_settings() != base, fields
