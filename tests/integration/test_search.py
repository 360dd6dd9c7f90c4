"""Search against real PostgreSQL + pgvector, with the real embedding model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest

from adapters.embedding.blas import BlasE5Embedder
from adapters.postgres import chunks as chunk_repository
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import UnitOfWorkFactory
from application.use_cases.search import SearchChunks, SearchChunksHandler
from domain.model import Chunk, Document, DocumentType
from domain.search import SearchFilter, SearchMode
from tests.integration.conftest import auth

MODEL = "multilingual-e5-small-q4"

CORPUS = {
    "ferias.txt": [
        "Art. 77. O servidor fará jus a trinta dias de férias, que podem ser acumuladas "
        "até o máximo de dois períodos, no caso de necessidade do serviço.",
        "§ 1º Para o primeiro período aquisitivo de férias serão exigidos doze meses de exercício.",
    ],
    "transporte.txt": [
        "O auxílio-transporte é devido ao servidor que utiliza transporte coletivo nos "
        "deslocamentos entre a residência e o local de trabalho.",
    ],
    "capacitacao.txt": [
        "Após cada quinquênio de efetivo exercício, o servidor poderá afastar-se por até "
        "três meses para participar de curso de capacitação profissional.",
    ],
    "noturno.txt": [
        "O serviço noturno, prestado entre vinte e duas horas de um dia e cinco horas do "
        "dia seguinte, terá o valor-hora acrescido de vinte e cinco por cento.",
    ],
}


@pytest.fixture(scope="module")
def embedder() -> Iterator[BlasE5Embedder]:
    e = BlasE5Embedder(threads=2)
    yield e
    e.close()


def document(filename: str, collection: str = "rh", **metadata: object) -> Document:
    return Document(
        id=uuid.uuid4(),
        collection=collection,
        filename=filename,
        content_type=DocumentType.TEXT,
        size_bytes=1,
        sha256=uuid.uuid4().hex + uuid.uuid4().hex,
        metadata=dict(metadata),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        is_current=True,  # its chunk set is stored directly: it answers searches
    )


async def store(
    uow_factory: UnitOfWorkFactory,
    doc: Document,
    texts: list[str],
    vectors: Sequence[Sequence[float]] | Sequence[np.ndarray],
) -> None:
    as_lists = [[float(x) for x in v] for v in vectors]
    async with uow_factory() as uow:
        assert await uow.documents.add(doc, b"x")
        await uow.chunks.replace(
            doc.id,
            [
                Chunk(doc.id, i, t, len(t.split()), None, v, MODEL, 384)
                for i, (t, v) in enumerate(zip(texts, as_lists, strict=True))
            ],
        )
        await uow.commit()


@pytest.fixture
async def corpus(uow_factory: UnitOfWorkFactory, embedder: BlasE5Embedder) -> dict[str, Document]:
    docs = {}
    for i, (name, texts) in enumerate(CORPUS.items()):
        doc = document(name, orgao="COGEP" if i % 2 == 0 else "SEGES")
        await store(uow_factory, doc, texts, list(embedder.encode(texts)))
        docs[name] = doc
    return docs


async def search(
    uow_factory: UnitOfWorkFactory, embedder: BlasE5Embedder, query: str, **kw: object
) -> list[str]:
    result = await SearchChunksHandler(embedder)(SearchChunks(query, **kw), uow_factory())  # type: ignore[arg-type]
    return [h.filename for h in result.hits]


QUESTIONS = [
    ("quantos dias de férias o servidor pode acumular?", "ferias.txt"),
    ("vale transporte para ir ao trabalho de ônibus", "transporte.txt"),
    ("licenca para fazer curso depois de cinco anos", "capacitacao.txt"),
    ("adicional por trabalho à noite", "noturno.txt"),
]


@pytest.mark.parametrize("mode", [SearchMode.VECTOR, SearchMode.HYBRID])
@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
async def test_portuguese_questions_find_their_document_first(
    uow_factory: UnitOfWorkFactory,
    embedder: BlasE5Embedder,
    corpus: dict[str, Document],
    mode: SearchMode,
    question: str,
    expected: str,
) -> None:
    found = await search(uow_factory, embedder, question, mode=mode, top_k=3)
    assert found[0] == expected, found


async def test_hybrid_side_reads_on_a_pool_of_one_connection_answer_as_one_after_the_other(
    database_url: str,
    uow_factory: UnitOfWorkFactory,
    embedder: BlasE5Embedder,
    corpus: dict[str, Document],
) -> None:
    # each hybrid search reads its two lists on connections of their own; with one
    # connection in the pool, a search that held it while waiting for another would
    # wait out the pool's timeout and fail
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout_s=5)
    try:
        sessions = session_factory(engine)

        def reads() -> SqlAlchemyUnitOfWork:
            return SqlAlchemyUnitOfWork(sessions)

        handler = SearchChunksHandler(embedder, side_reads=reads)
        questions = [q for q, _ in QUESTIONS] * 2
        answers = await asyncio.wait_for(
            asyncio.gather(*(handler(SearchChunks(q, top_k=3), reads()) for q in questions)),
            timeout=60,
        )
    finally:
        await engine.dispose()
    for question, answer in zip(questions, answers, strict=True):
        alone = await SearchChunksHandler(embedder)(SearchChunks(question, top_k=3), uow_factory())
        assert [(h.chunk_id, h.vector_rank, h.keyword_rank) for h in answer.hits] == [
            (h.chunk_id, h.vector_rank, h.keyword_rank) for h in alone.hits
        ]
    assert [a.hits[0].filename for a in answers[: len(QUESTIONS)]] == [e for _, e in QUESTIONS]


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ("férias acumuladas", "ferias.txt"),
        ("auxílio-transporte coletivo", "transporte.txt"),
        ("quinquênio capacitação", "capacitacao.txt"),
        ("serviço noturno", "noturno.txt"),
    ],
)
async def test_keyword_search_finds_the_chunk_holding_the_terms(
    uow_factory: UnitOfWorkFactory,
    embedder: BlasE5Embedder,
    corpus: dict[str, Document],
    terms: str,
    expected: str,
) -> None:
    found = await search(uow_factory, embedder, terms, mode=SearchMode.KEYWORD)
    assert found[0] == expected, found


async def test_keyword_hits_are_ranked_by_the_share_of_terms_they_hold(
    uow_factory: UnitOfWorkFactory, embedder: BlasE5Embedder, corpus: dict[str, Document]
) -> None:
    result = await SearchChunksHandler(embedder)(
        SearchChunks("servidor férias acumuladas", mode=SearchMode.KEYWORD), uow_factory()
    )
    coverages = [h.coverage or 0.0 for h in result.hits]
    assert result.hits[0].filename == "ferias.txt" and coverages[0] == 1.0
    assert coverages == sorted(coverages, reverse=True)
    assert min(coverages) < 1.0  # the others hold only "servidor"


async def test_keyword_search_ignores_accents_and_case_and_stems(
    uow_factory: UnitOfWorkFactory, embedder: BlasE5Embedder, corpus: dict[str, Document]
) -> None:
    for query in ("FERIAS acumuladas", "férias acumulada", "Ferias ACUMULAR"):
        found = await search(uow_factory, embedder, query, mode=SearchMode.KEYWORD)
        assert found and found[0] == "ferias.txt", (query, found)


async def test_a_query_of_stop_words_only_finds_nothing_by_keywords(
    uow_factory: UnitOfWorkFactory, embedder: BlasE5Embedder, corpus: dict[str, Document]
) -> None:
    assert await search(uow_factory, embedder, "de a o que", mode=SearchMode.KEYWORD) == []


async def test_collection_document_and_metadata_filters(
    uow_factory: UnitOfWorkFactory, embedder: BlasE5Embedder, corpus: dict[str, Document]
) -> None:
    question = "férias do servidor"
    only = SearchFilter(document_ids=(corpus["noturno.txt"].id,))
    assert set(await search(uow_factory, embedder, question, filter=only)) == {"noturno.txt"}
    seges = SearchFilter(metadata={"orgao": "SEGES"})
    assert set(await search(uow_factory, embedder, question, filter=seges)) == {
        "transporte.txt",
        "noturno.txt",
    }
    assert await search(uow_factory, embedder, question, filter=SearchFilter("outra")) == []


@pytest.mark.parametrize("exact_max", [10_000, 0], ids=["counted-small", "graph-then-exact"])
async def test_a_narrow_filter_still_gets_top_k_exactly_ranked(
    uow_factory: UnitOfWorkFactory,
    embedder: BlasE5Embedder,
    monkeypatch: pytest.MonkeyPatch,
    exact_max: int,
) -> None:
    """1,500 chunks near the query in one collection, 15 far away in another: an HNSW
    scan alone (pgvector 0.6, no iterative scan) yields only the near ones, which the
    filter then removes. The search must still answer top_k, in exact order: at once
    when the filter is counted small, after the graph walks otherwise."""
    monkeypatch.setattr(chunk_repository, "EXACT_SEARCH_MAX", exact_max)
    rng = np.random.default_rng(7)
    q = rng.normal(size=384).astype(np.float32)
    q /= np.linalg.norm(q)

    def around(center: np.ndarray, n: int, spread: float) -> list[np.ndarray]:
        vs = center + spread * rng.normal(size=(n, 384)).astype(np.float32)
        return list(vs / np.linalg.norm(vs, axis=1, keepdims=True))

    for b in range(3):
        noise = around(q, 500, 0.02)
        await store(
            uow_factory, document(f"ruido-{b}.txt", "outros"), [f"r{i}" for i in range(500)], noise
        )
    far = around(-q, 15, 0.5)
    target = document("alvo.txt", "alvo")
    await store(uow_factory, target, [f"alvo {i}" for i in range(15)], far)

    class FixedQuery(BlasE5Embedder):
        def __init__(self) -> None:
            pass

        @property
        def model_name(self) -> str:
            return MODEL

        async def embed_query(self, text: str) -> Sequence[float]:
            return [float(x) for x in q]

    result = await SearchChunksHandler(FixedQuery())(
        SearchChunks("x", top_k=10, mode=SearchMode.VECTOR, filter=SearchFilter("alvo")),
        uow_factory(),
    )
    exact = sorted(range(15), key=lambda i: -float(far[i] @ q))[:10]
    assert [h.text for h in result.hits] == [f"alvo {i}" for i in exact]
    unfiltered = await SearchChunksHandler(FixedQuery())(
        SearchChunks("x", top_k=10, mode=SearchMode.VECTOR), uow_factory()
    )
    assert len(unfiltered.hits) == 10 and all(h.collection == "outros" for h in unfiltered.hits)


class TestSearchApi:
    async def test_search_answers_with_chunks_scores_and_ranks(
        self, client: httpx.AsyncClient, keys: dict[str, str], corpus: dict[str, Document]
    ) -> None:
        response = await client.post(
            "/v1/search",
            headers=auth(keys["read"]),
            json={"query": "quantos dias de férias posso acumular", "top_k": 2},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["mode"] == "hybrid" and body["model"] == MODEL
        top = body["results"][0]
        assert top["filename"] == "ferias.txt" and top["document_id"] == str(
            corpus["ferias.txt"].id
        )
        assert top["vector_rank"] >= 1 and top["text"].startswith("Art. 77.")
        assert len(body["results"]) == 2

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"query": ""}, "query"),
            ({"query": "férias", "top_k": 500}, "top_k"),
            ({"query": "férias", "mode": "telepatia"}, "mode"),
            ({"query": "férias", "collection": "../etc"}, "collection"),
            ({"query": "férias", "document_ids": ["nao-e-uuid"]}, "document_ids"),
            ({"query": "férias", "metadata": {"x": "y" * 20_000}}, "metadata"),
        ],
    )
    async def test_bad_searches_are_422_problems_with_a_reason(
        self, client: httpx.AsyncClient, keys: dict[str, str], body: dict[str, object], field: str
    ) -> None:
        response = await client.post("/v1/search", headers=auth(keys["read"]), json=body)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text

    async def test_searching_needs_the_read_scope(
        self, client: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        response = await client.post(
            "/v1/search", headers=auth(keys["ingest"]), json={"query": "x"}
        )
        assert response.status_code == 403


async def test_fusion_takes_what_the_graph_found_when_it_is_enough(
    uow_factory: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hybrid asks for 50 vector candidates and needs top_k: under a filter the graph
    walk's few hits are enough for it (no exact scan), never for a vector search."""
    monkeypatch.setattr(chunk_repository, "EXACT_SEARCH_MAX", 0)  # no counting: the graph
    rng = np.random.default_rng(3)
    q = rng.normal(size=384).astype(np.float32)
    q /= np.linalg.norm(q)
    near = [v / np.linalg.norm(v) for v in q + 0.02 * rng.normal(size=(1104, 384))]
    far = [v / np.linalg.norm(v) for v in -q + 0.5 * rng.normal(size=(20, 384))]
    for part in range(2):  # more than the graph walk's 1,000 nearest
        texts = [f"a{part}-{i}" for i in range(550)]
        await store(
            uow_factory,
            document(f"perto{part}.txt", "a"),
            texts,
            near[550 * part : 550 * (part + 1)],
        )
    await store(
        uow_factory,
        document("alvo.txt", "b"),
        [f"b{i}" for i in range(24)],
        [*near[1100:], *far],  # 4 of b among the nearest, 20 far away
    )
    vector = [float(x) for x in q]
    async with uow_factory() as uow:
        hybrid = await uow.chunks.search_by_vector(vector, MODEL, SearchFilter("b"), 50, 3)
        alone = await uow.chunks.search_by_vector(vector, MODEL, SearchFilter("b"), 50)
    assert 3 <= len(hybrid) < 24  # the graph's hits, not an exact scan of the filter
    assert all(h.text.startswith("b") for h in hybrid)
    assert len(alone) == 24  # a vector search is never starved
