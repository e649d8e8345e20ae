"""One module per quantized op (see :mod:`codesign.quant.ops.base` for what an op carries).

Importing this package registers the built-in ops; a new op is one more module here (or
anywhere: ``@register`` files it) plus one handler per exporter.
"""

from codesign.quant.ops import activation, add, affine, concat, gemm, mul, pool, requant, shape
from codesign.quant.ops.base import (
           OVERLAY,
           PS,
           LowerCtx,
           QOp,
           op_class,
           op_classes,
           op_for_layer,
           register,
           unregister,
)

__all__ = ["OVERLAY", "PS", "LowerCtx", "QOp", "activation", "add", "affine", "concat", "gemm", "mul", "op_class",
           "op_classes", "op_for_layer", "pool", "register", "requant", "shape", "unregister"]
