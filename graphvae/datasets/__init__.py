"""Data sets: Planetoid citation graphs, users' files, and a seeded synthetic default.

Every loader returns a :class:`torch_geometric.data.Data` with ``x`` (float
features), ``edge_index`` (simple, undirected, both directions), ``num_nodes``,
optionally ``y`` (node classes) and ``node_names`` (the user's node ids).
"""

from graphvae.datasets.files import load_graph_file, read_edge_list, read_features
from graphvae.datasets.planetoid import PLANETOID, load_planetoid
from graphvae.datasets.synthetic import make_sbm_graph
from graphvae.io import resolve_data_root

LINKPRED_DATASETS = ("synthetic", *PLANETOID)


def load_dataset(name: str, data_root: str | None = None, download: bool = True, seed: int = 0):
    """Load a named data set: ``synthetic`` (embedded default) or a Planetoid graph."""
    key = name.lower()
    if key == "synthetic":
        return make_sbm_graph(seed=seed)
    if key in PLANETOID:
        return load_planetoid(key, resolve_data_root(data_root), download=download)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(LINKPRED_DATASETS)}")


__all__ = [
    "LINKPRED_DATASETS",
    "PLANETOID",
    "load_dataset",
    "load_graph_file",
    "load_planetoid",
    "make_sbm_graph",
    "read_edge_list",
    "read_features",
    "resolve_data_root",
]
