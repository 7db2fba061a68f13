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
the same :class:`Deviation` without raising.

The checks use the model protocol of :mod:`graphvae.models` only, so any model that
gives ``node_latents`` (do latents move with their nodes?),
``invariance_batch(x, edge_index, node_types, edge_types)``, ``graph_posterior(batch)``,
``decoder_outputs(z, batch)`` (tensors tagged ``pairs``: ``l(Pz) = P l(z) Pᵀ``, compared
by blocks of rows where they come as a :class:`~graphvae.containers.PairRows`; ``nodes``:
``f(Pz) = P f(z)``; or ``graph``: unchanged) and ``exact_bound(batch, eps)``
can be checked: the package's :class:`~graphvae.models.GraphAutoencoder` (GAE, VGAE,
joint), :class:`~graphvae.models.GraphVAE` and the one-shot
:class:`~graphvae.models.EquivariantGraphVAE` all do. A bound other than the model's
own can be passed as ``bound_fn(model, batch, eps) -> value``.

Graphs are ``(x, edge_index)`` pairs or PyG ``Data`` objects; typed graphs for the
one-shot model are ``(x, edge_index, node_types, edge_types)`` with ``node_types``
``(n,)`` and ``edge_types`` ``(E,)`` aligned with ``edge_index`` (either may be ``None``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from graphvae.checks import is_whole
from graphvae.config import MAX_PERMUTATIONS, check_seed
from graphvae.containers import PairRows
from graphvae.deviations import Deviation, InvarianceError, check_tolerance
from graphvae.graph import is_sparse, permute_graph
from graphvae.likelihoods.edges import DENSE_BLOCK_ENTRIES, row_blocks
from graphvae.permutations import all_permutations, random_permutations
from graphvae.progress import inner_steps

Graph = tuple[Tensor, Tensor]  # (x (n, d), edge_index (2, E))
TypedGraph = tuple[Tensor, Tensor, Tensor | None, Tensor | None]  # + node / edge types
BoundFn = Callable[..., Tensor]
FeatureFn = Callable[[Tensor], Tensor]  # edge_index of a relabelled graph -> its features


def _graphs(graphs: Any) -> list[TypedGraph]:
    """One graph or many, each ``(x, edge_index)``, ``(x, edge_index, node_types,
    edge_types)`` or a PyG ``Data``."""
    if graphs is None:
        raise ValueError("no graphs to check: give (x, edge_index), a PyG Data or a list")
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
        if not isinstance(t[0], Tensor) or not isinstance(t[1], Tensor):
            raise ValueError(f"graph {len(out)}: x and edge_index must be tensors, got "
                             f"{type(t[0]).__name__} and {type(t[1]).__name__} (a PyG Data "
                             "without x needs features: the checks feed them to the model)")
        if t[0].size(0) == 0:
            raise ValueError(f"graph {len(out)} has no nodes: relabelling it checks nothing")
        if t[0].is_floating_point() and not is_sparse(t[0]) and not bool(
                torch.isfinite(t[0]).all()):
            raise ValueError(f"graph {len(out)}: its features are not all finite, so every "
                             f"output would be NaN and the check would blame the model")
        out.append((t[0], t[1], None, None) if len(t) == 2 else t)  # type: ignore[arg-type]
    if not out:
        raise ValueError("no graphs to check: a check over no graphs would pass any model")
    return out


class _Relabelled(NamedTuple):
    graph: int
    perm: Tensor
    batch: Any        # the model's batch of the graph
    batch_p: Any      # and of its relabelling


#: Random permutations are drawn this many entries at a time (the same draws as all at once).
_DRAW_ENTRIES = 1 << 20


def _relabellings(model, graphs: Any, num_permutations: int, seed: int,
                  features: FeatureFn | None = None):
    """Yield a :class:`_Relabelled` for each seeded random permutation of each graph. The
    relabelled graph also lists its edges in a seeded random order (edge types with
    them): a relabelled graph read from a file comes sorted anew, so a model that depends
    on the order of ``edge_index``'s columns is not invariant. ``features``: see
    :func:`check_all`."""
    if not is_whole(num_permutations) or not 1 <= num_permutations <= MAX_PERMUTATIONS:
        raise ValueError(f"num_permutations must be a whole number from 1 to "
                         f"{MAX_PERMUTATIONS:,} (none would pass any model), got "
                         f"{num_permutations!r}")
    check_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    gen_edges = torch.Generator().manual_seed(seed + 2)   # the node draws stay as they were
    for gi, (x, ei, nt, et) in enumerate(_graphs(graphs)):
        n = x.size(0)
        chunk = max(1, _DRAW_ENTRIES // n)
        for start in range(0, num_permutations, chunk):
            draws = random_permutations(n, min(chunk, num_permutations - start), gen)
            for perm in draws.to(x.device):
                # sparse features stay sparse (a featureless graph's identity, 10⁵ nodes)
                xp, eip, _ = permute_graph(perm, x, ei)
                assert xp is not None and eip is not None
                order = torch.randperm(eip.size(1), generator=gen_edges).to(eip.device)
                eip = eip[:, order]
                etp = None if et is None else et[order]
                if features is not None:
                    xp = features(eip).to(x.dtype)
                ntp = None if nt is None else nt[perm]
                yield _Relabelled(gi, perm, model.invariance_batch(x, ei, nt, et),
                                  model.invariance_batch(xp, eip, ntp, etp))


def _checked(relabellings, desc: str, total: int):
    """The relabellings with a bar inside :func:`graphvae.progress.shown` (the CLI)."""
    return inner_steps(relabellings, desc, " relabellings", total)


def _moved(t: Tensor, perm: Tensor, node_level: bool) -> Tensor:
    return t[perm] if node_level else t


@torch.no_grad()
def measure_encoder(model, graphs, num_permutations: int = 10, seed: int = 0,
                    rtol: float = 0.0, features: FeatureFn | None = None
                    ) -> tuple[Deviation, Deviation]:
    """Worst deviations of the posterior mean and scale."""
    graphs = _graphs(graphs)
    model.eval()
    mean, scale = Deviation("encoder mean", rtol), Deviation("encoder scale", rtol)
    for r in _checked(_relabellings(model, graphs, num_permutations, seed, features),
                      "encoder check", len(graphs) * num_permutations):
        q, qp = model.graph_posterior(r.batch), model.graph_posterior(r.batch_p)
        mean.update(_moved(q.loc, r.perm, model.node_latents), qp.loc, r.graph, r.perm)
        if hasattr(q, "logvar"):
            scale.update(_moved(q.scale, r.perm, model.node_latents), qp.scale, r.graph,
                         r.perm)
    return mean, scale


@torch.no_grad()
def measure_decoder(model, graphs, num_permutations: int = 10, seed: int = 0,
                    rtol: float = 0.0, features: FeatureFn | None = None) -> Deviation:
    """Worst deviation of the decoder's outputs between ``z`` on the graph and the moved
    ``z`` on its relabelling: ``pairs`` outputs as ``P l Pᵀ``, ``nodes`` as ``P f``,
    ``graph`` outputs (a whole ``log p(G | z)``) unchanged. ``z`` is the posterior mean,
    or, for a model whose ``decoder_check_point`` is ``"draw"``, one posterior draw (a
    point in general position; see :class:`graphvae.models.SequentialGraphVAE`)."""
    graphs = _graphs(graphs)
    model.eval()
    dev = Deviation("decoder", rtol)
    gen = torch.Generator().manual_seed(seed + 1)
    for r in _checked(_relabellings(model, graphs, num_permutations, seed, features),
                      "decoder check", len(graphs) * num_permutations):
        perm = r.perm
        q = model.graph_posterior(r.batch)
        z = q.loc
        if getattr(model, "decoder_check_point", "mean") == "draw":
            eps = torch.randn(z.shape, generator=gen, dtype=z.dtype).to(z.device)
            z = z + q.scale * eps
        outs = model.decoder_outputs(z, r.batch)
        outs_p = model.decoder_outputs(_moved(z, perm, model.node_latents), r.batch_p)
        for (_, ref, kind), (_, got, _) in zip(outs, outs_p, strict=True):
            if isinstance(ref, PairRows):            # a large graph's pairs, by row blocks
                for rows in row_blocks(ref.num_nodes, "decoder check", DENSE_BLOCK_ENTRIES,
                                       perm.device):
                    # rows r of P l Pᵀ: the rows perm[r] of l, columns in the order perm
                    dev.update(ref.rows(perm[rows])[:, perm], got.rows(rows), r.graph, perm,
                               row_offset=int(rows[0]))
                continue
            expect = ref[perm][:, perm] if kind == "pairs" else ref[perm] if kind == "nodes" \
                else ref
            dev.update(expect, got, r.graph, perm)
    return dev


def model_bound(model, batch: Any, eps: Tensor) -> Tensor:
    """The model's own bound, exactly (``exact_bound``: the dense edge likelihood for graph
    autoencoders), with the noise ``eps`` fixed."""
    return model.exact_bound(batch, eps)


def exact_permutation_bound(model, batch: Any, eps: Tensor) -> Tensor:
    """``log Σ_{G'} exp ELBO(G')`` over the distinct padded graphs among all ``k!``
    relabellings of the padded graph (a :class:`~graphvae.models.GraphVAE` and its
    one-graph batch): the best bound of the family on ``log p`` of the unlabelled graph,
    and equal to it where the ELBO is exact."""
    if not hasattr(model, "_single"):
        raise ValueError(f"exact_permutation_bound sums over the relabellings of a padded "
                         f"graph: it needs a graphvae.models.GraphVAE, got "
                         f"{type(model).__name__}")
    x, adj, g = model._single(batch)
    perms = all_permutations(model.max_nodes).to(x.device)
    return model.bound(x, adj, perms, g.node_types, g.edge_types, eps=eps).value


@torch.no_grad()
def measure_bound(model, graphs, num_permutations: int = 10, seed: int = 0,
                  bound_fn: BoundFn = model_bound, rtol: float = 0.0,
                  features: FeatureFn | None = None) -> Deviation:
    """Worst deviation of the bound between a graph and its relabellings, with the same ``ε``
    (moved with the nodes for node latents)."""
    graphs = _graphs(graphs)
    model.eval()
    dev = Deviation("bound", rtol)
    gen = torch.Generator().manual_seed(seed + 1)
    for r in _checked(_relabellings(model, graphs, num_permutations, seed, features),
                      "bound check", len(graphs) * num_permutations):
        loc = model.graph_posterior(r.batch).loc
        eps = torch.randn(loc.shape, generator=gen, dtype=loc.dtype).to(loc.device)
        ref = bound_fn(model, r.batch, eps[None])
        got = bound_fn(model, r.batch_p, _moved(eps, r.perm, model.node_latents)[None])
        dev.update(ref, got, r.graph, r.perm)
    return dev


def assert_encoder_equivariant(model, graphs, num_permutations: int = 10, atol: float = 1e-5,
                               seed: int = 0, rtol: float = 0.0) -> float:
    """Raise :class:`InvarianceError` unless the encoder is equivariant (invariant for a
    graph-level latent) within ``atol + rtol·|expected|``; return the worst deviation."""
    check_tolerance("atol", atol)                       # before the work, not after
    mean, scale = measure_encoder(model, graphs, num_permutations, seed, rtol)
    return max(mean.check(atol), scale.check(atol))


def assert_decoder_equivariant(model, graphs, num_permutations: int = 10, atol: float = 1e-5,
                               seed: int = 0, rtol: float = 0.0) -> float:
    """Raise :class:`InvarianceError` unless the decoder commutes with relabelling."""
    check_tolerance("atol", atol)
    return measure_decoder(model, graphs, num_permutations, seed, rtol).check(atol)


def assert_bound_invariant(model, graphs, num_permutations: int = 10, atol: float = 1e-5,
                           seed: int = 0, bound_fn: BoundFn = model_bound,
                           rtol: float = 0.0) -> float:
    """Raise :class:`InvarianceError` unless ``bound_fn`` gives the same value for every
    relabelling (``ε`` fixed) within ``atol + rtol·|expected|``; return the worst deviation."""
    check_tolerance("atol", atol)
    return measure_bound(model, graphs, num_permutations, seed, bound_fn, rtol).check(atol)


def check_all(model, graphs, num_permutations: int = 10, seed: int = 0,
              bound_fn: BoundFn = model_bound, rtol: float = 0.0,
              features: FeatureFn | None = None) -> list[Deviation]:
    """Every component's worst deviation (no raising): the CLI's table.

    ``rtol``: each deviation is judged against ``atol + rtol·|expected|`` (float32 bounds of
    large graphs round in their last digits). ``features``: for inputs derived from node
    ids (an identity matrix, seeded random columns), the function that computes a
    relabelled graph's features from its ``edge_index``, as the user's pipeline would;
    without it the features move with their nodes."""
    graphs = _graphs(graphs)
    mean, scale = measure_encoder(model, graphs, num_permutations, seed, rtol, features)
    return [mean, scale, measure_decoder(model, graphs, num_permutations, seed, rtol, features),
            measure_bound(model, graphs, num_permutations, seed, bound_fn, rtol, features)]


def graph_strategy(min_nodes: int = 2, max_nodes: int = 8, feature_dim: int = 3,
                   dtype: torch.dtype | None = None):
    """Hypothesis strategy for small random graphs ``(x, edge_index)`` with features in
    ``dtype``: by default torch's default dtype when a graph is drawn (float32 unless set),
    the dtype of a model built with defaults, which float64 features did not meet.

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
                        dtype=dtype or torch.get_default_dtype())
        ei = torch.tensor(chosen, dtype=torch.long).t().reshape(2, -1)
        return x, torch.cat([ei, ei.flip(0)], dim=1)

    return build()


__all__: Sequence[str] = [
    "Deviation", "InvarianceError", "assert_bound_invariant", "assert_decoder_equivariant",
    "assert_encoder_equivariant", "check_all", "exact_permutation_bound", "graph_strategy",
    "measure_bound", "measure_decoder", "measure_encoder", "model_bound",
]
