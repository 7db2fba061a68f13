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

import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import torch

from graphvae.containers import GraphBatch, GraphTensors, SampledGraph
from graphvae.datasets.graphsets import (
    GraphSet,
    gdss_split,
    load_graph_set,
    split_graphs,
)
from graphvae.devices import check_model_memory, device_memory
from graphvae.evaluation.graph_stats import (
    graph_novelty,
    graph_summary,
    mean_of_three,
    mmd_table,
)
from graphvae.models import EquivariantGraphVAE, GraphVAE, SequentialGraphVAE
from graphvae.models.graphvae import MAX_GRAPHVAE_SLOTS
from graphvae.progress import steps
from graphvae.provenance import environment
from graphvae.tasks.generation_config import (  # noqa: F401 - the bounds, as before the split
    BOUND_MEANING,
    CONNECT_MAX_PAIRS,
    GEN_DATASETS,
    GEN_MODELS,
    GRAPHVAE_BOUNDS,
    MAX_DRAWS,
    MAX_PERMS,
    MAX_SAMPLES,
    PRIORS,
    SELECTIONS,
    SIZE_PSEUDO_COUNT,
    GenerationConfig,
)
from graphvae.tasks.generation_outputs import plot_samples, sample_record, write_outputs
from graphvae.training import FitResult, KLWarmup, Shuffled, fit


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


def root_unread(cfg: GenerationConfig) -> str | None:
    """Why :func:`load_generation_data` reads no file under the data root for ``cfg``
    (``None``: it reads one)."""
    if cfg.dataset is None:
        return "the default community-small graphs are generated"
    if cfg.dataset.lower() == "lobster":
        return "lobster graphs are generated (there is no file)"
    if cfg.generated:
        return f"--generated draws {cfg.dataset} from its generator"
    return None


def build_generation_model(cfg: GenerationConfig, data: GraphSet) -> torch.nn.Module:
    """``oneshot-vae`` / ``seq-vae``: ``p(n)`` from the training-set counts, every size up to
    the largest graph of any split with a pseudo-count of 0.01 graphs (an unseen size has a
    small, finite probability); ``seq-vae`` applies the connectivity rule when every graph
    of every split is connected and the largest has at most ``CONNECT_MAX_PAIRS`` pairs
    (the rule decides one pair a round), and QM9's valences; ``graphvae``: ``max_nodes`` slots
    (default: the largest graph). A graph of no nodes is refused: ``p(n)`` has no size 0,
    and the bound of such a graph was ``-inf``."""
    for split, graphs in (("training", data.train), ("validation", data.valid),
                          ("test", data.test)):
        empty = [i for i, g in enumerate(graphs) if g.number_of_nodes() == 0]
        if empty:
            raise ValueError(f"{len(empty)} {split} graph{'s' * (len(empty) != 1)} of "
                             f"{data.name!r} ha{'ve' if len(empty) != 1 else 's'} no nodes "
                             f"(the first is graph {empty[0]}, counted from 0): a generator "
                             f"models graphs of at least one node; leave them out")
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
              as_given=cfg.as_given, canonical=GenerationConfig.canonical_settings,
              progress=progress, desc=f"training {cfg.model}")
    if cfg.fits_exemplar:
        fitter: Any = model
        fitter.fit_exemplar_prior(train, cfg.batch_size)
    return res


# ---------------------------------------------------------------------------- the run
#: Bytes a training step of the set-mixture prior holds per entry of its
#: ``(batch, nodes, components, latent)`` densities: float32 and about five live copies
#: (measured on lobster: 0.98 MB more per component at batch 32, 97 nodes, 16 dims).
MIXTURE_BYTES_PER_ENTRY = 24


def check_mixture_memory(cfg: GenerationConfig, data: GraphSet,
                         device: torch.device | None = None) -> None:
    """A one-line ``ValueError`` where the set-mixture prior's densities would need more
    memory than the machine has: ``--components`` within its bound (65,536) on lobster
    asked for about 80 GB, and the kernel's out-of-memory killer ended the process with
    no message (exit 137), where Python never saw a ``MemoryError``. A batch holds at most
    the training set; on CUDA the device's memory is the limit."""
    if cfg.model == "graphvae" or cfg.prior_name != "set-mixture":
        return
    nodes = max((g.number_of_nodes() for g in data.train), default=1)
    batch = min(cfg.batch_size, len(data.train))
    need = MIXTURE_BYTES_PER_ENTRY * batch * nodes * cfg.components * cfg.latent
    have = device_memory(device)
    if have is not None and need > have:
        raise ValueError(f"--components {cfg.components:,}: the set-mixture prior's densities "
                         f"need about {need / 2**30:.0f} GB a step (batch {batch} × "
                         f"{nodes} nodes × {cfg.components:,} components × {cfg.latent} "
                         f"dims), more than this machine's {have / 2**30:.0f} GB; use fewer "
                         f"components or a smaller --batch-size")


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

    if not isinstance(cfg, GenerationConfig):
        raise TypeError(f"run_generation takes a GenerationConfig, got {type(cfg).__name__} "
                        f"(from a dict: GenerationConfig.from_dict(d))")
    device = resolve_device(cfg.device)
    data = load_generation_data(cfg, root, progress)
    if data.name == "qm9" and cfg.fcd:
        from graphvae.chem.scores import require_fcd
        require_fcd()                # before training, not after
        if len(data.test) < 2:       # its reference set: the test molecules
            raise ValueError(f"the FCD needs at least two test molecules, and this split has "
                             f"{len(data.test)}; read more rows (--qm9-limit) or pass --no-fcd")
    check_mixture_memory(cfg, data, device)
    check_model_memory(lambda: build_generation_model(cfg, data), device,
                       "--hidden or --latent")
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
        write_outputs(Path(out), model, cfg, data, samples, sampled, metrics, res, mols)
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


__all__ = ["GEN_DATASETS", "GEN_MODELS", "GenerationConfig", "SampledGraph",
           "build_generation_model", "load_generation_data", "mean_bound",
           "mmd_over_draws", "plot_samples", "run_generation", "sample_metrics",
           "sample_record", "train_generation_model"]
