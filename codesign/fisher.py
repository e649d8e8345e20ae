"""Fisher MQE: the expected KL of a width-b weight change of one layer, from one backward pass.

Direct Eq. 5 (:func:`codesign.mqe.direct_sensitivity`) re-quantizes and re-runs the model once
per layer; MQE (:mod:`codesign.mqe`) quantizes once but still re-runs the suffix from each
layer for every width. Both measure ``omega_i(b) = E_x KL(p(x) || p_i,b(x))``, the KL between
the 8-bit model and the model whose layer ``i`` has ``b``-bit weights. To second order in the
change ``dY = X dW`` of that layer's output (``X``: its im2col input, ``dW``: the weight
change), ``KL = 1/2 dY^T J^T F J dY`` with ``J`` the Jacobian of the logits w.r.t. the layer
output and ``F = diag(p) - p p^T`` the Fisher of the softmax (the Hessian of the KL at
``dY = 0``; no labels). With ``a = (diag(sqrt p) - p sqrt(p)^T) v``, ``v ~ N(0, I)``, the
covariance of ``a`` is exactly ``F``, so back-propagating ``a`` as dL/dlogits gives per image
``G = J^T a`` at every layer at once, and ``E_v <G, dY>^2 = dY^T J^T F J dY``. Hence

    omega_i(b) ~= 1/2 * mean over images and probes of <G_i, X_i dW_i(b)>^2

needs one forward pass, ``probes`` backward passes (every layer's ``G`` recorded on the way,
:func:`codesign.graph.grad.output_grads`) and, per layer and width, one product of the
layer's input with ``dW``: no suffix re-runs and no re-quantization of the model. The full
quadratic form is kept (no diagonal approximation), so error compensation between weights
(GPTQ) counts as it does in the deployed model.

``dW`` (``perturb``): ``"ptq"`` the PTQ's own ``b``-bit weights (its clip and, when it rounds
with GPTQ, its error compensation) minus the 8-bit ones, what Eq. 5 measures; ``"round"``
round-to-nearest at ``b`` bits; ``"noise"`` Gaussian noise with the per-channel power of
that rounding error (the MQE-style mask), drawn from the seed. The graph used is the
BN-folded float model, whose weights the quantizer rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from codesign.graph import grad, ops
from codesign.graph.ir import Activation, Conv2D, Graph, Layer, Softmax
from codesign.mqe import WidthSensitivity, rounding_error_power
from codesign.quant.gptq import LayerGram
from codesign.quant.weights import quantize_weights

BASE_BITS = 8
PERTURBATIONS = ("ptq", "round", "noise")


def logits_layer(graph: Graph) -> str:
    """The layer whose output are the logits: the model output, or the input of a final Softmax."""
    if len(graph.outputs) != 1:
        raise ValueError(f"Fisher sensitivity needs one model output, {graph.name!r} has {len(graph.outputs)}")
    out = graph[graph.outputs[0]]
    return out.inputs[0] if isinstance(out, Softmax) else out.name


def fisher_probe(logits: np.ndarray, v: np.ndarray) -> np.ndarray:
    """dL/dlogits from standard normal ``v`` (same shape): covariance per image ``diag(p) - p p^T``, p = softmax(logits)."""
    p = ops.softmax(logits.astype(np.float64))
    sp = np.sqrt(p)
    return (sp * v - p * (sp * v).sum(-1, keepdims=True)).astype(logits.dtype)


def probe_normals(seed: int, first: int, n: int, probe: int, classes: int) -> np.ndarray:
    """Standard normals of images ``first .. first + n - 1`` for probe ``probe``, each seeded by (seed, image, probe)."""
    return np.stack([np.random.default_rng([seed, first + i, probe]).standard_normal(classes) for i in range(n)])


def layer_output(ly: Layer, x_in: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The GEMM part of ``ly`` (no bias, no activation) on ``x_in`` with ``kernel``: its output change for a weight change."""
    if isinstance(ly, Conv2D):
        return ops.conv2d(x_in, kernel.astype(x_in.dtype), ly.strides, ly.padding, ly.groups)
    return x_in.reshape(len(x_in), -1) @ kernel.astype(x_in.dtype)


def weight_change(ly: Layer, bits: int, perturb: str, clip: str, gram: LayerGram | None,
                  rng: np.random.Generator) -> np.ndarray:
    """``dW``: layer ``ly``'s ``bits``-bit weights minus its 8-bit ones (float, kernel-shaped), per ``perturb``."""
    w = np.asarray(ly.params["kernel"], np.float64)
    groups = ly.groups if isinstance(ly, Conv2D) else 1

    def dequant(b: int, g: LayerGram | None) -> np.ndarray:
        codes, scale = quantize_weights(w, b, clip, g, groups)
        out: np.ndarray = codes * scale
        return out

    w8 = dequant(BASE_BITS, None)
    if perturb == "ptq":
        return dequant(bits, gram) - w8
    if perturb == "round":
        return dequant(bits, None) - w8
    if perturb == "noise":
        power = np.maximum(rounding_error_power(w, bits, clip) - rounding_error_power(w, BASE_BITS, clip), 0.0)
        return rng.standard_normal(w.shape) * np.sqrt(power)
    raise ValueError(f"perturb must be one of {PERTURBATIONS}, got {perturb!r}")


def activation_chain(graph: Graph, name: str) -> list[str]:
    """``name`` and the activation layers that follow it one to one (each the only reader of the one before)."""
    chain = [name]
    while True:
        readers = graph.consumers(chain[-1])
        if len(readers) != 1 or not isinstance(readers[0], Activation):
            return chain
        chain.append(readers[0].name)


def dither_excess(delta: np.ndarray, step: float) -> np.ndarray:
    """``E[(Q(y + delta) - Q(y))^2] - delta^2`` for a rounding quantizer of ``step``, y uniform within a step.

    A change ``delta`` smaller than a step moves the code by one step with probability
    ``|delta| / step``: the rounded change has variance ``step * |delta| - delta^2`` around
    ``delta``, first order in ``|delta|``, which dominates the quadratic term for small changes.
    """
    a = np.abs(delta) / step
    m = np.floor(a)
    out: np.ndarray = step**2 * (m * m + (2 * m + 1) * (a - m)) - delta**2
    return out


def fisher_sensitivity(graph: Graph, x: np.ndarray, widths: Iterable[int], probes: int = 4, seed: int = 0,
                       perturb: str = "ptq", clip: str = "mse", grams: Mapping[str, LayerGram] | None = None,
                       steps: Mapping[str, float] | None = None, batch_size: int | None = None,
                       progress: Callable[[int], None] | None = None) -> WidthSensitivity:
    """``omega_i(b)`` (module docstring) for every quantizable layer of ``graph`` and width ``b < 8`` (0 at 8).

    ``graph``: the BN-folded float model; ``x``: the distilled images, run in chunks of
    ``batch_size`` (default: all of them, or fewer under the process memory budget,
    :mod:`codesign.membudget`: the traced forward is measured, times ``probes + 1`` for the
    recorded gradients beside it); the estimate is a sum over images, so chunking changes only
    the float summation order; ``grams``: the GPTQ input Gram matrices per layer (``perturb="ptq"`` with
    a GPTQ PTQ; without them the ``b``-bit weights round to nearest). ``probes`` random probe
    vectors per image, seeded by ``(seed, image, probe)``; noise draws by ``(seed, layer, b)``.
    ``steps``: the activation quantization step of each quantized tensor (IR layer name ->
    scale, from the 8-bit model); with it, the output change of each layer (and of the
    activations that follow it one to one) also pays the rounding-flip variance
    :func:`dither_excess` at every quantized tensor on that chain, weighted by the diagonal of
    ``J^T F J`` there (``E_v G^2``). ``progress`` is called with the number of layers done after each chunk.
    """
    if probes < 1:
        raise ValueError("probes must be >= 1")
    if perturb not in PERTURBATIONS:
        raise ValueError(f"perturb must be one of {PERTURBATIONS}, got {perturb!r}")
    t0 = time.perf_counter()
    low = sorted({int(b) for b in widths if int(b) < BASE_BITS})
    gemms = graph.quantizable()
    head = logits_layer(graph)
    inputs = [ly.inputs[0] for ly in gemms]
    grams, steps = grams or {}, steps or {}
    chains = {ly.name: activation_chain(graph, ly.name) if steps else [ly.name] for ly in gemms}
    points = list(dict.fromkeys(p for ch in chains.values() for p in ch))
    changes = {(ly.name, b): weight_change(ly, b, perturb, clip, grams.get(ly.name), np.random.default_rng([seed, k, b]))
               for k, ly in enumerate(gemms) for b in low}
    totals = {key: 0.0 for key in changes}
    x = np.asarray(x, np.float32)
    if batch_size is None:
        from codesign.membudget import micro_batch

        batch_size = micro_batch(len(x), lambda k: grad.forward(graph, x[:k], [head, *inputs]), factor=probes + 1.0)
    for s in range(0, len(x), batch_size):
        tape = grad.forward(graph, x[s:s + batch_size], [head, *inputs])
        z = tape.outputs[head]
        dys = [grad.output_grads(tape, {head: fisher_probe(z, probe_normals(seed, s, len(z), k, z.shape[-1]))}, points)
               for k in range(probes)]
        diag = {p: sum(g[p].astype(np.float64) ** 2 for g in dys) for p in points if p in steps}  # sum over probes
        for ly, name_in in zip(gemms, inputs):
            for b in low:
                dy = layer_output(ly, tape.outputs[name_in], changes[(ly.name, b)])
                n = len(dy)
                for g in dys:  # <G_n, dY_n> per image, squared
                    totals[(ly.name, b)] += float(((g[ly.name].reshape(n, -1) * dy.reshape(n, -1)).sum(1) ** 2).sum())
                delta = dy
                for p in chains[ly.name]:
                    if p != ly.name:
                        delta = grad.activation_jvp(tape, p, delta)
                    if p in steps:
                        totals[(ly.name, b)] += float((diag[p] * dither_excess(delta, steps[p])).sum())
        if progress is not None:
            progress(len(gemms))
    omega = {ly.name: {**{b: 0.5 * totals[(ly.name, b)] / (len(x) * probes) for b in low}, BASE_BITS: 0.0}
             for ly in gemms}
    return WidthSensitivity([ly.name for ly in gemms], omega, time.perf_counter() - t0,
                            {"estimator": "fisher", "probes": probes, "seed": seed, "perturb": perturb, "clip": clip,
                             "images": len(x), "widths": low})


__all__ = ["PERTURBATIONS", "activation_chain", "dither_excess", "fisher_probe", "fisher_sensitivity", "layer_output", "logits_layer", "probe_normals", "weight_change"]
