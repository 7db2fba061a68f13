"""The planted model beside a link-prediction run (``graphvae linkpred --planted``, from
``graphvae make-graph``): checking that the graph is the one it was drawn for
(:func:`check_planted_graph`), and the oracle's test AUC / AP (:func:`oracle_metrics`),
the ceiling a model of that graph can reach.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphvae.datasets.link_split import LinkSplit
from graphvae.evaluation.metrics import average_precision, roc_auc


def planted_ids(planted: Any, num_nodes: int, names: list[str] | None) -> Tensor:
    """The planted model's node of each graph node (``int(names[i])``, or ``i``); a one-line
    ``ValueError`` naming a node the planted model lacks (checked before training)."""
    if names is None:
        ids = torch.arange(num_nodes)
    else:
        try:
            ids = torch.tensor([int(s) for s in names], dtype=torch.long)
        except (ValueError, OverflowError):
            raise ValueError("the planted model's nodes are integers, but the graph has "
                             "node ids that are not") from None
    bad = (ids < 0) | (ids >= planted.num_nodes)
    if bool(bad.any()):
        raise ValueError(f"the graph names node {int(ids[bad][0])}, but the planted model has "
                         f"nodes 0 … {planted.num_nodes - 1}: not the graph it was made with")
    return ids


def check_planted_graph(planted: Any, data: Any) -> None:
    """A one-line ``ValueError`` unless ``data`` is the graph ``planted`` was drawn for:
    its nodes are the planted model's, and, where the planted file records the graph's
    :func:`~graphvae.datasets.planted.edge_fingerprint` (make-graph's do), its edges are that
    graph's. Another graph's planted file gave an "oracle" below chance (AUC 43.5)."""
    from graphvae.datasets.planted import edge_fingerprint
    ids = planted_ids(planted, data.num_nodes, getattr(data, "node_names", None))
    if planted.graph is not None and \
            edge_fingerprint(ids[data.edge_index.cpu()], planted.num_nodes) != planted.graph:
        raise ValueError("the planted parameters were drawn for another graph than this one "
                         "(their edges differ): give the edge list make-graph wrote with them")


def oracle_metrics(planted: Any, split: LinkSplit, names: list[str] | None
                   ) -> dict[str, float]:
    """AUC / AP of the planted model's edge probabilities on the test pairs (node ``i`` of
    the graph is the planted model's node ``int(names[i])``)."""
    from graphvae.datasets.planted import oracle_scores

    ids = planted_ids(planted, split.num_nodes, names)
    pos, neg = ids[split.test_pos.cpu()], ids[split.test_neg.cpu()]
    scores = torch.cat([torch.as_tensor(oracle_scores(planted, p.numpy()))
                        for p in (pos, neg)])
    labels = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))])
    return {"oracle_test_auc": roc_auc(scores, labels),
            "oracle_test_ap": average_precision(scores, labels)}


__all__ = ["check_planted_graph", "oracle_metrics", "planted_ids"]
