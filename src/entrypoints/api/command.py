"""The one command line that serves the API (uvicorn), for `cogep-ingest up`/`api`,
the end-to-end tests and the benchmarks. No heavy imports: the CLI loads it early."""

from __future__ import annotations

import sys


def uvicorn_command(host: str, port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "entrypoints.api.app:create_app_from_env",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--loop",
        "uvloop",
        # httptools with the limits uvicorn lacks (header deadline and size, keep-alive
        # and connection caps from the settings)
        "--http",
        "entrypoints.api.protocol:GuardedHttpToolsProtocol",
    ]
