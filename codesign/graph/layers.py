"""The layer types of the codesign model IR (:mod:`codesign.graph.ir`), one dataclass per op.

Every layer produces exactly one tensor, named after the layer. Shapes exclude the batch
axis and are channels-last (NHWC). Weights live in ``Layer.params`` as NumPy arrays:

* ``Conv2D``: ``kernel`` HWIO ``[kh, kw, cin/groups, cout]`` (+ ``bias [cout]``). A depthwise
  conv is ``groups == cin``; output channel ``c*m + j`` belongs to input channel ``c``.
* ``Dense``: ``kernel [in, out]`` (+ ``bias [out]``).
* ``BatchNorm``: ``gamma, beta, mean, var`` per channel (last axis).
* ``Affine``: ``scale, offset`` broadcast on the last axis (Keras Rescaling, x+c, x*c).

Each layer infers its output shape, declares its parameter shapes and counts its MACs;
:data:`OPS` maps op names to classes and :func:`layer_from_attrs` rebuilds a layer from JSON.
Split from :mod:`codesign.graph.ir`, which holds the :class:`~codesign.graph.ir.Graph` and
re-exports every name here (import them from there). NumPy-only: it runs on the board.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from codesign.errors import ModelFileError, ShapeError

Shape = tuple[int, ...]

ACTIVATIONS = ("relu", "relu6", "hswish", "hsigmoid", "sigmoid")


@dataclass
class Layer:
    """Base of every IR layer. Subclasses add typed attributes and declare their params."""

    name: str
    inputs: list[str] = field(default_factory=list)
    output_shape: Shape = ()
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    op: ClassVar[str] = "layer"
    quantizable: ClassVar[bool] = False

    # ---- per-op behaviour -------------------------------------------------------------
    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        """Output shape from input shapes (no batch axis)."""
        raise NotImplementedError

    def param_shapes(self, in_shapes: Sequence[Shape]) -> dict[str, Shape]:
        """Expected shape of each parameter array."""
        return {}

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        """Multiply-accumulates per image (0 for ops without weights)."""
        return 0

    # ---- serialisation ----------------------------------------------------------------
    def attrs(self) -> dict[str, Any]:
        """Op-specific attributes as JSON-ready values."""
        base = {f.name for f in dataclasses.fields(Layer)}
        out = {}
        for f in dataclasses.fields(self):
            if f.name in base:
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @property
    def num_params(self) -> int:
        """Number of scalar parameters."""
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))


def _single(layer: Layer, in_shapes: Sequence[Shape], rank: int | None = None) -> Shape:
    if len(in_shapes) != 1:
        raise ShapeError(f"layer {layer.name!r} ({layer.op}) takes 1 input, got {len(in_shapes)}")
    s = tuple(in_shapes[0])
    if rank is not None and len(s) != rank:
        raise ShapeError(f"layer {layer.name!r} ({layer.op}) expects a rank-{rank} input (no batch), got {s}")
    return s


def conv_out(size: int, k: int, stride: int, pad_lo: int, pad_hi: int) -> int:
    """Output length of a strided window over a padded axis."""
    return (size + pad_lo + pad_hi - k) // stride + 1


def same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    """TF/Keras 'same' padding (extra pixel at the bottom/right)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


@dataclass
class Input(Layer):
    """Graph input; ``shape`` excludes the batch axis."""

    shape: Shape = ()
    op: ClassVar[str] = "input"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return tuple(self.shape)


@dataclass
class Conv2D(Layer):
    """2-D convolution with explicit padding ``(top, bottom, left, right)`` and groups."""

    filters: int = 0
    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    use_bias: bool = True
    op: ClassVar[str] = "conv2d"
    quantizable: ClassVar[bool] = True

    @property
    def is_depthwise(self) -> bool:
        """True when every group has one input channel (and groups > 1)."""
        return self.groups > 1 and self.kernel_shape_cin == 1

    @property
    def kernel_shape_cin(self) -> int:
        """Input channels per group, read from the kernel param when present."""
        if "kernel" in self.params:
            return int(self.params["kernel"].shape[2])
        return -1

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        h, w, c = _single(self, in_shapes, 3)
        if c % self.groups or self.filters % self.groups:
            raise ShapeError(
                f"layer {self.name!r}: channels {c} -> {self.filters} not divisible by groups={self.groups}"
            )
        t, b, lft, r = self.padding
        oh = conv_out(h, self.kernel[0], self.strides[0], t, b)
        ow = conv_out(w, self.kernel[1], self.strides[1], lft, r)
        if oh <= 0 or ow <= 0:
            raise ShapeError(f"layer {self.name!r}: input {h}x{w} too small for kernel {self.kernel}")
        return (oh, ow, self.filters)

    def param_shapes(self, in_shapes: Sequence[Shape]) -> dict[str, Shape]:
        c = in_shapes[0][-1]
        out: dict[str, Shape] = {"kernel": (self.kernel[0], self.kernel[1], c // self.groups, self.filters)}
        if self.use_bias:
            out["bias"] = (self.filters,)
        return out

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        oh, ow, co = self.infer_shape(in_shapes)
        cin_g = in_shapes[0][-1] // self.groups
        return oh * ow * co * self.kernel[0] * self.kernel[1] * cin_g


@dataclass
class Dense(Layer):
    """Fully connected layer on a rank-1 input (or the last axis)."""

    units: int = 0
    use_bias: bool = True
    op: ClassVar[str] = "dense"
    quantizable: ClassVar[bool] = True

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        s = _single(self, in_shapes)
        return (*s[:-1], self.units)

    def param_shapes(self, in_shapes: Sequence[Shape]) -> dict[str, Shape]:
        out: dict[str, Shape] = {"kernel": (in_shapes[0][-1], self.units)}
        if self.use_bias:
            out["bias"] = (self.units,)
        return out

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        s = in_shapes[0]
        return int(np.prod(s[:-1], dtype=np.int64)) * s[-1] * self.units


@dataclass
class BatchNorm(Layer):
    """Inference batch normalisation on the last axis."""

    epsilon: float = 1e-3
    op: ClassVar[str] = "batchnorm"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return _single(self, in_shapes)

    def param_shapes(self, in_shapes: Sequence[Shape]) -> dict[str, Shape]:
        c = (in_shapes[0][-1],)
        return {"gamma": c, "beta": c, "mean": c, "var": c}


@dataclass
class Activation(Layer):
    """Elementwise activation: relu, relu6, hswish, hsigmoid or sigmoid."""

    kind: str = "relu"
    op: ClassVar[str] = "activation"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        if self.kind not in ACTIVATIONS:
            raise ShapeError(f"layer {self.name!r}: unknown activation {self.kind!r}")
        return _single(self, in_shapes)


@dataclass
class Affine(Layer):
    """``y = x * scale + offset`` with scale/offset broadcast on the last axis.

    ``role`` records what it came from, when that matters: ``"rescaling"`` (Keras Rescaling)
    or ``"normalization"`` (Keras Normalization, ``(x - mean) / std`` folded); the input range
    of a model is inferred from them (:mod:`codesign.input_range`). Arithmetic is the same.
    """

    role: str = ""
    op: ClassVar[str] = "affine"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return _single(self, in_shapes)


def _broadcast(layer: Layer, in_shapes: Sequence[Shape]) -> Shape:
    if len(in_shapes) != 2:
        raise ShapeError(f"layer {layer.name!r} ({layer.op}) takes 2 inputs, got {len(in_shapes)}")
    try:
        return tuple(np.broadcast_shapes(tuple(in_shapes[0]), tuple(in_shapes[1])))
    except ValueError:
        raise ShapeError(f"layer {layer.name!r}: cannot broadcast {in_shapes[0]} with {in_shapes[1]}") from None


@dataclass
class Add(Layer):
    """Elementwise sum of two tensors (residual add)."""

    op: ClassVar[str] = "add"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return _broadcast(self, in_shapes)


@dataclass
class Multiply(Layer):
    """Elementwise product with broadcasting (squeeze-excite gating)."""

    op: ClassVar[str] = "multiply"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return _broadcast(self, in_shapes)


@dataclass
class Pool2D(Layer):
    """Max or average pooling with explicit padding (avg excludes padded pixels, as Keras)."""

    kind: str = "max"
    pool: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    op: ClassVar[str] = "pool2d"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        h, w, c = _single(self, in_shapes, 3)
        t, b, lft, r = self.padding
        return (conv_out(h, self.pool[0], self.strides[0], t, b), conv_out(w, self.pool[1], self.strides[1], lft, r), c)


@dataclass
class GlobalPool(Layer):
    """Global average/max pooling over H and W."""

    kind: str = "avg"
    keepdims: bool = False
    op: ClassVar[str] = "globalpool"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        _h, _w, c = _single(self, in_shapes, 3)
        return (1, 1, c) if self.keepdims else (c,)


@dataclass
class Flatten(Layer):
    """Flatten to rank 1 (row-major over H, W, C as Keras)."""

    op: ClassVar[str] = "flatten"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return (int(np.prod(_single(self, in_shapes))),)


@dataclass
class Reshape(Layer):
    """Reshape to ``target`` (no batch axis; one -1 allowed)."""

    target: Shape = ()
    op: ClassVar[str] = "reshape"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        s = _single(self, in_shapes)
        n = int(np.prod(s))
        tgt = list(self.target)
        if tgt.count(-1) == 1:
            known = int(np.prod([d for d in tgt if d != -1]))
            tgt[tgt.index(-1)] = n // known if known else 0
        if int(np.prod(tgt)) != n:
            raise ShapeError(f"layer {self.name!r}: cannot reshape {s} to {tuple(self.target)}")
        return tuple(tgt)


@dataclass
class ZeroPad2D(Layer):
    """Zero padding ``(top, bottom, left, right)``."""

    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    op: ClassVar[str] = "zeropad2d"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        h, w, c = _single(self, in_shapes, 3)
        t, b, lft, r = self.padding
        return (h + t + b, w + lft + r, c)


@dataclass
class Crop2D(Layer):
    """Cropping ``(top, bottom, left, right)`` pixels off H and W (Keras Cropping2D)."""

    cropping: tuple[int, int, int, int] = (0, 0, 0, 0)
    op: ClassVar[str] = "crop2d"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        h, w, c = _single(self, in_shapes, 3)
        t, b, lft, r = self.cropping
        if min(self.cropping) < 0 or h - t - b <= 0 or w - lft - r <= 0:
            raise ShapeError(f"layer {self.name!r}: cropping {self.cropping} does not fit a {h}x{w} input")
        return (h - t - b, w - lft - r, c)


@dataclass
class Concat(Layer):
    """Concatenation of two or more tensors on the channel (last) axis."""

    op: ClassVar[str] = "concat"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        if len(in_shapes) < 2:
            raise ShapeError(f"layer {self.name!r} (concat) takes at least 2 inputs, got {len(in_shapes)}")
        first = tuple(in_shapes[0])
        if any(len(s) != len(first) or tuple(s[:-1]) != first[:-1] for s in in_shapes):
            raise ShapeError(f"layer {self.name!r}: cannot concatenate {list(map(tuple, in_shapes))} on the last axis")
        return (*first[:-1], sum(int(s[-1]) for s in in_shapes))


@dataclass
class Softmax(Layer):
    """Softmax over the last axis."""

    op: ClassVar[str] = "softmax"

    def infer_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return _single(self, in_shapes)


OPS: dict[str, type[Layer]] = {
    cls.op: cls
    for cls in (
        Input, Conv2D, Dense, BatchNorm, Activation, Affine, Add, Multiply,
        Pool2D, GlobalPool, Flatten, Reshape, ZeroPad2D, Crop2D, Concat, Softmax,
    )
}


def layer_from_attrs(op: str, name: str, inputs: list[str], attrs: dict[str, Any]) -> Layer:
    """Build a layer of type ``op`` from JSON attributes (lists become tuples)."""
    cls = OPS.get(op)
    if cls is None:
        raise ModelFileError(f"layer {name!r} has unknown op {op!r}; known ops: {', '.join(sorted(OPS))}.")
    kwargs: dict[str, Any] = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    for k, v in attrs.items():
        if k not in names:
            raise ModelFileError(f"layer {name!r} ({op}) has unknown attribute {k!r}.")
        kwargs[k] = tuple(v) if isinstance(v, list) else v
    return cls(name=name, inputs=list(inputs), **kwargs)
