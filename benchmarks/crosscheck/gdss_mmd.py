"""Cross-check of our MMD² values against GDSS's and GraphRNN's own evaluation code.

    python benchmarks/crosscheck/gdss_mmd.py --gdss-repo /tmp/gdss_checkout --deps /tmp/gdss_deps \\
        [--graphrnn-repo /tmp/graphrnn_checkout] --out benchmarks/results/gdss_mmd_crosscheck.json

The graphs. Five pairs of graph sets (reference, generated): community-small graphs
0–19 vs 20–39 and ego-small graphs 0–39 vs 40–79 (the stored sets, read with
``load_graph_set``), and three hand-made pairs (paths vs cycles, graphs with isolated
nodes vs random trees, dense graphs with 4-cliques vs G(10, 0.5) samples).

Our side. ``graphvae.evaluation.graph_stats.graph_mmd`` under protocol ``graphrnn`` for
degree, clustering and orbit, and under ``gdss`` for spectral (the only protocol of the
two that has it).

Their side, two independent codes:

* GDSS (Jo et al., ICML 2022), ``evaluation/stats.py``, with the kernels that
  ``utils/loader.py::load_eval_settings`` picks: ``degree_stats`` (gaussian_emd),
  ``clustering_stats`` (gaussian_emd, σ 0.1, distance scaling 100), ``orbit_stats_all``
  (gaussian, σ 30, orbit counts from the compiled ORCA program) and ``spectral_stats``
  (gaussian_emd). Always run; ``--gdss-repo`` is required.
* GraphRNN (You et al., ICML 2018), ``eval/stats.py``, only with ``--graphrnn-repo``.
  Its functions take no kernel argument; each fixes its own, and they are used as
  they are: ``degree_stats`` (gaussian_emd, σ 1), ``clustering_stats`` (100 bins on
  [0, 1], gaussian_emd, σ 0.1, distance scaling 100) and ``orbit_stats_all`` (gaussian,
  σ 30 on the node-averaged counts of ORCA). GraphRNN has no spectral statistic, so that
  row is compared with GDSS only.

Both codes are imported at run time from their checkouts (nothing of them is copied
here) and their files stay as they are; what the script adjusts, it adjusts on the
imported modules or around the calls.

For GDSS:

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
  is the one that reproduces the published set-ups (GraphRNN's requirements leave
  pyemd unpinned, but 2018 releases only had the C++ code).

For GraphRNN (Python 3 code, written against networkx 1.11 and a numpy that still had
``np.float``):

* ``numpy.float`` / ``int`` / ``bool`` are restored as aliases of the builtins when the
  installed numpy lacks them (its ``emd`` calls ``.astype(np.float)``);
* its ``orca()`` names both the program and its temporary file relative to the working
  directory (``./eval/orca/orca``, ``eval/orca/tmp.txt``), so the orbit calls run with
  the working directory switched to the checkout root and back; the temporary file is
  written (and removed) in the checkout's ``eval/orca``. The fixed file name means two
  runs must not share one checkout at the same time;
* ``orbit_stats_all`` skips, under a bare ``except``, every graph ORCA fails on, which
  would quietly change the value; ``stats.orca`` is wrapped to count such failures and
  any failure marks the row as outside tolerance;
* ``mmd.disc`` runs with ``is_parallel=False`` (as for GDSS, ``compute_mmd`` never
  passes it), and ``clustering_stats`` is called with ``is_parallel=False`` (its default
  only builds the histograms in a process pool; the values are the same);
* ``mmd.pyemd.emd`` gets the same ``backend`` as for GDSS;
* what its functions print (set sizes, mean orbit vectors) is captured and dropped;
* the checkout root is on ``sys.path`` only while ``eval.stats`` is imported, because a
  full GraphRNN checkout also holds top-level ``utils.py``, ``data.py``, ``model.py``.

Networkx 3 runs GraphRNN's code unchanged: it only calls ``degree_histogram``,
``clustering``, ``nodes()``, ``edges()`` and the node/edge counts.

Expected agreement (relative difference ``|ours − theirs| / |theirs|``), the same for
both codes:

* orbit: both sides compute the same Gaussian RBF on the same 15-vectors (our counter
  vs ORCA; GDSS and GraphRNN ship the same ``orca.cpp``), so only floating-point
  summation order differs: below ``1e-9`` (typically ``1e-12``–``1e-15``);
* degree, clustering, spectral with the C++ EMD: ``emd_hat`` scales the masses and the
  ground distances to integers of about 10⁶ before solving, so each EMD is off by up to
  ~1e-6 relative, and the MMD² (a difference of kernel means) magnifies that: below
  ``1e-4``;
* the same with the POT backend: an exact floating-point solver, below ``1e-9``.

GDSS's degree, clustering and orbit functions are GraphRNN's with a kernel argument
added (and thread pools, and an ``abs`` on the EMD), so with the same EMD backend and
serial sums the two codes should give the same numbers.

The script exits 1 if any value is outside its tolerance, 2 (one line on stderr) on a
missing GDSS or GraphRNN checkout, ORCA binary or pyemd.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import io
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from graphvae.datasets.graphsets import load_graph_set
from graphvae.errors import OneLineParser, run_script
from graphvae.evaluation.graph_stats import graph_mmd
from graphvae.io import results_file, write_json

STATISTICS = ("degree", "clustering", "orbit", "spectral")
#: our protocol for each statistic (GraphRNN's kernels; spectral only exists under gdss)
OUR_PROTOCOL = {"degree": "graphrnn", "clustering": "graphrnn", "orbit": "graphrnn",
                "spectral": "gdss"}
#: the statistics GraphRNN's eval/stats.py computes
GRAPHRNN_STATISTICS = ("degree", "clustering", "orbit")
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

    restore_numpy_aliases()
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
                                 orca=str(orca_bin), root=repo, run_orca=stats.orca,
                                 files={p: git_blob_id(repo / p) for p in
                                        ("evaluation/stats.py", "evaluation/mmd.py")})


def restore_numpy_aliases() -> None:
    """Both codes were written for numpy < 1.24, which still had these aliases."""
    for alias, builtin in (("float", float), ("int", int), ("bool", bool)):
        if not hasattr(np, alias):
            setattr(np, alias, builtin)


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


def use_emd_backend(code: types.SimpleNamespace, backend: str | None) -> None:
    """Make the imported ``mmd`` module's ``emd`` call ``pyemd.emd`` with this backend
    (None: pyemd's default). Works for GDSS's and GraphRNN's module alike."""
    emd = code.pyemd.emd if backend is None else functools.partial(code.pyemd.emd,
                                                                  backend=backend)
    code.mmd.pyemd = types.SimpleNamespace(emd=emd)


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


def check_orca(code: types.SimpleNamespace) -> None:
    """Both codes skip every graph ORCA fails on: make sure it runs at all."""
    try:
        counts = code.run_orca(nx.complete_graph(4))
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SetupError(f"ORCA at {code.orca} does not run: {exc}") from None
    if counts.shape != (4, 15) or not (counts[:, 14] == 1).all():
        raise SetupError(f"ORCA at {code.orca} gave unexpected counts for K4: {counts}")


def git_blob_id(path: Path) -> str:
    """The id git gives the file's content (``git hash-object``), to match it against a
    commit (``git rev-parse COMMIT:PATH``) when the checkout is an export without .git."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# -------------------------------------------------------------------------------------------
# importing GraphRNN's evaluation code


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def load_graphrnn(repo: Path, gdss: types.SimpleNamespace) -> types.SimpleNamespace:
    """Import GraphRNN's ``eval.stats`` / ``eval.mmd`` from a checkout (its ``eval/``
    folder at least), with the run-time adjustments of the module docstring. pyemd and
    its backends are the ones already found for GDSS."""
    repo = repo.resolve()
    eval_dir = repo / "eval"
    if not (eval_dir / "stats.py").is_file() or not (eval_dir / "mmd.py").is_file():
        raise SetupError(f"no GraphRNN checkout at {repo} (expected eval/stats.py and "
                         f"eval/mmd.py)")
    orca_dir = eval_dir / "orca"
    orca_bin = orca_dir / "orca"
    if not os.access(orca_bin, os.X_OK):
        raise SetupError(f"GraphRNN's ORCA is not compiled: run `cd {orca_dir} && "
                         f"{ORCA_COMPILE}`")
    restore_numpy_aliases()
    sys.path.insert(0, str(repo))
    try:
        stats: Any = importlib.import_module("eval.stats")
        mmd: Any = importlib.import_module("eval.mmd")
    finally:
        sys.path.remove(str(repo))
    for module in (stats, mmd):
        if Path(module.__file__ or "").resolve().parent != eval_dir:
            raise SetupError(f"imported {module.__name__} from {module.__file__}, not from "
                             f"{repo}: another 'eval' package shadows GraphRNN's")
    mmd.disc = functools.partial(mmd.disc, is_parallel=False)

    orca_failures: list[str] = []
    their_orca = stats.orca

    def orca_counting_failures(graph):
        try:
            return their_orca(graph)
        except Exception as exc:
            orca_failures.append(f"{type(exc).__name__}: {exc}")
            raise

    stats.orca = orca_counting_failures

    def run_orca(graph):
        with working_directory(repo):
            return their_orca(graph)

    return types.SimpleNamespace(stats=stats, mmd=mmd, pyemd=gdss.pyemd,
                                 backends=gdss.backends, orca=str(orca_bin), root=repo,
                                 run_orca=run_orca, orca_failures=orca_failures,
                                 files={p: git_blob_id(repo / p) for p in
                                        ("eval/stats.py", "eval/mmd.py",
                                         "eval/orca/orca.cpp")})


def graphrnn_mmd(graphrnn: types.SimpleNamespace, statistic: str, ref: list[nx.Graph],
                 gen: list[nx.Graph]) -> float:
    """One statistic through GraphRNN's functions with their built-in kernels; what they
    print is dropped."""
    s = graphrnn.stats
    with contextlib.redirect_stdout(io.StringIO()):
        if statistic == "degree":
            return float(s.degree_stats(ref, gen, is_parallel=False))
        if statistic == "clustering":
            return float(s.clustering_stats(ref, gen, is_parallel=False))
        if statistic == "orbit":
            with working_directory(graphrnn.root):
                return float(s.orbit_stats_all(ref, gen))
    raise ValueError(f"GraphRNN has no {statistic} statistic")


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


def compare_code(code: types.SimpleNamespace, name: str,
                 compute: Callable[[types.SimpleNamespace, str, list[nx.Graph],
                                    list[nx.Graph]], float],
                 statistic: str, ours: float, ref: list[nx.Graph], gen: list[nx.Graph],
                 ) -> dict[str, dict]:
    """Their value of one statistic under each EMD backend (orbit: once, keyed "orca"),
    beside ours. ``name`` is the key of their value ("gdss", "graphrnn")."""
    backends: list[str | None] = [None] if statistic == "orbit" else code.backends
    out: dict[str, dict] = {}
    for backend in backends:
        if backend is not None:
            use_emd_backend(code, backend)
        failures = getattr(code, "orca_failures", None)
        if failures is not None:
            failures.clear()
        value = compute(code, statistic, ref, gen)
        tolerance = TOLERANCE["orbit" if statistic == "orbit" else (backend or "cpp")]
        rel = relative_difference(ours, value)
        row: dict[str, Any] = {name: value, "abs_diff": abs(ours - value), "rel_diff": rel,
               "tolerance": tolerance, "ok": rel <= tolerance}
        if failures is not None and statistic == "orbit":
            row["orca_failures"] = list(failures)
            row["ok"] = row["ok"] and not failures
        out["orca" if statistic == "orbit" else (backend or "default")] = row
    return out


def compare_pair(gdss: types.SimpleNamespace, graphrnn: types.SimpleNamespace | None,
                 ref: list[nx.Graph], gen: list[nx.Graph]) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for statistic in STATISTICS:
        ours = graph_mmd(ref, gen, OUR_PROTOCOL[statistic], [statistic])[statistic]
        rows[statistic] = {"ours": ours, "protocol": OUR_PROTOCOL[statistic],
                           "gdss": compare_code(gdss, "gdss", gdss_mmd, statistic, ours,
                                                ref, gen)}
        if graphrnn is not None and statistic in GRAPHRNN_STATISTICS:
            rows[statistic]["graphrnn"] = compare_code(graphrnn, "graphrnn", graphrnn_mmd,
                                                       statistic, ours, ref, gen)
    return rows


def comparisons(results: dict[str, dict]) -> Iterator[tuple[str, str, str, str, dict, dict]]:
    """(pair, statistic, code, backend, statistic row, comparison) for every value."""
    for pair, res in results.items():
        for statistic, row in res["statistics"].items():
            for code in ("gdss", "graphrnn"):
                for backend, cmp in row.get(code, {}).items():
                    yield pair, statistic, code, backend, row, cmp


def describe(graphs: list[nx.Graph]) -> dict[str, float]:
    return {"graphs": len(graphs),
            "mean_nodes": float(np.mean([g.number_of_nodes() for g in graphs])),
            "mean_edges": float(np.mean([g.number_of_edges() for g in graphs])),
            "isolated_nodes": sum(nx.number_of_isolates(g) for g in graphs)}


def print_table(results: dict[str, dict]) -> None:
    label = {"gdss": "GDSS", "graphrnn": "GraphRNN"}
    print(f"{'pair':32s} {'statistic':10s} {'code':8s} {'backend':8s} {'ours':>14s} "
          f"{'theirs':>14s} {'rel. diff':>10s}  ok")
    for pair, statistic, code, backend, row, cmp in comparisons(results):
        print(f"{pair:32s} {statistic:10s} {label[code]:8s} {backend:8s} {row['ours']:14.8e} "
              f"{cmp[code]:14.8e} {cmp['rel_diff']:10.2e}  {'yes' if cmp['ok'] else 'NO'}")


def git_commit(repo: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None  # an exported tree without .git


def versions(gdss: types.SimpleNamespace, graphrnn: types.SimpleNamespace | None,
             ) -> dict[str, Any]:
    import scipy

    out: dict[str, Any] = {"gdss_commit": git_commit(gdss.root),
                           "pyemd": getattr(gdss.pyemd, "__version__", None),
                           "numpy": np.__version__, "scipy": scipy.__version__,
                           "networkx": nx.__version__, "gdss_files": gdss.files}
    if graphrnn is not None:
        out["graphrnn_commit"] = git_commit(graphrnn.root)
        out["graphrnn_files"] = graphrnn.files
    return out


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--gdss-repo", type=Path, required=True,
                   help="a GDSS checkout (its evaluation/ folder at least, ORCA compiled)")
    p.add_argument("--graphrnn-repo", type=Path,
                   help="a GraphRNN checkout (its eval/ folder at least, ORCA compiled); "
                        "without it only GDSS is compared")
    p.add_argument("--deps", type=Path,
                   help="extra folder for sys.path holding pyemd (and POT, dill, ...)")
    p.add_data_root("graphgen/")
    p.add_argument("--out", help="write the results here as JSON")
    args = p.parse_args(argv)
    if args.out:                # before the comparisons (minutes), not at the final write
        args.out = results_file(args.out, args.out, smoke=False)

    try:
        gdss = load_gdss(args.gdss_repo, args.deps)
        check_orca(gdss)
        graphrnn = None
        if args.graphrnn_repo is not None:
            graphrnn = load_graphrnn(args.graphrnn_repo, gdss)
            check_orca(graphrnn)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pairs = graph_pairs(args.data_root)
    results: dict[str, dict] = {}
    for name, (ref, gen) in pairs.items():
        print(f"{name} ...", flush=True)
        results[name] = {"reference": describe(ref), "generated": describe(gen),
                         "statistics": compare_pair(gdss, graphrnn, ref, gen)}
    print_table(results)
    failures = [f"{pair}/{stat}/{code}/{backend}"
                for pair, stat, code, backend, _row, cmp in comparisons(results)
                if not cmp["ok"]]
    report = {"versions": versions(gdss, graphrnn),
              "codes": ["gdss"] + (["graphrnn"] if graphrnn is not None else []),
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
    sys.exit(run_script(main))
