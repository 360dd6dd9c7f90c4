"""What each content decision is worth: the development set in process, one variant at
a time (ablation), with the platform's own extraction, legal pass, chunker, model,
PostgreSQL repositories and SearchChunks.

Variants (each against the default, everything else equal):
- ``default``: notes in the text, every chunk read with its norm's ementa, exam
  material of annotated editions dropped (what the platform does);
- ``notes-out``: amendment notes taken out of the text (kept only as metadata);
- ``no-ementa``: chunks without the ementa context;
- ``keep-editorial``: exam questions and study notes left in.

Not the end-to-end figure (that is bench/retrieval.py, through API and worker): this
one isolates decisions. Passage vectors are cached by text under ``.cache`` (the model
is deterministic), so variants that share chunks do not embed them twice.

    python -m bench.retrieval_ablation [--variants default notes-out ...]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import text

from adapters.chunking.structured import StructuredChunker
from adapters.embedding.blas import BlasE5Embedder, BlasE5TokenCounter
from adapters.extraction.formats import ParseLimits, extract_format
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from application.use_cases.search import SearchChunks, SearchChunksHandler
from bench.common import ROOT, console, save, services, table
from bench.retrieval import CACHE, CORPUS, QUESTIONS, first_hit, load_questions, metrics
from domain.legal_structure import structure
from domain.model import Document, DocumentType
from domain.search import SearchFilter, SearchMode

VARIANTS: dict[str, dict[str, bool]] = {
    "default": {},
    "notes-out": {"notes_in_text": False},
    "no-ementa": {"norm_context": False},
    "keep-editorial": {"drop_editorial": False},
}
PASSAGES = CACHE / "passages"  # .json (texts) + .npy (their vectors, in order)


def load_cache() -> dict[str, Any]:
    texts, vectors = PASSAGES.with_suffix(".json"), PASSAGES.with_suffix(".npy")
    if not (texts.exists() and vectors.exists()):
        return {}
    return dict(zip(json.loads(texts.read_text()), np.load(vectors), strict=True))


def save_cache(cache: dict[str, Any]) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    PASSAGES.with_suffix(".json").write_text(json.dumps(list(cache)))
    np.save(PASSAGES.with_suffix(".npy"), np.stack(list(cache.values())).astype(np.float32))


async def one(
    database_url: str, name: str, embedder: BlasE5Embedder, cache: dict[str, Any]
) -> dict[str, Any]:
    flags = VARIANTS[name]
    chunker = StructuredChunker(BlasE5TokenCounter(), norm_context=flags.get("norm_context", True))
    engine = create_engine(database_url, application_name="bench-ablation")
    sessions = session_factory(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("TRUNCATE ai.documents, ai.keyword_terms, ai.keyword_stats CASCADE")
            )
        total = 0
        for path in sorted(CORPUS.glob("*.docx")):
            doc = structure(
                extract_format(path.read_bytes(), DocumentType.DOCX, ParseLimits()),
                notes_in_text=flags.get("notes_in_text", True),
                drop_editorial=flags.get("drop_editorial", True),
            )
            drafts = chunker.chunk(doc)
            missing = [d.embedding_text for d in drafts if d.embedding_text not in cache]
            for start in range(0, len(missing), 64):
                part = missing[start : start + 64]
                cache.update(zip(part, embedder.encode(part), strict=True))
            row = Document(
                uuid.uuid4(),
                "leis",
                path.name,
                DocumentType.DOCX,
                1,
                hashlib.sha256(path.name.encode()).hexdigest(),
                {},
                datetime.now(UTC),
                is_current=True,
            )
            async with SqlAlchemyUnitOfWork(sessions) as uow:
                await uow.documents.add(row, b"x")
                await uow.chunks.replace(
                    row.id,
                    [
                        d.embedded(row.id, cache[d.embedding_text], embedder.model_name)
                        for d in drafts
                    ],
                )
                await uow.documents.record_extraction(
                    row.id, doc.report, doc.norm.as_metadata() if doc.norm else {}
                )
                await uow.commit()
            total += len(drafts)
        handler = SearchChunksHandler(embedder)
        out: dict[str, Any] = {"chunks": total}
        for mode in SearchMode:
            ranks = []
            for q in load_questions(QUESTIONS):
                result = await handler(
                    SearchChunks(q.query, 10, mode, SearchFilter("leis")),
                    SqlAlchemyUnitOfWork(sessions),
                )
                ranks.append(first_hit(q, [(h.filename, h.text) for h in result.hits]))
            out[mode.value] = {**metrics(ranks), "ranks": ranks}
        return out
    finally:
        await engine.dispose()


def run(variants: list[str]) -> dict[str, Any]:
    cache = load_cache()
    embedder = BlasE5Embedder()
    results: dict[str, Any] = {}
    with services() as (database_url, _redis):
        for name in variants:
            console.print(f"variant {name} ...")
            results[name] = asyncio.run(one(database_url, name, embedder, cache))
            save_cache(cache)
    rows = [
        [
            f"{name} {mode}",
            r["chunks"],
            *(f"{r[mode][k]:.3f}" for k in ("recall@1", "recall@5", "recall@10", "mrr@10")),
        ]
        for name, r in results.items()
        for mode in ("hybrid", "vector", "keyword")
    ]
    table(
        "Retrieval ablation (development set, in process)",
        ["variant", "chunks", "recall@1", "recall@5", "recall@10", "MRR@10"],
        rows,
    )
    path = save("retrieval_ablation", {"variants": results})
    console.print(f"wrote {path.relative_to(ROOT)}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    run(args.variants)


if __name__ == "__main__":
    main()
