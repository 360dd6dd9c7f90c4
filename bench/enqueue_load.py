"""Enqueue latency and throughput under concurrent load, with a worker busy.

The API runs under uvicorn in its own process; this process is the client, on
loopback, with keep-alive connections. Every request uploads new content (a
duplicate would take the cheaper "already there" path): a ~1 KB text, or a ~100 KB
PDF. A real worker process ingests what arrives at the same time, so the API shares
the two cores with the embedding model, as it would on a small all-in-one host.

The client is a minimal HTTP/1.1 client on asyncio streams with pre-built requests:
on two shared cores, a general-purpose client's own overhead would be measured as
server latency.

    python -m bench.enqueue_load [--seconds-per-step 8] [--api-workers 1] [--no-worker]

``--no-worker`` (a diagnostic: the API alone on the host) also times GET /healthz
through the same middleware stack, the floor of any request's API CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from fpdf import FPDF

from bench import corpus
from bench.common import (
    ROOT,
    api,
    api_key,
    console,
    cpu_seconds,
    env_for,
    postgres_cpu_seconds,
    save,
    services,
    table,
    worker,
)

BOUNDARY = "cogepbenchboundary7d1f"


def multipart(filename: str, content_type: str, data: bytes, key: str, host: str) -> bytes:
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        + data
        + (
            f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="collection"\r\n\r\n'
            f"bench\r\n--{BOUNDARY}--\r\n"
        ).encode()
    )
    head = (
        f"POST /v1/documents HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def text_payload() -> Callable[[], tuple[str, str, bytes]]:
    base = (
        "Ofício circular sobre a marcação de férias dos servidores da unidade, "
        "com as orientações para o exercício e os prazos de homologação. "
    ) * 7

    def make() -> tuple[str, str, bytes]:
        return "oficio.txt", "text/plain", f"{base}\nProtocolo {uuid.uuid4()}".encode()

    return make


def pdf_payload() -> Callable[[], tuple[str, str, bytes]]:
    doc = corpus.generate(1, pages=12, seed=7)[0]
    pdf = FPDF()
    pdf.set_compression(False)  # ~100 KB of real text, as scanned-free PDFs weigh
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    text = corpus.plain_text(doc)
    for para in text.split("\n")[:400]:
        line = para.encode("latin-1", "replace").decode("latin-1")
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    base = bytes(pdf.output())

    def make() -> tuple[str, str, bytes]:
        # a comment after %%EOF keeps the file a valid PDF and its hash unique
        return "norma.pdf", "application/pdf", base + f"%{uuid.uuid4()}\n".encode()

    return make


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def healthz_request(host: str) -> bytes:
    """GET /healthz: the whole middleware stack and routing, no body, no database (the
    floor under which no upload's API CPU can go)."""
    return f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def load(
    url: str,
    key: str,
    make: Callable[[], tuple[str, str, bytes]] | None,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """``make`` None: GET /healthz instead of uploads."""
    host, port = url.removeprefix("http://").split(":")
    requests: list[bytes] = []
    latencies: list[float] = []
    errors: dict[int, int] = {}
    # pre-build enough unique requests so the clock measures the server, not us
    estimate = max(200, int(seconds * 600))
    for _ in range(estimate):
        requests.append(
            healthz_request(host) if make is None else multipart(*make(), key=key, host=host)
        )
    cursor = 0
    stop_at = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal cursor
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < stop_at and cursor < len(requests):
                req = requests[cursor]
                cursor += 1
                t0 = time.perf_counter()
                writer.write(req)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if status not in (200, 201):
                    errors[status] = errors.get(status, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def _print_step(result: dict[str, Any]) -> None:
    console.print(
        f"{result['payload']:12} c={result['concurrency']:<3} p50 {result['p50_ms']:6.1f} ms  "
        f"p99 {result['p99_ms']:6.1f} ms  {result['rps']:7.1f} req/s  "
        f"API CPU {result['api_cpu_ms_per_request']:.2f} ms/req  "
        f"PostgreSQL CPU {result['pg_cpu_ms_per_request']:.2f} ms/req  "
        f"errors {result['errors']}"
    )


def measured(
    pid: int,
    url: str,
    key: str,
    make: Callable[[], tuple[str, str, bytes]] | None,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """A load step, with the CPU the API and PostgreSQL spent per request meanwhile
    (PostgreSQL's includes the worker's writes when a worker runs)."""
    api_before, pg_before = cpu_seconds(pid), postgres_cpu_seconds()
    result = asyncio.run(load(url, key, make, concurrency, seconds))
    done = max(1, result["requests"])
    result["api_cpu_ms_per_request"] = (cpu_seconds(pid) - api_before) * 1000 / done
    result["pg_cpu_ms_per_request"] = (postgres_cpu_seconds() - pg_before) * 1000 / done
    return result


def run(
    seconds: float, api_workers: int, concurrencies: list[int], with_worker: bool = True
) -> dict[str, Any]:
    payloads = {"text ~1 KB": text_payload(), "PDF ~100 KB": pdf_payload()}
    sizes = {name: len(make()[2]) for name, make in payloads.items()}
    rows: list[dict[str, Any]] = []
    with services() as (database_url, redis_url):
        key = api_key(database_url, redis_url, "bench", ["ingest"])
        env = env_for(database_url, redis_url, COGEP_RATE_LIMIT_PER_MINUTE="0")
        logs = ROOT / "bench" / "results"
        busy = worker(env, logs / "enqueue-worker.log") if with_worker else contextlib.nullcontext()
        with busy, api(env, logs / "enqueue-api.log", workers=api_workers) as (url, pid):
            for name, make in payloads.items():
                asyncio.run(load(url, key, make, 4, 1.5))  # warm-up
                for c in concurrencies:
                    result = measured(pid, url, key, make, c, seconds)
                    result["payload"] = name
                    result["bytes"] = sizes[name]
                    rows.append(result)
                    _print_step(result)
            if not with_worker:  # the diagnostic run: what a request costs with no work
                result = measured(pid, url, key, None, 10, seconds)
                result["payload"] = "GET /healthz (floor)"
                result["bytes"] = 0
                rows.append(result)
                _print_step(result)
    table(
        f"Enqueue under load (API workers: {api_workers}, "
        f"{'a worker ingesting meanwhile' if with_worker else 'no worker'})",
        [
            "payload",
            "concurrency",
            "p50 ms",
            "p99 ms",
            "req/s",
            "API CPU ms/req",
            "PG CPU ms/req",
            "errors",
        ],
        [
            [
                r["payload"],
                r["concurrency"],
                r["p50_ms"],
                r["p99_ms"],
                r["rps"],
                r["api_cpu_ms_per_request"],
                r["pg_cpu_ms_per_request"],
                sum(r["errors"].values()),
            ]
            for r in rows
        ],
    )
    result = {
        "api_workers": api_workers,
        "with_worker": with_worker,
        "seconds_per_step": seconds,
        "steps": rows,
    }
    path = save("enqueue" if with_worker else "enqueue-no-worker", result)
    console.print(f"wrote {path.relative_to(ROOT)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds-per-step", type=float, default=8.0)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--no-worker", action="store_true", help="diagnostic: the API alone on the host"
    )
    args = parser.parse_args()
    run(args.seconds_per_step, args.api_workers, args.concurrency, not args.no_worker)


if __name__ == "__main__":
    main()
