"""How long `cogep-ingest --help` takes, cold (first run after the bytecode caches of
this checkout are removed) and warm (the next runs): what an operator waits for at
every command. The CLI imports only typer, rich and httpx up front; the database,
broker and model stacks load inside the commands that need them.

    python -m bench.cli_startup [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from typing import Any

from bench.common import ROOT, console, save, table

CLI = ROOT / ".venv" / "bin" / "cogep-ingest"


def once() -> float:
    t0 = time.perf_counter()
    subprocess.run([str(CLI), "--help"], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def run(runs: int) -> dict[str, Any]:
    for cache in (ROOT / "src").rglob("__pycache__"):
        for f in cache.glob("*.pyc"):
            f.unlink()
    cold = once()  # our modules compiled again; the installed packages stay compiled
    warm = [once() for _ in range(runs)]
    rows = [
        ["cold (this checkout's bytecode removed)", f"{cold:.2f}"],
        ["warm, median", f"{statistics.median(warm):.2f}"],
        ["warm, worst", f"{max(warm):.2f}"],
    ]
    table(f"cogep-ingest --help ({runs} warm runs)", ["run", "seconds"], rows)
    result = {
        "cold_s": round(cold, 3),
        "warm_median_s": round(statistics.median(warm), 3),
        "warm_max_s": round(max(warm), 3),
        "runs": runs,
    }
    console.print(f"saved {save('cli_startup', result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    run(parser.parse_args().runs)


if __name__ == "__main__":
    main()
