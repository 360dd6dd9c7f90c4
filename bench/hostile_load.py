"""The API under a hostile client's load (issue 13), with the default limits: what it
answers, how much memory it takes, and whether /healthz keeps answering meanwhile.

One API process (uvicorn, the platform's own protocol and request gate) over embedded
PostgreSQL and Redis; the client speaks raw HTTP/1.1 over sockets, as an attacker
would, so nothing in between helps:
- burst: 200 concurrent uploads of 10 MB each (distinct files): the answers (201, or
  503 + Retry-After when the upload buffer has no room), none a 5xx, and the API's peak
  resident memory against the stated bound;
- big body: an unauthenticated 200 MB JSON body, and one declared but never sent;
- slowloris: 300 connections sending their headers a byte a second;
- idle: 1,000 connections that send nothing.
For each, /healthz is timed every 100 ms and the API's peak memory read from /proc.

    python -m bench.hostile_load [--uploads 200] [--mb 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import api, api_key, console, env_for, save, services, table
from entrypoints.settings import Settings

CHUNK = 256 * 1024


@dataclass
class Probe:
    """/healthz every 100 ms and the API's resident memory, while a scenario runs."""

    url: str
    pid: int
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    rss_peak_mb: float = 0.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = (await client.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.latencies_ms.append((time.perf_counter() - t0) * 1000)
                else:
                    self.failures += 1
                rss = psutil.Process(self.pid).memory_info().rss / 2**20
                self.rss_peak_mb = max(self.rss_peak_mb, rss)
                await asyncio.sleep(0.1)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms) or [float("nan")]
        return {
            "healthz_p50_ms": round(statistics.median(lat), 1),
            "healthz_max_ms": round(lat[-1], 1),
            "healthz_failures": self.failures,
            "api_rss_peak_mb": round(self.rss_peak_mb, 1),
        }


async def probed(url: str, pid: int, scenario: Any) -> tuple[Any, dict[str, Any]]:
    probe = Probe(url, pid)
    task = asyncio.create_task(probe.run())
    try:
        result = await scenario
    finally:
        probe.stop.set()
        await task
    return result, probe.summary()


async def exchange(
    host: str, port: int, head: bytes, body_parts: list[memoryview] | None = None
) -> tuple[int, float]:
    """Send a request (the body in parts, while reading); (status, seconds to answer).
    Status 0: the connection closed without an answer."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port, limit=2**20)

    async def send() -> None:
        try:
            writer.write(head)
            for part in body_parts or []:
                writer.write(part)
                await writer.drain()
        except (ConnectionError, RuntimeError):
            return

    sending = asyncio.create_task(send())
    try:
        line = await asyncio.wait_for(reader.readline(), 300)
        status = int(line.split()[1]) if line else 0
    except (ConnectionError, TimeoutError, IndexError, ValueError):
        status = 0
    finally:
        sending.cancel()
        writer.close()
    return status, time.perf_counter() - t0


async def burst(url: str, key: str, n: int, size_mb: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    filler = memoryview(b"Art. 1 O servidor tem direito a ferias. " * (size_mb * 2**20 // 40))

    def request() -> tuple[bytes, list[memoryview]]:
        boundary = uuid.uuid4().hex
        start = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="lei-{boundary[:8]}.txt"\r\nContent-Type: text/plain\r\n\r\n'
            f"Documento {boundary}\n"
        ).encode()
        end = f"\r\n--{boundary}--\r\n".encode()
        parts = [memoryview(start)]
        parts += [filler[i : i + CHUNK] for i in range(0, len(filler), CHUNK)]
        parts.append(memoryview(end))
        length = sum(len(p) for p in parts)
        head = (
            f"POST /v1/documents HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
        ).encode()
        return head, parts

    t0 = time.perf_counter()
    answers = await asyncio.gather(*(exchange(host, int(port), *request()) for _ in range(n)))
    statuses = [s for s, _ in answers]
    return {
        "uploads": n,
        "mb_each": size_mb,
        "seconds": round(time.perf_counter() - t0, 1),
        "created": statuses.count(201),
        "busy_503": statuses.count(503),
        "server_errors": sum(1 for s in statuses if s >= 500 and s != 503),
        "other": sorted({s for s in statuses if s not in (201, 503)}),
    }


async def big_bodies(url: str) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    head = (
        b"POST /v1/documents/text HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: 209715200\r\n\r\n"
    )
    blob = memoryview(b"a" * 2**20)
    sent_status, sent_s = await exchange(host, int(port), head, [blob] * 200)
    declared_status, declared_s = await exchange(host, int(port), head)
    chunked = (
        b"POST /v1/search HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = memoryview(b"%x\r\n" % len(blob) + bytes(blob) + b"\r\n")
    chunked_status, chunked_s = await exchange(host, int(port), chunked, [chunk] * 200)
    return {
        "200mb_sent_unauthenticated": {"status": sent_status, "seconds": round(sent_s, 3)},
        "200mb_declared_not_sent": {"status": declared_status, "seconds": round(declared_s, 3)},
        "200mb_chunked_unauthenticated": {
            "status": chunked_status,
            "seconds": round(chunked_s, 3),
        },
    }


async def slowloris(url: str, n: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")

    async def one() -> float:
        t0 = time.perf_counter()
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Slow: " + b"a" * 200:
                writer.write(bytes([byte]))
                await writer.drain()
                with_answer = asyncio.ensure_future(reader.read(1))
                done, _ = await asyncio.wait({with_answer}, timeout=1)
                if done:
                    return time.perf_counter() - t0
                with_answer.cancel()
        except ConnectionError:
            return time.perf_counter() - t0
        finally:
            writer.close()
        return float("inf")  # held through 200 bytes: never cut off

    held = await asyncio.gather(*(one() for _ in range(n)))
    return {
        "connections": n,
        "cut_off_after_s_median": round(statistics.median(held), 1),
        "cut_off_after_s_max": round(max(held), 1),
        "never_cut_off": sum(1 for h in held if h == float("inf")),
    }


async def idle(url: str, n: int, watch_s: float) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(n)]
    t0 = time.perf_counter()
    closed_at: list[float] = []

    async def watch(reader: asyncio.StreamReader) -> None:
        try:
            while await asyncio.wait_for(reader.read(4096), watch_s):
                pass
            closed_at.append(time.perf_counter() - t0)
        except (TimeoutError, ConnectionError):
            pass

    await asyncio.gather(*(watch(r) for r, _ in conns))
    for _, w in conns:
        w.close()
    return {
        "connections": n,
        "closed_by_server": len(closed_at),
        "closed_after_s_max": round(max(closed_at), 1) if closed_at else None,
        "still_open_after_s": watch_s if len(closed_at) < n else None,
    }


def vm_hwm_mb(pid: int) -> float:
    """The process's peak resident memory since it started (the kernel's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def main_async(url: str, pid: int, key: str, uploads: int, mb: int) -> dict[str, Any]:
    baseline = psutil.Process(pid).memory_info().rss / 2**20
    results: dict[str, Any] = {"api_rss_baseline_mb": round(baseline, 1)}
    for name, scenario in (
        ("burst", burst(url, key, uploads, mb)),
        ("big_bodies", big_bodies(url)),
        ("slowloris", slowloris(url, 300)),
        ("idle", idle(url, 1000, 20.0)),
    ):
        console.print(f"[bold]{name}[/] ...")
        outcome, probe = await probed(url, pid, scenario)
        results[name] = {**outcome, **probe, "api_peak_since_start_mb": vm_hwm_mb(pid)}
        console.print(results[name])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    run(args.uploads, args.mb)


def run(uploads: int = 200, mb: int = 10) -> None:
    defaults = Settings(_env_file=None)
    with services() as (database_url, redis_url):
        key = api_key(database_url, redis_url, "hostile", ["ingest", "read"])
        env = env_for(database_url, redis_url)
        log = Path("bench/results/hostile_load-api.log")
        log.unlink(missing_ok=True)
        with api(env, log) as (url, pid):
            results = asyncio.run(main_async(url, pid, key, uploads, mb))
    bound_mb = results["api_rss_baseline_mb"] + 3 * defaults.upload_buffer_mb
    results["limits"] = {
        "upload_buffer_mb": defaults.upload_buffer_mb,
        "upload_wait_s": defaults.upload_wait_s,
        "http_header_timeout_s": defaults.http_header_timeout_s,
        "stated_bound_mb": round(bound_mb, 1),  # baseline + 3 x the upload buffer
    }
    burst_, big, slow, idle_ = (results[k] for k in ("burst", "big_bodies", "slowloris", "idle"))
    outcomes = {
        "burst": f"{burst_['uploads']} x {burst_['mb_each']} MB: {burst_['created']} created, "
        f"{burst_['busy_503']} busy (503), {burst_['server_errors']} 5xx, {burst_['seconds']} s",
        "big_bodies": "; ".join(
            f"{name}: {r['status']} in {r['seconds'] * 1000:.0f} ms"
            for name, r in big.items()
            if isinstance(r, dict) and "status" in r
        ),
        "slowloris": f"{slow['connections']} cut off after {slow['cut_off_after_s_median']} s "
        f"(max {slow['cut_off_after_s_max']} s), {slow['never_cut_off']} held",
        "idle": f"{idle_['connections']} idle: {idle_['closed_by_server']} closed by the "
        f"server after at most {idle_['closed_after_s_max']} s",
    }
    table(
        "hostile load on one API process (default limits)",
        ["scenario", "outcome", "API peak MB", "/healthz p50 / max ms"],
        [
            [
                name,
                outcomes[name],
                results[name]["api_peak_since_start_mb"],
                f"{results[name]['healthz_p50_ms']} / {results[name]['healthz_max_ms']}",
            ]
            for name in outcomes
        ],
    )
    console.print(
        f"API memory: baseline {results['api_rss_baseline_mb']} MB, stated bound "
        f"{bound_mb:.0f} MB (baseline + 3 x COGEP_UPLOAD_BUFFER_MB)"
    )
    save("hostile_load", results)


if __name__ == "__main__":
    main()
