"""Embedded default: a seeded degree-corrected stochastic block model with block features.

Karrer & Newman, *Stochastic blockmodels and community structure in networks*,
Phys. Rev. E 83 (2011): ``P(A_ij = 1) = min(1, θ_i θ_j ω_{b_i b_j})`` with
heavy-tailed degree factors ``θ`` (normalised to mean 1 in each block) and
``ω`` holding ``p_in`` on the diagonal and ``p_out`` elsewhere. Features are
binary "bag of words": block ``b`` switches on its own ``feature_dim /
num_blocks`` words with probability ``q_in`` and every other word with
``q_out``, like the citation graphs. ``y`` holds the blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from graphvae.config import check_count, check_seed
from graphvae.graph import check_graph, to_simple_undirected

if TYPE_CHECKING:
    from torch_geometric.data import Data


#: The most nodes :func:`make_sbm_graph` takes (its ``n × n`` arrays: 0.8 GB each at this).
MAX_NODES = 10_000


def make_sbm_graph(num_nodes: int = 600, num_blocks: int = 4, p_in: float = 0.04,
                   p_out: float = 0.004, feature_dim: int = 64, q_in: float = 0.25,
                   q_out: float = 0.03, degree_shape: float = 2.5, seed: int = 0) -> Data:
    """Sample the default attributed graph (about 2,400 undirected edges at the defaults).
    Each node's block is drawn uniformly, so a block may be left empty. It builds ``n × n``
    arrays: at most ``MAX_NODES`` nodes (``graphvae make-graph`` plants larger graphs)."""
    for name, count in (("num_nodes", num_nodes), ("num_blocks", num_blocks),
                        ("feature_dim", feature_dim)):
        check_count(name, count)
    check_seed(seed)
    if num_nodes > MAX_NODES or num_blocks > num_nodes:
        raise ValueError(f"need 1 <= num_blocks <= num_nodes <= {MAX_NODES:,}, got "
                         f"{num_blocks} blocks of {num_nodes:,} nodes")
    for name, p in (("p_in", p_in), ("p_out", p_out), ("q_in", q_in), ("q_out", q_out)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    if not 0 < degree_shape < np.inf:
        raise ValueError(f"degree_shape must be a finite number > 0, got {degree_shape!r}")
    rng = np.random.default_rng(seed)
    blocks = np.sort(rng.integers(num_blocks, size=num_nodes))
    theta = rng.pareto(degree_shape, size=num_nodes) + 1.0
    for b in np.unique(blocks):
        theta[blocks == b] /= theta[blocks == b].mean()
    omega = np.full((num_blocks, num_blocks), p_out) + np.eye(num_blocks) * (p_in - p_out)
    prob = np.minimum(1.0, np.outer(theta, theta) * omega[blocks][:, blocks])
    upper = np.triu(rng.random((num_nodes, num_nodes)) < prob, k=1)
    src, dst = np.nonzero(upper)
    edge_index = to_simple_undirected(torch.from_numpy(np.stack([src, dst])).long(), num_nodes)
    words = np.arange(feature_dim) * num_blocks // feature_dim          # word -> its block
    q = np.where(words[None, :] == blocks[:, None], q_in, q_out)
    x = torch.from_numpy((rng.random((num_nodes, feature_dim)) < q).astype(np.float32))
    from torch_geometric.data import Data  # at first use: ~2 s to import
    data = Data(x=x, edge_index=edge_index, y=torch.from_numpy(blocks).long(),
                num_nodes=num_nodes)
    check_graph(data.x, data.edge_index, num_nodes)
    return data
