"""The options of a ``graphvae vector`` run: one frozen config, from which the command's
flags are generated."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from graphvae.config import Config, check_lr, check_seed, check_widths, comma_ints, option
from graphvae.vector.layers import ACTIVATIONS, CORRUPTIONS
from graphvae.vector.models import IWAE_DEFAULT_K, VECTOR_MODELS, check_variance
from graphvae.vector.train import MAX_CHECKPOINT_SAMPLES

MODEL_CHOICES = ("linear", *VECTOR_MODELS)
#: The most importance samples a test log p(x) may ask for: the estimate costs a decoder
#: pass per sample and row, and 10⁶ already takes 200 times the default's time.
MAX_NLL_SAMPLES = 1_000_000


def _variance(text: str) -> str | float:
    """``--variance``: ``learned`` or a number."""
    if text == "learned":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'learned' or a number, got {text!r}") from None


def _patience(text: str) -> int | None:
    """``--patience``: a count of epochs, or ``off`` (run every epoch)."""
    if text.strip().lower() == "off":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of epochs or 'off', got "
                                         f"{text!r}") from None


@dataclass(frozen=True)
class VectorRunConfig(Config):
    """Options of one ``graphvae vector`` run (the command's flags are generated from them)."""

    AFTER_TRAINING = frozenset({"nll_samples"})

    model: str = option("vae", "linear (vs PCA; full-batch gradient descent in float64 on "
                        "the CPU, of the training flags only --latent-dim, --epochs and "
                        "--seed apply), ae, dae, vae or iwae", choices=MODEL_CHOICES)
    latent_dim: int | None = option(None, "code size (default: d for d <= 2 columns, "
                                    "d // 2 between 2 and 10 up to 100 columns, 40 beyond; "
                                    "--model linear: min(10, d))")
    hidden: tuple[int, ...] = option((400,), "hidden widths, comma-separated", metavar="W,W",
                                     parse=comma_ints)
    activation: str = option("relu", "hidden layers; gated: gated linear units "
                             "(W x + b) * sigmoid(V x + c)", choices=lambda: sorted(ACTIVATIONS))
    likelihood: str | None = option(None, "decoder (default: bernoulli when the training "
                                    "rows are 0/1, else gaussian)",
                                    choices=("bernoulli", "gaussian"))
    variance: str | float = option("learned", "gaussian decoder variance: 'learned' or a "
                                   "number", parse=_variance)
    corruption: str = option("gaussian", "dae noise", choices=CORRUPTIONS)
    noise_level: float = option(0.1, "dae noise level", flag="--noise")
    num_samples: int = option(IWAE_DEFAULT_K, "IWAE importance samples K", flag="--k")
    epochs: int = option(50, "training epochs (--model linear: max(100 x epochs, 1000) "
                         "full-batch steps)")
    batch_size: int = option(100, "rows per batch")
    lr: float = option(1e-3, "learning rate")
    patience: int | None = option(20, "early stopping: epochs without a better validation "
                                  "bound; off: run every epoch (unless --lr-decay would "
                                  "cut the rate below 1e-5; the best validation weights "
                                  "are still kept)",
                                  metavar="N|off", parse=_patience)
    lr_decay: float | None = option(None, "multiply the rate by this after each validation "
                                    "plateau of --decay-patience epochs; a cut below 1e-5 "
                                    "ends training (default: constant rate)")
    decay_patience: int = option(5, "plateau length")
    ema: float | None = option(None, "average the weights, e.g. 0.998 (Polyak)")
    kl_warmup: int = option(0, "vae: raise the KL weight from 0 to 1 over this many epochs")
    bf16: bool = option(False, "training steps' matrix products in bfloat16 (autocast; "
                        "weights, bounds and evaluation stay float32)")
    nll_samples: int = option(5000, "importance samples for the test log p(x)")
    refine_epochs: int = option(0, "vae / iwae: then train the encoder alone (decoder frozen) "
                                "on IWAE_50 for this many epochs and also report "
                                "test_nll_refined, the same model's log p(x) with that better "
                                "proposal (0: off)")
    seed: int = option(0, "seed of the split (the data sets without a fixed one), the "
                       "weights and the estimates")
    device: str = option("cpu", "cpu, cuda, cuda:N or auto")

    def applies(self) -> dict[str, tuple[bool, str]]:
        linear = self.model == "linear"
        out = {
            "num_samples": (self.model == "iwae", "--model iwae"),
            "corruption": (self.model == "dae", "--model dae"),
            "noise_level": (self.model == "dae", "--model dae"),
            "variance": (not linear and self.likelihood != "bernoulli",
                         "the gaussian likelihood"),
        }
        for name in ("likelihood", "hidden", "activation", "batch_size", "lr", "patience",
                     "lr_decay", "decay_patience", "ema", "bf16"):
            out[name] = (not linear, "the neural models")
        # ae / dae have no test_nll: their "bound" is a reconstruction log-likelihood
        out["nll_samples"] = (self.model in ("vae", "iwae"), "--model vae / iwae")
        return out

    def validate(self) -> None:
        if self.model not in MODEL_CHOICES:
            raise ValueError(f"unknown model {self.model!r}: use one of {', '.join(MODEL_CHOICES)}")
        flags = {"num_samples": "k"}
        for name in ("epochs", "batch_size", "num_samples", "nll_samples", "decay_patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{flags.get(name, name.replace('_', '-'))} must be >= 1, got "
                                 f"{getattr(self, name)}")
        if self.num_samples > MAX_CHECKPOINT_SAMPLES:  # what a saved model may ask for
            raise ValueError(f"k must be at most {MAX_CHECKPOINT_SAMPLES:,}, got "
                             f"{self.num_samples}")
        if self.refine_epochs < 0 or (self.refine_epochs and self.model not in ("vae", "iwae")):
            raise ValueError(f"refine-epochs must be >= 0 and applies to --model vae / iwae "
                             f"only, got {self.refine_epochs} with {self.model}")
        check_seed(self.seed)
        if self.patience is not None and self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.latent_dim is not None:
            check_widths("--latent-dim", self.latent_dim)
        if self.nll_samples > MAX_NLL_SAMPLES:
            raise ValueError(f"nll-samples must be at most {MAX_NLL_SAMPLES:,} (200 times "
                             f"Burda et al.'s 5,000), got {self.nll_samples}")
        check_lr(self.lr)
        probability = self.corruption in ("masking", "salt_and_pepper")
        if not 0 <= self.noise_level <= (1 if probability else math.inf) \
                or math.isinf(self.noise_level):
            raise ValueError(f"noise must be {'in [0, 1]' if probability else 'finite and >= 0'}"
                             f" for {self.corruption} corruption, got {self.noise_level}")
        if self.lr_decay is not None and not 0 < self.lr_decay < 1:
            raise ValueError(f"lr-decay must be in (0, 1), got {self.lr_decay}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema must be in (0, 1), got {self.ema}")
        if self.kl_warmup < 0 or (self.kl_warmup and self.model != "vae"):
            raise ValueError(f"kl-warmup must be >= 0 and applies to --model vae only, got "
                             f"{self.kl_warmup} with {self.model}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}: use one of "
                             f"{', '.join(ACTIVATIONS)}")
        if self.likelihood not in (None, "bernoulli", "gaussian"):
            raise ValueError(f"unknown likelihood {self.likelihood!r}: use bernoulli or gaussian")
        if self.corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {self.corruption!r}: use one of {CORRUPTIONS}")
        check_widths("--hidden", self.hidden)
        check_variance(self.variance)
