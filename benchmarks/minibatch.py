"""Mini-batch against full-batch VGAE on the citation graphs (Kipf & Welling's split and
model, 3 seeds): test AUC / AP and seconds per epoch of each mode.

    python benchmarks/minibatch.py                       # Cora, CiteSeer, PubMed, 10 seeds
    python benchmarks/minibatch.py --batch-size 2048
    python benchmarks/minibatch.py --smoke               # seconds, the embedded graph

A mini-batch epoch is one step that decodes ``--batch-size`` positive pairs (drawn with
replacement) and as many sampled non-edges, with the encoder on the whole training graph
(:class:`graphvae.training.PairBatches`); a full-batch epoch decodes every positive
pair. Both train 200 epochs at lr 0.01 and keep the weights of the best validation
AUC + AP. Data: ``$GRAPHVAE_DATA/Planetoid/<Name>/raw`` (``--data-root``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from graphvae.datasets import load_dataset
from graphvae.io import write_json
from graphvae.tasks.link_prediction import PRESETS, run_link_prediction

ROOT = Path(__file__).resolve().parents[1]


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.pstdev(values)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="cora,citeseer,pubmed")
    p.add_argument("--seeds", type=int, default=10,
                   help="seeds 0..N-1; the means over seeds 0, 1, 2 are reported too [10]")
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path,
                   default=ROOT / "benchmarks" / "results" / "minibatch.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    datasets = ["synthetic"] if args.smoke else args.datasets.split(",")
    seeds = 1 if args.smoke else args.seeds
    epochs = 5 if args.smoke else 200
    rows = []
    for ds in datasets:
        data = load_dataset(ds, args.data_root)
        row: dict = {"dataset": ds, "seeds": seeds, "batch_size": args.batch_size}
        for mode, size in (("full", None), ("mini", args.batch_size)):
            cfg = PRESETS["vgae"].replace(epochs=epochs, batch_size=size)
            t0 = time.perf_counter()
            runs = [run_link_prediction(data, cfg, seed, progress=False).metrics
                    for seed in range(seeds)]
            for key in ("test_auc", "test_ap"):
                values = [100 * r[key] for r in runs]
                row[f"{mode}_{key}"], row[f"{mode}_{key}_std"] = _stats(values)
                row[f"{mode}_{key}_seeds"] = values
                row[f"{mode}_{key}_3"], row[f"{mode}_{key}_3_std"] = _stats(values[:3])
            row[f"{mode}_ms_per_epoch"] = statistics.mean(r["median_epoch_ms"] for r in runs)
            row[f"{mode}_wall_s"] = time.perf_counter() - t0
        row["auc_gap"] = row["mini_test_auc"] - row["full_test_auc"]
        row["auc_gap_3"] = row["mini_test_auc_3"] - row["full_test_auc_3"]
        row["epoch_time_ratio"] = row["mini_ms_per_epoch"] / row["full_ms_per_epoch"]
        rows.append(row)
        print(f"{ds}: full AUC {row['full_test_auc']:.2f} ± {row['full_test_auc_std']:.2f}, "
              f"mini AUC {row['mini_test_auc']:.2f} ± {row['mini_test_auc_std']:.2f} "
              f"(gap {row['auc_gap']:+.2f}; seeds 0-2: {row['auc_gap_3']:+.2f}); ms/epoch "
              f"{row['full_ms_per_epoch']:.1f} -> "
              f"{row['mini_ms_per_epoch']:.1f}", flush=True)
    write_json({"rows": rows, "smoke": args.smoke, "command": " ".join(sys.argv),
                "threads": 1}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
