"""Planetoid citation graphs (Cora, CiteSeer, PubMed; Yang, Cohen & Salakhutdinov, ICML 2016).

Read straight from the raw ``ind.<name>.*`` files under
``ROOT/Planetoid/<Name>/raw`` with PyG's reader, so a read-only root (such as
``../shared/data``) is never written to. When the raw files are absent, PyG
downloads them into ``ROOT`` (online only).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from torch_geometric.data import Data

from graphvae.graph import check_graph, to_simple_undirected

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _raw_folder(root: Path, name: str) -> Path:
    return root / "Planetoid" / PLANETOID[name] / "raw"


def load_planetoid(name: str, root: str | os.PathLike, download: bool = True) -> Data:
    """Load ``cora``, ``citeseer`` or ``pubmed`` as an undirected graph with raw features."""
    key = name.lower()
    if key not in PLANETOID:
        raise ValueError(f"unknown Planetoid dataset {name!r}; choose one of {sorted(PLANETOID)}")
    root = Path(root)
    raw = _raw_folder(root, key)
    missing = [s for s in _SUFFIXES if not (raw / f"ind.{key}.{s}").is_file()]
    if missing:
        if not download:
            raise ValueError(f"{PLANETOID[key]} not found: {raw} lacks ind.{key}.{missing[0]} "
                             f"(set --data-root or GRAPHVAE_DATA)")
        data = _download(key, root, raw)
    else:
        from torch_geometric.io import read_planetoid_data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = read_planetoid_data(str(raw), key)
    edge_index = to_simple_undirected(data.edge_index, data.num_nodes)
    out = Data(x=data.x.float(), edge_index=edge_index, y=data.y, num_nodes=data.num_nodes)
    check_graph(out.x, out.edge_index, out.num_nodes)
    return out


def _download(key: str, root: Path, raw: Path) -> Data:
    from torch_geometric.datasets import Planetoid
    try:
        return Planetoid(str(root / "Planetoid"), PLANETOID[key])[0]
    except Exception as err:  # network errors come in many types
        raise ValueError(f"{PLANETOID[key]} not found under {raw} and the download failed "
                         f"({type(err).__name__}: {err}); offline, point --data-root or "
                         f"GRAPHVAE_DATA at a folder holding Planetoid/{PLANETOID[key]}/raw"
                         ) from None

