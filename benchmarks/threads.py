"""The embedded ``graphvae generate`` and ``graphvae linkpred``, alone and beside a busy job.

    python benchmarks/threads.py            # default runs, 3 repeats each way (about 6 min)
    python benchmarks/threads.py --smoke    # short runs, one repeat

Each command runs as a user would start it (``python -m graphvae ...``, torch's default
threads), first on a quiet machine, then while another process multiplies 1500 × 1500
matrices on two torch threads without pause. The report gives the median wall-clock
seconds each way and their ratio; the bar is a ratio of at most 2. ``--python`` runs the
commands with another interpreter (to measure another version of the package the same
way).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from graphvae.errors import OneLineParser, run_script

RESULTS = Path(__file__).resolve().parent / "results"

BUSY = ("import torch\ntorch.set_num_threads(2)\na = torch.randn(1500, 1500)\n"
        "while True:\n    a = (a @ a).tanh_()\n")
# generate as it was measured (oneshot-vae, the default until 5 December)
COMMANDS = {"generate": ["generate", "--model", "oneshot-vae", "--quiet"],
            "linkpred": ["linkpred", "--quiet"]}
SMOKE = {"generate": ["generate", "--model", "oneshot-vae", "--quiet", "--epochs", "2"],
         "linkpred": ["linkpred", "--quiet", "--epochs", "2"]}


def timed(python: str, argv: list[str]) -> float:
    start = time.perf_counter()
    # stderr is kept: a failed child's last line is its reason (run_script prints it)
    subprocess.run([python, "-m", "graphvae", *argv], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=3600)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--python", default=sys.executable, help="the interpreter to run")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/threads.json; "
                        "threads.smoke.json with --smoke]")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "threads.json", args.smoke)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    commands, repeats = (SMOKE, 1) if args.smoke else (COMMANDS, args.repeats)
    rows: list[dict[str, Any]] = []
    for name, cmd in commands.items():
        quiet = [timed(args.python, cmd) for _ in range(repeats)]
        busy_proc = subprocess.Popen([sys.executable, "-c", BUSY])
        try:
            time.sleep(2.0)  # let it get going
            busy = [timed(args.python, cmd) for _ in range(repeats)]
        finally:
            busy_proc.kill()
            busy_proc.wait()
        q, b = statistics.median(quiet), statistics.median(busy)
        rows.append({"command": " ".join(cmd), "quiet_s": quiet, "busy_s": busy,
                     "median_quiet_s": q, "median_busy_s": b, "ratio": b / q})
        print(f"{name}: quiet {q:.1f} s, beside a 2-thread job {b:.1f} s, ratio {b / q:.2f}",
              flush=True)
    from graphvae.io import write_json
    write_json({"python": args.python, "repeats": repeats, "results": rows}, args.out)
    print(json.dumps({r["command"]: round(r["ratio"], 2) for r in rows}))
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
