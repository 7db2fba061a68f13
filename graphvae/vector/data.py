"""Vector data sets: scikit-learn's digits (embedded), static binarized MNIST, a user's matrix.

Every loader returns a :class:`VectorData` with train / valid / test rows as
``float32`` tensors. :func:`check_matrix` is the one place input is checked
(2-D, finite, non-empty, and 0/1 when a Bernoulli likelihood will read it), so
bad data fails before any training starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from graphvae.io import resolve_data_root

MNIST_SPLITS = {"train": 50_000, "valid": 10_000, "test": 10_000}


@dataclass
class VectorData:
    """Train / validation / test rows, a name, and the image shape when the rows are images."""

    train: Tensor
    valid: Tensor
    test: Tensor
    name: str
    image_shape: tuple[int, int] | None = None
    train_labels: Tensor | None = None

    @property
    def dim(self) -> int:
        return int(self.train.size(1))

    @property
    def is_binary(self) -> bool:
        return all(bool(((t == 0) | (t == 1)).all()) for t in (self.train, self.valid, self.test))

    def binarized(self, threshold: float = 0.5) -> VectorData:
        """Rows thresholded at ``threshold`` (for a Bernoulli decoder on grey-level data)."""
        def b(t: Tensor) -> Tensor:
            return (t > threshold).to(t.dtype)
        return VectorData(b(self.train), b(self.valid), b(self.test), self.name + "-binarized",
                          self.image_shape, self.train_labels)


def check_matrix(x, name: str = "data", *, binary: bool = False) -> Tensor:
    """Return ``x`` as a 2-D float tensor or raise ``ValueError`` saying what is wrong.

    float64 input stays float64; everything else becomes float32.

    ``binary=True`` (a Bernoulli likelihood) also requires every entry to be 0 or 1.
    """
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D matrix (rows = data points), got shape "
                         f"{tuple(t.shape)}")
    if t.size(0) == 0 or t.size(1) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int8, torch.int16,
                                                  torch.int32, torch.int64, torch.bool)):
        raise ValueError(f"{name} must be numeric, got dtype {t.dtype}")
    t = t if t.dtype == torch.float64 else t.to(torch.float32)
    bad = ~torch.isfinite(t)
    if bad.any():
        r, c = (int(v) for v in bad.nonzero()[0])
        raise ValueError(f"{name} has {int(bad.sum())} NaN/inf entries (first at row {r}, "
                         f"column {c})")
    if binary:
        nonbin = (t != 0) & (t != 1)
        if nonbin.any():
            r, c = (int(v) for v in nonbin.nonzero()[0])
            raise ValueError(f"{name} is not binary but the Bernoulli likelihood needs 0/1 "
                             f"entries (row {r}, column {c} is {float(t[r, c]):g}); use a "
                             f"Gaussian likelihood or binarize the data")
    return t


def _split(x: Tensor, fractions: tuple[float, float], seed: int) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.size(0), generator=g)
    n_val = max(1, round(fractions[0] * x.size(0)))
    n_test = max(1, round(fractions[1] * x.size(0)))
    if x.size(0) - n_val - n_test < 1:
        raise ValueError(f"{x.size(0)} rows are too few to split into train/valid/test")
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


def load_mnist(root: str | os.PathLike | None = None) -> VectorData:
    """Static binarized MNIST (Larochelle & Murray 2011), 50k / 10k / 10k, from ``root/mnist``."""
    from scipy.io import loadmat

    folder = resolve_data_root(root) / "mnist"
    parts = {}
    for split, n in MNIST_SPLITS.items():
        path = folder / f"binarized_mnist_{split}.mat"
        if not path.is_file():
            raise ValueError(f"static binarized MNIST not found: {path} is missing (pass "
                             f"--data-root or set GRAPHVAE_DATA to the folder holding mnist/)")
        try:
            arr = loadmat(str(path))["X"]
        except Exception as err:  # scipy raises several types for a damaged file
            raise ValueError(f"cannot read {path}: {err}") from None
        t = check_matrix(arr, str(path), binary=True)
        if t.shape != (n, 784):
            raise ValueError(f"{path} has shape {tuple(t.shape)}, expected ({n}, 784)")
        parts[split] = t
    return VectorData(parts["train"], parts["valid"], parts["test"], "mnist", (28, 28))


def load_matrix(path: str | os.PathLike, seed: int = 0,
                image_shape: tuple[int, int] | None = None) -> VectorData:
    """A user's matrix: ``.npy`` or ``.csv`` (comma-separated numbers, optional header row).

    Rows are data points; they are split 80/10/10 with ``seed``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".csv", ".txt"):
            arr = _read_csv(path)
        else:
            raise ValueError(f"unsupported data file {path}: use .npy or .csv")
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"cannot read {path}: {err}") from None
    x = check_matrix(arr, str(path))
    tr, va, te = _split(x, (0.1, 0.1), seed)
    return VectorData(x[tr], x[va], x[te], path.stem, image_shape)


def _read_csv(path: Path) -> np.ndarray:
    lines = [ln for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path} is empty")
    rows = []
    for i, ln in enumerate(lines):
        cells = [c.strip() for c in ln.split(",")]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if i == 0:  # a header row
                continue
            raise ValueError(f"{path}, line {i + 1}: not a row of numbers: {ln[:60]!r}") from None
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ValueError(f"{path}: rows have different lengths {sorted(widths)}")
    return np.asarray(rows, dtype=np.float64)


VECTOR_DATASETS = ("digits", "mnist")


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
                     f"or a .npy / .csv file")
