"""Re-import a (fine-tuned) QKeras export of a ``QGraph``: its quantizers give the integer model back.

:func:`codesign.graph.qkeras_export.to_qkeras` (float mode, ``fold_requant=True``) writes each
conv/dense as a QKeras layer whose kernel quantizer is ``quantized_bits(w_bits, 0, symmetric=1,
alpha=2^(w_bits-1) * M_c)`` and whose float bias is ``bias_code * M_c + nudge``. Training
changes the stored kernel and the bias, never the quantizers, so:

* weight codes are what the quantizer computes, read back as ``q * 2^(w_bits-1) / alpha``
  (QKeras' own rounding, ties to even, is what the trained model uses);
* bias codes are ``round((bias - nudge) / M_c)``. :func:`snap_biases` moves the Keras
  biases onto that lattice, so the fine-tuned model and its re-import agree on every bias;
* the widths, the per-channel weight scale and every activation grid come from the
  quantizers in the model: they are checked against the template QGraph (the config the
  export was made from), so a model whose quantizers changed is refused, not misread.

Everything else (requant multipliers, residual/SE/pool constants) is fixed by the export and
taken from the template.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from codesign.errors import ModelFileError
from codesign.quant.dyadic import INT32_MAX, INT32_MIN
from codesign.quant.qgraph import QGraph, QNode

ALPHA_RTOL = 1e-6  # the alpha in a saved model went through float32/JSON


def _quantizer(layer: Any) -> Any:
    """The kernel (or depthwise) quantizer object of a QKeras GEMM layer."""
    return getattr(layer, "depthwise_quantizer_internal", None) or layer.kernel_quantizer_internal


def _kernel_var(layer: Any) -> Any:
    return layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel


def _check_quantizer(node: QNode, layer: Any) -> tuple[int, np.ndarray]:
    """(w_bits, alpha per IR channel) of the layer's quantizer, checked against the template node."""
    from codesign.graph.qkeras_export import stored_kernel

    q = _quantizer(layer)
    bits = int(q.bits)
    if type(q).__name__ != "quantized_bits" or bits != node.attrs["w_bits"] or not q.symmetric:
        raise ModelFileError(
            f"layer {layer.name!r}: kernel quantizer {q} does not match the exported config "
            f"(quantized_bits({node.attrs['w_bits']},0,1,alpha=...)); re-export the model from the run's BitConfig."
        )
    alpha = np.asarray(q.alpha, np.float64)
    _kernel, want = stored_kernel(node)
    if alpha.shape != want.shape or not np.allclose(alpha, want, rtol=ALPHA_RTOL, atol=0):
        raise ModelFileError(f"layer {layer.name!r}: per-channel alpha of its quantizer differs from the "
                             "exported requant scale; the quantizer was changed after export.")
    return bits, alpha.reshape(-1)


def weight_codes(node: QNode, layer: Any) -> np.ndarray:
    """Integer weight codes (IR layout) of the kernel QKeras computes in ``layer``."""
    bits, alpha = _check_quantizer(node, layer)
    w = _kernel_var(layer)
    q = np.asarray(_quantizer(layer)(w), np.float64)
    if hasattr(layer, "depthwise_kernel"):  # Keras [kh, kw, cin, m] -> IR [kh, kw, 1, cin*m]
        kh, kw, cin, mult = q.shape
        q = q.reshape(kh, kw, 1, cin * mult)
    codes = np.round(q * 2.0 ** (bits - 1) / alpha)
    lim = 2 ** (bits - 1) - 1
    return np.clip(codes, -lim, lim).astype(np.asarray(node.params["weight"]).dtype)


def bias_lattice(node: QNode) -> tuple[np.ndarray, np.ndarray]:
    """``(M_c, nudge_c)``: the Keras bias of ``node`` is ``bias_code * M_c + nudge_c``."""
    from codesign.graph.qkeras_export import gemm_multiplier, tie_nudge

    return gemm_multiplier(node), np.broadcast_to(tie_nudge(node.params["mult"], node.params["shift"]),
                                                  np.shape(node.params["bias"]))


def bias_codes(node: QNode, layer: Any) -> np.ndarray:
    """int32 bias codes of a trained layer's float bias."""
    m_c, nudge = bias_lattice(node)
    b = np.asarray(layer.bias.numpy(), np.float64)
    return np.clip(np.round((b - nudge) / m_c), INT32_MIN, INT32_MAX).astype(np.int64)


def snap_biases(model: Any, template: QGraph) -> None:
    """Move every GEMM bias of ``model`` onto its integer lattice (in place)."""
    for node in template.gemm_nodes():
        layer = model.get_layer(node.name)
        m_c, nudge = bias_lattice(node)
        layer.bias.assign((bias_codes(node, layer) * m_c + nudge).astype(np.float32))


def _check_activations(model: Any, template: QGraph) -> None:
    """Every activation quantizer still puts its tensor on the template's integer grid."""
    for layer in model.layers:
        q = getattr(layer, "quantizer", None)
        if q is None or type(layer).__name__ != "QActivation":
            continue
        t = _grid_of(layer.name, template)
        if t is not None and int(q.bits) != t.bits:
            raise ModelFileError(f"activation quantizer {layer.name!r} has {q.bits} bits where the exported config "
                                 f"has {t.bits}; re-export the model from the run's BitConfig.")


def _grid_of(layer_name: str, template: QGraph) -> Any:
    """The template tensor a ``<node>_q`` quantizer layer rounds onto (None for helper quantizers)."""
    base = layer_name.removesuffix("_q")
    for n in template.nodes:
        if n.name == base:
            return template.tensors[n.output]
    return template.tensors.get(template.input) if layer_name == "input_q" else None


def reimport(model: Any, template: QGraph) -> QGraph:
    """The integer model of a trained export of ``template``: new weight and bias codes, same grids."""
    _check_activations(model, template)
    nodes = []
    names = {ly.name for ly in model.layers}
    for n in template.nodes:
        if n.is_gemm:
            if n.name not in names:
                raise ModelFileError(f"the QKeras model has no layer {n.name!r} of the exported config.")
            layer = model.get_layer(n.name)
            n = replace(n, params={**n.params, "weight": weight_codes(n, layer), "bias": bias_codes(n, layer)})
        nodes.append(n)
    return replace(template, nodes=nodes)


__all__ = ["bias_codes", "bias_lattice", "reimport", "snap_biases", "weight_codes"]
