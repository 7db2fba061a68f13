"""What ``graphvae generate --out`` writes besides ``manifest.json``: ``model.pt``, the raw
samples (``samples.jsonl``, one :func:`sample_record` a line; ``samples.g6``; SMILES for
molecules), ``samples.png``, ``training.png`` and ``metrics.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import torch

from graphvae.containers import SampledGraph
from graphvae.datasets.graphsets import GraphSet
from graphvae.models.checkpoints import save_model
from graphvae.tasks.generation_config import GenerationConfig
from graphvae.training import FitResult


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
    each sample marked valid or invalid (``mols``:
    :func:`~graphvae.tasks.generation.sample_metrics`'s molecule scores, whose raw SMILES
    are ``None`` where a sample is invalid)."""
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


def write_outputs(out: Path, model: torch.nn.Module, cfg: GenerationConfig, data: GraphSet,
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


__all__ = ["plot_samples", "sample_record", "write_outputs"]
