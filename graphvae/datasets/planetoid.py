"""Planetoid citation graphs (Cora, CiteSeer, PubMed; Yang, Cohen & Salakhutdinov, ICML 2016).

Read straight from the raw ``ind.<name>.*`` files under ``ROOT/Planetoid/<Name>/raw``,
so a read-only root (such as ``../shared/data``) is never written to. Those files are
Python pickles; PyG's reader loads them with plain ``pickle.load``, which runs whatever
a crafted file names, so this module reads them with
:func:`graphvae.safe_pickle.restricted_load` (``planetoid`` profile: CSR matrices,
arrays, a dict of neighbour lists), checks every size and index, and assembles the
graph exactly as PyG's ``read_planetoid_data`` does (a test compares the two):

* features ``x = [allx; tx]`` with the test rows moved to their ``test.index``
  positions; labels likewise, as the argmax of the one-hot rows;
* CiteSeer's test indices skip isolated nodes, which get zero rows;
* edges from the neighbour lists, self-loops dropped, made simple and undirected.

When the raw files are absent, PyG downloads them into ``ROOT`` (online only); the
downloaded files are then read the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from graphvae.errors import DataError, describe, quote
from graphvae.graph import check_graph, to_simple_undirected
from graphvae.safe_pickle import restricted_load

if TYPE_CHECKING:
    from torch_geometric.data import Data

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _raw_folder(root: Path, name: str) -> Path:
    return root / "Planetoid" / PLANETOID[name] / "raw"


def load_planetoid(name: str, root: str | os.PathLike, download: bool = True) -> Data:
    """Load ``cora``, ``citeseer`` or ``pubmed`` as an undirected graph with raw features."""
    key = name.lower()
    if key not in PLANETOID:
        raise ValueError(f"unknown Planetoid dataset {name!r}; choose one of {sorted(PLANETOID)}")
    root = Path(root)
    raw = _raw_folder(root, key)
    missing = [s for s in _SUFFIXES if not (raw / f"ind.{key}.{s}").is_file()]
    if missing:
        if not download:
            raise ValueError(f"{PLANETOID[key]} not found: {raw} lacks ind.{key}.{missing[0]} "
                             f"(set --data-root or GRAPHVAE_DATA)")
        _download(key, root, raw)
    x, y, edge_index = read_planetoid_raw(raw, key)
    n = x.size(0)
    from torch_geometric.data import Data  # at first use: ~2 s to import
    out = Data(x=x, edge_index=to_simple_undirected(edge_index, n), y=y, num_nodes=n)
    check_graph(out.x, out.edge_index, out.num_nodes)
    return out


#: The most entries a Planetoid feature or label matrix may have once dense: 2²⁶, eight
#: times CiteSeer's 3,327 × 3,703 (the largest of the three); a 349-byte file declaring
#: a 1 × 2·10⁸ sparse matrix took 1.2 GB before its shape was found wrong.
MAX_ENTRIES = 1 << 26


def _matrix(path: Path, sparse_ok: bool) -> np.ndarray:
    """A 2-D float matrix from a Planetoid pickle (CSR for features, dense for labels)."""
    import scipy.sparse as sp

    obj = restricted_load(path, "planetoid", encoding="latin1")
    shape = getattr(obj, "shape", None)
    if isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(d, int) for d in shape) \
            and shape[0] * shape[1] > MAX_ENTRIES:
        raise DataError(path, f"a {shape[0]:,} × {shape[1]:,} matrix is more than the "
                              f"{MAX_ENTRIES:,} entries a Planetoid matrix may have")
    if sparse_ok and isinstance(obj, sp.csr_matrix):
        try:
            obj.check_format(full_check=True)
            obj = obj.toarray()
        except Exception as err:  # noqa: BLE001 - a damaged CSR matrix fails in many ways
            raise DataError(path, f"not a valid sparse matrix ({type(err).__name__}: "
                                  f"{err})") from None
    if not isinstance(obj, np.ndarray) or obj.ndim != 2 or obj.dtype.kind not in "biuf":
        raise DataError(path, f"expected a 2-D numeric matrix, got {_what(obj)}")
    return np.asarray(obj, dtype=np.float32)


def _what(obj: object) -> str:
    shape = getattr(obj, "shape", None)
    return f"{type(obj).__name__}" + (f" of shape {shape}" if shape is not None else "")


def _neighbours(path: Path, n: int) -> torch.Tensor:
    """The ``(2, E)`` edges of a ``{node: [neighbours]}`` pickle, ids checked against ``n``."""
    obj = restricted_load(path, "planetoid", encoding="latin1")
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict of neighbour lists, got {_what(obj)}")
    # each listed neighbour takes at least a byte of pickle, unless one list is shared by
    # many nodes (the pickle memo): 23 kB so read gave 9·10⁶ edges
    total = sum(len(v) if isinstance(v, list) else 0 for v in obj.values())
    budget = 4 * path.stat().st_size + 10_000
    if total > budget:
        raise DataError(path, f"lists {total:,} neighbours, more than a file of its size "
                              f"holds ({budget:,}); refusing a file whose lists repeat")
    rows: list[int] = []
    cols: list[int] = []
    for key, value in obj.items():
        if not isinstance(value, list) or not all(_is_index(v, n) for v in value) \
                or not _is_index(key, n):
            raise DataError(path, f"node {quote(key, 40)}: neighbour ids must be integers "
                                  f"in 0..{n - 1}")
        rows += [int(key)] * len(value)
        cols += [int(v) for v in value]
    return torch.tensor([rows, cols], dtype=torch.long).reshape(2, -1)


def _is_index(v: object, n: int) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool) and bool(0 <= v < n)


def _test_index(path: Path) -> np.ndarray:
    """The test indices, one integer a line; a byte that is not ASCII, or a word that is
    not an integer, is named with where it is (the refusal said only "UnicodeDecodeError"
    or "ValueError")."""
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as err:
        raise DataError(path, f"expected one integer node index per line, found byte "
                              f"{err.object[err.start]:#04x}, not ASCII text, at offset "
                              f"{err.start:,}") from None
    except OSError as err:
        raise DataError(path, f"cannot read the file ({describe(err)})") from None
    values = []
    for number, line in enumerate(text.splitlines(), 1):
        for word in line.split():
            digits = word[1:] if word[:1] in ("+", "-") else word
            if len(digits) > 40 and digits.isdigit():
                # (int() refuses past 4,300 digits, and no index has more than 19)
                raise DataError(path, f"line {number:,}: a test index of {len(digits):,} "
                                      f"digits does not fit in 64 bits")
            try:
                values.append(int(word))
            except ValueError:
                raise DataError(path, f"line {number:,}: expected one integer node index "
                                      f"per line, found {quote(word, 40)}") from None
    outside = next((v for v in values if not -2 ** 63 <= v < 2 ** 63), None)
    if outside is not None:
        raise DataError(path, f"test index {quote(outside, 40)} does not fit in 64 bits")
    idx = np.array(values, dtype=np.int64)
    if idx.size == 0 or idx.min() < 0 or len(np.unique(idx)) != idx.size:
        raise DataError(path, "test indices must be distinct non-negative integers")
    return idx


def read_planetoid_raw(raw: str | os.PathLike, key: str
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, y, edge_index)`` from the raw files of ``key`` (see the module docstring)."""
    raw = Path(raw)

    def f(suffix: str) -> Path:
        return raw / f"ind.{key}.{suffix}"

    tx, allx = _matrix(f("tx"), True), _matrix(f("allx"), True)
    ty, ally = _matrix(f("ty"), False), _matrix(f("ally"), False)
    test = _test_index(f("test.index"))
    order = np.sort(test)
    if tx.shape[0] != ty.shape[0] or allx.shape[0] != ally.shape[0] \
            or tx.shape[1] != allx.shape[1] or ty.shape[1] != ally.shape[1]:
        raise DataError(raw, f"ind.{key}.* matrices disagree in shape: tx {tx.shape}, ty "
                             f"{ty.shape}, allx {allx.shape}, ally {ally.shape}")
    if key == "citeseer":  # isolated test nodes have no rows: give them zero rows
        span = int(order[-1] - order[0]) + 1
        if span * tx.shape[1] > MAX_ENTRIES:   # the index file's numbers size this matrix
            raise DataError(f("test.index"), f"test indices from {int(order[0])} to "
                                             f"{int(order[-1])} ask for a {span:,} × "
                                             f"{tx.shape[1]:,} test matrix, beyond the "
                                             f"{MAX_ENTRIES:,} entries a Planetoid matrix "
                                             "may have")
        tx, ty = _spread(tx, order - order[0], span), _spread(ty, order - order[0], span)
    elif tx.shape[0] != test.size:
        raise DataError(f("tx"), f"{tx.shape[0]} rows for {test.size} test indices")
    x, y = np.concatenate([allx, tx]), np.concatenate([ally, ty]).argmax(1)
    n = x.shape[0]
    if order[-1] >= n:
        raise DataError(f("test.index"), f"index {int(order[-1])} is beyond the {n} nodes")
    x[test], y[test] = x[order], y[order]
    ei = _neighbours(f("graph"), n)
    ei = ei[:, ei[0] != ei[1]]
    return torch.from_numpy(x), torch.from_numpy(y).long(), ei


def _spread(rows: np.ndarray, at: np.ndarray, span: int) -> np.ndarray:
    if rows.shape[0] != at.size:
        raise DataError(None, f"{rows.shape[0]} test rows for {at.size} test indices")
    out = np.zeros((span, rows.shape[1]), dtype=rows.dtype)
    out[at] = rows
    return out


def _download(key: str, root: Path, raw: Path) -> None:
    """Fetch the raw files (only them: PyG's own processing would unpickle them freely).
    A failed download leaves nothing of its own behind: the file it was writing, and the
    folders it created that stay empty (files fetched whole before it are kept)."""
    import torch_geometric.data as pyg_data
    from torch_geometric.datasets import Planetoid

    created = [d for d in (raw, *raw.parents) if not d.exists()]     # deepest first
    current: Path | None = None
    try:
        for suffix in _SUFFIXES:
            target = raw / f"ind.{key}.{suffix}"
            if not target.is_file():
                current = target
                pyg_data.download_url(f"{Planetoid.url}/ind.{key}.{suffix}", str(raw),
                                      log=False)
                current = None
    except Exception as err:  # network errors come in many types
        if current is not None:
            current.unlink(missing_ok=True)
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        raise ValueError(f"{PLANETOID[key]} not found under {raw} and the download failed "
                         f"({type(err).__name__}: {err}); offline, point --data-root or "
                         f"GRAPHVAE_DATA at a folder holding Planetoid/{PLANETOID[key]}/raw"
                         ) from None
