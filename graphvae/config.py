"""Run configurations as frozen dataclasses: one source of truth for defaults, types, JSON and
command-line flags.

A configuration class derives from :class:`Config` and declares its fields with
:func:`option` (a default, a help text, optional ``choices`` and flag name). Then

* ``to_dict()`` / ``from_dict(d)`` round-trip through JSON; ``from_dict`` refuses
  unknown keys and values of the wrong type in one line, and turns JSON lists into the
  tuples the fields hold;
* ``replace(**changes)`` is ``from_dict`` of the changed dict (so it validates too);
* ``add_arguments(parser)`` generates the command line's flags, with the defaults,
  choices and help of the fields (or, ``unset=True``, flags that default to "not given"
  so that a preset supplies the rest); ``given(args)`` collects the flags given.

Subclasses check their values in ``validate()``, called on every construction.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from graphvae.errors import quote

C = TypeVar("C", bound="Config")
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


def check_widths(name: str, widths: tuple[int, ...] | int, allow_empty: bool = False) -> None:
    """A one-line ``ValueError`` unless every width lies in ``1 … MAX_WIDTH`` (and, for a
    tuple without ``allow_empty``, there is at least one)."""
    if isinstance(widths, int):
        if not 1 <= widths <= MAX_WIDTH:
            raise ValueError(f"{name} must be a width from 1 to {MAX_WIDTH}, got {widths}")
        return
    if (not widths and not allow_empty) or any(not 1 <= w <= MAX_WIDTH for w in widths):
        need = "widths" if allow_empty else "at least one width, each"
        raise ValueError(f"{name} needs {need} from 1 to {MAX_WIDTH}, got "
                         f"{','.join(map(str, widths)) or 'none'}")


def check_count(name: str, value: Any, minimum: int = 1) -> None:
    """A one-line ``ValueError`` unless ``value`` is a whole number ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def check_seed(seed: int, name: str = "seed") -> None:
    """A one-line ``TypeError`` unless ``seed`` is a whole number (not a bool), and a
    ``ValueError`` unless ``0 <= seed <= MAX_SEED``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_SEED}, got {seed}")

#: Prefix of the argparse destinations of config flags.
DEST = "config_"
#: The value of an ``unset=True`` flag that was not given (``None`` can be a flag's value:
#: ``--patience off``).
NOT_GIVEN: Any = type("NotGiven", (), {"__repr__": lambda self: "NOT_GIVEN"})()


def option(default: Any, help: str, *, choices: Any = None, flag: str | None = None,
           metavar: str | None = None, parse: Callable[[str], Any] | None = None,
           cli: bool = True) -> Any:
    """A config field: ``default``, ``help`` for ``--help``, ``choices`` (a sequence, or a
    callable returning one, read when the parser is built), the flag name (default
    ``--field-name``), a ``parse`` function for the flag's text, ``cli=False`` to keep it
    off the command line."""
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": choices, "flag": flag, "metavar": metavar, "parse": parse,
        "cli": cli})


def comma_ints(text: str) -> tuple[int, ...]:
    """``"64,64"`` → ``(64, 64)``; a one-line error otherwise."""
    try:
        out = tuple(int(h) for h in str(text).split(",") if h.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got "
                                         f"{text!r}") from None
    return out


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
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
                raise ValueError(f"{f.name.replace('_', '-')} must lie within ±(2^63 - 1) "
                                 f"(torch's int64), got {v}")
            if isinstance(v, float) and abs(v) > FLOAT32_MAX and math.isfinite(v):
                raise ValueError(f"{f.name.replace('_', '-')} must lie within the float32 "
                                 f"range (±{FLOAT32_MAX:.4g}), got {v:g}")


def _flag(f: dataclasses.Field) -> str:
    """A config field's flag: its ``option(flag=...)``, else ``--field-name`` (a switch
    that defaults on is given as ``--no-`` and the rest)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _typed_flag(f: dataclasses.Field) -> str:
    """The flag a user types to set ``f``: ``--no-`` and the rest for a switch that
    defaults on."""
    return "--no-" + _flag(f)[2:] if f.default is True else _flag(f)


class Config:
    """Mixin for frozen dataclasses of run settings (see the module docstring)."""

    #: Fields read only after training (what is sampled, how it is scored): a resumed run
    #: may change them, so :meth:`training_settings` leaves them out.
    AFTER_TRAINING: ClassVar[frozenset[str]] = frozenset()

    def applies(self) -> dict[str, tuple[bool, str]]:
        """``{field: (read by this run, where it applies)}`` for the fields a run may not
        read; subclasses list theirs."""
        return {}

    def ignored_settings(self) -> list[str]:
        """One line for each setting changed from its default that this run does not read
        (``validate`` refuses the combinations that would mislead; these only do nothing):
        the command line prints them as notes."""
        return [f"{self.flag(name)} applies only to {where}; ignored here"
                for name, where in self._unused()]

    def training_settings(self) -> dict[str, Any]:
        """The settings a training state is tied to (``--resume`` refuses a state saved
        under others): every field but ``AFTER_TRAINING``'s, with those this run ignores at
        their defaults, so that a resumed command may add ``--no-fcd`` or another sample
        count and keep the hours already trained."""
        default = type(self)().to_dict()
        unused = {name for name, _ in self._unused()}
        return {k: default[k] if k in unused else v
                for k, v in self.to_dict().items() if k not in self.AFTER_TRAINING}

    def _unused(self) -> list[tuple[str, str]]:
        """``(field, where it applies)`` of each field changed from its default that this
        run does not read."""
        default = type(self)()
        return [(name, where) for name, (used, where) in self.applies().items()
                if not used and getattr(self, name) != getattr(default, name)]

    @classmethod
    def flag(cls, name: str) -> str:
        """Field ``name``'s command-line flag, as :meth:`add_arguments` spells it."""
        f = next(f for f in dataclasses.fields(cls) if f.name == name)  # type: ignore[arg-type]
        return _typed_flag(f)

    @classmethod
    def as_given(cls, name: str, value: object) -> str | None:
        """Field ``name`` set to ``value`` as the command line gives it, for messages:
        ``--k 5``, ``--hidden 64,64``, ``--model 'vae'``; a switch as ``--bf16`` / ``no
        --bf16`` (``--no-reweight`` where it defaults on), an unset option as ``no
        --prior``; ``None`` where no field is so named. ``value`` may come from a file, so
        it is shown bounded by :func:`quote`."""
        f = next((f for f in dataclasses.fields(cls) if f.name == name), None)  # type: ignore[arg-type]
        if f is None:
            return None
        flag = _typed_flag(f)
        if isinstance(f.default, bool) and isinstance(value, bool):
            return flag if value != f.default else f"no {flag}"
        if value is None:
            return f"no {flag}"
        if isinstance(value, tuple | list) and 0 < len(value) <= 16 and all(
                isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_INT
                for v in value):
            return f"{flag} {','.join(map(str, value))}"       # --hidden 64,64
        return f"{flag} {quote(value)}"

    def __post_init__(self) -> None:
        check_field_types(self)
        self.validate()

    def validate(self) -> None:
        """Check the values; subclasses raise ``ValueError`` naming the problem."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        if not isinstance(d, dict):
            raise ValueError(f"a {cls.__name__} is a JSON object of fields, got "
                             f"{type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(map(str, unknown))}")
        return cls(**d)

    def replace(self: C, **changes: Any) -> C:
        return self.from_dict({**self.to_dict(), **changes})

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, unset: bool = False,
                      skip: tuple[str, ...] = ()) -> None:
        """Add a flag for every command-line field (see the module docstring)."""
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            meta = f.metadata
            if not meta.get("cli", False) or f.name in skip:
                continue
            flag = _flag(f)
            dest = DEST + f.name  # never clashes with a task's own flags
            default = NOT_GIVEN if unset else f.default
            # an unset default (None) is resolved by the run, as the help says: no value
            # to show, and no flag value spells it ('none' only where unset=True)
            shown = "" if unset or f.default is None else f" [{_show(f.default)}]"
            choices = meta["choices"]() if callable(meta["choices"]) else meta["choices"]
            hint = hints[f.name]
            if hint is bool:
                if f.default:  # --no-x turns a default-on switch off
                    parser.add_argument(_typed_flag(f), dest=dest, action="store_false",
                                        default=default, help=meta["help"])
                else:
                    parser.add_argument(flag, dest=dest, action="store_true",
                                        default=default, help=meta["help"])
                if unset:   # over a preset or a --config file, the switch turns back too
                    other = flag if f.default else "--no-" + flag[2:]
                    parser.add_argument(other, dest=dest, default=default,
                                        action="store_true" if f.default else "store_false",
                                        help=f"the opposite of {_typed_flag(f)} (a preset or "
                                             f"--config file may have set it)")
                continue
            parser.add_argument(flag, dest=dest, default=default,
                                metavar=meta["metavar"] or (None if choices is not None else
                                                            flag[2:].replace("-", "_").upper()),
                                type=meta["parse"] or _scalar(hint, unset),
                                choices=list(choices) if choices is not None else None,
                                help=meta["help"] + shown + (
                                    "; 'none' resets what a preset or --config set"
                                    if unset and _resettable(hint) else ""))

    @classmethod
    def given(cls, args: argparse.Namespace) -> dict[str, Any]:
        """The config fields the command line set: every flag's value, the default included,
        or, for flags added with ``unset=True``, those given. A value may be ``None``
        (``--patience off``)."""
        return {f.name: getattr(args, DEST + f.name) for f in dataclasses.fields(cls)  # type: ignore
                if f.metadata.get("cli", False)
                and getattr(args, DEST + f.name, NOT_GIVEN) is not NOT_GIVEN}

    @classmethod
    def from_args(cls: type[C], args: argparse.Namespace) -> C:
        return cls.from_dict(cls.given(args))


def _resettable(hint: Any) -> bool:
    """Whether ``hint`` is an optional number (``int | None``, ``float | None``)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint)
    return union and type(None) in args and any(a in (int, float) for a in args)


def _scalar(hint: Any, unset: bool = False) -> Callable[[str], Any]:
    """The flag's parser. With ``unset`` (a command whose preset or ``--config`` file
    sets fields), an optional number's flag also takes ``none``: the field's unset value,
    so that what the file set can be undone. Elsewhere ``none`` is refused: a field's
    ``None`` there means its resolved default (``--kl-warmup``: a third of the epochs),
    which a user writing ``none`` would not expect."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = [h for h in typing.get_args(hint) if h is not type(None)] if union else [hint]
    if typing.get_origin(args[0]) is tuple:
        return comma_ints
    if unset and _resettable(hint):
        return _optional_number(args[0])
    if args[0] is float:
        return float
    return args[0] if args[0] in (int, str) else str


def _optional_number(kind: type) -> Callable[[str], Any]:
    """The flag of an optional number on a command with presets or ``--config``: the
    number, or ``none`` for the field's unset value, which resets what a preset or a
    ``--config`` file set (``--patience none``)."""
    def parse(text: str) -> Any:
        if text.strip().lower() == "none":
            return None
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what} or 'none', got "
                                             f"{text!r}") from None
    parse.__name__ = kind.__name__   # argparse names the type in its own messages
    return parse


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def finite_positive(name: str, value: float) -> None:
    """``ValueError`` unless ``0 < value < ∞``."""
    if not 0 < value < math.inf:
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
