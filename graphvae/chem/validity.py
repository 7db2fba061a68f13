"""Validity of a sampled molecule without any correction, under two stated definitions.

* **strict** (:func:`graphvae.chem.molecules.mols_from_decoded`): RDKit's ``SanitizeMol``
  (every step but the clean-up, below) succeeds on the neutral molecule and the molecule
  is connected. This is
  the package's own definition.
* **GDSS's** (:func:`gdss_valid`), as Jo et al. (ICML 2022) count "validity w/o
  correction" in their ``utils/mol_utils.py`` (``construct_mol`` then ``check_valency``):
  bonds are added one at a time, in the order of the lower triangle of the bond matrix
  read row by row; whenever a bond makes RDKit's valence check fail at a nitrogen, oxygen
  or sulphur atom whose explicit valence is exactly one above its normal valence, that
  atom gets a formal charge of +1 (so ``[N+]`` with four bonds and ``[O+]`` with three
  pass). The molecule is valid when RDKit's property check
  (``SANITIZE_PROPERTIES``: valences) passes at the end. Disconnected molecules are
  allowed; kekulisation and aromaticity are not checked.

The two differ on charged atoms (GDSS accepts ``[N+]``), on fragments (GDSS accepts
``C.C``), on the empty molecule (GDSS accepts it) and on molecules that pass the valence
check but fail full sanitisation. Strict sanitisation leaves out RDKit's clean-up step,
which would rewrite a neutral five-bond nitrogen (nitro, N-oxide, azide) as charged
``[N+]`` / ``[O-]`` and pass it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from graphvae.chem.qm9 import ATOM_TYPES, _block_rdkit_logs, molecule_arrays, require_rdkit

#: Normal valences of GDSS's ``ATOM_VALENCY`` for the atoms they may charge.
_GDSS_VALENCY = {7: 3, 8: 2, 16: 2}
_ATOM_NUMBER = {"C": 6, "N": 7, "O": 8, "F": 9}
_ATOM_INDEX = re.compile(r"#\s*(\d+)")


def _valence_error(chem: Any, mol: Any) -> int | None:
    """The atom RDKit's valence check names, or ``None`` when the check passes."""
    try:
        chem.SanitizeMol(mol, sanitizeOps=chem.SanitizeFlags.SANITIZE_PROPERTIES)
        return None
    except ValueError as err:           # AtomValenceException and kin
        found = _ATOM_INDEX.search(str(err))
        return int(found.group(1)) if found else -1


def gdss_construct(node_types: Sequence[int] | Tensor | np.ndarray,
                   bonds: Tensor | np.ndarray | Sequence[Sequence[int]]) -> Any:
    """The RDKit molecule GDSS's ``construct_mol`` builds (charges included; see the module
    docstring)."""
    chem = require_rdkit()
    types, codes = molecule_arrays(node_types, bonds)
    kinds = (None, chem.BondType.SINGLE, chem.BondType.DOUBLE, chem.BondType.TRIPLE)
    mol = chem.RWMol()
    for t in types.tolist():
        mol.AddAtom(chem.Atom(_ATOM_NUMBER[ATOM_TYPES[t]]))
    with _block_rdkit_logs():
        for start in range(len(types)):
            for end in range(start):
                if not codes[start, end]:
                    continue
                mol.AddBond(start, end, kinds[int(codes[start, end])])
                idx = _valence_error(chem, mol)
                if idx is None or idx < 0:
                    continue
                atom = mol.GetAtomWithIdx(idx)
                num = atom.GetAtomicNum()
                used = sum(int(b.GetBondTypeAsDouble()) for b in atom.GetBonds())
                if num in _GDSS_VALENCY and used - _GDSS_VALENCY[num] == 1:
                    atom.SetFormalCharge(1)
    return mol


def gdss_valid(node_types: Sequence[int] | Tensor | np.ndarray,
               bonds: Tensor | np.ndarray | Sequence[Sequence[int]]) -> bool:
    """GDSS's "valid without correction" (see the module docstring). A molecule with no
    atoms passes, as in their code (every atom decoded as virtual reaches
    ``check_valency`` empty and passes it). Inputs are checked as
    :func:`~graphvae.chem.qm9.graph_to_mol` checks them."""
    chem = require_rdkit()
    if molecule_arrays(node_types, bonds)[0].size == 0:
        return True
    mol = gdss_construct(node_types, bonds)
    with _block_rdkit_logs():
        return _valence_error(chem, mol) is None
