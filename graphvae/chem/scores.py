"""Scores of sampled molecules, decoded two ways.

* ``sampled``: the model's own sample (edges, atoms and bonds drawn from its
  distributions), with no correction at all;
* ``valency_aware``: the same sample corrected by
  :func:`~graphvae.chem.molecules.valency_aware_decode`: its bonds are kept while
  valences allow (most probable first, lower orders when the sampled one does not fit)
  and fragments are joined through the most probable other pairs (:func:`sample_first`).

Each gets validity under the strict definition (``validity``; uniqueness and novelty
count these molecules, see :func:`~graphvae.chem.molecules.molecule_metrics`; ``invalid``
counts why the others fail it: ``empty``, ``unsanitizable`` or ``disconnected``) and under
GDSS's (``gdss_validity``, :mod:`graphvae.chem.validity`). Given reference SMILES (the
test set), the raw samples also get the Fréchet ChemNet Distance (``fcd``: the ``fcd``
package, strictly valid samples against the reference) and NSPDK MMD² (``nspdk``:
:mod:`graphvae.evaluation.nspdk`, the same molecules as RDKit reads them back — atom
symbols, bond orders with aromatic bonds as 1, as GDSS's ``mols_to_nx`` — against the
reference).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from graphvae.containers import SampledGraph


def sample_first(g: SampledGraph) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores that make the valency-aware decoding start from the model's own sample.

    Sampled bonds score ``0.5 + p/2`` (above every unsampled pair, ``p/2``, and above
    the 0.5 threshold), so they are kept in order of probability while valences allow
    and the spanning tree joins fragments through the most probable other pairs; the
    sampled bond order scores ``0.5 +`` half its probability, so it wins when it fits.
    """
    if g.edge_prob is None or g.bond_prob is None or g.bond_types is None:
        raise ValueError("valency-aware decoding needs a typed sample with its probabilities")
    bonds = g.bond_types
    p = g.edge_prob
    sampled = bonds > 0
    edge = torch.where(sampled, 0.5 + p / 2, p / 2)
    onehot = F.one_hot((bonds - 1).clamp(min=0), g.bond_prob.size(-1))
    bond = g.bond_prob / 2 + 0.5 * onehot * sampled[..., None]
    return edge, bond


_FCD_MISSING = ("FCD needs the fcd package, which is not installed: pip install "
                "'graphvae[chem]' (or pip install fcd), or pass --no-fcd")


def require_fcd() -> Any:
    """The ``fcd`` module; a one-line ``ValueError`` when it cannot be imported."""
    try:
        import fcd
    except ImportError:
        raise ValueError(_FCD_MISSING) from None
    return fcd


#: The last reference's SMILES and ChemNet statistics (mean, covariance), kept for the
#: next :func:`fcd_score` against the same reference in this process (the seeds of a
#: benchmark row score against one test set).
_REFERENCE: tuple[tuple[str, ...], Any, Any] | None = None


def chemnet_statistics(smiles: list[str]) -> tuple[Any, Any]:
    """Mean and covariance of ChemNet's activations over ``smiles``, as ``fcd.get_fcd``
    computes them (its model, its batches and padding, on the CPU)."""
    import numpy as np

    fcd = require_fcd()
    activations = fcd.get_predictions(fcd.load_ref_model(), smiles, device="cpu")
    return np.mean(activations, axis=0), np.cov(activations.T)


def fcd_score(smiles: list[str], reference: list[str]) -> float:
    """Fréchet ChemNet Distance between two lists of SMILES: ``fcd.get_fcd(smiles,
    reference)``, with the reference's statistics computed once per process for a given
    list (ChemNet reads each SMILES padded to 350 characters, or to the longest plus one
    when a list holds a longer one, which then moves every molecule's features: the
    26,408 QM9 test molecules take about 85 s on one thread). ChemNet runs on the CPU,
    on the threads a run's one-thread block set aside
    (:func:`~graphvae.threads.large_work`)."""
    global _REFERENCE
    from graphvae.threads import large_work

    fcd = require_fcd()
    if len(smiles) < 2 or len(reference) < 2:
        raise ValueError("FCD needs at least two molecules on each side")
    key = tuple(reference)
    with large_work():
        if _REFERENCE is None or _REFERENCE[0] != key:
            _REFERENCE = (key, *chemnet_statistics(list(key)))
        mu, sigma = chemnet_statistics(smiles)
        return float(fcd.calculate_frechet_distance(mu1=mu, sigma1=sigma,
                                                    mu2=_REFERENCE[1], sigma2=_REFERENCE[2]))


def smiles_graphs(smiles: list[str]) -> list[Any]:
    """Molecules as networkx graphs labelled as GDSS's ``mols_to_nx`` labels them: atom
    symbols, ``int`` of the bond order (aromatic bonds: 1)."""
    import networkx as nx

    from graphvae.chem.qm9 import require_rdkit
    chem = require_rdkit()
    out = []
    for smi in smiles:
        mol = chem.MolFromSmiles(smi)
        if mol is None:
            raise ValueError(f"RDKit cannot read the SMILES {smi!r}")
        g = nx.Graph()
        for atom in mol.GetAtoms():
            g.add_node(atom.GetIdx(), label=atom.GetSymbol())
        for bond in mol.GetBonds():
            g.add_edge(bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(),
                       label=int(bond.GetBondTypeAsDouble()))
        out.append(g)
    return out


def molecule_scores(samples: list[SampledGraph], train_smiles: set[str],
                    valency: bool = True, reference: list[str] | None = None,
                    fcd: bool = True, progress: bool = False) -> dict[str, dict[str, Any]]:
    """``{decoding: metrics + "smiles"}`` for ``sampled`` and (``valency``) ``valency_aware``
    (see the module docstring); ``reference``: SMILES for FCD (``fcd``) and NSPDK of the
    raw samples; ``progress``: bars on a terminal for the FCD and NSPDK."""
    from graphvae.chem.molecules import (
        molecule_metrics,
        mols_from_decoded,
        valency_aware_decode,
    )
    from graphvae.chem.validity import gdss_valid
    from graphvae.evaluation.nspdk import nspdk_mmd2
    from graphvae.progress import bar

    plain = []
    for g in samples:
        if g.node_types is None or g.bond_types is None:
            raise ValueError("molecule scores need samples with atom and bond types")
        plain.append((g.node_types.cpu(), g.bond_types.cpu()))
    decodings = {"sampled": plain}
    if valency:
        fixed = []
        for g, (types, _) in zip(samples, plain):
            edge, bond = sample_first(g)
            fixed.append(valency_aware_decode(types, edge.cpu(), bond.cpu()))
        decodings["valency_aware"] = fixed
    out = {}
    for name, decoded in decodings.items():
        reasons = {"empty": 0, "unsanitizable": 0, "disconnected": 0}
        smiles = mols_from_decoded(decoded, reasons=reasons)
        gdss = sum(gdss_valid(t, b) for t, b in decoded)
        out[name] = {**molecule_metrics(smiles, train_smiles), "invalid": reasons,
                     "gdss_validity": gdss / len(decoded) if decoded else 0.0,
                     "smiles": smiles}
    if reference:
        raw = out["sampled"]
        valid = [smi for smi in raw["smiles"] if smi is not None]
        if fcd:
            with bar(f"FCD ({len(valid)} against {len(reference)} molecules)", progress, 1):
                raw["fcd"] = fcd_score(valid, reference) if len(valid) > 1 else float("nan")
        raw["nspdk"] = (nspdk_mmd2(smiles_graphs(reference), smiles_graphs(valid),
                                   progress=progress) if valid else float("nan"))
        raw["reference_size"] = len(reference)
    return out
