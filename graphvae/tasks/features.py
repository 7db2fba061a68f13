"""The input features of a link-prediction run (``--feature-mode``): the graph's own,
row-normalised or column-standardised, or, for a graph without features, the identity or
propagated random vectors (:func:`prepare_features`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from graphvae.adjacency import Adjacency
from graphvae.graph import feature_values, sparse_features, to_dense
from graphvae.tasks.link_prediction_config import LinkPredConfig

if TYPE_CHECKING:
    from torch_geometric.data import Data

#: Largest raw feature magnitude trained on as is: at 100 the joint model's feature
#: likelihood already overflows in its first step, and VGAE's at 1000 (measured).
RAW_FEATURE_LIMIT = 100.0


def check_feature_scale(data: Data, mode: str, source: str | None = None) -> None:
    """Refuse raw features of magnitude ``RAW_FEATURE_LIMIT`` or more before training, and
    say which ``--feature-mode`` fixes it; ``source``: the file they came from, named first."""
    if mode != "raw" or data.x is None or data.x.numel() == 0:
        return
    values = feature_values(data.x)                    # a sparse matrix: its stored entries
    if values.numel() == 0:
        return
    if not values.is_floating_point():                 # 0/1 flags, counts: their size
        big = float(values.to(torch.float64).abs().max())
    else:
        big = float(values.abs().max())
    if big >= RAW_FEATURE_LIMIT:
        raise ValueError(f"{source + ': ' if source else ''}node features reach {big:.3g} "
                         f"in magnitude, too large to train on "
                         f"raw (the encoder's outputs overflow); use --feature-mode normalize "
                         f"(rows scaled to sum 1) or standardize (columns to mean 0, variance 1)")


def prepare_features(data: Data, mode: str, adj: Adjacency | None = None,
                     config: LinkPredConfig | None = None, seed: int = 0) -> Tensor:
    """Model input features: raw / row-normalised / column-standardised / identity /
    propagated; sparse CSR when mostly zero.

    ``propagated`` diffuses over ``adj``, the graph the encoder sees (the training edges in
    :func:`~graphvae.tasks.link_prediction.run_link_prediction`, so held-out edges never
    shape the input), default the whole of ``data``; its width and hops come from
    ``config`` and its noise from ``seed``.
    """
    n = data.num_nodes
    if mode == "propagated":
        cfg = config or LinkPredConfig()
        return propagated_features(adj if adj is not None else
                                   Adjacency(data.edge_index, n),
                                   cfg.propagated_dim, cfg.propagated_hops, seed)
    if mode == "identity" or data.x is None:
        return identity_features(n)
    x = to_dense(data.x)                             # a sparse x is made sparse again below
    if mode == "normalize":
        # in float64 when given so (1e-50 was 0 in float32 before its row was scaled)
        x = x.double() if x.dtype == torch.float64 else x.float()
        total = x.abs().sum(1, keepdim=True)
        over = ~torch.isfinite(total)                # a row's sum passed the dtype's range:
        if bool(over.any()):                         # that row is scaled by its largest first
            x = torch.where(over, x / x.abs().amax(1, keepdim=True), x)
            total = x.abs().sum(1, keepdim=True)
        # every row with a nonzero entry sums to 1 (a floor of 1e-12 left rows of smaller
        # sums at their scale); an all-zero row stays zero
        x = x / torch.where(total > 0, total, torch.ones_like(total))
    elif mode == "standardize":
        x = x.double()
        scale = x.std(0, unbiased=False)
        x = (x - x.mean(0)) / torch.where(scale > 0, scale, torch.ones_like(scale))
    x = x.float()
    return sparse_features(x) if float((x != 0).float().mean()) < 0.1 else x


#: Encoders whose latent is one vector for every node when the input is all zero: the GCN
#: layers without a bias give 0, GAT's attention averages equal vectors. (gcn-bias, sage,
#: gin and gnae add terms that differ with the degree or the neighbourhood: they train.)
ZERO_INPUT_BLIND = frozenset({"gcn", "linear", "gat"})


def check_not_blank(x: Tensor, mode: str, encoder: str) -> None:
    """A one-line ``ValueError`` when the prepared features ``x`` are all zero and the
    ``encoder`` then gives every node the same latent: every pair scored the same, and
    AUC / AP of 50 were reported as a trained model's."""
    if encoder not in ZERO_INPUT_BLIND or x.size(-1) == 0 or bool(feature_values(x).any()):
        return
    what = ("every feature column is constant, which feature mode 'standardize' maps to 0"
            if mode == "standardize" else f"the node features are all zero (feature mode "
                                          f"{mode!r})")
    raise ValueError(f"{what}: the {encoder} encoder then gives every node the same latent "
                     f"and every pair the same score; use feature mode 'identity' or "
                     f"'propagated' (--feature-mode), or an encoder that reads the graph's "
                     f"structure without features (gin, sage, gnae)")


def identity_features(n: int) -> Tensor:
    """The featureless input ``X = I`` as a sparse CSR matrix built directly: ``O(n)``
    memory, and ``X W`` is then the rows of ``W``, a learned embedding per node."""
    idx = torch.arange(n + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(idx, idx[:n], torch.ones(n), (n, n))


def propagated_features(adj: Adjacency, dim: int = 64, hops: int = 6, seed: int = 0
                        ) -> Tensor:
    """Structural input for a graph without features: ``[Â^k R / |Â^k R|, log(1 + d)]``.

    ``R`` is an ``(n, dim)`` standard Gaussian drawn from ``seed`` (the same on every
    process of a data-parallel run), ``Â`` the GCN operator of ``adj`` and ``k = hops``;
    each row of ``Â^k R`` is scaled to unit length, and the last column is the log of one
    plus the node's degree in ``adj``. Row ``i`` of ``Â^k R`` is a random projection of
    the ``k``-step diffusion from node ``i``, so nodes whose neighbourhoods overlap (the
    same community, many hops out) get nearby rows; unlike the identity input there is no
    table of ``n`` free rows to fit the training edges one by one. Cost: ``k`` sparse
    products, ``O(k · E · dim)`` time and ``O(n · dim)`` memory, computed once.
    """
    if dim < 1 or hops < 0:
        raise ValueError(f"propagated features need dim >= 1 and hops >= 0, got {dim}, {hops}")
    n, dev = adj.num_nodes, adj.device
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(n, dim, generator=gen).to(dev)
    with torch.no_grad():
        for _ in range(hops):
            y = adj.propagate(y)
    y = y / y.norm(dim=1, keepdim=True).clamp(min=1e-12)
    deg = torch.zeros(n, device=dev).index_add_(
        0, adj.edge_index[0], torch.ones(adj.edge_index.size(1), device=dev))
    return torch.cat([y, torch.log1p(deg)[:, None]], 1)


__all__ = ["RAW_FEATURE_LIMIT", "check_feature_scale", "identity_features",
           "prepare_features", "propagated_features"]
