"""Decoding generated molecule graphs and scoring them (validity, uniqueness, novelty).

A decoder gives atom types (or atom-type logits), edge probabilities ``(n, n)`` and
bond-type scores ``(n, n, 3)`` over ``BOND_TYPES``. Two decodings turn these into
atom types and a dense bond-code matrix (0 none, 1 single, 2 double, 3 triple; see
:mod:`graphvae.chem.qm9`):

* :func:`plain_decode` thresholds the edge probabilities and takes the most
  probable bond type, with no chemistry: the "without correction" decoding.
* :func:`valency_aware_decode` never exceeds an atom's valence and gives a
  connected graph whenever the valences allow one.

Both average each matrix with its transpose first, so pair ``{i, j}`` uses
``(P[i, j] + P[j, i]) / 2``; the diagonal is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from graphvae.chem.qm9 import (
    ATOM_TYPES,
    BOND_TYPES,
    VALENCE,
    graph_to_mol,
    is_valid,
    mol_to_smiles,
    require_rdkit,
)

_VALENCE_BY_INDEX = tuple(VALENCE[symbol] for symbol in ATOM_TYPES)


def _node_types(node_input: Tensor | Sequence[int]) -> Tensor:
    """Atom types (n,) from integer types (n,) or from logits (n, len(ATOM_TYPES)) by argmax."""
    x = node_input.detach().cpu() if isinstance(node_input, Tensor) else torch.as_tensor(
        node_input)
    if x.dtype.is_floating_point:
        if x.dim() != 2 or x.shape[1] != len(ATOM_TYPES):
            raise ValueError(f"atom logits must have shape (n, {len(ATOM_TYPES)}), "
                             f"got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("atom logits must be finite")
        return x.argmax(dim=1)
    if x.dtype == torch.bool or x.dtype.is_complex or x.dim() != 1:
        raise ValueError(f"atom types must be an integer tensor of shape (n,), got dtype "
                         f"{x.dtype} and shape {tuple(x.shape)}")
    x = x.long()
    if x.numel() and (x.min() < 0 or x.max() >= len(ATOM_TYPES)):
        raise ValueError(f"atom types must lie in 0..{len(ATOM_TYPES) - 1}")
    return x


def _pair_scores(edge_prob: Tensor, bond_type_prob: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Check shapes and values; return both inputs as float64 averaged with their transposes."""
    if not isinstance(edge_prob, Tensor) or not isinstance(bond_type_prob, Tensor):
        raise ValueError("edge_prob and bond_type_prob must be torch tensors")
    if tuple(edge_prob.shape) != (n, n):
        raise ValueError(f"edge_prob must have shape ({n}, {n}), got {tuple(edge_prob.shape)}")
    if tuple(bond_type_prob.shape) != (n, n, len(BOND_TYPES)):
        raise ValueError(f"bond_type_prob must have shape ({n}, {n}, {len(BOND_TYPES)}), "
                         f"got {tuple(bond_type_prob.shape)}")
    p = edge_prob.detach().cpu().double()
    q = bond_type_prob.detach().cpu().double()
    if not torch.isfinite(p).all() or (p.numel() and (p.min() < 0 or p.max() > 1)):
        raise ValueError("edge_prob must hold probabilities in [0, 1]")
    if not torch.isfinite(q).all():
        raise ValueError("bond_type_prob must be finite")
    return (p + p.t()) / 2, (q + q.transpose(0, 1)) / 2


def _best_order(scores: list[float], capacity: int) -> int:
    """The bond order (1..min(capacity, 3)) whose bond type scores highest; ties go to the
    lower order."""
    best = 1
    for order in range(2, min(capacity, len(BOND_TYPES)) + 1):
        if scores[order - 1] > scores[best - 1]:
            best = order
    return best


def valency_aware_decode(node_input: Tensor | Sequence[int], edge_prob: Tensor,
                         bond_type_prob: Tensor, threshold: float = 0.5
                         ) -> tuple[Tensor, Tensor]:
    """Decode a molecule graph that never exceeds any atom's valence.

    ``node_input`` is either atom types, an integer tensor (n,) indexing ``ATOM_TYPES``,
    or atom-type logits, a float tensor (n, 4), decoded by argmax (first maximum).
    ``edge_prob`` (n, n) holds edge probabilities; ``bond_type_prob`` (n, n, 3) holds
    scores for single/double/triple, of which only the order matters (probabilities
    or logits both work). Pairs ``i < j`` are ranked by decreasing averaged edge
    probability, ties by ascending ``(i, j)``. Each atom starts with ``VALENCE``
    free valence, and every bond of order k takes k from both of its atoms.

    1. Spanning tree: repeatedly add, as a single bond, the first pair in the ranking
       whose atoms lie in different components, both have free valence ≥ 1, and whose
       merged component keeps free valence ≥ 1 (unless it joins the last two
       components), until one component remains or no pair qualifies. The last rule
       keeps every component joinable, so the result is connected whenever the
       valences allow a spanning tree, i.e. whenever ``sum(valences) ≥ 2 (n - 1)``
       (always when no atom is F, since every other valence is ≥ 2).
    2. One pass over the ranking, visiting each tree pair and each other pair with
       probability > ``threshold``: a tree bond is raised to the highest-scoring
       order between 1 and ``1 + min(free valences)``; another pair with
       ``min(free valences) ≥ 1`` gets the highest-scoring order between 1 and
       ``min(free valences)``, else it is left out. Scores tied between orders go to
       the lower order.

    Returns ``(node_types (n,), bonds (n, n))``, both long: bonds is the symmetric
    dense code matrix (0 none, 1 single, 2 double, 3 triple). Deterministic.
    """
    types = _node_types(node_input)
    n = types.numel()
    p, q = _pair_scores(edge_prob, bond_type_prob, n)
    free = [_VALENCE_BY_INDEX[t] for t in types.tolist()]
    bonds = [[0] * n for _ in range(n)]
    prob = p.tolist()
    scores = q.tolist()
    ranking = sorted(((i, j) for i in range(n) for j in range(i + 1, n)),
                     key=lambda ij: (-prob[ij[0]][ij[1]], ij[0], ij[1]))

    component = list(range(n))
    component_free = {i: free[i] for i in range(n)}
    tree: set[tuple[int, int]] = set()
    while len(component_free) > 1:
        for i, j in ranking:
            a, b = component[i], component[j]
            if a == b or free[i] < 1 or free[j] < 1:
                continue
            merged_free = component_free[a] + component_free[b] - 2
            if merged_free < 1 and len(component_free) > 2:
                continue
            bonds[i][j] = bonds[j][i] = 1
            free[i] -= 1
            free[j] -= 1
            tree.add((i, j))
            component = [a if c == b else c for c in component]
            del component_free[b]
            component_free[a] = merged_free
            break
        else:
            break

    for i, j in ranking:
        capacity = min(free[i], free[j])
        if (i, j) in tree:
            order = _best_order(scores[i][j], 1 + capacity)
            extra = order - 1
        elif prob[i][j] > threshold and capacity >= 1:
            order = _best_order(scores[i][j], capacity)
            extra = order
        else:
            continue
        bonds[i][j] = bonds[j][i] = order
        free[i] -= extra
        free[j] -= extra
    return types, torch.tensor(bonds, dtype=torch.long).reshape(n, n)


def plain_decode(node_input: Tensor | Sequence[int], edge_prob: Tensor, bond_type_prob: Tensor,
                 threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """Decode without any chemistry: pair ``{i, j}`` is bonded when its averaged edge
    probability exceeds ``threshold``, with the order of its highest-scoring bond type
    (first maximum). ``node_input`` is as in :func:`valency_aware_decode`. Returns
    ``(node_types (n,), bonds (n, n))`` with the dense bond codes."""
    types = _node_types(node_input)
    n = types.numel()
    p, q = _pair_scores(edge_prob, bond_type_prob, n)
    order = q.argmax(dim=-1) + 1
    bonded = (p > threshold) & ~torch.eye(n, dtype=torch.bool)
    return types, torch.where(bonded, order, torch.zeros_like(order)).long()


def mols_from_decoded(decoded: Iterable[tuple[Any, Any]], require_connected: bool = True,
                      reasons: dict[str, int] | None = None) -> list[str | None]:
    """Canonical SMILES of each ``(node_types, bonds)`` pair, or ``None`` where
    :func:`graph_to_mol` fails to sanitize it or :func:`is_valid` rejects it (a
    disconnected molecule when ``require_connected``). Given ``reasons``, each ``None``
    is counted there under ``empty`` (no atoms), ``unsanitizable`` (RDKit's
    ``SanitizeMol`` fails) or ``disconnected`` (sanitizes, but in more than one piece)."""
    require_rdkit()
    out: list[str | None] = []
    for node_types, bonds in decoded:
        mol = graph_to_mol(node_types, bonds)
        ok = is_valid(mol, require_connected)
        out.append(mol_to_smiles(mol) if ok else None)
        if reasons is not None and not ok:
            why = ("empty" if len(node_types) == 0 else "unsanitizable" if mol is None
                   else "disconnected")
            reasons[why] = reasons.get(why, 0) + 1
    return out


def molecule_metrics(generated: Sequence[str | None], train_smiles: set[str]) -> dict[str, Any]:
    """Validity, uniqueness and novelty of generated molecules.

    ``generated`` holds one canonical SMILES per sampled molecule, ``None`` for an
    invalid one; ``train_smiles`` holds the training set's canonical SMILES (same
    canonicalization, or novelty is overstated). GraphVAE (Simonovsky & Komodakis,
    2018) reports validity, uniqueness and novelty, and papers differ in the
    denominators (e.g. novelty over valid or over unique molecules), so ours are
    stated here and in the returned ``denominators``:

    * ``validity = num_valid / num_generated``
    * ``uniqueness = num_unique / num_valid`` (``num_unique``: distinct valid SMILES)
    * ``novelty = num_novel / num_unique`` (``num_novel``: distinct valid SMILES not in
      ``train_smiles``)

    A rate whose denominator is zero is ``None`` (``null`` in JSON), as an undefined NSPDK
    is: with no valid molecule, uniqueness and novelty are 0 / 0, not measured zeros.
    """
    valid = [s for s in generated if s is not None]
    unique = set(valid)
    novel = unique - set(train_smiles)

    def rate(num: int, den: int) -> float | None:
        return num / den if den else None

    return {
        "num_generated": len(generated),
        "num_valid": len(valid),
        "num_unique": len(unique),
        "num_novel": len(novel),
        "validity": rate(len(valid), len(generated)),
        "uniqueness": rate(len(unique), len(valid)),
        "novelty": rate(len(novel), len(unique)),
        "denominators": {
            "validity": "num_valid / num_generated (valid: RDKit sanitizes it and it is one "
                        "connected molecule, the strict definition)",
            "uniqueness": "num_unique / num_valid (unique: distinct valid SMILES)",
            "novelty": "num_novel / num_unique (novel: distinct valid SMILES not in training)",
        },
    }
