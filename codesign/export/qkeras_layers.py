"""Keras layers for what Keras/QKeras cannot express exactly (registered as Keras serializables).

:class:`CodeAffine` (a per-position factor), :class:`CodeLUT` (a table lookup),
:class:`InputCodes` (the golden model's half-up input rounding), and the exact integer
:class:`DyadicRequant` / :class:`DyadicAdd` of ``exact=True`` exports. :func:`custom_objects`
lists them for ``load_model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from qkeras.utils import _add_supported_quantized_objects

K = tf.keras



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


__all__ = ["CodeAffine", "CodeLUT", "DyadicAdd", "DyadicRequant", "InputCodes", "custom_objects", "load_qkeras"]
