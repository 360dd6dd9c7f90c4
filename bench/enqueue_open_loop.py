"""Enqueue at a fixed arrival rate (open loop), with a worker busy: the highest rate
each payload sustains at p99 <= 200 ms (issue 16).

A closed-loop benchmark (N clients, each waiting for its answer) slows its own
arrivals when the server slows, and hides queueing. Here requests are sent on a fixed
schedule whatever the server does: request i goes out at start + i / rate, on a free
keep-alive connection or a new one, and its latency counts from that scheduled
moment, so time spent waiting anywhere (client, kernel, server) is in the figure.
Rates step up until the p99 passes the bar or requests fail.

Same set-up as bench/enqueue_load.py: the API under uvicorn (one process), a real
worker ingesting what arrives on the same 2 cores, new content in every request.

    python -m bench.enqueue_open_loop [--seconds-per-rate 8] [--rates 25 50 100 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench.common import ROOT, api, api_key, console, env_for, save, services, table, worker
from bench.enqueue_load import _read_response, multipart, pdf_payload, text_payload

BAR_MS = 200.0


async def open_loop(
    url: str, key: str, make: Callable[[], tuple[str, str, bytes]], rate: float, seconds: float
) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    n = int(rate * seconds)
    requests = [multipart(*make(), key=key, host=host) for _ in range(n)]
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    errors: dict[str, int] = {}
    opened = 0

    async def exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], i: int) -> int:
        reader, writer = conn
        writer.write(requests[i])
        return await _read_response(reader)

    async def send(i: int, scheduled: float) -> None:
        nonlocal opened
        try:
            if idle:  # a kept-alive connection the server may have closed meanwhile
                conn = idle.pop()
                try:
                    status = await exchange(conn, i)
                except (OSError, asyncio.IncompleteReadError):
                    conn[1].close()
                    conn = await asyncio.open_connection(host, int(port))
                    opened += 1
                    status = await exchange(conn, i)  # sent again, as HTTP clients do
            else:
                conn = await asyncio.open_connection(host, int(port))
                opened += 1
                status = await exchange(conn, i)
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        latencies.append(time.perf_counter() - scheduled)
        if status in (200, 201):
            idle.append(conn)
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1
            conn[1].close()

    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i, scheduled)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    ordered = sorted(latencies) or [float("inf")]
    return {
        "rate": rate,
        "requests": n,
        "answered": len(latencies),
        "errors": errors,
        "connections": opened,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def run(seconds: float, rates: list[float]) -> dict[str, Any]:
    payloads = {"text ~1 KB": text_payload(), "PDF ~100 KB": pdf_payload()}
    steps: list[dict[str, Any]] = []
    sustained: dict[str, float | None] = {}
    with services() as (database_url, redis_url):
        key = api_key(database_url, redis_url, "bench", ["ingest"])
        env = env_for(database_url, redis_url, COGEP_RATE_LIMIT_PER_MINUTE="0")
        logs = ROOT / "bench" / "results"
        with (
            worker(env, logs / "enqueue-open-worker.log"),
            api(env, logs / "enqueue-open-api.log") as (url, _),
        ):
            for name, make in payloads.items():
                asyncio.run(open_loop(url, key, make, 20, 1.5))  # warm-up
                sustained[name] = None
                for rate in rates:
                    result = asyncio.run(open_loop(url, key, make, rate, seconds))
                    result["payload"] = name
                    steps.append(result)
                    ok = not result["errors"] and result["p99_ms"] <= BAR_MS
                    console.print(
                        f"{name:12} {rate:6.0f}/s  p50 {result['p50_ms']:7.1f} ms  "
                        f"p99 {result['p99_ms']:7.1f} ms  connections {result['connections']}"
                        f"  errors {result['errors']}  {'ok' if ok else 'over the bar'}"
                    )
                    if not ok:
                        break
                    sustained[name] = rate
                    time.sleep(1)  # the previous step's last answers settle
    table(
        "Enqueue at a fixed arrival rate (1 API process, a worker ingesting meanwhile)",
        ["payload", "rate /s", "p50 ms", "p99 ms", "max ms", "connections", "errors"],
        [
            [
                s["payload"],
                s["rate"],
                s["p50_ms"],
                s["p99_ms"],
                s["max_ms"],
                s["connections"],
                sum(s["errors"].values()),
            ]
            for s in steps
        ],
    )
    for name, best in sustained.items():
        console.print(
            f"{name}: highest rate with p99 <= {BAR_MS:.0f} ms: "
            + (f"{best:.0f} uploads/s" if best else "none of those tried")
        )
    result = {"bar_ms": BAR_MS, "seconds_per_rate": seconds, "steps": steps, "sustained": sustained}
    path = save("enqueue_open_loop", result)
    console.print(f"wrote {path.relative_to(ROOT)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds-per-rate", type=float, default=8.0)
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[25, 50, 100, 150, 200, 300, 400, 500]
    )
    args = parser.parse_args()
    run(args.seconds_per_rate, args.rates)


if __name__ == "__main__":
    main()
