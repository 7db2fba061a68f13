"""Link prediction at scale: a planted graph of 10⁴ to 10⁶ nodes (10⁵ to 10⁷ edges) read,
trained and evaluated end to end by ``graphvae linkpred``, against the planted model's
oracle and against PyG's ``GAE`` in the same run.

    python benchmarks/scale.py                 # the three sizes below, PyG where it fits
    python benchmarks/scale.py --sizes 1e5:1e6 --pyg-epochs 50
    python benchmarks/scale.py --smoke         # seconds: a 2,000-node graph

Each row:

1. ``graphvae make-graph`` writes the seeded degree-corrected block model
   (:mod:`graphvae.datasets.sbm`, 1 block per 1,000 nodes, 20 % of the edges between
   blocks, degree exponent 2.5) as an edge list and its planted parameters;
2. ``graphvae linkpred --edges FILE --num-nodes N --planted FILE.planted.npz --json`` runs
   in a child process (one torch thread), which reports the read time, the median
   seconds per epoch, the test AUC / AP / Hits@50 / MRR and the oracle's AUC / AP on the
   same test pairs; the child's peak RSS comes from ``getrusage``;
3. PyG's ``GAE`` (two ``GCNConv`` layers, a learned embedding as the featureless input,
   ``GAE.recon_loss`` with its ``negative_sampling`` on every training edge, full batch),
   on the same split, in its own child process, where it fits in ``--pyg-max-rss`` GB.

An epoch of ``graphvae`` is one optimiser step: the whole graph through the encoder and,
above 2^21 positive pairs, a batch of 2^20 of them decoded (below, all of them); an
epoch of PyG's GAE is one full-batch step. Wall times depend on the machine: compare the
columns of one run, not runs on different machines.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from graphvae.checks import MAX_INT, check_seed
from graphvae.errors import OneLineParser, last_line, run_script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = [(10_000, 100_000), (100_000, 1_000_000), (1_000_000, 10_000_000)]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


class ChildFailed(ValueError):
    """A child command exited outside its expected statuses, or ran past its timeout: one
    line (``run_script``) with the child's own last line of stderr."""


def child(cmd: list[str], timeout: float, max_gb: float | None = None,
          ok: tuple[int, ...] = (0,), name: str | None = None
          ) -> tuple[str, float, float, int]:
    """Run ``cmd`` (under ``max_gb`` GB of address space, if given); return (stdout, wall
    seconds, peak RSS in GB of that child, exit status). An exit status outside ``ok``, or
    a run past ``timeout`` seconds, raises :class:`ChildFailed` naming the command and the
    last line of its stderr."""
    script = ("import resource, subprocess, sys, json, time\n"
              "if sys.argv[1] != 'none':\n"
              "    cap = int(float(sys.argv[1]) * 2**30)\n"
              "    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))\n"
              "t = time.perf_counter()\n"
              "p = subprocess.run(sys.argv[2:], capture_output=True, text=True)\n"
              "wall = time.perf_counter() - t\n"
              "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20\n"
              "sys.stderr.write(p.stderr[-3000:])\n"
              "print(json.dumps({'rc': p.returncode, 'out': p.stdout, 'wall': wall, "
              "'rss': rss}))\n")
    what = name or " ".join(Path(c).name if k == 0 else c for k, c in enumerate(cmd[:4]))
    # a session of its own, so that a timeout or a Ctrl-C here ends the command too (killing
    # the wrapper alone left the command running, orphaned)
    proc = subprocess.Popen([sys.executable, "-c", script, "none" if max_gb is None else
                             str(max_gb), *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException as err:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        if isinstance(err, subprocess.TimeoutExpired):
            raise ChildFailed(f"{what}: ran past its timeout of {timeout:g} s") from None
        raise
    try:
        info = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise ChildFailed(f"{what}: could not be run (exit status {proc.returncode}): "
                          f"{last_line(stderr) or '(no message)'}") from None
    if info["rc"] not in ok:
        raise ChildFailed(f"{what}: failed (exit status {info['rc']}): "
                          f"{last_line(stderr) or '(no message)'}")
    return info["out"], info["wall"], info["rss"], info["rc"]


_PYG = r'''
import json, sys, time, torch
torch.set_num_threads(1)
from torch_geometric.nn import GAE, GCNConv
from graphvae.datasets.files import load_edge_list
from graphvae.datasets.link_split import split_edges
from graphvae.evaluation.metrics import average_precision, roc_auc

path, n, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = load_edge_list(path, num_nodes=n)
s = split_edges(data.edge_index, n, 0.05, 0.10, seed)
torch.manual_seed(seed)

class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(n, 32)          # the featureless input, learned
        self.c1, self.c2 = GCNConv(32, 32), GCNConv(32, 16)
    def forward(self, ei):
        return self.c2(self.c1(self.emb.weight, ei).relu(), ei)

model = GAE(Encoder())
opt = torch.optim.Adam(model.parameters(), lr=0.01)
times = []
for epoch in range(epochs):
    t = time.perf_counter()
    model.train(); opt.zero_grad()
    z = model.encode(s.train_edge_index)
    loss = model.recon_loss(z, s.train_edge_index)   # negative_sampling inside
    loss.backward(); opt.step()
    times.append(time.perf_counter() - t)
model.eval()
with torch.no_grad():
    z = model.encode(s.train_edge_index)
    sc = torch.cat([model.decode(z, s.test_pos), model.decode(z, s.test_neg)])
    y = torch.cat([torch.ones(s.test_pos.size(1)), torch.zeros(s.test_neg.size(1))])
times.sort()
print(json.dumps({"epochs": epochs, "median_epoch_s": times[len(times) // 2],
                  "test_auc": roc_auc(sc, y), "test_ap": average_precision(sc, y)}))
'''


def run_size(n: int, m: int, work: Path, epochs: int, eval_every: int, pyg_epochs: int,
             pyg_max_rss: float, seed: int, timeout: float, model: str = "vgae",
             extra: tuple[str, ...] = ()) -> dict:
    graph = work / f"sbm_{n}_{m}.csv"
    t0 = time.perf_counter()
    child([sys.executable, "-m", "graphvae", "make-graph", "--nodes", str(n), "--edges",
           str(m), "--seed", str(seed), "--out", str(graph)], timeout)
    make_s = time.perf_counter() - t0
    out, wall, rss, _ = child([sys.executable, "-m", "graphvae", "linkpred", "--edges",
                             str(graph), "--num-nodes", str(n), "--planted",
                             str(graph.with_suffix(".planted.npz")), "--json", "--quiet",
                             "--epochs", str(epochs), "--eval-every", str(eval_every),
                             "--model", model, *extra,
                             "--seed", str(seed), "--out", str(work / f"out_{n}")], timeout)
    s = json.loads(out.strip().splitlines()[-1])
    row = {"model": model, "extra": list(extra), "nodes": n, "edges_requested": m,
           "edges": s["num_edges"], "make_graph_s": make_s,
           "read_s": s["read_seconds"], "epochs": s["epochs"],
           "s_per_epoch": s["median_epoch_ms"] / 1e3,
           "train_s": s["seconds"], "end_to_end_s": wall, "peak_rss_gb": rss,
           "val_auc": s["val_auc"], "test_auc": s["test_auc"], "test_ap": s["test_ap"],
           "hits@50": s["test_hits@50"],
           "mrr": s["test_mrr"], "oracle_auc": s["oracle_test_auc"],
           "oracle_ap": s["oracle_test_ap"], "batch": s.get("batch")}
    print(f"{n:>9} nodes {s['num_edges']:>9} edges: read {row['read_s']:.1f}s, "
          f"{row['s_per_epoch']:.3f} s/epoch, end to end {wall:.0f}s, peak RSS {rss:.2f} GB, "
          f"AUC {100 * s['test_auc']:.2f} (oracle {100 * s['oracle_test_auc']:.2f})",
          flush=True)
    if pyg_epochs > 0:
        try:
            pout, pwall, prss, _ = child([sys.executable, "-c", _PYG, str(graph), str(n),
                                        str(pyg_epochs), str(seed)], timeout)
            p = json.loads(pout.strip().splitlines()[-1])
            row["pyg"] = {**p, "peak_rss_gb": prss, "wall_s": pwall,
                          "fits": prss <= pyg_max_rss}
            print(f"{'':>9} PyG GAE: {p['median_epoch_s']:.3f} s/epoch, AUC "
                  f"{100 * p['test_auc']:.2f} after {pyg_epochs} epochs, peak RSS "
                  f"{prss:.2f} GB", flush=True)
        except ChildFailed as err:
            row["pyg"] = {"error": str(err)[-300:]}
            print(f"{'':>9} PyG GAE: did not finish ({str(err)[-120:]})", flush=True)
    return row


#: Reads a linkpred command line and checks its flags and configuration as graphvae would,
#: and stops (in a child: torch stays out of this process until its own peak RSS is read).
_CHECK_FLAGS = """import sys
from graphvae.cli import build_parser
from graphvae.cli.linkpred import _check_flags, _config
from graphvae.errors import one_line
args = build_parser(sys.argv[1:]).parse_args(sys.argv[1:])
try:
    _check_flags(args)
    _config(args)
except ValueError as err:
    sys.exit(f"graphvae: error: {one_line(str(err))}")
"""


def check_linkpred_flags(model: str, extra: tuple[str, ...]) -> None:
    """``--model`` and ``--linkpred-args`` as ``graphvae linkpred`` reads them, before any
    graph is drawn (a bad one failed after make-graph, minutes at 10⁶ nodes)."""
    child([sys.executable, "-c", _CHECK_FLAGS, "linkpred", "--edges", "g.csv", "--model",
           model, *extra], 300, name="the linkpred flags")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``nodes:edges,...`` (``1e4:1e5``) as whole numbers; a one-line ``ValueError`` naming
    the part otherwise (make-graph itself checks their ranges)."""
    sizes = []
    for part in text.split(","):
        values = part.strip().split(":")
        try:
            n, m = (float(v) for v in values)
        except ValueError:
            raise ValueError(f"--sizes takes nodes:edges pairs such as 1e4:1e5, separated by "
                             f"commas, got {part!r}") from None
        if not all(math.isfinite(v) and v == int(v) and 1 <= v <= MAX_INT for v in (n, m)):
            raise ValueError(f"--sizes takes whole numbers of nodes and edges from 1 to "
                             f"{MAX_INT}, got {part!r}")
        sizes.append((int(n), int(m)))
    return sizes


def main(argv=None) -> None:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--sizes", default=None,
                   help="nodes:edges,... (default 1e4:1e5,1e5:1e6,1e6:1e7)")
    p.add_argument("--epochs", type=int, default=None,
                   help="graphvae epochs (default 200, 150 at 10^6 nodes)")
    p.add_argument("--pyg-epochs", type=int, default=None,
                   help="PyG GAE epochs (default: as graphvae; 0 skips PyG)")
    p.add_argument("--pyg-max-nodes", type=float, default=1e5,
                   help="largest graph PyG's GAE is run on [1e5]")
    p.add_argument("--pyg-max-rss", type=float, default=8.0, help="GB counted as 'fits' [8]")
    p.add_argument("--model", default="vgae", help="graphvae linkpred --model [vgae]")
    p.add_argument("--linkpred-args", default="",
                   help="more graphvae linkpred flags, e.g. '--encoder gcn-bias'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/scale.json; "
                        "scale.smoke.json with --smoke]")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "scale.json", args.smoke)
    if args.epochs is not None and not 1 <= args.epochs <= MAX_INT:
        p.error(f"--epochs must lie in 1 … {MAX_INT}, got {args.epochs}")
    if args.pyg_epochs is not None and not 0 <= args.pyg_epochs <= MAX_INT:
        p.error(f"--pyg-epochs must lie in 0 … {MAX_INT} (0 skips PyG), got "
                f"{args.pyg_epochs}")
    if not (args.pyg_max_nodes >= 0 and args.pyg_max_rss > 0) or math.isnan(args.pyg_max_rss):
        p.error(f"--pyg-max-nodes must be >= 0 and --pyg-max-rss > 0, got "
                f"{args.pyg_max_nodes} and {args.pyg_max_rss}")
    check_seed(args.seed, "--seed")          # (a ValueError: run_script's one line)
    sizes = SIZES if args.sizes is None else parse_sizes(args.sizes)   # checked with --smoke
    if args.smoke:
        sizes = [(2_000, 10_000)]
    check_linkpred_flags(args.model, tuple(args.linkpred_args.split()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, m in sizes:
            epochs = args.epochs if args.epochs is not None else (
                5 if args.smoke else 150 if n >= 1_000_000 else 200)
            pyg = args.pyg_epochs if args.pyg_epochs is not None else epochs
            rows.append(run_size(n, m, Path(tmp), epochs, 1 if args.smoke else 10,
                                 pyg if n <= args.pyg_max_nodes else 0, args.pyg_max_rss,
                                 args.seed, 3600, args.model,
                                 tuple(args.linkpred_args.split())))
    result = {"rows": rows, "smoke": args.smoke, "command": " ".join(sys.argv),
              "threads": 1, "max_rss_self_gb":
              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    from graphvae.io import write_json  # torch comes in now, after the RSS above
    from graphvae.provenance import environment
    result["environment"] = environment()    # the runs' interpreter is this one
    write_json(result, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(run_script(main))
