"""Small-graph generation sets stored as pickled lists of networkx graphs (GDSS's
``data/*.pkl``: community-small, ego-small, grid, ENZYMES; see ``../shared/data/README.md``).

Pickles can run code when loaded, so they are read with a restricted unpickler
that resolves only networkx, numpy and builtin container classes.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import networkx as nx

GRAPHGEN_FILES = {"community-small": "community_small.pkl", "ego-small": "ego_small.pkl",
                  "grid": "grid.pkl", "enzymes": "ENZYMES.pkl"}
_ALLOWED_BUILTINS = {"dict", "list", "set", "frozenset", "tuple", "int", "float", "str",
                     "bool", "complex", "bytes", "bytearray", "slice", "range", "object",
                     "getattr"}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        top = module.split(".")[0]
        if top in ("networkx", "numpy") or (top == "builtins" and name in _ALLOWED_BUILTINS) \
                or (module == "collections" and name in ("OrderedDict", "defaultdict")) \
                or (module == "copy_reg" or module == "copyreg") and name == "_reconstructor":
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a graph pickle")


def load_graph_pickle(path: str | os.PathLike) -> list[nx.Graph]:
    """A list of networkx graphs from a pickle, loaded with the restricted unpickler."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such graph file: {path}")
    with open(path, "rb") as fh:
        try:
            graphs = _RestrictedUnpickler(fh).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
            raise ValueError(f"{path}: not a readable graph pickle ({err})") from None
    if not isinstance(graphs, list) or not all(isinstance(g, nx.Graph) for g in graphs):
        raise ValueError(f"{path}: expected a list of networkx graphs")
    return [nx.Graph(g) for g in graphs]


def load_graphgen(name: str, root: str | os.PathLike) -> list[nx.Graph]:
    """One of ``GRAPHGEN_FILES`` from ``ROOT/graphgen/``."""
    key = name.lower()
    if key not in GRAPHGEN_FILES:
        raise ValueError(f"unknown graph set {name!r}; choose one of {sorted(GRAPHGEN_FILES)}")
    return load_graph_pickle(Path(root) / "graphgen" / GRAPHGEN_FILES[key])
