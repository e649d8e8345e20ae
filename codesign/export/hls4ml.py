"""Export a quantized IR (``QGraph``) to an hls4ml project with per-layer precision.

What maps to what
-----------------
The QKeras model comes from :func:`codesign.export.qkeras.export_qkeras` with
``io="codes"`` (integer input codes in, integer output codes out: the hardware's view) and
``fold_requant=False`` (integer kernel codes, then a ``<node>_rq`` multiplier layer). hls4ml
converts it with ``granularity='name'``, and every layer's precision is then set here from
the quantized IR instead of hls4ml's defaults:

==========================  =================================================================
Keras layer (hls4ml layer)  precision
==========================  =================================================================
input                       ``fixed<b,b>`` / ``ufixed<b,b>``: the input tensor's codes
QConv2D / QDense            weight ``fixed<w_bits, w_bits>`` (the integer weight codes, exact);
                            accum = result ``fixed<A, A>`` with ``A`` from the worst-case
                            ``sum |w| * max|x|`` of the layer (exact integer accumulator)
``<node>_rq`` (BatchNorm)   scale ``M_c = mult * 2^-shift`` and bias ``bias_code * M_c`` as
                            ``fixed`` types with ``max(shift)`` fractional bits: both are
                            dyadic, so they are represented **exactly**; result = the output
                            tensor's type with ``RND,SAT`` when a linear quantizer follows
                            (rounding half up and saturating, as the golden requant), else the
                            exact product type
QActivation                 ``fixed<b,b,RND,SAT>`` / ``ufixed<b,b,RND,SAT>`` of the tensor
Add / Multiply / pools      exact types derived from their inputs
DepthwiseConv2D (ones)      window sums of avgpool/gavgpool: weight ``fixed<2,2>`` (the value 1),
                            accum = result an integer type of ``log2(window * max|x|)`` bits
CodeAffine (per position)   converted by a registered handler into a BatchNormalization with one
                            scale and bias per element (``n_filt = -1``); exact dyadic types
==========================  =================================================================

The codes-view QKeras model is built with ``hls=True`` (see
:func:`codesign.export.qkeras.export_qkeras`), which spells three ops in layers hls4ml
converts exactly:

* **ReLU6 clamps** (fused into conv/dense/add, standalone ``relu6``, and inside h-sigmoid /
  h-swish): hls4ml drops Keras' ``ReLU(max_value)`` (its ``relu6`` clamps at 6.0, not at the
  integer code ``six``), so the clamp is ``w = sat_[0,K](x)`` (a ``quantized_relu(k,k)``,
  ``K = 2^k - 1 >= six``) followed by ``sat_[0,K](w + c) - c`` with ``c = K - six``: two
  BatchNormalization constants and a saturating type, all integers.
* **Average pooling** (strided ``avgpool`` and ``gavgpool``): a ones-kernel depthwise conv
  gives the exact integer window sums and the dyadic multiplier follows, per channel when every
  window has the same size, per position (CodeAffine) when padded windows are smaller. hls4ml's
  own average divides in ``accum_t`` with truncation, which is not the golden rounding.
* **SE multiply**: the feature map is the first operand; hls4ml's io_parallel ``multiply``
  reads the second operand at ``index mod size``, which broadcasts a ``[1, 1, C]`` gate over
  ``[H, W, C]`` channels-last.

h-swish (fused after an int16 clamp, or standalone) and h-sigmoid are then BatchNormalization
(``+three``), the clamp above, Multiply (h-swish) and the requant multiplier.

Because every multiplier is dyadic and exactly representable, and ``AP_RND`` rounds ties up
like the golden model's ``(x*M + 2^(s-1)) >> s``, the C-sim is expected to equal the golden
model bit for bit on the supported ops; ``tests/export/test_hls4ml_export.py`` measures it.

Supported QNode kinds (one handler per op class in :mod:`codesign.export.hls4ml_ops`): conv
(groups=1 and depthwise), dense, add, mul, avgpool, gavgpool, maxpool, gmaxpool, pad, flatten,
reshape, relu, relu6, hswish, hsigmoid, affine, requant, with fused ReLU, ReLU6 and h-swish.
Not supported: ``lut`` (a sigmoid as an integer table; hls4ml's sigmoid is its own float
table, not the golden one) and grouped convolutions other than depthwise;
:func:`check_supported` raises ``UnsupportedLayerError`` naming every such node.

Known approximations
--------------------
* hls4ml only has power-of-two (fixed-point) scales. Tensors are therefore carried as integer
  codes (``ap_fixed<b, b>``), the real scale never appears in hardware, and each non-power-of-
  two ratio ``s_x * s_w / s_y`` is a dyadic fixed-point constant (exact, as above). The
  weights themselves are exact integer codes, not ``code * scale`` rounded to a fixed grid.
* hls4ml's ``io_stream`` pooling only supports pool size == stride (tiny_resnet's 3x3/2
  max-pool fails an assertion in ``nnet_pooling_stream.h``); such graphs are rejected for
  ``io_stream`` and export with ``io_parallel``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from codesign.errors import UnsupportedLayerError
from codesign.export.hls4ml_ops import unsupported_reason
from codesign.export.qkeras import INPUT_LAYER, ExportInfo, export_qkeras
from codesign.quant.qgraph import QGraph, QNode, QTensor

MAX_FRACTION_BITS = 64  # cap for constants that are not exactly dyadic
GAP_EXTRA_FRACTION_BITS = 24
CONFIG_FILE = "hls4ml_config.yaml"
TABLE_FILE = "precision_table.json"


@dataclass(frozen=True)
class Fixed:
    """An ``ap_fixed``-style type: ``width`` bits, ``integer`` of them left of the point."""

    width: int
    integer: int
    signed: bool = True
    quantize: bool = False  # round half up and saturate on assignment (RND, SAT)

    @property
    def fraction(self) -> int:
        """Fractional bits."""
        return self.width - self.integer

    def hls(self) -> str:
        """hls4ml precision string, e.g. ``fixed<8,8,RND,SAT>``."""
        base = "fixed" if self.signed else "ufixed"
        mode = ",RND,SAT" if self.quantize else ""
        return f"{base}<{self.width},{self.integer}{mode}>"

    @classmethod
    def codes(cls, t: QTensor, quantize: bool = False) -> Fixed:
        """The integer code range of a tensor."""
        return cls(t.bits, t.bits, t.signed, quantize)

    def as_signed(self) -> Fixed:
        """The same values in a signed type (one more bit when unsigned)."""
        return self if self.signed else Fixed(self.width + 1, self.integer + 1, True)


def exact_fixed(values: np.ndarray) -> Fixed:
    """Smallest fixed type holding every value exactly (dyadic values; capped fraction)."""
    v = np.asarray(values, np.float64).ravel()
    frac = 0
    while frac < MAX_FRACTION_BITS and not np.all(np.ldexp(v, frac) == np.round(np.ldexp(v, frac))):
        frac += 1
    mag = float(np.max(np.abs(v))) if v.size else 0.0
    signed = bool(np.any(v < 0))
    integer = max(math.floor(math.log2(mag)) + 1, 1) if mag > 0 else 1
    integer += int(signed)
    return Fixed(integer + frac, integer, signed)


def _product(a: Fixed, b: Fixed) -> Fixed:
    sa, sb = a.as_signed(), b.as_signed()
    return Fixed(sa.width + sb.width, sa.integer + sb.integer, True)


def _sum(a: Fixed, b: Fixed) -> Fixed:
    sa, sb = a.as_signed(), b.as_signed()
    integer = max(sa.integer, sb.integer) + 1
    frac = max(sa.fraction, sb.fraction)
    return Fixed(integer + frac, integer, True)


def _accumulator(node: QNode, x: QTensor) -> Fixed:
    """Exact integer accumulator type from the worst case ``sum |w| * max|x| + |bias|`` per channel."""
    w = np.abs(np.asarray(node.params["weight"], np.int64)).reshape(-1, node.params["weight"].shape[-1])
    bias = np.abs(np.asarray(node.params["bias"], np.int64))
    bound = int((w.sum(axis=0) * max(abs(x.qmin), abs(x.qmax)) + bias).max())
    bits = max(bound.bit_length(), 1) + 1
    return Fixed(bits, bits, True)


def unsupported_nodes(qg: QGraph, io_type: str = "io_parallel") -> dict[str, str]:
    """Node name -> why the hls4ml export cannot map it (empty when every node maps)."""
    why = {n.name: unsupported_reason(qg, n, io_type) for n in qg.nodes}
    return {k: v for k, v in why.items() if v is not None}


def check_supported(qg: QGraph, io_type: str = "io_parallel") -> None:
    """Raise ``UnsupportedLayerError`` naming every node the hls4ml export cannot map."""
    why = unsupported_nodes(qg, io_type)
    if why:
        listed = "; ".join(f"node {k!r}: {v}" for k, v in why.items())
        raise UnsupportedLayerError(f"{len(why)} node(s) of {qg.name!r} have no hls4ml mapping: {listed}.")


def precision_plan(qg: QGraph, info: ExportInfo) -> dict[str, dict[str, Fixed]]:
    """Per Keras layer of a ``codes``/``fold_requant=False`` export: its hls4ml precisions."""
    model = info.model
    nodes = {n.name: n for n in qg.nodes}
    out: dict[str, Fixed] = {}
    plan: dict[str, dict[str, Fixed]] = {}
    consumers: dict[str, list[Any]] = {}
    for layer in model.layers:
        for inbound in _inbound(layer):
            consumers.setdefault(inbound, []).append(layer)
    for layer in model.layers:
        name, cls = layer.name, type(layer).__name__
        ins = [out[i] for i in _inbound(layer)]
        node = nodes.get(info.layer_node.get(name, ""))
        p: dict[str, Fixed] = {}
        if name == INPUT_LAYER:
            p["result"] = Fixed.codes(qg.tensors[qg.input])
        elif cls in ("QConv2D", "QDense", "QDepthwiseConv2D"):
            if node is None:  # the exporter records a node for every weight layer it makes
                raise ValueError(f"Keras layer {name!r} ({cls}) has no quantized node in the export info")
            acc = _accumulator(node, qg.tensors[node.inputs[0]])
            p.update(weight=Fixed(node.attrs["w_bits"], node.attrs["w_bits"], True), accum=acc, result=acc)
            p["bias"] = exact_fixed(info.int_bias[name]) if name in info.int_bias else Fixed(1, 1, False)
        elif cls in ("BatchNormalization", "CodeAffine"):
            gamma, beta = info.affine[name]
            p["scale"], p["bias"] = exact_fixed(gamma), exact_fixed(beta)
            nxt = consumers.get(name, [])
            linear_q = len(nxt) == 1 and nxt[0].name in info.quantizer and _is_linear_quantizer(nxt[0])
            p["result"] = (Fixed.codes(info.quantizer[nxt[0].name], True) if linear_q
                           else _sum(_product(ins[0], p["scale"]), p["bias"]))
        elif cls == "QActivation":
            t = info.quantizer.get(name)
            p["result"] = Fixed.codes(t, True) if t is not None else Fixed(16, 16, True, True)
        elif cls == "Add":
            p["result"] = _sum(ins[0], ins[1])
        elif cls == "Multiply":
            p["result"] = _product(ins[0], ins[1])
        elif cls == "DepthwiseConv2D":  # ones kernel: the integer window sums of an average pool
            window = int(np.prod(layer.kernel_size))
            integer = ins[0].as_signed().integer + math.ceil(math.log2(window))
            p.update(weight=Fixed(2, 2, True), bias=Fixed(1, 1, False), accum=Fixed(integer, integer, True))
            p["result"] = p["accum"]
        elif cls in ("GlobalAveragePooling2D",):
            hw = int(np.prod(layer.input_shape[1:3]))
            lg = math.ceil(math.log2(hw))
            frac = ins[0].fraction + (lg if hw == 1 << lg else GAP_EXTRA_FRACTION_BITS)
            integer = ins[0].as_signed().integer + lg
            p["accum"] = p["result"] = Fixed(integer + frac, integer, True)
        elif cls in ("ZeroPadding2D", "MaxPooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape", "ReLU"):
            p["result"] = ins[0]
            if cls == "MaxPooling2D":
                p["accum"] = ins[0]
        else:
            raise UnsupportedLayerError(f"Keras layer {name!r} ({cls}) has no hls4ml precision rule.")
        out[name] = p["result"]
        plan[name] = p
    return plan


def _inbound(layer: Any) -> list[str]:
    """Names of the layers feeding ``layer`` (functional model, one call per layer)."""
    names = []
    for node in layer._inbound_nodes:
        for parent in node.inbound_layers if isinstance(node.inbound_layers, list) else [node.inbound_layers]:
            names.append(parent.name)
    return names


def _is_linear_quantizer(layer: Any) -> bool:
    return type(layer).__name__ == "QActivation" and "quantized_bits" in str(layer.get_config()["activation"])


def _parse_code_affine(keras_layer: dict, input_names: list[str], input_shapes: list, data_reader: Any) -> tuple:
    """hls4ml Keras handler: a :class:`CodeAffine` is a BatchNormalization with per-element constants."""
    from hls4ml.converters.keras_v2_to_hls import parse_default_keras_layer

    layer = parse_default_keras_layer(keras_layer, input_names)
    shape = tuple(int(d) for d in input_shapes[0][1:])
    cfg = keras_layer["config"]
    layer["class_name"] = "BatchNormalization"
    layer["n_in"] = layer["n_out"] = int(np.prod(shape))
    layer["n_filt"] = -1  # one scale and bias per element, in channels-last order
    layer["scale_data"] = np.broadcast_to(np.asarray(cfg["factor"], np.float64), shape).ravel().copy()
    layer["bias_data"] = np.broadcast_to(np.asarray(cfg["offset"], np.float64), shape).ravel().copy()
    return layer, list(input_shapes[0])


def register_handlers() -> None:
    """Teach hls4ml's Keras converter codesign's custom layers (idempotent)."""
    from hls4ml.converters.keras_v2_to_hls import get_layer_handlers, register_keras_v2_layer_handler

    if "CodeAffine" not in get_layer_handlers():
        register_keras_v2_layer_handler("CodeAffine", _parse_code_affine)


def hls4ml_config(qg: QGraph, info: ExportInfo, backend: str = "Vitis", reuse_factor: int = 1,
                  strategy: str = "Latency", trace: bool = False) -> dict[str, Any]:
    """hls4ml config (granularity='name') with every layer's precision set from the QGraph."""
    import hls4ml

    register_handlers()
    plan = precision_plan(qg, info)
    cfg = hls4ml.utils.config_from_keras_model(info.model, granularity="name", backend=backend,
                                               default_precision="fixed<32,16>")
    cfg["Model"]["ReuseFactor"] = reuse_factor
    cfg["Model"]["Strategy"] = strategy
    layers = cfg["LayerName"]
    for name, p in plan.items():
        entry = layers.setdefault(name, {})
        entry["Precision"] = {k: v.hls() for k, v in p.items()}
        entry["Trace"] = trace
        linear = f"{name}_linear"  # hls4ml's split-off activation of a QConv2D/QDense
        if linear in layers:
            layers[linear]["Precision"] = {"result": p["result"].hls()}
    return cfg


def hls4ml_precision_table(qg: QGraph) -> list[dict[str, Any]]:
    """One row per QNode: bit-widths, scales and the hls4ml types chosen for it (for reports)."""
    check_supported(qg)
    info = export_qkeras(qg, io="codes", fold_requant=False, hls=True)
    return _table(qg, info, precision_plan(qg, info))


def _table(qg: QGraph, info: ExportInfo, plan: dict[str, dict[str, Fixed]]) -> list[dict[str, Any]]:
    rows = []
    by_node: dict[str, list[str]] = {}
    for lname, nname in info.layer_node.items():
        by_node.setdefault(nname, []).append(lname)
    for n in qg.nodes:
        x, y = qg.tensors[n.inputs[0]], qg.tensors[n.output]
        row: dict[str, Any] = {
            "node": n.name, "kind": n.kind, "in_bits": x.bits, "out_bits": y.bits, "out_signed": y.signed,
            "in_scale": x.scale, "out_scale": y.scale,
        }
        if n.is_gemm:
            row["w_bits"] = n.attrs["w_bits"]
            row["w_scale_max"] = float(np.max(n.params["w_scale"]))
        for lname in by_node.get(n.name, []):
            for key, typ in plan[lname].items():
                if lname == n.name:
                    row[f"{key}_precision"] = typ.hls()
                elif lname == f"{n.name}_rq" and key in ("scale", "bias"):
                    row[f"requant_{key}_precision"] = typ.hls()
        row["output_precision"] = plan[info.tensor_layer[n.output]]["result"].hls()
        rows.append(row)
    return rows


def set_exact_constants(hls_model: Any, info: ExportInfo) -> None:
    """Give hls4ml the float64 constants: Keras stores float32, which drops multiplier bits.

    A requant multiplier has a 31-bit mantissa; through the Keras weights (float32, 24 bits)
    it would reach the C++ rounded, and a product on a rounding boundary would move 1 LSB.
    hls4ml writes weights as decimals with one digit per fractional bit of their type, which
    is exact for a dyadic float64.
    """
    from hls4ml.model.layers import BatchNormalization

    graph = hls_model.graph
    for name, (gamma, beta) in info.affine.items():
        layer = graph.get(name)
        if not isinstance(layer, BatchNormalization) or np.ndim(gamma) > 1:
            continue  # removed as a no-op, or a per-element CodeAffine (float64 from its config already)
        for key, value in (("scale", gamma), ("bias", beta)):
            w = layer.weights[key]
            w.data = np.broadcast_to(np.asarray(value, np.float64), w.data.shape).copy()
    for name, codes in info.int_bias.items():
        w = graph[name].weights["bias"]
        w.data = np.asarray(codes, np.float64).reshape(w.data.shape)


def to_hls4ml(
    qg: QGraph,
    out_dir: str | Path,
    part: str = "xc7z020clg400-1",
    clock_period: float = 10,
    io_type: str = "io_parallel",
    backend: str = "Vitis",
    reuse_factor: int = 1,
    strategy: str = "Latency",
    trace: bool = False,
) -> Any:
    """Build the QKeras model, convert it with per-layer precision and write the project.

    Writes the hls4ml project (``firmware/``, ``build_prj.tcl``, ...) plus
    ``hls4ml_config.yaml`` (the config passed to hls4ml) and ``precision_table.json`` into
    ``out_dir``; returns the hls4ml model (call ``compile()``
    for the g++ C-sim and ``predict(codes)`` on integer input codes). ``trace=True`` lets
    ``hls_model.trace(codes)`` return every layer's output (per-layer checks).
    """
    import hls4ml

    register_handlers()
    check_supported(qg, io_type)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = export_qkeras(qg, io="codes", fold_requant=False, hls=True)
    cfg = hls4ml_config(qg, info, backend=backend, reuse_factor=reuse_factor, strategy=strategy, trace=trace)
    hls_model = hls4ml.converters.convert_from_keras_model(
        info.model, hls_config=cfg, output_dir=str(out), backend=backend, io_type=io_type,
        part=part, clock_period=clock_period, project_name=f"{qg.name}_hls",
    )
    set_exact_constants(hls_model, info)
    hls_model.write()
    (out / CONFIG_FILE).write_text(yaml.safe_dump(_plain(cfg), sort_keys=False))
    table = _table(qg, info, precision_plan(qg, info))
    (out / TABLE_FILE).write_text(json.dumps(table, indent=2))
    return hls_model


def _plain(obj: Any) -> Any:
    """Config -> YAML-safe plain types."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


__all__ = ["Fixed", "check_supported", "exact_fixed", "hls4ml_config", "hls4ml_precision_table",
           "precision_plan", "register_handlers", "to_hls4ml", "unsupported_nodes"]
