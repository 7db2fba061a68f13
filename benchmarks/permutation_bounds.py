"""Permutation-sampled bounds of a non-equivariant GraphVAE: gap to the exact bound, and
the speed of evaluating K permutations at once against a Python loop.

    python benchmarks/permutation_bounds.py            # full (a few minutes)
    python benchmarks/permutation_bounds.py --smoke    # seconds

Part 1 (exact vs sampled): random connected graphs with n = k = 7 nodes, a GraphVAE
trained for a few hundred steps on them with the matched bound (Simonovsky &
Komodakis 2018), then for each graph: the exact bound over all 7! = 5040
relabellings, the sampled bound ``log Σ_{P∈S} exp ELBO(PG)`` for K random
permutations (K = 1, 4, 16, 64), its log-mean-exp variant (+ log of the number of
distinct labelled graphs, k! / |Aut(G)|), the
canonical-ordering family (BFS, DFS, degree, k-core) and the matched bound.
Every value uses the same ε. Part 2 (timing): community-small graphs (k = 20),
K = 64 relabellings, one vectorised call vs a loop of K plain-bound calls.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
import torch

from graphvae.adjacency import Adjacency
from graphvae.checks import check_seed
from graphvae.containers import GraphBatch, GraphTensors
from graphvae.errors import OneLineParser, run_script
from graphvae.graph import permute_graph, to_simple_undirected
from graphvae.io import write_json
from graphvae.models.graphvae import GraphVAE
from graphvae.permutations import all_permutations, canonical_orderings, random_permutations
from graphvae.provenance import environment
from graphvae.training import fit

RESULTS = Path(__file__).resolve().parent / "results"


def random_connected_graphs(count: int, n: int, p: float, seed: int) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    out: list[torch.Tensor] = []
    while len(out) < count:
        g = nx.gnp_random_graph(n, p, seed=int(rng.integers(1 << 31)))
        if nx.is_connected(g):
            out.append(to_simple_undirected(torch.tensor(list(g.edges)).t(), n))
    return out


def features(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """Degree as the only node feature (scaled)."""
    deg = torch.zeros(n).index_add_(0, edge_index[0], torch.ones(edge_index.size(1)))
    return (deg / 4.0)[:, None]


class _OneGraphAStep:
    """Step ``t`` trains on graph ``t mod len(graphs)``, as a one-graph batch."""

    def __init__(self, batches: list[GraphBatch]):
        self.items = batches

    def batches(self, epoch: int, generator: torch.Generator | None) -> list[GraphBatch]:
        return [self.items[(epoch - 1) % len(self.items)]]


def train(model: GraphVAE, graphs: list[torch.Tensor], steps: int, seed: int) -> None:
    """Adam on the matched bound (GraphVAE's own objective), one graph a step, through the
    package's loop."""
    torch.manual_seed(seed)
    n = model.max_nodes
    model.objective = "matched"
    batches = [GraphBatch.collate([GraphTensors(n, ei)], [features(ei, n)]) for ei in graphs]
    fit(model, _OneGraphAStep(batches), torch.optim.Adam(model.parameters(), lr=3e-3),
        epochs=steps, progress=False)


def graph_gaps(model: GraphVAE, ei: torch.Tensor, ks, repeats: int, gen: torch.Generator
               ) -> tuple[list[tuple[str, float]], int, int]:
    """``(name, exact − bound)`` for each bound on one graph, the number of sampled bounds
    above the exact one, and the size of the canonical family."""
    k = model.max_nodes
    adj, x = Adjacency(ei, k), features(ei, k)
    eps = torch.randn(1, model.latent_channels, generator=gen)
    every = all_permutations(k)
    exact = model.bound(x, adj, every, eps=eps).value.item()
    # the distinct labelled graphs among the k! relabellings: k! / |Aut(G)| (n = k here)
    log_labellings = math.log(model.pad(ei, k).permute(every).distinct().numel())
    canon = canonical_orderings(ei, k)
    cases = [("identity (plain ELBO)", torch.arange(k)[None], False),
             ("matched (K=1)", model.matched_permutation(x, adj)[None], False),
             ("canonical family (BFS/DFS/degree/k-core)", canon, False)]
    for kk in ks:
        for _ in range(repeats):
            perms = random_permutations(k, kk, gen)
            cases += [(f"random, K={kk}", perms, False),
                      (f"random log-mean-exp + log(k!/|Aut G|), K={kk}", perms, True)]
    out, violations = [], 0
    for name, perms, mean in cases:
        v = model.bound(x, adj, perms, mean=mean, eps=eps).value.item()
        v = v + log_labellings if mean else v
        violations += int(not mean and v > exact + 1e-9)
        out.append((name, exact - v))
    return out, violations, canon.size(0)


def gap_table(model: GraphVAE, graphs, ks, repeats: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    rows: dict[str, list[float]] = {}
    violations, sizes = 0, []
    with torch.no_grad():
        for ei in graphs:
            gaps, bad, size = graph_gaps(model, ei, ks, repeats, gen)
            violations += bad
            sizes.append(size)
            for name, g in gaps:
                rows.setdefault(name, []).append(g)
    stats = {name: {"mean_gap": statistics.fmean(v), "min_gap": min(v), "n": len(v)}
             for name, v in rows.items()}
    return {"k": model.max_nodes, "graphs": len(graphs), "repeats": repeats,
            "violations": violations, "canonical_family_mean_size": statistics.fmean(sizes),
            "gaps": stats}


def timing(model: GraphVAE, graphs, num_perms: int, repeats: int, seed: int) -> dict:
    k = model.max_nodes
    gen = torch.Generator().manual_seed(seed)
    vec, loop = [], []
    with torch.no_grad():
        for ei, n in graphs:
            adj, x = Adjacency(ei, n), features(ei, n)
            eps = torch.randn(1, model.latent_channels, generator=gen)
            perms = random_permutations(n, num_perms, gen)
            full = torch.arange(k).repeat(num_perms, 1)
            full[:, :n] = perms
            for _ in range(repeats):
                t0 = time.perf_counter()
                v = model.bound(x, adj, full, eps=eps).value
                t1 = time.perf_counter()
                vals, seen = [], set()
                for p in perms:
                    xp, eip, _ = permute_graph(p, x, ei)
                    assert xp is not None and eip is not None  # both given, both permuted
                    key = tuple(sorted(map(tuple, eip.t().tolist())))
                    if key not in seen:  # each distinct relabelled graph once, as the bound
                        seen.add(key)
                        vals.append(model.bound(xp, Adjacency(eip, n), eps=eps).value)
                w = torch.logsumexp(torch.stack(vals), 0)
                t2 = time.perf_counter()
                assert torch.allclose(v, w, atol=1e-4), (v, w)
                vec.append(t1 - t0)
                loop.append(t2 - t1)
    mv, ml = statistics.median(vec), statistics.median(loop)
    return {"k": k, "K": num_perms, "graphs": len(graphs), "vectorised_ms": 1e3 * mv,
            "loop_ms": 1e3 * ml, "speedup": ml / mv}


def community_graphs(data_root, count: int, seed: int) -> tuple[list, str]:
    """(edge_index, n) pairs from community-small (pickle if present, else generated), and
    which of the two they are (the report names it)."""
    path = Path(data_root or "") / "graphgen" / "community_small.pkl"
    if data_root and path.is_file():
        from graphvae.datasets.graphgen import load_graph_pickle
        gs = load_graph_pickle(path)[:count]
        source = "graphgen/community_small.pkl"
    else:
        source = ("generated: two G(n, 0.7) communities of 6-10 nodes joined by an edge (no "
                  "graphgen/community_small.pkl under the data root)")
        rng = np.random.default_rng(seed)
        gs = []
        for _ in range(count):
            a, b = int(rng.integers(6, 11)), int(rng.integers(6, 11))
            g = nx.disjoint_union(nx.gnp_random_graph(a, 0.7, seed=int(rng.integers(1 << 30))),
                                  nx.gnp_random_graph(b, 0.7, seed=int(rng.integers(1 << 30))))
            g.add_edge(0, a)
            gs.append(g)
    out = []
    for g in gs:
        g = nx.convert_node_labels_to_integers(g)
        ei = to_simple_undirected(torch.tensor(list(g.edges)).t().reshape(2, -1), len(g))
        out.append((ei, len(g)))
    return out, source


def main(argv=None) -> int:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--smoke", action="store_true",
                   help="5-node graphs, 5 training steps, 2 repeats (seconds)")
    p.add_argument("--seed", type=int, default=0, help="graphs, training and draws [0]")
    p.add_data_root("graphgen/community_small.pkl for the timing (without it, generated "
                    "graphs of that kind; the report says which)")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/permutation_bounds.json; "
                        "permutation_bounds.smoke.json with --smoke]")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "permutation_bounds.json", args.smoke)
    check_seed(args.seed, "--seed")          # (a ValueError: run_script's one line)
    tcount = 2 if args.smoke else 20
    cg, source = community_graphs(args.data_root, tcount, args.seed)   # read before training
    torch.manual_seed(args.seed)
    if args.smoke:
        n, count, steps, ks, repeats, tk, trep = 5, 3, 5, [1, 4], 2, 8, 2
    else:
        n, count, steps, ks, repeats, tk, trep = 7, 40, 600, [1, 4, 16, 64], 10, 64, 3
    graphs = random_connected_graphs(count, n, 0.45, args.seed)
    model = GraphVAE(1, n, latent_channels=8, hidden_channels=(32, 32), decoder_hidden=(64, 64))
    t0 = time.perf_counter()
    train(model, graphs, steps, args.seed)
    train_s = time.perf_counter() - t0
    gaps = gap_table(model.eval(), graphs, ks, repeats, args.seed)
    for name, s in gaps["gaps"].items():
        print(f"{name:40s} mean gap {s['mean_gap']:8.3f} nats   (min {s['min_gap']:.3f}, "
              f"n={s['n']})")
    print(f"sampled bound above exact: {gaps['violations']} cases")
    big = GraphVAE(1, max(m for _, m in cg), latent_channels=8).eval()
    t = {**timing(big, cg, tk, trep, args.seed), "graphs": source}
    print(f"K={t['K']} permutations, k={t['k']}: vectorised {t['vectorised_ms']:.2f} ms, "
          f"loop {t['loop_ms']:.2f} ms, speed-up {t['speedup']:.1f}x")
    write_json({"train_seconds": train_s, "train_steps": steps, "seed": args.seed,
                "accuracy": [gaps], "timing": [t], "threads": torch.get_num_threads(),
                "environment": environment()},
               args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
