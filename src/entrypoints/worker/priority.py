"""The worker's CPU priority below the API's on a shared host.

`nice` alone is not enough on Linux with autogroup scheduling (CONFIG_SCHED_AUTOGROUP,
on by default in most distributions, active for processes outside a CPU cgroup): the
tasks of one session form a scheduling group, groups share the CPU by the group's own
nice value, and a task's nice only weighs against the tasks of its own group. A worker
that leads its own session (started by `cogep-ingest up`, by a service manager, or by
any launcher that calls setsid) is alone in its group, so its nice 10 changed nothing
against an API in another session: both groups got half the CPU (measured on 2 cores
with the worker busy: the worker took 0.7-1.1 cores next to an API answering 50
clients; docs/decisions/0008-enqueue-latency.md). Such a worker lowers its group too.

A worker that shares a session (run from a terminal next to other jobs) leaves the
group alone: lowering it would lower the terminal's other jobs with it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(increment: int, autogroup: Path = AUTOGROUP) -> bool:
    """Raise this process's nice by `increment` (inherited by its threads and children)
    and, when it leads its own session, its autogroup's nice to the same value. Returns
    whether the autogroup was lowered."""
    if increment <= 0:
        return False
    os.nice(increment)
    if os.getsid(0) != os.getpid():
        return False
    try:
        autogroup.write_text(f"{increment}\n")
    except OSError as exc:  # no autogroup in this kernel, or not ours to change
        log.debug("autogroup nice not set: %s", exc)
        return False
    return True
