"""Okapi BM25 over PostgreSQL: postings, document frequencies and corpus statistics
kept in the same transaction as the chunks they describe.

Why not ``ts_rank_cd``: it knows neither how rare a term is in the corpus nor how long
a chunk is against the average, and measured on real laws it ranked the answering
article below chunks that merely repeat a common word (bench/retrieval.py).

- Terms are the lexemes of the chunk's ``search_vector`` (Portuguese stemming, stop
  words dropped, accents folded), so the query side and the index side agree.
- ``keyword_postings(term, chunk_id, document_id, tf, impact)``: one row per term of a
  chunk, with its share of a BM25 score before the term's idf (``impact``, from tf and
  the chunk's length) and the chunk's document (for filters), indexed by
  ``(term, impact DESC)``: a query reads its rarest terms' postings whole and the best
  of the others within a budget (``bm25_sql``), so its cost does not grow with how
  many chunks hold a word.
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
# The length a chunk is normalised against. BM25 uses the corpus' average; here it is
# fixed, so each posting's share of the score (its impact) is known when it is written
# and postings can be indexed in impact order. The chunker bounds chunk sizes and the
# context it adds (heading, the norm's ementa), so the average is a property of the
# chunker more than of the corpus: 92.3 lexemes over the 7,609 indexed chunks of the
# development laws. Stored impacts depend on these three numbers: changing one is a
# migration that recomputes them (see 0010).
BM25_AVGDL = 92.0
# One read per query: the rarest terms' postings whole while MAX_READ postings last
# (a chunk holding any of them is seen), then the best FIRST_DEPTH of every other term.
# Of the chunks seen, at most PROBES_PER_HIT x k (at least MIN_PROBES) get their
# missing terms looked up, the most promising first.
FIRST_DEPTH = 256
MAX_READ = 30_000
PROBES_PER_HIT = 8
MIN_PROBES = 256
IMPACT_SQL = (
    f"(tf * {BM25_K1 + 1} / (tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * length / {BM25_AVGDL})))"
)


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
_POSTINGS = text(
    f"""
    INSERT INTO ai.keyword_postings (term, chunk_id, document_id, tf, impact)
    SELECT term, chunk_id, document_id, tf, {IMPACT_SQL}
    FROM (
        SELECT u.lexeme AS term, c.id AS chunk_id, c.document_id,
               coalesce(cardinality(u.positions), 1) AS tf, c.keyword_length AS length
        FROM ai.chunks c, unnest(c.search_vector) AS u
        WHERE c.document_id = :document_id
    ) AS p
    """  # noqa: S608 - fixed constants
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
        """Postings of the document's (just inserted) chunks; their terms and lengths
        were written with them (the trigger ai.chunk_terms)."""
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


# the query's lexemes (q), the corpus size (stats) and each known term's idf and
# document frequency (f): the head of both statements below
_QUERY_TERMS = f"""q AS (
        SELECT DISTINCT u.lexeme AS term
        FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', translate(:text, :from, :to))) AS u
    ),
    stats AS (
        SELECT greatest(coalesce(sum(chunks), 0), 1)::float8 AS n FROM ai.keyword_stats
    ),
    f AS (
        SELECT q.term, ln(1 + (stats.n - f.df + 0.5) / (f.df + 0.5)) AS idf, f.df
        FROM q CROSS JOIN stats
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(t.df), 0)::float8 AS df
            FROM ai.keyword_terms t WHERE t.term = q.term
        ) AS f
        WHERE f.df > 0
    ),
"""  # noqa: S608 - a fixed constant


def bm25_sql(keep: str | None, of_chunks: bool = False, narrow: str | None = None) -> str:
    """The best ``:k`` chunks by BM25 for the query's lexemes (any of them), read from
    each term's postings in impact order: the rarest terms whole while ``:budget``
    postings last, what is left to the next one, at least ``:depth`` of every term.

    Threshold algorithm with candidate pruning (Fagin's TA and NRA over impact-ordered
    lists): a chunk's BM25 score is the sum of ``idf * impact`` over the query terms it
    holds, so a chunk none of whose postings was among those read of any term
    can score at most the sum over terms of ``idf *`` the last impact read (nothing for
    a list read to its end). The chunks seen get partial scores and are ranked by what
    they could still reach (their partial score plus the bounds of the terms they were
    not seen in); the ``probes`` most promising get their missing terms from the
    postings' primary key (those that cannot reach the k-th best partial score rank
    last, and when looked up cannot enter the answer). ``rest`` is the most any chunk not in
    the answer can score (never seen, or seen and not looked up): when the k-th score
    is at least ``rest`` the answer is exactly BM25's top k. Work is bounded by
    ``budget``, ``depth`` and ``probes``, not by how many chunks hold a word.

    ``keep``: the filter (a WHERE over ``d`` documents, and over ``c`` chunks when
    ``of_chunks``) applied to the postings read, before the k best are chosen; None
    when nothing is filtered. ``narrow``: the filter's clauses over documents, applied
    while each list is read instead (the postings read are then the filtered chunks'
    own, so the answer is never starved, at the cost of walking past the others).
    Every answer has at least one row: ``rest`` and ``terms`` with no hit when none.
    """
    # a narrow filter (its clauses over documents) is applied while each term's list
    # is read, so the postings read are the filtered chunks' own: it never starves
    docs = ""
    if narrow:
        docs = f"docs AS MATERIALIZED (SELECT d.id FROM ai.documents d WHERE {narrow}),"  # noqa: S608 - fixed clauses
    only = "AND p.document_id IN (SELECT id FROM docs)" if narrow else ""
    filtered = ""
    if keep is not None:
        chunks = "JOIN ai.chunks c ON c.id = h.chunk_id " if of_chunks else ""
        filtered = f"JOIN ai.documents d ON d.id = h.document_id {chunks}WHERE {keep}"
    return f"""
    WITH {_QUERY_TERMS}
    {docs}
    d AS (
        -- how deep each term is read: the rarest terms whole while `budget` postings
        -- last (a chunk holding any of them is seen), what is left to the next one,
        -- and at least `depth` of every term (its best postings)
        SELECT f.*, greatest(:depth, least(f.df, :budget - coalesce(sum(f.df) OVER (
                   ORDER BY f.df, f.term ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
               ), 0)))::bigint AS depth
        FROM f
    ),
    w AS MATERIALIZED (
        -- each term's idf and depth, and the most one of its postings not read can
        -- add: the impact of the first posting past its depth (nothing when none; a
        -- list read whole is not walked again to find that out: its df, kept in the
        -- postings' own transactions, is its length)
        SELECT d.term, d.idf, d.depth, CASE WHEN d.depth >= d.df THEN 0 ELSE d.idf * coalesce(
                   (SELECT p.impact FROM ai.keyword_postings p WHERE p.term = d.term {only}
                    ORDER BY p.impact DESC OFFSET d.depth LIMIT 1), 0) END AS bound
        FROM d
    ),
    total AS (SELECT coalesce(sum(bound), 0) AS bound FROM w),
    heads AS MATERIALIZED (
        -- each term's highest-impact postings: an index range, best first, read once
        -- (materialized: inlined, a plan may put the filter's documents outside it and
        -- walk every term's range again for each document row)
        SELECT w.term, w.idf, w.bound, h.chunk_id, h.document_id, h.impact
        FROM w CROSS JOIN LATERAL (
            SELECT p.chunk_id, p.document_id, p.impact FROM ai.keyword_postings p
            WHERE p.term = w.term {only} ORDER BY p.impact DESC LIMIT w.depth
        ) AS h
    ),
    seen AS (
        SELECT h.chunk_id, sum(h.idf * h.impact) AS score, sum(h.bound) AS seen_bound,
               array_agg(h.term) AS terms
        FROM heads h {filtered}
        GROUP BY h.chunk_id
    ),
    survivors AS MATERIALIZED (
        -- what each chunk seen could still reach (the bounds of the terms it was not
        -- seen in), the most promising first: the first `probes` are looked up, the
        -- next one bounds what the others can score. One ranking pass, no pruning
        -- pass: a chunk that cannot reach the k-th best seen score ranks below every
        -- chunk that can, and if it is looked up it cannot enter the answer
        SELECT s.*, s.score + total.bound - s.seen_bound AS upper
        FROM seen s CROSS JOIN total
        ORDER BY upper DESC, s.score DESC, s.chunk_id
        LIMIT CAST(:probes AS bigint) + 1
    ),
    probed AS (
        SELECT * FROM survivors ORDER BY upper DESC, score DESC, chunk_id LIMIT :probes
    ),
    scored AS (
        -- the terms a survivor was not seen in, from the primary key (term, chunk)
        SELECT s.chunk_id, s.score + coalesce(sum(b.idf * p.impact), 0) AS score,
               cardinality(s.terms) + count(p.chunk_id) AS matched
        FROM probed s
        LEFT JOIN w b ON b.bound > 0 AND b.term <> ALL (s.terms)
        LEFT JOIN ai.keyword_postings p ON p.term = b.term AND p.chunk_id = s.chunk_id
        GROUP BY s.chunk_id, s.score, s.terms
        ORDER BY score DESC, s.chunk_id
        LIMIT :k
    ),
    summary AS (
        -- the most a chunk not in the answer can score: one never seen, or one seen
        -- but not looked up
        SELECT greatest(
                   total.bound,
                   (SELECT upper FROM survivors
                    ORDER BY upper DESC, score DESC, chunk_id OFFSET :probes LIMIT 1)
               ) AS rest,
               (SELECT count(*) FROM q) AS terms
        FROM total
    )
    SELECT summary.rest, summary.terms, hit.*
    FROM summary LEFT JOIN LATERAL (
        SELECT {{columns}}, s.score AS rank, s.matched
        FROM scored s JOIN ai.chunks c ON c.id = s.chunk_id
        JOIN ai.documents d ON d.id = c.document_id
    ) AS hit ON TRUE
    ORDER BY hit.rank DESC NULLS LAST, hit.chunk_id
    """  # noqa: S608 - fixed clauses; values are bound


def bm25_params(text_query: str) -> dict[str, Any]:
    return {
        "text": text_query,
        "from": UNACCENT_FROM,
        "to": UNACCENT_TO,
    }


def bm25_among_sql(keep: str) -> str:
    """BM25's exact top ``:k`` among the chunks a filter keeps (``keep``, a WHERE over
    ``c`` chunks and ``d`` documents), each looked up by the postings' primary key for
    each query term: for a filter known to keep few chunks. Same row shape as
    ``bm25_sql`` (``rest`` is 0: the answer is exact)."""
    return f"""
    WITH {_QUERY_TERMS}
    w AS MATERIALIZED (SELECT term, idf FROM f),
    kept AS MATERIALIZED (
        SELECT c.id FROM ai.chunks c JOIN ai.documents d ON d.id = c.document_id WHERE {keep}
    ),
    scored AS (
        SELECT k.id AS chunk_id, sum(w.idf * p.impact) AS score, count(*) AS matched
        FROM kept k CROSS JOIN w
        CROSS JOIN LATERAL (
            SELECT p.impact FROM ai.keyword_postings p
            WHERE p.term = w.term AND p.chunk_id = k.id
        ) AS p
        GROUP BY k.id
        ORDER BY score DESC, k.id
        LIMIT :k
    )
    SELECT 0::float8 AS rest, (SELECT count(*) FROM q) AS terms, hit.*
    FROM (SELECT 1) AS one LEFT JOIN LATERAL (
        SELECT {{columns}}, s.score AS rank, s.matched
        FROM scored s JOIN ai.chunks c ON c.id = s.chunk_id
        JOIN ai.documents d ON d.id = c.document_id
    ) AS hit ON TRUE
    ORDER BY hit.rank DESC NULLS LAST, hit.chunk_id
    """  # noqa: S608 - fixed clauses; values are bound


def bm25_every_match_sql(keep: str) -> str:
    """BM25's exact top ``:k`` by a scan of every posting of the query's terms among
    the chunks ``keep`` (a WHERE over ``d`` documents) keeps: what the bounded read
    avoids, and the reference it is measured against (bench/scale.py). Rows: chunk_id,
    rank."""
    return f"""
    WITH {_QUERY_TERMS}
    scored AS (
        SELECT p.chunk_id, sum(f.idf * p.impact) AS rank
        FROM f JOIN ai.keyword_postings p ON p.term = f.term
        JOIN ai.documents d ON d.id = p.document_id
        WHERE {keep}
        GROUP BY p.chunk_id
    )
    SELECT chunk_id, rank FROM scored ORDER BY rank DESC, chunk_id LIMIT :k
    """  # noqa: S608 - fixed clauses; values are bound
