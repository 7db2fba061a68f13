"""QM9 molecule graphs (``graphvae.chem.qm9``) and molecule decoding/metrics
(``graphvae.chem.molecules``).

Expected values are worked out by hand from the molecules written in each test
(atom lists, bond orders, counts), not read back from the package. Tests that need
RDKit skip when it is absent; the "RDKit missing" test runs either way.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from graphvae.chem.molecules import molecule_metrics
from graphvae.chem.qm9 import (
    ATOM_TYPES,
    BOND_TYPES,
    MAX_ATOMS,
    VALENCE,
    require_rdkit,
    smiles_to_graph,
)

DATA_ROOT = Path(os.environ.get(
    "GRAPHVAE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
QM9_CSV = DATA_ROOT / "qm9" / "qm9.csv"
needs_qm9 = pytest.mark.skipif(not QM9_CSV.is_file(), reason=f"no {QM9_CSV}")

try:
    import rdkit  # noqa: F401
    HAVE_RDKIT = True
except ImportError:
    HAVE_RDKIT = False
needs_rdkit = pytest.mark.skipif(not HAVE_RDKIT, reason="RDKit is not installed")

C, N, O, F = range(4)  # noqa: E741 (atom symbols, indices into ATOM_TYPES)


def test_constants():
    assert ATOM_TYPES == ("C", "N", "O", "F")
    assert BOND_TYPES == ("single", "double", "triple")
    assert MAX_ATOMS == 9
    assert VALENCE == {"C": 4, "N": 3, "O": 2, "F": 1}


def test_missing_rdkit_is_a_one_line_value_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdkit", None)
    monkeypatch.setitem(sys.modules, "rdkit.Chem", None)
    for call in (require_rdkit, lambda: smiles_to_graph("CCO")):
        with pytest.raises(ValueError, match="RDKit") as info:
            call()
        assert "\n" not in str(info.value)
        assert "pip install" in str(info.value)


def test_molecule_metrics_by_hand():
    # valid: CCO, CCO, C, N (4 of 5); distinct: CCO, C, N (3 of 4); not in {"C"}: CCO, N (2 of 3)
    m = molecule_metrics(["CCO", "CCO", "C", None, "N"], {"C"})
    assert (m["num_generated"], m["num_valid"], m["num_unique"], m["num_novel"]) == (5, 4, 3, 2)
    assert m["validity"] == pytest.approx(4 / 5)
    assert m["uniqueness"] == pytest.approx(3 / 4)
    assert m["novelty"] == pytest.approx(2 / 3)
    assert set(m["denominators"]) == {"validity", "uniqueness", "novelty"}
    assert "num_unique" in m["denominators"]["novelty"]


def test_molecule_metrics_zero_valid_and_empty():
    """A rate of denominator 0 is undefined (None, JSON null), as NSPDK then is: it was a
    0.0 that read as measured. No valid molecule: validity 0/2 = 0, the other two 0/0."""
    m = molecule_metrics([None, None], {"C"})
    assert (m["num_generated"], m["num_valid"], m["num_unique"], m["num_novel"]) == (2, 0, 0, 0)
    assert (m["validity"], m["uniqueness"], m["novelty"]) == (0.0, None, None)
    m = molecule_metrics([], set())
    assert (m["num_generated"], m["validity"], m["uniqueness"], m["novelty"]) == \
        (0, None, None, None)
    m = molecule_metrics(["C", "C"], {"C"})                      # valid, none novel: 0/1
    assert (m["uniqueness"], m["novelty"]) == (0.5, 0.0)


# ---------------------------------------------------------------- RDKit needed below


def bonds_of(g):
    """{(i, j, bond name)} for i < j, from the graph's edge list."""
    return {(i, j, BOND_TYPES[t]) for (i, j), t in zip(g.edge_index.t().tolist(),
                                                       g.edge_types.tolist()) if i < j}


@needs_rdkit
def test_formaldehyde():
    g = smiles_to_graph("C=O")
    assert g.node_types.tolist() == [C, O]
    assert g.num_nodes == 2
    assert g.edge_index.tolist() == [[0, 1], [1, 0]]
    assert g.edge_types.tolist() == [1, 1]
    assert g.smiles == "C=O"
    nxg = g.to_networkx()
    assert dict(nxg.nodes(data="atom")) == {0: "C", 1: "O"}
    assert list(nxg.edges(data="bond")) == [(0, 1, "double")]


@needs_rdkit
def test_benzene_is_kekulized():
    g = smiles_to_graph("c1ccccc1")
    assert g.node_types.tolist() == [C] * 6
    names = [b for _, _, b in bonds_of(g)]
    assert len(names) == 6 and names.count("single") == 3 and names.count("double") == 3
    # each ring carbon has one single and one double bond
    nxg = g.to_networkx()
    for v in nxg:
        assert sorted(nxg.edges[v, u]["bond"] for u in nxg[v]) == ["double", "single"]
    assert g.smiles == "c1ccccc1"


@needs_rdkit
def test_acetonitrile_triple_bond_and_both_directions_sorted():
    g = smiles_to_graph("CC#N")
    assert g.node_types.tolist() == [C, C, N]
    assert bonds_of(g) == {(0, 1, "single"), (1, 2, "triple")}
    assert g.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert g.edge_types.tolist() == [0, 0, 2, 2]


@needs_rdkit
def test_dense_bond_matrix_codes():
    from graphvae.chem.qm9 import dense_bond_matrix
    assert dense_bond_matrix(smiles_to_graph("CC#N")).tolist() == [[0, 1, 0], [1, 0, 3],
                                                                   [0, 3, 0]]
    single = smiles_to_graph("C")
    assert single.edge_index.shape == (2, 0)
    assert dense_bond_matrix(single).tolist() == [[0]]


@needs_rdkit
@pytest.mark.parametrize("smiles, needle", [
    ("not a smiles", "cannot parse"),
    ("[Na+]", "Na"),
    ("CCCCCCCCCC", "10 heavy atoms"),
    ("[NH3+]CC([O-])=O", "charged"),
    ("", "no atoms"),
    ("CN->O", "DATIVE bond"),                                  # not single / double / triple
    ("[Na]CCCCCCCCCC", "element Na"),                          # the element before the size
    ("CCCCCCCC[N+](C)(C)C", "12 heavy atoms"),                 # the size before the charge
    ("[CH3]", "a radical atom \\(C\\)"),    # the graph read as methane 'C' (novel 'C')
    ("[C]", "a radical atom"),
    ("[13CH4]", "an isotope-labelled atom \\(C\\)"),
    ("CC[15NH2]", "an isotope-labelled atom \\(N\\)"),
])
def test_smiles_to_graph_rejects(smiles, needle):
    with pytest.raises(ValueError, match=needle) as info:
        smiles_to_graph(smiles)
    assert "\n" not in str(info.value)
    assert repr(smiles) in str(info.value)


@needs_rdkit
def test_graph_to_mol_valid_and_invalid():
    from graphvae.chem.qm9 import graph_to_mol, is_valid, mol_to_smiles
    # ethanol C-C-O
    mol = graph_to_mol([C, C, O], torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    assert mol is not None and is_valid(mol) and mol_to_smiles(mol) == "CCO"
    # pentavalent carbon: a centre C with four single bonds and one double bond
    star = torch.zeros(6, 6, dtype=torch.long)
    star[0, 1:] = star[1:, 0] = torch.tensor([1, 1, 1, 1, 2])
    assert graph_to_mol([C] * 6, star) is None
    # O with a triple bond
    assert graph_to_mol([C, O], [[0, 3], [3, 0]]) is None
    # two separate methanes: sanitizes, but is not one fragment
    two = graph_to_mol([C, C], [[0, 0], [0, 0]])
    assert two is not None and is_valid(two, require_connected=False) and not is_valid(two)
    assert not is_valid(None)
    from rdkit import Chem
    assert not is_valid(Chem.RWMol().GetMol(), require_connected=False)   # no atoms


@needs_rdkit
@pytest.mark.parametrize("types, bonds, needle", [
    ([C, C], [[0, 1], [0, 0]], "symmetric"),
    ([C, C], [[0, 4], [4, 0]], "bond codes"),
    ([C, 7], [[0, 1], [1, 0]], "node_types"),
    ([C, C, C], [[0, 1], [1, 0]], "shape"),
    ([C], [[1]], "diagonal"),
])
def test_graph_to_mol_bad_input(types, bonds, needle):
    from graphvae.chem.qm9 import graph_to_mol
    with pytest.raises(ValueError, match=needle):
        graph_to_mol(types, torch.tensor(bonds))


@needs_rdkit
@needs_qm9
def test_round_trip_on_real_qm9_rows():
    from graphvae.chem.load import load_qm9
    from graphvae.chem.qm9 import dense_bond_matrix, graph_to_mol, is_valid, mol_to_smiles
    graphs, stats = load_qm9(DATA_ROOT, limit=2000)
    # lines 2..2001 of qm9.csv hold 26 rows with a charged atom ("+]" or "-]"), counted with
    # awk on the file itself
    assert stats == {"rows": 2000, "kept": 1974, "skipped_charged": 26}
    # the file starts C, N, O, C#C (README of the shared data)
    assert [g.smiles for g in graphs[:4]] == ["C", "N", "O", "C#C"]
    assert all(1 <= g.num_nodes <= MAX_ATOMS for g in graphs)
    for g in graphs[::60]:  # 33 molecules spread over the first 2000 rows
        mol = graph_to_mol(g.node_types, dense_bond_matrix(g))
        assert is_valid(mol)
        assert mol_to_smiles(mol) == g.smiles


@needs_rdkit
@pytest.mark.parametrize("smiles, canonical", [
    ("C1=CC=CC=C1", "c1ccccc1"),
    ("C1=COC=C1", "c1ccoc1"),
    ("C1=CNC=C1", "c1cc[nH]c1"),
    ("C1=CC=NC=C1", "c1ccncc1"),
    ("OC(F)C#N", "N#CC(O)F"),
])
def test_round_trip_aromatic_and_small(smiles, canonical):
    from graphvae.chem.qm9 import dense_bond_matrix, graph_to_mol, mol_to_smiles
    g = smiles_to_graph(smiles)
    assert g.smiles == canonical
    assert mol_to_smiles(graph_to_mol(g.node_types, dense_bond_matrix(g))) == canonical


def write_csv(root: Path, text: str) -> Path:
    (root / "qm9").mkdir(parents=True)
    (root / "qm9" / "qm9.csv").write_text(text, encoding="utf-8")
    return root


@needs_rdkit
def test_load_qm9_skips_and_counts_charged(tmp_path):
    from graphvae.chem.load import load_qm9
    root = write_csv(tmp_path, "smiles\nC\n[NH3+]CC([O-])=O\nCC#N\nc1ccccc1\n")
    graphs, stats = load_qm9(root)
    assert stats == {"rows": 4, "kept": 3, "skipped_charged": 1}
    assert [g.smiles for g in graphs] == ["C", "CC#N", "c1ccccc1"]
    graphs, stats = load_qm9(root, limit=2)
    assert stats == {"rows": 2, "kept": 1, "skipped_charged": 1}
    _, stats = load_qm9(root, limit=np.int64(3))     # numpy's integers are counts too
    assert stats == {"rows": 3, "kept": 2, "skipped_charged": 1}


@needs_rdkit
def test_blank_lines_of_the_qm9_file_are_skipped(tmp_path):
    """A file of the header and a blank line (the reader fuzz's intact QM9 file of no
    molecule) was refused: "expected one SMILES column, got []". Blank lines, and lines
    of spaces, hold no molecule and are not rows; line numbers stay the file's."""
    from graphvae.chem.load import load_qm9
    assert load_qm9(write_csv(tmp_path / "a", "smiles\n\n")) == (
        [], {"rows": 0, "kept": 0, "skipped_charged": 0})
    root = write_csv(tmp_path / "b", "smiles\n\nC\n  \r\nCO\n\n")
    graphs, stats = load_qm9(root)
    assert [g.smiles for g in graphs] == ["C", "CO"]
    assert stats == {"rows": 2, "kept": 2, "skipped_charged": 0}
    assert load_qm9(root, limit=1)[1]["rows"] == 1
    with pytest.raises(ValueError, match=r"qm9\.csv:4: .*'C1CC'"):
        load_qm9(write_csv(tmp_path / "c", "smiles\nC\n\nC1CC\n"))


@needs_rdkit
def test_graph_set_holds_the_molecules_load_qm9_reads(tmp_path):
    """The graph set reads rows without building tensors; its graphs are the MolGraphs of
    load_qm9 node for node and bond for bond, with the same counts and errors."""
    from graphvae.chem.load import load_qm9, qm9_graph_set
    rows = ["C", "[NH3+]CC([O-])=O", "CC#N", "c1ccccc1", "OC1=NC=CC(F)=C1", "C1CC1", "CC(=O)N",
            "FC(F)(F)C#N", "O=C1NC=CN1", "CC1(C)OC1", "N#CC=O", "CCC"]
    root = write_csv(tmp_path, "smiles\n" + "\n".join(rows) + "\n")
    mols, stats = load_qm9(root)
    data = qm9_graph_set(root, seed=0)
    assert {k: data.info[k] for k in stats} == stats == {"rows": 12, "kept": 11,
                                                         "skipped_charged": 1}
    by_smiles = {m.smiles: m for m in mols}
    graphs = [*data.train, *data.valid, *data.test]
    assert sorted(g.graph["smiles"] for g in graphs) == sorted(by_smiles)
    for g in graphs:
        m = by_smiles[g.graph["smiles"]]
        assert list(g.nodes) == list(range(m.num_nodes))
        assert [g.nodes[v]["atom"] for v in g.nodes] == m.node_types.tolist()
        pairs = [(i, j, t) for (i, j), t in zip(m.edge_index.t().tolist(), m.edge_types.tolist())
                 if i < j]
        assert [(i, j, d["bond"]) for i, j, d in g.edges(data=True)] == pairs
    assert data.train_smiles == {g.graph["smiles"] for g in data.train}
    with pytest.raises(ValueError, match=r"qm9.csv:3: .*'C1CC'"):
        qm9_graph_set(write_csv(tmp_path / "bad", "smiles\nC\nC1CC\n"))


@needs_rdkit
def test_load_qm9_errors(tmp_path):
    from graphvae.chem.load import load_qm9
    # the header is line 1, so the unclosed ring "C1CC" is line 4
    bad_row = write_csv(tmp_path / "a", "smiles\nC\nCO\nC1CC\nCC\n")
    with pytest.raises(ValueError, match=r"qm9.csv:4: .*'C1CC'") as info:
        load_qm9(bad_row)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="header"):
        load_qm9(write_csv(tmp_path / "b", "smile\nC\n"))
    with pytest.raises(ValueError, match="GRAPHVAE_DATA") as info:
        load_qm9(tmp_path / "nowhere")
    assert "--data-root" in str(info.value) and "qm9.csv" in str(info.value)
    with pytest.raises(ValueError, match="limit"):
        load_qm9(bad_row, limit=-1)


# ---------------------------------------------------------------- decoding


def free_valence_ok(types, bonds):
    """Every atom's bond-order sum is at most its valence."""
    valence = torch.tensor([VALENCE[ATOM_TYPES[t]] for t in types.tolist()])
    return bool((bonds.sum(dim=1) <= valence).all())


def random_inputs(gen, n, carbon_only):
    types = (torch.zeros(n, dtype=torch.long) if carbon_only
             else torch.randint(0, 4, (n,), generator=gen))
    edge = torch.rand(n, n, generator=gen)
    bond = torch.rand(n, n, 3, generator=gen)
    return types, edge, bond


@needs_rdkit
def test_valency_aware_decode_random_inputs():
    from graphvae.chem.molecules import valency_aware_decode
    from graphvae.chem.qm9 import graph_to_mol, is_valid
    gen = torch.Generator().manual_seed(0)
    for trial in range(200):
        n = 2 + trial % 8
        types, edge, bond = random_inputs(gen, n, carbon_only=trial % 2 == 0)
        out_types, bonds = valency_aware_decode(types, edge, bond)
        assert torch.equal(out_types, types)
        assert bonds.shape == (n, n) and torch.equal(bonds, bonds.t())
        assert bonds.diagonal().eq(0).all() and bonds.min() >= 0 and bonds.max() <= 3
        assert free_valence_ok(types, bonds)
        graph = nx.from_numpy_array((bonds > 0).numpy())
        valences = sum(VALENCE[ATOM_TYPES[t]] for t in types.tolist())
        if valences >= 2 * (n - 1):  # a spanning tree fits: always for all-carbon inputs
            assert nx.is_connected(graph)
        mol = graph_to_mol(out_types, bonds)
        assert mol is not None
        assert is_valid(mol) == nx.is_connected(graph)
        again = valency_aware_decode(types, edge, bond)
        assert torch.equal(again[1], bonds)


def test_valency_aware_decode_by_hand():
    from graphvae.chem.molecules import plain_decode, valency_aware_decode
    # O, O, C: every pair wants a triple bond with high probability.
    types = torch.tensor([O, O, C])
    edge = torch.tensor([[0.0, 0.9, 0.8], [0.9, 0.0, 0.7], [0.8, 0.7, 0.0]])
    bond = torch.zeros(3, 3, 3)
    bond[..., 2] = 1.0  # triple best
    bond[..., 1] = 0.5  # then double
    # Free valence O0 2, O1 2, C2 4; ranking (0,1) 0.9, (0,2) 0.8, (1,2) 0.7.
    # Tree: (0,1) merges to free 2+2-2 = 2 >= 1, added (O0 1, O1 1); (0,2) joins the last
    # two components, added (O0 0, C2 3). Pass 2: (0,1) tree bond, capacity 1 + min(0, 1)
    # = 1 -> single; (0,2) capacity 1 + min(0, 3) = 1 -> single; (1,2) 0.7 > 0.5, capacity
    # min(1, 3) = 1 -> single. A three-ring of single bonds.
    out_types, bonds = valency_aware_decode(types, edge, bond)
    assert out_types.tolist() == [O, O, C]
    assert bonds.tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    # without correction: every pair triple
    _, plain = plain_decode(types, edge, bond)
    assert plain.tolist() == [[0, 3, 3], [3, 0, 3], [3, 3, 0]]


def test_valency_aware_decode_keeps_fluorines_joinable():
    from graphvae.chem.molecules import valency_aware_decode
    # F0, F1, C2: F0-F1 is the most probable pair but would close a component (1+1-2 = 0)
    # while C2 is still apart, so the tree takes F0-C2 (0.5) then F1-C2 (0.4).
    types = torch.tensor([F, F, C])
    edge = torch.tensor([[0.0, 0.99, 0.5], [0.99, 0.0, 0.4], [0.5, 0.4, 0.0]])
    bond = torch.zeros(3, 3, 3)
    _, bonds = valency_aware_decode(types, edge, bond)
    assert bonds.tolist() == [[0, 0, 1], [0, 0, 1], [1, 1, 0]]


def test_sample_first_scores_and_the_decoding_they_give_by_hand():
    """Three carbons; the model sampled a double bond on 0-1 although p(0-1) = 0.2, and
    nothing on 0-2 and 1-2 (p = 0.9). Sampled pairs score 0.5 + p/2 = 0.6, the others
    p/2 = 0.45; the sampled order scores its probability / 2 + 0.5, the others half theirs.
    The decoding keeps the sampled bond first: the tree takes 0-1 (0.6) and then 0-2
    (0.45; ties go to the lower pair), and the pass raises 0-1 to the double bond it
    scores highest (its free valences allow up to 3), leaves 0-2 single (0.25 > 0.15),
    and skips 1-2 (0.45, under the 0.5 threshold)."""
    from graphvae.chem.molecules import valency_aware_decode
    from graphvae.chem.scores import sample_first
    from graphvae.containers import SampledGraph
    adj = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    edge_prob = torch.tensor([[0.0, 0.2, 0.9], [0.2, 0.0, 0.9], [0.9, 0.9, 0.0]])
    bond_prob = torch.tensor([0.5, 0.3, 0.2]).expand(3, 3, 3).clone()
    bond_prob[0, 1] = bond_prob[1, 0] = torch.tensor([0.6, 0.3, 0.1])
    bond_types = torch.tensor([[0, 2, 0], [2, 0, 0], [0, 0, 0]])
    g = SampledGraph(adj, edge_prob=edge_prob, node_types=torch.tensor([C, C, C]),
                     bond_prob=bond_prob, bond_types=bond_types)
    edge, bond = sample_first(g)
    assert torch.allclose(edge, torch.tensor([[0.0, 0.6, 0.45], [0.6, 0.0, 0.45],
                                              [0.45, 0.45, 0.0]]))
    assert torch.allclose(bond[0, 1], torch.tensor([0.3, 0.65, 0.05]))
    assert torch.allclose(bond[1, 0], torch.tensor([0.3, 0.65, 0.05]))
    assert torch.allclose(bond[0, 2], torch.tensor([0.25, 0.15, 0.1]))
    types, bonds = valency_aware_decode(g.node_types, edge, bond)
    assert types.tolist() == [C, C, C]
    assert bonds.tolist() == [[0, 2, 1], [2, 0, 0], [1, 0, 0]]


def test_decodings_bond_only_pairs_above_the_threshold_and_break_ties_low():
    """Three carbons, single bonds scored best: the tree takes 0-1 (0.9) and 1-2 (0.8),
    and 0-2 at exactly 0.5 is not above the threshold: propane, not cyclopropane. Two
    carbons whose three orders score alike get the lowest, a single bond. The plain
    decoding averages the two triangles ((0.25 + 0.75) / 2 = 0.5 for 0-1, 0.75 for 0-2,
    0.625 for 1-2; all exact in float32) and bonds only pairs above 0.5, each with its
    highest-scoring order (double)."""
    from graphvae.chem.molecules import plain_decode, valency_aware_decode
    edge = torch.tensor([[0.0, 0.9, 0.5], [0.9, 0.0, 0.8], [0.5, 0.8, 0.0]])
    single = torch.tensor([1.0, 0.0, 0.0]).expand(3, 3, 3)
    _, bonds = valency_aware_decode(torch.tensor([C, C, C]), edge, single)
    assert bonds.tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    _, bonds = valency_aware_decode(torch.tensor([C, C]), torch.tensor([[0.0, 0.9],
                                                                        [0.9, 0.0]]),
                                    torch.zeros(2, 2, 3))
    assert bonds.tolist() == [[0, 1], [1, 0]]
    edge = torch.tensor([[0.0, 0.25, 1.0], [0.75, 0.0, 0.5], [0.5, 0.75, 0.0]])
    double = torch.tensor([0.0, 1.0, 0.0]).expand(3, 3, 3)
    _, bonds = plain_decode(torch.tensor([C, C, C]), edge, double)
    assert bonds.tolist() == [[0, 0, 2], [0, 0, 2], [2, 2, 0]]


@needs_rdkit
def test_gdss_construct_adds_bonds_in_its_order_and_charges_the_atom_rdkit_names():
    """GDSS adds the bonds row by row, each row's in increasing column order. Here N7's last
    bond, to N6, takes both nitrogens to four bonds at once; RDKit's valence check names
    N6, which is charged (N+ takes four), and N7 stays a neutral four-bond nitrogen: not
    valid. In the other order, N7-N6 first, each nitrogen would reach four bonds alone and
    both would be charged."""
    from graphvae.chem.validity import gdss_construct, gdss_valid
    types = torch.tensor([C] * 6 + [N, N])
    codes = torch.zeros(8, 8, dtype=torch.long)
    for a, b in ((6, 3), (6, 4), (6, 5), (7, 0), (7, 1), (7, 2), (7, 6)):
        codes[a, b] = codes[b, a] = 1
    charges = [atom.GetFormalCharge() for atom in gdss_construct(types, codes).GetAtoms()]
    assert charges == [0, 0, 0, 0, 0, 0, 1, 0]
    assert gdss_valid(types, codes) is False


def test_valency_aware_decode_bond_order_and_logits():
    from graphvae.chem.molecules import valency_aware_decode
    # logits pick C, N; the pair (prob 0.1, below threshold) is still a tree bond, and is
    # raised to the most probable order that fits: triple (C free 3, N free 2 after single ->
    # capacity 1 + 2 = 3).
    logits = torch.tensor([[5.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0]])
    edge = torch.tensor([[0.0, 0.1], [0.1, 0.0]])
    bond = torch.tensor([0.1, 0.2, 0.7]).expand(2, 2, 3)
    types, bonds = valency_aware_decode(logits, edge, bond)
    assert types.tolist() == [C, N]
    assert bonds.tolist() == [[0, 3], [3, 0]]
    # C, O: triple does not fit (O valence 2), so the most probable order that fits wins:
    # scores single 0.1 vs double 0.2 -> double.
    _, bonds = valency_aware_decode(torch.tensor([C, O]), edge, bond)
    assert bonds.tolist() == [[0, 2], [2, 0]]


@pytest.mark.parametrize("args, needle", [
    ((torch.tensor([0, 5]), torch.zeros(2, 2), torch.zeros(2, 2, 3)), "atom types"),
    ((torch.tensor([0, 4]), torch.zeros(2, 2), torch.zeros(2, 2, 3)), r"lie in 0\.\.3"),
    ((torch.tensor([0, 1]), torch.zeros(3, 3), torch.zeros(2, 2, 3)), "edge_prob"),
    ((torch.tensor([0, 1]), torch.zeros(2, 2), torch.zeros(2, 2, 4)), "bond_type_prob"),
    ((torch.tensor([0, 1]), torch.full((2, 2), 1.5), torch.zeros(2, 2, 3)), r"\[0, 1\]"),
    ((torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(2, 2, 3)), "logits"),
])
def test_decode_bad_input(args, needle):
    from graphvae.chem.molecules import plain_decode, valency_aware_decode
    for decode in (valency_aware_decode, plain_decode):
        with pytest.raises(ValueError, match=needle):
            decode(*args)


@needs_rdkit
def test_mols_from_decoded():
    from graphvae.chem.molecules import mols_from_decoded
    ethanol = (torch.tensor([C, C, O]), torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    bad = (torch.tensor([C, O]), torch.tensor([[0, 3], [3, 0]]))
    apart = (torch.tensor([C, C]), torch.zeros(2, 2, dtype=torch.long))
    assert mols_from_decoded([ethanol, bad, apart]) == ["CCO", None, None]
    assert mols_from_decoded([apart], require_connected=False) == ["C.C"]
    # why each one fails: O with a triple bond cannot be sanitised, two lone carbons are
    # two pieces, no atoms at all is empty; the valid one is not counted
    empty = (torch.zeros(0, dtype=torch.long), torch.zeros(0, 0, dtype=torch.long))
    reasons: dict[str, int] = {}
    got = mols_from_decoded([ethanol, bad, apart, apart, empty], reasons=reasons)
    assert got == ["CCO", None, None, None, None]
    assert reasons == {"unsanitizable": 1, "disconnected": 2, "empty": 1}
    reasons = {}
    mols_from_decoded([apart], require_connected=False, reasons=reasons)
    assert reasons == {}


@pytest.mark.slow  # 4 s of ChemNet; the full suite runs it
def test_fcd_is_the_fcd_packages_and_reads_a_reference_once(monkeypatch):
    """``fcd_score`` equals ``fcd.get_fcd`` to the last bit; ChemNet reads a reference once
    per process, again when the reference changes; a set against itself is at 0 (the
    Fréchet distance of a Gaussian to itself, up to ``sqrtm``'s error on a rank-5
    covariance)."""
    fcd = pytest.importorskip("fcd")
    from graphvae.chem import scores

    monkeypatch.setattr(scores, "_REFERENCE", None)
    a = ["CCO", "CCN", "c1ccccc1", "CC(=O)O", "CN", "OC1CC1"]
    b = ["CCCO", "NCCN", "c1ccncc1", "CC#N", "OCCO"]
    ref = ["CCC", "CO", "C1CC1", "N#CC", "OCCO", "CC=O"]
    expected = [fcd.get_fcd(x, y, device="cpu") for x, y in ((a, ref), (b, ref), (a, b))]
    read = []
    predictions = fcd.get_predictions

    def counting(model, smiles, **kw):
        read.append(list(smiles))
        return predictions(model, smiles, **kw)

    monkeypatch.setattr(fcd, "get_predictions", counting)
    got = [scores.fcd_score(x, y) for x, y in ((a, ref), (b, ref), (a, b))]
    assert got == expected
    assert read == [ref, a, b, b, a]             # ref once for the first two, then b
    assert abs(scores.fcd_score(ref, ref)) < 1e-4
    assert expected[0] > 1                       # and the distinct sets are far from 0
    with pytest.raises(ValueError, match="at least two molecules"):
        scores.fcd_score(["C"], ref)


def test_a_smiles_longer_than_nine_atoms_can_be_written_is_refused_before_rdkit(monkeypatch):
    """A 600 kB cell took RDKit half a gigabyte and four seconds before the atom count
    refused it; the length is checked first (RDKit is never called)."""
    pytest.importorskip("rdkit")
    from rdkit import Chem

    from graphvae.chem.qm9 import MAX_SMILES_LENGTH, parse_smiles

    def never(*args, **kwargs):
        raise AssertionError("RDKit was called")
    monkeypatch.setattr(Chem, "MolFromSmiles", never)
    with pytest.raises(ValueError, match=f"SMILES of 600,000 characters is longer than a "
                                         f"molecule of at most 9 heavy atoms is written "
                                         f"\\({MAX_SMILES_LENGTH}\\)"):
        parse_smiles("C" * 600_000)


@needs_rdkit
def test_parsed_bonds_are_listed_low_end_first_and_sorted():
    """RDKit stores a ring closure from its later atom (C1CC1's third bond runs 2 -> 0, and
    O=C1CC1's 3 -> 1); the parse lists every bond as (low, high, type), sorted, as the graph
    sets' edges are read. Cyclopropanone by hand: O0=C1 double, then C1-C2, C1-C3, C2-C3."""
    from graphvae.chem.qm9 import parse_smiles
    assert parse_smiles("C1CC1")[1] == [(0, 1, 0), (0, 2, 0), (1, 2, 0)]
    types, bonds, canonical = parse_smiles("O=C1CC1")
    assert (types, bonds, canonical) == ([O, C, C, C], [(0, 1, 1), (1, 2, 0), (1, 3, 0),
                                                        (2, 3, 0)], "O=C1CC1")


@needs_rdkit
def test_an_atom_of_valence_128_or_more_is_invalid_not_an_internal_error():
    """A carbon triple-bonded to 43 others (valence 129) failed RDKit's own precondition, a
    RuntimeError that ended `score` with exit 3; at valence 126 it was a sanitisation
    error. Both are invalid molecules under both definitions now."""
    from graphvae.chem.qm9 import graph_to_mol
    from graphvae.chem.validity import gdss_valid
    for others in (42, 43, 128):
        bond = 3 if others < 128 else 1
        codes = torch.zeros(others + 1, others + 1, dtype=torch.long)
        codes[0, 1:] = codes[1:, 0] = bond
        types = [0] * (others + 1)
        assert graph_to_mol(types, codes) is None
        assert not gdss_valid(types, codes)


def _bond_codes(n, bonds):
    codes = torch.zeros(n, n, dtype=torch.long)
    for a, b, code in bonds:
        codes[a, b] = codes[b, a] = code
    return codes


@needs_rdkit
def test_gdss_validity_sums_bond_orders_and_adds_bonds_from_the_lower_triangle():
    """GDSS compares an atom's valence (the sum of its bond orders, not its bond count)
    with its normal one. C=N(C)C, N first: bonds go in as (1,0) double, (2,0), (3,0); at
    the third N's valence is 2 + 1 + 1 = 4 = 3 + 1, so it becomes N+, which allows 4:
    valid. (Counted in bonds, N has 3: no charge, and not valid.)

    GDSS adds bonds row by row below the diagonal: (2,0) (2,1) (3,0) (3,2) (4,0) for C0
    C1 N2 O3 C4 with C0-N2, C1-N2, C0-O3, N2=O3 and C0-C4. The double bond (3,2) takes N
    to 4 and O to 3 at once; RDKit names one, which is charged, and the next bond, (4,0),
    runs the check again, which names the other: both charged, valid. Added above the
    diagonal, (0,2) (0,3) (0,4) (1,2) (2,3), the double bond comes last and one of the
    two stays over its valence."""
    from graphvae.chem.validity import gdss_construct, gdss_valid
    codes = _bond_codes(4, [(0, 1, 2), (0, 2, 1), (0, 3, 1)])
    assert gdss_valid([N, C, C, C], codes) is True
    assert gdss_construct([N, C, C, C], codes).GetAtomWithIdx(0).GetFormalCharge() == 1
    codes = _bond_codes(5, [(0, 2, 1), (1, 2, 1), (0, 3, 1), (2, 3, 2), (0, 4, 1)])
    assert gdss_valid([C, C, N, O, C], codes) is True
    charges = [a.GetFormalCharge() for a in gdss_construct([C, C, N, O, C], codes).GetAtoms()]
    assert charges == [0, 0, 1, 1, 0]


@needs_rdkit
def test_gdss_charges_only_n_o_s_exactly_one_over_and_an_unnamed_failure_fails(monkeypatch):
    """GDSS's ``construct_mol`` charges the atom RDKit names only when it is N, O or S and
    exactly one over its normal valence. A carbon with five single bonds (one over its 4)
    stays neutral; a nitrogen with three single bonds that then takes a double bond jumps
    from 3 to 5, two over, and stays neutral too. Neither is valid. A valence check that
    fails without naming an atom (RDKit's messages all name one; -1 stands for one that
    does not) charges nothing and is a failure, not a pass."""
    from graphvae.chem import validity
    five = _bond_codes(6, [(0, k, 1) for k in range(1, 6)])
    assert [a.GetFormalCharge() for a in validity.gdss_construct([C] * 6, five).GetAtoms()] \
        == [0] * 6
    assert validity.gdss_valid([C] * 6, five) is False
    jump = _bond_codes(5, [(0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 4, 2)])   # (4, 0) comes last
    assert [a.GetFormalCharge() for a in validity.gdss_construct([N, C, C, C, C],
                                                                  jump).GetAtoms()] == [0] * 5
    assert validity.gdss_valid([N, C, C, C, C], jump) is False

    class Unnamed:
        class SanitizeFlags:
            SANITIZE_PROPERTIES = 0

        @staticmethod
        def SanitizeMol(mol, sanitizeOps):  # noqa: N802 (RDKit's name)
            raise ValueError("valence check failed")

    assert validity._valence_error(Unnamed, None) == -1
    monkeypatch.setattr(validity, "_valence_error", lambda chem, mol: -1)
    one_over = _bond_codes(5, [(0, k, 1) for k in range(1, 5)])    # N with four bonds
    charges = [a.GetFormalCharge() for a in validity.gdss_construct([N, C, C, C, C],
                                                                     one_over).GetAtoms()]
    assert charges == [0] * 5 and validity.gdss_valid([N, C, C, C, C], one_over) is False


@needs_rdkit
def test_nspdk_graphs_label_atoms_by_symbol_and_bonds_by_order():
    """``smiles_graphs`` labels as GDSS's ``mols_to_nx``: C=CC#N is C, C, C, N joined by
    bonds of order 2, 1 and 3 (by hand); a SMILES RDKit cannot read is named, not
    skipped."""
    from graphvae.chem.scores import smiles_graphs
    (g,) = smiles_graphs(["C=CC#N"])
    assert [g.nodes[v]["label"] for v in sorted(g)] == ["C", "C", "C", "N"]
    assert {tuple(sorted(e)): d["label"] for *e, d in g.edges(data=True)} == {
        (0, 1): 2, (1, 2): 1, (2, 3): 3}
    with pytest.raises(ValueError, match="RDKit cannot read the SMILES 'C1CC'"):
        smiles_graphs(["CC", "C1CC"])


def test_molecule_scores_need_bond_types_too():
    from graphvae.chem.scores import molecule_scores
    from graphvae.containers import SampledGraph
    g = SampledGraph(torch.zeros(2, 2), node_types=torch.tensor([C, C]))   # no bond types
    with pytest.raises(ValueError, match="molecule scores need samples with atom and bond "
                                         "types"):
        molecule_scores([g], set(), valency=False, fcd=False)


def test_plain_decoding_never_bonds_an_atom_to_itself():
    """A diagonal above the threshold (a decoder's self-pair score) bonds nothing."""
    from graphvae.chem.molecules import plain_decode
    _, bonds = plain_decode(torch.tensor([C, C]), torch.tensor([[0.9, 0.2], [0.2, 0.9]]),
                            torch.tensor([1.0, 0.0, 0.0]).expand(2, 2, 3))
    assert bonds.tolist() == [[0, 0], [0, 0]]


@needs_rdkit
def test_the_valency_aware_row_starts_from_the_sample_and_fcd_nspdk_score_the_raw_one(
        monkeypatch):
    """C0 O1 C2 sampled as C-O-C though the unsampled pair C0-C2 has probability 0.9: the
    valency-aware row keeps the sampled bonds (score 0.5 + 0.3/2 each, against 0.9/2) and
    gives COC, where decoding the probabilities alone would give CCO. Two F=F samples
    (invalid raw, FF after correction) leave FCD and NSPDK undefined: they score the raw
    valid molecules only. FCD runs on two valid molecules (a stand-in records the call)
    and the reference's size is the reference's."""
    from graphvae.chem import scores
    from graphvae.containers import SampledGraph
    p = torch.tensor([[0.0, 0.3, 0.9], [0.3, 0.0, 0.3], [0.9, 0.3, 0.0]])
    codes = _bond_codes(3, [(0, 1, 1), (1, 2, 1)])
    single = torch.tensor([1.0, 0.0, 0.0]).expand(3, 3, 3).clone()
    coc = SampledGraph((codes > 0).float(), edge_prob=p, node_types=torch.tensor([C, O, C]),
                       bond_prob=single, bond_types=codes)
    out = scores.molecule_scores([coc], set(), valency=True, fcd=False)
    assert out["sampled"]["smiles"] == ["COC"] and out["valency_aware"]["smiles"] == ["COC"]
    ff = SampledGraph(torch.ones(2, 2) - torch.eye(2), edge_prob=torch.full((2, 2), 0.9),
                      node_types=torch.tensor([F, F]),
                      bond_prob=torch.tensor([0.3, 0.7, 0.0]).expand(2, 2, 3).clone(),
                      bond_types=_bond_codes(2, [(0, 1, 2)]))
    calls = []
    monkeypatch.setattr(scores, "fcd_score", lambda a, b: calls.append((a, b)) or 1.5)
    out = scores.molecule_scores([ff, ff], set(), valency=True, reference=["CC", "CO", "CN"])
    assert out["valency_aware"]["smiles"] == ["FF", "FF"] and out["sampled"]["validity"] == 0
    raw = out["sampled"]
    assert math.isnan(raw["fcd"]) and math.isnan(raw["nspdk"]) and calls == []
    out = scores.molecule_scores([coc, coc], set(), valency=False,
                                 reference=["CC", "CO", "CN"])
    assert calls == [(["COC", "COC"], ["CC", "CO", "CN"])]
    assert out["sampled"]["fcd"] == 1.5 and out["sampled"]["reference_size"] == 3


@needs_rdkit
def test_each_decoding_scores_its_own_molecules():
    """Two fluorines sampled with a double bond (p = 0.9 for the pair, 0.7 for the double
    order). Raw, F=F fails both definitions (F takes one bond and is not an atom GDSS
    charges): one unsanitizable molecule. The valency-aware decoding keeps the sampled
    bond at the highest-scoring order that fits, single: FF, valid under both, and its
    own failure counts are all 0 (not the raw row's)."""
    from graphvae.chem.scores import molecule_scores
    from graphvae.containers import SampledGraph
    adj = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    edge_prob = torch.tensor([[0.0, 0.9], [0.9, 0.0]])
    bond_prob = torch.tensor([0.2, 0.7, 0.1]).expand(2, 2, 3).clone()
    g = SampledGraph(adj, edge_prob=edge_prob, node_types=torch.tensor([F, F]),
                     bond_prob=bond_prob, bond_types=torch.tensor([[0, 2], [2, 0]]))
    out = molecule_scores([g], set(), valency=True, fcd=False)
    assert out["sampled"]["gdss_validity"] == 0.0
    assert out["sampled"]["invalid"] == {"empty": 0, "unsanitizable": 1, "disconnected": 0}
    assert out["valency_aware"]["smiles"] == ["FF"]
    assert out["valency_aware"]["gdss_validity"] == 1.0
    assert out["valency_aware"]["invalid"] == {"empty": 0, "unsanitizable": 0,
                                               "disconnected": 0}


@needs_rdkit
def test_nspdk_counts_repeated_samples_and_labels_aromatic_bonds_one():
    """NSPDK scores every valid sample, repeats included. φ(C) (one atom of degree 0) and
    φ(CC) (atoms of degree 1) share no feature and are unit vectors, so samples C, C, CC
    against the reference CC give ‖(2φ(C) + φ(CC))/3 − φ(CC)‖² = (2/3)² + (2/3)² = 8/9
    (deduplicated, C and CC, it would be 1/2). GDSS labels a bond by int(its order), so
    benzene's six aromatic bonds (1.5) are labelled 1, as a single bond is."""
    from graphvae.chem.scores import molecule_scores, smiles_graphs
    from graphvae.containers import SampledGraph

    def carbons(n, bonds):
        codes = _bond_codes(n, bonds)
        return SampledGraph((codes > 0).float(), node_types=torch.zeros(n, dtype=torch.long),
                            bond_types=codes)
    samples = [carbons(1, []), carbons(1, []), carbons(2, [(0, 1, 1)])]
    raw = molecule_scores(samples, set(), valency=False, reference=["CC"], fcd=False)
    assert raw["sampled"]["smiles"] == ["C", "C", "CC"]
    assert raw["sampled"]["nspdk"] == pytest.approx(8 / 9, abs=1e-12)
    (benzene,) = smiles_graphs(["c1ccccc1"])
    labels = [d["label"] for _, _, d in benzene.edges(data=True)]
    assert labels == [1] * 6 and all(type(x) is int for x in labels)
    assert [d["label"] for _, d in benzene.nodes(data=True)] == ["C"] * 6
