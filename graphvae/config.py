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
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from graphvae.checks import (  # noqa: F401 - importable here as before the split
    FLOAT32_MAX,
    MAX_INT,
    MAX_LR,
    MAX_PERMUTATIONS,
    MAX_SEED,
    MAX_WIDTH,
    check_count,
    check_field_types,
    check_lr,
    check_seed,
    check_widths,
    finite_positive,
    hint_name,
    type_fits,
)
from graphvae.errors import quote

C = TypeVar("C", bound="Config")

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
    """``"64,64"`` → ``(64, 64)``, ``""`` → ``()`` (no layer); a one-line error otherwise,
    an empty item included (``1,,2`` and ``,`` were read as ``1,2`` and as no layer)."""
    if not str(text).strip():
        return ()
    try:
        out = tuple(int(h) for h in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got "
                                         f"{text!r}") from None
    return out


def _flag(f: dataclasses.Field) -> str:
    """A config field's flag: its ``option(flag=...)``, else ``--field-name`` (a switch
    that defaults on is given as ``--no-`` and the rest)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _typed_flag(f: dataclasses.Field) -> str:
    """The flag a user types to set ``f``: ``--no-`` and the rest for a switch that
    defaults on."""
    return "--no-" + _flag(f)[2:] if f.default is True else _flag(f)


def check_keys(cls: type, d: object) -> None:
    """A one-line ``ValueError`` unless ``d`` is a dict whose keys are fields of the
    dataclass ``cls`` (an unknown key is named with the field it may mean), holding every
    field that has no default."""
    if not isinstance(d, dict):
        raise ValueError(f"a {cls.__name__} is a JSON object of fields, got "
                         f"{type(d).__name__}")
    fields = dataclasses.fields(cls)
    known = [f.name for f in fields]
    unknown = set(d) - set(known)
    if unknown:
        raise ValueError(f"unknown config key(s): "
                         f"{unknown_names(unknown, known, lambda k: _field_of_flag(cls, k))}; "
                         f"the keys are the fields of {cls.__name__}: "
                         f"{', '.join(sorted(known))}")
    missing = [f.name for f in fields if f.name not in d
               and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"config key(s) {', '.join(map(repr, missing))} missing: "
                         f"{cls.__name__} has no default for them")


def _field_of_flag(cls: type, key: object) -> str | None:
    """The field of ``cls`` whose flag ``key`` spells (``feature_mode`` for
    ``--feature-mode``, field ``features``), if any."""
    flag = "--" + str(key).replace("_", "-")
    return next((f.name for f in dataclasses.fields(cls) if _flag(f) == flag), None)


def unknown_names(keys: Iterable[object], names: Sequence[str],
                  meant: Callable[[object], str | None] = lambda key: None) -> str:
    """The unknown ``keys``, sorted, the first five shown (then how many more), each
    quoted with the one of ``names`` it may mean: ``meant(key)``, else the closest name
    if one is close (``'hiden' (did you mean hidden?)``)."""
    import difflib

    unknown = sorted(keys, key=str)
    shown = []
    for key in unknown[:5]:
        text = str(key)
        guess = meant(key)
        if guess is None:
            close = difflib.get_close_matches(text, list(names), n=1)
            guess = close[0] if close else None
        shown.append(quote(text) if guess is None else f"{quote(text)} (did you mean {guess}?)")
    more = f", {len(unknown) - 5} more" if len(unknown) > 5 else ""
    return ", ".join(shown) + more


class Config:
    """Mixin for frozen dataclasses of run settings (see the module docstring)."""

    #: Fields read only after training (what is sampled, how it is scored): a resumed run
    #: may change them, so :meth:`training_settings` leaves them out.
    AFTER_TRAINING: ClassVar[frozenset[str]] = frozenset()

    def applies(self) -> dict[str, tuple[bool, str]]:
        """``{field: (read by this run, where it applies)}`` for the fields a run may not
        read; subclasses list theirs."""
        return {}

    def ignored_settings(self, base: Config | None = None) -> list[str]:
        """One line for each setting changed from its default that this run does not read
        (``validate`` refuses the combinations that would mislead; these only do nothing):
        the command line prints them as notes. ``base``: only settings that also differ
        from it (a preset's values, which the user did not give)."""
        return [f"{self.flag(name)} applies only to {where}; ignored here"
                for name, where in self._unused()
                if base is None or getattr(self, name) != getattr(base, name)]

    def training_settings(self) -> dict[str, Any]:
        """The settings a training state is tied to (``--resume`` refuses a state saved
        under others): every field but ``AFTER_TRAINING``'s, with those this run ignores at
        their defaults, so that a resumed command may add ``--no-fcd`` or another sample
        count and keep the hours already trained. A ``device`` is tied by its kind as it
        resolves (``auto`` on a machine without CUDA is ``cpu``; ``cuda:1`` is ``cuda``):
        the kind decides the random draws, the index does not."""
        default = type(self)().to_dict()
        unused = {name for name, _ in self._unused()}
        out = {k: default[k] if k in unused else v
               for k, v in self.to_dict().items() if k not in self.AFTER_TRAINING}
        if isinstance(out.get("device"), str):
            from graphvae.devices import resolve_device
            out["device"] = resolve_device(out["device"]).type
        return out

    @classmethod
    def canonical_settings(cls: type[C], saved: dict[str, Any],
                           resolve: Callable[[C], C] | None = None) -> dict[str, Any]:
        """A training state's saved config with the settings this class knows spelt as
        :meth:`training_settings` spells them now (``resolve``: the run's own resolution,
        e.g. vector's likelihood), for ``--resume``: a state an earlier version wrote with
        ``--device auto`` or a default written out still matches the same command. Keys
        the state lacks stay absent (an older version's state is told apart so); a config
        that does not build is returned as it is."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        try:
            cfg = cls.from_dict({k: v for k, v in saved.items() if k in known})
            if resolve is not None:
                cfg = resolve(cfg)
            now = cfg.training_settings()
        except Exception:  # noqa: BLE001 - a file's config may hold anything
            return saved
        return {**saved, **{k: v for k, v in now.items() if k in saved}}

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
        ``--k 5``, ``--hidden 64,64`` (``--hidden ''``: none), ``--model 'vae'``; a switch
        as ``--bf16`` / ``no --bf16`` (``--no-reweight`` where it defaults on), an unset
        option as ``no --prior``; ``None`` where no field is so named. ``value`` may come
        from a file, so it is shown bounded by :func:`quote`."""
        f = next((f for f in dataclasses.fields(cls) if f.name == name), None)  # type: ignore[arg-type]
        if f is None:
            return None
        flag = _typed_flag(f)
        if isinstance(f.default, bool) and isinstance(value, bool):
            return flag if value != f.default else f"no {flag}"
        if value is None:
            return f"no {flag}"
        if isinstance(value, tuple | list) and len(value) <= 16 and all(
                isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_INT
                for v in value):
            return f"{flag} {','.join(map(str, value)) or repr('')}"   # --hidden 64,64 / ''
        return f"{flag} {quote(value)}"

    def __post_init__(self) -> None:
        try:
            check_field_types(self)
            self.validate()
        except ValueError as err:
            if type(err) is not ValueError:
                raise
            raise ValueError(self._as_flag(str(err))) from None

    @classmethod
    def _as_flag(cls, message: str) -> str:
        """``message`` with its first word, where that is a field's flag written without its
        dashes (``epochs must be at least 1``), given them (``--epochs must ...``), so that
        every refusal names the setting as the command line spells it (a ``--config`` file's
        reader turns the flag back into the file's key)."""
        word = message.split(" ", 1)[0]
        flags = {_flag(f) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return "--" + message if word and "--" + word in flags else message

    @classmethod
    def as_key(cls, message: str) -> str:
        """``message`` with its first word, where that is a field's flag (``--feature-mode
        must ...``), turned into the field's name (``features must ...``): a refusal as a
        ``--config`` file spells its keys. The inverse of the flag naming above."""
        word = message.split(" ", 1)[0]
        keys = {_flag(f): f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return keys[word] + message[len(word):] if word in keys else message

    def validate(self) -> None:
        """Check the values; subclasses raise ``ValueError`` naming the problem."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        check_keys(cls, d)
        return cls(**d)

    def replace(self: C, **changes: Any) -> C:
        return self.from_dict({**self.to_dict(), **changes})

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, unset: bool = False,
                      skip: tuple[str, ...] = (), presets: Mapping[str, Any] | None = None,
                      preset: str | None = None) -> None:
        """Add a flag for every command-line field (see the module docstring). With
        ``unset``, the defaults are those of ``presets[preset]``, and each help shows that
        value and every other preset's that differs (``[32; best: '']``)."""
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
            if unset and presets is not None and preset is not None:
                shown = _preset_values(presets, preset, f.name)
            choices = meta["choices"]() if callable(meta["choices"]) else meta["choices"]
            hint = hints[f.name]
            if hint is bool:
                flipped = [] if presets is None or not unset else \
                    [key for key, p in presets.items() if getattr(p, f.name) != f.default]
                text = meta["help"] + (f" ({', '.join(flipped)} set{'s' * (len(flipped) == 1)}"
                                       f" it)" if flipped else "")
                if f.default:  # --no-x turns a default-on switch off
                    parser.add_argument(_typed_flag(f), dest=dest, action="store_false",
                                        default=default, help=text)
                else:
                    parser.add_argument(flag, dest=dest, action="store_true",
                                        default=default, help=text)
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


def _preset_values(presets: Mapping[str, Any], preset: str, name: str) -> str:
    """`` [V; other: W]``: field ``name`` of the default ``preset``, then of each preset
    where it differs; ``""`` where every preset leaves it to the run (``None``)."""
    first = getattr(presets[preset], name)
    others = [f"{key}: {_show(getattr(p, name))}" for key, p in presets.items()
              if key != preset and getattr(p, name) != first]
    if first is None and not others:
        return ""
    return f" [{'; '.join([_show(first), *others])}]"


def _show(value: Any) -> str:
    if isinstance(value, tuple) and not value:
        return "''"                       # no layer, as the flag spells it
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)
