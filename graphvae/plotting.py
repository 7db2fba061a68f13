"""Figures written by the CLI (matplotlib, no display needed)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from graphvae.io import atomic_path  # noqa: E402


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_roc_pr(scores: np.ndarray, labels: np.ndarray, path: str | os.PathLike,
                title: str = "") -> None:
    """ROC and precision-recall curves of held-out pairs, side by side."""
    fpr, tpr, _ = roc_curve(labels, scores)
    prec, rec, _ = precision_recall_curve(labels, scores)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    a.plot(fpr, tpr)
    a.plot([0, 1], [0, 1], "k--", lw=0.8)
    a.set(xlabel="false positive rate", ylabel="true positive rate",
          title=f"ROC (AUC {roc_auc_score(labels, scores):.3f})")
    b.plot(rec, prec)
    b.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02),
          title=f"precision-recall (AP {average_precision_score(labels, scores):.3f})")
    fig.suptitle(title)
    _save(fig, path)


def plot_latent(z: np.ndarray, path: str | os.PathLike, labels: np.ndarray | None = None,
                title: str = "") -> None:
    """2-D principal-component projection of latent means, coloured by class if given."""
    zc = z - z.mean(0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    xy = zc @ vt[:2].T if vt.shape[0] >= 2 else np.c_[zc[:, :1], np.zeros(len(zc))]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    sc = ax.scatter(xy[:, 0], xy[:, 1], s=4, c=labels if labels is not None else "tab:blue",
                    cmap="tab10" if labels is not None else None, alpha=0.8)
    if labels is not None:
        ax.legend(*sc.legend_elements(), title="class", fontsize=7, loc="best")
    ax.set(xlabel="PC 1", ylabel="PC 2", title=title or "latent means (PCA)")
    _save(fig, path)


def plot_image_rows(rows: list[tuple[str, np.ndarray]], path: str | os.PathLike,
                    image_shape: tuple[int, int] | None, title: str = "") -> None:
    """A grid of images, one labelled row per entry of ``rows`` (each ``(m, d)`` in [0, 1]).

    Without an ``image_shape`` each row set is drawn as one heat-map strip per data point.
    """
    ncol = max(len(a) for _, a in rows)
    if image_shape is None:
        fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.6 * len(rows)), squeeze=False)
        for ax, (label, arr) in zip(axes[:, 0], rows):
            ax.imshow(arr, aspect="auto", cmap="viridis", interpolation="nearest")
            ax.set_ylabel(label, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        fig, axes = plt.subplots(len(rows), ncol, figsize=(0.9 * ncol, 1.0 * len(rows)),
                                 squeeze=False)
        for r, (label, arr) in enumerate(rows):
            for c in range(ncol):
                ax = axes[r, c]
                ax.axis("off")
                if c < len(arr):
                    ax.imshow(arr[c].reshape(image_shape), cmap="gray_r", vmin=0, vmax=1,
                              interpolation="nearest")
            axes[r, 0].set_title(label, fontsize=7, loc="left")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_graph_grid(reference, generated, path: str | os.PathLike, title: str = "",
                    node_attr: str | None = None, per_row: int = 8) -> None:
    """Training graphs (first rows) above sampled graphs, spring layouts, one panel a graph.

    With ``node_attr`` (e.g. atom types) nodes are coloured by that attribute.
    """
    import networkx as nx

    rows_ref = -(-len(reference) // per_row)
    rows_gen = -(-len(generated) // per_row)
    nrows = max(1, rows_ref + rows_gen)
    fig, axes = plt.subplots(nrows, per_row, figsize=(1.6 * per_row, 1.7 * nrows),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    panels = [(g, "train") for g in reference] + [(None, "")] * (rows_ref * per_row -
                                                                 len(reference))
    panels += [(g, "sample") for g in generated]
    for ax, (g, label) in zip(axes.ravel(), panels):
        if g is None:
            continue
        pos = nx.spring_layout(g, seed=0) if g.number_of_nodes() else {}
        colors = ([g.nodes[v].get(node_attr, 0) for v in g.nodes] if node_attr
                  else "tab:blue" if label == "train" else "tab:orange")
        style = {"cmap": "tab10", "vmin": 0, "vmax": 9} if node_attr else {}
        nx.draw_networkx(g, pos, ax=ax, node_size=18, width=0.5, with_labels=False,
                         node_color=colors, **style)
        ax.set_title(f"{label} n={g.number_of_nodes()}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    _save(fig, path)
