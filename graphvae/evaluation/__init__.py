"""Evaluation: ranking metrics for link prediction (``metrics``), MMD² (``mmd``), graph
statistics and the MMD protocols of the generation literature (``graph_stats``), and
graphlet orbit counts (``orbits``)."""

from graphvae.evaluation.graph_stats import PROTOCOLS, graph_mmd, graph_summary, mmd_table
from graphvae.evaluation.metrics import average_precision, roc_auc
from graphvae.evaluation.mmd import mmd_squared
from graphvae.evaluation.orbits import orbit_counts

__all__ = ["PROTOCOLS", "average_precision", "graph_mmd", "graph_summary", "mmd_squared",
           "mmd_table", "orbit_counts", "roc_auc"]
