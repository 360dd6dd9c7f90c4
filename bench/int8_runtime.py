"""The int8 runtime against today's float32 (BLAS) runtime, same texts, same run.

1. Chunk the development laws (``../shared/corpus/leis-federais/``) with the
   platform's extractor and chunker, and take ``--chunks`` of their embedding texts
   (what the worker embeds: heading and context included), spread over every law.
2. Embed them with each runtime in the worker's batches (``embedding_batch_size``),
   both using every core; time each. The int8 graph is built first into a fresh cache
   (its build time is printed) so the timing sees a warm runtime, as a worker does.
3. Compare the vectors: cosine per chunk (min, 1st percentile, mean), and the
   development questions' query vectors.
4. ``--float-graph N``: the same graph in float32 on ONNX Runtime over the first N
   chunks, to tell what comes from the graph runtime and what from int8; and the
   graph with every weight MatMul in int8 (the FFN output projections included), to
   show what keeping those in float32 buys and costs.

    python -m bench.int8_runtime [--chunks 3000] [--float-graph 500]

Writes ``bench/results/int8_runtime.json``. Retrieval quality of the two runtimes is
``python -m bench.retrieval`` (int8, the default) against ``--runtime blas``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from adapters.chunking.structured import StructuredChunker
from adapters.embedding.blas import (
    BlasE5Embedder,
    BlasE5TokenCounter,
    E5Tokenizer,
    load_tokenizer,
    model_path,
)
from adapters.embedding.onnx_graph import build_float_graph, graph_for, quantize_int8, smoothed
from adapters.embedding.onnx_int8 import Int8E5Embedder, OnnxE5Model
from adapters.extraction.formats import ParseLimits, extract
from bench.common import ROOT, console, save, table
from bench.retrieval import CORPUS, QUESTIONS
from domain.model import DocumentType
from entrypoints.settings import Settings


def law_chunks(n: int) -> list[str]:
    tokenizer = load_tokenizer()
    settings = Settings(_env_file=None)
    chunker = StructuredChunker(
        BlasE5TokenCounter(tokenizer),
        max_tokens=settings.chunk_max_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    texts: list[str] = []
    for path in sorted(CORPUS.glob("*.docx")):
        doc = extract(path.read_bytes(), DocumentType.DOCX, ParseLimits())
        texts.extend(c.embedding_text for c in chunker.chunk(doc))
    step = max(1, len(texts) // n)
    return texts[::step][:n]


def timed(embed: Any, texts: list[str], batch: int) -> tuple[np.ndarray, float]:
    embed(texts[:batch])  # warm: first calls allocate
    t0 = time.perf_counter()
    out = [embed(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    return np.concatenate(out), time.perf_counter() - t0


def cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    c = np.sum(a * b, axis=1)
    return {
        "min": float(c.min()),
        "p01": float(np.percentile(c, 1)),
        "mean": float(c.mean()),
        "below_0_99": int((c < 0.99).sum()),
    }


def score_error(
    q: np.ndarray, v: np.ndarray, q_ref: np.ndarray, v_ref: np.ndarray
) -> dict[str, float]:
    """How far the question x chunk scores move, against how far apart one question's
    scores lie (e5's cosines crowd into a narrow band: a small error reorders them)."""
    scores, ref = q @ v.T, q_ref @ v_ref.T
    err = np.abs(scores - ref)
    return {
        "mean": float(err.mean()),
        "max": float(err.max()),
        "spread_per_query": float(ref.std(axis=1).mean()),
    }


def on_graph(
    tokenizer: E5Tokenizer,
    path: Path,
    graph: bytes,
    texts: list[str],
    questions: list[str],
    batch: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Passage vectors, question vectors and the passages' seconds of an int8 graph
    variant, each window alone (as the int8 runtime runs)."""
    path.write_bytes(graph)
    e = BlasE5Embedder(tokenizer=tokenizer)
    e.model, e.max_batch_tokens = OnnxE5Model(tokenizer, path), 1
    try:
        vectors, seconds = timed(e.encode, texts, batch)
        return vectors, e.encode(questions, True), seconds
    finally:
        e.close()


def run(n: int, float_graph: int) -> dict[str, Any]:
    console.print("chunking the development laws ...")
    texts = law_chunks(n)
    tokenizer = load_tokenizer()
    counter = BlasE5TokenCounter(tokenizer)
    tokens = [counter.count_tokens(t) for t in texts]
    batch = Settings(_env_file=None).embedding_batch_size
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        graph_for(tokenizer.file, model_path("original"), "int8", Path(tmp))
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        int8 = Int8E5Embedder(tokenizer=tokenizer, cache_dir=Path(tmp))
        start_s = time.perf_counter() - t0
        blas = BlasE5Embedder(tokenizer=tokenizer)
        console.print(f"{len(texts)} chunks, mean {np.mean(tokens):.0f} tokens; embedding ...")
        v_blas, s_blas = timed(blas.encode, texts, batch)
        v_int8, s_int8 = timed(int8.encode, texts, batch)
        result: dict[str, Any] = {
            "chunks": len(texts),
            "mean_tokens": float(np.mean(tokens)),
            "batch": batch,
            "threads": int8.threads,
            "graph_build_s": build_s,
            "cached_start_s": start_s,
            "float32_blas": {"seconds": s_blas, "chunks_per_s": len(texts) / s_blas},
            "int8_onnx": {"seconds": s_int8, "chunks_per_s": len(texts) / s_int8},
            "speedup": s_blas / s_int8,
            "passage_cosine": cosines(v_int8, v_blas),
        }
        questions = [q["query"] for q in json.loads(QUESTIONS.read_text())]
        q_int8 = int8.encode(questions, True)
        q_blas = blas.encode(questions, True)
        result["query_cosine"] = cosines(q_int8, q_blas)
        result["score_error"] = score_error(q_int8, v_int8, q_blas, v_blas)
        if float_graph:
            f32 = BlasE5Embedder(tokenizer=tokenizer)
            path = graph_for(tokenizer.file, model_path("original"), "f32", Path(tmp))
            f32.model = OnnxE5Model(tokenizer, path)
            f32.max_batch_tokens = 1
            sub = texts[:float_graph]
            v_f32, s_f32 = timed(f32.encode, sub, batch)
            _, s_b = timed(blas.encode, sub, batch)
            _, s_i = timed(int8.encode, sub, batch)
            result["float_graph"] = {
                "chunks": len(sub),
                "float32_onnx_chunks_per_s": len(sub) / s_f32,
                "float32_blas_chunks_per_s": len(sub) / s_b,
                "int8_onnx_chunks_per_s": len(sub) / s_i,
                "cosine_to_blas": cosines(v_f32, v_blas[: len(sub)]),
            }
            f32.close()
            # every weight MatMul in int8, the FFN's output projections included; then
            # the same with every input smoothed (smoothing.py)
            f = tokenizer.file
            v_all, q_all, s_all = on_graph(
                tokenizer,
                Path(tmp) / "every-matmul-int8.onnx",
                quantize_int8(build_float_graph(f), lambda _: True),
                sub,
                questions,
                batch,
            )
            result["every_matmul_int8"] = {
                "chunks": len(sub),
                "chunks_per_s": len(sub) / s_all,
                "int8_onnx_chunks_per_s": len(sub) / s_i,
                "cosine_to_blas": cosines(v_all, v_blas[: len(sub)]),
                "score_error": score_error(q_all, v_all, q_blas, v_blas[: len(sub)]),
                "int8_score_error": score_error(
                    q_int8, v_int8[: len(sub)], q_blas, v_blas[: len(sub)]
                ),
            }
            v_sm, q_sm, s_sm = on_graph(
                tokenizer,
                Path(tmp) / "every-matmul-int8-smoothed.onnx",
                quantize_int8(build_float_graph(f, smoothed(f, lambda _: True)), lambda _: True),
                sub,
                questions,
                batch,
            )
            result["every_matmul_int8_smoothed"] = {
                "chunks": len(sub),
                "chunks_per_s": len(sub) / s_sm,
                "cosine_to_blas": cosines(v_sm, v_blas[: len(sub)]),
                "score_error": score_error(q_sm, v_sm, q_blas, v_blas[: len(sub)]),
            }
        int8.close()
        blas.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=3000)
    parser.add_argument("--float-graph", type=int, default=500)
    args = parser.parse_args()
    r = run(args.chunks, args.float_graph)
    rows = [
        ["float32 (BLAS)", r["float32_blas"]["chunks_per_s"], 1.0, ""],
        ["int8 (ONNX Runtime)", r["int8_onnx"]["chunks_per_s"], r["speedup"], ""],
    ]
    if "float_graph" in r:
        fg = r["float_graph"]
        base = fg["float32_blas_chunks_per_s"]  # the subset's own float32 speed
        graph = fg["float32_onnx_chunks_per_s"]
        note = f"cos min {fg['cosine_to_blas']['min']:.4f}"
        rows.append([f"float32 graph, first {fg['chunks']}", graph, graph / base, note])
        if "every_matmul_int8" in r:
            ev = r["every_matmul_int8"]
            note = (
                f"cos mean {ev['cosine_to_blas']['mean']:.4f}, score error "
                f"{ev['score_error']['mean']:.4f} (int8 runtime: "
                f"{ev['int8_score_error']['mean']:.4f})"
            )
            every = ev["chunks_per_s"]
            rows.append([f"every MatMul int8, first {ev['chunks']}", every, every / base, note])
        if "every_matmul_int8_smoothed" in r:
            sm = r["every_matmul_int8_smoothed"]
            note = (
                f"cos mean {sm['cosine_to_blas']['mean']:.4f}, score error "
                f"{sm['score_error']['mean']:.4f}"
            )
            rate = sm["chunks_per_s"]
            rows.append(
                [f"every MatMul int8 smoothed, first {sm['chunks']}", rate, rate / base, note]
            )
    table("embedding runtimes, same texts", ["runtime", "chunks/s", "x float32", ""], rows)
    pc, qc, se = r["passage_cosine"], r["query_cosine"], r["score_error"]
    console.print(
        f"int8 vs float32 cosine over {r['chunks']} law chunks: min {pc['min']:.4f}, "
        f"p01 {pc['p01']:.4f}, mean {pc['mean']:.4f}, {pc['below_0_99']} below 0.99; "
        f"queries min {qc['min']:.4f} mean {qc['mean']:.4f}; question x chunk score "
        f"error mean {se['mean']:.4f} max {se['max']:.4f} (one question's scores spread "
        f"{se['spread_per_query']:.4f})"
    )
    console.print(
        f"graph built in {r['graph_build_s']:.1f} s, cached start {r['cached_start_s']:.1f} s"
    )
    path = save("int8_runtime", r)
    console.print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
