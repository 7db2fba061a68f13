"""``graphvae check-invariance``: load a saved model and a data set, relabel the graph
with random permutations, and report each component's worst deviation.

Link-prediction checkpoints are checked on the graph the user names (a data set or
an edge file); generation checkpoints on the first test graphs of their own run's
data set and split."""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graphvae.errors import DataError, describe, quote
from graphvae.testing import Deviation, check_all

#: How to rebuild a model from each task's checkpoint (``checkpoint["task"]``): a builder
#: of the model (called on the meta device first) and the config.
LOADERS: dict[str, Callable[[dict[str, Any]], tuple[Callable[[], nn.Module], Any]]] = {}


def _load_linkpred(ck: dict[str, Any]) -> tuple[Callable[[], nn.Module], Any]:
    from graphvae.tasks.link_prediction import LinkPredConfig, build_linkpred_model
    cfg = LinkPredConfig.from_dict(ck["config"])
    return (lambda: build_linkpred_model(cfg, int(ck["in_channels"]),
                                         ck.get("feature_likelihood") or "gaussian")), cfg


LOADERS["linkpred"] = _load_linkpred


def _load_generation(ck: dict[str, Any]) -> tuple[Callable[[], nn.Module], Any]:
    from graphvae.tasks.generation import GenerationConfig, make_generation_model
    cfg = GenerationConfig.from_dict(ck["config"])
    cfg.validate()
    return (lambda: make_generation_model(cfg, int(ck["in_channels"]), ck["init"],
                                          int(ck.get("node_types", 0)),
                                          int(ck.get("edge_types", 0)))), cfg


LOADERS["generation"] = _load_generation


def _checked_model(build: Callable[[], nn.Module], state: Any, path: Path) -> nn.Module:
    """Build the model on the meta device (no memory), compare its parameter shapes with
    the saved ones, and only then build it for real and load the weights."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise DataError(path, "the checkpoint has no state_dict of tensors")
    with torch.device("meta"):
        skeleton = build()
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing or extra:
        raise DataError(path, f"the weights do not fit the saved config: "
                              f"{len(missing)} missing (e.g. {missing[:1]}), {len(extra)} "
                              f"unexpected (e.g. {extra[:1]})")
    wrong = [k for k in want if want[k] != have[k]]
    if wrong:
        k = wrong[0]
        raise DataError(path, f"the weights do not fit the saved config: {k} has shape "
                              f"{have[k]}, the model needs {want[k]}")
    model = build()
    model.load_state_dict(state)
    return model


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


def _refusal(err: Exception) -> str:
    """The line of torch's weights-only refusal that says what it refused."""
    skip = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(skip)]
    return lines[0][:160] if lines else "not a torch checkpoint"


def load_model(path: str | os.PathLike) -> tuple[nn.Module, Any, dict[str, Any]]:
    """``(model, config, checkpoint)`` from a checkpoint written by any task of the package.

    The file is read with ``weights_only=True`` (tensors and plain containers only, no
    code); a missing or malformed config, missing weights or weights of the wrong shape
    are a one-line :class:`~graphvae.errors.DataError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise DataError(path, f"refused: the file holds more than tensors and plain data, "
                              f"which graphvae checkpoints never do ({_refusal(err)})") from None
    except Exception as err:  # noqa: BLE001 - a damaged file fails in many ways
        raise DataError(path, f"cannot read the checkpoint ({describe(err)})") from None
    task = ck.get("task") if isinstance(ck, dict) else None
    if task not in LOADERS:
        raise DataError(path, f"not a graphvae checkpoint (task {quote(task)})")
    try:
        build, cfg = LOADERS[task](ck)
        model = _checked_model(build, ck.get("state_dict"), path)
    except DataError:
        raise
    except KeyError as err:
        raise DataError(path, f"the checkpoint lacks {quote(err.args[0])}") from None
    except Exception as err:  # noqa: BLE001 - a crafted config fails in many ways
        raise DataError(path, f"the checkpoint's config is not usable ({describe(err)})"
                        ) from None
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
