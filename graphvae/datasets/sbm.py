"""A large seeded graph with planted communities, and the oracle that knows them.

Model
-----
The degree-corrected stochastic block model of Karrer & Newman, *Stochastic
blockmodels and community structure in networks*, Phys. Rev. E 83, 016107 (2011).
Node ``i`` belongs to block ``b_i`` and has a degree propensity ``θ_i``; a symmetric
``K × K`` matrix ``ω`` holds the block-pair rates. The number of edges between two
distinct nodes is Poisson with mean

    ``λ_ij = θ_i θ_j ω_{b_i b_j}``,

independently over pairs. Collapsing this multigraph (merging parallel edges, dropping
self-loops) gives a simple graph in which each pair ``i ≠ j`` is an edge independently
with probability ``P(i ~ j) = 1 − exp(−λ_ij)`` (the chance that a Poisson count is not
zero); :meth:`PlantedSBM.prob` returns it and :meth:`PlantedSBM.rate` returns ``λ_ij``.

:func:`make_sbm` plants the parameters (:func:`plant_sbm`) and samples the graph
(:func:`sample_edges`):

* blocks of equal size (±1), assigned to nodes in a random order, so that a node's id
  says nothing about its block;
* ``θ`` from a power law, ``P(θ > t) = t^−(exponent−1)`` for ``t ≥ 1`` (Pareto), so the
  expected degrees follow ``P(d) ∝ d^−exponent``; ``exponent = inf`` gives equal ``θ``
  (the plain SBM). ``θ`` is capped so that no pair gets ``λ`` much above 1 (for small
  ``mixing`` the cap is the structural cut-off ``d_max ≈ sqrt(2E/K)`` of a sparse
  graph; it is found by a few fixed-point steps, and a dense request flattens ``θ``
  altogether) and normalised to sum to 1 within each block, Karrer & Newman's
  convention;
* ``ω`` holds one rate on the diagonal and one off it, chosen so that the expected
  number of (multi-)edges between distinct nodes is ``num_edges`` and a fraction
  ``mixing`` of them joins different blocks, spread evenly over the block pairs. With
  one block every edge is inside it and ``mixing`` has no effect.

The realised graph has fewer than ``num_edges`` edges: parallel edges merge (the
``λ − (1 − e^−λ)`` of each pair). In a sparse graph that is a few per cent (1,000 nodes
and 5,000 requested edges: 4,803; 2,000 and 20,000: 19,418, seed 0); near the densest
request ``make-graph`` takes, N(N − 1)/4 (a mean λ of 1/2 a pair), more: a pair inside
one of ``K`` blocks then has λ ≈ (1 − mixing)·K/2, so the loss grows with the blocks and
with a lower mixing (two blocks: about a quarter, 1,774 of 2,475 requested on 100 nodes,
181,187 of 249,750 on 1,000; four blocks: 1,794,844 of 3,061,625 on 3,500 nodes, 41 %
lost; seed 0).

Sampling in O(E)
----------------
Each ordered block pair ``(r, s)`` gets a Poisson number of endpoint draws with mean
``ω_rs T_r T_s / 2`` (``T_r`` the sum of ``θ`` in block ``r``); each draw picks ``i`` in
``r`` and ``j`` in ``s`` independently with probability ``∝ θ`` (a binary search in the
cumulative sums of ``θ``). By Poisson splitting, every unordered pair ``i ≠ j`` then
receives a Poisson(``λ_ij``) number of draws (half its mean from ``(r, s)``, half from
``(s, r)``; within a block, from ``(i, j)`` and ``(j, i)``), independently over pairs.
Time O(E log n + n + K²), memory O(E + n + K²), in chunks, all vectorised; the ``K²``
block pairs are one Poisson draw each, so ``K`` need not be small. Self-loops are dropped and
duplicates merged by sorting the keys ``i·n + j``. A seed gives the same graph on every
machine (numpy's ``default_rng``).

Oracle
------
Given the planted parameters, the edges are independent, so for a set of held-out
pairs (held-out edges against sampled non-edges) the likelihood ratio of "edge" to
"non-edge" is ``p_ij / (1 − p_ij)`` up to a constant, a monotone function of
``p_ij = P(i ~ j)``. Ranking the pairs by :func:`oracle_scores` is therefore
Bayes-optimal: its expected ROC AUC and average precision are the best any model of
the observed graph can expect; a model's scores are judged against them.
"""

from __future__ import annotations

import hashlib
import math
import operator
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graphvae.errors import DataError, describe
from graphvae.io import atomic_path, check_zip_stored, require_file

#: Most blocks :func:`make_sbm` accepts (``ω`` is a dense ``K × K`` matrix).
MAX_BLOCKS = 4096
#: Most nodes :func:`make_sbm` accepts (the keys ``i·n + j`` must fit in int64).
MAX_NODES = 2**31 - 1
#: Endpoint pairs drawn at a time (bounds the temporary memory of sampling).
_CHUNK = 1 << 21
#: Rows written at a time by :func:`write_edge_list`.
_WRITE_CHUNK = 1 << 20
_KEYS = ("blocks", "theta", "omega")


@dataclass(eq=False)
class PlantedSBM:
    """The planted parameters of a degree-corrected SBM.

    ``blocks`` (n,) int64, the block of each node in ``[0, K)``; ``theta`` (n,) float64
    degree propensities ``≥ 0``; ``omega`` (K, K) float64 symmetric block-pair rates
    ``≥ 0``. The expected number of edges between distinct nodes ``i`` and ``j`` of the
    Poisson multigraph is ``θ_i θ_j ω_{b_i b_j}``.
    """

    blocks: np.ndarray
    theta: np.ndarray
    omega: np.ndarray
    #: :func:`edge_fingerprint` of the graph drawn from these parameters (make-graph
    #: writes it; ``None`` in files of older versions): a graph given with them is checked
    graph: str | None = None

    def __post_init__(self) -> None:
        self.blocks, self.theta, self.omega = _validated(self.blocks, self.theta, self.omega)

    @property
    def num_nodes(self) -> int:
        return int(self.blocks.shape[0])

    @property
    def num_blocks(self) -> int:
        return int(self.omega.shape[0])

    def rate(self, i, j):
        """``λ_ij = θ_i θ_j ω_{b_i b_j}`` for node-index arrays or tensors ``i``, ``j``
        (broadcast together), 0 where ``i == j`` (the graph has no self-loops). float64,
        a tensor if either input is one."""
        a, b = self._index(i), self._index(j)
        lam = self.theta[a] * self.theta[b] * self.omega[self.blocks[a], self.blocks[b]]
        lam = np.where(a == b, 0.0, lam)
        return _like(lam, i, j)

    def prob(self, i, j):
        """``P(i ~ j) = 1 − exp(−λ_ij)``, the probability that ``i`` and ``j`` are joined
        in the sampled simple graph (0 where ``i == j``)."""
        lam = np.asarray(self.rate(_numpy(i), _numpy(j)))
        return _like(-np.expm1(-lam), i, j)

    def _index(self, x) -> np.ndarray:
        a = _numpy(x)
        if a.dtype.kind not in "iu":
            raise ValueError(f"node indices must be integers, got dtype {a.dtype}")
        if a.size and (int(a.min()) < 0 or int(a.max()) >= self.num_nodes):
            raise ValueError(f"node index out of range [0, {self.num_nodes}): "
                             f"{int(a.min())}..{int(a.max())}")
        return a.astype(np.int64, copy=False)

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``blocks``, ``theta`` and ``omega`` to a plain ``.npz`` (no pickle),
        atomically (a temporary file beside ``path``, then a rename)."""
        path = Path(path)
        arrays = {"blocks": self.blocks, "theta": self.theta, "omega": self.omega}
        if self.graph is not None:
            arrays["graph"] = np.array(self.graph)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PlantedSBM:
        """Read what :meth:`save` wrote; anything missing, malformed or out of range is a
        one-line :class:`~graphvae.errors.DataError` (a ``ValueError``) naming the file."""
        path = Path(path)
        require_file(path)
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
            if magic != b"PK\x03\x04":
                raise DataError(path, "not an .npz archive (the zip file numpy.savez writes)")
            check_zip_stored(path)
            npz = np.load(path, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(path, "not an .npz archive")
            with npz:
                missing = [k for k in _KEYS if k not in npz.files]
                if missing:
                    raise DataError(path, f"missing array(s) {', '.join(missing)}; expected "
                                          f"{', '.join(_KEYS)}")
                arrays = {k: npz[k] for k in _KEYS}
                stored = npz["graph"] if "graph" in npz.files else None
        except DataError:
            raise
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise DataError(path, f"not a readable .npz of planted parameters "
                                  f"({describe(err)})") from None
        graph = None
        if stored is not None:
            if not isinstance(stored, np.ndarray) or stored.dtype.kind != "U" or \
                    stored.shape != () or \
                    not re.fullmatch(r"[0-9a-f]{64}", str(stored)):
                raise DataError(path, "its graph fingerprint is not a SHA-256 hex digest")
            graph = str(stored)
        try:
            return cls(arrays["blocks"], arrays["theta"], arrays["omega"], graph)
        except ValueError as err:
            raise DataError(path, str(err)) from None


def edge_fingerprint(edge_index: torch.Tensor | np.ndarray, num_nodes: int) -> str:
    """SHA-256 of a simple undirected graph: ``n`` and its sorted distinct edge keys
    ``min · n + max`` (self-loops, directions and repeats left out), as int64. Any listing
    of the same graph gives the same digest."""
    e = np.asarray(edge_index.cpu() if isinstance(edge_index, torch.Tensor) else edge_index,
                   dtype=np.int64)
    lo, hi = np.minimum(e[0], e[1]), np.maximum(e[0], e[1])
    keys = np.unique((lo * num_nodes + hi)[lo != hi])
    h = hashlib.sha256(np.int64(num_nodes).tobytes())
    h.update(keys.astype("<i8").tobytes())
    return h.hexdigest()


def _validated(blocks, theta, omega) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    blocks, theta, omega = _numpy(blocks), _numpy(theta), _numpy(omega)
    if blocks.dtype.kind not in "iu":
        raise ValueError(f"blocks must be integers, got dtype {blocks.dtype}")
    for name, a in (("theta", theta), ("omega", omega)):
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be real numbers, got dtype {a.dtype}")
    if blocks.ndim != 1 or blocks.shape[0] < 1:
        raise ValueError(f"blocks must be a non-empty vector, got shape {blocks.shape}")
    if theta.shape != blocks.shape:
        raise ValueError(f"theta must have shape {blocks.shape} like blocks, got {theta.shape}")
    if omega.ndim != 2 or omega.shape[0] != omega.shape[1] or omega.shape[0] < 1:
        raise ValueError(f"omega must be a non-empty square matrix, got shape {omega.shape}")
    blocks = blocks.astype(np.int64, copy=False)
    theta = theta.astype(np.float64, copy=False)
    omega = omega.astype(np.float64, copy=False)
    k = omega.shape[0]
    if int(blocks.min()) < 0 or int(blocks.max()) >= k:
        raise ValueError(f"block ids must lie in [0, {k}) for a {k}x{k} omega, got "
                         f"{int(blocks.min())}..{int(blocks.max())}")
    for name, a in (("theta", theta), ("omega", omega)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds NaN or infinite values")
        if (a < 0).any():
            raise ValueError(f"{name} holds negative values")
    if not np.array_equal(omega, omega.T):
        raise ValueError("omega must be symmetric")
    return blocks, theta, omega


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _like(values: np.ndarray, *inputs):
    """``values`` as a tensor if any input is one, else as a numpy array."""
    if any(isinstance(x, torch.Tensor) for x in inputs):
        return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
    return values


def oracle_scores(planted: PlantedSBM, pairs):
    """The planted edge probabilities ``P(i ~ j)`` of the pairs ``pairs`` (2, k): the
    Bayes-optimal scores for ranking held-out pairs (see the module's docstring), a
    tensor if ``pairs`` is one."""
    p = _numpy(pairs)
    if p.ndim != 2 or p.shape[0] != 2:
        raise ValueError(f"pairs must have shape (2, k), got {tuple(p.shape)}")
    return _like(np.asarray(planted.prob(p[0], p[1])), pairs)


# ------------------------------------------------------------------------------ planting

def _int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if not low <= v <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {v}")
    return v


def _real(value, name: str) -> float:
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(v):
        raise ValueError(f"{name} must be a number, got NaN")
    return v


def check_sbm_arguments(num_nodes, num_edges, num_blocks, mixing, exponent) -> None:
    """Raise a one-line ``ValueError`` for arguments :func:`make_sbm` cannot honour."""
    n = _int(num_nodes, "num_nodes", 2, MAX_NODES)
    _int(num_edges, "num_edges", 1, max(1, n * (n - 1) // 4))
    _int(num_blocks, "num_blocks", 1, min(n, MAX_BLOCKS))
    if not 0.0 <= _real(mixing, "mixing") <= 1.0:
        raise ValueError(f"mixing must lie in [0, 1], got {mixing!r}")
    if not _real(exponent, "exponent") > 2:
        raise ValueError(f"exponent must be greater than 2 (inf: equal degrees), got "
                         f"{exponent!r}")
    if num_blocks == num_nodes and num_blocks > 1 and mixing < 1:
        raise ValueError("with one node per block no pair lies within a block; use fewer "
                         "blocks or mixing 1")


def plant_sbm(num_nodes: int, num_edges: int, num_blocks: int,
              rng: np.random.Generator | int, mixing: float = 0.2,
              exponent: float = 2.5) -> PlantedSBM:
    """Draw the parameters of :func:`make_sbm` (blocks and ``θ``) and set ``ω``."""
    check_sbm_arguments(num_nodes, num_edges, num_blocks, mixing, exponent)
    rng = np.random.default_rng(rng)
    n, k, e, mu = int(num_nodes), int(num_blocks), float(num_edges), float(mixing)
    if k == 1:
        mu = 0.0
    blocks = rng.permutation(np.arange(n, dtype=np.int64) % k)
    raw = np.ones(n) if math.isinf(exponent) else rng.pareto(exponent - 1.0, n) + 1.0
    w_in = 2.0 * (1.0 - mu) * e / k
    w_out = 2.0 * mu * e / (k * (k - 1)) if k > 1 else 0.0
    theta = _capped(raw, blocks, k, 1.0 / math.sqrt(max(w_in, w_out)))
    # rates that make the expected number of multi-edges between distinct nodes e,
    # a fraction mu of them between blocks (self-loops, dropped, excluded)
    pairs_within = float((1.0 - np.bincount(blocks, theta * theta, k)).sum())
    w_in = 2.0 * (1.0 - mu) * e / pairs_within if mu < 1 else 0.0
    omega = np.full((k, k), w_out)
    np.fill_diagonal(omega, w_in)
    return PlantedSBM(blocks, theta, omega)


def _capped(raw: np.ndarray, blocks: np.ndarray, k: int, alpha: float) -> np.ndarray:
    """``raw`` capped at ``c_r`` in block ``r`` and normalised to sum 1 in each block,
    with ``c_r = alpha · Σ_{i∈r} min(raw_i, c_r)`` (a few fixed-point steps), so that no
    normalised value exceeds about ``alpha``."""
    c = alpha * np.bincount(blocks, raw, k)
    for _ in range(30):
        new = alpha * np.bincount(blocks, np.minimum(raw, c[blocks]), k)
        done = bool(np.all(np.abs(new - c) <= 1e-6 * c))
        c = new
        if done:
            break
    theta = np.minimum(raw, c[blocks])
    return theta / np.bincount(blocks, theta, k)[blocks]


# ------------------------------------------------------------------------------ sampling

def sample_edges(planted: PlantedSBM, rng: np.random.Generator | int) -> torch.Tensor:
    """One graph from ``planted``: ``(2, E)`` int64 edges ``i < j``, sorted, unique, no
    self-loops; pair ``i ≠ j`` is an edge with probability ``planted.prob(i, j)``,
    independently. O(E log n + n + K²) time and O(E + n + K²) memory."""
    rng = np.random.default_rng(rng)
    n, k = planted.num_nodes, planted.num_blocks
    t = np.bincount(planted.blocks, planted.theta, k)
    # draws per ordered block pair (r, s): Poisson(ω_rs T_r T_s / 2), independently
    counts = rng.poisson((planted.omega * t[:, None] * t[None, :]).ravel() / 2.0)
    ends = np.cumsum(counts)
    del counts
    draws = int(ends[-1])
    order, g, last = _block_cdf(planted.blocks, planted.theta, k)
    keys = np.empty(draws, dtype=np.int64)
    filled = 0
    for start in range(0, draws, _CHUNK):
        # the block pairs of draws start, start+1, ... (sorted, so the searches stay local)
        cells = np.searchsorted(ends, np.arange(start, min(start + _CHUNK, draws)),
                                side="right")
        r, s = np.divmod(cells, k)
        del cells
        i = _pick(order, g, last, r, rng)
        j = _pick(order, g, last, s, rng)
        del r, s
        a, b = np.minimum(i, j), np.maximum(i, j)
        keep = a != b
        a, b = a[keep], b[keep]
        del i, j, keep
        a *= n
        a += b
        keys[filled:filled + a.size] = a
        filled += a.size
        del a, b
    keys = keys[:filled]
    keys.sort()
    if keys.size:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    edges = np.empty((2, keys.size), dtype=np.int64)
    np.floor_divide(keys, n, out=edges[0])
    np.remainder(keys, n, out=edges[1])
    return torch.from_numpy(edges)


def _block_cdf(blocks: np.ndarray, theta: np.ndarray,
               k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes sorted by block (``order``); ``g``: block id plus the cumulative share of
    ``θ`` within the block (exactly ``r + 1`` at the last node of block ``r`` with
    ``θ > 0``); ``last``: per block, that node's position in ``order``."""
    order = np.argsort(blocks, kind="stable")
    sorted_blocks = blocks[order]
    theta_sorted = theta[order]
    starts = np.searchsorted(sorted_blocks, np.arange(k + 1))
    local = np.empty_like(theta_sorted)
    last = np.zeros(k, dtype=np.int64)
    for r in range(k):
        lo, hi = int(starts[r]), int(starts[r + 1])
        if lo == hi:
            continue
        c = np.cumsum(theta_sorted[lo:hi])
        if c[-1] > 0:
            c /= c[-1]                 # 1.0 exactly from the last positive θ on
            last[r] = lo + int(np.flatnonzero(theta_sorted[lo:hi] > 0)[-1])
        local[lo:hi] = c
    return order, sorted_blocks + local, last


def _pick(order: np.ndarray, g: np.ndarray, last: np.ndarray, r: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """A node of block ``r[t]`` for each ``t``, with probability ``∝ θ`` within the block.

    ``r + u`` (``u`` uniform in [0, 1)) lies in ``[r, r + 1]``; the first ``g`` above it is
    a node of block ``r`` with ``θ > 0`` (a zero ``θ`` repeats its predecessor's ``g``),
    unless rounding made it ``r + 1``: then the block's last positive node."""
    q = rng.random(r.size)
    q += r
    return order[np.minimum(np.searchsorted(g, q, side="right"), last[r])]


def make_sbm(num_nodes: int, num_edges: int, num_blocks: int, seed: int,
             mixing: float = 0.2, exponent: float = 2.5) -> tuple[torch.Tensor, PlantedSBM]:
    """A seeded degree-corrected SBM graph (see the module's docstring) and its planted
    parameters: ``(edge_index (2, E) int64 with i < j, sorted and unique, PlantedSBM)``.

    ``E`` is below ``num_edges`` (merged parallel edges: a few per cent when sparse, more
    near the cap, as the module's docstring works out). Requires
    ``2 ≤ num_nodes``, ``1 ≤ num_edges ≤ n(n−1)/4``, ``1 ≤ num_blocks ≤ min(n, 4096)``,
    ``0 ≤ mixing ≤ 1``, ``exponent > 2``; a one-line ``ValueError`` otherwise.
    """
    seed = _int(seed, "seed", 0, 2**63 - 1)
    rng = np.random.default_rng(seed)
    planted = plant_sbm(num_nodes, num_edges, num_blocks, rng, mixing, exponent)
    return sample_edges(planted, rng), planted


# ------------------------------------------------------------------------------ writing

def edge_list_delimiter(path: str | os.PathLike) -> str:
    """The delimiter :func:`write_edge_list` uses by default for ``path``: ``,`` for
    ``.csv``, a tab for ``.tsv``, else a space."""
    return {".csv": ",", ".tsv": "\t"}.get(Path(path).suffix.lower(), " ")


def edge_list_header(delimiter: str) -> bytes:
    """The first line of an edge list :func:`write_edge_list` writes, without its newline."""
    return f"source{delimiter}target".encode()


def write_edge_list(edge_index, path: str | os.PathLike, delimiter: str | None = None) -> Path:
    """Write ``edge_index`` (2, E) of non-negative integers as an edge list: a header
    ``source<d>target`` and one ``i<d>j`` line per column, where ``<d>`` is
    ``delimiter`` (default: :func:`edge_list_delimiter`).
    Atomic (a temporary file beside ``path``, then a rename); about 10⁷ lines a few
    seconds."""
    path = Path(path)
    if delimiter is None:
        delimiter = edge_list_delimiter(path)
    if len(delimiter) != 1 or delimiter in "0123456789\n\r":
        raise ValueError(f"delimiter must be one character other than a digit or newline, "
                         f"got {delimiter!r}")
    ei = _numpy(edge_index)
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(ei.shape)}")
    if ei.dtype.kind not in "iu":
        raise ValueError(f"edge_index must hold integers, got dtype {ei.dtype}")
    if ei.size and int(ei.min()) < 0:
        raise ValueError("edge_index holds negative node ids")
    if ei.size and int(ei.max()) > np.iinfo(np.int64).max:     # uint64: would wrap
        raise ValueError(f"edge_index holds node id {int(ei.max())}, past 2⁶³ − 1")
    width = len(str(int(ei.max()))) if ei.size else 1
    sep = ord(delimiter)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(edge_list_header(delimiter) + b"\n")
        for start in range(0, ei.shape[1], _WRITE_CHUNK):
            fh.write(_lines(ei[:, start:start + _WRITE_CHUNK], width, sep))
    return path


def _lines(ei: np.ndarray, width: int, sep: int) -> bytes:
    """``i<sep>j\\n`` for each column of ``ei``, built as bytes with array arithmetic."""
    m = ei.shape[1]
    row = np.empty((m, 2 * width + 2), dtype=np.uint8)
    keep = np.ones(row.shape, dtype=bool)
    pos = np.arange(width)
    for col, off in ((0, 0), (1, width + 1)):
        v = ei[col].astype(np.int64)
        digits = np.ones(m, dtype=np.int64)
        for p in range(1, width):
            digits += v >= 10 ** p
        for p in range(width - 1, -1, -1):
            v, d = np.divmod(v, 10)
            row[:, off + p] = d + 48
        keep[:, off:off + width] = pos[None, :] >= (width - digits)[:, None]
    row[:, width] = sep
    row[:, -1] = ord("\n")
    return row[keep].tobytes()


__all__ = ["MAX_BLOCKS", "PlantedSBM", "check_sbm_arguments", "make_sbm", "oracle_scores",
           "plant_sbm", "sample_edges", "write_edge_list"]
