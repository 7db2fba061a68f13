"""Link-prediction benchmark: Kipf & Welling's table, the package's best configuration,
and training time against PyG's own VGAE.

    python benchmarks/linkpred.py          # full: 3 data sets x {gae, vgae, best} x 10 seeds
    python benchmarks/linkpred.py --timing-only        # PyG VGAE vs graphvae VGAE, Cora + PubMed
    python benchmarks/linkpred.py --smoke              # seconds, no data files (synthetic graph)

Published numbers: Kipf & Welling, *Variational Graph Auto-Encoders*, NIPS 2016
Bayesian Deep Learning workshop, Table 1 (https://arxiv.org/abs/1611.07308);
GNAE: Ahn & Kim, CIKM 2021 (https://arxiv.org/abs/2108.08046), AUC only.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from graphvae.adjacency import Adjacency
from graphvae.datasets import LINKPRED_DATASETS, load_dataset
from graphvae.errors import OneLineParser, run_script
from graphvae.io import write_json
from graphvae.provenance import environment
from graphvae.tasks.link_prediction import (
    PRESETS,
    evaluate_pairs,
    prepare_features,
    run_link_prediction,
    split_edges,
    summarize,
)

RESULTS = Path(__file__).resolve().parent / "results"
PUBLISHED = {  # (AUC, AP) in percent
    ("cora", "gae"): (91.0, 92.0), ("citeseer", "gae"): (89.5, 89.9),
    ("pubmed", "gae"): (96.4, 96.5), ("cora", "vgae"): (91.4, 92.6),
    ("citeseer", "vgae"): (90.8, 92.0), ("pubmed", "vgae"): (94.4, 94.7),
    ("cora", "best"): (95.6, None), ("citeseer", "best"): (96.5, None),
    ("pubmed", "best"): (97.5, None),
}


def accuracy_table(datasets, models, seeds, data_root, epochs=None) -> list[dict]:
    rows = []
    for ds in datasets:
        data = load_dataset(ds, data_root)
        for model in models:
            cfg = PRESETS[model] if epochs is None else PRESETS[model].replace(epochs=epochs)
            t0 = time.perf_counter()
            runs = [run_link_prediction(data, cfg, seed, progress=False).metrics
                    for seed in range(seeds)]
            stats = summarize(runs)
            pub = PUBLISHED.get((ds, model), (None, None))
            row = {"dataset": ds, "model": model, "seeds": seeds,
                   **{f"{k}_{s}": 100 * v[s] for k, v in stats.items() for s in ("mean", "std")},
                   "published_auc": pub[0], "published_ap": pub[1],
                   "median_epoch_ms": statistics.median(r["median_epoch_ms"] for r in runs),
                   "seconds": time.perf_counter() - t0, "config": cfg.to_dict()}
            rows.append(row)
            print(f"{ds:9s} {model:5s} AUC {row['test_auc_mean']:.2f} ± {row['test_auc_std']:.2f}"
                  f"  AP {row['test_ap_mean']:.2f} ± {row['test_ap_std']:.2f}   published "
                  f"{pub[0]} / {pub[1]}   ({row['seconds']:.0f}s)", flush=True)
    return rows


# --------------------------------------------------------------------------- timing

def _pyg_vgae_epochs(data, split, x, epochs: int) -> list[float]:
    """PyG's examples/autoencoder.py VGAE (GCNConv 32-16), one sampled negative per positive."""
    from torch_geometric.nn import GAE, VGAE, GCNConv

    class Encoder(torch.nn.Module):
        def __init__(self, i: int, o: int):
            super().__init__()
            self.conv1, self.mu, self.logstd = GCNConv(i, 2 * o), GCNConv(2 * o, o), \
                GCNConv(2 * o, o)

        def forward(self, x, ei):
            h = self.conv1(x, ei).relu()
            return self.mu(h, ei), self.logstd(h, ei)

    model = VGAE(Encoder(x.size(1), 16))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    ei = split.train_edge_index
    pos = ei[:, :ei.size(1) // 2]  # the upper-triangle half: each training edge once
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        opt.zero_grad()
        z = model.encode(x, ei)
        loss = model.recon_loss(z, pos) + (1 / data.num_nodes) * model.kl_loss()
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            z = model.encode(x, ei)
            GAE.test(model, z, split.val_pos, split.val_neg)
        times.append(time.perf_counter() - t0)
    return times


def _graphvae_vgae_epochs(data, split, epochs: int) -> list[float]:
    """The package's own loop (``graphvae.training.fit``): a step and the validation
    scoring every epoch, as in ``run_link_prediction``."""
    from graphvae.tasks.link_prediction import build_linkpred_model
    from graphvae.training import FullBatch, fit
    cfg = PRESETS["vgae"]
    x = prepare_features(data, cfg.features)
    model = build_linkpred_model(cfg, x.size(1))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    adj = Adjacency(split.train_edge_index, data.num_nodes)
    gen = torch.Generator().manual_seed(0)

    def evaluate() -> dict[str, float]:
        auc, ap = evaluate_pairs(model, model.encode(x, adj).mean, split.val_pos, split.val_neg)
        return {"score": auc + ap}

    res = fit(model, FullBatch(model.batch(x, adj)), opt, epochs=epochs, evaluate=evaluate,
              generator=gen, progress=False)
    return res.epoch_seconds


def timing_worker(which: str, dataset: str, epochs: int, data_root) -> dict:
    """One implementation in this process: median epoch time (training step + validation
    scoring) and the process's peak resident memory."""
    torch.manual_seed(0)
    data = load_dataset(dataset, data_root)
    split = split_edges(data.edge_index, data.num_nodes, seed=0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if which == "pyg":
        times = _pyg_vgae_epochs(data, split, data.x, epochs)
    else:
        times = _graphvae_vgae_epochs(data, split, epochs)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"impl": which, "dataset": dataset, "epochs": epochs,
            "median_epoch_ms": 1e3 * statistics.median(times[1:] or times),
            "peak_rss_mb": rss / 1024, "rss_growth_mb": (rss - rss0) / 1024}


def timing_table(dataset: str, epochs: int, repeats: int, data_root) -> dict:
    """Alternate PyG and graphvae in fresh subprocesses; medians over repeats."""
    results: dict[str, list[dict]] = {"pyg": [], "graphvae": []}
    for _ in range(repeats):
        for impl in ("pyg", "graphvae"):
            cmd = [sys.executable, __file__, "--timing-worker", impl, "--datasets", dataset,
                   "--epochs", str(epochs)]
            if data_root:
                cmd += ["--data-root", str(data_root)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results[impl].append(json.loads(out.strip().splitlines()[-1]))
    med = {k: statistics.median(r["median_epoch_ms"] for r in v) for k, v in results.items()}
    rss = {k: max(r["peak_rss_mb"] for r in v) for k, v in results.items()}
    row = {"dataset": dataset, "epochs": epochs, "repeats": repeats,
           "pyg_median_epoch_ms": med["pyg"], "graphvae_median_epoch_ms": med["graphvae"],
           "ratio_graphvae_over_pyg": med["graphvae"] / med["pyg"],
           "pyg_peak_rss_mb": rss["pyg"], "graphvae_peak_rss_mb": rss["graphvae"],
           "runs": results}
    print(f"timing {dataset}: PyG VGAE {med['pyg']:.1f} ms/epoch, graphvae VGAE "
          f"{med['graphvae']:.1f} ms/epoch, ratio {row['ratio_graphvae_over_pyg']:.2f}; "
          f"peak RSS {rss['pyg']:.0f} vs {rss['graphvae']:.0f} MB", flush=True)
    return row


def main(argv=None) -> int:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--datasets", nargs="+", default=["cora", "citeseer", "pubmed"],
                   choices=LINKPRED_DATASETS,
                   help="the accuracy table's graphs (--smoke: synthetic) "
                        "[cora citeseer pubmed]")
    p.add_argument("--models", nargs="+", default=["gae", "vgae", "best"], choices=list(PRESETS),
                   help="the accuracy table's presets [gae vgae best]")
    p.add_argument("--seeds", type=int, default=10, help="seeds a row (mean ± std) [10]")
    p.add_argument("--epochs", type=int, default=None, help="override every preset's epochs")
    p.add_argument("--timing-epochs", type=int, default=200,
                   help="epochs of each timed run [200]")
    p.add_argument("--timing-repeats", type=int, default=3,
                   help="timed runs of each implementation, alternating (the median) [3]")
    p.add_argument("--timing-datasets", nargs="+", default=["cora", "pubmed"],
                   choices=LINKPRED_DATASETS,
                   help="the graphs timed against PyG (--smoke: synthetic) [cora pubmed]")
    p.add_argument("--timing-only", action="store_true", help="only the timing table")
    p.add_argument("--no-timing", action="store_true", help="only the accuracy table")
    p.add_data_root("Planetoid/")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/linkpred.json; "
                        "linkpred.smoke.json with --smoke]")
    p.add_argument("--smoke", action="store_true",
                   help="synthetic graph, 1 seed, 5 epochs, 1 timing repeat")
    p.add_argument("--timing-worker", choices=["pyg", "graphvae"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "linkpred.json", args.smoke)
    for flag in ("seeds", "epochs", "timing_epochs", "timing_repeats"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.timing_worker:
        print(json.dumps(timing_worker(args.timing_worker, args.datasets[0],
                                       args.epochs or args.timing_epochs, args.data_root)))
        return 0
    if args.smoke:
        args.datasets, args.seeds, args.epochs = ["synthetic"], 1, 5
        args.timing_datasets, args.timing_epochs, args.timing_repeats = ["synthetic"], 5, 1
    if args.seeds > 10_000 or (args.epochs or 0) > 1_000_000 or args.timing_epochs > 1_000_000 \
            or args.timing_repeats > 1_000:
        p.error("--seeds at most 10000, --epochs and --timing-epochs at most 1000000, "
                "--timing-repeats at most 1000")
    needed = ([] if args.timing_only else args.datasets) + \
        ([] if args.no_timing else args.timing_datasets)
    for ds in dict.fromkeys(needed):                 # every graph read before the first run
        load_dataset(ds, args.data_root)
    report: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "environment": environment()}
    if not args.timing_only:
        report["accuracy"] = accuracy_table(args.datasets, args.models, args.seeds,
                                            args.data_root, args.epochs)
    if not args.no_timing:
        report["timing"] = [timing_table(ds, args.timing_epochs, args.timing_repeats,
                                         args.data_root) for ds in args.timing_datasets]
    write_json(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
