"""Kill ``graphvae linkpred / generate / vector --out DIR`` at random moments and check DIR.

    python benchmarks/kill_safety.py              # 20 kills per command (about 4 min)
    python benchmarks/kill_safety.py --smoke      # 2 kills per command, tiny runs, 2 at a time

For each command, one output folder is reused throughout: a first uninterrupted run
measures the command's duration T, then each round starts the command (with a new
seed; every other round first deletes DIR), sends ``SIGKILL`` after a uniformly
random delay in ``[0, 1.2 T]`` (unless it has finished) and checks the folder: it must
be absent, or complete and from one run — its ``manifest.json`` lists every file in
it, each with the size and SHA-256 it has. A final uninterrupted run must succeed and
leave no staging or replaced folders beside DIR, and no temporary files in it. The
report counts, per command, the kills that left the folder absent, left it complete,
or left it broken (the bar: none broken, none left over).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from graphvae.errors import OneLineParser, run_script

RESULTS = Path(__file__).resolve().parent / "results"

COMMANDS = {
    "linkpred": ["linkpred", "--epochs", "60"],
    "generate": ["generate", "--model", "oneshot-vae", "--epochs", "20", "--eval-every", "5"],
    "vector": ["vector", "--epochs", "10", "--nll-samples", "200"],
}
SMOKE = {
    "linkpred": ["linkpred", "--epochs", "3"],
    "generate": ["generate", "--model", "oneshot-vae", "--epochs", "2", "--eval-every",
                 "1"],
    "vector": ["vector", "--epochs", "2", "--nll-samples", "10"],
}


def folder_state(out: Path) -> str:
    """``absent``, ``complete`` (manifest matches every file), or ``broken: why``."""
    from graphvae.run_folder import MANIFEST, file_digest

    if not out.exists():
        return "absent"
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        return f"broken: no readable manifest ({err})"
    listed = manifest.get("files", {})
    present = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {MANIFEST}
    if present != set(listed):
        return f"broken: files {sorted(present ^ set(listed))} differ from the manifest"
    for name, info in listed.items():
        p = out / name
        if p.stat().st_size != info["bytes"] or file_digest(p) != info["sha256"]:
            return f"broken: {name} is not the file the manifest lists"
    return "complete"


def leftovers(out: Path) -> list[str]:
    found = [p.name for p in out.parent.glob(f".{out.name}.*")]
    if out.exists():
        found += [p.name for p in out.rglob("*.tmp")]
    return found


def launch(cmd: list[str], out: Path, seed: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "graphvae", *cmd, "--quiet", "--seed",
                             str(seed), "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_command(name: str, cmd: list[str], kills: int, work: Path, rng: random.Random
                ) -> dict[str, Any]:
    out = work / name
    start = time.perf_counter()
    first = launch(cmd, out, 1000)
    _, err = first.communicate(timeout=900)
    if first.returncode != 0:
        raise SystemExit(f"{name}: the uninterrupted run failed: {err.decode()[-500:]}")
    duration = time.perf_counter() - start
    states: dict[str, int] = {"absent": 0, "complete": 0, "broken": 0}
    broken = []
    killed = 0
    for k in range(kills):
        if k % 2 == 1 and out.exists():  # every other round starts with no folder at all
            shutil.rmtree(out)
        proc = launch(cmd, out, k)
        delay = rng.uniform(0, 1.2 * duration)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate()
        state = folder_state(out)
        states[state.split(":")[0]] += 1
        if state.startswith("broken"):
            broken.append({"kill": k, "delay_s": delay, "state": state})
    final = launch(cmd, out, 2000)
    _, err = final.communicate(timeout=900)
    return {"command": " ".join(cmd), "duration_s": duration, "kills": kills,
            "killed_before_the_end": killed,
            "states": states, "broken": broken, "final_ok": final.returncode == 0,
            "final_state": folder_state(out), "leftovers_after_final": leftovers(out)}


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(description=__doc__.split("\n\n")[0].replace("``", "`"))
    p.add_argument("--kills", type=int, default=20, help="kills per command [20]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="2 kills per command, tiny runs")
    p.add_argument("--out", default=None,
                   help="the report [benchmarks/results/kill_safety.json; "
                        "kill_safety.smoke.json with --smoke]")
    args = p.parse_args(argv)
    from graphvae.io import results_file
    args.out = results_file(args.out, RESULTS / "kill_safety.json", args.smoke)
    if args.kills < 1:
        p.error("--kills must be >= 1")
    commands, kills = (SMOKE, 2) if args.smoke else (COMMANDS, args.kills)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            ThreadPoolExecutor(2 if args.smoke else 1) as pool:
        # each command its own seeded delays; the smoke run's tiny commands, mostly start-up,
        # run two at a time (each process is single-threaded)
        jobs = [pool.submit(run_command, name, cmd, kills, Path(tmp),
                            random.Random(f"{args.seed}-{name}"))
                for name, cmd in commands.items()]
        for job in jobs:
            rows.append(job.result())
            print(json.dumps(rows[-1]), flush=True)
    ok = all(not r["broken"] and r["final_ok"] and r["final_state"] == "complete"
             and not r["leftovers_after_final"] for r in rows)
    from graphvae.io import write_json
    from graphvae.provenance import environment
    write_json({"seed": args.seed, "ok": ok, "results": rows, "environment": environment()},
               args.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run_script(main))
