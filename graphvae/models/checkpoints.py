"""Model files: what a run saves as ``model.pt`` and how any of them is rebuilt.

:func:`save_model` writes, atomically, ``{"model": model.kind, "init":
model.init_kwargs(), "state_dict": ..., **extra}`` (the task adds its config, input
width, ...). :func:`load_model` rebuilds the model from ``kind`` and ``init`` through
:data:`BUILDERS`, first on torch's meta device (no memory) to compare every parameter
shape with the saved weights, and only then for real. Files are read with
``torch.load(weights_only=True)``: tensors and plain containers, no code. Model files of
the package's previous format (``"task"`` and ``"config"`` only) still load.
"""

from __future__ import annotations

import inspect
import os
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graphvae.checks import MAX_LAYERS as _MAX_LAYERS
from graphvae.config import hint_name, type_fits, unknown_names
from graphvae.devices import meta_build
from graphvae.errors import DataError, describe, quote
from graphvae.io import (
    check_weight_storage,
    load_torch,
    nan_weight,
    require_file,
    save_atomic,
)
from graphvae.models.autoencoders import (
    EdgeObjective,
    GraphAutoencoder,
    build_model,
    rebuild_graph_autoencoder,
)
from graphvae.models.graphvae import GraphVAE
from graphvae.models.oneshot import EquivariantGraphVAE
from graphvae.models.sequential import SequentialGraphVAE
from graphvae.weight_checks import check_dtypes, check_plain_entries, shape_misfit

#: The generation models' ``kind`` → their class, built from the saved ``init`` as keywords.
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "oneshot-vae": EquivariantGraphVAE, "graphvae": GraphVAE, "seq-vae": SequentialGraphVAE}


def _from_keywords(cls: type[nn.Module]) -> Callable[[dict[str, Any]], nn.Module]:
    return lambda init: cls(**init)


#: ``kind`` → a function of the saved ``init`` that builds the model.
BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "graph-autoencoder": rebuild_graph_autoencoder,
    **{kind: _from_keywords(cls) for kind, cls in MODEL_CLASSES.items()},
}


def save_model(path: str | os.PathLike, model: nn.Module, **extra: Any) -> Path:
    """Write ``model`` (its kind, constructor arguments and weights) and ``extra``. A
    constructor argument or ``extra`` entry that is not plain data (a prior object given
    to :func:`~graphvae.models.build_model`, a numpy number in a config) is refused before
    anything is written: the file would hold a pickled object, which :func:`load_model`
    refuses to read."""
    init = model.init_kwargs()  # type: ignore[operator]
    for what, entries in (("constructor argument", init), ("entry", extra)):
        check_plain_entries(entries, f"{model.kind} model", what)
    return save_atomic({"model": model.kind, "init": init,  # type: ignore
                        "state_dict": model.state_dict(), **extra}, path)


#: The config fields a model file of the previous format is rebuilt from, with their types
#: (``hidden`` is checked on its own).
_LEGACY_FIELDS = {
    "linkpred": {"model": str, "encoder": str, "latent": int, "decoder": str,
                 "estimator": str, "negatives": float, "reweight": bool, "self_loops": bool,
                 "dropout": float},
    "generation": {"latent": int, "conv": str, "bound": str, "num_perms": int}}


def _legacy(ck: dict[str, Any], path: Path) -> Callable[[], nn.Module]:
    """The builder of a model file written before ``kind`` / ``init`` were saved."""
    cfg, width = ck["config"], int(ck["in_channels"])
    if not isinstance(cfg, dict):
        raise DataError(path, f"the checkpoint's config is not usable: it is "
                              f"{quote(cfg)}, not a dict of settings")
    fields = _LEGACY_FIELDS["linkpred" if ck.get("task") == "linkpred" else "generation"]
    _check_types({k: cfg[k] for k in fields if k in cfg}, fields, path, "config ")
    hidden = cfg["hidden"]          # a tensor of 3·10⁶ ints here made 2 GB of tuple items
    if type(hidden) not in (list, tuple) or len(hidden) > MAX_LAYERS \
            or not all(type(h) is int for h in hidden):
        raise ValueError(f"hidden must be a list of at most {MAX_LAYERS:,} integers")
    if ck.get("task") == "linkpred":
        obj = EdgeObjective(cfg["estimator"], cfg["negatives"], cfg["reweight"],
                            cfg["self_loops"])
        return lambda: build_model(cfg["model"], width, cfg["encoder"], tuple(cfg["hidden"]),
                                   cfg["latent"], cfg["decoder"], obj, cfg["dropout"],
                                   feature_likelihood=ck.get("feature_likelihood")
                                   or "gaussian")
    init = ck["init"]
    if init["kind"] == "oneshot-vae":
        return lambda: EquivariantGraphVAE(width, init["size_counts"], cfg["latent"],
                                           tuple(cfg["hidden"]), cfg["conv"],
                                           node_types=int(ck.get("node_types", 0)),
                                           edge_types=int(ck.get("edge_types", 0)))
    return lambda: GraphVAE(width, init["max_nodes"], latent_channels=cfg["latent"],
                            hidden_channels=tuple(cfg["hidden"]),
                            conv="gcn" if cfg["conv"] == "gin" else cfg["conv"],
                            objective=cfg.get("bound", "matched"),
                            num_perms=cfg.get("num_perms", 8))


def checked_model(build: Callable[[], nn.Module], state: Any, path: Path) -> nn.Module:
    """Build on the meta device, compare parameter shapes and dtypes with ``state`` (see
    :func:`~graphvae.weight_checks.castable`), then build and load for real;
    :class:`DataError` naming ``path`` on any mismatch, and for non-dense weights."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise DataError(path, "the checkpoint has no state_dict of tensors")
    check_weight_storage(state, path)
    nan = nan_weight(state)
    if nan is not None:
        raise DataError(path, f"the weights hold NaN ({nan}); no graphvae run saves such "
                              f"weights")
    skeleton = meta_build(build)               # its shapes are compared below
    misfit = shape_misfit(state, skeleton.state_dict())
    if misfit is not None:
        raise DataError(path, f"the weights do not fit the saved config: {misfit}")
    check_dtypes(state, skeleton.state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build()
    model.load_state_dict(state)
    return model


#: The most layers a saved ``hidden_channels`` / ``decoder_hidden`` list may ask for: each
#: is a module built before any weight is compared (the package's models use 1 to 3); the
#: runs' width flags are held to the same number.
MAX_LAYERS = _MAX_LAYERS


def _check_init(init: dict[str, Any], path: Path) -> None:
    for key in ("hidden_channels", "decoder_hidden"):
        layers = init.get(key)
        if isinstance(layers, (list, tuple)) and len(layers) > MAX_LAYERS:
            raise DataError(path, f"the checkpoint's {key} asks for {len(layers):,} layers "
                                  f"(at most {MAX_LAYERS:,})")


def _check_types(init: dict[str, Any], hints: dict[str, Any], path: Path, where: str = ""
                 ) -> None:
    """:class:`DataError` for the first argument in ``init`` whose value does not fit its
    annotation in ``hints`` (arguments without one are left to the constructor)."""
    for key, value in init.items():
        if key in hints and not type_fits(value, hints[key], classes=True):
            raise DataError(path, f"the checkpoint's config is not usable: {where}{key} is "
                                  f"{quote(value)}, not {hint_name(hints[key])}")


def _arguments(*functions: Callable[..., Any]) -> tuple[set[str], set[str]]:
    """The names, and the required names, of the parameters ``functions`` take by keyword
    (``self`` and ``**kwargs`` aside)."""
    names: set[str] = set()
    required: set[str] = set()
    for fn in functions:
        for p in inspect.signature(fn).parameters.values():
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                names.add(p.name)
                if p.default is p.empty:
                    required.add(p.name)
    return names, required


def _check_names(given: dict[str, Any], names: set[str], required: set[str], owner: str,
                 path: Path) -> None:
    """:class:`DataError` for arguments in ``given`` that ``owner`` does not take (each
    with the name it may mean), then for required ones it lacks."""
    unknown = [k for k in given if k not in names]
    if unknown:
        raise DataError(path, f"the checkpoint's config is not usable: {owner} takes no "
                              f"argument(s) {unknown_names(unknown, sorted(names))}; it "
                              f"takes {', '.join(sorted(names))}")
    missing = sorted(required - set(given))
    if missing:
        raise DataError(path, f"the checkpoint's config is not usable: it lacks {owner}'s "
                              f"argument(s) {', '.join(map(repr, missing))}")


def _check_init_arguments(kind: str, init: dict[str, Any], path: Path) -> None:
    """The saved constructor arguments are those the constructor takes (an unknown or
    missing one was named in Python's words, "__init__() got an unexpected keyword
    argument"), of the types it declares (a string dropout would otherwise build a model
    that fails when it first runs, far from the checkpoint that caused it)."""
    if kind in MODEL_CLASSES:
        cls = MODEL_CLASSES[kind]
        _check_names(init, *_arguments(cls.__init__), cls.__name__, path)
        _check_types(init, typing.get_type_hints(cls.__init__), path)
        return
    # build_model's own arguments and the model's (its **kwargs); the parts it builds
    # itself are not arguments, and the objective is a dict of EdgeObjective's
    names, required = _arguments(build_model)
    names |= _arguments(GraphAutoencoder.__init__)[0] - {"encoder", "edge_decoder",
                                                         "feature_decoder"}
    _check_names(init, names, required | {"objective"}, "build_model", path)
    objective = init["objective"]
    if not isinstance(objective, dict):
        raise DataError(path, "the checkpoint's config is not usable: its objective is not a "
                              "dict of arguments")
    _check_names(objective, *_arguments(EdgeObjective), "its objective (EdgeObjective)",
                 path)
    _check_types(objective, typing.get_type_hints(EdgeObjective), path, "objective ")
    rest = {k: v for k, v in init.items() if k != "objective"}
    _check_types(rest, typing.get_type_hints(GraphAutoencoder.__init__)
                 | typing.get_type_hints(build_model), path)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The dict in a ``.pt`` file, read without running code; one-line errors."""
    path = Path(path)
    require_file(path, "no such checkpoint")
    ck = load_torch(path, "checkpoint", "not a torch checkpoint (a model.pt that graphvae "
                                        "wrote)")
    if not isinstance(ck, dict):
        raise DataError(path, "not a graphvae checkpoint")
    return ck


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, checkpoint dict)`` from a model file of any graph task of the package."""
    path = Path(path)
    ck = read_checkpoint(path)
    kind = ck.get("model")
    if ck.get("task") == "vector":
        raise DataError(path, "a graphvae vector model: this takes the model.pt of "
                              "graphvae linkpred or graphvae generate")
    if kind is None and ck.get("task") not in ("linkpred", "generation"):
        raise DataError(path, f"not a graphvae checkpoint (task {quote(ck.get('task'))})")
    if ck.get("kind") == "graphvae-training-state":
        raise DataError(path, "a training state (kept beside --out while a run lasts), not a "
                              "model checkpoint: give the run's model.pt")
    if kind is not None and not isinstance(kind, str):
        raise DataError(path, f"not a graphvae model checkpoint (its model is a "
                              f"{type(kind).__name__})")
    if kind is not None and kind not in BUILDERS:
        raise DataError(path, f"not a graphvae graph-model checkpoint (model {quote(kind)})")
    try:
        if kind is None:
            build = _legacy(ck, path)
        else:
            init = ck["init"]
            if not isinstance(init, dict):
                raise DataError(path, "the checkpoint's init is not a dict of arguments")
            _check_init(init, path)
            _check_init_arguments(kind, init, path)
            build = lambda: BUILDERS[kind](init)  # noqa: E731
        model = checked_model(build, ck.get("state_dict"), path)
    except DataError:
        raise
    except KeyError as err:
        raise DataError(path, f"the checkpoint lacks {quote(err.args[0])}") from None
    except Exception as err:  # noqa: BLE001 - a crafted config fails in many ways
        raise DataError(path, f"the checkpoint's config is not usable ({describe(err)})"
                        ) from None
    return model, ck
