"""The collectives of a data-parallel run (distributed.py): joining a group (its default
wait, and on CUDA, stood in for so that no GPU is needed), a failed join's line, a lost
peer told from a local fault, and the joint decisions of two gloo processes (largest
values, spreads, a step that fails in one process, settings that differ). torchrun's
start-up variables are tested in test_minibatch.py."""

import datetime
import json
import textwrap

import pytest
import torch
from test_minibatch import _two_processes

from graphvae.distributed import _peer_failure, process_group


@pytest.fixture
def two_processes(monkeypatch):
    """This process as rank 0 of 2, with torch.distributed's join and teardown recorded."""
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_ADDR", "localhost"),
                        ("MASTER_PORT", "29500")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GRAPHVAE_DIST_TIMEOUT", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    joined: list = []
    monkeypatch.setattr(torch.distributed, "init_process_group",
                        lambda backend, **kw: joined.append((backend, kw)))
    monkeypatch.setattr(torch.distributed, "destroy_process_group", lambda: None)
    return joined


def test_joining_waits_300_s_by_default_and_a_lost_peer_is_named_without_its_source(
        two_processes):
    """Without GRAPHVAE_DIST_TIMEOUT the group waits 300 s for its peers; a peer lost
    inside the run is one line with gloo's source location and the sentences after the
    first left out."""
    lost = ("[../third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
            "[127.0.0.1]:22932. Further detail")
    with pytest.raises(ValueError) as err, process_group(torch.device("cpu")) as got:
        assert got == (0, 2, torch.device("cpu"))
        raise RuntimeError(lost)
    assert two_processes == [("gloo", {"rank": 0, "world_size": 2,
                                       "timeout": datetime.timedelta(seconds=300)})]
    assert str(err.value) == ("torch.distributed: another process of the run stopped or lost "
                              "its connection (Connection closed by peer [127.0.0.1]:22932); "
                              "its own output names the cause")


def test_on_cuda_each_process_takes_its_local_device_and_nccl(two_processes, monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "1")
    with process_group(torch.device("cuda")) as got:
        assert got == (0, 2, torch.device("cuda", 1))
    assert chosen == [torch.device("cuda", 1)]
    assert two_processes == [("nccl", {"rank": 0, "world_size": 2,
                                       "timeout": datetime.timedelta(seconds=300)})]


@pytest.mark.parametrize("local", ["2", "3"])
def test_a_local_rank_past_the_machines_devices_is_refused(two_processes, monkeypatch, local):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", local)
    with pytest.raises(ValueError) as err, process_group(torch.device("cuda")):
        pass
    assert str(err.value) == (f"torch.distributed: LOCAL_RANK={local} but this machine has 2 "
                              f"CUDA device(s); start at most that many processes per machine "
                              f"(--nproc_per_node)")
    assert two_processes == []


def test_a_failed_join_names_the_first_line_of_its_cause(two_processes, monkeypatch):
    def refuse(backend, **kw):
        raise RuntimeError("  The client socket has timed out after 1s\nat store.cpp:87\n")

    monkeypatch.setattr(torch.distributed, "init_process_group", refuse)
    with pytest.raises(ValueError) as err, process_group(torch.device("cpu")):
        pass
    assert str(err.value) == ("torch.distributed: could not join the 2 processes at "
                              "localhost:29500 (The client socket has timed out after 1s); a "
                              "process that stopped before joining names its cause in its own "
                              "output")


def test_a_local_fault_inside_the_group_keeps_its_own_error(two_processes):
    """Only a lost peer becomes the one-line 'another process' report; a fault of this
    process (here an out-of-memory) is raised as it is."""
    local = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(RuntimeError) as err, process_group(torch.device("cpu")):
        raise local
    assert err.value is local


def test_only_a_lost_peer_is_reported_as_one():
    """A local fault that mentions NCCL or gloo (a CUDA out-of-memory inside NCCL, a device
    gloo cannot use) keeps its own message; connection loss is the peer's."""
    assert _peer_failure(RuntimeError("[../gloo/transport/tcp/pair.cc:553] Connection closed "
                                      "by peer [127.0.0.1]:22932"))
    assert _peer_failure(torch.distributed.DistNetworkError("the store is gone"))
    assert not _peer_failure(RuntimeError("NCCL error in: ... unhandled cuda error, Cuda "
                                          "failure 'out of memory'"))
    assert not _peer_failure(RuntimeError("expected tensor on gloo-compatible device"))


@pytest.mark.parametrize("text", [
    "[../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:22932",
    "[../gloo/transport/tcp/pair.cc:589] Read error [127.0.0.1]:5566: Connection reset by peer",
    "NCCL error in: ProcessGroupNCCL.cpp:1970, remote process error: ncclRemoteError",
    "NCCL communicator was aborted on rank 0: remote process exited or there was a network "
    "error",
])
def test_each_way_a_backend_reports_a_lost_peer_is_read_as_one(text):
    assert _peer_failure(RuntimeError(text))
    assert not _peer_failure(RuntimeError(text.replace("peer", "pear").replace(
        "ncclRemoteError", "ncclSystemError").replace("remote process exited", "it exited")))


_COLLECTIVES = textwrap.dedent("""
    import json
    import os
    import torch
    from graphvae.distributed import agree, highest, process_group, spread, together

    def outcome(step):
        try:
            return step()
        except Exception as err:
            return f"{type(err).__name__}: {err}"

    def fail_in_1():
        if rank == 1:
            raise FileNotFoundError("no such file: g.csv")
        return "read"

    def settings(**kw):
        return lambda: agree(kw, name=lambda k: "--" + k) or "agreed"

    os.environ["GRAPHVAE_DIST_TIMEOUT"] = "30"    # a collective that waits: 30 s, not 300
    out = {}
    with process_group(torch.device("cpu")) as (rank, world, _):
        out["highest"] = highest(2.5 * rank, -rank, 2.0 ** 53 - 1 - rank)
        out["spread"] = spread(10.0 + rank)
        out["together"] = together(lambda: 100 + rank)
        out["fails"] = outcome(lambda: together(fail_in_1))
        out["same"] = outcome(settings(lr=0.01, seed=0, cfg={"x": 1, "y": [2]}))
        out["differ"] = outcome(settings(lr=0.01, seed=rank, epochs=5,
                                         data="abc" if rank == 0 else "abd"))
        out["keys"] = outcome(settings(**({"a": 1} if rank == 0 else {"b": 1})))
        out["count"] = outcome(settings(**({"a": 1} if rank == 0 else {"a": 1, "b": 2})))
    open(f"rank{rank}.json", "w").write(json.dumps(out))
""")


@pytest.mark.slow  # two gloo processes (about 5 s)
def test_two_processes_decide_together(tmp_path):
    """Each collective under two gloo processes, with the values worked out by hand: the
    largest of each value (2^53 − 1 exactly, which float32 cannot hold), the lowest and
    highest, a step that fails in process 1 (its own error there, one line in process 0),
    and settings that agree, differ in two values (named by their flags, in order), differ
    in their keys, or differ in their count."""
    run = _two_processes(tmp_path, "collectives.py", _COLLECTIVES)
    assert run.returncode == 0, run.stderr[-3000:]
    out = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    differ = ("ValueError: torch.distributed: the 2 processes were started with different "
              "--data, --seed; start every process with the same arguments and the same files")
    count = ("ValueError: torch.distributed: the 2 processes record different sets of "
             "settings: they run different versions of graphvae; install the same version "
             "everywhere")
    for rank, got in enumerate(out):
        assert got["highest"] == [2.5, 0.0, 2.0 ** 53 - 1]
        assert got["spread"] == [10.0, 11.0]
        assert got["together"] == 100 + rank
        assert got["same"] == "agreed"
        assert got["differ"] == differ
        assert got["keys"] == ("ValueError: torch.distributed: the 2 processes were started "
                               f"with different --{'ab'[rank]}; start every process with the "
                               f"same arguments and the same files")
        assert got["count"] == count
    assert out[0]["fails"] == ("ValueError: torch.distributed: another process of the run "
                               "refused its flags or could not read its inputs; its own output "
                               "names the cause (this is process 0 of 2)")
    assert out[1]["fails"] == "FileNotFoundError: no such file: g.csv"
