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

The planted parameters, their file and the oracle are in
:mod:`graphvae.datasets.planted`; writing the edge list in :mod:`graphvae.datasets.edge_writer`.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch

from graphvae.datasets.edge_writer import edge_list_delimiter, edge_list_header, write_edge_list
from graphvae.datasets.planted import PlantedSBM, edge_fingerprint, oracle_scores

#: Most blocks :func:`make_sbm` accepts (``ω`` is a dense ``K × K`` matrix).
MAX_BLOCKS = 4096
#: Most nodes :func:`make_sbm` accepts (the keys ``i·n + j`` must fit in int64).
MAX_NODES = 2**31 - 1
#: Endpoint pairs drawn at a time (bounds the temporary memory of sampling).
_CHUNK = 1 << 21


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


__all__ = ["MAX_BLOCKS", "PlantedSBM", "check_sbm_arguments", "edge_fingerprint",
           "edge_list_delimiter", "edge_list_header", "make_sbm", "oracle_scores",
           "plant_sbm", "sample_edges", "write_edge_list"]
