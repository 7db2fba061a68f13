"""What ``graphvae linkpred --out DIR`` writes, every file atomically:

``metrics.json``, ``model.pt`` (checkpoint, written by the training loop),
``embeddings.csv`` (node id and latent mean), ``predicted_links.csv`` (top-k
new links with probabilities), ``roc_pr.png`` and ``latent.png``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphvae.io import write_json, write_text
from graphvae.plotting import plot_latent, plot_roc_pr
from graphvae.tasks.link_prediction import LinkPredResult, top_new_links


def _csv(rows: list[list[Any]], header: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def export_link_prediction(out: Path, result: LinkPredResult, summary: dict[str, Any],
                           edge_index: torch.Tensor, names: list[str] | None,
                           labels: torch.Tensor | None, top_k: int = 100) -> list[Path]:
    """Write embeddings, predicted links, plots and metrics; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    z = result.z.cpu()
    n = z.size(0)
    names = names or [str(i) for i in range(n)]
    written = []
    emb = [[names[i], *(f"{v:.6g}" for v in z[i].tolist())] for i in range(n)]
    written.append(write_text(_csv(emb, ["node", *(f"z{j}" for j in range(z.size(1)))]),
                              out / "embeddings.csv"))
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
    plot_roc_pr(scores, y, out / "roc_pr.png", title="test pairs")
    plot_latent(z.numpy(), out / "latent.png", None if labels is None else labels.numpy())
    written += [out / "roc_pr.png", out / "latent.png", write_json(summary, out / "metrics.json")]
    return written
