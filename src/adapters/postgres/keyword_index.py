"""Okapi BM25 over PostgreSQL: postings, document frequencies and corpus statistics
kept in the same transaction as the chunks they describe.

Why not ``ts_rank_cd``: it knows neither how rare a term is in the corpus nor how long
a chunk is against the average, and measured on real laws it ranked the answering
article below chunks that merely repeat a common word (bench/retrieval.py).

- Terms are the lexemes of the chunk's ``search_vector`` (Portuguese stemming, stop
  words dropped, accents folded), so the query side and the index side agree.
- ``keyword_postings(term, chunk_id, tf, length)``: one row per term of a chunk, with
  the chunk's length copied in, so a query scores from the postings alone.
- ``keyword_terms(term, shard, df)`` and ``keyword_stats(shard, chunks, tokens)``:
  document frequencies and corpus size, updated by net deltas in term order (one
  lock order: no deadlocks), split in shards by document so concurrent stores of
  different documents rarely meet on a row; a query sums the shards.
- A deleted chunk takes its postings with it (ON DELETE CASCADE); the statistics get
  the net change of the transaction (``counts`` before, ``apply`` after).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.orm import KEYWORD_SHARDS, TEXT_SEARCH_CONFIG, UNACCENT_FROM, UNACCENT_TO

BM25_K1 = 1.2
BM25_B = 0.75
# a term held by more chunks than both of these seeds no candidates (see bm25_sql);
# below 10,000 chunks no term is that common, so small indexes rank exactly
COMMON_SHARE = 0.05
COMMON_MIN_DF = 10_000


def shard_of(document_id: uuid.UUID) -> int:
    return document_id.int % KEYWORD_SHARDS


_DOC_TERMS = text(
    """
    SELECT p.term, count(*) AS n
    FROM ai.keyword_postings p JOIN ai.chunks c ON c.id = p.chunk_id
    WHERE c.document_id = :document_id
    GROUP BY p.term
    """
)
_DOC_STATS = text(
    """
    SELECT count(*) AS chunks, coalesce(sum(keyword_length), 0) AS tokens
    FROM ai.chunks WHERE document_id = :document_id
    """
)
# one pass over the terms, in term order, then the corpus row: every transaction
# takes its locks in the same order, so stores and deletions never deadlock
_APPLY_DF = text(
    """
    INSERT INTO ai.keyword_terms AS t (term, shard, df)
    SELECT d.term, :shard, d.n FROM unnest(CAST(:terms AS text[]), CAST(:deltas AS bigint[]))
        AS d(term, n)
    ORDER BY d.term
    ON CONFLICT (term, shard) DO UPDATE SET df = t.df + excluded.df
    """
)
_APPLY_STATS = text(
    """
    INSERT INTO ai.keyword_stats AS s (shard, chunks, tokens)
    VALUES (:shard, :chunks, :tokens)
    ON CONFLICT (shard) DO UPDATE
    SET chunks = s.chunks + excluded.chunks, tokens = s.tokens + excluded.tokens
    """
)
_LENGTHS = text(
    """
    UPDATE ai.chunks SET keyword_length = coalesce(
        (SELECT sum(coalesce(cardinality(u.positions), 1)) FROM unnest(search_vector) AS u), 0)
    WHERE document_id = :document_id
    """
)
_POSTINGS = text(
    """
    INSERT INTO ai.keyword_postings (term, chunk_id, tf, length)
    SELECT u.lexeme, c.id, coalesce(cardinality(u.positions), 1), c.keyword_length
    FROM ai.chunks c, unnest(c.search_vector) AS u
    WHERE c.document_id = :document_id
    """
)


@dataclass(frozen=True)
class _Counts:
    terms: dict[str, int]
    chunks: int
    tokens: int


class KeywordIndex:
    """BM25 statistics of one document's chunks, inside the caller's transaction.

    Usage: ``before = await index.counts(doc)``; change the chunks (deleting them takes
    their postings); ``await index.post(doc)`` for new chunks; then
    ``await index.apply(doc, before)`` writes the net change of the statistics.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def counts(self, document_id: uuid.UUID) -> _Counts:
        params = {"document_id": document_id}
        terms = {r.term: int(r.n) for r in await self.session.execute(_DOC_TERMS, params)}
        row = (await self.session.execute(_DOC_STATS, params)).one()
        return _Counts(terms, int(row.chunks), int(row.tokens))

    async def post(self, document_id: uuid.UUID) -> None:
        """Lengths and postings of the document's (just inserted) chunks."""
        await self.session.execute(_LENGTHS, {"document_id": document_id})
        await self.session.execute(_POSTINGS, {"document_id": document_id})

    async def apply(self, document_id: uuid.UUID, before: _Counts) -> None:
        after = await self.counts(document_id)
        deltas = {
            term: after.terms.get(term, 0) - before.terms.get(term, 0)
            for term in before.terms.keys() | after.terms.keys()
        }
        changed = sorted((t, n) for t, n in deltas.items() if n)
        shard = shard_of(document_id)
        if changed:
            await self.session.execute(
                _APPLY_DF,
                {
                    "shard": shard,
                    "terms": [t for t, _ in changed],
                    "deltas": [n for _, n in changed],
                },
            )
        if after.chunks != before.chunks or after.tokens != before.tokens:
            await self.session.execute(
                _APPLY_STATS,
                {
                    "shard": shard,
                    "chunks": after.chunks - before.chunks,
                    "tokens": after.tokens - before.tokens,
                },
            )


def bm25_sql(where: str, narrowed: bool) -> str:
    """Chunks ranked by BM25 for the query's lexemes (any of them), best first.

    Candidates are the chunks holding one of the query's terms, except that a very
    common term (in more than COMMON_SHARE of the chunks and more than COMMON_MIN_DF)
    does not bring candidates of its own while rarer terms do: its postings are read
    only for the candidates, so a large index never scores every chunk that holds
    "servidor". Each candidate gets its full BM25 score; the best `candidates` go on.
    Under a filter, candidates are first restricted to the filtered chunks, so a
    narrow filter never starves the answer.
    """
    restrict = ""
    if narrowed:
        restrict = (
            "AND p.chunk_id IN (SELECT c.id FROM ai.chunks c "  # noqa: S608 - fixed clauses
            f"JOIN ai.documents d ON d.id = c.document_id WHERE {where})"
        )
    return f"""
    WITH q AS (
        SELECT DISTINCT u.lexeme AS term
        FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', translate(:text, :from, :to))) AS u
    ),
    stats AS (
        SELECT greatest(coalesce(sum(chunks), 0), 1)::float8 AS n,
               greatest(coalesce(sum(tokens), 0), 1)::float8
                   / greatest(coalesce(sum(chunks), 0), 1) AS avglen
        FROM ai.keyword_stats
    ),
    w AS (
        SELECT q.term, f.df,
               ln(1 + (stats.n - f.df + 0.5) / (f.df + 0.5)) AS idf,
               f.df > greatest(:common_min_df, stats.n * :common_share) AS common
        FROM q CROSS JOIN stats
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(t.df), 0)::float8 AS df
            FROM ai.keyword_terms t WHERE t.term = q.term
        ) AS f
        WHERE f.df > 0
    ),
    seeds AS (
        -- candidates come from the query's rarer terms (from all of them when every
        -- term is common): one aggregate over their postings
        SELECT w.*, NOT w.common OR NOT EXISTS (SELECT 1 FROM w AS r WHERE NOT r.common)
                    AS seed
        FROM w
    ),
    seeded AS (
        SELECT p.chunk_id,
               sum(s.idf * p.tf * (:k1 + 1)
                   / (p.tf + :k1 * (1 - :b + :b * p.length / stats.avglen))) AS score,
               count(*) AS matched
        FROM seeds s JOIN ai.keyword_postings p ON p.term = s.term CROSS JOIN stats
        WHERE s.seed {restrict}
        GROUP BY p.chunk_id
    ),
    topped AS (
        -- a very common term's postings are read only for those candidates, by index
        SELECT c.chunk_id,
               sum(s.idf * p.tf * (:k1 + 1)
                   / (p.tf + :k1 * (1 - :b + :b * p.length / stats.avglen))) AS score,
               count(*) AS matched
        FROM seeded c JOIN seeds s ON NOT s.seed
        JOIN ai.keyword_postings p ON p.term = s.term AND p.chunk_id = c.chunk_id
        CROSS JOIN stats
        GROUP BY c.chunk_id
    ),
    scored AS (
        SELECT c.chunk_id, c.score + coalesce(t.score, 0) AS score,
               c.matched + coalesce(t.matched, 0) AS matched
        FROM seeded c LEFT JOIN topped t ON t.chunk_id = c.chunk_id
        ORDER BY score DESC, c.chunk_id
        LIMIT :candidates
    )
    SELECT {{columns}}, s.score AS rank, s.matched, (SELECT count(*) FROM q) AS terms,
           (SELECT count(*) FROM scored) AS scored
    FROM scored s JOIN ai.chunks c ON c.id = s.chunk_id
    JOIN ai.documents d ON d.id = c.document_id
    WHERE {where}
    ORDER BY s.score DESC, c.id
    LIMIT :limit
    """  # noqa: S608 - fixed clauses; values are bound


def bm25_params(text_query: str) -> dict[str, Any]:
    return {
        "text": text_query,
        "from": UNACCENT_FROM,
        "to": UNACCENT_TO,
        "k1": BM25_K1,
        "b": BM25_B,
        "common_share": COMMON_SHARE,
        "common_min_df": COMMON_MIN_DF,
    }
