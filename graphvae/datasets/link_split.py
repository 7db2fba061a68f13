"""Kipf & Welling's link-prediction split (https://arxiv.org/abs/1611.07308).

The undirected edges are shuffled (seeded); ``floor(E/10)`` go to test, ``floor(E/20)``
to validation, the rest to training. Validation and test each get as many non-edges of
the *full* graph, sampled uniformly among pairs ``i < j``, without duplicates, the two
sets disjoint. The encoder and the training loss see only the training edges.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from graphvae.graph import check_graph, edge_keys
from graphvae.likelihoods import contains_sorted


@dataclass
class LinkSplit:
    """Train graph and held-out pairs; every pair tensor is ``(2, k)`` with ``i < j``."""

    num_nodes: int
    train_edge_index: Tensor
    val_pos: Tensor
    val_neg: Tensor
    test_pos: Tensor
    test_neg: Tensor

    def to(self, device: torch.device) -> LinkSplit:
        return LinkSplit(self.num_nodes, *(getattr(self, f.name).to(device)
                                           for f in dataclasses.fields(self)[1:]))


def _sample_negatives(forbidden: Tensor, n: int, count: int, rng: np.random.Generator) -> Tensor:
    """``count`` distinct pairs ``i < j`` whose keys are not in sorted ``forbidden``, uniformly.

    Rejection sampling when non-edges are plentiful; on a dense graph (fewer than
    ``4 · count`` non-edges) every non-edge is listed and ``count`` are drawn from the list,
    so the split never loops. A one-line error when there are fewer than ``count``.
    """
    available = n * (n - 1) // 2 - forbidden.numel()
    if available < count:
        raise ValueError(f"the split needs {count} non-edges (as many as the held-out edges) "
                         f"but the graph has only {available}: it is too dense for link "
                         f"prediction")
    if available < 4 * count:
        i, j = torch.triu_indices(n, n, offset=1)
        keys = i * n + j
        keys = keys[~contains_sorted(forbidden, keys)]
        chosen = keys[torch.from_numpy(rng.permutation(keys.numel())[:count])]
        return torch.stack([chosen // n, chosen % n])
    chosen = torch.empty(0, dtype=torch.long)
    while chosen.numel() < count:
        draw = 2 * (count - chosen.numel()) + 16
        i = torch.from_numpy(rng.integers(n, size=draw))
        j = torch.from_numpy(rng.integers(n, size=draw))
        lo, hi = torch.minimum(i, j), torch.maximum(i, j)
        keys = (lo * n + hi)[lo != hi]
        keys = keys[~contains_sorted(forbidden, keys)]
        chosen = _unique_in_order(torch.cat([chosen, keys]))
    return torch.stack([chosen[:count] // n, chosen[:count] % n])


def _unique_in_order(keys: Tensor) -> Tensor:
    uniq, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full((uniq.numel(),), keys.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(keys.numel()), reduce="amin")
    return keys[first.sort().values]


def _undirected(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Each undirected edge once as ``(i, j)``, ``i < j``, sorted; self-loops dropped. The
    same columns as ``upper_triangle(to_simple_undirected(...))`` with half its work."""
    lo = torch.minimum(edge_index[0], edge_index[1])
    hi = torch.maximum(edge_index[0], edge_index[1])
    keep = lo != hi
    keys = torch.unique(lo[keep] * num_nodes + hi[keep])
    return torch.stack([keys // num_nodes, keys % num_nodes])


def _share(m: int, fraction: float) -> int:
    """``⌊m · fraction⌋`` of the fraction as written: in floats, 0.35 · 180 is 62.999…, so
    a 35 % share of 180 edges was 62 edges, not 63. A product within a few roundings of
    ``fraction``'s own type (float32 too) of a whole number is that number; 0.05 and 0.10
    give ``⌊m / 20⌋`` and ``⌊m / 10⌋`` either way."""
    f = np.asarray(fraction)
    spacing = float(np.spacing(f if f.dtype.kind == "f" else f.astype(np.float64)))
    x = m * float(f)
    k = round(x)
    return k if abs(x - k) <= 4 * m * spacing else math.floor(x)


def _fewest_edges(fraction: float) -> str:
    """The fewest edges of which ``fraction`` holds one under :func:`_share`, as a phrase:
    ``⌈1 / fraction⌉``, or one either side of it where the float division or the share's
    rounding moves it; approximate beyond 10¹⁵ (and ``1 / fraction`` overflows for a
    subnormal fraction)."""
    inverse = 1 / float(fraction)
    if not math.isfinite(inverse):
        return "more edges than a float can count"
    if inverse >= 1e15:
        return f"about {inverse:.3g} edges or more"
    near = math.ceil(inverse)
    return str(next(m for m in (near - 1, near, near + 1)
                    if m >= 1 and _share(m, fraction) >= 1)) + " edges or more"


def split_edges(edge_index: Tensor, num_nodes: int, val_fraction: float = 0.05,
                test_fraction: float = 0.10, seed: int = 0) -> LinkSplit:
    """Kipf & Welling's 85/5/10 edge split (see the module docstring). ``edge_index`` is
    made simple and undirected first (each edge once, either direction given, no
    self-loops), so an edge listed twice or in one direction only is one edge: a held-out
    edge never stays in the training graph through a second copy."""
    if not 0 <= val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"bad split fractions: val {val_fraction}, test {test_fraction}")
    check_graph(None, edge_index, num_nodes)
    und = _undirected(edge_index, num_nodes)
    m = und.size(1)
    n_test, n_val = _share(m, test_fraction), _share(m, val_fraction)
    for flag, name, fraction, share in (("test", "test", test_fraction, n_test),
                                        ("val", "validation", val_fraction, n_val)):
        if fraction > 0 and share < 1 and m >= 3:     # a graph that could be split
            raise ValueError(f"the graph has {m} edges: a {name} fraction of {fraction:g} "
                             f"holds none of them (it needs {_fewest_edges(fraction)}); "
                             f"raise --{flag}-fraction")
    if n_test < 1 or m - n_test - n_val < 1:
        raise ValueError(f"the graph has {m} edge{'s' * (m != 1)}, too few to split into "
                         f"train/val/test")
    rng = np.random.default_rng(seed)
    perm = torch.from_numpy(rng.permutation(m))
    test_pos, val_pos = und[:, perm[:n_test]], und[:, perm[n_test:n_test + n_val]]
    train = und[:, perm[n_test + n_val:]]
    forbidden = torch.unique(edge_keys(und, num_nodes))
    neg = _sample_negatives(forbidden, num_nodes, n_test + n_val, rng)
    return LinkSplit(num_nodes, torch.cat([train, train.flip(0)], dim=1),
                     val_pos, neg[:, n_test:], test_pos, neg[:, :n_test])
