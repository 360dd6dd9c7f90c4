"""A LangChain retriever over the platform's search (extra `langchain`:
`pip install 'cogep-ingest[langchain]'`).

    from cogep_client.langchain import CogepRetriever
    retriever = CogepRetriever(base_url="http://127.0.0.1:8000", api_key=KEY, collection="leis")
    docs = retriever.invoke("quantos dias de férias o servidor tem?")
    docs[0].metadata["citation"]  # 'Lei nº 8.112/1990, art. 77'

Each LangChain Document's `page_content` is the passage (the whole article with
`whole_articles=True`); its metadata carries the citation fields and the origin
(document id, file, collection, version, position, score).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document as LangChainDocument
from langchain_core.retrievers import BaseRetriever

from cogep_client.client import AsyncClient, Client
from cogep_client.models import SearchHit, SearchResult

_METADATA = (
    "citation", "norm", "article", "article_end", "paragraph", "inciso", "alinea",
    "amended_by", "filename", "collection", "position", "heading", "source_key", "version",
    "score", "page_start", "page_end",
)  # fmt: skip


def to_document(hit: SearchHit) -> LangChainDocument:
    metadata: dict[str, Any] = {name: getattr(hit, name) for name in _METADATA}
    metadata["document_id"] = str(hit.document_id)
    metadata["chunk_id"] = hit.chunk_id
    return LangChainDocument(
        page_content=hit.expanded or hit.text, metadata=metadata, id=str(hit.chunk_id)
    )


class CogepRetriever(BaseRetriever):
    """Passages of the platform's hybrid (or vector, keyword) search, with citations."""

    base_url: str
    api_key: str
    top_k: int = 8
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    collection: str | None = None
    metadata_filter: dict[str, Any] | None = None
    whole_articles: bool = False
    timeout_s: float = 60.0

    def _arguments(self) -> dict[str, Any]:
        return {
            "top_k": self.top_k,
            "mode": self.mode,
            "collection": self.collection,
            "metadata": self.metadata_filter,
            "expand": "article" if self.whole_articles else "none",
        }

    @staticmethod
    def _documents(result: SearchResult) -> list[LangChainDocument]:
        return [to_document(hit) for hit in result.results]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LangChainDocument]:
        with Client(self.base_url, self.api_key, timeout_s=self.timeout_s) as client:
            return self._documents(client.search(query, **self._arguments()))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[LangChainDocument]:
        async with AsyncClient(self.base_url, self.api_key, timeout_s=self.timeout_s) as client:
            return self._documents(await client.search(query, **self._arguments()))
