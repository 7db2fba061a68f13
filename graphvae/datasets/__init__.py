"""Data sets.

* One graph for link prediction (:func:`load_dataset`, :func:`load_graph_file`): Planetoid
  citation graphs, users' edge lists / GraphML / GML, a seeded synthetic default. These
  loaders return a :class:`torch_geometric.data.Data` with ``x`` (float features or
  ``None``), ``edge_index`` (simple, undirected, both directions), ``num_nodes``,
  optionally ``y`` (node classes) and ``node_names`` (the user's node ids);
  :mod:`~graphvae.datasets.link_split` holds Kipf & Welling's edge split.
* Sets of small graphs for generation (:mod:`~graphvae.datasets.graphsets`): published
  generators and the stored sets (graph6 or restricted-pickle files,
  :mod:`~graphvae.datasets.graphgen`), as lists of networkx graphs and split
  :class:`~graphvae.datasets.graphsets.GraphSet` objects. QM9 is in :mod:`graphvae.chem`.
"""

from graphvae.datasets.edge_reader import read_edge_list
from graphvae.datasets.files import load_graph_file, read_features
from graphvae.datasets.planetoid import PLANETOID, load_planetoid
from graphvae.datasets.synthetic import make_sbm_graph
from graphvae.io import resolve_data_root

LINKPRED_DATASETS = ("synthetic", *PLANETOID)


def load_dataset(name: str, data_root: str | None = None, download: bool = True, seed: int = 0):
    """Load a named data set: ``synthetic`` (embedded default) or a Planetoid graph."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a data set's name, one of "
                        f"{', '.join(LINKPRED_DATASETS)}; got {name!r}")
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
