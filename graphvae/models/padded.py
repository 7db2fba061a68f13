"""The fixed-size graphs of :class:`~graphvae.models.GraphVAE`: a graph padded to ``k``
slots (:class:`PaddedGraph`, stacks of its relabellings included) and the decoder's logits
over those slots (:class:`GraphLogits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphvae.permutations import permuted_dense


@dataclass
class PaddedGraph:
    """A graph padded to ``k`` nodes; every field may carry leading batch dims ``(K, ...)``."""

    mask: Tensor                       # (..., k) 1 for real nodes
    adj: Tensor                        # (..., k, k) symmetric 0/1, zero diagonal
    node_types: Tensor | None = None   # (..., k) long
    edge_types: Tensor | None = None   # (..., k, k) long

    def permute(self, perms: Tensor) -> PaddedGraph:
        """Stack of relabellings: row ``p`` of ``perms (K, k)`` gives ``adj[p][:, p]``.
        ``perms`` are permutations (:meth:`graphvae.models.GraphVAE.bound` checks the
        ones it is given)."""
        return PaddedGraph(self.mask[perms], permuted_dense(self.adj, perms),
                           None if self.node_types is None else self.node_types[perms],
                           None if self.edge_types is None
                           else permuted_dense(self.edge_types, perms))

    def distinct(self) -> Tensor:
        """Indices of the first of each distinct graph in a stack ``(K, ...)``, in order:
        relabellings that are automorphisms of the graph give the same target, which a sum
        over distinct labelled graphs must count once."""
        parts = [self.mask, self.adj.flatten(1)]
        parts += [t.flatten(1).to(self.mask.dtype) for t in (self.node_types, self.edge_types)
                  if t is not None]
        _, inverse = torch.unique(torch.cat(parts, 1), dim=0, return_inverse=True)
        index = torch.arange(inverse.numel(), device=inverse.device)
        first = torch.full((int(inverse.max()) + 1,), inverse.numel(), device=inverse.device)
        first = first.scatter_reduce(0, inverse, index, "amin")
        return first.sort().values

    def select(self, index: Tensor) -> PaddedGraph:
        """The graphs ``index`` of a stack."""
        return PaddedGraph(self.mask[index], self.adj[index],
                           None if self.node_types is None else self.node_types[index],
                           None if self.edge_types is None else self.edge_types[index])


@dataclass
class GraphLogits:
    node: Tensor                       # (..., k)
    edge: Tensor                       # (..., k, k), symmetric
    node_type: Tensor | None = None    # (..., k, T)
    edge_type: Tensor | None = None    # (..., k, k, R)
