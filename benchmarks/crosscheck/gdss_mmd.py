"""Cross-check of our MMD² values against GDSS's own evaluation code on identical graphs.

    python benchmarks/crosscheck/gdss_mmd.py --gdss-repo /tmp/gdss_checkout --deps /tmp/gdss_deps \\
        --out benchmarks/results/gdss_mmd_crosscheck.json

What is compared: for each pair of graph sets (reference, generated),
``graphvae.evaluation.graph_stats.graph_mmd`` under protocol ``graphrnn`` (degree,
clustering, orbit) and ``gdss`` (spectral) against the functions of GDSS's
``evaluation/stats.py`` (Jo et al., ICML 2022) with the kernels that GDSS's
``utils/loader.py::load_eval_settings`` picks: ``degree_stats`` (gaussian_emd),
``clustering_stats`` (gaussian_emd, σ 0.1, distance scaling 100), ``orbit_stats_all``
(gaussian, σ 30, orbit counts from the compiled ORCA program) and ``spectral_stats``
(gaussian_emd). The pairs: community-small graphs 0–19 vs 20–39, ego-small graphs 0–39
vs 40–79 (the stored sets, read with ``load_graph_set``), and three hand-made pairs
(paths vs cycles, graphs with isolated nodes, dense graphs with 4-cliques).

GDSS's code is imported from ``--gdss-repo`` at run time (nothing of it is copied
here) and its files are left as they are; the script changes three things on the
imported modules only:

* ``stats.ORCA_DIR`` becomes the absolute path of the checkout's ``evaluation/orca``
  (GDSS gives it relative to its repository root), so the run does not depend on the
  working directory;
* ``mmd.disc`` runs with ``is_parallel=False``: GDSS's ``compute_mmd`` never passes the
  flag, so its sums would otherwise go through a process pool. Only the order of the
  floating-point additions differs;
* ``mmd.pyemd.emd`` gets an explicit ``backend`` when the installed pyemd has one
  (pyemd ≥ 1.1). GDSS pins pyemd 0.5.1, which wraps Pele & Werman's C++ ``emd_hat``;
  pyemd 1.1 ships the same C++ code as ``backend="cpp"`` but defaults to a POT-based
  solver (``backend="pot"``). Both are run when available and reported apart; ``cpp``
  is the one that reproduces GDSS's published set-up.

Expected agreement (relative difference ``|ours − theirs| / |theirs|``):

* orbit: both sides compute the same Gaussian RBF on the same 15-vectors (our counter
  vs ORCA), so only floating-point summation order differs: below ``1e-9``
  (typically ``1e-12``–``1e-15``);
* degree, clustering, spectral with the C++ EMD: ``emd_hat`` scales the masses and the
  ground distances to integers of about 10⁶ before solving, so each EMD is off by up to
  ~1e-6 relative, and the MMD² (a difference of kernel means) magnifies that: below
  ``1e-4``;
* the same with the POT backend: an exact floating-point solver, below ``1e-9``.

The script exits 1 if any value is outside its tolerance, 2 on a missing GDSS
checkout, ORCA binary or pyemd.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from graphvae.datasets.graphsets import load_graph_set
from graphvae.evaluation.graph_stats import graph_mmd
from graphvae.io import write_json

STATISTICS = ("degree", "clustering", "orbit", "spectral")
#: our protocol for each statistic (GraphRNN's kernels; spectral only exists under gdss)
OUR_PROTOCOL = {"degree": "graphrnn", "clustering": "graphrnn", "orbit": "graphrnn",
                "spectral": "gdss"}
#: largest accepted relative difference, by statistic and EMD backend (orbit uses no EMD)
TOLERANCE = {"orbit": 1e-9, "cpp": 1e-4, "pot": 1e-9}
ORCA_COMPILE = "g++ -O2 -std=c++11 -o orca orca.cpp"


class SetupError(Exception):
    """A missing prerequisite: reported on one line, exit status 2."""


# -------------------------------------------------------------------------------------------
# importing GDSS's evaluation code


def load_gdss(repo: Path, deps: Path | None) -> types.SimpleNamespace:
    """Import GDSS's ``evaluation.stats`` / ``evaluation.mmd`` from a checkout, with the
    run-time adjustments of the module docstring. Returns the modules and pyemd."""
    repo = repo.resolve()
    stats_py, orca_dir = repo / "evaluation" / "stats.py", repo / "evaluation" / "orca"
    if not stats_py.is_file() or not (repo / "evaluation" / "mmd.py").is_file():
        raise SetupError(f"no GDSS checkout at {repo} (expected evaluation/stats.py and "
                         f"evaluation/mmd.py)")
    orca_bin = orca_dir / "orca"
    if not os.access(orca_bin, os.X_OK):
        raise SetupError(f"ORCA is not compiled: run `cd {orca_dir} && {ORCA_COMPILE}`")
    if deps is not None:
        if not deps.is_dir():
            raise SetupError(f"--deps folder {deps} does not exist")
        sys.path.append(str(deps.resolve()))  # after the venv: it only adds what is missing
    try:
        import pyemd
    except ImportError as exc:
        raise SetupError(f"pyemd is not importable ({exc}); install it with `python -m pip "
                         f"install --target DIR pyemd` and pass --deps DIR") from None

    # GDSS was written for numpy < 1.24, which still had these aliases
    for alias, builtin in (("float", float), ("int", int), ("bool", bool)):
        if not hasattr(np, alias):
            setattr(np, alias, builtin)
    if not (repo / "utils" / "graph_utils.py").is_file():
        # stats.py imports adjs_to_graphs for a function this check never calls
        stub = types.ModuleType("utils.graph_utils")
        stub.adjs_to_graphs = _not_in_checkout  # type: ignore[attr-defined]
        sys.modules.setdefault("utils", types.ModuleType("utils"))
        sys.modules["utils.graph_utils"] = stub
    sys.path.insert(0, str(repo))
    stats: Any = importlib.import_module("evaluation.stats")
    mmd: Any = importlib.import_module("evaluation.mmd")
    for module in (stats, mmd):
        if Path(module.__file__ or "").resolve().parent != repo / "evaluation":
            raise SetupError(f"imported {module.__name__} from {module.__file__}, not from "
                             f"{repo}: another 'evaluation' package shadows GDSS's")
    stats.ORCA_DIR = str(orca_dir)
    mmd.disc = functools.partial(mmd.disc, is_parallel=False)
    backends = _emd_backends(pyemd)
    return types.SimpleNamespace(stats=stats, mmd=mmd, pyemd=pyemd, backends=backends,
                                 orca=str(orca_bin))


def _not_in_checkout(*_args, **_kwargs):
    raise RuntimeError("utils/graph_utils.py is not in the GDSS checkout")


def _emd_backends(pyemd) -> list[str | None]:
    """``["cpp", "pot"]`` (those that run) for pyemd with a ``backend`` option, else
    ``[None]``: the installed pyemd as it is (0.5.x and 1.0 have only the C++ code)."""
    x, y, d = np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    found: list[str | None] = []
    for backend in ("cpp", "pot"):
        try:
            pyemd.emd(x, y, d, backend=backend)
        except TypeError:
            return [None]
        except (ImportError, ValueError):
            continue
        found.append(backend)
    return found or [None]


def use_emd_backend(gdss: types.SimpleNamespace, backend: str | None) -> None:
    """Make GDSS's ``emd`` call ``pyemd.emd`` with this backend (None: pyemd's default)."""
    emd = gdss.pyemd.emd if backend is None else functools.partial(gdss.pyemd.emd,
                                                                  backend=backend)
    gdss.mmd.pyemd = types.SimpleNamespace(emd=emd)


def gdss_mmd(gdss: types.SimpleNamespace, statistic: str, ref: list[nx.Graph],
             gen: list[nx.Graph]) -> float:
    """One statistic through GDSS's functions, kernels as in ``load_eval_settings``."""
    s, m = gdss.stats, gdss.mmd
    calls: dict[str, Callable[[], float]] = {
        "degree": lambda: s.degree_stats(ref, gen, KERNEL=m.gaussian_emd, is_parallel=False),
        "clustering": lambda: s.clustering_stats(ref, gen, KERNEL=m.gaussian_emd,
                                                 is_parallel=False),
        "orbit": lambda: s.orbit_stats_all(ref, gen, KERNEL=m.gaussian),
        "spectral": lambda: s.spectral_stats(ref, gen, KERNEL=m.gaussian_emd,
                                             is_parallel=False),
    }
    return float(calls[statistic]())


def check_orca(gdss: types.SimpleNamespace) -> None:
    """GDSS skips (with a print) every graph ORCA fails on: make sure it runs at all."""
    try:
        counts = gdss.stats.orca(nx.complete_graph(4))
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SetupError(f"ORCA at {gdss.orca} does not run: {exc}") from None
    if counts.shape != (4, 15) or not (counts[:, 14] == 1).all():
        raise SetupError(f"ORCA at {gdss.orca} gave unexpected counts for K4: {counts}")


# -------------------------------------------------------------------------------------------
# graph sets


def hand_made_pairs() -> dict[str, tuple[list[nx.Graph], list[nx.Graph]]]:
    paths = [nx.path_graph(n) for n in range(3, 11)]
    cycles = [nx.cycle_graph(n) for n in range(3, 11)]
    with_isolates = []
    for n in range(4, 10):  # a path, a star and a triangle beside 1-3 isolated nodes
        g = nx.path_graph(n)
        g.add_nodes_from(range(n, n + 1 + n % 3))
        with_isolates.append(g)
        h = nx.star_graph(n - 1)
        h.add_edges_from([(n, n + 1), (n + 1, n + 2), (n + 2, n)])
        h.add_nodes_from(range(n + 3, n + 3 + 1 + n % 2))
        with_isolates.append(h)
    trees = [nx.random_labeled_tree(n, seed=n) for n in range(5, 15)]
    dense = ([nx.complete_graph(n) for n in range(4, 8)] + [nx.wheel_graph(n) for n in range(5, 9)]
             + [nx.complete_bipartite_graph(3, 4)])
    random_dense = [nx.gnp_random_graph(10, 0.5, seed=s) for s in range(8)]
    random_dense = [g for g in random_dense if g.number_of_edges() > 0]
    return {"paths-vs-cycles": (paths, cycles), "isolated-nodes-vs-trees": (with_isolates, trees),
            "dense-vs-gnp": (dense, random_dense)}


def graph_pairs(data_root: str | None) -> dict[str, tuple[list[nx.Graph], list[nx.Graph]]]:
    community = load_graph_set("community-small", data_root)
    ego = load_graph_set("ego-small", data_root)
    return {"community-small 0:20 vs 20:40": (community[:20], community[20:40]),
            "ego-small 0:40 vs 40:80": (ego[:40], ego[40:80]), **hand_made_pairs()}


# -------------------------------------------------------------------------------------------
# comparison


def relative_difference(ours: float, theirs: float) -> float:
    if theirs == 0.0:
        return 0.0 if ours == 0.0 else float("inf")
    return abs(ours - theirs) / abs(theirs)


def compare_pair(gdss: types.SimpleNamespace, ref: list[nx.Graph], gen: list[nx.Graph],
                 ) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for statistic in STATISTICS:
        ours = graph_mmd(ref, gen, OUR_PROTOCOL[statistic], [statistic])[statistic]
        backends: list[str | None] = [None] if statistic == "orbit" else gdss.backends
        theirs: dict[str, dict] = {}
        for backend in backends:
            if backend is not None:
                use_emd_backend(gdss, backend)
            value = gdss_mmd(gdss, statistic, ref, gen)
            tolerance = TOLERANCE["orbit" if statistic == "orbit" else (backend or "cpp")]
            rel = relative_difference(ours, value)
            theirs["orca" if statistic == "orbit" else (backend or "default")] = {
                "gdss": value, "abs_diff": abs(ours - value), "rel_diff": rel,
                "tolerance": tolerance, "ok": rel <= tolerance}
        rows[statistic] = {"ours": ours, "protocol": OUR_PROTOCOL[statistic], "gdss": theirs}
    return rows


def describe(graphs: list[nx.Graph]) -> dict[str, float]:
    return {"graphs": len(graphs),
            "mean_nodes": float(np.mean([g.number_of_nodes() for g in graphs])),
            "mean_edges": float(np.mean([g.number_of_edges() for g in graphs])),
            "isolated_nodes": sum(nx.number_of_isolates(g) for g in graphs)}


def print_table(results: dict[str, dict]) -> None:
    print(f"{'pair':32s} {'statistic':10s} {'backend':8s} {'ours':>14s} {'GDSS':>14s} "
          f"{'rel. diff':>10s}  ok")
    for pair, res in results.items():
        for statistic, row in res["statistics"].items():
            for backend, cmp in row["gdss"].items():
                print(f"{pair:32s} {statistic:10s} {backend:8s} {row['ours']:14.8e} "
                      f"{cmp['gdss']:14.8e} {cmp['rel_diff']:10.2e}  "
                      f"{'yes' if cmp['ok'] else 'NO'}")


def versions(gdss: types.SimpleNamespace, repo: Path) -> dict[str, str | None]:
    import scipy

    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None  # an exported tree without .git
    return {"gdss_commit": commit, "pyemd": getattr(gdss.pyemd, "__version__", None),
            "numpy": np.__version__, "scipy": scipy.__version__, "networkx": nx.__version__}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gdss-repo", type=Path, required=True,
                   help="a GDSS checkout (its evaluation/ folder at least, ORCA compiled)")
    p.add_argument("--deps", type=Path,
                   help="extra folder for sys.path holding pyemd (and POT, dill, ...)")
    p.add_argument("--data-root", default=os.environ.get("GRAPHVAE_DATA"),
                   help="folder holding graphgen/ (default: $GRAPHVAE_DATA)")
    p.add_argument("--out", type=Path, help="write the results here as JSON")
    args = p.parse_args(argv)

    try:
        gdss = load_gdss(args.gdss_repo, args.deps)
        check_orca(gdss)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pairs = graph_pairs(args.data_root)
    results: dict[str, dict] = {}
    for name, (ref, gen) in pairs.items():
        print(f"{name} ...", flush=True)
        results[name] = {"reference": describe(ref), "generated": describe(gen),
                         "statistics": compare_pair(gdss, ref, gen)}
    print_table(results)
    failures = [f"{pair}/{stat}/{backend}" for pair, res in results.items()
                for stat, row in res["statistics"].items()
                for backend, cmp in row["gdss"].items() if not cmp["ok"]]
    report = {"versions": versions(gdss, args.gdss_repo),
              "emd_backends": [b or "default" for b in gdss.backends],
              "tolerance": TOLERANCE, "results": results, "failures": failures}
    if args.out:
        write_json(report, args.out)
        print(f"wrote {args.out}")
    if failures:
        print(f"outside tolerance: {', '.join(failures)}", file=sys.stderr)
        return 1
    print("every value within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
