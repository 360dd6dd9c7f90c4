"""Shared pytest configuration, and the suite's own hygiene: a full run leaves no
process and no scratch folder behind (checked when the session ends; a leak fails the
run as an error in the last teardown)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

# Keep OpenMP from oversubscribing the 2 CI cores when several processes embed.
os.environ.setdefault("OMP_NUM_THREADS", "2")

SCRATCH_PREFIXES = ("cogep-",)  # what the tests and the embedded servers create in /tmp


def _scratch() -> set[str]:
    root = Path(tempfile.gettempdir())
    return {p.name for p in root.iterdir() if p.name.startswith(SCRATCH_PREFIXES)}


@pytest.fixture(scope="session", autouse=True)
def leaves_nothing_behind() -> Iterator[None]:
    before = _scratch()
    yield  # set up first, so torn down last: after every service has stopped
    me = psutil.Process()
    deadline = time.monotonic() + 15
    while (children := me.children(recursive=True)) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [(p.pid, " ".join(p.cmdline()[:4])) for p in children if p.is_running()]
    assert not left, f"processes left running by the suite: {left}"
    created = sorted(_scratch() - before)
    assert not created, f"scratch folders left in {tempfile.gettempdir()}: {created}"
