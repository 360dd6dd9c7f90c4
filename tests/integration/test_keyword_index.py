"""BM25 in PostgreSQL: statistics kept exact by the chunk transactions (replace, delete,
concurrent stores of a fleet), and the ranking BM25 promises."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres import keyword_index
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


async def test_a_narrow_filter_never_starves_the_keyword_ranking(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
) -> None:
    # 300 chunks that outrank everything else on "servidor", in another collection
    await store(uow_factory, document("many.txt"), ["servidor servidor servidor"] * 300)
    lone = document("lone.txt", collection="outra")
    await store(uow_factory, lone, ["Um texto longo que cita o servidor uma vez só, entre outras."])
    async with uow_factory() as uow:
        hits = await uow.chunks.search_by_keywords(
            "servidor", MODEL, SearchFilter(collection="outra"), 5
        )
    assert [h.document_id for h in hits] == [lone.id]


async def test_common_terms_seed_no_candidates_but_still_score_them(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(30):
        await store(uow_factory, document(f"common{i}.txt"), [f"servidor público número {i}"])
    both = document("both.txt")
    await store(uow_factory, both, ["O servidor tem prazo de recurso de dez dias."])
    rare_only = document("rare.txt")
    await store(uow_factory, rare_only, ["O prazo de recurso é de dez dias."])

    async def ranked() -> list[tuple[str, float]]:
        async with uow_factory() as uow:
            hits = await uow.chunks.search_by_keywords(
                "servidor recurso", MODEL, SearchFilter(), 50
            )
        return [(h.filename, h.score) for h in hits]

    exact = await ranked()  # 32 chunks: no term is common under the default thresholds
    assert len(exact) == 32
    monkeypatch.setattr(keyword_index, "COMMON_MIN_DF", 5)
    monkeypatch.setattr(keyword_index, "COMMON_SHARE", 0.5)  # "servidor" is in 31 of 32
    pruned = await ranked()
    assert [name for name, _ in pruned] == ["both.txt", "rare.txt"]
    # the candidates keep their exact scores, the common term's share included
    assert dict(pruned) == pytest.approx({name: s for name, s in exact if name in dict(pruned)})
    async with uow_factory() as uow:  # a query of common terms only still answers
        alone = await uow.chunks.search_by_keywords("servidor", MODEL, SearchFilter(), 50)
    assert len(alone) == 31
