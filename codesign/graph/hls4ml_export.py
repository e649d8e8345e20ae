"""Export a quantized IR (``QGraph``) to an hls4ml project with per-layer precision.

What maps to what
-----------------
The QKeras model comes from :func:`codesign.graph.qkeras_export.export_qkeras` with
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
GlobalAveragePooling2D      accum = result with ``log2(H*W)`` fractional bits (exact when H*W
                            is a power of two; else 24 extra fractional bits, truncated)
==========================  =================================================================

Because every multiplier is dyadic and exactly representable, and ``AP_RND`` rounds ties up
like the golden model's ``(x*M + 2^(s-1)) >> s``, the C-sim is expected to equal the golden
model bit for bit on the supported ops; ``tests/export/test_hls4ml_export.py`` measures it.

Supported QNode kinds: conv (groups=1 and depthwise), dense, add, mul, maxpool, gmaxpool,
gavgpool, pad, flatten, reshape, relu, affine, requant; fused ReLU/ReLU6 (when the ReLU6
clamp ``six`` is not below the output range, i.e. saturation does the clamping). Not supported
(the QKeras export uses custom layers or ``ReLU(max_value)`` chains): avgpool, lut (sigmoid),
hswish, hsigmoid, relu6 nodes, fused h-swish; :func:`to_hls4ml` raises
``UnsupportedLayerError`` naming the node.

Known approximations
--------------------
* hls4ml only has power-of-two (fixed-point) scales. Tensors are therefore carried as integer
  codes (``ap_fixed<b, b>``), the real scale never appears in hardware, and each non-power-of-
  two ratio ``s_x * s_w / s_y`` is a dyadic fixed-point constant (exact, as above). The
  weights themselves are exact integer codes, not ``code * scale`` rounded to a fixed grid.
* A global average over a non-power-of-two number of pixels divides with truncation in
  ``accum_t``; ties at a rounding boundary could then round differently (not hit by the
  tested models).
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
from codesign.graph.qkeras_export import INPUT_LAYER, ExportInfo, export_qkeras
from codesign.quant.dyadic import Act
from codesign.quant.qgraph import QGraph, QNode, QTensor

HLS4ML_KINDS = frozenset(
    {"conv", "dense", "add", "mul", "maxpool", "gmaxpool", "gavgpool", "pad", "flatten", "reshape",
     "relu", "affine", "requant"}
)
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
    """Exact integer accumulator type from the worst case ``sum |w| * max|x|`` per channel."""
    w = np.abs(np.asarray(node.params["weight"], np.int64)).reshape(-1, node.params["weight"].shape[-1])
    bound = int(w.sum(axis=0).max()) * max(abs(x.qmin), abs(x.qmax))
    bits = max(bound.bit_length(), 1) + 1
    return Fixed(bits, bits, True)


def check_supported(qg: QGraph, io_type: str = "io_parallel") -> None:
    """Raise ``UnsupportedLayerError`` for nodes the hls4ml export cannot map."""
    for n in qg.nodes:
        if io_type == "io_stream" and n.kind == "maxpool" and tuple(n.attrs["pool"]) != tuple(n.attrs["strides"]):
            raise UnsupportedLayerError(
                f"node {n.name!r}: hls4ml's io_stream pooling needs pool size == stride, got pool "
                f"{tuple(n.attrs['pool'])} stride {tuple(n.attrs['strides'])}; use io_type='io_parallel'."
            )
        act = Act(n.attrs.get("act", 0))
        out = qg.tensors[n.output]
        fused = act == Act.HSWISH or (act == Act.RELU6 and n.attrs["six"] < out.qmax)
        if n.kind not in HLS4ML_KINDS or fused:
            what = f"fused {act.name.lower()}" if fused else f"kind {n.kind!r}"
            raise UnsupportedLayerError(
                f"node {n.name!r} ({what}) of {qg.name!r} has no hls4ml mapping; supported kinds: "
                f"{', '.join(sorted(HLS4ML_KINDS))}, without fused h-swish or an active ReLU6 clamp."
            )


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
            assert node is not None
            acc = _accumulator(node, qg.tensors[node.inputs[0]])
            p.update(weight=Fixed(node.attrs["w_bits"], node.attrs["w_bits"], True), accum=acc, result=acc)
            p["bias"] = Fixed(1, 1, False)
        elif cls == "BatchNormalization":
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


def hls4ml_config(qg: QGraph, info: ExportInfo, backend: str = "Vitis", reuse_factor: int = 1,
                  strategy: str = "Latency") -> dict[str, Any]:
    """hls4ml config (granularity='name') with every layer's precision set from the QGraph."""
    import hls4ml

    plan = precision_plan(qg, info)
    cfg = hls4ml.utils.config_from_keras_model(info.model, granularity="name", backend=backend,
                                               default_precision="fixed<32,16>")
    cfg["Model"]["ReuseFactor"] = reuse_factor
    cfg["Model"]["Strategy"] = strategy
    layers = cfg["LayerName"]
    for name, p in plan.items():
        entry = layers.setdefault(name, {})
        entry["Precision"] = {k: v.hls() for k, v in p.items()}
        entry.setdefault("Trace", False)
        linear = f"{name}_linear"  # hls4ml's split-off activation of a QConv2D/QDense
        if linear in layers:
            layers[linear]["Precision"] = {"result": p["result"].hls()}
    return cfg


def hls4ml_precision_table(qg: QGraph) -> list[dict[str, Any]]:
    """One row per QNode: bit-widths, scales and the hls4ml types chosen for it (for reports)."""
    check_supported(qg)
    info = export_qkeras(qg, io="codes", fold_requant=False)
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


def to_hls4ml(
    qg: QGraph,
    out_dir: str | Path,
    part: str = "xc7z020clg400-1",
    clock_period: float = 10,
    io_type: str = "io_parallel",
    backend: str = "Vitis",
    reuse_factor: int = 1,
    strategy: str = "Latency",
) -> Any:
    """Build the QKeras model, convert it with per-layer precision and write the project.

    Writes the hls4ml project (``firmware/``, ``build_prj.tcl``, ...) plus
    ``hls4ml_config.yaml`` (the config passed to hls4ml) and ``precision_table.json`` into
    ``out_dir``; returns the hls4ml model (call ``compile()``
    for the g++ C-sim and ``predict(codes)`` on integer input codes).
    """
    import hls4ml

    check_supported(qg, io_type)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = export_qkeras(qg, io="codes", fold_requant=False)
    cfg = hls4ml_config(qg, info, backend=backend, reuse_factor=reuse_factor, strategy=strategy)
    hls_model = hls4ml.converters.convert_from_keras_model(
        info.model, hls_config=cfg, output_dir=str(out), backend=backend, io_type=io_type,
        part=part, clock_period=clock_period, project_name=f"{qg.name}_hls",
    )
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


__all__ = ["HLS4ML_KINDS", "Fixed", "check_supported", "exact_fixed", "hls4ml_config", "hls4ml_precision_table",
           "precision_plan", "to_hls4ml"]
