"""cogep-ingest's Python client: the whole REST API, sync (`Client`) and async
(`AsyncClient`), typed, with retries on 429/503 that honour Retry-After. The CLI and
the MCP server use it; `cogep_client.langchain` adds a LangChain retriever (extra
`langchain`)."""

from cogep_client.calls import ApiError, Retry
from cogep_client.client import AsyncClient, Client
from cogep_client.models import (
    Change,
    Changes,
    ChunkPage,
    Citation,
    Collection,
    Document,
    DocumentPage,
    Job,
    JobPage,
    Progress,
    Reembedding,
    SearchHit,
    SearchResult,
    Stats,
    Versions,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "Change",
    "Changes",
    "ChunkPage",
    "Citation",
    "Client",
    "Collection",
    "Document",
    "DocumentPage",
    "Job",
    "JobPage",
    "Progress",
    "Reembedding",
    "Retry",
    "SearchHit",
    "SearchResult",
    "Stats",
    "Versions",
]
