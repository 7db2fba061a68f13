"""``graphvae check-invariance``: load a saved model and a data set, relabel the graph
with random permutations, and report each component's worst deviation.

Link-prediction checkpoints are checked on the graph the user names (a data set or
an edge file); generation checkpoints on the first test graphs of their own run's
data set and split."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graphvae.testing import Deviation, check_all

#: How to rebuild a model from each task's checkpoint (``checkpoint["task"]``).
LOADERS: dict[str, Callable[[dict[str, Any]], tuple[nn.Module, Any]]] = {}


def _load_linkpred(ck: dict[str, Any]) -> tuple[nn.Module, Any]:
    from graphvae.tasks.link_prediction import LinkPredConfig, build_linkpred_model
    cfg = LinkPredConfig.from_dict(ck["config"])
    model = build_linkpred_model(cfg, ck["in_channels"], ck.get("feature_likelihood") or
                                 "gaussian")
    model.load_state_dict(ck["state_dict"])
    return model, cfg


LOADERS["linkpred"] = _load_linkpred


def _load_generation(ck: dict[str, Any]) -> tuple[nn.Module, Any]:
    from graphvae.tasks.generation import GenerationConfig, make_generation_model
    cfg = GenerationConfig.from_dict(ck["config"])
    model = make_generation_model(cfg, ck["in_channels"], ck["init"], ck.get("node_types", 0),
                                  ck.get("edge_types", 0))
    model.load_state_dict(ck["state_dict"])
    return model, cfg


LOADERS["generation"] = _load_generation


def generation_graphs(cfg: Any, root: str | Path | None, num_graphs: int
                      ) -> tuple[list[tuple], str]:
    """The first ``num_graphs`` test graphs of a generation run's data set (its own split),
    as ``(x, edge_index, node_types, edge_types)`` with the model's input features."""
    from graphvae.models.oneshot import GraphTensors
    from graphvae.tasks.generation import input_features, load_generation_data
    data = load_generation_data(cfg, root)
    out = []
    for g in data.test[:num_graphs]:
        t = GraphTensors.from_networkx(g, data.node_attr, data.edge_attr)
        out.append((input_features(t, data.node_types), t.edge_index, t.node_types,
                    t.edge_types))
    return out, f"{cfg.dataset_name}, {len(out)} test graphs"


def load_model(path: str | os.PathLike) -> tuple[nn.Module, Any, dict[str, Any]]:
    """``(model, config, checkpoint)`` from a checkpoint written by any task of the package."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"no such checkpoint: {path}") from None
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {path}: {err}") from None
    task = ck.get("task") if isinstance(ck, dict) else None
    if task not in LOADERS:
        raise ValueError(f"{path} is not a graphvae checkpoint (task {task!r})")
    model, cfg = LOADERS[task](ck)
    return model, cfg, ck


def check_model(model: nn.Module, graphs, num_permutations: int, atol: float, seed: int,
                float64: bool = True) -> list[Deviation]:
    if float64:
        model = model.double()
        graphs = [(g[0].double(), *g[1:]) for g in graphs]
    return check_all(model, graphs, num_permutations, seed)


def format_table(devs: list[Deviation], atol: float) -> str:
    lines = [f"{'component':<15} {'max deviation':>14} {'atol':>9}  status"]
    for d in devs:
        ok = d.value <= atol
        lines.append(f"{d.component:<15} {d.value:>14.3e} {atol:>9.1e}  "
                     f"{'ok' if ok else 'FAIL'}")
        if not ok:
            lines.append(f"  worst on graph {d.graph} {d.detail} under permutation "
                         f"{d.permutation[:20]}{' ...' if len(d.permutation) > 20 else ''}")
    return "\n".join(lines)
