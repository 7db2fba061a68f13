"""Run configurations: JSON round trips, refusals, and the command-line flags generated from
the fields (the flags' defaults are the configs' defaults: one source of truth)."""

import argparse
import json

import numpy as np
import pytest

from graphvae.tasks.generation import GenerationConfig
from graphvae.tasks.link_prediction import PRESETS, LinkPredConfig
from graphvae.vector.config import VectorRunConfig

CONFIGS = [LinkPredConfig, GenerationConfig, VectorRunConfig]


@pytest.mark.parametrize("cls", CONFIGS)
def test_json_round_trip(cls):
    cfg = cls()
    again = cls.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and isinstance(again.hidden, tuple)


@pytest.mark.parametrize("cls", CONFIGS)
def test_unknown_keys_and_wrong_types_are_one_line_errors(cls):
    with pytest.raises(ValueError, match=r"unknown config key\(s\): 'epochz' \(did you mean "
                                         r"epochs\?\); the keys are the fields of "):
        cls.from_dict({"epochs": 3, "epochz": 4})
    many = {f"k{i}": i for i in range(7)}           # five named, the rest counted
    with pytest.raises(ValueError, match=r": 'k0', 'k1', 'k2', 'k3', 'k4', 2 more; the keys"):
        cls.from_dict(many)
    with pytest.raises(ValueError, match="config field 'epochs' has the wrong type: '3'"):
        cls.from_dict({"epochs": "3"})
    with pytest.raises(ValueError, match="'hidden' has the wrong type"):
        cls.from_dict({"hidden": [8, "a"]})
    with pytest.raises(ValueError, match="'lr' has the wrong type: True"):
        cls.from_dict({"lr": True})
    with pytest.raises(ValueError, match="a .* is a JSON object"):
        cls.from_dict([1, 2])


@pytest.mark.parametrize("cls", [GenerationConfig, VectorRunConfig])
def test_generated_flags_default_to_the_config_defaults(cls):
    p = argparse.ArgumentParser()
    cls.add_arguments(p)
    assert cls.from_args(p.parse_args([])) == cls()


def test_generated_flags_parse_every_kind_of_field():
    p = argparse.ArgumentParser()
    GenerationConfig.add_arguments(p)
    cfg = GenerationConfig.from_args(p.parse_args(
        ["--hidden", "8,4", "--no-valency", "--model", "graphvae", "--lr", "0.5",
         "--num-samples", "7", "--dataset", "grid"]))
    assert cfg == GenerationConfig(hidden=(8, 4), valency=False, model="graphvae", lr=0.5,
                                   num_samples=7, dataset="grid")
    with pytest.raises(SystemExit):
        p.parse_args(["--model", "onehot-vae"])            # choices come from the registry
    v = argparse.ArgumentParser()
    VectorRunConfig.add_arguments(v)
    cfg = VectorRunConfig.from_args(v.parse_args(["--variance", "0.25", "--k", "3",
                                                  "--noise", "0.5", "--bf16"]))
    assert (cfg.variance, cfg.num_samples, cfg.noise_level, cfg.bf16) == (0.25, 3, 0.5, True)


def test_preset_flags_override_only_what_is_given():
    p = argparse.ArgumentParser()
    LinkPredConfig.add_arguments(p, unset=True)
    assert LinkPredConfig.given(p.parse_args([])) == {}
    given = LinkPredConfig.given(p.parse_args(["--epochs", "5", "--no-self-loops",
                                               "--feature-mode", "identity"]))
    assert given == {"epochs": 5, "self_loops": False, "features": "identity"}
    best = PRESETS["best"].replace(**given)
    assert (best.encoder, best.latent, best.epochs, best.self_loops) == ("gnae", 128, 5, False)


def test_validation_runs_on_every_construction():
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got nan"):
        GenerationConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="max-nodes applies to --model graphvae"):
        GenerationConfig().replace(max_nodes=5)
    with pytest.raises(ValueError, match="noise must be in \\[0, 1\\] for masking"):
        VectorRunConfig(corruption="masking", noise_level=2.0)
    # check_lr alone: a string failed inside the comparison, True passed as a rate of 1
    from graphvae.checks import check_lr
    for bad in ("1e-3", True):
        with pytest.raises(ValueError, match=f"^lr must be a finite number > 0, got {bad}$"):
            check_lr(bad)
    check_lr(np.float32(1e-3))


def test_width_lists_are_whole_integers_or_empty():
    """``--hidden`` lists: an empty text is no layer (``--hidden ''``, as the best preset
    has); an empty item is refused, where ``1,,2`` was read as 1,2 and ``,`` as no layer."""
    from graphvae.config import comma_ints
    assert comma_ints("64,64") == (64, 64) and comma_ints(" 8 , 16 ") == (8, 16)
    assert comma_ints("") == () and comma_ints("  ") == ()
    for text in (",", "1,,2", "8,", ",8", "4,x"):
        with pytest.raises(argparse.ArgumentTypeError,
                           match=f"expected comma-separated integers, got '{text}'"):
            comma_ints(text)


def test_refusals_name_the_setting_as_its_flag():
    """A config's refusal spelt the setting as its flag without the dashes ('epochs must be
    at least 1', 'num-samples must ...') beside others that had them ('--hidden needs ...').
    The first word is now the flag wherever it is one; a config file's reader turns it back
    into the file's key."""
    cases = [(LinkPredConfig, {"epochs": 0}, "--epochs must be at least 1, got 0"),
             (LinkPredConfig, {"batch_size": 0}, "--batch-size must be at least 1, got 0"),
             (LinkPredConfig, {"test_fraction": 1.5}, "--test-fraction must lie in (0, 1), "
                                                      "got 1.5"),
             (LinkPredConfig, {"lr": -1.0}, "--lr must be a finite number > 0, got -1.0"),
             (GenerationConfig, {"num_samples": 0}, "--num-samples must lie in 1 … 100,000"),
             (GenerationConfig, {"beta": 2.0}, "--beta must lie in (0, 1], got 2.0"),
             (VectorRunConfig, {"ema": 1.5}, "--ema must be in (0, 1), got 1.5"),
             # not a flag's name: as written
             (GenerationConfig, {"dataset": "nope"}, "unknown data set 'nope'"),
             (LinkPredConfig, {"val_fraction": 0.6, "test_fraction": 0.6},
              "the validation and test fractions sum to 1.2, which leaves no edges")]
    for cls, fields, message in cases:
        with pytest.raises(ValueError) as exc:
            cls(**fields)
        assert str(exc.value).startswith(message), str(exc.value)
