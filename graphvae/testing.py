"""Permutation-invariance checks for users' test suites.

A graph has no node order, so a correct model treats a relabelled graph
``PG = (PX, PAPᵀ)`` as the same graph:

* encoder: node latents move with their nodes, ``μ(PG) = P μ(G)`` (and the same
  for the scale); a graph-level latent does not move, ``μ(PG) = μ(G)``;
* decoder: ``log p(PG | Pz) = log p(G | z)`` — for edge decoders, ``l(Pz) = P l(z) Pᵀ``;
* bound: ``B(PG) = B(G)``, with the noise ``ε`` fixed across relabellings (moved
  with the nodes for node latents) so that only the labelling changes.

Each ``assert_*`` draws ``num_permutations`` seeded random permutations per
graph, raises :class:`InvarianceError` naming the worst deviation, the graph and
the permutation, and otherwise returns the worst deviation. ``measure_*`` return
the same :class:`Deviation` without raising. Works with
:class:`~graphvae.models.GraphAutoencoder` (GAE, VGAE, joint) and
:class:`~graphvae.models.graphvae.GraphVAE`; a bound other than the model's own
can be passed as ``bound_fn(model, x, adj, eps) -> value``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from graphvae.graph import Adjacency, permute_graph, to_dense
from graphvae.models import GraphAutoencoder
from graphvae.models.graphvae import GraphVAE
from graphvae.permutations import all_permutations, random_permutations

Graph = tuple[Tensor, Tensor]  # (x (n, d), edge_index (2, E))
BoundFn = Callable[..., Tensor]


class InvarianceError(AssertionError):
    """A model component changed under node relabelling by more than the tolerance."""


@dataclass
class Deviation:
    """The worst ``|f(PG) − P f(G)|`` seen: where, and under which permutation.

    With ``rtol > 0`` "worst" means the largest excess ``|got − expected| − rtol·|expected|``
    (the tolerance test is ``excess <= atol``); ``value`` is the deviation at that entry.
    """

    component: str
    rtol: float = 0.0
    value: float = 0.0
    excess: float = -math.inf
    graph: int = -1
    permutation: list[int] = field(default_factory=list)
    detail: str = ""

    def update(self, ref: Tensor, got: Tensor, graph: int, perm: Tensor) -> None:
        ref, got = ref.double(), got.double()
        diff = (got - ref).abs()
        if not diff.numel():
            return
        excess = diff - self.rtol * ref.abs()
        worst = float(excess.max())
        if worst > self.excess or (worst != worst):  # NaN counts as a failure
            idx = int(excess.flatten().argmax())
            self.value, self.excess = float(diff.flatten()[idx]), worst
            self.graph, self.permutation = graph, perm.tolist()
            where = (f"at entry {tuple(int(i) for i in _unravel(idx, diff.shape))} "
                     if diff.dim() else "")
            self.detail = (f"{where}(expected {float(ref.flatten()[idx]):.10g}, got "
                           f"{float(got.flatten()[idx]):.10g})")

    def check(self, atol: float) -> float:
        if not self.excess <= atol:
            tol = f"atol {atol:g}" + (f" + rtol {self.rtol:g}·|expected|" if self.rtol else "")
            raise InvarianceError(
                f"{self.component} is not permutation-invariant: worst deviation "
                f"{self.value:.3g} > {tol} on graph {self.graph} {self.detail} under "
                f"permutation {self.permutation}")
        return self.value


def _unravel(idx: int, shape: torch.Size) -> list[int]:
    out = []
    for size in reversed(shape):
        out.append(idx % size)
        idx //= size
    return out[::-1]


def _graphs(graphs: Any) -> list[Graph]:
    """One graph or many, each ``(x, edge_index)`` or a PyG ``Data``."""
    if isinstance(graphs, tuple) and len(graphs) == 2 and isinstance(graphs[0], Tensor):
        return [graphs]
    if hasattr(graphs, "edge_index"):
        return [(graphs.x, graphs.edge_index)]
    return [(g.x, g.edge_index) if hasattr(g, "edge_index") else tuple(g) for g in graphs]


def _relabellings(graphs: Any, num_permutations: int, seed: int):
    """Yield ``(graph index, x, adj, perm, x_p, adj_p)`` for seeded random permutations."""
    gen = torch.Generator().manual_seed(seed)
    for gi, (x, ei) in enumerate(_graphs(graphs)):
        n = x.size(0)
        for perm in random_permutations(n, num_permutations, gen).to(x.device):
            xp, eip, _ = permute_graph(perm, to_dense(x), ei)
            assert xp is not None and eip is not None
            yield gi, x, Adjacency(ei, n), perm, xp, Adjacency(eip, n)


@torch.no_grad()
def measure_encoder(model, graphs, num_permutations: int = 10, seed: int = 0,
                    rtol: float = 0.0) -> tuple[Deviation, Deviation]:
    """Worst deviations of the posterior mean and scale."""
    model.eval()
    mean, scale = Deviation("encoder mean", rtol), Deviation("encoder scale", rtol)
    for gi, x, adj, perm, xp, adjp in _relabellings(graphs, num_permutations, seed):
        q, qp = model.encode(x, adj), model.encode(xp, adjp)
        node_level = q.loc.dim() == 2 and not isinstance(model, GraphVAE)
        mean.update(q.loc[perm] if node_level else q.loc, qp.loc, gi, perm)
        if hasattr(q, "logvar"):
            s = q.scale
            scale.update(s[perm] if node_level else s, qp.scale, gi, perm)
    return mean, scale


@torch.no_grad()
def measure_decoder(model, graphs, num_permutations: int = 10, seed: int = 0,
                    rtol: float = 0.0) -> Deviation:
    """Worst deviation of the decoder: ``l(Pz)`` vs ``P l(z) Pᵀ`` (and feature parameters)
    for node latents; ``log p(PG | z)`` vs ``log p(G | z)`` for a graph latent."""
    model.eval()
    dev = Deviation("decoder", rtol)
    for gi, x, adj, perm, _, adjp in _relabellings(graphs, num_permutations, seed):
        z = model.encode(x, adj).loc
        if isinstance(model, GraphVAE):
            target = model.pad(adj.edge_index, adj.num_nodes)
            ident = torch.arange(model.max_nodes, device=perm.device)
            relabel = ident.clone()
            relabel[:perm.numel()] = perm                      # padding slots stay put
            ll = model.log_likelihood(model.decode(z[None]),
                                      target.permute(torch.stack([ident, relabel])))  # (1, 2)
            dev.update(ll[0, :1], ll[0, 1:], gi, perm)
            continue
        logits = model.edge_decoder.forward_all(z)
        dev.update(logits[perm][:, perm], model.edge_decoder.forward_all(z[perm]), gi, perm)
        if model.feature_decoder is not None:
            mu, _ = model.feature_decoder(z, adj)
            mup, _ = model.feature_decoder(z[perm], adjp)
            dev.update(mu[perm], mup, gi, perm)
    return dev


def model_bound(model, x: Tensor, adj: Adjacency, eps: Tensor) -> Tensor:
    """The model's own bound, exactly (the dense edge likelihood for graph autoencoders)."""
    if isinstance(model, GraphVAE):
        return model.bound(x, adj, eps=eps).value
    return model(x, adj, eps=eps).bound


def exact_permutation_bound(model: GraphVAE, x: Tensor, adj: Adjacency, eps: Tensor) -> Tensor:
    """``log Σ_{P∈S_k} exp ELBO(PG)`` over all ``k!`` relabellings of the padded graph."""
    perms = all_permutations(model.max_nodes).to(x.device)
    return model.bound(x, adj, perms, eps=eps).value


@torch.no_grad()
def measure_bound(model, graphs, num_permutations: int = 10, seed: int = 0,
                  bound_fn: BoundFn = model_bound, rtol: float = 0.0) -> Deviation:
    """Worst deviation of the bound between a graph and its relabellings (same ``ε``)."""
    model.eval()
    dev = Deviation("bound", rtol)
    gen = torch.Generator().manual_seed(seed + 1)
    with _dense_edges(model):
        for gi, x, adj, perm, xp, adjp in _relabellings(graphs, num_permutations, seed):
            q = model.encode(x, adj)
            eps = torch.randn(q.loc.shape, generator=gen, dtype=q.loc.dtype).to(q.loc.device)
            node_level = q.loc.dim() == 2 and not isinstance(model, GraphVAE)
            ref = bound_fn(model, x, adj, eps[None])
            got = bound_fn(model, xp, adjp, (eps[perm] if node_level else eps)[None])
            dev.update(ref, got, gi, perm)
    return dev


class _dense_edges:
    """Evaluate a graph autoencoder's bound with the exact dense edge likelihood."""

    def __init__(self, model):
        self.model, self.saved = model, None

    def __enter__(self):
        if isinstance(self.model, GraphAutoencoder):
            self.saved = self.model.objective
            self.model.objective = replace(self.saved, estimator="dense")

    def __exit__(self, *exc):
        if self.saved is not None:
            self.model.objective = self.saved


def assert_encoder_equivariant(model, graphs, num_permutations: int = 10, atol: float = 1e-5,
                               seed: int = 0, rtol: float = 0.0) -> float:
    """Raise :class:`InvarianceError` unless the encoder is equivariant (invariant for a
    graph-level latent) within ``atol + rtol·|expected|``; return the worst deviation."""
    mean, scale = measure_encoder(model, graphs, num_permutations, seed, rtol)
    return max(mean.check(atol), scale.check(atol))


def assert_decoder_equivariant(model, graphs, num_permutations: int = 10, atol: float = 1e-5,
                               seed: int = 0, rtol: float = 0.0) -> float:
    """Raise :class:`InvarianceError` unless the decoder commutes with relabelling."""
    return measure_decoder(model, graphs, num_permutations, seed, rtol).check(atol)


def assert_bound_invariant(model, graphs, num_permutations: int = 10, atol: float = 1e-5,
                           seed: int = 0, bound_fn: BoundFn = model_bound,
                           rtol: float = 0.0) -> float:
    """Raise :class:`InvarianceError` unless ``bound_fn`` gives the same value for every
    relabelling (``ε`` fixed) within ``atol + rtol·|expected|``; return the worst deviation."""
    return measure_bound(model, graphs, num_permutations, seed, bound_fn, rtol).check(atol)


def check_all(model, graphs, num_permutations: int = 10, seed: int = 0,
              bound_fn: BoundFn = model_bound) -> list[Deviation]:
    """Every component's worst deviation (no raising): the CLI's table."""
    mean, scale = measure_encoder(model, graphs, num_permutations, seed)
    return [mean, scale, measure_decoder(model, graphs, num_permutations, seed),
            measure_bound(model, graphs, num_permutations, seed, bound_fn)]


def graph_strategy(min_nodes: int = 2, max_nodes: int = 8, feature_dim: int = 3,
                   dtype: torch.dtype = torch.float64):
    """Hypothesis strategy for small random graphs ``(x, edge_index)`` with features.

    Needs ``hypothesis`` (a test dependency, imported only here).
    """
    from hypothesis import strategies as st

    @st.composite
    def build(draw):
        n = draw(st.integers(min_nodes, max_nodes))
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, unique=True)) if pairs else []
        seed = draw(st.integers(0, 2**31 - 1))
        x = torch.randn(n, feature_dim, generator=torch.Generator().manual_seed(seed),
                        dtype=dtype)
        ei = torch.tensor(chosen, dtype=torch.long).t().reshape(2, -1)
        return x, torch.cat([ei, ei.flip(0)], dim=1)

    return build()


__all__: Sequence[str] = [
    "Deviation", "InvarianceError", "assert_bound_invariant", "assert_decoder_equivariant",
    "assert_encoder_equivariant", "check_all", "exact_permutation_bound", "graph_strategy",
    "measure_bound", "measure_decoder", "measure_encoder", "model_bound",
]
