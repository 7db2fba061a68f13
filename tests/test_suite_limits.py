"""The suite's own time limit (tests/conftest.py): a test that hangs ends as a failure."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import child_env

_HANGS = '''
def test_hangs_inside_one_c_call():
    dag = (1,)
    for _ in range(60):      # each level holds the level below twice: 2**60 steps to hash
        dag = (dag, dag)
    hash(dag)


def test_never_reached():
    pass
'''


def test_a_test_that_hangs_in_c_ends_at_the_limit_naming_itself(tmp_path):
    """Hashing the 60-level tuple is one C call of 2⁶⁰ steps, in which no signal handler
    (SIGALRM, pytest-timeout's) runs; the watchdog ends it after the 2 s limit set here,
    with the hanging test's traceback on stderr and a failing exit status. (``-p conftest``
    loads the suite's conftest, on the child's PYTHONPATH, as a plugin.)"""
    (tmp_path / "test_hang.py").write_text(_HANGS)
    env = dict(child_env(), GRAPHVAE_TEST_TIME_LIMIT="2")
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
         "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path / "test_hang.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    assert run.returncode != 0, run.stdout + run.stderr
    assert "Timeout (0:00:02)!" in run.stderr, run.stderr
    assert "in test_hangs_inside_one_c_call" in run.stderr, run.stderr
    assert "test_never_reached" not in run.stdout + run.stderr    # the process ended there
    assert took < 30, took
