"""Validity, uniqueness and novelty of sampled molecules, decoded two ways.

* ``sampled``: the model's own sample (edges, atoms and bonds drawn from its
  distributions), with no correction at all;
* ``valency_aware``: the same sample corrected by
  :func:`~graphvae.chem.molecules.valency_aware_decode`: its bonds are kept while
  valences allow (most probable first, lower orders when the sampled one does not fit)
  and fragments are joined through the most probable other pairs (:func:`sample_first`).
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


def molecule_scores(samples: list[SampledGraph], train_smiles: set[str],
                    valency: bool = True) -> dict[str, dict[str, Any]]:
    """``{decoding: metrics + "smiles"}`` for ``sampled`` and (``valency``) ``valency_aware``
    (see the module docstring)."""
    from graphvae.chem.molecules import (
        molecule_metrics,
        mols_from_decoded,
        valency_aware_decode,
    )

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
        smiles = mols_from_decoded(decoded)
        out[name] = {**molecule_metrics(smiles, train_smiles), "smiles": smiles}
    return out
