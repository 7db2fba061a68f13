"""Progress bars for the long steps outside the training loop (reading QM9, NSPDK, the FCD).

They show on a terminal only (``tqdm``'s ``disable=None``): a log file or a captured stream
gets no carriage-return lines, so an error after a bar has started is still one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def bar(desc: str, enabled: bool, total: int | None = None, unit: str = " it") -> tqdm:
    """A bar cleared when done; silent unless ``enabled`` and stderr is a terminal."""
    return tqdm(desc=desc, total=total, unit=unit, leave=False,
                disable=None if enabled else True)


def steps(items: Iterable[T], desc: str, enabled: bool, unit: str = " it") -> Iterator[T]:
    """``items`` with a bar (see :func:`bar`)."""
    total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    with bar(desc, enabled, total, unit) as b:
        for item in items:
            yield item
            b.update()
