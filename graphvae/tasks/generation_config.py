"""The settings of one ``graphvae generate`` run (:class:`GenerationConfig`, whose fields
generate the command's flags), the choices they take, and what each model's reported
bound means (:data:`BOUND_MEANING`). The run itself is :mod:`graphvae.tasks.generation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from graphvae.config import Config, check_lr, check_seed, check_widths, comma_ints, option
from graphvae.datasets.graphsets import GENERATED, GRAPH_SETS
from graphvae.encoders.gnn import CONVS
from graphvae.evaluation.graph_stats import PROTOCOLS
from graphvae.models.graphvae import MAX_GRAPHVAE_SLOTS, MAX_PERMS
from graphvae.models.sequential import CONNECT_RULES

GEN_MODELS = ("oneshot-vae", "seq-vae", "graphvae")
GEN_DATASETS = (*GRAPH_SETS, "qm9")
GRAPHVAE_BOUNDS = ("matched", "permutation")
SIZE_PSEUDO_COUNT = 0.01
PRIORS = ("normal", "set-mixture", "exemplar")
#: The most graphs a run may sample, and sample sets it may score. Every sample is drawn,
#: kept and scored; graph sets are bounded further by MAX_GRAPH_SAMPLES.
MAX_SAMPLES, MAX_DRAWS = 100_000, 10_000
#: The most graphs of a graph set scored at once: the MMD² compares every pair of samples,
#: in time and memory that grow with their square (8,000 took 67 s and 1.8 GB, 30,000
#: ran out of memory). Molecules are scored through mean embeddings: MAX_SAMPLES.
MAX_GRAPH_SAMPLES = 10_000
#: Which weights training keeps (``--selection``).
SELECTIONS = ("val", "last")
#: seq-vae applies the connectivity rule (one pair a round) up to this many pairs a graph.
CONNECT_MAX_PAIRS = 2048
#: What ``test_bound_nats`` is, by prior (``graphvae``: by its own bound).
BOUND_MEANING = {
    "normal": "ELBO of log p(G) of the labelled graph with N(0, I) node latents (closed-form "
              "KL), + log p(n); one draw of Z per test graph: a Monte-Carlo estimate whose "
              "expectation is a lower bound",
    "set-mixture": "ELBO of log p(G) of the labelled graph with log p(Z) itself replaced by a "
                   "one-draw estimate of its lower bound through q(u | Z), + log p(n); one draw "
                   "per test graph: a stochastic estimate whose expectation is a lower bound",
    "exemplar": "ELBO of log p(G) of the labelled graph (KL weight 1) with log p(Z) bounded "
                "below by the best node matching to each training graph's posterior, "
                "+ log p(n); one draw of Z per test graph: a Monte-Carlo estimate whose "
                "expectation is a (loose) lower bound",
    "graphvae": "see 'bound': the matched or permutation-sampled bound of GraphVAE",
}


@dataclass(frozen=True)
class GenerationConfig(Config):
    """One ``graphvae generate`` run (the command's flags are generated from these fields).
    ``dataset=None`` is the generated community-small set."""

    #: ``protocol``'s split is part of the data's fingerprint, which the state keeps.
    AFTER_TRAINING = frozenset({"num_samples", "draws", "protocol", "valency", "fcd"})

    dataset: str | None = option(None, f"data set: {', '.join(GEN_DATASETS)} (default: a "
                                 "generated community-small set, no files needed)",
                                 choices=GEN_DATASETS, metavar="NAME")
    generated: bool = option(False, "community-small / grid: use the published generator, "
                             "not the file")
    model: str = option("seq-vae", "model", choices=GEN_MODELS)
    bound: str = option("matched", "graphvae training bound: matched or permutation-sampled",
                        choices=GRAPHVAE_BOUNDS)
    num_perms: int = option(8, "random relabellings in the permutation bound")
    epochs: int = option(300, "training epochs")
    batch_size: int = option(32, "graphs per batch")
    lr: float = option(3e-3, "learning rate")
    latent: int = option(16, "latent width")
    hidden: tuple[int, ...] = option((64, 64), "encoder widths, comma-separated",
                                     metavar="W,W", parse=comma_ints)
    conv: str | None = option(None, "message passing (default: gcn for graphvae, gin "
                              "otherwise)", choices=lambda: sorted(CONVS))
    prior: str | None = option(None, "oneshot-vae / seq-vae prior over the node latents: "
                               "normal, set-mixture (a graph latent and a mixture per node) "
                               "or exemplar (the training graphs' posteriors, fitted after "
                               "training); default: exemplar for seq-vae on graph sets, "
                               "set-mixture for seq-vae on qm9, normal for oneshot-vae",
                               choices=PRIORS)
    components: int = option(4, "set-mixture prior: mixture components")
    connect_rule: str | None = option(None, "seq-vae connectivity rule (when every graph of "
                                      "the data set is connected): lookahead (every "
                                      "component keeps a later pair with free valence), "
                                      "budget (also: the "
                                      "later pairs connect all components and the free "
                                      "valences can pay for it) or cuts (also: no one or two "
                                      "atoms are counted on for more joins than their free "
                                      "valence); default: cuts on qm9, lookahead on graph sets",
                                      choices=CONNECT_RULES)
    beta: float | None = option(None, "KL weight of the training objective after the warm-up "
                                "(default: 0.001 with the exemplar prior, else 1); the reported "
                                "bound always weighs the KL by 1")
    logvar_offset: float | None = option(None, "added to the encoder's log-variances (default: "
                                         "-6 with the exemplar prior, else 0)")
    kl_warmup: int | None = option(None, "epochs of KL warm-up (default: a third of the "
                                   "epochs for seq-vae, none otherwise; 0: none)")
    num_samples: int | None = option(None, "graphs to sample (default: the test-set size)")
    draws: int = option(1, "graph sets: score this many sample sets from the trained model "
                        "(the first is the one written to --out); metrics.json gives each "
                        "MMD²'s mean and std over them (mmd2_draws)")
    protocol: str = option("graphrnn", "MMD kernels: graphrnn (Gaussian-EMD for degree and "
                           "clustering, Gaussian RBF for orbits), gran "
                           "(Gaussian-TV), rbf, or gdss: GDSS's whole set-up (unshuffled "
                           "split, first 20%% the test set; isolated nodes removed from "
                           "samples; GraphRNN's kernels and spectral Gaussian-EMD)",
                           choices=lambda: sorted(PROTOCOLS))
    max_nodes: int | None = option(None, "graphvae decoder slots (default: the largest graph)")
    valency: bool = option(True, "qm9: skip the valency-aware decoding")
    fcd: bool = option(True, "qm9: skip the FCD (it needs the fcd package)")
    qm9_limit: int | None = option(None, "qm9: read only the first N rows")
    eval_every: int = option(10, "validation every N epochs")
    selection: str | None = option(None, "weights kept: val (the best validation "
                                   "objective, checked every eval-every epochs) or last (the "
                                   "final epoch's); default: last with the exemplar prior, "
                                   "whose samples decode the training graphs' own "
                                   "posteriors, val otherwise", choices=SELECTIONS)
    seed: int = option(0, "seed of the split, the weights and the samples")
    device: str = option("cpu", "cpu, cuda, cuda:N or auto")

    def validate(self) -> None:
        if self.dataset is not None and self.dataset not in GEN_DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}: use one of "
                             f"{', '.join(GEN_DATASETS)}")
        if self.model not in GEN_MODELS:
            raise ValueError(f"unknown model {self.model!r}: use one of {', '.join(GEN_MODELS)}")
        if self.bound not in GRAPHVAE_BOUNDS:
            raise ValueError(f"unknown bound {self.bound!r}: use one of {GRAPHVAE_BOUNDS}")
        if self.conv is not None and self.conv not in CONVS:
            raise ValueError(f"unknown conv {self.conv!r}: use one of {sorted(CONVS)}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown MMD protocol {self.protocol!r}: use one of "
                             f"{sorted(PROTOCOLS)}")
        check_seed(self.seed)
        if self.num_perms > MAX_PERMS:
            raise ValueError(f"num-perms must be at most {MAX_PERMS:,} (each is a decoding "
                             f"of every graph at every step), got {self.num_perms}")
        for name in ("epochs", "batch_size", "latent", "num_perms", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be >= 1, got "
                                 f"{getattr(self, name)}")
        check_widths("--hidden", self.hidden)
        check_widths("--latent", self.latent)
        if self.num_samples is not None and not 1 <= self.num_samples <= MAX_SAMPLES:
            raise ValueError(f"num-samples must lie in 1 … {MAX_SAMPLES:,} (every sample is "
                             f"drawn, kept in memory and scored: the bound keeps a mistyped "
                             f"count from running for hours), got {self.num_samples}")
        if self.num_samples is not None and self.num_samples > MAX_GRAPH_SAMPLES \
                and self.dataset != "qm9":
            raise ValueError(f"num-samples must be at most {MAX_GRAPH_SAMPLES:,} for a graph "
                             f"set (the MMD² compares every pair of samples: minutes and "
                             f"gigabytes beyond), got {self.num_samples}")
        if self.draws > MAX_DRAWS:
            raise ValueError(f"draws must be at most {MAX_DRAWS:,}, got {self.draws}")
        if self.draws < 1 or (self.draws > 1 and self.dataset == "qm9"):
            raise ValueError(f"draws must be >= 1 (and 1 on qm9, scored with molecule "
                             f"metrics), got {self.draws}")
        check_lr(self.lr)
        if self.max_nodes is not None and (self.model != "graphvae"
                                           or not 2 <= self.max_nodes <= MAX_GRAPHVAE_SLOTS):
            raise ValueError(f"max-nodes applies to --model graphvae and must lie in 2 … "
                             f"{MAX_GRAPHVAE_SLOTS:,}, got {self.max_nodes} with {self.model}")
        if self.generated and self.dataset not in (None, *GENERATED):
            raise ValueError(f"--generated applies to community-small and grid (lobster is "
                             f"always generated), not {self.dataset}")
        if self.dataset == "qm9" and self.model == "graphvae":
            raise ValueError("qm9 is supported with --model oneshot-vae or seq-vae (typed nodes "
                             "and bonds)")
        check_widths("--components", self.components)
        if self.kl_warmup is not None and self.kl_warmup < 0:
            raise ValueError(f"kl-warmup must be >= 0, got {self.kl_warmup}")
        if self.prior is not None and self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r}: use one of {', '.join(PRIORS)}")
        if self.model == "graphvae" and (self.prior, self.beta, self.logvar_offset) != (
                None, None, None):
            raise ValueError("--prior, --beta and --logvar-offset apply to oneshot-vae and "
                             "seq-vae")
        if self.selection is not None and self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}: use one of "
                             f"{', '.join(SELECTIONS)}")
        if self.beta is not None and not (0 < self.beta <= 1):
            raise ValueError(f"beta must lie in (0, 1], got {self.beta}")
        if self.logvar_offset is not None and not math.isfinite(self.logvar_offset):
            raise ValueError(f"logvar-offset must be finite, got {self.logvar_offset}")
        if self.kl_warmup and self.model == "graphvae":
            raise ValueError("--kl-warmup applies to oneshot-vae and seq-vae")
        if self.protocol == "gdss" and self.dataset == "qm9":
            raise ValueError("--protocol gdss is GDSS's set-up for graph sets; qm9 is scored "
                             "with molecule metrics")
        if self.qm9_limit is not None and self.dataset != "qm9":
            raise ValueError(f"--qm9-limit applies to --dataset qm9, not "
                             f"{self.dataset or 'the default data set'}")
        if self.qm9_limit is not None and self.qm9_limit < 0:
            raise ValueError(f"qm9-limit must be >= 0, got {self.qm9_limit}")

    def applies(self) -> dict[str, tuple[bool, str]]:
        return {
            "bound": (self.model == "graphvae", "--model graphvae"),
            "num_perms": (self.model == "graphvae" and self.bound == "permutation",
                          "--model graphvae --bound permutation"),
            "components": (self.model != "graphvae" and self.prior_name == "set-mixture",
                           "the set-mixture prior"),
            "connect_rule": (self.model == "seq-vae", "--model seq-vae"),
            "valency": (self.dataset == "qm9", "--dataset qm9"),
            "fcd": (self.dataset == "qm9", "--dataset qm9"),
        }

    @property
    def prior_name(self) -> str:
        """The prior the run uses (its default resolved)."""
        if self.prior is not None:
            return self.prior
        if self.model == "seq-vae":
            return "set-mixture" if self.dataset == "qm9" else "exemplar"
        return "normal"

    @property
    def connect_rule_name(self) -> str:
        """The seq-vae connectivity rule (its default resolved): ``cuts`` on QM9, where it
        takes strict validity from 0.956 (``lookahead``) and 0.977 (``budget``) to 0.9998,
        for 2.8 times ``budget``'s training time; ``lookahead`` on graph sets, whose nodes
        have no valence (there ``budget`` and ``cuts`` only add that the later pairs
        connect every component)."""
        if self.connect_rule is not None:
            return self.connect_rule
        return "cuts" if self.dataset == "qm9" else "lookahead"

    @property
    def conv_name(self) -> str:
        """The encoder's message passing (its default resolved): GCN for ``graphvae`` (one
        latent per graph, summed node states), GIN for the per-node-latent models."""
        if self.conv is not None:
            return self.conv
        return "gcn" if self.model == "graphvae" else "gin"

    @property
    def selection_name(self) -> str:
        """Which weights training keeps (its default resolved). With the exemplar prior the
        samples decode the training graphs' posteriors, which later epochs fit better, while
        the validation objective (held-out graphs, KL weight 0.001) peaks early as the
        decoder specialises: on community-small seed 0 it picks epoch 260 of 1000, and the
        samples' mean MMD² over 100 draws is 0.049 against 0.034 with the last weights."""
        if self.selection is not None:
            return self.selection
        return "last" if self.fits_exemplar else "val"

    @property
    def fits_exemplar(self) -> bool:
        """Whether the run fits the exemplar prior to the trained encoder, after training
        under N(0, I) (``graphvae`` has no prior to choose)."""
        return self.model != "graphvae" and self.prior_name == "exemplar"

    @property
    def kl_warmup_epochs(self) -> int:
        """Epochs of KL warm-up (its default resolved): a third of training for seq-vae."""
        if self.kl_warmup is not None:
            return self.kl_warmup
        return max(1, self.epochs // 3) if self.model == "seq-vae" else 0

    def training_settings(self) -> dict[str, Any]:
        """As :meth:`Config.training_settings`, with the defaults that depend on other
        settings as the run resolves them: a resumed command that spells one out
        (``--selection last`` where that is the default, ``--dataset community-small
        --generated`` for the default set) continues the state, which it was refused before
        as "other settings"."""
        out = super().training_settings()
        name = self.dataset or "community-small"
        if name == "lobster" or (name == "community-small" and self.dataset_name != name):
            # the generated set however it is asked for, spelt as the default spells it
            out.update(dataset=self.dataset if name == "lobster" else None, generated=False)
        out.update(selection=self.selection_name, conv=self.conv_name,
                   kl_warmup=self.kl_warmup_epochs)
        if self.model != "graphvae":
            out.update(prior=self.prior_name, beta=self.kl_beta, logvar_offset=self.offset)
        if self.model == "seq-vae":
            out["connect_rule"] = self.connect_rule_name
        return out

    @property
    def kl_beta(self) -> float:
        """The KL weight training uses (1 for ``graphvae``, whose bound is never weighted)."""
        if self.model == "graphvae":
            return 1.0
        return self.beta if self.beta is not None else (
            0.001 if self.prior_name == "exemplar" else 1.0)

    @property
    def offset(self) -> float:
        return self.logvar_offset if self.logvar_offset is not None else (
            -6.0 if self.prior_name == "exemplar" else 0.0)

    @property
    def dataset_name(self) -> str:
        name = self.dataset or "community-small"
        gen = self.dataset is None or (self.generated and name in GENERATED) or name == "lobster"
        return f"{name} (generated)" if gen and name != "qm9" else name
