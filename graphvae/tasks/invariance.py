"""``graphvae check-invariance``: load a saved model and a data set, relabel the graphs with
random permutations, and report each component's worst deviation.

Link-prediction checkpoints are checked on the graph the user names (a data set or
an edge file); generation checkpoints on the first test graphs of their own run's
data set and split."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from graphvae.models.checkpoints import load_model as load_model_file
from graphvae.testing import Deviation, check_all


def generation_graphs(cfg: Any, root: str | Path | None, num_graphs: int
                      ) -> tuple[list[tuple], str]:
    """The first ``num_graphs`` test graphs of a generation run's data set (its own split),
    as ``(x, edge_index, node_types, edge_types)`` with the model's input features."""
    from graphvae.tasks.generation import load_generation_data
    data = load_generation_data(cfg, root)
    out = [(x, t.edge_index, t.node_types, t.edge_types)
           for t, x in data.tensors(data.test[:num_graphs])]
    return out, f"{cfg.dataset_name}, {len(out)} test graphs"


def load_model(path: str | os.PathLike) -> tuple[nn.Module, Any, dict[str, Any]]:
    """``(model, config, checkpoint)`` from a model file written by a graph task."""
    from graphvae.errors import DataError
    model, ck = load_model_file(path)
    try:
        if ck.get("task") == "generation":
            from graphvae.tasks.generation import GenerationConfig
            cfg: Any = GenerationConfig.from_dict(ck["config"])
        else:
            from graphvae.tasks.link_prediction import LinkPredConfig
            cfg = LinkPredConfig.from_dict(ck["config"])
    except KeyError as err:
        raise DataError(path, f"the checkpoint lacks {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise DataError(path, f"the checkpoint's run config is not usable ({err})") from None
    return model, cfg, ck


def check_model(model: nn.Module, graphs, num_permutations: int, atol: float, seed: int,
                float64: bool = True, rtol: float = 0.0,
                features: Callable[[Tensor], Tensor] | None = None) -> list[Deviation]:
    """:func:`~graphvae.testing.check_all` in float64 (or the model's float32)."""
    if float64:
        model = model.double()
        graphs = [(g[0].double(), *g[1:]) for g in graphs]
    return check_all(model, graphs, num_permutations, seed, rtol=rtol, features=features)


def format_table(devs: list[Deviation], atol: float) -> str:
    rtol = max((d.rtol for d in devs), default=0.0)
    # with rtol the worst entry is the one furthest past its tolerance, not the largest
    lines = [f"{'component':<15} {'worst entry' if rtol else 'max deviation':>14} {'atol':>9}"
             f"{' + rtol·|value|' if rtol else ''}  status"]
    for d in devs:
        ok = d.excess <= atol
        shown = f"{d.value:.3e}" if d.measured else "n/a"
        status = ("ok" if ok else "FAIL") if d.measured else "n/a"
        lines.append(f"{d.component:<15} {shown:>14} {atol:>9.1e}"
                     f"{f' + {rtol:.0e}·|value|' if rtol else ''}  {status}")
        if not ok:
            lines.append(f"  worst on graph {d.graph} {d.detail} under permutation "
                         f"{d.permutation[:20]}{' ...' if len(d.permutation) > 20 else ''}")
    return "\n".join(lines)
