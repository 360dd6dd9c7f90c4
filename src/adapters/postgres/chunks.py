"""Chunks: storing a document's chunk set (with its BM25 statistics) and searching it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import Row, delete, func, insert, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres import counters
from adapters.postgres.keyword_index import (
    FIRST_DEPTH,
    MAX_READ,
    MIN_PROBES,
    PROBES_PER_HIT,
    KeywordIndex,
    bm25_among_sql,
    bm25_params,
    bm25_sql,
)
from adapters.postgres.orm import INDEXED_DIMENSIONS
from adapters.postgres.rows import chunks
from domain.errors import EmbeddingModelMismatch
from domain.model import Chunk, ChunkDraft, LegalRef
from domain.search import SearchFilter, SearchHit

# -- search ------------------------------------------------------------------------------
#
# pgvector 0.6 (the embedded server's) has no iterative index scan: an HNSW scan yields
# at most hnsw.ef_search candidates and a WHERE clause filters them afterwards, so a
# narrow filter can starve the result. The vector search therefore widens ef_search
# step by step and, when a filter still leaves fewer than `limit` hits, finishes with
# an exact scan of the filtered chunks (found through the filter's own indexes).
#
# The column holds vectors of any dimension; each dimension has a partial HNSW index
# over `embedding::vector(N) WHERE embedding_dim = N` (orm.INDEXED_DIMENSIONS), which a
# query uses by naming the same expression and predicate. The model filter then keeps
# one model's chunks when two models of one dimension live side by side.

_HIT_COLUMNS = """
    c.id AS chunk_id, c.document_id, d.filename, d.collection, c.position, c.heading,
    c.text, c.page_start, c.page_end, c.context, c.article, c.legal,
    d.metadata ->> 'norm' AS norm, d.source_key, d.version, d.is_current
"""
# the first step: recall@10 against exact search 0.967 - 0.977 at 1M chunks over four
# builds of the graph (0.933 - 0.957 at 400); vector p95 23.5 - 24.0 ms with the graph
# in shared buffers (bench.scale, bench.hnsw_graph; docs/decisions/0018, 0020)
EF_SEARCH_STEPS = (600, 1000)
# a filter keeping at most this many chunks is searched exactly: by vector without the
# graph, by keywords with a lookup of each chunk for each term
EXACT_SEARCH_MAX = 10_000
EXACT_KEYWORD_MAX = 2_000


def _filter_sql(flt: SearchFilter, params: dict[str, Any]) -> str | None:
    """The filter as a WHERE over ``d`` (documents) and ``c`` (chunks, only for the
    model), its values put in `params`; None when nothing is filtered."""
    clauses = ["c.model_name = :model"] if "model" in params else []
    if not flt.include_superseded:
        clauses.append("d.is_current")
    if flt.collection:
        clauses.append("d.collection = :collection")
        params["collection"] = flt.collection
    if flt.within is not None:
        clauses.append("d.collection = ANY(:within)")
        params["within"] = list(flt.within)
    if flt.document_ids:
        clauses.append("d.id = ANY(:document_ids)")
        params["document_ids"] = list(flt.document_ids)
    if flt.metadata:
        clauses.append("d.metadata @> CAST(:metadata AS jsonb)")
        params["metadata"] = orjson.dumps(dict(flt.metadata)).decode()
    return " AND ".join(clauses) or None


def _selective(flt: SearchFilter) -> bool:
    """Whether the filter may keep few chunks (beyond current versions only)."""
    return bool(flt.collection or flt.document_ids or flt.metadata or flt.within is not None)


def _hit(
    row: Row[Any],
    score: float,
    vector_rank: int | None = None,
    keyword_rank: int | None = None,
) -> SearchHit:
    return SearchHit(
        chunk_id=row.chunk_id,
        document_id=row.document_id,
        filename=row.filename,
        collection=row.collection,
        position=row.position,
        heading=row.heading,
        text=row.text,
        page_start=row.page_start,
        page_end=row.page_end,
        score=score,
        context=row.context,
        legal=legal_ref(row.article, row.legal),
        norm=row.norm,
        source_key=row.source_key,
        version=row.version,
        current=row.is_current,
        vector_rank=vector_rank,
        keyword_rank=keyword_rank,
    )


def legal_ref(article: str | None, legal: Mapping[str, Any] | None) -> LegalRef:
    extra = legal or {}
    return LegalRef(
        article=article,
        article_end=extra.get("article_end"),
        paragraph=extra.get("paragraph"),
        inciso=extra.get("inciso"),
        alinea=extra.get("alinea"),
        amended_by=tuple(extra.get("amended_by") or ()),
    )


def legal_json(ref: LegalRef) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: v
        for k, v in (
            ("article_end", ref.article_end),
            ("paragraph", ref.paragraph),
            ("inciso", ref.inciso),
            ("alinea", ref.alinea),
        )
        if v is not None
    }
    if ref.amended_by:
        out["amended_by"] = list(ref.amended_by)
    return out


class SqlAlchemyChunkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search_by_vector(
        self,
        vector: Sequence[float],
        model_name: str,
        flt: SearchFilter,
        limit: int,
        enough: int | None = None,
    ) -> list[SearchHit]:
        dim = len(vector)
        if dim not in INDEXED_DIMENSIONS:
            raise EmbeddingModelMismatch(
                f"the model {model_name!r} makes {dim}-dimensional vectors; the database "
                f"indexes {', '.join(map(str, INDEXED_DIMENSIONS))}"
            )
        params: dict[str, Any] = {
            "model": model_name,
            "query": "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]",
            "limit": limit,
        }
        where = _filter_sql(flt, params) or "TRUE"
        distance = f"(c.embedding::vector({dim})) <=> CAST(:query AS vector({dim}))"
        # the `ef` nearest chunks from the HNSW index, then the filter: written as a
        # subquery so the planner cannot trade the index for a scan of the filtered
        # chunks, which grows with the corpus (a collection of 5% of a million chunks)
        nearest = text(
            f"""
            SELECT {_HIT_COLUMNS}, n.distance
            FROM (
                SELECT c.id, {distance} AS distance FROM ai.chunks c
                WHERE c.embedding_dim = {dim} ORDER BY {distance} LIMIT :ef
            ) AS n
            JOIN ai.chunks c ON c.id = n.id JOIN ai.documents d ON d.id = c.document_id
            WHERE {where}
            ORDER BY n.distance
            LIMIT :limit
            """  # noqa: S608 - fixed clauses and a checked integer; values are bound
        )
        # every filtered chunk scored, then sorted: `+ 0` is an order the HNSW index
        # cannot serve, so the planner finds the chunks through the filter's indexes
        exact = text(
            f"""
            SELECT {_HIT_COLUMNS}, {distance} AS distance
            FROM ai.chunks c JOIN ai.documents d ON d.id = c.document_id
            WHERE c.embedding_dim = {dim} AND {where}
            ORDER BY ({distance}) + 0
            LIMIT :limit
            """  # noqa: S608 - fixed clauses and a checked integer; values are bound
        )
        # a filter that keeps few chunks is answered exactly at once, in time bounded
        # by EXACT_SEARCH_MAX; no walk of the graph would find them cheaper
        if _selective(flt) and await self._keeps_few(
            f"c.embedding_dim = {dim} AND {where}", params, EXACT_SEARCH_MAX
        ):
            return await self._exact(exact, params)
        rows: list[Row[Any]] = []
        for ef in EF_SEARCH_STEPS:
            params["ef"] = max(ef, limit)
            await self.session.execute(
                text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(params["ef"])}
            )
            rows = list(await self.session.execute(nearest, params))
            if len(rows) >= limit or not flt.narrows:
                break
        if len(rows) < min(enough or limit, limit) and flt.narrows:
            # still short under a filter, so the filter is narrow (fewer than `enough`
            # of the 1,000 nearest pass it): exact distances over the filtered chunks
            return await self._exact(exact, params)
        return [
            _hit(r, 1.0 - float(r.distance), vector_rank=i) for i, r in enumerate(rows, start=1)
        ]

    async def _keeps_few(self, where: str, params: dict[str, Any], most: int) -> bool:
        """Whether at most `most` chunks pass `where` (counted no further than that)."""
        kept = text(
            f"""
            SELECT count(*) FROM (
                SELECT 1 FROM ai.chunks c JOIN ai.documents d ON d.id = c.document_id
                WHERE {where} LIMIT :most
            ) AS f
            """  # noqa: S608 - fixed clauses; values are bound
        )
        n = (await self.session.execute(kept, {**params, "most": most + 1})).scalar_one()
        return bool(n <= most)

    async def _exact(self, sql: Any, params: dict[str, Any]) -> list[SearchHit]:
        rows = list(await self.session.execute(sql, params))
        return [
            _hit(r, 1.0 - float(r.distance), vector_rank=i) for i, r in enumerate(rows, start=1)
        ]

    async def search_by_keywords(
        self, text_query: str, model_name: str | None, flt: SearchFilter, limit: int
    ) -> list[SearchHit]:
        """Okapi BM25 over the chunks' lexemes (see keyword_index.py), any of the words;
        of one model's chunks, or of all when `model_name` is None.

        One bounded read: the rarest terms' postings whole while MAX_READ postings
        last, and the best FIRST_DEPTH of every other term (bm25_sql); the exact top k
        whenever the best chunks hold one of the terms read whole (bench/scale.py
        measures how close it stays at a million chunks)."""
        params: dict[str, Any] = {
            **({"model": model_name} if model_name is not None else {}),
            "k": limit,
            "probes": max(PROBES_PER_HIT * limit, MIN_PROBES),
            "depth": max(FIRST_DEPTH, 4 * limit),
            "budget": MAX_READ,
            **bm25_params(text_query),
        }
        keep = _filter_sql(flt, params)
        if keep and _selective(flt) and await self._keeps_few(keep, params, EXACT_KEYWORD_MAX):
            # few chunks pass: each is looked up for each term, exact and bounded
            sql = text(bm25_among_sql(keep).replace("{columns}", _HIT_COLUMNS))
        else:
            sql = text(bm25_sql(keep, model_name is not None).replace("{columns}", _HIT_COLUMNS))
        rows = list(await self.session.execute(sql, params))
        hits = [r for r in rows if r.chunk_id is not None]
        if len(hits) < limit and float(rows[0].rest) > 0 and keep and _selective(flt):
            # the bounded read held too few of the filtered chunks: read the filtered
            # chunks' own postings (never starved; it walks past the others)
            narrow = _filter_sql(flt, {})  # its clauses over documents
            sql = text(
                bm25_sql(keep, model_name is not None, narrow).replace("{columns}", _HIT_COLUMNS)
            )
            rows = list(await self.session.execute(sql, params))
            hits = [r for r in rows if r.chunk_id is not None]
        terms = int(rows[0].terms)
        return [
            replace(
                _hit(r, float(r.rank), keyword_rank=i),
                coverage=r.matched / terms if terms else 0.0,
            )
            for i, r in enumerate(hits, start=1)
        ]

    async def article_texts(
        self, keys: Sequence[tuple[uuid.UUID, str]], max_chars: int
    ) -> dict[tuple[uuid.UUID, str], str]:
        """The whole text of each (document, article), its chunks in order, cut at
        max_chars (parent-passage retrieval)."""
        if not keys:
            return {}
        rows = await self.session.execute(
            select(chunks.c.document_id, chunks.c.article, chunks.c.text)
            .where(tuple_(chunks.c.document_id, chunks.c.article).in_([(d, a) for d, a in keys]))
            .order_by(chunks.c.document_id, chunks.c.position)
        )
        out: dict[tuple[uuid.UUID, str], str] = {}
        for document_id, article, body in rows:
            key = (document_id, article)
            joined = f"{out[key]}\n{body}" if key in out else body
            out[key] = joined if len(joined) <= max_chars else joined[: max_chars - 4] + " ..."
        return out

    async def replace(self, document_id: uuid.UUID, new_chunks: Sequence[Chunk]) -> None:
        index = KeywordIndex(self.session)
        before = await index.counts(document_id)
        await self.session.execute(delete(chunks).where(chunks.c.document_id == document_id))
        if not new_chunks:
            await index.apply(document_id, before)
            return
        await self.session.execute(
            insert(chunks),
            [
                {
                    "document_id": document_id,
                    "position": c.position,
                    "text": c.text,
                    "heading": c.heading,
                    "context": c.context,
                    "article": c.legal.article,
                    "legal": legal_json(c.legal),
                    "token_count": c.token_count,
                    "page_start": c.page_start,
                    "page_end": c.page_end,
                    "model_name": c.model_name,
                    "embedding_dim": c.embedding_dim,
                    "embedding": c.embedding,
                }
                for c in new_chunks
            ],
        )
        await index.post(document_id)
        await index.apply(document_id, before)

    async def drafts(self, document_id: uuid.UUID) -> list[ChunkDraft]:
        """The stored chunk set as drafts, in order: what re-embedding embeds again."""
        rows = await self.session.execute(
            select(
                chunks.c.position,
                chunks.c.text,
                chunks.c.token_count,
                chunks.c.heading,
                chunks.c.page_start,
                chunks.c.page_end,
                chunks.c.context,
                chunks.c.article,
                chunks.c.legal,
            )
            .where(chunks.c.document_id == document_id)
            .order_by(chunks.c.position)
        )
        return [
            ChunkDraft(
                position=r.position,
                text=r.text,
                token_count=r.token_count,
                heading=r.heading,
                page_start=r.page_start,
                page_end=r.page_end,
                context=r.context,
                legal=legal_ref(r.article, r.legal),
            )
            for r in rows
        ]

    async def set_vectors(
        self,
        document_id: uuid.UUID,
        vectors: Sequence[tuple[int, Sequence[float]]],
        model_name: str,
    ) -> int:
        """New vectors for the chunks at these positions, of `model_name`, in the caller's
        transaction (the text, its keyword statistics and the chunk ids stay). Returns
        how many chunks were changed."""
        if not vectors:
            return 0
        result = await self.session.execute(
            text(
                """
                UPDATE ai.chunks AS c
                SET embedding = CAST(v.embedding AS vector),
                    embedding_dim = v.dim,
                    model_name = :model
                FROM unnest(CAST(:positions AS int[]), CAST(:embeddings AS text[]),
                            CAST(:dims AS int[])) AS v(position, embedding, dim)
                WHERE c.document_id = :document_id AND c.position = v.position
                """
            ),
            {
                "document_id": document_id,
                "model": model_name,
                "positions": [p for p, _ in vectors],
                "embeddings": [
                    "[" + ",".join(f"{float(x):.7g}" for x in v) + "]" for _, v in vectors
                ],
                "dims": [len(v) for _, v in vectors],
            },
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def of_document(
        self, document_id: uuid.UUID, after_position: int, limit: int
    ) -> list[SearchHit]:
        sql = text(
            f"""
            SELECT {_HIT_COLUMNS}
            FROM ai.chunks c JOIN ai.documents d ON d.id = c.document_id
            WHERE c.document_id = :document_id AND c.position > :after
            ORDER BY c.position
            LIMIT :limit
            """  # noqa: S608 - fixed columns; values are bound
        )
        rows = await self.session.execute(
            sql, {"document_id": document_id, "after": after_position, "limit": limit}
        )
        return [_hit(r, 0.0) for r in rows]

    async def count(self, document_id: uuid.UUID) -> int:
        return int(
            (
                await self.session.execute(
                    select(func.count())
                    .select_from(chunks)
                    .where(chunks.c.document_id == document_id)
                )
            ).scalar_one()
        )

    async def present_models(self) -> list[tuple[str, int]]:
        """The (model, dimension) pairs stored chunks belong to, read from the index on
        them one distinct value at a time (a loose index scan: a few lookups, not a
        scan of every chunk)."""
        rows = await self.session.execute(
            text(
                """
                WITH RECURSIVE present AS (
                    (SELECT model_name, embedding_dim FROM ai.chunks
                     ORDER BY model_name, embedding_dim LIMIT 1)
                    UNION ALL
                    SELECT n.model_name, n.embedding_dim
                    FROM present p, LATERAL (
                        SELECT model_name, embedding_dim FROM ai.chunks
                        WHERE (model_name, embedding_dim) > (p.model_name, p.embedding_dim)
                        ORDER BY model_name, embedding_dim LIMIT 1
                    ) n
                )
                SELECT model_name, embedding_dim FROM present
                """
            )
        )
        return [(str(name), int(dim)) for name, dim in rows]

    async def models(self) -> Mapping[tuple[str, int], int]:
        counts = await counters.read(self.session, "chunks")
        return {
            (name, int(dim)): n for key, n in counts.items() for dim, name in [key.split(":", 1)]
        }
