"""NumPy reverse-mode differentiation of the float IR with respect to its INPUT (weights fixed).

Data-free distillation (``codesign.distill``) optimises images, not weights, so this module
only propagates gradients to the input. It runs on the board, hence NumPy only.

Usage::

    tape = forward(graph, x, targets=["conv3"])        # runs only what "conv3" needs
    dx = backward(tape, {"conv3": dloss_dconv3})        # dL/dx, same shape as x

:func:`forward` runs the ancestors of ``targets`` (and nothing after them: the head is not
run when no target needs it), keeping per layer only what its backward needs (a ReLU mask
source, a max-pool argmax, the operands of a Multiply, ...). Layers run in a *canonical*
topological order (ties broken by layer name), so the result does not depend on the order
of independent branches in ``graph.layers``, bit for bit.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.graph import ops
from codesign.graph.conv_grad import conv2d_input_grad, crop, padded_shape, taps
from codesign.graph.execute import check_input, float_layer
from codesign.graph.ir import (
    Activation,
    Add,
    Affine,
    BatchNorm,
    Concat,
    Conv2D,
    Crop2D,
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

Ctx = Any  # whatever a layer's backward needs, saved by its forward


@dataclass
class Tape:
    """What :func:`forward` recorded: the layers run, the kept activations and backward contexts."""

    graph: Graph
    order: list[Layer]
    outputs: dict[str, np.ndarray]
    contexts: dict[str, Ctx] = field(default_factory=dict)
    input_name: str = ""
    input_shape: tuple[int, ...] = ()
    dtype: Any = np.float32


# ---- ordering --------------------------------------------------------------------------


def ancestors(graph: Graph, targets: Iterable[str]) -> set[str]:
    """Names of ``targets`` and every layer they (transitively) read."""
    seen: set[str] = set()
    stack = list(targets)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(graph[name].inputs)
    return seen


def canonical_order(graph: Graph, names: set[str]) -> list[Layer]:
    """Topological order of ``names``, ties broken by name (independent of list order)."""
    indeg = {n: sum(1 for i in graph[n].inputs if i in names) for n in names}
    users: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        for i in set(graph[n].inputs):
            if i in names:
                users[i].append(n)
    heap = [n for n, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    order: list[Layer] = []
    while heap:
        n = heapq.heappop(heap)
        order.append(graph[n])
        for u in users[n]:
            indeg[u] -= graph[u].inputs.count(n)
            if indeg[u] == 0:
                heapq.heappush(heap, u)
    return order


# ---- forward ---------------------------------------------------------------------------


def forward(graph: Graph, x: np.ndarray, targets: Iterable[str], dtype: type = np.float32) -> Tape:
    """Run the layers ``targets`` depend on, recording what :func:`backward` needs.

    ``tape.outputs`` holds the target tensors; other activations are freed as soon as their
    last consumer has run (only the backward contexts are kept).
    """
    targets = list(dict.fromkeys(targets))
    x = check_input(graph, x).astype(dtype, copy=False)
    order = canonical_order(graph, ancestors(graph, targets))
    remaining = {ly.name: 0 for ly in order}
    for ly in order:
        for i in ly.inputs:
            remaining[i] += 1
    keep = set(targets)
    acts: dict[str, np.ndarray] = {}
    tape = Tape(graph, order, {}, input_shape=tuple(x.shape), dtype=x.dtype)
    for ly in order:
        if isinstance(ly, Input):
            acts[ly.name] = x
            tape.input_name = ly.name
            continue
        ins = [acts[i] for i in ly.inputs]
        fwd = _FORWARD.get(type(ly))
        if fwd is None:
            raise NotImplementedError(f"no gradient for op {ly.op} (layer {ly.name!r})")
        acts[ly.name], tape.contexts[ly.name] = fwd(ly, ins)
        for i in ly.inputs:  # free what no later layer reads
            remaining[i] -= 1
            if remaining[i] == 0 and i not in keep:
                acts.pop(i, None)
    tape.outputs = {t: acts[t] for t in targets}
    return tape


def _shape_ctx(ly: Layer, ins: list[np.ndarray]) -> tuple[np.ndarray, Ctx]:
    """Forward for layers whose backward needs only the input shape."""
    return float_layer(ly, ins), ins[0].shape


def _keep_input(ly: Layer, ins: list[np.ndarray]) -> tuple[np.ndarray, Ctx]:
    """Forward for layers whose backward needs the input values (activations, Multiply)."""
    return float_layer(ly, ins), ins if len(ins) > 1 else ins[0]


def _keep_output(ly: Layer, ins: list[np.ndarray]) -> tuple[np.ndarray, Ctx]:
    """Forward for layers whose backward is cheapest from the output (sigmoid, softmax)."""
    y = float_layer(ly, ins)
    return y, y


def _act_fwd(ly: Activation, ins: list[np.ndarray]) -> tuple[np.ndarray, Ctx]:
    return _keep_output(ly, ins) if ly.kind == "sigmoid" else _keep_input(ly, ins)


def _add_fwd(ly: Add, ins: list[np.ndarray]) -> tuple[np.ndarray, Ctx]:
    return ins[0] + ins[1], (ins[0].shape, ins[1].shape)


def _pool_fwd(ly: Pool2D, ins: list[np.ndarray]) -> tuple[np.ndarray, Ctx]:
    x = ins[0]
    if ly.kind != "max":
        return float_layer(ly, ins), x.shape
    # Max pool: remember which tap won (first one on ties, like argmax) for the backward.
    xp = ops.pad_nhwc(x, ly.padding, -np.inf)
    y = ops.pool2d(x, "max", ly.pool, ly.strides, ly.padding).astype(x.dtype)
    winner = np.full(y.shape, -1, dtype=np.int16)
    for t, sl in taps(ly.pool, ly.strides, y.shape[1:3]):
        hit = (xp[sl] == y) & (winner < 0)
        winner[hit] = t
    return y, (x.shape, winner)


def _gpool_fwd(ly: GlobalPool, ins: list[np.ndarray]) -> tuple[np.ndarray, Ctx]:
    x = ins[0]
    y = float_layer(ly, ins)
    if ly.kind == "avg":
        return y, x.shape
    n, h, w, c = x.shape
    return y, (x.shape, x.reshape(n, h * w, c).argmax(axis=1))


_FORWARD: dict[type, Callable[[Any, list[np.ndarray]], tuple[np.ndarray, Ctx]]] = {
    Conv2D: _shape_ctx,
    Dense: _shape_ctx,
    BatchNorm: _shape_ctx,
    Affine: _shape_ctx,
    Activation: _act_fwd,
    Add: _add_fwd,
    Multiply: _keep_input,
    Pool2D: _pool_fwd,
    GlobalPool: _gpool_fwd,
    Flatten: _shape_ctx,
    Reshape: _shape_ctx,
    ZeroPad2D: _shape_ctx,
    Crop2D: _shape_ctx,
    Concat: lambda ly, ins: (float_layer(ly, ins), [x.shape[-1] for x in ins]),
    Softmax: _keep_output,
}


# ---- backward --------------------------------------------------------------------------


def backward(tape: Tape, grads: dict[str, np.ndarray]) -> np.ndarray:
    """dL/dx from ``grads`` = {layer name: dL/d(that layer's output)} of layers on the tape."""
    pending = _sweep(tape, grads, {})
    dx = pending.get(tape.input_name)
    return np.zeros(tape.input_shape, dtype=tape.dtype) if dx is None else dx


def output_grads(tape: Tape, grads: dict[str, np.ndarray], names: Iterable[str]) -> dict[str, np.ndarray]:
    """dL/d(output) of each layer in ``names`` (zeros where no gradient reaches it), from ``grads`` as in :func:`backward`."""
    wanted = list(dict.fromkeys(names))
    missing = [n for n in wanted if n not in {ly.name for ly in tape.order}]
    if missing:
        raise KeyError(f"layers {missing} were not run by forward(); add them to targets")
    record: dict[str, np.ndarray | None] = dict.fromkeys(wanted)
    _sweep(tape, grads, record, stop_when_recorded=True)
    shapes = {ly.name: ly.output_shape for ly in tape.order}
    n = tape.input_shape[0]
    return {k: np.zeros((n, *shapes[k]), tape.dtype) if g is None else g for k, g in record.items()}


def _sweep(tape: Tape, grads: dict[str, np.ndarray], record: dict[str, np.ndarray | None],
           stop_when_recorded: bool = False) -> dict[str, np.ndarray]:
    """The reverse pass: the gradients left pending at the end (the input's), filling ``record`` on the way.

    ``stop_when_recorded``: return as soon as every layer of ``record`` is past (the layers
    before them, down to the input, are not differentiated).
    """
    todo = set(record)
    on_tape = {ly.name for ly in tape.order}
    pending: dict[str, np.ndarray] = {}
    for name, g in grads.items():
        if name not in on_tape:
            raise KeyError(f"layer {name!r} was not run by forward(); add it to targets")
        _accumulate(pending, name, np.asarray(g))
    for ly in reversed(tape.order):
        if isinstance(ly, Input):
            continue  # its gradient stays in `pending`: that is the answer
        dy = pending.pop(ly.name, None)
        if dy is None:
            continue
        if ly.name in record:
            record[ly.name] = dy
            todo.discard(ly.name)
            if stop_when_recorded and not todo:
                break
        dins = _BACKWARD[type(ly)](ly, tape.contexts[ly.name], dy)
        for name, dx in zip(ly.inputs, dins):
            if dx is not None:
                _accumulate(pending, name, dx)
    return pending


def activation_jvp(tape: Tape, name: str, dx: np.ndarray) -> np.ndarray:
    """First-order change of activation layer ``name``'s output for an input change ``dx`` (diagonal Jacobian)."""
    ly = tape.graph[name]
    if not isinstance(ly, Activation):
        raise TypeError(f"layer {name!r} ({ly.op}) is not an elementwise activation")
    return _act_bwd(ly, tape.contexts[name], dx)[0]


def _accumulate(pending: dict[str, np.ndarray], name: str, g: np.ndarray) -> None:
    """Sum gradients reaching one tensor from several consumers (no in-place aliasing)."""
    pending[name] = g if name not in pending else pending[name] + g


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting expanded from ``shape``."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(a for a, (gs, s) in enumerate(zip(g.shape, shape)) if s == 1 and gs != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _conv_bwd(ly: Conv2D, in_shape: tuple[int, ...], dy: np.ndarray) -> list[np.ndarray]:
    return [conv2d_input_grad(dy, ly.params["kernel"], in_shape, ly.strides, ly.padding, ly.groups)]


def _dense_bwd(ly: Dense, in_shape: tuple[int, ...], dy: np.ndarray) -> list[np.ndarray]:
    return [dy @ ly.params["kernel"].astype(dy.dtype).T]


def _bn_bwd(ly: BatchNorm, in_shape: tuple[int, ...], dy: np.ndarray) -> list[np.ndarray]:
    p = ly.params
    return [dy * (p["gamma"] / np.sqrt(p["var"] + ly.epsilon)).astype(dy.dtype)]


def _affine_bwd(ly: Affine, in_shape: tuple[int, ...], dy: np.ndarray) -> list[np.ndarray]:
    return [unbroadcast(dy * ly.params["scale"].astype(dy.dtype), in_shape)]


def _act_bwd(ly: Activation, saved: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
    """``saved`` is the input, or the output for sigmoid (s' = s(1-s))."""
    x, k = saved, ly.kind
    if k == "relu":
        return [dy * (x > 0)]
    if k == "relu6":
        return [dy * ((x > 0) & (x < 6))]
    if k == "hsigmoid":
        return [dy * (((x > -3) & (x < 3)) * (1.0 / 6.0)).astype(dy.dtype)]
    if k == "hswish":  # d/dx [x * relu6(x+3)/6] = relu6(x+3)/6 + x/6 on (-3, 3)
        d = ops.hard_sigmoid(x) + x * (((x > -3) & (x < 3)) * (1.0 / 6.0))
        return [dy * d.astype(dy.dtype)]
    if k == "sigmoid":
        return [dy * x * (1 - x)]
    raise NotImplementedError(f"no gradient for activation {k!r}")


def _add_bwd(ly: Add, shapes: tuple, dy: np.ndarray) -> list[np.ndarray]:
    return [unbroadcast(dy, shapes[0]), unbroadcast(dy, shapes[1])]


def _mul_bwd(ly: Multiply, ins: list[np.ndarray], dy: np.ndarray) -> list[np.ndarray]:
    a, b = ins
    return [unbroadcast(dy * b, a.shape), unbroadcast(dy * a, b.shape)]


def _pool_bwd(ly: Pool2D, saved: Any, dy: np.ndarray) -> list[np.ndarray]:
    if ly.kind == "max":
        in_shape, winner = saved
        gp = np.zeros(padded_shape(in_shape, ly.padding), dtype=dy.dtype)
        for t, sl in taps(ly.pool, ly.strides, dy.shape[1:3]):
            gp[sl] += np.where(winner == t, dy, 0)
        return [crop(gp, ly.padding)]
    in_shape = saved
    # Average pool excludes padded pixels, so each window divides by its own real count.
    share = dy / ops.pool_counts(in_shape[1:3], ly.pool, ly.strides, ly.padding).astype(dy.dtype)
    gp = np.zeros(padded_shape(in_shape, ly.padding), dtype=dy.dtype)
    for _t, sl in taps(ly.pool, ly.strides, dy.shape[1:3]):
        gp[sl] += share
    return [crop(gp, ly.padding)]


def _gpool_bwd(ly: GlobalPool, saved: Any, dy: np.ndarray) -> list[np.ndarray]:
    if ly.kind == "avg":
        n, h, w, c = saved
        return [np.broadcast_to(dy.reshape(n, 1, 1, c) / (h * w), saved).copy()]
    (n, h, w, c), idx = saved
    g = np.zeros((n, h * w, c), dtype=dy.dtype)
    np.put_along_axis(g, idx[:, None, :], dy.reshape(n, 1, c), axis=1)
    return [g.reshape(n, h, w, c)]


def _softmax_bwd(ly: Softmax, y: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
    return [y * (dy - (dy * y).sum(axis=-1, keepdims=True))]


# Each entry takes its own layer class and forward context (hence the ``...``).
_BACKWARD: dict[type, Callable[..., Sequence[np.ndarray | None]]] = {
    Conv2D: _conv_bwd,
    Dense: _dense_bwd,
    BatchNorm: _bn_bwd,
    Affine: _affine_bwd,
    Activation: _act_bwd,
    Add: _add_bwd,
    Multiply: _mul_bwd,
    Pool2D: _pool_bwd,
    GlobalPool: _gpool_bwd,
    Flatten: lambda ly, shape, dy: [dy.reshape(shape)],
    Reshape: lambda ly, shape, dy: [dy.reshape(shape)],
    ZeroPad2D: lambda ly, shape, dy: [crop(dy, ly.padding)],
    Crop2D: lambda ly, shape, dy: [ops.pad_nhwc(dy, ly.cropping)],
    Concat: lambda ly, widths, dy: np.split(dy, np.cumsum(widths)[:-1], axis=-1),
    Softmax: _softmax_bwd,
}


__all__ = ["Tape", "activation_jvp", "ancestors", "backward", "canonical_order", "conv2d_input_grad", "forward", "output_grads", "unbroadcast"]
