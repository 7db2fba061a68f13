"""Small-graph generation: MMD² on community-small / ego-small (GraphRNN kernels, ours and
GDSS's set-up) and grid (GRAN kernels), QM9 validity (strict and GDSS's) / uniqueness /
novelty / FCD / NSPDK; over seeds, with training and wall time.

    python benchmarks/generation.py                         # full (about 3.5 hours, one core)
    python benchmarks/generation.py --only community-small  # one part
    python benchmarks/generation.py --only qm9 --rows seq-vae   # some rows; others kept
    python benchmarks/generation.py --smoke                 # about a minute

Our set-up: each seed shuffles the set, keeps the last 20% as the test set and the
last 10% of the rest for validation (epoch selection). GDSS's set-up (rows "[GDSS
set-up]", ``--protocol gdss``): unshuffled, the first 20% the test set, isolated nodes
removed from samples, spectral MMD² added. Either way a trained model samples as many
graphs as the test set has, and each statistic's MMD² between the test graphs and the
samples is reported. Every value is MMD², not MMD. The train-vs-test row compares the
training graphs with the test graphs under the same kernels: the scale of "as good as
the data". On community-small and ego-small each trained model also scores ``--draws``
− 1 further sample sets (default 100 in all) and the row gives the mean over them
(``over_draws``): one set's MMD² moves by about as much as models differ. Published rows
are copied from the papers (GraphRNN, You et al. 2018, Table
2 for GraphVAE and GraphRNN; GDSS, Jo et al. 2022, Table 1 for its averages and its
re-run of GraphRNN; GraphVAE, Simonovsky & Komodakis 2018, for QM9).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from graphvae.checks import check_seed
from graphvae.errors import OneLineParser, run_script
from graphvae.io import write_json
from graphvae.tasks.generation import GenerationConfig, run_generation

RESULTS = Path(__file__).resolve().parent / "results"

PUBLISHED = {
    "community-small": {"GraphVAE": (0.35, 0.98, 0.54), "GraphRNN": (0.03, 0.03, 0.01),
                        "GDSS (average of the three)": (0.046,)},
    "ego-small": {"GraphVAE": (0.13, 0.17, 0.05), "GraphRNN": (0.0003, 0.05, 0.0009),
                  "GDSS (average of the three)": (0.0173,)},
    "qm9": {"GraphVAE": (55.7, 76.0, 61.6)},
}


@dataclass(frozen=True)
class Run:
    """One row: a model and its settings on one data set (``protocol``: the MMD set-up)."""

    model: str
    epochs: int
    bound: str = "matched"
    protocol: str = "graphrnn"
    prior: str | None = None
    num_samples: int | None = None
    connect_rule: str = "lookahead"

    @property
    def label(self) -> str:
        text = self.model + (f" ({self.bound})" if self.model == "graphvae" else "")
        if self.model != "graphvae":
            cfg = GenerationConfig(model=self.model, prior=self.prior,
                                   dataset="qm9" if self.protocol == "molecules" else None)
            text += f", {cfg.prior_name} prior"
        if self.connect_rule != "lookahead":
            text += f", {self.connect_rule} rule"
        return text + (" [GDSS set-up]" if self.protocol == "gdss" else "")


#: The parts whose rows also report the MMD² averaged over ``--draws`` sample sets.
DRAWN = ("community-small", "ego-small")

# QM9 epochs are passes over ~96k molecules.
RUNS = {
    "community-small": [Run("oneshot-vae", 500), Run("graphvae", 60),
                        Run("graphvae", 60, "permutation"), Run("seq-vae", 1000),
                        Run("seq-vae", 1000, protocol="gdss"),
                        Run("graphvae", 60, protocol="gdss")],
    "ego-small": [Run("oneshot-vae", 500), Run("graphvae", 60), Run("seq-vae", 1000),
                  Run("seq-vae", 1000, protocol="gdss")],
    "grid": [Run("oneshot-vae", 100, protocol="gran"), Run("seq-vae", 50, protocol="gran")],
    "qm9": [Run("oneshot-vae", 10, protocol="molecules", num_samples=1000),
            Run("seq-vae", 3, protocol="molecules", num_samples=3000),
            Run("seq-vae", 3, protocol="molecules", num_samples=3000, connect_rule="budget"),
            Run("seq-vae", 3, protocol="molecules", num_samples=3000, connect_rule="cuts")],
}


def _mean_std(values: list[float | None]) -> dict[str, float | None]:
    """Mean and sample std over seeds; ``None`` where a seed's value is undefined (an
    NSPDK, a uniqueness with no valid molecule)."""
    if any(v is None for v in values):
        return {"mean": None, "std": None}
    return {"mean": statistics.fmean(values),  # type: ignore[arg-type]
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}  # type: ignore


def run_part(name: str, args) -> list[dict]:
    rows = []
    for run in RUNS[name]:
        if args.rows and args.rows not in run.label:
            continue
        per_seed = []
        for seed in range(args.seed, args.seed + args.seeds):
            smoke = args.smoke
            cfg = GenerationConfig(dataset=name, model=run.model, bound=run.bound,
                                   epochs=args.epochs if args.epochs is not None
                                   else 1 if smoke else run.epochs,
                                   protocol="graphrnn" if run.protocol == "molecules"
                                   else run.protocol, prior=run.prior, seed=seed,
                                   connect_rule=run.connect_rule,
                                   batch_size=128 if name == "qm9" else (8 if name == "grid"
                                                                         else 32),
                                   eval_every=1 if name == "qm9" or smoke else 10,
                                   num_samples=(50 if smoke else run.num_samples)
                                   if name == "qm9" else None,
                                   fcd=not smoke,
                                   qm9_limit=2000 if smoke and name == "qm9" else None,
                                   draws=min(args.draws, 2 if smoke else args.draws)
                                   if name in DRAWN else 1)
            start = time.perf_counter()
            m = run_generation(cfg, args.data_root, None, progress=not args.quiet)
            m["wall_seconds"] = time.perf_counter() - start
            per_seed.append(m)
            print(f"{name} {run.label} seed {seed}: {_brief(m)}", flush=True)
        rows.append(_aggregate(name, run, per_seed))
    return rows


def _brief(m: dict) -> str:
    if "mmd2" in m:
        return " ".join(f"{k} {v:.4f}" for k, v in m["mmd2"]["generated"].items()
                        if k != "empty_generated") + f" ({m['train_seconds']:.0f}s)" + (
            f"; mean of the three over {m['mmd2_draws']['draws']} draws "
            f"{m['mmd2_draws']['mean_of_three']['mean']:.4f} ± "
            f"{m['mmd2_draws']['mean_of_three']['std']:.4f}" if "mmd2_draws" in m else "")
    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"
    return " | ".join(f"{k}: valid {num(v['validity'])} unique {num(v['uniqueness'])} novel "
                      f"{num(v['novelty'])}" for k, v in m["molecules"].items())


MOLECULE_KEYS = ("validity", "uniqueness", "novelty", "gdss_validity", "fcd", "nspdk")


def _aggregate(name: str, run: Run | str, runs: list[dict]) -> dict:
    label = run if isinstance(run, str) else run.label
    row: dict = {"dataset": name, "label": label, "model": runs[0]["model"],
                 "bound": runs[0]["bound"], "bound_means": runs[0].get("bound_means", ""),
                 "seeds": [r["seed"] for r in runs],
                 "train_seconds": _mean_std([r["train_seconds"] for r in runs]),
                 "wall_seconds": _mean_std([r.get("wall_seconds", 0.0) for r in runs]),
                 "test_bound_nats": _mean_std([r["test_bound_nats"] for r in runs]),
                 "split": runs[0]["split"], "num_samples": runs[0]["num_samples"],
                 "environment": runs[0]["environment"]}
    if "mmd2" in runs[0]:
        row["protocol"] = runs[0]["protocol"]
        for part in ("generated", "train_vs_test"):
            stats = [k for k in runs[0]["mmd2"][part] if k != "empty_generated"]
            row[part] = {k: _mean_std([r["mmd2"][part][k] for r in runs]) for k in stats}
        row["empty_generated"] = sum(r["mmd2"]["generated"]["empty_generated"] for r in runs)
        if "mmd2_draws" in runs[0]:
            drawn = [r["mmd2_draws"] for r in runs]
            row["over_draws"] = {"draws": drawn[0]["draws"]} | {
                k: {"mean": statistics.fmean(d[k]["mean"] for d in drawn),
                    "std_seeds": statistics.stdev([d[k]["mean"] for d in drawn])
                    if len(drawn) > 1 else 0.0,
                    "std_draws": statistics.fmean(d[k]["std"] for d in drawn)}
                for k in drawn[0] if k != "draws"}
        if "copies" in runs[0]:
            row["copies"] = {k: _mean_std([r["copies"][k] for r in runs])
                             for k in runs[0]["copies"]}
    else:
        row["molecules"] = {
            dec: {k: _mean_std([r["molecules"][dec][k] for r in runs])
                  for k in MOLECULE_KEYS if k in runs[0]["molecules"][dec]}
            for dec in runs[0]["molecules"]}
        for dec, metrics in row["molecules"].items():
            if "invalid" in runs[0]["molecules"][dec]:     # why samples fail, per seed
                metrics["invalid"] = [r["molecules"][dec]["invalid"] for r in runs]
        row["denominators"] = runs[0]["molecules"]["sampled"]["denominators"]
    return row


def _old_label(row: dict) -> str:
    """The label of a row written before rows had labels."""
    if row["model"] == "graphvae":
        return f"graphvae ({row['bound']})"
    return f"{row['model']}, normal prior"


def check_data(parts: list[str], root: str | None) -> None:
    """Each part's data (and RDKit for QM9) before any training: a later part's missing
    file failed after the earlier parts' runs."""
    from graphvae.chem.qm9 import QM9_FILE, require_rdkit
    from graphvae.datasets.graphsets import load_graph_set
    from graphvae.io import require_file, resolve_data_root
    for name in parts:
        if name == "qm9":
            require_rdkit()
            require_file(resolve_data_root(root) / QM9_FILE,
                         "QM9 not found (see ../shared/data/README.md)")
        else:
            load_graph_set(name, root)


def read_report(path: Path, smoke: bool) -> dict:
    """The generation report at ``path`` whose other rows a partial run (``--only``,
    ``--rows``) keeps; a one-line ``ValueError`` for a file that is not one, or one of the
    other kind (smoke rows into a measured report, or the reverse)."""
    from graphvae.io import read_json
    old = read_json(path)
    rows = old.get("results") if isinstance(old, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "dataset" in r and
                                             ("label" in r or "model" in r) for r in rows):
        raise ValueError(f"--out {path} is not a generation report (a JSON object whose "
                         f"results are rows of data sets), and a partial run would replace "
                         f"it: name another file")
    # (reports written before they said so: a smoke run's has its name)
    if bool(old.get("smoke", path.name.endswith(".smoke.json"))) != smoke:
        kind = ("smoke rows into a measured report" if smoke
                else "measured rows into a smoke run's report")
        raise ValueError(f"--out {path}: this run would mix {kind}; name another file")
    return old


def main(argv=None) -> int:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--smoke", action="store_true", help="every row, one seed, one epoch "
                   "(about a minute)")
    p.add_argument("--only", help="comma-separated parts: " + ",".join(RUNS))
    p.add_argument("--rows", help="only the rows whose label contains this text (e.g. "
                   "seq-vae); the other rows of the file are kept")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, help="override every run's epochs")
    p.add_argument("--draws", type=int, default=100,
                   help="community-small / ego-small: also score this many sample sets per "
                   "trained model (the first is the row's own) and report the mean over them "
                   "(1: only the row's own set)")
    p.add_data_root("graphgen/ and qm9/")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/generation.json; "
                        "generation.smoke.json with --smoke]")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: two runs side by side on two cores do not spin)")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "generation.json", args.smoke)
    if args.threads < 1 or args.draws < 1 or args.seeds < 1 or (args.epochs is not None
                                                                and args.epochs < 1):
        p.error("--threads, --draws, --seeds and --epochs must be >= 1")
    if args.threads > 1024:
        p.error(f"--threads must be at most 1024, got {args.threads}")
    check_seed(args.seed, "--seed")          # (a ValueError: run_script's one line)
    check_seed(args.seed + args.seeds - 1, "--seed + --seeds - 1")
    import torch
    torch.set_num_threads(args.threads)
    parts = args.only.split(",") if args.only else list(RUNS)
    unknown = [x for x in parts if x not in RUNS]
    if unknown:
        p.error(f"unknown part(s) {unknown}; choose from {list(RUNS)}")
    if args.rows and not any(args.rows in run.label for name in parts for run in RUNS[name]):
        p.error(f"--rows {args.rows!r} matches no row of {', '.join(parts)}; the rows are: "
                + "; ".join(sorted({run.label for name in parts for run in RUNS[name]})))
    if args.smoke:
        args.seeds = 1
        try:
            import rdkit  # noqa: F401
        except ImportError:
            parts = [x for x in parts if x != "qm9"]
        if args.data_root is None or not (Path(args.data_root) / "graphgen").is_dir():
            parts = []  # no data files: the generated set only
    fresh = {(name, run.label) for name in parts for run in RUNS[name]
             if not args.rows or args.rows in run.label}
    partial = bool(args.only or args.rows)
    if partial and args.out.is_file():
        read_report(args.out, args.smoke)            # refused before the runs, not after
    check_data(parts, args.data_root)
    report: dict = {"published": PUBLISHED, "results": [], "torch_threads": args.threads,
                    "smoke": args.smoke}
    if args.smoke and not parts:
        cfg = GenerationConfig(model="oneshot-vae", epochs=1, eval_every=1)
        m = run_generation(cfg, None, None, progress=False)
        report["results"].append(_aggregate("community-small (generated)",
                                            "oneshot-vae, normal prior", [m]))
    for name in parts:
        report["results"].extend(run_part(name, args))
    if partial and args.out.is_file():
        # read again now: rows another run wrote into the file meanwhile are kept
        kept = [r for r in read_report(args.out, args.smoke)["results"]
                if (r["dataset"], r["label"] if "label" in r else _old_label(r)) not in fresh]
        report["results"] = kept + report["results"]
    write_json(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
