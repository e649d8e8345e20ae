"""Re-import a (fine-tuned) QKeras export of a ``QGraph``: its quantizers give the integer model back.

:func:`codesign.export.qkeras.to_qkeras` with ``fold_requant=False`` (the form QAT trains
and hls4ml converts) writes each conv/dense as a QKeras layer holding *integer* kernel codes
under ``quantized_bits(w_bits, w_bits-1, symmetric=1)``, followed by a constant multiplier
``<name>_rq`` (``gamma = M_c``, ``beta = bias_code * M_c + nudge``). Training changes the stored
kernel and ``beta``, never the quantizers or ``gamma``, so:

* weight codes are what the kernel quantizer computes on the integer grid (QKeras' own rounding,
  the one the trained model uses; :func:`fix_integer_grid`);
* bias codes are ``round((beta - nudge) / M_c)``; :func:`snap_to_grid` moves the kernels and
  ``beta`` onto their lattices, so the fine-tuned model and its re-import agree exactly;
* the widths, the requant multiplier ``M_c`` and every activation grid come from the layers of
  the model and are checked against the template QGraph (the config the export was made
  from): a model whose quantizers or scales changed is refused, not misread.

Everything else (residual/SE/pool constants) is fixed by the export and taken from the template.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from codesign.errors import ModelFileError
from codesign.quant.dyadic import INT32_MAX, INT32_MIN
from codesign.quant.qgraph import QGraph, QNode

SCALE_RTOL = 1e-6  # M_c in a saved model went through float32


def _quantizer(layer: Any) -> Any:
    """The kernel (or depthwise) quantizer object of a QKeras GEMM layer."""
    return getattr(layer, "depthwise_quantizer_internal", None) or layer.kernel_quantizer_internal


def _kernel_var(layer: Any) -> Any:
    return layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel


def _refit(layer: str, what: str) -> ModelFileError:
    return ModelFileError(f"layer {layer!r}: {what} does not match the exported config; the model was changed "
                          "after export (re-export it from the run's quantized model).")


def fix_integer_grid(layer: Any) -> None:
    """Pin a GEMM layer's kernel quantizer to the integer grid (``alpha=None``).

    QKeras layers turn a kernel quantizer built without ``alpha`` into ``alpha="auto_po2"``
    (a per-channel power-of-two scale fitted to the *current* kernel). On integer codes that
    scale reproduces the codes exactly, which is why the export works; on a kernel being trained
    it would pick finer grids than the hardware has. QAT therefore trains with ``alpha=None``.
    """
    _quantizer(layer).alpha = None


def weight_codes(node: QNode, layer: Any) -> np.ndarray:
    """Integer weight codes (IR layout) of ``layer``'s kernel on its ``quantized_bits(b, b-1, 1)`` grid.

    ``round`` (ties to even) and the narrow clip are what that quantizer computes with ``alpha=None``.
    """
    q = _quantizer(layer)
    bits = node.attrs["w_bits"]
    ok = type(q).__name__ == "quantized_bits" and int(q.bits) == bits and int(q.integer) == bits - 1
    if not ok or q.alpha not in (None, "auto_po2"):
        raise _refit(layer.name, f"kernel quantizer {q} (want quantized_bits({bits},{bits - 1},1))")
    codes = np.asarray(_kernel_var(layer).numpy(), np.float64)
    if hasattr(layer, "depthwise_kernel"):  # Keras [kh, kw, cin, m] -> IR [kh, kw, 1, cin*m]
        kh, kw, cin, mult = codes.shape
        codes = codes.reshape(kh, kw, 1, cin * mult)
    lim = 2 ** (bits - 1) - 1
    return np.clip(np.round(codes), -lim, lim).astype(np.asarray(node.params["weight"]).dtype)


def bias_lattice(node: QNode) -> tuple[np.ndarray, np.ndarray]:
    """``(M_c, nudge_c)``: the export's ``beta`` of ``node`` is ``bias_code * M_c + nudge_c``."""
    from codesign.export.qkeras_numeric import gemm_multiplier, tie_nudge

    m_c = gemm_multiplier(node)
    return m_c, np.broadcast_to(tie_nudge(node.params["mult"], node.params["shift"]), m_c.shape)


def _requant_layer(model: Any, node: QNode) -> Any:
    """The ``<name>_rq`` multiplier of a GEMM node, its ``gamma`` checked against ``M_c``."""
    layer = model.get_layer(f"{node.name}_rq")
    gamma = np.asarray(layer.gamma.numpy(), np.float64)
    if not np.allclose(gamma, bias_lattice(node)[0], rtol=SCALE_RTOL, atol=0):
        raise _refit(layer.name, "requant multiplier (gamma)")
    return layer


def bias_codes(node: QNode, model: Any) -> np.ndarray:
    """int32 bias codes of a trained export's ``<name>_rq`` offset."""
    m_c, nudge = bias_lattice(node)
    beta = np.asarray(_requant_layer(model, node).beta.numpy(), np.float64)
    return np.clip(np.round((beta - nudge) / m_c), INT32_MIN, INT32_MAX).astype(np.int64)


def snap_to_grid(model: Any, template: QGraph) -> None:
    """Replace every GEMM kernel by its codes and every bias by its lattice value (in place).

    The snapped model computes what it computed before (its quantizers already rounded), and a
    reload (where QKeras turns the kernel quantizers back into ``auto_po2``) computes it too.
    """
    for node in template.gemm_nodes():
        layer = model.get_layer(node.name)
        kernel = _kernel_var(layer)
        codes = weight_codes(node, layer).astype(np.float32).reshape(tuple(kernel.shape))
        m_c, nudge = bias_lattice(node)
        beta = (bias_codes(node, model) * m_c + nudge).astype(np.float32)
        kernel.assign(codes)
        _requant_layer(model, node).beta.assign(beta)


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
            n = replace(n, params={**n.params, "weight": weight_codes(n, layer), "bias": bias_codes(n, model)})
        nodes.append(n)
    return replace(template, nodes=nodes)


__all__ = ["bias_codes", "bias_lattice", "fix_integer_grid", "reimport", "snap_to_grid", "weight_codes"]
