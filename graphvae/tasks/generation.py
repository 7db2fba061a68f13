"""Small-graph generation: train a graph VAE on a set of graphs, sample, and evaluate honestly.

Models (``GenerationConfig.model``):

* ``oneshot-vae`` — :class:`~graphvae.models.EquivariantGraphVAE`: per-node latents,
  equivariant, no matching needed.
* ``seq-vae`` — :class:`~graphvae.models.SequentialGraphVAE`: per-node latents under a
  prior over the set of them (``--prior``: the training graphs' posteriors on graph sets,
  a graph latent and a mixture per node on QM9), pairs decided in sequence under valence
  and connectivity rules; KL warm-up by default.
* ``graphvae`` — :class:`~graphvae.models.GraphVAE` (Simonovsky & Komodakis 2018): one
  latent per graph, fixed-size MLP decoder over ``k`` slots, trained with the
  ``matched`` bound (max-pooling graph matching, the paper's choice) or the
  ``permutation`` bound ``log Σ_{P∈S} exp ELBO(PG)`` over ``num_perms`` random
  relabellings plus the canonical orderings.

Training is the package's loop (:func:`graphvae.training.fit`) over shuffled batches of
graphs; every ``eval_every`` epochs the validation bound (fixed seed) picks the weights,
or (``--selection last``, the default with the exemplar prior) the final epoch's are kept.
Evaluation: MMD² of degree, clustering, orbit (and, except for ``graphrnn``, spectral)
statistics between the test graphs and as many sampled graphs, under a named protocol
(:data:`~graphvae.evaluation.graph_stats.PROTOCOLS`), with a train-vs-test row as the
scale reference; molecules get validity, uniqueness and novelty
(:mod:`graphvae.chem.scores`). The test split is only scored.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import torch

from graphvae.config import Config, check_lr, check_seed, check_widths, comma_ints, option
from graphvae.containers import GraphBatch, GraphTensors, SampledGraph
from graphvae.datasets.graphsets import (
    GENERATED,
    GRAPH_SETS,
    GraphSet,
    gdss_split,
    load_graph_set,
    split_graphs,
)
from graphvae.encoders.gnn import CONVS
from graphvae.evaluation.graph_stats import (
    PROTOCOLS,
    graph_novelty,
    graph_summary,
    mean_of_three,
    mmd_table,
)
from graphvae.models import EquivariantGraphVAE, GraphVAE, SequentialGraphVAE
from graphvae.models.checkpoints import save_model
from graphvae.models.graphvae import MAX_GRAPHVAE_SLOTS
from graphvae.models.sequential import CONNECT_RULES
from graphvae.progress import steps
from graphvae.provenance import environment
from graphvae.training import FitResult, KLWarmup, Shuffled, fit

GEN_MODELS = ("oneshot-vae", "seq-vae", "graphvae")
GEN_DATASETS = (*GRAPH_SETS, "qm9")
GRAPHVAE_BOUNDS = ("matched", "permutation")
SIZE_PSEUDO_COUNT = 0.01
#: The most random relabellings the permutation bound may sum over per graph and step.
MAX_PERMS = 10_000
PRIORS = ("normal", "set-mixture", "exemplar")
#: The most graphs a run may sample, and sample sets it may score: the MMD² evaluates a
#: kernel on every pair of samples, so 10⁵ graphs is already 10¹⁰ evaluations.
MAX_SAMPLES, MAX_DRAWS = 100_000, 10_000
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
    model: str = option("oneshot-vae", "model", choices=GEN_MODELS)
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
            raise ValueError(f"num-samples must lie in 1 … {MAX_SAMPLES:,} (the MMD² compares "
                             f"every pair of samples), got {self.num_samples}")
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
            raise ValueError(f"--generated applies to {', '.join(GENERATED)}, not {self.dataset}")
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
        if self.qm9_limit is not None and (self.qm9_limit < 0 or self.dataset != "qm9"):
            raise ValueError(f"qm9-limit applies to --dataset qm9 and must be >= 0, got "
                             f"{self.qm9_limit} with {self.dataset or 'the default data set'}")

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
        (``--selection last`` where that is the default) continues the state, which it was
        refused before as "other settings"."""
        out = super().training_settings()
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


# ---------------------------------------------------------------------------- data, model
def load_generation_data(cfg: GenerationConfig, root: str | Path | None = None,
                         progress: bool = False) -> GraphSet:
    """The configured graphs, split (train / valid / test) with ``cfg.seed``; ``progress``:
    a bar on a terminal while QM9 is read."""
    name = cfg.dataset or "community-small"
    if name == "qm9":
        from graphvae.chem.load import qm9_graph_set
        return qm9_graph_set(root, cfg.qm9_limit, cfg.seed, progress)
    graphs = load_graph_set(name, root, generated=cfg.generated or cfg.dataset is None,
                            seed=cfg.seed)
    if cfg.model == "graphvae":
        limit = cfg.max_nodes or max(g.number_of_nodes() for g in graphs)
        big = max(g.number_of_nodes() for g in graphs)
        if big > MAX_GRAPHVAE_SLOTS:
            raise ValueError(f"{name} has a graph with {big:,} nodes, more than GraphVAE's "
                             f"{MAX_GRAPHVAE_SLOTS:,} decoder slots (its decoder grows as n²): "
                             f"use --model seq-vae or oneshot-vae")
        if big > limit:
            raise ValueError(f"{name} has a graph with {big} nodes but the GraphVAE decoder has "
                             f"max_nodes={limit} slots; raise --max-nodes to at least {big}")
    if cfg.protocol == "gdss":
        sp = gdss_split(graphs)
        info: dict[str, Any] = {**sp.sizes(), "split": "gdss: unshuffled, the first 20% the "
                                "test set, the training set doubles as the validation set"}
    else:
        sp = split_graphs(graphs, cfg.seed)
        info = sp.sizes()
    return GraphSet(cfg.dataset_name, sp.train, sp.valid, sp.test, info=info)


def build_generation_model(cfg: GenerationConfig, data: GraphSet) -> torch.nn.Module:
    """``oneshot-vae`` / ``seq-vae``: ``p(n)`` from the training-set counts, every size up to
    the largest graph of any split with a pseudo-count of 0.01 graphs (an unseen size has a
    small, finite probability); ``seq-vae`` applies the connectivity rule when every graph
    of every split is connected and the largest has at most ``CONNECT_MAX_PAIRS`` pairs
    (the rule decides one pair a round), and QM9's valences; ``graphvae``: ``max_nodes`` slots
    (default: the largest graph)."""
    sizes = Counter(g.number_of_nodes() for g in data.train)
    counts = [sizes.get(n, 0) + SIZE_PSEUDO_COUNT for n in range(data.largest + 1)]
    components = cfg.components if cfg.prior_name == "set-mixture" else 0
    if cfg.model == "seq-vae":
        valences = None
        if data.name == "qm9":
            from graphvae.chem.qm9 import ATOM_TYPES, VALENCE
            valences = [VALENCE[a] for a in ATOM_TYPES]
        pairs = data.largest * (data.largest - 1) // 2
        # the data set's own property, like p(n)'s support: decided on the training graphs
        # alone, a disconnected validation or test graph had probability 0 (a bound of
        # -inf, and validation that could never pick an epoch)
        connect = pairs <= CONNECT_MAX_PAIRS and all(
            nx.is_connected(g) for g in (*data.train, *data.valid, *data.test)
            if g.number_of_nodes())
        return SequentialGraphVAE(data.in_channels, counts, cfg.latent, cfg.hidden,
                                  cfg.conv_name, node_types=data.node_types,
                                  edge_types=data.edge_types,
                                  valences=valences, connect=connect, components=components,
                                  logvar_offset=cfg.offset, connect_rule=cfg.connect_rule_name)
    if cfg.model == "oneshot-vae":
        return EquivariantGraphVAE(data.in_channels, counts, cfg.latent, cfg.hidden,
                                   cfg.conv_name,
                                   node_types=data.node_types, edge_types=data.edge_types,
                                   components=components, logvar_offset=cfg.offset)
    return GraphVAE(data.in_channels, cfg.max_nodes or data.largest, latent_channels=cfg.latent,
                    hidden_channels=cfg.hidden, conv=cfg.conv_name,
                    objective=cfg.bound, num_perms=cfg.num_perms)


def _collate(device: torch.device):
    def collate(items: list[tuple[GraphTensors, torch.Tensor]]) -> GraphBatch:
        return GraphBatch.collate([t for t, _ in items], [x for _, x in items], device)
    return collate


@torch.no_grad()
def mean_bound(model: torch.nn.Module, items: list[tuple[GraphTensors, torch.Tensor]],
               batch_size: int, device: torch.device, seed: int, beta: float = 1.0,
               progress: bool = False) -> float:
    """The model's bound (``forward``, eval mode) averaged over graphs, in a fixed order
    with a fixed seed, so that epochs and runs compare; ``beta < 1``: the training objective
    instead, the bound with its KL weighted by ``beta``. ``progress``: a bar on a terminal
    (not inside the training loop's own)."""
    from graphvae.progress import steps

    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    collate = _collate(device)
    values = []
    for i in steps(range(0, len(items), batch_size), "test bound", progress, " batches"):
        est = model(collate(items[i:i + batch_size]), generator=g)
        values.append(est.value + (1.0 - beta) * est.kl if beta != 1.0 else est.value)
    model.train(was)
    return float(torch.cat(values).mean())


def train_generation_model(model: torch.nn.Module, data: GraphSet, cfg: GenerationConfig,
                           device: torch.device, progress: bool = True,
                           state: str | Path | None = None, resume: bool = False
                           ) -> FitResult:
    """Adam on the mean negative objective over shuffled batches: the bound, its KL weighted
    up to ``beta`` over the ``kl_warmup`` epochs; every ``eval_every`` epochs the validation
    objective (seed + 1) picks the weights (``selection`` "val"; "last" keeps the final
    epoch's, the default with the exemplar prior). With the exemplar prior the model trains under
    ``N(0, I)`` and the prior is then fitted to the training graphs' posteriors. ``state``:
    resumable training state."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    train, valid = data.tensors(data.train), data.tensors(data.valid)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    beta = cfg.kl_beta

    def evaluate() -> dict[str, float]:
        return {"score": mean_bound(model, valid, cfg.batch_size, device, cfg.seed + 1, beta)}

    warm = cfg.kl_warmup_epochs
    res = fit(model, Shuffled(train, cfg.batch_size, _collate(device)), opt, epochs=cfg.epochs,
              callbacks=[KLWarmup(warm, beta)] if warm or beta != 1.0 else [],
              evaluate=evaluate, eval_every=cfg.eval_every,
              restore_best=cfg.selection_name == "val", generator=g, checkpoint=state,
              resume=resume, config={"task": "generation", **cfg.training_settings(),
                                     # QM9's takes 5 s: only where a state is kept
                                     "data": data.fingerprint() if state is not None else None},
              as_given=cfg.as_given,
              progress=progress, desc=f"training {cfg.model}")
    if cfg.fits_exemplar:
        fitter: Any = model
        fitter.fit_exemplar_prior(train, cfg.batch_size)
    return res


# ---------------------------------------------------------------------------- the run
def run_generation(cfg: GenerationConfig, root: str | Path | None = None,
                   out: str | Path | None = None, progress: bool = True,
                   state: str | Path | None = None, resume: bool = False) -> dict[str, Any]:
    """Train, sample ``num_samples`` graphs (default: as many as the test set) and evaluate.

    With ``out``: ``metrics.json``, ``model.pt``, ``samples.jsonl`` (one raw sample a
    line, :func:`sample_record`; ``graphvae score`` recomputes the scores from it,
    :mod:`graphvae.tasks.scoring`), ``samples.g6`` (graph6, one graph a line),
    ``samples_<decoding>.smi`` for molecules (``INVALID`` where a sample is not a
    valid molecule), ``samples.png`` (sampled graphs under training graphs; QM9's
    drawn as molecules, each sample marked valid or invalid) and ``training.png`` (the
    training curve, :func:`~graphvae.plotting.plot_training`).
    ``state`` / ``resume``: the resumable training state.
    """
    from graphvae.devices import resolve_device

    device = resolve_device(cfg.device)
    data = load_generation_data(cfg, root, progress)
    if data.name == "qm9" and cfg.fcd:
        from graphvae.chem.scores import require_fcd
        require_fcd()                # before training, not after
        if len(data.test) < 2:       # its reference set: the test molecules
            raise ValueError(f"the FCD needs at least two test molecules, and this split has "
                             f"{len(data.test)}; read more rows (--qm9-limit) or pass --no-fcd")
    torch.manual_seed(cfg.seed)  # the initial weights (torch seeds a new process at random)
    model = build_generation_model(cfg, data).to(device)
    res = train_generation_model(model, data, cfg, device, progress, state, resume)
    n_samples = cfg.num_samples or len(data.test)
    start = time.perf_counter()
    model.eval()
    sampler: Any = model
    gen = torch.Generator().manual_seed(cfg.seed)
    samples = [s.cpu() for s in sampler.sample(n_samples, gen, device)]
    sampled = [s.to_networkx() for s in samples]
    sample_s = time.perf_counter() - start
    test_bound = mean_bound(model, data.tensors(data.test), cfg.batch_size, device, cfg.seed + 2,
                            progress=progress)
    metrics: dict[str, Any] = {
        "dataset": data.name, "model": cfg.model, "seed": cfg.seed,
        "bound": cfg.bound if cfg.model == "graphvae" else "elbo",
        "bound_means": BOUND_MEANING.get(cfg.model if cfg.model == "graphvae"
                                         else cfg.prior_name, ""),
        "split": data.info, "num_samples": n_samples, "train_seconds": res.seconds,
        "sample_seconds": sample_s, "best_epoch": res.best_epoch,
        "weights_epoch": res.weights_epoch, "selection": cfg.selection_name,
        "resumed_from_epoch": res.resumed_from,
        "connect_rule": cfg.connect_rule_name if getattr(model, "connect", False) else None,
        "test_bound_nats": test_bound, "device": str(device),
        "environment": environment(device),
    }
    scores, mols = sample_metrics(data, samples, sampled, cfg, progress)
    metrics.update(scores)
    if cfg.draws > 1:                           # graph sets only (validate refuses qm9)
        metrics["mmd2_draws"] = mmd_over_draws(
            sampler, data.test, metrics["mmd2"]["generated"], cfg, gen, device, progress)
    if out is not None:
        _write_outputs(Path(out), model, cfg, data, samples, sampled, metrics, res, mols)
    return metrics


def sample_metrics(data: GraphSet, samples: Sequence[SampledGraph], sampled: Sequence[nx.Graph],
                   cfg: GenerationConfig, progress: bool = False
                   ) -> tuple[dict[str, Any], dict[str, dict[str, Any]] | None]:
    """The scores of one sample set (``sampled``: the samples as networkx graphs), as
    ``metrics.json`` gives them: ``generated_summary`` and ``test_summary``, then for QM9
    ``molecules`` (the raw samples and, with ``cfg.valency``, the valency-aware decoding;
    FCD with ``cfg.fcd``), else ``protocol``, ``mmd2`` (against ``data.test``, and the
    train-vs-test row) and ``copies``. Also returns the molecule scores with their
    SMILES (``None`` for graph sets). ``graphvae generate`` and ``graphvae score`` both
    score with it; ``progress``: bars on a terminal for the FCD and NSPDK."""
    metrics: dict[str, Any] = {"generated_summary": graph_summary(sampled),
                               "test_summary": graph_summary(data.test)}
    mols = None
    if data.name == "qm9":
        from graphvae.chem.scores import molecule_scores
        reference = [g.graph["smiles"] for g in data.test]
        mols = molecule_scores(list(samples), data.train_smiles, cfg.valency, reference,
                               cfg.fcd, progress)
        metrics["molecules"] = {k: {kk: vv for kk, vv in v.items() if kk != "smiles"}
                                for k, v in mols.items()}
    else:
        metrics["protocol"] = cfg.protocol
        metrics["mmd2"] = mmd_table(data.test, sampled, cfg.protocol, data.train)
        metrics["copies"] = graph_novelty(sampled, data.train)
    return metrics, mols


def mmd_over_draws(sampler: Any, test: Sequence[nx.Graph], first: dict[str, float],
                   cfg: GenerationConfig, gen: torch.Generator, device: torch.device,
                   progress: bool = False) -> dict[str, Any]:
    """Each statistic's MMD² over ``cfg.draws`` sample sets of ``cfg.num_samples`` graphs
    (default: ``len(test)``): ``first`` (the scored set) and ``draws − 1`` more, drawn in
    turn from the same generator ``gen``. With 20–40 samples one set's MMD² moves by about
    as much as models differ (see ``benchmarks/README.md``); the mean over draws is the
    model's, not the draw's. Returns
    ``{"draws": N, stat: {"mean", "std"}, "mean_of_three": {"mean", "std"}}`` (std over
    draws; ``mean_of_three``: degree, clustering, orbit averaged within each draw)."""
    rows = [dict(first)]                      # the scored set's own dict stays as it is
    for _ in steps(range(cfg.draws - 1), "scoring more sample sets", progress):
        more = [s.cpu().to_networkx()
                for s in sampler.sample(cfg.num_samples or len(test), gen, device)]
        rows.append(mmd_table(test, more, cfg.protocol)["generated"])
    keys = [k for k in first if k != "empty_generated"]
    out: dict[str, Any] = {"draws": len(rows)}
    for r in rows:
        r["mean_of_three"] = mean_of_three(r)
    for k in keys + ["mean_of_three"]:
        vals = [r[k] for r in rows]
        out[k] = {"mean": statistics.fmean(vals), "std": statistics.stdev(vals)}
    return out


def sample_record(g: SampledGraph, molecule: bool) -> dict[str, Any]:
    """One raw sample as a JSON object: ``{"atoms": [symbol, ...], "bonds": [[i, j, order],
    ...]}`` for molecules, ``{"num_nodes": n, "edges": [[i, j], ...]}`` otherwise (``i <
    j``)."""
    pairs = torch.triu(g.adj, diagonal=1).nonzero().tolist()
    if not molecule:
        return {"num_nodes": g.num_nodes, "edges": pairs}
    from graphvae.chem.qm9 import ATOM_TYPES
    assert g.node_types is not None and g.bond_types is not None
    return {"atoms": [ATOM_TYPES[t] for t in g.node_types.tolist()],
            "bonds": [[i, j, int(g.bond_types[i, j])] for i, j in pairs]}


def plot_samples(data: GraphSet, sampled: Sequence[nx.Graph],
                 mols: dict[str, dict[str, Any]] | None, path: Path, title: str) -> None:
    """``path``: the first 16 samples under 8 training graphs; QM9's drawn as molecules,
    each sample marked valid or invalid (``mols``: :func:`sample_metrics`'s molecule
    scores, whose raw SMILES are ``None`` where a sample is invalid)."""
    from graphvae.plotting import plot_graph_grid

    molecule: dict[str, Any] = {}
    if data.name == "qm9":
        from graphvae.chem.qm9 import ATOM_TYPES
        molecule["atom_names"] = list(ATOM_TYPES)
        if mols is not None:
            molecule["notes"] = ["valid" if smi else "invalid"
                                 for smi in mols["sampled"]["smiles"][:16]]
    plot_graph_grid(data.train[:8], list(sampled[:16]), path, title,
                    node_attr=data.node_attr, **molecule)


def _write_outputs(out: Path, model: torch.nn.Module, cfg: GenerationConfig, data: GraphSet,
                   samples: list[SampledGraph], sampled: list[nx.Graph],
                   metrics: dict[str, Any], res: FitResult,
                   mols: dict[str, dict[str, Any]] | None) -> None:
    from graphvae.datasets.graphgen import write_graph6
    from graphvae.io import write_json, write_text

    save_model(out / "model.pt", model, task="generation", config=cfg.to_dict(),
               in_channels=data.in_channels, epoch=res.weights_epoch)
    write_graph6(sampled, out / "samples.g6")
    write_text("".join(json.dumps(sample_record(g, data.name == "qm9")) + "\n"
                       for g in samples), out / "samples.jsonl")
    if mols is not None:
        for name, v in mols.items():
            write_text("\n".join(s or "INVALID" for s in v["smiles"]) + "\n",
                       out / f"samples_{name}.smi")
    plot_samples(data, sampled, mols, out / "samples.png",
                 f"{cfg.model} on {data.name}: training graphs (top) and samples")
    from graphvae.plotting import plot_training
    beta = cfg.kl_beta
    # the exemplar prior is fitted to the trained encoder: training ran under N(0, I)
    before = " under N(0, I)" if cfg.fits_exemplar else ""
    plot_training(res.history, out / "training.png", res.weights_epoch,
                  f"validation bound{before} (nats per graph)" if beta == 1.0 else
                  f"validation bound{before}, KL weighted by {beta:g} (nats per graph)",
                  f"{cfg.model} on {data.name}, seed {cfg.seed}",
                  f"training bound{before} (nats per graph)")
    valid = [(int(r["epoch"]), r["score"]) for r in res.history if "score" in r]
    history: dict[str, Any] = {"train": res.column("train_bound"), "valid": valid}
    if before:
        history["prior"] = ("N(0, I), which training used: the exemplar prior of "
                            "test_bound_nats is fitted to the trained encoder afterwards")
    write_json({**metrics, "config": cfg.to_dict(), "history": history},
               out / "metrics.json")


__all__ = ["GEN_DATASETS", "GEN_MODELS", "GenerationConfig", "SampledGraph",
           "build_generation_model", "load_generation_data", "mean_bound",
           "mmd_over_draws", "plot_samples", "run_generation", "sample_metrics",
           "sample_record", "train_generation_model"]
