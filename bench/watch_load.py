"""What waiting on 1,000 documents costs: the change feed against per-document polling.

1,000 small texts are uploaded as one batch to a real API (uvicorn, embedded
PostgreSQL and Redis) with no worker running, so every one stays PENDING: the waiting
is all there is. Then, for the same window, a client process waits on them
- the way `ingest` and `sync` now do (cli/watch.py: long-poll on the batch's change
  feed, the batch's counts in every answer), and
- the way they did before (GET /v1/documents/{id} for every pending document every
  0.5 s, 4 at a time; kept here only for the comparison),
and the CPU used by the API process and by the client process is read from the kernel
(psutil) and printed as a share of one core, next to the API's own CPU with nobody
waiting (its idle cost: event loop, connection pool, metrics).

    python -m bench.watch_load [--documents 1000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import ROOT, api, api_key, console, cpu_seconds, env_for, save, services, table

BATCH = "bench-watch"

# the two waiting clients, each run in its own process for `seconds`
_NEW = """
import asyncio, sys, httpx
from entrypoints.cli.watch import BatchWatcher
url, key, seconds, ids = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split(",")
async def main():
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=60) as c:
        w = BatchWatcher(c, BATCH, lambda doc_id, body: body.get("status") in ("COMPLETED", "FAILED"))
        await w.wait(ids, [], seconds)
        print(w.requests)
asyncio.run(main())
""".replace("BATCH", repr(BATCH))

_IDLE = """
import sys, time
time.sleep(float(sys.argv[3]))
print(0)
"""

_OLD = """
import asyncio, sys, time, httpx
url, key, seconds, ids = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split(",")
async def main():
    gate = asyncio.Semaphore(4)
    requests = 0
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=60) as c:
        async def poll(doc_id):
            nonlocal requests
            async with gate:
                await c.get(f"/v1/documents/{doc_id}")
                requests += 1
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            await asyncio.gather(*(poll(i) for i in ids))
    print(requests)
asyncio.run(main())
"""


def upload(url: str, key: str, n: int) -> list[str]:
    ids: list[str] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
        for i in range(n):
            r = c.post(
                "/v1/documents/text",
                json={"text": f"Art. {i}º Aviso número {i}.", "batch": BATCH},
            )
            r.raise_for_status()
            ids.append(r.json()["id"])
    return ids


def measure(
    script: str, url: str, key: str, ids: list[str], seconds: float, api_pid: int
) -> dict[str, Any]:
    api_before = cpu_seconds(api_pid)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, url, key, str(seconds), ",".join(ids)],
        cwd=ROOT,
        env=env_for("", "", PYTHONPATH=str(ROOT / "src") + ":" + str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    ps = psutil.Process(proc.pid)
    client_cpu = 0.0
    while proc.poll() is None:
        try:
            t = ps.cpu_times()
            client_cpu = t.user + t.system
        except psutil.Error:
            break
        time.sleep(0.2)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    api_cpu = cpu_seconds(api_pid) - api_before
    return {
        "seconds": round(wall, 1),
        "requests": int(out.strip().splitlines()[-1]),
        "api_core_share": api_cpu / wall,
        "client_core_share": client_cpu / wall,
    }


def run(documents: int, seconds: float) -> dict[str, Any]:
    with services() as (database_url, redis_url), tempfile.TemporaryDirectory() as tmp:
        key = api_key(database_url, redis_url, "bench-watch", ["ingest", "read"])
        env = env_for(database_url, redis_url, COGEP_RATE_LIMIT_PER_MINUTE="0")
        with api(env, Path(tmp) / "api.log") as (url, pid):
            ids = upload(url, key, documents)
            time.sleep(2)  # the uploads' own load settles
            idle = measure(_IDLE, url, key, ids, seconds, pid)
            new = measure(_NEW, url, key, ids, seconds, pid)
            old = measure(_OLD, url, key, ids, seconds, pid)
    rows = [
        ["nobody waiting (the API idle)", 0, f"{idle['api_core_share']:.1%}", "-"],
        [
            "change feed (ingest/sync now)",
            new["requests"],
            f"{new['api_core_share']:.1%}",
            f"{new['client_core_share']:.1%}",
        ],
        [
            "GET per document every 0.5 s (before)",
            old["requests"],
            f"{old['api_core_share']:.1%}",
            f"{old['client_core_share']:.1%}",
        ],
    ]
    table(
        f"Waiting on {documents:,} PENDING documents for {seconds:.0f} s (no worker)",
        ["client", "requests", "API CPU (share of a core)", "client CPU"],
        rows,
    )
    result = {
        "documents": documents,
        "seconds": seconds,
        "idle": idle,
        "change_feed": new,
        "polling": old,
    }
    console.print(f"saved {save('watch_load', result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    run(args.documents, args.seconds)


if __name__ == "__main__":
    main()
