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

from graphvae.errors import DataError
from graphvae.io import require_file

#: Runs in a child process: SciPy's MAT reader crashes (segmentation fault) or asks for
#: tens of GB on some damaged files, which no ``try`` can catch in the parent.
_MAT_CHILD = """
import sys
import numpy as np
from scipy.io import loadmat
try:
    x = loadmat(sys.argv[1])["X"]
except KeyError:
    sys.exit("holds no variable named X")
except Exception as err:
    sys.exit(f"{type(err).__name__}: {err}")
if hasattr(x, "toarray"):
    x = x.toarray()
if not isinstance(x, np.ndarray) or x.dtype.kind not in "biuf":
    sys.exit(f"X is not a numeric matrix (dtype {getattr(x, 'dtype', type(x).__name__)})")
np.save(sys.argv[2], x, allow_pickle=False)
"""


def _limit_memory(limit: int) -> Callable[[], None] | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def read_mat_array(path: str | os.PathLike) -> np.ndarray:
    """The numeric array ``X`` of a MATLAB ``.mat`` file (dense, as SciPy reads it);
    :class:`DataError` naming the file for anything else (text, cell or struct arrays, a
    damaged file). SciPy reads the file in a child process with bounded memory, so a
    crafted file that crashes the reader ends in that error, not in a crash."""
    path = Path(path)
    require_file(path)
    limit = (4 << 30) + 64 * path.stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.npy"
        try:
            res = subprocess.run([sys.executable, "-I", "-c", _MAT_CHILD, str(path), str(out)],
                                 capture_output=True, text=True, timeout=600,
                                 preexec_fn=_limit_memory(limit))
        except subprocess.TimeoutExpired:
            raise DataError(path, "reading the .mat file took over 10 minutes") from None
        if res.returncode < 0:
            raise DataError(path, f"the .mat reader crashed on this file (signal "
                                  f"{-res.returncode}): it is damaged")
        if res.returncode != 0 or not out.is_file():
            lines = (res.stderr or "").strip().splitlines()
            raise DataError(path, f"cannot read the .mat file ({lines[-1] if lines else '?'})")
        return np.load(out, allow_pickle=False)
