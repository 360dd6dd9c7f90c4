"""API CPU per text upload, two versions of the code alternated on one database.

On a host whose speed moves 20-40% from one minute to the next, two runs of
``enqueue_load`` an hour apart compare the host as much as the code. This bench
starts the API from each source tree in turn (``--base`` is another checkout's
``src``, e.g. ``git worktree add /tmp/base <commit>``), against the same PostgreSQL,
with the same uploads, and reports each round's pair: what changed between the two
is the code, within a minute of each other.

    python -m bench.api_cpu_ab --base /tmp/base/src [--rounds 6] [--seconds 8] [--clients 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path
from typing import Any

from bench.common import ROOT, api, api_key, console, env_for, save, services, table
from bench.enqueue_load import load, measured, text_payload


def run(base: Path, rounds: int, seconds: float, clients: int) -> dict[str, Any]:
    trees = {"base": base.resolve(), "this": (ROOT / "src").resolve()}
    make = text_payload()
    pairs: list[dict[str, Any]] = []
    with services() as (database_url, redis_url):
        key = api_key(database_url, redis_url, "bench", ["ingest"])
        for n in range(rounds):
            pair: dict[str, Any] = {"round": n + 1}
            for name, src in trees.items():
                env = env_for(
                    database_url,
                    redis_url,
                    COGEP_RATE_LIMIT_PER_MINUTE="0",
                    PYTHONPATH=f"{src}:{ROOT}",  # ahead of the installed tree
                )
                with api(env, ROOT / "bench" / "results" / "api-cpu-ab-api.log") as (url, pid):
                    asyncio.run(load(url, key, make, 4, 2.0))  # warm-up
                    step = measured(pid, url, key, make, clients, seconds)
                pair[name] = {
                    "api_cpu_ms": step["api_cpu_ms_per_request"],
                    "pg_cpu_ms": step["pg_cpu_ms_per_request"],
                    "rps": step["rps"],
                    "p99_ms": step["p99_ms"],
                }
            pair["ratio"] = pair["this"]["api_cpu_ms"] / pair["base"]["api_cpu_ms"]
            pairs.append(pair)
            console.print(
                f"round {n + 1}: base {pair['base']['api_cpu_ms']:.3f} ms, "
                f"this {pair['this']['api_cpu_ms']:.3f} ms, ratio {pair['ratio']:.3f}"
            )
    summary = {name: statistics.median(p[name]["api_cpu_ms"] for p in pairs) for name in trees}
    ratios = sorted(p["ratio"] for p in pairs)
    table(
        f"API CPU per text upload, {clients} clients, alternated ({rounds} rounds)",
        ["round", "base ms", "this ms", "ratio", "base uploads/s", "this uploads/s"],
        [
            [
                p["round"],
                f"{p['base']['api_cpu_ms']:.3f}",
                f"{p['this']['api_cpu_ms']:.3f}",
                f"{p['ratio']:.3f}",
                p["base"]["rps"],
                p["this"]["rps"],
            ]
            for p in pairs
        ],
    )
    console.print(
        f"median: base {summary['base']:.3f} ms, this {summary['this']:.3f} ms; "
        f"ratio median {statistics.median(ratios):.3f} (range {ratios[0]:.3f}-{ratios[-1]:.3f}), "
        f"this lower in {sum(r < 1 for r in ratios)} of {len(ratios)} rounds"
    )
    result = {
        "base": str(trees["base"]),
        "clients": clients,
        "seconds_per_step": seconds,
        "rounds": pairs,
        "median_api_cpu_ms": summary,
        "median_ratio": statistics.median(ratios),
    }
    path = save("api-cpu-ab", result)
    console.print(f"wrote {path.relative_to(ROOT)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, required=True, help="the other tree's src/")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    run(args.base, args.rounds, args.seconds, args.clients)


if __name__ == "__main__":
    main()
