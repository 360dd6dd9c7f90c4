"""What the extracted-text cap (COGEP_MAX_EXTRACTED_CHARS, 10 M characters) bounds:
the time and memory of chunking in the worker, measured on generated Portuguese norms
(bench/corpus.py) of growing size, through the worker's own extraction (legal pass) and
chunker with the model's tokenizer. Memory is the Python heap's peak during chunking
(tracemalloc, a second run), above what the extracted document already holds.

    python -m bench.chunking_bound [--sizes 1000000 2500000 5000000 10000000]
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from typing import Any

from adapters.extraction.formats import ParseLimits, extract
from bench.common import console, save, table
from bench.corpus import CHARS_PER_PAGE, _norm_blocks
from domain.model import DocumentType
from entrypoints.container import build_container
from entrypoints.settings import Settings


def norm_text(chars: int) -> str:
    title, blocks = _norm_blocks(random.Random(chars), chars // CHARS_PER_PAGE + 1)
    lines = [f"# {title}"] + [f"## {t}" if s.startswith("h") else t for s, t in blocks]
    return "\n\n".join(lines)[:chars]


def run(sizes: list[int]) -> dict[str, Any]:
    chunker = build_container(Settings(_env_file=None)).chunker()
    rows, results = [], []
    for size in sizes:
        doc = extract(norm_text(size).encode(), DocumentType.MARKDOWN, ParseLimits())
        t0 = time.process_time()  # timed without tracing, which slows Python down
        drafts = chunker.chunk(doc)
        cpu = time.process_time() - t0
        tracemalloc.start()  # then the same work again for its memory
        chunker.chunk(doc)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        results.append({"chars": size, "chunks": len(drafts), "cpu_s": cpu, "peak_mb": peak})
        rows.append([f"{size:,}", f"{len(drafts):,}", f"{cpu:.1f}", f"{peak:.0f}"])
    table(
        "Chunking in the worker by extracted text size",
        ["characters", "chunks", "CPU s", "peak heap MB"],
        rows,
    )
    console.print(f"saved {save('chunking_bound', {'results': results})}")
    return {"results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000_000, 2_500_000, 5_000_000, 10_000_000]
    )
    run(parser.parse_args().sizes)


if __name__ == "__main__":
    main()
