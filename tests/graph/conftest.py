"""Fixtures for the graph tests: Keras models built once per session, parity helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

# Every keras.applications model is built at this size (224 is what their top expects).
APP_INPUT_SHAPE = (224, 224, 3)


@pytest.fixture(scope="session")
def tf() -> Any:
    """The TensorFlow module (tests using it are skipped when TF is absent)."""
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="session")
def keras_application(tf: Any) -> Callable[[str], Any]:
    """``get(name)`` builds each keras.applications model (weights=None) at most once per session."""
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            tf.keras.utils.set_random_seed(0)
            cache[name] = getattr(tf.keras.applications, name)(weights=None, input_shape=APP_INPUT_SHAPE)
        return cache[name]

    return get
