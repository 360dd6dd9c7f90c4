"""BM25 in PostgreSQL: statistics kept exact by the chunk transactions (replace, delete,
concurrent stores of a fleet), and the ranking BM25 promises."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres import chunks as chunk_repository
from adapters.postgres import keyword_index
from adapters.postgres.keyword_index import bm25_sql
from application.ports import UnitOfWorkFactory
from domain.model import Chunk, Document
from domain.search import SearchFilter
from tests.integration.test_search import document

MODEL = "test-model"
DIM = 384


def chunks(doc: Document, texts: list[str]) -> list[Chunk]:
    rng = np.random.default_rng(len(texts))
    return [
        Chunk(doc.id, i, t, len(t.split()), None, list(rng.normal(size=DIM)), MODEL, DIM)
        for i, t in enumerate(texts)
    ]


async def store(uow_factory: UnitOfWorkFactory, doc: Document, texts: list[str]) -> None:
    async with uow_factory() as uow:
        await uow.documents.add(doc, b"x")
        await uow.chunks.replace(doc.id, chunks(doc, texts))
        await uow.commit()


async def assert_statistics_exact(engine: AsyncEngine) -> None:
    """What the maintained tables say equals a recount from the chunks themselves."""
    async with engine.connect() as conn:
        stats = (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(chunks), 0), coalesce(sum(tokens), 0) "
                    "FROM ai.keyword_stats"
                )
            )
        ).one()
        truth = (
            await conn.execute(
                text(
                    "SELECT count(*), coalesce(sum((SELECT sum(coalesce(cardinality(u.positions), 1)) "
                    "FROM unnest(search_vector) u)), 0) FROM ai.chunks"
                )
            )
        ).one()
        assert tuple(stats) == tuple(truth)
        wrong = (
            await conn.execute(
                text(
                    """
                    WITH kept AS (SELECT term, sum(df) AS df FROM ai.keyword_terms GROUP BY term),
                    real AS (SELECT u.lexeme AS term, count(*) AS df
                             FROM ai.chunks c, unnest(c.search_vector) u GROUP BY u.lexeme)
                    SELECT count(*) FROM kept FULL JOIN real USING (term)
                    WHERE coalesce(kept.df, 0) <> coalesce(real.df, 0)
                    """
                )
            )
        ).scalar_one()
        assert wrong == 0
        postings = (
            await conn.execute(text("SELECT count(*) FROM ai.keyword_postings"))
        ).scalar_one()
        lexemes = (
            await conn.execute(text("SELECT count(*) FROM ai.chunks c, unnest(c.search_vector) u"))
        ).scalar_one()
        assert postings == lexemes


async def document_frequency(engine: AsyncEngine, term: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT coalesce(sum(df), 0) FROM ai.keyword_terms WHERE term = :t"),
                    {"t": term},
                )
            ).scalar_one()
        )


async def test_statistics_follow_replace_and_delete(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
) -> None:
    a, b, c = document("a.txt"), document("b.txt"), document("c.txt")
    await store(uow_factory, a, ["O servidor fará jus a férias.", "Férias de trinta dias."])
    await store(uow_factory, b, ["Licença para capacitação do servidor."])
    await store(uow_factory, c, ["Auxílio-transporte do servidor."])
    await assert_statistics_exact(clean_db)
    assert await document_frequency(clean_db, "fer") == 2  # "férias", folded and stemmed
    async with uow_factory() as uow:  # a new chunk set for a
        await uow.chunks.replace(a.id, chunks(a, ["Abono de permanência."]))
        await uow.commit()
    await assert_statistics_exact(clean_db)
    async with uow_factory() as uow:
        assert await uow.documents.delete(b.id)
        await uow.commit()
    await assert_statistics_exact(clean_db)
    assert await document_frequency(clean_db, "fer") == 0  # only a's old chunks held it


async def test_a_chunk_gets_its_terms_and_length_as_it_is_written_and_rewritten(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
) -> None:
    doc = document("a.txt")
    await store(uow_factory, doc, ["As férias do servidor, as férias do cargo."])
    count = """SELECT keyword_length, (SELECT sum(coalesce(cardinality(u.positions), 1))
               FROM unnest(search_vector) u), search_vector::text FROM ai.chunks"""
    async with clean_db.begin() as conn:
        length, recount, terms = (await conn.execute(text(count))).one()
        assert length == recount == 4  # férias twice, servidor, cargo (stop words out)
        assert "'fer':2,6" in terms  # folded, stemmed, where it stands
        # a rewritten text is indexed again by the same trigger
        await conn.execute(text("UPDATE ai.chunks SET text = 'Licença capacitação.'"))
        length, recount, terms = (await conn.execute(text(count))).one()
        assert length == recount == 2 and "fer" not in terms and "licenc" in terms


async def test_a_fleet_storing_at_once_neither_deadlocks_nor_miscounts(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
) -> None:
    words = ["servidor", "férias", "licença", "prazo", "recurso", "abono", "cargo", "posse"]
    docs = [document(f"d{i}.txt") for i in range(16)]

    async def one(i: int, doc: Document) -> None:
        texts = [" ".join(words[(i + k) % 8 : (i + k) % 8 + 4]) + f" termo{i}" for k in range(6)]
        await store(uow_factory, doc, texts)
        async with uow_factory() as uow:  # and replace it again, as a reprocess would
            await uow.chunks.replace(doc.id, chunks(doc, [*texts[:3], "servidor prazo"]))
            await uow.commit()

    await asyncio.wait_for(asyncio.gather(*(one(i, d) for i, d in enumerate(docs))), 120)
    await assert_statistics_exact(clean_db)


async def test_bm25_weighs_rare_terms_and_normalises_length(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
) -> None:
    common = "O servidor público do órgão exerce o cargo no serviço público federal."
    docs = {
        "rare.txt": ["O prazo para interposição de recurso administrativo é de dez dias."],
        "long.txt": [" ".join([common] * 12) + " Cabe recurso."],
        "common.txt": [common],
    }
    for name, texts in docs.items():
        await store(uow_factory, document(name), texts)
    for i in range(20):  # "servidor" becomes common in the corpus, "interposição" stays rare
        await store(uow_factory, document(f"filler{i}.txt"), [common + f" item {i}"])
    async with uow_factory() as uow:
        hits = await uow.chunks.search_by_keywords(
            "prazo recurso servidor", MODEL, SearchFilter(), 10
        )
    names = [h.filename for h in hits]
    assert names[0] == "rare.txt"  # two rarer terms beat one common term
    assert names.index("long.txt") < names.index("common.txt")  # holds "recurso"
    assert hits[0].score > hits[1].score > 0
    assert math.isclose(hits[0].coverage or 0, 2 / 3)
    async with uow_factory() as uow:
        every = await uow.chunks.search_by_keywords("servidor", MODEL, SearchFilter(), 50)
    assert len(every) == 22  # all but rare.txt


@pytest.mark.parametrize("few", [2000, 0], ids=["counted-few", "read-then-filtered-read"])
async def test_a_narrow_filter_never_starves_the_keyword_ranking(
    uow_factory: UnitOfWorkFactory,
    clean_db: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    few: int,
) -> None:
    # counted few: each filtered chunk looked up; otherwise the bounded read (here 8
    # postings) holds none of the filtered chunks, and the filtered read finds it
    monkeypatch.setattr(chunk_repository, "EXACT_KEYWORD_MAX", few)
    monkeypatch.setattr(chunk_repository, "FIRST_DEPTH", 8)
    monkeypatch.setattr(chunk_repository, "MAX_READ", 8)
    # 300 chunks that outrank everything else on "servidor", in another collection
    await store(uow_factory, document("many.txt"), ["servidor servidor servidor"] * 300)
    lone = document("lone.txt", collection="outra")
    await store(uow_factory, lone, ["Um texto longo que cita o servidor uma vez só, entre outras."])
    async with uow_factory() as uow:
        hits = await uow.chunks.search_by_keywords(
            "servidor", MODEL, SearchFilter(collection="outra"), 5
        )
    assert [h.document_id for h in hits] == [lone.id]


# BM25 computed from the chunks themselves, every chunk scored: what the bounded read
# must equal. Written apart from bm25_sql on purpose (no postings, no impact column).
EXACT_BM25 = text(
    f"""
    WITH q AS (SELECT DISTINCT u.lexeme AS term FROM unnest(to_tsvector('portuguese', translate(:text, :from, :to))) u),
    n AS (SELECT count(*)::float8 AS n FROM ai.chunks),
    tf AS (
        SELECT c.id, c.keyword_length AS len, u.lexeme AS term,
               coalesce(cardinality(u.positions), 1) AS tf
        FROM ai.chunks c, unnest(c.search_vector) u WHERE u.lexeme IN (SELECT term FROM q)
    ),
    df AS (SELECT term, count(*)::float8 AS df FROM tf GROUP BY term)
    SELECT tf.id, sum(ln(1 + (n.n - df.df + 0.5) / (df.df + 0.5)) * tf.tf * 2.2
                      / (tf.tf + 1.2 * (1 - 0.75 + 0.75 * tf.len / {keyword_index.BM25_AVGDL})))
           AS score
    FROM tf JOIN df USING (term) CROSS JOIN n
    GROUP BY tf.id ORDER BY score DESC, tf.id
    """
)


async def test_the_bounded_read_answers_exactly_what_scoring_every_chunk_answers(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
) -> None:
    # 240 chunks of a small vocabulary: common and rare words, repeated and in chunks
    # of every length, so term lists are long and impacts spread out
    rng = np.random.default_rng(7)
    vocab = [
        "servidor",
        "servidor",
        "servidor",
        "cargo",
        "cargo",
        "férias",
        "licença",
        "prazo",
        "recurso",
        "abono",
        "posse",
        "vencimento",
        "gratificação",
        "remoção",
    ]
    for doc in [document(f"d{i}.txt") for i in range(12)]:
        texts = [" ".join(rng.choice(vocab, size=int(rng.integers(1, 40)))) for _ in range(20)]
        await store(uow_factory, doc, texts)
    partial = text(bm25_sql(None).replace("{columns}", "c.id AS chunk_id"))
    every_match = text(keyword_index.bm25_every_match_sql("d.is_current"))
    proven = unproven = 0
    for query in [
        "servidor",
        "servidor cargo",
        "férias recurso servidor",
        "abono posse vencimento gratificação remoção",
        "prazo licença",
    ]:
        async with clean_db.connect() as conn:
            exact = list(await conn.execute(EXACT_BM25, keyword_index.bm25_params(query)))
        whole = {r.id: float(r.score) for r in exact}
        # the scan of every match (bench.scale's reference) is that ranking too
        async with clean_db.connect() as conn:
            scan = list(
                await conn.execute(
                    every_match, {**keyword_index.bm25_params(query), "k": len(exact)}
                )
            )
        assert [float(r.rank) for r in scan] == pytest.approx(
            [float(r.score) for r in exact], rel=1e-5
        ), query
        for limit in (1, 5, 20):
            async with uow_factory() as uow:  # the whole index fits the read: exact
                hits = await uow.chunks.search_by_keywords(query, None, SearchFilter(), limit)
            assert len(hits) == min(limit, len(exact)), query
            # the same scores, in order (equal scores may come in either order)
            assert [h.score for h in hits] == pytest.approx(
                [float(r.score) for r in exact[:limit]], rel=1e-5
            ), query
            kth = float(exact[len(hits) - 1].score)
            assert {r.id for r in exact if float(r.score) > kth + 1e-6} <= {
                h.chunk_id for h in hits
            }
            # a read of 2 postings a term, whole lists while 40 postings last, 4 lookups:
            # when `rest` says the answer is proven it is the exact top k; otherwise each
            # answered chunk still carries its whole score
            async with clean_db.connect() as conn:
                rows = list(
                    await conn.execute(
                        partial,
                        {
                            **keyword_index.bm25_params(query),
                            "k": limit,
                            "depth": 2,
                            "budget": 40,
                            "probes": 4,
                        },
                    )
                )
            found = [r for r in rows if r.chunk_id is not None]
            assert [float(r.rank) for r in found] == pytest.approx(
                [whole[r.chunk_id] for r in found], rel=1e-5
            ), query
            rest = float(rows[0].rest)
            if rest == 0 or (len(found) == limit and float(found[-1].rank) >= rest):
                proven += 1
                assert [float(r.rank) for r in found] == pytest.approx(
                    [float(r.score) for r in exact[:limit]], rel=1e-5
                ), query
            else:
                unproven += 1
    assert proven and unproven  # both cases were met


async def test_a_rare_word_is_answered_without_reading_a_common_words_postings(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
) -> None:
    await store(uow_factory, document("common0.txt"), ["servidor público número 0"] * 20)
    # the documents' statistics taken while there was one (as autovacuum may leave them
    # on a young table): with them a plan walked every term's best postings again for
    # each document (192 postings read on a CI run), until those reads were materialized
    async with clean_db.begin() as conn:
        await conn.execute(text("ANALYZE ai.documents"))
    for i in range(1, 30):
        await store(uow_factory, document(f"common{i}.txt"), [f"servidor público número {i}"] * 20)
    both = document("both.txt")
    await store(uow_factory, both, ["O servidor tem prazo de recurso de dez dias."])
    rare_only = document("rare.txt")
    await store(uow_factory, rare_only, ["O prazo de recurso é de dez dias corridos."])  # as long
    # the postings' statistics of these rows, as autovacuum keeps them: the plan is
    # judged on this data, not on what earlier tests left before the truncate (with
    # those, PostgreSQL once looked the missing terms up through the impact index)
    async with clean_db.begin() as conn:
        await conn.execute(text("ANALYZE ai.keyword_postings"))
    async with uow_factory() as uow:  # 602 chunks hold "servidor", 2 "recurso"
        hits = await uow.chunks.search_by_keywords("servidor recurso", None, SearchFilter(), 2)
        plan = await uow.session.execute(  # type: ignore[attr-defined]
            text(
                "EXPLAIN (ANALYZE, FORMAT JSON) "
                + keyword_index.bm25_sql("d.is_current").replace("{columns}", "c.id AS chunk_id")
            ),
            {
                **keyword_index.bm25_params("servidor recurso"),
                "k": 2,
                "depth": 4,
                "budget": 4,
                "probes": 8,
            },
        )
    assert [h.filename for h in hits] == ["both.txt", "rare.txt"]
    assert hits[0].coverage == 1.0
    assert hits[1].coverage == 0.5
    # at most four postings of each term were read (the index, best first), not 602:
    # "recurso" whole (2), the best 4 of "servidor", and the fifth of "servidor" for
    # the bound of what it was not read for ("recurso", read whole, is not walked again)
    tree = plan.scalar_one()[0]["Plan"]
    read = [
        node["Actual Rows"] * node["Actual Loops"]
        for node in walk(tree)
        if node.get("Index Name") == "ix_keyword_postings_term_impact"
    ]
    assert read and sum(read) <= 2 + 4 + 5, json.dumps(tree, indent=1)


def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("Plans", []):
        out.extend(walk(child))
    return out
