"""Checks of single values and of plain data against type annotations, each failing with a
one-line ``ValueError`` (or ``TypeError``) naming the value: counts, seeds, layer widths,
learning rates, and a dataclass's fields against their annotations and against torch's
int64 and float32 ranges. :mod:`graphvae.config` builds on them; any module may use them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeGuard

from graphvae.errors import quote

#: The largest integer and finite float a config field may hold: torch's int64, float32
#: (the largest finite float32 also bounds the numbers read from users' files).
MAX_INT = 2 ** 63 - 1
FLOAT32_MAX = 3.4028234663852886e38
#: Seeds run from 0 to this (what every generator of torch and numpy takes).
MAX_SEED = 2 ** 32 - 1
#: The most random relabellings an invariance check draws per graph (the checks in
#: :mod:`graphvae.testing` and ``check-invariance --permutations``; each costs three
#: model passes).
MAX_PERMUTATIONS = 10_000


#: The widest layer (hidden, latent or feature width) a config may ask for: far beyond any
#: published graph or vector VAE, and small enough that one layer's weights fit in memory.
MAX_WIDTH = 1 << 16

#: The most input features (``in_channels``) a model takes: a weight matrix of this many
#: rows at the widest layer (``MAX_WIDTH``) still counts its bytes in torch's int64
#: (2^40 · 2^16 · 8 = 2^59), where 2^62 features failed inside torch ("Storage size
#: calculation overflowed"); a trillion features, far past any machine's memory.
MAX_FEATURES = 1 << 40

#: The most layers a width list may ask for (the package's models use 1 to 3); a saved
#: model asking for more is refused when read, so a run is refused it too.
MAX_LAYERS = 1000


def is_whole(value: Any) -> TypeGuard[int]:
    """Whether ``value`` is a whole number: an integer of Python or numpy, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number of Python or numpy (an integer too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(value: Any) -> str:
    """A number as a message shows it: a whole one of numpy as Python's (``5``, not
    ``np.int64(5)``), one of thousands of digits by its size (:func:`quote`)."""
    return quote(int(value) if is_whole(value) else value)


def check_widths(name: str, widths: tuple[int, ...] | int, allow_empty: bool = False) -> None:
    """A one-line ``ValueError`` unless ``widths`` is one whole number or a list or tuple of
    them (numpy's integers too; not a bool or a float, which torch took as a width of 1 or
    refused from inside a layer), every one in ``1 … MAX_WIDTH``, and, for a list or tuple
    without ``allow_empty``, at least one."""
    if not isinstance(widths, list | tuple):
        if not is_whole(widths):
            raise ValueError(f"{name} must be a whole number, got {quote(widths)}")
        if not 1 <= widths <= MAX_WIDTH:
            raise ValueError(f"{name} must be a width from 1 to {MAX_WIDTH}, got "
                             f"{_number(widths)}")
        return
    check_width_list(name, widths, allow_empty)


def check_width_list(name: str, widths: Sequence[int], allow_empty: bool = False) -> None:
    """:func:`check_widths` for a list or tuple of widths (one number alone is refused)."""
    if not isinstance(widths, list | tuple):
        raise ValueError(f"{name} must be a list or tuple of widths, got {quote(widths)}")
    if len(widths) > MAX_LAYERS:
        raise ValueError(f"{name} asks for {len(widths):,} layers, at most {MAX_LAYERS:,}")
    odd = next((w for w in widths if not is_whole(w)), None)
    if odd is not None:
        raise ValueError(f"{name} needs whole numbers as widths, got {quote(odd)}")
    if (not widths and not allow_empty) or any(not 1 <= w <= MAX_WIDTH for w in widths):
        need = "widths" if allow_empty else "at least one width, each"
        raise ValueError(f"{name} needs {need} from 1 to {MAX_WIDTH}, got "
                         f"{','.join(map(_number, widths)) or 'none'}")


def check_count(name: str, value: Any, minimum: int = 1, maximum: int = MAX_INT) -> None:
    """A one-line ``ValueError`` unless ``value`` is a whole number ``>= minimum`` and
    ``<= maximum``: by default torch's int64, which every count reaches (a saved model's
    ``edge_types`` of 2^70 failed inside torch, "Overflow when unpacking long long")."""
    if not is_whole(value) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {_number(value)}")
    if value > maximum:
        most = "2^63 - 1 (torch's int64)" if maximum == MAX_INT else f"{maximum:,}"
        raise ValueError(f"{name} must be at most {most}, got {_number(value)}")


def check_seed(seed: int, name: str = "seed") -> None:
    """A one-line ``TypeError`` unless ``seed`` is a whole number (not a bool), and a
    ``ValueError`` unless ``0 <= seed <= MAX_SEED``."""
    if not is_whole(seed):
        raise TypeError(f"{name} must be an integer, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_SEED}, got {seed}")


def type_fits(value: Any, hint: Any, classes: bool = False) -> bool:
    """Whether ``value``, plain data (from JSON or a checkpoint), is what the annotation
    ``hint`` asks for: ``None``, ``bool``, ``int`` (not a bool), ``float`` (an int too),
    ``str``, ``tuple[X, ...]`` (a tuple), ``Sequence[X]`` / ``list[X]`` (a list or a tuple),
    unions of these. Another class passes anything, or with ``classes`` only its instances
    (plain data holds none, so such an argument can only be ``None`` or left out)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(type_fits(value, h, classes) for h in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list, Sequence):
        kinds = tuple if origin is tuple else (list, tuple)
        return isinstance(value, kinds) and all(type_fits(v, args[0] if args else Any,
                                                          classes) for v in value)
    return not classes or hint is Any or not isinstance(hint, type) or isinstance(value, hint)


def hint_name(hint: Any) -> str:
    """``int``, ``Sequence[int] | None``: the annotation as written."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def check_field_types(obj: Any) -> None:
    """Check a dataclass's fields against their annotations (:func:`type_fits`), turning
    lists into the tuples a field holds (JSON gives lists), and numbers against torch's
    int64 and float32 ranges; a one-line ``ValueError`` naming the field otherwise."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, list):  # JSON gives lists where the field holds a tuple
            value = tuple(value)
            object.__setattr__(obj, f.name, value)
        if not type_fits(value, hints[f.name]):
            raise ValueError(f"config field {f.name!r} has the wrong type: {quote(value)}, "
                             f"not {hint_name(hints[f.name])}")
        # named by its flag where the field has one of another name (--k, --noise)
        name = (f.metadata.get("flag") or f.name).lstrip("-").replace("_", "-")
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
                raise ValueError(f"{name} must lie within ±(2^63 - 1) (torch's int64), "
                                 f"got {v}")
            if isinstance(v, float) and abs(v) > FLOAT32_MAX and math.isfinite(v):
                raise ValueError(f"{name} must lie within the float32 range "
                                 f"(±{FLOAT32_MAX:.4g}), got {v:g}")


def finite_positive(name: str, value: float) -> None:
    """``ValueError`` unless ``value`` is a number and ``0 < value < ∞`` (a string or a bool
    failed inside the comparison or passed as 1)."""
    if not is_real(value) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")


#: The largest learning rate taken. Adam's first step moves a weight by up to about 10·lr,
#: which passes float32's range (3.4e38) from lr ≈ 3.4e37 on, where torch stops with an
#: overflow error inside the optimiser; below, a rate this large ends as a divergence,
#: which training reports.
MAX_LR = 1e30


def check_lr(value: float) -> None:
    """``ValueError`` unless ``0 < lr <= MAX_LR``."""
    finite_positive("lr", value)
    if value > MAX_LR:
        raise ValueError(f"lr must be at most {MAX_LR:g} (the optimiser's steps overflow "
                         f"float32 beyond), got {value}")
