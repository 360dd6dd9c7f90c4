"""SearchChunks and reciprocal rank fusion, over in-memory fakes."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from application.use_cases.search import Expand, SearchChunks, SearchChunksHandler
from domain.errors import EmbeddingUnavailable, InvalidInput
from domain.model import Chunk, Document, DocumentType, LegalRef
from domain.search import SearchFilter, SearchHit, SearchMode, fuse, interleave, keyword_terms
from tests.unit.fakes import FakeEmbedder, FakeUnitOfWork, Store


def hit(chunk_id: int) -> SearchHit:
    return SearchHit(chunk_id, uuid.uuid4(), "f", "c", 0, None, "t", None, None, 0.0)


class TestFusion:
    def test_a_chunk_found_by_both_lists_beats_one_found_by_one(self) -> None:
        fused = fuse([hit(1), hit(2), hit(3)], [hit(3), hit(4)])
        assert [h.chunk_id for h in fused] == [3, 1, 2, 4]  # 2 and 4 tie: vector order first
        top = fused[0]
        assert (top.vector_rank, top.keyword_rank) == (3, 1)
        assert top.score == pytest.approx(1 / 63 + 1 / 61)

    def test_equal_scores_keep_the_vector_order(self) -> None:
        fused = fuse([hit(1), hit(2)], [hit(2), hit(1)])
        assert [h.chunk_id for h in fused] == [1, 2]

    def test_one_empty_list_leaves_the_other_order(self) -> None:
        assert [h.chunk_id for h in fuse([], [hit(7), hit(8)])] == [7, 8]

    def test_lists_of_two_models_interleave_rank_by_rank(self) -> None:
        merged = interleave([[hit(1), hit(2), hit(3)], [hit(9), hit(2)]])
        assert [h.chunk_id for h in merged] == [1, 9, 2, 3]
        assert [h.vector_rank for h in merged] == [1, 2, 3, 4]


def store_with(*docs: tuple[str, str, list[str]]) -> Store:
    """docs: (collection, filename, chunk texts); vectors from the fake embedder."""
    store = Store()
    embedder = FakeEmbedder()
    for collection, filename, texts in docs:
        doc = Document(
            uuid.uuid4(),
            collection,
            filename,
            DocumentType.TEXT,
            1,
            uuid.uuid4().hex,
            {},
            datetime(2026, 1, 1, tzinfo=UTC),
            source_key=filename,
            is_current=True,  # indexed: its chunk set answers
            indexed_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        store.documents[doc.id] = doc
        store.chunks[doc.id] = [
            Chunk(doc.id, i, t, 1, None, embedder._vector(t), embedder.model_name, 4)
            for i, t in enumerate(texts)
        ]
    return store


class TestSearchChunks:
    async def test_keyword_mode_ranks_by_the_words_in_common(self) -> None:
        store = store_with(
            ("rh", "ferias.txt", ["ferias do servidor publico", "jornada semanal"]),
            ("rh", "auxilio.txt", ["auxilio transporte do servidor"]),
        )
        result = await SearchChunksHandler(FakeEmbedder())(
            SearchChunks("ferias servidor", mode=SearchMode.KEYWORD), FakeUnitOfWork(store)
        )
        assert [h.text for h in result.hits] == [
            "ferias do servidor publico",
            "auxilio transporte do servidor",
        ]

    async def test_hybrid_returns_top_k_in_reciprocal_rank_fusion_order(self) -> None:
        # vector order A, B, C, D (by construction); keyword order C, D (only they hold
        # the words); RRF (k=60): C 1/63+1/61, D 1/64+1/62, A 1/61, B 1/62
        texts = ["alfa", "beta", "gama servidor ferias", "delta servidor ferias"]
        direction = {
            "alfa": [1.0, 0.0, 0.0, 0.0],
            "beta": [0.8, 0.6, 0.0, 0.0],
            "gama servidor ferias": [0.6, 0.8, 0.0, 0.0],
            "delta servidor ferias": [0.0, 1.0, 0.0, 0.0],
        }

        class Placed(FakeEmbedder):
            def _vector(self, text: str) -> list[float]:
                return direction.get(text, [1.0, 0.0, 0.0, 0.0])  # the query: towards alfa

        store = store_with(("rh", "a.txt", texts))
        embedder = Placed()
        for chunks in store.chunks.values():
            chunks[:] = [replace(c, embedding=embedder._vector(c.text)) for c in chunks]
        result = await SearchChunksHandler(embedder)(
            SearchChunks("servidor ferias", top_k=3), FakeUnitOfWork(store)
        )
        assert result.mode is SearchMode.HYBRID
        assert [(h.text, h.vector_rank, h.keyword_rank) for h in result.hits] == [
            ("gama servidor ferias", 3, 1),
            ("delta servidor ferias", 4, 2),
            ("alfa", 1, None),
        ]
        assert result.hits[0].score == pytest.approx(1 / 63 + 1 / 61)
        assert result.hits[2].score == pytest.approx(1 / 61)

    async def test_hybrid_ignores_keyword_hits_holding_few_of_the_query_terms(self) -> None:
        store = store_with(("rh", "a.txt", ["alfa", "beta gama delta"]))

        class Backwards(FakeEmbedder):
            def _vector(self, text: str) -> list[float]:
                return [1.0, 0.0, 0.0, 0.0] if "alfa" in text else [0.0, 1.0, 0.0, 0.0]

        embedder = Backwards()
        for chunks in store.chunks.values():
            chunks[:] = [
                Chunk(
                    c.document_id,
                    c.position,
                    c.text,
                    1,
                    None,
                    embedder._vector(c.text),
                    "fake-embedder",
                    4,
                )
                for c in chunks
            ]
        # "alfa" is the semantic match; "beta gama delta" shares one word out of four
        result = await SearchChunksHandler(embedder)(
            SearchChunks("alfa beta x y", top_k=1), FakeUnitOfWork(store)
        )
        assert [h.text for h in result.hits] == ["alfa"]
        assert result.hits[0].keyword_rank is None  # one word of four: not counted

    async def test_filters_reach_the_repository(self) -> None:
        store = store_with(("rh", "a.txt", ["férias"]), ("outra", "b.txt", ["férias"]))
        result = await SearchChunksHandler(FakeEmbedder())(
            SearchChunks("férias", filter=SearchFilter(collection="outra")), FakeUnitOfWork(store)
        )
        assert [h.filename for h in result.hits] == ["b.txt"]

    async def test_vectors_of_another_model_are_never_compared_with_the_query(self) -> None:
        store = store_with(("rh", "a.txt", ["férias"]))
        for chunks in store.chunks.values():
            chunks[:] = [
                Chunk(c.document_id, c.position, c.text, 1, None, [1.0] * 8, "old", 8)
                for c in chunks
            ]
        handler = SearchChunksHandler(FakeEmbedder())
        vector = await handler(
            SearchChunks("férias", mode=SearchMode.VECTOR), FakeUnitOfWork(store)
        )
        assert vector.hits == []
        # words are words whatever the model: keyword search still finds the chunk
        keyword = await handler(
            SearchChunks("férias", mode=SearchMode.KEYWORD), FakeUnitOfWork(store)
        )
        assert [h.filename for h in keyword.hits] == ["a.txt"]

    async def test_the_previous_model_answers_for_its_chunks_until_reembedded(self) -> None:
        store = store_with(("rh", "a.txt", ["férias anuais"]), ("rh", "b.txt", ["licença"]))
        old = FakeEmbedder(name="old")
        a = next(d for d in store.documents.values() if d.filename == "a.txt")
        store.chunks[a.id] = [replace(c, model_name="old") for c in store.chunks[a.id]]
        handler = SearchChunksHandler(FakeEmbedder(), previous={"old": old})
        result = await handler(
            SearchChunks("férias", mode=SearchMode.VECTOR), FakeUnitOfWork(store)
        )
        # one list per model, interleaved rank by rank: the configured model's first
        assert [h.filename for h in result.hits] == ["b.txt", "a.txt"]
        assert [h.vector_rank for h in result.hits] == [1, 2]
        # once no chunk of the old model is left (after the cache's time), it is not asked
        store.chunks[a.id] = [replace(c, model_name="fake-embedder") for c in store.chunks[a.id]]
        handler.models_ttl_s = 0.0
        after = await handler(SearchChunks("férias", mode=SearchMode.VECTOR), FakeUnitOfWork(store))
        assert sorted(h.filename for h in after.hits) == ["a.txt", "b.txt"]
        assert handler._present is not None and "old" not in handler._present[1]

    @pytest.mark.parametrize(
        ("query", "top_k", "reason"),
        [
            ("   ", 10, "empty"),
            ("x" * 2001, 10, "longer than"),
            ("férias", 0, "top_k"),
            ("férias", 101, "top_k"),
        ],
    )
    async def test_bad_queries_are_refused_with_a_reason(
        self, query: str, top_k: int, reason: str
    ) -> None:
        with pytest.raises(InvalidInput, match=reason):
            await SearchChunksHandler(FakeEmbedder())(
                SearchChunks(query, top_k=top_k), FakeUnitOfWork(Store())
            )


class TestKeywordTerms:
    @pytest.mark.parametrize(
        ("question", "terms"),
        [
            ("Quanto ganho trabalhando de madrugada?", "ganho trabalhando de madrugada?"),
            ("Posso acumular férias?", "acumular férias?"),
            ("QUAIS são os prazos", "são os prazos"),
            ("como?", "como?"),  # nothing else left: keep the query as it is
        ],
    )
    def test_question_words_are_dropped_from_keyword_queries(
        self, question: str, terms: str
    ) -> None:
        assert keyword_terms(question) == terms


class TestExpandAndCitations:
    async def test_expand_article_joins_every_chunk_of_the_hits_article(self) -> None:
        store = store_with(("leis", "lei.docx", []))
        doc_id = next(iter(store.documents))
        store.documents[doc_id].metadata["norm"] = "Lei nº 8.112/1990"
        embedder = FakeEmbedder()
        parts = [
            ("77", None, "Art. 77. O servidor fará jus a trinta dias de férias"),
            ("77", "§ 3º", "§ 3º As férias poderão ser parceladas em até três etapas"),
            ("78", None, "Art. 78. O pagamento da remuneração das férias"),
        ]
        store.chunks[doc_id] = [
            Chunk(
                doc_id,
                i,
                t,
                1,
                None,
                embedder._vector(t),
                embedder.model_name,
                4,
                legal=LegalRef(article=a, paragraph=p),
            )
            for i, (a, p, t) in enumerate(parts)
        ]
        result = await SearchChunksHandler(embedder)(
            SearchChunks("parceladas etapas", mode=SearchMode.KEYWORD, expand=Expand.ARTICLE),
            FakeUnitOfWork(store),
        )
        top = result.hits[0]
        assert top.citation == "Lei nº 8.112/1990, art. 77, § 3º"
        assert top.expanded == f"{parts[0][2]}\n{parts[1][2]}"
        plain = await SearchChunksHandler(embedder)(
            SearchChunks("parceladas etapas", mode=SearchMode.KEYWORD), FakeUnitOfWork(store)
        )
        assert plain.hits[0].expanded is None


async def test_a_previous_model_that_is_down_leaves_the_configured_model_answering() -> None:
    store = store_with(("rh", "a.txt", ["férias anuais"]), ("rh", "b.txt", ["licença"]))
    a = next(d for d in store.documents.values() if d.filename == "a.txt")
    store.chunks[a.id] = [replace(c, model_name="old") for c in store.chunks[a.id]]
    down = FakeEmbedder(name="old")

    async def unavailable(text: str) -> list[float]:
        raise EmbeddingUnavailable("the old model's server does not answer")

    down.embed_query = unavailable  # type: ignore[method-assign]
    handler = SearchChunksHandler(FakeEmbedder(), previous={"old": down})
    result = await handler(SearchChunks("férias", mode=SearchMode.VECTOR), FakeUnitOfWork(store))
    assert [h.filename for h in result.hits] == ["b.txt"]


class Patched(FakeUnitOfWork):
    """A unit of work whose chunk reads named in `wraps` go through `wrap(own, *args)`."""

    def __init__(self, store: Store, **wraps: Any) -> None:
        super().__init__(store)
        self.wraps = wraps

    async def __aenter__(self) -> Patched:
        await super().__aenter__()
        for name, wrap in self.wraps.items():
            own = getattr(self.chunks, name)

            async def patched(*args: Any, wrap: Any = wrap, own: Any = own) -> list[SearchHit]:
                return cast(list[SearchHit], await wrap(own, *args))

            setattr(self.chunks, name, patched)
        return self


class TestQueryEmbeddingOverlapsTheKeywordRead:
    async def test_the_model_embeds_the_question_while_the_keyword_search_reads(self) -> None:
        # the embedder finishes only once the keyword search has started: run one after
        # the other, this search would never end
        store = store_with(("rh", "a.txt", ["ferias do servidor", "jornada semanal"]))
        reading = asyncio.Event()

        async def keywords(own: Any, *args: Any) -> list[SearchHit]:
            reading.set()
            return cast(list[SearchHit], await own(*args))

        class Waiting(FakeEmbedder):
            async def embed_query(self, text: str) -> list[float]:
                await reading.wait()
                return self._vector(text)

        result = await asyncio.wait_for(
            SearchChunksHandler(Waiting())(
                SearchChunks("ferias servidor"), Patched(store, search_by_keywords=keywords)
            ),
            timeout=5,
        )
        assert result.hits[0].text == "ferias do servidor"
        assert result.hits[0].vector_rank is not None and result.hits[0].keyword_rank == 1

    async def test_a_failed_keyword_search_abandons_the_embedding(self) -> None:
        store = store_with(("rh", "a.txt", ["ferias do servidor"]))
        started, abandoned = asyncio.Event(), asyncio.Event()

        async def broken(own: Any, *args: Any) -> list[SearchHit]:
            await started.wait()
            raise RuntimeError("the database went away")

        class Slow(FakeEmbedder):
            async def embed_query(self, text: str) -> list[float]:
                started.set()
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    abandoned.set()
                    raise
                return self._vector(text)

        with pytest.raises(RuntimeError, match="went away"):
            await asyncio.wait_for(
                SearchChunksHandler(Slow())(
                    SearchChunks("ferias servidor"), Patched(store, search_by_keywords=broken)
                ),
                timeout=5,
            )
        await asyncio.sleep(0)
        assert abandoned.is_set()


class TestSideReads:
    async def test_a_hybrid_search_reads_both_lists_at_once(self) -> None:
        # the keyword read ends only once the vector read has begun, and the other way
        # round: read one after the other, this search would never end
        store = store_with(("rh", "a.txt", ["ferias do servidor", "jornada semanal"]))
        began = {"vector": asyncio.Event(), "keyword": asyncio.Event()}

        def meeting(mine: str, other: str) -> Any:
            async def read(own: Any, *args: Any) -> list[SearchHit]:
                began[mine].set()
                await began[other].wait()
                return cast(list[SearchHit], await own(*args))

            return read

        side = {
            "search_by_vector": meeting("vector", "keyword"),
            "search_by_keywords": meeting("keyword", "vector"),
        }
        opened: list[Patched] = []

        def reads() -> Patched:
            opened.append(Patched(store, **side))
            return opened[-1]

        handler = SearchChunksHandler(FakeEmbedder(), side_reads=reads)
        result = await asyncio.wait_for(
            handler(SearchChunks("ferias servidor"), FakeUnitOfWork(store)), timeout=5
        )
        assert len(opened) == 2
        plain = await SearchChunksHandler(FakeEmbedder())(
            SearchChunks("ferias servidor"), FakeUnitOfWork(store)
        )
        assert [(h.text, h.vector_rank, h.keyword_rank) for h in result.hits] == [
            (h.text, h.vector_rank, h.keyword_rank) for h in plain.hits
        ]

    async def test_a_failed_side_read_fails_the_search_and_abandons_the_other(self) -> None:
        store = store_with(("rh", "a.txt", ["ferias do servidor"]))
        abandoned = asyncio.Event()

        async def broken(own: Any, *args: Any) -> list[SearchHit]:
            raise RuntimeError("the database went away")

        async def slow(own: Any, *args: Any) -> list[SearchHit]:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                abandoned.set()
                raise
            return cast(list[SearchHit], await own(*args))

        handler = SearchChunksHandler(
            FakeEmbedder(),
            side_reads=lambda: Patched(store, search_by_keywords=broken, search_by_vector=slow),
        )
        with pytest.raises(RuntimeError, match="went away"):
            await asyncio.wait_for(
                handler(SearchChunks("ferias servidor"), FakeUnitOfWork(store)), timeout=5
            )
        await asyncio.sleep(0)
        assert abandoned.is_set()
