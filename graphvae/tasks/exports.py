"""What ``graphvae linkpred --out DIR`` writes, every file atomically:

``metrics.json``, ``model.pt`` (checkpoint of the kept weights, written after training),
``embeddings.csv`` (node id and latent mean), ``predicted_links.csv`` (top-k
new links with probabilities), ``roc_pr.png``, ``latent.png`` and ``training.png``
(the first seed's training curve).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphvae.io import atomic_path, write_json, write_text
from graphvae.plotting import plot_latent, plot_roc_pr, plot_training
from graphvae.tasks.link_prediction import LinkPredResult
from graphvae.tasks.link_scores import top_new_links


def _csv(rows: list[list[Any]], header: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


#: Most nodes drawn in ``latent.png`` (a seeded random subset beyond).
PLOT_NODES = 20_000


def _plot_subset(n: int) -> torch.Tensor:
    if n <= PLOT_NODES:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:PLOT_NODES].sort()[0]


def _write_embeddings(z: torch.Tensor, names: list[str], path: Path) -> Path:
    """``node,z0,z1,...`` with pyarrow's CSV writer (10⁶ rows in seconds), atomically."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    cols = {"node": pa.array(names, pa.string())}
    cols.update({f"z{j}": pa.array(z[:, j].numpy()) for j in range(z.size(1))})
    # through an open file: pyarrow takes a path as UTF-8 text, which a file name of
    # other bytes is not (``--out $'o\xff'`` failed after training)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pcsv.write_csv(pa.table(cols), fh,
                       pcsv.WriteOptions(quoting_style="needed", delimiter=","))
    return path


def export_link_prediction(out: Path, result: LinkPredResult, summary: dict[str, Any],
                           edge_index: torch.Tensor, names: list[str] | None,
                           labels: torch.Tensor | None, top_k: int = 100) -> list[Path]:
    """Write embeddings, predicted links, plots and metrics; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    z = result.z.cpu()
    n = z.size(0)
    names = names or [str(i) for i in range(n)]
    written = []
    written.append(_write_embeddings(z, names, out / "embeddings.csv"))
    pairs, probs = top_new_links(result.model, result.z, edge_index.to(result.z.device), top_k)
    links = [[names[int(i)], names[int(j)], f"{float(p):.6f}"]
             for (i, j), p in zip(pairs.t().tolist(), probs.tolist())]
    written.append(write_text(_csv(links, ["source", "target", "probability"]),
                              out / "predicted_links.csv"))
    s = result.split
    with torch.no_grad():
        scores = torch.cat([result.model.score(result.z, s.test_pos),
                            result.model.score(result.z, s.test_neg)]).cpu().numpy()
    y = np.r_[np.ones(s.test_pos.size(1)), np.zeros(s.test_neg.size(1))]
    seed = f"seed {result.metrics['seed']}"       # the files show the first seed's run
    plot_roc_pr(scores, y, out / "roc_pr.png", title=f"test pairs, {seed}")
    shown = _plot_subset(n)
    plot_latent(z[shown].numpy(), out / "latent.png",
                None if labels is None else labels[shown].numpy(),
                title=f"latent means (PCA), {seed}" if shown.numel() == n else
                f"latent means (PCA), {shown.numel():,} of {n:,} nodes, {seed}")
    plot_training(result.fit.history, out / "training.png", result.fit.weights_epoch,
                  "validation AUC + AP", f"{result.metrics['config']['model']}, seed "
                  f"{result.metrics['seed']}",
                  "training bound (nats, the whole graph)" if "train_bound_nats" in
                  result.metrics else "training log p(A | Z = μ) (nats; not a bound)")
    written += [out / "roc_pr.png", out / "latent.png", out / "training.png",
                write_json(summary, out / "metrics.json")]
    return written
