"""The float IR as a differentiable TensorFlow function of its Conv2D/Dense kernels (off-board).

HAWQ-v3 needs Hessian-vector products of the loss with respect to layer weights; the NumPy
reverse mode of :mod:`codesign.graph.grad` only differentiates with respect to the input.
This module interprets an IR graph op by op with TensorFlow, the kernels of the quantizable
layers being *arguments*, so ``tf.GradientTape`` can differentiate twice. Because it reads
the IR, it serves zoo models, imported Keras/QKeras models and IR-only models alike, and the
kernels are named by IR layer name (no Keras-name mapping). Semantics follow
:mod:`codesign.graph.execute` (explicit (top, bottom, left, right) padding, HWIO kernels,
grouped/depthwise convolution, average pooling that excludes padded pixels, hard sigmoid
``relu6(x+3)/6``); ``tests/methods/test_hawq.py`` checks it against ``run_float``.

TensorFlow is imported when :func:`tf_forward` is called, never at module import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from codesign.errors import CodesignError, UnsupportedLayerError
from codesign.graph.ir import (
    Activation,
    Add,
    Affine,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    GlobalPool,
    Graph,
    Input,
    Layer,
    Multiply,
    Pool2D,
    Reshape,
    Softmax,
    ZeroPad2D,
)
from codesign.graph.ops import pool_counts


def import_tf() -> Any:
    """TensorFlow, or a CodesignError saying why HAWQ-v3 needs it."""
    try:  # imported by name, on first use: the on-board runtime never loads TensorFlow
        tf = importlib.import_module("tensorflow")
    except ImportError:
        raise CodesignError(
            "HAWQ-v3 estimates Hessian traces with TensorFlow double backpropagation (an off-board baseline); "
            "TensorFlow is not importable here. Install the ML extras (pip install 'codesign[ml]') or run the "
            "baseline on the host, then copy its BitConfig to the board."
        ) from None
    return tf


def tf_forward(graph: Graph, dtype: str = "float32") -> tuple[Callable[..., Any], list[str]]:
    """``(f, names)``: ``f(x, kernels)`` returns the logits for a batch ``x`` (N, H, W, C).

    ``kernels`` is a list of tensors in the order of ``names`` (the quantizable layers); every
    other parameter is a constant. A trailing Softmax is dropped (logits out), so a loss can
    use ``softmax_cross_entropy_with_logits``.
    """
    tf = import_tf()
    names = [ly.name for ly in graph.quantizable()]
    out_name = graph.outputs[0]
    if len(graph.outputs) != 1:
        raise UnsupportedLayerError(f"model {graph.name!r} has {len(graph.outputs)} outputs; HAWQ-v3 needs one.")
    if isinstance(graph[out_name], Softmax):
        out_name = graph[out_name].inputs[0]
    layers = list(graph.layers)
    consts: dict[str, dict[str, Any]] = {
        ly.name: {k: tf.constant(np.asarray(v, np.float64), dtype=dtype) for k, v in ly.params.items() if k != "kernel"}
        for ly in layers
    }
    counts = {ly.name: tf.constant(pool_counts(graph.in_shapes(ly)[0][:2], ly.pool, ly.strides, ly.padding), dtype=dtype)
              for ly in layers if isinstance(ly, Pool2D) and ly.kind == "avg"}
    for ly in layers:
        if type(ly) not in _SUPPORTED:
            raise UnsupportedLayerError(f"layer {ly.name!r} of type {ly.op} has no TensorFlow kernel for HAWQ-v3.")

    def f(x: Any, kernels: list[Any]) -> Any:
        kmap = dict(zip(names, kernels))
        acts: dict[str, Any] = {}
        for ly in layers:
            ins = [acts[i] for i in ly.inputs]
            acts[ly.name] = _run(tf, ly, ins, x, kmap.get(ly.name), consts[ly.name], counts.get(ly.name))
            if ly.name == out_name:
                return acts[ly.name]
        return acts[out_name]  # pragma: no cover - out_name is always a layer

    return f, names


def _pad(tf: Any, x: Any, padding: tuple[int, int, int, int], value: float = 0.0) -> Any:
    t, b, lft, r = padding
    if not (t or b or lft or r):
        return x
    return tf.pad(x, [[0, 0], [t, b], [lft, r], [0, 0]], constant_values=value)


def _conv(tf: Any, ly: Conv2D, x: Any, k: Any) -> Any:
    xp = _pad(tf, x, ly.padding)
    strides = [1, *ly.strides, 1]
    kh, kw, cin_g, cout = (int(d) for d in k.shape)
    if ly.groups == 1:
        return tf.nn.conv2d(xp, k, strides, "VALID")
    cin = cin_g * ly.groups
    if cin_g == 1:  # depthwise: output channel g*m + j reads input channel g, as ops.conv2d
        return tf.nn.depthwise_conv2d(xp, tf.reshape(k, [kh, kw, cin, cout // cin]), strides, "VALID")
    cout_g = cout // ly.groups
    outs = [tf.nn.conv2d(xp[..., g * cin_g:(g + 1) * cin_g], k[..., g * cout_g:(g + 1) * cout_g], strides, "VALID")
            for g in range(ly.groups)]
    return tf.concat(outs, axis=-1)


def _hsig(tf: Any, x: Any) -> Any:
    return tf.clip_by_value(x + 3.0, 0.0, 6.0) / 6.0


def _activation(tf: Any, kind: str, x: Any) -> Any:
    if kind == "relu":
        return tf.nn.relu(x)
    if kind == "relu6":
        return tf.clip_by_value(x, 0.0, 6.0)
    if kind == "hsigmoid":
        return _hsig(tf, x)
    if kind == "hswish":
        return x * _hsig(tf, x)
    if kind == "sigmoid":
        return tf.sigmoid(x)
    raise UnsupportedLayerError(f"activation {kind!r} has no TensorFlow kernel for HAWQ-v3.")


def _run(tf: Any, ly: Layer, ins: list[Any], x: Any, kernel: Any, c: dict[str, Any], counts: Any) -> Any:
    if isinstance(ly, Input):
        return x
    if isinstance(ly, Conv2D):
        y = _conv(tf, ly, ins[0], kernel)
        return y + c["bias"] if ly.use_bias else y
    if isinstance(ly, Dense):
        y = tf.tensordot(ins[0], kernel, axes=1)
        return y + c["bias"] if ly.use_bias else y
    if isinstance(ly, BatchNorm):
        a = c["gamma"] / tf.sqrt(c["var"] + ly.epsilon)
        return (ins[0] - c["mean"]) * a + c["beta"]
    if isinstance(ly, Affine):
        return ins[0] * c["scale"] + c["offset"]
    if isinstance(ly, Activation):
        return _activation(tf, ly.kind, ins[0])
    if isinstance(ly, Add):
        return ins[0] + ins[1]
    if isinstance(ly, Multiply):
        return ins[0] * ins[1]
    if isinstance(ly, Pool2D):
        strides = [1, *ly.strides, 1]
        win = [1, *ly.pool, 1]
        if ly.kind == "max":
            return tf.nn.max_pool2d(_pad(tf, ins[0], ly.padding, -np.inf), win, strides, "VALID")
        total = tf.nn.avg_pool2d(_pad(tf, ins[0], ly.padding), win, strides, "VALID") * float(np.prod(ly.pool))
        return total / counts
    if isinstance(ly, GlobalPool):
        red = tf.reduce_mean if ly.kind == "avg" else tf.reduce_max
        return red(ins[0], axis=[1, 2], keepdims=ly.keepdims)
    if isinstance(ly, Flatten):
        return tf.reshape(ins[0], [tf.shape(ins[0])[0], -1])
    if isinstance(ly, Reshape):
        return tf.reshape(ins[0], [tf.shape(ins[0])[0], *ly.output_shape])
    if isinstance(ly, ZeroPad2D):
        return _pad(tf, ins[0], ly.padding)
    if isinstance(ly, Softmax):
        return tf.nn.softmax(ins[0])
    raise UnsupportedLayerError(f"layer {ly.name!r} of type {ly.op} has no TensorFlow kernel for HAWQ-v3.")


_SUPPORTED = (Input, Conv2D, Dense, BatchNorm, Affine, Activation, Add, Multiply, Pool2D, GlobalPool, Flatten,
              Reshape, ZeroPad2D, Softmax)

__all__ = ["import_tf", "tf_forward"]
