"""The training state file of :func:`graphvae.training.fit` (``checkpoint=PATH``): what it
holds (:func:`save_state`), and resuming from it (:func:`restore_state`): a state of
another run's settings, of another version, of another generator device, or damaged is a
one-line :class:`~graphvae.errors.DataError` naming the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from graphvae.checks import MAX_LR
from graphvae.errors import DataError, describe, one_line, quote
from graphvae.io import load_torch, nan_weight, save_atomic
from graphvae.training.callbacks import EMA, FitState, unwrap
from graphvae.weight_checks import check_tensor_storage, shape_misfit

if TYPE_CHECKING:
    from graphvae.training.loop import FitResult


def _rng_states(generator: torch.Generator | None) -> dict[str, Any]:
    out: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        out["generator"] = generator.get_state()
        out["generator_device"] = generator.device.type
    return out


#: Folders whose older training states this process's run replaces (see
#: :func:`replace_on_first_write`), each with the function that removes them.
_REPLACED: dict[str, Callable[[Path], None]] = {}


def replace_on_first_write(folder: Path, clear: Callable[[Path], None] | None) -> None:
    """Have the first :func:`save_state` into ``folder`` then call ``clear(path)``, with
    the state it wrote: a fresh run removes an interrupted run's states only once it has one
    of its own, so that a run that fails before (a bad file, a killed start) leaves them
    for ``--resume``. ``clear`` ``None`` forgets the folder."""
    key = os.path.abspath(folder)
    if clear is None:
        _REPLACED.pop(key, None)
    else:
        _REPLACED[key] = clear


def save_state(path: Path, state: FitState, result: FitResult,
               generator: torch.Generator | None, config: dict[str, Any] | None) -> None:
    """Write the training state to ``path`` atomically (see :mod:`graphvae.training.loop`
    for what it holds); the first write into a folder of :func:`replace_on_first_write`
    then removes the older states there."""
    _write_state(path, state, result, generator, config)
    clear = _REPLACED.pop(os.path.abspath(Path(path).parent), None)
    if clear is not None:
        clear(Path(path))


def _write_state(path: Path, state: FitState, result: FitResult,
                 generator: torch.Generator | None, config: dict[str, Any] | None) -> None:
    save_atomic({
        "kind": "graphvae-training-state", "config": config, "epoch": result.epochs,
        "stop": state.stop, "model": unwrap(state.model).state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "callbacks": [cb.state_dict() for cb in state.callbacks],
        "rng": _rng_states(generator),
        "best": {"score": state.best_score, "epoch": state.best_epoch,
                 "state": state.best_state, "stale": state.stale},
        "history": result.history, "epoch_seconds": result.epoch_seconds,
        "seconds": result.seconds}, path)


def restore_state(path: Path, state: FitState, result: FitResult,
                  generator: torch.Generator | None, config: dict[str, Any] | None,
                  as_given: Callable[[str, object], str | None] | None = None,
                  epochs: int | None = None,
                  canonical: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                  origin: Callable[[dict[str, Any], dict[str, Any]], str | None] | None = None
                  ) -> None:
    """Load the state at ``path`` into ``state``, ``result`` and ``generator``, refusing
    (one-line :class:`~graphvae.errors.DataError`) a state whose ``config`` differs from
    ``config`` (naming the differing settings, as ``as_given`` spells them), one whose
    generator lived on another device, and a damaged one. ``canonical``: the saved config
    spelt as this version spells ``config``; ``origin``: what else the refusal says of
    the saved config (see :func:`graphvae.training.fit`)."""
    ck = load_torch(path, "training state", "not a graphvae training state (graphvae "
                                            "writes them beside --out)", check=False)
    try:
        check_tensor_storage(ck, None, "its tensors")
    except DataError as err:
        raise DataError(path, f"a damaged training state ({err}); delete it to start the "
                              f"run afresh") from None
    if not isinstance(ck, dict) or ck.get("kind") != "graphvae-training-state":
        raise DataError(path, "not a graphvae training state")
    saved = ck.get("config")
    if canonical is not None and isinstance(saved, dict):
        saved = canonical(saved)
    if config is not None and not same_value(saved, config):
        _refuse_other_command(path, saved, config)
        _refuse_other_version(path, saved, config)
        told = origin(saved, config) if origin is not None and isinstance(saved, dict) \
            else None
        raise DataError(path, f"the training state belongs to a run with other settings "
                              f"({_settings_diff(saved, config, as_given)})"
                              f"{'; ' + told if told else ''}; delete it or rerun with the "
                              f"same ones")
    _check_generator(path, ck, generator)
    try:
        _check_layout(ck, state, generator)
        _load_state(ck, state, result, generator)
        _check_loaded(state, result, epochs)
    except Exception as err:  # noqa: BLE001 - a damaged state fails in many ways
        why = str(err) if isinstance(err, Damaged) else describe(err)
        raise DataError(path, f"a damaged training state ({why}); delete it to start the "
                              f"run afresh") from None


class Damaged(ValueError):
    """Why a training state is damaged, in the package's words (the refusal shows it as it
    is; an exception of torch or Python is shown with its type)."""


#: The entries of a training state (:func:`save_state`), and of its best epoch's record.
ENTRIES = ("epoch", "stop", "model", "optimizer", "callbacks", "rng", "best", "history",
           "epoch_seconds", "seconds")
BEST_ENTRIES = ("score", "epoch", "state", "stale")


def _lacks(have: dict[Any, Any], names: tuple[str, ...], what: str) -> None:
    missing = [k for k in names if k not in have]
    if missing:
        raise Damaged(f"{what} lacks {', '.join(map(repr, missing))}")


def _check_layout(ck: dict[str, Any], state: FitState, generator: torch.Generator | None
                  ) -> None:
    """The entries :func:`save_state` writes, of the types and sizes this run's pieces take,
    or :class:`Damaged` naming the first that is not: a missing entry was named as
    ``KeyError: 'avg'``, a weight of another shape or a random state of another size in
    torch's words."""
    _lacks(ck, ENTRIES, "it")
    for key, kind, what in (("model", dict, "a dict of weights"),
                            ("optimizer", dict, "a dict"), ("callbacks", list, "a list"),
                            ("rng", dict, "a dict of random states"),
                            ("best", dict, "a dict")):
        if not isinstance(ck[key], kind):
            raise Damaged(f"its {key} entry is {quote(ck[key])}, not {what}")
    _lacks(ck["best"], BEST_ENTRIES, "its best epoch's record")
    weights = unwrap(state.model).state_dict()
    misfit = shape_misfit(ck["model"], weights)
    if misfit is not None:
        raise Damaged(f"its weights do not fit the model: {misfit}")
    for k, v in weights.items():          # a resumed run continues bit for bit
        saved = ck["model"][k]
        if saved.dtype != v.dtype or saved.layout != v.layout:
            raise Damaged(f"its weight {k} is a {saved.layout} {saved.dtype} tensor, the "
                          f"model's a {v.layout} {v.dtype} one")
    opt = ck["optimizer"]
    _lacks(opt, ("state", "param_groups"), "its optimiser's state")
    groups = opt["param_groups"]
    if not isinstance(opt["state"], dict) or not isinstance(groups, list) \
            or not all(isinstance(g, dict) for g in groups):
        raise Damaged("its optimiser's state is not a dict of slots and a list of groups")
    if len(groups) != len(state.optimizer.param_groups):
        raise Damaged(f"its optimiser has {len(groups)} parameter groups, this run's "
                      f"{len(state.optimizer.param_groups)}")
    for i, (g, mine) in enumerate(zip(groups, state.optimizer.param_groups)):
        params = g.get("params")
        if not isinstance(params, list) or len(params) != len(mine["params"]):
            raise Damaged(f"its optimiser's parameter group {i} lists {quote(params)}, not "
                          f"this run's {len(mine['params']):,} parameters")
    # (torch's load casts a string slot into the text of a generator object, and the next
    # step fails on it; Adam's load takes float() of its step count; SGD keeps None for
    # a momentum buffer it has not made)
    for slots in opt["state"].values():
        if not isinstance(slots, dict):
            raise Damaged(f"its optimiser's state holds {quote(slots)}, not a dict of slots")
        for key, v in slots.items():
            if (v is not None or key == "step") and not isinstance(v, torch.Tensor) \
                    and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise Damaged(f"its optimiser's {quote(key)} is {quote(v)}, not a tensor or "
                              f"a number")
    for value, what in ((ck["best"]["score"], "best score"), (ck["seconds"], "seconds entry")):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Damaged(f"its {what} is {quote(value)}, not a number")
    if len(ck["callbacks"]) != len(state.callbacks):
        raise Damaged("it has other callbacks than this run")
    for cb, saved in zip(state.callbacks, ck["callbacks"]):
        name = f"its {type(cb).__name__} callback's state"
        if not isinstance(saved, dict):
            raise Damaged(f"{name} is {quote(saved)}, not a dict")
        _lacks(saved, tuple(cb.state_dict()), name)
    rng = ck["rng"]
    _lacks(rng, ("torch",), "its rng entry")
    here = {"torch": torch.get_rng_state()}
    if generator is not None and "generator" in rng:
        here["generator"] = generator.get_state()
    for key, now in here.items():
        saved = rng[key]
        if not isinstance(saved, torch.Tensor) or saved.dtype != torch.uint8 \
                or saved.shape != now.shape:
            shown = (f"a {saved.dtype} tensor of shape {tuple(saved.shape)}"
                     if isinstance(saved, torch.Tensor) else quote(saved))
            raise Damaged(f"its random state {key!r} is {shown}, not the "
                          f"{now.numel():,} bytes this run's takes")


#: Config keys that identify the data (generate's and vector's, linkpred's graph hash).
DATA_KEYS = frozenset({"data", "data_sha256", "graph"})


def same_value(a: object, b: object) -> bool:
    """``a == b``, False where comparing fails (a file's config may hold a tensor)."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - any value a file holds
        return False


def _settings_diff(saved: object, now: dict[str, Any],
                   as_given: Callable[[str, object], str | None] | None = None,
                   show: int = 3) -> str:
    """The settings in which a saved state's config differs from this run's, e.g.
    ``--epochs 20 here, --epochs 10 in the state`` where ``as_given`` spells a key as its
    flag, else ``epochs: 20 here, 10 in the state``; the data's keys (``DATA_KEYS``: the
    commands' fingerprints of their graphs or rows) are named as other data. ``saved``
    comes from the file: any value, shown bounded by :func:`quote`."""
    if not isinstance(saved, dict):
        return "it records none"

    spell = as_given or (lambda key, value: None)

    def one(k: str) -> str:
        if k in DATA_KEYS:
            return "other data"
        here = spell(k, now[k])
        if here is None:                 # a key no flag sets
            return (f"{k}: {quote(now[k])} here, "
                    f"{quote(saved[k]) if k in saved else 'unset'} in the state")
        there = (spell(k, saved[k]) or quote(saved[k])) if k in saved else "unset"
        return f"{here} here, {there} in the state"

    differ = [k for k in now if k not in saved or not same_value(saved[k], now[k])]
    parts = list(dict.fromkeys(one(k) for k in differ))  # "other data" once
    extra = [k for k in saved if k not in now]  # keys of another version's config
    more = len(parts) + len(extra) - show
    parts += [f"{quote(k)}: unset here, {quote(saved[k])} in the state" for k in extra[:show]]
    return one_line("; ".join(parts[:show]) + (f"; {more} more" if more > 0 else ""))


#: The command that writes the training states of each task (``generate`` and ``vector``
#: both name theirs ``train.pt``). A config records its ``task``, except ``vector``'s,
#: known by its ``data_sha256``.
TASK_COMMANDS = {"generation": "graphvae generate", "linkpred": "graphvae linkpred",
                 "vector": "graphvae vector"}


def _task(config: dict) -> object:
    task = config.get("task")
    return "vector" if task is None and "data_sha256" in config else task


def state_command(path: Path) -> str | None:
    """The command (``"graphvae generate"``, ...) whose training state ``path`` is, from
    the task its config records; ``None`` for a file that does not say (damaged, or not a
    state)."""
    try:
        ck = load_torch(path, "training state", "not a graphvae training state")
    except Exception:  # noqa: BLE001 - a damaged file says nothing
        return None
    if not isinstance(ck, dict) or not isinstance(ck.get("config"), dict):
        return None
    task = _task(ck["config"])
    return TASK_COMMANDS.get(task) if isinstance(task, str) else None


def _refuse_other_command(path: Path, saved: object, now: dict[str, Any]) -> None:
    """A state whose config records another task than this run's was left by another
    command: it is refused by naming that command, not by listing how two commands'
    settings differ (settings neither run has among them)."""
    if not isinstance(saved, dict):
        return
    theirs, ours = _task(saved), _task(now)
    if not (isinstance(theirs, str) and isinstance(ours, str)) or theirs == ours:
        return
    # (a task no command writes was "left by a command of task 'generate', not by graphvae
    # generate", whose task is 'generation')
    if theirs not in TASK_COMMANDS:
        raise DataError(path, f"the training state names the task {quote(theirs)}, which no "
                              f"graphvae command writes (this run's is {quote(ours)}): "
                              f"delete it to start the run afresh, or use another --out")
    raise DataError(path, f"the training state was left by {TASK_COMMANDS[theirs]}, not by "
                          f"{TASK_COMMANDS.get(ours, 'this command')}: resume it with that "
                          f"command, or use another --out")


def _refuse_other_version(path: Path, saved: object, now: dict[str, Any]) -> None:
    """A state whose config agrees with this run's on every setting both record but lacks
    some that this version records was written by an older version of graphvae (another
    one, where it also records settings this one does not): it is refused by saying so,
    not as a run with other settings."""
    if not isinstance(saved, dict):
        return
    try:
        shared = [k for k in now if k in saved]
        if not all(same_value(saved[k], now[k]) for k in shared):
            return
    except Exception:  # noqa: BLE001 - a file's keys may be of any type
        return
    missing = [k for k in now if k not in saved]
    if not missing:
        return
    age = "another" if any(k not in now for k in saved) else "an older"
    names = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                      else "")
    raise DataError(path, f"the training state was written by {age} version of graphvae, "
                          f"which did not record {one_line(names)}; it cannot be resumed by "
                          f"this one: delete it to start afresh")


def _check_generator(path: Path, ck: dict[str, Any], generator: torch.Generator | None
                     ) -> None:
    """A state whose random generator lived on another kind of device (a CUDA generator's
    state is 16 bytes, a CPU one's 5,056) cannot continue this run's draws: it is refused
    by name, not as a damaged file. (States of older versions do not record the device;
    the state's size tells them apart.)"""
    rng = ck.get("rng")
    if generator is None or not isinstance(rng, dict) or "generator" not in rng:
        return
    saved, here = rng.get("generator_device"), generator.device.type
    if isinstance(saved, str):
        other = saved != here
    else:                               # an older state: its size tells the device
        other = isinstance(rng["generator"], torch.Tensor) and \
            rng["generator"].shape != generator.get_state().shape
    if other:
        where = quote(saved) if isinstance(saved, str) else "another kind of device"
        raise DataError(path, f"the training state was written by a run on {where}, and its "
                              f"random draws cannot continue on {here}; resume with the "
                              f"same --device, or delete it to start afresh")


def _load_state(ck: dict[str, Any], state: FitState, result: FitResult,
                generator: torch.Generator | None) -> None:
    model = unwrap(state.model)
    dev = next(model.parameters()).device
    model.load_state_dict(ck["model"])
    state.optimizer.load_state_dict(ck["optimizer"])
    for cb, cs in zip(state.callbacks, ck["callbacks"]):
        cb.load_state_dict(_to(cs, dev))
    torch.set_rng_state(ck["rng"]["torch"])
    if "cuda" in ck["rng"] and torch.cuda.is_available():
        # one state per GPU the saving run saw: as many as this run sees are restored
        # (set_rng_state_all failed with fewer GPUs visible)
        for i, s in enumerate(ck["rng"]["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)
    if generator is not None and "generator" in ck["rng"]:
        generator.set_state(ck["rng"]["generator"])
    best = ck["best"]
    if not all(type(x) is int for x in (ck["epoch"], best["epoch"], best["stale"])):
        raise Damaged("its epoch counts are not integers")
    state.best_score, state.best_epoch = float(best["score"]), int(best["epoch"])
    state.stale = int(best["stale"])
    state.best_state = _to(best["state"], dev)
    state.stop = bool(ck["stop"])
    if type(ck["history"]) is not list or type(ck["epoch_seconds"]) is not list:
        raise Damaged("its history or epoch times are not lists")
    result.history, result.epoch_seconds = list(ck["history"]), list(ck["epoch_seconds"])
    if not all(isinstance(row, dict) for row in result.history):
        raise Damaged("its history is not a list of records")
    result.epochs = result.resumed_from = int(ck["epoch"])
    result.seconds = float(ck["seconds"])


def _check_loaded(state: FitState, result: FitResult, epochs: int | None) -> None:
    """What a run of this code could have saved, or ``ValueError``: a hand-edited state
    otherwise trained a negative or huge number of epochs, kept NaN weights or a NaN best
    score (which froze the choice of weights), or failed later in torch (exit 3)."""
    done, best = result.epochs, state.best_epoch
    if epochs is not None and not 0 <= done <= epochs:
        raise Damaged(f"it has run {done} epochs of this run's {epochs}")
    if len(result.history) != done or len(result.epoch_seconds) != done:
        raise Damaged(f"it holds {len(result.history)} history records and "
                      f"{len(result.epoch_seconds)} epoch times for its {done} epochs")
    if not 0 <= best <= done or math.isnan(state.best_score) or state.best_score == math.inf:
        raise Damaged(f"its best epoch {best} (score {state.best_score}) is not one of its "
                      f"{done} epochs")
    model = unwrap(state.model).state_dict()      # loaded strictly: the model's shapes
    if nan_weight(model) is not None:
        raise Damaged("its weights hold NaN")
    best_state = state.best_state
    if best_state is not None:
        if not isinstance(best_state, dict) or shape_misfit(best_state, model) is not None:
            raise Damaged("its best weights do not fit the model")
        if nan_weight(best_state) is not None:
            raise Damaged("its best weights hold NaN")
    _check_records(result)
    for group in state.optimizer.param_groups:
        lr = group.get("lr")
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr <= MAX_LR:
            raise Damaged(f"its learning rate {quote(lr)} is not a number in (0, "
                          f"{MAX_LR:g}]")
    for p, slots in state.optimizer.state.items():      # keyed by the weights themselves
        for key, v in slots.items():
            if not isinstance(v, torch.Tensor):
                continue
            # (load_state_dict casts every slot but the step count to the weights' type)
            if v.is_complex() or v.dtype == torch.bool:
                raise Damaged(f"its optimiser's {key} is of type {v.dtype}, the weights "
                              f"{p.dtype}")
            if v.dim() and v.shape != p.shape:
                raise Damaged(f"its optimiser's {key} has shape {tuple(v.shape)}, the "
                              f"weights {tuple(p.shape)}")
            if v.is_floating_point() and not bool(torch.isfinite(v).all()) \
                    or key in ("exp_avg_sq", "step") and bool((v < 0).any()):
                raise Damaged(f"its optimiser's {key} holds impossible values")
    for cb in state.callbacks:
        if isinstance(cb, EMA) and cb.avg is not None:
            trained = [p for p in unwrap(state.model).parameters() if p.requires_grad]
            if not isinstance(cb.avg, list) or len(cb.avg) != len(trained) or not all(
                    isinstance(a, torch.Tensor) and a.shape == p.shape and a.dtype == p.dtype
                    and bool(torch.isfinite(a).all()) for a, p in zip(cb.avg, trained)):
                raise Damaged("its averaged weights (--ema) do not fit the model")


def _check_records(result: FitResult) -> None:
    """The history's records hold numbers (or nothing) under names, the epoch times and
    the total are finite numbers >= 0: a state edited otherwise trained to its end and then
    failed in the training plot or the timings (exit 3), on every resume."""
    def number(x: object) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool)

    for row in result.history:
        if not all(isinstance(k, str) and (v is None or number(v)) for k, v in row.items()):
            raise Damaged("its history holds records that are not numbers by name")
    for t in (*result.epoch_seconds, result.seconds):
        if not number(t) or not 0 <= t < math.inf:
            raise Damaged(f"its timings hold {quote(t)}, not a number of seconds")


def _to(obj: Any, device: torch.device, memo: dict[int, Any] | None = None) -> Any:
    """``obj`` with its tensors on ``device``; a list or dict met twice is moved once (a
    state file whose lists hold the level below twice, 40 deep, would take 2⁴⁰ steps)."""
    memo = {} if memo is None else memo
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict | list):
        if id(obj) not in memo:
            memo[id(obj)] = ({k: _to(v, device, memo) for k, v in obj.items()}
                             if isinstance(obj, dict) else [_to(v, device, memo) for v in obj])
        return memo[id(obj)]
    return obj
