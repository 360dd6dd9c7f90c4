"""A small real scorer behind the common `/rerank` API, for the reranking tests and
`bench/retrieval.py --rerank`: multilingual-e5-small (the platform's own local model)
scores each passage by its cosine similarity to the query. It speaks both shapes the
platform's HttpReranker speaks (text-embeddings-inference and Cohere-style). No model
is downloaded: the weights are the ones the platform ships.

It also serves OpenAI-compatible `/v1/embeddings` with `dimensions`: the same model's
vectors cut to their first N components and normalised again (a real model of another
dimension, worse than the whole one, for the tests of re-embedding into a model of
another dimension). `input_type` "query"/"passage" chooses the e5 prefix.

    python -m tests.rerank_scorer --port 8088
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from application.ports import Embedder
from entrypoints.container import build_container
from entrypoints.settings import Settings


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return float(dot / norm) if norm else 0.0


async def score(embedder: Embedder, query: str, passages: list[str]) -> list[float]:
    q = await embedder.embed_query(query)
    return [cosine(q, p) for p in await embedder.embed_passages(passages)]


def scorer_app(embedder: Embedder) -> Starlette:
    async def rerank(request: Request) -> JSONResponse:
        body = await request.json()
        if "texts" in body:  # text-embeddings-inference
            scores = await score(embedder, body["query"], body["texts"])
            ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
            return JSONResponse([{"index": i, "score": scores[i]} for i in ranked])
        scores = await score(embedder, body["query"], body["documents"])
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[: body.get("top_n")]
        return JSONResponse(
            {"results": [{"index": i, "relevance_score": scores[i]} for i in ranked]}
        )

    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if body.get("input_type") == "query":
            vectors = [await embedder.embed_query(t) for t in texts]
        else:
            vectors = await embedder.embed_passages(texts)
        dim = int(body.get("dimensions") or embedder.dimension)
        data = [
            {"object": "embedding", "index": i, "embedding": truncated(v, dim)}
            for i, v in enumerate(vectors)
        ]
        return JSONResponse({"object": "list", "model": body.get("model"), "data": data})

    return Starlette(
        routes=[
            Route("/rerank", rerank, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )


def truncated(vector: Sequence[float], dim: int) -> list[float]:
    head = [float(x) for x in vector[:dim]]
    norm = math.sqrt(sum(x * x for x in head)) or 1.0
    return [x / norm for x in head]


def scorer_answers(url: str) -> bool:
    """Whether a scorer at `url` answers a /rerank request (for start-up probes)."""
    body = {"query": "x", "texts": ["y"]}
    return httpx.post(f"{url}/rerank", json=body, timeout=5).is_success


def local_embedder() -> Embedder:
    return build_container(Settings(_env_file=None)).embedder()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8088)
    args = parser.parse_args()
    uvicorn.run(scorer_app(local_embedder()), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
