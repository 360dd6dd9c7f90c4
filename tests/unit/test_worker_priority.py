"""The worker's CPU priority: its nice, and its autogroup's when it leads its session.

Each case runs in a child process: a process cannot take back a nice it raised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from entrypoints.worker.priority import AUTOGROUP

_CHILD = """
import json, os, sys
from pathlib import Path
from entrypoints.worker.priority import AUTOGROUP, lower_priority
group = Path(sys.argv[1]) if sys.argv[1] else AUTOGROUP
before = os.nice(0)
lowered = lower_priority(int(sys.argv[2]), group)
try:  # "/autogroup-N nice V"
    group_nice = int(group.read_text().split()[-1])
except OSError:
    group_nice = None
print(json.dumps({"nice": os.nice(0) - before, "lowered": lowered, "group_nice": group_nice}))
"""


def _child(autogroup: Path | None, increment: int, own_session: bool) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(autogroup or ""), str(increment)],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=own_session,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_a_worker_leading_its_session_lowers_its_group_too(tmp_path: Path) -> None:
    group = tmp_path / "autogroup"
    group.write_text("/autogroup-7 nice 0\n")
    assert _child(group, 10, own_session=True) == {"nice": 10, "lowered": True, "group_nice": 10}


def test_a_worker_sharing_a_session_leaves_the_group_alone(tmp_path: Path) -> None:
    group = tmp_path / "autogroup"
    group.write_text("/autogroup-7 nice 0\n")
    assert _child(group, 10, own_session=False) == {"nice": 10, "lowered": False, "group_nice": 0}


def test_without_autogroup_only_the_nice_changes(tmp_path: Path) -> None:
    missing = tmp_path / "no-proc" / "autogroup"  # as on a kernel built without it
    assert _child(missing, 5, own_session=True) == {"nice": 5, "lowered": False, "group_nice": None}


def test_nice_zero_changes_nothing(tmp_path: Path) -> None:
    group = tmp_path / "autogroup"
    group.write_text("/autogroup-7 nice 0\n")
    assert _child(group, 0, own_session=True) == {"nice": 0, "lowered": False, "group_nice": 0}


def test_the_kernels_own_autogroup_follows_the_worker() -> None:
    """On this kernel's /proc: a session leader's group takes the nice; a kernel built
    without autogroup has no such file, and the worker then relies on nice alone."""
    result = _child(None, 10, own_session=True)
    assert result["nice"] == 10
    if AUTOGROUP.exists():
        assert result == {"nice": 10, "lowered": True, "group_nice": 10}
    else:
        assert result == {"nice": 10, "lowered": False, "group_nice": None}
