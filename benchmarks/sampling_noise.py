"""How far the small-graph MMD² moves for a sampler that draws from the training set itself.

    python benchmarks/sampling_noise.py            # ego- and community-small, GDSS's set-up
    python benchmarks/sampling_noise.py --smoke    # seconds
    python benchmarks/sampling_noise.py --protocol graphrnn --seeds 3 \
        --out benchmarks/results/sampling_noise_graphrnn.json   # our set-up: a split a seed

Each draw takes as many training graphs as the test set has, uniformly with replacement
(an ideal sampler of the training set's empirical distribution, which is what a model
that reproduces its training graphs does), and computes every statistic's MMD² against
the test set under the protocol's kernels, exactly as ``benchmarks/generation.py`` scores
a model's samples. Over ``--draws`` draws the report gives, per statistic and for the mean
of degree / clustering / orbit, the mean, standard deviation and 5 / 50 / 95 % quantiles;
the same for the average of three consecutive draws (what a 3-seed row averages); and the
fraction of those 3-draw averages at or below the published GDSS average; and the
fraction of distinct isomorphism classes among a draw's graphs (``unique``, as
``generation.py`` reports it for samples). The train-vs-test row (all training graphs
against the test set) is printed beside it. ``test_itself`` draws from the test set
instead (the same number, with replacement): a sampler that knows the test graphs, the
floor no model can be expected to pass. ``sharpened`` draws training graphs with
probability proportional to how many training graphs share their isomorphism class (a
class with c members is drawn ∝ c²): a mode-seeking sampler, less varied than the data;
``sharpening_sweep`` gives, in closed form, milder and stronger versions (a class drawn
∝ c^τ), over the whole training set and within each node count.
``expected`` gives each sampler's expected MMD² in closed form (``PoolMMD``, the kernels
computed once for every weighting), beside the draws; estimates for a sampler of the
distribution the data come from; and ``lowest_reweighting`` (``PoolMMD.lowest``): the
weighting of the training graphs
that a search fitted to this very test set finds, once free and once keeping the
training set's node-count distribution (``..._same_sizes``), which is what a sampler
needs, in expectation, to score that low: a sampler that has seen the test graphs.
``lowest_reweighting_from_train`` is the same search fitted to the training graphs alone
(each matched only with the other training graphs), scored on the test set: metric
seeking without sight of the test graphs. ``kernel_min_eigenvalue`` gives each kernel's
smallest eigenvalue over the training and test graphs (negative: not positive definite).
No model is trained.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

from graphvae.checks import check_seed
from graphvae.errors import OneLineParser, run_script
from graphvae.evaluation.graph_stats import (
    graph_mmd,
    graph_novelty,
    mean_of_three,
    mmd_table,
)
from graphvae.evaluation.pool_mmd import PoolMMD, kernel_min_eigenvalues
from graphvae.io import write_json
from graphvae.provenance import environment
from graphvae.tasks.generation import GenerationConfig, load_generation_data

RESULTS = Path(__file__).resolve().parent / "results"

#: GDSS (Jo et al., ICML 2022), Table 1: the average of degree / clustering / orbit MMD².
GDSS_AVERAGE = {"ego-small": 0.0173, "community-small": 0.046}


def _summary(values: list[float]) -> dict[str, float]:
    q = np.quantile(values, [0.05, 0.5, 0.95])
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "q05": float(q[0]), "median": float(q[1]), "q95": float(q[2])}


def _isomorphic_count(g, graphs: list) -> int:
    """How many of ``graphs`` are isomorphic to ``g`` (``g`` itself included if present)."""
    import networkx as nx
    return sum(h.number_of_nodes() == g.number_of_nodes()
               and h.number_of_edges() == g.number_of_edges() and nx.is_isomorphic(g, h)
               for h in graphs)


def _expected(train: list, test: list, protocol: str, sharp: np.ndarray,
              from_train: PoolMMD) -> dict:
    """Each sampler's expected MMD² in closed form (``from_train``: draws from the training
    graphs against the test set, as :func:`expected_mmd` gives it), and three estimates
    for a sampler of the distribution the data come from, with m = n = len(test) and U
    that distribution's mean kernel value between two different graphs:

    * ``data_distribution``: test sets drawn as well, ``(1/m + 1/n)(1 − U)``, with
      ``1 − U = m·E_itself·n/(n − 1)`` estimated from the test set;
    * ``data_distribution_from_train``: the same with U estimated from the training set;
    * ``data_distribution_given_test``: this test set held fixed, U from the training set:
      the copier's expectation with ``wᵀKw`` (which counts each training graph's kernel
      with itself) replaced by U, i.e. ``copier − (m − 1)·E_own_train/(N − 1)``, N training
      graphs and ``E_own_train = (1 − T)/m`` with T the training kernel mean.

    and three reweightings of the training graphs found by ``PoolMMD.lowest``: fitted to
    this test set (free, and keeping the node-count shares), and fitted to the training
    set alone with each graph matched only against the others
    (``lowest_reweighting_from_train``), then scored on the test set."""
    m = n = len(test)
    rows = {"copier": from_train.expected(),
            "test_itself": PoolMMD(test, test, protocol, m).expected(),
            "sharpened": from_train.expected(sharp.tolist())}
    train_itself = PoolMMD(train, train, protocol, m)
    own_train = train_itself.expected()                              # (1 − T_train) / m
    big = len(train)
    rows["data_distribution"] = {k: (1 / m + 1 / n) * m * v * n / (n - 1)
                                 for k, v in rows["test_itself"].items()}
    rows["data_distribution_from_train"] = {k: (1 / m + 1 / n) * m * v * big / (big - 1)
                                            for k, v in own_train.items()}
    rows["data_distribution_given_test"] = {k: rows["copier"][k] - (m - 1) * v / (big - 1)
                                            for k, v in own_train.items()}
    sizes = [g.number_of_nodes() for g in train]
    for name, groups in (("lowest_reweighting", None), ("lowest_reweighting_same_sizes", sizes)):
        rows[name] = from_train.expected(from_train.lowest(groups).tolist())
    # fitted to the training graphs alone (each scored against the other training graphs),
    # then scored on the test set: metric seeking with no sight of the test graphs
    rows["lowest_reweighting_from_train"] = from_train.expected(
        train_itself.lowest(leave_one_out=True).tolist())
    for r in rows.values():
        r["mean_of_three"] = mean_of_three(r)
    return rows


#: Exponents of the sharpening sweep: an isomorphism class with c training members is
#: drawn ∝ c^τ (τ = 1: the copier; τ = 2: the ``sharpened`` sampler).
SHARPENING = (1.25, 1.5, 1.75, 2.0, 3.0)


def _sharpening_sweep(train: list, twins: np.ndarray, from_train: PoolMMD) -> list:
    """Expected MMD² (closed form) of copiers sharpened by ``SHARPENING``'s exponents,
    over the whole training set and within each node count (each keeps its training
    share, as a model that samples ``n`` from the training sizes does)."""
    sizes = np.array([g.number_of_nodes() for g in train])
    out = []
    for within in (False, True):
        for tau in SHARPENING:
            w = twins ** (tau - 1.0)        # a graph of a class with c members: c^τ / c
            if within:
                for k in np.unique(sizes):
                    w[sizes == k] *= (sizes == k).mean() / w[sizes == k].sum()
            e = from_train.expected((w / w.sum()).tolist())
            out.append({"tau": tau, "within_sizes": within, **e,
                        "mean_of_three": mean_of_three(e)})
    return out


def run_dataset(name: str | None, protocol: str, draws: int, seed: int,
                root: str | None) -> dict:
    cfg = GenerationConfig(dataset=name, model="seq-vae", protocol=protocol, seed=seed)
    data = load_generation_data(cfg, root)
    train, test = list(data.train), list(data.test)

    def score(pool: list, rng: np.random.Generator,
              weight: np.ndarray | None = None) -> list[dict[str, float]]:
        out = []
        for _ in range(draws):
            drawn = [pool[i] for i in rng.choice(len(pool), size=len(test), p=weight)]
            m = mmd_table(test, drawn, protocol)["generated"]
            m.pop("empty_generated", None)
            m["mean_of_three"] = mean_of_three(m)
            m["unique"] = graph_novelty(drawn, train)["unique"]
            out.append(m)
        return out

    per_draw = score(train, np.random.default_rng(seed))
    itself = score(test, np.random.default_rng(seed + 1))
    twins = np.array([_isomorphic_count(g, train) for g in train], dtype=float)
    from_train = PoolMMD(test, train, protocol, len(test))   # kernels once, many weightings
    sharpened = score(train, np.random.default_rng(seed + 2), twins / twins.sum())
    keys = list(per_draw[0])
    triples = [statistics.fmean(d["mean_of_three"] for d in per_draw[i:i + 3])
               for i in range(0, draws - draws % 3, 3)]
    label = name or "community-small (generated)"
    whole = graph_mmd(test, train, protocol)
    whole.pop("empty_generated", None)
    whole["mean_of_three"] = mean_of_three(whole)
    row: dict = {"dataset": label, "protocol": protocol, "draws": draws, "seed": seed,
                 "train": len(train), "test": len(test), "samples_per_draw": len(test),
                 "per_draw": {k: _summary([d[k] for d in per_draw]) for k in keys},
                 "test_itself": {k: _summary([d[k] for d in itself]) for k in keys},
                 "sharpened": {k: _summary([d[k] for d in sharpened]) for k in keys},
                 "expected": _expected(train, test, protocol, twins / twins.sum(), from_train),
                 "sharpening_sweep": _sharpening_sweep(train, twins, from_train),
                 "train_vs_test": whole,
                 "kernel_min_eigenvalue": kernel_min_eigenvalues(train + test, protocol),
                 "train_unique": graph_novelty(train, train)["unique"]}
    if triples:
        row["three_draw_average"] = _summary(triples) if len(triples) > 1 else {
            "mean": triples[0]}
        if name in GDSS_AVERAGE:
            row["gdss_average"] = GDSS_AVERAGE[name]
            row["three_draw_at_or_below_gdss"] = (sum(t <= GDSS_AVERAGE[name] for t in triples)
                                                  / len(triples))
    return row


def main(argv=None) -> int:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--smoke", action="store_true", help="a few draws (seconds)")
    p.add_argument("--datasets", default="ego-small,community-small")
    p.add_argument("--protocol", default="gdss", choices=["gdss", "graphrnn"])
    p.add_argument("--draws", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1,
                   help="seeds --seed, --seed + 1, ...: under graphrnn each seed is its own "
                        "shuffled split, as in generation.py's rows")
    p.add_data_root("graphgen/")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/sampling_noise.json; "
                        "sampling_noise.smoke.json with --smoke]")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "sampling_noise.json", args.smoke)
    if args.draws < 1 or args.seeds < 1:
        p.error("--draws and --seeds must be >= 1")
    names: list[str | None] = args.datasets.split(",")
    unknown = [n for n in names if n not in GDSS_AVERAGE]
    if unknown:
        p.error(f"unknown data set(s) {unknown}; choose from {sorted(GDSS_AVERAGE)}")
    check_seed(args.seed, "--seed")          # (a ValueError: run_script's one line)
    check_seed(args.seed + args.seeds - 1, "--seed + --seeds - 1")
    if args.smoke:
        args.draws = 6
        if args.data_root is None or not (Path(args.data_root) / "graphgen").is_dir():
            names = [None]  # no data files: the embedded generated set
    for name in names:      # a later data set's missing file failed after the earlier draws
        load_generation_data(GenerationConfig(dataset=name, model="seq-vae",
                                              protocol=args.protocol, seed=args.seed),
                             args.data_root)
    rows = []
    for name, seed in ((n, s) for n in names for s in range(args.seed, args.seed + args.seeds)):
        row = run_dataset(name, args.protocol, args.draws, seed, args.data_root)
        rows.append(row)
        d, t = row["per_draw"]["mean_of_three"], row["train_vs_test"]["mean_of_three"]
        print(f"{row['dataset']} ({args.protocol}, seed {seed}): mean of the three per draw "
              f"{d['mean']:.4f} ± {d['std']:.4f} (5-95 %: {d['q05']:.4f}-{d['q95']:.4f}); "
              f"all training graphs {t:.4f}; drawn from the test set itself "
              f"{row['test_itself']['mean_of_three']['mean']:.4f}; expected for the data's "
              f"distribution {row['expected']['data_distribution']['mean_of_three']:.4f}, "
              f"for the training graphs reweighted to fit this test set "
              f"{row['expected']['lowest_reweighting']['mean_of_three']:.4f}",
              flush=True)
    report: dict = {"rows": rows, "command": " ".join(["benchmarks/sampling_noise.py",
                                                       *(argv or sys.argv[1:])]),
                    "environment": environment()}
    if args.seeds > 1:      # each closed form's mean of the three, averaged over the seeds
        report["over_seeds"] = {
            r["dataset"]: {k: statistics.fmean(x["expected"][k]["mean_of_three"] for x in rows
                                               if x["dataset"] == r["dataset"])
                           for k in r["expected"]} for r in rows}
    write_json(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
