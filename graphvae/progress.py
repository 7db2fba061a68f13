"""Progress bars for the long steps outside the training loop (reading QM9, NSPDK, the FCD,
the invariance checks).

They show on a terminal only (``tqdm``'s ``disable=None``): a log file or a captured stream
gets no carriage-return lines, so an error after a bar has started is still one line.
Loops deep in the library (the row blocks of a large graph's exact bound) show theirs only
inside :func:`shown`, which a command opens unless ``--quiet``: a user's own code calling
the same functions sees no bars.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def bar(desc: str, enabled: bool, total: int | None = None, unit: str = " it") -> tqdm:
    """A bar cleared when done; silent unless ``enabled`` and stderr is a terminal."""
    return tqdm(desc=desc, total=total, unit=unit, leave=False,
                disable=None if enabled else True)


def steps(items: Iterable[T], desc: str, enabled: bool, unit: str = " it",
          total: int | None = None) -> Iterator[T]:
    """``items`` with a bar (see :func:`bar`); ``total``: their number, if ``items`` has no
    length."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with bar(desc, enabled, total, unit) as b:
        for item in items:
            yield item
            b.update()


_SHOWN: ContextVar[bool] = ContextVar("graphvae_progress_shown", default=False)


@contextmanager
def shown(enabled: bool) -> Iterator[None]:
    """Inside this block, :func:`inner_steps` bars show (on a terminal) if ``enabled``."""
    token = _SHOWN.set(enabled)
    try:
        yield
    finally:
        _SHOWN.reset(token)


def inner_steps(items: Iterable[T], desc: str, unit: str = " it",
                total: int | None = None) -> Iterator[T]:
    """:func:`steps` for a loop deep in the library: a bar only inside :func:`shown`."""
    return steps(items, desc, _SHOWN.get(), unit, total)
