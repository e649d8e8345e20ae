"""Error-compensating weight rounding (GPTQ / optimal brain quantization) from calibration data.

Rounding each weight to its nearest grid point minimises ``||W - Q||^2`` but not the error
that matters, the layer's output error ``||X W - X Q||^2`` over real (here: distilled) inputs
``X``. GPTQ (Frantar et al., 2022; built on OBQ, Frantar & Alistarh 2022, and OBS, Hassibi &
Stork 1993) quantizes one input row ``k`` of ``W`` (K x Cout, HWIO kernel flattened in im2col
order) at a time and spreads the rounding error over the rows not yet quantized, weighted by
the inverse of the input Gram matrix ``H = X^T X``:

    e = (w_k - q_k) / [H^-1]_kk ;   w_j -= [H^-1]_kj * e   for j > k

Using the upper Cholesky factor ``U`` of ``H^-1`` (``H^-1 = U^T U``) this is one rank-1 update
per row. ``H`` gets ``DAMP * mean(diag H)`` added (numerical stability); inputs that never fire
(``H_kk == 0``) keep a unit diagonal. Rows are processed in decreasing ``H_kk`` order
("act-order"), which quantizes the rows that carry most signal while the most freedom to
compensate remains.

The scale grid is fixed beforehand (per output channel, the same ``weight_clip`` rule as
round-to-nearest); GPTQ only chooses which grid point each weight takes. Grouped and
depthwise convolutions have one ``H`` per group (a depthwise channel sees only its own
``kh*kw`` window values). Everything is NumPy: it runs on the board like the rest of the search.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from codesign.graph import ops
from codesign.graph.execute import run_float
from codesign.graph.ir import Conv2D, Dense, Graph
from codesign.quant.dyadic import qrange

DAMP = 0.01
WEIGHT_ROUNDINGS = ("nearest", "gptq")


def _columns(ly: Conv2D | Dense, x: np.ndarray) -> np.ndarray:
    """The layer's GEMM inputs as ``(groups, rows, K)`` float64 (im2col for convolutions)."""
    x = x.astype(np.float64, copy=False)
    if isinstance(ly, Dense):
        return x.reshape(1, -1, x.shape[-1])
    kh, kw, cin_g, _cout = ly.params["kernel"].shape
    xp = ops.pad_nhwc(x, ly.padding)
    if ly.groups == 1:
        cols = ops.im2col(xp, (kh, kw), ly.strides)
        return cols.reshape(1, -1, cols.shape[-1])
    v = ops.windows(xp, (kh, kw), ly.strides)  # N, OH, OW, C, kh, kw
    n, oh, ow, _c, _, _ = v.shape
    v = v.reshape(n * oh * ow, ly.groups, cin_g, kh, kw).transpose(1, 0, 3, 4, 2)  # G, rows, kh, kw, cin_g
    return np.ascontiguousarray(v).reshape(ly.groups, n * oh * ow, kh * kw * cin_g)


@dataclass
class LayerGram:
    """A layer's input Gram matrices ``(groups, K, K)`` and, once asked for, their GPTQ factors."""

    gram: np.ndarray
    _factors: list[tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)

    def factors(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per group: the act-order permutation and the upper Cholesky factor of the permuted ``H^-1``.

        They depend only on the data, not on the bit-width, so they are computed once.
        """
        if self._factors is None:
            out = []
            for h in self.gram:
                order = np.argsort(-np.diagonal(h), kind="stable")
                out.append((order, _upper_inverse_factor(h[np.ix_(order, order)])))
            self._factors = out
        return self._factors


def input_gram(graph: Graph, x: np.ndarray, names: Iterable[str], batch_size: int | None = None) -> dict[str, LayerGram]:
    """``H = sum X^T X / rows`` per group, ``(groups, K, K)``, of each named Conv2D/Dense layer's input.

    ``batch_size`` images per float pass (default 8, or fewer under the process memory budget,
    :mod:`codesign.membudget`); the sum is the same up to float64 rounding.
    """
    if batch_size is None:
        from codesign.membudget import micro_batch

        batch_size = micro_batch(len(x), lambda k: run_float(graph, x[:k], collect=True), default=8)
    wanted = set(names)
    grams: dict[str, np.ndarray] = {}
    rows: dict[str, int] = {}
    for start in range(0, len(x), batch_size):
        acts = run_float(graph, x[start : start + batch_size], collect=True)
        for ly in graph.layers:
            if ly.name not in wanted:
                continue
            if not isinstance(ly, (Conv2D, Dense)):
                raise TypeError(f"{ly.name!r} is not a Conv2D/Dense layer: it has no GEMM inputs")
            cols = _columns(ly, acts[ly.inputs[0]])
            h = np.einsum("grk,grl->gkl", cols, cols)
            grams[ly.name] = grams.get(ly.name, 0) + h
            rows[ly.name] = rows.get(ly.name, 0) + cols.shape[1]
    return {n: LayerGram(grams[n] / max(rows[n], 1)) for n in grams}


def _kernel_groups(w: np.ndarray, groups: int) -> np.ndarray:
    """HWIO (or dense ``(in, out)``) kernel -> ``(groups, K, Cout/groups)`` in im2col row order."""
    cout = w.shape[-1]
    k = w.reshape(-1, cout).astype(np.float64)
    return k.reshape(k.shape[0], groups, cout // groups).transpose(1, 0, 2)


def _ungroup(q: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    g, k, cg = q.shape
    return q.transpose(1, 0, 2).reshape(k, g * cg).reshape(shape)


def _upper_inverse_factor(h: np.ndarray) -> np.ndarray:
    """Upper Cholesky factor ``U`` of ``H^-1`` (``H^-1 = U^T U``) after damping."""
    h = h.copy()
    diag = np.diagonal(h).copy()
    dead = diag <= 0
    h[dead, :] = 0.0
    h[:, dead] = 0.0
    diag[dead] = 1.0
    damp = DAMP * float(diag.mean())
    h[np.diag_indices_from(h)] = diag + damp
    hinv = np.linalg.inv(h)
    hinv = (hinv + hinv.T) / 2
    return np.linalg.cholesky(hinv).T


def gptq_codes(w: np.ndarray, scale: np.ndarray, bits: int, gram: LayerGram | np.ndarray, groups: int = 1) -> np.ndarray:
    """Integer weight codes (same shape as ``w``) on the grid ``scale`` (per output channel).

    ``gram``: a :class:`LayerGram` from :func:`input_gram` (or its ``(groups, K, K)`` array).
    Codes are symmetric narrow-range (``[-(2^(b-1)-1), 2^(b-1)-1]``), as round-to-nearest in
    ``codesign.quant.qgraph``.
    """
    lg = gram if isinstance(gram, LayerGram) else LayerGram(np.asarray(gram, np.float64))
    lo, hi = qrange(bits, True, narrow=True)
    wg = _kernel_groups(w, groups)  # G, K, Cg
    sg = np.asarray(scale, np.float64).reshape(groups, 1, -1)
    q = np.empty_like(wg)
    for g, (order, u) in enumerate(lg.factors()):
        work = wg[g][order].copy()  # K, Cg in act-order
        s = sg[g]
        codes = np.empty_like(work)
        for k in range(work.shape[0]):
            c = np.clip(np.floor(work[k] / s[0] + 0.5), lo, hi)
            codes[k] = c
            err = (work[k] - c * s[0]) / u[k, k]
            work[k + 1 :] -= np.outer(u[k, k + 1 :], err)
        q[g][order] = codes
    return _ungroup(q, w.shape).astype(np.int64)


__all__ = ["DAMP", "WEIGHT_ROUNDINGS", "LayerGram", "gptq_codes", "input_gram"]
