"""QM9 molecules as small typed graphs (Ramakrishnan et al., Sci. Data 2014).

The data file is ``ROOT/qm9/qm9.csv``: one column headed ``smiles`` with the
133885 QM9 molecules (see ``../shared/data/README.md``, section 2). It is read
in place and never copied or written to.

A molecule becomes a :class:`MolGraph` over its heavy atoms only (hydrogens stay
implicit) with atom types ``ATOM_TYPES`` and Kekulé bond types ``BOND_TYPES``:
aromatic rings are written as alternating single and double bonds. The graph has
no charge channel, so molecules with a charged atom (QM9 holds a few zwitterions
such as ``[NH3+]CC([O-])=O``) cannot be represented: :func:`smiles_to_graph`
rejects them and :func:`graphvae.chem.load.load_qm9` skips and counts them.

Bonds can also be held as a dense ``(n, n)`` integer matrix of bond codes
(:func:`dense_bond_matrix`, :func:`graph_to_mol`): 0 = no bond, 1 = single,
2 = double, 3 = triple, i.e. ``code = BOND_TYPES index + 1``, which equals the
bond order.

RDKit is optional (the ``chem`` extra). It is imported inside the functions that
need it, so ``graphvae`` imports without it; those functions raise a one-line
``ValueError`` when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import Tensor

ATOM_TYPES = ("C", "N", "O", "F")
BOND_TYPES = ("single", "double", "triple")
MAX_ATOMS = 9
#: The longest SMILES read: QM9's longest is under 40 characters; nine atoms with every
#: bracket, charge, ring bond and isotope written out stay far below this.
MAX_SMILES_LENGTH = 200
VALENCE = {"C": 4, "N": 3, "O": 2, "F": 1}

QM9_FILE = Path("qm9") / "qm9.csv"
_ATOM_INDEX = {symbol: k for k, symbol in enumerate(ATOM_TYPES)}
_RDKIT_MISSING = ("QM9 needs RDKit, which is not installed: "
                  "pip install 'graphvae[chem]' (or pip install rdkit)")


class _ChargedMoleculeError(ValueError):
    """A molecule with a charged atom: valid chemistry that the graph cannot represent."""


def require_rdkit() -> Any:
    """Return the ``rdkit.Chem`` module; raise ``ValueError`` if RDKit cannot be imported."""
    try:
        from rdkit import Chem
    except ImportError:
        raise ValueError(_RDKIT_MISSING) from None
    return Chem


def _block_rdkit_logs() -> Any:
    """An object that silences RDKit's error log while it is alive (parse/sanitize noise)."""
    from rdkit import rdBase
    return rdBase.BlockLogs()


@dataclass
class MolGraph:
    """A molecule's heavy-atom graph.

    ``node_types`` (n,) indexes ``ATOM_TYPES``. ``edge_index`` (2, 2m) holds both
    directions of each of the m bonds, sorted by (source, target). ``edge_types`` (2m,)
    indexes ``BOND_TYPES`` and is aligned with ``edge_index``. ``smiles`` is RDKit's
    canonical SMILES of the molecule the graph was built from.
    """

    node_types: Tensor
    edge_index: Tensor
    edge_types: Tensor
    smiles: str

    @property
    def num_nodes(self) -> int:
        """Number of heavy atoms."""
        return int(self.node_types.numel())

    def to_networkx(self) -> nx.Graph:
        """An ``nx.Graph`` on nodes ``0..n-1`` with node attribute ``atom`` (element symbol)
        and edge attribute ``bond`` (a ``BOND_TYPES`` name)."""
        graph = nx.Graph()
        for i, t in enumerate(self.node_types.tolist()):
            graph.add_node(i, atom=ATOM_TYPES[t])
        for (i, j), t in zip(self.edge_index.t().tolist(), self.edge_types.tolist()):
            if i < j:
                graph.add_edge(i, j, bond=BOND_TYPES[t])
        return graph


def dense_bond_matrix(g: MolGraph) -> Tensor:
    """The ``(n, n)`` long matrix of bond codes of ``g``: 0 none, 1 single, 2 double, 3 triple."""
    n = g.num_nodes
    bonds = torch.zeros(n, n, dtype=torch.long)
    if g.edge_index.numel():
        bonds[g.edge_index[0], g.edge_index[1]] = g.edge_types.long() + 1
    return bonds


def _check_atoms(mol: Any, smiles: str) -> list[int]:
    """The ``ATOM_TYPES`` index of each atom of ``mol``; ``ValueError`` unless it has
    1..MAX_ATOMS uncharged C/N/O/F heavy atoms, none a radical or an isotope (an unknown
    element is reported before the size, the size before a charge). Atoms are read by
    index: RDKit's ``GetAtoms()`` sequence costs several times more per atom in Python."""
    n = mol.GetNumAtoms()
    if n == 0:
        raise ValueError(f"SMILES {smiles!r} has no atoms")
    atoms = [mol.GetAtomWithIdx(i) for i in range(n)]
    symbols = [atom.GetSymbol() for atom in atoms]
    for symbol in symbols:
        if symbol not in _ATOM_INDEX:
            raise ValueError(f"SMILES {smiles!r} has element {symbol}; "
                             f"only {', '.join(ATOM_TYPES)} are allowed")
    if n > MAX_ATOMS:
        raise ValueError(f"SMILES {smiles!r} has {n} heavy atoms; at most {MAX_ATOMS} allowed")
    for atom, symbol in zip(atoms, symbols):
        if atom.GetFormalCharge() != 0:
            raise _ChargedMoleculeError(
                f"SMILES {smiles!r} has a charged atom ({symbol}, charge "
                f"{atom.GetFormalCharge():+d}); charged molecules are not representable")
        if atom.GetNumRadicalElectrons() or atom.GetIsotope():
            what = "a radical" if atom.GetNumRadicalElectrons() else "an isotope-labelled"
            raise ValueError(f"SMILES {smiles!r} has {what} atom ({symbol}); the graph has no "
                             f"channel for it (it would be read as another molecule)")
    return [_ATOM_INDEX[symbol] for symbol in symbols]


def parse_smiles(smiles: str) -> tuple[list[int], list[tuple[int, int, int]], str]:
    """The checks and the parse of :func:`smiles_to_graph`, as plain lists: the atoms'
    ``ATOM_TYPES`` indices, one ``(i, j, BOND_TYPES index)`` a bond with ``i < j`` sorted,
    and RDKit's canonical SMILES (before kekulization)."""
    Chem = require_rdkit()
    if not isinstance(smiles, str):
        raise ValueError(f"SMILES must be a string, got {type(smiles).__name__}")
    if len(smiles) > MAX_SMILES_LENGTH:     # before RDKit: a 600 kB cell took 0.5 GB, 4 s
        raise ValueError(f"SMILES of {len(smiles):,} characters is longer than a molecule of "
                         f"at most {MAX_ATOMS} heavy atoms is written ({MAX_SMILES_LENGTH})")
    with _block_rdkit_logs():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    types = _check_atoms(mol, smiles)
    canonical = Chem.MolToSmiles(mol)
    Chem.Kekulize(mol, clearAromaticFlags=True)
    order_to_type = {Chem.BondType.SINGLE: 0, Chem.BondType.DOUBLE: 1, Chem.BondType.TRIPLE: 2}
    bonds = []
    for bond in (mol.GetBondWithIdx(b) for b in range(mol.GetNumBonds())):
        kind = bond.GetBondType()
        t = order_to_type.get(kind)
        if t is None:
            raise ValueError(f"SMILES {smiles!r} has a {kind} bond after kekulization")
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        bonds.append((i, j, t) if i < j else (j, i, t))
    bonds.sort()
    return types, bonds, canonical


def smiles_to_graph(smiles: str) -> MolGraph:
    """Parse ``smiles`` with RDKit into a :class:`MolGraph` over its heavy atoms.

    Hydrogens stay implicit. The molecule is kekulized with aromatic flags cleared,
    so aromatic bonds become single or double. Raises ``ValueError`` (naming the
    SMILES) when RDKit cannot parse it, when it has no atoms, an element outside
    ``ATOM_TYPES``, more than ``MAX_ATOMS`` heavy atoms, an atom with a nonzero
    formal charge (QM9's zwitterions are excluded because the graph has no charge
    channel), a radical or an isotope label (no channel either). ``smiles`` of the
    result is RDKit's canonical SMILES of the parsed molecule (before kekulization).
    """
    types, bonds, canonical = parse_smiles(smiles)
    triples = sorted([*bonds, *((j, i, t) for i, j, t in bonds)])
    edge_index = torch.tensor([[i for i, _, _ in triples], [j for _, j, _ in triples]],
                              dtype=torch.long).reshape(2, -1)
    edge_types = torch.tensor([t for _, _, t in triples], dtype=torch.long)
    return MolGraph(torch.tensor(types, dtype=torch.long), edge_index, edge_types, canonical)


def _as_long_array(x: Any, name: str) -> np.ndarray:
    """``x`` (tensor, array or nested sequence) as an int64 numpy array; ``ValueError`` if
    it holds non-integer values."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _strict_sanitize() -> Any:
    """RDKit's sanitisation without its clean-up step, which rewrites a neutral five-bond
    nitrogen (nitro, N-oxide, azide) as ``[N+]`` and ``[O-]``: the decoded molecule has
    neutral atoms only, so such a nitrogen is over its valence, not a charged group."""
    Chem = require_rdkit()
    flags = Chem.SanitizeFlags
    return flags.SANITIZE_ALL ^ flags.SANITIZE_CLEANUP


def molecule_arrays(node_types: Sequence[int] | Tensor | np.ndarray,
                    bonds: Tensor | np.ndarray | Sequence[Sequence[int]]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``node_types`` and ``bonds`` as int64 arrays, checked as :func:`graph_to_mol` states:
    a ``ValueError`` for non-integers (floats were truncated), a shape other than ``(n,)``
    and ``(n, n)``, type indices or bond codes out of range, an asymmetric matrix or a
    nonzero diagonal."""
    types = _as_long_array(node_types, "node_types")
    codes = _as_long_array(bonds, "bonds")
    if types.ndim != 1:
        raise ValueError(f"node_types must be 1-D, got shape {tuple(types.shape)}")
    n = types.shape[0]
    if codes.shape != (n, n):
        raise ValueError(f"bonds must have shape ({n}, {n}), got {tuple(codes.shape)}")
    if n and (types.min() < 0 or types.max() >= len(ATOM_TYPES)):
        raise ValueError(f"node_types must lie in 0..{len(ATOM_TYPES) - 1}")
    if n and (codes.min() < 0 or codes.max() > len(BOND_TYPES)):
        raise ValueError(f"bond codes must lie in 0..{len(BOND_TYPES)}")
    if not np.array_equal(codes, codes.T):
        raise ValueError("bonds must be a symmetric matrix")
    if np.any(np.diag(codes)):
        raise ValueError("bonds must have a zero diagonal (no self-bonds)")
    return types, codes


def graph_to_mol(node_types: Sequence[int] | Tensor | np.ndarray,
                 bonds: Tensor | np.ndarray | Sequence[Sequence[int]]) -> Any | None:
    """Build and sanitize an RDKit molecule from atom types and a dense bond-code matrix.

    ``node_types`` (n,) indexes ``ATOM_TYPES``. ``bonds`` is a symmetric ``(n, n)``
    integer matrix with a zero diagonal: 0 = no bond, 1 = single, 2 = double,
    3 = triple. Atoms are neutral with implicit hydrogens filled in by RDKit.
    Returns the sanitized ``Mol`` (aromaticity perceived), or ``None`` when
    ``Chem.SanitizeMol`` fails (e.g. an atom above its valence) or when n = 0.
    Malformed inputs (shape, codes or type indices out of range, an asymmetric
    matrix, a nonzero diagonal) raise ``ValueError``.
    """
    Chem = require_rdkit()
    types, codes = molecule_arrays(node_types, bonds)
    n = types.shape[0]
    if n == 0:
        return None
    kinds = (Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE)
    rw = Chem.RWMol()
    for t in types.tolist():
        rw.AddAtom(Chem.Atom(ATOM_TYPES[t]))
    for i, j in zip(*np.nonzero(np.triu(codes, k=1))):
        rw.AddBond(int(i), int(j), kinds[int(codes[i, j]) - 1])
    mol = rw.GetMol()
    with _block_rdkit_logs():
        try:
            Chem.SanitizeMol(mol, sanitizeOps=_strict_sanitize())
        except (Chem.rdchem.MolSanitizeException, RuntimeError):
            # (an atom of valence 128 or more fails RDKit's own precondition, a
            # RuntimeError, where a lesser excess is a sanitisation error)
            return None
    return mol


def mol_to_smiles(mol: Any) -> str:
    """RDKit's canonical SMILES of ``mol``."""
    Chem = require_rdkit()
    if mol is None:
        raise ValueError("mol_to_smiles got None instead of a molecule")
    return str(Chem.MolToSmiles(mol))


def is_valid(mol: Any | None, require_connected: bool = True) -> bool:
    """Whether ``mol`` is a valid molecule.

    True when ``mol`` is not ``None``, has at least one atom, a copy of it passes
    ``Chem.SanitizeMol``, and (if ``require_connected``) it is a single fragment,
    i.e. its canonical SMILES contains no ``'.'``.
    """
    Chem = require_rdkit()
    if mol is None or mol.GetNumAtoms() == 0:
        return False
    copy = Chem.Mol(mol)
    with _block_rdkit_logs():
        try:
            Chem.SanitizeMol(copy, sanitizeOps=_strict_sanitize())
        except (Chem.rdchem.MolSanitizeException, RuntimeError):   # (see graph_to_mol)
            return False
    return not require_connected or "." not in Chem.MolToSmiles(copy)
