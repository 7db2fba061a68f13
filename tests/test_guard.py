"""Stopping and losing the reader: SIGTERM / SIGHUP end a command with one line after its
cleanup, and a reader that goes away (``| head -1``) no longer ends a finished run as an
error before its ``--out`` is written (``graphvae.cli.guard``)."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import child_env

from graphvae.cli.guard import Forgiving, Terminated, forgiving_streams, signals_raise


class _Gone(io.StringIO):
    """A stream whose reader left after ``keep`` writes (``code``: the errno then)."""

    def __init__(self, keep: int, code: int):
        super().__init__()
        self.keep, self.code = keep, code

    def write(self, text: str) -> int:
        if self.keep == 0:
            raise OSError(self.code, os.strerror(self.code))
        self.keep -= 1
        return super().write(text)


@pytest.mark.parametrize("code", [errno.EPIPE, errno.EIO])
def test_a_stream_whose_reader_left_drops_what_follows(code):
    raw = _Gone(1, code)
    stream = Forgiving(raw)
    assert stream.write("kept\n") == 5
    assert stream.write("lost\n") == 5 and stream.gone       # no exception
    stream.write("also lost\n")
    stream.flush()
    assert raw.getvalue() == "kept\n"


def test_a_closed_stream_writes_nowhere():
    """Started with stdout or stderr closed (``>&-``, ``2>&-``), Python's stream is None,
    which print() skips but a progress bar and a direct write do not: wrapped, its write
    failed ("internal error"), and left None, tqdm's did. It writes to /dev/null now."""
    old = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = None  # type: ignore[assignment]
    try:
        with forgiving_streams():
            assert sys.stdout.write("nowhere") == 7 and sys.stderr.write("x") == 1
            print("\udce9 ± Ω", file=sys.stderr)     # a non-UTF-8 file name's surrogate
            assert sys.stdout.name == os.devnull
        assert sys.stdout is None and sys.stderr is None
    finally:
        sys.stdout, sys.stderr = old


def test_a_gone_stream_is_not_tried_again_and_its_descriptor_writes_nowhere():
    """Once its reader is gone, the stream is never written or flushed again (each try
    raised anew), and its file descriptor is /dev/null's, so that the interpreter's own
    last flush of the real stream finds no closed pipe."""
    class Counted(_Gone):
        calls = 0

        def write(self, text: str) -> int:
            Counted.calls += 1
            return super().write(text)
    stream = Forgiving(Counted(0, errno.EPIPE))
    for _ in range(3):
        stream.write("x")
    assert Counted.calls == 1 and stream.gone
    read, write = os.pipe()
    raw = os.fdopen(write, "w")
    os.close(read)                                        # the reader leaves
    try:
        piped = Forgiving(raw)
        piped.write("line\n")
        piped.flush()
        assert piped.gone
        null = os.stat(os.devnull)
        now = os.fstat(raw.fileno())
        assert (now.st_rdev, now.st_ino) == (null.st_rdev, null.st_ino)
    finally:
        raw.close()


def test_the_streams_come_back_when_the_block_fails():
    old = sys.stdout, sys.stderr
    with pytest.raises(RuntimeError), forgiving_streams():
        assert isinstance(sys.stdout, Forgiving)
        raise RuntimeError
    assert (sys.stdout, sys.stderr) == old


def test_other_write_errors_still_raise():
    """... naming the stream: `make-graph ... > /dev/full` wrote its files, then ended with
    "error: OSError: [Errno 28] No space left on device", as if they had failed."""
    from graphvae.errors import WriteError
    stream = Forgiving(_Gone(0, errno.ENOSPC), "standard output")
    with pytest.raises(WriteError, match="^cannot write standard output: No space left"):
        stream.write("x")
    assert not stream.gone


def test_sigterm_sighup_and_ctrl_c_raise_terminated_inside_the_block_only():
    old = signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a command
    try:
        before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM,
                                                   signal.SIGHUP)}
        for sig, word in ((signal.SIGTERM, "terminated"), (signal.SIGHUP, "hung up"),
                          (signal.SIGINT, "interrupted")):
            with pytest.raises(Terminated) as exc, signals_raise():
                os.kill(os.getpid(), sig)
                time.sleep(1)                          # the handler runs between bytecodes
            assert exc.value.signum == sig and exc.value.word == word
        assert {s: signal.getsignal(s) for s in before} == before
        with pytest.raises(KeyboardInterrupt):         # outside the block: Python's own
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    finally:
        signal.signal(signal.SIGINT, old)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT])
def test_an_ignored_sighup_or_sigint_stays_ignored(sig):
    """Under nohup SIGHUP is ignored, and a run must outlive its terminal; a background job
    of a non-interactive shell (``cmd &``) ignores SIGINT: the block leaves an ignored
    signal alone (the signal inside it does nothing)."""
    old = signal.signal(sig, signal.SIG_IGN)
    try:
        with signals_raise():
            assert signal.getsignal(sig) is signal.SIG_IGN
            os.kill(os.getpid(), sig)
            time.sleep(0.5)
        assert signal.getsignal(sig) is signal.SIG_IGN
    finally:
        signal.signal(sig, old)


def _default_sigint() -> None:            # the child starts with Python's own Ctrl-C
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow  # two runs of linkpred in child processes (about 25 s each)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_ends_a_run_in_one_line_and_keeps_the_old_out(tmp_path, sig):
    """``timeout`` / Slurm / ``docker stop`` send SIGTERM: the run ended silently (status
    -15) and left its staging folder beside --out. It now finishes its epoch, writes its
    training state, says so in one line, exits 143, removes the staging folder and leaves
    the old --out as it was. Ctrl-C ended at once and lost the epochs since the last
    state (up to 24 for linkpred); it is held alike, says so on stderr and exits 130."""
    from graphvae.stopping import held_line
    cmd = [sys.executable, "-m", "graphvae", "linkpred", "--quiet", "--out", "o"]
    first = subprocess.run([*cmd, "--epochs", "1"], cwd=tmp_path, env=child_env(),
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    manifest = (tmp_path / "o" / "manifest.json").read_bytes()
    proc = subprocess.Popen([*cmd, "--epochs", "1000000"], cwd=tmp_path, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.time() + 120
    state = tmp_path / ".o.state" / "seed0.pt"
    # training has begun once its first state is written (25 epochs in): the staging folder
    # alone came before it, and a signal there, on a loaded machine, ended the run before
    # its first epoch, rightly, with no state to name
    while not state.is_file():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    if sig == signal.SIGINT:                             # a person is told to wait
        held = held_line()
        assert err.startswith(held), err
        err = err[len(held):]
    # the epoch in progress finished and its training state was written: the line names it
    word = "terminated" if sig == signal.SIGTERM else "interrupted"
    assert err.startswith(f"graphvae: {word}; the training state of epoch ") \
        and err.count("\n") == 1, err
    epoch = int(err.split("of epoch ")[1].split(" ")[0].replace(",", ""))
    assert err.strip().endswith(f"is in {state.relative_to(tmp_path)} "
                                f"(rerun with --resume to continue)"), err
    assert torch.load(state, weights_only=True)["epoch"] == epoch >= 25
    assert (tmp_path / "o" / "manifest.json").read_bytes() == manifest
    left = sorted(p.name for p in tmp_path.iterdir())
    assert "o" in left and not [n for n in left if n.startswith((".o.tmp-", ".o.old-"))], left


@pytest.mark.slow  # one linkpred run in a child process (about 10 s)
def test_a_run_whose_reader_left_still_writes_its_out(tmp_path):
    """``graphvae linkpred --seeds 2 ... | head -1``: the second seed's line met a closed
    pipe, and the finished run ended as "error: BrokenPipeError" without its --out."""
    proc = subprocess.Popen([sys.executable, "-m", "graphvae", "linkpred", "--quiet",
                             "--seeds", "2", "--epochs", "2", "--out", "h"], cwd=tmp_path,
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()                                   # the reader is gone at once
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert json.loads((tmp_path / "h" / "metrics.json").read_text())["seeds"] == [0, 1]
    for out, closing in (("c", ">&-"), ("d", "2>&-")):   # stdout, or stderr with its bars
        closed = subprocess.run(["bash", "-c", f"'{sys.executable}' -m graphvae linkpred "
                                 f"--epochs 1 --out {out} {closing}"], cwd=tmp_path,
                                env=child_env(), capture_output=True, text=True, timeout=300)
        assert closed.returncode == 0, (closing, closed.stdout, closed.stderr)
        assert (tmp_path / out / "metrics.json").is_file()


def test_a_stop_while_linkpred_reports_is_one_line(tmp_path, monkeypatch, capsys):
    """linkpred's report (its summary, --json) ran outside the command's handlers: a
    SIGTERM there escaped main() as a traceback with exit status 1."""
    import graphvae.cli.linkpred as linkpred
    from graphvae.cli import main

    def report(summary, as_json):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)

    monkeypatch.setattr(linkpred, "report", report)
    with pytest.raises(SystemExit) as exc:
        main(["linkpred", "--quiet", "--epochs", "2"])
    assert exc.value.code == 143
    assert capsys.readouterr().err == "graphvae: terminated\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


_RESTORE = """
import os, signal
from graphvae import stopping
real = signal.signal

def spy(sig, handler):
    old = real(sig, handler)
    if sig == signal.SIGTERM and handler is signal.SIG_DFL:   # the first handler given back
        os.kill(os.getpid(), signal.SIGHUP)                    # a hang-up lands now
    return old

with stopping.signals_raise():
    signal.signal = spy
print("not reached: the pending SIGHUP ends the process under its default")
"""


def test_a_signal_while_the_handlers_are_given_back_meets_the_restored_one():
    """A SIGHUP between giving back SIGTERM's handler and SIGHUP's raised Terminated out of
    signals_raise (a traceback after main() had returned) and left SIGHUP's handler ours.
    Blocked meanwhile, it now meets the handler given back: here the default, which ends
    the process by SIGHUP."""
    res = subprocess.run([sys.executable, "-c", _RESTORE], capture_output=True, text=True,
                         env=child_env(), timeout=60)
    assert res.returncode == -signal.SIGHUP and res.stderr == "", res


def test_a_stop_held_by_an_outer_block_is_capped_inside_an_inner_one(monkeypatch):
    import graphvae.stopping as stopping
    monkeypatch.setattr(stopping, "HOLD_SECONDS", 0.0)
    with pytest.raises(Terminated), signals_raise(), stopping.held() as outer:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert outer.signum == signal.SIGTERM                # noted, not raised
        with stopping.held():
            stopping.stop_if_overdue()                       # the outer stop is overdue
        pytest.fail("not capped")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_standard_output_is_named(tmp_path):
    """make-graph's summary to a full stdout ended as "error: OSError: [Errno 28] No space
    left on device" after its files were written; the line now names standard output."""
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "graphvae", "make-graph", "--nodes",
                              "10", "--edges", "5", "--out", "g.csv"], cwd=tmp_path,
                             env=child_env(), stdout=full, stderr=subprocess.PIPE, text=True,
                             timeout=120)
    assert (res.returncode, res.stderr) == (2, "graphvae: error: cannot write standard "
                                               "output: No space left on device\n")
    assert (tmp_path / "g.csv").is_file() and (tmp_path / "g.planted.npz").is_file()


def test_ctrl_c_under_debug_is_pythons_keyboard_interrupt(monkeypatch):
    """With --debug a Ctrl-C ended with "graphvae.stopping.Terminated: 2" and exit status
    1; it is Python's KeyboardInterrupt again (the process ends by SIGINT, which shells
    and make read as an interrupt), with the traceback --debug asks for."""
    import graphvae.cli.linkpred as linkpred
    from graphvae.cli import main

    def report(summary, as_json):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)

    monkeypatch.setattr(linkpred, "report", report)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            main(["--debug", "linkpred", "--quiet", "--epochs", "1"])
    finally:
        signal.signal(signal.SIGINT, old)


def test_signals_keep_their_default_handling_after_a_command_that_was_not_stopped():
    """An exiting block ignores further signals only when a signal stopped it (so that the
    stop's own clean-up is not cut short); after a command that ran to its end, SIGTERM
    is back to its default."""
    from graphvae.stopping import signals_raise

    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with signals_raise(exiting=True):
            pass
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)
