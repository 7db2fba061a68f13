"""Link prediction with the protocol of Kipf & Welling (2016), https://arxiv.org/abs/1611.07308.

* Split: the undirected edges are shuffled (seeded); ``floor(E/10)`` go to test,
  ``floor(E/20)`` to validation, the rest to training. Validation and test each get
  as many non-edges of the *full* graph, sampled uniformly among pairs ``i < j``,
  without duplicates, the two sets disjoint. The encoder and the training loss see
  only the training edges.
* Scores: edge logits of the posterior means; AUC and AP on validation (model
  selection) and test (reported once, for the selected weights).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphvae.graph import (
    Adjacency,
    check_graph,
    edge_keys,
    sparse_features,
    upper_triangle,
)
from graphvae.likelihoods import contains_sorted
from graphvae.models import EdgeObjective, GraphAutoencoder, build_model
from graphvae.tasks.metrics import average_precision, roc_auc
from graphvae.training import FitResult, fit


@dataclass
class LinkSplit:
    """Train graph and held-out pairs; every pair tensor is ``(2, k)`` with ``i < j``."""

    num_nodes: int
    train_edge_index: Tensor
    val_pos: Tensor
    val_neg: Tensor
    test_pos: Tensor
    test_neg: Tensor

    def to(self, device: torch.device) -> LinkSplit:
        return LinkSplit(self.num_nodes, *(getattr(self, f.name).to(device)
                                           for f in dataclasses.fields(self)[1:]))


def _sample_negatives(forbidden: Tensor, n: int, count: int, rng: np.random.Generator) -> Tensor:
    """``count`` distinct pairs ``i < j`` whose keys are not in sorted ``forbidden``, uniformly.

    Rejection sampling when non-edges are plentiful; on a dense graph (fewer than
    ``4 · count`` non-edges) every non-edge is listed and ``count`` are drawn from the list,
    so the split never loops. A one-line error when there are fewer than ``count``.
    """
    available = n * (n - 1) // 2 - forbidden.numel()
    if available < count:
        raise ValueError(f"the split needs {count} non-edges (as many as the held-out edges) "
                         f"but the graph has only {available}: it is too dense for link "
                         f"prediction")
    if available < 4 * count:
        i, j = torch.triu_indices(n, n, offset=1)
        keys = i * n + j
        keys = keys[~contains_sorted(forbidden, keys)]
        chosen = keys[torch.from_numpy(rng.permutation(keys.numel())[:count])]
        return torch.stack([chosen // n, chosen % n])
    chosen = torch.empty(0, dtype=torch.long)
    while chosen.numel() < count:
        draw = 2 * (count - chosen.numel()) + 16
        i = torch.from_numpy(rng.integers(n, size=draw))
        j = torch.from_numpy(rng.integers(n, size=draw))
        lo, hi = torch.minimum(i, j), torch.maximum(i, j)
        keys = (lo * n + hi)[lo != hi]
        keys = keys[~contains_sorted(forbidden, keys)]
        chosen = _unique_in_order(torch.cat([chosen, keys]))
    return torch.stack([chosen[:count] // n, chosen[:count] % n])


def _unique_in_order(keys: Tensor) -> Tensor:
    uniq, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full((uniq.numel(),), keys.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(keys.numel()), reduce="amin")
    return keys[first.sort().values]


def split_edges(edge_index: Tensor, num_nodes: int, val_fraction: float = 0.05,
                test_fraction: float = 0.10, seed: int = 0) -> LinkSplit:
    """Kipf & Welling's 85/5/10 edge split (see the module docstring)."""
    if not 0 <= val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"bad split fractions: val {val_fraction}, test {test_fraction}")
    check_graph(None, edge_index, num_nodes)
    und = upper_triangle(edge_index)
    m = und.size(1)
    n_test, n_val = int(np.floor(m * test_fraction)), int(np.floor(m * val_fraction))
    if n_test < 1 or m - n_test - n_val < 1:
        raise ValueError(f"the graph has {m} edges, too few to split into train/val/test")
    rng = np.random.default_rng(seed)
    perm = torch.from_numpy(rng.permutation(m))
    test_pos, val_pos = und[:, perm[:n_test]], und[:, perm[n_test:n_test + n_val]]
    train = und[:, perm[n_test + n_val:]]
    forbidden = torch.unique(edge_keys(und, num_nodes))
    neg = _sample_negatives(forbidden, num_nodes, n_test + n_val, rng)
    return LinkSplit(num_nodes, torch.cat([train, train.flip(0)], dim=1),
                     val_pos, neg[:, n_test:], test_pos, neg[:, :n_test])


#: ``LinkPredConfig.features`` choices.
FEATURE_MODES = ("raw", "normalize", "standardize", "identity")


@dataclass(frozen=True)
class LinkPredConfig:
    """Every protocol and model choice of a link-prediction run (JSON round-trip).

    ``features``: ``raw`` (refused from magnitude ``RAW_FEATURE_LIMIT`` on); ``normalize``
    (rows scaled to sum 1, PyG's ``NormalizeFeatures``); ``standardize`` (columns to mean 0,
    variance 1 over all nodes); ``identity`` (featureless, ``X = I``).
    ``selection``: ``val`` (weights of the best validation AUC+AP) or ``last``.
    """

    model: str = "vgae"
    encoder: str = "gcn"
    hidden: tuple[int, ...] = (32,)
    latent: int = 16
    decoder: str = "inner"
    estimator: str = "sampled"
    negatives: float = 1.0
    reweight: bool = True
    self_loops: bool = True
    dropout: float = 0.0
    lr: float = 0.01
    epochs: int = 200
    patience: int | None = None
    features: str = "raw"
    selection: str = "val"
    val_fraction: float = 0.05
    test_fraction: float = 0.10

    def __post_init__(self) -> None:
        _check_types(self)
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.latent < 1 or any(h < 1 for h in self.hidden):
            raise ValueError("latent and hidden widths must be positive")
        if self.features not in FEATURE_MODES:
            raise ValueError(f"features must be one of {', '.join(FEATURE_MODES)}, got "
                             f"{self.features!r}")
        if self.selection not in ("val", "last"):
            raise ValueError(f"selection must be 'val' or 'last', got {self.selection!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinkPredConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> LinkPredConfig:
        return self.from_dict({**self.to_dict(), **changes})


_NUM = (int, float)
_TYPES: dict[str, type | tuple[type, ...]] = {
    "model": str, "encoder": str, "hidden": (tuple, list), "latent": int, "decoder": str,
    "estimator": str, "negatives": _NUM, "reweight": bool, "self_loops": bool, "dropout": _NUM,
    "lr": _NUM, "epochs": int, "patience": (int, type(None)), "features": str, "selection": str,
    "val_fraction": _NUM, "test_fraction": _NUM}


def _check_types(cfg: LinkPredConfig) -> None:
    for name, types in _TYPES.items():
        value = getattr(cfg, name)
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in
                                               (types if isinstance(types, tuple) else (types,)))
        if name == "hidden" and ok:
            ok = all(isinstance(h, int) and not isinstance(h, bool) for h in value)
        if not ok:
            raise ValueError(f"config field {name!r} has the wrong type: {value!r}")


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
                        checkpoint: str | None = None) -> LinkPredResult:
    """Split, train with validation-based selection, and score the test pairs."""
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

    result = fit(model, lambda: model(x, adj, generator=gen), epochs=config.epochs, lr=config.lr,
                 evaluate=evaluate if config.selection == "val" else None,
                 patience=config.patience, checkpoint=checkpoint,
                 checkpoint_extra={"task": "linkpred", "config": config.to_dict(),
                                   "in_channels": x.size(1),
                                   "feature_likelihood": model.feature_decoder.likelihood
                                   if model.feature_decoder is not None else None},
                 progress=progress, desc=f"{config.model} seed {seed}")
    model.eval()
    with torch.no_grad():
        z = model.encode(x, adj).mean
        val_auc, val_ap = evaluate_pairs(model, z, split.val_pos, split.val_neg)
        test_auc, test_ap = evaluate_pairs(model, z, split.test_pos, split.test_neg)
        bound = float(model(x, adj, generator=gen).bound)
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
