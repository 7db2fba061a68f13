"""Link prediction with the protocol of Kipf & Welling (2016), https://arxiv.org/abs/1611.07308.

* Split: :func:`graphvae.datasets.link_split.split_edges` (85 / 5 / 10 %, non-edges of
  the full graph for validation and test). The encoder and the training loss see only
  the training edges.
* Training: the package's loop (:func:`graphvae.training.fit`) on one full-graph
  :class:`~graphvae.containers.LinkBatch`, validation AUC + AP every epoch choosing the
  weights (``selection="val"``).
* Scores: edge logits of the posterior means; AUC and AP on validation (model
  selection) and test (reported once, for the selected weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphvae.config import Config, finite_positive, option
from graphvae.datasets.link_split import LinkSplit, split_edges
from graphvae.decoders import EDGE_DECODERS
from graphvae.encoders import ENCODERS
from graphvae.evaluation.metrics import average_precision, roc_auc
from graphvae.graph import Adjacency, check_graph, edge_keys, sparse_features
from graphvae.likelihoods import contains_sorted
from graphvae.models import MODELS, EdgeObjective, GraphAutoencoder, build_model
from graphvae.models.checkpoints import save_model
from graphvae.training import EarlyStopping, FitResult, FullBatch, fit

__all__ = ["FEATURE_MODES", "PRESETS", "LinkPredConfig", "LinkPredResult", "LinkSplit",
           "prepare_features", "run_link_prediction", "split_edges", "summarize",
           "top_new_links"]


#: ``LinkPredConfig.features`` choices.
FEATURE_MODES = ("raw", "normalize", "standardize", "identity")


@dataclass(frozen=True)
class LinkPredConfig(Config):
    """Every protocol and model choice of a link-prediction run (JSON round-trip; the
    ``graphvae linkpred`` flags are generated from these fields).

    ``features``: ``raw`` (refused from magnitude ``RAW_FEATURE_LIMIT`` on); ``normalize``
    (rows scaled to sum 1, PyG's ``NormalizeFeatures``); ``standardize`` (columns to mean 0,
    variance 1 over all nodes); ``identity`` (featureless, ``X = I``).
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
                                  "validation AUC + AP")
    features: str = option("raw", "input features: raw, row-normalised, column-standardised, "
                           "or identity (featureless)", choices=FEATURE_MODES,
                           flag="--feature-mode")
    selection: str = option("val", "weights of the best validation epoch, or the last",
                            choices=("val", "last"))
    val_fraction: float = option(0.05, "fraction of edges held out for validation")
    test_fraction: float = option(0.10, "fraction of edges held out for testing")

    def validate(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        finite_positive("lr", self.lr)
        if self.latent < 1 or any(h < 1 for h in self.hidden):
            raise ValueError("latent and hidden widths must be positive")
        if self.features not in FEATURE_MODES:
            raise ValueError(f"features must be one of {', '.join(FEATURE_MODES)}, got "
                             f"{self.features!r}")
        if self.selection not in ("val", "last"):
            raise ValueError(f"selection must be 'val' or 'last', got {self.selection!r}")
        if self.patience is not None and self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")


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


#: Largest raw feature magnitude trained on as is: at 100 the joint model's feature
#: likelihood already overflows in its first step, and VGAE's at 1000 (measured).
RAW_FEATURE_LIMIT = 100.0


def check_feature_scale(data: Data, mode: str) -> None:
    """Refuse raw features of magnitude ``RAW_FEATURE_LIMIT`` or more before training, and
    say which ``--feature-mode`` fixes it."""
    if mode != "raw" or data.x is None or data.x.numel() == 0:
        return
    big = float(data.x.abs().max())
    if big >= RAW_FEATURE_LIMIT:
        raise ValueError(f"node features reach {big:.3g} in magnitude, too large to train on "
                         f"raw (the encoder's outputs overflow); use --feature-mode normalize "
                         f"(rows scaled to sum 1) or standardize (columns to mean 0, variance 1)")


def prepare_features(data: Data, mode: str) -> Tensor:
    """Model input features: raw / row-normalised / column-standardised / identity; sparse
    CSR when mostly zero."""
    n = data.num_nodes
    if mode == "identity" or data.x is None:
        return sparse_features(torch.eye(n))
    x = data.x.float()
    if mode == "normalize":
        x = x / x.abs().sum(1, keepdim=True).clamp(min=1e-12)
    elif mode == "standardize":
        x = x.double()
        scale = x.std(0, unbiased=False)
        x = ((x - x.mean(0)) / torch.where(scale > 0, scale, torch.ones_like(scale))).float()
    return sparse_features(x) if float((x != 0).float().mean()) < 0.1 else x


def build_linkpred_model(config: LinkPredConfig, in_channels: int,
                         feature_likelihood: str = "gaussian") -> GraphAutoencoder:
    objective = EdgeObjective(config.estimator, config.negatives, config.reweight,
                              config.self_loops)
    return build_model(config.model, in_channels, config.encoder, config.hidden, config.latent,
                       config.decoder, objective, config.dropout,
                       feature_likelihood=feature_likelihood)


@torch.no_grad()
def evaluate_pairs(model: GraphAutoencoder, z: Tensor, pos: Tensor, neg: Tensor
                   ) -> tuple[float, float]:
    """``(AUC, AP)`` of edge logits on positive vs negative pairs."""
    scores = torch.cat([model.score(z, pos), model.score(z, neg)])
    labels = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))]).to(scores.device)
    return roc_auc(scores, labels), average_precision(scores, labels)


@dataclass
class LinkPredResult:
    metrics: dict[str, Any]
    model: GraphAutoencoder
    z: Tensor
    split: LinkSplit
    fit: FitResult
    x: Tensor = field(repr=False)


def run_link_prediction(data: Data, config: LinkPredConfig, seed: int = 0,
                        device: torch.device | str = "cpu", progress: bool = True,
                        checkpoint: str | Path | None = None, state: str | Path | None = None,
                        resume: bool = False) -> LinkPredResult:
    """Split, train with validation-based selection, and score the test pairs.

    ``checkpoint``: write the selected model there (``model.pt``); ``state``: the
    resumable training state, which ``resume=True`` continues from.
    """
    device = torch.device(device)
    check_graph(data.x, data.edge_index, data.num_nodes)
    check_feature_scale(data, config.features)
    torch.manual_seed(seed)
    split = split_edges(data.edge_index, data.num_nodes, config.val_fraction,
                        config.test_fraction, seed).to(device)
    x = prepare_features(data, config.features).to(device)
    binary = data.x is not None and bool(((data.x == 0) | (data.x == 1)).all())
    model = build_linkpred_model(config, x.size(1), "bernoulli" if binary else "gaussian")
    model = model.to(device)
    adj = Adjacency(split.train_edge_index, data.num_nodes)
    gen = torch.Generator(device=device).manual_seed(seed)

    def evaluate() -> dict[str, float]:
        z = model.encode(x, adj).mean
        auc, ap = evaluate_pairs(model, z, split.val_pos, split.val_neg)
        return {"val_auc": auc, "val_ap": ap, "score": auc + ap}

    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    callbacks = [EarlyStopping(config.patience)] if config.patience is not None else []
    result = fit(model, FullBatch(model.batch(x, adj)), opt, epochs=config.epochs,
                 evaluate=evaluate if config.selection == "val" else None, callbacks=callbacks,
                 generator=gen, checkpoint=state, checkpoint_every=25, resume=resume,
                 config={"task": "linkpred", "seed": seed, **config.to_dict()},
                 progress=progress, desc=f"{config.model} seed {seed}")
    if checkpoint is not None:
        save_model(checkpoint, model, task="linkpred", epoch=result.best_epoch,
                   config=config.to_dict(), in_channels=x.size(1))
    model.eval()
    with torch.no_grad():
        z = model.encode(x, adj).mean
        val_auc, val_ap = evaluate_pairs(model, z, split.val_pos, split.val_neg)
        test_auc, test_ap = evaluate_pairs(model, z, split.test_pos, split.test_neg)
        bound = float(model.bound(x, adj, generator=gen).value)
    metrics = {
        "test_auc": test_auc, "test_ap": test_ap, "val_auc": val_auc, "val_ap": val_ap,
        "epochs": result.epochs, "best_epoch": result.best_epoch, "seconds": result.seconds,
        "median_epoch_ms": 1e3 * float(np.median(result.epoch_seconds)),
        "train_bound_nats": bound, "seed": seed, "config": config.to_dict(),
    }
    return LinkPredResult(metrics, model, z.detach(), split, result, x)


def summarize(runs: list[dict[str, Any]], keys=("test_auc", "test_ap", "val_auc", "val_ap")
              ) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation over seeds for each metric."""
    return {k: {"mean": float(np.mean([r[k] for r in runs])),
                "std": float(np.std([r[k] for r in runs]))} for k in keys}


@torch.no_grad()
def top_new_links(model: GraphAutoencoder, z: Tensor, edge_index: Tensor, k: int = 100,
                  chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """The ``k`` highest-scoring pairs ``i < j`` that are not edges of ``edge_index``.

    Scores rows in chunks, so memory is ``O(chunk · n)``, never ``n × n``.
    Returns ``((2, k) pairs, (k,) probabilities)``.
    """
    n = z.size(0)
    known = torch.unique(edge_keys(edge_index, n)).to(z.device)
    best_s = torch.empty(0, device=z.device)
    best_k = torch.empty(0, dtype=torch.long, device=z.device)
    h = model.edge_decoder.embed(z)
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n), device=z.device)
        logits = h[rows] @ h.t()                                          # (chunk, n)
        cols = torch.arange(n, device=z.device)
        keys = (rows[:, None] * n + cols[None, :]).flatten()
        mask = (cols[None, :] > rows[:, None]).flatten() & ~contains_sorted(known, keys)
        s, kk = logits.flatten()[mask], keys[mask]
        s, kk = torch.cat([best_s, s]), torch.cat([best_k, kk])
        top = torch.topk(s, min(k, s.numel())).indices
        best_s, best_k = s[top], kk[top]
    return torch.stack([best_k // n, best_k % n]), torch.sigmoid(best_s)
