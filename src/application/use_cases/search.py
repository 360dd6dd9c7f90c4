"""SearchChunks: the question in Portuguese, the best chunks back.

vector = the query embedded with the model's query prefix, cosine over HNSW;
keyword = Portuguese full-text search, accent-insensitive, any of the words, ranked
by how many of the query's terms a chunk holds; hybrid (the default) = reciprocal rank
fusion of a deeper candidate list from each, counting keyword hits that hold at least
half of the query's terms.

While a collection is being re-embedded (cogep-ingest reembed) the chunks of the
previous model keep answering: when a previous model is configured and chunks of it are
stored, the question is embedded with it too and its nearest chunks are interleaved
rank by rank with the configured model's (a cosine of one model says nothing next to
another's). Keyword search reads every chunk whatever its model.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from application.ports import Embedder, Reranker, UnitOfWork, UnitOfWorkFactory
from domain.access import EVERYTHING, Access
from domain.errors import EmbeddingUnavailable, InvalidInput
from domain.search import (
    HYBRID_MIN_COVERAGE,
    SearchFilter,
    SearchHit,
    SearchMode,
    fuse,
    interleave,
    keyword_terms,
)

log = logging.getLogger(__name__)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TOP_K = 100
MAX_QUERY_CHARS = 2000
# parent-passage retrieval: a hit's whole article, within this bound
MAX_EXPANDED_CHARS = 12_000


class Expand(enum.StrEnum):
    NONE = "none"
    ARTICLE = "article"  # the whole article around each hit (parent passage)


@dataclass(frozen=True)
class SearchChunks:
    query: str
    top_k: int = 10
    mode: SearchMode = SearchMode.HYBRID
    filter: SearchFilter = field(default_factory=SearchFilter)
    expand: Expand = Expand.NONE
    access: Access = EVERYTHING  # the collections the caller's key reaches


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: SearchMode
    hits: list[SearchHit]
    took_ms: float
    model_name: str


async def with_articles(hits: list[SearchHit], uow: UnitOfWork) -> list[SearchHit]:
    """Each hit with the whole article it belongs to (`expanded`), read in one query."""
    keys = list(dict.fromkeys((h.document_id, h.legal.article) for h in hits if h.legal.article))
    texts = await uow.chunks.article_texts(
        [(d, a) for d, a in keys if a is not None], MAX_EXPANDED_CHARS
    )
    return [
        replace(h, expanded=texts.get((h.document_id, h.legal.article))) if h.legal.article else h
        for h in hits
    ]


class SearchChunksHandler:
    def __init__(
        self,
        embedder: Embedder,
        candidates: int = 50,
        reranker: Reranker | None = None,
        rerank_candidates: int = 30,
        previous: Mapping[str, Embedder] | None = None,
        models_ttl_s: float = 10.0,
        side_reads: UnitOfWorkFactory | None = None,
    ) -> None:
        self.embedder = embedder
        # a hybrid search reads its keyword list through a unit of work of its own
        # (another connection) while the vector list is read; None: one after the other
        self.side_reads = side_reads
        # query embedders of earlier models, by model name: their chunks answer until
        # re-embedded (asked for only while such chunks are stored)
        self.previous = {k: v for k, v in (previous or {}).items() if k != embedder.model_name}
        self.models_ttl_s = models_ttl_s
        self._present: tuple[float, set[str]] | None = None
        self.candidates = candidates  # per list, before fusion
        # optional: the first `rerank_candidates` ranked hits are ordered again by the
        # reranker's scores (off when None)
        self.reranker = reranker
        self.rerank_candidates = rerank_candidates

    async def __call__(self, cmd: SearchChunks, uow: UnitOfWork) -> SearchResult:
        # control characters (NUL above all: PostgreSQL text cannot hold it) mean nothing
        query = " ".join(_CONTROL.sub(" ", cmd.query).split())
        if not query:
            raise InvalidInput("the query is empty", field="query")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(
                f"the query is longer than {MAX_QUERY_CHARS} characters", field="query"
            )
        if not 1 <= cmd.top_k <= MAX_TOP_K:
            raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K}", field="top_k")
        flt = cmd.filter
        if flt.collection:
            cmd.access.require(flt.collection)
        if not cmd.access.everything:
            flt = replace(flt, within=cmd.access.within())
        t0 = time.perf_counter()
        model = self.embedder.model_name
        depth = (
            cmd.top_k if cmd.mode is not SearchMode.HYBRID else max(self.candidates, 4 * cmd.top_k)
        )
        if self.reranker is not None:
            depth = max(depth, self.rerank_candidates)
        vector_hits: list[SearchHit] = []
        keyword_hits: list[SearchHit] = []
        # the model embeds the question (off the event loop) while the keyword list is
        # read. With side reads, the two lists are read at once, each through a unit of
        # work of its own that gives its connection back as soon as it has read: no
        # search holds one connection while it waits for another, so a full pool makes
        # searches wait, never deadlock. Without, one after the other on `uow`.
        embedding = (
            asyncio.ensure_future(self.embedder.embed_query(query))
            if cmd.mode in (SearchMode.VECTOR, SearchMode.HYBRID)
            else None
        )
        sides: list[asyncio.Future[list[SearchHit]]] = []
        if cmd.mode is SearchMode.HYBRID and self.side_reads is not None:
            assert embedding is not None
            reads = self.side_reads
            sides = [
                asyncio.ensure_future(self._nearest_aside(reads, embedding, flt, depth, cmd.top_k)),
                asyncio.ensure_future(self._keywords_aside(reads, query, flt, depth)),
            ]
        try:
            first: list[SearchHit] | None = None
            if sides:
                first, keyword_hits = await asyncio.gather(*sides)
            async with uow:
                if cmd.mode is SearchMode.KEYWORD or (cmd.mode is SearchMode.HYBRID and not sides):
                    terms = keyword_terms(query)
                    keyword_hits = await uow.chunks.search_by_keywords(terms, None, flt, depth)
                if embedding is not None:
                    vector = await embedding
                    vector_hits = await self._vector(
                        vector, uow, query, flt, depth, cmd.top_k, first
                    )
                hits = self._rank(cmd, vector_hits, keyword_hits)
                if self.reranker is not None:
                    hits = await self._rerank(query, hits)
                hits = hits[: cmd.top_k]
                if cmd.expand is Expand.ARTICLE:
                    hits = await with_articles(hits, uow)
        finally:
            for pending in (embedding, *sides):
                if pending is None:
                    continue
                if not pending.done():
                    pending.cancel()  # a failed search waits for none of them
                elif not pending.cancelled():
                    pending.exception()  # raised above, or moot: the search failed first
        return SearchResult(
            query=query,
            mode=cmd.mode,
            hits=hits,
            took_ms=(time.perf_counter() - t0) * 1000,
            model_name=model,
        )

    async def _nearest_aside(
        self,
        reads: UnitOfWorkFactory,
        embedding: asyncio.Future[Sequence[float]],
        flt: SearchFilter,
        depth: int,
        top_k: int,
    ) -> list[SearchHit]:
        vector = await embedding  # before a connection is taken
        async with reads() as side:
            return await side.chunks.search_by_vector(
                vector, self.embedder.model_name, flt, depth, top_k
            )

    @staticmethod
    async def _keywords_aside(
        reads: UnitOfWorkFactory, query: str, flt: SearchFilter, depth: int
    ) -> list[SearchHit]:
        async with reads() as side:
            return await side.chunks.search_by_keywords(keyword_terms(query), None, flt, depth)

    async def _vector(
        self,
        vector: Sequence[float],
        uow: UnitOfWork,
        query: str,
        flt: SearchFilter,
        depth: int,
        top_k: int,
        first: list[SearchHit] | None,
    ) -> list[SearchHit]:
        """The nearest chunks of the current model (`first` when already read), and of
        each previous model whose chunks are still stored, interleaved."""
        model = self.embedder.model_name
        # fusion wants `depth` candidates and needs `top_k`: a narrow filter
        # then need not be searched exactly for the rest
        if first is None:
            first = await uow.chunks.search_by_vector(vector, model, flt, depth, top_k)
        lists = [first]
        for name, embedder in await self._previous(uow):
            try:  # the previous model only adds answers; without it, fewer
                previous = await embedder.embed_query(query)
            except EmbeddingUnavailable as exc:
                log.warning("previous model %s unavailable: %s", name, exc.reason)
                continue
            lists.append(await uow.chunks.search_by_vector(previous, name, flt, depth, top_k))
        return interleave(lists)[:depth]

    async def _previous(self, uow: UnitOfWork) -> list[tuple[str, Embedder]]:
        """The previous models whose chunks are stored (looked up at most every
        `models_ttl_s`: a re-embedding that ends is noticed within that)."""
        if not self.previous:
            return []
        now = time.monotonic()
        if self._present is None or now - self._present[0] > self.models_ttl_s:
            present = {name for name, _ in await uow.chunks.present_models()}
            self._present = (now, present)
        return [(n, e) for n, e in self.previous.items() if n in self._present[1]]

    async def _rerank(self, query: str, hits: list[SearchHit]) -> list[SearchHit]:
        """The first candidates in the reranker's order; the rest after them. A
        scorer that does not answer leaves the fused order (the search still answers)."""
        assert self.reranker is not None
        head, tail = hits[: self.rerank_candidates], hits[self.rerank_candidates :]
        if len(head) < 2:
            return hits
        passages = ["\n".join(p for p in (h.heading, h.context, h.text) if p) for h in head]
        try:
            scores = await self.reranker.scores(query, passages)
        except EmbeddingUnavailable as exc:
            log.warning("reranker unavailable, fused order kept: %s", exc.reason)
            return hits
        scored = [replace(h, rerank_score=s) for h, s in zip(head, scores, strict=True)]
        scored.sort(key=lambda h: -(h.rerank_score or 0.0))  # stable: ties keep fusion's order
        return scored + tail

    @staticmethod
    def _rank(
        cmd: SearchChunks, vector_hits: list[SearchHit], keyword_hits: list[SearchHit]
    ) -> list[SearchHit]:
        if cmd.mode is SearchMode.VECTOR:
            hits = vector_hits
        elif cmd.mode is SearchMode.KEYWORD:
            hits = keyword_hits
        else:
            strong = [h for h in keyword_hits if (h.coverage or 0.0) >= HYBRID_MIN_COVERAGE]
            hits = fuse(vector_hits, strong)
        return hits
