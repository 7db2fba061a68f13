"""Molecules: QM9 as typed graphs (``qm9``: atom and bond tables, SMILES to graph and back,
validity; ``load``: reading the file and the split graph set), decoding graphs into
molecules within the valence table (``molecules``), and the validity / uniqueness /
novelty of samples (``scores``). RDKit (the ``chem`` extra) is imported only inside the
functions that need it."""

from graphvae.chem.qm9 import ATOM_TYPES, BOND_TYPES, MAX_ATOMS, VALENCE, MolGraph

__all__ = ["ATOM_TYPES", "BOND_TYPES", "MAX_ATOMS", "VALENCE", "MolGraph"]
