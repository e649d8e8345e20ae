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

Each row is one handler in :mod:`codesign.export.qkeras_ops`, registered for its op class.

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
from typing import Any

import numpy as np
import tensorflow as tf
from qkeras import QActivation

from codesign.errors import UnsupportedLayerError
from codesign.export.qkeras_layers import (
    CodeAffine,
    CodeLUT,
    DyadicRequant,
    InputCodes,
    custom_objects,
    load_qkeras,
)
from codesign.export.qkeras_numeric import (
    constant_error,
    dyadic_value,
    gemm_multiplier,
    grid_quantizer,
    stored_kernel,
    tie_nudge,
)
from codesign.export.qkeras_ops import handler_for
from codesign.quant.ops import op_class
from codesign.quant.qir import QGraph, QNode, QTensor

BN_EPSILON = 2.0**-10  # var = 1 - eps is exact in float32, so sqrt(var + eps) == 1 exactly
IO_MODES = ("real", "codes")
INPUT_LAYER = "model_input"
K = tf.keras


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

    # ---- per node: the handler registered for its op class ---------------------------
    def node(self, n: QNode) -> tf.Tensor:
        """Keras layers for one QNode; returns the code-valued output tensor."""
        handler = handler_for(op_class(n.kind))
        if handler is None:
            raise UnsupportedLayerError(f"node {n.name!r} of kind {n.kind!r} has no QKeras export.")
        return handler(self, n, n.op, [self.t[i] for i in n.inputs], self.qg.tensors[n.output])

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
    "DyadicRequant",
    "ExportInfo",
    "InputCodes",
    "custom_objects",
    "dyadic_value",
    "export_qkeras",
    "gemm_multiplier",
    "grid_quantizer",
    "load_qkeras",
    "logits_model",
    "quantized_kernel",
    "stored_kernel",
    "tie_nudge",
    "to_qkeras",
]
