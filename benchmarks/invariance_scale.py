"""``graphvae check-invariance`` on large graphs: wall time and peak memory of the check on
PubMed and on featureless planted graphs, each in a child process under an address-space
limit.

    python benchmarks/invariance_scale.py                    # PubMed and 10⁵ nodes (about 32 min)
    python benchmarks/invariance_scale.py --graphs pubmed,2e4,2e4x
    python benchmarks/invariance_scale.py --smoke            # seconds: 3,000 nodes, features

Each row:

1. for a planted graph of N nodes (``--graphs N``), ``graphvae make-graph --nodes N
   --edges 5N`` writes the seeded degree-corrected block model as an edge list (no
   features; ``Nx``: with 16 seeded uniform random features per node);
2. ``graphvae linkpred --epochs 1`` trains the model that is checked (a VGAE, the
   default; the check's cost does not depend on how long it trained);
3. ``graphvae check-invariance --checkpoint ... --permutations P --json --quiet`` runs in a
   child process (one torch thread, float64 unless ``--float32``) under ``--max-gb`` GB of
   address space, as ``ulimit -v`` would set it; its wall time and the peak RSS
   (``getrusage``) are recorded with the JSON it prints.

Every graph here has more than 2²³ node pairs, so the decoder's logits and the exact
bound go by blocks of rows. A graph without features is encoded from the identity
(``X = I``), which the check computes anew for the relabelled graph, as a run on it
would: that encoder is not equivariant, and the check must fail on it (exit status 1,
the encoder rows FAIL) while the decoder, which sees the relabelled latents, passes. The
report's ``as_expected`` says whether each row did what its features call for.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from scale import RESULTS, child

from graphvae.checks import MAX_PERMUTATIONS, check_seed
from graphvae.errors import OneLineParser, run_script

DEFAULT_GRAPHS = "pubmed,1e5"
PLANETOID = ("cora", "citeseer", "pubmed")
#: Random features of a planted graph named ``<N>x``.
FEATURES = 16


def _graph_args(name: str, work: Path, seed: int, timeout: float) -> list[str]:
    """The flags naming the graph for linkpred and check-invariance."""
    if name in PLANETOID:
        return ["--dataset", name]
    n = int(_planted_size(name))
    graph = work / f"sbm_{n}.csv"
    child([sys.executable, "-m", "graphvae", "make-graph", "--nodes", str(n), "--edges",
           str(5 * n), "--seed", str(seed), "--out", str(graph)], timeout)
    if not name.endswith("x"):
        return ["--edges", str(graph), "--num-nodes", str(n)]
    import numpy as np
    feats = work / f"sbm_{n}_x.csv"
    x = np.random.default_rng(seed).random((n, FEATURES))
    header = "id," + ",".join(f"f{j}" for j in range(FEATURES))
    np.savetxt(feats, np.column_stack([np.arange(n), x]), delimiter=",", header=header,
               comments="", fmt=["%d"] + ["%.6f"] * FEATURES)
    return ["--edges", str(graph), "--features", str(feats)]


def _planted_size(name: str) -> float:
    """``<N>`` or ``<N>x``'s N (1e5 and 100000 alike), or 0 for anything else."""
    try:
        n = float(name.removesuffix("x"))
    except ValueError:
        return 0
    return n if math.isfinite(n) and n == int(n) and n < 1e8 else 0


def run_graph(name: str, work: Path, args: argparse.Namespace) -> dict:
    source = _graph_args(name, work, args.seed, args.timeout)
    data_root = ["--data-root", args.data_root] if args.data_root else []
    run = work / f"run_{name}"
    child([sys.executable, "-m", "graphvae", "linkpred", *source, *data_root, "--epochs", "1",
           "--quiet", "--seed", str(args.seed), "--out", str(run)], args.timeout)
    out, wall, rss, rc = child(
        [sys.executable, "-m", "graphvae", "check-invariance", "--checkpoint",
         str(run / "model.pt"), *source, *data_root, "--permutations", str(args.permutations),
         "--seed", str(args.seed), "--json", "--quiet", *(["--float32"] if args.float32 else [])],
        args.timeout, max_gb=args.max_gb, ok=(0, 1))
    report = json.loads(out.strip().splitlines()[-1])
    status = {c["component"]: c["status"] for c in report["components"]}
    (n,) = report["graphs"]
    if report["identity_features"]:
        expected = {"encoder mean": "FAIL", "decoder": "ok"}
    else:
        expected = dict.fromkeys(status, "ok")
    row = {"graph": name, "nodes": n, "pairs": n * n, "permutations": args.permutations,
           "float64": report["float64"], "identity_features": report["identity_features"],
           "wall_s": wall, "peak_rss_gb": rss, "max_gb": args.max_gb, "exit_status": rc,
           "status": status, "deviations": {c["component"]: c["max_deviation"]
                                            for c in report["components"]},
           "as_expected": all(status[k] == v for k, v in expected.items())
           and rc == (1 if report["identity_features"] else 0)}
    print(f"{name:>8} ({n:,} nodes): {wall:.1f} s, peak RSS {rss:.2f} GB, exit {rc}, "
          + ", ".join(f"{k} {v}" for k, v in status.items())
          + ("" if row["as_expected"] else "  (NOT AS EXPECTED)"), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--graphs", default=DEFAULT_GRAPHS,
                   help=f"comma-separated: cora, citeseer, pubmed (from the data root) or "
                   f"node counts of planted featureless graphs, at least 3000, followed by x "
                   f"for {FEATURES} random features [{DEFAULT_GRAPHS}]")
    p.add_argument("--permutations", type=int, default=1, help="relabellings per graph [1]")
    p.add_argument("--max-gb", type=float, default=20.0,
                   help="address-space limit of the check, in GB [20]")
    p.add_argument("--float32", action="store_true", help="check in float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600, help="seconds per command [3600]")
    p.add_data_root("Planetoid/ for the Cora rows")
    p.add_argument("--smoke", action="store_true", help="a 3,000-node planted graph")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/invariance_scale.json; "
                        "invariance_scale.smoke.json with --smoke]")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "invariance_scale.json", args.smoke)
    if not 1 <= args.permutations <= MAX_PERMUTATIONS or not 0 < args.max_gb <= 1e6 \
            or not 0 < args.timeout <= 1e7:
        p.error(f"--permutations must lie in 1 … {MAX_PERMUTATIONS:,}, --max-gb in (0, 1e6] "
                f"and --timeout in (0, 1e7] seconds, got {args.permutations}, {args.max_gb} "
                f"and {args.timeout}")
    check_seed(args.seed, "--seed")          # (a ValueError: run_script's one line)
    if args.data_root is not None and not args.smoke:
        missing = [g for g in args.graphs.split(",") if g.strip() in PLANETOID
                   and not (Path(args.data_root) / "Planetoid").is_dir()]
        if missing:
            p.error(f"--graphs {','.join(missing)} needs the Planetoid data sets under "
                    f"{args.data_root} (--data-root or GRAPHVAE_DATA)")
    graphs = [g.strip() for g in args.graphs.split(",") if g.strip()]
    bad = [g for g in graphs if g not in PLANETOID and not _planted_size(g) >= 3000]
    if bad or not graphs:
        p.error(f"--graphs takes cora, citeseer, pubmed or node counts of at least 3000 (more "
                f"than 2^23 pairs), optionally followed by x, got {bad or graphs}")
    if args.smoke:                            # (--graphs checked all the same)
        graphs = ["3000x"]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_graph(g, Path(tmp), args) for g in graphs]
    from graphvae.io import write_json
    from graphvae.provenance import environment
    write_json({"rows": rows, "smoke": args.smoke, "threads": 1,
                "command": " ".join(sys.argv), "environment": environment()}, args.out)
    print(f"wrote {args.out}")
    return 0 if all(r["as_expected"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(run_script(main))
