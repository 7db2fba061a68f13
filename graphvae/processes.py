"""Whose a leftover is: the files and folders that graphvae writes under temporary names
(an atomic write's ``.NAME.<machine>-<pid>-XXXXXXXX.tmp``, a run's staging folder) carry
the machine and the process that made them, so that the next writer removes those of
processes that are gone (a SIGKILL runs no cleanup) and leaves a live one's alone.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket


@functools.cache
def machine_id() -> str:
    """8 hex digits naming this host and process-id namespace: a process id means nothing
    on another host sharing the folder (NFS) or in another container, so a leftover is
    judged dead only by the machine that made it."""
    try:
        ns = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        ns = ""
    return hashlib.sha256(f"{socket.gethostname()}/{ns}".encode()).hexdigest()[:8]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts as alive, and so does a
    number no process can have, from a name someone made: its file is kept)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # exists but is not ours; beyond a pid_t
        return True
    return True


def owner_tag(pid: int | None = None) -> str:
    """``<machine>-<pid>-``: the part of a temporary name that says who made it (``pid``
    default: this process)."""
    return f"{machine_id()}-{os.getpid() if pid is None else pid}-"


#: What follows the start a name got from :func:`owner_tag`: ``<machine>-<pid>-`` and the
#: 8 characters mkstemp / mkdtemp (or 8 hex digits) add; older versions named run folders
#: without ``<machine>``.
_OWNED = re.compile(r"(?:(?P<machine>[0-9a-f]{8})-)?(?P<pid>[0-9]{1,10})-[a-z0-9_]{8}")


def owner_of(tail: str, legacy: bool = False) -> tuple[str | None, int] | None:
    """``(machine, pid)`` from ``tail``, the end of a name after its fixed start, when it
    is exactly as :func:`owner_tag` and mkstemp / mkdtemp made it (else ``None``: a name of
    yours such as ``.o.tmp-2024-backup``); ``legacy`` also takes an older version's
    ``<pid>-XXXXXXXX``, whose machine is ``None``."""
    m = _OWNED.fullmatch(tail)
    if m is None or m["machine"] is None and not legacy:
        return None
    return m["machine"], int(m["pid"])


def owner_gone(machine: str | None, pid: int) -> bool:
    """Whether the process that made a leftover is gone: it is this machine's (``None``:
    a run folder named by an older version, which had no machine) and no process ``pid``
    runs."""
    return machine in (None, machine_id()) and not pid_alive(pid)


__all__ = ["machine_id", "owner_gone", "owner_of", "owner_tag", "pid_alive"]
