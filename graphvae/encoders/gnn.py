"""One GNN template for every encoder kind, with a Gaussian (or point) readout.

Kipf & Welling, *Variational Graph Auto-Encoders*, 2016
(https://arxiv.org/abs/1611.07308):

.. math::
    H = \\mathrm{GNN}_φ(X, A), \\quad [μ, \\log σ^2] = \\mathrm{Readout}_φ(H), \\quad
    q(Z | X, A) = Π_i N(Z_i | μ_i, \\mathrm{diag}\\, σ_i^2)

The template stacks ``len(hidden_channels)`` message-passing layers with an
activation and dropout after each, and a last layer of the same kind as the
readout with ``2 · latent`` outputs (``μ``, ``log σ²``) or ``latent`` outputs (a
point code for GAE). ``hidden_channels=()`` is the one-layer linear encoder
``Z = Â X W`` of Salha et al. (2020). Each kind is a one-line ``init_conv``.

Args:
    in_channels: feature dimension ``d``.
    hidden_channels: widths of the hidden layers (default ``(32,)``).
    latent_channels: latent dimension ``k`` (default 16).
    conv: ``"gcn"``, ``"gcn-bias"`` (with a bias, as PyG's ``GCNConv``), ``"sage"``,
        ``"gin"`` or ``"gat"``.
    variational: Gaussian head (``True``) or point code (``False``).
    dropout: dropout probability on hidden representations (default 0).

Shapes:
    input: ``x (n, d)`` (dense or sparse COO), ``adj`` an :class:`~graphvae.adjacency.Adjacency`
    or ``edge_index (2, E)``; output: a posterior over ``(n, k)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphvae.adjacency import Adjacency
from graphvae.bounds.gaussian import DiagGaussian, PointMass
from graphvae.checks import (
    MAX_FEATURES,
    check_count,
    check_width_list,
    check_widths,
    is_whole,
)
from graphvae.graph import is_sparse, to_dense


def check_dropout(p: float) -> None:
    """A one-line ``ValueError`` unless ``p`` is a probability in ``[0, 1)`` (1.5 built an
    encoder that failed at its first training step; 1 drops everything)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout must lie in [0, 1), got {p!r}")


def encoder_inputs(x: Tensor, adj: Adjacency | Tensor, in_channels: int,
                   dtype: torch.dtype | None = None) -> tuple[Tensor, Adjacency]:
    """``(x, adj)``: ``x`` in the weights' ``dtype`` where given (``torch.from_numpy``
    gives float64, which failed inside a matrix product with float32 weights, naming no
    argument), and ``adj`` as an :class:`Adjacency` over its rows; a one-line
    ``ValueError`` unless ``x`` is ``(n, in_channels)`` floating-point features of
    ``adj``'s ``n`` nodes (features of another width failed inside a matrix product)."""
    if not isinstance(x, Tensor) or x.dim() != 2 or x.size(1) != in_channels:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be node features of shape (n, {in_channels}), got {got}")
    if not x.is_floating_point():
        raise ValueError(f"x must hold floating-point features, got {x.dtype}")
    adj = adj if isinstance(adj, Adjacency) else Adjacency(adj, x.size(0))
    if adj.num_nodes != x.size(0):
        raise ValueError(f"x has {x.size(0)} rows for a graph of {adj.num_nodes} nodes")
    return (x if dtype is None or x.dtype == dtype else x.to(dtype)), adj


def _matmul(x: Tensor, weight: Tensor) -> Tensor:
    return torch.sparse.mm(x, weight) if is_sparse(x) else x @ weight


class GCNLayer(nn.Module):
    """Graph convolution ``H' = Â H W + b``, ``Â = D^-1/2 (A + I) D^-1/2`` (Kipf & Welling 2017).

    Same operator as PyG's ``GCNConv`` (whose bias is on by default; here ``bias=False``
    by default, as in Kipf & Welling's GAE, and the ``gcn-bias`` encoder has one); it
    reads ``Â`` from the :class:`~graphvae.adjacency.Adjacency` (built once per graph, not per
    layer) and
    accepts sparse input features, as in the reference TensorFlow code.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: Tensor, adj: Adjacency, data: bool = False) -> Tensor:
        """``data=True``: ``x`` is the model's input, fixed between steps; a dense one is
        propagated once (:meth:`~graphvae.adjacency.Adjacency.propagate_input`) and every
        step is ``(Â X) W``. Otherwise ``Â`` multiplies the narrower of ``X`` and ``X W``
        (the same product by associativity, fewer columns through the sparse product)."""
        if data and not is_sparse(x) and not x.requires_grad:
            h = adj.propagate_input(x) @ self.weight          # (n, out)
        elif not is_sparse(x) and x.size(1) < self.weight.size(1):
            h = adj.propagate(x) @ self.weight
        else:
            h = adj.propagate(_matmul(x, self.weight))        # Â (X W), (n, out)
        return h if self.bias is None else h + self.bias


#: The most entries of sparse input features a PyG layer (sage, gin, gat) densifies
#: (512 MB in float32): a featureless graph's identity is ``n × n``, 40 GB at 10⁵ nodes.
MAX_DENSIFIED = 1 << 27


class _PyGLayer(nn.Module):
    """Adapter: a PyG convolution called as ``conv(x, adj.edge_index)`` on dense ``x``.
    Sparse ``x`` is densified (PyG's layers take dense features); past
    :data:`MAX_DENSIFIED` entries that is a one-line ``ValueError`` instead."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor, adj: Adjacency) -> Tensor:
        if is_sparse(x) and x.size(0) * x.size(1) > MAX_DENSIFIED:
            raise ValueError(f"the {type(self.conv).__name__} encoder layer takes dense "
                             f"features, and these sparse ones would be {x.size(0):,} × "
                             f"{x.size(1):,} floats (a featureless graph's identity is n × n): "
                             f"use --encoder gcn, gcn-bias, linear or gnae, which keep them "
                             f"sparse, or --feature-mode propagated")
        return self.conv(to_dense(x), adj.edge_index)


def _gin(i: int, o: int) -> nn.Module:
    from torch_geometric.nn import GINConv  # PyG's layers at first use: ~2 s to import
    return _PyGLayer(GINConv(nn.Sequential(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o))))


def _sage(i: int, o: int) -> nn.Module:
    from torch_geometric.nn import SAGEConv
    return _PyGLayer(SAGEConv(i, o))


def _gat(i: int, o: int) -> nn.Module:
    from torch_geometric.nn import GATConv
    return _PyGLayer(GATConv(i, o, heads=1))


CONVS: dict[str, Callable[[int, int], nn.Module]] = {
    "gcn": lambda i, o: GCNLayer(i, o),
    "gcn-bias": lambda i, o: GCNLayer(i, o, bias=True),   # PyG's GCNConv has a bias
    "sage": _sage,
    "gin": _gin,
    "gat": _gat,
}


class GNNEncoder(nn.Module):
    """GNN template with a Gaussian or point readout (see the module docstring)."""

    def __init__(self, in_channels: int, hidden_channels: Sequence[int] = (32,),
                 latent_channels: int = 16, conv: str = "gcn", variational: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        check_conv(conv)
        check_encoder_widths(in_channels, hidden_channels, latent_channels)
        check_dropout(dropout)
        dims = [in_channels, *hidden_channels]
        self.layers = nn.ModuleList(self.init_conv(conv, a, b) for a, b in zip(dims, dims[1:]))
        out = 2 * latent_channels if variational else latent_channels
        self.head = self.init_conv(conv, dims[-1], out)
        self.variational = variational
        self.in_channels, self.latent_channels = in_channels, latent_channels
        self.dropout = dropout

    @staticmethod
    def init_conv(kind: str, in_channels: int, out_channels: int) -> nn.Module:
        return CONVS[kind](in_channels, out_channels)

    def forward(self, x: Tensor, adj: Adjacency | Tensor) -> DiagGaussian | PointMass:
        x, adj = encoder_inputs(x, adj, self.in_channels, next(self.parameters()).dtype)
        h = x
        for k, layer in enumerate(self.layers):
            h = F.relu(_conv(layer, h, adj, k == 0))                   # (n, hidden)
            h = F.dropout(h, self.dropout, self.training)
        out = _conv(self.head, h, adj, not self.layers)                # (n, 2k) or (n, k)
        if not self.variational:
            return PointMass(out)
        loc, logvar = out.split(self.latent_channels, dim=-1)          # (n, k) each
        return DiagGaussian(loc, logvar)


def _conv(layer: nn.Module, h: Tensor, adj: Adjacency, first: bool) -> Tensor:
    """A layer's output; a GCN layer is told whether ``h`` is the model's input."""
    return layer(h, adj, data=True) if first and isinstance(layer, GCNLayer) else layer(h, adj)


class _SparseLinear(nn.Linear):
    """``nn.Linear`` that also takes sparse input (``X W`` as a sparse-dense product)."""

    def forward(self, x: Tensor) -> Tensor:
        return _matmul(x, self.weight.t()) + self.bias if is_sparse(x) else super().forward(x)


class GNAEEncoder(nn.Module):
    """Graph normalised encoder: ``μ = Â (s · rownorm(X W + b))`` (Ahn & Kim, CIKM 2021).

    Ahn & Kim, *Variational Graph Normalized AutoEncoders*
    (https://arxiv.org/abs/2108.08046): L2-normalising each node's code before
    one propagation step keeps isolated and low-degree nodes from collapsing to
    small norms. The variational head adds ``log σ² = Â (X W' + b')``. The
    reference code (``SeongJinAhn/VGNAE``) uses ``s = 1.8`` and 128 channels.
    ``hidden_channels`` is unused (one layer), kept for the registry signature.
    """

    def __init__(self, in_channels: int, hidden_channels: Sequence[int] = (),
                 latent_channels: int = 128, variational: bool = False, dropout: float = 0.0,
                 scale: float = 1.8, steps: int = 1, alpha: float = 0.0):
        super().__init__()
        check_encoder_widths(in_channels, hidden_channels, latent_channels)
        check_dropout(dropout)
        check_count("GNAE steps", steps)
        if not 0 <= alpha <= 1 or not 0 < scale < math.inf:
            raise ValueError(f"GNAE needs alpha in [0, 1] and a finite scale > 0, got "
                             f"{alpha!r}, {scale!r}")
        self.steps, self.alpha = steps, alpha
        self.in_channels = in_channels
        self.lin = _SparseLinear(in_channels, latent_channels)
        self.lin_logvar = _SparseLinear(in_channels, latent_channels) if variational else None
        self.scale = scale
        self.dropout = dropout
        self.variational = variational
        self.latent_channels = latent_channels

    def _propagate(self, h: Tensor, adj: Adjacency) -> Tensor:
        """APPNP steps ``h ← (1 − α) Â h + α h₀`` (one plain GCN step at the defaults)."""
        h0 = h
        for _ in range(self.steps):
            h = adj.propagate(h)
            h = (1 - self.alpha) * h + self.alpha * h0 if self.alpha else h
        return h

    def forward(self, x: Tensor, adj: Adjacency | Tensor) -> DiagGaussian | PointMass:
        x, adj = encoder_inputs(x, adj, self.in_channels, next(self.parameters()).dtype)
        h = F.normalize(self.lin(x), p=2.0, dim=-1) * self.scale         # (n, k)
        h = F.dropout(h, self.dropout, self.training)
        loc = self._propagate(h, adj)                                    # (n, k)
        if self.lin_logvar is None:
            return PointMass(loc)
        return DiagGaussian(loc, self._propagate(self.lin_logvar(x), adj))


def _template(conv: str) -> Callable[..., nn.Module]:
    def build(in_channels: int, hidden_channels: Sequence[int], latent_channels: int,
              variational: bool, dropout: float) -> nn.Module:
        return GNNEncoder(in_channels, hidden_channels, latent_channels, conv, variational,
                          dropout)
    return build


def _linear(in_channels: int, hidden_channels: Sequence[int], latent_channels: int,
            variational: bool, dropout: float) -> nn.Module:
    return GNNEncoder(in_channels, (), latent_channels, "gcn", variational, dropout)


ENCODERS: dict[str, Callable[..., nn.Module]] = {
    **{name: _template(name) for name in CONVS},
    "linear": _linear,
    "gnae": GNAEEncoder,
}


def check_conv(conv: str) -> None:
    """A one-line ``ValueError`` unless ``conv`` names a layer kind of ``CONVS``."""
    if not isinstance(conv, str) or conv not in CONVS:
        raise ValueError(f"unknown conv {conv!r}; choose one of {sorted(CONVS)}")


def check_encoder_widths(in_channels: int, hidden_channels: Sequence[int],
                         latent_channels: int) -> None:
    """A one-line ``ValueError`` unless the input has 1 to ``MAX_FEATURES`` features and
    every layer and the latent a width from 1 to ``MAX_WIDTH`` (a width of 0 built a model
    that trained on nothing, a negative one failed inside torch)."""
    check_count("in_channels", in_channels, maximum=MAX_FEATURES)
    check_width_list("hidden_channels", hidden_channels, allow_empty=True)
    check_widths("latent_channels", latent_channels)


def build_encoder(name: str, in_channels: int, hidden_channels: Sequence[int] = (32,),
                  latent_channels: int = 16, variational: bool = True,
                  dropout: float = 0.0) -> nn.Module:
    """Construct an encoder by registry name (``ENCODERS``); one hidden width may be
    given as an int."""
    if is_whole(hidden_channels):
        hidden_channels = (hidden_channels,)
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return ENCODERS[name](in_channels, hidden_channels, latent_channels, variational, dropout)
