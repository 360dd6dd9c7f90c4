"""The API's collector after start-up, checked in a child process (the test runner's
own collector is left as it is)."""

from __future__ import annotations

import json
import subprocess
import sys

_CHILD = """
import gc, json
from entrypoints.api.collector import THRESHOLDS, settle_after_start_up

built_at_start_up = [[n] for n in range(50_000)]  # what start-up leaves behind
before = gc.get_freeze_count()
settle_after_start_up()
frozen = gc.get_freeze_count() - before
young = [[n] for n in range(5_000)]  # fewer than a young pass waits for
print(json.dumps({
    "thresholds": gc.get_threshold(),
    "wanted": THRESHOLDS,
    "frozen": frozen,
    "young_count": gc.get_count()[0],
}))
"""


def test_start_up_objects_are_frozen_and_young_passes_wait_for_more_allocations() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    state = json.loads(out.stdout)
    assert state["thresholds"] == state["wanted"]
    assert state["thresholds"][0] > 700  # CPython's default ran a pass every few uploads
    assert state["frozen"] >= 50_000  # the lists built before it, among the rest
    # 5,000 new containers did not start a young pass at the raised threshold
    assert state["young_count"] >= 5_000
