"""The embedding model alone on each pipeline's texts: where `bench.compare`'s
difference at equal runtime goes.

The same generated corpus as `bench.compare`, cut as the platform cuts it (its
extractor and chunker: article chunks carrying their heading path) and as the
LangChain script cuts it (plain text, 1,000-character pieces with 150 of overlap),
embedded by the same BLAS runtime in the same process, one after the other, each the
way its pipeline calls it (the platform in slices of 64 chunks, the script one
document at a time). No database and no pipeline: only the model's time on each set.

    python -m bench.compare_texts [--docs 60] [--pages 10]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from adapters.embedding.blas import BlasE5Embedder, BlasE5TokenCounter
from bench import corpus
from bench.common import console, save, table
from bench.worker_throughput import chunk_texts
from entrypoints.container import build_container
from entrypoints.settings import Settings


def peer_texts(docs: list[corpus.CorpusDocument]) -> list[list[str]]:
    """The script's pieces, per document (bench/langchain_peer.py cuts them so)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150)
    return [splitter.split_text(corpus.plain_text(d)) for d in docs]


def timed(embedder: BlasE5Embedder, calls: list[list[str]]) -> float:
    t0 = time.perf_counter()
    for texts in calls:
        embedder.encode(texts)
    return time.perf_counter() - t0


def run(docs_n: int, pages: int) -> dict[str, Any]:
    docs = corpus.generate(docs_n, pages=pages)
    settings = Settings(_env_file=None, embedding_runtime="blas")  # as bench.compare
    container = build_container(settings)
    embedder = container.embedder()
    assert isinstance(embedder, BlasE5Embedder), "the model alone: a local runtime"
    size = settings.embedding_batch_size
    ours = chunk_texts(container, docs)
    theirs = peer_texts(docs)
    counter = BlasE5TokenCounter()
    sets = {
        "cogep-ingest (slices of 64)": [ours[i : i + size] for i in range(0, len(ours), size)],
        "LangChain script (one call a document)": theirs,
    }
    embedder.encode(ours[:size])  # warm
    rows: list[list[Any]] = []
    result: dict[str, Any] = {"documents": docs_n, "pages_per_document": pages, "sets": {}}
    for name, calls in sets.items():
        texts = [t for call in calls for t in call]
        tokens = sum(counter.count_tokens(t) for t in texts)
        seconds = timed(embedder, calls)
        entry = {
            "chunks": len(texts),
            "tokens": tokens,
            "mean_tokens": tokens / len(texts),
            "seconds": seconds,
            "tokens_per_s": tokens / seconds,
        }
        result["sets"][name] = entry
        rows.append(
            [name, len(texts), tokens, f"{entry['mean_tokens']:.0f}", seconds, tokens / seconds]
        )
    a, b = result["sets"].values()
    result["seconds_ratio"] = a["seconds"] / b["seconds"]
    result["tokens_ratio"] = a["tokens"] / b["tokens"]
    result["per_token_cost_ratio"] = b["tokens_per_s"] / a["tokens_per_s"]
    table(
        f"The model alone on each pipeline's texts: {docs_n} documents x ~{pages} pages",
        ["texts", "chunks", "tokens", "tokens/chunk", "seconds", "tokens/s"],
        rows,
    )
    console.print(
        f"the platform's texts take {result['seconds_ratio']:.2f}x the model time: "
        f"{result['tokens_ratio']:.2f}x the tokens at {result['per_token_cost_ratio']:.2f}x "
        "the time per token"
    )
    save("compare_texts", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args()
    run(args.docs, args.pages)


if __name__ == "__main__":
    main()
