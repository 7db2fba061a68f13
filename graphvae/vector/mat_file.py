"""Reading a MATLAB ``.mat`` file's matrix ``X`` safely (:func:`read_mat_array`): SciPy's
reader runs in a child process with bounded memory and time. :mod:`graphvae.vector.data`
checks what it returns.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from graphvae.errors import DataError, last_line
from graphvae.io import require_file

#: Runs in a child process: SciPy's MAT reader crashes (segmentation fault) or asks for
#: tens of GB on some damaged files, which no ``try`` can catch in the parent.
_MAT_CHILD = """
import math
import sys
import numpy as np
from scipy.io import loadmat, whosmat
try:
    # the shape from the header first: a sparse or compressed X of any shape is a few
    # bytes of file, and dense once read (150e6 x 1 of zeros: 208 bytes, 3 GB)
    listed = whosmat(sys.argv[1])
    shapes = {name: tuple(shape) for name, shape, _ in listed}
except Exception as err:
    sys.exit(f"{type(err).__name__}: {err}")
if "X" not in shapes:
    sys.exit("holds no variable named X")
if sum(name == "X" for name, _, _ in listed) > 1:   # loadmat reads another than whosmat
    sys.exit("refused: X is defined twice")
shape, want, most = shapes["X"], sys.argv[3], int(sys.argv[4])
if want and shape != tuple(int(v) for v in want.split(",")):
    sys.exit(f"refused: X has shape {shape}, expected ({want.replace(',', ', ')})")
if math.prod(shape) > most:
    sys.exit(f"refused: X has shape {shape}, more than {most:,} entries")
try:
    x = loadmat(sys.argv[1], variable_names=["X"])["X"]
except KeyError:
    sys.exit("holds no variable named X")
except Exception as err:
    sys.exit(f"{type(err).__name__}: {err}")
if getattr(x, "shape", shape) != shape:
    sys.exit(f"refused: X has shape {x.shape}, its header {shape}")
if hasattr(x, "toarray"):
    x = x.toarray()
if not isinstance(x, np.ndarray) or x.dtype.kind not in "biuf":
    sys.exit(f"X is not a numeric matrix (dtype {getattr(x, 'dtype', type(x).__name__)})")
np.save(sys.argv[2], x, allow_pickle=False)
"""

#: The most entries ``X`` may have when no shape is expected (2²⁷: 1 GiB in float64;
#: binarized MNIST's training split has 3.9·10⁷).
MAX_MAT_ENTRIES = 1 << 27


def _limit_memory(limit: int) -> Callable[[], None] | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def _failure(last: str) -> str:
    """Why the child could not read the file, from the last line it wrote: not a MAT file
    at all; a form SciPy does not read (``NotImplementedError``: version 7.3, HDF5); more
    memory than the child may take (``MemoryError``); or, for another exception inside the
    reader (``IndexError``, ``MatReadError``, ``TypeError``: "Expecting miMATRIX type
    here"), a damaged file."""
    if "Unknown mat file type" in last:
        return f"not a MATLAB .mat file ({last})"
    kind = last.split(":", 1)[0]
    if kind.isidentifier() and kind not in ("NotImplementedError", "MemoryError") \
            and kind.endswith(("Error", "Exception")):
        return f"damaged: SciPy's MAT reader fails inside it ({last})"
    return f"cannot read the .mat file ({last})"


def read_mat_array(path: str | os.PathLike, shape: tuple[int, int] | None = None,
                   max_entries: int = MAX_MAT_ENTRIES) -> np.ndarray:
    """The numeric array ``X`` of a MATLAB ``.mat`` file (dense, as SciPy reads it);
    :class:`DataError` naming the file for anything else (text, cell or struct arrays, a
    damaged file), and for an ``X`` whose header gives another ``shape`` than the one
    expected or more than ``max_entries`` entries, before it is read. SciPy reads the file
    in a child process with bounded memory, so a crafted file that crashes the reader ends
    in that error, not in a crash."""
    path = Path(path)
    require_file(path)
    want = "" if shape is None else ",".join(str(int(v)) for v in shape)
    # the reader's own 0.2 GB (binarized MNIST's training split peaks at 0.23 GB) with
    # room, and 16 bytes an entry it may hold (float64, and a copy): a file whose data
    # element is larger than its header's shape says stops there (it was 4 GiB + 64 bytes
    # a byte of file)
    entries = max_entries if shape is None else int(shape[0]) * int(shape[1])
    limit = (1 << 30) + 16 * entries
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.npy"
        try:
            res = subprocess.run([sys.executable, "-I", "-c", _MAT_CHILD, str(path), str(out),
                                  want, str(max_entries)],
                                 capture_output=True, text=True, timeout=600,
                                 preexec_fn=_limit_memory(limit))
        except subprocess.TimeoutExpired:
            raise DataError(path, "reading the .mat file took over 10 minutes") from None
        if res.returncode < 0:
            raise DataError(path, f"the .mat reader crashed on this file (signal "
                                  f"{-res.returncode}): it is damaged")
        if res.returncode != 0 or not out.is_file():
            last = last_line(res.stderr) or "?"
            if last.startswith("refused: "):
                raise DataError(path, last.removeprefix("refused: "))
            raise DataError(path, _failure(last))
        return np.load(out, allow_pickle=False)
