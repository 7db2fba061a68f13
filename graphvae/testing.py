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
:class:`~graphvae.models.GraphAutoencoder` (GAE, VGAE, joint),
:class:`~graphvae.models.graphvae.GraphVAE` and the one-shot
:class:`~graphvae.models.oneshot.EquivariantGraphVAE` (whose decoder check
compares the edge logits, ``l(Pz) = P l(z) Pᵀ``, and the whole ``log p(G | Z)``
with node and bond types); a bound other than the model's own can be passed as
``bound_fn(model, x, adj, eps) -> value``.

Graphs are ``(x, edge_index)`` pairs or PyG ``Data`` objects; typed graphs for the
one-shot model are ``(x, edge_index, node_types, edge_types)`` with ``node_types``
``(n,)`` and ``edge_types`` ``(E,)`` aligned with ``edge_index`` (either may be ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import torch
from torch import Tensor

from graphvae.bounds.gaussian import DiagGaussian
from graphvae.graph import Adjacency, permute_graph, to_dense
from graphvae.models import GraphAutoencoder
from graphvae.models.graphvae import GraphVAE
from graphvae.models.oneshot import EquivariantGraphVAE, GraphBatch, GraphTensors
from graphvae.permutations import all_permutations, random_permutations

Graph = tuple[Tensor, Tensor]  # (x (n, d), edge_index (2, E))
TypedGraph = tuple[Tensor, Tensor, Tensor | None, Tensor | None]  # + node / edge types
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


def _graphs(graphs: Any) -> list[TypedGraph]:
    """One graph or many, each ``(x, edge_index)``, ``(x, edge_index, node_types,
    edge_types)`` or a PyG ``Data``."""
    if isinstance(graphs, tuple) and len(graphs) in (2, 4) and isinstance(graphs[0], Tensor):
        graphs = [graphs]
    elif hasattr(graphs, "edge_index"):
        graphs = [graphs]
    out: list[TypedGraph] = []
    for g in graphs:
        t = (g.x, g.edge_index) if hasattr(g, "edge_index") else tuple(g)
        if len(t) not in (2, 4):
            raise ValueError(f"a graph is (x, edge_index) or (x, edge_index, node_types, "
                             f"edge_types), got a tuple of {len(t)}")
        out.append((t[0], t[1], None, None) if len(t) == 2 else t)  # type: ignore[arg-type]
    return out


class _Relabelled(NamedTuple):
    graph: int
    x: Tensor
    adj: Adjacency
    perm: Tensor
    xp: Tensor
    adjp: Adjacency
    node_types: Tensor | None
    edge_types: Tensor | None


def _relabellings(graphs: Any, num_permutations: int, seed: int):
    """Yield a :class:`_Relabelled` for each seeded random permutation of each graph."""
    gen = torch.Generator().manual_seed(seed)
    for gi, (x, ei, nt, et) in enumerate(_graphs(graphs)):
        n = x.size(0)
        for perm in random_permutations(n, num_permutations, gen).to(x.device):
            xp, eip, _ = permute_graph(perm, to_dense(x), ei)
            assert xp is not None and eip is not None
            yield _Relabelled(gi, x, Adjacency(ei, n), perm, xp, Adjacency(eip, n), nt, et)


def _oneshot_batches(r: _Relabelled) -> tuple[GraphBatch, GraphBatch]:
    """The graph and its relabelling as one-graph batches for the one-shot model
    (edge types keep their order: ``edge_index`` is relabelled entry by entry)."""
    n = r.x.size(0)
    ntp = None if r.node_types is None else r.node_types[r.perm]
    g = GraphTensors(n, r.adj.edge_index.cpu(), r.node_types, r.edge_types)
    gp = GraphTensors(n, r.adjp.edge_index.cpu(), ntp, r.edge_types)
    return (GraphBatch.collate([g], [r.x], r.x.device),
            GraphBatch.collate([gp], [r.xp], r.x.device))


@torch.no_grad()
def measure_encoder(model, graphs, num_permutations: int = 10, seed: int = 0,
                    rtol: float = 0.0) -> tuple[Deviation, Deviation]:
    """Worst deviations of the posterior mean and scale."""
    model.eval()
    mean, scale = Deviation("encoder mean", rtol), Deviation("encoder scale", rtol)
    for r in _relabellings(graphs, num_permutations, seed):
        if isinstance(model, EquivariantGraphVAE):
            b, bp = _oneshot_batches(r)
            q, qp = model.posterior(b), model.posterior(bp)        # (1, n, d)
            q, qp = DiagGaussian(q.loc[0], q.logvar[0]), DiagGaussian(qp.loc[0], qp.logvar[0])
        else:
            q, qp = model.encode(r.x, r.adj), model.encode(r.xp, r.adjp)
        node_level = q.loc.dim() == 2 and not isinstance(model, GraphVAE)
        mean.update(q.loc[r.perm] if node_level else q.loc, qp.loc, r.graph, r.perm)
        if hasattr(q, "logvar"):
            s = q.scale
            scale.update(s[r.perm] if node_level else s, qp.scale, r.graph, r.perm)
    return mean, scale


@torch.no_grad()
def measure_decoder(model, graphs, num_permutations: int = 10, seed: int = 0,
                    rtol: float = 0.0) -> Deviation:
    """Worst deviation of the decoder: ``l(Pz)`` vs ``P l(z) Pᵀ`` (and feature parameters)
    for node latents; ``log p(PG | z)`` vs ``log p(G | z)`` for a graph latent; for the
    one-shot model both the edge logits and ``log p(PG | PZ)`` vs ``log p(G | Z)``."""
    model.eval()
    dev = Deviation("decoder", rtol)
    for r in _relabellings(graphs, num_permutations, seed):
        perm = r.perm
        if isinstance(model, EquivariantGraphVAE):
            b, bp = _oneshot_batches(r)
            z = model.posterior(b).loc                              # (1, n, d)
            logits, _ = model.edge_logits(z[0])
            logits_p, _ = model.edge_logits(z[0, perm])
            dev.update(logits[perm][:, perm], logits_p, r.graph, perm)
            ll, ll_p = model.log_likelihood(z[None], b), model.log_likelihood(z[:, perm][None], bp)
            dev.update(ll, ll_p, r.graph, perm)
            continue
        z = model.encode(r.x, r.adj).loc
        if isinstance(model, GraphVAE):
            target = model.pad(r.adj.edge_index, r.adj.num_nodes)
            ident = torch.arange(model.max_nodes, device=perm.device)
            relabel = ident.clone()
            relabel[:perm.numel()] = perm                      # padding slots stay put
            ll = model.log_likelihood(model.decode(z[None]),
                                      target.permute(torch.stack([ident, relabel])))  # (1, 2)
            dev.update(ll[0, :1], ll[0, 1:], r.graph, perm)
            continue
        logits = model.edge_decoder.forward_all(z)
        dev.update(logits[perm][:, perm], model.edge_decoder.forward_all(z[perm]), r.graph, perm)
        if model.feature_decoder is not None:
            mu, _ = model.feature_decoder(z, r.adj)
            mup, _ = model.feature_decoder(z[perm], r.adjp)
            dev.update(mu[perm], mup, r.graph, perm)
    return dev


def model_bound(model, x: Tensor | GraphBatch, adj: Adjacency | None, eps: Tensor) -> Tensor:
    """The model's own bound, exactly (the dense edge likelihood for graph autoencoders;
    for the one-shot model ``x`` is a :class:`~graphvae.models.oneshot.GraphBatch`)."""
    if isinstance(model, EquivariantGraphVAE):
        assert isinstance(x, GraphBatch)
        return model.bound(x, eps=eps).value
    assert isinstance(x, Tensor) and adj is not None
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
    """Worst deviation of the bound between a graph and its relabellings (same ``ε``).

    For the one-shot model ``bound_fn`` is called as ``bound_fn(model, batch, None, eps)``
    with a one-graph :class:`~graphvae.models.oneshot.GraphBatch`."""
    model.eval()
    dev = Deviation("bound", rtol)
    gen = torch.Generator().manual_seed(seed + 1)
    with _dense_edges(model):
        for r in _relabellings(graphs, num_permutations, seed):
            perm = r.perm
            if isinstance(model, EquivariantGraphVAE):
                b, bp = _oneshot_batches(r)
                loc = model.posterior(b).loc                        # (1, n, d)
                eps = torch.randn(loc.shape, generator=gen, dtype=loc.dtype).to(loc.device)
                ref = bound_fn(model, b, None, eps[None])
                got = bound_fn(model, bp, None, eps[:, perm][None])
                dev.update(ref, got, r.graph, perm)
                continue
            q = model.encode(r.x, r.adj)
            eps = torch.randn(q.loc.shape, generator=gen, dtype=q.loc.dtype).to(q.loc.device)
            node_level = q.loc.dim() == 2 and not isinstance(model, GraphVAE)
            ref = bound_fn(model, r.x, r.adj, eps[None])
            got = bound_fn(model, r.xp, r.adjp, (eps[perm] if node_level else eps)[None])
            dev.update(ref, got, r.graph, perm)
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
