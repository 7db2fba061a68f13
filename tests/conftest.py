"""Tiny named graphs shared by the tests (undirected, both directions stored)."""

import contextlib
import faulthandler
import io
import os
import signal

import pytest
import torch

from graphvae.graph import to_simple_undirected

# Processes the tests start (benchmark smoke runs, CLI runs) inherit one OpenMP thread as
# well: the vector smoke run takes 17 s alone on two threads, and timed out at 300 s beside
# another job.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

#: Seconds a test may run before its process ends, printing every thread's traceback
#: (``GRAPHVAE_TEST_TIME_LIMIT`` overrides it). A test whose defence against a crafted
#: file is broken can hang for hours inside one C call (hashing a tuple that holds the
#: level below twice, 40 levels deep), where no signal handler runs; faulthandler's
#: watchdog thread needs no interpreter lock, so the hang ends as a failure naming the test
#: (pytest-xdist: "worker crashed while running ...") instead of at CI's time limit. The
#: longest test takes about a minute on 2 cores.
TEST_TIME_LIMIT = float(os.environ.get("GRAPHVAE_TEST_TIME_LIMIT") or 600)
_STDERR: list[int] = []


def pytest_configure(config):
    """Keep a descriptor of the real stderr for the watchdog's traceback: output capture is
    off while plugins configure (a descriptor 2 taken during a test is capture's file)."""
    _STDERR.append(os.dup(2))


@pytest.fixture(autouse=True)
def _time_limit():
    faulthandler.dump_traceback_later(TEST_TIME_LIMIT, exit=True, file=_STDERR[0])
    yield
    faulthandler.cancel_dump_traceback_later()


def child_env() -> dict[str, str]:
    """The environment of a child process the tests start: one thread, the checkout and
    tests/ on PYTHONPATH (the torchrun scripts import ToyBound), and no torch.distributed
    variables of the test's own launch."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([root, os.path.join(root, "tests")]))
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


class ToyBound(torch.nn.Module):
    """The smallest model of the training loop's protocol: bound ``w · batch`` (``w`` of
    ``width`` ones), loss its negative. ``poison(batch)`` true makes that step's bound NaN.
    The torchrun scripts of test_minibatch import it too (tests/ on their PYTHONPATH)."""

    def __init__(self, width=3, poison=None):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(width))
        self.poison = poison

    def forward(self, batch, generator=None):
        from graphvae.bounds.elbo import BoundEstimate
        v = (self.w * batch).sum().reshape(1)
        if self.poison is not None and self.poison(batch):
            v = v * float("nan")
        return BoundEstimate(v, -v.sum(), v, torch.zeros(1))


def undirected(pairs, n):
    return to_simple_undirected(torch.tensor(pairs, dtype=torch.long).t(), n)


class TrainingStarted(BaseException):
    """Raised where a command would start training (the ``training_stopped`` fixture): every
    check and read before it has passed."""


@pytest.fixture
def training_stopped(monkeypatch):
    """Every task's training loop replaced by :class:`TrainingStarted`, so a command line
    costs its checks, notes and data reading only."""
    import graphvae.tasks.generation as generation
    import graphvae.tasks.link_prediction as link_prediction
    import graphvae.vector.linear as linear
    import graphvae.vector.train as vector_train

    def stop(*args, **kwargs):
        raise TrainingStarted

    for module in (generation, link_prediction, linear, vector_train):
        monkeypatch.setattr(module, "fit", stop)
    return TrainingStarted


@pytest.fixture
def triangle():
    return undirected([(0, 1), (1, 2), (0, 2)], 3)


@pytest.fixture
def path3():
    return undirected([(0, 1), (1, 2)], 3)


@pytest.fixture
def star5():
    """Centre 0 joined to leaves 1..4."""
    return undirected([(0, 1), (0, 2), (0, 3), (0, 4)], 5)


def random_graph(n, p, seed):
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < p, diagonal=1)
    return to_simple_undirected(upper.nonzero().t(), n)


@contextlib.contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@pytest.fixture
def float64():
    """Run the test with float64 as torch's default dtype."""
    with default_dtype(torch.float64):
        yield


@pytest.fixture(autouse=True)
def terminal_signals():
    """Every test starts with Ctrl-C and SIGHUP as a terminal's foreground job has them:
    under nohup SIGHUP starts ignored, and a background job of a non-interactive shell
    (`make test &`) ignores SIGINT. The package rightly leaves an ignored signal ignored,
    so the stopping tests, and the child processes that inherit the disposition, saw no
    signal there and failed."""
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    for sig, handler in old.items():
        signal.signal(sig, signal.SIG_DFL if handler is None else handler)


@pytest.fixture(autouse=True)
def one_thread():
    """Every test runs torch on one intra-op thread: tiny tensors gain nothing from more, two
    OpenMP threads on a shared 2-core machine spin and slow small jobs by 10-60x, and one
    thread makes CPU results bitwise reproducible (parallel reductions are not)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def run_cli(argv):
    """``graphvae.cli.main(argv)`` in-process: ``(exit status, stdout, stderr)``; argparse's
    own exits (unknown choices) are caught too."""
    from graphvae.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()
