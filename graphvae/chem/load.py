"""Reading QM9 (``ROOT/qm9/qm9.csv``, one ``smiles`` column) in place, as molecule graphs and
as a split graph set for generation."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import networkx as nx

from graphvae.checks import is_whole
from graphvae.chem.qm9 import (
    ATOM_TYPES,
    BOND_TYPES,
    QM9_FILE,
    MolGraph,
    _ChargedMoleculeError,
    parse_smiles,
    require_rdkit,
    smiles_to_graph,
)
from graphvae.errors import DataError, quote
from graphvae.progress import steps


def _read(root: str | os.PathLike | None, limit: int | None, progress: bool,
          convert: Callable[[str], Any]) -> tuple[list[Any], dict[str, int]]:
    """The rows of ``ROOT/qm9/qm9.csv`` passed through ``convert(smiles)`` (which raises
    as :func:`parse_smiles` does), with ``load_qm9``'s checks and counts."""
    require_rdkit()
    from graphvae.io import csv_rows, resolve_data_root

    if limit is not None and (not is_whole(limit) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    path = resolve_data_root(root) / QM9_FILE
    if not path.is_file():
        raise ValueError(f"QM9 not found: no file {path} (pass --data-root or set GRAPHVAE_DATA "
                         f"to the folder holding {QM9_FILE})")
    out: list[Any] = []
    stats = {"rows": 0, "kept": 0, "skipped_charged": 0}
    rows = csv_rows(path)
    _, header = next(rows, (1, None))
    if header is None or [h.strip() for h in header] != ["smiles"]:
        raise DataError(path, f"expected the header 'smiles', got {quote(header)}", 1)
    for line, row in steps(rows, "reading QM9", progress, " rows"):
        if not any(cell.strip() for cell in row):   # a blank line holds no molecule
            continue
        if limit is not None and stats["rows"] >= limit:
            break
        stats["rows"] += 1
        if len(row) != 1:
            raise DataError(path, f"expected one SMILES column, got {quote(row)}", line)
        try:
            out.append(convert(row[0].strip()))
        except _ChargedMoleculeError:
            stats["skipped_charged"] += 1
        except ValueError as err:
            raise DataError(path, str(err), line) from None
    stats["kept"] = len(out)
    return out, stats


def load_qm9(root: str | os.PathLike | None, limit: int | None = None,
             progress: bool = False) -> tuple[list[MolGraph], dict[str, int]]:
    """Read ``ROOT/qm9/qm9.csv`` in place and convert each row with :func:`smiles_to_graph`.

    ``root`` of ``None`` means ``$GRAPHVAE_DATA``, else ``./data``. ``limit`` reads only
    the first ``limit`` data rows. Blank lines are skipped and not counted; rows with a
    charged atom are skipped and counted.
    Returns ``(graphs, stats)`` with ``stats = {"rows": data rows read, "kept": graphs
    returned, "skipped_charged": rows skipped for a charge}``. Raises ``ValueError`` if
    the file is missing, its header is not ``smiles``, or a row is not a single SMILES
    that :func:`smiles_to_graph` accepts (the message names the file line number).
    ``progress``: a bar on a terminal (:mod:`graphvae.progress`).
    """
    return _read(root, limit, progress, smiles_to_graph)


def _networkx(smiles: str) -> nx.Graph:
    """The graph-set form of a row: nodes ``0..n-1`` with ``atom``, edges with ``bond``
    (type indices), the canonical SMILES in ``graph["smiles"]``."""
    types, bonds, canonical = parse_smiles(smiles)
    g = nx.Graph(smiles=canonical)
    g.add_nodes_from((i, {"atom": t}) for i, t in enumerate(types))
    g.add_edges_from((i, j, {"bond": t}) for i, j, t in bonds)
    return g


def qm9_graph_set(root: str | os.PathLike | None, limit: int | None = None, seed: int = 0,
                  progress: bool = False):
    """QM9 as a split :class:`~graphvae.datasets.graphsets.GraphSet` of typed graphs (``atom``
    and ``bond`` attributes), with the training SMILES for novelty."""
    from graphvae.datasets.graphsets import GraphSet, split_graphs

    graphs, stats = _read(root, limit, progress, _networkx)
    sp = split_graphs(graphs, seed)
    return GraphSet("qm9", sp.train, sp.valid, sp.test, "atom", "bond", len(ATOM_TYPES),
                    len(BOND_TYPES), {g.graph["smiles"] for g in sp.train},
                    {**sp.sizes(), **stats})
