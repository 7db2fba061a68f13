"""Ranking metrics in torch: ROC AUC and average precision (ties handled as scikit-learn).

``roc_auc`` is the Mann–Whitney statistic ``P(s⁺ > s⁻) + ½ P(s⁺ = s⁻)``, the
area under the trapezoidal ROC curve. ``average_precision`` is
``Σ_k (R_k − R_{k−1}) P_k`` over distinct score thresholds, as
``sklearn.metrics.average_precision_score``. Both run on any device and avoid
moving scores to numpy in the training loop.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check(scores: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    scores, labels = (torch.as_tensor(v) if not isinstance(v, Tensor) else v   # lists too
                      for v in (scores, labels))
    scores, labels = scores.detach().flatten().double(), labels.detach().flatten()
    if scores.numel() != labels.numel():
        raise ValueError(f"{scores.numel()} scores but {labels.numel()} labels")
    if not bool(torch.isnan(scores).logical_not().all()):
        raise ValueError("ranking metrics need scores that are numbers: NaN among them "
                         "(a diverged model?)")
    if labels.dtype != torch.bool:
        if not bool(((labels == 0) | (labels == 1)).all()):
            raise ValueError("ranking metrics need labels 0 (negative) and 1 (positive), got "
                             "other values (±1 labels? use labels > 0)")
        labels = labels.bool()
    if labels.all() or not labels.any():
        raise ValueError("ranking metrics need at least one positive and one negative")
    return scores, labels


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve."""
    scores, labels = _check(scores, labels)
    uniq, inverse = torch.unique(scores, return_inverse=True)
    # mid-ranks: average rank of each tied group
    counts = torch.bincount(inverse, minlength=uniq.numel()).double()
    ends = torch.cumsum(counts, 0)
    mid = ends - (counts - 1) / 2
    ranks = mid[inverse]
    n_pos = labels.sum().double()
    n_neg = labels.numel() - n_pos
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def average_precision(scores: Tensor, labels: Tensor) -> float:
    """Average precision (area under the step-wise precision–recall curve)."""
    scores, labels = _check(scores, labels)
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order], labels[order].double()
    tp = torch.cumsum(y, 0)
    # the last index of each group of tied scores is a threshold
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]
    tp = tp[last]
    ranks = torch.arange(1, s.numel() + 1, device=s.device, dtype=torch.double)[last]
    precision = tp / ranks
    recall = tp / y.sum()
    delta = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((delta * precision).sum())
