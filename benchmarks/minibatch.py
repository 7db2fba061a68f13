"""Mini-batch against full-batch VGAE on the citation graphs (Kipf & Welling's split and
model, 10 seeds): test AUC / AP and seconds per epoch of each mode.

    python benchmarks/minibatch.py                       # Cora, CiteSeer, PubMed, 10 seeds
    python benchmarks/minibatch.py --modes full,mini     # leave out the one-pass mode
    python benchmarks/minibatch.py --batch-size 2048
    python benchmarks/minibatch.py --lr 0.005,0.01       # each mode's rate chosen on validation
    python benchmarks/minibatch.py --smoke               # seconds, the embedded graph

Two mini-batch modes, each with the encoder on the whole training graph
(:class:`graphvae.training.PairBatches`):

* ``mini``: an epoch is one step that decodes ``--batch-size`` positive pairs (a uniform
  subset) and as many sampled non-edges (``--steps-per-epoch 1``, the default);
* ``pass``: an epoch is ``ceil(N⁺ / batch size)`` such steps, as many positive pairs as
  a full-batch epoch decodes (``--steps-per-epoch 0``).

A full-batch epoch decodes every positive pair in one step. All train 200 epochs at lr
0.01 and keep the weights of the best validation AUC + AP. With several ``--lr``, each
mode trains every seed at every rate and reports the rate whose mean validation AUC
over the seeds is best (the test AUC never chooses); every rate's means are kept too. Data:
``$GRAPHVAE_DATA/Planetoid/<Name>/raw`` (``--data-root``).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

from graphvae.datasets import LINKPRED_DATASETS, load_dataset
from graphvae.errors import OneLineParser, run_script
from graphvae.io import write_json
from graphvae.provenance import environment
from graphvae.tasks.link_prediction import PRESETS, run_link_prediction, training_positives

RESULTS = Path(__file__).resolve().parent / "results"


#: (name, mini-batch?, steps per epoch): full batch, one step per epoch, one pass.
MODES = (("full", False, 1), ("mini", True, 1), ("pass", True, 0))
#: Prefix of each mini-batch mode's gap / ratio keys against full batch in the results.
GAP_PREFIX = {"mini": "", "pass": "pass_"}


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.pstdev(values)


def main(argv=None) -> None:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--datasets", default="cora,citeseer,pubmed",
                   help="comma-separated: synthetic, cora, citeseer, pubmed (--smoke: "
                        "synthetic) [cora,citeseer,pubmed]")
    p.add_argument("--seeds", type=int, default=10,
                   help="seeds 0..N-1; the means over seeds 0, 1, 2 are reported too [10]")
    p.add_argument("--batch-size", type=int, default=4096,
                   help="positive pairs a step of the mini-batch modes [4096]")
    p.add_argument("--lr", default=None,
                   help="learning rates, comma-separated: each mode trains with every one "
                        "and keeps the one of best mean validation AUC over the seeds "
                        "[the vgae preset's, 0.01]")
    p.add_argument("--modes", default="full,mini,pass",
                   help="comma-separated subset of full, mini, pass [all three]")
    p.add_data_root("Planetoid/")
    p.add_argument("--smoke", action="store_true",
                   help="the synthetic graph, one seed, 5 epochs")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/minibatch.json; "
                        "minibatch.smoke.json with --smoke]")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "minibatch.json", args.smoke)
    torch.set_num_threads(1)
    datasets, seeds = args.datasets.split(","), args.seeds   # checked, then --smoke's own
    epochs = 5 if args.smoke else 200
    modes = args.modes.split(",")
    try:
        lrs = ([PRESETS["vgae"].lr] if args.lr is None else
               [float(v) for v in args.lr.split(",")])
    except ValueError:
        p.error(f"--lr: comma-separated numbers, got {args.lr!r}")
    if not all(0 < v < float("inf") for v in lrs):
        p.error(f"--lr: positive finite rates, got {args.lr!r}")
    if not modes or any(m not in {n for n, _, _ in MODES} for m in modes):
        p.error(f"--modes: choose from full, mini, pass, got {args.modes!r}")
    if not 1 <= seeds <= 10_000:
        p.error(f"--seeds must lie in 1 … 10000, got {seeds}")
    unknown = [ds for ds in datasets if ds not in LINKPRED_DATASETS]
    if unknown:
        p.error(f"--datasets: unknown {', '.join(unknown)}; choose from "
                f"{', '.join(LINKPRED_DATASETS)}")
    if args.smoke:
        datasets, seeds = ["synthetic"], 1
    for lr in lrs:           # the configuration's own checks (a batch of 0, a rate of 1e31)
        PRESETS["vgae"].replace(epochs=epochs, lr=lr, batch_size=args.batch_size)
    graphs = {ds: load_dataset(ds, args.data_root) for ds in datasets}  # all, before the runs
    if any(size for name, size, _ in MODES if name in modes):
        for ds, data in graphs.items():   # else found at the first mini-batch run only
            most = training_positives(data, PRESETS["vgae"])
            if args.batch_size > most:
                p.error(f"--batch-size {args.batch_size} is more than the {most} positive "
                        f"pairs of {ds}'s training graph")
    rows = []
    for ds in datasets:
        data = graphs[ds]
        row: dict = {"dataset": ds, "seeds": seeds, "batch_size": args.batch_size}
        for mode, size, steps in (m for m in MODES if m[0] in modes):
            cfg = PRESETS["vgae"].replace(epochs=epochs, steps_per_epoch=steps,
                                          batch_size=args.batch_size if size else None)
            tried = {}
            for lr in lrs:
                t0 = time.perf_counter()
                runs = [run_link_prediction(data, cfg.replace(lr=lr), seed,
                                            progress=False).metrics for seed in range(seeds)]
                tried[lr] = (runs, time.perf_counter() - t0)
                for key in ("val_auc", "test_auc"):
                    row[f"{mode}_lr{lr:g}_{key}"] = statistics.mean(100 * r[key] for r in runs)
            lr = max(lrs, key=lambda v: row[f"{mode}_lr{v:g}_val_auc"])
            runs, wall = tried[lr]
            row[f"{mode}_lr"] = lr
            for key in ("test_auc", "test_ap", "val_auc"):
                values = [100 * r[key] for r in runs]
                row[f"{mode}_{key}"], row[f"{mode}_{key}_std"] = _stats(values)
                row[f"{mode}_{key}_seeds"] = values
                row[f"{mode}_{key}_3"], row[f"{mode}_{key}_3_std"] = _stats(values[:3])
            row[f"{mode}_ms_per_epoch"] = statistics.mean(r["median_epoch_ms"] for r in runs)
            row[f"{mode}_wall_s"] = wall
        compared = [m for m in GAP_PREFIX if m in modes and "full" in modes]
        for mode in compared:
            key = GAP_PREFIX[mode]
            row[f"{key}auc_gap"] = row[f"{mode}_test_auc"] - row["full_test_auc"]
            row[f"{key}auc_gap_3"] = row[f"{mode}_test_auc_3"] - row["full_test_auc_3"]
            row[f"{key}epoch_time_ratio"] = (row[f"{mode}_ms_per_epoch"] /
                                             row["full_ms_per_epoch"])
        rows.append(row)
        print(f"{ds}: " + "; ".join(f"{m} (lr {row[f'{m}_lr']:g}) AUC "
                                    f"{row[f'{m}_test_auc']:.2f} ± "
                                    f"{row[f'{m}_test_auc_std']:.2f}" for m in modes), flush=True)
        gaps = [f"{m} - full {row[f'{k}auc_gap']:+.2f} (seeds 0-2: "
                f"{row[f'{k}auc_gap_3']:+.2f}), time/epoch {row[f'{k}epoch_time_ratio']:.2f}x"
                for m, k in ((m, GAP_PREFIX[m]) for m in compared)]
        if gaps:
            print("  " + "; ".join(gaps), flush=True)
    write_json({"rows": rows, "modes": modes, "smoke": args.smoke,
                "command": " ".join(sys.argv), "threads": 1,
                "environment": environment()}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(run_script(main))
