"""Export a quantized IR (``QGraph``) to a QKeras model that computes what the golden model computes.

What maps to what
-----------------
Inside the exported model every tensor is carried in **code units**: the Keras value of a
tensor is its integer code (``real = code * scale``). Each QKeras activation quantizer then
rounds and clamps onto an *integer* grid, which QKeras expresses exactly for any tensor
scale, and the real scales live in the constant multipliers between tensors. The reason:
QKeras 0.9 ``quantized_bits`` with a fixed ``alpha`` computes ``alpha * Q(x)`` (it does not
divide ``x`` by ``alpha`` before rounding), so it cannot round activations onto a
non-power-of-two grid ``k * s``; an integer grid with the scale folded into the neighbouring
multipliers can, and it is also what hls4ml represents exactly (``ap_fixed<b, b>``).

=================  ===========================================================================
QNode kind         Keras layers (``t`` = tensor in code units, ``M`` = dyadic ``mult*2^-shift``)
=================  ===========================================================================
conv, groups=1     [ZeroPadding2D] + ``QConv2D(padding='valid')``; kernel_quantizer
                   ``quantized_bits(w_bits, 0, symmetric=1, keep_negative=True, alpha=a)``
                   with the stored kernel ``code / 2^(w_bits-1)`` and the per-channel
                   ``a = 2^(w_bits-1) * M_c``, so the quantized kernel QKeras computes is
                   ``code * M_c = code * w_scale * s_x / s_y`` (the weight scale with the
                   requant ratio folded in); bias ``bias_code * M_c`` (float, no quantizer).
conv, depthwise    same with ``QDepthwiseConv2D`` (``depthwise_quantizer``; alpha ``[cin, mult]``)
conv, other groups ``UnsupportedLayerError`` naming the layer
dense              ``QDense``, as conv
fused act          NONE: ``QActivation(quantized_bits(b, b-1))``; RELU: ``quantized_relu(b, b)``;
                   RELU6: [``ReLU(max_value=six)`` when ``six < 2^b-1``] + ``quantized_relu``;
                   HSWISH: int16 clamp ``quantized_bits(16, 15)`` + the h-swish block below
add                ``BatchNormalization`` (a constant multiplier) on each input, ``Add``, act
mul                ``Multiply`` + constant multiplier + quantizer
avgpool            ZeroPadding2D + ones-kernel DepthwiseConv2D (exact window sums) +
                   :class:`CodeAffine` (the per-position multiplier) + quantizer
gavgpool           GlobalAveragePooling2D + constant multiplier ``H*W*M`` + quantizer
maxpool            ZeroPadding2D + MaxPooling2D (signed inputs are offset by ``-qmin`` first so
                   the zero padding never wins, as the golden model's ``-inf`` padding)
gmaxpool, pad,     GlobalMaxPooling2D, ZeroPadding2D, Flatten, Reshape, ReLU, ReLU(max_value=six)
flatten, reshape,
relu, relu6
hswish             ``r = ReLU(six)(t + three)``; ``Multiply([t, r])``; multiplier ``M``; quantizer
hsigmoid           ``ReLU(six)(t + three)``; multiplier ``M``; quantizer
lut (sigmoid)      :class:`CodeLUT` (``tf.gather`` on the integer table: exact)
affine             multiplier ``sign*M`` with offset; quantizer
requant            multiplier ``M``; quantizer
boundaries         ``io="real"``: :class:`InputCodes` (``x/s_in`` rounded half up) + input quantizer, ``Rescaling(s_out)``
                   named ``logits``, ``Softmax`` if ``qg.softmax``. ``io="codes"``: integer codes
                   in and out (the hardware view; used for hls4ml).
=================  ===========================================================================

``exact=True`` swaps every float multiplier below for :class:`DyadicRequant` /
:class:`DyadicAdd`, custom layers doing the golden model's int64 ``(x*M + 2^(s-1)) >> s``:
bit-exact, but not convertible by hls4ml (which gets the float form and its own exact types).

Constant multipliers are ``BatchNormalization`` layers with ``mean=0``, ``var=1-eps``,
``eps=2^-10`` (so ``sqrt(var+eps)`` is exactly 1): a per-channel ``gamma*x + beta`` that hls4ml
converts natively. :class:`CodeAffine` and :class:`CodeLUT` are small custom layers for what
QKeras/Keras cannot express (a per-position factor, a table lookup); they are registered as
Keras serializables and returned by :func:`custom_objects`.

Known approximations (float mode; ``exact=True`` has none)
---------------------------------------------------------
* Rounding ties are handled, not approximated: QKeras rounds with ``tf.round`` (half to
  even), the golden model half up. Exact ``.5`` ties are common when a multiplier has few
  fractional bits (a fused h-swish with ``six = 128`` divides by 128; a 4x4 global average
  with equal scales divides by 16). Every multiplier layer therefore adds
  :func:`tie_nudge` ``= 2^-(F+1)`` (half the lattice step of ``M``) to its bias, which turns
  ties into round-up and moves no other value across a boundary. Without it tiny_mobilenet at
  6 bits was off by up to 2 LSB on 31% of its outputs.
* Input ties: the ``io="real"`` boundary is :class:`InputCodes` (float64 ``floor(x/s + 1/2)``),
  not ``Rescaling`` + ``tf.round``, so pixels exactly halfway between two codes round up as in the
  golden model (with ``Rescaling``, uniform INT4 resnet_s on Fashion-MNIST had 0.3 % of input codes
  one lower, up to 18 LSB at the stem's output and 13 LSB at the logits).
* Float32: the requant multiplier is a float32 (24-bit mantissa) where the golden model uses
  a 31-bit dyadic multiplier on the exact int32 accumulator, and with ``fold_requant=True``
  it multiplies inside the conv sum. A value within ~1e-5 of a rounding boundary can round
  the other way; the slip may grow a few codes through inner layers and reaches the output
  as 1 LSB on resnet-style models, but squeeze-excite gates and ReLU6/h-swish stacks amplify
  it. Measured, float mode (256 images x 10 outputs, uniform 2/3/4/6/8 bit and mixed):
  tiny_resnet/tiny_mobilenet 0 LSB (one output at 1 LSB in one seed); ``resnet_s`` max 1 LSB
  (1.0 % of outputs at 8 bit); ``mobilenetv2_s`` max 2 LSB (6.1 % at 8 bit, 0 at <= 4 bit);
  ``mobilenetv3_s`` max 6 LSB at 8 bit (70 % of outputs, top-1 agreement 98 %), 0 at 4 bit.
  ``exact=True`` measured 0 LSB and 100 % top-1 on all of these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from qkeras import QActivation, QConv2D, QDense, QDepthwiseConv2D, quantized_bits, quantized_relu
from qkeras.utils import _add_supported_quantized_objects

from codesign.errors import UnsupportedLayerError
from codesign.quant.dyadic import HSWISH_CLAMP, Act
from codesign.quant.qgraph import QGraph, QNode, QTensor

BN_EPSILON = 2.0**-10  # var = 1 - eps is exact in float32, so sqrt(var + eps) == 1 exactly
IO_MODES = ("real", "codes")
INPUT_LAYER = "model_input"
K = tf.keras


# ------------------------------------------------------------------------------------------
# custom layers for what Keras/QKeras cannot express
# ------------------------------------------------------------------------------------------


@K.utils.register_keras_serializable(package="codesign")
class CodeAffine(tf.keras.layers.Layer):
    """``y = x * factor + offset`` with constant arrays broadcast on the non-batch axes."""

    def __init__(self, factor: Any, offset: Any = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = np.asarray(factor, np.float64).tolist()
        self.offset = np.asarray(offset, np.float64).tolist()

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """Apply the constant scale and offset."""
        return x * tf.constant(self.factor, tf.float32) + tf.constant(self.offset, tf.float32)

    def get_config(self) -> dict[str, Any]:
        """Keras config (the constants as nested lists)."""
        return {**super().get_config(), "factor": self.factor, "offset": self.offset}


@K.utils.register_keras_serializable(package="codesign")
class CodeLUT(tf.keras.layers.Layer):
    """Integer table lookup ``y = table[x - offset]`` on code-valued inputs (exact)."""

    def __init__(self, table: Any, offset: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = [int(v) for v in np.ravel(table)]
        self.offset = int(offset)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """Look the codes up (out-of-table codes clamp to the table ends)."""
        idx = tf.cast(tf.round(x), tf.int32) - self.offset
        idx = tf.clip_by_value(idx, 0, len(self.table) - 1)
        return tf.gather(tf.constant(self.table, tf.float32), idx)

    def get_config(self) -> dict[str, Any]:
        """Keras config."""
        return {**super().get_config(), "table": self.table, "offset": self.offset}


@K.utils.register_keras_serializable(package="codesign")
class InputCodes(tf.keras.layers.Layer):
    """Real input -> input codes ``floor(x / scale + 1/2)`` in float64, as the golden model rounds.

    A float32 ``Rescaling(1/scale)`` + ``tf.round`` differs at ties: 8-bit pixels over scales
    such as 0.064 give exact halves (0.8 / 0.064 = 12.5 in float32, rounded to even: 12; the
    golden model's float64 quotient of the float32 pixel is 12.5000002: 13). Uniform INT4
    resnet_s had 0.3 % of its input codes one lower, up to 13 LSB at the logits.
    """

    def __init__(self, scale: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """Round half up onto the input grid (no gradient is needed at the input)."""
        return tf.cast(tf.floor(tf.cast(x, tf.float64) / self.scale + 0.5), tf.float32)

    def get_config(self) -> dict[str, Any]:
        """Keras config."""
        return {**super().get_config(), "scale": self.scale}


def _int_const(v: Any) -> tf.Tensor:
    return tf.constant(np.asarray(v, np.int64))


@K.utils.register_keras_serializable(package="codesign")
class DyadicRequant(tf.keras.layers.Layer):
    """Exact golden requant ``((round(x*pre) + bias) * mult + 2^(shift-1)) >> shift + offset`` in int64.

    ``mult``/``shift``/``bias``/``offset`` broadcast on the non-batch axes (per channel or per
    position); ``mult`` may be negative (a signed affine).
    """

    def __init__(self, mult: Any, shift: Any, bias: Any = 0, offset: Any = 0, pre: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mult = np.asarray(mult, np.int64).tolist()
        self.shift = np.asarray(shift, np.int64).tolist()
        self.bias = np.asarray(bias, np.int64).tolist()
        self.offset = np.asarray(offset, np.int64).tolist()
        self.pre = float(pre)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """Integer requantization of code-valued inputs."""
        xi = tf.cast(tf.round(x * self.pre), tf.int64) + _int_const(self.bias)
        shift = np.asarray(self.shift, np.int64)
        rnd = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
        y = tf.bitwise.right_shift(xi * _int_const(self.mult) + _int_const(rnd), _int_const(shift))
        return tf.cast(y + _int_const(self.offset), tf.float32)

    def get_config(self) -> dict[str, Any]:
        """Keras config."""
        return {**super().get_config(), "mult": self.mult, "shift": self.shift, "bias": self.bias,
                "offset": self.offset, "pre": self.pre}


@K.utils.register_keras_serializable(package="codesign")
class DyadicAdd(tf.keras.layers.Layer):
    """Exact golden residual add ``(a*mult_a + b*mult_b + 2^(shift-1)) >> shift`` in int64."""

    def __init__(self, mult_a: int, mult_b: int, shift: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mult_a, self.mult_b, self.shift = int(mult_a), int(mult_b), int(shift)

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        """Integer sum of two code-valued inputs."""
        a, b = (tf.cast(tf.round(t), tf.int64) for t in inputs)
        rnd = (1 << (self.shift - 1)) if self.shift > 0 else 0
        s = a * self.mult_a + b * self.mult_b + rnd
        return tf.cast(tf.bitwise.right_shift(s, tf.constant(self.shift, tf.int64)), tf.float32)

    def get_config(self) -> dict[str, Any]:
        """Keras config."""
        return {**super().get_config(), "mult_a": self.mult_a, "mult_b": self.mult_b, "shift": self.shift}


def custom_objects() -> dict[str, Any]:
    """QKeras quantizers/layers plus codesign's custom layers, for ``load_model``."""
    objs: dict[str, Any] = {}
    _add_supported_quantized_objects(objs)
    objs.update(CodeAffine=CodeAffine, CodeLUT=CodeLUT, DyadicRequant=DyadicRequant, DyadicAdd=DyadicAdd,
                InputCodes=InputCodes)
    return objs


def load_qkeras(path: str | Path) -> tf.keras.Model:
    """Load a model saved from :func:`to_qkeras` (``.h5``)."""
    return K.models.load_model(str(path), custom_objects=custom_objects(), compile=False)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def constant_error(beta: Any, bias: Any, mult: Any, shift: Any, offset: Any) -> float:
    """Largest ``|beta - (bias*M + offset + tie_nudge)|`` of a float64 requant offset, computed exactly.

    ``bias * M`` carries the mantissa bits of both factors; past 53 bits float64 (and the C++
    double literal hls4ml writes) rounds it, which a rounding boundary can turn into 1 LSB.
    """
    from fractions import Fraction

    arrays = np.broadcast_arrays(np.asarray(beta, np.float64), np.asarray(bias, np.int64), np.asarray(mult, np.int64),
                                 np.asarray(shift, np.int64), np.asarray(offset, np.int64))
    worst = Fraction(0)
    for b, bi, mu, sh, off in zip(*(a.ravel() for a in arrays)):
        f = int(lattice_bits(int(mu), int(sh)))
        want = Fraction(int(bi) * int(mu), 1 << int(sh)) + int(off) + (Fraction(1, 1 << (f + 1)) if f else 0)
        worst = max(worst, abs(Fraction(float(b)) - want))
    return float(worst)


def dyadic_value(mult: Any, shift: Any) -> np.ndarray:
    """The real number(s) ``mult * 2^-shift`` in float64."""
    return np.asarray(mult, np.float64) * np.exp2(-np.asarray(shift, np.float64))


def lattice_bits(mult: Any, shift: Any) -> np.ndarray:
    """Fractional bits ``F`` of ``mult * 2^-shift`` in lowest terms (0 for a zero multiplier)."""
    m = np.atleast_1d(np.asarray(mult, np.int64))
    s = np.broadcast_to(np.asarray(shift, np.int64), m.shape)
    out = np.zeros(m.shape, np.int64)
    for i, (mi, si) in enumerate(zip(m.ravel(), s.ravel())):
        mi = int(mi)
        tz = (mi & -mi).bit_length() - 1 if mi else 0
        out.flat[i] = max(int(si) - tz, 0) if mi else 0
    return out.reshape(np.shape(mult)) if np.ndim(mult) else out[0]


def tie_nudge(mult: Any, shift: Any) -> np.ndarray:
    """``2^-(F+1)``: added before a QKeras rounding so that ties round half up, as the golden model.

    An integer times ``M = mult * 2^-shift`` lies on the lattice ``2^-F``. Half a lattice step
    moves exact ``.5`` ties above the boundary (``tf.round`` rounds ties to even) and moves
    no other lattice point across one; for small ``F`` (where ties actually occur, e.g.
    ``M = 1/128``) float32 holds the value and the nudge exactly. An integer multiplier
    (``F = 0``) makes no ties, and half a step would create them: its nudge is 0.
    """
    f = np.asarray(lattice_bits(mult, shift), np.float64)
    return np.where(f > 0, np.exp2(-(f + 1.0)), 0.0)


def grid_quantizer(t: QTensor, relu: bool = False) -> Any:
    """QKeras quantizer rounding code-valued inputs onto the integer range of ``t``.

    ``quantized_bits(b, b-1)`` computes ``clip(round(x), -2^(b-1), 2^(b-1)-1)``;
    ``quantized_bits(b, b, keep_negative=False)`` and ``quantized_relu(b, b)`` compute
    ``clip(round(x), 0, 2^b-1)``.
    """
    if t.signed:
        return quantized_bits(t.bits, t.bits - 1, keep_negative=True)
    if relu:
        return quantized_relu(t.bits, t.bits)
    return quantized_bits(t.bits, t.bits, keep_negative=False)


def weight_quantizer(w_bits: int, alpha: np.ndarray) -> Any:
    """Narrow-range ``quantized_bits`` whose output is ``alpha * code / 2^(w_bits-1)``."""
    # a (nested) list rather than an array: it survives the .h5 JSON config round trip
    return quantized_bits(w_bits, 0, symmetric=1, keep_negative=True, alpha=np.asarray(alpha, np.float64).tolist())


def gemm_multiplier(node: QNode) -> np.ndarray:
    """Per-output-channel requant multiplier ``M_c = s_x * w_scale_c / s_y`` (dyadic value)."""
    return dyadic_value(node.params["mult"], node.params["shift"])


def stored_kernel(node: QNode) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel, alpha)`` as the Keras layer stores them, in Keras kernel layout.

    Depthwise kernels go from IR ``[kh, kw, 1, cin*m]`` to Keras ``[kh, kw, cin, m]`` with
    the same channel order (IR output channel ``c*m + j`` is Keras ``(c, j)``).
    """
    codes = np.asarray(node.params["weight"], np.float64)
    m = 2.0 ** (node.attrs["w_bits"] - 1)
    alpha = gemm_multiplier(node) * m
    if node.kind == "conv" and _is_depthwise(node):
        kh, kw, _one, cout = codes.shape
        cin = node.attrs["groups"]
        mult = cout // cin
        codes = codes.reshape(kh, kw, cin, mult)
        alpha = alpha.reshape(cin, mult)
    return codes / m, alpha


def _is_depthwise(node: QNode) -> bool:
    return node.attrs.get("groups", 1) > 1 and node.params["weight"].shape[2] == 1


class _Exporter:
    """Builds the Keras graph node by node; weights are set once the model exists."""

    def __init__(self, qg: QGraph, io: str, fold_requant: bool, exact: bool = False, hls: bool = False) -> None:
        if io not in IO_MODES:
            raise ValueError(f"io must be one of {IO_MODES}, got {io!r}")
        self.qg = qg
        self.io = io
        self.exact = exact
        self.hls = hls
        self.fold_requant = fold_requant and not exact
        self.t: dict[str, tf.Tensor] = {}
        self.pending: list[tuple[tf.keras.layers.Layer, list[np.ndarray]]] = []
        self.names: set[str] = set()
        self.info = ExportInfo()
        self.renamed: dict[str, str] = {}  # hls form: layer names made C++ identifiers
        self.current = ""  # the QNode being exported

    # ---- small builders -------------------------------------------------------------
    def _name(self, name: str) -> str:
        if name in self.names:
            raise UnsupportedLayerError(f"exported Keras layer name {name!r} is not unique in {self.qg.name!r}.")
        self.names.add(name)
        return name

    def layer(self, layer: tf.keras.layers.Layer, *inputs: tf.Tensor, weights: list[np.ndarray] | None = None) -> tf.Tensor:
        """Apply a layer (checking its name is unique) and remember its constant weights."""
        if self.hls and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", layer.name):
            # hls4ml turns layer names into C++ identifiers (Keras op layers are named e.g. tf.math.add)
            new = re.sub(r"[^A-Za-z0-9_]", "_", layer.name).lstrip("_0123456789") or "layer"
            while new in self.names:
                new += "_"
            self.renamed[layer.name] = new
            layer._name = new  # before the first call: the functional graph records this name
        self._name(layer.name)
        self.info.layer_node[layer.name] = self.current
        out = layer(list(inputs) if len(inputs) > 1 else inputs[0])
        if weights is not None:
            self.pending.append((layer, weights))
        return out

    def affine(self, x: tf.Tensor, name: str, gamma: Any = 1.0, beta: Any = 0.0) -> tf.Tensor:
        """Constant per-channel ``gamma * x + beta`` as a BatchNormalization layer."""
        c = int(x.shape[-1])
        g = np.broadcast_to(np.asarray(gamma, np.float64), (c,)).astype(np.float32)
        b = np.broadcast_to(np.asarray(beta, np.float64), (c,)).astype(np.float32)
        var = np.full(c, 1.0 - BN_EPSILON, np.float32)
        bn = K.layers.BatchNormalization(epsilon=BN_EPSILON, name=name)
        self.info.affine[name] = (np.broadcast_to(np.asarray(gamma, np.float64), (c,)).copy(),
                                  np.broadcast_to(np.asarray(beta, np.float64), (c,)).copy())
        return self.layer(bn, x, weights=[g, b, np.zeros(c, np.float32), var])

    def rq(self, x: tf.Tensor, name: str, mult: Any, shift: Any, bias: Any = 0, offset: Any = 0,
           pre: float = 1.0) -> tf.Tensor:
        """Requant ``(x*pre + bias) * M + offset`` (rounded by the following quantizer).

        Float mode: a constant multiplier layer with the half-up :func:`tie_nudge`; exact mode:
        :class:`DyadicRequant` (integer arithmetic, already rounded).
        """
        if self.exact:
            return self.layer(DyadicRequant(mult, shift, bias, offset, pre, name=name), x)
        m = dyadic_value(mult, shift)
        beta = np.asarray(bias, np.float64) * m + np.asarray(offset, np.float64) + tie_nudge(mult, shift)
        err = constant_error(beta, bias, mult, shift, offset)
        if err > 0:
            self.info.rounded[name] = err
        if np.ndim(m) > 1:  # per position (avg-pool windows)
            self.info.affine[name] = (np.asarray(m * pre, np.float64), np.asarray(beta, np.float64))
            return self.layer(CodeAffine(m * pre, beta, name=name), x)
        return self.affine(x, name, gamma=m * pre, beta=beta)

    def quantize(self, x: tf.Tensor, t: QTensor, name: str, relu: bool = False) -> tf.Tensor:
        """Round and clamp onto the integer range of ``t``."""
        self.info.quantizer[name] = t
        return self.layer(QActivation(grid_quantizer(t, relu), name=name), x)

    def pad(self, x: tf.Tensor, padding: tuple[int, int, int, int], name: str) -> tf.Tensor:
        """Explicit zero padding ``(top, bottom, left, right)`` (identity when all zero)."""
        t, b, lft, r = padding
        if not (t or b or lft or r):
            return x
        return self.layer(K.layers.ZeroPadding2D(((t, b), (lft, r)), name=name), x)

    def clip(self, x: tf.Tensor, six: int, name: str) -> tf.Tensor:
        """``clip(round(x), 0, six)`` for an integer ``six`` (ReLU6 in code units).

        QKeras view: ``ReLU(max_value=six)``. hls4ml ignores ``max_value`` (its ``relu6`` clamps
        at 6.0 only), so ``hls=True`` builds the clamp from saturating integer types, which
        hls4ml represents exactly: ``w = sat_[0,K](round(x))`` with ``K = 2^k - 1 >= six``;
        then ``min(w, six) = sat_[0,K](w + c) - c`` with ``c = K - six``.
        """
        if not self.hls:
            return self.layer(K.layers.ReLU(max_value=float(six), name=name), x)
        k = max(int(six).bit_length(), 1)
        sat = QTensor(name, (), 1.0, k, False)
        w = self.quantize(x, sat, f"{name}_sat", relu=True)
        c = (1 << k) - 1 - int(six)
        if c == 0:
            return w
        w = self.affine(w, f"{name}_up", beta=c)
        w = self.quantize(w, sat, f"{name}_cap")
        return self.affine(w, f"{name}_down", beta=-c)

    def hswish_block(self, x: tf.Tensor, three: int, six: int, md: tuple[Any, Any], out: QTensor, name: str) -> tf.Tensor:
        """``requant(x * clip(x + three, 0, six), M)``, clamped to ``out``; ``md = (mult, shift)``."""
        r = self.affine(x, f"{name}_plus3", beta=three)
        r = self.clip(r, six, f"{name}_relu6")
        p = self.layer(K.layers.Multiply(name=f"{name}_mul"), x, r)
        p = self.rq(p, f"{name}_rq", *md)
        return self.quantize(p, out, f"{name}_q")

    # ---- per node kind --------------------------------------------------------------
    def gemm(self, n: QNode, x: tf.Tensor, out: QTensor) -> tf.Tensor:
        """Conv/dense (requant folded into alpha, or a separate multiplier), then the activation."""
        kernel, alpha = stored_kernel(n)
        m_c = gemm_multiplier(n)
        bias = np.asarray(n.params["bias"], np.float64) * m_c + tie_nudge(n.params["mult"], n.params["shift"])
        w_bits = n.attrs["w_bits"]
        if self.fold_requant:
            wq = weight_quantizer(w_bits, alpha)
            weights = [kernel.astype(np.float32), bias.astype(np.float32)]
        else:  # integer kernel codes; bias and multiplier go to a '<name>_rq' layer
            kernel = kernel * 2.0 ** (w_bits - 1)
            wq = quantized_bits(w_bits, w_bits - 1, symmetric=1, keep_negative=True)
            weights = [kernel.astype(np.float32)]
        # hls form: the integer bias codes join the exact integer accumulator, so the multiplier
        # layer only holds dyadic constants (a bias * M constant can need more than 53 bits)
        int_bias = self.hls and not self.fold_requant
        if int_bias:
            weights.append(np.asarray(n.params["bias"], np.float32))
            self.info.int_bias[n.name] = np.asarray(n.params["bias"], np.int64)
        kw: dict[str, Any] = {"name": n.name, "use_bias": self.fold_requant or int_bias}
        if n.kind == "dense":
            layer = QDense(kernel.shape[-1], kernel_quantizer=wq, **kw)
        else:
            x = self.pad(x, n.attrs["padding"], f"{n.name}_zpad")
            kw.update(strides=tuple(n.attrs["strides"]), padding="valid")
            if n.attrs["groups"] == 1:
                layer = QConv2D(kernel.shape[-1], tuple(kernel.shape[:2]), kernel_quantizer=wq, **kw)
            elif _is_depthwise(n):
                layer = QDepthwiseConv2D(tuple(kernel.shape[:2]), depth_multiplier=kernel.shape[-1],
                                         depthwise_quantizer=wq, **kw)
            else:
                raise UnsupportedLayerError(
                    f"layer {n.name!r}: grouped convolution with groups={n.attrs['groups']} and "
                    f"{n.params['weight'].shape[2]} input channels per group has no QKeras layer "
                    "(only groups=1 and depthwise export)."
                )
        y = self.layer(layer, x, weights=weights)
        if not self.fold_requant:
            y = self.rq(y, f"{n.name}_rq", n.params["mult"], n.params["shift"], bias=0 if int_bias else n.params["bias"])
        return self.activation(n, y, out)

    def activation(self, n: QNode, y: tf.Tensor, out: QTensor) -> tf.Tensor:
        """The fused activation of a conv/dense/add node, then the output quantizer."""
        act = Act(n.attrs.get("act", 0))
        if act == Act.HSWISH:
            # the golden h-swish clamps its input to [-HSWISH_CLAMP, HSWISH_CLAMP - 1] first
            clamp_bits = HSWISH_CLAMP.bit_length()
            q = self.layer(QActivation(quantized_bits(clamp_bits, clamp_bits - 1, keep_negative=True),
                                       name=f"{n.name}_q16"), y)
            md = (n.attrs["hs_mult"], n.attrs["hs_shift"])
            return self.hswish_block(q, n.attrs["three"], n.attrs["six"], md, out, f"{n.name}_hswish")
        if act == Act.RELU6 and n.attrs["six"] < out.qmax:
            y = self.clip(y, n.attrs["six"], f"{n.name}_relu6")
        return self.quantize(y, out, f"{n.name}_q", relu=act in (Act.RELU, Act.RELU6))

    def node(self, n: QNode) -> tf.Tensor:
        """Keras layers for one QNode; returns the code-valued output tensor."""
        ins = [self.t[i] for i in n.inputs]
        out = self.qg.tensors[n.output]
        x = ins[0]
        k, p, a = n.kind, n.params, n.attrs
        if k in ("conv", "dense"):
            return self.gemm(n, x, out)
        if k == "add":
            if self.exact:
                y = self.layer(DyadicAdd(int(p["mult_a"]), int(p["mult_b"]), int(p["shift"]), name=n.name), ins[0], ins[1])
                return self.activation(n, y, out)
            m = dyadic_value(p["mult_a"], p["shift"]), dyadic_value(p["mult_b"], p["shift"])
            nudge = np.minimum(tie_nudge(p["mult_a"], p["shift"]), tie_nudge(p["mult_b"], p["shift"]))
            xa = self.affine(ins[0], f"{n.name}_rqa", gamma=m[0], beta=nudge)
            xb = self.affine(ins[1], f"{n.name}_rqb", gamma=m[1])
            return self.activation(n, self.layer(K.layers.Add(name=n.name), xa, xb), out)
        if k == "mul":
            a, b = ins
            if self.hls and int(np.prod(a.shape[1:])) < int(np.prod(b.shape[1:])):
                a, b = b, a  # hls4ml's io_parallel Multiply broadcasts its second input (index mod size)
            y = self.layer(K.layers.Multiply(name=n.name), a, b)
            return self.quantize(self.rq(y, f"{n.name}_rq", p["mult"], p["shift"]), out, f"{n.name}_q")
        if k == "avgpool":
            xp = self.pad(x, a["padding"], f"{n.name}_zpad")
            # window sums with a ones depthwise kernel: exact integers (an average would not be)
            c = int(xp.shape[-1])
            pool = K.layers.DepthwiseConv2D(tuple(a["pool"]), tuple(a["strides"]), "valid", use_bias=False, name=n.name)
            y = self.layer(pool, xp, weights=[np.ones((*a["pool"], c, 1), np.float32)])
            mult, shift = np.asarray(p["mult"]), np.asarray(p["shift"])
            if np.all(mult == mult.flat[0]) and np.all(shift == shift.flat[0]):  # no padded window: one multiplier
                mult, shift = mult.flat[0], shift.flat[0]
            else:  # per output position [OH, OW, 1]
                mult, shift = mult.reshape(mult.shape[1:]), shift.reshape(shift.shape[1:])
            y = self.rq(y, f"{n.name}_rq", mult, shift)
            return self.quantize(y, out, f"{n.name}_q")
        if k == "gavgpool":
            h, w = self.qg.tensors[n.inputs[0]].shape[:2]
            if self.hls:  # exact integer sums: hls4ml's average divides with truncation
                c = int(x.shape[-1])
                pool = K.layers.DepthwiseConv2D((h, w), 1, "valid", use_bias=False, name=n.name)
                y = self.layer(pool, x, weights=[np.ones((h, w, c, 1), np.float32)])
                if not a["keepdims"]:
                    y = self.layer(K.layers.Reshape((c,), name=f"{n.name}_flat"), y)
                y = self.rq(y, f"{n.name}_rq", p["mult"], p["shift"])
                return self.quantize(y, out, f"{n.name}_q")
            y = self.layer(K.layers.GlobalAveragePooling2D(keepdims=a["keepdims"], name=n.name), x)
            y = self.rq(y, f"{n.name}_rq", p["mult"], p["shift"], pre=float(h * w))
            return self.quantize(y, out, f"{n.name}_q")
        if k == "maxpool":
            src = self.qg.tensors[n.inputs[0]]
            offset = -src.qmin if (src.signed and any(a["padding"])) else 0
            if offset:
                x = self.affine(x, f"{n.name}_shift_up", beta=offset)
            x = self.pad(x, a["padding"], f"{n.name}_zpad")
            y = self.layer(K.layers.MaxPooling2D(a["pool"], a["strides"], "valid", name=n.name), x)
            return self.affine(y, f"{n.name}_shift_down", beta=-offset) if offset else y
        if k == "gmaxpool":
            return self.layer(K.layers.GlobalMaxPooling2D(keepdims=a["keepdims"], name=n.name), x)
        if k == "pad":
            t, b, lft, r = a["padding"]
            return self.layer(K.layers.ZeroPadding2D(((t, b), (lft, r)), name=n.name), x)
        if k == "flatten":
            return self.layer(K.layers.Flatten(name=n.name), x)
        if k == "reshape":
            return self.layer(K.layers.Reshape(tuple(a["target"]), name=n.name), x)
        if k == "relu":
            return self.layer(K.layers.ReLU(name=n.name), x)
        if k == "relu6":
            return self.clip(x, a["six"], n.name)
        if k == "hswish":
            return self.hswish_block(x, a["three"], a["six"], (p["mult"], p["shift"]), out, n.name)
        if k == "hsigmoid":
            r = self.affine(x, f"{n.name}_plus3", beta=a["three"])
            r = self.clip(r, a["six"], f"{n.name}_relu6")
            r = self.rq(r, f"{n.name}_rq", p["mult"], p["shift"])
            return self.quantize(r, out, f"{n.name}_q")
        if k == "lut":
            return self.layer(CodeLUT(p["lut"], a["offset"], name=n.name), x)
        if k == "affine":
            signed_mult = np.asarray(p["mult"], np.int64) * np.asarray(p["sign"], np.int64)
            y = self.rq(x, n.name, signed_mult, p["shift"], offset=p["offset"])
            return self.quantize(y, out, f"{n.name}_q")
        if k == "requant":
            return self.quantize(self.rq(x, n.name, p["mult"], p["shift"]), out, f"{n.name}_q")
        raise UnsupportedLayerError(f"node {n.name!r} of kind {k!r} has no QKeras export.")

    # ---- whole model ----------------------------------------------------------------
    def build(self, name: str) -> ExportInfo:
        """Input boundary, every node, output boundary; then set the constant weights."""
        qg = self.qg
        tin = qg.tensors[qg.input]
        # not the IR name: hls4ml reserves the layer name 'input'
        inp = K.Input(shape=tuple(tin.shape), name=self._name(INPUT_LAYER))
        x = inp
        if self.io == "real":
            x = self.layer(InputCodes(tin.scale, name="input_to_codes"), x)
            x = self.quantize(x, tin, "input_q")
        self.t[qg.input] = x
        self.info.quantizer["input_q" if self.io == "real" else INPUT_LAYER] = tin
        for n in qg.nodes:
            self.current = n.name
            try:
                self.t[n.output] = self.node(n)
            except Exception as err:
                # Read by codesign.export.runner. add_note() is 3.11+; on 3.10 set the list it appends to.
                note = f"while exporting node {n.name!r}"
                err.__notes__ = [*getattr(err, "__notes__", []), note]  # type: ignore[attr-defined]
                raise
            self.info.tensor_layer[n.output] = self.t[n.output]._keras_history.layer.name
        self.current = ""
        y = self.t[qg.output]
        if self.io == "real":
            y = self.layer(K.layers.Rescaling(qg.tensors[qg.output].scale, name="logits"), y)
            if qg.softmax:
                y = self.layer(K.layers.Softmax(name="softmax"), y)
        model = tf.keras.Model(inp, y, name=name)
        for layer, weights in self.pending:
            layer.set_weights(weights)
        self.info.model = model
        if self.renamed:
            _rename_keys(self.info, self.renamed)
        return self.info


def _rename_keys(info: ExportInfo, renamed: dict[str, str]) -> None:
    """Maps keyed by a layer's name before :meth:`_Exporter.layer` renamed it follow the rename."""
    for attr in ("affine", "quantizer", "int_bias", "rounded"):
        setattr(info, attr, {renamed.get(k, k): v for k, v in getattr(info, attr).items()})


@dataclass
class ExportInfo:
    """What each Keras layer of an export stands for (read by the hls4ml exporter)."""

    model: Any = None
    layer_node: dict[str, str] = field(default_factory=dict)  # Keras layer -> QNode name ('' = boundary)
    affine: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # BN -> (gamma, beta)
    quantizer: dict[str, QTensor] = field(default_factory=dict)  # layer whose output is on t's grid
    tensor_layer: dict[str, str] = field(default_factory=dict)  # QTensor name -> Keras layer producing it
    int_bias: dict[str, np.ndarray] = field(default_factory=dict)  # conv/dense layer -> integer bias codes (hls form)
    rounded: dict[str, float] = field(default_factory=dict)  # multiplier layer -> error of its float64 offset


def export_qkeras(qg: QGraph, io: str = "real", fold_requant: bool = True, exact: bool = False,
                  name: str | None = None, hls: bool = False) -> ExportInfo:
    """Like :func:`to_qkeras`, also returning what each Keras layer stands for.

    ``hls=True`` builds the form the hls4ml export converts: ReLU6 clamps from saturating
    quantizers, global averages as exact window sums, the broadcast operand of a multiply
    second (see :meth:`_Exporter.clip`). It computes the same codes.
    """
    return _Exporter(qg, io, fold_requant, exact, hls).build(name or f"{qg.name}_qkeras")


def to_qkeras(qg: QGraph, io: str = "real", fold_requant: bool = True, exact: bool = False,
              name: str | None = None) -> tf.keras.Model:
    """Build a QKeras model computing ``qg`` (see the module docstring for the mapping).

    ``io="real"``: float input, probabilities out (or dequantized outputs without softmax);
    the pre-softmax layer is named ``logits``. ``io="codes"``: integer input codes in,
    integer output codes out (pre-softmax), as the hardware sees them.

    ``fold_requant=True`` folds each conv/dense requant multiplier into the kernel
    quantizer's per-channel ``alpha``. ``False`` keeps integer kernel codes
    (``quantized_bits(w_bits, w_bits-1)``, no bias) followed by a ``<name>_rq`` multiplier
    layer holding ``M_c`` and the bias: the form the hls4ml export uses, since hls4ml 1.3's
    alpha factorisation cannot read a fixed per-channel alpha (it calls ``scale.numpy()``).

    ``exact=True`` replaces every float32 requant multiplier by the integer
    :class:`DyadicRequant`/:class:`DyadicAdd` layers (implies integer kernels): bit-exact with
    the golden model, at the price of custom layers that hls4ml does not convert.
    """
    return export_qkeras(qg, io, fold_requant, exact, name).model


def logits_model(model: tf.keras.Model) -> tf.keras.Model:
    """The sub-model ending at the ``logits`` layer of an ``io="real"`` export."""
    return tf.keras.Model(model.inputs, model.get_layer("logits").output)


def quantized_kernel(model: tf.keras.Model, layer_name: str) -> np.ndarray:
    """The kernel QKeras actually uses in ``layer_name`` (its quantizer applied to the weights)."""
    layer = model.get_layer(layer_name)
    q = layer.depthwise_quantizer_internal if hasattr(layer, "depthwise_quantizer_internal") else layer.kernel_quantizer_internal
    w = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel
    return np.asarray(q(w))


__all__ = [
    "CodeAffine",
    "CodeLUT",
    "ExportInfo",
    "custom_objects",
    "dyadic_value",
    "export_qkeras",
    "grid_quantizer",
    "load_qkeras",
    "logits_model",
    "quantized_kernel",
    "stored_kernel",
    "to_qkeras",
]
