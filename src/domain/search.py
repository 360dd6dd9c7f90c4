"""Search over the indexed chunks: modes, filters, hits, and rank fusion."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from domain.legal import cite
from domain.model import LegalRef

RRF_K = 60  # the constant of reciprocal rank fusion (Cormack et al., 2009)
# In hybrid mode a keyword hit counts only when it holds at least half of the query's
# terms: a question shares common words ("trabalho", "servidor") with many wrong
# chunks, and fusion would let one such word outrank the right semantic hit.
HYBRID_MIN_COVERAGE = 0.5

# Words that make a Portuguese sentence a question but say nothing about its subject,
# and that PostgreSQL's Portuguese stop words keep: interrogatives and modal verbs.
# Dropped from keyword queries only (the model reads the question as it is).
QUESTION_WORDS = frozenset(
    [
        "quanto",
        "quanta",
        "quantos",
        "quantas",
        "qual",
        "quais",
        "como",
        "onde",
        "porque",
        "porquê",
        "posso",
        "pode",
        "podem",
        "podemos",
        "poderia",
        "poderiam",
        "devo",
        "deve",
        "devem",
        "devemos",
        "deveria",
        "preciso",
        "precisa",
        "precisam",
        "precisamos",
        "consigo",
        "consegue",
        "conseguem",
        "quero",
        "queria",
        "gostaria",
        "existe",
        "existem",
        "saber",
        "sei",
    ]
)
_FOLD = str.maketrans("áàâãéêíóôõúüç", "aaaaeeiooouuc")


def keyword_terms(query: str) -> str:
    """The query for full-text search: the question without its question words."""
    kept = [
        w
        for w in query.split()
        if w.strip("?!.,;:()\"'").lower().translate(_FOLD) not in QUESTION_WORDS
    ]
    return " ".join(kept) if kept else query


class SearchMode(enum.StrEnum):
    VECTOR = "vector"  # pgvector cosine over HNSW, the model's query prefix
    KEYWORD = "keyword"  # PostgreSQL full-text search, Portuguese, accent-insensitive
    HYBRID = "hybrid"  # reciprocal rank fusion of both


@dataclass(frozen=True)
class SearchFilter:
    collection: str | None = None
    document_ids: Sequence[uuid.UUID] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)  # JSON containment
    include_superseded: bool = False  # by default only current versions answer
    within: tuple[str, ...] | None = None  # the caller's collections (None: every one)

    @property
    def narrows(self) -> bool:
        """Whether the filter can leave out chunks an unfiltered index scan returns."""
        return bool(
            self.collection
            or self.document_ids
            or self.metadata
            or not self.include_superseded
            or self.within is not None
        )


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: uuid.UUID
    filename: str
    collection: str
    position: int
    heading: str | None
    text: str
    page_start: int | None
    page_end: int | None
    score: float  # mode-specific: cosine similarity, ts_rank, or the fused RRF score
    vector_rank: int | None = None
    keyword_rank: int | None = None
    coverage: float | None = None  # keyword hits: share of the query's terms found
    context: str | None = None  # the caput a continuation of a long article is read with
    legal: LegalRef = field(default_factory=LegalRef)
    norm: str | None = None  # "Lei nº 8.112/1990", from the document's metadata
    expanded: str | None = None  # the whole article, when the search asked to expand
    source_key: str | None = None  # the document's identity in its collection
    version: int | None = None  # which version of it the chunk belongs to
    current: bool = True  # False: a superseded version (include_superseded)
    rerank_score: float | None = None  # the reranker's score, when one is configured

    @property
    def citation(self) -> str | None:
        """What an assistant quotes: 'Lei nº 8.112/1990, art. 77, § 1º (p. 12)'."""
        return cite(
            self.norm,
            self.legal.article,
            self.legal.paragraph,
            self.legal.inciso,
            self.legal.alinea,
            self.page_start,
            self.legal.article_end,
        )


def interleave(lists: Sequence[Sequence[SearchHit]]) -> list[SearchHit]:
    """Ranked lists of different embedding models as one: rank by rank, the first list
    first at each rank (scores of two models are not comparable; ranks are)."""
    if len(lists) == 1:
        return list(lists[0])
    merged: list[SearchHit] = []
    seen: set[int] = set()
    for rank in range(max((len(hits) for hits in lists), default=0)):
        for hits in lists:
            if rank < len(hits) and hits[rank].chunk_id not in seen:
                seen.add(hits[rank].chunk_id)
                merged.append(replace(hits[rank], vector_rank=len(merged) + 1))
    return merged


def fuse(
    vector: Sequence[SearchHit], keyword: Sequence[SearchHit], k: int = RRF_K
) -> list[SearchHit]:
    """Reciprocal rank fusion: score = sum over lists of 1 / (k + rank), ranks from 1.
    Ties keep the vector order first (deterministic)."""
    scores: dict[int, float] = {}
    hits: dict[int, SearchHit] = {}
    vector_ranks: dict[int, int] = {}
    keyword_ranks: dict[int, int] = {}
    for rank, hit in enumerate(vector, start=1):
        scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (k + rank)
        hits.setdefault(hit.chunk_id, hit)
        vector_ranks[hit.chunk_id] = rank
    for rank, hit in enumerate(keyword, start=1):
        scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (k + rank)
        hits.setdefault(hit.chunk_id, hit)
        keyword_ranks[hit.chunk_id] = rank
    order = sorted(
        scores,
        key=lambda cid: (-scores[cid], vector_ranks.get(cid, 10**9), keyword_ranks.get(cid, 10**9)),
    )
    return [
        replace(
            hits[cid],
            score=scores[cid],
            vector_rank=vector_ranks.get(cid),
            keyword_rank=keyword_ranks.get(cid),
        )
        for cid in order
    ]
