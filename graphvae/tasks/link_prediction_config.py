"""The settings of one link-prediction run (:class:`LinkPredConfig`, whose fields generate
the ``graphvae linkpred`` flags) and the named presets (:data:`PRESETS`). The run itself
is :mod:`graphvae.tasks.link_prediction`.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphvae.config import Config, check_lr, check_widths, option
from graphvae.decoders import EDGE_DECODERS
from graphvae.encoders import ENCODERS
from graphvae.models import MODELS

#: ``LinkPredConfig.features`` choices.
FEATURE_MODES = ("raw", "normalize", "standardize", "identity", "propagated")
#: Input features made from node ids, not read from the graph.
ID_FEATURE_MODES = ("identity", "propagated")
#: More diffusion steps than this only repeat the graph's stationary vector (each step is a
#: sparse product over every edge, so a huge count ran for hours instead of failing).
MAX_PROPAGATED_HOPS = 1000


@dataclass(frozen=True)
class LinkPredConfig(Config):
    """Every protocol and model choice of a link-prediction run (JSON round-trip; the
    ``graphvae linkpred`` flags are generated from these fields).

    ``features``: ``raw`` (refused from magnitude ``RAW_FEATURE_LIMIT`` on); ``normalize``
    (each row divided by the sum of its absolute values; on bag-of-words features, as in
    the citation sets, this is PyG's ``NormalizeFeatures``); ``standardize`` (columns to mean 0,
    variance 1 over all nodes); ``identity`` (featureless, ``X = I``); ``propagated``
    (featureless, :func:`~graphvae.tasks.features.propagated_features` of the training
    graph: ``propagated_dim`` seeded Gaussian columns diffused ``propagated_hops`` times,
    and the log-degree).
    ``selection``: ``val`` (weights of the best validation AUC+AP) or ``last``.
    """

    model: str = option("vgae", "gae, vgae or joint", choices=MODELS, cli=False)
    encoder: str = option("gcn", "encoder", choices=lambda: sorted(ENCODERS))
    hidden: tuple[int, ...] = option((32,), "encoder widths, comma-separated", metavar="W,W")
    latent: int = option(16, "latent width per node")
    decoder: str = option("inner", "edge decoder", choices=lambda: sorted(EDGE_DECODERS))
    estimator: str = option("sampled", "edge likelihood: sampled non-edges or all n² pairs",
                            choices=("sampled", "dense"))
    negatives: float = option(1.0, "sampled non-edges per positive pair")
    reweight: bool = option(True, "no pos_weight / norm re-weighting of the edge loss")
    self_loops: bool = option(True, "leave the diagonal out of the positive pairs")
    dropout: float = option(0.0, "encoder dropout")
    lr: float = option(0.01, "learning rate")
    epochs: int = option(200, "training epochs")
    patience: int | None = option(None, "stop after this many epochs without a better "
                                  "validation AUC + AP (--selection val)")
    features: str = option("raw", "input features: raw, row-normalised, column-standardised, "
                           "identity (featureless), or propagated (featureless: random "
                           "vectors diffused over the training graph, and the log-degree)",
                           choices=FEATURE_MODES, flag="--feature-mode")
    propagated_dim: int = option(64, "random columns of --feature-mode propagated")
    propagated_hops: int = option(6, "diffusion steps of --feature-mode propagated")
    selection: str = option("val", "weights of the best validation epoch, or the last",
                            choices=("val", "last"))
    batch_size: int | None = option(None, "positive pairs decoded per training step "
                                    "(mini-batch mode); default: all of them up to 2^21 "
                                    "(full batch), 2^20 per step beyond; always the full "
                                    "batch with --estimator dense")
    steps_per_epoch: int = option(1, "mini-batch steps per epoch; 0: one pass, "
                                  "ceil(positive pairs / batch size) steps over the "
                                  "slices of one permutation, each positive pair once")
    eval_every: int = option(1, "validate every this many epochs (--selection val)")
    val_fraction: float = option(0.05, "fraction of edges held out for validation")
    test_fraction: float = option(0.10, "fraction of edges held out for testing")

    def applies(self) -> dict[str, tuple[bool, str]]:
        return {
            "negatives": (self.estimator == "sampled", "--estimator sampled"),
            "propagated_dim": (self.features == "propagated", "--feature-mode propagated"),
            "propagated_hops": (self.features == "propagated", "--feature-mode propagated"),
        }

    def validate(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        check_lr(self.lr)
        if not 0 < self.negatives <= 1000:
            raise ValueError(f"negatives must lie in (0, 1000], got {self.negatives} (for "
                             "every non-edge, use --estimator dense)")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must lie in (0, 1), got "
                                 f"{getattr(self, name)}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"the validation and test fractions sum to "
                             f"{self.val_fraction + self.test_fraction:g}, which leaves no "
                             f"edges to train on: --val-fraction + --test-fraction must be "
                             f"below 1")
        check_widths("--hidden", self.hidden, allow_empty=True)
        check_widths("--latent", self.latent)
        if self.features not in FEATURE_MODES:
            raise ValueError(f"feature-mode must be one of {', '.join(FEATURE_MODES)}, got "
                             f"{self.features!r}")
        check_widths("--propagated-dim", self.propagated_dim)
        if not 0 <= self.propagated_hops <= MAX_PROPAGATED_HOPS:
            raise ValueError(f"propagated-hops must lie in 0 … {MAX_PROPAGATED_HOPS} (more "
                             f"steps only repeat the graph's stationary vector), got "
                             f"{self.propagated_hops}")
        if self.selection not in ("val", "last"):
            raise ValueError(f"selection must be 'val' or 'last', got {self.selection!r}")
        if self.patience is not None and self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.selection == "last" and (self.patience is not None or self.eval_every != 1):
            raise ValueError("--patience and --eval-every act on the validation score, which "
                             "--selection last does not compute; use --selection val")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch-size must be at least 1, got {self.batch_size}")
        if self.batch_size is not None and self.estimator == "dense":
            raise ValueError("mini-batch steps (--batch-size) sample their non-edges; use "
                             "--estimator sampled")
        if self.steps_per_epoch < 0:
            raise ValueError(f"steps-per-epoch must be at least 0 (0: one pass), got "
                             f"{self.steps_per_epoch}")
        if self.steps_per_epoch != 1 and self.batch_size is None:
            raise ValueError("--steps-per-epoch applies to mini-batch steps; give --batch-size")
        if self.eval_every < 1:
            raise ValueError(f"eval-every must be at least 1, got {self.eval_every}")


#: Named configurations. ``best`` is the package's best link-prediction setting:
#: the graph-normalised encoder of Ahn & Kim (2021) (linear layer, rows L2-normalised
#: and scaled by 1.8, one GCN propagation, 128 dimensions) on row-normalised
#: features, trained as a GAE with three sampled non-edges per positive pair and the
#: diagonal left out, for 300 epochs at lr 0.005 with validation-based selection.
PRESETS: dict[str, LinkPredConfig] = {
    "gae": LinkPredConfig(model="gae"),
    "vgae": LinkPredConfig(model="vgae"),
    "joint": LinkPredConfig(model="joint"),
    "best": LinkPredConfig(model="gae", encoder="gnae", hidden=(), latent=128, negatives=3.0,
                           features="normalize", lr=0.005, epochs=300, self_loops=False),
}
