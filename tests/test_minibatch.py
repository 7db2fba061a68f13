"""Mini-batch link prediction: the unbiased bound, memory linear in the graph, and
data-parallel training under torchrun equal to one process.

Expected values come from the full-graph computation (the dense, exact bound) or from a
one-process run, never from the mini-batch code itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import child_env

from graphvae.adjacency import Adjacency
from graphvae.datasets import make_sbm_graph
from graphvae.models import EdgeObjective, build_model
from graphvae.tasks.features import identity_features
from graphvae.training import PairBatches


@pytest.mark.parametrize("self_loops, decoder", [(True, "inner"), (False, "inner"),
                                                 (True, "cosine-bias"),
                                                 (True, "vmf-bias")])
def test_minibatch_bound_is_unbiased_for_the_full_graph_elbo(self_loops, decoder):
    """Over many batches (fixed posterior noise), the mean of the batch estimates equals
    the exact ELBO over all n² pairs within 4 standard errors."""
    torch.manual_seed(0)
    data = make_sbm_graph(num_nodes=30, num_blocks=2, p_in=0.3, p_out=0.05, seed=1)
    adj = Adjacency(data.edge_index, 30)
    x = identity_features(30)
    model = build_model("vgae", 30, "gcn", (8,), 4, decoder=decoder,
                        objective=EdgeObjective("dense", self_loops=self_loops))
    eps = torch.randn(1, 30, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        exact = float(model.bound(x, adj, eps=eps).value)
        loader = PairBatches(model, x, adj, batch_size=6)
        g = torch.Generator().manual_seed(5)
        draws = torch.tensor([float(model(loader.sample(g), eps=eps).value)
                              for _ in range(3000)], dtype=torch.float64)
    mean, se = float(draws.mean()), float(draws.std() / draws.numel() ** 0.5)
    assert abs(mean - exact) < 4 * se, (mean, exact, se)
    assert se < 0.02 * abs(exact)          # the test can tell a biased estimate apart


def test_world_size_that_does_not_divide_the_batch_is_refused():
    data = make_sbm_graph(num_nodes=30, seed=1)
    model = build_model("vgae", 30)
    with pytest.raises(ValueError, match="world size 4 does not divide the work"):
        PairBatches(model, identity_features(30), Adjacency(data.edge_index, 30), 6,
                    rank=0, world_size=4)


def test_loader_counts_refusals_and_draws_without_replacement():
    """A step's non-edges are round(negatives · b) (0.9 · 3 = 2.7 is 3, not 2), and two
    processes need both counts even (4 positives, 3 non-edges: refused, the non-edges
    named); a bad rank and a complete graph are refused; a batch of 9 of 10 positives
    holds 9 distinct ones (drawn without replacement: with it, some draw repeats)."""
    from graphvae.training.loaders import _positive_draw, divided_step
    assert divided_step(3, 0.9, 1) == 3
    with pytest.raises(ValueError, match="4 positive pairs and 3 non-edges must both be"):
        divided_step(4, 0.75, 2)
    data = make_sbm_graph(num_nodes=30, seed=1)
    model = build_model("vgae", 30)
    with pytest.raises(ValueError, match="bad process rank 2 of world size 2"):
        PairBatches(model, identity_features(30), Adjacency(data.edge_index, 30), 6,
                    rank=2, world_size=2)
    complete = torch.ones(4, 4).nonzero().t()
    with pytest.raises(ValueError, match="every pair is an edge"):
        PairBatches(build_model("vgae", 4), identity_features(4), Adjacency(complete, 4), 4)
    for seed in range(20):
        idx = _positive_draw(10, 9, torch.Generator().manual_seed(seed), torch.device("cpu"))
        assert len(set(idx.tolist())) == idx.numel() == 9


def test_batch_of_more_positives_than_the_graph_has_is_refused():
    """A batch is at most the training graph's N⁺ positive pairs (here the 2·E edges both
    ways and the 30 diagonal pairs): one more is refused by name, before the non-edge
    draw it sets the size of (10¹² pairs used to end as "out of memory")."""
    data = make_sbm_graph(num_nodes=30, seed=1)
    adj = Adjacency(data.edge_index, 30)
    model = build_model("vgae", 30)
    positives = data.edge_index.size(1) + 30
    loader = PairBatches(model, identity_features(30), adj, positives)   # all of them: fine
    assert loader.sample(torch.Generator().manual_seed(0)).pairs.pos.size(1) == positives
    with pytest.raises(ValueError, match=rf"--batch-size {positives + 1} is more than the "
                                         rf"training graph's {positives} positive pairs"):
        PairBatches(model, identity_features(30), adj, positives + 1)
    from conftest import run_cli
    rc, _, err = run_cli(["linkpred", "--quiet", "--epochs", "1", "--batch-size", str(10 ** 12)])
    assert rc == 2 and len(err.strip().splitlines()) == 1, (rc, err)
    assert "--batch-size 1000000000000 is more than" in err, err


def test_auto_minibatch_never_replaces_the_dense_estimator(monkeypatch):
    """Without --batch-size a graph of more than AUTO_FULL_BATCH positive pairs trains in
    mini-batches of sampled non-edges; --estimator dense (every pair) keeps the full batch."""
    from graphvae.tasks import link_prediction as lp
    from graphvae.training import FullBatch
    data = make_sbm_graph(num_nodes=30, seed=1)
    adj = Adjacency(data.edge_index, 30)
    x = identity_features(30)
    monkeypatch.setattr(lp, "AUTO_FULL_BATCH", 10)
    monkeypatch.setattr(lp, "AUTO_BATCH", 8)
    kinds = {}
    for est in ("sampled", "dense"):
        cfg = lp.LinkPredConfig(estimator=est)
        model = build_model("vgae", 30, objective=EdgeObjective(est))
        kinds[est] = lp._loader(model, x, adj, cfg, 0, 1)
    assert isinstance(kinds["sampled"], PairBatches) and kinds["sampled"].batch_size == 8
    assert isinstance(kinds["dense"], FullBatch)


def test_steps_per_epoch():
    """An epoch is ``steps`` fresh draws; ``--steps-per-epoch 0`` is ceil(N⁺ / B) of them."""
    data = make_sbm_graph(num_nodes=30, seed=1)
    adj = Adjacency(data.edge_index, 30)
    model = build_model("vgae", 30)
    loader = PairBatches(model, identity_features(30), adj, 6, steps=3)
    g = torch.Generator().manual_seed(0)
    batches = list(loader.batches(0, g))
    assert len(loader) == len(batches) == 3
    assert not torch.equal(batches[0].pairs.pos, batches[1].pairs.pos)
    with pytest.raises(ValueError, match="steps per epoch must be >= 0"):
        PairBatches(model, identity_features(30), adj, 6, steps=-1)
    from graphvae.tasks.link_prediction import PRESETS, _loader
    positives = adj.positive_pairs(True)[0].size(1)        # edges both ways + diagonal
    assert positives == data.edge_index.size(1) + 30
    cfg = PRESETS["vgae"].replace(batch_size=7, steps_per_epoch=0)
    one_pass = _loader(model, identity_features(30), adj, cfg, 0, 1)
    assert len(one_pass) == -(-positives // 7)
    # a pass decodes every positive pair exactly once, each step's sum scaled by N⁺ / size
    for epoch in (1, 2):
        steps = list(one_pass.batches(epoch, g))
        seen = torch.cat([b.pairs.pos for b in steps], 1)
        assert seen.size(1) == positives
        assert len({tuple(p) for p in seen.t().tolist()}) == positives
        assert [b.pairs.pos_scale for b in steps] == [positives / b.pairs.pos.size(1)
                                                      for b in steps]
        sizes = [b.pairs.pos.size(1) for b in steps]
        assert max(sizes) <= 7 and max(sizes) - min(sizes) <= 1, sizes
    # a path's 8 positives (both ways) in batches of 7: two slices of 4, where the last
    # slice was one pair that its step scaled by 8 (the variance of a one-pair estimate)
    path = Adjacency(torch.tensor([[0, 1, 2, 3, 1, 2, 3, 4], [1, 2, 3, 4, 0, 1, 2, 3]]), 5)
    small = build_model("vgae", 5, objective=EdgeObjective("sampled", self_loops=False))
    assert small.batch(identity_features(5), path).target.positive_pairs(False)[0].size(1) == 8
    halves = PairBatches(small, identity_features(5), path, 7, steps=0)
    assert [(b.pairs.pos.size(1), b.pairs.pos_scale) for b in halves.batches(0, g)] == \
        [(4, 2.0), (4, 2.0)]
    with pytest.raises(ValueError, match="give --batch-size"):
        PRESETS["vgae"].replace(steps_per_epoch=2)
    with pytest.raises(ValueError, match="steps-per-epoch must be at least 0"):
        PRESETS["vgae"].replace(batch_size=7, steps_per_epoch=-1)


def test_identity_features_are_sparse_and_equal_the_identity():
    x = identity_features(5)
    w = torch.randn(5, 3)
    assert x._nnz() == 5 and torch.equal(torch.sparse.mm(x, w), w)


_MEMORY = textwrap.dedent("""
    import resource, sys, torch
    torch.set_num_threads(1)
    from graphvae.datasets.sbm import make_sbm
    from graphvae.tasks.link_prediction import PRESETS, run_link_prediction
    from torch_geometric.data import Data
    n = int(sys.argv[1])
    ei, _ = make_sbm(n, 5 * n, max(2, n // 1000), seed=0)
    data = Data(edge_index=torch.cat([ei, ei.flip(0)], 1), num_nodes=n)
    def status(key):  # kB, from /proc/self/status
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith(key + ":"))
    try:  # reset the high-water mark, so that building the graph's transients do not count
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base = status("VmRSS")
        peak_now = lambda: status("VmHWM")
    except OSError:  # no /proc: the process's peak so far (the graph's build included)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_now = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cfg = PRESETS["vgae"].replace(epochs=2, batch_size=50_000, selection="last")
    run_link_prediction(data, cfg, 0, progress=False)
    print((peak_now() - base) / 1024)
""")


@pytest.mark.slow  # 15 s (a child process); the full suite runs it
def test_featureless_graph_of_1e5_nodes_trains_in_memory_linear_in_its_size():
    """A featureless 10⁵-node graph (5·10⁵ edges) trains (a dense identity alone would
    take 40 GB); doubling n and E at most doubles the memory the run adds, plus slack."""
    mb = {}
    for n in (50_000, 100_000):
        out = subprocess.run([sys.executable, "-c", _MEMORY, str(n)], capture_output=True,
                             text=True, env=child_env(), timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        mb[n] = float(out.stdout.strip().splitlines()[-1])
    assert mb[100_000] < 1500, mb                       # MB; n² floats would be 40,000
    assert mb[100_000] < 2.5 * mb[50_000] + 50, mb      # linear, not quadratic (4×)


def _two_processes(tmp: Path, name: str, text: str, *args: str) -> subprocess.CompletedProcess:
    """Run the script ``text`` (written to ``tmp/name``) in two torchrun processes."""
    (tmp / name).write_text(text)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_port=0", "--rdzv_backend=c10d",
                           "--rdzv_endpoint=localhost:0", str(tmp / name), *args],
                          capture_output=True, text=True, env=child_env(), cwd=tmp, timeout=240)


def _linkpred(args: list[str], nproc: int, tmp: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "graphvae", "linkpred", *args]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--master_port=0", "--rdzv_backend=c10d", "--rdzv_endpoint=localhost:0",
               "-m", "graphvae", "linkpred", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=child_env(), cwd=tmp,
                          timeout=240)


@pytest.mark.slow  # 16 s (two gloo processes); the fast suite keeps the one-line start-up errors
def test_two_process_data_parallel_equals_one_process(tmp_path):
    """``torchrun --nproc_per_node=2`` with a global batch of 64 positive pairs gives, after
    5 steps, the weights of one process with the same batch (to 1e-5)."""
    args = ["--quiet", "--model", "vgae", "--epochs", "5", "--batch-size", "64",
            "--selection", "last", "--json"]
    one = _linkpred([*args, "--out", "one"], 1, tmp_path)
    two = _linkpred([*args, "--out", "two"], 2, tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    a = torch.load(tmp_path / "one" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "two" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), (k, (a[k] - b[k]).abs().max())
    assert len([ln for ln in two.stdout.splitlines() if ln.startswith("{")]) == 1  # rank 0
    # the training curve is the whole graph's bound in both (it was rank 0's shard alone)
    curves = [json.loads((tmp_path / d / "metrics.json").read_text())["runs"][0]
              ["train_bound_history"] for d in ("one", "two")]
    assert len(curves[0]) == len(curves[1]) == 5
    assert curves[1] == pytest.approx(curves[0], rel=1e-5)
    # and so is the bound estimated at the end: one global batch, its two shards summed
    bounds = [json.loads((tmp_path / d / "metrics.json").read_text())["runs"][0]
              ["train_bound_nats"] for d in ("one", "two")]
    assert bounds[1] == pytest.approx(bounds[0], rel=1e-5)
    # training moved the weights (the equality above is not two untouched initialisations):
    # the bound rose by a third in 5 epochs (-8.0e5 to -5.4e5 when this was written)
    assert curves[0][-1] > curves[0][0] + 0.1 * abs(curves[0][0]), curves[0]


@pytest.mark.slow  # 8 s (two processes); the rendezvous test keeps a start-up error fast
def test_data_parallel_needs_a_batch_size_the_world_size_divides(tmp_path):
    out = _linkpred(["--quiet", "--epochs", "1", "--batch-size", "63"], 2, tmp_path)
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("graphvae: error:")]
    assert out.returncode != 0 and errors
    assert all("world size 2 does not divide the work" in ln for ln in errors), out.stderr


@pytest.mark.slow  # 8 s (an interpreter start and torch.distributed's own wait)
def test_missing_rendezvous_is_one_line(tmp_path):
    env = dict(child_env(), WORLD_SIZE="2", RANK="0")
    out = subprocess.run([sys.executable, "-m", "graphvae", "linkpred", "--quiet",
                          "--batch-size", "64"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert "no rendezvous endpoint (MASTER_ADDR and MASTER_PORT unset)" in out.stderr


@pytest.mark.slow  # 3 interpreter starts, one waiting out a 1 s rendezvous
def test_distributed_start_up_errors_are_one_line(tmp_path):
    """A peer whose master never appears (torch's C++ side used to log 40 lines with a
    stack trace first), and a timeout that is not a positive number of seconds (0 became
    300, −5 was used): one line each, exit 2. A batch the world size does not divide is
    refused before the graph is read (once the processes have joined: the two-process
    test below), in one line naming both numbers."""
    port = "29563"
    cases = [({"GRAPHVAE_DIST_TIMEOUT": "1", "RANK": "1"}, ["--batch-size", "64"],
              "could not join the 2 processes at localhost:" + port),
             ({"GRAPHVAE_DIST_TIMEOUT": "0", "RANK": "1"}, ["--batch-size", "64"],
              "GRAPHVAE_DIST_TIMEOUT=0 must be a number of seconds from 1 to 1000000")]
    for extra, args, message in cases:
        env = dict(child_env(), WORLD_SIZE="2", MASTER_ADDR="localhost", MASTER_PORT=port, **extra)
        out = subprocess.run([sys.executable, "-m", "graphvae", "linkpred", "--quiet", *args],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert out.returncode == 2, out.stderr
        assert out.stderr.strip().splitlines() == [out.stderr.strip()], out.stderr
        assert message in out.stderr, out.stderr
    from graphvae.training.loaders import divided_step
    with pytest.raises(ValueError, match="the world size 2 does not divide the work"):
        divided_step(63, 1, 2)


_DIVERGE = textwrap.dedent("""
    import os, sys, time, weakref
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from conftest import ToyBound
    from graphvae.distributed import process_group
    from graphvae.training import fit

    def run(rank):   # in a function, so that the DDP model is gone when the group goes
        # rank 1's second step only
        model = DistributedDataParallel(
            ToyBound(poison=lambda b: rank == 1 and float(b[0]) == 2))
        start = time.perf_counter()
        try:
            fit(model, [torch.full((3,), 1.0), torch.full((3,), 2.0), torch.full((3,), 3.0)],
                torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, progress=False)
            return f"rank {rank} finished"
        except FloatingPointError as err:
            return f"rank {rank} stopped after {time.perf_counter() - start:.1f} s: {err}"

    os.environ["GRAPHVAE_DIST_TIMEOUT"] = sys.argv[1]
    with process_group(torch.device("cpu")) as (rank, _, _):   # the CLI's group and teardown
        msg = run(rank)
        group = weakref.ref(torch.distributed.group.WORLD)
    msg += "; group freed" if group() is None else "; group alive"
    open(f"rank{rank}.txt", "w").write(msg)   # one file each: printed lines can interleave
""")


@pytest.mark.slow  # two gloo processes (about 8 s)
def test_a_loss_that_diverges_in_one_process_stops_every_process(tmp_path):
    """Rank 1's second step has a NaN loss, rank 0's does not: both stop at that step with
    'training diverged' (rank 0 used to go on into the gradient all-reduce, which failed
    with a traceback once rank 1 had gone, or waited out the process group's timeout)."""
    out = _two_processes(tmp_path, "diverge.py", _DIVERGE, "60")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert [ln.split(" stopped")[0] for ln in lines] == ["rank 0", "rank 1"], lines
    assert "training diverged: the loss is not finite in another process at epoch 1" \
        in lines[0], lines
    assert "training diverged: the loss is nan at epoch 1" in lines[1], lines
    for ln in lines:
        assert float(ln.split("after ")[1].split(" s")[0]) < 30, ln
        # freed as the group's context exits, not in interpreter finalisation, where
        # freeing gloo's threads and work aborted a process now and then under load
        assert ln.endswith("; group freed"), ln


_HELD = textwrap.dedent("""
    import os, signal, time
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from conftest import ToyBound
    from graphvae.distributed import process_group
    from graphvae.stopping import Terminated, signals_raise
    from graphvae.training import Callback, fit

    class SignalOnce(Callback):           # rank 1 alone is told to stop, in epoch 2
        def __init__(self, rank):
            self.rank = rank
        def on_step_end(self, state):
            if self.rank == 1 and (state.epoch, state.batch_index) == (2, 0):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)

    def run(rank):
        model = DistributedDataParallel(ToyBound())
        start = time.perf_counter()
        try:
            fit(model, [torch.full((3,), 1.0), torch.full((3,), 2.0)],
                torch.optim.SGD(model.parameters(), lr=0.1), epochs=1000,
                callbacks=[SignalOnce(rank)], checkpoint="state.pt", checkpoint_every=1000,
                progress=False)
            return f"rank {rank} finished"
        except Terminated as err:
            return (f"rank {rank} stopped after {time.perf_counter() - start:.1f} s, "
                    f"signal {err.signum}, saved {err.saved}")

    os.environ["GRAPHVAE_DIST_TIMEOUT"] = "60"
    with signals_raise(), process_group(torch.device("cpu")) as (rank, _, _):
        msg = run(rank)
    open(f"rank{rank}.txt", "w").write(msg)
""")


@pytest.mark.slow  # two gloo processes (about 8 s)
def test_a_signal_to_one_process_stops_every_process_at_the_same_epoch(tmp_path):
    """A SIGTERM is held to the end of its epoch, and the processes decide together: rank 1
    alone is signalled in epoch 2, and both stop at its end, rank 0 writing the state of
    that epoch (rank 0 would otherwise train on into epoch 3 and wait in its all-reduce
    for a process that had gone, until the group's timeout)."""
    out = _two_processes(tmp_path, "held.py", _HELD)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert lines[0].endswith(f"signal {int(signal.SIGTERM)}, saved "
                             f"(PosixPath('state.pt'), 2)"), lines
    assert lines[1].endswith(f"signal {int(signal.SIGTERM)}, saved None"), lines
    for ln in lines:
        assert float(ln.split("after ")[1].split(" s")[0]) < 30, ln
    assert torch.load(tmp_path / "state.pt", weights_only=True)["epoch"] == 2


_SLOW = textwrap.dedent("""
    import os, sys, time
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from conftest import ToyBound
    import graphvae.stopping as stopping
    from graphvae.distributed import process_group
    from graphvae.stopping import Terminated, signals_raise
    from graphvae.training import Callback, fit

    batches, every, pid_at = (int(v) for v in sys.argv[1:4])
    pause, hold = float(sys.argv[4]), sys.argv[5]
    if hold != "-":
        stopping.HOLD_SECONDS = float(hold)

    class Slow(Callback):
        def on_step_start(self, state):
            self.at = (state.epoch, state.batch_index)
            if self.at == (2, pid_at):
                open(f"pid{os.environ['RANK']}", "w").write(str(os.getpid()))
            time.sleep(pause)

    def run(rank):
        slow = Slow()
        model = DistributedDataParallel(ToyBound())
        try:
            fit(model, [torch.ones(3)] * batches, torch.optim.SGD(model.parameters(), lr=0.1),
                epochs=1000, callbacks=[slow], checkpoint="state.pt", checkpoint_every=every,
                progress=False)
            return f"rank {rank} finished"
        except Terminated as err:
            return f"rank {rank} signal {err.signum} at {slow.at}, saved {err.saved}"

    os.environ["GRAPHVAE_DIST_TIMEOUT"] = "60"
    with signals_raise(), process_group(torch.device("cpu")) as (rank, _, _):
        msg = run(rank)
    open(f"rank{rank}.txt", "w").write(msg)
""")


def _stopped_slow_run(tmp: Path, args: list[str], signalled: str) -> tuple[list[str], str]:
    """Run :data:`_SLOW` (``args``: batches an epoch, checkpoint every, the step of epoch 2
    where each rank writes its pid, seconds a step, hold seconds or -) in two torchrun
    processes; SIGTERM ``signalled`` ("all": torchrun and both ranks, as Slurm does;
    "rank0": rank 0 alone) once the pids are written; return the ranks' lines and the
    output."""
    import os
    import time
    (tmp / "slow.py").write_text(_SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run",
                             "--nproc_per_node=2", "--master_port=0", "--rdzv_backend=c10d",
                             "--rdzv_endpoint=localhost:0", str(tmp / "slow.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=child_env(), cwd=tmp)
    deadline = time.time() + 120
    pids = [tmp / f"pid{r}" for r in ((0, 1) if signalled == "all" else (0,))]
    while not all(p.is_file() and p.read_text() for p in pids):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    for pid in [proc.pid] * (signalled == "all") + [int(p.read_text()) for p in pids]:
        os.kill(pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    files = [tmp / f"rank{r}.txt" for r in (0, 1)]
    assert all(f.is_file() for f in files), out[-3000:]
    return [f.read_text() for f in files], out[-3000:]


@pytest.mark.slow  # two gloo processes (about 10 s)
def test_a_stop_sent_to_torchrun_and_to_its_workers_is_held_once(tmp_path):
    """Slurm signals every process of the step, torchrun included, which passes SIGTERM on
    to its workers: each worker got the stop twice and took the second copy for "stop at
    once", so no state was written and the ranks failed apart. Both now stop at the same
    epoch's end (its last step, 2), and rank 0 writes its state."""
    lines, out = _stopped_slow_run(tmp_path, ["3", "1000", "0", "0.2", "-"], "all")
    epoch = torch.load(tmp_path / "state.pt", weights_only=True)["epoch"]
    assert lines == [f"rank 0 signal {int(signal.SIGTERM)} at ({epoch}, 2), saved "
                     f"(PosixPath('state.pt'), {epoch})",
                     f"rank 1 signal {int(signal.SIGTERM)} at ({epoch}, 2), saved None"], out
    assert epoch >= 2


@pytest.mark.slow  # two gloo processes (about 10 s)
def test_a_stop_past_the_hold_stops_every_process_at_the_same_step(tmp_path):
    """An epoch that outlasts the hold stops at a step, not at its end: each process
    checked its own clock after its step, so the signalled one stopped alone and the
    other failed in the next gradient all-reduce ("another process of the run stopped").
    They now decide together in each step's check, and stop at the same step, mid-epoch,
    the other one with the signalled one's signal; rank 0 names the state it last wrote."""
    lines, out = _stopped_slow_run(tmp_path, ["40", "1", "1", "0.1", "0.5"], "rank0")
    at = lines[0].split(" at ")[1].split(", saved")[0]
    epoch, step = (int(v) for v in at.strip("()").split(","))
    assert epoch == 2 and 1 <= step < 39, (lines, out)                # mid-epoch
    assert lines == [f"rank 0 signal {int(signal.SIGTERM)} at {at}, saved "
                     f"(PosixPath('state.pt'), 1)",
                     f"rank 1 signal {int(signal.SIGTERM)} at {at}, saved None"], out


_SHARES = textwrap.dedent("""
    import json
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from conftest import ToyBound
    from graphvae.bounds.elbo import BoundEstimate
    from graphvae.distributed import process_group
    from graphvae.training import fit

    class Shard(ToyBound):      # the loop's convention: a share of the bound, a whole loss
        def forward(self, batch, generator=None):
            v = (self.w * batch).sum().reshape(1)
            return BoundEstimate(v, -2 * v.sum(), v, torch.zeros(1))

    def run(rank):   # in a function, so that the DDP model is gone when the group goes
        model = DistributedDataParallel(Shard())
        halves = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, -1.0, 4.0])]
        res = fit(model, [halves[rank]], torch.optim.SGD(model.parameters(), lr=0.1),
                  epochs=3, progress=False)
        return [[r["train_bound"], r["loss"]] for r in res.history]

    with process_group(torch.device("cpu")) as (rank, _, _):
        rows = run(rank)
    open(f"rank{rank}.json", "w").write(json.dumps(rows))
""")


@pytest.mark.slow  # two gloo processes (about 8 s)
def test_data_parallel_history_sums_the_bound_and_averages_the_loss(tmp_path):
    """Each process holds half of a batch: its bound is its share and its loss is at the
    whole batch's scale. The history equals one process's on the whole batch (the loss
    was the sum of the two processes', twice the whole batch's)."""
    from conftest import ToyBound

    from graphvae.training import fit
    model = ToyBound()
    whole = torch.tensor([1.5, 1.0, 7.0])
    res = fit(model, [whole], torch.optim.SGD(model.parameters(), lr=0.1), epochs=3,
              progress=False)
    expected = [[r["train_bound"], r["loss"]] for r in res.history]
    # by hand: w = 1, then w += 0.1 * whole each step; bound w·whole, loss its negative
    w, hand = torch.ones(3, dtype=torch.float64), []
    for _ in range(3):
        b = float(w @ whole.double())
        hand.append([b, -b])
        w += 0.1 * whole.double()
    flat = [v for row in hand for v in row]
    assert [v for row in expected for v in row] == pytest.approx(flat, rel=1e-6)
    out = _two_processes(tmp_path, "shares.py", _SHARES)
    assert out.returncode == 0, out.stderr[-3000:]
    for rank in (0, 1):
        rows = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert [v for row in rows for v in row] == pytest.approx(flat, rel=1e-6), rows


_RESUME = textwrap.dedent("""
    import sys
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from conftest import ToyBound
    from graphvae.distributed import process_group
    from graphvae.training import fit

    def run(rank):   # in a function, so that the DDP model is gone when the group goes
        model = DistributedDataParallel(ToyBound())
        state = sys.argv[1] if rank == 0 else sys.argv[2]    # rank 1 sees no saved state
        try:
            fit(model, [torch.ones(3)], torch.optim.SGD(model.parameters(), lr=0.1), epochs=4,
                checkpoint=state, resume=True, progress=False)
            return f"rank {rank} finished"
        except ValueError as err:
            return f"rank {rank}: {err}"

    with process_group(torch.device("cpu")) as (rank, _, _):
        msg = run(rank)
    open(f"rank{rank}.txt", "w").write(msg)
""")


@pytest.mark.slow  # two gloo processes (about 8 s)
def test_data_parallel_resume_refuses_processes_that_see_different_states(tmp_path):
    """Only rank 0 writes the training state; a process that cannot see it would start
    afresh beside a resumed rank 0. Both processes refuse, naming the epochs."""
    from conftest import ToyBound

    from graphvae.training import fit
    saved = tmp_path / "state.pt"
    model = ToyBound()
    fit(model, [torch.ones(3)], torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
        checkpoint=saved, progress=False)              # two of four epochs done
    script = tmp_path / "resume.py"
    script.write_text(_RESUME)
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          "--master_port=0", "--rdzv_backend=c10d",
                          "--rdzv_endpoint=localhost:0", str(script), str(saved),
                          str(tmp_path / "elsewhere.pt")],
                         capture_output=True, text=True, env=child_env(), cwd=tmp_path, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert lines == [f"rank {r}: --resume: the processes found different training states "
                     f"(epochs 0 to 2 done); every process must see the same --out (a shared "
                     f"file system)" for r in (0, 1)], lines


def _free_port() -> str:
    import socket
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return str(s.getsockname()[1])


@pytest.mark.slow  # two processes joining a group (about 6 s)
def test_resume_where_only_some_processes_see_the_state_refuses_in_every_process(tmp_path):
    """Two processes in different folders (two machines without a shared --out): only one
    finds `.r.state/`. The other refused alone before joining, and the first waited out the
    group's timeout, then blamed the rendezvous. Now both join and refuse together, in one
    line each; and where neither has a state, both say so."""
    (tmp_path / "a" / ".r.state").mkdir(parents=True)
    (tmp_path / "a" / ".r.state" / "seed0.pt").write_bytes(b"held")
    (tmp_path / "b").mkdir()
    for folders, message in [(("a", "b"), "some of the 2 processes found no training state"),
                             (("b", "b"), "no training state of an interrupted run at .r.state "
                                          "(in any of the 2 processes)")]:
        port = _free_port()
        procs = [subprocess.Popen(
            [sys.executable, "-m", "graphvae", "linkpred", "--quiet", "--epochs", "2",
             "--batch-size", "64", "--out", "r", "--resume"],
            env=dict(child_env(), WORLD_SIZE="2", RANK=str(rank), MASTER_ADDR="localhost",
                     MASTER_PORT=port, GRAPHVAE_DIST_TIMEOUT="60"),
            cwd=tmp_path / folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for rank, folder in enumerate(folders)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 2, err
            assert err.strip().splitlines() == [err.strip()] and message in err, err


def _ranks(tmp: Path, per_rank: list[list[str]], timeout: int = 100
           ) -> list[tuple[int, str, float]]:
    """``graphvae linkpred`` in two processes started by hand (as on two machines), each
    with its own arguments: ``(exit status, stderr, seconds)`` of each."""
    import time
    port = _free_port()
    start = time.perf_counter()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "graphvae", "linkpred", "--quiet", "--epochs", "2",
         "--batch-size", "64", *args],
        env=dict(child_env(), WORLD_SIZE="2", RANK=str(rank), MASTER_ADDR="localhost",
                 MASTER_PORT=port, GRAPHVAE_DIST_TIMEOUT=str(timeout)),
        cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank, args in enumerate(per_rank)]
    out = []
    for p in procs:
        _, err = p.communicate(timeout=2 * timeout)
        out.append((p.returncode, err.strip(), time.perf_counter() - start))
    return out


def _edge_file(path: Path, drop: int | None = None) -> None:
    """300 random edges on 60 nodes (seeded); ``drop``: leave that edge out."""
    import random
    r, edges = random.Random(0), set()
    while len(edges) < 300:
        i, j = sorted((r.randrange(60), r.randrange(60)))
        if i != j:
            edges.add((i, j))
    rows = [f"{i},{j}\n" for k, (i, j) in enumerate(sorted(edges)) if k != drop]
    path.write_text("source,target\n" + "".join(rows))


@pytest.mark.slow  # five runs of two processes (about 30 s)
def test_processes_with_different_settings_or_data_refuse_together(tmp_path):
    """Two processes given different --lr and --seed, or different copies of the edge list,
    trained without a word (one model on two graphs; with different seeds one process
    trained on the other's test edges), and different --epochs aborted in gloo. Every
    process now refuses in one line naming what differs. A process whose file is missing
    stopped alone while the other waited out the group's timeout (100 s here): both now
    stop at once, a missing --config file and a flag refused in one process only
    (checked before joining until stop 48) included."""
    _edge_file(tmp_path / "g.csv")
    _edge_file(tmp_path / "g2.csv", drop=7)
    same = "start every process with the same arguments and the same files"
    other = ("another process of the run refused its flags or could not read its inputs; "
             "its own output names the cause (this is process 0 of 2)")
    for per_rank, expected in [
            ([["--edges", "g.csv", "--lr", "0.01"], ["--edges", "g.csv", "--lr", "0.02",
                                                     "--seed", "1"]],
             [f"the 2 processes were started with different --lr, --seed; {same}"] * 2),
            ([["--edges", "g.csv"], ["--edges", "g2.csv"]],
             ["the 2 processes were started with different graphs (--dataset, --edges, "
              f"--features or --num-nodes, or the files they name); {same}"] * 2),
            ([["--edges", "g.csv"], ["--edges", "absent.csv"]],
             [other, "absent.csv: no such file"]),
            ([["--edges", "g.csv"], ["--edges", "g.csv", "--config", "absent.json"]],
             [other, "cannot read config: "]),
            ([["--edges", "g.csv"], ["--edges", "g.csv", "--top-k", "0"]],
             [other, "--top-k must be at least 1"]),
            ([["--edges", "absent.csv", "--batch-size", "63"]] * 2,   # before any file
             ["the world size 2 does not divide the work"] * 2)]:
        results = _ranks(tmp_path, per_rank)
        for (rc, err, seconds), message in zip(results, expected):
            assert rc == 2, err
            assert err.splitlines() == [err] and message in err, err
            assert seconds < 60, (seconds, err)         # not the group's 100 s timeout
    # the same arguments (bar --json, which only prints) still train
    results = _ranks(tmp_path, [["--edges", "g.csv", "--json"], ["--edges", "g.csv"]])
    assert [rc for rc, _, _ in results] == [0, 0], results


def test_data_parallel_settings_are_named_by_their_flags(tmp_path):
    """The settings the processes compare name their flags; the planted model is compared
    by its file's SHA-256 (the bytes, not the path); and a data-parallel run without
    --batch-size is refused from its flags alone, before any graph is read."""
    import argparse
    import hashlib
    from types import SimpleNamespace

    from graphvae.cli.linkpred import _checked_config, _setting_name, _settings
    from graphvae.tasks.link_prediction import PRESETS
    assert [_setting_name(k) for k in ("config.features", "config.lr", "top_k", "planted")] \
        == ["--feature-mode", "--lr", "--top-k", "--planted files"]
    planted = tmp_path / "g.planted.npz"
    planted.write_bytes(b"planted bytes")
    data = SimpleNamespace(num_nodes=2, edge_index=torch.tensor([[0, 1], [1, 0]]), x=None)
    args = argparse.Namespace(seed=0, seeds=1, top_k=100, resume=False, planted=planted)
    got = _settings(args, PRESETS["vgae"], data)
    assert got["planted"] == hashlib.sha256(b"planted bytes").hexdigest()
    assert _settings(argparse.Namespace(**{**vars(args), "planted": None}),
                     PRESETS["vgae"], data)["planted"] is None
    args = argparse.Namespace(model="vgae", config=None)       # (vgae: no batch size)
    with pytest.raises(ValueError, match="^data-parallel training needs --batch-size"):
        _checked_config(args, 2)
    assert _checked_config(args, 1).batch_size is None


_PEER = textwrap.dedent("""
    import torch
    import torch.distributed as dist
    from graphvae.distributed import process_group

    msg = "rank 1 left"
    try:
        with process_group(torch.device("cpu")) as (rank, _, _):
            if rank == 0:                       # rank 1 leaves without joining the reduce
                dist.all_reduce(torch.ones(1))
                msg = "rank 0 finished"
    except ValueError as err:
        msg = f"rank 0: {err}"
    open("rank0.txt" if msg.startswith("rank 0") else "rank1.txt", "w").write(msg)
""")


@pytest.mark.slow  # two gloo processes (about 5 s)
def test_a_process_left_alone_by_its_peer_says_so_in_one_line(tmp_path):
    """Rank 0 waits in an all-reduce that rank 1 never joins: gloo's 'Connection closed by
    peer' was an internal error (exit 3, 'GLHF!'); it is now a one-line ValueError naming
    the cause."""
    out = _two_processes(tmp_path, "peer.py", _PEER)
    assert out.returncode == 0, out.stderr[-3000:]
    text = (tmp_path / "rank0.txt").read_text()
    assert text.startswith("rank 0: torch.distributed: another process of the run stopped or "
                           "lost its connection (Connection closed by peer"), text
    assert "pair.cc" not in text and (tmp_path / "rank1.txt").read_text() == "rank 1 left"


def test_a_state_of_another_process_count_names_the_torchrun_setting():
    """A state written by 2 processes, resumed by 1: the refusal said 'world_size: 1 here,
    2 in the state'; it names torchrun's setting now, and other settings keep their flags."""
    from graphvae.tasks.link_prediction import PRESETS, _as_given
    from graphvae.training.state import _settings_diff
    spell = _as_given(PRESETS["vgae"])
    assert _settings_diff({"world_size": 2, "lr": 0.01}, {"world_size": 1, "lr": 0.02},
                          spell) == (
        "1 process (torchrun's --nnodes × --nproc_per_node) here, 2 processes (torchrun's "
        "--nnodes × --nproc_per_node) in the state; --lr 0.02 here, --lr 0.01 in the state")


def test_torchruns_variables_are_read_as_documented(monkeypatch):
    """``world_from_env`` without processes: an empty WORLD_SIZE, or 1, is one process
    whatever else is set; 0, a rank outside 0..world − 1 and a missing port are named;
    LOCAL_RANK is the local rank (not RANK). Only a lost connection is a peer's failure;
    the settings' digest ignores key order and uses 63 bits."""
    from graphvae.distributed import _code, _peer_failure, world_from_env
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RANK", "5")
    for world in ("", "1"):
        monkeypatch.setenv("WORLD_SIZE", world)
        assert world_from_env() == (0, 0, 1)
    monkeypatch.setenv("WORLD_SIZE", "0")
    with pytest.raises(ValueError, match="WORLD_SIZE=0 must be at least 1"):
        world_from_env()
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("2", "-1"):
        monkeypatch.setenv("RANK", rank)
        with pytest.raises(ValueError, match=f"RANK='{rank}' is not a process number in 0..1"):
            world_from_env()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    with pytest.raises(ValueError, match=r"no rendezvous endpoint \(MASTER_PORT unset\)"):
        world_from_env()
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert world_from_env() == (1, 0, 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert world_from_env() == (1, 3, 2)
    assert _peer_failure(RuntimeError("Connection reset by peer"))
    assert _peer_failure(RuntimeError("NCCL error: remote process error: ncclRemoteError"))
    assert _code({"a": 1, "b": [2, 3]}) == _code({"b": [2, 3], "a": 1})
    codes = [_code(i) for i in range(20)]
    assert len(set(codes)) == 20 and max(codes) >= 2 ** 62 and max(codes) < 2 ** 63


_API = textwrap.dedent("""
    import json
    import torch
    from graphvae.datasets import make_sbm_graph
    from graphvae.distributed import process_group
    from graphvae.tasks.link_prediction import PRESETS, run_link_prediction

    cfg = PRESETS["vgae"].replace(epochs=1, batch_size=32, hidden=(8,), latent=4)
    with process_group(torch.device("cpu")) as (rank, _, _):
        res = run_link_prediction(make_sbm_graph(num_nodes=60, seed=1), cfg, 0,
                                  progress=False, checkpoint=f"model{rank}.pt")
    open(f"rank{rank}.json", "w").write(json.dumps(res.metrics["batch"]))
""")


@pytest.mark.slow  # two gloo processes (about 8 s)
def test_the_api_under_two_processes_saves_once_and_records_them(tmp_path):
    """run_link_prediction under torch.distributed, each process given a checkpoint path:
    process 0 alone writes one (the others' would race it for one path), and every
    process's metrics record the 2 processes of the batch."""
    out = _two_processes(tmp_path, "api.py", _API)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "model0.pt").is_file() and not (tmp_path / "model1.pt").exists()
    for rank in (0, 1):
        batch = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert (batch["positives"], batch["processes"]) == (32, 2), batch
