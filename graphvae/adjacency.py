"""A graph's structure with the derived forms the models need, built once
(:class:`Adjacency`): the GCN operator and its transpose, the positive pairs and their
keys, the dense target. Conventions are those of :mod:`graphvae.graph`.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import torch
from torch import Tensor

from graphvae.graph import check_edge_index, edge_index_to_dense, edge_keys


class _PropagateFn(torch.autograd.Function):
    """``A h`` for a constant sparse ``A`` whose transpose ``At`` is given: backward
    ``At g`` (no per-step transpose of ``A``)."""

    @staticmethod
    def forward(ctx, a: Tensor, at: Tensor, h: Tensor) -> Tensor:
        ctx.at = at
        return torch.sparse.mm(a, h)

    @staticmethod
    def backward(ctx, g: Tensor):
        return None, None, torch.sparse.mm(ctx.at, g.contiguous())


class Adjacency:
    """A graph's structure with the derived forms the models need, built once.

    Holds the ``edge_index`` an encoder may look at and lazily derives (and keeps)
    the symmetric-normalised sparse operator ``D^-1/2 (A + I) D^-1/2`` of
    Kipf & Welling's GCN and the sorted pair keys used to reject positives when
    sampling non-edges. Models keep no state; a training loop builds one
    ``Adjacency`` per graph and passes it on every call.

    Args:
        edge_index: ``(2, E)`` ordered pairs (both directions for undirected graphs).
        num_nodes: number of nodes ``n``.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int):
        check_edge_index(edge_index, num_nodes)
        self.edge_index = edge_index
        self.num_nodes = int(num_nodes)
        self._gcn: dict[torch.dtype, Tensor] = {}
        self._gcn_t: dict[torch.dtype, Tensor] = {}
        self._pairs: dict[bool, tuple[Tensor, Tensor]] = {}
        self._dense: dict[bool, Tensor] = {}
        self._input: tuple[Any, int, Tensor] | None = None

    @property
    def device(self) -> torch.device:
        return self.edge_index.device

    def to(self, device: torch.device | str) -> Adjacency:
        return Adjacency(self.edge_index.to(device), self.num_nodes)

    def gcn_operator(self, dtype: torch.dtype | None = None) -> Tensor:
        """Sparse CSR ``D^-1/2 (A + I) D^-1/2`` (self-loops added, duplicates summed)."""
        dtype = dtype or torch.get_default_dtype()
        if dtype not in self._gcn:
            n, dev = self.num_nodes, self.device
            ei = self.edge_index[:, self.edge_index[0] != self.edge_index[1]]
            loops = torch.arange(n, device=dev)
            row = torch.cat([ei[0], loops])
            col = torch.cat([ei[1], loops])
            w = torch.ones(row.numel(), device=dev, dtype=dtype)
            deg = torch.zeros(n, device=dev, dtype=dtype).index_add_(0, col, w)
            dinv = deg.pow(-0.5)
            w = dinv[row] * w * dinv[col]
            # message passing aggregates into the target: out[col] += w * h[row]
            op = torch.sparse_coo_tensor(torch.stack([col, row]), w, (n, n),
                                         check_invariants=False).coalesce()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._gcn[dtype] = op.to_sparse_csr()
        return self._gcn[dtype]

    def gcn_operator_t(self, dtype: torch.dtype | None = None) -> Tensor:
        """``Âᵀ`` as sparse CSR, built once: the very tensor of :meth:`gcn_operator` when
        ``Â`` is symmetric (an undirected graph), else its transpose."""
        dtype = dtype or torch.get_default_dtype()
        if dtype not in self._gcn_t:
            op = self.gcn_operator(dtype)
            coo = op.to_sparse_coo().coalesce()
            t = coo.t().coalesce()
            if torch.equal(t.indices(), coo.indices()) and torch.equal(t.values(), coo.values()):
                self._gcn_t[dtype] = op
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._gcn_t[dtype] = t.to_sparse_csr()
        return self._gcn_t[dtype]

    def propagate(self, h: Tensor) -> Tensor:
        """``Â h`` (``h`` of shape ``(n, c)``), differentiable in ``h``.

        Its backward is ``Âᵀ g`` with the transpose built once per graph (the same
        operator for an undirected graph), where ``torch.sparse.mm``'s own backward
        converts a transposed copy of ``Â`` to CSR at every step: at 10⁶ nodes and
        2·10⁷ stored entries that conversion was two thirds of a training step.
        """
        return _PropagateFn.apply(self.gcn_operator(h.dtype), self.gcn_operator_t(h.dtype), h)

    def propagate_input(self, x: Tensor) -> Tensor:
        """``Â x`` for a dense input that does not change between steps (the features of
        a first layer): computed once and kept while ``x`` is alive and unmodified (a weak
        reference and its version counter); not differentiable in ``x``."""
        kept = self._input
        if kept is None or kept[0]() is not x or kept[1] != x._version:
            with torch.no_grad():
                out = torch.sparse.mm(self.gcn_operator(x.dtype), x)
            kept = self._input = (weakref.ref(x), x._version, out)
        return kept[2]

    def positive_pairs(self, self_loops: bool) -> tuple[Tensor, Tensor]:
        """Unique ordered positive pairs ``(2, P)`` (with ``(i, i)`` if ``self_loops``) and their
        sorted keys ``i * n + j``."""
        if self_loops not in self._pairs:
            n = self.num_nodes
            keys = edge_keys(self.edge_index, n)
            if self_loops:
                keys = torch.cat([keys, torch.arange(n, device=self.device) * (n + 1)])
            else:                                   # loops in edge_index are not pairs here
                keys = keys[keys // n != keys % n]
            keys = torch.unique(keys)
            self._pairs[self_loops] = (torch.stack([keys // n, keys % n]), keys)
        return self._pairs[self_loops]

    def dense_target(self, self_loops: bool) -> Tensor:
        """``(n, n)`` float 0/1 adjacency of :meth:`positive_pairs`."""
        if self_loops not in self._dense:
            pairs, _ = self.positive_pairs(self_loops)
            self._dense[self_loops] = edge_index_to_dense(pairs, self.num_nodes)
        return self._dense[self_loops]
