"""The quantized IR: integer nodes with every constant the golden model and hardware need.

``quantize_model(graph, bitconfig, calib_x)`` folds BN, calibrates activation ranges, fuses
ReLU/ReLU6/h-swish into the producing Conv2D/Dense/Add, decides every tensor's width and
sign, and derives integer weights, int32 biases and dyadic multipliers.

Tensor widths: a quantizable layer asks for its ``a_bits`` on its input tensor; a
*transparent* op (zero-pad, max-pool, flatten, reshape, standalone ReLU/ReLU6: ops that keep
the scale) forwards what its consumers ask for; every other op (residual add, SE multiply,
pooling, ...) asks for ``default_act_bits``, so shared streams such as a ResNet's identity
path stay wide. A tensor takes the largest width asked for, or ``default_act_bits`` when
nobody reads it. A quantizable layer that is
asked to read a wider tensor than its ``a_bits`` gets an explicit ``requant`` node in front.

Signedness is structural: outputs of ReLU/ReLU6/h-sigmoid/sigmoid (and ops that preserve
non-negativity) are unsigned; the input is unsigned when the calibration data is >= 0.

Grids the source model fixed (``graph.hints``, from QKeras quantizers) replace calibration:
a tensor whose width equals its quantizer's takes that quantizer's scale and sign, and a
GEMM whose ``w_bits`` equal its kernel quantizer's takes that quantizer's per-channel step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict, cast

import numpy as np

from codesign.digest import array_digest
from codesign.errors import UnsupportedLayerError
from codesign.graph.ir import (
    Activation,
    Add,
    Affine,
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
    Shape,
    Softmax,
    ZeroPad2D,
)
from codesign.graph.ops import pool_counts
from codesign.graph.quant_hints import QuantHints, WeightGrid
from codesign.quant.bitconfig import BitConfig
from codesign.quant.calibrate import TensorRange, calibrate
from codesign.quant.dyadic import (
    HSWISH_CLAMP,
    INT32_MAX,
    INT32_MIN,
    MAX_SHIFT,
    Act,
    ActParams,
    code_dtype,
    qrange,
    quantize,
    quantize_multiplier,
    quantize_multipliers,
    round_half_up,
)
from codesign.quant.fold import fold_batchnorm
from codesign.quant.gptq import WEIGHT_ROUNDINGS, LayerGram, gptq_codes, input_gram

FUSABLE_ACTS = {"relu": Act.RELU, "relu6": Act.RELU6, "hswish": Act.HSWISH}
UNSIGNED_ACTS = {"relu", "relu6", "hsigmoid", "sigmoid"}
TRANSPARENT_KINDS = {"pad", "crop", "maxpool", "gmaxpool", "flatten", "reshape", "relu", "relu6"}


@dataclass
class QTensor:
    """An integer tensor: ``real = code * scale`` with codes in the (bits, signed) range."""

    name: str
    shape: Shape
    scale: float
    bits: int
    signed: bool

    @property
    def qmin(self) -> int:
        """Smallest code."""
        return qrange(self.bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        """Largest code."""
        return qrange(self.bits, self.signed)[1]


@dataclass
class QNode:
    """One integer operation. ``name`` is the IR layer it came from (BitConfig key for GEMMs)."""

    name: str
    kind: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    fused: list[str] = field(default_factory=list)

    @property
    def is_gemm(self) -> bool:
        """True for the conv/dense nodes that run on the accelerator."""
        return self.kind in ("conv", "dense")


@dataclass
class QGraph:
    """A quantized model: nodes in topological order over integer tensors."""

    name: str
    input: str
    output: str
    softmax: bool
    tensors: dict[str, QTensor]
    nodes: list[QNode]
    bitconfig: BitConfig

    def node(self, name: str) -> QNode:
        """Node by name."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in quantized model {self.name!r}")

    def gemm_nodes(self) -> list[QNode]:
        """Conv/dense nodes, in order."""
        return [n for n in self.nodes if n.is_gemm]

    def with_params(self, name: str, **params: np.ndarray) -> QGraph:
        """Copy with some params of one node replaced (e.g. masked weights for MQE)."""
        nodes = []
        for n in self.nodes:
            if n.name == name:
                n = replace(n, params={**n.params, **params})
            nodes.append(n)
        return replace(self, nodes=nodes)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float input batch -> integer codes of the input tensor."""
        t = self.tensors[self.input]
        return quantize(x, t.scale, t.bits, t.signed)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        """Integer output codes -> real values (logits before the trailing softmax)."""
        return np.asarray(y, np.float64) * self.tensors[self.output].scale


# ------------------------------------------------------------------------------------------
# planning: fusion, widths, signs, scales
# ------------------------------------------------------------------------------------------


def _kind(ly: Layer) -> str:
    """The quantized op kind an IR layer lowers to."""
    if isinstance(ly, Conv2D):
        return "conv"
    if isinstance(ly, Dense):
        return "dense"
    if isinstance(ly, ZeroPad2D):
        return "pad"
    if isinstance(ly, Crop2D):
        return "crop"
    if isinstance(ly, Concat):
        return "concat"
    if isinstance(ly, Pool2D):
        return "maxpool" if ly.kind == "max" else "avgpool"
    if isinstance(ly, GlobalPool):
        return "gmaxpool" if ly.kind == "max" else "gavgpool"
    if isinstance(ly, Activation):
        return ly.kind
    simple = {Flatten: "flatten", Reshape: "reshape", Add: "add", Multiply: "mul", Affine: "affine", Input: "input"}
    for cls, k in simple.items():
        if isinstance(ly, cls):
            return k
    raise UnsupportedLayerError(f"layer {ly.name!r} of type {ly.op} cannot be quantized.")


@dataclass
class _Plan:
    fused_act: dict[str, Activation]  # producer name -> fused activation layer
    absorbed: set[str]  # activation layers absorbed into their producer
    out_tensor: dict[str, str]  # IR layer -> tensor it produces
    softmax: bool
    output: str


def plan_fusion(g: Graph) -> _Plan:
    """Fusions and output tensor; UnsupportedLayerError for a structure quantization refuses."""
    fused: dict[str, Activation] = {}
    absorbed: set[str] = set()
    for ly in g.layers:
        if not isinstance(ly, (Conv2D, Dense, Add)):
            continue
        cons = g.consumers(ly.name)
        if len(cons) != 1 or ly.name in g.outputs:
            continue
        c = cons[0]
        if isinstance(c, Activation) and c.kind in FUSABLE_ACTS and (c.kind != "hswish" or not isinstance(ly, Add)):
            fused[ly.name] = c
            absorbed.add(c.name)
    out_tensor = {ly.name: ly.name for ly in g.layers}
    for prod, act in fused.items():
        out_tensor[prod] = act.name
    out = g.outputs[0]
    if len(g.outputs) != 1:
        raise UnsupportedLayerError(f"model {g.name!r} has {len(g.outputs)} outputs; quantization supports one.")
    softmax = isinstance(g[out], Softmax)
    if softmax:
        out = g[out].inputs[0]
    for ly in g.layers:
        if isinstance(ly, Softmax) and ly.name != g.outputs[0]:
            raise UnsupportedLayerError(f"layer {ly.name!r} of type softmax is only supported as the model's final layer.")
    return _Plan(fused, absorbed, out_tensor, softmax, out_tensor.get(out, out))


def _real_layers(g: Graph, plan: _Plan) -> list[Layer]:
    return [ly for ly in g.layers if ly.name not in plan.absorbed and not (plan.softmax and ly.name == g.outputs[0])]


def _demands(g: Graph, plan: _Plan, layers: list[Layer], bc: BitConfig) -> dict[str, int | None]:
    """Width each tensor is asked for by its consumers (None: nobody asks)."""
    by_tensor: dict[str, list[Layer]] = {}
    for ly in layers:
        for i in ly.inputs:
            by_tensor.setdefault(i, []).append(ly)
    demand: dict[str, int | None] = {}
    for ly in reversed(layers):  # consumers come later in topological order
        t = plan.out_tensor[ly.name]
        asks: list[int | None] = []
        for c in by_tensor.get(t, []):
            k = _kind(c)
            if k in ("conv", "dense"):
                asks.append(bc[c.name].a_bits)
            elif k in TRANSPARENT_KINDS:
                asks.append(demand.get(plan.out_tensor[c.name]))
            else:  # add, mul, pooling, ...: keep shared streams (residuals, SE) at the default width
                asks.append(bc.default_act_bits)
        known = [a for a in asks if a is not None]
        demand[t] = max(known) if known else None
    return demand


def _scale(rng: TensorRange, bits: int, signed: bool) -> float:
    lo, hi = qrange(bits, signed)
    mag = max(abs(rng.lo), abs(rng.hi)) if signed else max(rng.hi, 0.0)
    if rng.samples is not None:  # "mse" calibration: the best clip depends on the width
        mag = rng.mse_clip(mag, hi, lo)
    return mag / hi if mag > 0 else 1.0 / hi


# ------------------------------------------------------------------------------------------
# node construction
# ------------------------------------------------------------------------------------------


WEIGHT_CLIPS = ("max", "mse")
# The PTQ the search (and every baseline it is compared with) uses on distilled data: MSE
# activation clip, MSE weight clip, GPTQ rounding below 8 bit (docs/method.md).
class QuantOptions(TypedDict, total=False):
    """Keyword options of :func:`quantize_model` (calibration and weight rounding)."""

    method: str
    percentile: float
    weight_clip: str
    weight_round: str


SEARCH_PTQ: QuantOptions = {"method": "mse", "weight_clip": "mse", "weight_round": "gptq"}
MSE_CLIP_RATIOS = np.linspace(0.5, 1.0, 26)


def _weights(w: np.ndarray, bits: int, clip: str = "max", gram: LayerGram | None = None,
             groups: int = 1, grid: WeightGrid | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric narrow-range per-output-channel quantization (channels on the last axis).

    ``clip="max"`` sets ``scale = max|w| / qmax``. ``clip="mse"`` searches, per channel, the
    clipping ratio r in [0.5, 1] of ``max|w|`` that minimises the squared quantization error
    ``||w - q(w)||^2`` (outliers clipped, the rest resolved finer); it matters at <= 4 bits.
    With ``gram`` (the layer's input Gram matrix per group) and ``bits < 8`` the codes on that
    grid are chosen by GPTQ error compensation (:mod:`codesign.quant.gptq`) instead of
    round-to-nearest; 8-bit layers always round to nearest. A ``grid`` the source model fixed
    (QKeras) gives the scales instead: its weights already lie on it, so the codes are exact
    (a non-symmetric quantizer's ``-2^(b-1)`` saturates to the narrow range).
    """
    _lo, hi = qrange(bits, True, narrow=True)
    if grid is not None:
        s = np.where(grid.scale > 0, grid.scale, 1.0)
        return quantize(w, s, bits, True, narrow=True), s
    flat = w.astype(np.float64).reshape(-1, w.shape[-1])
    wmax = np.abs(flat).max(axis=0)
    if clip == "mse":
        best_err = np.full(flat.shape[1], np.inf)
        best = wmax.copy()
        for r in MSE_CLIP_RATIOS:
            s = np.where(wmax > 0, r * wmax / hi, 1.0)
            err = ((quantize(flat, s, bits, True, narrow=True) * s - flat) ** 2).sum(axis=0)
            better = err < best_err
            best_err = np.where(better, err, best_err)
            best = np.where(better, r * wmax, best)
        wmax = best
    elif clip != "max":
        raise ValueError(f"weight clip must be one of {WEIGHT_CLIPS}, got {clip!r}")
    s = np.where(wmax > 0, wmax / hi, 1.0)
    if gram is not None and bits < 8:
        return gptq_codes(w, s, bits, gram, groups), s
    return quantize(w, s, bits, True, narrow=True), s


def _gemm_node(ly: Conv2D | Dense, x: QTensor, y: QTensor, bits: int, act: Act, out_name: str,
               weight_clip: str = "max", gram: LayerGram | None = None, grid: WeightGrid | None = None) -> QNode:
    w = ly.params["kernel"]
    w_q, s_w = _weights(w, bits, weight_clip, gram, ly.groups if isinstance(ly, Conv2D) else 1, grid)
    b = ly.params["bias"].astype(np.float64) if ly.use_bias else np.zeros(w.shape[-1])
    bias_q = np.clip(round_half_up(b / (x.scale * s_w)), INT32_MIN, INT32_MAX).astype(np.int64)
    mult, shift = quantize_multipliers(x.scale * s_w / y.scale)
    ap = ActParams.for_scale(act, y.scale)
    attrs: dict[str, Any] = {"w_bits": bits, "act": int(ap.act), "six": ap.six, "three": ap.three,
                             "hs_mult": ap.hs_mult, "hs_shift": ap.hs_shift}
    if isinstance(ly, Conv2D):
        kind = "conv"
        attrs.update(kernel=tuple(ly.kernel), strides=tuple(ly.strides), padding=tuple(ly.padding), groups=ly.groups)
    else:
        kind = "dense"
    # int8 storage, not int64: ResNet-18's codes would take 94 MB of a 512 MB board.
    params = {"weight": w_q.astype(code_dtype(bits)), "w_scale": s_w, "bias": bias_q, "mult": mult, "shift": shift}
    return QNode(ly.name, kind, [x.name], out_name, attrs, params)


def _dyadic_params(real: float | np.ndarray) -> dict[str, np.ndarray]:
    mult, shift = quantize_multipliers(np.asarray(real, np.float64))
    return {"mult": mult, "shift": shift}


def _add_params(sa: float, sb: float, sy: float) -> dict[str, Any]:
    """Two multipliers sharing one shift so that ``(a*Ma + b*Mb) >> shift`` rescales both."""
    ma, mb = sa / sy, sb / sy
    e = math.frexp(max(ma, mb))[1]  # max(m) in [2^(e-1), 2^e)
    shift = int(np.clip(31 - e, 0, MAX_SHIFT))
    return {
        "mult_a": np.int64(round(ma * 2.0**shift)),
        "mult_b": np.int64(round(mb * 2.0**shift)),
        "shift": np.int64(shift),
    }


_PREPARED: dict[tuple, tuple[Graph, Graph, dict[str, Any], dict[str, LayerGram]]] = {}
_PREPARED_MAX = 4


def calibration_state(graph: Graph, calib_x: np.ndarray, method: str = "minmax", percentile: float = 99.99,
                      gram_layers: list[str] | tuple[str, ...] = ()) -> tuple[Graph, dict[str, Any], dict[str, LayerGram]]:
    """BN-folded graph, activation ranges and GPTQ input Gram matrices, memoised.

    None of them depends on the bit-widths, and searches quantize one model with one
    calibration batch many times (direct sensitivity, ZeroQ, HAQ rewards, evaluation), so the
    float calibration passes run once. The key holds the graph object (compared by identity,
    and kept alive by the cache), a digest of the calibration data and the calibration options.
    """
    key = (id(graph), array_digest(calib_x), method, float(percentile))
    hit = _PREPARED.get(key)
    if hit is None or hit[0] is not graph:
        g = fold_batchnorm(graph)
        hit = (graph, g, calibrate(g, calib_x, method=method, percentile=percentile), {})
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.pop(next(iter(_PREPARED)))
        _PREPARED[key] = hit
    _graph, g, ranges, grams = hit
    missing = [n for n in gram_layers if n not in grams]
    if missing:
        grams.update(input_gram(g, calib_x, missing))
    return g, ranges, {n: grams[n] for n in gram_layers}


def quantize_model(
    graph: Graph,
    bitconfig: BitConfig,
    calib_x: np.ndarray,
    method: str = "minmax",
    percentile: float = 99.99,
    weight_clip: str = "max",
    weight_round: str = "nearest",
) -> QGraph:
    """Quantize a float IR graph with a BitConfig, calibrating on ``calib_x`` (N, H, W, C).

    ``method``/``percentile`` choose activation calibration; ``weight_clip`` ("max"/"mse")
    how per-channel weight scales are chosen; ``weight_round`` ("nearest"/"gptq") how weights
    are rounded onto that grid (GPTQ uses ``calib_x`` as the layer inputs' data, and is applied
    to layers below 8 bit, where rounding error matters).
    """
    bitconfig.validated(graph)
    if weight_round not in WEIGHT_ROUNDINGS:
        raise ValueError(f"weight rounding must be one of {WEIGHT_ROUNDINGS}, got {weight_round!r}")
    low = [ly.name for ly in graph.quantizable() if bitconfig[ly.name].w_bits < 8] if weight_round == "gptq" else []
    g, ranges, grams = calibration_state(graph, calib_x, method, percentile, low)
    plan = plan_fusion(g)
    layers = _real_layers(g, plan)
    demand = _demands(g, plan, layers, bitconfig)
    hints = g.hints or QuantHints()
    tensors: dict[str, QTensor] = {}
    nodes: list[QNode] = []

    def new_tensor(ly: Layer, signed: bool, src: QTensor | None = None) -> QTensor:
        name = plan.out_tensor[ly.name]
        shape = g[name].output_shape
        bits = demand.get(name) or bitconfig.default_act_bits
        grid = hints.tensors.get(name)
        if src is not None:  # transparent op: same scale and width (sign may only narrow)
            t = QTensor(name, shape, src.scale, src.bits, signed)
        elif grid is not None and grid.bits == bits:  # the model's own quantizer fixes this tensor
            t = QTensor(name, shape, grid.scale, bits, grid.signed)
        else:
            t = QTensor(name, shape, _scale(ranges[name], bits, signed), bits, signed)
        tensors[name] = t
        return t

    for ly in layers:
        k = _kind(ly)
        ins = [tensors[i] for i in ly.inputs]
        if k == "input":
            new_tensor(ly, signed=bool(ranges[ly.name].min < 0))
        elif k in ("conv", "dense"):
            lb = bitconfig[ly.name]
            x = ins[0]
            if x.bits > lb.a_bits:  # narrow the input for this engine
                req = QTensor(f"{ly.name}__in", x.shape, _scale(ranges[x.name], lb.a_bits, x.signed), lb.a_bits, x.signed)
                tensors[req.name] = req
                nodes.append(QNode(req.name, "requant", [x.name], req.name, {}, _dyadic_params(x.scale / req.scale)))
                x = req
            act_layer = plan.fused_act.get(ly.name)
            act = FUSABLE_ACTS[act_layer.kind] if act_layer else Act.NONE
            y = new_tensor(ly, signed=act not in (Act.RELU, Act.RELU6))
            if act in (Act.RELU6, Act.HSWISH):
                # ReLU6/h-swish constants round(3/s) must fit the int16 pre-clamp: a (near-)dead
                # tensor with a tiny range gets the smallest scale that still represents 3.0;
                # a very coarse one (2-bit codes over a range > 6) is capped at 6.0 so that
                # round(3 / scale) >= 1 and the ReLU6/h-swish constants stay nonzero.
                y.scale = min(max(y.scale, 3.0 / HSWISH_CLAMP), 6.0)
            wgrid = hints.weights.get(ly.name)
            wgrid = wgrid if wgrid is not None and wgrid.bits == lb.w_bits else None
            node = _gemm_node(cast("Conv2D | Dense", ly), x, y, lb.w_bits, act, y.name, weight_clip, grams.get(ly.name), wgrid)
            node.fused = [act_layer.name] if act_layer else []
            nodes.append(node)
        elif k in ("pad", "crop", "maxpool", "gmaxpool", "flatten", "reshape"):
            y = new_tensor(ly, ins[0].signed, src=ins[0])
            attrs = _shape_attrs(ly)
            nodes.append(QNode(ly.name, k, [ins[0].name], y.name, attrs))
        elif k in ("relu", "relu6"):
            y = new_tensor(ly, False, src=ins[0])
            attrs = {"six": int(round_half_up(6.0 / ins[0].scale))} if k == "relu6" else {}
            nodes.append(QNode(ly.name, k, [ins[0].name], y.name, attrs))
        elif k in ("avgpool", "gavgpool"):
            y = new_tensor(ly, ins[0].signed)
            if k == "avgpool":
                pl = cast(Pool2D, ly)  # _kind() said so
                counts = pool_counts(ins[0].shape[:2], pl.pool, pl.strides, pl.padding)
                attrs = _shape_attrs(ly)
            else:
                counts = np.asarray(ins[0].shape[0] * ins[0].shape[1], np.float64)
                attrs = {"keepdims": cast(GlobalPool, ly).keepdims}
            nodes.append(QNode(ly.name, k, [ins[0].name], y.name, attrs, _dyadic_params(ins[0].scale / (counts * y.scale))))
        elif k == "add":
            act_layer = plan.fused_act.get(ly.name)
            act = FUSABLE_ACTS[act_layer.kind] if act_layer else Act.NONE
            signed = act == Act.NONE and (ins[0].signed or ins[1].signed)
            y = new_tensor(ly, signed)
            ap = ActParams.for_scale(act, y.scale)
            attrs = {"act": int(ap.act), "six": ap.six}
            node = QNode(ly.name, "add", [i.name for i in ins], y.name, attrs, _add_params(ins[0].scale, ins[1].scale, y.scale))
            node.fused = [act_layer.name] if act_layer else []
            nodes.append(node)
        elif k == "concat":
            # Inputs arrive at their own scales; the output gets one scale from its calibrated range
            # (which covers every input), and each input's channels are requantized onto it by their
            # own dyadic multiplier, per output channel (exact when an input already has that scale).
            y = new_tensor(ly, signed=any(i.signed for i in ins))
            real = np.concatenate([np.full(i.shape[-1], i.scale / y.scale) for i in ins])
            nodes.append(QNode(ly.name, "concat", [i.name for i in ins], y.name, {}, _dyadic_params(real)))
        elif k == "mul":
            y = new_tensor(ly, ins[0].signed or ins[1].signed)
            nodes.append(QNode(ly.name, "mul", [i.name for i in ins], y.name, {}, _dyadic_params(ins[0].scale * ins[1].scale / y.scale)))
        elif k in ("hswish", "hsigmoid"):
            x = ins[0]
            y = new_tensor(ly, signed=(k == "hswish"))
            three = int(round_half_up(3.0 / x.scale))
            real = x.scale / (2 * three * y.scale) if k == "hswish" else 1.0 / (2 * three * y.scale)
            nodes.append(QNode(ly.name, k, [x.name], y.name, {"three": three, "six": 2 * three}, _dyadic_params(real)))
        elif k == "sigmoid":
            x = ins[0]
            y = new_tensor(ly, signed=False)
            codes = np.arange(x.qmin, x.qmax + 1, dtype=np.float64)
            lut = quantize(1.0 / (1.0 + np.exp(-codes * x.scale)), y.scale, y.bits, False)
            nodes.append(QNode(ly.name, "lut", [x.name], y.name, {"offset": x.qmin}, {"lut": lut}))
        elif k == "affine":
            x = ins[0]
            y = new_tensor(ly, signed=True)
            sc = np.broadcast_to(ly.params["scale"].astype(np.float64), (x.shape[-1],))
            off = np.broadcast_to(ly.params["offset"].astype(np.float64), (x.shape[-1],))
            p = _dyadic_params(np.abs(sc) * x.scale / y.scale)
            p["sign"] = np.where(sc < 0, -1, 1).astype(np.int64)
            p["offset"] = round_half_up(off / y.scale).astype(np.int64)
            nodes.append(QNode(ly.name, "affine", [x.name], y.name, {}, p))
        else:  # pragma: no cover - _kind already rejects the rest
            raise UnsupportedLayerError(f"layer {ly.name!r} of type {ly.op} cannot be quantized.")
        if k != "input":
            nodes[-1].attrs.setdefault("src_op", ly.op)

    inp = g.inputs[0]
    return QGraph(graph.name, inp, plan.output, plan.softmax, tensors, nodes, bitconfig)


def _shape_attrs(ly: Layer) -> dict[str, Any]:
    if isinstance(ly, ZeroPad2D):
        return {"padding": tuple(ly.padding)}
    if isinstance(ly, Crop2D):
        return {"cropping": tuple(ly.cropping)}
    if isinstance(ly, Pool2D):
        return {"pool": tuple(ly.pool), "strides": tuple(ly.strides), "padding": tuple(ly.padding)}
    if isinstance(ly, GlobalPool):
        return {"keepdims": ly.keepdims}
    if isinstance(ly, Reshape):
        return {"target": tuple(ly.output_shape)}
    return {}


__all__ = ["SEARCH_PTQ", "QGraph", "QNode", "QTensor", "calibration_state", "plan_fusion", "quantize_model", "quantize_multiplier"]
