"""Vector data sets: scikit-learn's digits (embedded), static binarized MNIST, a user's matrix.

Every loader returns a :class:`VectorData` with train / valid / test rows as
``float32`` tensors. :func:`check_matrix` is the one place input is checked
(2-D, finite, non-empty, and 0/1 when a Bernoulli likelihood will read it), so
bad data fails before any training starts.
"""

from __future__ import annotations

import hashlib
import os
import tokenize
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from graphvae.checks import is_whole
from graphvae.config import FLOAT32_MAX, check_seed
from graphvae.errors import DataError, describe, quote
from graphvae.io import (
    is_number,
    not_plain_hint,
    plain,
    require_file,
    resolve_data_root,
    text_lines,
)
from graphvae.vector.mat_file import read_mat_array

MNIST_SPLITS = {"train": 50_000, "valid": 10_000, "test": 10_000}


def all_binary(t: Tensor) -> bool:
    """Whether every entry of ``t`` is 0 or 1."""
    return bool(((t == 0) | (t == 1)).all())


def column_means(x: Tensor) -> Tensor:
    """The column means of the rows ``x``, as the first row plus the mean difference from
    it: a constant column's mean is then exactly its value, and centring leaves exact
    zeros (``x.mean(0)`` of 300 rows of 0.1 is not 0.1, and what is left is noise that a
    PCA or linear autoencoder then fits)."""
    return x[0] + (x - x[0]).mean(0) if x.size(0) else x.mean(0)


@dataclass
class VectorData:
    """Train / validation / test rows, a name, and the image shape when the rows are images."""

    train: Tensor
    valid: Tensor
    test: Tensor
    name: str
    image_shape: tuple[int, int] | None = None
    train_labels: Tensor | None = None
    scales: Tensor | None = None  # per-column scale of standardized() data, else None
    shifts: Tensor | None = None  # per-column mean of standardized() data, else None
    source: str | None = None     # the file read, as given (refusals name it), else None

    def __post_init__(self) -> None:
        """One-line errors for splits that are not rows of one width, or an image shape
        that does not hold a row (they failed later, in training or in the plots)."""
        splits = {"train": self.train, "valid": self.valid, "test": self.test}
        for name, t in splits.items():
            if not isinstance(t, Tensor) or t.dim() != 2:
                what = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"VectorData's {name} split must be a 2-D tensor of rows, "
                                 f"got {what}")
        widths = {name: int(t.size(1)) for name, t in splits.items()}
        if len(set(widths.values())) > 1:
            raise ValueError("VectorData's splits must have one width, got "
                             + ", ".join(f"{k} {w}" for k, w in widths.items()))
        if self.image_shape is not None:
            shape = tuple(self.image_shape)
            if len(shape) != 2 or any(not is_whole(v) or v < 1
                                      for v in shape) or shape[0] * shape[1] != widths["train"]:
                raise ValueError(f"image_shape {self.image_shape} does not hold a row of "
                                 f"{widths['train']} values (height × width must equal it)")

    @property
    def dim(self) -> int:
        return int(self.train.size(1))

    def fingerprint(self) -> str:
        """SHA-256 of the three splits (shape, dtype and bytes), recorded in a training state
        so that ``--resume`` never continues a state on other data under the same name."""
        h = hashlib.sha256(self.name.encode("utf-8", "surrogateescape"))  # any file name
        for t in (self.train, self.valid, self.test):
            h.update(f"|{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    @property
    def is_binary(self) -> bool:
        return all(map(all_binary, (self.train, self.valid, self.test)))

    def binarized(self, threshold: float = 0.5) -> VectorData:
        """Rows thresholded at ``threshold`` (for a Bernoulli decoder on grey-level data)."""
        def b(t: Tensor) -> Tensor:
            return (t > threshold).to(t.dtype)
        return VectorData(b(self.train), b(self.valid), b(self.test), self.name + "-binarized",
                          self.image_shape, self.train_labels, source=self.source)

    def standardized(self) -> VectorData:
        """Every column shifted and scaled to mean 0 and variance 1 on the training rows
        (constant columns are only shifted). Log-likelihoods of the result are of the
        standardised data: for the original units subtract ``Σ_j log s_j`` (``scales``) per
        row from a log-likelihood, that is, add it to an NLL."""
        # (the mean of 50 copies of 1e30 is not 1e30 in floating point, and the 1.4e14 left
        # over, divided by a scale of 1, diverged the training)
        mean = column_means(self.train)
        scale = self.train.std(0, unbiased=False)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        def s(t: Tensor) -> Tensor:
            return (t - mean) / scale
        return VectorData(s(self.train), s(self.valid), s(self.test),
                          self.name + "-standardized", self.image_shape, self.train_labels, scale,
                          mean, self.source)

    def original_units(self, rows: Tensor) -> Tensor:
        """Rows of this data's units in the units before :meth:`standardized` (for plots)."""
        if self.scales is None or self.shifts is None:
            return rows
        return rows * self.scales.to(rows) + self.shifts.to(rows)


#: Magnitude from which :func:`check_scale` refuses data: scikit-learn's digits scaled
#: to a maximum of 960 already make the Gaussian VAE's first step overflow (measured).
SCALE_LIMIT = 100.0


def _numeric_array(x, name: str) -> np.ndarray:
    """``x`` as a native-byte-order NumPy array of a dtype torch takes, or :class:`DataError`."""
    try:
        arr = np.asarray(x)
    except Exception as err:  # noqa: BLE001 - ragged nested lists and odd objects
        raise DataError(None, f"{name} is not a numeric matrix ({describe(err)})") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(None, f"{name} must be numeric, got dtype {arr.dtype} "
                              f"({_KINDS.get(arr.dtype.kind, 'not numbers')})")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind == "u" and arr.dtype.itemsize > 1:  # torch has no wide unsigned ints
        arr = arr.astype(np.float64)
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:  # long double: beyond float64 is
        with np.errstate(over="ignore"):                   # inf, refused with the rest
            arr = arr.astype(np.float64)
    return arr


_KINDS = {"U": "text", "S": "bytes", "O": "Python objects or a cell array",
          "V": "records or a struct array", "M": "dates", "m": "time spans", "c": "complex"}


def check_matrix(x, name: str = "data", *, binary: bool = False) -> Tensor:
    """Return ``x`` as a 2-D float tensor or raise :class:`~graphvae.errors.DataError`
    (a ``ValueError``) saying what is wrong.

    float64 input, and integers beyond 2²⁴ (which float32 cannot all hold), become or stay
    float64; everything else becomes float32. Any numeric NumPy
    dtype is taken, in either byte order; text, objects, records, dates and complex
    numbers are refused, as are NaN, infinite and beyond-float32 entries.

    ``binary=True`` (a Bernoulli likelihood) also requires every entry to be 0 or 1.
    """
    if isinstance(x, Tensor) and x.layout != torch.strided:
        raise DataError(None, f"{name} must be a dense tensor, got layout {x.layout} "
                              f"(.to_dense() makes one)")
    if isinstance(x, Tensor) and x.device.type == "meta":
        raise DataError(None, f"{name} is a meta tensor: it holds no values")
    if not isinstance(x, Tensor):
        arr = _numeric_array(x, name)  # (np.ascontiguousarray would make a 0-d array 1-d)
        t = torch.from_numpy(arr if arr.flags.c_contiguous else np.ascontiguousarray(arr))
    else:
        t = x
    if t.dim() != 2:
        raise DataError(None, f"{name} must be a 2-D matrix (rows = data points), got shape "
                              f"{tuple(t.shape)}")
    if t.size(0) == 0 or t.size(1) == 0:
        raise DataError(None, f"{name} is empty (shape {tuple(t.shape)})")
    if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int8, torch.int16,
                                                  torch.int32, torch.int64, torch.bool)):
        raise DataError(None, f"{name} must be numeric, got dtype {t.dtype}")
    if t.is_floating_point() or t.dtype == torch.bool:
        t = t if t.dtype == torch.float64 else t.to(torch.float32)
    else:  # integers beyond 2^24 are not all float32 numbers: keep them in float64
        wide = t.dtype in (torch.int32, torch.int64) and bool(
            ((t > 2 ** 24) | (t < -2 ** 24)).any())
        t = t.to(torch.float64 if wide else torch.float32)
    bad = ~torch.isfinite(t) | (t.abs() > FLOAT32_MAX)
    if bad.any():
        r, c = (int(v) for v in bad.nonzero()[0])
        raise DataError(None, f"{name} has {int(bad.sum())} NaN, infinite or beyond-float32 "
                              f"entries (the first at index [{r}, {c}], counted from 0)")
    if binary:
        nonbin = (t != 0) & (t != 1)
        if nonbin.any():
            r, c = (int(v) for v in nonbin.nonzero()[0])
            raise DataError(None, f"{name} is not binary but the Bernoulli likelihood needs "
                                  f"0/1 entries (row {r}, column {c} is {float(t[r, c]):g}); use "
                                  f"a Gaussian likelihood or binarize the data")
    return t


def check_scale(data: VectorData, limit: float = SCALE_LIMIT) -> None:
    """Refuse data whose entries reach ``limit`` in magnitude: networks trained on such
    scales overflow or stall, so say what to do before any training. The data is named by
    the file it was read from (``big.npy``), else by its name."""
    big = max(float(t.abs().max()) for t in (data.train, data.valid, data.test))
    if big >= limit:
        raise DataError(None, f"{data.source or data.name} has entries up to {big:.3g} in "
                              f"magnitude; scale it first: pass --standardize (every column to "
                              f"mean 0 and variance 1 on the training rows) or rescale the file")


def _split(x: Tensor, fractions: tuple[float, float], seed: int, name: str = "the data"
           ) -> tuple[Tensor, ...]:
    check_seed(seed)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.size(0), generator=g)
    n_val = max(1, round(fractions[0] * x.size(0)))
    n_test = max(1, round(fractions[1] * x.size(0)))
    if x.size(0) - n_val - n_test < 1:
        raise DataError(None, f"{name}: {x.size(0)} rows are too few to split into "
                              f"train/valid/test")
    test, val, train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    return train, val, test


def load_digits(seed: int = 0) -> VectorData:
    """scikit-learn's 8×8 digits: 1797 rows, grey levels scaled to [0, 1], 80/10/10 seeded split."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.as_tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.as_tensor(d.target)
    tr, va, te = _split(x, (0.1, 0.1), seed)
    return VectorData(x[tr], x[va], x[te], "digits", (8, 8), y[tr])


def read_mat_matrix(path: str | os.PathLike, binary: bool = False,
                    shape: tuple[int, int] | None = None) -> Tensor:
    """The 2-D numeric matrix ``X`` of a MATLAB ``.mat`` file, checked by :func:`check_matrix`;
    :class:`DataError` naming the file for anything else (text, cell or struct arrays, a
    damaged file; read by :func:`graphvae.vector.mat_file.read_mat_array` in a child
    process, so a crafted file that crashes the reader ends in that error, not in a crash;
    an ``X`` of another ``shape`` than the one given is refused before it is read)."""
    return check_matrix(read_mat_array(path, shape), str(path), binary=binary)


def load_mnist(root: str | os.PathLike | None = None) -> VectorData:
    """Static binarized MNIST (Larochelle & Murray 2011), 50k / 10k / 10k, from ``root/mnist``."""
    folder = resolve_data_root(root) / "mnist"
    parts = {}
    for split, n in MNIST_SPLITS.items():
        path = folder / f"binarized_mnist_{split}.mat"
        if not path.is_file():
            raise DataError(path, "static binarized MNIST not found: the file is missing (pass "
                                  "--data-root or set GRAPHVAE_DATA to the folder holding mnist/)")
        parts[split] = read_mat_matrix(path, binary=True, shape=(n, 784))
    return VectorData(parts["train"], parts["valid"], parts["test"], "mnist", (28, 28))


def load_matrix(path: str | os.PathLike, seed: int = 0,
                image_shape: tuple[int, int] | None = None) -> VectorData:
    """A user's matrix: ``.npy``, or ``.csv`` / ``.txt`` text (numbers separated by commas,
    or, on a line without commas, by spaces or tabs; an optional first row of words only,
    or of exactly ``0,1,...,d-1`` with ``d >= 3``: pandas' default column names).

    Rows are data points; they are split 80/10/10 with ``seed``.
    """
    path = Path(path)
    require_file(path, "data file not found")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv", ".txt"):
        raise DataError(path, "unsupported data file: use .npy, .csv or .txt")
    try:            # (a read can fail too: a link to /proc/self/mem is an I/O error)
        if suffix == ".npy":
            with open(path, "rb") as f:
                head = f.read(6)
            if head != b"\x93NUMPY":  # numpy would call any other file "pickled data"
                raise DataError(path, "not a .npy file (no NumPy header" + (
                    "; it is a zip archive, such as .npz" if head[:2] == b"PK" else "") + ")")
        arr = np.load(path, allow_pickle=False) if suffix == ".npy" else _read_csv(path)
    except DataError:
        raise
    except tokenize.TokenError as err:  # a header with an unclosed bracket
        raise DataError(path, f"damaged: it has a header numpy cannot parse "
                              f"({describe(err)})") from None
    except Exception as err:  # noqa: BLE001 - numpy raises many types for a damaged file
        raise DataError(path, f"cannot read the file ({describe(err)})") from None
    x = check_matrix(arr, str(path))
    tr, va, te = _split(x, (0.1, 0.1), seed, str(path))
    # the name shown in plots and metrics: bytes of the file name that are not UTF-8 as �
    name = path.stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return VectorData(x[tr], x[va], x[te], name, image_shape, source=str(path))


def _read_csv(path: Path) -> np.ndarray:
    lines = [(i, ln) for i, ln in enumerate(text_lines(path), start=1) if ln.strip()]
    if not lines:
        raise DataError(path, "the file is empty")
    rows: list[list[float]] = []
    linenos: list[int] = []
    for k, (lineno, ln) in enumerate(lines):
        # commas, or (a line without any: np.savetxt's default) spaces or tabs
        cells = [c.strip() for c in ln.split(",")] if "," in ln else ln.split()
        if k == 0 and len(cells) >= 3 and cells == [str(j) for j in range(len(cells))]:
            continue  # pandas' default column names: DataFrame.to_csv(index=False)
        try:
            if not plain(ln):               # float() reads 1_0 as 10 and ٣ as 3
                raise ValueError(ln)
            rows.append([float(c) for c in cells])
            linenos.append(lineno)
        except ValueError:
            if k == 0 and not any(is_number(c) for c in cells):  # a header: words only
                continue
            if k == 0 and not cells[0] and all(is_number(c) for c in cells[1:]):
                raise DataError(path, f"the first row {quote(ln)} starts with an empty cell, "
                                      f"as pandas writes an index column: write the file "
                                      f"with to_csv(index=False)", lineno) from None
            hint = next((h for h in map(not_plain_hint, cells) if h), "")
            raise DataError(path, f"not a row of numbers: {quote(ln)}{hint}", lineno) from None
    if not rows:
        raise DataError(path, "holds a header but no rows")
    # the width most rows have (the first row's on a tie): an odd first row is the one named
    counts = Counter(len(row) for row in rows)
    width = max(counts, key=lambda w: (counts[w], w == len(rows[0])))
    for row, lineno in zip(rows, linenos):
        if len(row) != width:
            where = (f"where the first row (line {linenos[0]}) has {width}"
                     if len(rows[0]) == width else
                     f"where {counts[width]} of the {len(rows)} rows have {width}")
            raise DataError(path, f"a row of {len(row)} number{'s' * (len(row) != 1)}, "
                                  f"{where}", lineno)
    arr = np.asarray(rows, dtype=np.float64)
    bad = ~np.isfinite(arr) | (np.abs(arr) > FLOAT32_MAX)
    if bad.any():
        r, c = (int(v[0]) for v in bad.nonzero())
        raise DataError(path, f"{int(bad.sum())} NaN, infinite or beyond-float32 entries "
                              f"(the first in column {c + 1})", linenos[r])
    return arr


VECTOR_DATASETS = ("digits", "mnist")


def root_unread(name: str) -> str | None:
    """Why :func:`load_vector_data` reads no file under the data root for ``name``
    (``None``: it reads one)."""
    if name == "mnist":
        return None
    return "the digits are built in" if name == "digits" else "the data is read from --data"


def load_vector_data(name: str, root: str | os.PathLike | None = None,
                     seed: int = 0) -> VectorData:
    """``digits``, ``mnist`` or a path to a ``.npy`` / ``.csv`` file."""
    if name == "digits":
        return load_digits(seed)
    if name == "mnist":
        return load_mnist(root)
    if Path(name).suffix.lower() in (".npy", ".csv", ".txt"):
        return load_matrix(name, seed)
    raise ValueError(f"unknown data set {name!r}: use one of {', '.join(VECTOR_DATASETS)} "
                     f"or a .npy, .csv or .txt file")
