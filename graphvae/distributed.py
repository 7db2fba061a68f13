"""Data-parallel runs under ``torchrun`` (``torch.distributed``): start, check, stop.

``torchrun --nproc_per_node=N -m graphvae linkpred ...`` starts ``N`` processes and sets
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each;
:func:`process_group` reads them and joins the process group (gloo on CPU, NCCL on CUDA). A
world size of 1, or no such variables, is an ordinary single process.

Every failure to start is one line: a world size or rank that is not a number, a
rendezvous endpoint that is missing, or peers that never join within
``GRAPHVAE_DIST_TIMEOUT`` seconds (default 300). Once joined, the processes read their
inputs together (:func:`together`: when one fails, every one stops at once) and check
that they hold the same settings and data (:func:`agree`).
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import importlib
import json
import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, TypeVar

import torch


def _int_env(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"torch.distributed: {name}={text!r} is not an integer") from None


def current_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the process group this process has joined; ``(0, 1)``
    without one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def world_from_env() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from torchrun's variables; ``(0, 0, 1)`` without."""
    world = _int_env("WORLD_SIZE")
    if world is None or world == 1:
        return 0, 0, 1
    if world < 1:
        raise ValueError(f"torch.distributed: WORLD_SIZE={world} must be at least 1")
    rank = _int_env("RANK")
    if rank is None or not 0 <= rank < world:
        raise ValueError(f"torch.distributed: RANK={os.environ.get('RANK')!r} is not a "
                         f"process number in 0..{world - 1} (launch with torchrun)")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise ValueError(f"torch.distributed: WORLD_SIZE={world} but no rendezvous endpoint "
                         f"({' and '.join(missing)} unset); launch with torchrun, or set "
                         f"--rdzv-endpoint / --master-addr and --master-port")
    local = _int_env("LOCAL_RANK")
    return rank, 0 if local is None else local, world


def collective_device() -> str:
    """Where a tensor for a collective of the joined group lives: NCCL reduces CUDA
    tensors, gloo CPU ones."""
    return "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"


def _peer_failure(err: RuntimeError) -> bool:
    """Whether ``err`` is the backend's report that a peer process went away (a network
    error; gloo's connection closed or reset; NCCL's remote error), not a fault here: a
    local one (an out-of-memory, a device mismatch) keeps its own message."""
    text = str(err)
    return isinstance(err, torch.distributed.DistNetworkError) or any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer",
                            "ncclRemoteError", "remote process exited"))


@contextmanager
def process_group(device: torch.device):
    """Join the process group for the run when torchrun started several processes; yield
    ``(rank, world_size, device)`` (on CUDA, each process takes ``cuda:LOCAL_RANK``)."""
    rank, local, world = world_from_env()
    if world == 1:
        yield 0, 1, device
        return
    dist = torch.distributed
    if not dist.is_available():
        raise ValueError("torch.distributed is not available in this torch build")
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if not 0 <= local < count:
            raise ValueError(f"torch.distributed: LOCAL_RANK={local} but this machine has "
                             f"{count} CUDA device(s); start at most that many processes per "
                             f"machine (--nproc_per_node)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    seconds = _int_env("GRAPHVAE_DIST_TIMEOUT")
    if seconds is None:
        seconds = 300
    elif not 1 <= seconds <= 10 ** 6:
        raise ValueError(f"torch.distributed: GRAPHVAE_DIST_TIMEOUT={seconds} must be a number "
                         f"of seconds from 1 to 1000000")
    # DistributedDataParallel imports torch._dynamo on first use, and imported while a
    # group exists, torch._dynamo keeps references to it that outlive
    # destroy_process_group: the group, and gloo's threads and work, were then freed only
    # in interpreter finalisation, where freeing them can abort the process ("terminate
    # called without an active exception"; pytorch/pytorch#179291). Imported before the
    # group, it holds none, and the group is freed as this context exits
    importlib.import_module("torch._dynamo")
    try:
        dist.init_process_group(backend, rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=seconds))
    except (RuntimeError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"torch.distributed: could not join the {world} processes at "
                         f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} "
                         f"({first}); a process that stopped before joining names its cause "
                         f"in its own output") from None
    try:
        yield rank, world, device
    except RuntimeError as err:
        if not _peer_failure(err):
            raise
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        text = re.sub(r"^\[[^\]]*\]\s*", "", text).split(". ")[0][:160]   # no source path
        raise ValueError(f"torch.distributed: another process of the run stopped or lost its "
                         f"connection ({text}); its own output names the cause") from None
    finally:
        # DDP wrappers dropped in reference cycles (and the gloo work they hold) are freed
        # here, while the group and the interpreter are whole: freed during interpreter
        # finalisation they can abort the process ("terminate called without an active
        # exception", SIGABRT), which a test's scripts showed under load
        gc.collect()
        dist.destroy_process_group()


T = TypeVar("T")


def highest(*values: float) -> list[float]:
    """The largest of each of ``values`` over the processes of the joined group, in one
    all-reduce; ``values`` themselves without a group. Exact for integers up to 2⁵³."""
    if current_world()[1] == 1:
        return [float(v) for v in values]
    dist = torch.distributed
    both = torch.tensor(values, dtype=torch.float64, device=collective_device())
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    return both.tolist()


def spread(value: float) -> tuple[float, float]:
    """``(lowest, highest)`` of ``value`` over the processes of the joined group, in one
    all-reduce (:func:`highest` of ``−value`` and of ``value``); ``(value, value)``
    without a group. The processes' joint decisions (does any fail, do all agree) are
    read from it."""
    low, high = highest(-value, value)
    return -low, high


def together(step: Callable[[], T]) -> T:
    """``step()`` in every process of the joined group, which all stop when it fails in
    any: the failing process with its own error, the others with a line saying that
    another process failed (without this, a process whose file was missing stopped alone
    and the others waited out the group's timeout, or trained a process short). One
    all-reduce; without a group, just ``step()``."""
    rank, world = current_world()
    if world == 1:
        return step()
    error: Exception | None = None
    try:
        result = step()
    except Exception as err:  # noqa: BLE001 - re-raised below, after the others hear of it
        error = err
    _, failed = spread(float(error is not None))
    if error is not None:
        raise error
    if failed:
        raise ValueError(f"torch.distributed: another process of the run refused its flags or "
                         f"could not read its inputs; its own output names the cause (this is "
                         f"process {rank} of {world})")
    return result


def _code(value: Any) -> int:
    """A signed 63-bit digest of ``value``'s JSON text."""
    text = json.dumps(value, sort_keys=True, default=repr)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def agree(settings: dict[str, Any], name: Callable[[str], str] = str) -> None:
    """Refuse, in every process of the joined group together, a run whose processes hold
    different ``settings`` (a dict of JSON-able values: the configuration, the seeds, a
    digest of the data): one line naming each setting that differs from process 0's, as
    ``name(key)`` spells it. Different data files or seeds on two machines trained one
    model on two graphs, or let one process train on the other's test edges, without a
    word. Two small collectives and one broadcast of a digest per setting; without a
    group, nothing."""
    _, world = current_world()
    if world == 1:
        return
    dist = torch.distributed
    keys = sorted(settings)
    fewest, most = spread(len(keys))
    if fewest != most:
        raise ValueError(f"torch.distributed: the {world} processes record different sets of "
                         f"settings: they run different versions of graphvae; install the "
                         f"same version everywhere")
    mine = torch.tensor([_code([k, settings[k]]) for k in keys], dtype=torch.int64,
                        device=collective_device())
    first = mine.clone()
    dist.broadcast(first, src=0)
    differ = (first != mine).to(torch.int64)
    dist.all_reduce(differ, op=dist.ReduceOp.MAX)
    names = [name(k) for k, d in zip(keys, differ.tolist()) if d]
    if names:
        raise ValueError(f"torch.distributed: the {world} processes were started with "
                         f"different {', '.join(names)}; start every process with the same "
                         f"arguments and the same files")
