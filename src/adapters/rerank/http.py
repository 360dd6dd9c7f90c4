"""A reranker behind the common `/rerank` API, over HTTP.

Two shapes of the same idea are spoken:
- `tei` (Hugging Face text-embeddings-inference, and servers that copy it):
  POST {base}/rerank {"query", "texts"} -> [{"index", "score"}, ...]
- `cohere` (Cohere, Jina, Voyage, vLLM, LiteLLM): POST {base}/rerank
  {"model", "query", "documents", "top_n"} -> {"results": [{"index", "relevance_score"}]}
Answers may come in any order; scores are put back in the passages' order. A server
that does not answer in time, or answers nonsense, is EmbeddingUnavailable: the search
keeps its fused order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import httpx

from domain.errors import EmbeddingUnavailable

RerankStyle = Literal["tei", "cohere"]


class HttpReranker:
    def __init__(
        self,
        base_url: str,
        *,
        style: RerankStyle = "tei",
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.style = style
        self.model = model
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )

    async def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        body: dict[str, Any]
        if self.style == "tei":
            body = {"query": query, "texts": list(passages), "truncate": True}
        else:
            body = {"query": query, "documents": list(passages), "top_n": len(passages)}
            if self.model:
                body["model"] = self.model
        try:
            response = await self._http.post("/rerank", json=body)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EmbeddingUnavailable(f"the reranker failed: {type(exc).__name__}: {exc}") from exc
        return self._in_order(answer, len(passages))

    def _in_order(self, answer: Any, n: int) -> list[float]:
        items: Any = answer if self.style == "tei" else (answer or {}).get("results")
        key = "score" if self.style == "tei" else "relevance_score"
        scores: list[float | None] = [None] * n
        try:
            for item in items or ():
                scores[int(item["index"])] = float(item[key])
        except (TypeError, KeyError, ValueError, IndexError) as exc:
            raise EmbeddingUnavailable(f"the reranker's answer is not understood: {exc}") from exc
        if any(s is None for s in scores):
            raise EmbeddingUnavailable("the reranker did not score every passage")
        return [s for s in scores if s is not None]

    async def aclose(self) -> None:
        await self._http.aclose()
