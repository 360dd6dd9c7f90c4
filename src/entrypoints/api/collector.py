"""The API process's garbage collector, tuned once start-up is done.

- What start-up built (the app, the query model's tokenizer: ~180k objects) lives as
  long as the process. Frozen, it is out of the collector's reach: a full collection
  under load no longer walks it (measured: ~100 ms, every request in flight waited).
- Requests allocate in bursts and free almost everything by reference counting. At
  the default first threshold (700 net allocations) the collector ran every few
  uploads, and each pass promoted the objects of the requests still in flight, which
  later needed gen1 and full passes: about 5% of the API's CPU under load. At 20,000
  a pass runs every few hundred uploads and takes ~2 ms (decision 0008).
"""

from __future__ import annotations

import gc

# first generation: net container allocations between young passes (CPython: 700);
# the older two keep CPython's counts
THRESHOLDS = (20_000, 10, 10)


def settle_after_start_up() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
