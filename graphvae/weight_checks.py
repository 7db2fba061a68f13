"""Checks of what a torch file held once read, and of what is about to be saved: tensors
that are dense and hold the bytes their shapes claim (:func:`check_tensor_storage`, for
weights :func:`check_weight_storage`), weights that fit a model by name, shape
(:func:`shape_misfit`) and dtype (:func:`check_dtypes`), no NaN weight
(:func:`nan_weight`), and entries of plain data only (:func:`check_plain_entries`). Each
refusal is one line naming the file (:class:`~graphvae.errors.DataError`) or, before a
save, the entry (``ValueError``). :mod:`graphvae.torch_files` reads the files.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch

from graphvae.errors import DataError, quote


def nan_weight(state: dict[str, torch.Tensor]) -> str | None:
    """The first weight of ``state`` that holds NaN, or ``None``: no graphvae run saves one
    (training stops on a non-finite loss). ``-inf`` is allowed: a log-probability of 0."""
    return next((k for k, v in state.items() if v.is_floating_point() and bool(v.isnan().any())),
                None)


def check_weight_storage(state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse weights that hold fewer bytes than their shapes claim: a tensor saved as a
    view that repeats one value (stride 0) or many tensors on one storage would let a
    small file ask for a model of any size, which is built before its weights load.
    Sparse and other non-dense weights are refused first."""
    check_tensor_storage(state, path, "the weights")


_HOLDERS = (torch.Tensor, dict, list, tuple, set, frozenset)


def _named_tensors(obj: Any) -> Iterator[tuple[Callable[[], str], torch.Tensor]]:
    """Every tensor in the dicts (keys too), lists, tuples and sets of ``obj`` (each object
    once), with a function that names where it is (``state_dict.layer.weight``,
    ``history[3]``). The names are built only when asked for: built for every child, 100
    nested dicts under one memoised 10 kB key named 2,500 children with 1 MB each (2.7 GB
    from 17 kB)."""
    seen = {id(obj)}
    links: list[tuple[int, str, Any]] = [(-1, "", None)]   # (parent link, how, key)
    todo: list[tuple[Any, int]] = [(obj, 0)]

    def name(at: int) -> str:
        parts = []
        while at > 0:
            at, how, key = links[at]
            parts.append(f".{key}" if how == "item" else f" (key {key})" if how == "key"
                         else f"[{key}]")
        return "".join(reversed(parts)).lstrip(".")

    while todo:
        x, at = todo.pop()
        if isinstance(x, torch.Tensor):
            yield functools.partial(name, at), x
            continue
        if isinstance(x, dict):         # keys too: a tensor key is a tensor in the file
            children: Iterator[tuple[str, Any, Any]] = itertools.chain(
                (("item", k, v) for k, v in x.items()),
                (("key", i, k) for i, k in enumerate(x)))
        elif isinstance(x, list | tuple | set | frozenset):
            children = (("index", i, v) for i, v in enumerate(x))
        else:
            continue
        for how, key, v in children:
            if isinstance(v, _HOLDERS) and id(v) not in seen:
                seen.add(id(v))
                links.append((at, how, key))
                todo.append((v, len(links) - 1))


def check_tensor_storage(obj: Any, path: str | os.PathLike | None,
                         what: str = "the file's tensors") -> None:
    """:func:`check_weight_storage` for every tensor anywhere in ``obj`` (a loaded file):
    :class:`DataError` naming the first that is not dense or holds fewer bytes than its
    shape, or tensors that share storage beyond its size. A repeated-value view in a run's
    history, its config or its optimiser's slots costs a few bytes of file and gigabytes
    once read as numbers or cast (``list`` of 3·10⁶ repeated values: 2 GB from 2 kB)."""
    storages: dict[tuple[int, int], int] = {}
    need = 0
    for where, v in _named_tensors(obj):
        if v.layout != torch.strided:       # a sparse tensor has no storage to measure
            raise DataError(path, f"{what} are not all dense: {where()} is {v.layout}")
        st = v.untyped_storage()
        nbytes = v.numel() * v.element_size()
        if nbytes > st.nbytes():
            raise DataError(path, f"{what} hold fewer values than their shapes: {where()} "
                                  f"has shape {tuple(v.shape)} on a storage of "
                                  f"{st.nbytes()} bytes")
        storages[st.data_ptr(), st.nbytes()] = st.nbytes()
        need += nbytes
    have = sum(storages.values())
    if need > have:
        raise DataError(path, f"{what} hold fewer values than their shapes: {need} bytes "
                              f"of tensors on {have} bytes of storage")


def castable(have: torch.dtype, want: torch.dtype) -> bool:
    """Whether a saved weight of dtype ``have`` may be loaded into one of ``want``: real
    floating point into floating point (``load_state_dict`` casts: a model saved after
    ``.double()`` or ``.half()`` loads), anything else only as itself. Complex weights lost
    their imaginary part, and integer or boolean ones were taken as numbers, silently."""
    if want.is_floating_point:
        return have.is_floating_point
    return have == want


def shape_misfit(have: dict[str, Any], want: dict[str, torch.Tensor]) -> str | None:
    """Why the weights ``have`` do not fit the state dict ``want`` by name and shape (``2
    missing (e.g. 'w'), 1 unexpected (e.g. 'v')``, ``w is 'x', not a tensor``, ``w has
    shape (3,), the model needs (4,)``), or ``None`` where they do."""
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want), key=str)
    if missing or extra:
        return ", ".join(f"{len(names)} {kind} (e.g. {quote(names[0])})"
                         for names, kind in ((missing, "missing"), (extra, "unexpected"))
                         if names)
    for k, v in want.items():
        if not isinstance(have[k], torch.Tensor):
            return f"{k} is {quote(have[k])}, not a tensor"
        if have[k].shape != v.shape:
            return f"{k} has shape {tuple(have[k].shape)}, the model needs {tuple(v.shape)}"
    return None


def check_dtypes(state: dict[str, torch.Tensor], model: dict[str, torch.Tensor],
                 path: str | os.PathLike) -> None:
    """:class:`DataError` naming the first weight of ``state`` that :func:`castable` does
    not allow into the tensor of the same name in ``model`` (a state dict, e.g. of a
    model built on the meta device)."""
    for k, v in model.items():
        if k in state and not castable(state[k].dtype, v.dtype):
            raise DataError(path, f"the weights do not fit the model: {k} is "
                                  f"{str(state[k].dtype).removeprefix('torch.')}, the model "
                                  f"needs {str(v.dtype).removeprefix('torch.')}")


def not_plain(value: Any, where: str) -> tuple[str, str] | None:
    """``(where, type name)`` of the first part of ``value`` that is not plain data
    (exactly None, bool, int, float, str, or lists, tuples and string-keyed dicts of
    them: a numpy float is a float subclass that ``torch.load(weights_only=True)``
    refuses), else ``None``."""
    if value is None or type(value) in (bool, int, float, str):
        return None
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            if (bad := not_plain(v, f"{where}[{i}]")) is not None:
                return bad
        return None
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str:
                return f"{where} key {k!r}", type(k).__qualname__
            if (bad := not_plain(v, f"{where}[{k!r}]")) is not None:
                return bad
        return None
    kind = type(value)
    return where, (kind.__qualname__ if kind.__module__ == "builtins"
                   else f"{kind.__module__}.{kind.__qualname__}")


def check_plain_entries(entries: dict[str, Any], subject: str, what: str = "entry") -> None:
    """A one-line ``ValueError`` before a checkpoint of ``subject`` is written when one of
    ``entries`` is not plain data (:func:`not_plain`): the file would hold a pickled
    object, which the loaders refuse to read."""
    for key, value in entries.items():
        bad = not_plain(value, repr(key))
        if bad is not None:
            raise ValueError(f"cannot save this {subject}: its {what} {bad[0]} is of type "
                             f"{bad[1]}, not plain data, and a checkpoint holds plain data "
                             f"only (int, float, str, bool, None, lists, dicts); pass Python "
                             f"numbers, or save its state_dict() with torch.save")
