"""Link prediction with the protocol of Kipf & Welling (2016), https://arxiv.org/abs/1611.07308.

* Split: :func:`graphvae.datasets.link_split.split_edges` (85 / 5 / 10 %, non-edges of
  the full graph for validation and test). The encoder and the training loss see only
  the training edges.
* Training: the package's loop (:func:`graphvae.training.fit`) on the full graph
  (:class:`~graphvae.training.FullBatch`), or in mini-batch steps
  (:class:`~graphvae.training.PairBatches`) with ``batch_size``, under data parallelism,
  and by default beyond ``AUTO_FULL_BATCH`` positive pairs; validation AUC + AP every
  ``eval_every`` epochs choosing the weights (``selection="val"``).
* Scores: edge logits of the posterior means; AUC and AP on validation (model
  selection) and test (reported once, for the selected weights).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from graphvae.adjacency import Adjacency
from graphvae.bounds.gaussian import PointMass
from graphvae.config import check_seed
from graphvae.datasets.link_split import LinkSplit, split_edges
from graphvae.devices import check_model_memory, resolve_device
from graphvae.distributed import current_world
from graphvae.graph import check_graph
from graphvae.models import EdgeObjective, GraphAutoencoder, build_model
from graphvae.models.checkpoints import save_model
from graphvae.tasks.features import (  # noqa: F401 - RAW_FEATURE_LIMIT as before the split
    RAW_FEATURE_LIMIT,
    check_feature_scale,
    check_not_blank,
    identity_features,
    prepare_features,
    propagated_features,
)
from graphvae.tasks.link_prediction_config import (  # noqa: F401 - as before the split
    FEATURE_MODES,
    ID_FEATURE_MODES,
    MAX_PROPAGATED_HOPS,
    PRESETS,
    LinkPredConfig,
)
from graphvae.tasks.link_scores import (  # noqa: F401 - as before the split
    HITS_AT,
    MRR_NEGATIVES,
    MRR_POSITIVES,
    evaluate_pairs,
    pair_scores,
    ranking_metrics,
    top_new_links,
)
from graphvae.tasks.oracle import (  # noqa: F401 - planted_ids, as before the split
    check_planted_graph,
    oracle_metrics,
    planted_ids,
)
from graphvae.training import EarlyStopping, FitResult, FullBatch, PairBatches, fit
from graphvae.training.state import same_value

if TYPE_CHECKING:
    from torch_geometric.data import Data

__all__ = ["FEATURE_MODES", "PRESETS", "LinkPredConfig", "LinkPredResult", "LinkSplit",
           "identity_features", "prepare_features", "propagated_features",
           "run_link_prediction", "split_edges", "summarize", "top_new_links"]


def build_linkpred_model(config: LinkPredConfig, in_channels: int,
                         feature_likelihood: str = "gaussian") -> GraphAutoencoder:
    objective = EdgeObjective(config.estimator, config.negatives, config.reweight,
                              config.self_loops)
    return build_model(config.model, in_channels, config.encoder, config.hidden, config.latent,
                       config.decoder, objective, config.dropout,
                       feature_likelihood=feature_likelihood)


#: The training state is written every ``STATE_EPOCHS`` epochs, and whenever
#: ``STATE_SECONDS`` have passed since the last write (a slow epoch loses less to a kill);
#: a SIGTERM writes it at the end of the epoch in progress (:mod:`graphvae.stopping`).
STATE_EPOCHS, STATE_SECONDS = 25, 300.0


@dataclass
class LinkPredResult:
    metrics: dict[str, Any]
    model: GraphAutoencoder
    z: Tensor
    split: LinkSplit
    fit: FitResult
    x: Tensor = field(repr=False)


def _loader(model: GraphAutoencoder, x: Tensor, adj: Adjacency, config: LinkPredConfig,
            rank: int, world_size: int) -> FullBatch | PairBatches:
    """Full batch, or mini-batch steps of ``config.batch_size`` positive pairs (see
    :class:`~graphvae.training.PairBatches`)."""
    size = config.batch_size
    if size is None:
        if world_size > 1:
            raise ValueError("data-parallel training needs --batch-size: the positive pairs "
                             "of one step, a multiple of the number of processes")
        positives = adj.positive_pairs(config.self_loops)[0].size(1)
        if positives <= AUTO_FULL_BATCH or config.estimator == "dense":
            # the dense estimator sums over all n² pairs of the whole graph; mini-batches
            # would quietly replace it by sampled non-edges
            return FullBatch(model.batch(x, adj))
        size = AUTO_BATCH
    return PairBatches(model, x, adj, size, rank=rank, world_size=world_size,
                       steps=config.steps_per_epoch)  # 0: one pass over the positives


#: Without ``--batch-size``: full batch up to this many positive pairs, else mini-batch
#: steps of ``AUTO_BATCH`` pairs (the full batch's decoder memory grows with the edges);
#: ``--estimator dense`` is always the full batch (its memory grows with n² regardless).
AUTO_FULL_BATCH, AUTO_BATCH = 1 << 21, 1 << 20


#: The name of the training value in ``metrics.json`` (``train_<name>_nats`` and
#: ``_history``), by whether the encoder gives a point code: a GAE's value is the
#: reconstruction log-likelihood at the latent means, which bounds nothing.
TRAIN_VALUE = {False: "bound", True: "recon_loglik"}


@torch.no_grad()
def estimate_bound(model: GraphAutoencoder, loader: FullBatch | PairBatches,
                   generator: torch.Generator) -> float:
    """The training graph's bound in nats: exact positives + sampled non-edges on the full
    batch, one fresh mini-batch estimate (unbiased; summed over processes) otherwise."""
    model.eval()
    if isinstance(loader, FullBatch):
        return float(model(loader.batch, generator=generator).value)
    value = model(loader.sample(generator), generator=generator).value.detach().double()
    if loader.world_size > 1:
        torch.distributed.all_reduce(value)
    return float(value)


def _check_run(data: Data, config: LinkPredConfig, seed: int, device: torch.device | str,
               planted: Any) -> torch.device:
    """The run's inputs, checked before any work (one-line errors); the device."""
    from torch_geometric.data import Data
    if not isinstance(data, Data):
        raise TypeError(f"data must be a torch_geometric Data, got {type(data).__name__}")
    if not isinstance(config, LinkPredConfig):
        raise TypeError(f"config must be a LinkPredConfig (LinkPredConfig.from_dict turns a "
                        f"dict into one), got {type(config).__name__}")
    check_seed(seed)
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    check_graph(data.x, data.edge_index, data.num_nodes)
    check_feature_scale(data, config.features)
    if config.model == "joint" and data.x is None:
        raise ValueError("--model joint reconstructs the node features, and this graph has "
                         "none (its input X = I would be an n × n target): use gae or vgae, "
                         "or give the graph features")
    if config.model == "joint" and config.features in ID_FEATURE_MODES:
        raise ValueError(f"--model joint reconstructs the node features, which --feature-mode "
                         f"{config.features} replaces (by X = I, an n × n target, or by random "
                         f"propagated columns): use another feature mode, or gae or vgae")
    if planted is not None:
        check_planted_graph(planted, data)
    return device


def _feature_likelihood(config: LinkPredConfig, data: Data, x: Tensor) -> str:
    """``bernoulli`` for 0/1 features, else ``gaussian``. The joint model's feature target
    is the prepared ``x`` (dense: its refused modes are the sparse ones), so its likelihood
    is chosen on it; the others only record one, from the graph's own features."""
    feats = x if config.model == "joint" else data.x
    # prepare_features returns sparse CSR below 10 % non-zero: its stored values decide
    vals = None if feats is None else (feats if feats.layout == torch.strided
                                       else feats.to_sparse_coo().coalesce().values())
    binary = vals is not None and bool(((vals == 0) | (vals == 1)).all())
    return "bernoulli" if binary else "gaussian"


def _as_given(config: LinkPredConfig) -> Callable[[str, object], str | None]:
    """How a refused ``--resume`` spells a setting: ``config``'s flags, and the number of
    processes as torchrun sets it."""
    def spell(key: str, value: object) -> str | None:
        if key == "world_size":
            return f"{value} process{'es' if value != 1 else ''} (torchrun's --nnodes × " \
                   f"--nproc_per_node)"
        return config.as_given(key, value)
    return spell


def preset_of(settings: dict[str, Any]) -> str | None:
    """The ``--model`` preset whose every training setting ``settings`` (a run's
    :meth:`~graphvae.config.Config.training_settings`, or a training state's config) has;
    ``None`` when it is no preset's as it stands (a preset with a flag changed)."""
    for name, preset in PRESETS.items():
        if all(k in settings and same_value(settings[k], v)
               for k, v in preset.training_settings().items()):
            return name
    return None


def _state_origin(saved: dict[str, Any], now: dict[str, Any]) -> str | None:
    """A refused ``--resume``'s word on the preset a state's settings are, where this run's
    are not that preset's: ``--model best`` sets nine settings, which the refusal would
    otherwise only list one by one, as flags no command typed."""
    theirs = preset_of(saved)
    return (f"its settings are those of --model {theirs}"
            if theirs is not None and theirs != preset_of(now) else None)


def run_link_prediction(data: Data, config: LinkPredConfig, seed: int = 0,
                        device: torch.device | str = "cpu", progress: bool = True,
                        checkpoint: str | Path | None = None, state: str | Path | None = None,
                        resume: bool = False, planted: Any = None) -> LinkPredResult:
    """Split, train with validation-based selection, and score the test pairs.

    ``checkpoint``: write the selected model there (``model.pt``); ``state``: the
    resumable training state, which ``resume=True`` continues from. ``planted``: a
    :class:`~graphvae.datasets.planted.PlantedSBM` of the graph, whose oracle AUC / AP on the
    same test pairs are reported beside the model's. Under ``torch.distributed`` the
    training steps are data-parallel (``DistributedDataParallel``); every process
    evaluates the same weights.
    """
    device = _check_run(data, config, seed, device, planted)
    rank, world = current_world()
    torch.manual_seed(seed)
    split = split_edges(data.edge_index, data.num_nodes, config.val_fraction,
                        config.test_fraction, seed).to(device)
    adj = Adjacency(split.train_edge_index, data.num_nodes)
    x = prepare_features(data, config.features, adj, config, seed).to(device)
    check_not_blank(x, config.features, config.encoder)
    likelihood = _feature_likelihood(config, data, x)
    check_model_memory(lambda: build_linkpred_model(config, x.size(1), likelihood), device,
                       "--hidden or --latent")
    model = build_linkpred_model(config, x.size(1), likelihood).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    loader = _loader(model, x, adj, config, rank, world)

    def evaluate() -> dict[str, float]:
        z = model.encode(x, adj).mean
        auc, ap = evaluate_pairs(model, z, split.val_pos, split.val_neg)
        return {"val_auc": auc, "val_ap": ap, "score": auc + ap}

    trained: torch.nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        trained = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    callbacks = [EarlyStopping(config.patience)] if config.patience is not None else []
    result = fit(trained, loader, opt, epochs=config.epochs,
                 evaluate=evaluate if config.selection == "val" else None, callbacks=callbacks,
                 eval_every=config.eval_every, generator=gen, checkpoint=state,
                 checkpoint_every=STATE_EPOCHS, checkpoint_seconds=STATE_SECONDS, resume=resume,
                 # the settings this run reads (those it ignores at their defaults), and
                 # the graph's hash only where a state is kept
                 config={"task": "linkpred", "seed": seed, "world_size": world,
                         **config.training_settings(),
                         "graph": graph_fingerprint(data) if state is not None else None},
                 as_given=_as_given(config), canonical=LinkPredConfig.canonical_settings,
                 origin=_state_origin,
                 progress=progress,
                 desc=f"{config.model} seed {seed}")
    if checkpoint is not None and rank == 0:
        save_model(checkpoint, model, task="linkpred", epoch=result.best_epoch,
                   config=config.to_dict(), in_channels=x.size(1))
    model.eval()
    with torch.no_grad():
        q = model.encode(x, adj)
        z, value_name = q.mean, TRAIN_VALUE[isinstance(q, PointMass)]
        val_auc, val_ap = evaluate_pairs(model, z, split.val_pos, split.val_neg)
        test_auc, test_ap = evaluate_pairs(model, z, split.test_pos, split.test_neg)
        ranks = ranking_metrics(lambda p: model.score(z, p), split, seed)
        bound = estimate_bound(model, loader, gen)
    metrics = {
        "test_auc": test_auc, "test_ap": test_ap, "val_auc": val_auc, "val_ap": val_ap,
        **ranks,
        "epochs": result.epochs, "best_epoch": result.best_epoch, "seconds": result.seconds,
        "resumed_from_epoch": result.resumed_from,
        "median_epoch_ms": 1e3 * float(np.median(result.epoch_seconds)),
        # a point code's value (GAE) is log p(A | Z = μ), not a bound on log p(A)
        f"train_{value_name}_nats": bound,
        f"train_{value_name}_history": result.column("train_bound"),
        "seed": seed, "config": config.to_dict(),
        "batch": ("full" if isinstance(loader, FullBatch) else
                  {"positives": loader.batch_size, "non_edges": loader.num_neg,
                   "steps_per_epoch": loader.steps, "processes": world}),
    }
    if planted is not None:
        metrics.update(oracle_metrics(planted, split, getattr(data, "node_names", None)))
    return LinkPredResult(metrics, model, z.detach(), split, result, x)


def training_positives(data: Data, config: LinkPredConfig) -> int:
    """The positive pairs a run of ``config`` on ``data`` trains on: both directions of the
    training edges, and the diagonal where ``config.self_loops``. The split's sizes are
    fixed by its fractions, so the count is that of every seed; the largest
    ``--batch-size`` the run takes."""
    split = split_edges(data.edge_index, data.num_nodes, config.val_fraction,
                        config.test_fraction, 0)
    adj = Adjacency(split.train_edge_index, data.num_nodes)
    return int(adj.positive_pairs(config.self_loops)[0].size(1))


def graph_fingerprint(data: Data) -> str:
    """SHA-256 of the graph a run trains on (node count, edge list, features), recorded in
    the training state so that ``--resume`` never continues a state on another graph.
    Sparse features are hashed by their stored entries, never densified."""
    h = hashlib.sha256(f"n={int(data.num_nodes)};".encode())
    h.update(b"edges:" + data.edge_index.detach().cpu().to(torch.int64).contiguous()
             .numpy().tobytes())
    x = data.x
    if x is not None:
        x = x.detach().cpu()
        if x.layout != torch.strided:
            x = x.to_sparse_coo().coalesce()
            parts = [torch.tensor(x.shape), x.indices(), x.values().double()]
        else:
            parts = [torch.tensor(x.shape), x.double()]
        for part in parts:
            h.update(b";" + part.contiguous().numpy().tobytes())
    return h.hexdigest()


def summarize(runs: list[dict[str, Any]], keys=("test_auc", "test_ap", "val_auc", "val_ap")
              ) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation over seeds for each metric."""
    return {k: {"mean": float(np.mean([r[k] for r in runs])),
                "std": float(np.std([r[k] for r in runs]))} for k in keys}
