"""Figures written by the CLI (matplotlib, no display needed)."""

from __future__ import annotations

import numbers
import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
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
    if not np.isfinite(np.asarray(scores, dtype=float)).all():
        raise ValueError("plot_roc_pr: the scores hold NaN or infinite values")
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
    """2-D principal-component projection of latent means, coloured by class if given; a
    1-d latent is drawn along one axis (the vertical one carries nothing)."""
    if not np.isfinite(np.asarray(z, dtype=float)).all():
        raise ValueError("plot_latent: the latents hold NaN or infinite values")
    zc = z - z.mean(0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    one_d = z.shape[1] < 2
    xy = zc[:, :1] if one_d else zc @ vt[:2].T
    xy = np.c_[xy, np.zeros((len(zc), 2 - xy.shape[1]))]  # one column: one node or 1-d
    fig, ax = plt.subplots(figsize=(5.5, 5))
    sc = ax.scatter(xy[:, 0], xy[:, 1], s=4, c=labels if labels is not None else "tab:blue",
                    cmap="tab10" if labels is not None else None, alpha=0.8)
    if labels is not None:
        ax.legend(*sc.legend_elements(), title="class", fontsize=7, loc="best")
    if one_d:
        ax.set(xlabel="latent mean (1-d latent)", title=title or "latent means")
        ax.set_yticks([])
    else:
        ax.set(xlabel="PC 1", ylabel="PC 2", title=title or "latent means (PCA)")
    _save(fig, path)


def plot_image_rows(rows: list[tuple[str, np.ndarray]], path: str | os.PathLike,
                    image_shape: tuple[int, int] | None, title: str = "") -> None:
    """A grid of images, one labelled row per entry of ``rows`` (each ``(m, d)`` in [0, 1]).

    Each row is one strip of its images side by side (:func:`image_strip`), drawn on one
    panel: an axes per image made matplotlib spend three quarters of a short vector run
    on its ticks. Without an ``image_shape`` each row set is drawn as one heat-map strip
    per data point.
    """
    if not rows or not any(len(a) for _, a in rows):
        raise ValueError("plot_image_rows: no images to draw")
    ncol = max(len(a) for _, a in rows)
    if image_shape is None:
        fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.6 * len(rows)), squeeze=False)
        for ax, (label, arr) in zip(axes[:, 0], rows):
            ax.imshow(arr, aspect="auto", cmap="viridis", interpolation="nearest")
            ax.set_ylabel(label, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        fig, axes = plt.subplots(len(rows), 1, figsize=(0.9 * ncol, 1.0 * len(rows)),
                                 squeeze=False)
        cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
        for ax, (label, arr) in zip(axes[:, 0], rows):
            ax.axis("off")
            ax.imshow(image_strip(arr, image_shape, ncol), cmap=cmap, vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_title(label, fontsize=7, loc="left")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def image_strip(images: np.ndarray, image_shape: tuple[int, int], ncol: int) -> np.ndarray:
    """``images`` (``(m, h·w)``, ``m <= ncol``) as one ``h × (ncol·(w + gap) − gap)`` array,
    side by side with a gap of a quarter of a width (at least 1) between them; the gaps
    and the places of missing images are NaN (drawn blank)."""
    h, w = image_shape
    gap = max(1, w // 4)
    strip = np.full((h, ncol * (w + gap) - gap), np.nan)
    for c, image in enumerate(np.asarray(images, dtype=float)[:ncol]):
        strip[:, c * (w + gap):c * (w + gap) + w] = image.reshape(h, w)
    return strip


def plot_training(history: list[dict[str, float]], path: str | os.PathLike,
                  weights_epoch: int | None = None, score_label: str = "validation score",
                  title: str = "", train_label: str = "training bound (nats per item)"
                  ) -> None:
    """The training curve of a :class:`~graphvae.training.FitResult` history: the training
    bound an epoch (left) and, where epochs were evaluated, the validation score (right),
    with a dashed line at ``weights_epoch``, the epoch whose weights were kept."""
    rows = [r for r in history if "epoch" in r]
    if not rows:
        raise ValueError("plot_training: the history has no epochs to draw")
    scored = [r for r in rows if "score" in r]
    fig, axes = plt.subplots(1, 2 if scored else 1, figsize=(10 if scored else 5.5, 3.6),
                             squeeze=False, sharex=True, layout="constrained")
    panels = [(axes[0, 0], [r for r in rows if "train_bound" in r], "train_bound",
               train_label)]
    if scored:
        panels.append((axes[0, 1], scored, "score", score_label))
    first, last = min(r["epoch"] for r in rows), max(r["epoch"] for r in rows)
    for ax, points, key, label in panels:
        ax.plot([r["epoch"] for r in points], [r[key] for r in points],
                marker="." if len(points) < 50 else None, lw=1.2)
        if weights_epoch:
            ax.axvline(weights_epoch, color="k", ls="--", lw=0.8,
                       label=f"weights kept (epoch {weights_epoch})")
            ax.legend(fontsize=8, loc="lower right")
        # a label longer than the panel is tall ran into the title and the next panel
        ax.set(xlabel="epoch", ylabel=textwrap.fill(label, 34, break_on_hyphens=False))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if last - first < 2:  # MaxNLocator falls back to fractional ticks on so short a span
            ax.set_xticks(range(int(first), int(last) + 1))
            ax.set_xlim(first - 0.5, last + 0.5)
    if title:
        fig.suptitle(title)
    _save(fig, path)


#: Graphs larger than this are not laid out in a grid panel (the largest of the package's
#: graph sets has 361 nodes; a spring layout costs O(n²) a step).
DRAW_MAX_NODES = 500


def plot_graph_grid(reference, generated, path: str | os.PathLike, title: str = "",
                    node_attr: str | None = None, per_row: int = 8,
                    atom_names: list[str] | None = None,
                    notes: list[str] | None = None) -> None:
    """Training graphs (first rows) above sampled graphs, one panel a graph.

    With ``node_attr`` (e.g. atom types) nodes are coloured by that attribute. With
    ``atom_names`` (the element of each ``node_attr`` index) the graphs are drawn as
    molecules instead: RDKit's 2D depiction where RDKit can lay the graph out (as drawn,
    without sanitizing, so invalid samples show too; else a spring layout), element
    symbols for all but carbon, and a bond's ``bond`` attribute (0 single, 1 double,
    2 triple) as that many parallel lines. ``notes``: a word under each sample's title
    (e.g. why it is invalid). A graph of more than :data:`DRAW_MAX_NODES` nodes gets its
    title only: a spring layout of 5,000 nodes takes most of a minute.
    """
    import networkx as nx

    rows_ref = -(-len(reference) // per_row)
    rows_gen = -(-len(generated) // per_row)
    nrows = max(1, rows_ref + rows_gen)
    fig, axes = plt.subplots(nrows, per_row, figsize=(1.6 * per_row, 1.7 * nrows),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    panels = [(g, "train", "") for g in reference] + [(None, "", "")] * (
        rows_ref * per_row - len(reference))
    notes = list(notes or []) + [""] * (len(generated) - len(notes or []))
    panels += [(g, "sample", note) for g, note in zip(generated, notes)]
    for ax, (g, label, note) in zip(axes.ravel(), panels):
        if g is None:
            continue
        heading = f"{label} n={g.number_of_nodes()}" + (f"\n{note}" if note else "")
        ax.set_title(heading, fontsize=7)
        if g.number_of_nodes() > DRAW_MAX_NODES:
            ax.text(0.5, 0.5, "too large\nto draw", ha="center", va="center", fontsize=7,
                    transform=ax.transAxes)
            continue
        if atom_names is not None and node_attr is not None:
            _draw_molecule(ax, g, node_attr, atom_names)
            continue
        pos = nx.spring_layout(g, seed=0) if g.number_of_nodes() else {}
        colors = ([g.nodes[v].get(node_attr, 0) for v in g.nodes] if node_attr
                  else "tab:blue" if label == "train" else "tab:orange")
        style = {"cmap": "tab10", "vmin": 0, "vmax": 9} if node_attr else {}
        nx.draw_networkx(g, pos, ax=ax, node_size=18, width=0.5, with_labels=False,
                         node_color=colors, **style)
    if title:
        fig.suptitle(title, fontsize=9)
    _save(fig, path)


#: Element colours of the molecule panels (CPK-like); other elements black.
ELEMENT_COLORS = {"C": "0.25", "N": "tab:blue", "O": "tab:red", "F": "tab:green"}


def _element(g, v, node_attr: str, atom_names: list[str]) -> str:
    """The element of node ``v``: ``atom_names[type]``, or ``"*"`` for a node without a
    type in range (drawn as RDKit's dummy atom)."""
    t = g.nodes[v].get(node_attr)
    ok = isinstance(t, numbers.Integral) and not isinstance(t, bool)   # numpy ints too
    return atom_names[int(t)] if ok and 0 <= t < len(atom_names) else "*"


def _molecule_layout(g, node_attr: str, atom_names: list[str]) -> dict:
    """2D positions of ``g``'s nodes: RDKit's depiction of the graph as drawn (no
    sanitizing), or a spring layout where RDKit is missing or cannot lay it out."""
    import networkx as nx

    nodes = list(g.nodes)
    try:
        from rdkit import Chem
        from rdkit.Chem import rdDepictor

        index = {v: k for k, v in enumerate(nodes)}
        mol = Chem.RWMol()
        for v in nodes:
            mol.AddAtom(Chem.Atom(_element(g, v, node_attr, atom_names)))
        for a, b in g.edges:
            mol.AddBond(index[a], index[b], Chem.BondType.SINGLE)
        mol = mol.GetMol()
        mol.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(mol)
        rdDepictor.Compute2DCoords(mol)
        xy = mol.GetConformer().GetPositions()[:, :2]
        return {v: xy[index[v]] for v in nodes}
    except Exception:   # no RDKit, or a graph it cannot depict: any layout will do
        return nx.spring_layout(g, seed=0) if nodes else {}


def _draw_molecule(ax, g, node_attr: str, atom_names: list[str]) -> None:
    """``g`` on ``ax`` as a molecule (see :func:`plot_graph_grid`)."""
    pos = _molecule_layout(g, node_attr, atom_names)
    if not pos:
        return
    lengths = [float(np.linalg.norm(np.subtract(pos[a], pos[b]))) for a, b in g.edges]
    gap = 0.15 * (float(np.median(lengths)) if lengths else 1.0)
    for a, b, data in g.edges(data=True):
        p, q = np.asarray(pos[a], float), np.asarray(pos[b], float)
        d = q - p
        normal = np.array([-d[1], d[0]]) / (np.linalg.norm(d) or 1.0)
        order = min(max(int(data.get("bond", 0)) + 1, 1), 3)       # 1..3 lines, whatever
        # a line on the axis; a double bond's second line beside it, a triple's either side,
        # each extra line shortened so that the atoms stay readable
        for off in ([0.0], [0.0, 1.0], [-1.0, 0.0, 1.0])[order - 1]:
            trim = 0.0 if off == 0.0 else 0.15
            s_, e_ = p + trim * d + off * gap * normal, q - trim * d + off * gap * normal
            ax.plot([s_[0], e_[0]], [s_[1], e_[1]], color="0.25", linewidth=0.8, zorder=1)
    for v in g.nodes:
        element = _element(g, v, node_attr, atom_names)
        x, y = pos[v]
        color = ELEMENT_COLORS.get(element, "black")
        if element == "C":
            ax.scatter([x], [y], s=4, color=color, zorder=2)
        else:
            ax.text(x, y, element, color=color, fontsize=7, ha="center", va="center",
                    zorder=3, bbox={"boxstyle": "circle,pad=0.05", "fc": "white",
                                    "ec": "none"})
    # square limits around the atoms, never empty (one atom, or atoms in a line)
    xy = np.array([pos[v] for v in g.nodes], dtype=float)
    centre = (xy.max(0) + xy.min(0)) / 2
    half = float(np.ptp(xy, axis=0).max()) / 2 + 4 * gap
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal")
