"""Small-graph generation: train a graph VAE on a set of graphs, sample, and evaluate honestly.

Models (``GenerationConfig.model``):

* ``oneshot-vae`` — :class:`~graphvae.models.oneshot.EquivariantGraphVAE`: per-node
  latents, equivariant, no matching needed.
* ``graphvae`` — :class:`~graphvae.models.graphvae.GraphVAE` (Simonovsky &
  Komodakis 2018): one latent per graph, fixed-size MLP decoder over ``k`` slots,
  trained with the ``matched`` bound (max-pooling graph matching, the paper's
  choice) or the ``permutation`` bound ``log Σ_{P∈S} exp ELBO(PG)`` over
  ``num_perms`` random relabellings plus the canonical orderings.

Evaluation: MMD² of degree, clustering, orbit (and, for the ``gran`` protocol,
spectral) statistics between the test graphs and as many sampled graphs, under a
named protocol (:data:`~graphvae.tasks.graph_stats.PROTOCOLS`), with a train-vs-test
row as the scale reference; molecules get validity, uniqueness and novelty
(:mod:`graphvae.tasks.molecules`). The validation split chooses the epoch; the
test split is only scored.
"""

from __future__ import annotations

import copy
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch
from tqdm.auto import tqdm

from graphvae.datasets.graphsets import GENERATED, GRAPH_SETS, load_graph_set, split_graphs
from graphvae.graph import Adjacency
from graphvae.models.graphvae import GraphVAE
from graphvae.models.oneshot import (
    EquivariantGraphVAE,
    GraphBatch,
    GraphTensors,
    degree_features,
)
from graphvae.permutations import canonical_orderings, random_permutations
from graphvae.tasks.graph_stats import PROTOCOLS, graph_mmd

GEN_MODELS = ("oneshot-vae", "graphvae")
GEN_DATASETS = (*GRAPH_SETS, "qm9")
GRAPHVAE_BOUNDS = ("matched", "permutation")
SIZE_PSEUDO_COUNT = 0.01


@dataclass
class GenerationConfig:
    """One ``graphvae generate`` run. ``dataset=None`` is the generated community-small set."""

    dataset: str | None = None
    generated: bool = False
    model: str = "oneshot-vae"
    bound: str = "matched"            # graphvae only
    num_perms: int = 8                # graphvae permutation bound: random relabellings
    epochs: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    latent: int = 16
    hidden: tuple[int, ...] = (64, 64)
    conv: str = "gin"
    num_samples: int | None = None    # graphs to sample (default: the test-set size)
    protocol: str = "graphrnn"
    max_nodes: int | None = None      # graphvae: decoder slots (default: largest graph)
    valency: bool = True              # qm9: also decode with the valency-aware option
    qm9_limit: int | None = None      # qm9: read only the first rows
    eval_every: int = 10
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        if self.dataset is not None and self.dataset not in GEN_DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}: use one of "
                             f"{', '.join(GEN_DATASETS)}")
        if self.model not in GEN_MODELS:
            raise ValueError(f"unknown model {self.model!r}: use one of {', '.join(GEN_MODELS)}")
        if self.bound not in GRAPHVAE_BOUNDS:
            raise ValueError(f"unknown bound {self.bound!r}: use one of {GRAPHVAE_BOUNDS}")
        from graphvae.encoders.gnn import CONVS

        if self.conv not in CONVS:
            raise ValueError(f"unknown conv {self.conv!r}: use one of {sorted(CONVS)}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown MMD protocol {self.protocol!r}: use one of "
                             f"{sorted(PROTOCOLS)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        for name in ("epochs", "batch_size", "latent", "num_perms", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be >= 1, got "
                                 f"{getattr(self, name)}")
        if self.num_samples is not None and self.num_samples < 1:
            raise ValueError(f"num-samples must be >= 1, got {self.num_samples}")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.max_nodes is not None and (self.model != "graphvae" or self.max_nodes < 1):
            raise ValueError(f"max-nodes applies to --model graphvae and must be >= 1, got "
                             f"{self.max_nodes} with {self.model}")
        if self.generated and self.dataset not in (None, *GENERATED):
            raise ValueError(f"--generated applies to {', '.join(GENERATED)}, not {self.dataset}")
        if self.dataset == "qm9" and self.model != "oneshot-vae":
            raise ValueError("qm9 is supported with --model oneshot-vae (typed nodes and bonds)")

    @property
    def dataset_name(self) -> str:
        name = self.dataset or "community-small"
        gen = self.dataset is None or (self.generated and name in GENERATED) or name == "lobster"
        return f"{name} (generated)" if gen and name != "qm9" else name

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        return cls(**{**d, "hidden": tuple(d.get("hidden", cls.hidden))})


# ---------------------------------------------------------------------------- data
@dataclass
class GraphSet:
    """Split graphs as networkx objects and as tensors (with input features)."""

    name: str
    train: list[nx.Graph]
    valid: list[nx.Graph]
    test: list[nx.Graph]
    node_attr: str | None = None
    edge_attr: str | None = None
    node_types: int = 0
    edge_types: int = 0
    train_smiles: set[str] = field(default_factory=set)
    info: dict[str, Any] = field(default_factory=dict)

    def tensors(self, graphs: list[nx.Graph]) -> list[tuple[GraphTensors, torch.Tensor]]:
        out = []
        for g in graphs:
            t = GraphTensors.from_networkx(g, self.node_attr, self.edge_attr)
            out.append((t, input_features(t, self.node_types)))
        return out


def input_features(t: GraphTensors, node_types: int) -> torch.Tensor:
    """Degree one-hot, plus the node-type one-hot for typed graphs."""
    x = degree_features(t.num_nodes, t.edge_index)
    if node_types and t.node_types is not None:
        x = torch.cat([x, torch.nn.functional.one_hot(t.node_types, node_types).float()], 1)
    return x


def load_generation_data(cfg: GenerationConfig, root: str | Path | None = None) -> GraphSet:
    """The configured graphs, split (train / valid / test) with ``cfg.seed``."""
    name = cfg.dataset or "community-small"
    if name == "qm9":
        return _load_qm9(cfg, root)
    graphs = load_graph_set(name, root, generated=cfg.generated or cfg.dataset is None,
                            seed=cfg.seed)
    if cfg.model == "graphvae":
        limit = cfg.max_nodes or max(g.number_of_nodes() for g in graphs)
        big = max(g.number_of_nodes() for g in graphs)
        if big > limit:
            raise ValueError(f"{name} has a graph with {big} nodes but the GraphVAE decoder has "
                             f"max_nodes={limit} slots; raise --max-nodes to at least {big}")
    sp = split_graphs(graphs, cfg.seed)
    return GraphSet(cfg.dataset_name, sp.train, sp.valid, sp.test, info=sp.sizes())


def _load_qm9(cfg: GenerationConfig, root: str | Path | None) -> GraphSet:
    from graphvae.datasets.qm9 import ATOM_TYPES, BOND_TYPES, load_qm9

    mols, stats = load_qm9(root, limit=cfg.qm9_limit)
    graphs = []
    for m in mols:
        g = nx.Graph()
        for i, t in enumerate(m.node_types.tolist()):
            g.add_node(i, atom=t)
        for (a, b), t in zip(m.edge_index.t().tolist(), m.edge_types.tolist()):
            if a < b:
                g.add_edge(a, b, bond=t)
        g.graph["smiles"] = m.smiles
        graphs.append(g)
    sp = split_graphs(graphs, cfg.seed)
    return GraphSet("qm9", sp.train, sp.valid, sp.test, "atom", "bond", len(ATOM_TYPES),
                    len(BOND_TYPES), {g.graph["smiles"] for g in sp.train},
                    {**sp.sizes(), **stats})


# ---------------------------------------------------------------------------- models
def build_generation_model(cfg: GenerationConfig, data: GraphSet) -> torch.nn.Module:
    sizes = Counter(g.number_of_nodes() for g in data.train)
    big = max(g.number_of_nodes() for g in data.train + data.valid + data.test)
    if cfg.model == "oneshot-vae":
        # p(n): training-set counts; every size up to the largest graph of any split gets
        # a pseudo-count of 0.01 graphs, so an unseen size has a small, finite probability
        counts = [sizes.get(n, 0) + SIZE_PSEUDO_COUNT for n in range(big + 1)]
        init: dict[str, Any] = {"kind": "oneshot-vae", "size_counts": counts}
    else:
        init = {"kind": "graphvae", "max_nodes": cfg.max_nodes or big}
    return make_generation_model(cfg, _in_channels(data), init, data.node_types,
                                 data.edge_types)


def make_generation_model(cfg: GenerationConfig, in_channels: int, init: dict[str, Any],
                          node_types: int = 0, edge_types: int = 0) -> torch.nn.Module:
    """The model of ``cfg`` from its size record ``init`` (as saved in ``model.pt``)."""
    if init["kind"] == "oneshot-vae":
        return EquivariantGraphVAE(in_channels, init["size_counts"], cfg.latent, cfg.hidden,
                                   cfg.conv, node_types=node_types, edge_types=edge_types)
    return GraphVAE(in_channels, init["max_nodes"], latent_channels=cfg.latent,
                    hidden_channels=cfg.hidden, conv="gcn" if cfg.conv == "gin" else cfg.conv)


def _graphvae_perms(model: GraphVAE, x: torch.Tensor, adj: Adjacency, cfg: GenerationConfig,
                    generator: torch.Generator) -> torch.Tensor:
    if cfg.bound == "matched":
        return model.matched_permutation(x, adj)[None]
    k, n = model.max_nodes, adj.num_nodes
    canon = canonical_orderings(adj.edge_index.cpu(), n)                        # (C, n)
    rand = random_permutations(n, cfg.num_perms, generator)                     # (R, n)
    inner = torch.cat([canon, rand]).to(x.device)
    pad = torch.arange(n, k, device=x.device).expand(inner.size(0), k - n)
    return torch.cat([inner, pad], 1)


def graph_bounds(model: torch.nn.Module, items: list[tuple[GraphTensors, torch.Tensor]],
                 cfg: GenerationConfig, device: torch.device, generator: torch.Generator
                 ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Bound values per graph and the surrogate losses of each (mini)batch."""
    values, losses = [], []
    if isinstance(model, EquivariantGraphVAE):
        bs = cfg.batch_size
        for i in range(0, len(items), bs):
            chunk = items[i:i + bs]
            batch = GraphBatch.collate([t for t, _ in chunk], [x for _, x in chunk], device)
            est = model.bound(batch, generator=generator)
            values.append(est.value.detach())
            losses.append(est.surrogate)
        return torch.cat(values), losses
    assert isinstance(model, GraphVAE)
    for t, x in items:
        adj = Adjacency(t.edge_index.to(device), t.num_nodes)
        x = x.to(device)
        perms = _graphvae_perms(model, x, adj, cfg, generator)
        est = model.bound(x, adj, perms, generator=generator)
        values.append(est.value.detach().reshape(1))
        losses.append(est.surrogate)
    return torch.cat(values), losses


@dataclass
class TrainResult:
    train_bound: list[float]
    valid_bound: list[tuple[int, float]]
    best_epoch: int
    seconds: float


def train_generator(model: torch.nn.Module, data: GraphSet, cfg: GenerationConfig,
                    device: torch.device, progress: bool = True) -> TrainResult:
    """Adam on the mean negative bound; every ``eval_every`` epochs the validation bound
    (fixed seed) picks the weights to keep."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    train, valid = data.tensors(data.train), data.tensors(data.valid)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    res = TrainResult([], [], 0, 0.0)
    best, best_state = -math.inf, None
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"training {cfg.model}", disable=not progress,
               leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train), generator=g).tolist()
        items = [train[i] for i in order]
        total = 0.0
        for i in range(0, len(items), cfg.batch_size):
            chunk = items[i:i + cfg.batch_size]
            vals, losses = graph_bounds(model, chunk, cfg, device, g)
            loss = torch.stack(losses).mean()  # one per graph (graphvae) or one per batch
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(vals.sum())
        res.train_bound.append(total / len(items))
        if not math.isfinite(res.train_bound[-1]):
            raise FloatingPointError(f"training diverged at epoch {epoch}; lower --lr")
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            model.eval()
            with torch.no_grad():
                vg = torch.Generator().manual_seed(cfg.seed + 1)
                v = float(graph_bounds(model, valid, cfg, device, vg)[0].mean())
            res.valid_bound.append((epoch, v))
            if v > best:
                best, res.best_epoch, best_state = v, epoch, copy.deepcopy(model.state_dict())
            bar.set_postfix(train=f"{res.train_bound[-1]:.1f}", valid=f"{v:.1f}")
    if best_state is not None:
        model.load_state_dict(best_state)
    res.seconds = time.perf_counter() - start
    return res


# ---------------------------------------------------------------------------- sampling
@torch.no_grad()
def sample_networkx(model: torch.nn.Module, num_graphs: int, seed: int = 0,
                    device: torch.device | str = "cpu") -> list[nx.Graph]:
    """``num_graphs`` sampled graphs as networkx graphs (typed graphs carry ``atom`` / ``bond``
    attributes). Seeded: the same seed gives the same graphs."""
    g = torch.Generator().manual_seed(seed)
    model.eval()
    out = []
    if isinstance(model, EquivariantGraphVAE):
        for s in model.sample(num_graphs, generator=g, device=device):
            out.append(_to_nx(s["adj"], s.get("node_types"), s.get("bond_types")))
            if "bond_prob" in s:
                out[-1].graph["decoder"] = {k: v.cpu() for k, v in s.items()}
        return out
    assert isinstance(model, GraphVAE)
    for _ in range(num_graphs):
        z = torch.randn(model.latent_channels, generator=g).to(device)
        probs = model.edge_probabilities(z).cpu()
        k = probs.size(0)
        keep = torch.rand(k, generator=g) < torch.diagonal(probs)
        u = torch.triu(torch.rand(k, k, generator=g) < probs, diagonal=1)
        adj = (u | u.T)[keep][:, keep].float()
        out.append(_to_nx(adj, None, None))
    return out


def _to_nx(adj: torch.Tensor, node_types, bond_types) -> nx.Graph:
    n = adj.size(0)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    iu = torch.triu(adj, diagonal=1).nonzero().tolist()
    if node_types is not None:
        for i, t in enumerate(node_types.tolist()):
            g.nodes[i]["atom"] = t
    for a, b in iu:
        if bond_types is not None:
            g.add_edge(a, b, bond=int(bond_types[a, b]) - 1)  # back to a BOND_TYPES index
        else:
            g.add_edge(a, b)
    return g


# ---------------------------------------------------------------------------- metrics
def mmd_table(reference: list[nx.Graph], generated: list[nx.Graph], protocol: str,
              train: list[nx.Graph] | None = None) -> dict[str, dict[str, float]]:
    """MMD² of each statistic, generated vs reference, and (given ``train``) the train-vs-test
    reference row. Keys: ``generated``, ``train_vs_test``."""
    out = {"generated": graph_mmd(reference, generated, protocol)}
    if train is not None:
        out["train_vs_test"] = graph_mmd(reference, train, protocol)
    return out


def graph_summary(graphs: list[nx.Graph]) -> dict[str, float]:
    n = [g.number_of_nodes() for g in graphs]
    m = [g.number_of_edges() for g in graphs]
    conn = [nx.is_connected(g) for g in graphs if g.number_of_nodes() > 0]
    return {"mean_nodes": float(np.mean(n)), "mean_edges": float(np.mean(m)),
            "fraction_connected": float(np.mean(conn)) if conn else 0.0}


def _sample_first(dec: dict[str, torch.Tensor], bonds: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores that make the valency-aware decoding start from the model's own sample.

    Sampled bonds score ``0.5 + p/2`` (above every unsampled pair, ``p/2``, and above
    the 0.5 threshold), so they are kept in order of probability while valences allow
    and the spanning tree joins fragments through the most probable other pairs; the
    sampled bond order scores ``0.5 +`` half its probability, so it wins when it fits.
    """
    p = dec["edge_prob"]
    sampled = bonds > 0
    edge = torch.where(sampled, 0.5 + p / 2, p / 2)
    onehot = torch.nn.functional.one_hot((bonds - 1).clamp(min=0), dec["bond_prob"].size(-1))
    bond = dec["bond_prob"] / 2 + 0.5 * onehot * sampled[..., None]
    return edge, bond


def molecule_scores(generated: list[nx.Graph], train_smiles: set[str],
                    valency: bool = True) -> dict[str, dict[str, Any]]:
    """Validity / uniqueness / novelty of sampled molecules, decoded two ways:

    * ``sampled`` — the model's own sample (edges, atoms and bonds drawn from its
      distributions), no correction;
    * ``valency_aware`` — the same sample corrected by
      :func:`~graphvae.tasks.molecules.valency_aware_decode`: its bonds are kept while
      valences allow (most probable first, lower orders when the sampled one does not
      fit) and fragments are joined through the most probable other pairs
      (:func:`_sample_first`).
    """
    from graphvae.tasks.molecules import (
        molecule_metrics,
        mols_from_decoded,
        valency_aware_decode,
    )

    plain = []
    for g in generated:
        n = g.number_of_nodes()
        types = torch.tensor([g.nodes[i]["atom"] for i in range(n)], dtype=torch.long)
        bonds = torch.zeros(n, n, dtype=torch.long)
        for a, b, d in g.edges(data=True):
            bonds[a, b] = bonds[b, a] = d["bond"] + 1
        plain.append((types, bonds))
    decodings = {"sampled": plain}
    if valency:
        decodings["valency_aware"] = [
            valency_aware_decode(t, *_sample_first(g.graph["decoder"], bonds))
            for (t, bonds), g in zip(plain, generated)]
    out = {}
    for name, decoded in decodings.items():
        smiles = mols_from_decoded(decoded)
        out[name] = {**molecule_metrics(smiles, train_smiles), "smiles": smiles}
    return out


# ---------------------------------------------------------------------------- the run
def _init_kwargs(model: torch.nn.Module) -> dict[str, Any]:
    if isinstance(model, EquivariantGraphVAE):
        return {"kind": "oneshot-vae", "size_counts": model.size_logprob.exp().tolist()}
    assert isinstance(model, GraphVAE)
    return {"kind": "graphvae", "max_nodes": model.max_nodes}


def run_generation(cfg: GenerationConfig, root: str | Path | None = None,
                   out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Train, sample ``num_samples`` graphs (default: as many as the test set) and evaluate.

    With ``out``: ``metrics.json``, ``model.pt``, ``samples.g6`` (graph6, one graph a
    line), ``samples_<decoding>.smi`` for molecules (``INVALID`` where a sample is not a
    valid molecule) and ``samples.png`` (sampled graphs under training graphs).
    """
    from graphvae.devices import resolve_device

    cfg.validate()
    device = resolve_device(cfg.device)
    data = load_generation_data(cfg, root)
    torch.manual_seed(cfg.seed)  # the initial weights (torch seeds a new process at random)
    model = build_generation_model(cfg, data).to(device)
    res = train_generator(model, data, cfg, device, progress)
    n_samples = cfg.num_samples or len(data.test)
    start = time.perf_counter()
    sampled = sample_networkx(model, n_samples, seed=cfg.seed, device=device)
    sample_s = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        test_bound = float(graph_bounds(model, data.tensors(data.test), cfg, device,
                                        torch.Generator().manual_seed(cfg.seed + 2))[0].mean())
    metrics: dict[str, Any] = {
        "dataset": data.name, "model": cfg.model, "seed": cfg.seed,
        "bound": cfg.bound if cfg.model == "graphvae" else "elbo",
        "split": data.info, "num_samples": n_samples, "train_seconds": res.seconds,
        "sample_seconds": sample_s, "best_epoch": res.best_epoch,
        "test_bound_nats": test_bound, "device": str(device),
        "generated_summary": graph_summary(sampled), "test_summary": graph_summary(data.test),
    }
    if data.name == "qm9":
        mols = molecule_scores(sampled, data.train_smiles, cfg.valency)
        metrics["molecules"] = {k: {kk: vv for kk, vv in v.items() if kk != "smiles"}
                                for k, v in mols.items()}
    else:
        metrics["protocol"] = cfg.protocol
        metrics["mmd2"] = mmd_table(data.test, sampled, cfg.protocol, data.train)
    if out is not None:
        _write_outputs(Path(out), model, cfg, data, sampled, metrics, res,
                       mols if data.name == "qm9" else None)
    return metrics


def _write_outputs(out: Path, model: torch.nn.Module, cfg: GenerationConfig, data: GraphSet,
                   sampled: list[nx.Graph], metrics: dict[str, Any], res: TrainResult,
                   mols: dict[str, dict[str, Any]] | None) -> None:
    from graphvae.io import save_atomic, write_json, write_text
    from graphvae.plotting import plot_graph_grid

    save_atomic({"task": "generation", "config": cfg.to_dict(), "init": _init_kwargs(model),
                 "in_channels": _in_channels(data), "state_dict": model.state_dict(),
                 "node_types": data.node_types, "edge_types": data.edge_types}, out / "model.pt")
    lines = [nx.to_graph6_bytes(g, header=False).decode().strip() for g in sampled]
    write_text("\n".join(lines) + "\n", out / "samples.g6")
    if mols is not None:
        for name, v in mols.items():
            write_text("\n".join(s or "INVALID" for s in v["smiles"]) + "\n",
                       out / f"samples_{name}.smi")
    plot_graph_grid(data.train[:8], sampled[:16], out / "samples.png",
                    f"{cfg.model} on {data.name}: training graphs (top) and samples",
                    node_attr=data.node_attr)
    write_json({**metrics, "config": cfg.to_dict(),
                "history": {"train": res.train_bound, "valid": res.valid_bound}},
               out / "metrics.json")


def _in_channels(data: GraphSet) -> int:
    t = GraphTensors.from_networkx(data.train[0], data.node_attr, data.edge_attr)
    return int(input_features(t, data.node_types).size(1))
