"""Every benchmark, then the chart (`make bench`). Each prints its table and writes
bench/results/<name>.json; the chart is bench/results/benchmarks.png."""

from __future__ import annotations

from bench import (
    chart,
    compare,
    enqueue_load,
    fairness,
    hostile_load,
    keyword_scale,
    ocr,
    retrieval,
    worker_throughput,
)


def main() -> None:
    worker_throughput.run(docs_n=24, pages=10)
    enqueue_load.run(seconds=8.0, api_workers=1, concurrencies=[1, 10, 50])
    compare.run(docs_n=12, pages=10)
    retrieval.run()
    keyword_scale.run([10_000, 50_000, 100_000])
    ocr.run(pages=8, dpi=300)
    fairness.run(pages=300)
    hostile_load.run(uploads=200, mb=10)
    chart.draw()


if __name__ == "__main__":
    main()
