"""Scoring a file of samples: ``graphvae score``.

``graphvae generate --out DIR`` writes every raw sample to ``DIR/samples.jsonl``, so that
its metrics can be recomputed from the file. ``graphvae score`` does that: it reads a
sample file, rebuilds the split that ``generate`` used (same data set, seed and
protocol; a run folder supplies them from its own ``metrics.json``), and scores the
samples with :func:`~graphvae.tasks.generation.sample_metrics`, the function ``generate``
itself scores with. The same command scores any other generator's samples under our
protocols, given in any of three formats:

* ``.jsonl``: one object a line, ``{"num_nodes": n, "edges": [[i, j], ...]}`` for graph
  sets or ``{"atoms": ["C", ...], "bonds": [[i, j, order], ...]}`` for molecules (QM9's
  atoms C/N/O/F, bond orders 1–3), every line of one kind;
* ``.pkl``, a pickled list of networkx graphs (GDSS saves its samples so), read by the
  restricted unpickler that reads the stored graph sets: nothing in it runs;
* graph6 (any other name), one graph a line, for graph sets.

What it reports: for graph sets the MMD² table (and the train-vs-test row), the copies
of training graphs and the sizes; for molecules the raw samples' validity under both
definitions, uniqueness, novelty, FCD and NSPDK. ``generate``'s valency-aware row
re-decodes the model's edge probabilities, which a sample file does not hold, so it is
not recomputed, and nor are ``mmd2_draws`` (further sample sets of the model).

A sample file is a user's file: every line is checked (JSON, keys, types, node indices,
self-loops, repeated pairs, at most ``MAX_NODES`` nodes a graph, ``MAX_SAMPLES``
samples and ``MAX_PAIRS`` node pairs in all, and a file of at most
``MAX_SAMPLES_BYTES``); anything else is a :class:`~graphvae.errors.DataError` naming the
line. Graphs too dense to score (orbit counts beyond ``MAX_ORBIT_WORK``), and graph sets
of more than ``MAX_GRAPH_SAMPLES`` graphs, are refused before any statistic is computed
(graph6 and pickled sets before a graph past the count is built).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from graphvae.containers import SampledGraph
from graphvae.datasets.graphgen import MAX_NODES, load_graph_pickle, read_graph6
from graphvae.errors import DataError, quote
from graphvae.io import RepeatedKey, parse_json, read_json, text_lines
from graphvae.tasks.generation_config import MAX_GRAPH_SAMPLES

if TYPE_CHECKING:
    from graphvae.tasks.generation import GenerationConfig

#: The most samples a file may hold.
MAX_SAMPLES = 1_000_000
#: The largest samples.jsonl read: it is read whole, at about 18 times its size in memory
#: (a 50 MB file took 1 GB); 3,000 QM9 molecules take 0.3 MB, a million 0.1 GB.
MAX_SAMPLES_BYTES = 256 << 20
#: The most node pairs (``Σ n²`` over the samples, each held as a dense matrix) a file may hold.
MAX_PAIRS = 10**8

#: The most orbit-counting work a sample set may ask for (:func:`orbit_work`): at about
#: 2·10¹⁰ multiply-adds a second on one core, some four minutes. Node and pair limits do not
#: bound it: a complete graph of 2,000 nodes, a 333 KB graph6 line, asks for 1.6·10¹³ (hours).
MAX_ORBIT_WORK = 4 * 10**12

_GRAPH_KEYS, _MOLECULE_KEYS = {"num_nodes", "edges"}, {"atoms", "bonds"}


def _index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pairs(path: Path, lineno: int, items: Any, n: int, width: int, what: str
           ) -> list[list[int]]:
    """The ``[i, j(, order)]`` lists of a record: whole numbers, nodes in ``0..n-1``,
    no self-loop, no pair twice."""
    if not isinstance(items, list):
        raise DataError(path, f"{what} must be a list, got {quote(items)}", lineno)
    seen: set[tuple[int, int]] = set()
    for item in items:
        if not (isinstance(item, list) and len(item) == width and all(map(_index, item))):
            raise DataError(path, f"each of {what} must be {width} whole numbers, got "
                                  f"{quote(item)}", lineno)
        i, j = item[0], item[1]
        if not (0 <= i < n and 0 <= j < n):
            raise DataError(path, f"{what}: {quote(item)} names a node outside 0..{n - 1}",
                            lineno)
        if i == j:
            raise DataError(path, f"{what}: {quote(item)} is a self-loop", lineno)
        key = (min(i, j), max(i, j))
        if key in seen:
            raise DataError(path, f"{what}: the pair {list(key)} is listed twice", lineno)
        seen.add(key)
    return items


def _size(path: Path, lineno: int, rec: dict[str, Any]) -> int:
    """The record's node count, checked (``num_nodes``, or the length of ``atoms``)."""
    if "num_nodes" in rec:
        n = rec["num_nodes"]
        if not _index(n) or not 0 <= n <= MAX_NODES:
            raise DataError(path, f"num_nodes must be a whole number in 0..{MAX_NODES}, got "
                                  f"{quote(n)}", lineno)
        return n
    atoms = rec["atoms"]
    if not isinstance(atoms, list) or len(atoms) > MAX_NODES:
        raise DataError(path, f"atoms must be a list of at most {MAX_NODES} symbols, got "
                              f"{quote(atoms)}", lineno)
    return len(atoms)


def _adjacency(n: int, pairs: Any) -> torch.Tensor:
    """The symmetric 0/1 ``(n, n)`` matrix of the pairs ``(i, j)`` (checked already)."""
    adj = torch.zeros(n, n)
    for i, j in pairs:
        adj[i, j] = adj[j, i] = 1.0
    return adj


def _graph_record(path: Path, lineno: int, rec: dict[str, Any]) -> SampledGraph:
    n = rec["num_nodes"]
    return SampledGraph(_adjacency(n, _pairs(path, lineno, rec["edges"], n, 2, "edges")))


def _molecule_record(path: Path, lineno: int, rec: dict[str, Any]) -> SampledGraph:
    from graphvae.chem.qm9 import ATOM_TYPES, BOND_TYPES

    atoms = rec["atoms"]
    bad = [a for a in atoms if a not in ATOM_TYPES]
    if bad:
        raise DataError(path, f"atom {quote(bad[0])} is not one of {', '.join(ATOM_TYPES)}",
                        lineno)
    n = len(atoms)
    adj = torch.zeros(n, n)
    bond_types = torch.zeros(n, n, dtype=torch.long)
    for i, j, order in _pairs(path, lineno, rec["bonds"], n, 3, "bonds"):
        if not 1 <= order <= len(BOND_TYPES):
            raise DataError(path, f"bond {quote([i, j, order])}: the order must be 1.."
                                  f"{len(BOND_TYPES)}", lineno)
        adj[i, j] = adj[j, i] = 1.0
        bond_types[i, j] = bond_types[j, i] = order
    types = torch.tensor([ATOM_TYPES.index(a) for a in atoms], dtype=torch.long)
    return SampledGraph(adj, node_types=types, bond_types=bond_types)


def read_samples_jsonl(path: str | os.PathLike) -> tuple[list[SampledGraph], bool]:
    """The samples of a ``samples.jsonl`` file and whether they are molecules (see the
    module docstring); blank lines are skipped."""
    path = Path(path)
    samples: list[SampledGraph] = []
    kind: set[str] | None = None
    pairs = 0
    # (\n, \r\n, \r: no others)
    for lineno, line in enumerate(text_lines(path, MAX_SAMPLES_BYTES), start=1):
        if not line.strip():
            continue
        try:
            rec = parse_json(line)
        except RepeatedKey as err:
            raise DataError(path, f"the key {quote(err.args[0])} appears twice", lineno) from None
        except (ValueError, RecursionError):
            raise DataError(path, f"not a JSON object: {quote(line)}", lineno) from None
        if not isinstance(rec, dict) or set(rec) not in (_GRAPH_KEYS, _MOLECULE_KEYS):
            keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
            raise DataError(path, "each line must be an object with the keys num_nodes and "
                                  f"edges (a graph) or atoms and bonds (a molecule), got "
                                  f"{quote(keys)}", lineno)
        if kind is not None and set(rec) != kind:
            raise DataError(path, "graphs and molecules are mixed in one file", lineno)
        kind = set(rec)
        if len(samples) == MAX_SAMPLES:
            raise DataError(path, f"more than {MAX_SAMPLES} samples", lineno)
        pairs += _size(path, lineno, rec) ** 2
        if pairs > MAX_PAIRS:
            raise DataError(path, f"the samples up to here hold more than {MAX_PAIRS:.0e} "
                                  "node pairs in all (n² summed over the samples)", lineno)
        samples.append(_graph_record(path, lineno, rec) if kind == _GRAPH_KEYS
                       else _molecule_record(path, lineno, rec))
    if not samples:
        raise DataError(path, "holds no samples")
    return samples, kind == _MOLECULE_KEYS


def read_samples(path: str | os.PathLike) -> tuple[list[SampledGraph], bool]:
    """``(samples, molecules?)`` from a ``.jsonl`` file, a ``.pkl`` list of networkx graphs
    (as GDSS saves its samples; read by the restricted unpickler, no code runs) or, under
    any other name, a graph6 file (graphs only)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_samples_jsonl(path)
    # graphs only: more than MAX_GRAPH_SAMPLES would be refused once read, so refuse them
    # before they are built
    graphs = load_graph_pickle(path, MAX_GRAPH_SAMPLES) if suffix == ".pkl" else \
        read_graph6(path, MAX_PAIRS, MAX_GRAPH_SAMPLES)
    if sum(g.number_of_nodes() ** 2 for g in graphs) > MAX_PAIRS:
        raise DataError(path, f"the samples hold more than {MAX_PAIRS:.0e} node pairs in all "
                              "(n² summed over the samples)")
    return [SampledGraph(_adjacency(g.number_of_nodes(), g.edges())) for g in graphs], False


def orbit_work(samples: list[SampledGraph]) -> int:
    """``Σ_v d_v³`` over the samples' nodes: the multiply-adds of counting the 4-cliques in
    each node's neighbourhood (:func:`graphvae.evaluation.orbits.noninduced_counts`), the
    part of the orbit statistic that grows fastest on dense graphs."""
    return sum(int((s.adj.sum(1).round().to(torch.int64) ** 3).sum()) for s in samples)


#: The fields of a run's config that decide its split and its scores.
SCORING_FIELDS = ("dataset", "generated", "protocol", "seed", "qm9_limit")


def run_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The :data:`SCORING_FIELDS` of the run that wrote ``folder`` (from the ``config`` of its
    ``metrics.json``, checked as :class:`~graphvae.tasks.generation.GenerationConfig`)."""
    from graphvae.tasks.generation import GenerationConfig

    path = Path(folder) / "metrics.json"
    metrics = read_json(path)
    if not isinstance(metrics, dict) or not isinstance(metrics.get("config"), dict):
        raise DataError(path, "no config object: not the metrics.json of graphvae generate")
    try:
        cfg = GenerationConfig.from_dict(metrics["config"])
    except (ValueError, TypeError) as err:
        raise DataError(path, f"its config is not one of graphvae generate ({err})") from None
    return {k: getattr(cfg, k) for k in SCORING_FIELDS}


def score_samples(path: str | os.PathLike, cfg: GenerationConfig,
                  root: str | Path | None = None,
                  figure: str | os.PathLike | None = None,
                  progress: bool = False) -> dict[str, Any]:
    """Score the samples of ``path`` against the split ``cfg`` gives (its
    :data:`SCORING_FIELDS`; ``cfg.fcd``: the FCD for molecules), as ``graphvae generate``
    scores its own (see the module docstring). ``figure``: also draw the first samples
    under training graphs there, as ``generate``'s ``samples.png``. ``progress``: bars on
    a terminal while QM9 is read and scored."""
    from graphvae.provenance import environment
    from graphvae.tasks.generation import load_generation_data, plot_samples, sample_metrics

    samples, molecules = read_samples(path)
    qm9 = (cfg.dataset or "") == "qm9"
    if molecules != qm9:
        raise DataError(path, "holds molecules: score it with --dataset qm9" if molecules
                        else f"holds graphs without atoms, which {cfg.dataset} cannot score")
    if not molecules and len(samples) > MAX_GRAPH_SAMPLES:
        raise DataError(path, f"holds {len(samples):,} graphs; at most {MAX_GRAPH_SAMPLES:,} "
                              f"are scored (the MMD² compares every pair of samples: minutes "
                              f"and gigabytes beyond)")
    if not molecules and (work := orbit_work(samples)) > MAX_ORBIT_WORK:
        raise DataError(path, f"its graphs are too dense to score: their orbit counts take "
                              f"{work:.1e} multiply-adds (each node's degree cubed, summed), "
                              f"more than the {MAX_ORBIT_WORK:.0e} (minutes on one core) "
                              f"allowed")
    if qm9 and cfg.fcd:
        from graphvae.chem.scores import require_fcd
        require_fcd()
    data = load_generation_data(cfg, root, progress)
    sampled = [s.to_networkx() for s in samples]
    scores, mols = sample_metrics(data, samples, sampled, cfg.replace(valency=False), progress)
    if figure is not None:
        plot_samples(data, sampled, mols, Path(figure),
                     f"{Path(path).name} on {data.name}: training graphs (top) and samples")
    return {"samples": str(path), "dataset": data.name,
            **{k: getattr(cfg, k) for k in SCORING_FIELDS if k not in ("dataset", "generated")},
            "generated": data.name.endswith("(generated)"),   # what was read, not the flag
            "split": data.info, "num_samples": len(samples), **scores,
            "environment": environment()}


__all__ = ["MAX_ORBIT_WORK", "MAX_PAIRS", "MAX_SAMPLES", "SCORING_FIELDS", "orbit_work",
           "read_samples", "read_samples_jsonl", "run_config", "score_samples"]
